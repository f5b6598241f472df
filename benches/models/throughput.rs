//! MAE training throughput of the model presets: one JSON line per model with the mean
//! seconds per step (forward, backward, AdamW update) and images per second.
//!
//! `cargo bench -p rsfm-model --features torch --bench models` runs `vit-tiny` and `vit-b`
//! at batch 2 on the CPU; `RSFM_BENCH_MODELS=vit-b,vit-605m RSFM_BENCH_DEVICE=cuda:0
//! RSFM_BENCH_BATCH=64` measures others.

use std::path::Path;
use std::time::Instant;

use rsfm_model::arch::ModelPreset;
use rsfm_model::nn::mae::{MaeConfig, MaskedAutoencoder};
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use rsfm_model::train::stage::parse_device;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

const WARMUP_STEPS: usize = 1;
const TIMED_STEPS: usize = 3;

fn main() -> anyhow::Result<()> {
    let models = std::env::var("RSFM_BENCH_MODELS").unwrap_or_else(|_| "vit-tiny,vit-b".into());
    let device =
        parse_device(&std::env::var("RSFM_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into()))?;
    let batch: i64 = std::env::var("RSFM_BENCH_BATCH")
        .ok()
        .map(|b| b.parse())
        .transpose()?
        .unwrap_or(2);
    let presets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/models");
    for name in models.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let preset = ModelPreset::load(&presets.join(format!("{name}.toml")))?;
        let vs = VarStore::new(device);
        let mae = MaskedAutoencoder::new(&vs.root(), &preset.vit, &MaeConfig::default());
        let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
        let side = preset.vit.image_size as i64;
        let images = Tensor::randn([batch, 3, side, side], (Kind::Float, device));
        let mut step = || {
            opt.zero_grad();
            let out = mae.forward(&images, true);
            out.loss.backward();
            opt.step(1e-4);
            let _ = out.loss.double_value(&[]);
        };
        for _ in 0..WARMUP_STEPS {
            step();
        }
        let started = Instant::now();
        for _ in 0..TIMED_STEPS {
            step();
        }
        let step_s = started.elapsed().as_secs_f64() / TIMED_STEPS as f64;
        let line = serde_json::json!({
            "model": name,
            "params": preset.vit.param_count(),
            "device": format!("{device:?}"),
            "batch": batch,
            "step_s": step_s,
            "images_per_s": batch as f64 / step_s,
        });
        println!("{line}");
    }
    Ok(())
}
