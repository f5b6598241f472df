//! Where a fine-tuning stage's backbone starts: a pretrained checkpoint or random weights.

use crate::params::ParamError;
use serde::{Deserialize, Serialize};

/// A fine-tuning stage's `init` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneInit {
    /// Every backbone weight from the checkpoint of the stage named by `pretrained`; the
    /// stage fails before training when one is missing.
    Pretrained,
    /// Random weights, on purpose (no `pretrained` stage).
    Scratch,
}

impl BackboneInit {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["pretrained", "scratch"];

    /// The start chosen by `init` (default: `pretrained` when a `pretrained` stage is named,
    /// else `scratch`); the error names the two keys when they contradict each other.
    pub fn resolve(init: Option<Self>, pretrained: Option<&str>) -> anyhow::Result<Self> {
        match (init, pretrained) {
            (None, Some(_)) | (Some(BackboneInit::Pretrained), Some(_)) => {
                Ok(BackboneInit::Pretrained)
            }
            (None, None) | (Some(BackboneInit::Scratch), None) => Ok(BackboneInit::Scratch),
            (Some(BackboneInit::Pretrained), None) => Err(ParamError::new(
                "init",
                "params.init = \"pretrained\" needs params.pretrained, the name of a needed \
                 `mae-pretrain` stage (or set params.init = \"scratch\")",
            )
            .into()),
            (Some(BackboneInit::Scratch), Some(name)) => Err(ParamError::new(
                "init",
                format!(
                    "params.init = \"scratch\" starts from random weights, but params.pretrained \
                     names `{name}`"
                ),
            )
            .help("remove one of the two")
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_follows_pretrained_and_contradictions_name_both_keys() {
        use BackboneInit::{Pretrained, Scratch};
        assert_eq!(
            BackboneInit::resolve(None, Some("mae")).unwrap(),
            Pretrained
        );
        assert_eq!(BackboneInit::resolve(None, None).unwrap(), Scratch);
        assert_eq!(BackboneInit::resolve(Some(Scratch), None).unwrap(), Scratch);
        let err = BackboneInit::resolve(Some(Pretrained), None).unwrap_err();
        assert!(err.to_string().contains("params.pretrained"), "{err}");
        let err = BackboneInit::resolve(Some(Scratch), Some("mae")).unwrap_err();
        assert!(err.to_string().contains("`mae`"), "{err}");
        let parsed: BackboneInit = serde_json::from_str("\"scratch\"").unwrap();
        assert_eq!(parsed, Scratch);
    }
}
