//! ZeRO-1 and reshardable resume checkpoints through the `rsfm-worker` binary, its ranks as
//! local Gloo processes: a tiny MAE stage on 2 ranks with `optimizer_sharding` follows the
//! unsharded loss curve (relative 1e-6) with half the optimiser memory per rank, so does a
//! segmentation fine-tuning stage with layer-wise lr decay, weight decay and clipping, and a stage
//! stopped at a checkpoint on 2 sharded ranks resumes on 1 rank (unsharded) and on 4 (sharded),
//! continuing the curve of an uninterrupted run.
#![cfg(feature = "torch")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::dist::spawn_local_ranks;
use rsfm_model::nn::checkpoint;
use rsfm_model::protocol::Event;
use serde_json::{json, Value};

/// A MAE stage over the generated Million-AID tree in `data`, working in `work`.
fn mae_stage(data: &Path, work: &Path, steps: u64, extra: Value) -> Value {
    if !data.exists() {
        generate(
            SynthDataset::MillionAid,
            data,
            &SynthOptions {
                images: 48,
                seed: 3,
                size: Some(32),
                test_images: 0,
            },
        )
        .unwrap();
    }
    let mut params = json!({
        "model": { "patch_size": 8, "image_size": 32, "embed_dim": 48, "depth": 2, "num_heads": 2 },
        "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2,
        "dataset": "millionaid",
        "steps": steps,
        "batch_size": 16,
        "base_lr": 1.5e-3,
        "warmup_steps": 2,
        "weight_decay": 0.05,
        "loader_threads": 1,
    });
    for (key, value) in extra.as_object().unwrap() {
        params[key] = value.clone();
    }
    json!({
        "kind": "mae-pretrain",
        "params": params,
        "datasets": { "millionaid": data },
        "device": "cpu",
        "seed": 7,
        "work_dir": work,
    })
}

/// Runs `stage` as `ranks` local processes writing to `out`; returns rank 0's output after
/// checking that every rank exited with `code`.
fn run_ranks(stage: &Value, out: &Path, ranks: usize, extra: &[&str], code: i32) -> Output {
    std::fs::create_dir_all(out).unwrap();
    let stage_file = out.with_extension("stage.json");
    std::fs::write(&stage_file, serde_json::to_vec(stage).unwrap()).unwrap();
    let make = |_| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rsfm-worker"));
        command
            .arg("run")
            .arg("--stage")
            .arg(&stage_file)
            .arg("--out")
            .arg(out)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let outputs: Vec<Output> = if ranks == 1 {
        vec![make(0).output().unwrap()]
    } else {
        spawn_local_ranks(ranks, make)
            .unwrap()
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect()
    };
    for (rank, output) in outputs.iter().enumerate() {
        assert_eq!(
            output.status.code(),
            Some(code),
            "rank {rank} of {ranks}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    outputs.into_iter().next().unwrap()
}

/// The loss of each step the run reported, by step.
fn losses(output: &Output) -> Vec<(u64, f64)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(Event::parse_line)
        .filter_map(|event| match event {
            Event::Progress {
                step,
                loss: Some(loss),
                ..
            } => Some((step, loss)),
            _ => None,
        })
        .collect()
}

fn logged(output: &Output, text: &str) -> bool {
    String::from_utf8_lossy(&output.stdout).contains(text)
}

fn metric(out: &Path, name: &str) -> f64 {
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    metrics[name].as_f64().unwrap()
}

/// Asserts that two loss curves are the same steps with losses equal within `rtol`.
fn assert_curves_match(got: &[(u64, f64)], want: &[(u64, f64)], rtol: f64, what: &str) {
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        want.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        "{what}: steps"
    );
    for ((step, a), (_, b)) in got.iter().zip(want) {
        let relative = (a - b).abs() / b.abs();
        assert!(
            relative <= rtol,
            "{what}: step {step} loss {a} vs {b} (relative {relative:e} > {rtol:e})"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn zero_one_on_two_ranks_follows_the_unsharded_curve_with_half_the_optimizer_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("millionaid");
    // Clipping at a small norm scales every step's gradients by the global norm.
    let run = |name: &str, sharding: bool| -> (Vec<(u64, f64)>, PathBuf) {
        let extra = json!({ "optimizer_sharding": sharding, "grad_clip": 0.05 });
        let stage = mae_stage(&data, &dir.path().join(format!("{name}.work")), 6, extra);
        let out = dir.path().join(name);
        let output = run_ranks(&stage, &out, 2, &[], 0);
        assert_eq!(logged(&output, "(ZeRO-1)"), sharding);
        (losses(&output), out)
    };
    let (unsharded, unsharded_out) = run("unsharded", false);
    let (sharded, sharded_out) = run("sharded", true);
    assert_eq!(unsharded.len(), 6);
    assert_curves_match(&sharded, &unsharded, 1e-6, "sharded vs unsharded");

    let weights = |out: &Path| checkpoint::read_tensors(&out.join("checkpoint.safetensors"));
    let (a, b) = (
        weights(&unsharded_out).unwrap(),
        weights(&sharded_out).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .map(|(name, t)| (t - &b[name]).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    println!("sharded vs unsharded weights differ by at most {worst:e}");
    assert!(worst <= 1e-6, "weights differ by {worst}");

    // Two fp32 moments per element: all of them unsharded, half (rounded up) sharded.
    let whole = metric(&unsharded_out, "optimizer_state_bytes");
    let half = metric(&sharded_out, "optimizer_state_bytes");
    let elements = whole / 8.0;
    println!("optimizer state per rank: {whole} bytes unsharded, {half} bytes sharded");
    assert!(elements > 1000.0, "{whole}");
    assert_eq!(half, 8.0 * (elements / 2.0).ceil());
}

#[test]
fn a_run_stopped_on_two_sharded_ranks_resumes_on_one_rank_and_on_four() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("millionaid");
    let stage = |work: &str, sharding: bool| {
        let extra = json!({ "optimizer_sharding": sharding, "checkpoint_every": 2 });
        mae_stage(&data, &dir.path().join(work), 8, extra)
    };
    let straight = losses(&run_ranks(
        &stage("straight.work", false),
        &dir.path().join("straight"),
        1,
        &[],
        0,
    ));
    let stopped = losses(&run_ranks(
        &stage("stopped.work", true),
        &dir.path().join("stopped"),
        2,
        &["--stop-after", "4"],
        3,
    ));
    assert_eq!(stopped.len(), 4);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("stopped.work/resume/optimizer.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["shards"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["shards"][1]["world_size"], 2);

    for (ranks, sharding) in [(1, false), (4, true)] {
        let work = format!("resumed{ranks}.work");
        copy_dir(&dir.path().join("stopped.work"), &dir.path().join(&work));
        let out = dir.path().join(format!("resumed{ranks}"));
        let resumed = run_ranks(&stage(&work, sharding), &out, ranks, &[], 0);
        assert!(
            logged(&resumed, "resuming from step 4"),
            "{ranks} ranks: {}",
            String::from_utf8_lossy(&resumed.stdout)
        );
        let curve: Vec<(u64, f64)> = stopped.iter().chain(&losses(&resumed)).copied().collect();
        assert_curves_match(
            &curve,
            &straight,
            1e-5,
            &format!("2 sharded ranks, then {ranks}"),
        );
    }
}

#[test]
fn zero_one_fine_tuning_with_layer_decay_follows_the_unsharded_curve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("loveda");
    generate(
        SynthDataset::Loveda,
        &data,
        &SynthOptions {
            images: 8,
            seed: 3,
            size: Some(64),
            test_images: 0,
        },
    )
    .unwrap();
    let run = |name: &str, sharding: bool| {
        let stage = json!({
            "kind": "finetune-seg",
            "params": {
                "model": { "patch_size": 8, "image_size": 32, "embed_dim": 32, "depth": 2, "num_heads": 2 },
                "window_size": 2, "head_channels": 16, "norm": "gn",
                "dataset": "loveda", "format": "loveda", "init": "scratch",
                "steps": 4, "batch_size": 4, "lr": 2e-3, "warmup_steps": 1,
                "layer_decay": 0.5, "weight_decay": 0.05, "grad_clip": 0.5,
                "optimizer_sharding": sharding,
            },
            "datasets": { "loveda": data },
            "device": "cpu",
            "seed": 5,
            "work_dir": dir.path().join(format!("{name}.work")),
        });
        let out = dir.path().join(name);
        let output = run_ranks(&stage, &out, 2, &[], 0);
        assert_eq!(logged(&output, "(ZeRO-1)"), sharding);
        (losses(&output), metric(&out, "optimizer_state_bytes"))
    };
    let (unsharded, whole) = run("unsharded", false);
    let (sharded, half) = run("sharded", true);
    assert_eq!(unsharded.len(), 4);
    assert_curves_match(
        &sharded,
        &unsharded,
        1e-6,
        "fine-tuning sharded vs unsharded",
    );
    assert_eq!(half, 8.0 * (whole / 16.0).ceil());
}
