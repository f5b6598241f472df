//! The detection stage through `rsfm-worker`: a checkpoint whose backbone names do not match
//! fails before training, naming the first missing tensors, while a matching one loads;
//! `init = "scratch"` trains from random weights on purpose; a stopped-and-resumed run ends
//! with the same weights as an uninterrupted one, tensor for tensor.
#![cfg(feature = "torch")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use rsfm_model::arch::VitConfig;
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::nn::checkpoint;
use rsfm_model::nn::vit::{PosEmbed, VisionTransformer};
use rsfm_model::protocol::Event;
use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn vit() -> Value {
    json!({ "patch_size": 8, "image_size": 64, "embed_dim": 32, "depth": 2, "num_heads": 2, "drop_path": 0.1 })
}

/// A tiny `finetune-det` stage on 3 generated DOTA images (written once per `dir`), with
/// `extra` merged into its parameters.
fn det_stage(dir: &Path, extra: Value) -> Value {
    let data = dir.join("dota");
    if !data.exists() {
        generate(
            SynthDataset::Dota,
            &data,
            &SynthOptions {
                images: 3,
                seed: 12,
                size: Some(96),
            },
        )
        .unwrap();
    }
    let mut params = json!({
        "model": vit(),
        "vitdet": { "window_size": 4 },
        "detector": {
            "channels": 16, "fc_dim": 32, "anchor_scale": 4.0,
            "rpn_pre_nms": 100, "rpn_post_nms": 32, "rpn_batch": 32, "roi_batch": 32,
            "finest_scale": 28.0
        },
        "data": { "name": "dota", "format": "dota", "version": "v2.0" },
        "steps": 6,
        "batch_size": 2,
        "lr": 1e-3,
        "warmup_steps": 2,
    });
    for (key, value) in extra.as_object().unwrap() {
        params[key] = value.clone();
    }
    json!({
        "kind": "finetune-det",
        "params": params,
        "inputs": { "pretrain": dir.join("pretrain") },
        "datasets": { "dota": data },
        "device": "cpu",
        "seed": 9,
        "work_dir": dir.join("work"),
    })
}

fn run_stage(stage: &Value, dir: &Path, extra: &[&str]) -> Output {
    let stage_file = dir.join("stage.json");
    std::fs::write(&stage_file, serde_json::to_vec(stage).unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rsfm-worker"))
        .arg("run")
        .arg("--stage")
        .arg(&stage_file)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap()
}

fn events(output: &Output) -> Vec<Event> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(Event::parse_line)
        .collect()
}

fn logged(output: &Output, text: &str) -> bool {
    events(output)
        .iter()
        .any(|e| matches!(e, Event::Log { msg, .. } if msg.contains(text)))
}

/// Writes an MAE-style encoder checkpoint of the test's ViT into `dir/pretrain`, each name
/// with `prefix` in front.
fn write_encoder_checkpoint(dir: &Path, prefix: &str) {
    let config: VitConfig = serde_json::from_value(vit()).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let _ = VisionTransformer::new(&vs.root(), &config, PosEmbed::FixedSinCos);
    let named: BTreeMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect();
    std::fs::create_dir_all(dir.join("pretrain")).unwrap();
    checkpoint::save_tensors(&named, &dir.join("pretrain/checkpoint.safetensors")).unwrap();
}

#[test]
fn a_checkpoint_with_other_names_fails_before_training_and_a_matching_one_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_encoder_checkpoint(dir.path(), "vit.encoder.");
    let stage = det_stage(dir.path(), json!({ "pretrained": "pretrain" }));
    let out = run_stage(&stage, dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lacks")
            && stderr.contains("blocks.0.attn.proj.bias")
            && stderr.contains("vit.encoder.")
            && stderr.contains("params.init = \"scratch\""),
        "{stderr}"
    );
    assert!(
        !events(&out)
            .iter()
            .any(|e| matches!(e, Event::Progress { .. })),
        "a step ran before the checkpoint was checked"
    );
    assert!(!dir.path().join("work/resume").exists());
    assert!(!dir.path().join("out/metrics.json").exists());

    write_encoder_checkpoint(dir.path(), "");
    let out = run_stage(&stage, dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        logged(&out, "loaded"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn init_scratch_trains_from_random_weights_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_stage(
        &det_stage(dir.path(), json!({ "init": "scratch" })),
        dir.path(),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(logged(&out, "random weights"));
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["steps"], json!(6.0));

    for (params, named) in [
        (
            json!({ "init": "scratch", "pretrained": "pretrain" }),
            "`pretrain`",
        ),
        (json!({ "init": "pretrained" }), "params.pretrained"),
    ] {
        let out = run_stage(&det_stage(dir.path(), params), dir.path(), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
}

#[test]
fn a_stopped_and_resumed_detector_run_ends_with_the_same_weights() {
    let straight = tempfile::tempdir().unwrap();
    let out = run_stage(&det_stage(straight.path(), json!({})), straight.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let resumed = tempfile::tempdir().unwrap();
    let stage = det_stage(resumed.path(), json!({}));
    let stopped = run_stage(&stage, resumed.path(), &["--stop-after", "3"]);
    assert_eq!(
        stopped.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert!(!resumed.path().join("out/metrics.json").exists());
    let finished = run_stage(&stage, resumed.path(), &[]);
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(logged(&finished, "resuming from step 3"));

    let a = checkpoint::read_tensors(&straight.path().join("out/checkpoint.safetensors")).unwrap();
    let b = checkpoint::read_tensors(&resumed.path().join("out/checkpoint.safetensors")).unwrap();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resume");
    }
    let metrics = |dir: &Path| std::fs::read_to_string(dir.join("out/metrics.json")).unwrap();
    assert_eq!(metrics(straight.path()), metrics(resumed.path()));
}
