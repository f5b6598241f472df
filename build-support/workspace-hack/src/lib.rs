//! No code: this crate only names dependency features (see its `Cargo.toml`), so that the
//! worker, CLI and test builds resolve shared dependencies alike and compile each once.
