//! End-to-end tests of the `rsfm-worker` binary: selftest, MAE pretraining on a generated
//! Million-AID tree, resume after a stop, and the exit codes of failures.
#![cfg(feature = "torch")]

use std::path::Path;
use std::process::{Command, Output};

use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::nn::checkpoint;
use rsfm_model::protocol::Event;
use serde_json::{json, Value};

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
    let straight = tempfile::tempdir().unwrap();
    let out = run_stage(&mae_stage(straight.path(), 10, 0.016), straight.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let resumed = tempfile::tempdir().unwrap();
    let stage = mae_stage(resumed.path(), 10, 0.016);
    let stopped = run_stage(&stage, resumed.path(), &["--stop-after", "6"]);
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
    assert!(events(&finished)
        .iter()
        .any(|e| matches!(e, Event::Log { msg, .. } if msg.contains("resuming from step 6"))));

    let a = checkpoint::read_tensors(&straight.path().join("out/checkpoint.safetensors")).unwrap();
    let b = checkpoint::read_tensors(&resumed.path().join("out/checkpoint.safetensors")).unwrap();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resume");
    }
    let metrics = |dir: &Path| std::fs::read_to_string(dir.join("out/metrics.json")).unwrap();
    assert_eq!(metrics(straight.path()), metrics(resumed.path()));
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
