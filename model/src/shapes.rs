//! The fine-tuning models' layers as data, without libtorch: each convolution and linear
//! layer of the ViTDet backbone, its simple feature pyramid, Oriented R-CNN's neck, RPN and RoI
//! head, UperNet and the auxiliary FCN head, with its multiply-accumulates per sample and its
//! parameters (what `rsfm plan --estimate` counts); and the fixed parts of those heads that the
//! tch models in `nn/` build with.
//!
//! A layer's multiply-accumulates (MACs) per sample are its weights times the positions it runs
//! at: output positions of a stride-1 convolution, input positions of the pyramid's stride-2
//! transposed convolutions, tokens of a linear layer in the backbone (window blocks project the
//! zero-padded grid), [`roi_batch`](crate::params::detector::DetectorParams::roi_batch) RoIs
//! per image in the RoI head (what training samples). Attention scores (`q·kᵀ` and the weighted
//! sum of values, plus the decomposed relative-position products) are one aggregate entry.
//! Biases, norms, activations, pooling, resizing and RoI Align are not counted as MACs.

use serde::Serialize;

use crate::arch::VitConfig;
use crate::params::detector::DetectorParams;
use crate::params::vitdet::VitDetConfig;

/// Anchor height/width ratios of the oriented RPN.
pub const ANCHOR_RATIOS: [f64; 3] = [0.5, 1.0, 2.0];
/// Side of the RoI features the RoI head reads.
pub const ROI_SIZE: usize = 7;
/// Pooling scales of UperNet's pyramid pooling module.
pub const POOL_SCALES: [usize; 4] = [1, 2, 3, 6];
/// Index of the pyramid map the auxiliary FCN head reads: the third of four (mmseg's
/// `in_index=2`).
pub const AUX_MAP: usize = 2;
/// Offsets a midpoint-offset RPN regresses per anchor.
pub const RPN_DELTAS: usize = 6;
/// Rotated deltas the RoI head regresses per RoI.
pub const ROI_DELTAS: usize = 5;

/// One layer (or an aggregate of like layers) of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// Its parameter path without `.weight` (`neck.lateral.0`, `rpn.conv`), or an aggregate:
    /// `backbone.blocks` (every block's linear layers), `backbone.attention` (attention
    /// scores), `backbone.embeddings` (class token, position table, final norm).
    pub name: String,
    /// Multiply-accumulates per sample in the forward pass.
    pub macs: u64,
    /// Trainable parameters: weights, biases, norm scales and shifts.
    pub params: u64,
}

impl Layer {
    fn new(name: impl Into<String>, macs: u64, params: u64) -> Layer {
        Layer {
            name: name.into(),
            macs,
            params,
        }
    }

    /// A `kernel × kernel` stride-1 convolution `cin → cout` over a `side × side` map;
    /// `extra` parameters beside its weights (a bias, or a norm's `2 × cout`).
    fn conv(
        name: String,
        cin: usize,
        cout: usize,
        kernel: usize,
        side: usize,
        extra: usize,
    ) -> Self {
        let weights = (cin * cout * kernel * kernel) as u64;
        Layer::new(name, weights * (side * side) as u64, weights + extra as u64)
    }
}

/// Sum of the layers' MACs per sample.
pub fn total_macs(layers: &[Layer]) -> u64 {
    layers.iter().map(|l| l.macs).sum()
}

/// Sum of the layers' parameters.
pub fn total_params(layers: &[Layer]) -> u64 {
    layers.iter().map(|l| l.params).sum()
}

/// Sides of the four pyramid maps (strides patch/4, patch/2, patch, 2·patch).
pub fn pyramid_sides(vit: &VitConfig) -> [usize; 4] {
    let grid = vit.grid_size();
    [4 * grid, 2 * grid, grid, grid / 2]
}

/// The ViTDet backbone: patch embedding, blocks (window blocks on the grid padded to whole
/// windows), attention scores, embeddings and the simple feature pyramid (`backbone.neck`).
pub fn vitdet_layers(vit: &VitConfig, vitdet: &VitDetConfig) -> Vec<Layer> {
    let d = vit.embed_dim;
    let (grid, hidden, p) = (vit.grid_size(), vit.mlp_hidden_dim(), vit.patch_size);
    let tokens = (grid * grid) as u64;
    let global = vitdet.global_stages(vit.depth);
    let window = vitdet.window_size.max(1);
    let padded_side = grid.div_ceil(window) * window;
    let attn_weights = (4 * d * d) as u64;
    let mlp_weights = (2 * d * hidden) as u64;
    let (mut linear, mut scores, mut rel_pos) = (0u64, 0u64, 0u64);
    for stage in 0..vit.depth {
        // Tokens the attention sees, in sets of `set` tokens on a `side × side` grid each.
        let (seen, side) = if global.contains(&stage) {
            (tokens, grid)
        } else {
            ((padded_side * padded_side) as u64, window)
        };
        let set = (side * side) as u64;
        linear += vit.parallel as u64 * (attn_weights * seen + mlp_weights * tokens);
        // q·kᵀ and the weighted sum: 2 × set × set × width per set of tokens.
        scores += vit.parallel as u64 * 2 * seen * set * d as u64;
        if vitdet.rel_pos {
            // One product per axis: every query with `side` table rows of its head's width.
            scores += vit.parallel as u64 * 2 * seen * (side * d) as u64;
            rel_pos += vit.parallel as u64 * 2 * (2 * side as u64 - 1) * vit.head_dim() as u64;
        }
    }
    let patch_weights = vit.in_chans * p * p * d;
    let up = 4 * d * d;
    vec![
        Layer::new(
            "backbone.patch_embed.proj",
            patch_weights as u64 * tokens,
            (patch_weights + d) as u64,
        ),
        Layer::new(
            "backbone.blocks",
            linear,
            vit.num_blocks() as u64 * vit.block_param_count() + rel_pos,
        ),
        Layer::new("backbone.attention", scores, 0),
        Layer::new(
            "backbone.embeddings",
            0,
            (d + (grid * grid + 1) * d + 2 * d) as u64,
        ),
        Layer::new(
            "backbone.neck.fpn1.0",
            (up * grid * grid) as u64,
            (up + d) as u64,
        ),
        Layer::new("backbone.neck.fpn1.1", 0, 2 * d as u64),
        Layer::new(
            "backbone.neck.fpn1.3",
            (up * 4 * grid * grid) as u64,
            (up + d) as u64,
        ),
        Layer::new(
            "backbone.neck.fpn2.0",
            (up * grid * grid) as u64,
            (up + d) as u64,
        ),
    ]
}

/// Oriented R-CNN on the ViTDet backbone for `num_classes` classes: the backbone's layers, then
/// the per-level neck (`neck.lateral.i`, `neck.output.i`), the RPN shared by the five levels
/// (the fifth a stride-2 subsample of the fourth) and the RoI head at `roi_batch` RoIs.
pub fn detector_layers(
    vit: &VitConfig,
    vitdet: &VitDetConfig,
    detector: &DetectorParams,
    num_classes: usize,
) -> Vec<Layer> {
    let (d, c, fc) = (vit.embed_dim, detector.channels, detector.fc_dim);
    let mut layers = vitdet_layers(vit, vitdet);
    let maps = pyramid_sides(vit);
    for (i, &side) in maps.iter().enumerate() {
        layers.push(Layer::conv(format!("neck.lateral.{i}"), d, c, 1, side, c));
        layers.push(Layer::conv(format!("neck.output.{i}"), c, c, 3, side, c));
    }
    let levels = maps.into_iter().chain([maps[3].div_ceil(2)]);
    let positions: u64 = levels.map(|side| (side * side) as u64).sum();
    let anchors = ANCHOR_RATIOS.len();
    for (name, cout, kernel) in [
        ("rpn.conv", c, 3),
        ("rpn.cls", anchors, 1),
        ("rpn.reg", anchors * RPN_DELTAS, 1),
    ] {
        let weights = (c * cout * kernel * kernel) as u64;
        layers.push(Layer::new(name, weights * positions, weights + cout as u64));
    }
    let rois = detector.roi_batch as u64;
    for (name, cin, cout) in [
        ("roi_head.fc1", c * ROI_SIZE * ROI_SIZE, fc),
        ("roi_head.fc2", fc, fc),
        ("roi_head.cls", fc, num_classes + 1),
        ("roi_head.reg", fc, ROI_DELTAS),
    ] {
        let weights = (cin * cout) as u64;
        layers.push(Layer::new(name, weights * rois, weights + cout as u64));
    }
    layers
}

/// The segmenter on the ViTDet backbone for `num_classes` classes: the backbone's layers,
/// UperNet `channels` wide (pyramid pooling on the coarsest map, laterals and FPN convolutions
/// on the three finer ones, the fusing bottleneck and classifier at the finest) and, when
/// `aux_channels` is set, the auxiliary FCN head on map [`AUX_MAP`]. Every conv module is a
/// convolution without bias and a norm with a scale and a shift per channel.
pub fn segmenter_layers(
    vit: &VitConfig,
    vitdet: &VitDetConfig,
    channels: usize,
    aux_channels: Option<usize>,
    num_classes: usize,
) -> Vec<Layer> {
    let (d, c, k) = (vit.embed_dim, channels, num_classes);
    let mut layers = vitdet_layers(vit, vitdet);
    let maps = pyramid_sides(vit);
    for (i, scale) in POOL_SCALES.into_iter().enumerate() {
        let name = format!("decode_head.psp_modules.{i}.1.conv");
        layers.push(Layer::conv(name, d, c, 1, scale, 2 * c));
    }
    let bottleneck = d + POOL_SCALES.len() * c;
    let name = "decode_head.bottleneck.conv".to_string();
    layers.push(Layer::conv(name, bottleneck, c, 3, maps[3], 2 * c));
    for (i, &side) in maps[..3].iter().enumerate() {
        let lateral = format!("decode_head.lateral_convs.{i}.conv");
        layers.push(Layer::conv(lateral, d, c, 1, side, 2 * c));
        let fpn = format!("decode_head.fpn_convs.{i}.conv");
        layers.push(Layer::conv(fpn, c, c, 3, side, 2 * c));
    }
    let fuse = "decode_head.fpn_bottleneck.conv".to_string();
    layers.push(Layer::conv(fuse, 4 * c, c, 3, maps[0], 2 * c));
    let classifier = "decode_head.conv_seg".to_string();
    layers.push(Layer::conv(classifier, c, k, 1, maps[0], k));
    if let Some(a) = aux_channels {
        let side = maps[AUX_MAP];
        let conv = "auxiliary_head.convs.0.conv".to_string();
        layers.push(Layer::conv(conv, d, a, 3, side, 2 * a));
        let classifier = "auxiliary_head.conv_seg".to_string();
        layers.push(Layer::conv(classifier, a, k, 1, side, k));
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vit_b_1024() -> VitConfig {
        VitConfig {
            image_size: 1024,
            ..VitConfig::vit_base_patch16_224()
        }
    }

    fn macs(layers: &[Layer], name: &str) -> u64 {
        layers
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no layer {name}"))
            .macs
    }

    #[test]
    fn vit_b_at_1024_projects_the_padded_grid_in_window_blocks() {
        let vitdet = VitDetConfig {
            window_size: 14,
            global_stages: None,
            rel_pos: false,
        };
        let layers = vitdet_layers(&vit_b_1024(), &vitdet);
        // 64×64 = 4096 tokens; windows of 14 pad the grid to 70×70 = 4900. Blocks 2, 5, 8, 11
        // are global. Attention projections 4 × 768² = 2,359,296 weights, MLP 2 × 768 × 3072 =
        // 4,718,592: 4 × 2,359,296 × 4096 + 8 × 2,359,296 × 4900 + 12 × 4,718,592 × 4096.
        let linear = 4 * 2_359_296 * 4096 + 8 * 2_359_296 * 4900 + 12 * 4_718_592 * 4096;
        assert_eq!(macs(&layers, "backbone.blocks"), linear);
        // Scores: global 2 × 4096 × 4096 × 768 each; window 2 × 4900 × 196 × 768 each.
        let scores = 4 * 2 * 4096 * 4096 * 768 + 8 * 2 * 4900 * 196 * 768;
        assert_eq!(macs(&layers, "backbone.attention"), scores);
        // The pyramid: 4 × 768² weights at 64², at 128² and at 64².
        assert_eq!(
            macs(&layers, "backbone.neck.fpn1.3"),
            4 * 768 * 768 * 128 * 128
        );
    }

    #[test]
    fn the_detector_heads_are_counted_at_every_level_and_sampled_roi() {
        let vitdet = VitDetConfig {
            window_size: 16,
            global_stages: None,
            rel_pos: false,
        };
        let layers = detector_layers(&vit_b_1024(), &vitdet, &DetectorParams::default(), 18);
        // Levels 256, 128, 64, 32 and 16 a side: 87,296 positions; 3×3 conv 256 → 256.
        assert_eq!(macs(&layers, "rpn.conv"), 9 * 256 * 256 * 87_296);
        assert_eq!(macs(&layers, "neck.output.0"), 9 * 256 * 256 * 256 * 256);
        // 512 RoIs: 12,544 → 1024, then 1024 → 1024.
        assert_eq!(macs(&layers, "roi_head.fc1"), 12_544 * 1024 * 512);
        assert_eq!(macs(&layers, "roi_head.cls"), 1024 * 19 * 512);
    }

    #[test]
    fn upernet_fuses_at_the_finest_map_and_the_aux_head_reads_the_third() {
        let vit = VitConfig {
            image_size: 512,
            ..VitConfig::vit_base_patch16_224()
        };
        let vitdet = VitDetConfig {
            window_size: 8,
            global_stages: None,
            rel_pos: false,
        };
        let layers = segmenter_layers(&vit, &vitdet, 512, Some(256), 6);
        // Maps 128, 64, 32, 16 a side.
        assert_eq!(
            macs(&layers, "decode_head.fpn_bottleneck.conv"),
            9 * 2048 * 512 * 128 * 128
        );
        assert_eq!(
            macs(&layers, "decode_head.bottleneck.conv"),
            9 * (768 + 2048) * 512 * 16 * 16
        );
        assert_eq!(
            macs(&layers, "auxiliary_head.convs.0.conv"),
            9 * 768 * 256 * 32 * 32
        );
        assert_eq!(
            macs(&layers, "decode_head.psp_modules.3.1.conv"),
            768 * 512 * 36
        );
    }
}
