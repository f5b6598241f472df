//! Bad recipes exit 2 with a message naming file:line:col, and nothing runs. The recipes that a
//! case of the bad-input corpus `tests/bad/` can check (exit code and stderr fragments of one
//! command) live there, run by `bad_corpus`; the tests here check what a case cannot say.

use crate::bad_corpus::{copy_tree, Case};
use crate::common::{repo_root, text, Project};

/// Cases of `tests/bad/` whose recipes `plan` and `run` both refuse, naming the case's
/// fragments; a stage of theirs that ran would leave `ran` (or the results dir) behind.
const REFUSED_BEFORE_ANYTHING_RUNS: [&str; 7] = [
    "recipe-unknown-stage-key",
    "recipe-argv-not-array",
    "recipe-needs-cycle",
    "recipe-unknown-needs",
    "recipe-missing-extends",
    "recipe-undefined-variable",
    "recipe-matrix-empty-axis",
];

// Kept: a case runs one command and cannot check that `run` refuses the recipe too, that no
// stage ran or that the results dir was left alone.
#[test]
fn bad_recipes_exit_2_with_file_line_col_and_run_nothing() {
    for what in REFUSED_BEFORE_ANYTHING_RUNS {
        let dir = repo_root().join("tests/bad").join(what);
        let case = Case::read(&dir);
        for args in [
            &["run", "recipe.toml", "--gpus", "none"][..],
            &["plan", "recipe.toml"],
        ] {
            let project = Project::new();
            copy_tree(&dir, project.dir.path());
            let command = args[0];
            let out = project.rsfm(args);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what}: {command} exited {:?}: {stderr}",
                out.status
            );
            for fragment in &case.stderr_contains {
                assert!(
                    stderr.contains(fragment.as_str()),
                    "{what}: {command}'s message lacks `{fragment}`: {stderr}"
                );
            }
            assert!(!project.path("ran").exists(), "{what}: a stage ran");
            assert!(
                !project.results().exists(),
                "{what}: the results dir was touched"
            );
        }
    }
}

/// A base recipe with one mistake and a recipe extending it with more: each at its key.
const BASE_WITH_A_TYPO: &str = "[stage.seg]\nkind = \"finetune-seg\"\nsteps = 3\nlrr = 1e-3\n";

const SEVERAL_MISTAKES: &str = r#"extends = ["base.toml"]

[experiment]
name = "mistakes"

[stage.data]
kind = "command"
argv = ["sh", "make.sh", "{out}"]
deps = ["make.sh"]

[stage.pretrain]
kind = "mae-pretrain"
model = "vit-tiny"
batch_size = 2
mask_ratio = 1.5

[stage.seg]
model = "vit-tiny"
batch_size = 2
format = "potsdamm"

[stage.pretrain_more]
kind = "mae-pretrain"
model = "vit-tiny"
steps = 2
batch_size = 2
"#;

// Kept: it checks that each error's `help:` line comes right under it, which stderr fragments
// cannot say, and it fixes the recipe and checks the next round of errors.
#[test]
fn a_recipe_with_several_mistakes_reports_them_all_at_their_keys_and_exits_2() {
    let project = Project::new();
    project.write("base.toml", BASE_WITH_A_TYPO);
    let path = project.write("bad.toml", SEVERAL_MISTAKES);
    let out = project.rsfm(&[
        "plan",
        path.to_str().unwrap(),
        "--set",
        "stage.pretrain_more.log_every=\"often\"",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = [
        ("base.toml:4:1: error: unknown key `lrr`", "help: did you mean `lr`?"),
        ("bad.toml:11:8: error: missing key `steps` in [stage.pretrain]", "help: add `steps = ...`"),
        ("bad.toml:15:14: error: `stage.pretrain.mask_ratio` must be between 0 and 1", "help: use a fraction"),
        ("bad.toml:20:10: error: invalid value \"potsdamm\" for `stage.seg.format`", "help: use one of `loveda`, `potsdam`"),
        ("bad.toml:9:1: error: stage `data` lists `make.sh` in `deps`", "create it or fix the path"),
        (
            "cli (--set stage.pretrain_more.log_every=\"often\"): error: wrong type for `stage.pretrain_more.log_every`",
            "help: give `log_every` a value of type",
        ),
    ];
    for (error, help) in expected {
        assert_error_then_help(&stderr, error, help);
    }
    assert!(stderr.contains("6 errors found"), "{stderr}");
    assert!(!project.results().exists(), "the results dir was touched");

    // Once the recipe loads, the stages' inputs are checked: each error at its key, or at the
    // stage's header with the key to add.
    let fixed = SEVERAL_MISTAKES
        .replace("mask_ratio = 1.5", "steps = 2")
        .replace("potsdamm", "loveda")
        .replace("deps = [\"make.sh\"]\n", "");
    project.write("base.toml", &BASE_WITH_A_TYPO.replace("lrr", "lr"));
    project.write(
        "bad.toml",
        &fixed.replace(
            "model = \"vit-tiny\"\nbatch_size = 2\nformat",
            "model = \"vit-tiyn\"\nbatch_size = 2\nformat",
        ),
    );
    let out = project.rsfm(&["plan", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for (error, help) in [
        (
            "bad.toml:10:8: error: stage `pretrain`: no data",
            "help: add `dataset = \"NAME\"`",
        ),
        (
            "bad.toml:17:1: error: stage `seg`: no model preset `vit-tiyn`",
            "help: name one of the presets",
        ),
        (
            "bad.toml:21:8: error: stage `pretrain_more`: no data",
            "help: add `dataset = \"NAME\"`",
        ),
    ] {
        assert_error_then_help(&stderr, error, help);
    }
}

/// Checks that `stderr` shows `error` with a `help:` line containing `help` right under it.
fn assert_error_then_help(stderr: &str, error: &str, help: &str) {
    let at = stderr
        .find(error)
        .unwrap_or_else(|| panic!("no `{error}` in:\n{stderr}"));
    let next = stderr[at..].lines().nth(1).unwrap_or_default();
    assert!(
        next.trim_start().starts_with("help: ") && next.contains(help),
        "`{error}` is not followed by `{help}`:\n{stderr}"
    );
}
