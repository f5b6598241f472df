//! This process's place among the data-parallel ranks of a training stage: the process group
//! it joined when the launcher set `WORLD_SIZE > 1`, and its share of every global batch.
//! With one process everything here is the identity and nothing is communicated.

use std::time::Duration;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::rng::{stream, SplitMix64};
use crate::dist::{DataParallel, DistributedSampler, ProcessGroup, RankEnv, DEFAULT_BUCKET_BYTES};

/// How long a rank waits for the others at the rendezvous.
const JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The ranks of a stage, as this process sees them.
#[derive(Debug, Default)]
pub struct Replicas {
    joined: Option<(RankEnv, ProcessGroup)>,
}

impl Replicas {
    /// One process: rank 0 of 1.
    pub fn single() -> Self {
        Replicas::default()
    }

    /// Joins the job the rendezvous variables describe (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`,
    /// `MASTER_PORT`); a single process when `WORLD_SIZE` is unset or 1.
    pub fn from_env() -> anyhow::Result<Self> {
        let Some(env) = RankEnv::from_env()? else {
            return Ok(Replicas::single());
        };
        let group = ProcessGroup::join(&env, JOIN_TIMEOUT)?;
        Ok(Replicas {
            joined: Some((env, group)),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.joined.as_ref().map_or(0, |(env, _)| env.rank)
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.joined.as_ref().map_or(1, |(env, _)| env.world_size)
    }

    /// The process group of the ranks (None for a single process).
    pub fn group(&self) -> Option<ProcessGroup> {
        self.joined.as_ref().map(|(_, group)| group.clone())
    }

    /// Whether this is rank 0, the one that writes checkpoints, events, metrics and outputs.
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// The device of this rank: `cuda:N` moves by `LOCAL_RANK` (every rank sees all the
    /// stage's GPUs, as under `torchrun`); the CPU stays the CPU.
    pub fn device(&self, stage_device: Device) -> Device {
        match (stage_device, &self.joined) {
            (Device::Cuda(i), Some((env, _))) => Device::Cuda(i + env.local_rank),
            (device, _) => device,
        }
    }

    /// The gradient all-reduce over the trainable variables of `vs`, after giving every
    /// rank rank 0's values of all variables; None for a single process.
    pub fn data_parallel<'a>(&'a self, vs: &VarStore) -> anyhow::Result<Option<DataParallel<'a>>> {
        let Some((_, group)) = &self.joined else {
            return Ok(None);
        };
        let dp = DataParallel::new(group, vs, DEFAULT_BUCKET_BYTES);
        dp.broadcast_parameters(vs)?;
        Ok(Some(dp))
    }

    /// The mean over the ranks of each of `values` (the step's loss and its parts) and
    /// whether any rank has `stop` set, so every rank logs the global batch's loss and all
    /// stop (or fail) at the same step.
    pub fn agree(&self, values: &[f64], stop: bool) -> anyhow::Result<(Vec<f64>, bool)> {
        let Some((env, group)) = &self.joined else {
            return Ok((values.to_vec(), stop));
        };
        let mut all = values.to_vec();
        all.push(f64::from(u8::from(stop)));
        let both = Tensor::from_slice(&all).to_kind(Kind::Double);
        group.all_reduce_sum(std::slice::from_ref(&both))?;
        let mut sums = Vec::<f64>::try_from(&both)?;
        let stop = sums.pop().is_some_and(|s| s > 0.0);
        let ranks = env.world_size as f64;
        Ok((sums.into_iter().map(|s| s / ranks).collect(), stop))
    }

    /// Waits for every rank (at the end of training, before rank 0 writes the outputs).
    pub fn barrier(&self) -> anyhow::Result<()> {
        match &self.joined {
            Some((_, group)) => group.barrier(),
            None => Ok(()),
        }
    }

    /// This rank's share of global batches of `batch_size`, or an error when the ranks cannot
    /// split it evenly.
    pub fn shard(&self, seed: u64, batch_size: usize) -> anyhow::Result<Shard> {
        Shard::new(seed, self.rank(), self.world_size(), batch_size)
    }
}

/// One rank's slice of every global batch: the same samples, augmentation draws and random
/// masking rows that a single process with the whole batch gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Run seed.
    pub seed: u64,
    /// This rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Samples per rank and step.
    pub per_rank: usize,
}

/// One sample of a rank's share of a step.
#[derive(Debug, Clone)]
pub struct ShardSample {
    /// Its index in the dataset.
    pub index: usize,
    /// Its own augmentation stream, keyed by its position in the run's sample sequence, so
    /// its crops and flips do not depend on how the global batch is split.
    pub augment: SplitMix64,
}

impl Shard {
    /// Rank `rank`'s share of global batches of `batch_size` split over `world_size` ranks,
    /// or an error when they cannot split it evenly.
    pub fn new(
        seed: u64,
        rank: usize,
        world_size: usize,
        batch_size: usize,
    ) -> anyhow::Result<Shard> {
        anyhow::ensure!(
            batch_size.is_multiple_of(world_size),
            "`batch_size` = {batch_size} cannot be split evenly over {world_size} data-parallel processes: make it a multiple of {world_size}"
        );
        Ok(Shard {
            seed,
            rank,
            world_size,
            per_rank: batch_size / world_size,
        })
    }

    /// Samples in the global batch.
    pub fn global_batch(&self) -> usize {
        self.per_rank * self.world_size
    }

    /// This rank's samples of global batch `step` over a dataset of `len` samples.
    pub fn samples(&self, step: u64, len: usize) -> Vec<ShardSample> {
        let sampler = DistributedSampler {
            seed: self.seed,
            len,
            rank: self.rank,
            world_size: self.world_size,
        };
        let first = step * self.global_batch() as u64 + (self.rank * self.per_rank) as u64;
        sampler
            .indices(step, self.per_rank)
            .into_iter()
            .zip(first..)
            .map(|(index, position)| ShardSample {
                index,
                augment: SplitMix64::new(self.seed, stream::AUGMENT, position),
            })
            .collect()
    }

    /// This rank's rows of `global`, a tensor drawn for the whole global batch (first
    /// dimension `global_batch()`), e.g. MAE's masking noise.
    pub fn local_rows(&self, global: &Tensor) -> Tensor {
        global.narrow(0, (self.rank * self.per_rank) as i64, self.per_rank as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(rank: usize, world_size: usize, per_rank: usize) -> Shard {
        Shard::new(9, rank, world_size, per_rank * world_size).unwrap()
    }

    #[test]
    fn two_shards_hold_the_single_process_batch_and_draws() {
        for step in 0..5 {
            let whole = shard(0, 1, 6).samples(step, 10);
            let split: Vec<ShardSample> = (0..2)
                .flat_map(|r| shard(r, 2, 3).samples(step, 10))
                .collect();
            assert_eq!(whole.len(), split.len());
            for (a, b) in whole.iter().zip(&split) {
                assert_eq!(a.index, b.index);
                assert_eq!(a.augment.clone().next_u64(), b.augment.clone().next_u64());
            }
        }
        let noise = Tensor::arange(12, (Kind::Float, Device::Cpu)).reshape([6, 2]);
        let rows = Tensor::cat(
            &[
                shard(0, 2, 3).local_rows(&noise),
                shard(1, 2, 3).local_rows(&noise),
            ],
            0,
        );
        assert_eq!(rows, noise);
    }

    #[test]
    fn an_uneven_split_is_refused() {
        let err = Shard::new(1, 0, 2, 5).unwrap_err().to_string();
        assert!(
            err.contains("`batch_size` = 5") && err.contains("multiple of 2"),
            "{err}"
        );
        assert_eq!(Replicas::single().shard(1, 5).unwrap().per_rank, 5);
    }
}
