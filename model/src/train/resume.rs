//! Resume checkpoints in a stage's work dir, written to a temporary folder and renamed into
//! place so a kill never leaves half of one:
//!
//! - `model.safetensors`: the weights, once, consolidated, with the model's (timm) names;
//! - `optimizer.json`: the flattened parameter order the optimiser state is laid out in
//!   (names and shapes, [`FlatLayout`]) and its shards: (rank, world size, slice bounds, file)
//!   each;
//! - `optimizer.rank<R>.safetensors`: each shard's moments over its slice and the step count
//!   (one shard over everything when the optimiser is not sharded);
//! - `state.json`: the step, the run's digest and the losses so far.
//!
//! A run resumes on any number of ranks, sharded or not: each rank reads the parts of the
//! shards that overlap its own slice. Every rank reads (and, sharded, writes) the work dir,
//! which the ranks of a stage share.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::flat_params::{slice_of, FlatEntry, FlatLayout};
use super::optim::AdamW;
use super::replicas::Replicas;
use crate::nn::checkpoint;

const DIR: &str = "resume";
const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.json";
const STATE: &str = "state.json";

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Steps completed.
    pub step: u64,
    /// sha256 of the stage's parameters and seed: a checkpoint of other settings is ignored.
    pub run_digest: String,
    /// Losses logged so far, one per completed step.
    pub losses: Vec<f64>,
}

/// A checkpoint a run resumes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// Where the run stood.
    pub state: ResumeState,
    /// Ranks its optimiser state was sharded over (1: not sharded).
    pub shards: usize,
}

/// How the optimiser state of a checkpoint is laid out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerManifest {
    /// The flattened parameters, in order.
    pub parameters: Vec<FlatEntry>,
    /// The shards, in rank order, covering the flat vector.
    pub shards: Vec<ShardRecord>,
}

/// One rank's part of the optimiser state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The rank that wrote it.
    pub rank: usize,
    /// Ranks the state was sharded over (1: not sharded).
    pub world_size: usize,
    /// First element of its slice of the flat vector.
    pub start: usize,
    /// One past its last element.
    pub end: usize,
    /// Its file in the checkpoint folder.
    pub file: String,
}

fn dir(work_dir: &Path) -> PathBuf {
    work_dir.join(DIR)
}

fn shard_file(rank: usize) -> String {
    format!("optimizer.rank{rank}.safetensors")
}

/// Saves model, optimiser and state under `work_dir/resume/`. Every rank calls it: the leader
/// writes the model, the state and the optimiser's manifest; each rank its shard of a sharded
/// optimiser (the leader alone the whole state of an unsharded one).
pub fn save(
    work_dir: &Path,
    vs: &VarStore,
    opt: &AdamW,
    state: &ResumeState,
    replicas: &Replicas,
) -> anyhow::Result<()> {
    let (rank, world_size) = opt.shard();
    let sharded = world_size > 1;
    let leader = replicas.is_leader();
    let tmp = work_dir.join(format!("{DIR}.tmp"));
    if leader {
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp)?;
        }
        fs_err::create_dir_all(&tmp)?;
    }
    if sharded {
        replicas.barrier()?;
    }
    if sharded || leader {
        checkpoint::save_tensors(&opt.slice_state(), &tmp.join(shard_file(rank)))?;
    }
    if sharded {
        replicas.barrier()?;
    }
    if !leader {
        return Ok(());
    }
    let total = opt.layout().total();
    let manifest = OptimizerManifest {
        parameters: opt.layout().entries().to_vec(),
        shards: (0..world_size)
            .map(|r| {
                let slice = slice_of(total, r, world_size);
                ShardRecord {
                    rank: r,
                    world_size,
                    start: slice.start,
                    end: slice.end,
                    file: shard_file(r),
                }
            })
            .collect(),
    };
    checkpoint::save(vs, &tmp.join(MODEL))?;
    fs_err::write(tmp.join(OPTIMIZER), serde_json::to_vec_pretty(&manifest)?)?;
    fs_err::write(tmp.join(STATE), serde_json::to_vec_pretty(state)?)?;
    let target = dir(work_dir);
    let old = work_dir.join(format!("{DIR}.old"));
    if target.exists() {
        if old.exists() {
            fs_err::remove_dir_all(&old)?;
        }
        fs_err::rename(&target, &old)?;
    }
    fs_err::rename(&tmp, &target)?;
    if old.exists() {
        fs_err::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Restores model and optimiser from `work_dir/resume/` when it holds a checkpoint of the
/// same run (`run_digest`), whatever number of ranks wrote it and whether its optimiser was
/// sharded; returns it, or `None` to start afresh. A checkpoint over other parameters is an
/// error that names the first difference.
pub fn load(
    work_dir: &Path,
    run_digest: &str,
    vs: &VarStore,
    opt: &mut AdamW,
) -> anyhow::Result<Option<Resumed>> {
    let dir = dir(work_dir);
    let state_path = dir.join(STATE);
    if !state_path.is_file() {
        return Ok(None);
    }
    let state: ResumeState = serde_json::from_slice(&fs_err::read(&state_path)?)
        .map_err(|e| anyhow::anyhow!("{}: corrupt resume state: {e}", state_path.display()))?;
    if state.run_digest != run_digest {
        return Ok(None);
    }
    let manifest_path = dir.join(OPTIMIZER);
    let manifest: OptimizerManifest = serde_json::from_slice(&fs_err::read(&manifest_path)?)
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: corrupt optimizer manifest: {e}",
                manifest_path.display()
            )
        })?;
    let theirs = FlatLayout::new(manifest.parameters.clone());
    if let Some(difference) = opt.layout().difference(&theirs) {
        anyhow::bail!(
            "{}: the resume checkpoint is of other parameters than this model's ({difference}); remove {} to start the stage afresh",
            dir.display(),
            dir.display()
        );
    }
    check_coverage(&manifest, theirs.total(), &manifest_path)?;
    let report = checkpoint::load(vs, &dir.join(MODEL))?;
    anyhow::ensure!(
        report.missing.is_empty() && report.unexpected.is_empty() && report.resampled.is_empty(),
        "{}: resume checkpoint does not match the model: {}",
        dir.display(),
        report.summary()
    );
    let mine = opt.slice();
    let overlapping: Vec<&ShardRecord> = manifest
        .shards
        .iter()
        .filter(|s| s.start < mine.end && mine.start < s.end)
        .collect();
    // A rank with an empty slice still reads one shard for the step count.
    let to_read = if overlapping.is_empty() {
        vec![&manifest.shards[0]]
    } else {
        overlapping
    };
    for shard in to_read {
        let path = dir.join(&shard.file);
        let tensors = checkpoint::read_tensors(&path)?;
        let len = tensors.get("exp_avg").map_or(0, |t| t.numel());
        anyhow::ensure!(
            len == shard.end - shard.start,
            "{}: holds {len} elements, its slice {}..{} of {} has {}",
            path.display(),
            shard.start,
            shard.end,
            manifest_path.display(),
            shard.end - shard.start
        );
        opt.load_slice_state(shard.start, &tensors)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(Some(Resumed {
        state,
        shards: manifest.shards.len(),
    }))
}

/// Checks that the shards of `manifest` follow one another from 0 to `total`.
fn check_coverage(manifest: &OptimizerManifest, total: usize, path: &Path) -> anyhow::Result<()> {
    let mut next = 0;
    for shard in &manifest.shards {
        anyhow::ensure!(
            shard.start == next && shard.end >= shard.start,
            "{}: shard of rank {} covers {}..{}, expected it to start at {next}",
            path.display(),
            shard.rank,
            shard.start,
            shard.end
        );
        next = shard.end;
    }
    anyhow::ensure!(
        next == total && !manifest.shards.is_empty(),
        "{}: the shards cover {next} of the {total} parameter elements",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::params::decay_groups;
    use tch::nn::Init;
    use tch::{Device, Kind};

    /// A model of `weight` [shape] and `bias` [3], its optimiser after one step.
    fn model(shape: &[i64], bias: &str) -> (VarStore, AdamW) {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("weight", shape, Init::Const(0.5));
        let b = vs.root().var(bias, &[3], Init::Const(0.1));
        (w.sum(Kind::Float) + b.square().sum(Kind::Float)).backward();
        let mut opt = AdamW::new(decay_groups(&vs, 0.05), Default::default());
        opt.step(0.1);
        (vs, opt)
    }

    fn state() -> ResumeState {
        ResumeState {
            step: 1,
            run_digest: "d".into(),
            losses: vec![1.0],
        }
    }

    #[test]
    fn a_checkpoint_resumes_into_a_sharded_optimizer() {
        let work = tempfile::tempdir().unwrap();
        let (vs, opt) = model(&[2, 2], "bias");
        save(work.path(), &vs, &opt, &state(), &Replicas::single()).unwrap();
        let (vs2, _) = model(&[2, 2], "bias");
        let mut half = AdamW::sharded(decay_groups(&vs2, 0.05), Default::default(), 1, 2);
        let resumed = load(work.path(), "d", &vs2, &mut half).unwrap();
        assert_eq!(
            resumed,
            Some(Resumed {
                state: state(),
                shards: 1
            })
        );
        assert_eq!(half.steps(), 1);
        let whole = Vec::<f32>::try_from(&opt.slice_state()["exp_avg"]).unwrap();
        let part = Vec::<f32>::try_from(&half.slice_state()["exp_avg"]).unwrap();
        assert_eq!(part, whole[half.slice()]);
        assert_eq!(
            load(work.path(), "other run", &vs2, &mut half).unwrap(),
            None
        );
    }

    #[test]
    fn a_checkpoint_of_other_parameters_is_an_error_naming_the_difference() {
        let work = tempfile::tempdir().unwrap();
        let (vs, opt) = model(&[2, 2], "bias");
        save(work.path(), &vs, &opt, &state(), &Replicas::single()).unwrap();
        let (vs2, mut other_shape) = model(&[4, 2], "bias");
        let err = load(work.path(), "d", &vs2, &mut other_shape)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`weight` has shape [2, 2] there and [4, 2] here")
                && err.contains("to start the stage afresh"),
            "{err}"
        );
        let (vs3, mut other_name) = model(&[2, 2], "offset");
        let err = load(work.path(), "d", &vs3, &mut other_name)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("parameter 1 is `bias` [3] there and `offset` [3] here"),
            "{err}"
        );
    }
}
