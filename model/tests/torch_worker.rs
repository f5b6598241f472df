//! End-to-end tests of the `rsfm-worker` binary: selftest, MAE pretraining on a generated
//! Million-AID tree, resume after a stop, the exit codes of failures, activation
//! checkpointing, and the detection stage's pretrained loading (a checkpoint whose backbone
//! names do not match fails before training, naming the first missing tensors),
//! `init = "scratch"` and resume (tensor for tensor).
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

fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rsfm-worker"))
}

/// A MAE stage on a generated Million-AID tree of 64 scenes (written once per `dir`).
fn mae_stage(dir: &Path, steps: u64, base_lr: f64) -> Value {
    let data = dir.join("millionaid");
    if !data.exists() {
        generate(
            SynthDataset::MillionAid,
            &data,
            &SynthOptions {
                images: 64,
                seed: 5,
                size: Some(32),
                test_images: 0,
            },
        )
        .unwrap();
    }
    json!({
        "kind": "mae-pretrain",
        "params": {
            "model": { "patch_size": 8, "image_size": 32, "embed_dim": 48, "depth": 2, "num_heads": 2 },
            "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2,
            "dataset": "millionaid",
            "steps": steps,
            "batch_size": 16,
            "base_lr": base_lr,
            "warmup_steps": 5,
            "checkpoint_every": 4,
        },
        "datasets": { "millionaid": data },
        "device": "cpu",
        "seed": 7,
        "work_dir": dir.join("work"),
    })
}

fn run_stage(stage: &Value, dir: &Path, extra: &[&str]) -> Output {
    let stage_file = dir.join("stage.json");
    std::fs::write(&stage_file, serde_json::to_vec(stage).unwrap()).unwrap();
    worker()
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

/// Runs the stage `stage_for(dir)` straight through, and again stopped after `stop_after`
/// steps and resumed; asserts that both runs wrote the same weights, tensor for tensor, and
/// the same metrics.
fn assert_resume_matches(stage_for: impl Fn(&Path) -> Value, stop_after: u64) {
    let straight = tempfile::tempdir().unwrap();
    let out = run_stage(&stage_for(straight.path()), straight.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let resumed = tempfile::tempdir().unwrap();
    let stage = stage_for(resumed.path());
    let stop = stop_after.to_string();
    let stopped = run_stage(&stage, resumed.path(), &["--stop-after", &stop]);
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
    assert!(logged(
        &finished,
        &format!("resuming from step {stop_after}")
    ));

    let weights = |dir: &Path| checkpoint::read_tensors(&dir.join("out/checkpoint.safetensors"));
    let (a, b) = (
        weights(straight.path()).unwrap(),
        weights(resumed.path()).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resume");
    }
    let metrics = |dir: &Path| std::fs::read_to_string(dir.join("out/metrics.json")).unwrap();
    assert_eq!(metrics(straight.path()), metrics(resumed.path()));
}

#[test]
fn selftest_runs_a_forward_pass() {
    let out = worker().arg("selftest").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("selftest ok"));
}

#[test]
fn mae_loss_falls_by_a_third_on_generated_million_aid_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_stage(&mae_stage(dir.path(), 80, 0.016), dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/metrics.json")).unwrap())
            .unwrap();
    let (first, last) = (
        metrics["loss_first"].as_f64().unwrap(),
        metrics["loss_last"].as_f64().unwrap(),
    );
    eprintln!("MAE loss over the first and last tenth of the steps: {first:.4} -> {last:.4}");
    assert!(last < 0.7 * first, "loss went from {first} to {last}");
    let progress = events(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::Progress { .. }))
        .count();
    assert_eq!(progress, 80);
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::Log { msg, .. } if msg.contains("MAE on 64 images"))));
    let weights = checkpoint::read_tensors(&dir.path().join("out/checkpoint.safetensors")).unwrap();
    for name in [
        "patch_embed.proj.weight",
        "blocks.1.attn.qkv.weight",
        "decoder_pred.weight",
        "mask_token",
        "decoder_pos_embed",
    ] {
        assert!(weights.contains_key(name), "checkpoint lacks {name}");
    }
}

#[test]
fn a_stopped_and_resumed_run_ends_with_the_same_weights() {
    assert_resume_matches(|dir| mae_stage(dir, 10, 0.016), 6);
}

#[test]
fn activation_checkpointing_trains_to_the_same_weights() {
    let plain = tempfile::tempdir().unwrap();
    let mut stage = mae_stage(plain.path(), 6, 0.016);
    stage["params"]["model"]["drop_path"] = json!(0.2);
    let out = run_stage(&stage, plain.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let checkpointed = tempfile::tempdir().unwrap();
    let mut stage = mae_stage(checkpointed.path(), 6, 0.016);
    stage["params"]["model"]["drop_path"] = json!(0.2);
    stage["params"]["activation_checkpointing"] = json!(true);
    let out = run_stage(&stage, checkpointed.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let a = checkpoint::read_tensors(&plain.path().join("out/checkpoint.safetensors")).unwrap();
    let b =
        checkpoint::read_tensors(&checkpointed.path().join("out/checkpoint.safetensors")).unwrap();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let diff = (t - &b[name]).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name} differs by {diff} with checkpointing");
    }
}

/// The loss of every step of a run's progress events.
fn loss_curve(output: &Output) -> Vec<f64> {
    events(output)
        .into_iter()
        .filter_map(|e| match e {
            Event::Progress { loss, .. } => loss,
            _ => None,
        })
        .collect()
}

#[test]
fn one_and_two_loader_threads_give_the_same_loss_curve() {
    let curve = |threads: usize| {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = mae_stage(dir.path(), 6, 0.016);
        stage["params"]["loader_threads"] = json!(threads);
        let out = run_stage(&stage, dir.path(), &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(logged(&out, &format!("({threads} loader threads)")));
        loss_curve(&out)
    };
    let one = curve(1);
    assert_eq!(one.len(), 6, "{one:?}");
    assert_eq!(
        one,
        curve(2),
        "the loss curve depends on the loader's threads"
    );
}

#[test]
fn a_damaged_training_image_fails_the_stage_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // 4 steps of 16 read all 64 scenes.
    let stage = mae_stage(dir.path(), 4, 0.016);
    let victim = walk_files(&dir.path().join("millionaid"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .expect("the generated tree holds JPEG scenes");
    std::fs::write(&victim, b"not a jpeg").unwrap();
    let out = run_stage(&stage, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&victim.display().to_string()), "{stderr}");
    assert!(!dir.path().join("out/metrics.json").exists());
    assert!(!dir.path().join("out/checkpoint.safetensors").exists());
}

/// Every file under `dir`, recursively, in a fixed order.
fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_diverging_loss_fails_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_stage(&mae_stage(dir.path(), 10, 1e35), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at step"), "{stderr}");
    assert!(!dir.path().join("out/metrics.json").exists());
}

#[test]
fn a_bad_stage_file_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut stage = mae_stage(dir.path(), 10, 0.016);
    stage["params"]["batch_sise"] = json!(4);
    let out = run_stage(&stage, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch_sise"));

    let mut stage = mae_stage(dir.path(), 10, 0.016);
    stage["kind"] = json!("mystery");
    let out = run_stage(&stage, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mystery"));
}

#[test]
fn sigterm_stops_with_a_resume_checkpoint_and_a_rerun_finishes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let stage = mae_stage(dir.path(), 100_000, 0.016);
    let stage_file = dir.path().join("stage.json");
    std::fs::write(&stage_file, serde_json::to_vec(&stage).unwrap()).unwrap();
    let mut child = worker()
        .arg("run")
        .arg("--stage")
        .arg(&stage_file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| matches!(Event::parse_line(&l), Some(Event::Progress { step: 2, .. })));
    assert!(started, "no progress before the signal");
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{rest:?}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("work/resume/state.json")).unwrap())
            .unwrap();
    let stopped_at = state["step"].as_u64().unwrap();
    assert!(stopped_at >= 2);

    let mut shorter = stage.clone();
    shorter["params"]["steps"] = json!(stopped_at + 2);
    // Other parameters are another run: its checkpoint must not be picked up.
    let fresh = run_stage(&shorter, dir.path(), &[]);
    assert!(fresh.status.success());
    assert!(!events(&fresh)
        .iter()
        .any(|e| matches!(e, Event::Log { msg, .. } if msg.contains("resuming"))));
}

fn det_vit() -> Value {
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
                test_images: 0,
            },
        )
        .unwrap();
    }
    let mut params = json!({
        "model": det_vit(),
        "window_size": 4,
        "channels": 16, "fc_dim": 32, "anchor_scale": 4.0,
        "rpn_pre_nms": 100, "rpn_post_nms": 32, "rpn_batch": 32, "roi_batch": 32,
        "finest_scale": 28.0,
        "dataset": "dota", "format": "dota", "version": "v2.0",
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

fn logged(output: &Output, text: &str) -> bool {
    events(output)
        .iter()
        .any(|e| matches!(e, Event::Log { msg, .. } if msg.contains(text)))
}

/// Writes an MAE-style encoder checkpoint of the test's ViT into `dir/pretrain`, each name
/// with `prefix` in front.
fn write_encoder_checkpoint(dir: &Path, prefix: &str) {
    let config: VitConfig = serde_json::from_value(det_vit()).unwrap();
    let _turn = crate::common::torch_turn();
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
fn a_bf16_detector_run_trains_close_to_fp32() {
    let losses = |precision: &str| {
        let dir = tempfile::tempdir().unwrap();
        let stage = det_stage(
            dir.path(),
            json!({ "init": "scratch", "precision": precision }),
        );
        let out = run_stage(&stage, dir.path(), &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        loss_curve(&out)
    };
    let (fp32, bf16) = (losses("fp32"), losses("bf16"));
    assert_eq!((fp32.len(), bf16.len()), (6, 6));
    // The first step's loss: the same weights and batch, only the backbone's arithmetic
    // differs. Later steps also differ in the proposals the RPN samples.
    let first = (fp32[0] - bf16[0]).abs() / fp32[0];
    println!(
        "finetune-det first-step loss: fp32 {} bf16 {} (relative difference {first:.4})",
        fp32[0], bf16[0]
    );
    assert!(first > 0.0, "bf16 autocast must change the arithmetic");
    assert!(first < 0.02, "bf16 first loss left fp32's by {first}");
}

#[test]
fn a_stopped_and_resumed_detector_run_ends_with_the_same_weights() {
    assert_resume_matches(|dir| det_stage(dir, json!({})), 3);
}

#[test]
fn help_exits_0_and_version_names_crate_libtorch_and_cuda() {
    let help = worker().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("run") && text.contains("selftest"), "{text}");

    let version = worker().arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        text.starts_with(&format!(
            "rsfm-worker {}, libtorch 2.11.0 (",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("cuda available: {}", tch::Cuda::is_available())),
        "{text}"
    );

    let unknown = worker().arg("train").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
