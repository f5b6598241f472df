//! `extends`: load a recipe file and the files it builds on, deep-merged into one tree.
//!
//! Tables merge key by key; arrays and every other value replace; of several bases the later
//! wins, and the extending file wins over all its bases. A value with provenance
//! (`{ value = .., source = .. }`) is replaced as a whole, never merged.

use super::document::{self, Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use super::location::Location;
use super::provenance;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Loads `path` (an absolute, canonical path) and its bases into one merged root table. Each
/// file is read and merged once, however many paths of `extends` reach it.
pub(crate) fn load_merged(path: &Path) -> Result<Node, RecipeError> {
    let mut chain = Vec::new();
    load_file(path, None, &mut chain, &mut HashMap::new())
}

/// Loads one file; `named_at` is the `extends` entry that names it, `chain` the files above it,
/// `loaded` the merged tree of every file loaded so far.
fn load_file(
    path: &Path,
    named_at: Option<&Location>,
    chain: &mut Vec<PathBuf>,
    loaded: &mut HashMap<PathBuf, Node>,
) -> Result<Node, RecipeError> {
    if let Some(done) = loaded.get(path) {
        return Ok(done.clone());
    }
    let text = fs_err::read_to_string(path).map_err(|error| RecipeError {
        kind: ErrorKind::Io,
        location: named_at.cloned(),
        message: format!("cannot read recipe: {error}"),
        help: None,
    })?;
    let mut root = document::parse(path, &text)?;
    let bases = take_extends(&mut root)?;
    chain.push(path.to_path_buf());
    let mut merged: Option<Node> = None;
    let mut listed: Vec<PathBuf> = Vec::new();
    for (entry, at) in bases {
        let base_path = resolve_base(path, &entry, &at, chain)?;
        if listed.contains(&base_path) {
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                &at,
                format!("`{entry}` is listed twice in this `extends`"),
            )
            .help("list each base once"));
        }
        listed.push(base_path.clone());
        let base = load_file(&base_path, Some(&at), chain, loaded)?;
        merged = Some(match merged {
            None => base,
            Some(mut so_far) => {
                merge(&mut so_far, base);
                so_far
            }
        });
    }
    chain.pop();
    let merged = match merged {
        None => root,
        Some(mut so_far) => {
            merge(&mut so_far, root);
            so_far
        }
    };
    loaded.insert(path.to_path_buf(), merged.clone());
    Ok(merged)
}

/// Removes the `extends` key from a root table and returns its entries with their locations.
fn take_extends(root: &mut Node) -> Result<Vec<(String, Location)>, RecipeError> {
    let NodeValue::Table(table) = &mut root.value else {
        return Ok(Vec::new());
    };
    let Some(extends) = table.shift_remove("extends") else {
        return Ok(Vec::new());
    };
    let expected = || {
        "write `extends = [\"base.toml\", ...]`, paths relative to this file's folder".to_string()
    };
    let NodeValue::Array(entries) = extends.value else {
        return Err(RecipeError::at(
            ErrorKind::WrongType,
            &extends.at,
            format!(
                "wrong type for `extends`: expected array of strings, found {}",
                extends.value.type_name()
            ),
        )
        .help(expected()));
    };
    entries
        .into_iter()
        .map(|entry| match entry.value {
            NodeValue::Str(text) => Ok((text, entry.at)),
            other => Err(RecipeError::at(
                ErrorKind::WrongType,
                &entry.at,
                format!(
                    "wrong type in `extends`: expected string, found {}",
                    other.type_name()
                ),
            )
            .help(expected())),
        })
        .collect()
}

/// The canonical path of base `entry` named in `file`, checked for existence and cycles.
fn resolve_base(
    file: &Path,
    entry: &str,
    at: &Location,
    chain: &[PathBuf],
) -> Result<PathBuf, RecipeError> {
    let folder = file.parent().unwrap_or(Path::new("."));
    let candidate = folder.join(entry);
    let canonical = candidate.canonicalize().map_err(|_| {
        RecipeError::at(
            ErrorKind::MissingExtends,
            at,
            format!(
                "extends file `{entry}` not found (looked for {})",
                candidate.display()
            ),
        )
        .help(format!(
            "paths in `extends` are relative to the folder of the file that names them ({})",
            folder.display()
        ))
    })?;
    if let Some(first) = chain.iter().position(|seen| *seen == canonical) {
        let cycle: Vec<String> = chain[first..]
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|path| path.display().to_string())
            .collect();
        return Err(RecipeError::at(
            ErrorKind::ExtendsCycle,
            at,
            format!("`extends` cycle: {}", cycle.join(" -> ")),
        )
        .help("remove one of these `extends` entries"));
    }
    Ok(canonical)
}

/// Merges `over` into `base`: tables merge key by key, anything else replaces.
pub(crate) fn merge(base: &mut Node, over: Node) {
    let mergeable = is_plain_table(&base.value) && is_plain_table(&over.value);
    if !mergeable {
        *base = over;
        return;
    }
    let (NodeValue::Table(base_table), NodeValue::Table(over_table)) =
        (&mut base.value, over.value)
    else {
        return;
    };
    for (key, value) in over_table {
        match base_table.get_mut(&key) {
            Some(existing) => merge(existing, value),
            None => {
                base_table.insert(key, value);
            }
        }
    }
    base.at = over.at;
    base.key_at = over.key_at;
}

fn is_plain_table(value: &NodeValue) -> bool {
    matches!(value, NodeValue::Table(table) if !provenance::looks_like_provenance(table))
}
