//! Errors found while turning a stage into worker parameters, placed at the key they are about:
//! where the user wrote it (the recipe, a base it extends, or `--set`), else at the stage's
//! header with the key to add, and each with a `help:` line.

use rsfm_model::params::ParamError;

use crate::recipe::{ErrorKind, RecipeError, Stage};

/// A problem with `key`, with its fix, as an error to return.
pub fn problem(
    key: &'static str,
    message: impl Into<String>,
    help: impl Into<String>,
) -> anyhow::Error {
    ParamError::new(key, message).help(help).into()
}

/// `error` (about `stage`) as a recipe error. A [`ParamError`] is placed at its key (where the
/// stage writes it, else at the stage's header) with its help, or a pointer to the key's docs;
/// any other error is placed at the stage's header. The message's wording plays no part.
pub fn locate(stage: &Stage, error: &anyhow::Error) -> RecipeError {
    let prefix = format!("stage `{}`: ", stage.name);
    match error.downcast_ref::<ParamError>() {
        Some(problem) => {
            let help = problem.help.clone().unwrap_or_else(|| {
                format!(
                    "`rsfm kinds {}` documents `{}` and its valid values",
                    stage.kind, problem.key
                )
            });
            at_key(stage, &problem.key, format!("{prefix}{}", problem.message)).help(help)
        }
        None => RecipeError::at(
            ErrorKind::InvalidValue,
            &stage.location,
            format!("{prefix}{error:#}"),
        )
        .help(format!("`rsfm kinds {}` lists its parameters", stage.kind)),
    }
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
    fn a_param_error_is_placed_at_its_key_whatever_its_message_says() {
        let (_dir, stage) = stage();
        // The message names other keys first, and a reworded one names none: the caret follows
        // the error's key, not the words.
        for message in [
            "`steps` and `argv` disagree with `seed` = 3",
            "this value is out of range",
        ] {
            let error: anyhow::Error = ParamError::new("seed", message).help("set it to 0").into();
            let located = locate(&stage, &error);
            assert_eq!(
                located.to_string().lines().next().unwrap(),
                format!(
                    "{}:7:1: error: stage `a`: {message}",
                    stage.location.file.display()
                )
            );
            assert_eq!(located.help.as_deref(), Some("set it to 0"));
        }
    }

    #[test]
    fn a_key_left_out_points_at_the_header_and_other_errors_stay_there() {
        let (_dir, stage) = stage();
        let error = problem("dataset", "no data", "set `dataset = \"...\"`");
        let located = locate(&stage, &error);
        assert_eq!(located.kind, ErrorKind::MissingKey);
        assert_eq!(located.location.as_ref(), Some(&stage.location));
        assert_eq!(located.help.as_deref(), Some("set `dataset = \"...\"`"));
        let without_help: anyhow::Error = ParamError::new("seed", "too large").into();
        let located = locate(&stage, &without_help);
        assert_eq!(located.location.as_ref().map(|l| l.line), Some(7));
        assert!(located.help.unwrap().contains("documents `seed`"));
        // A plain message naming a key in backticks is not placed at that key.
        let plain = locate(&stage, &anyhow::anyhow!("`seed` must be positive"));
        assert_eq!(
            (plain.location.unwrap().line, plain.kind),
            (4, ErrorKind::InvalidValue)
        );
        assert!(plain.help.unwrap().contains("rsfm kinds command"));
    }
}
