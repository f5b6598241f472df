//! Gloo all-reduce of the ViT-B/16 gradient between two local processes, as a fraction of one
//! ViT-B/16 training step (forward, backward, AdamW) on this machine's CPU, both measured in
//! this run. The binary is its own rank program: the parent times the step, then starts two
//! copies of itself with the rendezvous variables; rank 0 prints its all-reduce times.
//!
//! Environment: `RSFM_BENCH_BATCH` (images per step, default 8), `RSFM_BENCH_STEPS` (timed
//! repetitions, 3). Run: `cargo bench -p rsfm-model --features torch --bench dist_allreduce`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rsfm_model::arch::VitConfig;
use rsfm_model::dist::{
    spawn_local_ranks, DataParallel, ProcessGroup, RankEnv, DEFAULT_BUCKET_BYTES,
};
use rsfm_model::nn::vit::{PosEmbed, VisionTransformer};
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[path = "../bench_env.rs"]
mod bench_env;
use bench_env::env_number;

/// ViT-B/16 with its loss: the mean squared token output, as benches/models/train_step.rs.
fn vit_b(vs: &VarStore) -> VisionTransformer {
    VisionTransformer::new(
        &vs.root(),
        &VitConfig::vit_base_patch16_224(),
        PosEmbed::Learned,
    )
}

fn loss(vit: &VisionTransformer, images: &Tensor) -> Tensor {
    vit.forward_features(images, true)
        .square()
        .mean(Kind::Float)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Rank program: one backward to create gradients, then timed all-reduces.
fn run_rank(env: RankEnv, repeats: usize) {
    tch::manual_seed(env.rank as i64);
    let vs = VarStore::new(Device::Cpu);
    let vit = vit_b(&vs);
    loss(
        &vit,
        &Tensor::randn([1, 3, 224, 224], (Kind::Float, Device::Cpu)),
    )
    .backward();
    let group = ProcessGroup::join(&env, Duration::from_secs(120)).expect("join");
    let dp = DataParallel::new(&group, &vs, DEFAULT_BUCKET_BYTES);
    dp.all_reduce_gradients().expect("warm-up all-reduce");
    let times: Vec<f64> = (0..repeats)
        .map(|_| {
            dp.group().barrier().expect("barrier");
            let started = Instant::now();
            dp.all_reduce_gradients().expect("all-reduce");
            started.elapsed().as_secs_f64()
        })
        .collect();
    if env.is_leader() {
        let bytes: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64 * 4)
            .sum();
        println!(
            "{{\"allreduce_s\":{:.4},\"allreduce_min_s\":{:.4},\"gradient_mb\":{:.1},\"buckets\":{}}}",
            mean(&times),
            times.iter().copied().fold(f64::INFINITY, f64::min),
            bytes as f64 / 1e6,
            dp.bucket_count()
        );
    }
}

fn main() {
    let repeats = env_number("RSFM_BENCH_STEPS", 3);
    if let Some(env) = RankEnv::from_env().expect("rendezvous variables") {
        run_rank(env, repeats);
        return;
    }
    let batch = env_number("RSFM_BENCH_BATCH", 8) as i64;
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let vit = vit_b(&vs);
    let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
    let images = Tensor::randn([batch, 3, 224, 224], (Kind::Float, Device::Cpu));
    let mut step = || {
        opt.zero_grad();
        loss(&vit, &images).backward();
        opt.step(1e-4);
    };
    step();
    let steps: Vec<f64> = (0..repeats)
        .map(|_| {
            let started = Instant::now();
            step();
            started.elapsed().as_secs_f64()
        })
        .collect();
    drop(vs);

    let exe = std::env::current_exe().expect("own path");
    let children = spawn_local_ranks(2, |_| {
        let mut command = Command::new(&exe);
        command.stdout(Stdio::piped());
        command
    })
    .expect("start ranks");
    let mut rank0_line = String::new();
    for (rank, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("rank output");
        assert!(
            output.status.success(),
            "rank {rank} failed: {}",
            output.status
        );
        if rank == 0 {
            rank0_line = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
    }
    let ranks: serde_json::Value = serde_json::from_str(&rank0_line).expect("rank 0's JSON line");
    let allreduce = ranks["allreduce_s"].as_f64().expect("allreduce_s");
    let step_s = mean(&steps);
    println!(
        "{{\"model\":\"vit_b16\",\"batch\":{batch},\"step_s\":{step_s:.3},\"ranks\":{ranks},\"allreduce_fraction_of_step\":{:.4}}}",
        allreduce / step_s
    );
}
