//! Data parallel on Gloo: two processes with batch B each reach the same weights as one
//! process with batch 2B after k AdamW steps. The test binary is its own rank program: run
//! with `RANK`/`WORLD_SIZE`/... set it trains as that rank and writes rank 0's weights.
//! (`harness = false`: the rank processes must not run the test itself.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rsfm_model::dist::{
    spawn_local_ranks, DataParallel, DistributedSampler, ProcessGroup, RankEnv,
};
use rsfm_model::nn::layers::{linear, Block, BlockDims, TokenMixing};
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

const SEED: u64 = 11;
const SAMPLES: usize = 32;
const PER_RANK: usize = 4;
const STEPS: u64 = 6;
const TOKENS: i64 = 5;
const DIM: i64 = 16;
/// Where a rank process writes its final weights.
const OUT_VAR: &str = "RSFM_DIST_TEST_OUT";

/// A fixed regression problem: token sequences and targets, the same in every process.
fn dataset() -> (Tensor, Tensor) {
    tch::manual_seed(1234);
    let x = Tensor::randn([SAMPLES as i64, TOKENS, DIM], (Kind::Float, Device::Cpu));
    let y = Tensor::randn([SAMPLES as i64, 3], (Kind::Float, Device::Cpu));
    (x, y)
}

/// A ViT block and a linear head; `init_seed` sets its starting weights.
struct Model {
    vs: VarStore,
    block: Block,
    head: tch::nn::Linear,
}

impl Model {
    fn new(init_seed: i64) -> Self {
        tch::manual_seed(init_seed);
        let vs = VarStore::new(Device::Cpu);
        let dims = BlockDims {
            dim: DIM,
            num_heads: 2,
            mlp_hidden: 32,
            // A key bias has an exactly zero gradient (softmax ignores a constant shift), so
            // its computed gradient is rounding noise that AdamW's first steps blow up to ±lr
            // with a sign that depends on summation order: leave it out.
            qkv_bias: false,
        };
        let block = Block::new(vs.root() / "block", dims, 1, 0.0);
        let head = linear(vs.root() / "head", DIM, 3, true);
        Model { vs, block, head }
    }

    fn loss(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let h = self
            .block
            .forward(x, TokenMixing::Global, true)
            .mean_dim(1, false, Kind::Float);
        (self.head.forward(&h) - y).square().mean(Kind::Float)
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        let mut named = self.vs.variables().into_iter().collect::<Vec<_>>();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }
}

/// Trains `STEPS` steps on this process's `batch` samples of each global batch; `dp` is None
/// for the single-process reference.
fn train(model: &Model, sampler: DistributedSampler, batch: usize, dp: Option<&DataParallel>) {
    let (x, y) = dataset();
    let mut opt = AdamW::new(decay_groups(&model.vs, 0.05), AdamWConfig::default());
    for step in 0..STEPS {
        let idx: Vec<i64> = sampler
            .indices(step, batch)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        let idx = Tensor::from_slice(&idx);
        opt.zero_grad();
        let loss = model.loss(&x.index_select(0, &idx), &y.index_select(0, &idx));
        loss.backward();
        if let Some(dp) = dp {
            dp.all_reduce_gradients().expect("all-reduce");
        }
        opt.step(1e-2);
    }
}

fn run_rank(env: RankEnv, out: PathBuf) {
    // Each rank starts from different weights: the broadcast must make them rank 0's.
    let model = Model::new(100 + env.rank as i64);
    let group = ProcessGroup::join(&env, Duration::from_secs(60)).expect("join");
    let dp = DataParallel::new(&group, &model.vs, 2048);
    assert!(
        dp.bucket_count() > 1,
        "the test must exercise several buckets"
    );
    dp.broadcast_parameters(&model.vs).expect("broadcast");
    let sampler = DistributedSampler {
        seed: SEED,
        len: SAMPLES,
        rank: env.rank,
        world_size: env.world_size,
    };
    train(&model, sampler, PER_RANK, Some(&dp));
    dp.group().barrier().expect("barrier");
    Tensor::save_multi(&model.weights(), out.join(format!("rank{}.ot", env.rank))).expect("save");
}

/// The largest element difference between two weight sets, and the parameter it is in.
fn max_difference(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> (f64, String) {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            ((ta - tb).abs().max().double_value(&[]), na.clone())
        })
        .fold(
            (0.0, String::new()),
            |best, x| if x.0 > best.0 { x } else { best },
        )
}

fn load(path: &Path) -> Vec<(String, Tensor)> {
    let mut named = Tensor::load_multi(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

fn two_ranks_with_batch_b_match_one_process_with_batch_2b() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children = spawn_local_ranks(2, |_| {
        let mut command = Command::new(&exe);
        command.env(OUT_VAR, dir.path());
        command
    })
    .unwrap();
    for (rank, child) in children.iter_mut().enumerate() {
        let status = child.wait().unwrap();
        assert!(status.success(), "rank {rank} failed: {status}");
    }

    let reference = Model::new(100);
    let single = DistributedSampler {
        seed: SEED,
        len: SAMPLES,
        rank: 0,
        world_size: 1,
    };
    let before = reference
        .weights()
        .iter()
        .map(|(n, t)| (n.clone(), t.copy()))
        .collect::<Vec<_>>();
    train(&reference, single, 2 * PER_RANK, None);

    let rank0 = load(&dir.path().join("rank0.ot"));
    let rank1 = load(&dir.path().join("rank1.ot"));
    let (replicas, _) = max_difference(&rank0, &rank1);
    let (vs_reference, worst) = max_difference(&rank0, &reference.weights());
    let (moved, _) = max_difference(&before, &reference.weights());
    println!("replicas differ by {replicas:e}, data parallel vs single process by {vs_reference:e} ({worst}), training moved weights by {moved:e}");
    assert_eq!(replicas, 0.0, "the replicas must stay identical");
    assert!(moved > 1e-2, "training must change the weights ({moved})");
    assert!(
        vs_reference < 1e-5,
        "2 × batch {PER_RANK} differs from 1 × batch {} by {vs_reference} in {worst}",
        2 * PER_RANK
    );
}

fn main() {
    match RankEnv::from_env().expect("rendezvous variables") {
        Some(env) => {
            let out = PathBuf::from(std::env::var(OUT_VAR).expect("output dir"));
            run_rank(env, out);
        }
        None => {
            two_ranks_with_batch_b_match_one_process_with_batch_2b();
            println!("test two_ranks_with_batch_b_match_one_process_with_batch_2b ... ok");
        }
    }
}
