//! `[dataset.NAME]`: named datasets with a root folder, expanded per matrix combination when
//! their root or format uses a matrix variable.

use super::document::Node;
use super::error::{ErrorKind, RecipeError};
use super::experiment::optional;
use super::location::Location;
use super::matrix::{self, Combination};
use super::provenance;
use super::read::{self, Table};
use super::template::{self, Interpolated, Scope};
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A dataset a recipe reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetDef {
    /// Its name in the recipe (`potsdam`, or `potsdam@v1-v2` when its root varies with the
    /// matrix).
    pub name: String,
    /// Its root folder, absolute (relative roots resolve against the folder of the file that
    /// defined them).
    pub root: PathBuf,
    /// Its on-disk format, if given.
    pub format: Option<String>,
    /// Where its `root` is set.
    pub location: Location,
}

const KEYS: &[&str] = &["root", "format", "description"];

/// A dataset as written, before matrix expansion.
struct DatasetTemplate<'a> {
    name: &'a str,
    root: &'a Node,
    format: Option<&'a Node>,
}

/// The datasets of a recipe and, per matrix combination, each dataset name → its name in the
/// expanded recipe.
pub(crate) struct Datasets {
    /// The expanded datasets by name.
    pub defs: BTreeMap<String, DatasetDef>,
    /// Per combination (same order as `combinations`): name as written → expanded name.
    pub names: Vec<IndexMap<String, String>>,
    /// The names as written, in file order.
    pub declared: Vec<String>,
}

/// Reads `[dataset.*]` and expands it over `combinations`.
pub(crate) fn parse(
    node: Option<&Node>,
    combinations: &[Combination],
) -> Result<Datasets, RecipeError> {
    let mut datasets = Datasets {
        defs: BTreeMap::new(),
        names: vec![IndexMap::new(); combinations.len()],
        declared: Vec::new(),
    };
    let Some(node) = node else {
        return Ok(datasets);
    };
    let all = Table::new(node, "dataset")?;
    for (name, dataset_node) in all.entries {
        if !read::is_valid_name(name) {
            return Err(RecipeError::at(
                ErrorKind::BadName,
                &dataset_node.key_at,
                format!("invalid dataset name `{name}`"),
            )
            .help("use letters, digits, `_` and `-`"));
        }
        let table = Table::new(dataset_node, all.key(name))?;
        table.check_keys(KEYS)?;
        optional(&table, "description", |node, key| {
            read::string(node, key).map(drop)
        })?;
        let template = DatasetTemplate {
            name,
            root: table.require(
                "root",
                "add `root = \"path/to/data\"`, relative to this file",
            )?,
            format: table.get("format"),
        };
        let expanded: Vec<DatasetDef> = combinations
            .iter()
            .map(|combination| instantiate(&template, &table, combination))
            .collect::<Result<_, _>>()?;
        let varies = expanded
            .iter()
            .any(|def| def.root != expanded[0].root || def.format != expanded[0].format);
        for (index, (mut def, combination)) in expanded.into_iter().zip(combinations).enumerate() {
            if varies {
                def.name = matrix::expanded_name(name, combination);
            }
            datasets.names[index].insert(name.clone(), def.name.clone());
            datasets.defs.insert(def.name.clone(), def);
        }
        datasets.declared.push(name.clone());
    }
    Ok(datasets)
}

fn instantiate(
    template: &DatasetTemplate<'_>,
    table: &Table<'_>,
    combination: &Combination,
) -> Result<DatasetDef, RecipeError> {
    let root_key = table.key("root");
    let (root_node, _) = provenance::unwrap(template.root, &root_key)?;
    let root = fill(root_node, &root_key, combination)?;
    let folder = root_node.at.file.parent().unwrap_or(Path::new("/"));
    let format = template
        .format
        .map(|node| {
            let key = table.key("format");
            let (plain, _) = provenance::unwrap(node, &key)?;
            fill(plain, &key, combination)
        })
        .transpose()?;
    Ok(DatasetDef {
        name: template.name.to_string(),
        root: folder.join(root),
        format,
        location: root_node.at.clone(),
    })
}

/// The string in `node` with matrix variables filled in and braces unescaped.
fn fill(node: &Node, key: &str, combination: &Combination) -> Result<String, RecipeError> {
    let text = read::string(node, key)?;
    let no_datasets = IndexMap::new();
    let scope = Scope {
        vars: combination,
        out: false,
        inputs: &[],
        datasets: &no_datasets,
    };
    let interpolated = template::interpolate(text, &scope)
        .map_err(|problem| template::problem_error(problem, node, key, &scope))?;
    match interpolated {
        Interpolated::Typed(value) => Ok(matrix::MatrixValue::new(value).text),
        Interpolated::Text(escaped) => template::substitute(&escaped, &|_| None).map_err(|name| {
            template::problem_error(
                template::TemplateProblem::Undefined(name),
                node,
                key,
                &scope,
            )
        }),
    }
}
