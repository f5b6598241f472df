//! `--set KEY=VALUE`: command-line overrides applied to the merged recipe after `extends`, before
//! anything is checked, so an overridden value is validated like one written in the recipe. The
//! value is read as TOML (`1e-4` is a float, `[1, 2]` an array, `"a"` a string; a bare word
//! that is not TOML is taken as a string) and its origin reads `cli (--set KEY=VALUE)`.

use std::path::PathBuf;
use std::str::FromStr;

use super::document::{self, Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use super::location::Location;

/// One `--set KEY=VALUE` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The dotted key (`stage.finetune.lr`), split.
    pub key: Vec<String>,
    /// The value as written.
    pub value: String,
}

impl FromStr for Override {
    type Err = String;

    fn from_str(text: &str) -> Result<Override, String> {
        let (key, value) = text.split_once('=').ok_or_else(|| {
            format!("`{text}` is not KEY=VALUE (e.g. --set stage.finetune.lr=1e-4)")
        })?;
        let key: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        if key.len() < 2 || key.iter().any(|k| k.is_empty()) {
            return Err(format!(
                "`{text}`: the key must be a dotted path into the recipe, like stage.NAME.KEY"
            ));
        }
        Ok(Override {
            key,
            value: value.trim().to_string(),
        })
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key.join("."), self.value)
    }
}

/// Applies `overrides` to the merged recipe `root`, in order. A key whose parent table does not
/// exist (a typo in a stage name) is an error listing what exists there.
pub(crate) fn apply(root: &mut Node, overrides: &[Override]) -> Result<(), RecipeError> {
    for over in overrides {
        let value = parse_value(over)?;
        let (last, parents) = over.key.split_last().expect("keys have two parts or more");
        let mut table = &mut *root;
        for (depth, part) in parents.iter().enumerate() {
            let NodeValue::Table(entries) = &mut table.value else {
                return Err(error(
                    over,
                    format!("`{}` is not a table", parents[..depth].join(".")),
                ));
            };
            let known: Vec<String> = entries.keys().cloned().collect();
            table = entries.get_mut(part).ok_or_else(|| {
                error(
                    over,
                    format!(
                        "the recipe has no `{}` (there: {})",
                        parents[..=depth].join("."),
                        known.join(", ")
                    ),
                )
            })?;
        }
        let NodeValue::Table(entries) = &mut table.value else {
            return Err(error(
                over,
                format!("`{}` is not a table", parents.join(".")),
            ));
        };
        entries.insert(last.clone(), value);
    }
    Ok(())
}

/// How the origin of an overridden value starts (its pseudo file is `cli (--set KEY=VALUE)`).
const CLI_ORIGIN: &str = "cli (--set ";

/// Whether a value at `location` was set on the command line.
pub fn is_cli_origin(location: &Location) -> bool {
    location.file.to_string_lossy().starts_with(CLI_ORIGIN)
}

/// The value of `over` as a node located at `cli (--set KEY=VALUE)`.
fn parse_value(over: &Override) -> Result<Node, RecipeError> {
    let file = PathBuf::from(format!("{CLI_ORIGIN}{over})"));
    let as_toml = |text: &str| {
        document::parse(&file, &format!("value = {text}"))
            .ok()
            .and_then(|root| match root.value {
                NodeValue::Table(mut entries) => entries.shift_remove("value"),
                _ => None,
            })
    };
    let bare_word = !over.value.contains(['"', '\'', '[', ']', '{', '}', '\n']);
    let mut node = as_toml(&over.value)
        .or_else(|| {
            bare_word
                .then(|| as_toml(&toml::Value::String(over.value.clone()).to_string()))
                .flatten()
        })
        .ok_or_else(|| {
            error(
                over,
                format!("`{}` is not a TOML value (quote text: \"...\")", over.value),
            )
        })?;
    let at = Location::start_of(&file);
    node.key_at = at.clone();
    node.at = at;
    Ok(node)
}

fn error(over: &Override, message: String) -> RecipeError {
    RecipeError {
        kind: ErrorKind::InvalidValue,
        location: None,
        message: format!("--set {over}: {message}"),
        help: Some("write --set stage.NAME.KEY=VALUE with a stage and key of the recipe".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_typed_values_and_reject_bad_keys() {
        let over: Override = "stage.finetune.lr=1e-4".parse().unwrap();
        assert_eq!(over.key, ["stage", "finetune", "lr"]);
        let node = parse_value(&over).unwrap();
        assert!(matches!(node.value, NodeValue::Float(f) if f == 1e-4));
        let word: Override = "stage.finetune.model=vit-b".parse().unwrap();
        assert!(matches!(parse_value(&word).unwrap().value, NodeValue::Str(s) if s == "vit-b"));
        let list: Override = "matrix.lr=[1, 2]".parse().unwrap();
        assert!(matches!(parse_value(&list).unwrap().value, NodeValue::Array(a) if a.len() == 2));
        assert!("lr=1".parse::<Override>().is_err());
        assert!("stage.x".parse::<Override>().is_err());
        assert!("stage..x=1".parse::<Override>().is_err());
        let broken: Override = "stage.a.b=[1,".parse().unwrap();
        assert!(parse_value(&broken).is_err());
    }
}
