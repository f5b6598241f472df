//! What a plan costs before it runs (`rsfm plan --estimate`): training FLOPs, GPU-hours at a
//! stated utilisation and peak memory per GPU, per stage and in total.
//!
//! - **FLOPs**: 6 per multiply-accumulate (forward 2, backward 4). MAE ≈ 6 × parameters ×
//!   tokens: its encoder sees the visible tokens only (25% at mask ratio 0.75), its decoder
//!   every token. A fine-tuning stage counts the layers of the model it builds
//!   ([`rsfm_model::shapes`]): the ViTDet backbone (window blocks on the padded grid, attention
//!   scores), its simple feature pyramid, and Oriented R-CNN's neck, RPN and RoI head (at
//!   `roi_batch` RoIs per image) or UperNet and the auxiliary FCN head.
//! - **GPU-hours** = FLOPs / ([`MFU`] × the GPU's dense bf16 peak), summed over the stage's
//!   GPUs; **wall-clock hours** = GPU-hours / GPUs (data parallel, perfect scaling).
//! - **Memory per GPU** in GiB (data parallel: each GPU holds a full replica and `batch / gpus`
//!   samples): fp32 weights (4 B/param), fp32 gradients (4 B), AdamW moments (8 B), heads
//!   included, and bf16 backbone activations of 34 × tokens × width bytes per block and sample
//!   (Korthikanti et al. 2022, with fused attention, so no tokens² term); with activation
//!   checkpointing, only each stage's input (2 × tokens × width bytes) plus one stage
//!   recomputed at a time. The heads' activations are not counted.
//!
//! `evaluate` and `command` stages are not estimated (their cost depends on the data).

use std::collections::HashMap;

use rsfm_model::arch::VitConfig;
use rsfm_model::params::mae::MaeConfig;
use rsfm_model::params::{FinetuneDetParams, FinetuneSegParams, MaePretrainParams};
use rsfm_model::shapes::{self, Layer};
use serde::Serialize;

use super::stage_params::parsed;
use super::{Plan, PlannedStage};
use crate::recipe::StageKind;

/// Model FLOPs utilisation assumed for GPU-hours: a typical fraction of the bf16 peak that
/// ViT training reaches.
pub const MFU: f64 = 0.40;

/// Bytes per parameter of fp32 weights, fp32 gradients and AdamW's two fp32 moments.
const STATE_BYTES_PER_PARAM: f64 = 16.0;
/// Activation bytes per token, width unit, block and sample in bf16 (fused attention).
const ACTIVATION_BYTES: f64 = 34.0;
/// Bytes per token and width unit kept per checkpointed stage (its bf16 input).
const CHECKPOINT_BYTES: f64 = 2.0;

/// Bytes in a GiB.
pub const GIB: f64 = (1u64 << 30) as f64;

/// A GPU model: peak dense bf16 throughput and memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Gpu {
    /// NVIDIA A100 SXM 80 GB (80.0 GiB): 312 TFLOP/s bf16.
    A100,
    /// NVIDIA H100 SXM 80 GB (79.6 GiB): 989 TFLOP/s bf16.
    H100,
    /// NVIDIA H200 141 GB (140.4 GiB): 989 TFLOP/s bf16.
    H200,
}

impl Gpu {
    /// Peak dense bf16 FLOP/s.
    pub fn peak_flops(self) -> f64 {
        match self {
            Gpu::A100 => 312e12,
            Gpu::H100 | Gpu::H200 => 989e12,
        }
    }

    /// Memory in bytes: what `nvidia-smi` reports as the total (81,920, 81,559 and 143,771 MiB).
    pub fn memory_bytes(self) -> f64 {
        let mib: u32 = match self {
            Gpu::A100 => 81_920,
            Gpu::H100 => 81_559,
            Gpu::H200 => 143_771,
        };
        f64::from(mib) * f64::from(1u32 << 20)
    }

    /// Its name as the flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Gpu::A100 => "a100",
            Gpu::H100 => "h100",
            Gpu::H200 => "h200",
        }
    }
}

/// Memory one GPU needs for a training stage, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Memory {
    /// Weights, gradients and optimiser state.
    pub state: f64,
    /// Activations kept for the backward pass, without checkpointing.
    pub activations: f64,
    /// Activations with activation checkpointing.
    pub activations_checkpointed: f64,
}

impl Memory {
    /// Peak without checkpointing.
    pub fn peak(&self) -> f64 {
        self.state + self.activations
    }

    /// Peak with activation checkpointing.
    pub fn peak_checkpointed(&self) -> f64 {
        self.state + self.activations_checkpointed
    }
}

/// The estimate of one training stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageCost {
    /// `experiment/stage`.
    pub stage: String,
    /// Its kind.
    pub kind: String,
    /// Parameters trained (backbone, plus the MAE decoder or the fine-tuning heads).
    pub params: u64,
    /// Tokens through the backbone over the whole stage (encoder tokens for MAE).
    pub tokens: f64,
    /// Training FLOPs.
    pub flops: f64,
    /// The part of `flops` outside the backbone (pyramid, neck and heads; 0 for MAE).
    pub head_flops: f64,
    /// GPUs it asks for (at least 1).
    pub gpus: u32,
    /// GPU-hours at [`MFU`] of the chosen GPU's peak, summed over its GPUs.
    pub gpu_hours: f64,
    /// Wall-clock hours on its GPUs: `gpu_hours / gpus`.
    pub wall_hours: f64,
    /// Memory per GPU.
    pub memory: Memory,
    /// Whether it fits the chosen GPU without checkpointing.
    pub fits: bool,
    /// Whether it fits with activation checkpointing.
    pub fits_checkpointed: bool,
}

/// The estimate of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// The GPU assumed.
    pub gpu: Gpu,
    /// The GPU's memory in GiB.
    pub gpu_memory_gib: f64,
    /// The utilisation assumed.
    pub mfu: f64,
    /// Training stages, in plan order.
    pub stages: Vec<StageCost>,
    /// Stages not estimated (evaluation, commands, or training without `steps`), by name.
    pub not_estimated: Vec<String>,
    /// Sum of the stages' FLOPs.
    pub total_flops: f64,
    /// Sum of the stages' GPU-hours (each summed over its GPUs).
    pub total_gpu_hours: f64,
    /// Sum of the stages' wall-clock hours: the plan's duration if its stages ran one after
    /// another.
    pub total_wall_hours: f64,
}

/// Estimates every training stage of `plan` on `gpu`.
pub fn estimate(plan: &Plan, gpu: Gpu) -> Estimate {
    let mut stages = Vec::new();
    let mut not_estimated = Vec::new();
    for planned in &plan.stages {
        match stage_cost(planned, gpu) {
            Some(cost) => stages.push(cost),
            None => not_estimated.push(planned.display_name()),
        }
    }
    Estimate {
        gpu,
        gpu_memory_gib: gpu.memory_bytes() / GIB,
        mfu: MFU,
        total_flops: stages.iter().map(|s| s.flops).sum(),
        total_gpu_hours: stages.iter().map(|s| s.gpu_hours).sum(),
        total_wall_hours: stages.iter().map(|s| s.wall_hours).sum(),
        stages,
        not_estimated,
    }
}

/// GPU-hours on `gpu` of each training stage of `plan` that can be estimated, by
/// `experiment/stage` (what the report's seed costs and the sensitivity plan add up).
pub fn gpu_hours_by_stage(plan: &Plan, gpu: Gpu) -> HashMap<String, f64> {
    plan.stages
        .iter()
        .filter_map(|planned| stage_cost(planned, gpu))
        .map(|cost| (cost.stage, cost.gpu_hours))
        .collect()
}

/// Training FLOPs of one stage, or `None` when it is not a training stage with a known step
/// count (the same figure whatever the GPU).
pub fn training_flops(planned: &PlannedStage) -> Option<f64> {
    stage_cost(planned, Gpu::H100).map(|cost| cost.flops)
}

/// The cost of one stage, or `None` when it is not a training stage with a known step count.
fn stage_cost(planned: &PlannedStage, gpu: Gpu) -> Option<StageCost> {
    let (work, steps, batch) = match planned.stage.kind {
        StageKind::MaePretrain => {
            let params: MaePretrainParams = parsed(planned)?;
            let vit = params.backbone.vit().ok()?;
            let work = mae_work(&vit, &params.mae);
            (work, params.steps, params.batch_size)
        }
        StageKind::FinetuneDet => {
            let params: FinetuneDetParams = parsed(planned)?;
            let vit = params.backbone.vit().ok()?;
            let classes = params.det_data().ok()?.class_names().ok()?.len();
            let layers = shapes::detector_layers(&vit, &params.vitdet, &params.detector, classes);
            (
                finetune_work(&vit, &layers),
                params.steps?,
                params.batch_size,
            )
        }
        StageKind::FinetuneSeg => {
            let params: FinetuneSegParams = parsed(planned)?;
            let vit = params.backbone.vit().ok()?;
            let classes = params.seg_data().ok()?.format.num_classes();
            let layers = shapes::segmenter_layers(
                &vit,
                &params.vitdet,
                params.head_channels,
                params.aux_head_channels(),
                classes,
            );
            (
                finetune_work(&vit, &layers),
                params.steps,
                params.batch_size,
            )
        }
        _ => return None,
    };
    let (steps, batch) = (steps as f64, batch as f64);
    let gpus = planned.stage.resources.gpus.max(1);
    let per_gpu = (batch / f64::from(gpus)).ceil();
    let flops = work.flops_per_sample * batch * steps;
    let memory = Memory {
        state: STATE_BYTES_PER_PARAM * work.params as f64,
        activations: work.activations_per_sample * per_gpu,
        activations_checkpointed: work.checkpointed_per_sample * per_gpu,
    };
    let gpu_hours = flops / (MFU * gpu.peak_flops()) / 3600.0;
    Some(StageCost {
        stage: planned.display_name(),
        kind: planned.stage.kind.as_str().to_string(),
        params: work.params,
        tokens: work.tokens_per_sample * batch * steps,
        flops,
        head_flops: work.head_flops_per_sample * batch * steps,
        gpus,
        gpu_hours,
        wall_hours: gpu_hours / f64::from(gpus),
        fits: memory.peak() <= gpu.memory_bytes(),
        fits_checkpointed: memory.peak_checkpointed() <= gpu.memory_bytes(),
        memory,
    })
}

/// What one training sample costs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SampleWork {
    params: u64,
    tokens_per_sample: f64,
    flops_per_sample: f64,
    head_flops_per_sample: f64,
    activations_per_sample: f64,
    checkpointed_per_sample: f64,
}

/// Per-sample bytes of activations of `blocks` blocks (grouped in `stages` of parallel
/// branches) at `tokens` × `width`: without and with checkpointing.
fn activation_bytes(tokens: f64, width: f64, stages: usize, parallel: usize) -> (f64, f64) {
    let per_block = ACTIVATION_BYTES * tokens * width;
    let full = per_block * (stages * parallel) as f64;
    let checkpointed =
        CHECKPOINT_BYTES * tokens * width * stages as f64 + per_block * parallel as f64;
    (full, checkpointed)
}

/// Training FLOPs per multiply-accumulate: 2 forward, 4 backward.
const FLOPS_PER_MAC: f64 = 6.0;

/// A fine-tuning stage's sample through the model whose `layers` [`shapes`] lists: their
/// multiply-accumulates and parameters, the backbone's activations.
fn finetune_work(vit: &VitConfig, layers: &[Layer]) -> SampleWork {
    let tokens = vit.num_patches() as f64;
    let (activations, checkpointed) =
        activation_bytes(tokens, vit.embed_dim as f64, vit.depth, vit.parallel);
    let heads: u64 = layers
        .iter()
        .filter(|l| !l.name.starts_with("backbone.") || l.name.starts_with("backbone.neck."))
        .map(|l| l.macs)
        .sum();
    SampleWork {
        params: shapes::total_params(layers),
        tokens_per_sample: tokens,
        flops_per_sample: FLOPS_PER_MAC * shapes::total_macs(layers) as f64,
        head_flops_per_sample: FLOPS_PER_MAC * heads as f64,
        activations_per_sample: activations,
        checkpointed_per_sample: checkpointed,
    }
}

/// Parameters of the MAE decoder: the projection from the encoder, mask token, position table
/// (class token included), blocks, final norm and the pixel prediction layer.
fn decoder_params(vit: &VitConfig, decoder: &MaeConfig) -> u64 {
    let d = vit.embed_dim as u64;
    let dd = decoder.decoder_embed_dim as u64;
    let block = VitConfig {
        embed_dim: decoder.decoder_embed_dim,
        depth: decoder.decoder_depth,
        parallel: 1,
        num_heads: decoder.decoder_num_heads,
        ..vit.clone()
    }
    .block_param_count();
    let pixels = (vit.patch_size * vit.patch_size * vit.in_chans) as u64;
    let embed = d * dd + dd;
    let mask_token = dd;
    let pos_embed = (vit.num_patches() as u64 + 1) * dd;
    let norm = 2 * dd;
    let pred = dd * pixels + pixels;
    embed + mask_token + pos_embed + block * decoder.decoder_depth as u64 + norm + pred
}

fn mae_work(vit: &VitConfig, decoder: &MaeConfig) -> SampleWork {
    let encoder = vit.param_count();
    let dec = decoder_params(vit, decoder);
    let all = vit.num_patches() as f64;
    // MAE keeps int(N × (1 − mask_ratio)) patches.
    let visible = (all * (1.0 - decoder.mask_ratio)).floor();
    let (enc_act, enc_ckpt) =
        activation_bytes(visible, vit.embed_dim as f64, vit.depth, vit.parallel);
    let (dec_act, dec_ckpt) = activation_bytes(
        all,
        decoder.decoder_embed_dim as f64,
        decoder.decoder_depth,
        1,
    );
    SampleWork {
        params: encoder + dec,
        tokens_per_sample: visible,
        flops_per_sample: 6.0 * (encoder as f64 * visible + dec as f64 * all),
        head_flops_per_sample: 0.0,
        activations_per_sample: enc_act + dec_act,
        checkpointed_per_sample: enc_ckpt + dec_ckpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsfm_model::params::vitdet::VitDetConfig;

    const VIT_B: u64 = 85_798_656;

    /// MAE's decoder: 512 wide, 8 blocks, 16 heads, mask ratio 0.75.
    fn mae_default() -> MaeConfig {
        MaeConfig {
            decoder_embed_dim: 512,
            decoder_depth: 8,
            decoder_num_heads: 16,
            mask_ratio: 0.75,
            ..MaeConfig::default()
        }
    }

    #[test]
    fn the_mae_vit_b_decoder_has_the_hand_counted_parameters() {
        // Per block at width 512: norms 2048, qkv 786,432 + 1,536, proj 262,144 + 512,
        // MLP 1,048,576 + 2,048 + 1,048,576 + 512 = 3,152,384; × 8 = 25,219,072.
        // Embed 768·512 + 512 = 393,728; mask token 512; positions 197·512 = 100,864;
        // norm 1,024; prediction 512·768 + 768 = 393,984.
        let expected = 25_219_072 + 393_728 + 512 + 100_864 + 1_024 + 393_984;
        assert_eq!(
            decoder_params(&VitConfig::vit_base_patch16_224(), &mae_default()),
            expected
        );
    }

    #[test]
    fn mae_flops_count_a_quarter_of_the_tokens_in_the_encoder_and_all_in_the_decoder() {
        let work = mae_work(&VitConfig::vit_base_patch16_224(), &mae_default());
        // 196 patches, 49 visible: 6 × (85,798,656 × 49 + 26,109,184 × 196).
        assert_eq!(work.tokens_per_sample, 49.0);
        assert_eq!(
            work.flops_per_sample,
            6.0 * (4_204_134_144.0 + 5_117_400_064.0)
        );
        assert_eq!(work.params, VIT_B + 26_109_184);
    }

    #[test]
    fn fine_tuning_vit_b_at_224_costs_six_flops_per_mac_of_backbone_and_heads() {
        let vit = VitConfig::vit_base_patch16_224();
        // One 14×14 window covers the grid: every block sees the 196 tokens.
        let vitdet = VitDetConfig {
            window_size: 14,
            global_stages: None,
            rel_pos: false,
        };
        let layers = shapes::segmenter_layers(&vit, &vitdet, 512, Some(256), 6);
        let work = finetune_work(&vit, &layers);
        // Blocks 12 × (4 × 768² + 2 × 768 × 3072) × 196 = 16,647,192,576; patch embedding
        // 3 × 16² × 768 × 196 = 115,605,504; scores 12 × 2 × 196² × 768 = 708,083,712. The
        // pyramid, UperNet (512 wide, maps 56, 28, 14, 7) and the FCN head (256 wide, on 14²)
        // 44,711,122,944, most of it the 3×3 fusion of 2048 channels at 56².
        assert_eq!(work.flops_per_sample, 6.0 * 62_182_004_736.0);
        assert_eq!(work.head_flops_per_sample, 6.0 * 44_711_122_944.0);
        // 34 × 196 × 768 bytes per block, 12 blocks: 61,415,424 per image.
        assert_eq!(work.activations_per_sample, 61_415_424.0);
        // Checkpointed: 2 × 196 × 768 × 12 = 3,612,672 plus one block, 5,117,952.
        assert_eq!(work.checkpointed_per_sample, 3_612_672.0 + 5_117_952.0);
        // The backbone's parameters, then the heads'.
        assert_eq!(work.params, VIT_B + shapes::total_params(&layers[4..]));
    }

    #[test]
    fn gpu_hours_use_the_stated_utilisation() {
        // One H100 at 40% of 989 TFLOP/s for an hour does 0.4 × 989e12 × 3600 = 1.42416e18 FLOPs.
        let flops = MFU * Gpu::H100.peak_flops() * 3600.0;
        assert!((flops - 1.42416e18).abs() < 1e9);
        assert_eq!(
            Gpu::A100.peak_flops() / Gpu::H100.peak_flops(),
            312.0 / 989.0
        );
    }

    #[test]
    fn parallel_branches_store_activations_per_branch_but_checkpoint_per_stage() {
        let (full, ckpt) = activation_bytes(10.0, 8.0, 12, 4);
        assert_eq!(full, 34.0 * 80.0 * 48.0);
        assert_eq!(ckpt, 2.0 * 80.0 * 12.0 + 34.0 * 80.0 * 4.0);
    }
}
