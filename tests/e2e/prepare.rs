//! `prepare` stages run through `rsfm prepare` like any stage: a synthetic Million-AID feeds an
//! MAE pretraining in the worker, a synthetic DOTA is tiled, the outputs are cached, and a
//! second run executes nothing.

use crate::common::{repo_root, worker, Project};

/// Synthetic scenes → two MAE steps of vit-tiny; synthetic DOTA → its 64 px patches.
fn recipe(project: &Project) -> std::path::PathBuf {
    let preset = repo_root().join("recipes/models/vit-tiny.toml");
    project.write(
        "prepare.toml",
        &format!(
            r#"[experiment]
name = "prepare"

[stage.scenes]
kind = "prepare"
op = "synth-millionaid"
images = 5
size = 32
seed = 1

[stage.pretrain]
kind = "mae-pretrain"
needs = ["scenes"]
dataset = "scenes"
model = "{}"
steps = 2
batch_size = 2
decoder_embed_dim = 16
decoder_depth = 1
decoder_num_heads = 2

[stage.dota]
kind = "prepare"
op = "synth-dota"
images = 5
size = 96

[stage.tiles]
kind = "prepare"
needs = ["dota"]
dataset = "dota"
op = "tile-dota"
patch_size = 64
gap = 32
"#,
            preset.display()
        ),
    )
}

#[test]
fn prepare_stages_run_cache_and_feed_worker_stages() {
    let project = Project::new();
    let recipe = recipe(&project);
    let run = |project: &Project| {
        let out = project
            .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
            .env("RSFM_WORKER", worker())
            .output()
            .expect("rsfm runs");
        let stdout = crate::common::text(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            crate::common::text(&out.stderr)
        );
        crate::common::last_json_line(&stdout)
    };
    let first = run(&project);
    assert_eq!(first["executed"], 4, "{first}");
    let metric = |stage: &str, name: &str| -> f64 {
        let rows = project.sql(&format!(
            "SELECT m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
             WHERE s.name = '{stage}' AND m.name = '{name}' AND m.step IS NULL"
        ));
        assert_eq!(rows.len(), 1, "{stage}.{name}: {rows:?}");
        rows[0]["value"].as_f64().expect("a number")
    };
    assert_eq!(metric("scenes", "images"), 5.0);
    assert_eq!(
        metric("pretrain", "steps"),
        2.0,
        "the worker read the scenes"
    );
    // 96 px images, 64 px patches every 32 px: 4 patches per image.
    assert_eq!(metric("tiles", "patches"), 20.0);
    let kinds = project.sql("SELECT kind FROM stages WHERE name = 'tiles'");
    assert_eq!(kinds[0]["kind"], "prepare");

    let second = run(&project);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 4, "{second}");

    let kinds = project.ok(&["kinds", "prepare"]);
    assert!(
        kinds.contains("tile-dota") && kinds.contains("gap"),
        "{kinds}"
    );
}
