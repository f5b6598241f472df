//! `rsfm submit RECIPE [STAGE] --server dota-v2|loveda [--out PATH]`: the archive an evaluation
//! server expects, from the predictions of a cached `evaluate` stage with `split = "test"`,
//! checked against the server's rules and the dataset's test images before it is written;
//! its sha256 and the stage's key are recorded in `rsfm.db` for `rsfm ingest`.
//! `rsfm submit --server S --from DIR --test-root ROOT --out FILE` checks and packs predictions
//! made elsewhere (not recorded: no stage made them).
//!
//! JSON output: `[{"stage","key","server","archive","sha256","files","images","detections",
//! "warnings":[..],"upload"}]` (`stage` and `key` null with `--from`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::session::{RecipeInputs, Session};
use super::BadInput;
use crate::plan::stage_params::parsed;
use crate::plan::{Plan, PlannedStage};
use crate::query::short_key;
use crate::recipe::{Override, StageKind};
use crate::servers::archive::{self, Archive};
use crate::servers::Server;
use rsfm_model::data::det_samples::TASK1_DIR;
use rsfm_model::data::seg_samples::PREDICTIONS_DIR;
use rsfm_model::data::test_images::{read_predicted, PREDICTED_FILE};
use rsfm_model::params::EvaluateParams;

/// Arguments of `rsfm submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Recipe whose test-split evaluations are packed (not with `--from`).
    #[arg(required_unless_present = "from")]
    recipe: Option<PathBuf>,
    /// Only this stage (full or base name).
    stage: Option<String>,
    /// The evaluation server: dota-v2 (DOTA v2.0 test-dev, Task1) or loveda (LoveDA Test).
    #[arg(long, value_parser = Server::parse)]
    server: Server,
    /// The archive to write (a folder when several stages are packed). Default:
    /// `<results>/submissions/<server>/<stage>-<key>.zip`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Pack this folder of predictions made elsewhere (DOTA: the Task1 files; LoveDA: the PNGs).
    #[arg(long, requires_all = ["test_root", "out"], conflicts_with = "recipe")]
    from: Option<PathBuf>,
    /// With `--from`: the dataset root holding the test images (DOTA `test-dev/images/`,
    /// LoveDA `Test/`).
    #[arg(long, requires = "from")]
    test_root: Option<PathBuf>,
    /// Override a recipe value: `stage.NAME.KEY=VALUE` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
    /// Dataset root: `NAME=PATH` (repeatable; wins over `RSFM_DATA_<NAME>` and the recipe).
    #[arg(long = "data", value_name = "NAME=PATH")]
    data: Vec<String>,
}

/// One written archive.
#[derive(Debug, Serialize)]
struct Written {
    stage: Option<String>,
    key: Option<String>,
    server: &'static str,
    archive: PathBuf,
    sha256: String,
    files: usize,
    images: usize,
    detections: Option<usize>,
    warnings: Vec<String>,
    upload: &'static str,
}

/// Runs `rsfm submit`.
pub async fn run(args: SubmitArgs, results: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let written = match (&args.from, &args.recipe) {
        (Some(from), _) => vec![submit_folder(&args, from)?],
        (None, Some(recipe)) => submit_stages(&args, recipe, results).await?,
        (None, None) => unreachable!("clap requires RECIPE or --from"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&written)?);
        return Ok(ExitCode::SUCCESS);
    }
    for w in &written {
        let what = match w.detections {
            Some(d) => format!("{} files, {d} detections", w.files),
            None => format!("{} files", w.files),
        };
        println!(
            "wrote {} ({what}, {} test images), sha256 {}",
            w.archive.display(),
            w.images,
            w.sha256
        );
        for warning in &w.warnings {
            println!("  warning: {warning}");
        }
        println!("  next: {}", w.upload);
        if let Some(key) = &w.key {
            println!(
                "  then: rsfm ingest --server {} --stage {} REPLY_FILE",
                w.server,
                short_key(key)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--from DIR --test-root ROOT`: predictions made elsewhere, checked and packed.
fn submit_folder(args: &SubmitArgs, from: &Path) -> anyhow::Result<Written> {
    let root = args.test_root.as_deref().unwrap_or(Path::new("."));
    let test = args.server.test_images(root).map_err(BadInput::wrap)?;
    let archive = archive::check(args.server, from, &test, None)?;
    let out = args.out.clone().unwrap_or_default();
    let sha256 = archive::write_zip(&archive, &out)?;
    Ok(written(None, args.server, &archive, out, sha256))
}

/// Packs the cached test-split evaluations of the recipe and records each archive.
async fn submit_stages(
    args: &SubmitArgs,
    recipe: &Path,
    results: &Path,
) -> anyhow::Result<Vec<Written>> {
    let session = Session::open(
        &RecipeInputs {
            paths: std::slice::from_ref(&recipe.to_path_buf()),
            overrides: &args.set,
            data: &args.data,
        },
        results,
    )
    .await?;
    let plan = session.plan().await?;
    let selected = test_evaluations(&plan, args.server, args.stage.as_deref());
    if selected.is_empty() {
        return Err(BadInput::msg(format!(
            "{}: no `evaluate` stage{} with `split = \"test\"` predicts the {} test images: add one (see docs/reports.md, *Test-server numbers*)",
            recipe.display(),
            args.stage
                .as_deref()
                .map(|s| format!(" named `{s}`"))
                .unwrap_or_default(),
            args.server.name()
        )));
    }
    if selected.len() > 1 && args.out.as_ref().is_some_and(|o| o.extension().is_some()) {
        return Err(BadInput::msg(format!(
            "{} stages match, and `--out {}` names one file: pass a folder, or name one stage",
            selected.len(),
            args.out.as_deref().unwrap_or(Path::new("")).display()
        )));
    }
    let mut written_all = Vec::new();
    for planned in selected {
        let name = planned.display_name();
        let key = &planned.key.key;
        if !planned.missing_data.is_empty() {
            return Err(BadInput::msg(format!(
                "stage {name}: {}",
                planned.missing_data.join("; ")
            )));
        }
        if !planned.cached {
            return Err(BadInput::msg(format!(
                "stage {name} has no cached result for its current key {}: run `rsfm run {}` first",
                short_key(key),
                recipe.display()
            )));
        }
        let root = dataset_root(&plan, planned, &session)?;
        let test = args.server.test_images(&root).map_err(BadInput::wrap)?;
        let entry = session.cache.entry_dir(key);
        let predicted = read_predicted(&entry.join(PREDICTED_FILE)).map_err(BadInput::wrap)?;
        let folder = entry.join(match args.server {
            Server::DotaV2 => TASK1_DIR,
            Server::Loveda => PREDICTIONS_DIR,
        });
        let archive = archive::check(args.server, &folder, &test, Some(&predicted))?;
        let file_name = format!("{}-{}.zip", planned.stage.name, short_key(key));
        let out = match &args.out {
            Some(out) if out.extension().is_some() => out.clone(),
            Some(dir) => dir.join(file_name),
            None => session
                .results_dir
                .join("submissions")
                .join(args.server.name())
                .join(file_name),
        };
        let sha256 = archive::write_zip(&archive, &out)?;
        let out = std::path::absolute(&out)?;
        session
            .store
            .record_submission(
                key,
                args.server.name(),
                &out.to_string_lossy(),
                &sha256,
                archive.images,
            )
            .await?;
        written_all.push(written(Some(planned), args.server, &archive, out, sha256));
    }
    Ok(written_all)
}

fn written(
    planned: Option<&PlannedStage>,
    server: Server,
    archive: &Archive,
    out: PathBuf,
    sha256: String,
) -> Written {
    Written {
        stage: planned.map(PlannedStage::display_name),
        key: planned.map(|p| p.key.key.clone()),
        server: server.name(),
        archive: out,
        sha256,
        files: archive.entries.len(),
        images: archive.images,
        detections: archive.detections,
        warnings: archive.warnings.clone(),
        upload: server.upload_hint(),
    }
}

/// The evaluations of `plan` that predict the test images `server` scores (only `stage`, by
/// full or base name, when given).
fn test_evaluations<'p>(
    plan: &'p Plan,
    server: Server,
    stage: Option<&str>,
) -> Vec<&'p PlannedStage> {
    plan.stages
        .iter()
        .filter(|p| p.stage.kind == StageKind::Evaluate)
        .filter(|p| stage.is_none_or(|s| s == p.stage.name || s == p.stage.base))
        .filter(|p| {
            parsed::<EvaluateParams>(p).is_some_and(|params| {
                params.predicts_test() && Server::for_evaluation(&params) == Some(server)
            })
        })
        .collect()
}

/// The root of the dataset an evaluation read: one of its `datasets`, or the cache entry of
/// the needed stage that wrote it.
fn dataset_root(plan: &Plan, planned: &PlannedStage, session: &Session) -> anyhow::Result<PathBuf> {
    let name = parsed::<EvaluateParams>(planned)
        .and_then(|p| p.dataset)
        .unwrap_or_default();
    if let Some((_, root)) = planned.datasets.iter().find(|(n, _)| *n == name) {
        return Ok(root.clone());
    }
    planned
        .needs
        .iter()
        .map(|&i| &plan.stages[i])
        .find(|need| need.stage.base == name || need.stage.name == name)
        .map(|need| session.cache.entry_dir(&need.key.key))
        .ok_or_else(|| {
            BadInput::msg(format!(
                "stage {}: dataset `{name}` is neither one of its datasets nor a needed stage",
                planned.display_name()
            ))
        })
}
