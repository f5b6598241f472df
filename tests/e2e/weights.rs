//! Published weights (docs/weights.md): `.pth` files that PyTorch writes in MAE's, timm's and
//! MMEngine's layouts import to the same tensors, files holding other objects are refused, a
//! fine-tuning stage starts from a `.pth` (its sha256 in the key), and the fine-tuned backbone
//! exports to timm and MMEngine files that PyTorch and timm load. The PyTorch side is
//! `tests/weights/pytorch_side.py`, run by the Python `tests/weights/python.sh` provides.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{repo_root, text, worker, Project};

/// A Python with torch, timm and safetensors (target/venv-weights, made on first use).
fn python() -> PathBuf {
    let out = Command::new(repo_root().join("tests/weights/python.sh"))
        .output()
        .expect("tests/weights/python.sh runs");
    assert!(
        out.status.success(),
        "a Python with torch 2.11, timm and safetensors is needed: tests/weights/python.sh failed \
         (it creates target/venv-weights with pip; set RSFM_BENCH_PYTHON to one you have):\n{}",
        text(&out.stderr)
    );
    let path = PathBuf::from(text(&out.stdout).trim());
    if path.is_absolute() {
        path
    } else {
        repo_root().join(path)
    }
}

/// Runs `pytorch_side.py ARGS` and returns its stdout; it must succeed.
fn pytorch(python: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(repo_root().join("tests/weights/pytorch_side.py"))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pytorch_side.py {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

const RECIPE: &str = r#"
[experiment]
name = "published"

[stage.potsdam]
kind = "prepare"
op = "synth-potsdam"
images = 6
size = 64
seed = 4

[stage.seg]
kind = "finetune-seg"
needs = ["potsdam"]
dataset = "potsdam"
format = "potsdam"
model = "vit-tiny"
pretrained = "weights/mae.pth"
image_size = 32
head_channels = 16
steps = 2
batch_size = 2
val_tiles = ["2_10"]
"#;

#[test]
fn published_checkpoints_import_fine_tune_and_export() {
    worker();
    let python = python();
    let project = Project::new();
    let files = project.path("weights");
    std::fs::create_dir_all(&files).unwrap();
    let dir = files.to_str().unwrap();
    pytorch(&python, &["write", dir]);
    let at = |name: &str| files.join(name).display().to_string();

    // Each layout imports to the tensors PyTorch saved, bit for bit.
    for (layout, dropped, unexpected, skipped) in
        [("mae", 4, 0, 0), ("timm", 0, 0, 0), ("mmengine", 0, 2, 4)]
    {
        let out = project.ok(&[
            "weights",
            "import",
            &at(&format!("{layout}.pth")),
            "--out",
            &at(&format!("{layout}.safetensors")),
            "--json",
        ]);
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["format"], layout, "{report}");
        assert_eq!(report["tensors"], 30, "{report}");
        assert_eq!(
            report["dropped"].as_array().unwrap().len(),
            dropped,
            "{report}"
        );
        assert_eq!(
            report["unexpected"].as_array().unwrap().len(),
            unexpected,
            "{report}"
        );
        assert_eq!(
            report["skipped"].as_array().unwrap().len(),
            skipped,
            "{report}"
        );
        pytorch(
            &python,
            &[
                "equal",
                &at(&format!("{layout}.safetensors")),
                &at("reference.safetensors"),
            ],
        );
    }

    // A custom class and a non-tensor in the state dict are refused (exit 2), naming them.
    for (file, named) in [
        ("custom.pth", "`__main__.Namespace`"),
        ("nontensor.pth", "`model.blocks.0.attn.scale` is a float"),
    ] {
        let out = project.rsfm(&[
            "weights",
            "import",
            &at(file),
            "--out",
            &at("refused.safetensors"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(named), "{}", text(&out.stderr));
        assert!(!files.join("refused.safetensors").exists());
    }

    // A mistaken layout fails naming the backbone tensors it lacks.
    let out = project.rsfm(&[
        "weights",
        "import",
        &at("mae.pth"),
        "--format",
        "mmengine",
        "--out",
        &at("x.safetensors"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("patch_embed.proj.weight"),
        "{}",
        text(&out.stderr)
    );

    // --grid resamples pos_embed as MAE's interpolate_pos_embed does (bicubic).
    project.ok(&[
        "weights",
        "import",
        &at("timm.pth"),
        "--out",
        &at("grid.safetensors"),
        "--grid",
        "6",
        "5",
    ]);
    pytorch(
        &python,
        &[
            "grid",
            &at("grid.safetensors"),
            &at("reference.safetensors"),
            "6",
            "5",
        ],
    );

    // A fine-tuning stage starts from the .pth; its content, not its path, is in the key.
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("published.toml", RECIPE);
    let key = project.stage_key(&recipe, "seg");
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 2, "{summary}");
    let log = std::fs::read_to_string(project.results().join("work").join(&key).join("stage.log"))
        .unwrap();
    assert!(
        log.contains("published checkpoint") && log.contains("4 dropped"),
        "{log}"
    );
    assert!(log.contains("30 tensors loaded"), "{log}");
    std::fs::create_dir_all(project.path("elsewhere")).unwrap();
    std::fs::copy(files.join("mae.pth"), project.path("elsewhere/copy.pth")).unwrap();
    let moved = project.write(
        "moved.toml",
        &RECIPE.replace("weights/mae.pth", "elsewhere/copy.pth"),
    );
    assert_eq!(
        project.stage_key(&moved, "seg"),
        key,
        "the same bytes elsewhere, the same key"
    );
    std::fs::copy(files.join("mmengine.pth"), files.join("mae.pth")).unwrap();
    assert_ne!(
        project.stage_key(&recipe, "seg"),
        key,
        "another file, another key"
    );
    let explained = project.ok(&["explain", recipe.to_str().unwrap(), "seg"]);
    assert!(explained.contains("params.pretrained"), "{explained}");

    // The fine-tuned backbone exports to timm and MMEngine files that timm loads.
    let entry = project.entry_dir(&key);
    project.ok(&[
        "weights",
        "export",
        entry.to_str().unwrap(),
        "--format",
        "timm",
        "--out",
        &at("ft.safetensors"),
    ]);
    project.ok(&[
        "weights",
        "export",
        entry.to_str().unwrap(),
        "--format",
        "mmengine",
        "--out",
        &at("ft.pth"),
    ]);
    let checked = pytorch(
        &python,
        &[
            "export",
            entry.join("checkpoint.safetensors").to_str().unwrap(),
            &at("ft.safetensors"),
            &at("ft.pth"),
        ],
    );
    assert!(checked.contains("timm loads both exports"), "{checked}");
    // rsfm reads back the MMEngine file it wrote.
    project.ok(&[
        "weights",
        "import",
        &at("ft.pth"),
        "--out",
        &at("ft-back.safetensors"),
    ]);
    pytorch(
        &python,
        &["equal", &at("ft-back.safetensors"), &at("ft.safetensors")],
    );
}
