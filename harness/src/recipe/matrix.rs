//! `[matrix]`: axes of values whose cartesian product multiplies the stage set.

use super::document::{Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use super::location::Location;
use super::provenance;
use super::read::{wrong_type, Table};
use indexmap::IndexMap;
use serde_json::Value;

/// Names a matrix variable may not take: they are placeholders already.
const RESERVED: &[&str] = &["out", "input", "dataset"];

/// One value of a matrix axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MatrixValue {
    /// As text: strings as written, numbers and booleans as canonical JSON.
    pub text: String,
    /// As a typed value.
    pub json: Value,
}

impl MatrixValue {
    /// A value from its typed form.
    pub(crate) fn new(json: Value) -> Self {
        let text = match &json {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Self { text, json }
    }
}

/// The axes of `[matrix]` in declaration order (empty without a matrix).
pub(crate) type Axes = IndexMap<String, Vec<MatrixValue>>;

/// One combination: variable → value, in axis order.
pub(crate) type Combination = IndexMap<String, MatrixValue>;

/// Reads and checks the `[matrix]` table.
pub(crate) fn parse(node: Option<&Node>) -> Result<Axes, RecipeError> {
    let Some(node) = node else {
        return Ok(Axes::new());
    };
    let table = Table::new(node, "matrix")?;
    let mut axes = Axes::new();
    for (name, axis_node) in table.entries {
        let key = table.key(name);
        check_axis_name(name, &axis_node.key_at)?;
        let (values_node, _) = provenance::unwrap(axis_node, &key)?;
        axes.insert(name.clone(), parse_axis(values_node, &key)?);
    }
    Ok(axes)
}

fn check_axis_name(name: &str, at: &Location) -> Result<(), RecipeError> {
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(RecipeError::at(
            ErrorKind::BadName,
            at,
            format!("invalid matrix variable name `{name}`"),
        )
        .help("a matrix variable is a letter or `_` followed by letters, digits or `_`"));
    }
    if RESERVED.contains(&name) {
        return Err(RecipeError::at(
            ErrorKind::BadName,
            at,
            format!("matrix variable `{name}` clashes with the placeholder `{{{name}}}`"),
        )
        .help(format!(
            "rename the axis; reserved names: {}",
            provenance::quoted_list(RESERVED)
        )));
    }
    Ok(())
}

fn parse_axis(node: &Node, key: &str) -> Result<Vec<MatrixValue>, RecipeError> {
    let help = "an axis is a non-empty array of strings, integers, floats or booleans, e.g. `size = [1, 2]`";
    let NodeValue::Array(items) = &node.value else {
        return Err(wrong_type(node, key, "array", node.value.type_name()).help(help));
    };
    if items.is_empty() {
        return Err(RecipeError::at(
            ErrorKind::EmptyMatrixAxis,
            &node.at,
            format!("matrix axis `{key}` is empty"),
        )
        .help("give the axis at least one value, or remove it"));
    }
    let mut values: Vec<MatrixValue> = Vec::with_capacity(items.len());
    for item in items {
        let json = match &item.value {
            NodeValue::Str(text) => Value::from(text.clone()),
            NodeValue::Int(value) => Value::from(*value),
            NodeValue::Float(value) if value.is_finite() => Value::from(*value),
            NodeValue::Bool(flag) => Value::from(*flag),
            other => {
                return Err(wrong_type(
                    item,
                    key,
                    "string, integer, finite float or boolean",
                    other.type_name(),
                )
                .help(help))
            }
        };
        let value = MatrixValue::new(json);
        check_value_text(&value.text, item, key)?;
        if values.iter().any(|seen| seen.text == value.text) {
            return Err(RecipeError::at(
                ErrorKind::BadName,
                &item.at,
                format!("duplicate value `{}` in matrix axis `{key}`", value.text),
            )
            .help("each value of an axis must be distinct"));
        }
        values.push(value);
    }
    Ok(values)
}

/// Matrix values become part of stage names: keep them to name-safe characters.
fn check_value_text(text: &str, item: &Node, key: &str) -> Result<(), RecipeError> {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if safe {
        Ok(())
    } else {
        Err(RecipeError::at(
            ErrorKind::BadName,
            &item.at,
            format!("matrix value `{text}` of `{key}` cannot be part of a stage name"),
        )
        .help("use letters, digits, `_`, `-`, `.` or `+` (name a path by a short word and build the path with `{var}`)"))
    }
}

/// Stages one recipe may expand to unless `RSFM_MAX_STAGES` says otherwise: far above any study
/// (the paper's is 134), far below what exhausts memory.
pub const DEFAULT_MAX_STAGES: u64 = 100_000;

/// The stage limit: `RSFM_MAX_STAGES` when set to a number, else [`DEFAULT_MAX_STAGES`].
pub fn max_stages() -> u64 {
    std::env::var("RSFM_MAX_STAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_STAGES)
}

/// How many combinations the axes named in `selected` give (saturating), counted before any is
/// built, with each axis and its size, for messages.
pub(crate) fn combination_count(axes: &Axes, selected: &[String]) -> (u64, String) {
    let chosen: Vec<(&String, usize)> = axes
        .iter()
        .filter(|(name, _)| selected.contains(name))
        .map(|(name, values)| (name, values.len()))
        .collect();
    let count = chosen
        .iter()
        .fold(1u64, |n, (_, len)| n.saturating_mul(*len as u64));
    let described = chosen
        .iter()
        .map(|(name, len)| format!("{name} ({len})"))
        .collect::<Vec<_>>()
        .join(" × ");
    (count, described)
}

/// Every combination of the axes named in `selected` (taken in declaration order), the last
/// axis varying fastest; one empty combination when none is selected.
pub(crate) fn combinations(axes: &Axes, selected: &[String]) -> Vec<Combination> {
    let mut all = vec![Combination::new()];
    for (name, values) in axes.iter().filter(|(name, _)| selected.contains(name)) {
        all = all
            .into_iter()
            .flat_map(|combination| {
                values.iter().map(move |value| {
                    let mut next = combination.clone();
                    next.insert(name.clone(), value.clone());
                    next
                })
            })
            .collect();
    }
    all
}

/// The part of `combination` on the axes in `selected`.
pub(crate) fn project(combination: &Combination, selected: &[String]) -> Combination {
    combination
        .iter()
        .filter(|(name, _)| selected.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// `base@v1-v2` for a combination, `base` without a matrix.
pub(crate) fn expanded_name(base: &str, combination: &Combination) -> String {
    if combination.is_empty() {
        return base.to_string();
    }
    let values: Vec<&str> = combination
        .values()
        .map(|value| value.text.as_str())
        .collect();
    format!("{base}@{}", values.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn combinations_vary_the_last_axis_fastest() {
        let axes = Axes::from([
            (
                "model".to_string(),
                vec![MatrixValue::new(json!("a")), MatrixValue::new(json!("b"))],
            ),
            (
                "fraction".to_string(),
                vec![MatrixValue::new(json!(0.1)), MatrixValue::new(json!(1.0))],
            ),
        ]);
        let all: Vec<String> = axes.keys().cloned().collect();
        let names: Vec<String> = combinations(&axes, &all)
            .iter()
            .map(|combination| expanded_name("train", combination))
            .collect();
        assert_eq!(
            names,
            ["train@a-0.1", "train@a-1.0", "train@b-0.1", "train@b-1.0"]
        );
        let models = combinations(&axes, &["model".to_string()]);
        assert_eq!(models.len(), 2);
        assert_eq!(project(&models[1], &[]), Combination::new());
        let full = &combinations(&axes, &all)[3];
        assert_eq!(
            expanded_name("p", &project(full, &["model".to_string()])),
            "p@b"
        );
    }

    #[test]
    fn no_matrix_is_one_unnamed_combination() {
        let all = combinations(&Axes::new(), &[]);
        assert_eq!(all.len(), 1);
        assert_eq!(expanded_name("train", &all[0]), "train");
    }
}
