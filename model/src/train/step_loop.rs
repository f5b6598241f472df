//! The step loop every training stage shares (MAE, segmentation, detection): resume from the
//! work dir, seed torch for each step and hand the loss this rank's share of the global batch,
//! backward (through the checkpointed blocks too), average the gradients over the
//! data-parallel ranks, AdamW update on the scheduled lr (each rank its slice under ZeRO-1,
//! then the slices are exchanged), fail on a non-finite loss, report progress, checkpoint
//! periodically and on a stop request.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::Tensor;

use super::events::Events;
use super::optim::AdamW;
use super::replicas::{Replicas, Shard};
use super::resume::{self, ResumeState};
use super::rng::seed_torch_for_step;
use super::schedule::Schedule;
use super::setup::TrainingSetup;
use super::stage::{run_digest, stop_requested};
use crate::dist::{ParameterGather, DEFAULT_BUCKET_BYTES};
use crate::nn::layers::scalar;
use crate::protocol::{Event, StageSpec};

/// How many steps, how they are reported and checkpointed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSettings {
    /// Learning rate per step (its total is the number of steps).
    pub schedule: Schedule,
    /// Items per step over all ranks (the global batch, split evenly among them); also the
    /// throughput in progress events.
    pub batch_size: usize,
    /// Steps between resume checkpoints (0: only when stopping).
    pub checkpoint_every: u64,
    /// Steps between progress events.
    pub log_every: u64,
    /// End the call after this many steps with a resume checkpoint (as a preemption would).
    pub stop_after: Option<u64>,
    /// Largest L2 norm of all gradients together; larger ones are scaled down to it after the
    /// all-reduce (PyTorch's `clip_grad_norm_`). None: no clipping.
    pub grad_clip: Option<f64>,
    /// Micro-batches each rank's share of a step is split into; their gradients add up
    /// before the update (MAE's `accum_iter`), so the global batch stays `batch_size`.
    pub accum_steps: usize,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopEnd {
    /// Every step ran.
    Finished(Trained),
    /// Stopped after this many steps; a resume checkpoint is in the work dir.
    Stopped(u64),
}

/// What a finished loop reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// The loss of each step.
    pub losses: Vec<f64>,
    /// Bytes of AdamW moments one rank holds, the largest over the ranks (about a
    /// `1/ranks` share of the unsharded size under ZeRO-1).
    pub optimizer_state_bytes: f64,
}

impl Trained {
    /// [`loss_summary`] of the losses, and `optimizer_state_bytes`.
    pub fn summary(&self) -> BTreeMap<String, f64> {
        let mut metrics = loss_summary(&self.losses);
        metrics.insert("optimizer_state_bytes".into(), self.optimizer_state_bytes);
        metrics
    }
}

/// A micro-batch's loss as the loop sees it: the objective it backpropagates and named values
/// logged as curves of their own beside `loss`: the parts the objective is made of (a
/// detector's four losses, a segmenter's main and auxiliary ones) and counts that explain them
/// (the detector's positive RoIs).
#[derive(Debug)]
pub struct StepLoss {
    /// The objective.
    pub total: Tensor,
    /// Metric name and value of each part or count, in the same order at every step.
    pub parts: Vec<(&'static str, Tensor)>,
}

impl From<Tensor> for StepLoss {
    fn from(total: Tensor) -> Self {
        StepLoss {
            total,
            parts: Vec::new(),
        }
    }
}

/// One micro-batch of a step, as the loss sees it.
#[derive(Debug, Clone)]
pub struct Step {
    /// 0-based step number (the batch to load).
    pub index: u64,
    /// This rank's share of the step's global batch.
    pub shard: Shard,
    /// Which micro-batch of this rank's share (0-based).
    pub micro: usize,
    /// Micro-batches per rank and step.
    pub micro_batches: usize,
}

impl Step {
    /// Samples in this micro-batch.
    pub fn micro_size(&self) -> usize {
        self.shard.per_rank / self.micro_batches
    }

    /// This micro-batch's rows of `rank_rows`, a tensor of this rank's whole share (first
    /// dimension `per_rank`), e.g. the images a loader gave for the step.
    pub fn micro_rows(&self, rank_rows: &Tensor) -> Tensor {
        let size = self.micro_size() as i64;
        rank_rows.narrow(0, self.micro as i64 * size, size)
    }

    /// This micro-batch's rows of `global`, a tensor drawn for the whole global batch (first
    /// dimension `global_batch()`), e.g. MAE's masking noise.
    pub fn local_rows(&self, global: &Tensor) -> Tensor {
        self.micro_rows(&self.shard.local_rows(global))
    }
}

/// Runs the remaining steps of the stage `spec` on the model in `setup`. `loss_at(step)`
/// computes the loss of this rank's share of a step (torch's generator is already seeded for
/// it, the same on every rank: masking, drop path, sampling), as a tensor or a [`StepLoss`]
/// whose parts are logged as metric rows `name` at every logged step (averaged over the
/// micro-batches and ranks as the total is); everything else happens here. With several
/// ranks, all start from rank 0's weights, gradients and the logged loss are averaged over
/// them, and every rank takes part in writing resume checkpoints (rank 0 the model, each rank
/// its optimiser shard when `opt` is sharded).
pub fn run_steps<L: Into<StepLoss>>(
    spec: &StageSpec,
    setup: &TrainingSetup,
    opt: &mut AdamW,
    settings: &LoopSettings,
    events: &mut Events,
    mut loss_at: impl FnMut(&mut Step) -> anyhow::Result<L>,
) -> anyhow::Result<LoopEnd> {
    let vs = &setup.vs;
    let replicas = &setup.replicas;
    let shard = replicas.shard(spec.seed, settings.batch_size)?;
    let micro_batches = settings.accum_steps.max(1);
    anyhow::ensure!(
        shard.per_rank.is_multiple_of(micro_batches),
        "`batch_size` = {} over {} process(es) gives {} samples per rank, which `accum_steps` = {micro_batches} cannot split evenly: make `batch_size` a multiple of {}",
        settings.batch_size,
        shard.world_size,
        shard.per_rank,
        shard.world_size * micro_batches
    );
    let total = settings.schedule.total_steps();
    fs_err::create_dir_all(&spec.work_dir)?;
    let digest = run_digest(spec);
    let mut state = match resume::load(&spec.work_dir, &digest, vs, opt)? {
        Some(resumed) => {
            let (_, shards_now) = opt.shard();
            events.log(
                "info",
                format!(
                    "resuming from step {} ({}); optimizer state of {} shard(s), now {} shard(s) over {} process(es)",
                    resumed.state.step,
                    spec.work_dir.display(),
                    resumed.shards,
                    shards_now,
                    replicas.world_size()
                ),
            );
            resumed.state
        }
        None => ResumeState {
            step: 0,
            run_digest: digest,
            losses: Vec::new(),
        },
    };
    let data_parallel = replicas.data_parallel(vs)?;
    let (_, shards) = opt.shard();
    let gather = match (&data_parallel, shards > 1) {
        (Some(dp), true) => Some(ParameterGather::new(
            dp.group(),
            opt.parameters(),
            opt.slice(),
            DEFAULT_BUCKET_BYTES,
        )),
        _ => None,
    };
    let optimizer_state_bytes = largest_over_ranks(replicas, opt.state_bytes())?;
    if gather.is_some() {
        events.log(
            "info",
            format!(
                "optimizer state sharded over {shards} processes (ZeRO-1): this one updates {} of the {} parameter elements; at most {optimizer_state_bytes} bytes of moments per process",
                opt.slice().len(),
                opt.layout().total()
            ),
        );
    }
    if data_parallel.is_some() {
        events.log(
            "info",
            format!(
                "data parallel over {} processes, {} samples each per step",
                shard.world_size, shard.per_rank
            ),
        );
    }
    if micro_batches > 1 {
        events.log(
            "info",
            format!(
                "gradient accumulation: {micro_batches} micro-batches of {} samples per rank and step",
                shard.per_rank / micro_batches
            ),
        );
    }
    let started = Instant::now();
    let first_step = state.step;
    while state.step < total {
        let step = state.step;
        opt.zero_grad();
        // The total first, then each part: summed over the micro-batches, then averaged.
        let mut sums: Vec<f64> = vec![0.0];
        let mut names: Vec<&'static str> = Vec::new();
        for micro in 0..micro_batches {
            // Every micro-batch sees torch's generator as the whole step would, so draws made
            // for the global batch (masking noise) are the same and each takes its rows.
            seed_torch_for_step(spec.seed, step);
            setup.tape.clear();
            let mut at = Step {
                index: step,
                shard,
                micro,
                micro_batches,
            };
            let StepLoss { total: loss, parts } = loss_at(&mut at)?.into();
            let value = scalar(&loss);
            anyhow::ensure!(
                value.is_finite(),
                "loss is {value} at step {} (micro-batch {}): training diverged",
                step + 1,
                micro + 1
            );
            if micro == 0 {
                names = parts.iter().map(|(name, _)| *name).collect();
                sums.resize(1 + names.len(), 0.0);
            }
            anyhow::ensure!(
                parts.len() == names.len(),
                "the loss of micro-batch {} has {} parts, the first had {}",
                micro + 1,
                parts.len(),
                names.len()
            );
            sums[0] += value;
            for (sum, (_, part)) in sums[1..].iter_mut().zip(&parts) {
                *sum += scalar(part);
            }
            (loss / micro_batches as f64).backward();
            setup.tape.backward();
        }
        let means: Vec<f64> = sums.iter().map(|s| s / micro_batches as f64).collect();
        let (means, stop_signal) = replicas.agree(&means, stop_requested())?;
        let value = means[0];
        anyhow::ensure!(
            value.is_finite(),
            "loss is {value} at step {}: training diverged",
            step + 1
        );
        if let Some(dp) = &data_parallel {
            dp.all_reduce_gradients()?;
        }
        if let Some(max_norm) = settings.grad_clip {
            clip_grad_norm(vs, max_norm);
        }
        let lr = settings.schedule.lr(step);
        opt.step(lr);
        if let Some(gather) = &gather {
            gather.all_gather()?;
        }
        state.step += 1;
        state.losses.push(value);

        if state.step % settings.log_every == 0 || state.step == total {
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            let rate = (state.step - first_step) as f64 * settings.batch_size as f64 / seconds;
            events.emit(&Event::Progress {
                step: state.step,
                total,
                loss: Some(value),
                items_per_s: Some(rate),
                lr: Some(lr),
            });
            for (name, part) in names.iter().zip(&means[1..]) {
                events.metric(name, *part, Some(state.step));
            }
        }
        let periodic = settings.checkpoint_every > 0 && state.step % settings.checkpoint_every == 0;
        let asked = settings
            .stop_after
            .is_some_and(|n| state.step - first_step >= n)
            || stop_signal;
        let stopping = asked && state.step < total;
        if periodic || stopping {
            resume::save(&spec.work_dir, vs, opt, &state, replicas)?;
        }
        if stopping {
            replicas.barrier()?;
            events.log(
                "info",
                format!(
                    "stopping after step {}; resume checkpoint saved",
                    state.step
                ),
            );
            return Ok(LoopEnd::Stopped(state.step));
        }
    }
    replicas.barrier()?;
    Ok(LoopEnd::Finished(Trained {
        losses: state.losses,
        optimizer_state_bytes,
    }))
}

/// The largest of the ranks' `bytes` (each rank's own number in its slot of a vector
/// averaged over the ranks, so each slot holds one rank's value exactly, divided).
fn largest_over_ranks(replicas: &Replicas, bytes: usize) -> anyhow::Result<f64> {
    let ranks = replicas.world_size();
    let mut slots = vec![0.0; ranks];
    slots[replicas.rank()] = bytes as f64;
    let (means, _) = replicas.agree(&slots, false)?;
    Ok(means
        .into_iter()
        .map(|mean| (mean * ranks as f64).round())
        .fold(0.0, f64::max))
}

/// Scales the gradients of the trainable variables of `vs` so that their joint L2 norm is at
/// most `max_norm` (by `max_norm / (norm + 1e-6)`, as PyTorch's `clip_grad_norm_`); returns
/// the norm before clipping.
pub fn clip_grad_norm(vs: &tch::nn::VarStore, max_norm: f64) -> f64 {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = vs
            .trainable_variables()
            .iter()
            .map(|v| v.grad())
            .filter(|g| g.defined())
            .collect();
        let squares: f64 = grads
            .iter()
            .map(|g| {
                g.to_kind(tch::Kind::Double)
                    .square()
                    .sum(tch::Kind::Double)
                    .double_value(&[])
            })
            .sum();
        let norm = squares.sqrt();
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            for mut g in grads {
                let _ = g.g_mul_scalar_(coef);
            }
        }
        norm
    })
}

/// Mean loss over the first and the last tenth of the steps (`loss_first`, `loss_last`) and
/// the loss of the final step (`loss_final`).
pub fn loss_summary(losses: &[f64]) -> BTreeMap<String, f64> {
    let window = (losses.len() / 10).clamp(1, losses.len().max(1));
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "loss_first".to_string(),
        mean(&losses[..window.min(losses.len())]),
    );
    metrics.insert(
        "loss_last".to_string(),
        mean(&losses[losses.len().saturating_sub(window)..]),
    );
    metrics.insert(
        "loss_final".to_string(),
        losses.last().copied().unwrap_or(f64::NAN),
    );
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{Init, VarStore};
    use tch::{Device, Kind};

    #[test]
    fn gradients_above_the_max_norm_are_scaled_to_it() {
        let vs = VarStore::new(Device::Cpu);
        let a = vs.root().var("a", &[2], Init::Const(1.0));
        let b = vs.root().var("b", &[1], Init::Const(1.0));
        // d/da = (3, 0), d/db = 4: joint norm 5.
        let loss = (&a * Tensor::from_slice(&[3.0f32, 0.0])).sum(Kind::Float) + &b * 4.0;
        loss.sum(Kind::Float).backward();
        assert!((clip_grad_norm(&vs, 10.0) - 5.0).abs() < 1e-9);
        assert!((b.grad().double_value(&[0]) - 4.0).abs() < 1e-6);
        assert!((clip_grad_norm(&vs, 1.0) - 5.0).abs() < 1e-9);
        assert!((a.grad().double_value(&[0]) - 0.6).abs() < 1e-6);
        assert!((b.grad().double_value(&[0]) - 0.8).abs() < 1e-6);
    }
}
