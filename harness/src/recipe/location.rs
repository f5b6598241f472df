//! Positions in recipe files: `file:line:col`, computed from byte offsets.

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a recipe file (line and column start at 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The recipe file.
    pub file: PathBuf,
    /// Line number, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub col: usize,
}

impl Location {
    /// The start of `file`.
    pub fn start_of(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Location {
    /// `file:line:col`; a value set on the command line reads `cli (--set KEY=VALUE)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if super::overrides::is_cli_origin(self) {
            return write!(f, "{}", self.file.display());
        }
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Turns byte offsets of one file's text into [`Location`]s.
pub(crate) struct LineIndex<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes the lines of `text`, the content of `file`.
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file,
            text,
            line_starts,
        }
    }

    /// The location of byte `offset` (clamped to the text).
    pub(crate) fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |prefix| prefix.chars().count())
            + 1;
        Location {
            file: self.file.to_path_buf(),
            line,
            col,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_char_columns() {
        let text = "a = 1\nbé = 2\n";
        let index = LineIndex::new(Path::new("r.toml"), text);
        assert_eq!(index.locate(0).to_string(), "r.toml:1:1");
        assert_eq!(index.locate(4).to_string(), "r.toml:1:5");
        assert_eq!(index.locate(6).to_string(), "r.toml:2:1");
        // `é` is two bytes but one column.
        assert_eq!(index.locate(9).to_string(), "r.toml:2:3");
    }
}
