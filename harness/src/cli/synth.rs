//! `rsfm synth DATASET --out DIR [--images N] [--seed S] [--size PX]`: synthetic data in a
//! dataset's real on-disk format. JSON output: the `synth.json` summary written beside the data
//! (`{"dataset","seed","size","images","classes":[..],"splits":{"train":[..],"val":[..]}}`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::BadInput;
use clap::Args;
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions, SynthSummary};

/// Arguments of `rsfm synth`.
#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Dataset to imitate: dota, dior-r, potsdam, loveda or millionaid.
    #[arg(value_parser = parse_dataset)]
    pub dataset: SynthDataset,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of images over all splits (the last fifth is held out).
    #[arg(long, default_value_t = 10)]
    pub images: usize,
    /// Seed of every random choice: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image side in pixels (default: the dataset's usual tile size).
    #[arg(long)]
    pub size: Option<u32>,
    /// Unlabelled images of the hidden-label test split besides `--images` (dota: `test-dev/`,
    /// loveda: `Test/`), for `evaluate` stages with `split = "test"` and `rsfm submit`.
    #[arg(long, default_value_t = 0)]
    pub test_images: usize,
    /// Print JSON instead of a summary line.
    #[arg(long)]
    pub json: bool,
}

fn parse_dataset(s: &str) -> Result<SynthDataset, String> {
    s.parse()
}

/// One line saying what was written.
pub fn render_summary(summary: &SynthSummary, out: &std::path::Path) -> String {
    format!(
        "wrote {} synthetic {} images of {}x{} px ({} train, {} held out{}) to {}\n",
        summary.images,
        summary.dataset,
        summary.size,
        summary.size,
        summary.splits.train.len(),
        summary.splits.val.len(),
        match summary.splits.test.len() {
            0 => String::new(),
            n => format!(", and {n} unlabelled test images"),
        },
        out.display()
    )
}

/// Runs `rsfm synth`; `json` is the global `--json` flag (either flag selects JSON).
/// Bad options or an unwritable folder print the error and return exit code 2.
pub fn run(args: &SynthArgs, json: bool) -> anyhow::Result<ExitCode> {
    let options = SynthOptions {
        images: args.images,
        seed: args.seed,
        size: args.size,
        test_images: args.test_images,
    };
    let summary = match generate(args.dataset, &args.out, &options) {
        Ok(summary) => summary,
        Err(err) => return Err(BadInput::wrap(err)),
    };
    let text = if json || args.json {
        serde_json::to_string_pretty(&summary)? + "\n"
    } else {
        render_summary(&summary, &args.out)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_dataset_and_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let args = SynthArgs {
            dataset: SynthDataset::Dota,
            out: dir.path().to_path_buf(),
            images: 3,
            seed: 1,
            size: Some(64),
            test_images: 0,
            json: false,
        };
        assert_eq!(run(&args, false).unwrap(), ExitCode::SUCCESS);
        assert!(dir.path().join("train/labelTxt/P0000.txt").is_file());
        assert!(dir.path().join("val/images/P0002.png").is_file());
        let zero = SynthArgs { images: 0, ..args };
        assert!(crate::error::is_bad_input(&run(&zero, false).unwrap_err()));
    }

    #[test]
    fn dataset_names_are_checked() {
        assert!(parse_dataset("dior-r").is_ok());
        assert!(parse_dataset("coco").unwrap_err().contains("dota"));
    }
}
