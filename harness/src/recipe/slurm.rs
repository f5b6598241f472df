//! `[slurm]`: site settings of the Slurm backend, in a recipe or in `rsfm.toml`, each value with
//! the `file:line:col` that set it (so a flag the cluster rejects names its line).
//!
//! None of it enters a stage's key: where a stage runs does not change its result.

use super::document::{self, Node, NodeValue};
use super::error::{ErrorKind, RecipeError};
use super::kinds::StageKind;
use super::location::Location;
use super::provenance;
use super::read::{self, Table};
use super::resources::{parse_time_limit, TIME_LIMIT_FORMATS};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// A setting and where it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it was set.
    pub at: Location,
}

/// How a job asks for GPUs: `--gres=gpu:N` (older sites) or `--gpus=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GpuFlag {
    /// `--gres=gpu:N`.
    Gres,
    /// `--gpus=N`.
    Gpus,
}

/// The `[slurm]` table as written; absent keys are `None` (or empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SlurmTable {
    /// `partition`: `--partition`.
    pub partition: Option<Setting<String>>,
    /// `account`: `--account`.
    pub account: Option<Setting<String>>,
    /// `qos`: `--qos`.
    pub qos: Option<Setting<String>>,
    /// `time_limit`: a limit for every kind (`"4h"`) or per kind
    /// (`{ default = "4h", mae-pretrain = "2d" }`); key `default` or a kind name.
    pub time_limits: Vec<(String, Setting<Duration>)>,
    /// `gpu_flag`: `"gres"` or `"gpus"`.
    pub gpu_flag: Option<Setting<GpuFlag>>,
    /// `extra_args`: more `sbatch` flags, each as one string (`"--constraint=a100"`).
    pub extra_args: Option<Setting<Vec<Setting<String>>>>,
    /// `submit_rate`: most `sbatch` calls per second.
    pub submit_rate: Option<Setting<f64>>,
    /// `poll_interval`: time between two state queries for the run's jobs.
    pub poll_interval: Option<Setting<Duration>>,
    /// `signal_grace`: how long before its time limit a job gets SIGTERM to checkpoint.
    pub signal_grace: Option<Setting<Duration>>,
}

/// Keys of `[slurm]`.
pub const SLURM_KEYS: &[&str] = &[
    "partition",
    "account",
    "qos",
    "time_limit",
    "gpu_flag",
    "extra_args",
    "submit_rate",
    "poll_interval",
    "signal_grace",
];

impl SlurmTable {
    /// `self` with every key that `later` sets taken from `later`.
    pub fn overlay(self, later: SlurmTable) -> SlurmTable {
        let mut time_limits = self.time_limits;
        for (kind, limit) in later.time_limits {
            time_limits.retain(|(k, _)| *k != kind);
            time_limits.push((kind, limit));
        }
        SlurmTable {
            partition: later.partition.or(self.partition),
            account: later.account.or(self.account),
            qos: later.qos.or(self.qos),
            time_limits,
            gpu_flag: later.gpu_flag.or(self.gpu_flag),
            extra_args: later.extra_args.or(self.extra_args),
            submit_rate: later.submit_rate.or(self.submit_rate),
            poll_interval: later.poll_interval.or(self.poll_interval),
            signal_grace: later.signal_grace.or(self.signal_grace),
        }
    }

    /// The time limit for stages of `kind`: its own entry, else `default`.
    pub fn time_limit_for(&self, kind: &str) -> Option<&Setting<Duration>> {
        let find = |name: &str| {
            self.time_limits
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, s)| s)
        };
        find(kind).or_else(|| find("default"))
    }
}

/// Reads the `[slurm]` table of a site file such as `rsfm.toml` (other tables are left to their
/// readers); `None` when the file has none.
pub fn read_site_file(path: &Path) -> Result<Option<SlurmTable>, RecipeError> {
    let text = fs_err::read_to_string(path).map_err(|error| RecipeError {
        kind: ErrorKind::Io,
        location: None,
        message: format!("cannot read `{}`: {error}", path.display()),
        help: Some("check the file's permissions".to_string()),
    })?;
    let root = document::parse(path, &text)?;
    let top = Table::new(&root, "")?;
    top.get("slurm").map(parse).transpose()
}

/// Reads a `[slurm]` table.
pub(crate) fn parse(node: &Node) -> Result<SlurmTable, RecipeError> {
    let table = Table::new(node, "slurm")?;
    table.check_keys(SLURM_KEYS)?;
    let mut out = SlurmTable::default();
    for (key, node) in table.entries {
        let dotted = table.key(key);
        let (plain, _) = provenance::unwrap(node, &dotted)?;
        match key.as_str() {
            "partition" => out.partition = Some(name(plain, &dotted)?),
            "account" => out.account = Some(name(plain, &dotted)?),
            "qos" => out.qos = Some(name(plain, &dotted)?),
            "time_limit" => out.time_limits = time_limits(plain, &dotted)?,
            "gpu_flag" => out.gpu_flag = Some(gpu_flag(plain, &dotted)?),
            "extra_args" => out.extra_args = Some(extra_args(plain, &dotted)?),
            "submit_rate" => out.submit_rate = Some(positive(plain, &dotted, "2.0")?),
            "poll_interval" => out.poll_interval = Some(duration(plain, &dotted)?),
            "signal_grace" => out.signal_grace = Some(duration(plain, &dotted)?),
            _ => unreachable!("keys are checked above"),
        }
    }
    Ok(out)
}

fn name(node: &Node, key: &str) -> Result<Setting<String>, RecipeError> {
    let text = read::string(node, key)?;
    if text.trim().is_empty() || text.chars().any(char::is_whitespace) {
        return Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("`{key}` must be one word, found \"{text}\""),
        )
        .help("write the name as Slurm knows it, e.g. `partition = \"gpu\"`"));
    }
    Ok(Setting {
        value: text.to_string(),
        at: node.at.clone(),
    })
}

fn duration(node: &Node, key: &str) -> Result<Setting<Duration>, RecipeError> {
    let text = read::string(node, key)?;
    let value = parse_time_limit(text).ok_or_else(|| {
        RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("invalid `{key}` \"{text}\""),
        )
        .help(format!("write a duration: {TIME_LIMIT_FORMATS}"))
    })?;
    Ok(Setting {
        value,
        at: node.at.clone(),
    })
}

fn time_limits(node: &Node, key: &str) -> Result<Vec<(String, Setting<Duration>)>, RecipeError> {
    let NodeValue::Table(entries) = &node.value else {
        return Ok(vec![("default".to_string(), duration(node, key)?)]);
    };
    let mut allowed: Vec<&str> = vec!["default"];
    allowed.extend(StageKind::ALL.iter().map(|kind| kind.as_str()));
    let mut out = Vec::new();
    for (kind, entry) in entries {
        if !allowed.contains(&kind.as_str()) {
            return Err(read::unknown_key(
                kind,
                &entry.key_at,
                &format!("`{key}`"),
                &allowed,
            ));
        }
        out.push((kind.clone(), duration(entry, &format!("{key}.{kind}"))?));
    }
    Ok(out)
}

fn gpu_flag(node: &Node, key: &str) -> Result<Setting<GpuFlag>, RecipeError> {
    let value = match read::string(node, key)? {
        "gres" => GpuFlag::Gres,
        "gpus" => GpuFlag::Gpus,
        other => {
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                &node.at,
                format!("invalid `{key}` \"{other}\""),
            )
            .help("write `\"gres\"` for `--gres=gpu:N` or `\"gpus\"` for `--gpus=N`"))
        }
    };
    Ok(Setting {
        value,
        at: node.at.clone(),
    })
}

fn extra_args(node: &Node, key: &str) -> Result<Setting<Vec<Setting<String>>>, RecipeError> {
    let args = read::strings(node, key)?;
    let mut value = Vec::new();
    for (arg, at) in args {
        if !arg.starts_with('-') {
            return Err(RecipeError::at(
                ErrorKind::InvalidValue,
                &at,
                format!("`{key}` entry \"{arg}\" is not an sbatch flag"),
            )
            .help("write each flag with its value as one string, e.g. `\"--constraint=a100\"`"));
        }
        value.push(Setting { value: arg, at });
    }
    Ok(Setting {
        value,
        at: node.at.clone(),
    })
}

fn positive(node: &Node, key: &str, example: &str) -> Result<Setting<f64>, RecipeError> {
    let value = match &node.value {
        NodeValue::Int(n) => *n as f64,
        NodeValue::Float(f) => *f,
        other => {
            return Err(read::wrong_type(node, key, "number", other.type_name())
                .help(format!("write a number, e.g. `{example}`")))
        }
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(RecipeError::at(
            ErrorKind::InvalidValue,
            &node.at,
            format!("`{key}` must be positive, found {value}"),
        )
        .help(format!("write a positive number, e.g. `{example}`")));
    }
    Ok(Setting {
        value,
        at: node.at.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Option<SlurmTable>, RecipeError> {
        let root = document::parse(Path::new("rsfm.toml"), text)?;
        let top = Table::new(&root, "")?;
        top.get("slurm").map(parse).transpose()
    }

    #[test]
    fn every_key_is_read_with_its_location() {
        let table = parse_text(
            "[slurm]\npartition = \"gpu\"\naccount = \"proj\"\nqos = \"high\"\n\
             time_limit = { default = \"4h\", mae-pretrain = \"2-00:00:00\" }\n\
             gpu_flag = \"gpus\"\nextra_args = [\"--constraint=a100\"]\nsubmit_rate = 2\n\
             poll_interval = \"0.5s\"\nsignal_grace = \"300s\"\n",
        )
        .unwrap()
        .unwrap();
        let partition = table.partition.as_ref().unwrap();
        assert_eq!(partition.value, "gpu");
        assert_eq!(partition.at.to_string(), "rsfm.toml:2:13");
        assert_eq!(
            table.time_limit_for("mae-pretrain").unwrap().value,
            Duration::from_secs(2 * 86400)
        );
        assert_eq!(
            table.time_limit_for("command").unwrap().value,
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(table.gpu_flag.unwrap().value, GpuFlag::Gpus);
        assert_eq!(table.extra_args.unwrap().value[0].at.line, 7);
        assert_eq!(table.submit_rate.unwrap().value, 2.0);
        assert_eq!(
            table.poll_interval.unwrap().value,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn bad_values_name_their_line_and_the_fix() {
        let cases = [
            ("[slurm]\npartion = \"gpu\"\n", "did you mean `partition`"),
            ("[slurm]\ngpu_flag = \"gpu\"\n", "`--gres=gpu:N`"),
            ("[slurm]\nsubmit_rate = 0\n", "positive"),
            ("[slurm]\npoll_interval = \"soon\"\n", "duration"),
            ("[slurm]\nextra_args = [\"constraint\"]\n", "sbatch flag"),
            ("[slurm]\ntime_limit = { train = \"1h\" }\n", "allowed keys"),
            ("[slurm]\npartition = \"a b\"\n", "one word"),
        ];
        for (text, hint) in cases {
            let error = parse_text(text).unwrap_err();
            assert_eq!(error.location.as_ref().unwrap().line, 2, "{text}");
            assert!(error.to_string().contains(hint), "{text}: {error}");
        }
    }

    #[test]
    fn later_tables_win_key_by_key() {
        let site = parse_text("[slurm]\npartition = \"cpu\"\naccount = \"site\"\n")
            .unwrap()
            .unwrap();
        let recipe = parse_text("[slurm]\npartition = \"gpu\"\n")
            .unwrap()
            .unwrap();
        let merged = site.overlay(recipe);
        assert_eq!(merged.partition.unwrap().value, "gpu");
        assert_eq!(merged.account.unwrap().value, "site");
    }
}
