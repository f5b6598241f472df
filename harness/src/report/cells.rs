//! One table cell: reproduced (mean ± std over seeds), reported, Δ, a three-way verdict from the
//! interval of the reproduced mean against reported ± tolerance, whether it rests on
//! assumptions, and the stage keys it came from.

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
    /// 95% percentile-bootstrap interval of the mean, with at least 2 seeds.
    pub interval: Option<(f64, f64)>,
}

/// Bootstrap resamples of the mean (verdicts and claim checks alike).
pub(super) const RESAMPLES: usize = 2000;

/// How verdicts are reached, for captions.
pub const VERDICT_METHOD: &str = "Verdicts: the 95% percentile-bootstrap interval (2000 resamples) of the mean over seeds against reported ± tolerance: ✓ reproduced (inside), ✗ not reproduced (outside), ? inconclusive (straddling; with about how many more seeds would settle it at the observed spread, n·(half-width/distance to the nearer bound)², and their H100 GPU-hours from `rsfm plan --estimate`); one seed: single run, no verdict.";

/// The 95% percentile-bootstrap interval of the mean of `values`, from a fixed seed so a
/// report renders the same twice.
fn bootstrap(values: &[f64]) -> (f64, f64) {
    let mut rng = rsfm_model::rng::SplitMix64::from_state(0x5EED);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| resampled_mean(values, &mut rng))
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((RESAMPLES - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// The mean of `values.len()` draws from `values` with replacement: one bootstrap resample.
pub(super) fn resampled_mean(values: &[f64], rng: &mut rsfm_model::rng::SplitMix64) -> f64 {
    let n = values.len();
    (0..n)
        .map(|_| values[(rng.next_u64() % n as u64) as usize])
        .sum::<f64>()
        / n as f64
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
        let interval = (n >= 2).then(|| bootstrap(values));
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
    /// The split it was scored on (`val`, `test`, `test-server`).
    pub split: String,
    /// The settings it was scored under (`name=value` pairs), when known.
    pub protocol: Option<String>,
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
    /// Its runs differ in more than the seed (a matrix value, the code): what differs. Such a
    /// cell shows no mean, spread or verdict.
    pub mixed: Option<String>,
    /// The split its runs scored; a reported value of another split gets no Δ or verdict.
    pub split: Option<String>,
    /// The settings its runs scored under; a reported value scored under other settings gets
    /// no Δ or verdict.
    pub protocol: Option<String>,
    /// GPU-hours (H100, `plan --estimate`) of one more seed: its fine-tuning.
    pub seed_gpu_hours: Option<f64>,
}

/// The settings named in both `ours` and `theirs` (`name=value` pairs) that differ, as
/// `ap: voc07 here, voc12 reported`.
fn protocol_conflicts(ours: &str, theirs: &str) -> Vec<String> {
    let pairs = |text: &str| -> Vec<(String, String)> {
        text.split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let ours = pairs(ours);
    pairs(theirs)
        .into_iter()
        .filter_map(|(name, reported)| {
            let (_, here) = ours.iter().find(|(k, _)| *k == name)?;
            (*here != reported).then(|| format!("{name}: {here} here, {reported} reported"))
        })
        .collect()
}

/// What a cell's reproduction says about its reported value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The interval of the mean lies inside reported ± tolerance.
    Reproduced,
    /// The interval lies wholly outside it.
    NotReproduced,
    /// The interval straddles a bound; `more_seeds`: about how many more seeds would settle it
    /// at the observed spread (`None` when the mean sits on the bound).
    Inconclusive {
        /// Seeds to add.
        more_seeds: Option<usize>,
        /// What they cost: GPU-hours on an H100 (`rsfm plan --estimate`), when known.
        gpu_hours: Option<f64>,
    },
    /// One seed: no interval, no verdict.
    SingleRun,
}

impl Verdict {
    /// The mark and word a cell shows.
    pub fn label(&self) -> String {
        match self {
            Verdict::Reproduced => "✓ reproduced".into(),
            Verdict::NotReproduced => "✗ not reproduced".into(),
            Verdict::Inconclusive {
                more_seeds: Some(n),
                gpu_hours: Some(hours),
            } => format!("? inconclusive (≈{n} more seeds, ≈{hours:.0} H100 GPU-h)"),
            Verdict::Inconclusive {
                more_seeds: Some(n),
                gpu_hours: None,
            } => format!("? inconclusive (≈{n} more seeds)"),
            Verdict::Inconclusive {
                more_seeds: None, ..
            } => "? inconclusive".into(),
            Verdict::SingleRun => "single run".into(),
        }
    }

    /// A class for styling: `ok`, `bad`, `open`, `single`.
    pub fn class(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "ok",
            Verdict::NotReproduced => "bad",
            Verdict::Inconclusive { .. } => "open",
            Verdict::SingleRun => "single",
        }
    }
}

/// About how many seeds in all make the interval of a mean over `n` seeds, now `half_width`
/// wide on each side, narrower than `distance` (to the nearest bound of reported ± tolerance):
/// the half-width shrinks as 1/√n. `None` when the distance is 0.
pub fn seeds_to_settle(n: usize, half_width: f64, distance: f64) -> Option<usize> {
    if distance <= 0.0 || !distance.is_finite() {
        return None;
    }
    let needed = (n as f64 * (half_width / distance).powi(2)).ceil() as usize;
    Some(needed.max(n + 1))
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
    /// The verdict (`✓ reproduced`, `✗ not reproduced`, `? inconclusive (≈N more seeds)`,
    /// `single run`), empty without one.
    pub verdict: String,
    /// The verdict's class for styling (`ok`, `bad`, `open`, `single`), empty without one.
    pub verdict_class: String,
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
    /// Δ = reproduced mean − reported, when both scored the same split.
    pub fn delta(&self) -> Option<f64> {
        if self.unlike().is_some() {
            return None;
        }
        Some(self.reproduced?.mean - self.reported.as_ref()?.value)
    }

    /// `(reproduced split, reported split)` when they differ.
    pub fn other_split(&self) -> Option<(&str, &str)> {
        let ours = self.split.as_deref()?;
        let theirs = self.reported.as_ref()?.split.as_str();
        (ours != theirs).then_some((ours, theirs))
    }

    /// How the reproduction's scoring differs from the reported value's, if it does: another
    /// split, or a setting both name with different values.
    pub fn unlike(&self) -> Option<String> {
        if let Some((ours, theirs)) = self.other_split() {
            return Some(format!("{theirs}; this study: {ours}"));
        }
        let ours = self.protocol.as_deref()?;
        let theirs = self.reported.as_ref()?.protocol.as_deref()?;
        let conflicts = protocol_conflicts(ours, theirs);
        (!conflicts.is_empty()).then(|| conflicts.join(", "))
    }

    /// The verdict against reported ± tolerance (`None`: nothing to compare, or no tolerance).
    pub fn verdict(&self) -> Option<Verdict> {
        if self.unlike().is_some() {
            return None;
        }
        let stat = self.reproduced?;
        let reported = self.reported.as_ref()?.value;
        let tolerance = self.tolerance?;
        let Some((lo, hi)) = stat.interval else {
            return Some(Verdict::SingleRun);
        };
        let (low, high) = (reported - tolerance, reported + tolerance);
        Some(if lo >= low && hi <= high {
            Verdict::Reproduced
        } else if hi < low || lo > high {
            Verdict::NotReproduced
        } else {
            let half_width = (hi - lo) / 2.0;
            let distance = (stat.mean - low).abs().min((stat.mean - high).abs());
            let more_seeds = seeds_to_settle(stat.n, half_width, distance).map(|n| n - stat.n);
            Verdict::Inconclusive {
                more_seeds,
                gpu_hours: more_seeds
                    .zip(self.seed_gpu_hours)
                    .map(|(n, h)| n as f64 * h),
            }
        })
    }

    /// The template view; `verdicts` false (smoke scale) shows no Δ and no verdict; `note` is
    /// the footnote number of its assumptions (0: none).
    pub fn view(&self, verdicts: bool, note: usize) -> CellView {
        if let Some(mixed) = &self.mixed {
            let unmixed = Cell {
                reproduced: None,
                mixed: None,
                ..self.clone()
            };
            let mut view = unmixed.view(verdicts, note);
            view.reproduced = format!("not averaged: {mixed}");
            view.summary = view.summary.replacen('—', &view.reproduced, 1);
            return view;
        }
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
        let (verdict, verdict_class) = match (verdicts, self.verdict()) {
            (true, Some(verdict)) => (verdict.label(), verdict.class().to_string()),
            _ => (String::new(), String::new()),
        };
        let reported = match self.unlike() {
            Some(unlike) if self.reproduced.is_some() => {
                format!("{reported} ({unlike}, no verdict)")
            }
            _ => reported,
        };
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
            verdict_class,
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
                split: "test".into(),
                protocol: None,
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
        let (lo, hi) = Stat::of(&[70.0, 72.0]).unwrap().interval.unwrap();
        assert!(lo >= 70.0 && hi <= 72.0 && lo < hi, "two seeds: {lo} {hi}");
        assert_eq!(Stat::of(&[1.0]).unwrap().std, None);
        assert_eq!(Stat::of(&[]), None);
    }

    #[test]
    fn verdicts_come_from_the_interval_against_reported_plus_minus_tolerance() {
        let single = cell(&[73.1], Some(73.6), Some(1.0)).view(true, 2);
        assert_eq!(single.summary, "73.10 · 73.60 Δ −0.50 single run ⚠2");
        let inside = cell(&[73.4, 73.5, 73.6, 73.5], Some(73.6), Some(1.0));
        assert_eq!(inside.verdict(), Some(Verdict::Reproduced));
        assert_eq!(inside.view(true, 0).verdict, "✓ reproduced");
        let outside = cell(&[70.0, 70.4, 70.2], Some(73.6), Some(1.0));
        assert_eq!(outside.verdict(), Some(Verdict::NotReproduced));
        let view = outside.view(true, 0);
        assert!(
            view.reproduced.starts_with("70.20 ± 0.20 (n=3"),
            "{}",
            view.reproduced
        );
        let straddling = cell(&[71.8, 73.2, 72.1], Some(73.6), Some(1.0));
        assert!(
            matches!(
                straddling.verdict(),
                Some(Verdict::Inconclusive { more_seeds: Some(n), .. }) if n > 0
            ),
            "{:?}",
            straddling.verdict()
        );
        assert!(straddling
            .view(true, 0)
            .verdict
            .starts_with("? inconclusive (≈"));
    }

    /// Seeds drawn one by one from a normal distribution until the bootstrap verdict settles:
    /// how many there were, on average over `trials`.
    fn simulated_seeds(mean: f64, std: f64, start: usize, bound: f64, trials: usize) -> f64 {
        let mut rng = rsfm_model::rng::SplitMix64::from_state(7);
        let mut normal = move || {
            // Box–Muller from two uniforms in (0, 1].
            let u = |r: &mut rsfm_model::rng::SplitMix64| {
                ((r.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
            };
            let (a, b) = (u(&mut rng), u(&mut rng));
            (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
        };
        let mut total = 0usize;
        for _ in 0..trials {
            let mut values: Vec<f64> = (0..start).map(|_| mean + std * normal()).collect();
            loop {
                let (lo, hi) = bootstrap(&values);
                if hi < bound || lo > bound || values.len() >= 400 {
                    break;
                }
                values.push(mean + std * normal());
            }
            total += values.len();
        }
        total as f64 / trials as f64
    }

    #[test]
    fn the_seeds_estimate_is_within_a_factor_of_two_of_a_simulation() {
        // Seeds with spread 1.0 around 72.0 against 73.6 ± 1.0: the lower bound 72.6 is the
        // nearest, so the interval must shrink below 0.6 on each side.
        let (mean, std, bound): (f64, f64, f64) = (72.0, 1.0, 72.6);
        let start = 3;
        let half_width = 1.96 * std / (start as f64).sqrt();
        let estimate = seeds_to_settle(start, half_width, (mean - bound).abs()).unwrap() as f64;
        let simulated = simulated_seeds(mean, std, start, bound, 60);
        let ratio = estimate / simulated;
        assert!(
            (0.5..=2.0).contains(&ratio),
            "estimate {estimate} seeds, simulation {simulated:.1}"
        );
    }

    #[test]
    fn a_value_of_another_split_gets_no_delta_or_verdict() {
        let val = Cell {
            split: Some("val".into()),
            reported: Some(Reported {
                value: 58.69,
                source: "paper".into(),
                split: "test-server".into(),
                protocol: None,
            }),
            ..cell(&[57.0, 57.4, 57.2], None, Some(1.0))
        };
        let view = val.view(true, 0);
        assert_eq!((view.delta.as_str(), view.verdict.as_str()), ("", ""));
        assert!(
            view.summary
                .contains("58.69 (test-server; this study: val, no verdict)"),
            "{}",
            view.summary
        );
    }

    #[test]
    fn a_value_scored_under_other_settings_gets_no_verdict() {
        let reported = |protocol: &str| Reported {
            value: 73.6,
            source: "paper".into(),
            split: "test".into(),
            protocol: Some(protocol.into()),
        };
        let here = Cell {
            split: Some("test".into()),
            protocol: Some("ap=voc07 iou=0.5 protocol=mmrotate".into()),
            reported: Some(reported("ap=voc12")),
            ..cell(&[73.0, 73.4, 73.2], None, Some(1.0))
        };
        let view = here.view(true, 0);
        assert!(
            view.summary
                .contains("(ap: voc07 here, voc12 reported, no verdict)"),
            "{}",
            view.summary
        );
        let same = Cell {
            reported: Some(reported("ap=voc07")),
            ..here
        };
        assert_eq!(same.verdict(), Some(Verdict::Reproduced));
    }

    #[test]
    fn runs_that_differ_in_more_than_the_seed_are_not_averaged() {
        let mixed = Cell {
            mixed: Some("lr differs (0.001, 0.003)".into()),
            ..cell(&[25.0, 28.4], Some(30.0), Some(1.0))
        };
        let view = mixed.view(true, 0);
        assert_eq!(
            view.summary,
            "not averaged: lr differs (0.001, 0.003) · 30.00"
        );
        assert_eq!((view.delta.as_str(), view.verdict.as_str()), ("", ""));
        assert!(!view.summary.contains('±'));
    }

    #[test]
    fn smoke_scale_and_unknown_cells_show_no_verdict() {
        let smoke = cell(&[73.1, 73.3], Some(73.6), Some(1.0)).view(false, 0);
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
