//! One table cell: reproduced (mean ± std over seeds), reported, Δ, a verdict against the
//! tolerance, whether it rests on assumptions, and the stage keys it came from.

use std::collections::BTreeMap;

use serde::Serialize;

/// Mean and spread of a value over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`None` with one seed).
    pub std: Option<f64>,
    /// Seeds.
    pub n: usize,
    /// 95% percentile-bootstrap interval of the mean, with at least 3 seeds.
    pub interval: Option<(f64, f64)>,
}

/// Bootstrap resamples of the mean.
const RESAMPLES: usize = 2000;

/// The 95% percentile-bootstrap interval of the mean of `values`, from a fixed seed so a
/// report renders the same twice.
fn bootstrap(values: &[f64]) -> (f64, f64) {
    let mut rng = rsfm_model::rng::SplitMix64::from_state(0x5EED);
    let n = values.len();
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            (0..n)
                .map(|_| values[(rng.next_u64() % n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((RESAMPLES - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

impl Stat {
    /// The statistics of `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        let interval = (n >= 3).then(|| bootstrap(values));
        Some(Stat {
            mean,
            std,
            n,
            interval,
        })
    }
}

/// The value of `metric` in percent from a stage's final metrics (stored as fractions). A
/// per-class F1 that the evaluation did not store comes from its IoU: F1 = 2·IoU / (1 + IoU),
/// exact for one class since both count the same TP, FP and FN.
pub fn percent(metrics: &BTreeMap<String, f64>, metric: &str) -> Option<f64> {
    if let Some(value) = metrics.get(metric) {
        return Some(100.0 * value);
    }
    let class = metric.strip_prefix("f1.")?;
    let iou = metrics.get(&format!("iou.{class}"))?;
    Some(100.0 * 2.0 * iou / (1.0 + iou))
}

/// A reported number and its source, as a cell shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reported {
    /// Value in percent.
    pub value: f64,
    /// Source, with its note.
    pub source: String,
}

/// Everything one comparison cell knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Reproduced value over seeds.
    pub reproduced: Option<Stat>,
    /// The reported value.
    pub reported: Option<Reported>,
    /// Tolerance in points; a verdict is given only with one (and at paper scale).
    pub tolerance: Option<f64>,
    /// Settings the reproduction rests on that are assumed or reconstructed.
    pub assumptions: Vec<String>,
    /// The stage keys (evaluations) it came from.
    pub keys: Vec<String>,
}

/// A cell as templates read it: every part preformatted, `—` for unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CellView {
    /// The whole cell on one line: `73.1 ± 0.2 · 73.60 · Δ −0.5 ✓ ⚠1`.
    pub summary: String,
    /// Reproduced value (`—` when not run).
    pub reproduced: String,
    /// Reported value (`—` when unknown).
    pub reported: String,
    /// Δ = reproduced − reported, or empty.
    pub delta: String,
    /// `✓` within tolerance, `✗` outside, empty without a verdict.
    pub verdict: String,
    /// Footnote number of the assumptions it rests on, or 0.
    pub note: usize,
    /// Tooltip: stage keys and the reported value's source.
    pub title: String,
    /// A plain text cell (sizes, other methods' values): only `summary` applies.
    pub plain: bool,
}

impl CellView {
    /// A cell holding one plain text.
    pub fn text(text: impl Into<String>) -> CellView {
        let text = text.into();
        CellView {
            summary: text.clone(),
            reproduced: text,
            plain: true,
            ..CellView::default()
        }
    }
}

/// Formats a percentage.
pub fn fmt(value: f64) -> String {
    minus(&format!("{value:.2}"))
}

/// Uses the typographic minus sign.
fn minus(text: &str) -> String {
    text.replace('-', "−")
}

impl Cell {
    /// Δ = reproduced mean − reported.
    pub fn delta(&self) -> Option<f64> {
        Some(self.reproduced?.mean - self.reported.as_ref()?.value)
    }

    /// Whether the reproduction is within tolerance (`None`: no verdict possible).
    pub fn verdict(&self) -> Option<bool> {
        Some(self.delta()?.abs() <= self.tolerance?)
    }

    /// The template view; `verdicts` false (smoke scale) shows no Δ and no verdict; `note` is
    /// the footnote number of its assumptions (0: none).
    pub fn view(&self, verdicts: bool, note: usize) -> CellView {
        let reproduced = match self.reproduced {
            None => "—".to_string(),
            Some(Stat {
                mean,
                std: Some(std),
                n,
                interval: Some((lo, hi)),
            }) => format!(
                "{} ± {} (n={n}, 95% CI {}–{})",
                fmt(mean),
                fmt(std),
                fmt(lo),
                fmt(hi)
            ),
            Some(Stat {
                mean,
                std: Some(std),
                n,
                ..
            }) => format!("{} ± {} (n={n})", fmt(mean), fmt(std)),
            Some(Stat { mean, .. }) => fmt(mean),
        };
        let reported = self
            .reported
            .as_ref()
            .map_or("—".to_string(), |r| fmt(r.value));
        let delta = match (verdicts, self.delta()) {
            (true, Some(delta)) => format!("Δ {}", minus(&format!("{delta:+.2}"))),
            _ => String::new(),
        };
        let verdict = match (verdicts, self.verdict()) {
            (true, Some(true)) => "✓",
            (true, Some(false)) => "✗",
            _ => "",
        }
        .to_string();
        let mut summary = format!("{reproduced} · {reported}");
        for part in [&delta, &verdict] {
            if !part.is_empty() {
                summary += " ";
                summary += part;
            }
        }
        if note > 0 {
            summary += &format!(" ⚠{note}");
        }
        let mut title = Vec::new();
        if !self.keys.is_empty() {
            title.push(format!("stage keys: {}", self.keys.join(", ")));
        }
        if let Some(r) = &self.reported {
            title.push(format!("reported: {}", r.source));
        }
        if let Some(tolerance) = self.tolerance.filter(|_| verdicts) {
            title.push(format!("tolerance ±{}", fmt(tolerance)));
        }
        CellView {
            summary,
            reproduced,
            reported,
            delta,
            verdict,
            note,
            title: title.join("; "),
            plain: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(values: &[f64], reported: Option<f64>, tolerance: Option<f64>) -> Cell {
        Cell {
            reproduced: Stat::of(values),
            reported: reported.map(|value| Reported {
                value,
                source: "paper".into(),
            }),
            tolerance,
            ..Cell::default()
        }
    }

    #[test]
    fn seeds_aggregate_as_mean_and_sample_std() {
        let stat = Stat::of(&[70.0, 72.0, 74.0]).unwrap();
        assert_eq!((stat.mean, stat.std, stat.n), (72.0, Some(2.0), 3));
        let (lo, hi) = stat.interval.unwrap();
        assert!(
            (70.0..72.0).contains(&lo) && (72.0..=74.0).contains(&hi) && lo < hi,
            "{lo} {hi}"
        );
        assert_eq!(
            Stat::of(&[70.0, 72.0]).unwrap().interval,
            None,
            "two seeds: no interval"
        );
        assert_eq!(Stat::of(&[1.0]).unwrap().std, None);
        assert_eq!(Stat::of(&[]), None);
    }

    #[test]
    fn verdicts_compare_the_delta_with_the_tolerance() {
        let view = cell(&[73.1], Some(73.6), Some(1.0)).view(true, 2);
        assert_eq!(view.summary, "73.10 · 73.60 Δ −0.50 ✓ ⚠2");
        let far = cell(&[70.0, 71.0], Some(73.6), Some(1.0)).view(true, 0);
        assert_eq!(far.verdict, "✗");
        assert!(
            far.reproduced.starts_with("70.50 ± 0.71"),
            "{}",
            far.reproduced
        );
    }

    #[test]
    fn smoke_scale_and_unknown_cells_show_no_verdict() {
        let smoke = cell(&[73.1], Some(73.6), Some(1.0)).view(false, 0);
        assert_eq!((smoke.delta.as_str(), smoke.verdict.as_str()), ("", ""));
        let unknown = cell(&[], None, Some(1.0)).view(true, 0);
        assert_eq!(unknown.summary, "— · —");
        let no_tolerance = cell(&[73.1], Some(73.6), None).view(true, 0);
        assert_eq!(no_tolerance.verdict, "");
    }

    #[test]
    fn per_class_f1_follows_from_iou() {
        let metrics = BTreeMap::from([("iou.car".to_string(), 0.5), ("oa".to_string(), 0.9)]);
        assert!((percent(&metrics, "f1.car").unwrap() - 100.0 * 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(percent(&metrics, "oa"), Some(90.0));
        assert_eq!(percent(&metrics, "f1.tree"), None);
    }
}
