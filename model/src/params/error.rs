//! [`ParamError`]: what is wrong with one key of a stage's parameters, and how to fix it. The
//! recipe loader places it at the key (the caret) and prints its help; neither depends on the
//! wording of the message.

use std::fmt;

/// A problem with one key of a stage's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The key it is about, as recipes spell it.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, where the check knows; else the loader points at the key's docs.
    pub help: Option<String>,
}

impl ParamError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ParamError {
        ParamError {
            key: key.into(),
            message: message.into(),
            help: None,
        }
    }

    /// The same problem with its fix.
    pub fn help(mut self, help: impl Into<String>) -> ParamError {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.help {
            Some(help) => write!(f, "{}: {help}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParamError {}

/// Returns a [`ParamError`] about `key` (as an `anyhow::Error` or a `ParamError`, whichever the
/// function returns) unless `cond` holds; `help = …` gives the fix.
///
/// ```text
/// ensure_param!(self.steps > 0, "steps", "`steps` must be positive");
/// ensure_param!(ok, "window_size", help = "set `window_size` to at most 4", "`window_size` {w} is too large");
/// ```
#[macro_export]
macro_rules! ensure_param {
    ($cond:expr, $key:expr, help = $help:expr, $($message:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err($crate::params::ParamError::new($key, format!($($message)+))
                .help($help)
                .into());
        }
    };
    ($cond:expr, $key:expr, $($message:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err($crate::params::ParamError::new($key, format!($($message)+)).into());
        }
    };
}
