//! The layers `shapes` lists for the estimate (`rsfm plan --estimate`) against the models the
//! tch code builds: every convolution and linear weight in the VarStore, multiplied by the
//! positions it runs at as measured on a forward pass (tokens, pyramid maps, neck levels), gives
//! the same multiply-accumulates per layer, and the trainable variables add up to the same
//! parameter count, for a toy detector and a toy segmenter (two parallel branches, window and
//! global blocks, relative positions). The window side divides the grid here; padded windows
//! and attention scores are pinned by hand in `shapes`' unit tests.
#![cfg(feature = "torch")]

use std::collections::BTreeMap;

use rsfm_model::arch::VitConfig;
use rsfm_model::nn::norm::NormSpec;
use rsfm_model::nn::oriented_rcnn::{OrientedRcnn, OrientedRcnnConfig};
use rsfm_model::nn::segmenter::{SegHeads, Segmenter};
use rsfm_model::nn::upernet::HeadSettings;
use rsfm_model::params::detector::DetectorParams;
use rsfm_model::params::norm::Norm;
use rsfm_model::params::vitdet::VitDetConfig;
use rsfm_model::shapes::{self, Layer};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Patch 8 at 64 px: an 8×8 grid, windows of 4, four stages of two branches, the last global.
fn toy_vit() -> (VitConfig, VitDetConfig) {
    let vit = VitConfig {
        patch_size: 8,
        image_size: 64,
        in_chans: 3,
        embed_dim: 16,
        depth: 4,
        parallel: 2,
        num_heads: 2,
        mlp_ratio: 4.0,
        qkv_bias: true,
        drop_path: 0.0,
    };
    let vitdet = VitDetConfig {
        window_size: 4,
        global_stages: Some(vec![3]),
        rel_pos: true,
    };
    assert_eq!(vit.grid_size() % vitdet.window_size, 0, "no padded windows");
    (vit, vitdet)
}

/// Positions of a `[B, C, H, W]` map.
fn area(map: &Tensor) -> u64 {
    let size = map.size();
    (size[2] * size[3]) as u64
}

/// Multiply-accumulates per sample of every weight of `vs` with two or more dimensions (the
/// convolutions and linear layers), by layer (the backbone's blocks together), each at the
/// positions `runs_at` gives for its layer; and the trainable parameters.
fn counted(vs: &VarStore, runs_at: impl Fn(&str) -> u64) -> (BTreeMap<String, u64>, u64) {
    let mut macs = BTreeMap::new();
    let mut params = 0;
    for (name, tensor) in vs.variables() {
        if tensor.requires_grad() {
            params += tensor.numel() as u64;
        }
        let Some(layer) = name.strip_suffix(".weight") else {
            continue;
        };
        if tensor.dim() < 2 {
            continue;
        }
        let layer = if layer.starts_with("backbone.blocks.") {
            "backbone.blocks"
        } else {
            layer
        };
        *macs.entry(layer.to_string()).or_insert(0) += tensor.numel() as u64 * runs_at(layer);
    }
    (macs, params)
}

/// The estimate's layers that are convolutions or linear layers, by name.
fn estimated(layers: &[Layer]) -> BTreeMap<String, u64> {
    layers
        .iter()
        .filter(|l| l.macs > 0 && l.name != "backbone.attention")
        .map(|l| (l.name.clone(), l.macs))
        .collect()
}

/// Where the backbone's own layers run, from its four measured maps (strides 2, 4, 8, 16 px).
fn backbone_runs_at(layer: &str, maps: &[Tensor]) -> Option<u64> {
    let tokens = area(&maps[2]);
    Some(match layer {
        "backbone.patch_embed.proj" | "backbone.blocks" => tokens,
        // Stride-2 transposed convolutions: every input position, a quarter of the output's.
        "backbone.neck.fpn1.0" => area(&maps[1]) / 4,
        "backbone.neck.fpn1.3" => area(&maps[0]) / 4,
        "backbone.neck.fpn2.0" => area(&maps[1]) / 4,
        _ => return None,
    })
}

#[test]
fn the_estimated_detector_layers_are_those_the_model_builds() {
    let _turn = crate::common::torch_turn();
    let (vit, vitdet) = toy_vit();
    let params = DetectorParams {
        channels: 16,
        fc_dim: 32,
        roi_batch: 24,
        ..DetectorParams::default()
    };
    let config = OrientedRcnnConfig::from_params(5, &params);
    let vs = VarStore::new(Device::Cpu);
    let model = OrientedRcnn::new(&vs.root(), &vit, &vitdet, &config);
    let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    let (maps, levels) = tch::no_grad(|| {
        (
            model.backbone.forward(&images, false),
            model.features(&images, false),
        )
    });
    assert_eq!(levels.len(), 5);
    let level_positions: u64 = levels.iter().map(area).sum();
    let runs_at = |layer: &str| {
        if let Some(positions) = backbone_runs_at(layer, &maps) {
            return positions;
        }
        let level = |prefix: &str| {
            layer
                .strip_prefix(prefix)
                .map(|i| area(&levels[i.parse::<usize>().expect("a level")]))
        };
        if let Some(positions) = level("neck.lateral.").or_else(|| level("neck.output.")) {
            return positions;
        }
        match layer {
            // One head shared by the five levels.
            "rpn.conv" | "rpn.cls" | "rpn.reg" => level_positions,
            // Every RoI sampled for training.
            _ if layer.starts_with("roi_head.") => config.roi_batch as u64,
            _ => panic!("no count for layer {layer}"),
        }
    };
    let (macs, trainable) = counted(&vs, runs_at);
    let layers = shapes::detector_layers(&vit, &vitdet, &params, 5);
    assert_eq!(estimated(&layers), macs);
    assert_eq!(shapes::total_params(&layers), trainable);
}

#[test]
fn the_estimated_segmenter_layers_are_those_the_model_builds() {
    let _turn = crate::common::torch_turn();
    let (vit, vitdet) = toy_vit();
    let heads = SegHeads {
        channels: 24,
        aux_channels: Some(12),
        settings: HeadSettings {
            norm: NormSpec {
                kind: Norm::Bn,
                group: None,
            },
            dropout: 0.1,
        },
    };
    let vs = VarStore::new(Device::Cpu);
    let model = Segmenter::new(&vs.root(), &vit, &vitdet, &heads, 6);
    let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    let maps = tch::no_grad(|| model.backbone.forward(&images, false));
    let runs_at = |layer: &str| {
        if let Some(positions) = backbone_runs_at(layer, &maps) {
            return positions;
        }
        let on_map = |prefix: &str| {
            layer
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('.').next())
                .map(|i| area(&maps[i.parse::<usize>().expect("a map")]))
        };
        if let Some(positions) =
            on_map("decode_head.lateral_convs.").or_else(|| on_map("decode_head.fpn_convs."))
        {
            return positions;
        }
        if let Some(i) = layer
            .strip_prefix("decode_head.psp_modules.")
            .and_then(|rest| rest.split('.').next())
        {
            // mmseg's pooling scales 1, 2, 3, 6: the pooled map's side.
            let side = [1, 2, 3, 6][i.parse::<usize>().expect("a scale")];
            return side * side;
        }
        match layer {
            "decode_head.bottleneck.conv" => area(&maps[3]),
            "decode_head.fpn_bottleneck.conv" | "decode_head.conv_seg" => area(&maps[0]),
            // The auxiliary head reads the stride-8 map.
            "auxiliary_head.convs.0.conv" | "auxiliary_head.conv_seg" => area(&maps[2]),
            _ => panic!("no count for layer {layer}"),
        }
    };
    let (macs, trainable) = counted(&vs, runs_at);
    let layers = shapes::segmenter_layers(&vit, &vitdet, 24, Some(12), 6);
    assert_eq!(estimated(&layers), macs);
    assert_eq!(shapes::total_params(&layers), trainable);
}
