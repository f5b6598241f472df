//! Empty: a build script makes cargo resolve this crate's build-dependencies, whose features
//! unify the host side (proc-macro crates and build scripts) of rsfm's builds.

fn main() {}
