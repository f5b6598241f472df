//! Stages of one experiment with the same key (a matrix axis the command ignores): the plan
//! and the run warn, naming the axis; the run executes the computation once and never waits
//! for its own lock.

use crate::common::{last_json_line, text, Project};

const RECIPE: &str = r#"
[experiment]
name = "shared"

[matrix]
size = ["small", "large"]

[stage.ignores]
kind = "command"
argv = ["sh", "-c", "sleep 1; echo '{{\"n\": 1}}' > \"$0/metrics.json\"", "{out}"]
"#;

#[test]
fn an_axis_that_never_reaches_the_key_is_named_and_the_stage_runs_once() {
    let project = Project::new();
    let recipe = project.write("shared.toml", RECIPE);
    let recipe_arg = recipe.to_str().unwrap();

    let out = project.rsfm(&["plan", recipe_arg, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ignores@large: same key as shared/ignores@small")
            && stderr.contains("matrix axis `size` never reaches its key"),
        "{stderr}"
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["stages"][1]["same_key_as"], "shared/ignores@small");
    assert!(plan["stages"][0].get("same_key_as").is_none());

    let out = project.rsfm(&["run", recipe_arg, "--json", "--gpus", "none", "--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("never reaches its key"), "{stderr}");
    assert!(
        !stderr.contains("waiting for"),
        "the run waited for its own lock: {stderr}"
    );
    let summary = last_json_line(&text(&out.stdout));
    let counts = ["executed", "cached", "shared"].map(|n| summary[n].as_u64());
    assert_eq!(counts, [Some(1), Some(0), Some(1)], "{summary}");
    assert!(
        stderr.contains("2 stages: 0 cached, 1 ran, 1 shared (the same key as a stage that ran)"),
        "{stderr}"
    );
}
