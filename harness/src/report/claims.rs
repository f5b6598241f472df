//! `claims.toml`: the paper's claims as data, each checked against the reproduced cells. A
//! claim compares adjacent sizes of the study (smallest first); each pair gets the probability
//! that the larger size is better, from a bootstrap over seeds (with one seed per size, the
//! plain comparison: 1 or 0), and the claim is *held* when every pair is likely (≥ 0.95),
//! *not held* when some pair is unlikely (≤ 0.05), else *not settled*; fewer than two sizes
//! with results is *not enough data*.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::cells::{percent, resampled_mean, RESAMPLES};
use super::lineage::Observation;
use super::models::ModelInfo;

/// Probability of improvement at or above which a pair supports a claim.
const LIKELY: f64 = 0.95;

/// What a claim says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimKind {
    /// The metric grows with parameter count (full training set).
    IncreasesWithSize,
    /// The larger model loses less of the metric when trained on `fraction` of the data.
    LosesLessWithSize,
}

/// One claim.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claim in words.
    pub text: String,
    /// What it says.
    pub kind: ClaimKind,
    /// Dataset format.
    pub dataset: String,
    /// Metric name.
    pub metric: String,
    /// `loses-less-with-size`: the training fraction compared with the full set (unset: the
    /// smallest the study ran).
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Where the paper says it.
    pub source: String,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    /// The claims, in order.
    #[serde(default, rename = "claim")]
    pub claims: Vec<Claim>,
    /// The file read.
    #[serde(skip)]
    pub path: PathBuf,
}

impl ClaimsFile {
    /// Reads `path` (none: no claims).
    pub fn load(path: &Path) -> anyhow::Result<ClaimsFile> {
        if !path.is_file() {
            return Ok(ClaimsFile::default());
        }
        let text = fs_err::read_to_string(path)?;
        let mut file: ClaimsFile = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid claims file", path.display()))?;
        file.path = path.to_path_buf();
        Ok(file)
    }
}

/// How a claim fared.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCheck {
    /// `held`, `not held`, `not settled` or `not enough data`.
    pub verdict: &'static str,
    /// Each adjacent pair: `vit-tiny → vit-mini: P(better) 0.98 (n=3, 3)`.
    pub pairs: Vec<String>,
}

/// The per-seed values of the claim's quantity for `model`: the metric (in percent) on the full
/// set, or, for `loses-less-with-size`, the full-set mean minus each seed at the fraction (the
/// loss, which should shrink).
fn quantity(claim: &Claim, fraction: f64, model: &str, observations: &[Observation]) -> Vec<f64> {
    let values = |at: f64| -> Vec<f64> {
        observations
            .iter()
            .filter(|o| o.dataset == claim.dataset && o.model == model && o.scored_here())
            .filter(|o| (o.fraction - at).abs() < 1e-9)
            .filter_map(|o| percent(o.metrics.as_ref()?, &claim.metric))
            .collect()
    };
    let full = values(1.0);
    match claim.kind {
        ClaimKind::IncreasesWithSize => full,
        ClaimKind::LosesLessWithSize => {
            if full.is_empty() {
                return Vec::new();
            }
            let full_mean = full.iter().sum::<f64>() / full.len() as f64;
            // Negated, so that larger is better for both kinds.
            values(fraction).iter().map(|v| v - full_mean).collect()
        }
    }
}

/// P(mean of `b` > mean of `a`) by resampling each with replacement (a fixed seed, so a
/// report renders the same twice).
fn probability_better(a: &[f64], b: &[f64]) -> f64 {
    if a.len() == 1 && b.len() == 1 {
        return if b[0] > a[0] { 1.0 } else { 0.0 };
    }
    let mut rng = rsfm_model::rng::SplitMix64::from_state(0xC1A1);
    let better = (0..RESAMPLES)
        .filter(|_| resampled_mean(b, &mut rng) > resampled_mean(a, &mut rng))
        .count();
    better as f64 / RESAMPLES as f64
}

/// Checks `claim` on the study's `models` (smallest first) with `observations`.
pub fn check(claim: &Claim, models: &[ModelInfo], observations: &[Observation]) -> ClaimCheck {
    let fraction = claim.fraction.unwrap_or_else(|| {
        observations
            .iter()
            .filter(|o| o.dataset == claim.dataset && o.fraction < 1.0)
            .map(|o| o.fraction)
            .fold(f64::NAN, f64::min)
    });
    let sized: Vec<(&str, Vec<f64>)> = models
        .iter()
        .map(|m| {
            let model = m.params.model.as_str();
            (model, quantity(claim, fraction, model, observations))
        })
        .filter(|(_, values)| !values.is_empty())
        .collect();
    if sized.len() < 2 {
        return ClaimCheck {
            verdict: "not enough data",
            pairs: Vec::new(),
        };
    }
    let mut probabilities = Vec::new();
    let mut pairs = Vec::new();
    for pair in sized.windows(2) {
        let ((small, a), (large, b)) = (&pair[0], &pair[1]);
        let p = probability_better(a, b);
        probabilities.push(p);
        pairs.push(format!(
            "{small} → {large}: P(better) {p:.2} (n={}, {})",
            a.len(),
            b.len()
        ));
    }
    let verdict = if probabilities.iter().all(|&p| p >= LIKELY) {
        "held"
    } else if probabilities.iter().any(|&p| p <= 1.0 - LIKELY) {
        "not held"
    } else {
        "not settled"
    };
    ClaimCheck { verdict, pairs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_gain_is_likely_and_a_loss_unlikely() {
        assert_eq!(probability_better(&[70.0], &[72.0]), 1.0);
        assert_eq!(probability_better(&[72.0], &[70.0]), 0.0);
        let p = probability_better(&[70.0, 70.5, 69.8], &[73.0, 72.6, 73.4]);
        assert!(p > 0.99, "{p}");
        let noisy = probability_better(&[70.0, 73.0, 71.0], &[71.5, 70.5, 72.5]);
        assert!((0.2..0.9).contains(&noisy), "{noisy}");
    }
}
