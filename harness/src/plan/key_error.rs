//! Errors found while turning a stage into worker parameters, placed at the key they are about:
//! where the user wrote it (the recipe, a base it extends, or `--set`), else at the stage's
//! header with the key to add, and each with a `help:` line.

use std::fmt;

use crate::recipe::{ErrorKind, RecipeError, Stage};

/// A problem with one key of a stage, with its fix.
#[derive(Debug)]
pub struct KeyProblem {
    /// The key it is about.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl KeyProblem {
    /// A problem with `key` as an error to return.
    pub fn error(
        key: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> anyhow::Error {
        KeyProblem {
            key,
            message: message.into(),
            help: help.into(),
        }
        .into()
    }
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for KeyProblem {}

/// Words that start the fix inside a message (`…: set `window_size` to at most 4`).
const FIX_VERBS: [&str; 6] = ["set ", "use ", "remove ", "add ", "give ", "list "];

/// `error` (about `stage`) as a recipe error at the key it names. A [`KeyProblem`] names its
/// key and fix; any other message is placed at the first key in backticks that the stage
/// writes, or at the stage's header when it names a key the stage leaves out, and its help is
/// the fix the message ends with, else where the key is documented.
pub fn locate(stage: &Stage, error: &anyhow::Error) -> RecipeError {
    let prefix = format!("stage `{}`: ", stage.name);
    if let Some(problem) = error.downcast_ref::<KeyProblem>() {
        return at_key(stage, problem.key, format!("{prefix}{}", problem.message))
            .help(problem.help.clone());
    }
    let message = format!("{error:#}");
    let key = backticked_keys(&message)
        .find(|key| stage.key_locations.contains_key(*key))
        .or_else(|| backticked_keys(&message).next());
    let (message, help) = split_fix(&message);
    let help = help.unwrap_or_else(|| match key {
        Some(key) => format!(
            "`rsfm kinds {}` documents `{key}` and its valid values",
            stage.kind
        ),
        None => format!("`rsfm kinds {}` lists its parameters", stage.kind),
    });
    match key {
        Some(key) => at_key(stage, key, format!("{prefix}{message}")),
        None => RecipeError::at(
            ErrorKind::InvalidValue,
            &stage.location,
            format!("{prefix}{message}"),
        ),
    }
    .help(help)
}

/// An error about `key`: at the key where the stage writes it, else at its header.
fn at_key(stage: &Stage, key: &str, message: String) -> RecipeError {
    let kind = if stage.key_locations.contains_key(key) {
        ErrorKind::InvalidValue
    } else {
        ErrorKind::MissingKey
    };
    RecipeError::at(kind, stage.location_of(key), message)
}

/// The identifiers that start each backticked span of `message` (`task` in `` `task = "det"` ``).
fn backticked_keys(message: &str) -> impl Iterator<Item = &str> {
    message.split('`').skip(1).step_by(2).filter_map(|quoted| {
        let end = quoted
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(quoted.len());
        (end > 0).then(|| &quoted[..end])
    })
}

/// `message` split before the fix it ends with (`…: set `x` to 4`), if it ends with one.
fn split_fix(message: &str) -> (String, Option<String>) {
    let fix_at = message.match_indices(": ").map(|(at, _)| at).find(|&at| {
        FIX_VERBS
            .iter()
            .any(|verb| message[at + 2..].starts_with(verb))
    });
    match fix_at {
        Some(at) => (
            message[..at].to_string(),
            Some(message[at + 2..].to_string()),
        ),
        None => (message.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe;

    fn stage() -> (tempfile::TempDir, Stage) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.toml");
        let text = "[experiment]\nname = \"x\"\n\n[stage.a]\nkind = \"command\"\nargv = [\"true\"]\nseed = 3\n";
        std::fs::write(&file, text).unwrap();
        let stage = recipe::load(&file).unwrap().stages.remove(0);
        (dir, stage)
    }

    #[test]
    fn a_message_is_placed_at_the_first_key_it_names_that_the_stage_writes() {
        let (_dir, stage) = stage();
        let error = anyhow::anyhow!("`steps` and `seed` = 3 disagree: set `seed` to 0");
        let located = locate(&stage, &error);
        assert_eq!(
            located.to_string().lines().next().unwrap(),
            format!(
                "{}:7:1: error: stage `a`: `steps` and `seed` = 3 disagree",
                stage.location.file.display()
            )
        );
        assert_eq!(located.help.as_deref(), Some("set `seed` to 0"));
    }

    #[test]
    fn a_key_left_out_points_at_the_header_and_a_problem_keeps_its_help() {
        let (_dir, stage) = stage();
        let error = KeyProblem::error("dataset", "no data", "set `dataset = \"...\"`");
        let located = locate(&stage, &error);
        assert_eq!(located.kind, ErrorKind::MissingKey);
        assert_eq!(located.location.as_ref(), Some(&stage.location));
        assert_eq!(located.help.as_deref(), Some("set `dataset = \"...\"`"));
        let plain = locate(&stage, &anyhow::anyhow!("`window_size` must be positive"));
        assert_eq!(
            (plain.location.unwrap().line, plain.kind),
            (4, ErrorKind::MissingKey)
        );
        assert!(plain.help.unwrap().contains("rsfm kinds command"));
    }
}
