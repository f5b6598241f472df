//! What an `evaluate` stage's numbers are: the split it scores and the protocol it scores it
//! under, recorded on its results so that only like is compared with like.

use rsfm_model::data::formats::potsdam::PotsdamLabels;
use rsfm_model::params::data::EvalTask;
use rsfm_model::params::EvaluateParams;

use super::stage_params::parsed;
use super::PlannedStage;
use crate::recipe::StageKind;

/// The split and protocol of an evaluation's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoring {
    /// `val` or `test`: what the worker's readers score for the format ([`scored_split`]);
    /// `test-server` for a stage that predicts the hidden-label test split, whose numbers come
    /// from the dataset's evaluation server (`rsfm ingest`).
    pub split: &'static str,
    /// The settings that change the numbers, as `name=value` pairs: for detection the AP
    /// variant, IoU, AP protocol and (DOTA) class release; for segmentation the Potsdam labels
    /// and clutter setting and test-time flipping.
    pub protocol: String,
}

/// The split of numbers an evaluation server computed on hidden test labels.
pub const TEST_SERVER: &str = "test-server";

/// The split an `evaluate` stage scores for a dataset format, as the worker's readers pick it:
/// `val` for DOTA (`val/`) and LoveDA (`Val/`), whose test labels only the evaluation servers
/// hold; `test` for DIOR-R (its `test` list) and Potsdam (the 14 standard test tiles).
pub fn scored_split(format: &str) -> &'static str {
    match format {
        "dota" | "loveda" => "val",
        _ => "test",
    }
}

/// The scoring of `planned`, an `evaluate` stage (None for other kinds, or parameters the plan
/// could not resolve).
pub fn scoring(planned: &PlannedStage) -> Option<Scoring> {
    if planned.stage.kind != StageKind::Evaluate {
        return None;
    }
    scoring_of(&parsed(planned)?)
}

/// The scoring of an evaluation with the resolved parameters `params`.
pub fn scoring_of(params: &EvaluateParams) -> Option<Scoring> {
    let format = params.format.clone()?;
    if params.predicts_test() {
        let server = crate::servers::Server::for_evaluation(params)?;
        let mut protocol = format!("server={}", server.name());
        if format == "dota" {
            protocol.push_str(&format!(" classes={}", params.version));
        }
        return Some(Scoring {
            split: TEST_SERVER,
            protocol,
        });
    }
    let protocol = match params.task().ok()? {
        EvalTask::Det => {
            let ap_protocol = match &params.protocol {
                Some(protocol) => protocol.clone(),
                None => params
                    .det_data()
                    .ok()?
                    .format
                    .default_protocol()
                    .to_string(),
            };
            let mut pairs = vec![
                format!("ap={}", params.ap_metric),
                format!("iou={}", params.iou),
                format!("protocol={ap_protocol}"),
            ];
            if format == "dota" {
                pairs.push(format!("classes={}", params.version));
            }
            pairs.join(" ")
        }
        EvalTask::Seg => {
            let data = params.seg_data().ok()?;
            let mut pairs = Vec::new();
            if format == "potsdam" {
                let labels = match data.labels {
                    PotsdamLabels::Full => "full",
                    PotsdamLabels::Eroded => "eroded",
                };
                pairs.push(format!("labels={labels}"));
                let clutter = if data.clutter { "scored" } else { "ignored" };
                pairs.push(format!("clutter={clutter}"));
            }
            pairs.push(format!("flip={}", params.flip));
            pairs.join(" ")
        }
    };
    Some(Scoring {
        split: scored_split(&format),
        protocol,
    })
}
