//! Each bad recipe exits 2 with a message naming file:line:col, and nothing runs.

use crate::common::{text, Project};

const GOOD_STAGE: &str = "[experiment]\nname = \"bad\"\n\n[stage.a]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"touch ran\"]\n";

/// (what, recipe text, expected line:col, a fragment the message must contain)
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    vec![
        ("unknown key", format!("{GOOD_STAGE}argx = 1\n"), "7:1", "argv"),
        ("wrong type", GOOD_STAGE.replace("argv = [\"sh\", \"-c\", \"touch ran\"]", "argv = \"sh\""), "6:8", "array"),
        (
            "cycle",
            format!("{GOOD_STAGE}needs = [\"b\"]\n\n[stage.b]\nkind = \"command\"\nneeds = [\"a\"]\nargv = [\"true\"]\n"),
            "7:10",
            "cycle",
        ),
        ("unknown needs", format!("{GOOD_STAGE}needs = [\"nope\"]\n"), "7:", "nope"),
        ("missing extends", format!("extends = [\"missing.toml\"]\n{GOOD_STAGE}"), "1:", "missing.toml"),
        ("undefined var", GOOD_STAGE.replace("touch ran", "touch {nope}"), "6:", "nope"),
        ("empty matrix axis", format!("[matrix]\nsize = []\n\n{GOOD_STAGE}"), "2:", "size"),
    ]
}

#[test]
fn bad_recipes_exit_2_with_file_line_col_and_run_nothing() {
    for (what, recipe, line_col, fragment) in cases() {
        let project = Project::new();
        let path = project.write("bad.toml", &recipe);
        for command in ["run", "plan"] {
            let out = project.rsfm(
                &[command, path.to_str().unwrap(), "--gpus", "none"]
                    [..if command == "run" { 4 } else { 2 }],
            );
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what}: {command} exited {:?}: {stderr}",
                out.status
            );
            let located = format!("bad.toml:{line_col}");
            assert!(
                stderr.contains(&located),
                "{what}: message lacks `{located}`: {stderr}"
            );
            assert!(
                stderr.contains(fragment),
                "{what}: message lacks `{fragment}`: {stderr}"
            );
            assert!(!project.path("ran").exists(), "{what}: a stage ran");
            assert!(
                !project.results().exists(),
                "{what}: the results dir was touched"
            );
        }
    }
}
