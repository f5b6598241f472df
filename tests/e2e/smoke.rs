//! The smoke study (`recipes/smoke/study.toml`) end to end through `rsfm prepare` and
//! `rsfm-worker`, cut down to the smallest size and a few steps by a recipe that extends it:
//! synthetic data from `prepare` stages, MAE pretraining, detection and segmentation fine-tuning
//! from the pretrained weights, evaluation, the smoke-scale report; a second run executes
//! nothing.

use crate::common::{last_json_line, repo_root, text, worker, Project};

/// The study with one size, small data and few steps (the shipped recipe's values otherwise),
/// beside a copy of the size's preset.
fn cut_down(project: &Project) -> std::path::PathBuf {
    let study = repo_root().join("recipes/smoke/study.toml");
    let preset = repo_root().join("recipes/models/vit-tiny.toml");
    project.write(
        "recipes/models/vit-tiny.toml",
        &std::fs::read_to_string(preset).unwrap(),
    );
    project.write(
        "recipes/smoke.toml",
        &format!(
            r#"extends = ["{}"]

[experiment]
name = "smoke-cut"

[matrix]
model = ["vit-tiny"]

[stage.millionaid]
images = 16

[stage.dota]
images = 10

[stage.dior]
images = 10

[stage.loveda]
images = 10

[stage.potsdam]
images = 10

[stage.pretrain]
steps = 20
warmup_steps = 2

[stage.det-dota]
steps = 10
warmup_steps = 2
lr_steps = [9]

[stage.det-dior]
steps = 10
warmup_steps = 2
lr_steps = [9]

[stage.seg-loveda]
steps = 20
warmup_steps = 2

[stage.seg-potsdam]
steps = 20
warmup_steps = 2
"#,
            study.display()
        ),
    )
}

/// `rsfm run RECIPE --json --gpus none` with the built worker; the summary line.
fn run(project: &Project, recipe: &std::path::Path) -> serde_json::Value {
    let out = project
        .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .expect("rsfm runs");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "rsfm run failed: {}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    last_json_line(&stdout)
}

#[test]
fn the_smoke_study_runs_every_stage_once_scores_and_reports() {
    let project = Project::new();
    let recipe = cut_down(&project);
    let first = run(&project, &recipe);
    // 5 prepare, the DOTA patches, pretrain, 2 × (det + eval), 2 × (seg + eval).
    assert_eq!(first["executed"], 15, "{first}");
    assert_eq!(first["failed"], 0, "{first}");

    let metric = |stage: &str, name: &str| project.metric(stage, name);
    assert_eq!(metric("dota", "train_images"), 8.0);
    for stage in [
        "pretrain@vit-tiny",
        "det-dota@vit-tiny-1.0",
        "seg-loveda@vit-tiny-1.0",
        "seg-potsdam@vit-tiny-1.0",
    ] {
        let (first_loss, last_loss) = (metric(stage, "loss_first"), metric(stage, "loss_last"));
        assert!(first_loss.is_finite() && last_loss.is_finite(), "{stage}");
        assert!(
            last_loss < first_loss,
            "{stage}: loss {first_loss} → {last_loss}"
        );
    }
    for (stage, name) in [
        ("eval-dota@vit-tiny-1.0", "map"),
        ("eval-dior@vit-tiny-1.0", "map"),
        ("eval-loveda@vit-tiny-1.0", "miou"),
        ("eval-potsdam@vit-tiny-1.0", "oa"),
    ] {
        let value = metric(stage, name);
        assert!((0.0..=1.0).contains(&value), "{stage}: {name} = {value}");
        assert!(metric(stage, "images") > 0.0, "{stage} scored images");
    }

    // Rows name the dataset a synthetic one imitates, not the prepare stage that wrote it.
    let rows = project.sql(
        "SELECT dataset FROM stages WHERE name IN ('eval-dior@vit-tiny-1.0', 'dior') ORDER BY name",
    );
    assert_eq!(rows[0]["dataset"], "dior-r", "{rows:?}");
    assert_eq!(rows[1]["dataset"], "dior-r", "{rows:?}");

    let second = run(&project, &recipe);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 15, "{second}");

    let out = project.path("report");
    let paper = repo_root().join("recipes/paper");
    let report = project
        .command(&[
            "report",
            recipe.to_str().unwrap(),
            "--paper",
            paper.to_str().unwrap(),
            "--format",
            "html",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("rsfm runs");
    assert!(report.status.success(), "{}", text(&report.stderr));
    let written = text(&report.stdout);
    assert!(written.contains("index.html"), "{written}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("Smoke scale"), "the banner says smoke scale");
    assert!(html.contains("vit-tiny"), "the size's cells are filled");
}
