//! `rsfm params MODEL [--json]`: the computed parameter count of a model preset beside the
//! one the paper reports.

use std::io::Write;

use super::BadInput;
use crate::presets::{find_preset, PresetText};
use std::process::ExitCode;

use clap::Args;
use rsfm_model::arch::ModelPreset;
use serde::Serialize;

/// Arguments of `rsfm params`.
#[derive(Debug, Clone, Args)]
pub struct ParamsArgs {
    /// A preset name (`vit-b` → `recipes/models/vit-b.toml`) or a path to a preset file.
    pub model: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

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

/// Runs `rsfm params`; `json` is the global `--json` flag (either flag selects JSON).
/// An unknown model or a bad preset is bad input.
pub fn run(args: &ParamsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let report = match find_preset(&args.model, &std::env::current_dir()?)
        .and_then(|found| report_for(&found))
    {
        Ok(report) => report,
        Err(err) => return Err(BadInput::wrap(err)),
    };
    let mut out = std::io::stdout().lock();
    if json || args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", render_text(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Computes the report of a preset found by [`find_preset`].
pub fn report_for(found: &PresetText) -> anyhow::Result<ParamsReport> {
    let preset = ModelPreset::from_toml(&found.text, &found.origin)?;
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

/// The human-readable report.
pub fn render_text(r: &ParamsReport) -> String {
    let topology = if r.parallel > 1 {
        format!("{}x{}", r.depth, r.parallel)
    } else {
        r.depth.to_string()
    };
    let mut text = format!(
        "{}  ({})\n  blocks    {topology}, width {}, {} heads of {}, MLP {}\n  computed  {} ({})\n  trainable {} ({}; the sin-cos position table is frozen)\n",
        r.model,
        r.file,
        r.embed_dim,
        r.num_heads,
        r.head_dim,
        r.mlp_hidden_dim,
        r.computed,
        human(r.computed as f64),
        r.trainable,
        human(r.trainable as f64)
    );
    match (r.reported, r.gap_percent) {
        (Some(reported), Some(gap)) => {
            let source = r.reported_source.as_deref().unwrap_or("no source given");
            text += &format!(
                "  reported  {} ({source})\n  gap       {gap:+.2}%\n",
                human(reported)
            );
        }
        _ => text += "  reported  —\n",
    }
    text
}

/// A count as `2.42B`, `85.80M` or `113.6K`.
pub(crate) fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else {
        format!("{:.1}K", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn paper_sizes_are_reconstructed_within_two_percent() {
        for name in ["vit-b", "vit-605m", "vit-1.3b", "vit-2.4b"] {
            let found = find_preset(name, &repo_root().join("harness")).unwrap();
            let report = report_for(&found).unwrap();
            let gap = report.gap_percent.unwrap();
            assert!(gap.abs() < 2.0, "{name}: gap {gap}%");
            assert!(
                (64..=128).contains(&report.head_dim),
                "{name}: head dim {}",
                report.head_dim
            );
            assert_eq!(report.mlp_hidden_dim, 4 * report.embed_dim, "{name}");
        }
    }

    #[test]
    fn vit_b_matches_the_timm_count_exactly() {
        let report = report_for(&find_preset("vit-b", &repo_root()).unwrap()).unwrap();
        assert_eq!(report.computed, 85_798_656);
        assert_eq!(report.trainable, 85_798_656 - 197 * 768);
        assert!(
            render_text(&report).contains("gap       -0.41%"),
            "{}",
            render_text(&report)
        );
    }

    #[test]
    fn the_605m_model_has_the_papers_count_exactly() {
        let report = report_for(&find_preset("vit-605m", &repo_root()).unwrap()).unwrap();
        assert_eq!(report.trainable, 605_261_824);
        assert_eq!(report.reported, Some(605.26e6));
    }

    #[test]
    fn unknown_models_name_what_exists() {
        let err = find_preset("vit-x", &repo_root()).unwrap_err().to_string();
        assert!(err.contains("vit-x") && err.contains("vit-b"), "{err}");
    }

    #[test]
    fn a_preset_outside_any_project_comes_from_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let report = report_for(&find_preset("vit-tiny", dir.path()).unwrap()).unwrap();
        assert_eq!(report.file, "built-in vit-tiny");
        assert_eq!(report.computed, 113_600);
    }
}
