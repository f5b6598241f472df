//! The normalisation of the segmentation head's conv modules (a stage switch), and the rule
//! that keeps batch statistics defined under data parallel.

use serde::{Deserialize, Serialize};

/// How the UperNet head's `ConvModule`s normalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Batch norm with statistics over the global batch, all-reduced across the data-parallel
    /// ranks (MMSegmentation's `SyncBN`); on one process the same as `bn`.
    #[default]
    SyncBn,
    /// Batch norm with each rank's own statistics.
    Bn,
    /// Group norm: no batch statistics, no cross-rank traffic.
    Gn,
}

impl Norm {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["sync_bn", "bn", "gn"];

    /// The spelling of `self`.
    pub fn as_str(self) -> &'static str {
        match self {
            Norm::SyncBn => "sync_bn",
            Norm::Bn => "bn",
            Norm::Gn => "gn",
        }
    }

    /// Samples whose values one batch-norm layer pools per channel at each step (None for
    /// group norm, which pools none), with `batch_size` crops per step over `ranks` processes.
    pub fn pooled_samples(self, batch_size: usize, ranks: usize) -> Option<usize> {
        match self {
            Norm::SyncBn => Some(batch_size),
            Norm::Bn => Some(batch_size / ranks.max(1)),
            Norm::Gn => None,
        }
    }

    /// Refuses a layout whose batch-norm layers would see a single value per channel: the
    /// pyramid-pooling branch that pools each map to 1×1 would then normalise one value per
    /// channel, and its running variance would be NaN.
    pub fn check_layout(self, batch_size: usize, ranks: usize) -> anyhow::Result<()> {
        let per_rank = batch_size / ranks.max(1);
        match self.pooled_samples(batch_size, ranks) {
            Some(pooled) if pooled < 2 => Err(crate::params::ParamError::new(
                "norm",
                format!(
                    "`norm` = \"{}\" with `batch_size` = {batch_size} over {ranks} data-parallel process{} pools the batch statistics of {pooled} crop ({per_rank} per rank): UperNet's 1×1 pyramid-pooling branch would normalise a single value per channel and save a NaN running variance; {}",
                    self.as_str(),
                    if ranks == 1 { "" } else { "es" },
                    self.fix(ranks)
                ),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// What to change when the statistics are not pooled over two crops.
    fn fix(self, ranks: usize) -> &'static str {
        match (self, ranks) {
            (Norm::Bn, r) if r > 1 => "set `norm = \"sync_bn\"` (statistics over all ranks), `norm = \"gn\"`, or at least 2 crops per rank",
            _ => "set `batch_size` to at least 2 (over `processes`/`gpus` ranks with `norm = \"sync_bn\"`), or `norm = \"gn\"`",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_crop_per_rank_is_refused_unless_the_statistics_are_pooled() {
        assert!(Norm::SyncBn.check_layout(2, 2).is_ok());
        assert!(Norm::Gn.check_layout(1, 1).is_ok());
        let bn = Norm::Bn.check_layout(8, 8).unwrap_err().to_string();
        assert!(
            bn.contains("`batch_size` = 8") && bn.contains("1 per rank") && bn.contains("sync_bn"),
            "{bn}"
        );
        let single = Norm::SyncBn.check_layout(1, 1).unwrap_err().to_string();
        assert!(single.contains("at least 2"), "{single}");
        let parsed: Norm = serde_json::from_str("\"sync_bn\"").unwrap();
        assert_eq!(parsed, Norm::SyncBn);
        assert_eq!(Norm::SPELLINGS, ["sync_bn", "bn", "gn"].as_slice());
    }
}
