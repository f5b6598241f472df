//! Vision transformer architectures as data: the configuration of a (parallel) ViT, its
//! analytical parameter count, and the model presets in `recipes/models/*.toml`.
//!
//! Pure Rust: the harness uses this for `rsfm params` without libtorch.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize};

/// A value that may carry its provenance: `768` or `{ value = 768, source = "paper ..." }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sourced<T> {
    /// A plain value.
    Plain(T),
    /// A value with the place it comes from.
    WithSource {
        /// The value itself.
        value: T,
        /// Where it comes from: `paper ...`, `reconstructed`, `assumed: why`, `default: where`.
        source: String,
    },
}

impl<T: Clone> Sourced<T> {
    /// The value without its provenance.
    pub fn value(&self) -> T {
        match self {
            Sourced::Plain(v) | Sourced::WithSource { value: v, .. } => v.clone(),
        }
    }

    /// The provenance, if the value carries one.
    pub fn source(&self) -> Option<&str> {
        match self {
            Sourced::Plain(_) => None,
            Sourced::WithSource { source, .. } => Some(source),
        }
    }
}

/// Deserialises a plain value or a `{ value, source }` table, dropping the source.
fn plain_or_sourced<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Clone,
{
    Sourced::<T>::deserialize(deserializer).map(|s| s.value())
}

fn default_in_chans() -> usize {
    3
}
fn default_parallel() -> usize {
    1
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_true() -> bool {
    true
}

/// Configuration of a plain or parallel vision transformer (timm `VisionTransformer` layout).
///
/// `depth` counts *stages*; each stage holds `parallel` branches that read the same input
/// and whose outputs are summed ("12x4" = `depth = 12, parallel = 4`, 48 blocks in total).
/// Every field also accepts a `{ value, source }` table in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    /// Side of the square patches, in pixels.
    #[serde(deserialize_with = "plain_or_sourced")]
    pub patch_size: usize,
    /// Side of the square input image the position embeddings are made for.
    #[serde(deserialize_with = "plain_or_sourced")]
    pub image_size: usize,
    /// Input channels.
    #[serde(default = "default_in_chans", deserialize_with = "plain_or_sourced")]
    pub in_chans: usize,
    /// Token width.
    #[serde(deserialize_with = "plain_or_sourced")]
    pub embed_dim: usize,
    /// Number of sequential stages.
    #[serde(deserialize_with = "plain_or_sourced")]
    pub depth: usize,
    /// Parallel branches per stage (1 = a plain ViT).
    #[serde(default = "default_parallel", deserialize_with = "plain_or_sourced")]
    pub parallel: usize,
    /// Attention heads per branch.
    #[serde(deserialize_with = "plain_or_sourced")]
    pub num_heads: usize,
    /// MLP hidden width over token width.
    #[serde(default = "default_mlp_ratio", deserialize_with = "plain_or_sourced")]
    pub mlp_ratio: f64,
    /// Whether the qkv projection has a bias.
    #[serde(default = "default_true", deserialize_with = "plain_or_sourced")]
    pub qkv_bias: bool,
    /// Stochastic depth rate of the last stage (linearly increasing from 0).
    #[serde(default, deserialize_with = "plain_or_sourced")]
    pub drop_path: f64,
}

impl VitConfig {
    /// ViT-B/16 at 224² (timm's `vit_base_patch16_224`), without stochastic depth.
    pub fn vit_base_patch16_224() -> VitConfig {
        VitConfig {
            patch_size: 16,
            image_size: 224,
            in_chans: 3,
            embed_dim: 768,
            depth: 12,
            parallel: 1,
            num_heads: 12,
            mlp_ratio: 4.0,
            qkv_bias: true,
            drop_path: 0.0,
        }
    }

    /// Patches per image side.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// MLP hidden width, truncated like timm's `int(dim * mlp_ratio)`.
    pub fn mlp_hidden_dim(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads
    }

    /// Total number of transformer blocks (`depth × parallel`).
    pub fn num_blocks(&self) -> usize {
        self.depth * self.parallel
    }

    /// Checks the configuration is buildable; the error names the offending field.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("patch_size", self.patch_size),
            ("image_size", self.image_size),
            ("in_chans", self.in_chans),
            ("embed_dim", self.embed_dim),
            ("depth", self.depth),
            ("parallel", self.parallel),
            ("num_heads", self.num_heads),
        ];
        for (name, value) in positive {
            crate::ensure_param!(value > 0, name, "`{name}` must be positive, got {value}");
        }
        crate::ensure_param!(
            self.image_size.is_multiple_of(self.patch_size),
            "image_size",
            "`image_size` ({}) must be a multiple of `patch_size` ({})",
            self.image_size,
            self.patch_size
        );
        crate::ensure_param!(
            self.embed_dim.is_multiple_of(self.num_heads),
            "embed_dim",
            "`embed_dim` ({}) must be a multiple of `num_heads` ({})",
            self.embed_dim,
            self.num_heads
        );
        crate::ensure_param!(
            self.mlp_ratio > 0.0 && self.mlp_hidden_dim() > 0,
            "mlp_ratio",
            "`mlp_ratio` must be positive, got {}",
            self.mlp_ratio
        );
        crate::ensure_param!(
            (0.0..1.0).contains(&self.drop_path),
            "drop_path",
            "`drop_path` must be in [0, 1), got {}",
            self.drop_path
        );
        Ok(())
    }

    /// Parameters of one transformer branch: two LayerNorms, the attention (qkv + output
    /// projection) and the two-layer MLP.
    pub fn block_param_count(&self) -> u64 {
        let d = self.embed_dim as u64;
        let h = self.mlp_hidden_dim() as u64;
        let norms = 2 * 2 * d;
        let qkv = 3 * d * d + if self.qkv_bias { 3 * d } else { 0 };
        let proj = d * d + d;
        let mlp = d * h + h + h * d + d;
        norms + qkv + proj + mlp
    }

    /// Parameter count of the backbone, timm convention: patch embedding (conv weight and
    /// bias), class token, position embeddings for the class token and every patch (counted
    /// even when frozen, as MAE's sin-cos table is an `nn.Parameter`), all blocks and the
    /// final LayerNorm; no classification head. ViT-B/16 at 224 px gives 85,798,656.
    pub fn param_count(&self) -> u64 {
        let d = self.embed_dim as u64;
        let p = self.patch_size as u64;
        let patch_embed = self.in_chans as u64 * p * p * d + d;
        let cls_token = d;
        let pos_embed = (self.num_patches() as u64 + 1) * d;
        let blocks = self.num_blocks() as u64 * self.block_param_count();
        let final_norm = 2 * d;
        patch_embed + cls_token + pos_embed + blocks + final_norm
    }

    /// Parameters MAE trains: [`Self::param_count`] without the position table, which MAE keeps
    /// as a frozen sin-cos table. The paper's counts read this way: width 1024, 48 blocks and
    /// no qkv biases give exactly its 605.26M (605,261,824).
    pub fn trainable_param_count(&self) -> u64 {
        let pos_embed = (self.num_patches() as u64 + 1) * self.embed_dim as u64;
        self.param_count() - pos_embed
    }
}

/// A model preset: one file `recipes/models/NAME.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPreset {
    /// Short name, e.g. `vit-b`.
    pub name: String,
    /// What the model is and where its dimensions come from.
    #[serde(default)]
    pub description: String,
    /// Parameter count the paper reports, with its source; absent for our own demo sizes.
    #[serde(default)]
    pub reported_params: Option<Sourced<f64>>,
    /// The architecture.
    pub vit: VitConfig,
    /// Stage parameters that fit this model's size, used where a stage leaves them out.
    #[serde(default)]
    pub defaults: SizeDefaults,
}

/// Stage parameters whose right value depends on the model's size (`[defaults]` in a preset):
/// a stage that leaves one out gets the preset's value rather than a paper-scale default.
/// Each accepts a `{ value, source }` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeDefaults {
    /// ViTDet window side in tokens, for fine-tuning stages.
    #[serde(default)]
    pub window_size: Option<Sourced<usize>>,
    /// UperNet width, for `finetune-seg`.
    #[serde(default)]
    pub head_channels: Option<Sourced<usize>>,
    /// Pyramid and RPN width, for `finetune-det`.
    #[serde(default)]
    pub channels: Option<Sourced<usize>>,
    /// Width of the box head's hidden layers, for `finetune-det`.
    #[serde(default)]
    pub fc_dim: Option<Sourced<usize>>,
    /// Layer-wise learning-rate decay (`layer_decay`) of `finetune-det` stages.
    #[serde(default)]
    pub det_layer_decay: Option<Sourced<f64>>,
    /// Stochastic depth (`drop_path`) of `finetune-det` stages.
    #[serde(default)]
    pub det_drop_path: Option<Sourced<f64>>,
    /// Layer-wise learning-rate decay (`layer_decay`) of `finetune-seg` stages.
    #[serde(default)]
    pub seg_layer_decay: Option<Sourced<f64>>,
    /// Stochastic depth (`drop_path`) of `finetune-seg` stages.
    #[serde(default)]
    pub seg_drop_path: Option<Sourced<f64>>,
}

/// The fine-tuning task a size default is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FineTuneTask {
    /// `finetune-det`.
    Detection,
    /// `finetune-seg`.
    Segmentation,
}

/// One value of a preset's `[defaults]` for one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeDefault {
    /// The stage key it fills.
    pub key: &'static str,
    /// Its key in the preset's `[defaults]` table.
    pub preset_key: &'static str,
    /// The value.
    pub value: serde_json::Value,
}

impl SizeDefaults {
    /// The parameters it sets for a stage of `task`: stage key, preset key and value.
    pub fn entries(&self, task: FineTuneTask) -> Vec<SizeDefault> {
        let count =
            |v: &Option<Sourced<usize>>| v.as_ref().map(|v| serde_json::Value::from(v.value()));
        let float =
            |v: &Option<Sourced<f64>>| v.as_ref().map(|v| serde_json::Value::from(v.value()));
        let ((layer_decay_key, layer_decay), (drop_path_key, drop_path)) = match task {
            FineTuneTask::Detection => (
                ("det_layer_decay", &self.det_layer_decay),
                ("det_drop_path", &self.det_drop_path),
            ),
            FineTuneTask::Segmentation => (
                ("seg_layer_decay", &self.seg_layer_decay),
                ("seg_drop_path", &self.seg_drop_path),
            ),
        };
        [
            ("window_size", "window_size", count(&self.window_size)),
            ("head_channels", "head_channels", count(&self.head_channels)),
            ("channels", "channels", count(&self.channels)),
            ("fc_dim", "fc_dim", count(&self.fc_dim)),
            ("layer_decay", layer_decay_key, float(layer_decay)),
            ("drop_path", drop_path_key, float(drop_path)),
        ]
        .into_iter()
        .filter_map(|(key, preset_key, value)| {
            value.map(|value| SizeDefault {
                key,
                preset_key,
                value,
            })
        })
        .collect()
    }
}

impl ModelPreset {
    /// Parses a preset from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let preset: ModelPreset =
            toml::from_str(text).with_context(|| format!("{origin}: not a valid model preset"))?;
        preset
            .vit
            .validate()
            .with_context(|| format!("{origin}: invalid [vit] table"))?;
        Ok(preset)
    }

    /// Reads and parses a preset file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = fs_err::read_to_string(path)?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_b16_has_timms_parameter_count() {
        // timm `vit_base_patch16_224` without its head: 86,567,656 - (768*1000 + 1000).
        assert_eq!(
            VitConfig::vit_base_patch16_224().param_count(),
            86_567_656 - 769_000
        );
    }

    #[test]
    fn parallel_branches_count_like_sequential_blocks() {
        let mut parallel = VitConfig::vit_base_patch16_224();
        parallel.depth = 6;
        parallel.parallel = 2;
        assert_eq!(
            parallel.param_count(),
            VitConfig::vit_base_patch16_224().param_count()
        );
        assert_eq!(parallel.num_blocks(), 12);
    }

    #[test]
    fn fields_accept_provenance_tables_and_reject_unknown_keys() {
        let text = r#"
            name = "x"
            reported_params = { value = 86e6, source = "paper abstract" }
            [vit]
            patch_size = 16
            image_size = 224
            embed_dim = { value = 768, source = "reconstructed" }
            depth = 12
            num_heads = 12
        "#;
        let preset = ModelPreset::from_toml(text, "x.toml").unwrap();
        assert_eq!(preset.vit, VitConfig::vit_base_patch16_224());
        assert_eq!(
            preset.reported_params.as_ref().unwrap().source(),
            Some("paper abstract")
        );
        let bad = text.replace("depth = 12", "depht = 12");
        let err = format!("{:#}", ModelPreset::from_toml(&bad, "x.toml").unwrap_err());
        assert!(err.contains("x.toml") && err.contains("depht"), "{err}");
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut cfg = VitConfig::vit_base_patch16_224();
        cfg.num_heads = 7;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("num_heads"));
        cfg = VitConfig::vit_base_patch16_224();
        cfg.image_size = 200;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("image_size"));
    }
}
