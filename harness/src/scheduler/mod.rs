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
mod state;
mod summary;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::Cache;
use crate::executor::launch::stage_inputs;
use crate::executor::Executor;
use crate::plan::Plan;
use crate::store::Store;
use gpus::GpuPool;
use lineage::Lineage;
use progress::Progress;
use stage_task::{run_stage, StageJob, StageResult};
use state::{Slot, State};
pub use summary::{Failure, RunSummary};

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

/// Runs `plan`; returns when every stage has ended, been skipped, or the run was interrupted.
pub async fn run(
    plan: &Plan,
    ctx: Arc<RunContext>,
    options: &RunOptions,
) -> anyhow::Result<RunSummary> {
    Scheduler::new(plan, ctx, options)?.run().await
}

/// What a stage task reports when it ends: the stage, its leased GPUs and how it ended.
type TaskEnd = (usize, Vec<u32>, StageResult);

/// What the GPU pool gives a stage that is ready to start.
enum Lease {
    /// These device ids (none: it runs on CPU, or the cluster allocates its GPUs).
    Devices(Vec<u32>),
    /// Not now: the GPUs it needs are leased to running stages.
    Wait,
    /// Never: it asks for more GPUs than there are; the reason.
    Refused(String),
}

/// What ended a wait of the run.
enum Wake {
    /// A stage task ended.
    TaskEnded(Option<Result<TaskEnd, tokio::task::JoinError>>),
    /// A stage whose key another process runs may try its lock again.
    LockRetry,
    /// Ctrl-C or SIGTERM: how the message names it.
    Signal(&'static str),
}

/// One run of a plan: every stage's state, the running stage tasks and the GPU leases. Its
/// methods are the run's transitions; the summary is counted from the final states.
struct Scheduler<'a> {
    plan: &'a Plan,
    ctx: Arc<RunContext>,
    options: &'a RunOptions,
    /// Each stage's state, by plan index.
    slots: Vec<Slot>,
    /// The order in which ready stages start ([`priority::start_order`]).
    start_order: Vec<usize>,
    /// The stages of each key: a stage whose key an earlier stage of this run shares waits for
    /// it (then finds its entry) rather than for its key lock, which this very process holds.
    by_key: HashMap<&'a str, Vec<usize>>,
    pool: GpuPool,
    progress: Progress,
    running: JoinSet<TaskEnd>,
    /// Turns true on Ctrl-C or SIGTERM: the running stages stop.
    cancel: watch::Sender<bool>,
    sigterm: tokio::signal::unix::Signal,
    /// No stage starts any more (a failure without `--keep-going`, or an interrupt).
    stopping: bool,
    /// Whether the run said that stages asking for GPUs run on CPU.
    told_cpu: bool,
    /// Each failure, in the order they happened.
    failures: Vec<Failure>,
}

impl<'a> Scheduler<'a> {
    fn new(plan: &'a Plan, ctx: Arc<RunContext>, options: &'a RunOptions) -> anyhow::Result<Self> {
        let n = plan.stages.len();
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, stage) in plan.stages.iter().enumerate() {
            by_key.entry(stage.key.key.as_str()).or_default().push(i);
        }
        Ok(Scheduler {
            plan,
            ctx,
            options,
            slots: vec![Slot::default(); n],
            start_order: priority::start_order(plan),
            by_key,
            pool: GpuPool::new(options.gpus.clone()),
            progress: Progress::new(n, options.hide_progress),
            running: JoinSet::new(),
            cancel: watch::channel(false).0,
            sigterm: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
            stopping: false,
            told_cpu: false,
            failures: Vec::new(),
        })
    }

    /// Starts what is ready and waits for what runs, until nothing is left to start or wait for.
    async fn run(mut self) -> anyhow::Result<RunSummary> {
        loop {
            if self.start_ready().await? {
                continue;
            }
            let deferred = self.deferred();
            if self.running.is_empty() && !deferred {
                break;
            }
            self.wait(deferred).await?;
        }
        let cancelled = *self.cancel.borrow();
        Ok(state::summary(&self.slots, self.failures, cancelled))
    }

    /// One pass over the waiting stages in start order, each moved on where it can be. Returns
    /// whether a needed cache entry was found damaged, so that another pass follows.
    async fn start_ready(&mut self) -> anyhow::Result<bool> {
        let mut rescan = false;
        for k in 0..self.start_order.len() {
            rescan |= self.advance(self.start_order[k]).await?;
        }
        Ok(rescan)
    }

    /// Moves waiting stage `i` on: skipped when a stage it needs did not succeed, taken from the
    /// cache, or started when its needs are done and a slot, its key and its GPUs are free.
    /// Returns whether one of its inputs was found damaged and will run again.
    async fn advance(&mut self, i: usize) -> anyhow::Result<bool> {
        if self.slots[i].state != State::Waiting {
            return Ok(false);
        }
        let plan = self.plan;
        let needs = &plan.stages[i].needs;
        if needs
            .iter()
            .any(|&j| self.slots[j].state.skips_dependents())
        {
            self.end(i, State::Skipped);
            return Ok(false);
        }
        if self.stopping || !needs.iter().all(|&j| self.slots[j].state.is_done()) {
            return Ok(false);
        }
        // The plan looked in the cache; a key another run finishes later is caught by the stage
        // task after it takes the key's lock.
        if !self.forced(i) && plan.stages[i].cached && !self.slots[i].damaged {
            return self.take_from_cache(i).await.map(|()| false);
        }
        if !self.may_start(i) {
            return Ok(false);
        }
        if self.rerun_damaged_inputs(i)? {
            return Ok(true);
        }
        match self.lease(i) {
            Lease::Devices(devices) => self.start(i, devices),
            Lease::Wait => {}
            Lease::Refused(reason) => self.fail(i, reason, PathBuf::new()),
        }
        Ok(false)
    }

    /// Whether `--force` names stage `i`.
    fn forced(&self, i: usize) -> bool {
        is_forced(&self.plan.stages[i], &self.options.force)
    }

    /// The stages with the key of stage `i` (it among them).
    fn same_key(&self, i: usize) -> &[usize] {
        &self.by_key[self.plan.stages[i].key.key.as_str()]
    }

    /// Whether ready stage `i` may start now: a slot is free, it is not waiting to retry its
    /// key's lock, and no stage of its key runs.
    fn may_start(&self, i: usize) -> bool {
        self.running.len() < self.options.jobs.max(1)
            && self.slots[i].retry_at.is_none_or(|t| Instant::now() >= t)
            && !self
                .same_key(i)
                .iter()
                .any(|&j| self.slots[j].state == State::Running)
    }

    /// Whether a stage waits to retry its key's lock (the run then wakes to try it).
    fn deferred(&self) -> bool {
        !self.stopping
            && self
                .slots
                .iter()
                .any(|s| s.state == State::Waiting && s.retry_at.is_some())
    }

    /// Stage `i` ends `state`.
    fn end(&mut self, i: usize, state: State) {
        self.slots[i].state = state;
        self.progress.stage_done();
    }

    /// Stage `i` failed for `reason` (its log: `log`); without `--keep-going` nothing starts
    /// any more.
    fn fail(&mut self, i: usize, reason: String, log: PathBuf) {
        self.end(i, State::Failed);
        self.failures.push(Failure {
            stage: self.plan.stages[i].display_name(),
            reason,
            log,
        });
        self.stopping |= !self.options.keep_going;
    }

    /// Stage `i` is in the cache: recorded as cached, with the final metrics of its entry.
    async fn take_from_cache(&mut self, i: usize) -> anyhow::Result<()> {
        self.end(i, State::Cached);
        let planned = &self.plan.stages[i];
        let record = stage_task::cached_record(&self.ctx, planned, &Lineage::of(self.plan, i));
        self.ctx.store.mark_cached(&record).await?;
        let entry = self.ctx.cache.entry_dir(&planned.key.key);
        let metrics = stage_task::cached_metrics(&entry)?;
        self.ctx
            .store
            .restore_final_metrics(&planned.key.key, &metrics)
            .await
    }

    /// Checks the entries that ready stage `i` takes from the cache against their manifests:
    /// each damaged one is moved out of the cache, with a message, and its stage waits to run
    /// again instead of feeding bad data to `i`. Returns whether any was damaged.
    fn rerun_damaged_inputs(&mut self, i: usize) -> anyhow::Result<bool> {
        let mut any = false;
        for &j in &self.plan.stages[i].needs {
            if !self.slots[j].state.is_from_cache() {
                continue;
            }
            let need = &self.plan.stages[j];
            let problems = self.ctx.cache.check_entry(&need.key.key);
            if problems.is_empty() {
                continue;
            }
            let moved = self.ctx.cache.quarantine(&need.key.key)?;
            self.progress.println(&format!(
                "{}: its cache entry does not match its manifest ({}); moved to {} and running it again",
                need.display_name(),
                problems.join("; "),
                moved.display()
            ));
            self.slots[j].damaged = true;
            self.slots[j].state = State::Waiting;
            any = true;
        }
        Ok(any)
    }

    /// The GPUs ready stage `i` runs on.
    fn lease(&mut self, i: usize) -> Lease {
        if !self.ctx.executor.leases_local_gpus() {
            return Lease::Devices(Vec::new());
        }
        let planned = &self.plan.stages[i];
        let wanted = planned.stage.resources.gpus as usize;
        let total = self.pool.total();
        if total == 0 {
            if wanted > 0 && !self.told_cpu {
                self.progress
                    .println("no GPU available: stages that ask for GPUs run on CPU");
                self.told_cpu = true;
            }
            return Lease::Devices(Vec::new());
        }
        if wanted > total {
            return Lease::Refused(format!(
                "asks for {wanted} GPUs but only {total} are available"
            ));
        }
        match self.pool.lease(wanted) {
            Some(ids) => Lease::Devices(ids),
            None => {
                if !self.slots[i].told_waiting {
                    self.progress.println(&format!(
                        "{}: waiting for a GPU lease",
                        planned.display_name()
                    ));
                    self.slots[i].told_waiting = true;
                }
                Lease::Wait
            }
        }
    }

    /// Starts the task of stage `i` on `devices`.
    fn start(&mut self, i: usize, devices: Vec<u32>) {
        let planned = &self.plan.stages[i];
        let job = StageJob {
            planned: planned.clone(),
            inputs: stage_inputs(self.plan, i, &self.ctx.cache),
            devices: devices.clone(),
            forced: self.forced(i),
            lineage: Lineage::of(self.plan, i),
            cpu_threads: cpu_share(self.options.jobs, planned.stage.resources.ranks()),
            resolved_recipe: crate::plan::replay::resolved_recipe(self.plan, i),
        };
        self.slots[i].state = State::Running;
        let (ctx, progress, cancel) = (
            self.ctx.clone(),
            self.progress.clone(),
            self.cancel.subscribe(),
        );
        self.running.spawn(async move {
            let result = run_stage(ctx, job, progress, cancel).await;
            (i, devices, result)
        });
    }

    /// Waits for a stage task to end, a lock retry to be due (`deferred`) or a signal, and
    /// takes the transition it calls for.
    async fn wait(&mut self, deferred: bool) -> anyhow::Result<()> {
        let cancelled = *self.cancel.borrow();
        let wake = tokio::select! {
            joined = self.running.join_next(), if !self.running.is_empty() => Wake::TaskEnded(joined),
            _ = tokio::time::sleep(LOCK_RETRY), if deferred => Wake::LockRetry,
            _ = tokio::signal::ctrl_c(), if !cancelled => Wake::Signal("interrupted"),
            _ = self.sigterm.recv(), if !cancelled => Wake::Signal("terminated"),
        };
        match wake {
            Wake::TaskEnded(Some(joined)) => {
                let (i, devices, result) = joined?;
                self.pool.release(&devices);
                self.task_ended(i, result);
            }
            Wake::TaskEnded(None) | Wake::LockRetry => {}
            Wake::Signal(what) => {
                self.progress
                    .println(&format!("{what}: {}", self.ctx.executor.stopping()));
                self.stopping = true;
                self.cancel.send_replace(true);
            }
        }
        Ok(())
    }

    /// Stage `i`'s task ended with `result`.
    fn task_ended(&mut self, i: usize, result: StageResult) {
        match result {
            StageResult::Busy(holder) => self.wait_for_lock(i, &holder),
            StageResult::Ran => self.end(i, State::Ran),
            StageResult::Cached => {
                let shared = self
                    .same_key(i)
                    .iter()
                    .any(|&j| self.slots[j].state == State::Ran);
                self.end(i, if shared { State::Shared } else { State::Cached });
            }
            StageResult::Interrupted => self.end(i, State::Interrupted),
            StageResult::Failed {
                reason,
                stderr_tail,
                log,
            } => {
                self.progress
                    .println(&failure_report(&reason, &stderr_tail, &log));
                self.fail(i, reason, log);
            }
        }
    }

    /// Stage `i` found its key's lock held by `holder` (another process runs the same key): it
    /// waits and tries again, while other stages run.
    fn wait_for_lock(&mut self, i: usize, holder: &str) {
        let slot = &mut self.slots[i];
        if slot.retry_at.is_none() {
            self.progress.println(&format!(
                "{}: waiting for {holder}, which is running the same key; running other stages meanwhile",
                self.plan.stages[i].display_name()
            ));
        }
        slot.retry_at = Some(Instant::now() + LOCK_RETRY);
        slot.state = State::Waiting;
    }
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
