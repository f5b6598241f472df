//! Parity with the reference implementations: the golden files in `tests/golden/` are written
//! by `tools/make_vit_golden.py` from timm's `VisionTransformer` (plain and parallel blocks)
//! and transformers' `ViTMAEForPreTraining` (renamed to MAE/timm parameter names).
#![cfg(feature = "torch")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rsfm_model::arch::VitConfig;
use rsfm_model::nn::checkpoint;
use rsfm_model::nn::mae::{MaeConfig, MaskedAutoencoder};
use rsfm_model::nn::vit::{PosEmbed, VisionTransformer};
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn tiny(parallel: usize) -> VitConfig {
    VitConfig {
        patch_size: 4,
        image_size: 16,
        in_chans: 3,
        embed_dim: 32,
        depth: 2,
        parallel,
        num_heads: 2,
        mlp_ratio: 4.0,
        qkv_bias: true,
        drop_path: 0.0,
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn check_vit(file: &str, parallel: usize) {
    let tensors: HashMap<String, Tensor> = checkpoint::read_tensors(&golden(file)).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let vit = VisionTransformer::new(&vs.root(), &tiny(parallel), PosEmbed::Learned);
    let report = checkpoint::load(&vs, &golden(file)).unwrap();
    assert!(report.missing.is_empty(), "{}", report.summary());
    assert_eq!(
        report.unexpected,
        vec!["golden.input".to_string(), "golden.output".to_string()]
    );
    let out = tch::no_grad(|| vit.forward_features(&tensors["golden.input"], false));
    let diff = max_abs_diff(&out, &tensors["golden.output"]);
    assert!(diff < 1e-4, "{file}: max |rsfm - timm| = {diff}");
}

#[test]
fn plain_vit_matches_timm() {
    let _turn = crate::common::torch_turn();
    check_vit("vit_plain.safetensors", 1);
}

#[test]
fn parallel_vit_matches_timm_parallel_things_block() {
    let _turn = crate::common::torch_turn();
    check_vit("vit_parallel.safetensors", 2);
}

#[test]
fn mae_loss_mask_and_prediction_match_transformers_vitmae() {
    let _turn = crate::common::torch_turn();
    let file = golden("mae.safetensors");
    let tensors = checkpoint::read_tensors(&file).unwrap();
    let mae_config = MaeConfig {
        decoder_embed_dim: 16,
        decoder_depth: 1,
        decoder_num_heads: 2,
        mask_ratio: 0.75,
        norm_pix_loss: true,
    };
    let vs = VarStore::new(Device::Cpu);
    let mae = MaskedAutoencoder::new(&vs.root(), &tiny(1), &mae_config);
    // The fixed sin-cos tables are built, not loaded: compare before loading.
    let ours = vs.variables();
    for name in ["pos_embed", "decoder_pos_embed"] {
        let diff = max_abs_diff(&ours[name], &tensors[name]);
        assert!(diff < 1e-6, "{name}: max diff {diff}");
    }
    let report = checkpoint::load(&vs, &file).unwrap();
    assert!(report.missing.is_empty(), "{}", report.summary());
    assert!(
        report.unexpected.iter().all(|k| k.starts_with("golden.")),
        "{}",
        report.summary()
    );
    let out = tch::no_grad(|| {
        mae.forward_with_noise(&tensors["golden.input"], &tensors["golden.noise"], false)
    });
    assert!(out.mask.equal(&tensors["golden.mask"]), "masks differ");
    let pred_diff = max_abs_diff(&out.pred, &tensors["golden.pred"]);
    assert!(pred_diff < 1e-4, "prediction max diff {pred_diff}");
    let loss_diff = max_abs_diff(&out.loss.reshape([1]), &tensors["golden.loss"]);
    assert!(loss_diff < 1e-4, "loss diff {loss_diff}");
}
