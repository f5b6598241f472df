//! The one error type of recipe loading: where, what, and how to fix it.

use super::location::Location;
use std::fmt;

/// What went wrong while loading a recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// A key that the table does not allow.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong type.
    WrongType,
    /// A value of the right type that is out of range or malformed.
    InvalidValue,
    /// A provenance `source` with an unknown prefix, or a malformed provenance table.
    BadProvenance,
    /// An `extends` entry names a file that does not exist.
    MissingExtends,
    /// Files extend each other in a cycle.
    ExtendsCycle,
    /// A `{name}` placeholder that nothing defines.
    UndefinedVariable,
    /// A matrix axis with no values.
    EmptyMatrixAxis,
    /// A stage, dataset or axis name that is malformed or used twice.
    BadName,
    /// `needs` names a stage that does not exist.
    UnknownNeeds,
    /// `datasets` names a dataset that is not defined.
    UnknownDataset,
    /// Stages need each other in a cycle.
    NeedsCycle,
}

/// An error in a recipe, with the `file:line:col` it refers to and a hint to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeError {
    /// The category of the error.
    pub kind: ErrorKind,
    /// Where the error is (absent only when the file itself cannot be read).
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
    /// How to fix it: allowed keys, expected type, valid values.
    pub help: Option<String>,
}

impl RecipeError {
    /// An error at `location`.
    pub(crate) fn at(kind: ErrorKind, location: &Location, message: impl Into<String>) -> Self {
        Self {
            kind,
            location: Some(location.clone()),
            message: message.into(),
            help: None,
        }
    }

    /// Adds the fix to show under the message.
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "error: {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RecipeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn display_names_location_message_and_help() {
        let location = Location {
            file: Path::new("r.toml").to_path_buf(),
            line: 12,
            col: 5,
        };
        let error = RecipeError::at(ErrorKind::UnknownKey, &location, "unknown key `lrr`")
            .help("allowed keys: `lr`");
        assert_eq!(
            error.to_string(),
            "r.toml:12:5: error: unknown key `lrr`\n  help: allowed keys: `lr`"
        );
    }
}
