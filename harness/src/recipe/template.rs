//! `{name}` placeholders in recipe strings.
//!
//! Loading a recipe replaces matrix variables and checks the other placeholders (`{out}`,
//! `{input.NAME}`, `{dataset.NAME}`), which stay in place, as do `{{`/`}}` escapes; the executor
//! then calls [`substitute`] once more with the stage's paths.

use super::document::Node;
use super::error::{ErrorKind, RecipeError};
use super::matrix::MatrixValue;
use super::provenance::quoted_list;
use indexmap::IndexMap;

/// A piece of a template.
enum Piece<'a> {
    /// Text without braces.
    Literal(&'a str),
    /// `{{`, a literal `{`.
    OpenBrace,
    /// `}}`, a literal `}`.
    CloseBrace,
    /// `{name}`.
    Placeholder(&'a str),
}

/// Splits `template` into pieces; on a lone brace, returns the malformed fragment.
fn tokenize(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(position) = rest.find(['{', '}']) {
        if position > 0 {
            pieces.push(Piece::Literal(&rest[..position]));
        }
        let tail = &rest[position..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::OpenBrace);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::CloseBrace);
            rest = after;
        } else if tail.starts_with('}') {
            return Err("}".to_string());
        } else {
            let end = tail[1..]
                .find(['{', '}'])
                .filter(|&end| tail[1 + end..].starts_with('}'))
                .ok_or_else(|| tail.chars().take(24).collect::<String>())?;
            let name = &tail[1..1 + end];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(tail[..end + 2].to_string());
            }
            pieces.push(Piece::Placeholder(name));
            rest = &tail[end + 2..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest));
    }
    Ok(pieces)
}

/// Replaces every `{name}` in `template` by `lookup(name)` and `{{`/`}}` by `{`/`}`.
///
/// Fails with the name that `lookup` does not know, or with the malformed fragment of a lone
/// brace.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for piece in tokenize(template)? {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::OpenBrace => out.push('{'),
            Piece::CloseBrace => out.push('}'),
            Piece::Placeholder(name) => out.push_str(&lookup(name).ok_or(name)?),
        }
    }
    Ok(out)
}

/// [`substitute`] applied to every string inside `value` (arrays and objects walked), as the
/// executor does for the parameters of a stage.
pub fn substitute_json(
    value: &serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match value {
        Value::String(template) => Value::String(substitute(template, lookup)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute_json(item, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), substitute_json(item, lookup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The placeholder names in `template`, in order (none if it is malformed).
pub(crate) fn placeholders(template: &str) -> Vec<&str> {
    tokenize(template)
        .map(|pieces| {
            pieces
                .into_iter()
                .filter_map(|piece| match piece {
                    Piece::Placeholder(name) => Some(name),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Escapes braces so that `text` survives [`substitute`] unchanged.
pub(crate) fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// The placeholders a string may use besides matrix variables.
pub(crate) struct Scope<'a> {
    /// Matrix variables of the current combination.
    pub vars: &'a IndexMap<String, MatrixValue>,
    /// Whether `{out}` is available (in stage parameters, not in dataset roots).
    pub out: bool,
    /// Base names of the stages this one needs.
    pub inputs: &'a [String],
    /// Datasets this stage reads: name as written → name in the expanded recipe.
    pub datasets: &'a IndexMap<String, String>,
    /// Matrix axes that exist but that this stage does not expand over.
    pub unselected: &'a [String],
}

/// The outcome of interpolating one string.
#[derive(Debug, PartialEq)]
pub(crate) enum Interpolated {
    /// Text with placeholders for the executor and escapes still in place.
    Text(String),
    /// The string was exactly one non-string matrix variable: its typed value.
    Typed(serde_json::Value),
}

/// Why a string cannot be interpolated.
#[derive(Debug, PartialEq)]
pub(crate) enum TemplateProblem {
    /// A lone `{` or `}` (the fragment).
    Malformed(String),
    /// A name that is neither a matrix variable nor a placeholder.
    Undefined(String),
    /// `{input.NAME}` with NAME not in `needs`.
    InputNotNeeded(String),
    /// `{dataset.NAME}` with NAME not in the stage's `datasets`.
    DatasetNotRead(String),
    /// `{out}`, `{input.…}` or `{dataset.…}` where stage paths do not exist (dataset roots).
    NotAvailable(String),
}

/// Replaces the matrix variables of `scope` in `template` and checks the other placeholders.
pub(crate) fn interpolate(
    template: &str,
    scope: &Scope<'_>,
) -> Result<Interpolated, TemplateProblem> {
    let pieces = tokenize(template).map_err(TemplateProblem::Malformed)?;
    if let [Piece::Placeholder(name)] = pieces.as_slice() {
        if let Some(value) = scope
            .vars
            .get(*name)
            .filter(|value| !value.json.is_string())
        {
            return Ok(Interpolated::Typed(value.json.clone()));
        }
    }
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::OpenBrace => out.push_str("{{"),
            Piece::CloseBrace => out.push_str("}}"),
            Piece::Placeholder(name) => out.push_str(&placeholder(name, scope)?),
        }
    }
    Ok(Interpolated::Text(out))
}

/// What `{name}` becomes after the first pass.
fn placeholder(name: &str, scope: &Scope<'_>) -> Result<String, TemplateProblem> {
    if let Some(value) = scope.vars.get(name) {
        return Ok(escape(&value.text));
    }
    let stage_path = name == "out" || name.starts_with("input.") || name.starts_with("dataset.");
    if stage_path && !scope.out {
        return Err(TemplateProblem::NotAvailable(name.to_string()));
    }
    if name == "out" {
        return Ok("{out}".to_string());
    }
    if let Some(input) = name.strip_prefix("input.") {
        return if scope.inputs.iter().any(|need| need == input) {
            Ok(format!("{{{name}}}"))
        } else {
            Err(TemplateProblem::InputNotNeeded(input.to_string()))
        };
    }
    if let Some(dataset) = name.strip_prefix("dataset.") {
        return match scope.datasets.get(dataset) {
            Some(expanded) => Ok(format!("{{dataset.{expanded}}}")),
            None => Err(TemplateProblem::DatasetNotRead(dataset.to_string())),
        };
    }
    Err(TemplateProblem::Undefined(name.to_string()))
}

/// The recipe error for `problem` in the string `node` of `key`.
pub(crate) fn problem_error(
    problem: TemplateProblem,
    node: &Node,
    key: &str,
    scope: &Scope<'_>,
) -> RecipeError {
    let braces = "write `{{` and `}}` for literal braces";
    let at = &node.at;
    match problem {
        TemplateProblem::Malformed(fragment) => RecipeError::at(
            ErrorKind::InvalidValue,
            at,
            format!("unbalanced brace at `{fragment}` in `{key}`"),
        )
        .help(format!("placeholders are written `{{name}}`; {braces}")),
        TemplateProblem::Undefined(name) if scope.unselected.contains(&name) => RecipeError::at(
            ErrorKind::UndefinedVariable,
            at,
            format!("undefined variable `{{{name}}}` in `{key}`: this stage does not expand over the matrix axis `{name}`"),
        )
        .help(format!(
            "add \"{name}\" to the stage's `matrix` list, or drop the `matrix` list to expand over every axis"
        )),
        TemplateProblem::Undefined(name) => {
            let vars: Vec<&String> = scope.vars.keys().collect();
            let defined = if vars.is_empty() {
                "there is no [matrix], so no matrix variables".to_string()
            } else {
                format!("matrix variables: {}", quoted_list(&vars))
            };
            let placeholders = if scope.out {
                "; placeholders: `{out}`, `{input.NAME}` (NAME in `needs`), `{dataset.NAME}` (NAME in `datasets`)"
            } else {
                ""
            };
            RecipeError::at(
                ErrorKind::UndefinedVariable,
                at,
                format!("undefined variable `{{{name}}}` in `{key}`"),
            )
            .help(format!("{defined}{placeholders}; {braces}"))
        }
        TemplateProblem::InputNotNeeded(input) if input.is_empty() => RecipeError::at(
            ErrorKind::UndefinedVariable,
            at,
            format!("`{{input.}}` in `{key}` names no stage"),
        )
        .help(format!(
            "write `{{input.NAME}}`, NAME a stage in `needs` (its cache entry's folder); needed now: {}",
            or_none(scope.inputs)
        )),
        TemplateProblem::InputNotNeeded(input) => RecipeError::at(
            ErrorKind::UndefinedVariable,
            at,
            format!("`{{input.{input}}}` in `{key}` names a stage that is not in `needs`"),
        )
        .help(format!(
            "add \"{input}\" to `needs`; needed now: {}",
            or_none(scope.inputs)
        )),
        TemplateProblem::DatasetNotRead(dataset) => {
            let read: Vec<&String> = scope.datasets.keys().collect();
            RecipeError::at(
                ErrorKind::UndefinedVariable,
                at,
                format!(
                    "`{{dataset.{dataset}}}` in `{key}` names a dataset that is not in `datasets`"
                ),
            )
            .help(format!(
                "add \"{dataset}\" to the stage's `datasets`; read now: {}",
                or_none(&read)
            ))
        }
        TemplateProblem::NotAvailable(name) => RecipeError::at(
            ErrorKind::UndefinedVariable,
            at,
            format!("`{{{name}}}` cannot be used in `{key}`"),
        )
        .help("only matrix variables can be used here; stage paths exist in stage parameters only"),
    }
}

fn or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        quoted_list(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> IndexMap<String, MatrixValue> {
        IndexMap::from([
            ("size".to_string(), MatrixValue::new(json!(2))),
            ("name".to_string(), MatrixValue::new(json!("a{b}"))),
        ])
    }

    fn first_pass(template: &str) -> Result<Interpolated, TemplateProblem> {
        let vars = vars();
        let inputs = ["generate".to_string()];
        let datasets = IndexMap::from([("potsdam".to_string(), "potsdam".to_string())]);
        let scope = Scope {
            vars: &vars,
            out: true,
            inputs: &inputs,
            datasets: &datasets,
            unselected: &[],
        };
        interpolate(template, &scope)
    }

    fn text(value: &str) -> Result<Interpolated, TemplateProblem> {
        Ok(Interpolated::Text(value.to_string()))
    }

    #[test]
    fn substitute_replaces_and_unescapes() {
        let lookup = |name: &str| (name == "out").then(|| "/o".to_string());
        assert_eq!(substitute("{out}/x{{y}}", &lookup).unwrap(), "/o/x{y}");
        assert_eq!(substitute("{nope}", &lookup).unwrap_err(), "nope");
        assert!(substitute("a{b", &lookup).is_err());
        assert!(substitute("a}b", &lookup).is_err());
        assert!(substitute("{}", &lookup).is_err());
    }

    #[test]
    fn first_pass_fills_matrix_and_keeps_the_rest() {
        assert_eq!(first_pass("s{size}/{out}"), text("s2/{out}"));
        assert_eq!(first_pass("{input.generate}"), text("{input.generate}"));
        assert_eq!(first_pass("{dataset.potsdam}"), text("{dataset.potsdam}"));
        assert_eq!(first_pass("{{lit}}"), text("{{lit}}"));
        assert_eq!(first_pass("{name}"), text("a{{b}}"));
        assert_eq!(first_pass("{size}"), Ok(Interpolated::Typed(json!(2))));
    }

    #[test]
    fn substitute_json_walks_arrays_and_objects() {
        let lookup = |name: &str| (name == "out").then(|| "/o".to_string());
        let params = json!({"argv": ["{out}/a", 1], "nested": {"p": "{{x}}"}, "n": 2.5});
        let expected = json!({"argv": ["/o/a", 1], "nested": {"p": "{x}"}, "n": 2.5});
        assert_eq!(substitute_json(&params, &lookup).unwrap(), expected);
        assert_eq!(
            substitute_json(&json!(["{in}"]), &lookup).unwrap_err(),
            "in"
        );
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_survives_substitution(text in ".*") {
            proptest::prop_assert_eq!(substitute(&escape(&text), &|_| None).unwrap(), text);
        }
    }

    #[test]
    fn first_pass_output_survives_the_second() {
        let Ok(Interpolated::Text(once)) = first_pass("{name}-{{x}}") else {
            panic!("expected text");
        };
        assert_eq!(substitute(&once, &|_| None).unwrap(), "a{b}-{x}");
    }

    #[test]
    fn first_pass_rejects_unknown_names() {
        assert_eq!(
            first_pass("{sise}"),
            Err(TemplateProblem::Undefined("sise".into()))
        );
        assert_eq!(
            first_pass("{input.other}"),
            Err(TemplateProblem::InputNotNeeded("other".into()))
        );
        assert_eq!(
            first_pass("{dataset.loveda}"),
            Err(TemplateProblem::DatasetNotRead("loveda".into()))
        );
        assert!(matches!(
            first_pass("{size"),
            Err(TemplateProblem::Malformed(_))
        ));
    }
}
