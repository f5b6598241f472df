//! The smoke studies run end to end through `rsfm-worker`: synthetic data, MAE pretraining,
//! fine-tuning from the pretrained weights and evaluation (segmentation), synthetic DOTA,
//! detector fine-tuning and tiled evaluation (detection); a second run executes nothing.

use crate::common::{last_json_line, repo_root, text, worker, Project};

/// `rsfm run RECIPE --json --gpus none` with the built worker; the summary line.
fn run(project: &Project, recipe: &str) -> serde_json::Value {
    let recipe = repo_root().join(recipe);
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

/// The final value of metric `name` of stage `stage`.
fn metric(project: &Project, stage: &str, name: &str) -> f64 {
    let rows = project.sql(&format!(
        "SELECT m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
         WHERE s.name = '{stage}' AND m.name = '{name}' AND m.step IS NULL"
    ));
    assert_eq!(rows.len(), 1, "{stage}.{name}: {rows:?}");
    rows[0]["value"].as_f64().expect("a number")
}

#[test]
fn the_smoke_study_runs_every_stage_once_and_scores_in_range() {
    let project = Project::new();
    let recipe = "recipes/smoke/seg.toml";
    let first = run(&project, recipe);
    assert_eq!(first["executed"], 5, "{first}");
    assert_eq!(first["failed"], 0, "{first}");

    let metric = |stage: &str, name: &str| metric(&project, stage, name);
    for stage in ["pretrain", "finetune"] {
        let (first_loss, last_loss) = (metric(stage, "loss_first"), metric(stage, "loss_last"));
        assert!(first_loss.is_finite() && last_loss.is_finite(), "{stage}");
        assert!(
            last_loss < first_loss,
            "{stage}: loss {first_loss} → {last_loss}"
        );
    }
    assert_eq!(metric("pretrain", "steps"), 20.0);
    for name in ["miou", "oa", "mf1"] {
        let value = metric("evaluate", name);
        assert!((0.0..=1.0).contains(&value), "{name} = {value}");
    }
    assert!(metric("evaluate", "images") > 0.0);

    let results: serde_json::Value =
        serde_json::from_str(&project.ok(&["results", "--experiment", "smoke-seg", "--json"]))
            .expect("results --json is JSON");
    assert!(
        results.to_string().contains("miou"),
        "results list the scores: {results}"
    );

    let second = run(&project, recipe);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 5, "{second}");
}

#[test]
fn the_detection_smoke_study_trains_predicts_and_scores() {
    let project = Project::new();
    let recipe = "recipes/smoke/det.toml";
    let first = run(&project, recipe);
    assert_eq!(first["executed"], 3, "{first}");
    assert_eq!(first["failed"], 0, "{first}");
    let metric = |stage: &str, name: &str| metric(&project, stage, name);
    let (first_loss, last_loss) = (
        metric("finetune", "loss_first"),
        metric("finetune", "loss_last"),
    );
    assert!(last_loss < first_loss, "loss {first_loss} → {last_loss}");
    let map = metric("evaluate", "map");
    assert!((0.0..=1.0).contains(&map), "map = {map}");
    assert!(metric("evaluate", "images") > 0.0);
    let second = run(&project, recipe);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 3, "{second}");
}
