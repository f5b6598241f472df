//! Stage kinds and the parameters each accepts. The parameters are the kind's schema struct
//! (`rsfm_model::params` for worker kinds, [`CommandParams`] here): names, types, defaults and
//! docs all come from it.

use rsfm_model::params::{
    EvaluateParams, Field, FinetuneDetParams, FinetuneSegParams, MaePretrainParams, PrepareParams,
    Schema,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::OnceLock;

pub use rsfm_model::params::ParamType;

/// What a stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    /// Prepare a dataset: synthesise or tile it. `rsfm prepare` runs it (no libtorch).
    Prepare,
    /// Masked-autoencoder pretraining of a ViT backbone.
    MaePretrain,
    /// Fine-tune for rotated object detection (ViTDet-style backbone, Oriented R-CNN).
    FinetuneDet,
    /// Fine-tune for semantic segmentation (UperNet head).
    FinetuneSeg,
    /// Evaluate predictions or a fine-tuned model.
    Evaluate,
    /// Run any program given as an argv list.
    Command,
}

rsfm_model::schema! {
    /// Parameters of a `command` stage.
    pub struct CommandParams includes {} {
        /// Program and arguments, no shell; placeholders allowed.
        argv: Vec<String> as rsfm_model::params::types::ARGV,
        /// Files whose content enters the key, relative to the recipe folder.
        deps: Vec<String> = Vec::new(),
    }
}

impl StageKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [StageKind; 6] = [
        StageKind::Prepare,
        StageKind::MaePretrain,
        StageKind::FinetuneDet,
        StageKind::FinetuneSeg,
        StageKind::Evaluate,
        StageKind::Command,
    ];

    /// The spelling in recipes: `mae-pretrain`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Prepare => "prepare",
            StageKind::MaePretrain => "mae-pretrain",
            StageKind::FinetuneDet => "finetune-det",
            StageKind::FinetuneSeg => "finetune-seg",
            StageKind::Evaluate => "evaluate",
            StageKind::Command => "command",
        }
    }

    /// The kind spelled `text` in a recipe.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The parameters this kind accepts, from its schema struct.
    pub fn params(self) -> &'static [Field] {
        static TABLES: OnceLock<Vec<Vec<Field>>> = OnceLock::new();
        let tables = TABLES.get_or_init(|| {
            StageKind::ALL
                .iter()
                .map(|kind| match kind {
                    StageKind::Prepare => PrepareParams::fields(),
                    StageKind::MaePretrain => MaePretrainParams::fields(),
                    StageKind::FinetuneDet => FinetuneDetParams::fields(),
                    StageKind::FinetuneSeg => FinetuneSegParams::fields(),
                    StageKind::Evaluate => EvaluateParams::fields(),
                    StageKind::Command => CommandParams::fields(),
                })
                .collect()
        });
        let index = Self::ALL.iter().position(|kind| *kind == self);
        &tables[index.unwrap_or_default()]
    }

    /// Deserialises `params` into the kind's schema struct and back: the parameters as the
    /// worker reads them, or the reason it would refuse them.
    pub fn check(self, params: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        fn round_trip<T: Schema>(
            params: &Map<String, Value>,
        ) -> Result<Map<String, Value>, String> {
            T::from_map(params.clone())
                .map(|parsed| parsed.to_map())
                .map_err(|e| e.to_string())
        }
        match self {
            StageKind::Prepare => round_trip::<PrepareParams>(params),
            StageKind::MaePretrain => round_trip::<MaePretrainParams>(params),
            StageKind::FinetuneDet => round_trip::<FinetuneDetParams>(params),
            StageKind::FinetuneSeg => round_trip::<FinetuneSegParams>(params),
            StageKind::Evaluate => round_trip::<EvaluateParams>(params),
            StageKind::Command => round_trip::<CommandParams>(params),
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_spelling() {
        for kind in StageKind::ALL {
            assert_eq!(StageKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(StageKind::parse("train"), None);
    }

    #[test]
    fn parameter_names_are_unique_per_kind() {
        for kind in StageKind::ALL {
            let names: Vec<_> = kind.params().iter().map(|spec| spec.name).collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "{kind}");
        }
    }

    #[test]
    fn every_parameter_has_a_doc() {
        for kind in StageKind::ALL {
            for field in kind.params() {
                assert!(!field.doc.is_empty(), "{kind}: {}", field.name);
            }
        }
    }
}
