//! The worker identity that enters the key of every worker-run stage.

use serde_json::{json, Value};

/// libtorch version the worker is built against (pinned by `scripts/setup-libtorch.sh`).
pub const LIBTORCH_VERSION: &str = "2.11.0";

/// Crate version, git commit, libtorch version and features of the `rsfm-worker` this build ships.
pub fn worker_identity() -> Value {
    json!({
        "crate": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("RSFM_GIT_COMMIT"),
        "libtorch": LIBTORCH_VERSION,
        "features": ["torch"],
    })
}
