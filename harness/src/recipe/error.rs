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

/// How many errors [`RecipeErrors`] shows before it only counts the rest.
const SHOWN_ERRORS: usize = 20;

/// Every error found in one or more recipes, so that one run reports them all; shown in file
/// order. Never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecipeErrors {
    errors: Vec<RecipeError>,
}

impl RecipeErrors {
    /// The errors, in the order found.
    pub fn as_slice(&self) -> &[RecipeError] {
        &self.errors
    }

    /// The first error found.
    pub fn first(&self) -> &RecipeError {
        &self.errors[0]
    }

    /// Whether none was found.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Adds `error`, unless the same message at the same place is already there (a stage
    /// expanded over a matrix repeats the errors of its table).
    pub fn push(&mut self, error: RecipeError) {
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    /// Adds every error of `other`.
    pub fn extend(&mut self, other: RecipeErrors) {
        for error in other.errors {
            self.push(error);
        }
    }

    /// The value of `result`, or `None` with its error kept.
    pub(crate) fn keep<T>(&mut self, result: Result<T, RecipeError>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// `value` when no error was found, else the errors.
    pub fn or_value<T>(self, value: T) -> Result<T, RecipeErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<RecipeError> for RecipeErrors {
    fn from(error: RecipeError) -> Self {
        Self {
            errors: vec![error],
        }
    }
}

impl fmt::Display for RecipeErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut in_file_order: Vec<&RecipeError> = self.errors.iter().collect();
        in_file_order.sort_by_key(|error| {
            error
                .location
                .as_ref()
                .map(|at| (at.file.clone(), at.line, at.col))
        });
        for (index, error) in in_file_order.into_iter().take(SHOWN_ERRORS).enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        let hidden = self.errors.len().saturating_sub(SHOWN_ERRORS);
        if hidden > 0 {
            write!(f, "\nand {hidden} more errors")?;
        }
        if self.errors.len() > 1 {
            write!(
                f,
                "\n{} errors found; fix them and run again",
                self.errors.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RecipeErrors {}

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

    #[test]
    fn collected_errors_show_each_once_up_to_the_limit_then_count_the_rest() {
        let error = |line| {
            let location = Location {
                file: Path::new("r.toml").to_path_buf(),
                line,
                col: 1,
            };
            RecipeError::at(ErrorKind::InvalidValue, &location, "bad").help("fix it")
        };
        let mut errors = RecipeErrors::default();
        errors.push(error(1));
        errors.push(error(1));
        assert_eq!(errors.as_slice().len(), 1, "a repeated error is kept once");
        assert_eq!(errors.to_string(), error(1).to_string());
        for line in 2..=25 {
            errors.push(error(line));
        }
        let shown = errors.to_string();
        assert!(shown.contains("r.toml:20:1: error: bad"), "{shown}");
        assert!(!shown.contains("r.toml:21:1"), "{shown}");
        assert!(
            shown.ends_with("and 5 more errors\n25 errors found; fix them and run again"),
            "{shown}"
        );
    }
}
