//! `rsfm params MODEL [--json]`: the computed parameter count of a model preset beside the
//! one the paper reports.

use std::io::Write;

use std::process::ExitCode;

use clap::Args;

use super::BadInput;
pub use crate::param_count::{human, report_for, ParamsReport};
use crate::presets::find_preset;

/// Arguments of `rsfm params`.
#[derive(Debug, Clone, Args)]
pub struct ParamsArgs {
    /// A preset name (`vit-b` → `recipes/models/vit-b.toml`) or a path to a preset file.
    pub model: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
