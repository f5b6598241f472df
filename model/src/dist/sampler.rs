//! Each rank's share of every global batch: the epoch order comes from the seed alone, as in
//! a single process, and rank `r` takes the `r`-th slice of each global batch.

use crate::data::loader::{BatchPlan, Sample};
use crate::train::rng::batch_indices;

/// Splits the global batches of a seeded epoch order across ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistributedSampler {
    /// Run seed (the same on every rank).
    pub seed: u64,
    /// Number of samples in the dataset.
    pub len: usize,
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
}

impl DistributedSampler {
    /// Indices of this rank's `per_rank` samples of global batch `step` (of
    /// `per_rank × world_size` samples). The ranks' shares are disjoint within an epoch and
    /// together equal the single-process batch of the global size.
    pub fn indices(&self, step: u64, per_rank: usize) -> Vec<usize> {
        let global = batch_indices(self.seed, self.len, per_rank * self.world_size, step);
        global[self.rank * per_rank..(self.rank + 1) * per_rank].to_vec()
    }

    /// This rank's samples of global batch `step` with the epoch each is drawn in, for the
    /// [`Loader`](crate::data::loader::Loader).
    pub fn plan(&self, step: u64, per_rank: usize) -> BatchPlan {
        let first = (step as usize * self.world_size + self.rank) * per_rank;
        let samples = self
            .indices(step, per_rank)
            .into_iter()
            .enumerate()
            .map(|(slot, index)| Sample {
                index,
                epoch: ((first + slot) / self.len) as u64,
            })
            .collect();
        BatchPlan { step, samples }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_split_the_single_process_batch() {
        let sampler = |rank| DistributedSampler {
            seed: 5,
            len: 40,
            rank,
            world_size: 4,
        };
        for step in 0..6 {
            let joined: Vec<usize> = (0..4).flat_map(|r| sampler(r).indices(step, 3)).collect();
            assert_eq!(joined, batch_indices(5, 40, 12, step));
        }
        // Within one epoch (40 samples = 10 steps of 4 × 1), no sample is seen twice.
        let mut epoch: Vec<usize> = (0..10)
            .flat_map(|s| (0..4).flat_map(move |r| sampler(r).indices(s, 1)))
            .collect();
        epoch.sort_unstable();
        assert_eq!(epoch, (0..40).collect::<Vec<_>>());
    }
}
