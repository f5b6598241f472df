//! The smoke study runs end to end through `rsfm-worker`: synthetic data, MAE pretraining,
//! fine-tuning from the pretrained weights and evaluation; a second run executes nothing.

use std::path::PathBuf;

use crate::common::{repo_root, Project};

/// `target/debug/rsfm-worker` (built by `make test`), or a failure saying how to build it.
fn worker() -> PathBuf {
    let worker = repo_root().join("target/debug/rsfm-worker");
    assert!(
        worker.is_file(),
        "{} is missing: build it with `make worker` (cargo build -p rsfm-model --features torch --bin rsfm-worker)",
        worker.display()
    );
    worker
}

#[test]
fn the_smoke_study_runs_every_stage_once_and_scores_in_range() {
    let worker = worker();
    let project = Project::new();
    let recipe = repo_root().join("recipes/smoke/seg.toml");
    let run = |project: &Project| {
        let out = project
            .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
            .env("RSFM_WORKER", &worker)
            .output()
            .expect("rsfm runs");
        let stdout = crate::common::text(&out.stdout);
        assert!(
            out.status.success(),
            "rsfm run failed: {}\n{stdout}\n{}",
            out.status,
            crate::common::text(&out.stderr)
        );
        crate::common::last_json_line(&stdout)
    };

    let first = run(&project);
    assert_eq!(first["executed"], 5, "{first}");
    assert_eq!(first["failed"], 0, "{first}");

    let metric = |stage: &str, name: &str| -> f64 {
        let rows = project.sql(&format!(
            "SELECT m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
             WHERE s.name = '{stage}' AND m.name = '{name}' AND m.step IS NULL"
        ));
        assert_eq!(rows.len(), 1, "{stage}.{name}: {rows:?}");
        rows[0]["value"].as_f64().expect("a number")
    };
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

    let second = run(&project);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 5, "{second}");
}
