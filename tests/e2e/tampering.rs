//! A stage cannot leave a wrong result cached by writing into its inputs: a stage that changes
//! or adds to a needed stage's committed entry fails, naming the input and the file, the entry
//! is moved out of the cache, and the next run rebuilds it; `cache verify` names a file added
//! to an entry.

use crate::common::{last_json_line, text, Project};

fn recipe(action: &str) -> String {
    format!(
        r#"
[experiment]
name = "tamper"

[stage.first]
kind = "command"
argv = ["sh", "-c", "echo 1 > \"$1/out.txt\"", "sh", "{{out}}"]

[stage.second]
kind = "command"
needs = ["first"]
argv = ["sh", "-c", "{action}; cat \"$1/out.txt\" > \"$2/out.txt\"", "sh", "{{input.first}}", "{{out}}"]
"#
    )
}

#[test]
fn a_stage_that_writes_into_its_input_fails_and_the_input_is_rebuilt() {
    for (action, change) in [
        ("echo 2 > \\\"$1/out.txt\\\"", "out.txt was changed"),
        ("echo x > \\\"$1/planted.txt\\\"", "planted.txt was added"),
    ] {
        let project = Project::new();
        let recipe = project.write("tamper.toml", &recipe(action));
        let first_key = project.stage_key(&recipe, "first");
        let out = project
            .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = text(&out.stderr) + &text(&out.stdout);
        assert!(
            stderr.contains("it changed its input `first`") && stderr.contains(change),
            "{stderr}"
        );
        let summary = last_json_line(&text(&out.stdout));
        assert_eq!(
            (summary["executed"].as_u64(), summary["failed"].as_u64()),
            (Some(1), Some(1)),
            "{summary}"
        );
        assert!(
            !project.entry_dir(&first_key).exists(),
            "the changed entry stays in the cache"
        );
        assert!(project.results().join("damaged").is_dir());
        // The next run rebuilds the input (and the writer fails again): nothing wrong is reused.
        let again = project
            .command(&["run", recipe.to_str().unwrap(), "--json", "--gpus", "none"])
            .output()
            .unwrap();
        let summary = last_json_line(&text(&again.stdout));
        assert_eq!(summary["cached"].as_u64(), Some(0), "{summary}");
        assert_eq!(summary["failed"].as_u64(), Some(1), "{summary}");
    }
}

#[test]
fn verify_names_a_file_added_to_an_entry() {
    let project = Project::new();
    let recipe = project.write("tamper.toml", &recipe("true"));
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 2, "{summary}");
    let key = project.stage_key(&recipe, "first");
    std::fs::write(project.entry_dir(&key).join("planted.txt"), "x").unwrap();
    let out = project.rsfm(&["cache", "verify"]);
    let stdout = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("planted.txt: not in the manifest"),
        "{stdout}"
    );
}

#[test]
fn metrics_that_are_not_numbers_and_reserved_names_fail_the_stage_naming_them() {
    for (write, message) in [
        (
            "echo 3 > \\\"$1/metrics.json\\\"",
            "must hold a JSON object of metric names and numbers, found a number",
        ),
        (
            "echo '{{\\\"acc\\\": \\\"high\\\"}}' > \\\"$1/metrics.json\\\"",
            "metric `acc` is a string, not a number",
        ),
        (
            "echo '{{\\\"a\\\": {{\\\"b\\\": 1}}, \\\"a.b\\\": 2}}' > \\\"$1/metrics.json\\\"",
            "metric `a.b` is written twice",
        ),
        (
            "echo '{{}}' > \\\"$1/key.json\\\"",
            "the stage wrote `key.json` into its output",
        ),
    ] {
        let project = Project::new();
        let recipe = project.write(
            "metrics.toml",
            &format!(
                "[experiment]\nname = \"m\"\n\n[stage.only]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"{write}\", \"sh\", \"{{out}}\"]\n"
            ),
        );
        let out = project
            .command(&["run", recipe.to_str().unwrap(), "--gpus", "none"])
            .output()
            .unwrap();
        let all = text(&out.stderr) + &text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains(message), "{message}: {all}");
        let listed = project.ok(&["cache", "ls", "--json"]);
        assert_eq!(listed.trim(), "[]", "a failed stage entered the cache");
    }
}
