//! The Slurm backend's settings: `[slurm]` of `rsfm.toml` beside the results dir, overlaid by
//! each recipe's `[slurm]` (in command-line order, later wins), and the `sbatch` flags they give
//! a stage, each with the recipe location that set it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::PlannedStage;
use crate::recipe::slurm::{read_site_file, GpuFlag, SlurmTable};
use crate::recipe::{Location, Recipe, RecipeError};

/// The file beside the results dir that holds site settings.
pub const SITE_FILE: &str = "rsfm.toml";

/// Time between two state queries unless `poll_interval` says otherwise.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// `sbatch` calls per second unless `submit_rate` says otherwise.
const DEFAULT_SUBMIT_RATE: f64 = 5.0;
/// SIGTERM this long before the time limit unless `signal_grace` says otherwise.
const DEFAULT_SIGNAL_GRACE: Duration = Duration::from_secs(300);

/// One `sbatch` flag and the recipe (or `rsfm.toml`) location that set it.
#[derive(Debug, Clone, PartialEq)]
pub struct SbatchFlag {
    /// The flag with its value, e.g. `--partition=gpu`.
    pub flag: String,
    /// Where it was set; `None` for flags rsfm always passes.
    pub set_at: Option<Location>,
}

/// The resolved settings of one run.
#[derive(Debug, Clone, Default)]
pub struct SlurmSettings {
    table: SlurmTable,
    site_file: Option<PathBuf>,
}

impl SlurmSettings {
    /// Reads `rsfm.toml` beside `results_dir` (if present) and the recipes' `[slurm]` tables.
    pub fn load(results_dir: &Path, recipes: &[Recipe]) -> Result<SlurmSettings, RecipeError> {
        let site_path = results_dir.parent().map(|dir| dir.join(SITE_FILE));
        let mut table = SlurmTable::default();
        let mut site_file = None;
        if let Some(path) = site_path.filter(|p| p.is_file()) {
            if let Some(site) = read_site_file(&path)? {
                table = site;
            }
            site_file = Some(path);
        }
        for recipe in recipes {
            if let Some(own) = &recipe.slurm {
                table = table.overlay(own.clone());
            }
        }
        Ok(SlurmSettings { table, site_file })
    }

    /// The site file that was read, if any.
    pub fn site_file(&self) -> Option<&Path> {
        self.site_file.as_deref()
    }

    /// Time between two state queries.
    pub fn poll_interval(&self) -> Duration {
        self.table
            .poll_interval
            .as_ref()
            .map_or(DEFAULT_POLL_INTERVAL, |s| s.value)
    }

    /// Least time between two `sbatch` calls.
    pub fn submit_interval(&self) -> Duration {
        let rate = self
            .table
            .submit_rate
            .as_ref()
            .map_or(DEFAULT_SUBMIT_RATE, |s| s.value);
        Duration::from_secs_f64(1.0 / rate)
    }

    /// The flags that place `stage`: partition, account, QoS, time limit, nodes and tasks (one
    /// per data-parallel rank), GPUs (per node), extra flags.
    pub fn stage_flags(&self, stage: &PlannedStage) -> Vec<SbatchFlag> {
        let table = &self.table;
        let mut flags = Vec::new();
        let mut push = |flag: String, at: &Location| {
            flags.push(SbatchFlag {
                flag,
                set_at: Some(at.clone()),
            })
        };
        for (name, setting) in [
            ("partition", &table.partition),
            ("account", &table.account),
            ("qos", &table.qos),
        ] {
            if let Some(setting) = setting {
                push(format!("--{name}={}", setting.value), &setting.at);
            }
        }
        let resources = &stage.stage.resources;
        let ranks = resources.ranks();
        let time_limit = match resources.time_limit {
            Some(limit) => Some((limit, stage.stage.location.clone())),
            None => table
                .time_limit_for(stage.stage.kind.as_str())
                .map(|s| (s.value, s.at.clone())),
        };
        if let Some((limit, at)) = &time_limit {
            push(format!("--time={}", slurm_duration(*limit)), at);
            let grace = self.signal_grace().min(*limit / 2);
            // One process is the batch shell itself (`exec`): signal it alone. Ranks are the
            // tasks of an `srun` step: signal the steps, since `srun` answers a SIGTERM of its
            // own by killing its tasks.
            let target = if ranks > 1 { "" } else { "B:" };
            push(
                format!("--signal={target}TERM@{}", grace.as_secs().max(1)),
                self.table.signal_grace.as_ref().map_or(at, |s| &s.at),
            );
        }
        if ranks > 1 {
            // One task per data-parallel rank, `nodes` nodes with the same number each: the
            // GPU flag below counts the GPUs of one node, and every rank of a node sees them
            // all (it takes `cuda:LOCAL_RANK`).
            push(
                format!("--nodes={}", resources.nodes()),
                stage.stage.location_of("nodes"),
            );
            push(
                format!("--ntasks-per-node={}", resources.ranks_per_node()),
                stage.stage.location_of(if resources.processes.is_some() {
                    "processes"
                } else {
                    "gpus"
                }),
            );
        }
        if resources.gpus > 0 {
            let (style, at) = match &table.gpu_flag {
                Some(setting) => (setting.value, setting.at.clone()),
                None => (GpuFlag::Gres, stage.stage.location.clone()),
            };
            let flag = match style {
                GpuFlag::Gres => format!("--gres=gpu:{}", resources.gpus),
                GpuFlag::Gpus => format!("--gpus={}", resources.gpus),
            };
            push(flag, &at);
        }
        if let Some(extra) = &table.extra_args {
            for arg in &extra.value {
                push(arg.value.clone(), &arg.at);
            }
        }
        flags
    }

    fn signal_grace(&self) -> Duration {
        self.table
            .signal_grace
            .as_ref()
            .map_or(DEFAULT_SIGNAL_GRACE, |s| s.value)
    }
}

/// A duration as Slurm's `D-HH:MM:SS`, rounded up to whole seconds.
pub fn slurm_duration(limit: Duration) -> String {
    let total = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
    let (days, rest) = (total / 86_400, total % 86_400);
    format!(
        "{days}-{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_slurm_reads_them() {
        assert_eq!(slurm_duration(Duration::from_secs(90)), "0-00:01:30");
        assert_eq!(
            slurm_duration(Duration::from_secs(2 * 86_400 + 3661)),
            "2-01:01:01"
        );
        assert_eq!(slurm_duration(Duration::from_millis(500)), "0-00:00:01");
    }
}
