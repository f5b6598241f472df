//! Helpers shared by the integration tests that read the reference vectors.

use serde_json::Value;

/// The `cases` array of `../shared/refdata/<file>`; panics naming the file when it is missing
/// or malformed.
pub fn refdata_cases(file: &str) -> Vec<Value> {
    let path = format!("{}/../../shared/refdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"));
    doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no `cases` array"))
        .clone()
}
