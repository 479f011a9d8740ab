//! The recall/QPS chart of `bench --index hnsw`, drawn as SVG in the manner of ann-benchmarks:
//! recall@10 on the x axis, queries per second (one thread) on a logarithmic y axis, one line
//! per index (ours and the peers from [`crate::peers`]) through its ef_search points, each point
//! labelled with its ef. Up and to the right is better.
//!
//! Drawn with `plotters`' SVG backend only (no bitmap backend, no font files): text is written
//! as SVG `<text>` elements that the viewer lays out, so no font is needed at build or run time.
//! The chart is rendered into a string first and written with one [`std::fs::write`], so a bad
//! path is an [`PlotError::Write`] naming it and no half-written file is left behind by drawing.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DynElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width × height of the chart in SVG user units (pixels).
const SIZE: (u32, u32) = (900, 600);
/// Caption of the x axis.
pub const X_CAPTION: &str = "recall@10";
/// Caption of the y axis.
pub const Y_CAPTION: &str = "queries/s, one thread (log scale)";
/// Font family of every text (resolved by the SVG viewer).
const FONT: &str = "sans-serif";
/// Series colours, in order (matplotlib's tab10, readable on white).
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
/// Number of distinct marker shapes (see [`marker`]).
const MARKERS: usize = 6;
/// Marker radius, pixels.
const MARKER_SIZE: i32 = 4;

/// One line of the chart: an index (ours or a peer) over its ef_search sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text, e.g. `"hnswlib (M=16, efC=200)"`.
    pub label: String,
    /// `(recall@10 in [0, 1], queries/s > 0, point label such as "ef=64")`, in any order: the
    /// line joins them in recall order.
    pub points: Vec<(f64, f64, String)>,
}

/// Why the chart could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// No series has a point (empty series are skipped, so this is "nothing at all to draw").
    #[error("nothing to plot: no series has a point")]
    NoPoints,
    /// A point's recall is outside [0, 1] or its QPS is not a positive finite number (the y axis
    /// is logarithmic).
    #[error("invalid point {point:?} in series {series:?}: recall {recall}, qps {qps}")]
    InvalidPoint {
        /// Label of the series.
        series: String,
        /// Label of the point.
        point: String,
        /// Its recall@10.
        recall: f64,
        /// Its queries per second.
        qps: f64,
    },
    /// `plotters` failed while drawing into the in-memory SVG.
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    /// The SVG could not be written to the file.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes the recall/QPS chart of `series` to `path` as an SVG file (created or replaced).
///
/// The x axis runs from the lowest recall less a margin to 1.0; the y axis (QPS, log scale)
/// from the lowest QPS ÷ 1.5 to the highest × 1.5. Each non-empty series gets a colour and a
/// marker shape, a line through its points in recall order, a legend entry, and its point
/// labels beside the points. Empty series are skipped (left out of the legend too).
///
/// # Errors
/// [`PlotError::NoPoints`] when no series has a point, [`PlotError::InvalidPoint`] for a recall
/// outside [0, 1] or a QPS that is not positive and finite, [`PlotError::Draw`] if plotters
/// fails, [`PlotError::Write`] if the file cannot be written.
pub fn write_recall_qps_svg(path: &Path, title: &str, series: &[Series]) -> Result<(), PlotError> {
    let svg = render_svg(title, series)?;
    std::fs::write(path, svg).map_err(|source| PlotError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Renders the chart of [`write_recall_qps_svg`] into an SVG document string.
///
/// # Errors
/// As [`write_recall_qps_svg`], less [`PlotError::Write`].
pub fn render_svg(title: &str, series: &[Series]) -> Result<String, PlotError> {
    let (x_range, y_range) = ranges(series)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, title, series, x_range, y_range).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// Validates every point and returns the axis ranges: recall (linear) and QPS (for log scale).
fn ranges(series: &[Series]) -> Result<(std::ops::Range<f64>, std::ops::Range<f64>), PlotError> {
    let (mut r_min, mut q_min, mut q_max) = (f64::INFINITY, f64::INFINITY, 0.0f64);
    for s in series {
        for (recall, qps, label) in &s.points {
            let bad_recall = !(0.0..=1.0).contains(recall);
            let bad_qps = !(qps.is_finite() && *qps > 0.0);
            if bad_recall || bad_qps {
                return Err(PlotError::InvalidPoint {
                    series: s.label.clone(),
                    point: label.clone(),
                    recall: *recall,
                    qps: *qps,
                });
            }
            r_min = r_min.min(*recall);
            q_min = q_min.min(*qps);
            q_max = q_max.max(*qps);
        }
    }
    if !r_min.is_finite() {
        return Err(PlotError::NoPoints);
    }
    // A margin of 5 % of the span (at least 0.02) keeps the lowest point off the axis.
    let margin = (0.05 * (1.0 - r_min)).max(0.02);
    let x_lo = (r_min - margin).max(0.0);
    Ok((x_lo..1.0, q_min / 1.5..q_max * 1.5))
}

/// Draws axes, series, point labels and legend on `root`.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_lo = x_range.start;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, y_range.log_scale())?;
    chart
        .configure_mesh()
        .x_desc(X_CAPTION)
        .y_desc(Y_CAPTION)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 13))
        .x_label_formatter(&|x| format!("{x:.2}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;

    for (i, s) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = s.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                colour.stroke_width(2),
            ))?
            .label(s.label.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (24, 0)], colour.stroke_width(2))
                    + marker(i, (12, 0), colour)
            });
        chart.draw_series(
            points
                .iter()
                .map(|p| EmptyElement::at((p.0, p.1)) + marker(i, (0, 0), colour)),
        )?;
        chart.draw_series(points.iter().map(|p| {
            // Labels of points near the right edge go to their left, the others to their right.
            let right_edge = p.0 > x_lo + 0.85 * (1.0 - x_lo);
            let (h_pos, dx) = if right_edge {
                (HPos::Right, -7)
            } else {
                (HPos::Left, 7)
            };
            let style = TextStyle::from((FONT, 12).into_font())
                .color(&colour)
                .pos(Pos::new(h_pos, VPos::Bottom));
            EmptyElement::at((p.0, p.1)) + Text::new(p.2.clone(), (dx, -3), style)
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The marker of series number `kind` at backend offset `at` (relative to the element's anchor):
/// filled circle, filled triangle, filled square, cross, hollow circle, hollow triangle, then
/// again.
fn marker<DB: DrawingBackend>(
    kind: usize,
    at: (i32, i32),
    colour: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let s = MARKER_SIZE;
    let (x, y) = at;
    match kind % MARKERS {
        0 => Circle::new(at, s, colour.filled()).into_dyn(),
        1 => TriangleMarker::new(at, s + 1, colour.filled()).into_dyn(),
        2 => Rectangle::new([(x - s, y - s), (x + s, y + s)], colour.filled()).into_dyn(),
        3 => Cross::new(at, s, colour.stroke_width(2)).into_dyn(),
        4 => Circle::new(at, s, colour.stroke_width(2)).into_dyn(),
        _ => TriangleMarker::new(at, s + 1, colour.stroke_width(2)).into_dyn(),
    }
}

/// Turns a plotters error (generic over the backend) into [`PlotError::Draw`].
fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(label: &str, base_qps: f64) -> Series {
        let points = [16, 32, 64, 128, 256]
            .iter()
            .enumerate()
            .map(|(i, ef)| {
                let recall = 0.80 + 0.045 * i as f64;
                (recall, base_qps / (1 << i) as f64, format!("ef={ef}"))
            })
            .collect();
        Series {
            label: label.into(),
            points,
        }
    }

    #[test]
    fn writes_an_svg_with_labels_and_captions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall_qps.svg");
        let series = [
            sweep("sqlite-vector hnsw", 20_000.0),
            sweep("hnswlib (M=16, efC=200)", 30_000.0),
            sweep("usearch <defaults> & bf16", 25_000.0),
        ];
        write_recall_qps_svg(&path, "debian-minilm, cos", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        for text in [
            "debian-minilm, cos",
            "sqlite-vector hnsw",
            "hnswlib (M=16, efC=200)",
            "usearch &lt;defaults&gt; &amp; bf16",
            X_CAPTION,
            Y_CAPTION,
            "ef=16",
            "ef=256",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        // One line per series (polyline) and its legend sample (path).
        assert!(svg.matches("<polyline").count() >= 3);
    }

    #[test]
    fn unwritable_path_is_a_write_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("chart.svg");
        let err = write_recall_qps_svg(&path, "t", &[sweep("a", 1000.0)]).unwrap_err();
        assert!(matches!(err, PlotError::Write { .. }), "{err}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn single_point_draws() {
        let series = [Series {
            label: "one".into(),
            points: vec![(1.0, 1234.0, "ef=64".into())],
        }];
        let svg = render_svg("single", &series).unwrap();
        assert!(svg.contains("ef=64") && svg.contains("one"));
    }

    #[test]
    fn empty_series_are_skipped_and_all_empty_is_an_error() {
        let empty = Series {
            label: "empty".into(),
            points: vec![],
        };
        let svg = render_svg("t", &[empty.clone(), sweep("full", 500.0)]).unwrap();
        assert!(svg.contains("full") && !svg.contains(">empty"));
        assert!(matches!(
            render_svg("t", &[empty]),
            Err(PlotError::NoPoints)
        ));
        assert!(matches!(render_svg("t", &[]), Err(PlotError::NoPoints)));
    }

    #[test]
    fn invalid_points_are_rejected() {
        for (recall, qps) in [(1.2, 10.0), (-0.1, 10.0), (0.5, 0.0), (0.5, f64::NAN)] {
            let s = Series {
                label: "bad".into(),
                points: vec![(recall, qps, "ef=1".into())],
            };
            let err = render_svg("t", &[s]).unwrap_err();
            assert!(matches!(err, PlotError::InvalidPoint { .. }), "{err}");
        }
    }
}
