//! The segmenter can learn: a tiny ViTDet + UperNet trained on a handful of generated LoveDA
//! tiles drives its loss down and labels those same tiles almost perfectly (mIoU > 0.9).
#![cfg(feature = "torch")]

use rsfm_model::arch::VitConfig;
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::metrics::segmentation::ConfusionMatrix;
use rsfm_model::nn::segmenter::{SegHeads, Segmenter};
use rsfm_model::nn::vitdet::VitDetConfig;
use rsfm_model::params::data::{SegDataParams, SegFormat};
use rsfm_model::train::images::{standardize, to_tensor};
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use rsfm_model::train::seg_data::{list_samples, Part, IGNORE_INDEX};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const TILE: usize = 64;
const STEPS: usize = 150;

/// The training tiles as a normalised `[n, 3, TILE, TILE]` batch and `[n, TILE, TILE]` labels.
fn training_tiles(root: &std::path::Path) -> (Tensor, Tensor) {
    let params = SegDataParams {
        name: "loveda".into(),
        format: SegFormat::Loveda,
        val_tiles: None,
        labels: Default::default(),
        clutter: false,
        trainval: false,
    };
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for sample in list_samples(root, &params, Part::Train).unwrap() {
        let (image, label) = sample.load().unwrap();
        images.push(standardize(&to_tensor(&image)));
        labels.push(Tensor::from_slice(&label).reshape([TILE as i64, TILE as i64]));
    }
    (Tensor::stack(&images, 0), Tensor::stack(&labels, 0))
}

fn miou(model: &Segmenter, images: &Tensor, labels: &Tensor, num_classes: usize) -> f64 {
    let pred = tch::no_grad(|| model.forward_t(images, false))
        .unwrap()
        .argmax(1, false)
        .to_kind(Kind::Uint8)
        .flatten(0, -1);
    let pred = Vec::<u8>::try_from(&pred).unwrap();
    let truth = Vec::<u8>::try_from(&labels.flatten(0, -1)).unwrap();
    let mut confusion = ConfusionMatrix::new(num_classes).unwrap();
    confusion
        .accumulate(&pred, &truth, Some(IGNORE_INDEX))
        .unwrap();
    confusion.report(&[]).miou
}

#[test]
fn tiny_segmenter_overfits_a_few_loveda_tiles() {
    let _turn = crate::common::torch_turn();
    tch::set_num_threads(2);
    tch::manual_seed(5);
    let dir = tempfile::tempdir().unwrap();
    generate(
        SynthDataset::Loveda,
        dir.path(),
        &SynthOptions {
            images: 6,
            seed: 7,
            size: Some(TILE as u32),
            test_images: 0,
        },
    )
    .unwrap();
    let (images, labels) = training_tiles(dir.path());
    assert!(images.size()[0] >= 2, "too few training tiles generated");

    let vit = VitConfig {
        patch_size: 4,
        image_size: TILE,
        in_chans: 3,
        embed_dim: 64,
        depth: 2,
        parallel: 1,
        num_heads: 2,
        mlp_ratio: 4.0,
        qkv_bias: true,
        drop_path: 0.0,
    };
    let vitdet = VitDetConfig {
        window_size: 8,
        global_stages: None,
        rel_pos: false,
    };
    let num_classes = SegFormat::Loveda.num_classes();
    let vs = VarStore::new(Device::Cpu);
    let heads = SegHeads {
        channels: 32,
        ..Default::default()
    };
    let model = Segmenter::new(&vs.root(), &vit, &vitdet, &heads, num_classes as i64);
    let mut opt = AdamW::new(
        decay_groups(&vs, 0.0),
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    );

    let miou_before = miou(&model, &images, &labels, num_classes);
    let mut losses = Vec::new();
    for step in 0..STEPS {
        let lr = 2e-3 * ((step + 1) as f64 / 10.0).min(1.0);
        let loss = model.loss(
            &model.forward_t(&images, true).unwrap(),
            &labels,
            i64::from(IGNORE_INDEX),
        );
        opt.zero_grad();
        loss.backward();
        opt.step(lr);
        losses.push(loss.double_value(&[]));
    }
    let miou_after = miou(&model, &images, &labels, num_classes);
    let (first, last) = (losses[0], losses[STEPS - 1]);
    eprintln!(
        "loss {first:.4} -> {last:.4}, training-tile mIoU {miou_before:.4} -> {miou_after:.4}"
    );
    assert!(last < 0.5 * first, "loss only went from {first} to {last}");
    assert!(
        miou_after > 0.9,
        "mIoU on the training tiles is {miou_after} (was {miou_before} before training)"
    );
}
