//! The one classification of the errors a user sees: bad input (exit 2) or a failure (exit 1).
//! `cli::main` reads it; nothing else picks an exit code.

use std::error::Error;
use std::fmt;

use crate::recipe::{RecipeError, RecipeErrors};

/// An error caused by the user's input (a recipe, an argument, a data file): `rsfm` exits 2.
/// It wraps the error it marks and keeps that error's chain of causes.
#[derive(Debug)]
pub struct BadInput(anyhow::Error);

impl BadInput {
    /// A bad-input error saying `message`.
    pub fn msg(message: impl fmt::Display) -> anyhow::Error {
        BadInput(anyhow::Error::msg(message.to_string())).into()
    }

    /// `error`, marked as bad input.
    pub fn wrap(error: impl Into<anyhow::Error>) -> anyhow::Error {
        BadInput(error.into()).into()
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for BadInput {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// Whether `error` comes from the user's input: a [`BadInput`], a [`RecipeError`] or
/// [`RecipeErrors`] anywhere in its chain.
pub fn is_bad_input(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<BadInput>() || cause.is::<RecipeError>() || cause.is::<RecipeErrors>()
    })
}

/// Whether `error` is a write to a closed pipe (`rsfm … | head -1`): not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The whole message of `error`, once: recipe errors already read
/// `file:line:col: error: … help: …`; anything else gets an `error: ` prefix and its causes.
pub fn render(error: &anyhow::Error) -> String {
    let top = error
        .downcast_ref::<BadInput>()
        .map_or(error, |marked| &marked.0);
    if let Some(recipe_errors) = top.downcast_ref::<RecipeErrors>() {
        return recipe_errors.to_string();
    }
    match top.downcast_ref::<RecipeError>() {
        Some(recipe_error) => recipe_error.to_string(),
        None => format!("error: {error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_keeps_the_chain_and_is_found_under_context() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = BadInput::wrap(anyhow::Error::new(io).context("reading data/a.png"))
            .context("stage `x`");
        assert!(is_bad_input(&error));
        assert_eq!(
            render(&error),
            "error: stage `x`: reading data/a.png: no such file"
        );
        assert!(!is_bad_input(&anyhow::anyhow!("disk full")));
    }

    #[test]
    fn a_closed_pipe_is_recognised() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(pipe).context("writing")));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
