//! Batch norm at the paper's layout: a `finetune-seg` stage with one crop per rank trains with
//! statistics synchronised over its two processes and ends with the loss curve and running
//! statistics of one process with the same global batch; one crop on one process, or one per
//! rank without synchronisation, is refused before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{repo_root, text, Project};

const STEPS: u64 = 6;

/// A synthetic LoveDA set and one UperNet fine-tune of `batch_size` over `processes` ranks.
fn recipe(processes: u32, batch_size: u32, norm: &str) -> String {
    format!(
        r#"
[experiment]
name = "syncbn"

[stage.loveda]
kind = "prepare"
op = "synth-loveda"
images = 8
size = 64
seed = 2

[stage.seg]
kind = "finetune-seg"
needs = ["loveda"]
dataset = "loveda"
format = "loveda"
model = "vit-tiny"
processes = {processes}
image_size = 32
window_size = 2
head_channels = 16
norm = "{norm}"
dropout = 0.0
drop_path = 0.0
# Key biases have exactly zero gradients (see the running means below): leave them out.
qkv_bias = false
steps = {STEPS}
batch_size = {batch_size}
lr = 1e-3
layer_decay = 1.0
"#
    )
}

fn project(processes: u32, batch_size: u32, norm: &str) -> (Project, PathBuf) {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("seg.toml", &recipe(processes, batch_size, norm));
    (project, recipe)
}

/// The per-step losses of the `seg` stage.
fn loss_curve(project: &Project) -> Vec<f64> {
    project
        .sql(
            "SELECT m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
             WHERE s.name = 'seg' AND m.name = 'loss' AND m.step IS NOT NULL ORDER BY m.step",
        )
        .iter()
        .map(|row| row["value"].as_f64().unwrap())
        .collect()
}

/// The f32 tensors of a safetensors file whose names end with `suffix`.
fn tensors_ending(path: &Path, suffix: &str) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    let mut out = BTreeMap::new();
    for (name, info) in header.as_object().unwrap() {
        if !name.ends_with(suffix) {
            continue;
        }
        assert_eq!(info["dtype"], "F32", "{name}");
        let start = info["data_offsets"][0].as_u64().unwrap() as usize;
        let end = info["data_offsets"][1].as_u64().unwrap() as usize;
        let values = data[start..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.insert(name.clone(), values);
    }
    out
}

fn run_seg(project: &Project, recipe: &Path) -> (Vec<f64>, BTreeMap<String, Vec<f32>>) {
    let summary = project.run_json(recipe, &[]);
    assert_eq!(summary["failed"], 0, "{summary}");
    let key = project.stage_key(recipe, "seg");
    let checkpoint = project.entry_dir(&key).join("checkpoint.safetensors");
    let mut stats = tensors_ending(&checkpoint, ".running_var");
    stats.extend(tensors_ending(&checkpoint, ".running_mean"));
    (loss_curve(project), stats)
}

#[test]
fn two_processes_with_one_crop_each_train_like_one_process_with_two() {
    let (two, two_recipe) = project(2, 2, "sync_bn");
    let (one, one_recipe) = project(1, 2, "sync_bn");
    let (two_losses, two_stats) = run_seg(&two, &two_recipe);
    let (one_losses, one_stats) = run_seg(&one, &one_recipe);
    assert_eq!(two_losses.len() as u64, STEPS);
    let loss_gap = two_losses
        .iter()
        .zip(&one_losses)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        loss_gap < 1e-4,
        "losses: 2 ranks {two_losses:?}, 1 rank {one_losses:?}"
    );
    let psp = "decode_head.psp_modules.0.1.bn.running_var";
    assert!(two_stats.contains_key(psp), "{:?}", two_stats.keys());
    assert_eq!(
        two_stats.keys().collect::<Vec<_>>(),
        one_stats.keys().collect::<Vec<_>>()
    );
    // Running variances must agree. Running means are compared more loosely: a bias right
    // before a batch norm (the pyramid's last convolutions feed the head's) has an exactly zero
    // gradient, whose computed value is rounding noise that AdamW turns into ±lr steps with a
    // sign that depends on summation order; the norm removes that shift from the output (the
    // losses agree) but its running mean records it.
    let gap = |suffix: &str| {
        let mut worst = (0.0f32, String::new());
        for (name, values) in two_stats.iter().filter(|(n, _)| n.ends_with(suffix)) {
            assert!(values.iter().all(|v| v.is_finite()), "{name}: {values:?}");
            for (a, b) in values.iter().zip(&one_stats[name]) {
                let gap = (a - b).abs() / b.abs().max(1.0);
                if gap > worst.0 {
                    worst = (gap, format!("{name}: {a} vs {b}"));
                }
            }
        }
        worst
    };
    let (var_gap, var_worst) = gap(".running_var");
    let (mean_gap, mean_worst) = gap(".running_mean");
    assert!(
        var_gap < 1e-3,
        "running variances differ by {var_gap} ({var_worst})"
    );
    assert!(
        mean_gap < 1e-2,
        "running means differ by {mean_gap} ({mean_worst})"
    );
    let stat_gap = var_gap.max(mean_gap);
    println!("sync_bn: 2 ranks vs 1, largest loss difference {loss_gap:.3e}, running variance {var_gap:.3e}, running mean {mean_gap:.3e} (largest of both {stat_gap:.3e})");
}

#[test]
fn one_crop_per_statistic_is_refused_at_load_time() {
    for (processes, batch, norm, fix) in [(1, 1, "sync_bn", "at least 2"), (2, 2, "bn", "sync_bn")]
    {
        let (project, recipe) = project(processes, batch, norm);
        let out = project.rsfm(&["plan", recipe.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("stage `seg`")
                && stderr.contains("1 per rank")
                && stderr.contains(fix)
                && stderr.contains("seg.toml:"),
            "{stderr}"
        );
    }
}
