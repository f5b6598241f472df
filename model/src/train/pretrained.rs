//! The one pretrained-weight loader of the fine-tuning stages: the backbone (`backbone.*`,
//! its feature-pyramid neck aside) comes whole from a needed `mae-pretrain` stage's
//! checkpoint or from a published checkpoint file (`pretrained` an absolute path: a `.pth` or
//! safetensors file read as `rsfm weights import` reads it), or the stage fails before training
//! naming the first missing tensors; with `init = "scratch"` it keeps its random initialisation
//! on purpose.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use tch::nn::VarStore;
use tch::Tensor;

use super::events::Events;
use super::mae_pretrain::CHECKPOINT_FILE;
use super::stage_inputs::input_dir;
use crate::nn::checkpoint::{self, LoadReport};
use crate::params::init::BackboneInit;
use crate::protocol::StageSpec;
use crate::weights::import::{import, ImportOptions};

/// Where the backbone variables live in a fine-tuning model.
const BACKBONE: &str = "backbone.";
/// The backbone's feature pyramid, which MAE does not train.
const NECK: &str = "backbone.neck.";
/// Names shown in an error.
const SHOWN: usize = 5;

/// Initialises the backbone in `vs` as `init` and `pretrained` (the stage's parameters) ask.
pub fn init_backbone(
    spec: &StageSpec,
    init: Option<BackboneInit>,
    pretrained: Option<&str>,
    vs: &VarStore,
    events: &mut Events,
) -> anyhow::Result<()> {
    match (BackboneInit::resolve(init, pretrained)?, pretrained) {
        (BackboneInit::Pretrained, Some(name)) if Path::new(name).is_absolute() => {
            let file = Path::new(name);
            let imported = import(file, &ImportOptions::default())?;
            events.log(
                "info",
                format!("published checkpoint {}", imported.report.summary()),
            );
            let report = load_backbone_tensors(vs, imported.tensors.into_iter().collect(), file)?;
            events.log("info", fine_tuning_start(file, &report));
        }
        (BackboneInit::Pretrained, Some(name)) => {
            let file = input_dir(spec, "params.pretrained", name)?.join(CHECKPOINT_FILE);
            let report = load_backbone(vs, &file)?;
            events.log("info", fine_tuning_start(&file, &report));
        }
        _ => events.log(
            "info",
            "backbone starts from random weights (init = \"scratch\")",
        ),
    }
    Ok(())
}

/// The log line of a fine-tuning start from `file`: what came from the checkpoint, what this
/// stage adds (the neck and heads MAE does not train) and what it leaves out of the file (MAE's
/// decoder and mask token). Neither of the last two is a problem: it is the fine-tuning's shape.
fn fine_tuning_start(file: &Path, report: &LoadReport) -> String {
    let first = crate::weights::first_names;
    let mut line = format!(
        "backbone from {}: {} tensors loaded; {} new in this model, initialised here (its neck \
         and heads: {}); {} of the checkpoint not used (MAE's decoder and mask token: {})",
        file.display(),
        report.loaded,
        report.missing.len(),
        first(&report.missing),
        report.unexpected.len(),
        first(&report.unexpected)
    );
    if !report.resampled.is_empty() {
        line.push_str(&format!(
            "; {} resampled to this model's grid ({})",
            report.resampled.len(),
            first(&report.resampled)
        ));
    }
    line
}

/// Loads an MAE/timm checkpoint (`blocks.0...`) into the backbone of `vs`; fails naming the
/// first backbone tensors the file lacks.
pub fn load_backbone(vs: &VarStore, file: &Path) -> anyhow::Result<LoadReport> {
    load_backbone_tensors(vs, checkpoint::read_tensors(file)?, file)
}

/// [`load_backbone`] from tensors in timm names already read from `file`.
fn load_backbone_tensors(
    vs: &VarStore,
    tensors: HashMap<String, Tensor>,
    file: &Path,
) -> anyhow::Result<LoadReport> {
    let tensors = checkpoint::with_prefix(tensors, BACKBONE);
    let report = checkpoint::load_from(vs, tensors)
        .with_context(|| format!("loading {}", file.display()))?;
    let missing: Vec<&str> = report
        .missing
        .iter()
        .filter(|k| k.starts_with(BACKBONE) && !k.starts_with(NECK))
        .map(|k| &k[BACKBONE.len()..])
        .collect();
    if !missing.is_empty() {
        let backbone = vs
            .variables()
            .keys()
            .filter(|k| k.starts_with(BACKBONE) && !k.starts_with(NECK))
            .count();
        let found: Vec<&str> = report
            .unexpected
            .iter()
            .take(SHOWN)
            .map(|k| &k[BACKBONE.len()..])
            .collect();
        anyhow::bail!(
            "{}: the checkpoint lacks {} of the {backbone} backbone tensors (first: {}); it holds \
             {}{}. Write it with timm/MAE names (`blocks.0.attn.qkv.weight`, ...), or set \
             params.init = \"scratch\" to train from random weights",
            file.display(),
            missing.len(),
            missing[..missing.len().min(SHOWN)].join(", "),
            if found.is_empty() {
                "nothing else".to_string()
            } else {
                format!("e.g. {}", found.join(", "))
            },
            if report.unexpected.len() > SHOWN {
                format!(" and {} more", report.unexpected.len() - SHOWN)
            } else {
                String::new()
            }
        );
    }
    Ok(report)
}
