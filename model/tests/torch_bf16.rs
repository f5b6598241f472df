//! bf16 autocast with fp32 master weights: a tiny MAE trained 50 steps under CPU autocast
//! follows the fp32 run's loss within 1% at every step, and its weights and optimiser state
//! stay fp32.
#![cfg(feature = "torch")]

use rsfm_model::arch::VitConfig;
use rsfm_model::autocast::Autocast;
use rsfm_model::nn::layers::scalar;
use rsfm_model::nn::mae::{MaeConfig, MaskedAutoencoder};
use rsfm_model::params::precision::Precision;
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const STEPS: i64 = 50;
/// Largest relative difference of a step's bf16 loss from its fp32 loss.
const TOLERANCE: f64 = 0.01;

fn tiny_vit() -> VitConfig {
    VitConfig {
        patch_size: 4,
        image_size: 16,
        in_chans: 3,
        embed_dim: 32,
        depth: 2,
        parallel: 1,
        num_heads: 2,
        mlp_ratio: 2.0,
        qkv_bias: true,
        drop_path: 0.0,
    }
}

/// Losses of `STEPS` AdamW steps from the same start, data and masks.
fn train(precision: Precision) -> (Vec<f64>, VarStore) {
    tch::manual_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let mae_config = MaeConfig {
        decoder_embed_dim: 16,
        decoder_depth: 1,
        decoder_num_heads: 2,
        mask_ratio: 0.75,
        norm_pix_loss: true,
    };
    let mae = MaskedAutoencoder::new(&vs.root(), &tiny_vit(), &mae_config);
    let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
    let images =
        Tensor::randn([8, 3, 16, 16], (Kind::Float, Device::Cpu)).cumsum(3, Kind::Float) / 4.0;
    let mut losses = Vec::new();
    for step in 0..STEPS {
        tch::manual_seed(1000 + step);
        let noise = Tensor::rand([8, 16], (Kind::Float, Device::Cpu));
        opt.zero_grad();
        let loss = {
            let _autocast = Autocast::for_precision(precision, Device::Cpu).unwrap();
            mae.forward_with_noise(&images, &noise, true).loss
        };
        losses.push(scalar(&loss));
        loss.backward();
        opt.step(2e-3);
    }
    (losses, vs)
}

#[test]
fn bf16_loss_follows_fp32_within_tolerance() {
    let _turn = crate::common::torch_turn();
    let (fp32, _) = train(Precision::Fp32);
    let (bf16, vs) = train(Precision::Bf16);
    let worst = fp32
        .iter()
        .zip(&bf16)
        .map(|(a, b)| (a - b).abs() / a.abs())
        .fold(0.0, f64::max);
    println!(
        "fp32 loss {:.4} -> {:.4}, bf16 {:.4} -> {:.4}, largest relative difference {worst:.4}",
        fp32[0],
        fp32[STEPS as usize - 1],
        bf16[0],
        bf16[STEPS as usize - 1]
    );
    assert!(worst > 0.0, "bf16 autocast must change the arithmetic");
    assert!(worst < TOLERANCE, "bf16 loss left fp32's by {worst}");
    assert!(
        bf16[STEPS as usize - 1] < 0.8 * bf16[0],
        "bf16 training must learn"
    );
    for (name, t) in vs.variables() {
        assert_eq!(
            t.kind(),
            Kind::Float,
            "{name} must stay an fp32 master weight"
        );
    }
}
