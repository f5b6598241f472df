//! Datasets as their official archives unpack: DOTA v2.0 (images in `images/part*/`, labels in
//! `labelTxt-v2.0/DOTA-v2.0_{train,val}/` beside the `_hbb` ones), ISPRS Potsdam (`2_Ortho_RGB/`,
//! `5_Labels_all/`, `5_Labels_all_noBoundary/`), LoveDA (`Train/`, `Val/`, `Test/`) and
//! Million-AID (`train/`, `test/`), each made by `rsfm synth` and moved into place, are planned
//! and run as they lie, nothing renamed. A near miss (labels one folder too deep, a doubled split
//! folder, archives left zipped, a root one folder off) is named with the command that fixes it,
//! and that command does. Without its datasets `plan` marks the stages `no-data` and exits 0,
//! `run --dry-run` exits 2.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{repo_root, text, Project};

/// A project with the vit-tiny preset and the recipe `text` at `study.toml`.
fn project(recipe: &str) -> (Project, PathBuf) {
    let project = Project::new();
    let preset = std::fs::read_to_string(repo_root().join("recipes/models/vit-tiny.toml")).unwrap();
    project.write("recipes/models/vit-tiny.toml", &preset);
    let recipe = project.write("study.toml", recipe);
    (project, recipe)
}

/// `rsfm synth DATASET --out synth/DATASET ARGS...`; returns that folder.
fn synth(project: &Project, dataset: &str, args: &[&str]) -> PathBuf {
    let out = format!("synth/{dataset}");
    let mut all = vec!["synth", dataset, "--out", &out];
    all.extend_from_slice(args);
    project.ok(&all);
    project.path(&out)
}

/// Moves `from` to `to` (creating `to`'s parent).
fn mv(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::rename(from, to).unwrap_or_else(|e| panic!("{from:?} → {to:?}: {e}"));
}

/// Moves every file of the folder `from` into the folder `to`.
fn mv_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        mv(&path, &to.join(path.file_name().unwrap()));
    }
}

/// The files of the folder `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The status of each stage of `rsfm plan RECIPE --json ARGS...`, by name.
fn statuses(project: &Project, recipe: &Path, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["plan", recipe.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let plan: serde_json::Value = serde_json::from_str(&project.ok(&all)).unwrap();
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every stage of the plan has `status`.
fn assert_all(project: &Project, recipe: &Path, args: &[&str], status: &str) {
    let found = statuses(project, recipe, args);
    assert!(
        !found.is_empty() && found.iter().all(|(_, s)| s == status),
        "expected every stage {status}: {found:?}"
    );
}

/// `rsfm run RECIPE --dry-run ARGS...`: exit 2, and its stderr.
fn refused(project: &Project, recipe: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "run",
        recipe.to_str().unwrap(),
        "--dry-run",
        "--gpus",
        "none",
    ];
    all.extend_from_slice(args);
    let out: Output = project.rsfm(&all);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
    stderr
}

/// The command after `fix: ` in a refusal that ends with `&& ...` or a single command.
fn fix_line(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("fix: "))
        .unwrap_or_else(|| panic!("no fix line in: {stderr}"))
        .to_string()
}

/// Runs the shell command after the last `: ` of a fix line, as a user would paste it.
fn apply(project: &Project, fix: &str) {
    let command = fix.rsplit_once(": ").map_or(fix, |(_, c)| c);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(project.path(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}: {}", text(&out.stderr));
}

const DOTA: &str = r#"
[experiment]
name = "dota-official"

[dataset.dota]
root = "data/DOTA-v2.0"
format = "dota"

[stage.patches]
kind = "prepare"
datasets = ["dota"]
op = "tile-dota"
patch_size = 64
gap = 32

[stage.det]
kind = "finetune-det"
datasets = ["dota"]
version = "v2.0"
model = "vit-tiny"
image_size = 128
window_size = 8
channels = 16
fc_dim = 32
rpn_pre_nms = 100
rpn_post_nms = 32
rpn_batch = 32
roi_batch = 16
steps = 2
batch_size = 2

[stage.score]
kind = "evaluate"
needs = ["det"]
datasets = ["dota"]
version = "v2.0"

[stage.test]
kind = "evaluate"
needs = ["det"]
datasets = ["dota"]
version = "v2.0"
split = "test"
"#;

/// DOTA v2.0 as downloaded: the v1.0 images of train in `images/part1/images/` (as users
/// unpack `part1.zip`), the v2.0 ones in `images/part4/`, val's in `images/part2/`, test-dev's
/// in `images/part3/`; the oriented labels in `labelTxt-v2.0/DOTA-v2.0_{train,val}/` beside
/// `_hbb` folders that rsfm must not read (their files are not labels at all).
fn dota_as_downloaded(project: &Project, root: &str) {
    let synth = synth(
        project,
        "dota",
        &[
            "--images",
            "5",
            "--size",
            "128",
            "--test-images",
            "2",
            "--seed",
            "3",
        ],
    );
    let root = project.path(root);
    let train = files(&synth.join("train/images"));
    mv(
        &train[0],
        &root
            .join("train/images/part1/images")
            .join(train[0].file_name().unwrap()),
    );
    mv_files(
        &synth.join("train/images"),
        &root.join("train/images/part4"),
    );
    mv_files(&synth.join("val/images"), &root.join("val/images/part2"));
    mv_files(
        &synth.join("test-dev/images"),
        &root.join("test-dev/images/part3"),
    );
    for (split, labels) in [("train", "DOTA-v2.0_train"), ("val", "DOTA-v2.0_val")] {
        let official = root.join(format!("{split}/labelTxt-v2.0/{labels}"));
        mv_files(&synth.join(format!("{split}/labelTxt")), &official);
        let hbb = root.join(format!("{split}/labelTxt-v2.0/{labels}_hbb"));
        std::fs::create_dir_all(&hbb).unwrap();
        for label in files(&official) {
            std::fs::write(
                hbb.join(label.file_name().unwrap()),
                "not an oriented label\n",
            )
            .unwrap();
        }
    }
}

#[test]
fn dota_v2_as_downloaded_is_tiled_fine_tuned_scored_and_predicted() {
    let (project, recipe) = project(DOTA);
    dota_as_downloaded(&project, "data/DOTA-v2.0");
    assert_all(&project, &recipe, &[], "pending");

    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 4, "{summary}");
    // 128 px images, 64 px patches every 32 px: up to 9 per image, those with objects kept.
    assert!(project.metric("patches", "train_patches") > 0.0);
    assert_eq!(project.metric("patches", "images"), 5.0, "4 train + 1 val");
    assert_eq!(project.metric("score", "images"), 1.0, "the val image");
    let key = project.stage_key(&recipe, "test");
    let predicted = std::fs::read_to_string(project.entry_dir(&key).join("predicted.txt")).unwrap();
    assert_eq!(predicted.lines().count(), 2, "{predicted}");
}

#[test]
fn dota_labels_one_folder_too_deep_or_one_folder_down_get_the_exact_move() {
    let (project, recipe) = project(DOTA);
    dota_as_downloaded(&project, "data/DOTA-v2.0");
    let root = project.path("data/DOTA-v2.0");
    // Unzipped DOTA-v2.0_train.zip into `labelTxt/` instead of `labelTxt-v2.0/`.
    mv(
        &root.join("train/labelTxt-v2.0"),
        &root.join("train/labelTxt"),
    );
    assert_all(&project, &recipe, &[], "no-data");
    let plan = project.ok(&["plan", recipe.to_str().unwrap()]);
    assert!(
        plan.contains("waiting for them: patches, det, score, test") && plan.contains("exit 2"),
        "{plan}"
    );
    let stderr = refused(&project, &recipe, &[]);
    let shown = root.display();
    assert!(
        stderr.contains(&format!(
            "{shown} has no `train/labelTxt` (nor `train/labelTxt-v2.0/DOTA-v2.0_train`"
        )),
        "{stderr}"
    );
    let fix = fix_line(&stderr);
    assert_eq!(
        fix,
        format!("the labels are one folder too deep, in {shown}/train/labelTxt/DOTA-v2.0_train: mv {shown}/train/labelTxt/DOTA-v2.0_train/*.txt {shown}/train/labelTxt/ && rmdir {shown}/train/labelTxt/DOTA-v2.0_train")
    );
    apply(&project, &fix);
    assert_all(&project, &recipe, &[], "pending");

    // The whole tree one folder down, as unzipping into a folder of its own leaves it.
    let outer = project.path("data/outer");
    mv(&root, &outer.join("DOTA-v2.0"));
    let data = format!("dota={}", outer.display());
    assert_all(&project, &recipe, &["--data", &data], "no-data");
    let stderr = refused(&project, &recipe, &["--data", &data]);
    let (outer, inner) = (outer.display(), outer.join("DOTA-v2.0"));
    assert!(
        stderr.contains(&format!("--data dota={}", inner.display()))
            && stderr.contains(&format!(
                "mv {}/* {outer} && rmdir {}",
                inner.display(),
                inner.display()
            )),
        "{stderr}"
    );
    apply(&project, &fix_line(&stderr));
    assert_all(&project, &recipe, &["--data", &data], "pending");
}

const POTSDAM: &str = r#"
[experiment]
name = "potsdam-official"

[dataset.potsdam]
root = "data/potsdam"
format = "potsdam"

[stage.seg]
kind = "finetune-seg"
datasets = ["potsdam"]
labels = "eroded"
model = "vit-tiny"
image_size = 32
head_channels = 16
steps = 2
batch_size = 2
val_tiles = ["2_10"]

[stage.score]
kind = "evaluate"
needs = ["seg"]
datasets = ["potsdam"]
labels = "eroded"
val_tiles = ["2_10"]
"#;

#[test]
fn potsdam_as_downloaded_is_fine_tuned_and_scored_and_zipped_labels_are_named() {
    let (project, recipe) = project(POTSDAM);
    let synth = synth(
        &project,
        "potsdam",
        &["--images", "6", "--size", "64", "--seed", "4"],
    );
    let root = project.path("data/potsdam");
    // The archives a user downloads, unpacked side by side.
    for archive in ["2_Ortho_RGB", "5_Labels_all", "5_Labels_all_noBoundary"] {
        mv(&synth.join(archive), &root.join(archive));
    }
    assert_all(&project, &recipe, &[], "pending");
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 2, "{summary}");
    assert_eq!(project.metric("score", "images"), 1.0, "tile 2_10");

    // Labels left zipped: the message says what to unpack where.
    let zipped = project.path("data/zipped");
    mv(&root.join("2_Ortho_RGB"), &zipped.join("2_Ortho_RGB"));
    project.write("data/zipped/5_Labels_all_noBoundary.zip", "");
    let data = format!("potsdam={}", zipped.display());
    assert_all(&project, &recipe, &["--data", &data], "no-data");
    let stderr = refused(&project, &recipe, &["--data", &data]);
    let zipped = zipped.display();
    assert!(
        stderr.contains("has no `top_potsdam_<a>_<b>_label.tif`")
            && fix_line(&stderr).ends_with(&format!(
                "unzip {zipped}/5_Labels_all_noBoundary.zip -d {zipped}"
            )),
        "{stderr}"
    );
}

const LOVEDA: &str = r#"
[experiment]
name = "loveda-official"

[dataset.loveda]
root = "data/LoveDA"
format = "loveda"

[stage.seg]
kind = "finetune-seg"
datasets = ["loveda"]
model = "vit-tiny"
image_size = 32
head_channels = 16
steps = 2
batch_size = 2

[stage.score]
kind = "evaluate"
needs = ["seg"]
datasets = ["loveda"]
"#;

#[test]
fn loveda_as_downloaded_is_fine_tuned_and_scored_and_a_doubled_split_folder_is_moved_up() {
    let (project, recipe) = project(LOVEDA);
    let synth = synth(
        &project,
        "loveda",
        &[
            "--images",
            "10",
            "--size",
            "32",
            "--test-images",
            "2",
            "--seed",
            "5",
        ],
    );
    let root = project.path("data/LoveDA");
    // Train.zip, Val.zip and Test.zip unpacked in the root.
    for split in ["Train", "Val", "Test"] {
        mv(&synth.join(split), &root.join(split));
    }
    assert_all(&project, &recipe, &[], "pending");
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 2, "{summary}");
    assert_eq!(project.metric("score", "images"), 2.0, "the Val images");

    // Train.zip unzipped into a `Train/` of its own.
    mv(&root.join("Train"), &root.join("Train-tmp/Train"));
    mv(&root.join("Train-tmp"), &root.join("Train"));
    assert_all(&project, &recipe, &[], "no-data");
    let stderr = refused(&project, &recipe, &[]);
    let shown = root.display();
    let fix = fix_line(&stderr);
    assert_eq!(
        fix,
        format!("{shown}/Train holds a second Train/ (unzipped into a folder of its own name): mv {shown}/Train/Train/* {shown}/Train && rmdir {shown}/Train/Train")
    );
    apply(&project, &fix);
    assert_all(&project, &recipe, &[], "cached");
}

const MILLIONAID: &str = r#"
[experiment]
name = "millionaid-official"

[dataset.millionaid]
root = "data/million-aid"
format = "millionaid"

[stage.pretrain]
kind = "mae-pretrain"
datasets = ["millionaid"]
model = "vit-tiny"
steps = 2
batch_size = 2
decoder_embed_dim = 16
decoder_depth = 1
decoder_num_heads = 2
"#;

#[test]
fn million_aid_as_downloaded_is_pretrained_on_and_a_root_inside_it_names_its_root() {
    let (project, recipe) = project(MILLIONAID);
    let synth = synth(
        &project,
        "millionaid",
        &["--images", "5", "--size", "32", "--seed", "6"],
    );
    let root = project.path("data/million-aid");
    for split in ["train", "test"] {
        mv(&synth.join(split), &root.join(split));
    }
    assert_all(&project, &recipe, &[], "pending");
    let summary = project.run_json(&recipe, &[]);
    assert_eq!(summary["executed"], 1, "{summary}");
    assert_eq!(project.metric("pretrain", "steps"), 2.0);

    let data = format!("millionaid={}", root.join("test").display());
    let stderr = refused(&project, &recipe, &["--data", &data]);
    assert_eq!(
        fix_line(&stderr),
        format!(
            "{}/test is a folder inside the dataset: point at its root with --data millionaid={}",
            root.display(),
            root.display()
        )
    );
}

#[test]
fn without_its_datasets_plan_marks_the_stages_and_dry_run_refuses() {
    let study = [DOTA, POTSDAM, LOVEDA, MILLIONAID]
        .iter()
        .map(|r| r.split_once("[dataset.").unwrap().1)
        .map(|r| format!("[dataset.{r}"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("[stage.seg]", "[stage.seg-X]")
        .replace("[stage.score]", "[stage.score-X]");
    // One recipe of the four: rename the segmentation stages of Potsdam and LoveDA apart.
    let study = rename_seg_stages(&study);
    let (project, recipe) = project(&format!("[experiment]\nname = \"none\"\n{study}"));
    let plan = project.rsfm(&["plan", recipe.to_str().unwrap()]);
    let stdout = text(&plan.stdout);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        stdout.contains("4 datasets not found")
            && stdout.contains("waiting for them:")
            && stdout.contains("refuse these stages (exit 2)"),
        "{stdout}"
    );
    assert_all(&project, &recipe, &[], "no-data");
    let stderr = refused(&project, &recipe, &[]);
    for name in ["dota", "potsdam", "loveda", "millionaid"] {
        assert!(stderr.contains(&format!("dataset `{name}`")), "{stderr}");
    }
}

/// Gives the `seg-X`/`score-X` stages of the Potsdam and LoveDA parts distinct names.
fn rename_seg_stages(study: &str) -> String {
    let mut out = String::new();
    for (i, part) in study.split("[dataset.").enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let name = part.split(']').next().unwrap();
        out.push_str("[dataset.");
        out.push_str(
            &part
                .replace("[stage.seg-X]", &format!("[stage.seg-{name}]"))
                .replace("[stage.score-X]", &format!("[stage.score-{name}]"))
                .replace("needs = [\"seg\"]", &format!("needs = [\"seg-{name}\"]")),
        );
    }
    out
}
