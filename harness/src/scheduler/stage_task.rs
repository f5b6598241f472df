//! Runs one stage to its end: key lock, cache re-check, process (with retries), commit to the
//! cache and one store transaction. A failed or interrupted stage never enters the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rsfm_model::protocol::{Event, METRICS_FILE};
use tokio::sync::watch;

use super::lineage::Lineage;
use super::progress::Progress;
use super::RunContext;
use crate::cache::{
    Cache, Entry, TreeSnapshot, KEY_FILE, MANIFEST_FILE, RESOLVED_RECIPE_FILE, STAGE_FILE,
};
use crate::executor::command_line::StagePaths;
use crate::executor::launch::Launch;
use crate::executor::{Finished, Invocation, ProcessEnd, MAX_RESUMES};
use crate::lock::TryLock;
use crate::plan::{key::KeyManifest, PlannedStage};
use crate::store::{ArtifactRow, MetricRow, StageOutcome, StageRecord, StageStatus};

/// How a stage task ended.
#[derive(Debug, Clone)]
pub enum StageResult {
    /// The process ran and its outputs are cached now.
    Ran,
    /// Another run finished the key while this one waited for its lock.
    Cached,
    /// It failed: reason, the last lines of its stderr, and its log file.
    Failed {
        reason: String,
        stderr_tail: String,
        log: PathBuf,
    },
    /// The run was interrupted while it ran.
    Interrupted,
    /// Another process holds the key's lock (it runs the same key): try again later.
    Busy(String),
}

/// Everything a stage task needs besides the shared context.
pub struct StageJob {
    /// The stage.
    pub planned: PlannedStage,
    /// Entry dirs of its needed stages, by base name.
    pub inputs: BTreeMap<String, PathBuf>,
    /// Leased GPU ids (empty: CPU).
    pub devices: Vec<u32>,
    /// Whether `--force` named it.
    pub forced: bool,
    /// Its study coordinates, own or inherited.
    pub lineage: Lineage,
    /// CPU threads each of its processes may use (its share of this machine's cores).
    pub cpu_threads: usize,
    /// Its `recipe.resolved.toml`, written into its cache entry.
    pub resolved_recipe: String,
}

/// Runs `job` to its end.
pub async fn run_stage(
    ctx: Arc<RunContext>,
    job: StageJob,
    progress: Progress,
    cancel: watch::Receiver<bool>,
) -> StageResult {
    let name = job.planned.display_name();
    match run_stage_inner(&ctx, &job, &progress, cancel).await {
        Ok(result) => result,
        Err(err) => StageResult::Failed {
            reason: format!("{name}: {err:#}"),
            stderr_tail: String::new(),
            log: ctx
                .results_dir
                .join("work")
                .join(&job.planned.key.key)
                .join("stage.log"),
        },
    }
}

async fn run_stage_inner(
    ctx: &RunContext,
    job: &StageJob,
    progress: &Progress,
    mut cancel: watch::Receiver<bool>,
) -> anyhow::Result<StageResult> {
    let planned = &job.planned;
    let key = planned.key.key.clone();
    let name = planned.display_name();
    let lock = match crate::lock::try_lock(&ctx.results_dir, &key)? {
        TryLock::Acquired(lock) => lock,
        TryLock::Held(owner) => return Ok(StageResult::Busy(crate::lock::holder(owner.as_ref()))),
    };
    if ctx.cache.lookup(&key).is_some() && !job.forced {
        return Ok(StageResult::Cached);
    }
    let work = ctx.results_dir.join("work").join(&key);
    fs_err::create_dir_all(&work)?;
    let log_path = work.join("stage.log");
    let placement = ctx
        .executor
        .placement(planned.stage.resources.gpus, &job.devices);
    let device = placement.device.clone();
    let record = stage_record(ctx, planned, &job.lineage, &device, &work, &log_path);
    let attempts = planned.stage.retries + 1;
    let mut attempt = 1;
    loop {
        let out = ctx.cache.new_build_dir(&key)?;
        ctx.store.stage_started(&record).await?;
        append_attempt_header(&log_path, &name, &key, attempt, attempts, &device)?;
        progress.stage_started(&name, attempt, attempts);
        let started = Instant::now();
        let invocation = Launch {
            planned,
            paths: StagePaths {
                out: out.clone(),
                work: work.clone(),
                inputs: job.inputs.clone(),
            },
            placement: placement.clone(),
            cpu_threads: job.cpu_threads,
            log_path: log_path.clone(),
        }
        .invocation(&ctx.worker)?;
        let untouched = InputSnapshots::take(&job.inputs)?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let finished = run_resuming(ctx, planned, &invocation, &events, progress, &cancel).await;
        let mut metrics = std::mem::take(&mut *events.lock().expect("metric list"));
        let duration_s = finished
            .run_s
            .unwrap_or_else(|| started.elapsed().as_secs_f64());
        if let Some(note) = &finished.leftovers {
            progress.println(&format!("{name}: {note}"));
        }
        let tampered = untouched.check(&ctx.cache)?;
        let end = match (finished.end, tampered) {
            (ProcessEnd::Interrupted, _) => ProcessEnd::Interrupted,
            (_, Some(problem)) => ProcessEnd::Failure(problem),
            (end, None) => end,
        };
        let failure = match end {
            ProcessEnd::Success => {
                match timed_commit(ctx, planned, &job.resolved_recipe, &out, &mut metrics) {
                    Ok((entry, commit_s)) => {
                        let outcome = succeeded(&entry, metrics, duration_s, Some(commit_s));
                        ctx.store.stage_finished(&key, &outcome).await?;
                        drop(lock);
                        progress.stage_finished(&name, duration_s, commit_s, &outcome.metrics);
                        return Ok(StageResult::Ran);
                    }
                    Err(err) => format!("{err:#}"),
                }
            }
            ProcessEnd::Failure(reason) => reason,
            ProcessEnd::Stopped => format!(
                "stopped at a checkpoint {} times in a row: raise the time limit",
                MAX_RESUMES + 1
            ),
            ProcessEnd::Interrupted => {
                let _ = fs_err::remove_dir_all(&out);
                let outcome = ended(
                    StageStatus::Interrupted,
                    "interrupted".into(),
                    finished.stderr_tail,
                    duration_s,
                );
                ctx.store.stage_finished(&key, &outcome).await?;
                return Ok(StageResult::Interrupted);
            }
        };
        let failure = match crate::disk::full_note(&ctx.results_dir) {
            Some(note) => format!("{failure}; {note}"),
            None => failure,
        };
        let _ = fs_err::remove_dir_all(&out);
        let outcome = ended(
            StageStatus::Failed,
            failure.clone(),
            finished.stderr_tail.clone(),
            duration_s,
        );
        ctx.store.stage_finished(&key, &outcome).await?;
        if attempt >= attempts {
            return Ok(StageResult::Failed {
                reason: format!("{name}: {failure}"),
                stderr_tail: finished.stderr_tail,
                log: log_path,
            });
        }
        let backoff = planned.stage.retry_backoff_s.max(0.0) * 2f64.powi(attempt as i32 - 1);
        progress.println(&format!(
            "{name}: attempt {attempt}/{attempts} failed ({failure}); retrying in {backoff:.1} s"
        ));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(backoff)) => {}
            _ = cancel.wait_for(|c| *c) => return Ok(StageResult::Interrupted),
        }
        attempt += 1;
    }
}

/// Runs the stage's process until it ends other than stopped at a resume checkpoint (exit
/// status 3, by a SIGTERM rsfm did not send or `--stop-after`): a stopped process is started
/// again at once, resuming from its work-dir checkpoint, without spending a retry, at most
/// [`MAX_RESUMES`] times in a row (then it is returned stopped). Its events of every start go to `events` (one curve) and to
/// one progress bar.
async fn run_resuming(
    ctx: &RunContext,
    planned: &PlannedStage,
    invocation: &Invocation,
    events: &Arc<Mutex<Vec<MetricRow>>>,
    progress: &Progress,
    cancel: &watch::Receiver<bool>,
) -> Finished {
    let name = planned.display_name();
    let bar = Arc::new(progress.stage_bar(&name));
    let mut resumes = 0;
    // The process's own run time over every start, while each start's is known.
    let mut run_s = Some(0.0);
    loop {
        let (bar, events) = (bar.clone(), events.clone());
        let finished = ctx
            .executor
            .run(
                planned,
                invocation,
                move |event| {
                    bar.update(&event);
                    events
                        .lock()
                        .expect("metric list")
                        .extend(event_metrics(&event));
                },
                cancel.clone(),
            )
            .await;
        run_s = run_s.zip(finished.run_s).map(|(sum, this)| sum + this);
        if finished.end != ProcessEnd::Stopped || resumes == MAX_RESUMES {
            return Finished { run_s, ..finished };
        }
        resumes += 1;
        let note = format!(
            "{name}: stopped at a checkpoint; resuming from it ({resumes}/{MAX_RESUMES}, no retry spent)"
        );
        progress.println(&note);
        append_log_line(&invocation.log_path, &format!("rsfm: {note}"));
    }
}

/// Appends `line` to the stage log; a log that cannot be written loses the line only.
pub(crate) fn append_log_line(log_path: &Path, line: &str) {
    use std::io::Write;
    let appended = fs_err::OpenOptions::new()
        .append(true)
        .open(log_path)
        .and_then(|mut log| writeln!(log, "{line}"));
    if let Err(err) = appended {
        tracing::warn!("{err}");
    }
}

/// The input entries of a stage as they were before it ran.
pub(crate) struct InputSnapshots(Vec<(String, PathBuf, TreeSnapshot)>);

impl InputSnapshots {
    /// Stats every input entry of the stage.
    pub(crate) fn take(inputs: &BTreeMap<String, PathBuf>) -> anyhow::Result<Self> {
        inputs
            .iter()
            .map(|(name, dir)| Ok((name.clone(), dir.clone(), TreeSnapshot::take(dir)?)))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(InputSnapshots)
    }

    /// After the stage: None when no input entry changed; else the failure to report, after
    /// moving each changed entry to `damaged/` (its content is no longer what its key says, so
    /// its producer runs again).
    pub(crate) fn check(&self, cache: &Cache) -> anyhow::Result<Option<String>> {
        let mut problems = Vec::new();
        for (name, dir, snapshot) in &self.0 {
            if let Some(change) = snapshot.first_change()? {
                let key = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let moved = cache.quarantine(key)?;
                problems.push(format!(
                    "it changed its input `{name}` ({change}; the entry is moved to {})",
                    moved.display()
                ));
            }
        }
        Ok((!problems.is_empty()).then(|| {
            format!(
                "{}: a stage must not write into `{{input.X}}` (committed entries are read-only); write into `{{out}}`",
                problems.join("; ")
            )
        }))
    }
}

fn ended(status: StageStatus, error: String, stderr_tail: String, duration_s: f64) -> StageOutcome {
    StageOutcome {
        status,
        error: Some(error),
        stderr_tail: (!stderr_tail.is_empty()).then_some(stderr_tail),
        metrics: Vec::new(),
        artifacts: Vec::new(),
        cache_dir: None,
        duration_s,
        commit_s: None,
    }
}

/// [`commit`] and the seconds it took (hashing the output, writing the manifest, making the
/// entry durable), which the summary reports apart from the stage's own time.
fn timed_commit(
    ctx: &RunContext,
    planned: &PlannedStage,
    resolved_recipe: &str,
    out: &Path,
    metrics: &mut Vec<MetricRow>,
) -> anyhow::Result<(Entry, f64)> {
    let started = Instant::now();
    let entry = commit(ctx, planned, resolved_recipe, out, metrics)?;
    Ok((entry, started.elapsed().as_secs_f64()))
}

/// Reads `metrics.json` (if any) into `metrics`, in place of the final metrics that events
/// already reported, writes `recipe.resolved.toml` and commits the build dir to the cache.
fn commit(
    ctx: &RunContext,
    planned: &PlannedStage,
    resolved_recipe: &str,
    out: &Path,
    metrics: &mut Vec<MetricRow>,
) -> anyhow::Result<Entry> {
    let build = BuildOutput {
        key: &planned.key,
        stage_json: &stage_json(planned),
        stage_name: &planned.stage.name,
        resolved_recipe,
        out,
    };
    commit_build(&ctx.cache, &build, metrics)
}

/// A stage's finished build dir and what its cache entry records beside it.
pub(crate) struct BuildOutput<'a> {
    /// The stage's key and key manifest.
    pub key: &'a KeyManifest,
    /// Its `stage.json` ([`stage_json`]).
    pub stage_json: &'a serde_json::Value,
    /// Its name (the manifest's `stage`).
    pub stage_name: &'a str,
    /// Its `recipe.resolved.toml`.
    pub resolved_recipe: &'a str,
    /// The build dir the stage wrote.
    pub out: &'a Path,
}

/// The commit of a stage's output, wherever it ran (this process, or a detached Slurm job):
/// refuses reserved file names, reads `metrics.json` (if any) into `metrics` in place of the
/// final metrics that events already reported, writes `recipe.resolved.toml` and commits the
/// build dir to the cache.
pub(crate) fn commit_build(
    cache: &Cache,
    build: &BuildOutput<'_>,
    metrics: &mut Vec<MetricRow>,
) -> anyhow::Result<Entry> {
    let out = build.out;
    for reserved in [STAGE_FILE, KEY_FILE, MANIFEST_FILE, RESOLVED_RECIPE_FILE] {
        anyhow::ensure!(
            !out.join(reserved).exists(),
            "the stage wrote `{reserved}` into its output {}, a name rsfm keeps for the cache entry's own records: rename the file",
            out.display()
        );
    }
    let metrics_path = out.join(METRICS_FILE);
    if metrics_path.exists() {
        let text = fs_err::read_to_string(&metrics_path)?;
        let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not valid JSON (the stage must write an object of metric values)",
                metrics_path.display()
            )
        })?;
        merge_final_metrics(metrics, final_metrics(&metrics_path, &value)?);
    }
    fs_err::write(out.join(RESOLVED_RECIPE_FILE), build.resolved_recipe)?;
    cache.commit(out, build.key, build.stage_json, build.stage_name)
}

/// Puts `finals` (a `metrics.json`'s rows) into `metrics`: a final metric the worker also sent
/// as an event is one row, its `metrics.json` value.
pub(crate) fn merge_final_metrics(metrics: &mut Vec<MetricRow>, finals: Vec<MetricRow>) {
    metrics.retain(|m| m.step.is_some() || !finals.iter().any(|f| f.name == m.name));
    metrics.extend(finals);
}

/// The `stage.json` of a stage's cache entry.
pub(crate) fn stage_json(planned: &PlannedStage) -> serde_json::Value {
    serde_json::json!({
        "experiment": planned.experiment,
        "name": planned.stage.name,
        "kind": planned.stage.kind.as_str(),
        "matrix": planned.stage.matrix,
        "params": planned.stage.params,
        "sources": planned.stage.sources,
        "seed": planned.stage.seed,
    })
}

/// The final metrics in the `metrics.json` of the cache entry `entry_dir` (none when it has
/// none).
pub fn cached_metrics(entry_dir: &Path) -> anyhow::Result<Vec<MetricRow>> {
    let path = entry_dir.join(METRICS_FILE);
    let mut metrics = Vec::new();
    if path.is_file() {
        let value: serde_json::Value = serde_json::from_slice(&fs_err::read(&path)?)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        metrics = final_metrics(&path, &value)?;
    }
    Ok(metrics)
}

/// The metric rows of a `metrics.json` (`path`, for messages): an object whose values are
/// numbers or objects of them, flattened as `group.name`; `null` is a metric the stage could
/// not define (the AP of a class without ground truth) and gives no row. Anything else (a
/// string, a boolean, an array) is an error naming the file and key, and so is a name written
/// twice (a nested `a: {b}` and a literal `"a.b"`).
fn final_metrics(path: &Path, value: &serde_json::Value) -> anyhow::Result<Vec<MetricRow>> {
    anyhow::ensure!(
        value.is_object(),
        "{} must hold a JSON object of metric names and numbers, found {}",
        path.display(),
        json_type(value)
    );
    let mut rows = Vec::new();
    flatten_metrics(path, "", value, &mut rows)?;
    let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        anyhow::bail!(
            "{}: metric `{}` is written twice (as nested objects and as a name with a dot): keep one",
            path.display(),
            pair[0]
        );
    }
    Ok(rows)
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The metric rows a worker event stands for: a metric event as it is, a progress event as its
/// loss, learning rate and throughput at its step (the stage's curve).
pub(crate) fn event_metrics(event: &Event) -> Vec<MetricRow> {
    match event {
        Event::Metric { name, value, step } => vec![MetricRow {
            name: name.clone(),
            value: *value,
            step: step.map(|s| s as i64),
        }],
        Event::Progress {
            step,
            loss,
            items_per_s,
            lr,
            ..
        } => [("loss", loss), ("lr", lr), ("items_per_s", items_per_s)]
            .into_iter()
            .filter_map(|(name, value)| {
                value.map(|value| MetricRow {
                    name: name.to_string(),
                    value,
                    step: Some(*step as i64),
                })
            })
            .collect(),
        Event::Log { .. } => Vec::new(),
    }
}

/// Appends a timestamped header for an attempt to the stage log, so the log of a stage that
/// ran several times reads as one section per attempt.
pub(crate) fn append_attempt_header(
    log_path: &Path,
    name: &str,
    key: &str,
    attempt: u32,
    attempts: u32,
    device: &str,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    writeln!(
        log,
        "=== {} {name} (key {}) attempt {attempt}/{attempts} on {device} ===",
        crate::time::now_rfc3339(),
        crate::query::short_key(key)
    )?;
    Ok(())
}

/// Numeric leaves of a metrics object as rows named by their dotted path.
fn flatten_metrics(
    path: &Path,
    prefix: &str,
    value: &serde_json::Value,
    out: &mut Vec<MetricRow>,
) -> anyhow::Result<()> {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_metrics(path, &name, v, out)?;
            }
        }
        serde_json::Value::Number(n) => {
            let value = n.as_f64().context("a JSON number is a float")?;
            out.push(MetricRow {
                name: prefix.to_string(),
                value,
                step: None,
            });
        }
        serde_json::Value::Null => {}
        other => anyhow::bail!(
            "{}: metric `{prefix}` is {}, not a number: write numbers only (nest objects to group them)",
            path.display(),
            json_type(other)
        ),
    }
    Ok(())
}

/// The artifact rows of a committed entry.
/// The outcome of a stage whose output was committed as `entry`, with its metric rows, its own
/// run time and the commit's time.
pub(crate) fn succeeded(
    entry: &Entry,
    metrics: Vec<MetricRow>,
    duration_s: f64,
    commit_s: Option<f64>,
) -> StageOutcome {
    StageOutcome {
        status: StageStatus::Succeeded,
        error: None,
        stderr_tail: None,
        metrics,
        artifacts: artifacts(entry),
        cache_dir: Some(entry.dir.display().to_string()),
        duration_s,
        commit_s,
    }
}

pub(crate) fn artifacts(entry: &Entry) -> Vec<ArtifactRow> {
    entry
        .manifest
        .files
        .iter()
        .map(|f| ArtifactRow {
            path: f.path.clone(),
            size: f.size as i64,
            sha256: f.sha256.clone(),
        })
        .collect()
}

/// The store record of a stage found in the cache.
pub fn cached_record(ctx: &RunContext, planned: &PlannedStage, lineage: &Lineage) -> StageRecord {
    let work = ctx.results_dir.join("work").join(&planned.key.key);
    stage_record(
        ctx,
        planned,
        lineage,
        "none",
        &work,
        &work.join("stage.log"),
    )
}

/// The store record of a stage that runs on `device` with `work` and `log`.
pub(crate) fn stage_record(
    ctx: &RunContext,
    planned: &PlannedStage,
    lineage: &Lineage,
    device: &str,
    work: &Path,
    log: &Path,
) -> StageRecord {
    let stage = &planned.stage;
    let scoring = crate::plan::scoring::scoring(planned);
    StageRecord {
        key: planned.key.key.clone(),
        name: stage.name.clone(),
        kind: stage.kind.as_str().to_string(),
        experiment: planned.experiment.clone(),
        model: lineage.model.clone(),
        task: lineage.task.clone(),
        dataset: lineage.dataset.clone(),
        fraction: lineage.fraction,
        matrix: typed_matrix(&stage.matrix),
        params: serde_json::Value::Object(stage.params.clone()),
        seed: i64::try_from(stage.seed).ok(),
        split: scoring.as_ref().map(|s| s.split.to_string()),
        protocol: scoring.map(|s| s.protocol),
        host: crate::process::host_name(),
        device: device.to_string(),
        invocation_id: ctx.invocation_id,
        work_dir: work.display().to_string(),
        log_path: log.display().to_string(),
    }
}

/// Matrix variables as a JSON object whose numeric values are numbers (`fraction = 0.25`
/// compares as a number in `--where`), the rest text.
fn typed_matrix(matrix: &indexmap::IndexMap<String, String>) -> serde_json::Value {
    matrix
        .iter()
        .map(|(name, text)| {
            let value = text
                .parse::<i64>()
                .map(serde_json::Value::from)
                .ok()
                .or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(serde_json::Value::Number)
                })
                .unwrap_or_else(|| serde_json::Value::from(text.as_str()));
            (name.clone(), value)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
