//! The chart of a run, like the published one: per policy, the batch capacity Koordinator makes
//! available, the NMs' YARN capacity and what YARN really allocated, over the run.
//!
//! The SVG is written directly; the PNG is the same SVG rendered with resvg and an embedded
//! DejaVu Sans, so it looks the same on a machine without fonts.

use std::fmt::Write as _;

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

use super::cluster::PolicyRun;
use super::report::Report;

const WIDTH: f64 = 1100.0;
const PANEL_HEIGHT: f64 = 190.0;
const PANEL_GAP: f64 = 58.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 64.0;
const FONT: &str = "DejaVu Sans";

const AVAILABLE: &str = "#9e9e9e";
const CAPACITY: &str = "#1f5fbf";
const ALLOCATED: &str = "#e8710a";

/// Why the PNG could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The SVG did not parse (a bug).
    #[error("the chart SVG does not parse: {0}")]
    Svg(String),
    /// The picture could not be made or encoded.
    #[error("cannot render the chart as PNG: {0}")]
    Png(String),
}

fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

/// How many gridline steps divide `top` into round numbers (one significant digit).
fn grid_steps(top: f64) -> u32 {
    [5u32, 4, 6, 3, 2]
        .into_iter()
        .find(|steps| {
            let step = top / f64::from(*steps);
            let magnitude = 10f64.powf(step.log10().floor());
            let digits = step / magnitude;
            (digits - digits.round()).abs() < 1e-9
        })
        .unwrap_or(4)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as SVG text.
pub fn svg(report: &Report, runs: &[PolicyRun]) -> String {
    let panels = runs.len().max(1) as f64;
    let height = TOP + panels * (PANEL_HEIGHT + PANEL_GAP);
    let plot_width = WIDTH - LEFT - RIGHT;
    let duration = f64::from(report.parameters.duration_seconds).max(1.0);
    let y_max = nice_ceiling(
        runs.iter()
            .flat_map(|r| r.series.iter())
            .map(|p| {
                p.available_vcores
                    .max(p.capacity_vcores as f64)
                    .max(p.allocated_vcores as f64)
            })
            .fold(0.0, f64::max)
            * 1.05,
    );
    let hours = duration / 3600.0;
    let hour_step = [1.0, 2.0, 3.0, 4.0, 6.0, 12.0, 24.0, 48.0]
        .into_iter()
        .find(|step| hours / step <= 12.0)
        .unwrap_or(168.0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let p = &report.parameters;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="26" font-size="16" font-weight="bold">Batch capacity of {} co-located nodes ({} cores each), trace {}, seed {}</text>"#,
        p.nodes,
        p.node_cores,
        escape(&report.trace.provenance.name),
        p.seed
    );
    let legend = [
        (
            AVAILABLE,
            "available from Koordinator (CPU and memory, in vcores)",
        ),
        (CAPACITY, "NM YARN capacity"),
        (ALLOCATED, "YARN allocated"),
    ];
    let mut x = LEFT;
    for (color, label) in legend {
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="44" x2="{}" y2="44" stroke="{color}" stroke-width="3"/><text x="{}" y="48">{label}</text>"#,
            x + 24.0,
            x + 30.0
        );
        // About 7 px per character at 12 px DejaVu Sans, plus the swatch and a gap.
        x += 30.0 + 7.0 * label.len() as f64 + 28.0;
    }

    let geometry = Geometry {
        plot_width,
        duration,
        y_max,
        hours,
        hour_step,
    };
    for (index, run) in runs.iter().enumerate() {
        panel(&mut out, &geometry, report, run, index);
    }
    out.push_str("</svg>\n");
    out
}

/// The scales every panel shares.
struct Geometry {
    plot_width: f64,
    duration: f64,
    y_max: f64,
    hours: f64,
    hour_step: f64,
}

/// One policy's panel: its summary, grid, axes, the available area and the capacity and
/// allocation lines.
fn panel(out: &mut String, geometry: &Geometry, report: &Report, run: &PolicyRun, index: usize) {
    let Geometry {
        plot_width,
        duration,
        y_max,
        hours,
        hour_step,
    } = *geometry;
    let top = TOP + index as f64 * (PANEL_HEIGHT + PANEL_GAP) + 22.0;
    let bottom = top + PANEL_HEIGHT;
    let px = |second: f64| LEFT + second / duration * plot_width;
    let py = |value: f64| bottom - value / y_max * PANEL_HEIGHT;
    let summary = report
        .policies
        .iter()
        .find(|r| r.policy == run.policy.name())
        .map(|r| {
            format!(
                "{}: {:.0} vcore-h delivered, {} forced kills, {} NM evictions",
                r.policy, r.delivered_vcore_hours, r.forced_kills, r.nm_evictions
            )
        })
        .unwrap_or_else(|| run.policy.name().to_owned());
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
        top - 8.0,
        escape(&summary)
    );
    let steps = grid_steps(y_max);
    for tick in 0..=steps {
        let value = y_max * f64::from(tick) / f64::from(steps);
        let y = py(value);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e6e6e6"/><text x="{:.1}" y="{:.1}" text-anchor="end">{value:.0}</text>"##,
            LEFT + plot_width,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let mut hour = 0.0;
    while hour <= hours + 1e-9 {
        let x = px(hour * 3600.0);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{hour:.0}h</text>"##,
            bottom + 4.0,
            bottom + 17.0
        );
        hour += hour_step;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_width:.1}" height="{PANEL_HEIGHT}" fill="none" stroke="#555"/>"##
    );
    let mut area = format!("M{:.1},{bottom:.1}", px(0.0));
    for point in &run.series {
        let _ = write!(
            area,
            " L{:.1},{:.1}",
            px(f64::from(point.second)),
            py(point.available_vcores)
        );
    }
    if let Some(last) = run.series.last() {
        let _ = write!(area, " L{:.1},{bottom:.1} Z", px(f64::from(last.second)));
    }
    let _ = writeln!(
        out,
        r#"<path d="{area}" fill="{AVAILABLE}" fill-opacity="0.35" stroke="{AVAILABLE}" stroke-width="1"/>"#
    );
    for (color, value) in [(CAPACITY, 0usize), (ALLOCATED, 1usize)] {
        let points: Vec<String> = run
            .series
            .iter()
            .map(|point| {
                let v = if value == 0 {
                    point.capacity_vcores
                } else {
                    point.allocated_vcores
                };
                format!("{:.1},{:.1}", px(f64::from(point.second)), py(v as f64))
            })
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.4"/>"#,
            points.join(" ")
        );
    }
}

/// Renders SVG text as PNG bytes with the embedded font.
pub fn png(svg: &str) -> Result<Vec<u8>, ChartError> {
    let mut options = usvg::Options {
        font_family: FONT.to_owned(),
        ..usvg::Options::default()
    };
    let fonts = options.fontdb_mut();
    fonts.load_font_data(dejavu::sans::regular().to_vec());
    fonts.load_font_data(dejavu::sans::bold().to_vec());
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| ChartError::Svg(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = Pixmap::new(size.width(), size.height()).ok_or_else(|| {
        ChartError::Png(format!(
            "{}x{} is not a picture size",
            size.width(),
            size.height()
        ))
    })?;
    resvg::render(&tree, Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| ChartError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings_round_up_to_readable_values() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 8.0);
        assert_eq!(nice_ceiling(9.0), 10.0);
        assert_eq!(nice_ceiling(1234.0), 1500.0);
        assert_eq!(nice_ceiling(1207.0), 1500.0);
        assert_eq!(nice_ceiling(2300.0), 2500.0);
        assert_eq!(grid_steps(1500.0), 5);
        assert_eq!(grid_steps(2000.0), 5);
        assert_eq!(grid_steps(2500.0), 5);
        assert_eq!(grid_steps(1200.0), 4);
    }

    #[test]
    fn renders_text_with_the_embedded_font() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="100%" height="100%" fill="white"/><text x="4" y="28" font-family="DejaVu Sans" font-size="24">elastic</text></svg>"#;
        let bytes = png(svg).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let blank = png(r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="100%" height="100%" fill="white"/></svg>"#).unwrap();
        // Text made dark pixels, so the encoded picture differs from a blank one.
        assert_ne!(bytes, blank);
    }
}
