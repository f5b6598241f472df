//! GPU training benchmarks that `benches/gpu/run.sh` drives; each call prints one JSON line.
//!
//! - `mae MODEL PRECISION BATCH [dp]`: MAE pretraining steps (forward under autocast,
//!   backward, AdamW) of `vit-b` or a model from `recipes/models/MODEL.toml`; with `dp`, the
//!   step includes the data-parallel gradient all-reduce (a one-rank process group). Prints
//!   step time, images/s, achieved TFLOP/s and MFU against `RSFM_GPU_PEAK_TFLOPS` (default
//!   989, the dense bf16 peak of an H100/H200 SXM).
//! - `det SIDE BATCH PRECISION`: Oriented R-CNN with a ViTDet ViT-B/16 backbone, one
//!   fine-tuning step at SIDE².
//! - `seg MODEL SIDE BATCH PRECISION`: UperNet fine-tuning steps with the ViTDet backbone of
//!   MODEL, with activation checkpointing when the model config has such a switch; prints
//!   whether it was available. The script samples peak memory with nvidia-smi meanwhile.
//!
//! `RSFM_BENCH_DEVICE` (default `cuda:0`), `RSFM_BENCH_WARMUP` (2), `RSFM_BENCH_STEPS` (5).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rsfm_model::arch::VitConfig;
use rsfm_model::autocast::Autocast;
use rsfm_model::dist::{free_port, DataParallel, ProcessGroup, RankEnv, DEFAULT_BUCKET_BYTES};
use rsfm_model::geometry::RotatedBox;
use rsfm_model::nn::mae::{MaeConfig, MaskedAutoencoder};
use rsfm_model::nn::oriented_rcnn::{ImageTargets, OrientedRcnn, OrientedRcnnConfig};
use rsfm_model::nn::segmenter::{SegHeads, Segmenter};
use rsfm_model::nn::vitdet::VitDetConfig;
use rsfm_model::params::precision::Precision;
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use rsfm_model::train::stage::parse_device;
use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[path = "../bench_env.rs"]
mod bench_env;
use bench_env::env_number;

/// Keys a model config might use for per-block activation checkpointing.
const CHECKPOINT_KEYS: [&str; 4] = [
    "activation_checkpointing",
    "checkpoint_activations",
    "grad_checkpointing",
    "checkpoint",
];

/// The `[vit]` table of `recipes/models/NAME.toml` (`vit-b` is ViT-B/16) as JSON, plus `extra`.
fn model_json(name: &str, image_size: usize, extra: &[(&str, Value)]) -> anyhow::Result<Value> {
    let mut value = if name == "vit-b" {
        serde_json::to_value(VitConfig::vit_base_patch16_224())?
    } else {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../recipes/models/{name}.toml"));
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| path.display().to_string())?;
        serde_json::to_value(
            table
                .get("vit")
                .with_context(|| format!("{}: no [vit]", path.display()))?,
        )?
    };
    value["image_size"] = json!(image_size);
    for (key, v) in extra {
        value[*key] = v.clone();
    }
    Ok(value)
}

/// Seconds per call of `step` after warm-up, with the device synchronised around each.
fn time_steps(device: Device, mut step: impl FnMut()) -> anyhow::Result<f64> {
    let warmup = env_number("RSFM_BENCH_WARMUP", 2);
    let timed = env_number("RSFM_BENCH_STEPS", 5).max(1);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..warmup {
        step();
    }
    sync();
    let started = Instant::now();
    for _ in 0..timed {
        step();
    }
    sync();
    Ok(started.elapsed().as_secs_f64() / timed as f64)
}

/// Forward FLOPs of `blocks` transformer blocks of width `d` over `tokens` tokens.
fn block_flops(blocks: f64, tokens: f64, d: f64, mlp_ratio: f64) -> f64 {
    blocks * (2.0 * tokens * (4.0 + 2.0 * mlp_ratio) * d * d + 4.0 * tokens * tokens * d)
}

/// Training FLOPs (3 × forward) of one MAE image: encoder on the visible patches, decoder
/// on all of them.
fn mae_flops(vit: &VitConfig, mae: &MaeConfig) -> f64 {
    let patches = (vit.grid_size() * vit.grid_size()) as f64;
    let visible = (patches * (1.0 - mae.mask_ratio)).round() + 1.0;
    let d = vit.embed_dim as f64;
    let patch_dim = (vit.patch_size * vit.patch_size * vit.in_chans) as f64;
    let encoder = block_flops((vit.depth * vit.parallel) as f64, visible, d, vit.mlp_ratio)
        + 2.0 * visible * patch_dim * d;
    let dd = mae.decoder_embed_dim as f64;
    let decoder = block_flops(mae.decoder_depth as f64, patches + 1.0, dd, 4.0)
        + 2.0 * (patches + 1.0) * (d * dd + dd * patch_dim);
    3.0 * (encoder + decoder)
}

fn precision_of(name: &str) -> anyhow::Result<Precision> {
    serde_json::from_value(json!(name))
        .with_context(|| format!("precision `{name}`: use bf16 or fp32"))
}

fn autocast(precision: Precision, device: Device) -> anyhow::Result<Option<Autocast>> {
    Autocast::for_precision(precision, device)
}

fn mae(device: Device, args: &[String]) -> anyhow::Result<Value> {
    let [name, precision, batch, rest @ ..] = args else {
        anyhow::bail!("usage: mae MODEL PRECISION BATCH [dp]");
    };
    let precision = precision_of(precision)?;
    let batch: i64 = batch.parse()?;
    let with_dp = rest.first().is_some_and(|a| a == "dp");
    let vit: VitConfig = serde_json::from_value(model_json(name, 224, &[])?)?;
    let mae_config = MaeConfig::default();
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let model = MaskedAutoencoder::new(&vs.root(), &vit, &mae_config);
    let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
    let group = if with_dp {
        let env = RankEnv {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: free_port()?,
        };
        Some(ProcessGroup::join(&env, Duration::from_secs(60))?)
    } else {
        None
    };
    let dp = group
        .as_ref()
        .map(|group| DataParallel::new(group, &vs, DEFAULT_BUCKET_BYTES));
    let images = Tensor::randn([batch, 3, 224, 224], (Kind::Float, device));
    let mut failure = None;
    let step_s = time_steps(device, || {
        opt.zero_grad();
        let loss = {
            let _guard = autocast(precision, device).expect("autocast");
            model.forward(&images, true).loss
        };
        loss.backward();
        if let Some(dp) = &dp {
            if let Err(err) = dp.all_reduce_gradients() {
                failure = Some(err);
            }
        }
        opt.step(1e-4);
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    let flops = mae_flops(&vit, &mae_config) * batch as f64;
    let peak: f64 = env_number("RSFM_GPU_PEAK_TFLOPS", 989) as f64 * 1e12;
    Ok(json!({
        "bench": "mae", "model": name, "params": vit.param_count(), "precision": precision,
        "batch": batch, "data_parallel": with_dp, "nccl": ProcessGroup::has_nccl(),
        "step_s": step_s, "images_per_s": batch as f64 / step_s,
        "tflops": flops / step_s / 1e12, "mfu": flops / step_s / peak,
    }))
}

fn targets(side: f64, index: usize) -> ImageTargets {
    let mut t = ImageTargets::default();
    for k in 0..20 {
        let f = (index * 20 + k) as f64;
        t.boxes.push(RotatedBox::new(
            40.0 + (f * 37.0) % (side - 80.0),
            40.0 + (f * 61.0) % (side - 80.0),
            30.0 + f % 60.0,
            12.0 + f % 15.0,
            (f * 0.37) % 3.0 - 1.5,
        ));
        t.labels.push(k % 15);
    }
    t
}

fn det(device: Device, args: &[String]) -> anyhow::Result<Value> {
    let [side, batch, precision] = args else {
        anyhow::bail!("usage: det SIDE BATCH PRECISION");
    };
    let (side, batch): (usize, usize) = (side.parse()?, batch.parse()?);
    let precision = precision_of(precision)?;
    let vit: VitConfig =
        serde_json::from_value(model_json("vit-b", side, &[("drop_path", json!(0.1))])?)?;
    let vitdet = VitDetConfig {
        window_size: 14,
        global_stages: None,
        rel_pos: false,
    };
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let model = OrientedRcnn::new(&vs.root(), &vit, &vitdet, &OrientedRcnnConfig::new(15));
    let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
    let images = Tensor::randn(
        [batch as i64, 3, side as i64, side as i64],
        (Kind::Float, device),
    );
    let goals: Vec<ImageTargets> = (0..batch).map(|i| targets(side as f64, i)).collect();
    let step_s = time_steps(device, || {
        opt.zero_grad();
        let loss = {
            let _guard = autocast(precision, device).expect("autocast");
            model.losses(&images, &goals).total()
        };
        loss.backward();
        opt.step(1e-4);
    })?;
    Ok(json!({
        "bench": "det", "model": "oriented-rcnn vitdet vit-b/16", "side": side, "batch": batch,
        "precision": precision, "step_s": step_s, "images_per_s": batch as f64 / step_s,
    }))
}

fn seg(device: Device, args: &[String]) -> anyhow::Result<Value> {
    let [name, side, batch, precision] = args else {
        anyhow::bail!("usage: seg MODEL SIDE BATCH PRECISION");
    };
    let (side, batch): (usize, i64) = (side.parse()?, batch.parse()?);
    let precision = precision_of(precision)?;
    let plain: VitConfig = serde_json::from_value(model_json(name, side, &[])?)?;
    let mut switch = None;
    let mut vit = plain.clone();
    for key in CHECKPOINT_KEYS {
        if let Ok(config) =
            serde_json::from_value::<VitConfig>(model_json(name, side, &[(key, json!(true))])?)
        {
            switch = Some(key);
            vit = config;
            break;
        }
    }
    let vitdet = VitDetConfig {
        window_size: 14,
        global_stages: None,
        rel_pos: false,
    };
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let heads = SegHeads {
        channels: 512,
        aux_channels: Some(256),
        ..Default::default()
    };
    let model = Segmenter::new(&vs.root(), &vit, &vitdet, &heads, 6);
    let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
    let images = Tensor::randn([batch, 3, side as i64, side as i64], (Kind::Float, device));
    let labels = Tensor::randint(6, [batch, side as i64, side as i64], (Kind::Int64, device));
    let step_s = time_steps(device, || {
        opt.zero_grad();
        let loss = {
            let _guard = autocast(precision, device).expect("autocast");
            let (logits, aux) = model.forward_train(&images).expect("forward");
            let loss_of = |l: &Tensor| model.loss(&l.to_kind(Kind::Float), &labels, 255);
            match aux {
                Some(aux) => loss_of(&logits) + loss_of(&aux) * 0.4,
                None => loss_of(&logits),
            }
        };
        loss.backward();
        opt.step(1e-4);
    })?;
    Ok(json!({
        "bench": "seg", "model": name, "params": plain.param_count(), "side": side, "batch": batch,
        "precision": precision, "activation_checkpointing": switch.is_some(),
        "checkpointing_switch": switch, "step_s": step_s,
    }))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let device =
        parse_device(&std::env::var("RSFM_BENCH_DEVICE").unwrap_or_else(|_| "cuda:0".into()))?;
    let line = match args.first().map(String::as_str) {
        Some("mae") => mae(device, &args[1..])?,
        Some("det") => det(device, &args[1..])?,
        Some("seg") => seg(device, &args[1..])?,
        _ => anyhow::bail!("usage: gpu mae|det|seg ... (see benches/gpu/gpu.rs)"),
    };
    println!("{line}");
    Ok(())
}
