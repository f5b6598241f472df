//! Where every value of the merged recipe came from, for `rsfm config show --origin`.

use super::document::{Node, NodeValue};
use super::error::RecipeError;
use super::location::Location;
use super::provenance;
use serde::Serialize;
use serde_json::Value;

/// One resolved leaf value of the merged recipe and the file position that set it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    /// The dotted key, e.g. `stage.train.lr`.
    pub key: String,
    /// The value, provenance stripped, matrix variables not yet filled in.
    pub value: Value,
    /// The provenance source, if the value carries one.
    pub source: Option<String>,
    /// Where the key of the winning value is.
    pub location: Location,
}

/// Every leaf of the TOML `text` (the content of `file`, e.g. a model preset) with the
/// location of its key.
pub fn toml_origins(file: &std::path::Path, text: &str) -> Result<Vec<Origin>, RecipeError> {
    collect(&super::document::parse(file, text)?)
}

/// Every leaf of the merged `root` table, in file order. Arrays and values with provenance are
/// leaves; tables are walked.
pub(crate) fn collect(root: &Node) -> Result<Vec<Origin>, RecipeError> {
    let mut origins = Vec::new();
    walk(root, "", &mut origins)?;
    Ok(origins)
}

fn walk(node: &Node, key: &str, origins: &mut Vec<Origin>) -> Result<(), RecipeError> {
    if let NodeValue::Table(table) = &node.value {
        if key.is_empty() || !provenance::looks_like_provenance(table) {
            for (child_key, child) in table {
                let dotted = if key.is_empty() {
                    quote_key(child_key)
                } else {
                    format!("{key}.{}", quote_key(child_key))
                };
                walk(child, &dotted, origins)?;
            }
            return Ok(());
        }
    }
    let (plain, source) = provenance::unwrap(node, key)?;
    origins.push(Origin {
        key: key.to_string(),
        value: to_json(plain),
        source,
        location: node.key_at.clone(),
    });
    Ok(())
}

/// A key as TOML writes it (in a dotted path or a table header): bare if it can be, else a
/// quoted basic string.
pub(crate) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        return key.to_string();
    }
    let mut quoted = String::from('"');
    for c in key.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The JSON form of a recipe value (non-finite floats and date-times as strings).
pub(crate) fn to_json(node: &Node) -> Value {
    match &node.value {
        NodeValue::Str(text) | NodeValue::Datetime(text) => Value::from(text.clone()),
        NodeValue::Int(value) => Value::from(*value),
        NodeValue::Float(value) => serde_json::Number::from_f64(*value)
            .map_or_else(|| Value::from(value.to_string()), Value::Number),
        NodeValue::Bool(flag) => Value::from(*flag),
        NodeValue::Array(items) => items.iter().map(to_json).collect(),
        NodeValue::Table(table) => table
            .iter()
            .map(|(key, value)| (key.clone(), to_json(value)))
            .collect(),
    }
}
