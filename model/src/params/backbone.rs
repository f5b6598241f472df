//! The backbone every training stage builds: a model preset and the stage's overrides.

use crate::params::ParamError;
use serde::{Deserialize, Serialize};

use super::types::{ParamType, ParamValue, RATIO};
use crate::arch::VitConfig;

/// A backbone as a stage names it: a preset name in recipes, the preset's `[vit]` table (with
/// the stage's overrides applied) in `stage.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelRef {
    /// `recipes/models/NAME.toml`, not read yet.
    Preset(String),
    /// The architecture itself.
    Config(VitConfig),
}

impl Default for ModelRef {
    fn default() -> Self {
        ModelRef::Preset(String::new())
    }
}

impl ParamValue for ModelRef {
    const TYPE: ParamType = ParamType::Str;
}

crate::schema! {
    /// A model preset and the stage's overrides of its `[vit]` table.
    pub struct Backbone includes {} {
        /// Backbone preset: `recipes/models/NAME.toml`, searched from the recipe's folder
        /// upwards; in `stage.json`, its `[vit]` table, on which the overrides below apply.
        model: ModelRef,
        /// Input side in pixels (the training crop of fine-tuning stages), overriding the
        /// preset's.
        image_size: Option<usize> = None,
        /// Patch side in pixels, overriding the preset's.
        patch_size: Option<usize> = None,
        /// Token width, overriding the preset's.
        embed_dim: Option<usize> = None,
        /// Sequential block stages, overriding the preset's.
        depth: Option<usize> = None,
        /// Parallel branches per stage, overriding the preset's.
        parallel: Option<usize> = None,
        /// Attention heads, overriding the preset's.
        num_heads: Option<usize> = None,
        /// MLP width over token width, overriding the preset's.
        mlp_ratio: Option<f64> = None,
        /// Bias on the attention projections, overriding the preset's.
        qkv_bias: Option<bool> = None,
        /// Stochastic depth rate of the last stage, overriding the preset's.
        drop_path: Option<f64> as RATIO = None,
    }
}

impl Backbone {
    /// `preset` with the overrides applied.
    pub fn apply(&self, preset: &VitConfig) -> VitConfig {
        let mut vit = preset.clone();
        let sizes = [
            (&mut vit.image_size, self.image_size),
            (&mut vit.patch_size, self.patch_size),
            (&mut vit.embed_dim, self.embed_dim),
            (&mut vit.depth, self.depth),
            (&mut vit.parallel, self.parallel),
            (&mut vit.num_heads, self.num_heads),
        ];
        for (field, value) in sizes {
            if let Some(value) = value {
                *field = value;
            }
        }
        vit.mlp_ratio = self.mlp_ratio.unwrap_or(vit.mlp_ratio);
        vit.qkv_bias = self.qkv_bias.unwrap_or(vit.qkv_bias);
        vit.drop_path = self.drop_path.unwrap_or(vit.drop_path);
        vit
    }

    /// The architecture the stage builds: the inlined preset with the overrides applied,
    /// checked. Fails while `model` is still a preset name (the plan inlines it).
    pub fn vit(&self) -> anyhow::Result<VitConfig> {
        match &self.model {
            ModelRef::Config(preset) => {
                let vit = self.apply(preset);
                vit.validate()?;
                Ok(vit)
            }
            ModelRef::Preset(name) => Err(ParamError::new(
                "model",
                format!("params.model is the preset name `{name}`: the plan replaces it with the preset's [vit] table"),
            )
            .into()),
        }
    }
}
