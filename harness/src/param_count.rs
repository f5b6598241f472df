//! The parameter count of a model preset, computed from its architecture, beside the one the
//! paper reports: what `rsfm params` prints and the report's sizes table shows.

use serde::Serialize;

use crate::presets::PresetText;

/// The `--json` output: a stable contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamsReport {
    /// Preset name.
    pub model: String,
    /// The preset file read, or `built-in NAME`.
    pub file: String,
    /// Parameters computed from the architecture, the position table included.
    pub computed: u64,
    /// Trainable parameters: `computed` less MAE's frozen sin-cos position table (the count
    /// the paper's numbers match).
    pub trainable: u64,
    /// Parameters the paper reports, if it does.
    pub reported: Option<f64>,
    /// Where the reported value comes from.
    pub reported_source: Option<String>,
    /// `(trainable - reported) / reported` in percent.
    pub gap_percent: Option<f64>,
    /// Sequential stages.
    pub depth: usize,
    /// Parallel branches per stage.
    pub parallel: usize,
    /// Token width.
    pub embed_dim: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// MLP hidden width.
    pub mlp_hidden_dim: usize,
}

/// Computes the report of a preset found by [`crate::presets::find_preset`].
pub fn report_for(found: &PresetText) -> anyhow::Result<ParamsReport> {
    let preset = found.parse()?;
    let computed = preset.vit.param_count();
    let trainable = preset.vit.trainable_param_count();
    let reported = preset.reported_params.as_ref().map(|r| r.value());
    Ok(ParamsReport {
        model: preset.name.clone(),
        file: found.origin.clone(),
        computed,
        trainable,
        reported,
        reported_source: preset
            .reported_params
            .as_ref()
            .and_then(|r| r.source().map(str::to_owned)),
        gap_percent: reported.map(|r| (trainable as f64 - r) / r * 100.0),
        depth: preset.vit.depth,
        parallel: preset.vit.parallel,
        embed_dim: preset.vit.embed_dim,
        num_heads: preset.vit.num_heads,
        head_dim: preset.vit.head_dim(),
        mlp_hidden_dim: preset.vit.mlp_hidden_dim(),
    })
}

/// A count as `2.42B`, `85.80M` or `113.6K`.
pub fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else {
        format!("{:.1}K", n / 1e3)
    }
}
