//! The scheduler: runs a plan's pending stages in dependency order on tokio, in parallel up to
//! `--jobs` and the free GPU leases, skipping what the cache holds.

pub mod gpus;
pub mod lineage;
pub mod priority;
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "progress lines are the run's output when no terminal shows bars"
)]
pub mod progress;
pub(crate) mod stage_task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::Cache;
use crate::executor::Executor;
use crate::plan::Plan;
use crate::store::Store;
use gpus::GpuPool;
use lineage::Lineage;
use progress::Progress;
use stage_task::{run_stage, StageJob, StageResult};

/// Shared state of one `rsfm run`.
pub struct RunContext {
    /// The results directory.
    pub results_dir: PathBuf,
    /// Its cache.
    pub cache: Cache,
    /// Its store.
    pub store: Store,
    /// This invocation's id in the store.
    pub invocation_id: i64,
    /// The `rsfm-worker` binary for non-`command` stages.
    pub worker: PathBuf,
    /// Where stages run (`--backend`).
    pub executor: Executor,
}

/// Options of `rsfm run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stages running at once, at most.
    pub jobs: usize,
    /// Device ids to lease (empty: CPU only).
    pub gpus: Vec<u32>,
    /// Go on with independent stages after a failure.
    pub keep_going: bool,
    /// Stage names (full or base) to rerun even when cached.
    pub force: Vec<String>,
    /// Hide progress bars.
    pub hide_progress: bool,
}

/// Where a stage ended up in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Ran,
    Cached,
    Failed,
    Skipped,
    Interrupted,
}

/// The outcome of a run; its JSON form is the documented `rsfm run --json` summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Stages whose process ran and succeeded.
    pub executed: usize,
    /// Stages found in the cache.
    pub cached: usize,
    /// Stages with the same key as a stage this run ran (another recipe's copy of it, e.g. the
    /// data and pretraining two recipes share): its entry serves both, and it is counted here
    /// rather than as cached, so that each key's run counts once.
    pub shared: usize,
    /// Stages that failed.
    pub failed: usize,
    /// Stages not run because a stage they need failed (or the run stopped).
    pub skipped: usize,
    /// Of `skipped`, those not started because the run stopped at a failure (without
    /// `--keep-going`) rather than because they need the failed stage.
    pub not_started: usize,
    /// Stages stopped by an interrupt.
    pub interrupted: usize,
    /// Each failure: stage, reason and log file.
    pub failures: Vec<Failure>,
}

/// One failed stage.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// `experiment/stage`.
    pub stage: String,
    /// Why it failed.
    pub reason: String,
    /// Its log file.
    pub log: PathBuf,
}

impl RunSummary {
    /// The one summary line, e.g. `12 stages: 9 cached, 2 ran, 1 failed`.
    pub fn line(&self) -> String {
        let total = self.executed
            + self.cached
            + self.shared
            + self.failed
            + self.skipped
            + self.interrupted;
        let mut parts = vec![
            format!("{} cached", self.cached),
            format!("{} ran", self.executed),
        ];
        let needing = self.skipped - self.not_started;
        let reasoned = self.failed > 0;
        for (n, what) in [
            (self.shared, "shared (the same key as a stage that ran)"),
            (self.failed, "failed"),
            (
                needing,
                if reasoned {
                    "skipped (they need a failed stage)"
                } else {
                    "skipped"
                },
            ),
            (
                self.not_started,
                "not started (the run stops at the first failure; --keep-going runs them)",
            ),
            (self.interrupted, "interrupted"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let mut line = format!("{total} stages: {}", parts.join(", "));
        if !self.failures.is_empty() {
            let logs: Vec<String> = self
                .failures
                .iter()
                .map(|f| format!("{}: see {}", f.stage, f.log.display()))
                .collect();
            line.push_str(&format!(" ({})", logs.join("; ")));
        }
        line
    }

    /// Whether the run was interrupted.
    pub fn was_interrupted(&self) -> bool {
        self.interrupted > 0
    }
}

/// Whether `force` (the `--force` names) names `planned`, by full or base name.
pub fn is_forced(planned: &crate::plan::PlannedStage, force: &[String]) -> bool {
    force
        .iter()
        .any(|f| f == &planned.stage.name || f == &planned.stage.base)
}

/// How often a stage whose key another process runs tries the key's lock again.
const LOCK_RETRY: Duration = Duration::from_millis(200);

/// Lines of a failed stage's stderr shown under `failed:` (the database keeps more).
pub const FAILURE_TAIL_LINES: usize = 5;

/// What `run` prints about a failure: the reason, the last lines of stderr (indented) and the
/// log file.
fn failure_report(reason: &str, stderr_tail: &str, log: &std::path::Path) -> String {
    let mut report = format!("failed: {reason}");
    for line in last_lines(stderr_tail, FAILURE_TAIL_LINES) {
        report.push_str("\n    ");
        report.push_str(line);
    }
    report.push_str(&format!("\n    log: {}", log.display()));
    report
}

/// The last `n` non-empty lines of `text`.
pub fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The needed stages (indices into `plan`) taken from the cache whose entries no longer match
/// their manifests: each is moved out of the cache, with a message, so that it runs again
/// instead of feeding bad data to the stage that needs it.
fn damaged_inputs(
    ctx: &RunContext,
    plan: &Plan,
    needs: &[usize],
    state: &[State],
    progress: &Progress,
) -> anyhow::Result<Vec<usize>> {
    let mut damaged = Vec::new();
    for &j in needs.iter().filter(|&&j| state[j] == State::Cached) {
        let need = &plan.stages[j];
        let problems = ctx.cache.check_entry(&need.key.key);
        if problems.is_empty() {
            continue;
        }
        let moved = ctx.cache.quarantine(&need.key.key)?;
        progress.println(&format!(
            "{}: its cache entry does not match its manifest ({}); moved to {} and running it again",
            need.display_name(),
            problems.join("; "),
            moved.display()
        ));
        damaged.push(j);
    }
    Ok(damaged)
}

/// Runs `plan`; returns when every stage has ended, been skipped, or the run was interrupted.
pub async fn run(
    plan: &Plan,
    ctx: Arc<RunContext>,
    options: &RunOptions,
) -> anyhow::Result<RunSummary> {
    let n = plan.stages.len();
    let mut state = vec![State::Waiting; n];
    let mut pool = GpuPool::new(options.gpus.clone());
    let progress = Progress::new(n, options.hide_progress);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut running: JoinSet<(usize, Vec<u32>, StageResult)> = JoinSet::new();
    let mut summary = RunSummary::default();
    // Keys this run's stages ran: a later stage of the same key is counted `shared`.
    let mut ran_keys = std::collections::HashSet::new();
    let mut stopping = false;
    let mut told_waiting = vec![false; n];
    let mut told_cpu = false;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let forced = |i: usize| is_forced(&plan.stages[i], &options.force);
    // Cached entries found damaged before use: their stages run again.
    let mut damaged = vec![false; n];
    // Stages whose key another process is running: when to try their lock again.
    let mut retry_at: Vec<Option<Instant>> = vec![None; n];

    let start_order = priority::start_order(plan);
    // A stage whose key an earlier stage of this run shares waits for it (then finds its entry)
    // rather than for its key lock, which this very process holds.
    let mut by_key: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, stage) in plan.stages.iter().enumerate() {
        by_key.entry(stage.key.key.as_str()).or_default().push(i);
    }
    let same_key = |i: usize| by_key[plan.stages[i].key.key.as_str()].as_slice();

    loop {
        let mut rescan = false;
        for &i in &start_order {
            if state[i] != State::Waiting {
                continue;
            }
            let planned = &plan.stages[i];
            let needs = &planned.needs;
            if needs.iter().any(|&j| {
                matches!(
                    state[j],
                    State::Failed | State::Skipped | State::Interrupted
                )
            }) {
                state[i] = State::Skipped;
                summary.skipped += 1;
                progress.stage_done();
                continue;
            }
            if !needs
                .iter()
                .all(|&j| matches!(state[j], State::Ran | State::Cached))
                || stopping
            {
                continue;
            }
            // The plan looked in the cache; a key another run finishes later is caught by the
            // stage task after it takes the key's lock.
            if !forced(i) && planned.cached && !damaged[i] {
                state[i] = State::Cached;
                summary.cached += 1;
                progress.stage_done();
                ctx.store
                    .mark_cached(&stage_task::cached_record(
                        &ctx,
                        planned,
                        &Lineage::of(plan, i),
                    ))
                    .await?;
                let entry = ctx.cache.entry_dir(&planned.key.key);
                ctx.store
                    .restore_final_metrics(&planned.key.key, &stage_task::cached_metrics(&entry)?)
                    .await?;
                continue;
            }
            if running.len() >= options.jobs.max(1)
                || retry_at[i].is_some_and(|t| Instant::now() < t)
                || same_key(i).iter().any(|&j| state[j] == State::Running)
            {
                continue;
            }
            let bad_inputs = damaged_inputs(&ctx, plan, needs, &state, &progress)?;
            if !bad_inputs.is_empty() {
                for j in bad_inputs {
                    damaged[j] = true;
                    state[j] = State::Waiting;
                    summary.cached -= 1;
                }
                rescan = true;
                continue;
            }
            let wanted = planned.stage.resources.gpus as usize;
            let devices = if !ctx.executor.leases_local_gpus() {
                Vec::new()
            } else if pool.total() == 0 {
                if wanted > 0 && !told_cpu {
                    progress.println("no GPU available: stages that ask for GPUs run on CPU");
                    told_cpu = true;
                }
                Vec::new()
            } else if wanted > pool.total() {
                state[i] = State::Failed;
                summary.failed += 1;
                summary.failures.push(Failure {
                    stage: planned.display_name(),
                    reason: format!(
                        "asks for {wanted} GPUs but only {} are available",
                        pool.total()
                    ),
                    log: PathBuf::new(),
                });
                progress.stage_done();
                stopping |= !options.keep_going;
                continue;
            } else {
                match pool.lease(wanted) {
                    Some(ids) => ids,
                    None => {
                        if !told_waiting[i] {
                            progress.println(&format!(
                                "{}: waiting for a GPU lease",
                                planned.display_name()
                            ));
                            told_waiting[i] = true;
                        }
                        continue;
                    }
                }
            };
            let inputs: BTreeMap<String, PathBuf> = needs
                .iter()
                .map(|&j| {
                    let need = &plan.stages[j];
                    (need.stage.base.clone(), ctx.cache.entry_dir(&need.key.key))
                })
                .collect();
            let job = StageJob {
                planned: planned.clone(),
                inputs,
                devices: devices.clone(),
                forced: forced(i),
                lineage: Lineage::of(plan, i),
                cpu_threads: cpu_share(options.jobs, planned.stage.resources.ranks()),
                resolved_recipe: crate::plan::replay::resolved_recipe(plan, i),
            };
            state[i] = State::Running;
            let (ctx, progress, cancel) = (ctx.clone(), progress.clone(), cancel_rx.clone());
            running.spawn(async move {
                let result = run_stage(ctx, job, progress, cancel).await;
                (i, devices, result)
            });
        }
        if rescan {
            continue;
        }
        let deferred =
            !stopping && (0..n).any(|i| state[i] == State::Waiting && retry_at[i].is_some());
        if running.is_empty() && !deferred {
            break;
        }
        tokio::select! {
            joined = running.join_next(), if !running.is_empty() => {
                let (i, devices, result) = joined.expect("set is not empty")?;
                pool.release(&devices);
                if let StageResult::Busy(holder) = &result {
                    if retry_at[i].is_none() {
                        progress.println(&format!(
                            "{}: waiting for {holder}, which is running the same key; running other stages meanwhile",
                            plan.stages[i].display_name()
                        ));
                    }
                    retry_at[i] = Some(Instant::now() + LOCK_RETRY);
                    state[i] = State::Waiting;
                    continue;
                }
                progress.stage_done();
                state[i] = match result {
                    StageResult::Ran => {
                        summary.executed += 1;
                        ran_keys.insert(plan.stages[i].key.key.clone());
                        State::Ran
                    }
                    StageResult::Cached if ran_keys.contains(&plan.stages[i].key.key) => {
                        summary.shared += 1;
                        State::Cached
                    }
                    StageResult::Cached => { summary.cached += 1; State::Cached }
                    StageResult::Interrupted => { summary.interrupted += 1; State::Interrupted }
                    StageResult::Busy(_) => State::Waiting,
                    StageResult::Failed { reason, stderr_tail, log } => {
                        progress.println(&failure_report(&reason, &stderr_tail, &log));
                        summary.failed += 1;
                        summary.failures.push(Failure { stage: plan.stages[i].display_name(), reason, log });
                        stopping |= !options.keep_going;
                        State::Failed
                    }
                };
            }
            _ = tokio::time::sleep(LOCK_RETRY), if deferred => {}
            _ = tokio::signal::ctrl_c(), if !*cancel_rx.borrow() => {
                progress.println(&format!("interrupted: {}", ctx.executor.stopping()));
                stopping = true;
                let _ = cancel_tx.send(true);
            }
            _ = sigterm.recv(), if !*cancel_rx.borrow() => {
                progress.println(&format!("terminated: {}", ctx.executor.stopping()));
                stopping = true;
                let _ = cancel_tx.send(true);
            }
        }
    }
    let waiting = state.iter().filter(|s| **s == State::Waiting).count();
    summary.skipped += waiting;
    if summary.failed > 0 && !*cancel_rx.borrow() {
        summary.not_started = waiting;
    }
    Ok(summary)
}

/// The CPU threads of one process of a stage that runs beside up to `jobs - 1` others, as one
/// of `ranks` processes: this machine's cores split evenly, at least one.
pub(crate) fn cpu_share(jobs: usize, ranks: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    split_cores(cores, jobs, ranks)
}

fn split_cores(cores: usize, jobs: usize, ranks: u32) -> usize {
    (cores / (jobs.max(1) * ranks.max(1) as usize)).max(1)
}

#[cfg(test)]
mod tests {
    use super::split_cores;

    #[test]
    fn cores_are_split_between_concurrent_stages_and_their_ranks() {
        assert_eq!(split_cores(16, 1, 1), 16);
        assert_eq!(split_cores(16, 2, 1), 8);
        assert_eq!(split_cores(16, 2, 4), 2);
        assert_eq!(split_cores(2, 2, 1), 1);
        // More stages than cores: one thread each, never zero.
        assert_eq!(split_cores(2, 8, 2), 1);
        assert_eq!(split_cores(4, 0, 0), 4);
    }
}
