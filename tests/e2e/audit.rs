//! `rsfm audit`: a deterministic stage audits identical, one that only stamps the time into a
//! file audits within tolerance, one that writes random numbers is not reproducible.

use crate::common::{text, Project};

const RECIPE: &str = r#"
[experiment]
name = "audit"

[stage.steady]
kind = "command"
argv = ["sh", "steady.sh", "{out}"]
deps = ["steady.sh"]

[stage.stamped]
kind = "command"
needs = ["steady"]
argv = ["sh", "stamped.sh", "{input.steady}", "{out}"]
deps = ["stamped.sh"]

[stage.noisy]
kind = "command"
argv = ["sh", "noisy.sh", "{out}"]
deps = ["noisy.sh"]
"#;

/// Same numbers every time.
const STEADY: &str = r#"seq 1 100 > "$1/numbers.txt"
echo '{"sum": 5050}' > "$1/metrics.json"
"#;

/// Same metric, but a file holding the time it ran.
const STAMPED: &str = r#"date +%s%N > "$2/when.txt"
echo "{\"lines\": $(wc -l < "$1/numbers.txt")}" > "$2/metrics.json"
"#;

/// A random metric.
const NOISY: &str = r#"echo "{\"draw\": $(od -An -N4 -tu4 /dev/urandom)}" > "$1/metrics.json"
"#;

#[test]
fn audit_tells_identical_within_tolerance_and_not_reproducible_apart() {
    let (project, recipe) = Project::with_recipe(
        "audit.toml",
        RECIPE,
        &[
            ("steady.sh", STEADY),
            ("stamped.sh", STAMPED),
            ("noisy.sh", NOISY),
        ],
    );
    assert_eq!(project.run_json(&recipe, &[])["executed"], 3);
    let entries_before = project.ok(&["cache", "ls", "--json"]);

    let out = project.rsfm(&["audit", recipe.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let verdict = |name: &str| {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not audited: {report}"))["verdict"]
            .clone()
    };
    assert_eq!(verdict("steady"), "identical", "{report}");
    assert_eq!(verdict("stamped"), "within_tolerance", "{report}");
    assert_eq!(verdict("noisy"), "not_reproducible", "{report}");
    assert_eq!(report["not_reproducible"], 1);

    // The audit changes nothing: same entries, nothing left in tmp/, all entries still verify.
    assert_eq!(project.ok(&["cache", "ls", "--json"]), entries_before);
    assert_eq!(
        std::fs::read_dir(project.results().join("tmp"))
            .unwrap()
            .count(),
        0
    );
    assert!(project.rsfm(&["cache", "verify"]).status.success());

    let sampled = project.rsfm(&["audit", recipe.to_str().unwrap(), "--sample", "1", "--json"]);
    let sampled: serde_json::Value = serde_json::from_str(&text(&sampled.stdout)).unwrap();
    assert_eq!(sampled["stages"].as_array().unwrap().len(), 1);
}
