//! `rsfm plan --sensitivity`: the assumed values upstream of the paper's DIOR-R 2.4B cell, with
//! alternatives and costs, and a runnable recipe per alternative.

use crate::common::{repo_root, text, Project};

#[test]
fn the_dior_2_4b_cell_lists_its_assumed_values_and_writes_runnable_recipes() {
    let project = Project::new();
    let paper = repo_root().join("recipes/paper");
    let out = project.path("sweep");
    let output = project
        .command(&[
            "plan",
            paper.to_str().unwrap(),
            "--sensitivity",
            "eval-dior@vit-2.4b-1.0",
            "--sensitivity-out",
            out.to_str().unwrap(),
            "--budget",
            "20",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let assumed = found["assumed"].as_array().unwrap();
    let layer_decay = assumed
        .iter()
        .find(|a| a["base"] == "det-dior" && a["param"] == "layer_decay")
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(layer_decay["value"], 0.9);
    assert_eq!(layer_decay["alternatives"], serde_json::json!([0.45]));
    assert!(layer_decay["gpu_hours"].as_f64().unwrap() > 0.0);
    assert!(
        assumed.iter().any(|a| a["base"] == "pretrain"),
        "the pretraining's assumptions feed the cell too: {found}"
    );
    // Within the budget: no 800 GPU-hour pretraining rerun.
    assert!(found["gpu_hours"].as_f64().unwrap() <= 20.0, "{found}");
    let recipes = found["recipes"].as_array().unwrap();
    assert!(!recipes.is_empty());

    // A written recipe plans: only the cell's combination, with the value changed.
    let recipe = out.join("paper-sens-det-dior-layer_decay-1.toml");
    let plan = project.plan(&recipe);
    let names: Vec<&str> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"eval-dior@vit-2.4b-1.0"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("vit-b")), "{names:?}");
    let shown = project.ok(&["config", "show", recipe.to_str().unwrap()]);
    assert!(
        shown.contains("stage.det-dior.layer_decay = 0.45"),
        "{shown}"
    );
}
