//! DESIGN.md's example recipe runs as written and its `--json` outputs follow the contract.

use crate::common::{repo_root, Project};

#[test]
fn the_design_example_runs_as_written_and_its_json_follows_the_contract() {
    let project = Project::new();
    let recipe = repo_root().join("recipes/examples/design/example.toml");

    let plan = project.plan(&recipe);
    let stages = plan["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["generate@1", "generate@2", "square@1", "square@2"]);
    for stage in stages {
        let keys: Vec<&String> = stage.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["key", "matrix", "name", "needs", "status"]);
        assert_eq!(stage["status"], "pending");
        assert_eq!(stage["key"].as_str().unwrap().len(), 64);
    }
    assert_eq!(stages[2]["needs"], serde_json::json!(["generate@1"]));
    assert_eq!(stages[3]["matrix"], serde_json::json!({"size": "2"}));

    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 4);
    assert_eq!(summary["cached"], 0);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["skipped"], 0);

    // The squares made it into the store.
    let rows = project.sql("SELECT s.name, m.value FROM metrics m JOIN stages s ON s.key = m.stage_key WHERE m.name = 'square' ORDER BY s.name");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["value"].as_f64(), Some(1.0));
    assert_eq!(rows[1]["value"].as_f64(), Some(4.0));

    let plan = project.plan(&recipe);
    assert!(plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "cached"));
    // `rsfm sql` is read-only: a write is refused and deletes nothing.
    let delete = project.rsfm(&["sql", "DELETE FROM stages"]);
    assert!(!delete.status.success());
    assert_eq!(project.sql("SELECT count(*) AS n FROM stages")[0]["n"], 4);

    let again = project.run_json(&recipe, &[]);
    assert_eq!(again["executed"], 0);
    assert_eq!(again["cached"], 4);
}
