//! Training-step throughput of ViT-B/16 at 224² in two forms, for comparison with PyTorch
//! eager (`benches/models/pytorch_eager.sh` runs both sides): `mae` (MAE pretraining step,
//! ViT-B/16 encoder + 8-block 512-wide decoder, 75 % masking, normalised-pixel loss) and
//! `vit` (plain ViT-B/16, mean squared token output of `forward_features` as the loss).
//! Each step is forward, backward and an AdamW update. Prints one JSON line per model with
//! the mean and the fastest step (the fastest is the steadier figure on a shared machine) and
//! the process's peak resident memory so far (run one model per process to compare it).
//!
//! Settings from the environment: `RSFM_BENCH_MODELS` (default `mae,vit`),
//! `RSFM_BENCH_BATCH` (8), `RSFM_BENCH_THREADS` (torch intra-op threads, default: torch's
//! choice), `RSFM_BENCH_WARMUP` (1), `RSFM_BENCH_STEPS` (3) and `RSFM_BENCH_CHECKPOINTING`
//! (1: activation checkpointing of every block; default 0).

use std::time::Instant;

use anyhow::Context;
use rsfm_model::arch::VitConfig;
use rsfm_model::nn::checkpointing::Tape;
use rsfm_model::nn::mae::{MaeConfig, MaskedAutoencoder};
use rsfm_model::nn::vit::{PosEmbed, VisionTransformer};
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a valid number")),
        Err(_) => Ok(default),
    }
}

/// This process's peak resident memory in MiB (Linux), or `None` where it cannot be read.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Seconds of each of `timed` calls of `step` after `warmup` untimed ones.
fn time_steps(warmup: usize, timed: usize, mut step: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        step();
    }
    (0..timed)
        .map(|_| {
            let started = Instant::now();
            step();
            started.elapsed().as_secs_f64()
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let models = std::env::var("RSFM_BENCH_MODELS").unwrap_or_else(|_| "mae,vit".into());
    let batch: i64 = env_or("RSFM_BENCH_BATCH", 8)?;
    let warmup: usize = env_or("RSFM_BENCH_WARMUP", 1)?;
    let timed: usize = env_or("RSFM_BENCH_STEPS", 3)?;
    let checkpointing = env_or("RSFM_BENCH_CHECKPOINTING", 0u8)? == 1;
    anyhow::ensure!(
        batch > 0 && timed > 0,
        "RSFM_BENCH_BATCH and RSFM_BENCH_STEPS must be positive"
    );
    if let Ok(threads) = std::env::var("RSFM_BENCH_THREADS") {
        let threads: i32 = threads
            .parse()
            .with_context(|| format!("RSFM_BENCH_THREADS={threads:?} is not a number"))?;
        tch::set_num_threads(threads);
    }
    tch::manual_seed(0);
    // ViT-B/16 at 224² without stochastic depth (neither reference model uses it here).
    let config = VitConfig::vit_base_patch16_224();
    let side = config.image_size as i64;
    let images = Tensor::randn([batch, 3, side, side], (Kind::Float, Device::Cpu));
    for name in models.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let vs = VarStore::new(Device::Cpu);
        let tape = Tape::default();
        let loss_of: Box<dyn Fn(&Tensor) -> Tensor> = match name {
            "mae" => {
                let mut mae = MaskedAutoencoder::new(&vs.root(), &config, &MaeConfig::default());
                if checkpointing {
                    mae.checkpoint_activations(&tape);
                }
                Box::new(move |x| mae.forward(x, true).loss)
            }
            "vit" => {
                let mut vit = VisionTransformer::new(&vs.root(), &config, PosEmbed::Learned);
                if checkpointing {
                    vit.checkpoint_activations(&tape);
                }
                Box::new(move |x| vit.forward_features(x, true).square().mean(Kind::Float))
            }
            other => anyhow::bail!("RSFM_BENCH_MODELS: unknown model `{other}` (use mae, vit)"),
        };
        let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
        let times = time_steps(warmup, timed, || {
            opt.zero_grad();
            let loss = loss_of(&images);
            loss.backward();
            tape.backward();
            opt.step(1e-4);
            let _ = loss.double_value(&[]);
        });
        let params: usize = vs.variables().values().map(Tensor::numel).sum();
        let step_s = times.iter().sum::<f64>() / timed as f64;
        let best_step_s = times.iter().copied().fold(f64::INFINITY, f64::min);
        let line = serde_json::json!({
            "impl": "rsfm",
            "model": name,
            "batch": batch,
            "threads": tch::get_num_threads(),
            "steps": timed,
            "step_s": step_s,
            "images_per_s": batch as f64 / step_s,
            "best_step_s": best_step_s,
            "best_images_per_s": batch as f64 / best_step_s,
            "params": params,
            "activation_checkpointing": checkpointing,
            "peak_rss_mib": peak_rss_mib(),
        });
        println!("{line}");
    }
    Ok(())
}
