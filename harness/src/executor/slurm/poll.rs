//! One background task asks Slurm for the states of all the run's unfinished jobs in one call
//! per poll interval and publishes the answers; a failed or empty reply changes nothing (the
//! states stay unknown until a later reply), so a slow controller never fails a stage.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::commands::{self, Accounting};
use super::states::{JobId, JobInfo};

/// The latest known state of every job the run followed.
pub type Snapshot = Arc<BTreeMap<JobId, JobInfo>>;

/// The run's poller of job states.
pub struct Poller {
    followed: Arc<Mutex<BTreeSet<JobId>>>,
    states: watch::Receiver<Snapshot>,
    queries: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Poller {
    /// Starts polling with `accounting`'s command every `interval`.
    pub fn start(accounting: Accounting, interval: Duration) -> Poller {
        let followed = Arc::new(Mutex::new(BTreeSet::new()));
        let (sender, states) = watch::channel(Snapshot::default());
        let queries = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(poll_loop(
            accounting,
            interval,
            followed.clone(),
            sender,
            queries.clone(),
        ));
        Poller {
            followed,
            states,
            queries,
            task,
        }
    }

    /// Includes `job` in the next queries.
    pub fn follow(&self, job: JobId) {
        self.followed.lock().expect("followed jobs").insert(job);
    }

    /// Leaves `job` out of the next queries.
    pub fn forget(&self, job: JobId) {
        self.followed.lock().expect("followed jobs").remove(&job);
    }

    /// A receiver that wakes on every new reply.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.states.clone()
    }

    /// State queries sent so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll_loop(
    accounting: Accounting,
    interval: Duration,
    followed: Arc<Mutex<BTreeSet<JobId>>>,
    sender: watch::Sender<Snapshot>,
    queries: Arc<AtomicU64>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        ticker.tick().await;
        let jobs: Vec<JobId> = followed
            .lock()
            .expect("followed jobs")
            .iter()
            .copied()
            .collect();
        if jobs.is_empty() {
            continue;
        }
        queries.fetch_add(1, Ordering::Relaxed);
        match commands::job_states(accounting, &jobs).await {
            Ok(reply) if !reply.is_empty() => {
                let mut snapshot = (**sender.borrow()).clone();
                snapshot.extend(reply);
                sender.send_replace(Arc::new(snapshot));
            }
            Ok(_) => tracing::debug!(
                "{} listed none of jobs {jobs:?}: states unknown, asking again",
                accounting.command()
            ),
            Err(err) if !warned => {
                warned = true;
                tracing::warn!("job states unknown, asking again: {err:#}");
            }
            Err(err) => tracing::debug!("job states unknown, asking again: {err:#}"),
        }
    }
}
