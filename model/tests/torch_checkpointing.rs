//! Activation checkpointing: the same gradients as the plain backward pass (drop path on:
//! the recompute replays the randomness), and a lower peak memory, measured as this
//! process's peak resident set (`VmHWM`). Both reseed torch's global generator and take turns
//! at it; the memory one reads a process-wide peak, so it runs alone in a process of its own.
#![cfg(feature = "torch")]

use rsfm_model::arch::VitConfig;
use rsfm_model::nn::checkpointing::Tape;
use rsfm_model::nn::mae::{MaeConfig, MaskedAutoencoder};
use rsfm_model::nn::vitdet::{VitDetBackbone, VitDetConfig};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn vit(embed_dim: usize, depth: usize, parallel: usize, image_size: usize) -> VitConfig {
    VitConfig {
        patch_size: 8,
        image_size,
        in_chans: 3,
        embed_dim,
        depth,
        parallel,
        num_heads: 4,
        mlp_ratio: 4.0,
        qkv_bias: true,
        drop_path: 0.3,
    }
}

/// The gradient of every trainable variable, by name, after `step` (which runs the loss's
/// backward pass) and the tape's replay.
fn gradients(vs: &VarStore, tape: &Tape, step: impl Fn()) -> Vec<(String, Tensor)> {
    for (_, mut v) in vs.variables() {
        v.zero_grad();
    }
    tch::manual_seed(17);
    step();
    tape.backward();
    let mut grads: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(name, t)| {
            let grad = t.grad();
            let kept = if grad.defined() { grad.copy() } else { grad };
            (name, kept)
        })
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    grads
}

fn assert_same(plain: &[(String, Tensor)], checkpointed: &[(String, Tensor)]) {
    assert_eq!(plain.len(), checkpointed.len());
    let mut nonzero = 0;
    for ((name, a), (_, b)) in plain.iter().zip(checkpointed) {
        assert_eq!(a.defined(), b.defined(), "{name}: gradient in one run only");
        if !a.defined() {
            continue;
        }
        let scale = a.abs().max().double_value(&[]);
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5 * scale.max(1.0),
            "{name}: checkpointed gradient differs by {diff} (scale {scale})"
        );
        nonzero += usize::from(scale > 0.0);
    }
    assert!(
        nonzero * 4 > plain.len() * 3,
        "only {nonzero} of {} gradients are non-zero",
        plain.len()
    );
}

#[test]
fn checkpointed_gradients_equal_the_plain_ones_with_drop_path() {
    let _turn = crate::common::torch_turn();
    tch::manual_seed(1);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));

    // ViTDet: windowed and global stages of parallel blocks.
    let vs = VarStore::new(Device::Cpu);
    let config = VitDetConfig {
        window_size: 2,
        global_stages: Some(vec![1]),
        rel_pos: false,
    };
    let mut backbone = VitDetBackbone::new(&vs.root(), &vit(16, 3, 2, 32), &config);
    let plain_tape = Tape::default();
    let loss = |b: &VitDetBackbone| {
        b.forward(&images, true)
            .iter()
            .map(|m| (m * m.cos()).sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b)
            .backward()
    };
    let plain = gradients(&vs, &plain_tape, || loss(&backbone));
    let tape = Tape::default();
    backbone.vit.checkpoint_activations(&tape);
    let checkpointed = gradients(&vs, &tape, || loss(&backbone));
    assert_same(&plain, &checkpointed);

    // MAE: random masking before the encoder, encoder and decoder both checkpointed.
    let vs = VarStore::new(Device::Cpu);
    let mae_config = MaeConfig {
        decoder_embed_dim: 16,
        decoder_depth: 2,
        decoder_num_heads: 2,
        ..MaeConfig::default()
    };
    let mut mae = MaskedAutoencoder::new(&vs.root(), &vit(16, 2, 1, 32), &mae_config);
    let plain = gradients(&vs, &plain_tape, || {
        mae.forward(&images, true).loss.backward()
    });
    let tape = Tape::default();
    mae.checkpoint_activations(&tape);
    let checkpointed = gradients(&vs, &tape, || mae.forward(&images, true).loss.backward());
    assert_same(&plain, &checkpointed);
}

/// This process's peak resident set in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn checkpointing_lowers_the_peak_memory_of_a_training_step() {
    if crate::common::rerun_alone(
        "torch_checkpointing::checkpointing_lowers_the_peak_memory_of_a_training_step",
    ) {
        return;
    }
    let _turn = crate::common::torch_turn();
    tch::manual_seed(2);
    let config = vit(256, 6, 1, 96);
    let windows = VitDetConfig {
        window_size: 4,
        global_stages: None,
        rel_pos: false,
    };
    let (plain_vs, checkpointed_vs) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
    let plain = VitDetBackbone::new(&plain_vs.root(), &config, &windows);
    let mut checkpointed = VitDetBackbone::new(&checkpointed_vs.root(), &config, &windows);
    let tape = Tape::default();
    checkpointed.vit.checkpoint_activations(&tape);
    let images = Tensor::randn([16, 3, 96, 96], (Kind::Float, Device::Cpu));
    let step = |backbone: &VitDetBackbone| {
        let loss = backbone
            .forward(&images, true)
            .iter()
            .map(|m| m.square().mean(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
        loss.backward();
        tape.backward();
    };
    // Checkpointed first: the plain step may reuse whatever memory that one left behind,
    // so only the part of its peak above the checkpointed one moves the mark.
    let before = peak_rss();
    step(&checkpointed);
    let with = peak_rss() - before;
    step(&plain);
    let without = peak_rss() - before;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "peak memory of a training step: {:.0} MiB checkpointed, {:.0} MiB plain",
        mib(with),
        mib(without)
    );
    assert!(
        (with as f64) < 0.6 * without as f64,
        "checkpointing raised the peak by {:.0} MiB, the plain step by {:.0} MiB",
        mib(with),
        mib(without)
    );
}
