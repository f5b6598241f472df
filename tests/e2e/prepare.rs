//! `prepare` stages run through `rsfm prepare` like any stage: a synthetic Million-AID feeds an
//! MAE pretraining in the worker, a synthetic DOTA is tiled, synthetic Potsdam and LoveDA are
//! cropped and the Potsdam crops fine-tuned on and scored, the outputs are cached, and a second
//! run executes nothing.

use crate::common::{repo_root, Project};

/// Synthetic scenes → two MAE steps of vit-tiny; synthetic DOTA → its 64 px patches.
fn recipe(project: &Project) -> std::path::PathBuf {
    let preset = repo_root().join("recipes/models/vit-tiny.toml");
    project.write(
        "prepare.toml",
        &format!(
            r#"[experiment]
name = "prepare"

[stage.scenes]
kind = "prepare"
op = "synth-millionaid"
images = 5
size = 32
seed = 1

[stage.pretrain]
kind = "mae-pretrain"
needs = ["scenes"]
dataset = "scenes"
model = "{}"
steps = 2
batch_size = 2
decoder_embed_dim = 16
decoder_depth = 1
decoder_num_heads = 2

[stage.dota]
kind = "prepare"
op = "synth-dota"
images = 5
size = 96

[stage.tiles]
kind = "prepare"
needs = ["dota"]
dataset = "dota"
op = "tile-dota"
patch_size = 64
gap = 32
"#,
            preset.display()
        ),
    )
}

#[test]
fn prepare_stages_run_cache_and_feed_worker_stages() {
    let project = Project::new();
    let recipe = recipe(&project);
    let first = project.run_json(&recipe, &[]);
    assert_eq!(first["executed"], 4, "{first}");
    assert_eq!(project.metric("scenes", "images"), 5.0);
    assert_eq!(
        project.metric("pretrain", "steps"),
        2.0,
        "the worker read the scenes"
    );
    // 96 px images, 64 px patches every 32 px: 4 patches per image.
    assert_eq!(project.metric("tiles", "patches"), 20.0);
    let kinds = project.sql("SELECT kind FROM stages WHERE name = 'tiles'");
    assert_eq!(kinds[0]["kind"], "prepare");

    let second = project.run_json(&recipe, &[]);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 4, "{second}");

    let kinds = project.ok(&["kinds", "prepare"]);
    assert!(
        kinds.contains("tile-dota") && kinds.contains("gap") && kinds.contains("crop-potsdam"),
        "{kinds}"
    );
}

/// Synthetic Potsdam (tiles 2_10 to 2_14, 64 px) cut into 32 px crops every 24 px, fine-tuned on
/// for two steps and scored; synthetic LoveDA cut into 32 px quarters.
const CROPS: &str = r#"[experiment]
name = "crops"

[stage.potsdam]
kind = "prepare"
op = "synth-potsdam"
images = 5
size = 64
seed = 2

[stage.potsdam-crops]
kind = "prepare"
needs = ["potsdam"]
dataset = "potsdam"
op = "crop-potsdam"
patch_size = 32
stride = 24

[stage.seg]
kind = "finetune-seg"
needs = ["potsdam-crops"]
dataset = "potsdam-crops"
format = "potsdam"
model = "MODEL"
steps = 2
batch_size = 2

[stage.eval]
kind = "evaluate"
needs = ["seg", "potsdam-crops"]
dataset = "potsdam-crops"
format = "potsdam"

[stage.loveda]
kind = "prepare"
op = "synth-loveda"
images = 5
size = 64

[stage.loveda-crops]
kind = "prepare"
needs = ["loveda"]
dataset = "loveda"
op = "crop-loveda"
patch_size = 32
stride = 32
"#;

#[test]
fn crop_stages_feed_segmentation_with_the_held_out_tiles_kept_apart() {
    let project = Project::new();
    let preset = repo_root().join("recipes/models/vit-tiny.toml");
    let text = CROPS.replace("MODEL", preset.to_str().unwrap());
    let recipe = project.write("crops.toml", &text);
    let first = project.run_json(&recipe, &[]);
    assert_eq!(first["executed"], 6, "{first}");
    // 64 px, 32 px crops every 24 px: starts 0, 24 and 32 (flush with the border), 9 a tile;
    // tiles 2_13 and 2_14 are standard test tiles.
    assert_eq!(project.metric("potsdam-crops", "crops"), 45.0);
    assert_eq!(project.metric("potsdam-crops", "val_crops"), 18.0);
    assert_eq!(project.metric("seg", "train_images"), 27.0);
    assert_eq!(project.metric("eval", "images"), 18.0, "the held-out crops");
    let datasets = project.sql("SELECT DISTINCT dataset FROM stages WHERE name IN ('seg', 'eval')");
    assert_eq!(datasets.len(), 1, "{datasets:?}");
    assert_eq!(
        datasets[0]["dataset"], "potsdam",
        "the crops count as Potsdam"
    );
    let oa = project.metric("eval", "oa");
    assert!((0.0..=1.0).contains(&oa), "oa = {oa}");
    // LoveDA: 64 px into four 32 px crops; image 4 is in Val.
    assert_eq!(project.metric("loveda-crops", "train_crops"), 16.0);
    assert_eq!(project.metric("loveda-crops", "val_crops"), 4.0);
    let params = project.sql("SELECT params FROM stages WHERE name = 'loveda-crops'");
    let params: serde_json::Value =
        serde_json::from_str(params[0]["params"].as_str().unwrap()).unwrap();
    assert_eq!(params["patch_size"], 32, "{params}");

    let second = project.run_json(&recipe, &[]);
    assert_eq!(second["executed"], 0, "{second}");
    assert_eq!(second["cached"], 6, "{second}");
}
