//! `[stage.NAME]`: stages as written, and their expansion into one [`Stage`] per matrix
//! combination with typed, interpolated parameters.

use super::dataset::Datasets;
use super::document::{Node, NodeValue};
use super::error::{ErrorKind, RecipeError, RecipeErrors};
use super::kinds::{ParamType, StageKind};
use super::location::Location;
use super::matrix::{self, Axes, Combination, MatrixValue};
use super::provenance::{self, quoted_list};
use super::read::{self, wrong_type, Table};
use super::resources::{parse_time_limit, Resources, TIME_LIMIT_FORMATS};
use super::template::{self, Interpolated, Scope};
use indexmap::IndexMap;
use rsfm_model::params::Field;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One stage of the expanded recipe: a base stage at one matrix combination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// Its name: `base@v1-v2`, or `base` without a matrix.
    pub name: String,
    /// The stage name as written in the recipe.
    pub base: String,
    /// Matrix variable → value as text, in axis order.
    pub matrix: IndexMap<String, String>,
    /// What it does.
    pub kind: StageKind,
    /// Expanded names of the stages it needs, in the order written.
    pub needs: Vec<String>,
    /// Kind-specific parameters: provenance stripped, matrix variables filled in, other
    /// placeholders and `{{`/`}}` escapes left for the executor.
    pub params: Map<String, Value>,
    /// Parameter (or stage key) → provenance source, for values that carry one.
    pub sources: BTreeMap<String, String>,
    /// Every key written in the stage's table → where it is written (the recipe, a base it
    /// extends, or `--set`), so that later checks point at the key.
    #[serde(skip)]
    pub key_locations: BTreeMap<String, Location>,
    /// Names (keys of `Recipe::datasets`) of the datasets it reads.
    pub datasets: Vec<String>,
    /// What it asks of the machine.
    pub resources: Resources,
    /// How often a failed run is retried.
    pub retries: u32,
    /// Seconds to wait before a retry.
    pub retry_backoff_s: f64,
    /// Its seed: its own, or the experiment's.
    pub seed: u64,
    /// A free-text description.
    pub description: Option<String>,
    /// Where its table starts.
    pub location: Location,
}

impl Stage {
    /// Where `key` is written in the stage's table, else the table's header (for a key the
    /// stage leaves out).
    pub fn location_of(&self, key: &str) -> &Location {
        self.key_locations.get(key).unwrap_or(&self.location)
    }
}

/// Keys every stage accepts besides its kind's parameters.
pub const COMMON_KEYS: &[&str] = &[
    "kind",
    "matrix",
    "needs",
    "datasets",
    "description",
    "gpus",
    "processes",
    "nodes",
    "gpu_mem_gb",
    "time_limit",
    "retries",
    "retry_backoff_s",
    "seed",
];

/// A stage as written, checked, before matrix expansion.
pub(crate) struct StageTemplate<'a> {
    /// Its base name.
    pub name: String,
    table: Table<'a>,
    kind: StageKind,
    /// Its `needs` entries with their locations.
    pub needs: Vec<(String, Location)>,
    /// The matrix axes it expands over, in declaration order.
    pub axes: Vec<String>,
    datasets: Vec<(String, Location)>,
    description: Option<String>,
}

impl StageTemplate<'_> {
    /// Where its table starts (its `[stage.NAME]` header).
    pub fn location(&self) -> &Location {
        &self.table.node.key_at
    }
}

/// A stage as written with the errors found in its table (its values are checked on expansion
/// all the same), or, when it cannot be read at all, its name and why.
pub(crate) type ParsedTemplate<'a> =
    Result<(StageTemplate<'a>, RecipeErrors), (String, RecipeErrors)>;

/// Reads and checks every `[stage.*]` table, in file order; a stage with errors does not stop
/// the others from being checked.
pub(crate) fn parse_templates<'a>(
    node: Option<&'a Node>,
    axes: &Axes,
    datasets: &Datasets,
) -> Result<Vec<ParsedTemplate<'a>>, RecipeError> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let all = Table::new(node, "stage")?;
    Ok(all
        .entries
        .iter()
        .map(|(name, stage_node)| {
            parse_template(&all, name, stage_node, axes, datasets)
                .map_err(|errors| (name.clone(), errors))
        })
        .collect())
}

fn parse_template<'a>(
    all: &Table<'a>,
    name: &str,
    node: &'a Node,
    axes: &Axes,
    datasets: &Datasets,
) -> ParsedTemplateOf<'a> {
    let declared_datasets: Vec<&String> = datasets.axes.keys().collect();
    if !read::is_valid_name(name) {
        return Err(RecipeError::at(
            ErrorKind::BadName,
            &node.key_at,
            format!("invalid stage name `{name}`"),
        )
        .help("use letters, digits, `_` and `-` (`@` is reserved for matrix suffixes)")
        .into());
    }
    let table = Table::new(node, all.key(name))?;
    let kinds: Vec<&str> = StageKind::ALL.iter().map(|kind| kind.as_str()).collect();
    let kind_node = table.require(
        "kind",
        &format!("add `kind = \"...\"`, one of {}", quoted_list(&kinds)),
    )?;
    let (kind_node, _) = provenance::unwrap(kind_node, &table.key("kind"))?;
    let kind_text = read::string(kind_node, &table.key("kind"))?;
    let kind = StageKind::parse(kind_text).ok_or_else(|| {
        RecipeError::at(
            ErrorKind::InvalidValue,
            &kind_node.at,
            format!("unknown stage kind `{kind_text}` in {}", table.header()),
        )
        .help(format!("kinds: {}", quoted_list(&kinds)))
    })?;
    let allowed: Vec<&str> = COMMON_KEYS
        .iter()
        .copied()
        .chain(kind.params().iter().map(|spec| spec.name))
        .collect();
    let mut errors = RecipeErrors::default();
    for error in table.unknown_keys(&allowed) {
        errors.push(error);
    }
    for spec in kind.params().iter().filter(|spec| spec.required()) {
        errors.keep(table.require(
            spec.name,
            &format!(
                "add `{} = ...` to {}: `{}` stages need it ({}: {})",
                spec.name,
                table.header(),
                kind,
                spec.ty.describe(),
                spec.doc
            ),
        ));
    }
    let needs = errors
        .keep(string_list(&table, "needs"))
        .unwrap_or_default();
    let stage_axes = errors.keep(selected_axes(&table, axes)).unwrap_or_default();
    let read = errors
        .keep(string_list(&table, "datasets"))
        .unwrap_or_default();
    for (dataset, at) in &read {
        if !datasets.axes.contains_key(dataset) {
            errors.push(
                RecipeError::at(
                    ErrorKind::UnknownDataset,
                    at,
                    format!("stage `{name}` reads dataset `{dataset}`, which is not defined"),
                )
                .help(if declared_datasets.is_empty() {
                    format!("define it: `[dataset.{dataset}]` with `root = \"...\"`")
                } else {
                    format!(
                        "define `[dataset.{dataset}]`, or use one of {}",
                        quoted_list(&declared_datasets)
                    )
                }),
            );
            continue;
        }
        let missing: Vec<&String> = datasets.axes[dataset]
            .iter()
            .filter(|axis| !stage_axes.contains(axis))
            .collect();
        if !missing.is_empty() {
            errors.push(axis_mismatch(name, "dataset", dataset, &missing, at));
        }
    }
    let description = errors
        .keep(
            table
                .get("description")
                .map(|node| {
                    let key = table.key("description");
                    let (plain, _) = provenance::unwrap(node, &key)?;
                    read::string(plain, &key).map(str::to_string)
                })
                .transpose(),
        )
        .flatten();
    let mut read = read;
    read.retain(|(dataset, _)| datasets.axes.contains_key(dataset));
    Ok((
        StageTemplate {
            name: name.to_string(),
            table,
            kind,
            needs,
            axes: stage_axes,
            datasets: read,
            description,
        },
        errors,
    ))
}

/// What reading one stage table gives: the template and its errors, or only errors.
type ParsedTemplateOf<'a> = Result<(StageTemplate<'a>, RecipeErrors), RecipeErrors>;

/// The axes listed in the stage's `matrix` key (all axes without one), in declaration order.
fn selected_axes(table: &Table<'_>, axes: &Axes) -> Result<Vec<String>, RecipeError> {
    let listed = string_list(table, "matrix")?;
    if table.get("matrix").is_none() {
        return Ok(axes.keys().cloned().collect());
    }
    for (axis, at) in &listed {
        if !axes.contains_key(axis) {
            let names: Vec<&String> = axes.keys().collect();
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                at,
                format!("`{axis}` in `{}` is not a matrix axis", table.key("matrix")),
            )
            .help(if names.is_empty() {
                "there is no [matrix]: remove this `matrix` list".to_string()
            } else {
                format!("matrix axes: {}", quoted_list(&names))
            }));
        }
    }
    Ok(axes
        .keys()
        .filter(|axis| listed.iter().any(|(name, _)| name == *axis))
        .cloned()
        .collect())
}

/// A stage reads a stage or dataset that varies over axes the stage does not expand over.
fn axis_mismatch(
    stage: &str,
    what: &str,
    other: &str,
    missing: &[&String],
    at: &Location,
) -> RecipeError {
    RecipeError::at(
        ErrorKind::InvalidValue,
        at,
        format!(
            "stage `{stage}` uses {what} `{other}`, which varies over the matrix axes {} that `{stage}` does not expand over",
            quoted_list(missing)
        ),
    )
    .help(format!(
        "add {} to `stage.{stage}.matrix` (or drop that list to expand over every axis)",
        quoted_list(missing)
    ))
}

/// Checks that every stage expands over all the axes of the stages it needs.
pub(crate) fn check_needed_axes(templates: &[StageTemplate<'_>]) -> Result<(), RecipeError> {
    for template in templates {
        for (need, at) in &template.needs {
            let Some(needed) = templates.iter().find(|other| other.name == *need) else {
                continue;
            };
            let missing: Vec<&String> = needed
                .axes
                .iter()
                .filter(|axis| !template.axes.contains(axis))
                .collect();
            if !missing.is_empty() {
                return Err(axis_mismatch(&template.name, "stage", need, &missing, at));
            }
        }
    }
    Ok(())
}

fn string_list(table: &Table<'_>, key: &str) -> Result<Vec<(String, Location)>, RecipeError> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(node) => {
            let dotted = table.key(key);
            let (plain, _) = provenance::unwrap(node, &dotted)?;
            read::strings(plain, &dotted)
        }
    }
}

/// The context a stage expands in.
pub(crate) struct Expansion<'a> {
    /// The matrix axes.
    pub axes: &'a Axes,
    /// Every base stage's axes, to name the stages it needs.
    pub stage_axes: &'a IndexMap<String, Vec<String>>,
    /// The datasets, to name the ones it reads.
    pub datasets: &'a Datasets,
    /// The experiment's seed, for stages without their own.
    pub experiment_seed: u64,
}

/// The stage `template` at `combination` (of the axes it expands over), or every error in
/// its values.
pub(crate) fn expand(
    template: &StageTemplate<'_>,
    combination: &Combination,
    context: &Expansion<'_>,
) -> Result<Stage, RecipeErrors> {
    let needs: Vec<String> = template
        .needs
        .iter()
        .map(|(need, _)| need.clone())
        .collect();
    let read_datasets: IndexMap<String, String> = template
        .datasets
        .iter()
        .map(|(dataset, _)| {
            let expanded = context.datasets.expanded_name(dataset, combination);
            (dataset.clone(), expanded)
        })
        .collect();
    let unselected: Vec<String> = context
        .axes
        .keys()
        .filter(|axis| !template.axes.contains(axis))
        .cloned()
        .collect();
    let scope = Scope {
        vars: combination,
        out: true,
        inputs: &needs,
        datasets: &read_datasets,
        unselected: &unselected,
    };
    let mut fields = Fields {
        table: &template.table,
        scope: &scope,
        sources: BTreeMap::new(),
    };
    let mut errors = RecipeErrors::default();
    let mut params = Map::new();
    for spec in template.kind.params() {
        if let Some(Some(value)) = errors.keep(fields.param(spec)) {
            params.insert(spec.name.to_string(), value);
        }
    }
    // A missing required key was reported when the stage's table was read: checking the
    // parameters again would only say it a second time.
    let required_present = template
        .kind
        .params()
        .iter()
        .filter(|spec| spec.required())
        .all(|spec| params.contains_key(spec.name));
    if errors.is_empty() && required_present {
        errors.keep(template.kind.check(&params).map_err(|problem| {
            RecipeError::at(
                ErrorKind::InvalidValue,
                &template.table.node.key_at,
                format!("{}: {problem}", template.table.header()),
            )
            .help(format!(
                "`rsfm kinds {}` lists its parameters",
                template.kind
            ))
        }));
    }
    let gpus = errors
        .keep(fields.converted("gpus", ParamType::Count, |v, n, _| to_u32(v, n, "gpus")))
        .flatten()
        .unwrap_or(0);
    let processes = errors
        .keep(
            fields.converted("processes", ParamType::Count, |v, n, key| {
                data_parallel_processes(v, n, gpus, key)
            }),
        )
        .flatten();
    let nodes = errors
        .keep(fields.converted("nodes", ParamType::Count, at_least_one))
        .flatten();
    let gpu_mem_gb = errors
        .keep(fields.converted("gpu_mem_gb", ParamType::Float, positive))
        .flatten();
    let time_limit = errors
        .keep(fields.converted("time_limit", ParamType::Str, |v, n, key| {
            let text = v.as_str().unwrap_or_default();
            parse_time_limit(text).ok_or_else(|| {
                RecipeError::at(
                    ErrorKind::InvalidValue,
                    &n.at,
                    format!("invalid `{key}` \"{text}\""),
                )
                .help(format!("write a positive duration: {TIME_LIMIT_FORMATS}"))
            })
        }))
        .flatten();
    let resources = Resources {
        gpus,
        processes,
        nodes,
        gpu_mem_gb,
        time_limit,
    };
    let retries = errors
        .keep(fields.converted("retries", ParamType::Count, |v, n, _| {
            to_u32(v, n, "retries")
        }))
        .flatten()
        .unwrap_or(0);
    let retry_backoff_s = errors
        .keep(fields.converted("retry_backoff_s", ParamType::Float, non_negative))
        .flatten()
        .unwrap_or(0.0);
    let seed = errors
        .keep(fields.scalar("seed", ParamType::Count))
        .flatten()
        .map_or(context.experiment_seed, |(value, _)| {
            value.as_u64().unwrap_or_default()
        });
    errors.or_value(Stage {
        name: matrix::expanded_name(&template.name, combination),
        base: template.name.clone(),
        matrix: combination
            .iter()
            .map(|(name, value)| (name.clone(), value.text.clone()))
            .collect(),
        kind: template.kind,
        needs: needs
            .iter()
            .map(|need| {
                let need_axes = context.stage_axes.get(need).map(Vec::as_slice);
                let projected = matrix::project(combination, need_axes.unwrap_or_default());
                matrix::expanded_name(need, &projected)
            })
            .collect(),
        params,
        sources: fields.sources,
        key_locations: template
            .table
            .entries
            .iter()
            .map(|(key, node)| (key.clone(), node.key_at.clone()))
            .collect(),
        datasets: read_datasets.into_values().collect(),
        resources,
        retries,
        retry_backoff_s,
        seed,
        description: template.description.clone(),
        location: template.table.node.key_at.clone(),
    })
}

/// Reads typed, interpolated values from one stage table at one combination.
struct Fields<'t, 's> {
    table: &'t Table<'t>,
    scope: &'s Scope<'s>,
    sources: BTreeMap<String, String>,
}

impl<'t> Fields<'t, '_> {
    fn key(&self, key: &str) -> String {
        self.table.key(key)
    }

    /// The value of a kind-specific parameter, if set.
    fn param(&mut self, spec: &Field) -> Result<Option<Value>, RecipeError> {
        Ok(self.scalar(spec.name, spec.ty)?.map(|(value, _)| value))
    }

    /// The value of `key` checked against `ty`, then converted by `convert`, which gets the
    /// value, its node and the key as written (`None` when `key` is unset).
    fn converted<T>(
        &mut self,
        key: &str,
        ty: ParamType,
        convert: impl FnOnce(&Value, &Node, &str) -> Result<T, RecipeError>,
    ) -> Result<Option<T>, RecipeError> {
        let written = self.key(key);
        self.scalar(key, ty)?
            .map(|(value, node)| convert(&value, node, &written))
            .transpose()
    }

    /// The value of `key` checked against `ty`, with the node it came from; records its source.
    fn scalar(
        &mut self,
        key: &str,
        ty: ParamType,
    ) -> Result<Option<(Value, &'t Node)>, RecipeError> {
        let Some(node) = self.table.get(key) else {
            return Ok(None);
        };
        let dotted = self.key(key);
        let (plain, source) = provenance::unwrap(node, &dotted)?;
        let value = resolve(plain, ty, &dotted, self.scope)?;
        if let Some(source) = source {
            self.sources.insert(key.to_string(), source);
        }
        Ok(Some((value, plain)))
    }
}

/// The value of `node` as type `ty`, strings interpolated.
fn resolve(node: &Node, ty: ParamType, key: &str, scope: &Scope<'_>) -> Result<Value, RecipeError> {
    if let Some(element) = ty.element() {
        let NodeValue::Array(items) = &node.value else {
            return Err(type_error(node, key, ty, node.value.type_name()));
        };
        if ty == ParamType::Argv && items.is_empty() {
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                &node.at,
                format!("`{key}` is empty"),
            )
            .help("give the program to run and its arguments, e.g. `argv = [\"sh\", \"run.sh\", \"{out}\"]`"));
        }
        return items
            .iter()
            .map(|item| resolve(item, element, key, scope))
            .collect();
    }
    let value = match &node.value {
        NodeValue::Str(text) => match template::interpolate(text, scope)
            .map_err(|problem| template::problem_error(problem, node, key, scope))?
        {
            Interpolated::Text(text) => Value::String(text),
            Interpolated::Typed(value) if matches!(ty, ParamType::Str | ParamType::Choice(_)) => {
                Value::String(MatrixValue::new(value).text)
            }
            Interpolated::Typed(value) => {
                return check(&value, node, key, ty, " (from a matrix variable)")
            }
        },
        NodeValue::Int(value) => Value::from(*value),
        NodeValue::Float(value) if value.is_finite() => Value::from(*value),
        NodeValue::Float(value) => {
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                &node.at,
                format!("`{key}` must be a finite number, found {value}"),
            )
            .help("use a finite number"))
        }
        NodeValue::Bool(flag) => Value::from(*flag),
        other => return Err(type_error(node, key, ty, other.type_name())),
    };
    check(&value, node, key, ty, "")
}

/// `value` if it has type `ty` (integers widened to floats where floats are expected);
/// `origin` qualifies the found type in messages.
fn check(
    value: &Value,
    node: &Node,
    key: &str,
    ty: ParamType,
    origin: &str,
) -> Result<Value, RecipeError> {
    let invalid = |message: String, help: &str| {
        Err(RecipeError::at(ErrorKind::InvalidValue, &node.at, message).help(help.to_string()))
    };
    let accepted = match (ty, value) {
        (ParamType::Str, Value::String(_)) | (ParamType::Bool, Value::Bool(_)) => value.clone(),
        (ParamType::Choice(options), Value::String(text)) => {
            if !options.contains(&text.as_str()) {
                return invalid(
                    format!("invalid value \"{text}\" for `{key}`"),
                    &format!("use one of {}", quoted_list(options)),
                );
            }
            value.clone()
        }
        (ParamType::Count, Value::Number(number)) if !number.is_f64() => {
            if number.as_u64().is_none() {
                return invalid(
                    format!("`{key}` must not be negative, found {number}"),
                    "use a non-negative integer",
                );
            }
            value.clone()
        }
        (ParamType::Float | ParamType::Ratio, Value::Number(number)) => {
            let number = number.as_f64().unwrap_or(f64::NAN);
            if ty == ParamType::Ratio && !(0.0..=1.0).contains(&number) {
                return invalid(
                    format!("`{key}` must be between 0 and 1, found {number}"),
                    "use a fraction, e.g. 0.75",
                );
            }
            Value::from(number)
        }
        _ => {
            let found = match value {
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(number) if number.is_f64() => "float",
                Value::Number(_) => "integer",
                _ => node.value.type_name(),
            };
            return Err(type_error(node, key, ty, &format!("{found}{origin}")));
        }
    };
    Ok(accepted)
}

fn type_error(node: &Node, key: &str, ty: ParamType, found: &str) -> RecipeError {
    let short = key.rsplit('.').next().unwrap_or(key);
    let example = match ty {
        ParamType::Str | ParamType::Choice(_) => format!("{short} = \"...\""),
        ParamType::Count => format!("{short} = 8"),
        ParamType::Float | ParamType::Ratio => format!("{short} = 0.5"),
        ParamType::Bool => format!("{short} = true"),
        ParamType::StrList | ParamType::Argv => format!("{short} = [\"a\", \"b\"]"),
        ParamType::CountList => format!("{short} = [1, 2]"),
        ParamType::FloatList => format!("{short} = [0.5, 1.0]"),
    };
    wrong_type(node, key, &ty.describe(), found).help(format!(
        "give `{short}` a value of type {}, e.g. `{example}`",
        ty.describe()
    ))
}

fn to_u32(value: &Value, node: &Node, key: &str) -> Result<u32, RecipeError> {
    value
        .as_u64()
        .and_then(|number| u32::try_from(number).ok())
        .ok_or_else(|| {
            RecipeError::at(
                ErrorKind::InvalidValue,
                &node.at,
                format!("`{key}` is too large: {value}"),
            )
            .help("use an integer below 2^32")
        })
}

/// `processes`: at least one, and one per GPU when the stage asks for GPUs.
fn data_parallel_processes(
    value: &Value,
    node: &Node,
    gpus: u32,
    key: &str,
) -> Result<u32, RecipeError> {
    let processes = to_u32(value, node, key)?;
    if processes == 0 || (gpus > 0 && processes != gpus) {
        return Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("`{key}` = {processes} with `gpus` = {gpus}"),
        )
        .help("data-parallel stages run one process per GPU: leave `processes` out when `gpus` is set, or give at least 1 for CPU stages"));
    }
    Ok(processes)
}

fn at_least_one(value: &Value, node: &Node, key: &str) -> Result<u32, RecipeError> {
    let count = to_u32(value, node, key)?;
    if count == 0 {
        return Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("`{key}` = 0"),
        )
        .help("give the number of nodes the stage's ranks spread over, at least 1 (`processes` or `gpus` count the ranks of each node)"));
    }
    Ok(count)
}

fn positive(value: &Value, node: &Node, key: &str) -> Result<f64, RecipeError> {
    match value.as_f64() {
        Some(number) if number > 0.0 && number.is_finite() => Ok(number),
        _ => Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("`{key}` must be a positive number, found {value}"),
        )
        .help("give the GPU memory in GiB, e.g. `gpu_mem_gb = 24`")),
    }
}

fn non_negative(value: &Value, node: &Node, key: &str) -> Result<f64, RecipeError> {
    match value.as_f64() {
        Some(number) if number >= 0.0 => Ok(number),
        _ => Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("`{key}` must not be negative, found {value}"),
        )
        .help("give the wait in seconds, e.g. `retry_backoff_s = 30`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kind_parameter_shadows_a_common_key() {
        for kind in StageKind::ALL {
            for spec in kind.params() {
                assert!(!COMMON_KEYS.contains(&spec.name), "{kind}: {}", spec.name);
            }
        }
    }
}
