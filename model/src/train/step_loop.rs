//! The step loop every training stage shares: resume from the work dir, seed each step,
//! backward and AdamW update on the scheduled lr, fail on a non-finite loss, report progress,
//! checkpoint periodically and on a stop request.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::nn::VarStore;
use tch::Tensor;

use super::events::Events;
use super::optim::AdamW;
use super::resume::{self, ResumeState};
use super::rng::seed_torch_for_step;
use super::schedule::CosineSchedule;
use super::stage::{run_digest, stop_requested};
use crate::nn::layers::scalar;
use crate::protocol::{Event, StageSpec};

/// How many steps, how they are reported and checkpointed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopSettings {
    /// Learning rate per step (its `total_steps` is the number of steps).
    pub schedule: CosineSchedule,
    /// Items per step, for the throughput in progress events.
    pub batch_size: usize,
    /// Steps between resume checkpoints (0: only when stopping).
    pub checkpoint_every: u64,
    /// Steps between progress events.
    pub log_every: u64,
    /// End the call after this many steps with a resume checkpoint (as a preemption would).
    pub stop_after: Option<u64>,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopEnd {
    /// Every step ran; the loss of each.
    Finished(Vec<f64>),
    /// Stopped after this many steps; a resume checkpoint is in the work dir.
    Stopped(u64),
}

/// Runs the remaining steps of the stage `spec`. `loss_at(step)` computes the loss of a step
/// (torch's generator is already seeded for it); everything else happens here.
pub fn run_steps(
    spec: &StageSpec,
    vs: &VarStore,
    opt: &mut AdamW,
    settings: &LoopSettings,
    events: &mut Events,
    mut loss_at: impl FnMut(u64) -> anyhow::Result<Tensor>,
) -> anyhow::Result<LoopEnd> {
    let total = settings.schedule.total_steps;
    fs_err::create_dir_all(&spec.work_dir)?;
    let digest = run_digest(spec);
    let mut state = match resume::load(&spec.work_dir, &digest, vs, opt)? {
        Some(state) => {
            events.log(
                "info",
                format!(
                    "resuming from step {} ({})",
                    state.step,
                    spec.work_dir.display()
                ),
            );
            state
        }
        None => ResumeState {
            step: 0,
            run_digest: digest,
            losses: Vec::new(),
        },
    };
    let started = Instant::now();
    let first_step = state.step;
    while state.step < total {
        let step = state.step;
        seed_torch_for_step(spec.seed, step);
        opt.zero_grad();
        let loss = loss_at(step)?;
        let value = scalar(&loss);
        anyhow::ensure!(
            value.is_finite(),
            "loss is {value} at step {}: training diverged",
            step + 1
        );
        loss.backward();
        opt.step(settings.schedule.lr(step));
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
            });
        }
        let periodic = settings.checkpoint_every > 0 && state.step % settings.checkpoint_every == 0;
        let asked = settings
            .stop_after
            .is_some_and(|n| state.step - first_step >= n)
            || stop_requested();
        let stopping = asked && state.step < total;
        if periodic || stopping {
            resume::save(&spec.work_dir, vs, opt, &state)?;
        }
        if stopping {
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
    Ok(LoopEnd::Finished(state.losses))
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
