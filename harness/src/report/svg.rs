//! Scatter-and-line plots as standalone SVG, written by hand: no JavaScript, no fonts to fetch,
//! every text escaped.

use std::fmt::Write as _;

use serde::Serialize;

/// A series of points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Hollow markers (reported values) instead of filled ones (reproduced).
    pub hollow: bool,
    /// Join the points with a line.
    pub line: bool,
}

/// A plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plot {
    /// Element id (`plot-scaling-dota`).
    pub id: String,
    /// Heading.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Series, drawn in order.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 520.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

/// Escapes text for XML and HTML (quotes included, so it is safe in attributes).
pub fn escape(text: &str) -> String {
    minijinja::HtmlEscape(text).to_string()
}

/// An axis: data range → pixels.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    from: f64,
    to: f64,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool, from: f64, to: f64) -> Axis {
        let values: Vec<f64> = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .map(|v| if log { v.log10() } else { v })
            .collect();
        let (mut lo, mut hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if log {
            (lo, hi) = (log_bound(lo, Bound::Below), log_bound(hi, Bound::Above));
        } else {
            let pad = if hi > lo { (hi - lo) * 0.08 } else { 0.5 };
            (lo, hi) = (lo - pad, hi + pad);
        }
        Axis {
            lo,
            hi,
            log,
            from,
            to,
        }
    }

    fn map(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }

    /// Tick positions in data units and their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            // Decades; on an axis of two decades or less also the half-decades (3 × 10^k),
            // so that even the shortest axis (half a decade) has both ends marked.
            let halves = self.hi - self.lo <= 2.0 + 1e-9;
            return (self.lo.floor() as i32..=self.hi.ceil() as i32)
                .flat_map(|e| [(e, 1.0), (e, 3.0)])
                .filter(|&(_, m)| halves || m == 1.0)
                .map(|(e, m)| m * 10f64.powi(e))
                .filter(|v| {
                    let at = v.log10();
                    at >= self.lo - 1e-9 && at <= self.hi + 1e-9
                })
                .map(|v| (v, super::tables::human(v)))
                .collect();
        }
        let raw = (self.hi - self.lo) / 8.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(magnitude * 10.0);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last)
            .map(|i| {
                let v = i as f64 * step;
                let decimals = if step >= 1.0 {
                    0
                } else {
                    (-step.log10().floor()) as usize
                };
                (v, format!("{v:.decimals$}"))
            })
            .collect()
    }
}

/// Which way [`log_bound`] rounds.
#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Below,
    Above,
}

/// Room kept between the outermost point and the end of a log axis, in decades (≈ 5%), so that
/// no marker sits on the frame.
const LOG_ROOM: f64 = 0.02;

/// The end of a log axis (in decades) for an outermost point at `10^at`: the nearest decade or
/// half-decade (1 or 3 × 10^k) below (or above) it with [`LOG_ROOM`] to spare, so at most about
/// half a decade of the axis is empty on either side.
fn log_bound(at: f64, bound: Bound) -> f64 {
    let halves = |e: f64| [e, e + 3f64.log10()];
    let decade = at.floor();
    let candidates = (-1..=2).flat_map(|d| halves(decade + f64::from(d) - 1.0));
    match bound {
        Bound::Below => candidates
            .filter(|&c| c <= at - LOG_ROOM)
            .fold(f64::NEG_INFINITY, f64::max),
        Bound::Above => candidates
            .filter(|&c| c >= at + LOG_ROOM)
            .fold(f64::INFINITY, f64::min),
    }
}

/// The plot as an `<svg>` element.
pub fn render(plot: &Plot) -> String {
    let points = plot.series.iter().flat_map(|s| s.points.iter());
    let x = Axis::new(points.clone().map(|p| p.0), plot.log_x, LEFT, WIDTH - RIGHT);
    let y = Axis::new(points.map(|p| p.1), false, HEIGHT - BOTTOM, TOP);
    let mut svg = format!(
        r#"<svg id="{}" class="plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        escape(&plot.id),
        escape(&plot.title)
    );
    let _ = write!(
        svg,
        r#"<title>{}</title><text x="{}" y="20" font-size="14" font-family="sans-serif" text-anchor="middle">{}</text>"#,
        escape(&plot.title),
        (LEFT + WIDTH - RIGHT) / 2.0,
        escape(&plot.title)
    );
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let _ = write!(
        svg,
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        x1 - x0,
        y0 - y1
    );
    let empty = plot.series.iter().all(|s| s.points.is_empty());
    let (x_ticks, y_ticks) = if empty {
        (Vec::new(), Vec::new())
    } else {
        (x.ticks(), y.ticks())
    };
    for (v, label) in x_ticks {
        let px = x.map(v);
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{y1}" stroke="#ddd"/><text x="{px:.1}" y="{}" font-size="11" font-family="sans-serif" text-anchor="middle">{}</text>"##,
            y0 + 16.0,
            escape(&label)
        );
    }
    for (v, label) in y_ticks {
        let py = y.map(v);
        let _ = write!(
            svg,
            r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" font-family="sans-serif" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            py + 4.0,
            escape(&label)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" font-size="12" font-family="sans-serif" text-anchor="middle">{}</text><text x="14" y="{}" font-size="12" font-family="sans-serif" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 12.0,
        escape(&plot.x_label),
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(&plot.y_label)
    );
    if empty {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="13" font-family="sans-serif" text-anchor="middle" fill="#888">no results yet</text>"##,
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0
        );
    }
    for (index, series) in plot.series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let mut sorted = series.points.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        if series.line && sorted.len() > 1 {
            let path: Vec<String> = sorted
                .iter()
                .map(|&(px, py)| format!("{:.1},{:.1}", x.map(px), y.map(py)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
                path.join(" ")
            );
        }
        for &(px, py) in &sorted {
            let _ = write!(
                svg,
                "{}",
                marker(x.map(px), y.map(py), colour, series.hollow)
            );
        }
        let ly = TOP + 14.0 + 18.0 * index as f64;
        let _ = write!(
            svg,
            r#"{}<text x="{}" y="{}" font-size="11" font-family="sans-serif">{}</text>"#,
            marker(x1 + 16.0, ly - 4.0, colour, series.hollow),
            x1 + 26.0,
            ly,
            escape(&series.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A filled circle (reproduced) or a hollow diamond (reported).
fn marker(x: f64, y: f64, colour: &str, hollow: bool) -> String {
    if hollow {
        format!(
            r#"<path d="M {x:.1} {:.1} L {:.1} {y:.1} L {x:.1} {:.1} L {:.1} {y:.1} Z" fill="white" stroke="{colour}" stroke-width="2"/>"#,
            y - 6.0,
            x + 6.0,
            y + 6.0,
            x - 6.0
        )
    } else {
        format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{colour}"/>"#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot(series: Vec<Series>) -> Plot {
        Plot {
            id: "plot-x".into(),
            title: "mAP <vs> size".into(),
            x_label: "parameters".into(),
            y_label: "mAP".into(),
            log_x: true,
            series,
        }
    }

    #[test]
    fn points_and_texts_land_in_the_svg_escaped() {
        let svg = render(&plot(vec![
            Series {
                label: "reproduced".into(),
                points: vec![(86e6, 60.0), (2.4e9, 70.0)],
                hollow: false,
                line: true,
            },
            Series {
                label: "reported & <b>".into(),
                points: vec![(2.4e9, 73.6)],
                hollow: true,
                line: false,
            },
        ]));
        assert_eq!(
            svg.matches("<circle").count(),
            3,
            "two points and a legend marker"
        );
        assert_eq!(
            svg.matches("<path").count(),
            2,
            "one hollow point and its legend marker"
        );
        assert!(svg.contains("reported &amp; &lt;b&gt;") && svg.contains("mAP &lt;vs&gt; size"));
        assert!(!svg.contains("<b>"));
        assert!(
            svg.contains(">1.00B<") && svg.contains(">100.00M<") && svg.contains(">3.00B<"),
            "log ticks by decade and half-decade"
        );
        assert!(!svg.contains(">10.00M<"), "no decade below the axis");
    }

    fn log_ticks(lo: f64, hi: f64) -> (Axis, Vec<String>) {
        let axis = Axis::new([lo, hi].into_iter(), true, 0.0, 100.0);
        let labels = axis.ticks().into_iter().map(|t| t.1).collect();
        (axis, labels)
    }

    #[test]
    fn a_log_axis_fits_the_smoke_models() {
        // vit-tiny (113.6K) to the largest smoke size: from 100K, not 10K, to 1M.
        let (axis, labels) = log_ticks(113.6e3, 840e3);
        assert!((axis.lo - 5.0).abs() < 1e-9 && (axis.hi - 6.0).abs() < 1e-9);
        assert_eq!(labels, ["100.0K", "300.0K", "1.00M"]);
        // The paper's sizes: 30M to 3B, half-decades marked.
        let (_, labels) = log_ticks(86e6, 2.4e9);
        assert_eq!(labels, ["30.00M", "100.00M", "300.00M", "1.00B", "3.00B"]);
        // A point on a decade keeps room: 100K starts the axis at 30K.
        let (axis, labels) = log_ticks(100e3, 100e3);
        assert!((axis.lo - 3e4f64.log10()).abs() < 1e-9, "{}", axis.lo);
        assert_eq!(labels, ["30.0K", "100.0K", "300.0K"]);
    }

    #[test]
    fn a_log_axis_never_has_a_decade_of_empty_space() {
        for (lo, hi) in [
            (1.0, 1.0),
            (9.9e4, 1.01e5),
            (113.6e3, 113.6e3),
            (2.9e5, 3.1e6),
            (1.0e6, 9.99e9),
            (86e6, 2.4e9),
        ] {
            let axis = Axis::new([lo, hi].into_iter(), true, 0.0, 100.0);
            let (below, above) = (lo.log10() - axis.lo, axis.hi - hi.log10());
            for (side, gap) in [("below", below), ("above", above)] {
                assert!(
                    (LOG_ROOM - 1e-9..0.6).contains(&gap),
                    "{lo}..{hi}: {gap} decades empty {side}"
                );
            }
            let ends = [axis.lo, axis.hi].map(|e| 10f64.powf(e - e.floor()));
            assert!(
                ends.iter().all(|m| (m - 1.0).abs() < 1e-6
                    || (m - 3.0).abs() < 1e-6
                    || (m - 10.0).abs() < 1e-6),
                "{lo}..{hi}: ends at a decade or half-decade: {ends:?}"
            );
            assert!(axis.ticks().len() >= 2, "{lo}..{hi}: both ends marked");
        }
    }

    #[test]
    fn an_empty_plot_says_so() {
        let svg = render(&plot(vec![]));
        assert!(svg.contains("no results yet") && svg.ends_with("</svg>"));
    }

    #[test]
    fn linear_ticks_are_round_numbers() {
        let axis = Axis::new([0.1, 1.0].into_iter(), false, 0.0, 100.0);
        let labels: Vec<String> = axis.ticks().into_iter().map(|t| t.1).collect();
        assert!(
            labels.contains(&"0.2".to_string()) && labels.contains(&"1.0".to_string()),
            "{labels:?}"
        );
    }
}
