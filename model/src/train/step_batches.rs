//! A rank's batches for the step loop from the threaded [`Loader`]: the loader starts at the
//! first step the loop asks for (0, or the step a resume checkpoint holds), gives this rank's
//! share of each step's global batch, and each micro-batch takes its items of it.

use anyhow::Context;

use super::replicas::{Shard, ShardSample};
use super::step_loop::Step;
use crate::data::loader::{Batch, BatchPlan, Loader, LoaderConfig};

/// Batches the loader keeps ready ahead of the step loop.
pub const PREFETCH_BATCHES: usize = 2;
/// Most loader threads a rank takes when the recipe sets none.
const MAX_DEFAULT_LOADER_THREADS: usize = 8;

/// `loader_threads`, or the machine's cores shared among the `ranks` on it (1 to 8).
pub fn loader_threads(requested: Option<usize>, ranks: usize) -> usize {
    requested.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / ranks.max(1)).clamp(1, MAX_DEFAULT_LOADER_THREADS)
    })
}

/// The loader settings of a stage: `threads` producing threads, [`PREFETCH_BATCHES`] ahead.
pub fn loader_config(threads: usize) -> LoaderConfig {
    LoaderConfig {
        threads,
        prefetch: PREFETCH_BATCHES,
    }
}

/// The plans of this rank's share of steps `first..total` over a dataset of `len` samples,
/// each sample with the augmentation stream of its position in the run (as
/// [`Shard::samples`] draws them).
pub fn shard_plans(
    shard: Shard,
    len: usize,
    first: u64,
    total: u64,
) -> impl Iterator<Item = BatchPlan<ShardSample>> + Send + 'static {
    (first..total).map(move |step| BatchPlan {
        step,
        samples: shard.samples(step, len),
    })
}

/// Starts a loader at a step: given the step the loop asks for first, the loader of this
/// rank's batches from there to the end.
type StartLoader<T, E> = Box<dyn FnMut(&Step) -> Loader<T, E>>;

/// This rank's batches, one per step, from a loader started on the loop's first request.
pub struct StepBatches<T, E> {
    start: StartLoader<T, E>,
    loader: Option<Loader<T, E>>,
    /// The last step's batch, which its later micro-batches take their items of.
    current: Option<Batch<T>>,
}

impl<T, E> std::fmt::Debug for StepBatches<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepBatches")
            .field("started", &self.loader.is_some())
            .field("step", &self.current.as_ref().map(|b| b.step))
            .finish()
    }
}

impl<T: Send + 'static, E: Into<anyhow::Error> + Send + 'static> StepBatches<T, E> {
    /// Batches from the loader `start` makes for the first step the loop asks for.
    pub fn new(start: impl FnMut(&Step) -> Loader<T, E> + 'static) -> Self {
        StepBatches {
            start: Box::new(start),
            loader: None,
            current: None,
        }
    }

    /// This micro-batch's items of `step` (the rank's batch is loaded once per step).
    pub fn micro_batch(&mut self, step: &Step) -> anyhow::Result<&[T]> {
        if self.current.as_ref().map(|b| b.step) != Some(step.index) {
            self.current = None;
            let loader = match &mut self.loader {
                Some(loader) => loader,
                empty => empty.insert((self.start)(step)),
            };
            let batch = loader
                .next_batch()
                .with_context(|| format!("the loader ended before step {}", step.index + 1))?
                .map_err(Into::into)
                .context("cannot load a training sample")?;
            anyhow::ensure!(
                batch.step == step.index,
                "the loader gave step {} for step {}",
                batch.step + 1,
                step.index + 1
            );
            self.current = Some(batch);
        }
        let items = &self
            .current
            .as_ref()
            .context("a batch was just loaded")?
            .items;
        let size = step.micro_size();
        items
            .get(step.micro * size..(step.micro + 1) * size)
            .with_context(|| {
                format!(
                    "the loader gave {} samples for step {}, not {}",
                    items.len(),
                    step.index + 1,
                    step.shard.per_rank
                )
            })
    }
}
