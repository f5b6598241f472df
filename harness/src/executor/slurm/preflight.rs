//! Checks before anything runs: the controller answers, and the cluster accepts the flags of
//! the first pending stage of each kind (`sbatch --test-only`). A rejected flag is reported with
//! the recipe location that set it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::commands;
use super::settings::{SbatchFlag, SlurmSettings};
use crate::plan::PlannedStage;

/// Longest wait for `scontrol ping` (a missing config makes Slurm's clients retry for a minute).
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster refused a flag: where it was set, the flag, and what Slurm said.
#[derive(Debug, thiserror::Error)]
#[error("{}Slurm rejects `{flag}` for stage {stage}: {said}\n  help: {help}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
pub struct SiteRejected {
    /// Where the flag was set.
    pub at: Option<crate::recipe::Location>,
    /// The flag.
    pub flag: String,
    /// The stage whose job was tested.
    pub stage: String,
    /// Slurm's message.
    pub said: String,
    /// How to fix it.
    pub help: String,
}

/// Fails within seconds, saying so, when no Slurm controller answers.
pub async fn check_controller() -> anyhow::Result<()> {
    let conf = std::env::var_os("SLURM_CONF");
    if let Some(path) = &conf {
        if !std::path::Path::new(path).is_file() {
            anyhow::bail!(
                "--backend slurm: SLURM_CONF={} does not exist; point SLURM_CONF at the cluster's slurm.conf",
                path.to_string_lossy()
            );
        }
    }
    let where_ = conf.map_or_else(
        || "the default slurm.conf".to_string(),
        |p| format!("SLURM_CONF={}", p.to_string_lossy()),
    );
    let fix = "start the cluster (for a local one: `scripts/slurm-local.sh start DIR` and the `export SLURM_CONF=...` it prints) or point SLURM_CONF at a running one";
    let ping = tokio::time::timeout(
        PING_TIMEOUT,
        commands::run("scontrol", &["ping".to_string()]),
    )
    .await;
    match ping {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => anyhow::bail!(
            "--backend slurm: the Slurm controller does not answer ({where_}): {}; nothing was run. Fix: {fix}",
            one_line(&format!("{err:#}"))
        ),
        Err(_) => anyhow::bail!(
            "--backend slurm: `scontrol ping` did not answer within {PING_TIMEOUT:?} ({where_}); nothing was run. Fix: {fix}"
        ),
    }
}

/// `sbatch --test-only` with the flags of the first of `stages` of each kind.
pub async fn check_submissions<'a>(
    settings: &SlurmSettings,
    stages: impl IntoIterator<Item = &'a PlannedStage>,
) -> Result<(), SiteRejected> {
    let mut tested = BTreeSet::new();
    for stage in stages {
        if !tested.insert(stage.stage.kind.as_str()) {
            continue;
        }
        let flags = settings.stage_flags(stage);
        let Err(said) = test_only(&flags).await else {
            continue;
        };
        // Find the flag to blame: the first that is rejected on its own.
        let mut culprit = None;
        for flag in &flags {
            if test_only(std::slice::from_ref(flag)).await.is_err() {
                culprit = Some(flag.clone());
                break;
            }
        }
        let culprit = culprit.unwrap_or_else(|| SbatchFlag {
            flag: flags
                .iter()
                .map(|f| f.flag.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            set_at: None,
        });
        return Err(SiteRejected {
            help: match &culprit.set_at {
                Some(_) => "change or remove this setting ([slurm] in the recipe or rsfm.toml beside the results dir); `sinfo` and `sacctmgr show assoc` list what the cluster offers".into(),
                None => "check the [slurm] settings together; `sinfo` lists the partitions".into(),
            },
            at: culprit.set_at,
            flag: culprit.flag,
            stage: stage.display_name(),
            said,
        });
    }
    Ok(())
}

/// `Err(message)` when `sbatch --test-only` refuses `flags`.
async fn test_only(flags: &[SbatchFlag]) -> Result<(), String> {
    let mut args = vec!["--test-only".to_string()];
    args.extend(flags.iter().map(|f| f.flag.clone()));
    args.push("--wrap=true".into());
    commands::run("sbatch", &args)
        .await
        .map(drop)
        .map_err(|err| one_line(&format!("{err:#}")))
}

/// `text` on one line, without the banners of stars some Slurm messages carry.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .filter(|word| !word.chars().all(|c| c == '*'))
        .collect::<Vec<_>>()
        .join(" ")
}
