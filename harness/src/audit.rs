//! `rsfm audit`: reruns cached stages in a scratch dir and compares what they write with their
//! cache entries, so a user learns which stages reproduce before trusting a table.
//!
//! A stage is *identical* when every output file and metric matches bit for bit, *within
//! tolerance* when its metrics match within `|a - b| <= atol + rtol * |b|` (files may differ), and
//! *not reproducible* otherwise (or when its rerun fails).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::watch;

use crate::cache::{Cache, Manifest, KEY_FILE, RESOLVED_RECIPE_FILE, STAGE_FILE};
use crate::executor::command_line::StagePaths;
use crate::executor::launch::{stage_inputs, Launch};
use crate::executor::{Executor, ProcessEnd};
use crate::plan::Plan;
use crate::scheduler::stage_task::cached_metrics;

/// How a rerun compares with its cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every file and metric bit for bit.
    Identical,
    /// Metrics within the tolerance; some file or metric bits differ.
    WithinTolerance,
    /// Metrics outside the tolerance, or the rerun failed.
    NotReproducible,
}

impl Verdict {
    /// The words `rsfm audit` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::WithinTolerance => "within tolerance",
            Verdict::NotReproducible => "not reproducible",
        }
    }
}

/// The audit of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageAudit {
    /// `experiment/stage`.
    pub stage: String,
    /// Its key.
    pub key: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What differs (files, metrics with both values), or why the rerun failed.
    pub differences: Vec<String>,
}

/// Tolerance of the metric comparison.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

/// The cached stages of `plan` to audit, as plan indices: all of them, or the `sample` with
/// the smallest keys (a stable sample that does not favour any part of the study).
pub fn pick(plan: &Plan, sample: Option<usize>) -> Vec<usize> {
    let mut cached: Vec<usize> = (0..plan.stages.len())
        .filter(|&i| plan.stages[i].cached)
        .collect();
    if let Some(n) = sample {
        cached.sort_by(|&a, &b| plan.stages[a].key.key.cmp(&plan.stages[b].key.key));
        cached.truncate(n);
    }
    cached
}

/// Where and with what an audit reruns stages.
pub struct Rerun<'a> {
    /// The results' cache: the inputs, the entries compared with and the scratch dirs.
    pub cache: &'a Cache,
    /// The `rsfm-worker` of worker stages.
    pub worker: &'a Path,
    /// The backend the reruns run on.
    pub executor: &'a Executor,
}

/// Reruns stage `i` of `plan` in a scratch dir of the cache and compares it with its entry.
pub async fn audit_stage(
    rerun: &Rerun<'_>,
    plan: &Plan,
    i: usize,
    tolerance: Tolerance,
) -> anyhow::Result<StageAudit> {
    let planned = &plan.stages[i];
    let key = &planned.key.key;
    let entry = rerun
        .cache
        .lookup(key)
        .ok_or_else(|| anyhow::anyhow!("{}: no cache entry", planned.display_name()))?;
    let scratch = rerun.cache.new_build_dir("audit")?;
    let outcome = rerun.run(plan, i, &scratch).await;
    let result = match outcome {
        Err(reason) => Ok((
            Verdict::NotReproducible,
            vec![format!("the rerun failed: {reason}")],
        )),
        Ok(out) => compare(&entry.dir, &entry.manifest, &out, key, tolerance),
    };
    fs_err::remove_dir_all(&scratch)?;
    let (verdict, differences) = result?;
    Ok(StageAudit {
        stage: planned.display_name(),
        key: key.clone(),
        verdict,
        differences,
    })
}

impl Rerun<'_> {
    /// Runs stage `i` with its cached inputs into `scratch/out`, on CPU; returns that dir or why
    /// it failed.
    async fn run(&self, plan: &Plan, i: usize, scratch: &Path) -> Result<PathBuf, String> {
        let planned = &plan.stages[i];
        let launch = Launch {
            planned,
            paths: StagePaths {
                out: scratch.join("out"),
                work: scratch.join("work"),
                inputs: stage_inputs(plan, i, self.cache),
            },
            // No GPU: the rerun runs on CPU with none visible.
            placement: Executor::Local.placement(0, &[]),
            cpu_threads: crate::scheduler::cpu_share(1, planned.stage.resources.ranks()),
            log_path: scratch.join("stage.log"),
        };
        for dir in [&launch.paths.out, &launch.paths.work] {
            fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let invocation = launch
            .invocation(self.worker)
            .map_err(|e| format!("{e:#}"))?;
        let (_keep, cancel) = watch::channel(false);
        let finished = self
            .executor
            .run(planned, &invocation, |_| {}, cancel)
            .await;
        match finished.end {
            ProcessEnd::Success => Ok(launch.paths.out),
            ProcessEnd::Failure(reason) => {
                Err(format!("{reason}: {}", finished.stderr_tail.trim()))
            }
            ProcessEnd::Interrupted => Err("interrupted".into()),
            ProcessEnd::Stopped => Err("stopped at a checkpoint before its end".into()),
        }
    }
}

/// Compares the rerun's output dir `out` with the entry `entry_dir` and its `manifest`.
fn compare(
    entry_dir: &Path,
    manifest: &Manifest,
    out: &Path,
    key: &str,
    tolerance: Tolerance,
) -> anyhow::Result<(Verdict, Vec<String>)> {
    let produced: BTreeMap<String, String> = Manifest::build(out, key, "audit")?
        .files
        .into_iter()
        .map(|f| (f.path, f.sha256))
        .collect();
    let cached: BTreeMap<String, String> = manifest
        .files
        .iter()
        .filter(|f| ![STAGE_FILE, KEY_FILE, RESOLVED_RECIPE_FILE].contains(&f.path.as_str()))
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    let mut files: Vec<String> = cached
        .iter()
        .filter(|(path, sha)| produced.get(*path) != Some(sha))
        .map(|(path, _)| format!("{path} differs"))
        .collect();
    files.extend(
        produced
            .keys()
            .filter(|p| !cached.contains_key(*p))
            .map(|p| format!("{p} is new")),
    );
    if files.is_empty() {
        return Ok((Verdict::Identical, Vec::new()));
    }
    let before: BTreeMap<String, f64> = cached_metrics(entry_dir)?
        .into_iter()
        .map(|m| (m.name, m.value))
        .collect();
    let after: BTreeMap<String, f64> = cached_metrics(out)?
        .into_iter()
        .map(|m| (m.name, m.value))
        .collect();
    let mut metrics = Vec::new();
    for (name, was) in &before {
        match after.get(name) {
            None => metrics.push(format!("metric {name} is missing")),
            Some(now) if (now - was).abs() > tolerance.atol + tolerance.rtol * was.abs() => {
                metrics.push(format!("metric {name}: cached {was}, rerun {now}"))
            }
            Some(_) => {}
        }
    }
    let verdict = if metrics.is_empty() && !before.is_empty() {
        Verdict::WithinTolerance
    } else {
        Verdict::NotReproducible
    };
    metrics.extend(files);
    Ok((verdict, metrics))
}
