//! The learning-rate decay of a segmentation stage (a stage switch).

use serde::{Deserialize, Serialize};

/// The learning-rate decay of a segmentation stage after its warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrDecay {
    /// mmseg's poly decay (`poly_power`).
    #[default]
    Poly,
    /// Half a cosine down to `min_lr`.
    Cosine,
}

impl LrDecay {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["poly", "cosine"];
}
