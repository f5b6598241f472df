//! Recipe arguments on the command line: a file is itself, a folder stands for every recipe
//! directly in it (the `*.toml` files with an `[experiment]` table, in name order), so
//! `rsfm plan recipes/paper` plans the whole study while its `reported.toml` and bases without
//! an experiment are left out.

use std::path::{Path, PathBuf};

use crate::error::BadInput;

/// The recipe files that `args` name, in order.
pub fn expand(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        if !arg.is_dir() {
            files.push(arg.clone());
            continue;
        }
        let found = recipes_in(arg)?;
        if found.is_empty() {
            return Err(BadInput::msg(format!(
                "{}: no recipe in this folder (a recipe is a .toml file with an [experiment] table)",
                arg.display()
            )));
        }
        files.extend(found);
    }
    Ok(files)
}

/// The recipes directly in `dir`, in name order.
fn recipes_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml")
            && path.is_file()
            && declares_experiment(&path)?
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether the TOML file at `path` has a top-level `[experiment]` table.
fn declares_experiment(path: &Path) -> anyhow::Result<bool> {
    let text = fs_err::read_to_string(path)?;
    Ok(text
        .lines()
        .any(|line| line.trim_start().starts_with("[experiment]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_expands_to_its_recipes_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), "[experiment]\nname = \"b\"\n").unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "extends = []\n[experiment]\nname = \"a\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("reported.toml"), "[[value]]\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "[experiment]").unwrap();
        let files = expand(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.toml", "b.toml"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(expand(&[empty.path().to_path_buf()]).is_err());
    }
}
