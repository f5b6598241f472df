//! `rsfm export tensorboard|mlflow`: the stages of `rsfm.db` in the formats researchers' trackers
//! read, written in Rust from the database alone (no network, no tracker installed).
//!
//! The stage key is the run's identity in both formats, and every export rewrites each run from
//! the database, so exporting again, or after a requeued stage logged more steps, never repeats a
//! point. Curves are exactly what `rsfm results --curve` shows; final metrics are scalars named
//! `final/<name>` at the last logged step. rsfm keeps no time per step, so every point carries
//! the time the stage's latest attempt ended.

mod events;
mod mlflow;
mod source;
mod tensorboard;
mod tfrecord;
mod wall_time;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

pub use source::{load_stages, ExportStage, ParamValue};

use crate::store::{StageScope, Store};

/// The prefix of final metrics among the scalars of a run.
pub const FINAL_PREFIX: &str = "final/";

/// The tracker format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tracker {
    /// TensorBoard event files, one run folder per stage.
    Tensorboard,
    /// An MLflow file store (`mlruns/`), one run per stage.
    Mlflow,
}

impl Tracker {
    /// The folder under `<results>/export/` an export goes to by default.
    pub fn default_folder(self) -> &'static str {
        match self {
            Tracker::Tensorboard => "tensorboard",
            Tracker::Mlflow => "mlruns",
        }
    }
}

/// What an export wrote: `rsfm export --json` prints it.
///
/// `{"tracker": "tensorboard"|"mlflow", "out": str, "runs": [{"experiment", "name", "key",
/// "path", "points"}], "points": int, "seconds": float}`: `path` is the run's folder (the events
/// file for TensorBoard), `points` the values written (curve points and final metrics).
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// The format written.
    pub tracker: Tracker,
    /// The export's root folder.
    pub out: PathBuf,
    /// One entry per stage exported.
    pub runs: Vec<ExportedRun>,
    /// Values written, over all runs.
    pub points: usize,
    /// Wall time of the export (reading the database and writing the files).
    pub seconds: f64,
}

/// One stage's run in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedRun {
    /// Experiment name.
    pub experiment: String,
    /// Stage name.
    pub name: String,
    /// Stage key (the run id).
    pub key: String,
    /// What was written for it.
    pub path: PathBuf,
    /// Values written for it.
    pub points: usize,
}

/// Exports the stages of `scope` (see [`load_stages`]) from `store` as `tracker` into `out`.
pub async fn export(
    store: &Store,
    scope: &StageScope,
    tracker: Tracker,
    out: &Path,
) -> anyhow::Result<ExportSummary> {
    let started = Instant::now();
    let stages = load_stages(store, scope).await?;
    let paths = match tracker {
        Tracker::Tensorboard => stages
            .iter()
            .map(|stage| tensorboard::write_run(out, stage))
            .collect::<anyhow::Result<Vec<_>>>()?,
        Tracker::Mlflow => mlflow::write_store(out, &stages)?,
    };
    let runs: Vec<ExportedRun> = stages
        .iter()
        .zip(paths)
        .map(|(stage, path)| ExportedRun {
            experiment: stage.experiment.clone(),
            name: stage.name.clone(),
            key: stage.key.clone(),
            path,
            points: stage.points(),
        })
        .collect();
    Ok(ExportSummary {
        tracker,
        out: out.to_path_buf(),
        points: runs.iter().map(|r| r.points).sum(),
        runs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `name` as one portable path component: ASCII letters, digits and `. _ - @ = +` kept, anything
/// else `_`; never empty, `.` or `..`.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@=+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.as_str() {
        "" | "." | ".." => "_".repeat(safe.len().max(1)),
        _ => safe,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder renamed into place, so a
/// tracker reading the folder never sees half a file. The temporary name holds neither
/// `tfevents` nor an MLflow name, so no reader takes it for data.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".rsfm-export-{}.tmp", std::process::id()));
    fs_err::write(&tmp, bytes)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;

    use super::{ExportStage, ParamValue};

    /// A finished stage with two curves and a final metric.
    pub fn sample_stage() -> ExportStage {
        ExportStage {
            key: "ab".repeat(32),
            experiment: "smoke".into(),
            name: "finetune@vit-tiny".into(),
            kind: "finetune-seg".into(),
            status: "succeeded".into(),
            params: vec![
                (
                    "lr".into(),
                    ParamValue::Number(serde_json::Number::from_f64(0.01).unwrap()),
                ),
                ("model".into(), ParamValue::Text("vit-tiny".into())),
            ],
            started_ms: Some(1_700_000_000_000),
            finished_ms: Some(1_700_000_060_500),
            curves: BTreeMap::from([
                ("loss".into(), vec![(2, 1.5), (4, 1.25)]),
                ("lr".into(), vec![(2, 0.01), (4, 0.005)]),
            ]),
            finals: BTreeMap::from([("miou".into(), 0.5)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_safe;

    #[test]
    fn folder_names_are_portable() {
        assert_eq!(file_safe("finetune@vit-tiny"), "finetune@vit-tiny");
        assert_eq!(file_safe("a/b c"), "a_b_c");
        assert_eq!(file_safe(".."), "__");
        assert_eq!(file_safe(""), "_");
    }
}
