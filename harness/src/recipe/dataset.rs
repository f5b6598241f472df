//! `[dataset.NAME]`: named datasets with a root folder, expanded per matrix combination when
//! their root or format uses a matrix variable.

use super::document::{Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use super::experiment::optional;
use super::location::Location;
use super::matrix::{self, Axes, Combination};
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

/// The datasets of a recipe, expanded over the matrix axes their root or format uses.
pub(crate) struct Datasets {
    /// The expanded datasets by name.
    pub defs: BTreeMap<String, DatasetDef>,
    /// Dataset name as written → the matrix axes it varies over, in declaration order.
    pub axes: IndexMap<String, Vec<String>>,
}

impl Datasets {
    /// The name in the expanded recipe of dataset `name` read at `combination`.
    pub(crate) fn expanded_name(&self, name: &str, combination: &Combination) -> String {
        let axes = self.axes.get(name).map(Vec::as_slice).unwrap_or_default();
        matrix::expanded_name(name, &matrix::project(combination, axes))
    }
}

/// Reads `[dataset.*]` and expands each dataset over the matrix axes it uses.
pub(crate) fn parse(node: Option<&Node>, axes: &Axes) -> Result<Datasets, RecipeError> {
    let mut datasets = Datasets {
        defs: BTreeMap::new(),
        axes: IndexMap::new(),
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
        let used = used_axes(&template, axes);
        let (count, described) = matrix::combination_count(axes, &used);
        let limit = matrix::max_stages();
        if count > limit {
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                &dataset_node.key_at,
                format!(
                    "dataset `{name}` expands to {count} datasets (axes {described}), over the limit of {limit}"
                ),
            )
            .help("use fewer matrix values in its `root` or `format` (or raise RSFM_MAX_STAGES)"));
        }
        for combination in matrix::combinations(axes, &used) {
            let mut def = instantiate(&template, &table, &combination)?;
            def.name = matrix::expanded_name(name, &combination);
            datasets.defs.insert(def.name.clone(), def);
        }
        datasets.axes.insert(name.clone(), used);
    }
    Ok(datasets)
}

/// The axes whose variables appear in the dataset's root or format, in declaration order.
fn used_axes(template: &DatasetTemplate<'_>, axes: &Axes) -> Vec<String> {
    let mut names = Vec::new();
    for node in std::iter::once(template.root).chain(template.format) {
        let plain = match &node.value {
            NodeValue::Table(table) => table.get("value").unwrap_or(node),
            _ => node,
        };
        if let NodeValue::Str(text) = &plain.value {
            names.extend(template::placeholders(text));
        }
    }
    axes.keys()
        .filter(|axis| names.contains(&axis.as_str()))
        .cloned()
        .collect()
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
        unselected: &[],
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
