//! `[experiment]`: the name, description and default seed of a recipe.

use super::document::Node;
use super::error::{ErrorKind, RecipeError};
use super::provenance;
use super::read::{self, Table};
use serde::Serialize;

/// The experiment a recipe describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    /// Its name (required).
    pub name: String,
    /// A free-text description.
    pub description: Option<String>,
    /// The seed of every stage that sets none (default 0).
    pub seed: u64,
}

const KEYS: &[&str] = &["name", "description", "seed"];

/// Reads `[experiment]` from the root table `top`.
pub(crate) fn parse(top: &Table<'_>) -> Result<Experiment, RecipeError> {
    let node = top.get("experiment").ok_or_else(|| {
        RecipeError::at(
            ErrorKind::MissingKey,
            &top.node.at,
            "missing table [experiment]",
        )
        .help("add `[experiment]` with `name = \"...\"`")
    })?;
    let table = Table::new(node, "experiment")?;
    table.check_keys(KEYS)?;
    let name_node = table.require("name", "add `name = \"...\"` to [experiment]")?;
    let (name_node, _) = provenance::unwrap(name_node, "experiment.name")?;
    let name = read::string(name_node, "experiment.name")?.to_string();
    if name.trim().is_empty() {
        return Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &name_node.at,
            "`experiment.name` is empty",
        )
        .help("give the experiment a name"));
    }
    let description = optional(&table, "description", |node, key| {
        read::string(node, key).map(str::to_string)
    })?;
    let seed = optional(&table, "seed", read::count)?.unwrap_or(0);
    Ok(Experiment {
        name,
        description,
        seed,
    })
}

/// Reads `key` of `table` with `read` if present, provenance unwrapped.
pub(crate) fn optional<T>(
    table: &Table<'_>,
    key: &str,
    read: impl Fn(&Node, &str) -> Result<T, RecipeError>,
) -> Result<Option<T>, RecipeError> {
    table
        .get(key)
        .map(|node| {
            let dotted = table.key(key);
            let (plain, _) = provenance::unwrap(node, &dotted)?;
            read(plain, &dotted)
        })
        .transpose()
}
