//! The segmentation path end to end through `rsfm-worker`: MAE pretraining, `finetune-seg`
//! from its checkpoint on a fraction of a generated LoveDA dataset, and `evaluate`; bf16
//! fine-tuning against fp32.
#![cfg(feature = "torch")]

use std::path::Path;
use std::process::{Command, Output};

use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use serde_json::{json, Value};

fn run_stage(stage: &Value, dir: &Path, name: &str) -> Output {
    let stage_file = dir.join(format!("{name}.json"));
    std::fs::write(&stage_file, serde_json::to_vec(stage).unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rsfm-worker"))
        .arg("run")
        .arg("--stage")
        .arg(&stage_file)
        .arg("--out")
        .arg(dir.join(name))
        .output()
        .unwrap()
}

fn metrics(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn pretrain_finetune_and_evaluate_on_generated_loveda() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("loveda");
    let summary = generate(
        SynthDataset::Loveda,
        &data,
        &SynthOptions {
            images: 10,
            seed: 3,
            size: Some(64),
            test_images: 0,
        },
    )
    .unwrap();
    let scenes = dir.path().join("millionaid");
    generate(
        SynthDataset::MillionAid,
        &scenes,
        &SynthOptions {
            images: 16,
            seed: 4,
            size: Some(32),
            test_images: 0,
        },
    )
    .unwrap();
    let vit = json!({ "patch_size": 8, "image_size": 32, "embed_dim": 32, "depth": 2, "parallel": 2, "num_heads": 2 });
    let common = |kind: &str, params: Value, work: &str| {
        json!({
            "kind": kind,
            "params": params,
            "inputs": { "pretrain": dir.path().join("pretrain"), "finetune": dir.path().join("finetune") },
            "datasets": { "loveda": data, "millionaid": scenes },
            "device": "cpu",
            "seed": 11,
            "work_dir": dir.path().join(work),
        })
    };

    let pretrain = common(
        "mae-pretrain",
        json!({
            "model": vit,
            "decoder_embed_dim": 16, "decoder_depth": 1, "decoder_num_heads": 2,
            "dataset": "millionaid",
            "steps": 3, "batch_size": 4,
        }),
        "work-pretrain",
    );
    let out = run_stage(&pretrain, dir.path(), "pretrain");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let finetune = common(
        "finetune-seg",
        json!({
            "model": vit,
            "window_size": 2,
            "head_channels": 16,
            "dataset": "loveda", "format": "loveda",
            "fraction": 0.5,
            "pretrained": "pretrain",
            "steps": 30, "batch_size": 4, "lr": 2e-3, "warmup_steps": 3,
        }),
        "work-finetune",
    );
    let out = run_stage(&finetune, dir.path(), "finetune");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The heads are new; no backbone tensor may be missing (the stage fails on one anyway).
    let new = stdout
        .split_once("initialised here (its neck and heads: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(names, _)| names)
        .unwrap_or_else(|| panic!("no load report in {stdout}"));
    assert!(
        stdout.contains("tensors loaded")
            && new
                .split(", ")
                .all(|n| !n.starts_with("backbone.") || n.starts_with("backbone.neck.")),
        "{stdout}"
    );
    let trained = metrics(&dir.path().join("finetune"));
    let train_total = summary.splits.train.len() as f64;
    assert_eq!(
        trained["train_images"].as_f64().unwrap(),
        (train_total * 0.5).round()
    );
    let (first, last) = (
        trained["loss_first"].as_f64().unwrap(),
        trained["loss_last"].as_f64().unwrap(),
    );
    assert!(last < first, "fine-tuning loss went from {first} to {last}");

    let evaluate = common(
        "evaluate",
        json!({ "task": "seg", "model_from": "finetune", "dataset": "loveda", "format": "loveda" }),
        "work-eval",
    );
    let out = run_stage(&evaluate, dir.path(), "evaluate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores = metrics(&dir.path().join("evaluate"));
    for key in ["miou", "oa", "mf1"] {
        let v = scores[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert_eq!(
        scores["images"].as_f64().unwrap(),
        summary.splits.val.len() as f64
    );
}

/// Largest relative difference of a step's bf16 fine-tuning loss from its fp32 loss.
const BF16_TOLERANCE: f64 = 0.02;

#[test]
fn bf16_fine_tuning_follows_the_fp32_loss_within_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("loveda");
    generate(
        SynthDataset::Loveda,
        &data,
        &SynthOptions {
            images: 6,
            seed: 3,
            size: Some(64),
            test_images: 0,
        },
    )
    .unwrap();
    let losses = |precision: &str| {
        let stage = json!({
            "kind": "finetune-seg",
            "params": {
                "model": { "patch_size": 8, "image_size": 32, "embed_dim": 32, "depth": 2, "num_heads": 2 },
                "window_size": 2,
                "head_channels": 16,
                "dataset": "loveda", "format": "loveda",
                "init": "scratch",
                "steps": 20, "batch_size": 4, "lr": 2e-3, "warmup_steps": 3,
                "precision": precision,
            },
            "datasets": { "loveda": data },
            "device": "cpu",
            "seed": 11,
            "work_dir": dir.path().join(format!("work-{precision}")),
        });
        let out = run_stage(&stage, dir.path(), precision);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(rsfm_model::protocol::Event::parse_line)
            .filter_map(|e| match e {
                rsfm_model::protocol::Event::Progress { loss, .. } => loss,
                _ => None,
            })
            .collect::<Vec<f64>>()
    };
    let (fp32, bf16) = (losses("fp32"), losses("bf16"));
    assert_eq!((fp32.len(), bf16.len()), (20, 20));
    let worst = fp32
        .iter()
        .zip(&bf16)
        .map(|(a, b)| (a - b).abs() / a.abs())
        .fold(0.0, f64::max);
    println!(
        "finetune-seg fp32 loss {:.4} -> {:.4}, bf16 {:.4} -> {:.4}, largest relative difference {worst:.4} over 20 steps",
        fp32[0], fp32[19], bf16[0], bf16[19]
    );
    assert!(worst > 0.0, "bf16 autocast must change the arithmetic");
    assert!(worst < BF16_TOLERANCE, "bf16 loss left fp32's by {worst}");
}
