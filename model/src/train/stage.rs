//! What every stage kind shares: the device, the run identity for resuming, init seeding.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use tch::Device;

use super::rng::{stream, SplitMix64};
use crate::protocol::StageSpec;

/// Parses a stage device name (`cpu`, `cuda:N`).
pub fn parse_device(name: &str) -> anyhow::Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    if let Some(i) = name
        .strip_prefix("cuda:")
        .and_then(|i| i.parse::<usize>().ok())
    {
        return Ok(Device::Cuda(i));
    }
    anyhow::bail!("`device` must be `cpu` or `cuda:N`, got `{name}`")
}

/// sha256 over kind, parameters and seed: identifies a run, so a resume checkpoint of other
/// settings is never picked up. The parameters the stage key leaves out
/// ([`crate::params::left_out_of_key`]: loader threads, optimiser sharding, ...) are left out
/// here too, so a run stopped with one value of them resumes with another.
pub fn run_digest(spec: &StageSpec) -> String {
    let mut params = spec.params.clone();
    if let Some(object) = params.as_object_mut() {
        object.retain(|name, _| !crate::params::left_out_of_key(&spec.kind, name));
    }
    let mut hasher = Sha256::new();
    hasher.update(spec.kind.as_bytes());
    hasher.update(params.to_string().as_bytes());
    hasher.update(spec.seed.to_le_bytes());
    hex::encode(hasher.finalize())
}

/// Seeds torch's generator for model initialisation from the run seed.
pub fn seed_init(seed: u64) {
    tch::manual_seed((SplitMix64::new(seed, stream::INIT, 0).next_u64() >> 1) as i64);
}

/// How a training call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All steps done; the final metrics (for `metrics.json`).
    Finished(std::collections::BTreeMap<String, f64>),
    /// Stopped on request after this many steps, with a resume checkpoint.
    Stopped(u64),
}

static STOP_REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Makes SIGTERM and SIGINT request a stop: the training loops finish the current step,
/// save a resume checkpoint and return [`Outcome::Stopped`] (Slurm's `--signal=TERM@...`).
pub fn install_stop_signals() -> anyhow::Result<()> {
    let flag = STOP_REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(flag))?;
    }
    Ok(())
}

/// Whether a stop signal arrived.
pub fn stop_requested() -> bool {
    STOP_REQUESTED
        .get()
        .is_some_and(|f| f.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(params: serde_json::Value) -> StageSpec {
        StageSpec {
            kind: "mae-pretrain".into(),
            params,
            inputs: Default::default(),
            datasets: Default::default(),
            device: "cpu".into(),
            seed: 3,
            work_dir: "work".into(),
        }
    }

    #[test]
    fn the_run_digest_ignores_what_the_key_ignores() {
        let base = run_digest(&spec(serde_json::json!({"steps": 4})));
        let sharded =
            serde_json::json!({"steps": 4, "optimizer_sharding": true, "loader_threads": 2});
        assert_eq!(run_digest(&spec(sharded)), base);
        assert_ne!(run_digest(&spec(serde_json::json!({"steps": 5}))), base);
    }
}
