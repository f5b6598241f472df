//! Average precision from score-sorted TP/FP flags, in the arithmetic of each reference.

use super::ApMetric;

/// What one sorted detection turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Matched a not-yet-covered ground truth.
    TruePositive,
    /// No match, or its best ground truth was already covered.
    FalsePositive,
    /// Matched an ignored (difficult) ground truth: neither TP nor FP, but it keeps its
    /// place in the cumulative sums, as in both references.
    Ignored,
}

/// The 11 recall thresholds `k·0.1` as `numpy.arange(0, 1.1, 0.1)` computes them in f64
/// (0.30000000000000004, 0.6000000000000001, 0.7000000000000001, …).
fn voc07_thresholds() -> impl Iterator<Item = f64> {
    (0..11).map(|k| k as f64 * 0.1)
}

fn cumulative(outcomes: &[Outcome]) -> (Vec<f64>, Vec<f64>) {
    let (mut tp, mut fp) = (0.0, 0.0);
    outcomes
        .iter()
        .map(|o| {
            match o {
                Outcome::TruePositive => tp += 1.0,
                Outcome::FalsePositive => fp += 1.0,
                Outcome::Ignored => {}
            }
            (tp, fp)
        })
        .unzip()
}

/// DOTA devkit `voc_eval` AP in f64: `rec = tp/npos` (NaN when `npos = 0`),
/// `prec = tp/max(tp+fp, ε64)`.
pub(super) fn devkit_ap(outcomes: &[Outcome], npos: usize, metric: ApMetric) -> f64 {
    let (tp, fp) = cumulative(outcomes);
    let npos = npos as f64;
    let rec: Vec<f64> = tp.iter().map(|t| t / npos).collect();
    let prec: Vec<f64> = tp
        .iter()
        .zip(&fp)
        .map(|(t, f)| t / (t + f).max(f64::EPSILON))
        .collect();
    match metric {
        ApMetric::Voc07 => {
            let mut ap = 0.0;
            for t in voc07_thresholds() {
                ap += max_precision_at(&rec, &prec, t) / 11.0;
            }
            ap
        }
        ApMetric::Voc12 => area_under_envelope(&rec, &prec),
    }
}

/// MMRotate `eval_rbbox_map` + mmdet `average_precision`: recall in f64
/// (`tp/max(num_gts, ε32)`), precision in f32, the 11-point sum accumulated in f32 and the
/// area computed in f64 and stored as f32.
pub(super) fn mmrotate_ap(outcomes: &[Outcome], num_gts: usize, metric: ApMetric) -> f32 {
    let (tp, fp) = cumulative(outcomes);
    let denom = (num_gts as f64).max(f64::from(f32::EPSILON));
    let rec: Vec<f64> = tp.iter().map(|t| t / denom).collect();
    let prec32: Vec<f32> = tp
        .iter()
        .zip(&fp)
        .map(|(&t, &f)| (t as f32) / (t as f32 + f as f32).max(f32::EPSILON))
        .collect();
    match metric {
        ApMetric::Voc07 => {
            let mut ap = 0.0f32;
            for t in voc07_thresholds() {
                let best = rec
                    .iter()
                    .zip(&prec32)
                    .filter(|(r, _)| **r >= t)
                    .map(|(_, p)| *p)
                    .reduce(f32::max);
                ap += best.unwrap_or(0.0);
            }
            ap / 11.0
        }
        ApMetric::Voc12 => {
            let prec: Vec<f64> = prec32.iter().map(|&p| f64::from(p)).collect();
            area_under_envelope(&rec, &prec) as f32
        }
    }
}

/// `max(prec[rec >= t])`, or 0 when no recall reaches `t` (NaN recalls never do).
fn max_precision_at(rec: &[f64], prec: &[f64], t: f64) -> f64 {
    rec.iter()
        .zip(prec)
        .filter(|(r, _)| **r >= t)
        .map(|(_, p)| *p)
        .reduce(f64::max)
        .unwrap_or(0.0)
}

/// VOC2010+ AP: sentinels `(0, 0)` and `(1, 0)`, precision envelope, then
/// `Σ Δrec·prec` where the recall changes. NaN recalls make the result NaN.
fn area_under_envelope(rec: &[f64], prec: &[f64]) -> f64 {
    let mut mrec = Vec::with_capacity(rec.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(rec);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(prec.len() + 2);
    mpre.push(0.0);
    mpre.extend_from_slice(prec);
    mpre.push(0.0);
    for i in (1..mpre.len()).rev() {
        mpre[i - 1] = numpy_maximum(mpre[i - 1], mpre[i]);
    }
    let mut ap = 0.0;
    for i in 0..mrec.len() - 1 {
        // `!=` is true for NaN, as in NumPy, so NaN recalls poison the sum.
        if mrec[i + 1] != mrec[i] {
            ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
        }
    }
    ap
}

/// `np.maximum`: NaN if either side is NaN.
fn numpy_maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome::*;
    use super::*;

    #[test]
    fn recall_of_exactly_three_tenths_misses_the_third_threshold() {
        // 3 TPs out of 10 GTs: recall 0.3 < 0.30000000000000004.
        let o = [TruePositive, TruePositive, TruePositive];
        let ap = devkit_ap(&o, 10, ApMetric::Voc07);
        assert!((ap - 3.0 / 11.0).abs() < 1e-15, "{ap}");
    }

    #[test]
    fn npos_zero_gives_zero_voc07_and_nan_voc12() {
        let o = [FalsePositive];
        assert_eq!(devkit_ap(&o, 0, ApMetric::Voc07), 0.0);
        assert!(devkit_ap(&o, 0, ApMetric::Voc12).is_nan());
        assert_eq!(mmrotate_ap(&o, 0, ApMetric::Voc12), 0.0);
    }

    #[test]
    fn perfect_ranking_scores_one() {
        let o = [TruePositive, TruePositive, FalsePositive];
        assert_eq!(devkit_ap(&o, 2, ApMetric::Voc12), 1.0);
        assert_eq!(mmrotate_ap(&o, 2, ApMetric::Voc07), 1.0);
        assert_eq!(mmrotate_ap(&[], 2, ApMetric::Voc07), 0.0);
    }
}
