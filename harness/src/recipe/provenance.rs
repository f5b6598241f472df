//! Values with provenance: `{ value = X, source = "paper Table 3" }`.

use super::document::{Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use indexmap::IndexMap;

/// The prefixes a provenance `source` may start with (see PAPER.md's tags).
pub const SOURCE_PREFIXES: &[&str] = &[
    "paper",
    "secondary",
    "context",
    "ours",
    "reconstructed",
    "assumed:",
    "default:",
];

/// Whether `source` starts with one of [`SOURCE_PREFIXES`].
pub fn is_valid_source(source: &str) -> bool {
    SOURCE_PREFIXES
        .iter()
        .any(|prefix| source.starts_with(prefix))
}

/// Whether a table is meant as a value with provenance (it has a `value` or `source` key).
pub(crate) fn looks_like_provenance(table: &IndexMap<String, Node>) -> bool {
    table.contains_key("value") || table.contains_key("source")
}

/// The plain value of `node` and its provenance source, if it carries one.
/// `key` is the dotted key, for messages.
pub(crate) fn unwrap<'a>(
    node: &'a Node,
    key: &str,
) -> Result<(&'a Node, Option<String>), RecipeError> {
    let NodeValue::Table(table) = &node.value else {
        return Ok((node, None));
    };
    if !looks_like_provenance(table) {
        return Ok((node, None));
    }
    let shape_help =
        "a value with provenance is written `{ value = X, source = \"paper Table 3\" }`";
    if let Some((extra, extra_node)) = table
        .iter()
        .find(|(name, _)| *name != "value" && *name != "source")
    {
        return Err(RecipeError::at(
            ErrorKind::BadProvenance,
            &extra_node.key_at,
            format!("unknown key `{extra}` in the provenance of `{key}`"),
        )
        .help(format!(
            "{shape_help}: exactly the keys `value` and `source`"
        )));
    }
    let (Some(value), Some(source)) = (table.get("value"), table.get("source")) else {
        let missing = if table.contains_key("value") {
            "source"
        } else {
            "value"
        };
        return Err(RecipeError::at(
            ErrorKind::BadProvenance,
            &node.at,
            format!("the provenance of `{key}` lacks `{missing}`"),
        )
        .help(shape_help));
    };
    let NodeValue::Str(text) = &source.value else {
        return Err(RecipeError::at(
            ErrorKind::WrongType,
            &source.at,
            format!(
                "wrong type for the source of `{key}`: expected string, found {}",
                source.value.type_name()
            ),
        )
        .help(shape_help));
    };
    if !is_valid_source(text) {
        return Err(RecipeError::at(
            ErrorKind::BadProvenance,
            &source.at,
            format!("unknown provenance source `{text}` for `{key}`"),
        )
        .help(format!(
            "a source starts with one of {} (e.g. `paper Table 3`, `assumed: why`, `default: where`)",
            quoted_list(SOURCE_PREFIXES)
        )));
    }
    Ok((value, Some(text.clone())))
}

/// `a`, `b`, `c` for messages.
pub(crate) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|item| format!("`{}`", item.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_need_a_known_prefix() {
        for good in [
            "paper Table 3",
            "secondary: leaderboard",
            "context RVSA",
            "ours",
            "reconstructed",
            "assumed: MAE default",
            "default: timm",
        ] {
            assert!(is_valid_source(good), "{good}");
        }
        for bad in ["Paper", "guess", "assumed", "default", ""] {
            assert!(!is_valid_source(bad), "{bad}");
        }
    }
}
