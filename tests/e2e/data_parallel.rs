//! Data parallel through the local executor: a tiny MAE stage with `processes = 2` runs as two
//! Gloo ranks through `rsfm run`, writes its metrics once, is cached on the second run, and
//! ends at the loss of the same stage run as one process (the key ignores `processes`,
//! `loader_threads` and `optimizer_sharding`); a batch the ranks cannot split and a failing rank
//! fail the stage.

use std::path::PathBuf;

use crate::common::{repo_root, worker, Project};

const STEPS: u64 = 8;

/// The recipe with `processes = N` and its global `batch_size`.
pub(crate) fn recipe(processes: u32, batch_size: u32) -> String {
    format!(
        r#"
[experiment]
name = "ddp"

[stage.millionaid]
kind = "command"
argv = ["sh", "-c", "exec \"$RSFM_BIN\" synth millionaid --out \"$1\" --images 16 --size 32 --seed 1", "sh", "{{out}}"]

[stage.pretrain]
kind = "mae-pretrain"
needs = ["millionaid"]
processes = {processes}
dataset = "millionaid"
model = "vit-tiny"
steps = {STEPS}
batch_size = {batch_size}
base_lr = 1.5e-3
warmup_steps = 2
decoder_embed_dim = 32
decoder_depth = 1
decoder_num_heads = 2
"#
    )
}

/// A project holding the recipe and the `vit-tiny` preset it names.
fn project(processes: u32, batch_size: u32) -> (Project, PathBuf) {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("mae.toml", &recipe(processes, batch_size));
    (project, recipe)
}

fn run(project: &Project, recipe: &std::path::Path) -> std::process::Output {
    project
        .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
        .env("RSFM_WORKER", worker())
        .output()
        .expect("rsfm runs")
}

fn summary(out: &std::process::Output) -> serde_json::Value {
    crate::common::last_json_line(&crate::common::text(&out.stdout))
}

/// Values of metric `name` of the pretrain stage, by step (None: the final metric).
pub(crate) fn metric_rows(project: &Project, name: &str) -> Vec<(Option<i64>, f64)> {
    project
        .sql(&format!(
            "SELECT m.step, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key \
             WHERE s.name = 'pretrain' AND m.name = '{name}' ORDER BY m.step"
        ))
        .iter()
        .map(|row| (row["step"].as_i64(), row["value"].as_f64().unwrap()))
        .collect()
}

/// Requires the pretrain stage's per-step losses and final loss in `got` to be those in `want`
/// (relative 1e-5); the labels say where each ran, for the message.
pub(crate) fn same_losses(got: &Project, got_label: &str, want: &Project, want_label: &str) {
    for name in ["loss", "loss_final"] {
        let (a_rows, b_rows) = (metric_rows(got, name), metric_rows(want, name));
        assert_eq!(
            a_rows.len(),
            b_rows.len(),
            "{name}: {a_rows:?} vs {b_rows:?}"
        );
        for ((step, a), (_, b)) in a_rows.iter().zip(&b_rows) {
            assert!(
                ((a - b) / b).abs() < 1e-5,
                "{name} at step {step:?}: {a} {got_label}, {b} {want_label}"
            );
        }
    }
}

/// Metric names with their row counts, and output file names, of the pretrain stage.
fn outputs(project: &Project) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let metrics = project.sql(
        "SELECT m.name, count(*) AS n FROM metrics m JOIN stages s ON s.key = m.stage_key \
         WHERE s.name = 'pretrain' GROUP BY m.name ORDER BY m.name",
    );
    let files = project.sql(
        "SELECT a.path FROM artifacts a JOIN stages s ON s.key = a.stage_key \
         WHERE s.name = 'pretrain' ORDER BY a.path",
    );
    (metrics, files)
}

#[test]
fn two_processes_train_like_one_write_once_and_are_cached() {
    // The two ranks shard their optimiser state (ZeRO-1), which is not in the key either.
    let (two, _) = project(2, 4);
    let two_recipe = two.write("mae.toml", &(recipe(2, 4) + "optimizer_sharding = true\n"));
    let first = run(&two, &two_recipe);
    assert!(
        first.status.success(),
        "{}",
        crate::common::text(&first.stderr)
    );
    let first = summary(&first);
    assert_eq!(
        (first["executed"].as_u64(), first["failed"].as_u64()),
        (Some(2), Some(0)),
        "{first}"
    );

    let key = two.stage_key(&two_recipe, "pretrain");
    let log =
        std::fs::read_to_string(two.results().join("work").join(&key).join("stage.log")).unwrap();
    assert!(
        log.contains("data parallel over 2 processes, 2 samples each per step")
            && log.contains("optimizer state sharded over 2 processes (ZeRO-1)"),
        "{log}"
    );

    // Rank 0 alone reports: one progress loss per step, the final value once as an event
    // (at the last step) and once from metrics.json.
    let losses = metric_rows(&two, "loss");
    assert_eq!(losses.len() as u64, STEPS, "{losses:?}");
    let finals = metric_rows(&two, "loss_final");
    assert_eq!(
        finals.iter().map(|(step, _)| *step).collect::<Vec<_>>(),
        [None, Some(STEPS as i64)],
        "{finals:?}"
    );

    let again = summary(&run(&two, &two_recipe));
    assert_eq!(
        (again["executed"].as_u64(), again["cached"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );

    let (one, _) = project(1, 4);
    let one_recipe = one.write("mae.toml", &(recipe(1, 4) + "loader_threads = 1\n"));
    assert_eq!(
        one.stage_key(&one_recipe, "pretrain"),
        key,
        "`processes`, `loader_threads` and `optimizer_sharding` are not in the key"
    );
    let single = run(&one, &one_recipe);
    assert!(
        single.status.success(),
        "{}",
        crate::common::text(&single.stderr)
    );
    // The same metric rows and output files as one process writes.
    assert_eq!(outputs(&two), outputs(&one));
    let single_losses = metric_rows(&one, "loss");
    assert_eq!(single_losses.len(), losses.len());
    let worst = losses
        .iter()
        .zip(&single_losses)
        .map(|((_, a), (_, b))| ((a - b) / b).abs())
        .fold(0.0, f64::max);
    println!("2 processes × batch 2 vs 1 process × batch 4: largest relative loss difference {worst:e} over {STEPS} steps");
    assert!(
        worst < 1e-4,
        "2 × 2 vs 1 × 4 losses: {losses:?} vs {single_losses:?}"
    );
}

#[test]
fn a_batch_the_ranks_cannot_split_fails_the_stage_naming_the_fix() {
    let (project, recipe) = project(3, 4);
    let out = run(&project, &recipe);
    assert!(!out.status.success());
    let summary = summary(&out);
    assert_eq!(summary["failed"].as_u64(), Some(1), "{summary}");
    let output = crate::common::text(&out.stderr) + &crate::common::text(&out.stdout);
    assert!(output.contains("multiple of 3"), "{output}");
    assert!(metric_rows(&project, "loss_final").is_empty());
}

#[test]
fn a_failing_rank_stops_the_others_and_fails_the_stage() {
    let project = Project::new();
    let marker = project.path("rank0-finished");
    // Rank 1 fails at once; rank 0 would write the marker after 20 s unless it is stopped.
    let recipe = project.write(
        "ranks.toml",
        &format!(
            r#"
[experiment]
name = "ranks"

[stage.ranks]
kind = "command"
processes = 2
argv = ["sh", "-c", "test \"$WORLD_SIZE\" = 2 && test -n \"$MASTER_PORT\" || exit 9; if [ \"$RANK\" = 1 ]; then echo rank one gives up >&2; exit 7; fi; sleep 20; touch {}", "sh"]
"#,
            marker.display()
        ),
    );
    let out = run(&project, &recipe);
    assert!(!out.status.success());
    let output = crate::common::text(&out.stderr) + &crate::common::text(&out.stdout);
    assert!(output.contains("rank 1 exited with status 7"), "{output}");
    assert!(output.contains("[rank 1] rank one gives up"), "{output}");
    assert!(
        !marker.exists(),
        "rank 0 ran to its end instead of being stopped"
    );
}

/// Runs the worker on `stage` as two local ranks; the exit codes in rank order and rank 0's
/// stdout.
fn two_worker_ranks(
    stage: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> (Vec<i32>, String) {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let children: Vec<std::process::Child> = (0..2)
        .map(|rank| {
            std::process::Command::new(worker())
                .args([
                    "run",
                    "--stage",
                    stage.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ])
                .args(extra)
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", "2")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes = outputs
        .iter()
        .map(|o| o.status.code().unwrap_or(-1))
        .collect();
    (codes, crate::common::text(&outputs[0].stdout))
}

#[test]
fn two_ranks_stopped_and_resumed_end_where_an_uninterrupted_run_ends() {
    let (project, recipe) = project(2, 4);
    let first = run(&project, &recipe);
    assert!(
        first.status.success(),
        "{}",
        crate::common::text(&first.stderr)
    );
    let uninterrupted = metric_rows(&project, "loss_final")[0].1;
    let key = project.stage_key(&recipe, "pretrain");
    let stage = project.results().join("work").join(&key).join("stage.json");
    let out = project.path("resumed");

    // Both ranks stop together after 3 steps; rank 0 alone saves the resume checkpoint.
    let (codes, _) = two_worker_ranks(&stage, &out, &["--stop-after", "3"]);
    assert_eq!(codes, [3, 3]);
    assert!(!out.join("metrics.json").exists());
    let (codes, log) = two_worker_ranks(&stage, &out, &[]);
    assert_eq!(codes, [0, 0], "{log}");
    assert!(log.contains("resuming from step 3"), "{log}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let resumed = metrics["loss_final"].as_f64().unwrap();
    assert!(
        ((resumed - uninterrupted) / uninterrupted).abs() < 1e-5,
        "resumed {resumed} vs uninterrupted {uninterrupted}"
    );
}

#[test]
fn gradient_accumulation_trains_like_the_whole_batch_at_once() {
    let (whole, whole_recipe) = project(1, 4);
    let (two_micro, _) = project(1, 4);
    let two_micro_recipe = two_micro.write("mae.toml", &(recipe(1, 4) + "accum_steps = 2\n"));
    // Two ranks of two micro-batches of one image each: the same global batch of 4.
    let (ranks_micro, _) = project(2, 4);
    let ranks_micro_recipe = ranks_micro.write("mae.toml", &(recipe(2, 4) + "accum_steps = 2\n"));
    let key = whole.stage_key(&whole_recipe, "pretrain");
    assert_eq!(
        two_micro.stage_key(&two_micro_recipe, "pretrain"),
        key,
        "`accum_steps` changes only rounding on an MAE stage: not in its key"
    );
    let mut curves = Vec::new();
    for (project, recipe) in [
        (&whole, &whole_recipe),
        (&two_micro, &two_micro_recipe),
        (&ranks_micro, &ranks_micro_recipe),
    ] {
        let out = run(project, recipe);
        assert!(out.status.success(), "{}", crate::common::text(&out.stderr));
        curves.push(metric_rows(project, "loss"));
    }
    let log = std::fs::read_to_string(
        two_micro
            .results()
            .join("work")
            .join(&key)
            .join("stage.log"),
    )
    .unwrap();
    assert!(
        log.contains("gradient accumulation: 2 micro-batches of 2 samples per rank and step"),
        "{log}"
    );
    for curve in &curves[1..] {
        assert_eq!(curve.len() as u64, STEPS);
        let worst = curve
            .iter()
            .zip(&curves[0])
            .map(|((_, a), (_, b))| ((a - b) / b).abs())
            .fold(0.0, f64::max);
        println!("accum_steps = 2 vs the whole batch: largest relative loss difference {worst:e} over {STEPS} steps");
        assert!(worst < 1e-4, "{curve:?} vs {:?}", curves[0]);
    }
}
