//! One TOML file as an owned tree whose every key and value knows its `file:line:col`.

use super::error::{ErrorKind, RecipeError};
use super::location::{LineIndex, Location};
use indexmap::IndexMap;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A TOML value with the location of its key and of the value itself.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The value.
    pub value: NodeValue,
    /// Where the value starts.
    pub at: Location,
    /// Where its key is (the value's own location for array elements and the root).
    pub key_at: Location,
}

/// The TOML value kinds, tables in file order.
#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date-time, kept as written.
    Datetime(String),
    /// An array.
    Array(Vec<Node>),
    /// A table, keys in the order they appear.
    Table(IndexMap<String, Node>),
}

impl NodeValue {
    /// The TOML name of this value's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            NodeValue::Str(_) => "string",
            NodeValue::Int(_) => "integer",
            NodeValue::Float(_) => "float",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Datetime(_) => "datetime",
            NodeValue::Array(_) => "array",
            NodeValue::Table(_) => "table",
        }
    }
}

/// Parses `text`, the content of `file`, into a root table node.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Node, RecipeError> {
    let index = LineIndex::new(file, text);
    let root = DeTable::parse(text).map_err(|error| {
        let location = index.locate(error.span().map_or(0, |span| span.start));
        RecipeError::at(
            ErrorKind::Syntax,
            &location,
            format!("invalid TOML: {}", error.message().trim_end()),
        )
        .help("see https://toml.io for the syntax")
    })?;
    let start = Location::start_of(file);
    let span = root.span();
    let table = convert_table(&index, root.into_inner())?;
    Ok(Node {
        value: table,
        at: index.locate(span.start),
        key_at: start,
    })
}

fn convert_table(index: &LineIndex<'_>, table: DeTable<'_>) -> Result<NodeValue, RecipeError> {
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut out = IndexMap::with_capacity(entries.len());
    for (key, value) in entries {
        let key_at = index.locate(key.span().start);
        refuse_nul(key.get_ref(), &key_at)?;
        let node = convert(index, value, key_at)?;
        out.insert(key.into_inner().into_owned(), node);
    }
    Ok(NodeValue::Table(out))
}

fn convert(
    index: &LineIndex<'_>,
    value: Spanned<DeValue<'_>>,
    key_at: Location,
) -> Result<Node, RecipeError> {
    let at = index.locate(value.span().start);
    let converted = match value.into_inner() {
        DeValue::String(text) => {
            refuse_nul(&text, &at)?;
            NodeValue::Str(text.into_owned())
        }
        DeValue::Integer(integer) => {
            let parsed = i64::from_str_radix(integer.as_str(), integer.radix());
            NodeValue::Int(parsed.map_err(|_| {
                RecipeError::at(ErrorKind::InvalidValue, &at, "integer out of range")
                    .help("integers must fit in 64 bits")
            })?)
        }
        DeValue::Float(float) => NodeValue::Float(float.as_str().parse().map_err(|_| {
            RecipeError::at(ErrorKind::InvalidValue, &at, "float out of range")
                .help("floats must fit in 64 bits")
        })?),
        DeValue::Boolean(flag) => NodeValue::Bool(flag),
        DeValue::Datetime(datetime) => NodeValue::Datetime(datetime.to_string()),
        DeValue::Array(array) => NodeValue::Array(
            array
                .into_iter()
                .map(|element| {
                    let element_at = index.locate(element.span().start);
                    convert(index, element, element_at)
                })
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(table) => convert_table(index, table)?,
    };
    Ok(Node {
        value: converted,
        at,
        key_at,
    })
}

/// A NUL character (`\u0000`) in a key or string, which no file name, argument, environment
/// variable or terminal line can carry, is an error at its location.
fn refuse_nul(text: &str, at: &Location) -> Result<(), RecipeError> {
    if text.contains('\0') {
        return Err(RecipeError::at(
            ErrorKind::InvalidValue,
            at,
            "contains a NUL character (`\\u0000`)",
        )
        .help("no name, argument or path can hold NUL: remove it"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(node: &Node) -> &IndexMap<String, Node> {
        match &node.value {
            NodeValue::Table(table) => table,
            other => panic!("expected a table, found {}", other.type_name()),
        }
    }

    #[test]
    fn keys_keep_file_order_and_locations() {
        let text = "[stage.zeta]\nkind = \"command\"\n\n[stage.alpha]\nlr = 0x10\n";
        let root = parse(Path::new("r.toml"), text).unwrap();
        let stages = table(&table(&root)["stage"]);
        let names: Vec<_> = stages.keys().cloned().collect();
        assert_eq!(names, ["zeta", "alpha"]);
        assert_eq!(stages["alpha"].key_at.to_string(), "r.toml:4:8");
        let lr = &table(&stages["alpha"])["lr"];
        assert_eq!(lr.key_at.to_string(), "r.toml:5:1");
        assert_eq!(lr.at.to_string(), "r.toml:5:6");
        assert!(matches!(lr.value, NodeValue::Int(16)));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let error = parse(Path::new("r.toml"), "a = 1\nb = \n").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Syntax);
        assert_eq!(error.location.unwrap().line, 2);
    }
}
