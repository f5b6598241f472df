//! Loading good recipes: the DESIGN.md example, matrix expansion, placeholders, provenance,
//! datasets and resources.

use rsfm_harness::recipe::{self, Recipe, StageKind};
use serde_json::json;
use std::time::Duration;

const DESIGN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/DESIGN.md");

/// The first ```toml block of DESIGN.md's *Recipes* section.
fn design_example() -> String {
    let design = std::fs::read_to_string(DESIGN).expect("read DESIGN.md");
    let section = &design[design.find("## Recipes").expect("a Recipes section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + section[start..].find("```").expect("the block's end");
    section[start..end].to_string()
}

/// Writes `text` as `recipe.toml` in a fresh folder and loads it.
fn load_text(text: &str) -> (tempfile::TempDir, Result<Recipe, recipe::RecipeErrors>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = recipe::load(&path);
    (dir, loaded)
}

fn load_ok(text: &str) -> (tempfile::TempDir, Recipe) {
    let (dir, loaded) = load_text(text);
    (dir, loaded.unwrap_or_else(|error| panic!("{error}")))
}

#[test]
fn design_example_loads_as_four_stages() {
    let (dir, recipe) = load_ok(&design_example());
    assert_eq!(recipe.experiment.name, "example");
    assert_eq!(recipe.experiment.seed, 0);
    assert_eq!(recipe.dir, dir.path().canonicalize().unwrap());
    assert_eq!(recipe.path, recipe.dir.join("recipe.toml"));
    let names: Vec<&str> = recipe
        .stages
        .iter()
        .map(|stage| stage.name.as_str())
        .collect();
    assert_eq!(names, ["generate@1", "generate@2", "square@1", "square@2"]);

    let generate = &recipe.stages[1];
    assert_eq!(generate.base, "generate");
    assert_eq!(generate.kind, StageKind::Command);
    assert_eq!(generate.matrix.get("size").map(String::as_str), Some("2"));
    assert_eq!(
        generate.params["argv"],
        json!(["sh", "make.sh", "2", "{out}"])
    );
    assert_eq!(generate.params["deps"], json!(["make.sh"]));
    assert!(generate.needs.is_empty());

    let square = &recipe.stages[2];
    assert_eq!(square.needs, ["generate@1"]);
    assert_eq!(
        square.params["argv"],
        json!(["sh", "square.sh", "{input.generate}", "{out}"])
    );
    assert_eq!(square.seed, 0);
    assert_eq!(square.resources.gpus, 0);
    assert_eq!(square.location.line, 12);
}

#[test]
fn executor_substitution_completes_the_placeholders() {
    let (_dir, recipe) = load_ok(&design_example());
    let square = &recipe.stages[3];
    let lookup = |name: &str| match name {
        "out" => Some("/results/out".to_string()),
        "input.generate" => Some("/results/gen".to_string()),
        _ => None,
    };
    let argv: Vec<String> = square.params["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| recipe::substitute(arg.as_str().unwrap(), &lookup).unwrap())
        .collect();
    assert_eq!(argv, ["sh", "square.sh", "/results/gen", "/results/out"]);
}

#[test]
fn matrix_expands_in_axis_order_with_typed_values() {
    let (_dir, recipe) = load_ok(
        r#"
[experiment]
name = "scaling"
seed = 7

[matrix]
model = ["vit-b", "vit-605m"]
fraction = [0.1, 1.0]

[stage.pretrain]
kind = "mae-pretrain"
model = "{model}"
mask_ratio = { value = 0.75, source = "secondary: MAE default" }
steps = 1
batch_size = 1

[stage.finetune]
kind = "finetune-seg"
needs = ["pretrain"]
model = "{model}"
fraction = "{fraction}"
pretrained = "{input.pretrain}/checkpoint-{model}.safetensors"
lr = 6e-5
steps = 80000
seed = 1
batch_size = 1
"#,
    );
    let names: Vec<&str> = recipe
        .stages
        .iter()
        .map(|stage| stage.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "pretrain@vit-b-0.1",
            "pretrain@vit-b-1.0",
            "pretrain@vit-605m-0.1",
            "pretrain@vit-605m-1.0",
            "finetune@vit-b-0.1",
            "finetune@vit-b-1.0",
            "finetune@vit-605m-0.1",
            "finetune@vit-605m-1.0",
        ]
    );
    let finetune = &recipe.stages[6];
    assert_eq!(finetune.needs, ["pretrain@vit-605m-0.1"]);
    assert_eq!(finetune.params["model"], json!("vit-605m"));
    assert_eq!(finetune.params["fraction"], json!(0.1));
    assert_eq!(finetune.params["steps"], json!(80000));
    assert_eq!(
        finetune.params["pretrained"],
        json!("{input.pretrain}/checkpoint-vit-605m.safetensors")
    );
    let axes: Vec<(&str, &str)> = finetune
        .matrix
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(axes, [("model", "vit-605m"), ("fraction", "0.1")]);
    assert_eq!(finetune.seed, 1);
    assert_eq!(recipe.stages[0].seed, 7);
}

#[test]
fn provenance_is_stripped_from_params_and_kept_in_sources() {
    let (_dir, recipe) = load_ok(
        r#"
[experiment]
name = "provenance"

[stage.seg]
kind = "finetune-seg"
model = { value = "vit-b", source = "paper" }
lr = { value = 6e-5, source = "context: RVSA Potsdam" }
layer_decay = { value = 0.9, source = "assumed: RVSA's value" }
batch_size = 8
steps = 1
"#,
    );
    let seg = &recipe.stages[0];
    assert_eq!(seg.params["model"], json!("vit-b"));
    assert_eq!(seg.params["lr"], json!(6e-5));
    assert_eq!(seg.params["layer_decay"], json!(0.9));
    assert_eq!(seg.params["batch_size"], json!(8));
    assert_eq!(seg.sources.len(), 3);
    assert_eq!(seg.sources["model"], "paper");
    assert_eq!(seg.sources["lr"], "context: RVSA Potsdam");
    assert_eq!(seg.sources["layer_decay"], "assumed: RVSA's value");
    let lr = recipe
        .origins
        .iter()
        .find(|origin| origin.key == "stage.seg.lr")
        .unwrap();
    assert_eq!(lr.value, json!(6e-5));
    assert_eq!(lr.source.as_deref(), Some("context: RVSA Potsdam"));
    assert_eq!((lr.location.line, lr.location.col), (8, 1));
}

#[test]
fn integer_floats_are_stored_as_floats() {
    let (_dir, one) = load_ok(
        "[experiment]\nname = \"a\"\n[stage.p]\nkind = \"mae-pretrain\"\nmodel = \"m\"\nbase_lr = 1\nsteps = 1\nbatch_size = 1\n",
    );
    let (_dir, one_point_zero) = load_ok(
        "[experiment]\nname = \"a\"\n[stage.p]\nkind = \"mae-pretrain\"\nmodel = \"m\"\nbase_lr = 1.0\nsteps = 1\nbatch_size = 1\n",
    );
    assert_eq!(one.stages[0].params["base_lr"], json!(1.0));
    assert_eq!(one.stages[0].params, one_point_zero.stages[0].params);
}

#[test]
fn escaped_braces_stay_escaped_for_the_executor() {
    let (_dir, recipe) = load_ok(
        r#"
[experiment]
name = "braces"

[matrix]
n = [3]

[stage.echo]
kind = "command"
argv = ["python", "-c", "print({{'n': {n}}})", "{out}"]
"#,
    );
    let argv = &recipe.stages[0].params["argv"];
    assert_eq!(argv[2], json!("print({{'n': 3}})"));
    let once = recipe::substitute(argv[2].as_str().unwrap(), &|_| None).unwrap();
    assert_eq!(once, "print({'n': 3})");
}

#[test]
fn datasets_resolve_relative_to_the_recipe_and_follow_the_matrix() {
    let (dir, recipe) = load_ok(
        r#"
[experiment]
name = "data"

[matrix]
split = ["train", "val"]

[dataset.potsdam]
root = "data/potsdam"
format = "potsdam"

[dataset.tiles]
root = "tiles/{split}"

[stage.eval]
kind = "evaluate"
datasets = ["potsdam", "tiles"]
model_from = "finetune-{split}"
dataset = "{dataset.tiles}/pred"
"#,
    );
    let base = dir.path().canonicalize().unwrap();
    let names: Vec<&str> = recipe.datasets.keys().map(String::as_str).collect();
    assert_eq!(names, ["potsdam", "tiles@train", "tiles@val"]);
    assert_eq!(recipe.datasets["potsdam"].root, base.join("data/potsdam"));
    assert_eq!(
        recipe.datasets["potsdam"].format.as_deref(),
        Some("potsdam")
    );
    assert_eq!(recipe.datasets["tiles@val"].root, base.join("tiles/val"));
    let eval_val = &recipe.stages[1];
    assert_eq!(eval_val.datasets, ["potsdam", "tiles@val"]);
    assert_eq!(eval_val.params["model_from"], json!("finetune-val"));
    assert_eq!(
        eval_val.params["dataset"],
        json!("{dataset.tiles@val}/pred")
    );
}

#[test]
fn resources_and_scheduling_hints_are_read() {
    let (_dir, recipe) = load_ok(
        r#"
[experiment]
name = "resources"

[stage.big]
kind = "mae-pretrain"
model = "vit-2.4b"
gpus = 8
gpu_mem_gb = 80
time_limit = "72:00:00"
retries = 2
retry_backoff_s = 30
description = "the largest model"
steps = 1
batch_size = 1

[stage.small]
kind = "command"
argv = ["true"]
time_limit = "90m"
"#,
    );
    let big = &recipe.stages[0];
    assert_eq!(big.resources.gpus, 8);
    assert_eq!(big.resources.ranks(), 8);
    assert_eq!(big.resources.gpu_mem_gb, Some(80.0));
    assert_eq!(
        big.resources.time_limit,
        Some(Duration::from_secs(72 * 3600))
    );
    assert_eq!(big.retries, 2);
    assert_eq!(big.retry_backoff_s, 30.0);
    assert_eq!(big.description.as_deref(), Some("the largest model"));
    assert!(!big.params.contains_key("gpus"));
    let small = &recipe.stages[1];
    assert_eq!(small.resources.time_limit, Some(Duration::from_secs(5400)));
    assert_eq!(small.resources.gpu_mem_gb, None);
    assert_eq!(small.resources.ranks(), 1);
}

#[test]
fn stages_come_after_the_stages_they_need() {
    let (_dir, recipe) = load_ok(
        r#"
[experiment]
name = "order"

[stage.report]
kind = "command"
needs = ["train"]
argv = ["cat", "{input.train}/metrics.json"]

[stage.train]
kind = "command"
argv = ["true"]
"#,
    );
    let names: Vec<&str> = recipe
        .stages
        .iter()
        .map(|stage| stage.name.as_str())
        .collect();
    assert_eq!(names, ["train", "report"]);
}

#[test]
fn a_matrix_value_of_the_wrong_type_is_an_error_at_the_placeholder() {
    let (_dir, loaded) = load_text(
        "[experiment]\nname = \"t\"\n[matrix]\nsize = [\"a\"]\n[stage.p]\nkind = \"mae-pretrain\"\nmodel = \"m\"\nsteps = \"{size}\"\nbatch_size = 1\n",
    );
    let shown = loaded.unwrap_err().to_string();
    assert!(shown.contains("recipe.toml:8:9: error:"), "{shown}");
    assert!(shown.contains("expected integer, found string"), "{shown}");
}

#[test]
fn out_of_range_and_unknown_values_are_errors() {
    let cases = [
        ("layer_decay = 1.5", "between 0 and 1"),
        ("epochs = -1", "must not be negative"),
        ("version = \"v3\"", "use one of `v1.0`, `v1.5`, `v2.0`"),
        ("lr = nan", "finite number"),
        ("time_limit = \"soon\"", "`HH:MM:SS`"),
        ("processes = 0", "one process per GPU"),
        ("processes = 3\ngpus = 2", "processes` = 3 with `gpus` = 2"),
    ];
    for (line, expected) in cases {
        let text = format!(
            "[experiment]\nname = \"t\"\n[stage.p]\nkind = \"finetune-det\"\nmodel = \"m\"\n{line}\nbatch_size = 1\n"
        );
        let (_dir, loaded) = load_text(&text);
        let shown = loaded.unwrap_err().to_string();
        assert!(shown.contains("recipe.toml:6:"), "{line}: {shown}");
        assert!(shown.contains(expected), "{line}: {shown}");
    }
}

#[test]
fn missing_required_parts_name_the_fix() {
    let cases = [
        (
            "[stage.p]\nkind = \"command\"\n",
            "missing key `argv` in [stage.p]",
        ),
        (
            "[stage.p]\nkind = \"train\"\n",
            "unknown stage kind `train`",
        ),
        ("[stage.p]\nargv = [\"true\"]\n", "missing key `kind`"),
        (
            "[stage.p]\nkind = \"command\"\nargv = []\n",
            "`stage.p.argv` is empty",
        ),
        (
            "[stage.p]\nkind = \"command\"\nargv = [\"true\"]\ndatasets = [\"dota\"]\n",
            "reads dataset `dota`, which is not defined",
        ),
    ];
    for (stage, expected) in cases {
        let text = format!("[experiment]\nname = \"t\"\n{stage}");
        let (_dir, loaded) = load_text(&text);
        let shown = loaded.unwrap_err().to_string();
        assert!(shown.contains("recipe.toml:"), "{stage}: {shown}");
        assert!(shown.contains(expected), "{stage}: {shown}");
        assert!(shown.contains("help: "), "{stage}: {shown}");
    }
    let (_dir, loaded) = load_text("[experiments]\nname = \"t\"\n");
    let shown = loaded.unwrap_err().to_string();
    assert!(
        shown.contains("recipe.toml:1:2: error: unknown key `experiments` in the top level"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `experiment`?"), "{shown}");
    let (_dir, loaded) = load_text("[stage.p]\nkind = \"command\"\nargv = [\"true\"]\n");
    let shown = loaded.unwrap_err().to_string();
    assert!(shown.contains("missing table [experiment]"), "{shown}");
}

#[test]
fn colliding_expanded_names_are_an_error() {
    let (_dir, loaded) = load_text(
        "[experiment]\nname = \"t\"\n[matrix]\na = [\"1-2\", \"1\"]\nb = [\"3\", \"2-3\"]\n[stage.s]\nkind = \"command\"\nargv = [\"true\"]\n",
    );
    let shown = loaded.unwrap_err().to_string();
    assert!(shown.contains("`s@1-2-3` is produced twice"), "{shown}");
}

const DATA_EFFICIENCY: &str = r#"
[experiment]
name = "data-efficiency"

[matrix]
model = ["vit-b", "vit-605m"]
fraction = [0.1, 1.0]

[stage.synth]
kind = "command"
matrix = []
argv = ["true"]

[stage.pretrain]
kind = "mae-pretrain"
matrix = ["model"]
needs = ["synth"]
model = "{model}"
steps = 1
batch_size = 1

[stage.finetune]
kind = "finetune-seg"
needs = ["pretrain"]
model = "{model}"
fraction = "{fraction}"
steps = 1
batch_size = 1
"#;

#[test]
fn a_stage_can_expand_over_some_axes_only() {
    let (_dir, recipe) = load_ok(DATA_EFFICIENCY);
    let names: Vec<&str> = recipe
        .stages
        .iter()
        .map(|stage| stage.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "synth",
            "pretrain@vit-b",
            "pretrain@vit-605m",
            "finetune@vit-b-0.1",
            "finetune@vit-b-1.0",
            "finetune@vit-605m-0.1",
            "finetune@vit-605m-1.0",
        ]
    );
    assert_eq!(recipe.stages[2].needs, ["synth"]);
    assert!(recipe.stages[0].matrix.is_empty());
    assert_eq!(recipe.stages[2].matrix.len(), 1);
    assert_eq!(recipe.stages[5].needs, ["pretrain@vit-605m"]);
}

#[test]
fn per_stage_axes_are_checked() {
    let cases = [
        (
            (
                "model = \"{model}\"\nsteps = 1\nbatch_size = 1\n\n[stage.finetune]",
                "model = \"{fraction}\"\nsteps = 1\nbatch_size = 1\n\n[stage.finetune]",
            ),
            "recipe.toml:18:9: error: undefined variable `{fraction}` in `stage.pretrain.model`: this stage does not expand over the matrix axis `fraction`",
        ),
        (
            ("matrix = [\"model\"]", "matrix = [\"modle\"]"),
            "recipe.toml:16:11: error: `modle` in `stage.pretrain.matrix` is not a matrix axis",
        ),
        (
            ("needs = [\"pretrain\"]", "matrix = [\"fraction\"]\nneeds = [\"pretrain\"]"),
            "recipe.toml:25:10: error: stage `finetune` uses stage `pretrain`, which varies over the matrix axes `model`",
        ),
    ];
    for ((from, to), expected) in cases {
        let text = DATA_EFFICIENCY.replacen(from, to, 1);
        assert_ne!(text, DATA_EFFICIENCY);
        let (_dir, loaded) = load_text(&text);
        let shown = loaded.unwrap_err().to_string();
        assert!(shown.contains(expected), "{shown}");
        assert!(shown.contains("help: "), "{shown}");
    }
}
