//! Charts with plotters, as SVG strings and PNG files, in the bundled DejaVu Sans font.
//!
//! Invariants: no network I/O and no clock; the same input gives byte-identical SVG
//! (fixed size, fixed colours, fixed number format, bundled font); gaps in a series
//! are drawn as gaps, never interpolated.

use std::path::Path;
use std::sync::Once;

use chrono::{Duration, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::ReportError;

static FONT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/fonts/DejaVuSans.ttf"
));
pub const FONT_FAMILY: &str = "sans-serif";
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 540;

/// Register the bundled font (once per process) under the family plotters asks for.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FONT_FAMILY, style, FONT).is_err() {
                panic!("bundled font is not valid TrueType");
            }
        }
    });
}

/// Fixed palette: CN red, US blue, other series after.
pub const PALETTE: &[RGBColor] = &[
    RGBColor(200, 40, 40),
    RGBColor(30, 90, 200),
    RGBColor(40, 150, 70),
    RGBColor(230, 140, 20),
    RGBColor(130, 60, 170),
    RGBColor(100, 100, 100),
    RGBColor(20, 160, 170),
    RGBColor(170, 110, 60),
];

/// One line, optionally with a band (e.g. p25–p75), over dates.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(NaiveDate, f64)>,
    pub band: Vec<(NaiveDate, f64, f64)>,
}

/// A time-series chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub caption: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// A horizontal reference line (e.g. ratio 1.0).
    pub reference: Option<f64>,
    pub y_from_zero: bool,
    /// Spacing of the series in days (1 daily, 7 weekly); wider gaps are not joined.
    pub step_days: i64,
}

/// One group of bars (e.g. a model), one bar per series (e.g. bloc), each with a range.
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub label: String,
    /// (series index, value, low, high)
    pub bars: Vec<(usize, f64, f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub caption: String,
    pub y_label: String,
    pub series: Vec<(String, RGBColor)>,
    pub groups: Vec<BarGroup>,
}

/// A chart of either kind.
#[derive(Debug, Clone)]
pub enum Chart {
    Line(LineChart),
    Bar(BarChart),
}

fn day(d: NaiveDate) -> f64 {
    crate::week::epoch_days(d) as f64
}

fn date_of(x: f64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date") + Duration::days(x.round() as i64)
}

/// Split a series where consecutive points are more than `step_days` apart.
fn runs(points: &[(NaiveDate, f64)], step_days: i64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut prev: Option<NaiveDate> = None;
    for (d, v) in points.iter().filter(|p| p.1.is_finite()) {
        if prev.is_none_or(|p| (*d - p).num_days() > step_days) {
            out.push(Vec::new());
        }
        out.last_mut().expect("pushed above").push((day(*d), *v));
        prev = Some(*d);
    }
    out
}

fn err<E: std::fmt::Display>(name: &str) -> impl Fn(E) -> ReportError + '_ {
    move |e| ReportError::Chart {
        name: name.to_string(),
        message: e.to_string(),
    }
}

fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
    name: &str,
) -> Result<DrawingArea<DB, Shift>, ReportError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err(name))?;
    let (_, h) = root.dim_in_pixel();
    let (body, foot) = root.split_vertically(h - 28);
    foot.draw(&Text::new(
        caption.to_string(),
        (10, 6),
        (FONT_FAMILY, 13).into_font().color(&RGBColor(80, 80, 80)),
    ))
    .map_err(err(name))?;
    Ok(body)
}

fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &LineChart,
    name: &str,
) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    let body = frame(root, &c.caption, name)?;
    let all_x: Vec<f64> = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| day(p.0)))
        .collect();
    let all_y: Vec<f64> = c
        .lines
        .iter()
        .flat_map(|l| {
            l.points
                .iter()
                .map(|p| p.1)
                .chain(l.band.iter().flat_map(|b| [b.1, b.2]))
        })
        .chain(c.reference)
        .filter(|v| v.is_finite())
        .collect();
    let (x0, x1) = match (
        all_x.iter().cloned().reduce(f64::min),
        all_x.iter().cloned().reduce(f64::max),
    ) {
        (Some(a), Some(b)) if b > a => (a, b),
        (Some(a), _) => (a - 1.0, a + 1.0),
        _ => (0.0, 1.0),
    };
    let (mut y0, mut y1) = match (
        all_y.iter().cloned().reduce(f64::min),
        all_y.iter().cloned().reduce(f64::max),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => (0.0, 1.0),
    };
    if c.y_from_zero {
        y0 = 0.0;
    }
    let pad = ((y1 - y0) * 0.08).max(0.01);
    y1 += pad;
    if !c.y_from_zero {
        y0 -= pad;
    }
    let mut chart = ChartBuilder::on(&body)
        .caption(&c.title, (FONT_FAMILY, 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err(name))?;
    let fmt_x = |x: &f64| date_of(*x).format("%m-%d").to_string();
    let fmt_y = |y: &f64| format!("{y:.2}");
    chart
        .configure_mesh()
        .x_desc("date (UTC)")
        .y_desc(c.y_label.as_str())
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style((FONT_FAMILY, 13))
        .axis_desc_style((FONT_FAMILY, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err(name))?;
    if let Some(r) = c.reference {
        chart
            .draw_series(LineSeries::new(
                vec![(x0, r), (x1, r)],
                BLACK.stroke_width(1),
            ))
            .map_err(err(name))?
            .label(format!("{r:.1}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    for l in &c.lines {
        // Band: one polygon per run of consecutive days.
        let band_pts: Vec<(NaiveDate, f64)> = l.band.iter().map(|b| (b.0, b.1)).collect();
        for run in runs(&band_pts, c.step_days) {
            let days: Vec<f64> = run.iter().map(|p| p.0).collect();
            let mut poly: Vec<(f64, f64)> = Vec::new();
            for b in l.band.iter().filter(|b| days.contains(&day(b.0))) {
                poly.push((day(b.0), b.2));
            }
            for b in l.band.iter().rev().filter(|b| days.contains(&day(b.0))) {
                poly.push((day(b.0), b.1));
            }
            if poly.len() >= 4 {
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        poly,
                        l.color.mix(0.15).filled(),
                    )))
                    .map_err(err(name))?;
            }
        }
        let color = l.color;
        let mut first = true;
        for run in runs(&l.points, c.step_days) {
            let s = chart
                .draw_series(LineSeries::new(run.clone(), color.stroke_width(2)))
                .map_err(err(name))?;
            if first {
                s.label(l.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
                first = false;
            }
            chart
                .draw_series(run.iter().map(|p| Circle::new(*p, 2, color.filled())))
                .map_err(err(name))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT_FAMILY, 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err(name))?;
    body.present().map_err(err(name))?;
    Ok(())
}

fn draw_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &BarChart,
    name: &str,
) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    let body = frame(root, &c.caption, name)?;
    let n = c.groups.len().max(1);
    let k = c.series.len().max(1) as f64;
    let ymax = c
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().flat_map(|b| [b.1, b.3]))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        * 1.12;
    let ymax = if ymax > 0.0 { ymax } else { 1.0 };
    let labels: Vec<String> = c.groups.iter().map(|g| g.label.clone()).collect();
    let fmt_x = |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 1e-9 {
            labels.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let fmt_y = |y: &f64| format!("{y:.2}");
    let mut chart = ChartBuilder::on(&body)
        .caption(&c.title, (FONT_FAMILY, 17))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
        .map_err(err(name))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .y_desc(c.y_label.as_str())
        .label_style((FONT_FAMILY, 12))
        .axis_desc_style((FONT_FAMILY, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err(name))?;
    for (si, (label, color)) in c.series.iter().enumerate() {
        let color = *color;
        let w = 0.8 / k;
        let bars: Vec<(f64, f64, f64, f64, f64)> = c
            .groups
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| {
                g.bars
                    .iter()
                    .filter(move |b| b.0 == si)
                    .map(move |b| (gi as f64 + 0.1 + si as f64 * w, b.1, b.2, b.3, w))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|(x, v, _, _, w)| {
                Rectangle::new([(*x, 0.0), (*x + w * 0.9, *v)], color.mix(0.8).filled())
            }))
            .map_err(err(name))?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart
            .draw_series(
                bars.iter()
                    .filter(|b| b.2.is_finite() && b.3.is_finite())
                    .map(|(x, _, lo, hi, w)| {
                        let xm = x + w * 0.45;
                        PathElement::new(vec![(xm, *lo), (xm, *hi)], BLACK.stroke_width(1))
                    }),
            )
            .map_err(err(name))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT_FAMILY, 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err(name))?;
    body.present().map_err(err(name))?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &Chart,
    name: &str,
) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    match chart {
        Chart::Line(c) => draw_line(&root, c, name),
        Chart::Bar(c) => draw_bar(&root, c, name),
    }
}

/// Render a chart to an SVG string.
pub fn to_svg(chart: &Chart, name: &str) -> Result<String, ReportError> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(root, chart, name)?;
    }
    Ok(svg)
}

/// Render a chart to a PNG file (written to a temporary name, then renamed).
pub fn to_png(chart: &Chart, name: &str, path: &Path) -> Result<(), ReportError> {
    register_font();
    let tmp = path.with_file_name(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let root = BitMapBackend::new(&tmp, (WIDTH, HEIGHT)).into_drawing_area();
        draw(root, chart, name)?;
    }
    std::fs::rename(&tmp, path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}
