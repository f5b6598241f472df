//! Typed reads from the recipe tree, each failure a [`RecipeError`] that names the fix.

use super::document::{Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use super::location::Location;
use super::provenance::quoted_list;
use indexmap::IndexMap;

/// A table of the recipe together with its dotted name (`stage.train`) for messages.
pub(crate) struct Table<'a> {
    /// The table's node.
    pub node: &'a Node,
    /// Its entries in file order.
    pub entries: &'a IndexMap<String, Node>,
    /// Its dotted name, e.g. `stage.train`.
    pub name: String,
}

impl<'a> Table<'a> {
    /// Reads `node` as the table called `name`.
    pub(crate) fn new(node: &'a Node, name: impl Into<String>) -> Result<Self, RecipeError> {
        let name = name.into();
        match &node.value {
            NodeValue::Table(entries) => Ok(Self {
                node,
                entries,
                name,
            }),
            other => Err(wrong_type(node, &name, "table", other.type_name())
                .help(format!("write `[{name}]` followed by its keys"))),
        }
    }

    /// The header for messages: `[stage.train]`, or `the top level` for the root.
    pub(crate) fn header(&self) -> String {
        if self.name.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", self.name)
        }
    }

    /// The dotted key of `key` in this table.
    pub(crate) fn key(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    /// Fails on the first key not in `allowed`, listing the allowed keys.
    pub(crate) fn check_keys(&self, allowed: &[&str]) -> Result<(), RecipeError> {
        match self.unknown_keys(allowed).into_iter().next() {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }

    /// An error for each key not in `allowed`, in file order, each listing the allowed keys.
    pub(crate) fn unknown_keys(&self, allowed: &[&str]) -> Vec<RecipeError> {
        self.entries
            .iter()
            .filter(|(key, _)| !allowed.contains(&key.as_str()))
            .map(|(key, node)| unknown_key(key, &node.key_at, &self.header(), allowed))
            .collect()
    }

    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.get(key)
    }

    /// The value of `key`, or an error at the table's header naming the missing key.
    pub(crate) fn require(&self, key: &str, fix: &str) -> Result<&'a Node, RecipeError> {
        self.get(key).ok_or_else(|| {
            RecipeError::at(
                ErrorKind::MissingKey,
                &self.node.key_at,
                format!("missing key `{key}` in {}", self.header()),
            )
            .help(fix.to_string())
        })
    }
}

/// An error for `key` not being one of `allowed` in `header`, with a suggestion if one is close.
pub(crate) fn unknown_key(key: &str, at: &Location, header: &str, allowed: &[&str]) -> RecipeError {
    let mut help = format!("allowed keys: {}", quoted_list(allowed));
    if let Some(close) = crate::suggest::closest(key, allowed.iter().copied()) {
        help = format!("did you mean `{close}`? {help}");
    }
    RecipeError::at(
        ErrorKind::UnknownKey,
        at,
        format!("unknown key `{key}` in {header}"),
    )
    .help(help)
}

/// An error for a value of the wrong type.
pub(crate) fn wrong_type(node: &Node, key: &str, expected: &str, found: &str) -> RecipeError {
    RecipeError::at(
        ErrorKind::WrongType,
        &node.at,
        format!("wrong type for `{key}`: expected {expected}, found {found}"),
    )
}

/// The string in `node`.
pub(crate) fn string<'a>(node: &'a Node, key: &str) -> Result<&'a str, RecipeError> {
    match &node.value {
        NodeValue::Str(text) => Ok(text),
        other => Err(wrong_type(node, key, "string", other.type_name())
            .help(format!("write `{}` as a quoted string", last(key)))),
    }
}

/// The non-negative integer in `node`.
pub(crate) fn count(node: &Node, key: &str) -> Result<u64, RecipeError> {
    match &node.value {
        NodeValue::Int(value) => u64::try_from(*value).map_err(|_| {
            RecipeError::at(
                ErrorKind::InvalidValue,
                &node.at,
                format!("`{key}` must not be negative, found {value}"),
            )
            .help("use a non-negative integer")
        }),
        other => Err(
            wrong_type(node, key, "integer", other.type_name()).help(format!(
                "write `{}` as a whole number, e.g. `{} = 1`",
                last(key),
                last(key)
            )),
        ),
    }
}

/// The array of strings in `node`, each with its location.
pub(crate) fn strings(node: &Node, key: &str) -> Result<Vec<(String, Location)>, RecipeError> {
    let help = format!("write `{} = [\"a\", \"b\"]`", last(key));
    let NodeValue::Array(items) = &node.value else {
        return Err(wrong_type(node, key, "array of strings", node.value.type_name()).help(help));
    };
    items
        .iter()
        .map(|item| match &item.value {
            NodeValue::Str(text) => Ok((text.clone(), item.at.clone())),
            other => Err(wrong_type(item, key, "string", other.type_name()).help(help.clone())),
        })
        .collect()
}

fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// Whether `name` is a valid stage or dataset name: letters, digits, `_` and `-`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_letters_digits_dash_underscore() {
        assert!(is_valid_name("finetune_det-1"));
        assert!(!is_valid_name("a@b"));
        assert!(!is_valid_name("a.b"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-a"));
    }
}
