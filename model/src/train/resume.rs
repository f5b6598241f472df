//! Resume checkpoints in a stage's work dir: model weights, optimiser state and the step,
//! written to a temporary folder and renamed into place so a kill never leaves half of one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::optim::AdamW;
use crate::nn::checkpoint;

const DIR: &str = "resume";
const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
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

fn dir(work_dir: &Path) -> PathBuf {
    work_dir.join(DIR)
}

/// Saves model, optimiser and state under `work_dir/resume/`.
pub fn save(
    work_dir: &Path,
    vs: &VarStore,
    opt: &AdamW,
    state: &ResumeState,
) -> anyhow::Result<()> {
    let tmp = work_dir.join(format!("{DIR}.tmp"));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp)?;
    }
    fs_err::create_dir_all(&tmp)?;
    checkpoint::save(vs, &tmp.join(MODEL))?;
    checkpoint::save_tensors(&opt.state_tensors(), &tmp.join(OPTIMIZER))?;
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
/// same run (`run_digest`); returns its state, or `None` to start afresh.
pub fn load(
    work_dir: &Path,
    run_digest: &str,
    vs: &VarStore,
    opt: &mut AdamW,
) -> anyhow::Result<Option<ResumeState>> {
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
    let report = checkpoint::load(vs, &dir.join(MODEL))?;
    anyhow::ensure!(
        report.missing.is_empty() && report.unexpected.is_empty(),
        "{}: resume checkpoint does not match the model: {}",
        dir.display(),
        report.summary()
    );
    opt.load_state(&checkpoint::read_tensors(&dir.join(OPTIMIZER))?)?;
    Ok(Some(state))
}
