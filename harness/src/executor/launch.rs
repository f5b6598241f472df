//! One start of a stage's process, as the scheduler, `audit` and a detached Slurm submission
//! build it: the entries it reads, the dirs it writes, where it runs, and the [`Invocation`]
//! made of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::command_line::{stage_argv, StagePaths};
use super::{Invocation, Placement};
use crate::cache::Cache;
use crate::plan::{Plan, PlannedStage};

/// What one start of `planned`'s process needs besides the stage itself.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The stage.
    pub planned: &'a PlannedStage,
    /// Its output, work and input dirs.
    pub paths: StagePaths,
    /// Its device.
    pub placement: Placement,
    /// CPU threads of each of its processes ([`crate::scheduler::cpu_share`]).
    pub cpu_threads: usize,
    /// Its log file.
    pub log_path: PathBuf,
}

impl Launch<'_> {
    /// The process to start, with `worker` as the `rsfm-worker` of worker stages.
    pub fn invocation(&self, worker: &Path) -> anyhow::Result<Invocation> {
        let resources = &self.planned.stage.resources;
        Ok(Invocation {
            argv: stage_argv(self.planned, &self.paths, &self.placement.device, worker)?,
            cwd: self.planned.recipe_dir.clone(),
            env: stage_env(&self.placement, &self.paths.work, self.cpu_threads),
            log_path: self.log_path.clone(),
            time_limit: resources.time_limit,
            ranks: resources.ranks(),
        })
    }
}

/// The cache entry dirs that stage `i` of `plan` reads, by the needed stages' base names.
pub fn stage_inputs(plan: &Plan, i: usize, cache: &Cache) -> BTreeMap<String, PathBuf> {
    plan.stages[i]
        .needs
        .iter()
        .map(|&j| {
            let need = &plan.stages[j];
            (need.stage.base.clone(), cache.entry_dir(&need.key.key))
        })
        .collect()
}

/// The environment of a stage process: its devices, its CPU threads, its work dir and the
/// `rsfm` binary. `OMP_NUM_THREADS` (which libtorch's CPU kernels follow) is the stage's share of
/// the cores unless the user set it: stages that each spin one OpenMP thread per core on a shared
/// machine run many times slower than with their share.
fn stage_env(placement: &Placement, work: &Path, cpu_threads: usize) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        env.push(("OMP_NUM_THREADS".into(), cpu_threads.max(1).to_string()));
    }
    if let Some(visible) = &placement.visible_devices {
        env.push(("CUDA_VISIBLE_DEVICES".into(), visible.clone()));
    }
    env.push(("RSFM_DEVICE".into(), placement.device.clone()));
    env.push(("RSFM_WORK_DIR".into(), work.display().to_string()));
    if let Ok(exe) = std::env::current_exe() {
        env.push(("RSFM_BIN".into(), exe.display().to_string()));
    }
    env
}
