//! Where each stage of a run stands, and what the run's summary counts from those states.

use std::time::Instant;

use super::summary::{Failure, RunSummary};

/// Where a stage is in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum State {
    /// Not started: its needs are not done, it waits for a slot, a GPU or its key's lock.
    #[default]
    Waiting,
    /// Its task runs.
    Running,
    /// Its process ran and succeeded.
    Ran,
    /// In the cache: found by the plan, or finished by another process while this run waited
    /// for the key's lock.
    Cached,
    /// Found in the cache after a stage of this run with the same key ran.
    Shared,
    /// It failed.
    Failed,
    /// Not run because a stage it needs failed, was skipped or was interrupted.
    Skipped,
    /// Stopped by an interrupt.
    Interrupted,
}

impl State {
    /// Whether its output is in the cache for the stages that need it.
    pub(super) fn is_done(self) -> bool {
        matches!(self, State::Ran | State::Cached | State::Shared)
    }

    /// Whether it holds an entry this run took from the cache (checked before a dependent uses
    /// it).
    pub(super) fn is_from_cache(self) -> bool {
        matches!(self, State::Cached | State::Shared)
    }

    /// Whether the stages that need it are skipped.
    pub(super) fn skips_dependents(self) -> bool {
        matches!(self, State::Failed | State::Skipped | State::Interrupted)
    }
}

/// One stage's state and what the scheduler remembers about it.
#[derive(Debug, Clone, Default)]
pub(super) struct Slot {
    /// Where it is.
    pub(super) state: State,
    /// Its cache entry was found damaged before use: it runs again.
    pub(super) damaged: bool,
    /// Another process runs its key: when to try the key's lock again.
    pub(super) retry_at: Option<Instant>,
    /// Whether the run said that it waits for a GPU lease.
    pub(super) told_waiting: bool,
}

/// The summary of a run whose stages ended in `slots`, with its `failures` in the order they
/// happened; `cancelled`: the run was interrupted. Stages still waiting were skipped; after a
/// failure that stopped the run (not an interrupt) they count as not started too.
pub(super) fn summary(slots: &[Slot], failures: Vec<Failure>, cancelled: bool) -> RunSummary {
    let count = |state: State| slots.iter().filter(|s| s.state == state).count();
    let waiting = count(State::Waiting);
    let failed = count(State::Failed);
    RunSummary {
        executed: count(State::Ran),
        cached: count(State::Cached),
        shared: count(State::Shared),
        failed,
        skipped: count(State::Skipped) + waiting,
        not_started: if failed > 0 && !cancelled { waiting } else { 0 },
        interrupted: count(State::Interrupted),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(states: &[State]) -> Vec<Slot> {
        states
            .iter()
            .map(|&state| Slot {
                state,
                ..Slot::default()
            })
            .collect()
    }

    #[test]
    fn the_summary_counts_final_states_and_waiting_stages_as_skipped() {
        use State::*;
        let ended = slots(&[Ran, Cached, Shared, Failed, Skipped, Waiting, Waiting]);
        let summary = summary(&ended, Vec::new(), false);
        assert_eq!(
            (
                summary.executed,
                summary.cached,
                summary.shared,
                summary.failed
            ),
            (1, 1, 1, 1)
        );
        assert_eq!((summary.skipped, summary.not_started), (3, 2));
        // After an interrupt the waiting stages were skipped, not left by a failure.
        let summary = super::summary(&ended, Vec::new(), true);
        assert_eq!((summary.skipped, summary.not_started), (3, 0));
        let summary = super::summary(&slots(&[Interrupted, Waiting]), Vec::new(), true);
        assert_eq!((summary.interrupted, summary.skipped), (1, 1));
    }
}
