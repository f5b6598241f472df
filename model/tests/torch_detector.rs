//! Oriented R-CNN end to end: a tiny detector overfits generated DOTA-format images, and an
//! untrained one predicts the real DOTA sample patch by patch into valid Task1 files.
#![cfg(feature = "torch")]

use std::path::Path;

use rsfm_model::arch::VitConfig;
use rsfm_model::data::formats::dota::{read_task1_dir, write_task1_dir, DotaVersion};
use rsfm_model::data::image_io::read_image;
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::nn::oriented_rcnn::inference::{predict_large_image, TiledPrediction};
use rsfm_model::nn::oriented_rcnn::{OrientedRcnn, OrientedRcnnConfig};
use rsfm_model::nn::vitdet::VitDetConfig;
use rsfm_model::params::{EvaluateParams, FinetuneDetParams};
use rsfm_model::protocol::StageSpec;
use rsfm_model::train::evaluate_det::{self, TASK1_DIR};
use rsfm_model::train::events::Events;
use rsfm_model::train::finetune_det;
use rsfm_model::train::stage::Outcome;
use serde_json::json;
use tch::nn::VarStore;
use tch::Device;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn spec(kind: &str, params: serde_json::Value, dir: &Path) -> StageSpec {
    serde_json::from_value(json!({
        "kind": kind,
        "params": params,
        "inputs": { "finetune": dir.join("finetune") },
        "datasets": { "synth": dir.join("data") },
        "device": "cpu",
        "seed": 5,
        "work_dir": dir.join(format!("work-{kind}")),
    }))
    .unwrap()
}

#[test]
fn tiny_detector_overfits_its_generated_training_images() {
    let _turn = crate::common::torch_turn();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(
        SynthDataset::Dota,
        &data,
        &SynthOptions {
            images: 3,
            seed: 11,
            size: Some(128),
            test_images: 0,
        },
    )
    .unwrap();
    // Score the training images themselves: the held-out part is replaced by them.
    std::fs::remove_dir_all(data.join("val")).unwrap();
    copy_dir(&data.join("train"), &data.join("val"));

    let steps: u64 = std::env::var("RSFM_DET_OVERFIT_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let params: FinetuneDetParams = serde_json::from_value(json!({
        "model": { "patch_size": 8, "image_size": 128, "embed_dim": 64, "depth": 2, "num_heads": 4 },
        "window_size": 8,
        "channels": 64, "fc_dim": 256, "anchor_scale": 4.0,
        "rpn_pre_nms": 300, "rpn_post_nms": 128, "rpn_batch": 128, "roi_batch": 128,
        "finest_scale": 28.0,
        "dataset": "synth", "format": "dota", "version": "v2.0",
        "steps": steps,
        "batch_size": 2,
        "lr": 1e-3,
        "warmup_steps": 10,
        "weight_decay": 0.0,
        "layer_decay": 1.0,
        "lr_steps": [steps * 9 / 10],
        "log_every": 10,
    }))
    .unwrap();
    params.validate().unwrap();
    let mut events = Events::stdout();
    let outcome = finetune_det::run(
        &spec("finetune-det", json!({}), dir.path()),
        &params,
        &dir.path().join("finetune"),
        &mut events,
        None,
    )
    .unwrap();
    let Outcome::Finished(train_metrics) = outcome else {
        panic!("training stopped early")
    };
    assert!(
        train_metrics["loss_last"] < train_metrics["loss_first"],
        "{train_metrics:?}"
    );

    let eval: EvaluateParams = serde_json::from_value(json!({
        "task": "det", "model_from": "finetune",
        "dataset": "synth", "format": "dota", "version": "v2.0",
        "protocol": "mmrotate",
    }))
    .unwrap();
    eval.validate().unwrap();
    let out = dir.path().join("evaluate");
    let metrics = evaluate_det::run(
        &spec("evaluate", json!({}), dir.path()),
        &eval,
        &out,
        &mut events,
    )
    .unwrap();
    println!("overfit mAP after {steps} steps: {}", metrics["map"]);
    let (classes, _) = read_task1_dir(&out.join(TASK1_DIR)).unwrap();
    assert_eq!(classes.len(), DotaVersion::V2_0.classes().len());
    assert!(metrics["map"] > 0.8, "{metrics:?}");
}

#[test]
fn untrained_detector_predicts_the_dota_sample_into_valid_task1_files() {
    let _turn = crate::common::torch_turn();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/dota-devkit-sample/images");
    let vit: VitConfig = serde_json::from_value(json!({
        "patch_size": 16, "image_size": 1024, "embed_dim": 32, "depth": 2, "num_heads": 2
    }))
    .unwrap();
    let mut config = OrientedRcnnConfig::new(DotaVersion::V1_0.classes().len());
    config.channels = 32;
    config.fc_dim = 64;
    config.rpn_pre_nms = 300;
    config.rpn_post_nms = 300;
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = OrientedRcnn::new(&vs.root(), &vit, &VitDetConfig::default(), &config);
    let classes: Vec<String> = DotaVersion::V1_0
        .classes()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let tiling = TiledPrediction {
        patch_size: 1024,
        gap: 200,
        merge_iou: 0.1,
        batch: 1,
    };
    let mut all = Vec::new();
    let mut ids = Vec::new();
    for name in ["P0706", "P1888"] {
        let image = read_image(&fixture.join(format!("{name}.png"))).unwrap();
        let dets =
            predict_large_image(&model, &image, name, &classes, &tiling, Device::Cpu).unwrap();
        for d in &dets {
            assert_eq!(d.image, name);
            assert!(d.score.is_finite() && d.score > 0.0 && d.score <= 1.0);
            assert!(d.poly.iter().flatten().all(|v| v.is_finite()));
        }
        ids.push(name);
        all.extend(dets);
    }
    assert!(
        !all.is_empty(),
        "an untrained head scores every class near 1/16, above the 0.05 threshold"
    );
    let out = tempfile::tempdir().unwrap();
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    write_task1_dir(out.path(), &names, &all).unwrap();
    let (read_classes, read_back) = read_task1_dir(out.path()).unwrap();
    assert_eq!(read_classes.len(), classes.len());
    assert_eq!(read_back.len(), all.len());
    assert!(read_back.iter().all(|d| ids.contains(&d.image.as_str())));
}

#[test]
fn the_stride_64_level_has_anchors_that_a_large_object_is_assigned_to() {
    let _turn = crate::common::torch_turn();
    use rsfm_model::nn::oriented_rcnn::rpn::{assign_anchors, RpnTraining};
    use tch::{Kind, Tensor};
    let vit: VitConfig = serde_json::from_value(json!({
        "patch_size": 16, "image_size": 512, "embed_dim": 32, "depth": 2, "num_heads": 2
    }))
    .unwrap();
    let mut config = OrientedRcnnConfig::new(DotaVersion::V2_0.classes().len());
    config.channels = 16;
    let vs = VarStore::new(Device::Cpu);
    let model = OrientedRcnn::new(&vs.root(), &vit, &VitDetConfig::default(), &config);
    assert_eq!(model.strides(), [4.0, 8.0, 16.0, 32.0, 64.0]);
    let features = tch::no_grad(|| {
        model.features(
            &Tensor::zeros([1, 3, 512, 512], (Kind::Float, Device::Cpu)),
            false,
        )
    });
    let sides: Vec<i64> = features.iter().map(|f| f.size()[2]).collect();
    assert_eq!(sides, [128, 64, 32, 16, 8]);
    let anchors = model.anchors(&features);
    let counts: Vec<i64> = anchors.iter().map(|a| a.size()[0]).collect();
    assert_eq!(counts[4], 8 * 8 * config.anchor_ratios.len() as i64);
    // A 480 px square object: only the 8 × 64 = 512 px anchors of the fifth level overlap it
    // well enough to be positive.
    let gt = Tensor::from_slice(&[16.0f32, 16.0, 496.0, 496.0]).reshape([1, 4]);
    let all = Tensor::cat(&anchors, 0);
    let cfg = RpnTraining {
        batch: 256,
        positive_fraction: 0.5,
        positive_iou: 0.7,
        negative_iou: 0.3,
    };
    let (labels, _) = assign_anchors(&all, &gt, &cfg);
    let positive = labels.eq(1).nonzero().reshape([-1]);
    let first_of_fifth: i64 = counts[..4].iter().sum();
    assert!(positive.size()[0] > 0, "no positive anchor");
    assert!(
        positive.min().int64_value(&[]) >= first_of_fifth,
        "positives outside the stride-64 level: {positive:?}"
    );
}
