//! Charts written as SVG with a fixed layout, and PNGs rendered from that same SVG
//! with resvg, so the two are identical. Text is DejaVu Sans (bundled): its metrics
//! lay out the labels, and the same font is the only one resvg can use.
//!
//! Invariants: no network I/O and no clock; the same input gives byte-identical SVG;
//! gaps in a series are drawn as gaps, never interpolated; every label is placed
//! from measured text widths, outside the plot area (a bar's value in its bar's own
//! row, past the bar and whisker), so tick labels, values, the legend and the
//! titles neither overlap nor leave the canvas ([`layout_issues`] checks it with
//! resvg's own text layout); an empty chart is an error, never an empty axis; every
//! series colour keeps 3:1 contrast against the page, the report-week shading and a
//! band on it, and text 4.5:1 ([`contrast_issues`] checks an SVG); colours one
//! chart draws together stay ΔE00 ≥ 10 apart to normal, protan, deutan and tritan
//! eyes ([`cvd`]'s tests measure it); the CN and US colours are the blocs' alone;
//! a chart of simulated data carries a badge; the legend names the reference line;
//! each SVG is an image with a title.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{Datelike, Duration, NaiveDate};
use resvg::{tiny_skia, usvg};

use crate::error::{RenderError, ReportError};

pub mod contrast;
pub mod cvd;
pub use contrast::{contrast_issues, contrast_ratio, luminance, parse_hex};

static FONT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/fonts/DejaVuSans.ttf"
));
pub const FONT_FAMILY: &str = "DejaVu Sans";
pub const WIDTH: u32 = 960;
/// Height of a line chart; a bar chart is as tall as its groups need.
pub const HEIGHT: u32 = 540;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RGBColor(pub u8, pub u8, pub u8);

impl RGBColor {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Okabe–Ito, a colour-blind-safe palette, with its light hues darkened (same hue,
/// less lightness) until each keeps 3:1 against the white page, the report-week
/// shading and a CN or US band on the shading: CN vermillion, US blue, then orange,
/// bluish green, reddish purple, sky blue (turned a little toward cyan, so it is not
/// read as the US blue), black and yellow (an olive once dark enough). The green
/// and the olive are darker still and the purple a little more saturated, so that
/// the model colours stay [`cvd::MIN_DE00`] apart to protan, deutan and tritan eyes
/// too (the olive from the orange, the green from the cyan, the purple from the
/// cyan); `cvd`'s tests measure it. Reference lines are grey and dashed, unlike any
/// series.
pub const PALETTE: &[RGBColor] = &[
    RGBColor(0xc1, 0x55, 0x00),
    RGBColor(0x00, 0x72, 0xb2),
    RGBColor(0xa3, 0x70, 0x00),
    RGBColor(0x00, 0x75, 0x54),
    RGBColor(0xc4, 0x43, 0x8e),
    RGBColor(0x00, 0x85, 0xa0),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x68, 0x5c, 0x15),
];
/// The palette's first colours are the blocs' (CN, US) and no other series'.
pub const BLOC_COLOURS: usize = 2;
/// A bloc other than CN and US: grey (4.5:1 on white), so it is never taken for one.
pub const OTHER_BLOC: RGBColor = RGBColor(0x76, 0x76, 0x76);

/// The colour of the `i`-th model (or any series that is not a bloc): the palette
/// past the bloc colours, in turn; a repeated colour gets a dash.
pub fn model_color(i: usize) -> RGBColor {
    let rest = &PALETTE[BLOC_COLOURS..];
    rest[i % rest.len()]
}

const BACKGROUND: &str = "#ffffff";
const INK: &str = "#222222";
const MUTED: &str = "#505050";
const GRID: &str = "#e4e4e4";
/// The report week: a solid light fill under the grid and the series.
const SHADE: &str = "#f0f0f0";
/// Opacity of a band (p25 to p75) in its line's colour.
const BAND_OPACITY: f64 = 0.16;
const REFERENCE: &str = "#6e6e6e";
/// Dash patterns given to a series whose colour an earlier series already uses.
const DASHES: [&str; 3] = ["7 4", "2 3", "9 3 2 3"];

/// One line, optionally with a band (e.g. p25–p75), over dates.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(NaiveDate, f64)>,
    pub band: Vec<(NaiveDate, f64, f64)>,
}

/// A horizontal reference line: its value, and what it means (e.g. "parity, CN =
/// US"); the legend names it "{name} ({value})".
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub value: f64,
    pub name: String,
}

/// A time-series chart.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    pub title: String,
    pub caption: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// A horizontal reference line (e.g. ratio 1.0), grey, dashed and named in the
    /// legend.
    pub reference: Option<Reference>,
    pub y_from_zero: bool,
    /// Spacing of the series in days (1 daily, 7 weekly); wider gaps are not joined.
    /// Weekly series get ISO-week labels on the x axis.
    pub step_days: i64,
    /// Days to shade (e.g. the report week), first and last inclusive.
    pub highlight: Option<(NaiveDate, NaiveDate)>,
    /// The y values are counts: whole-number ticks only.
    pub integer_y: bool,
}

/// One group of bars (e.g. a model), one bar per series (e.g. bloc), each with a range.
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub label: String,
    /// (series index, value, low, high)
    pub bars: Vec<(usize, f64, f64, f64)>,
}

/// Horizontal bars: one row of bars per group, values along the x axis.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub caption: String,
    /// The value axis's label.
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

impl Chart {
    /// True when there is nothing to draw (no finite point, no bar).
    pub fn is_empty(&self) -> bool {
        match self {
            Chart::Line(c) => !c
                .lines
                .iter()
                .any(|l| l.points.iter().any(|p| p.1.is_finite())),
            Chart::Bar(c) => bars_empty(c),
        }
    }
}

fn bars_empty(c: &BarChart) -> bool {
    !c.groups
        .iter()
        .any(|g| g.bars.iter().any(|b| b.1.is_finite()))
}

// ---------------------------------------------------------------- text metrics

fn face() -> &'static ttf_parser::Face<'static> {
    static FACE: OnceLock<ttf_parser::Face<'static>> = OnceLock::new();
    FACE.get_or_init(|| ttf_parser::Face::parse(FONT, 0).expect("bundled font is valid TrueType"))
}

/// Advance width of `s` in pixels at font size `size` (no kerning: never narrower
/// than the rendered text by more than a pixel or two).
pub fn text_width(s: &str, size: f64) -> f64 {
    let f = face();
    let upem = f64::from(f.units_per_em());
    let units: f64 = s
        .chars()
        .map(|c| {
            f.glyph_index(c)
                .and_then(|g| f.glyph_hor_advance(g))
                .map_or(upem * 0.6, f64::from)
        })
        .sum();
    units * size / upem
}

/// Greedy word wrap to lines no wider than `max_w`.
fn wrap(s: &str, size: f64, max_w: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        match lines.last_mut() {
            Some(l) if text_width(&format!("{l} {word}"), size) <= max_w => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------- SVG writer

struct Svg {
    w: f64,
    h: f64,
    body: String,
}

impl Svg {
    fn new(w: f64, h: f64) -> Self {
        Svg {
            w,
            h,
            body: String::new(),
        }
    }

    /// Text with its baseline at `y`; `anchor` is start, middle or end.
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: &str, fill: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">{}</text>"#,
            xml(s)
        );
    }

    /// Text turned a quarter left, centred on (`x`, `y`) along its length.
    fn text_up(&mut self, x: f64, y: f64, size: f64, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="middle" fill="{INK}" transform="rotate(-90 {x:.1} {y:.1})">{}</text>"#,
            xml(s)
        );
    }

    /// What `draw` writes, in a group of class `class` (e.g. a decoration, see
    /// [`contrast::DECOR`]).
    fn group(&mut self, class: &str, draw: impl FnOnce(&mut Svg)) {
        let _ = writeln!(self.body, r#"<g class="{class}">"#);
        draw(self);
        self.body.push_str("</g>\n");
    }

    fn polyline(&mut self, pts: &[(f64, f64)], stroke: &str, width: f64, dash: Option<&str>) {
        let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let dash = dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
            d.join(" ")
        );
    }

    fn polygon(&mut self, pts: &[(f64, f64)], fill: &str, opacity: f64) {
        let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            self.body,
            r#"<polygon points="{}" fill="{fill}" fill-opacity="{opacity}"/>"#,
            d.join(" ")
        );
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, opacity: f64) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}" fill-opacity="{opacity}"/>"#
        );
    }

    /// A box with an outline (a 1.5 px stroke) and slightly rounded corners.
    fn outlined(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#
        );
    }

    fn circle(&mut self, x: f64, y: f64, r: f64, fill: &str) {
        let _ = writeln!(
            self.body,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{fill}"/>"#
        );
    }

    /// The SVG document: an image (`role="img"`) whose `<title>` and `<desc>`, the
    /// chart's title and caption, are what a screen reader announces.
    fn finish(self, title: &str, caption: &str) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\">\n<title>{}</title>\n<desc>{}</desc>\n<rect class=\"background\" x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"{BACKGROUND}\"/>\n{}</svg>\n",
            xml(title),
            xml(caption),
            self.body,
            w = self.w,
            h = self.h
        )
    }
}

// ---------------------------------------------------------------- frame: title, legend, caption

/// A legend entry: a line (with its dash) or a filled box, and its label.
struct Key {
    label: String,
    color: String,
    dash: Option<&'static str>,
    boxed: bool,
}

const TITLE_SIZE: f64 = 17.0;
const LEGEND_SIZE: f64 = 13.0;
const CAPTION_SIZE: f64 = 12.0;
const TICK_SIZE: f64 = 12.0;
const DESC_SIZE: f64 = 13.0;

/// A chart title of simulated data starts so: `report::text::short_label` writes
/// it, and the badge is drawn where it is found.
pub(crate) const SIMULATED_TITLE: &str = "SIMULATED:";
/// The badge a chart of simulated data carries, so that the chart alone (a PNG cut
/// out of the page) still says so; amber like the page's simulated-data banner.
const BADGE: &str = "SIMULATED DATA";
const BADGE_SIZE: f64 = 12.0;
const BADGE_FILL: &str = "#fff3cd";
const BADGE_EDGE: &str = "#8a6100";

/// The title, wrapped, and the badge when it marks simulated data; returns the
/// baseline of the title's last line.
fn draw_title(svg: &mut Svg, title: &str) -> f64 {
    let badge_w = match title.starts_with(SIMULATED_TITLE) {
        true => text_width(BADGE, BADGE_SIZE) + 16.0,
        false => 0.0,
    };
    if badge_w > 0.0 {
        badge(svg, badge_w);
    }
    let room = svg.w - 20.0 - if badge_w > 0.0 { badge_w + 12.0 } else { 0.0 };
    let mut y = 8.0;
    for line in wrap(title, TITLE_SIZE, room) {
        y += 20.0;
        svg.text(10.0, y, TITLE_SIZE, "start", INK, &line);
    }
    y
}

/// The simulated-data badge at the top right, beside the title's first line: in the
/// header, above the plot, so it hides no grid line, point or legend key.
fn badge(svg: &mut Svg, w: f64) {
    let x = svg.w - 10.0 - w;
    svg.group("badge", |svg| {
        svg.outlined(x, 11.0, w, 23.0, BADGE_FILL, BADGE_EDGE);
        svg.text(x + w / 2.0, 27.0, BADGE_SIZE, "middle", INK, BADGE);
    });
}

/// Lines of the caption, wrapped to the canvas.
fn caption_lines(caption: &str, w: f64) -> Vec<String> {
    wrap(caption, CAPTION_SIZE, w - 20.0)
}

/// Height the caption takes at the bottom.
fn caption_height(caption: &str, w: f64) -> f64 {
    caption_lines(caption, w).len() as f64 * 15.0 + 8.0
}

/// Draw the title, the legend (in rows, above the plot) and the caption; returns the
/// y range left for the plot.
fn frame(svg: &mut Svg, title: &str, caption: &str, keys: &[Key]) -> (f64, f64) {
    let (w, h) = (svg.w, svg.h);
    let mut y = draw_title(svg, title) + 8.0;
    let mut x = 10.0;
    let mut row_used = false;
    for k in keys {
        let item_w = 26.0 + text_width(&k.label, LEGEND_SIZE) + 18.0;
        if row_used && x + item_w > w - 10.0 {
            x = 10.0;
            y += 18.0;
        }
        let mid = y + 9.0;
        if k.boxed {
            svg.rect(x, mid - 5.0, 18.0, 10.0, &k.color, 1.0);
        } else {
            svg.polyline(&[(x, mid), (x + 20.0, mid)], &k.color, 2.5, k.dash);
        }
        svg.text(x + 26.0, mid + 4.5, LEGEND_SIZE, "start", INK, &k.label);
        x += item_w;
        row_used = true;
    }
    if row_used {
        y += 18.0;
    }
    let lines = caption_lines(caption, w);
    for (i, line) in lines.iter().enumerate() {
        let base = h - 8.0 - (lines.len() - 1 - i) as f64 * 15.0;
        svg.text(10.0, base, CAPTION_SIZE, "start", MUTED, line);
    }
    (y + 10.0, h - caption_height(caption, w))
}

// ---------------------------------------------------------------- ticks

/// Evenly spaced "nice" ticks covering `lo..hi` (at most about `max_n`), and the
/// decimals that tell each apart. Whole numbers only when `integer`.
fn nice_ticks(lo: f64, hi: f64, integer: bool, max_n: usize) -> (Vec<f64>, usize) {
    let span = if hi > lo {
        hi - lo
    } else {
        (hi.abs() * 0.1).max(1.0)
    };
    let raw = span / max_n.max(2) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= max_n.max(2) as f64)
        .unwrap_or(10.0 * mag);
    if integer {
        step = step.max(1.0).round();
    }
    let first = (lo / step + 1e-9).floor();
    let last = (hi / step - 1e-9).ceil().max(first + 1.0);
    let ticks = (first as i64..=last as i64)
        .map(|i| i as f64 * step)
        .collect();
    let decimals = (0..=6)
        .find(|d| {
            let scaled = step * 10f64.powi(*d);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(6) as usize;
    (ticks, decimals)
}

/// How an x tick is labelled.
#[derive(Clone, Copy)]
enum DateLabel {
    MonthDay,
    Full,
    IsoWeek,
    Month,
    Year,
}

impl DateLabel {
    fn fmt(self, d: NaiveDate) -> String {
        match self {
            DateLabel::MonthDay => d.format("%m-%d").to_string(),
            DateLabel::Full => d.format("%Y-%m-%d").to_string(),
            DateLabel::IsoWeek => {
                let w = d.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            DateLabel::Month => d.format("%Y-%m").to_string(),
            DateLabel::Year => d.format("%Y").to_string(),
        }
    }
}

/// The first day of every `k`-th month from `start`'s month up to `b`, kept from `a`.
fn months(start: NaiveDate, a: NaiveDate, b: NaiveDate, k: u32) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut m = start.with_day(1);
    while let Some(d) = m.filter(|d| *d <= b) {
        if d >= a {
            out.push(d);
        }
        m = d.checked_add_months(chrono::Months::new(k));
    }
    out
}

/// Candidate tick sets for dates `a..=b`, finest first.
fn date_candidates(a: NaiveDate, b: NaiveDate, weekly: bool) -> Vec<(Vec<NaiveDate>, DateLabel)> {
    let day_label = if a.year() == b.year() {
        DateLabel::MonthDay
    } else {
        DateLabel::Full
    };
    let every = |start: NaiveDate, step: i64| -> Vec<NaiveDate> {
        let n = (b - start).num_days().max(0) / step;
        (0..=n).map(|i| start + Duration::days(i * step)).collect()
    };
    let monday = a + Duration::days((7 - a.weekday().num_days_from_monday() as i64) % 7);
    let mut out = Vec::new();
    if !weekly {
        for s in [1, 2, 3, 4] {
            out.push((every(a, s), day_label));
        }
    }
    let week_label = if weekly {
        DateLabel::IsoWeek
    } else {
        day_label
    };
    for k in [1, 2, 4, 8] {
        out.push((every(monday, 7 * k), week_label));
    }
    for k in [1, 2, 3, 6, 12, 24, 60, 120] {
        let label = if k >= 12 {
            DateLabel::Year
        } else {
            DateLabel::Month
        };
        let start = if k >= 12 {
            NaiveDate::from_ymd_opt(a.year(), 1, 1).expect("1 January")
        } else {
            a
        };
        out.push((months(start, a, b, k), label));
    }
    out
}

/// The x ticks for dates `a..=b` in `plot_w` pixels, and the axis description.
fn date_ticks(
    a: NaiveDate,
    b: NaiveDate,
    weekly: bool,
    plot_w: f64,
) -> (Vec<(NaiveDate, String)>, String) {
    let cands = date_candidates(a, b, weekly);
    let fits = |ticks: &[NaiveDate], label: DateLabel| {
        let widest = ticks
            .iter()
            .map(|d| text_width(&label.fmt(*d), TICK_SIZE))
            .fold(0.0, f64::max);
        ticks.len() as f64 * (widest + 14.0) <= plot_w
    };
    let (ticks, label) = cands
        .iter()
        .find(|(t, l)| !t.is_empty() && fits(t, *l))
        .or_else(|| cands.iter().rev().find(|(t, _)| !t.is_empty()))
        .cloned()
        .unwrap_or((vec![a], DateLabel::Full));
    let desc = match label {
        DateLabel::IsoWeek => "ISO week (UTC, label at its Monday)".to_string(),
        DateLabel::MonthDay => format!("date (UTC), {}", a.year()),
        _ => "date (UTC)".to_string(),
    };
    (ticks.iter().map(|d| (*d, label.fmt(*d))).collect(), desc)
}

// ---------------------------------------------------------------- line chart

fn day(d: NaiveDate) -> f64 {
    f64::from(crate::week::epoch_days(d))
}

/// Split a series where consecutive points are more than `step_days` apart.
fn runs(points: &[(NaiveDate, f64)], step_days: i64) -> Vec<Vec<(NaiveDate, f64)>> {
    let mut out: Vec<Vec<(NaiveDate, f64)>> = Vec::new();
    let mut prev: Option<NaiveDate> = None;
    for (d, v) in points.iter().filter(|p| p.1.is_finite()) {
        if prev.is_none_or(|p| (*d - p).num_days() > step_days) {
            out.push(Vec::new());
        }
        out.last_mut().expect("pushed above").push((*d, *v));
        prev = Some(*d);
    }
    out
}

/// A linear map from data to pixels.
#[derive(Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        self.p0 + (v - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }
}

/// Dash of each line: none for the first use of a colour, a pattern for repeats.
fn dashes(lines: &[Line]) -> Vec<Option<&'static str>> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let before = lines[..i].iter().filter(|o| o.color == l.color).count();
            (before > 0).then(|| DASHES[(before - 1) % DASHES.len()])
        })
        .collect()
}

fn line_keys(c: &LineChart) -> Vec<Key> {
    let mut keys: Vec<Key> = c
        .lines
        .iter()
        .zip(dashes(&c.lines))
        .filter(|(l, _)| l.points.iter().any(|p| p.1.is_finite()))
        .map(|(l, dash)| Key {
            label: l.label.clone(),
            color: l.color.hex(),
            dash,
            boxed: false,
        })
        .collect();
    if let Some(r) = &c.reference {
        keys.push(Key {
            label: format!("{} ({})", r.name, trim_num(r.value)),
            color: REFERENCE.into(),
            dash: Some("5 4"),
            boxed: false,
        });
    }
    keys
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The y range of a line chart's data, bands and reference.
fn y_extent(c: &LineChart) -> (f64, f64) {
    let ys: Vec<f64> = c
        .lines
        .iter()
        .flat_map(|l| {
            l.points
                .iter()
                .map(|p| p.1)
                .chain(l.band.iter().flat_map(|b| [b.1, b.2]))
        })
        .chain(c.reference.as_ref().map(|r| r.value))
        .filter(|v| v.is_finite())
        .collect();
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.002).max(1e-9);
    if c.y_from_zero {
        (0.0_f64.min(lo), hi + pad)
    } else {
        (lo - pad, hi + pad)
    }
}

/// The first and last dates of a line chart (points and highlight).
fn x_extent(c: &LineChart) -> Option<(NaiveDate, NaiveDate)> {
    let dates: Vec<NaiveDate> = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().filter(|p| p.1.is_finite()).map(|p| p.0))
        .collect();
    let (mut a, mut b) = (dates.iter().min().copied(), dates.iter().max().copied());
    if let Some((h0, h1)) = c.highlight {
        a = a.map(|a| a.min(h0));
        b = b.map(|b| b.max(h1));
    }
    a.zip(b)
}

fn draw_line(c: &LineChart) -> Option<String> {
    let (a, b) = x_extent(c)?;
    let mut svg = Svg::new(f64::from(WIDTH), f64::from(HEIGHT));
    let (top, bottom) = frame(&mut svg, &c.title, &c.caption, &line_keys(c));
    let (lo, hi) = y_extent(c);
    let plot_top = top + 4.0;
    let plot_bottom = bottom - 44.0;
    let max_y = ((plot_bottom - plot_top) / 36.0).floor().max(2.0) as usize;
    let (yt, dec) = nice_ticks(lo, hi, c.integer_y, max_y);
    let ylabels: Vec<String> = yt.iter().map(|v| format!("{v:.dec$}")).collect();
    let label_w = ylabels
        .iter()
        .map(|s| text_width(s, TICK_SIZE))
        .fold(0.0, f64::max);
    let left = 10.0 + 18.0 + 8.0 + label_w + 6.0;
    let half = (c.step_days.max(1) as f64) / 2.0;
    let est_w = f64::from(WIDTH) - left - 50.0;
    let (xt, xdesc) = date_ticks(a, b, c.step_days >= 7, est_w);
    let last_half = xt.last().map_or(0.0, |t| text_width(&t.1, TICK_SIZE) / 2.0);
    let right = f64::from(WIDTH) - (last_half + 6.0).max(24.0);
    let xs = Scale {
        d0: day(a) - half,
        d1: day(b) + half,
        p0: left,
        p1: right,
    };
    let ys = Scale {
        d0: yt[0],
        d1: *yt.last().expect("at least two ticks"),
        p0: plot_bottom,
        p1: plot_top,
    };
    if let Some((h0, h1)) = c.highlight {
        let (x0, x1) = (xs.at(day(h0) - 0.5), xs.at(day(h1) + 0.5));
        let (y0, y1) = (plot_top, plot_bottom - plot_top);
        svg.group("shade", |s| s.rect(x0, y0, x1 - x0, y1, SHADE, 1.0));
    }
    grid(&mut svg, &xs, &ys, &yt, &xt);
    if let Some(r) = &c.reference {
        let y = ys.at(r.value);
        svg.polyline(&[(left, y), (right, y)], REFERENCE, 1.5, Some("5 4"));
    }
    series(&mut svg, c, &xs, &ys);
    axes(&mut svg, &xs, &ys, &yt, &ylabels, &xt);
    svg.text(
        (left + right) / 2.0,
        plot_bottom + 38.0,
        DESC_SIZE,
        "middle",
        INK,
        &xdesc,
    );
    svg.text_up(22.0, (plot_top + plot_bottom) / 2.0, DESC_SIZE, &c.y_label);
    Some(svg.finish(&c.title, &c.caption))
}

fn grid(svg: &mut Svg, xs: &Scale, ys: &Scale, yt: &[f64], xt: &[(NaiveDate, String)]) {
    svg.group("grid", |svg| {
        for v in yt {
            let y = ys.at(*v);
            svg.polyline(&[(xs.p0, y), (xs.p1, y)], GRID, 1.0, None);
        }
        for (d, _) in xt {
            let x = xs.at(day(*d));
            svg.polyline(&[(x, ys.p0), (x, ys.p1)], GRID, 1.0, None);
        }
    });
}

fn axes(
    svg: &mut Svg,
    xs: &Scale,
    ys: &Scale,
    yt: &[f64],
    ylabels: &[String],
    xt: &[(NaiveDate, String)],
) {
    svg.polyline(
        &[(xs.p0, ys.p1), (xs.p0, ys.p0), (xs.p1, ys.p0)],
        INK,
        1.0,
        None,
    );
    for (v, s) in yt.iter().zip(ylabels) {
        let y = ys.at(*v);
        svg.polyline(&[(xs.p0 - 4.0, y), (xs.p0, y)], INK, 1.0, None);
        svg.text(xs.p0 - 7.0, y + 4.0, TICK_SIZE, "end", INK, s);
    }
    for (d, s) in xt {
        let x = xs.at(day(*d));
        svg.polyline(&[(x, ys.p0), (x, ys.p0 + 4.0)], INK, 1.0, None);
        svg.text(x, ys.p0 + 18.0, TICK_SIZE, "middle", INK, s);
    }
}

fn series(svg: &mut Svg, c: &LineChart, xs: &Scale, ys: &Scale) {
    svg.group("band", |svg| bands(svg, c, xs, ys));
    for (l, dash) in c.lines.iter().zip(dashes(&c.lines)) {
        let color = l.color.hex();
        for run in runs(&l.points, c.step_days) {
            let pts: Vec<(f64, f64)> = run.iter().map(|p| px(xs, ys, p.0, p.1)).collect();
            if pts.len() > 1 {
                svg.polyline(&pts, &color, 2.0, dash);
            }
            for (x, y) in pts {
                svg.circle(x, y, 2.5, &color);
            }
        }
    }
}

fn px(xs: &Scale, ys: &Scale, d: NaiveDate, v: f64) -> (f64, f64) {
    (xs.at(day(d)), ys.at(v))
}

/// The bands (e.g. p25 to p75) of a line chart, translucent in their line's colour.
fn bands(svg: &mut Svg, c: &LineChart, xs: &Scale, ys: &Scale) {
    let px = |d: NaiveDate, v: f64| px(xs, ys, d, v);
    for l in &c.lines {
        let band_pts: Vec<(NaiveDate, f64)> = l.band.iter().map(|b| (b.0, b.1)).collect();
        for run in runs(&band_pts, c.step_days) {
            let inside = |b: &&(NaiveDate, f64, f64)| run.iter().any(|p| p.0 == b.0);
            let mut poly: Vec<(f64, f64)> =
                l.band.iter().filter(inside).map(|b| px(b.0, b.2)).collect();
            poly.extend(l.band.iter().rev().filter(inside).map(|b| px(b.0, b.1)));
            if poly.len() >= 4 {
                svg.polygon(&poly, &l.color.hex(), BAND_OPACITY);
            }
        }
    }
}

// ---------------------------------------------------------------- bar chart

const BAR_H: f64 = 11.0;
/// A bar's value label: its size, and its gap from the bar's (or whisker's) end.
const VALUE_SIZE: f64 = 11.0;
const VALUE_GAP: f64 = 5.0;
/// The least height of a bar chart, in pixels.
pub const MIN_BAR_HEIGHT: f64 = 240.0;
const GROUP_GAP: f64 = 12.0;

/// The series that have at least one bar, in series order.
fn used_series(c: &BarChart) -> Vec<usize> {
    (0..c.series.len())
        .filter(|i| c.groups.iter().any(|g| g.bars.iter().any(|b| b.0 == *i)))
        .collect()
}

fn draw_bar(c: &BarChart) -> Option<String> {
    if bars_empty(c) {
        return None;
    }
    let used = used_series(c);
    let keys: Vec<Key> = used
        .iter()
        .map(|i| Key {
            label: c.series[*i].0.clone(),
            color: c.series[*i].1.hex(),
            dash: None,
            boxed: true,
        })
        .collect();
    let group_h = used.len() as f64 * (BAR_H + 2.0) + GROUP_GAP;
    let w = f64::from(WIDTH);
    // Header height does not depend on the canvas height: measure it on a scratch canvas.
    let (top, _) = frame(&mut Svg::new(w, 1000.0), &c.title, &c.caption, &keys);
    let needed = top + 4.0 + c.groups.len() as f64 * group_h + 44.0 + caption_height(&c.caption, w);
    // As tall as the groups need: no empty band under a few bars.
    let h = needed.max(MIN_BAR_HEIGHT).ceil();
    let mut svg = Svg::new(w, h);
    let (top, bottom) = frame(&mut svg, &c.title, &c.caption, &keys);
    let label_w = c
        .groups
        .iter()
        .map(|g| text_width(&g.label, TICK_SIZE))
        .fold(0.0, f64::max);
    let left = 10.0 + label_w + 10.0;
    let vmax = bar_max(c);
    let max_x = ((w - left - 40.0) / 70.0).floor().max(2.0) as usize;
    let (xt, dec) = nice_ticks(0.0, vmax * 1.04, false, max_x);
    let xlabels: Vec<String> = xt.iter().map(|v| format!("{v:.dec$}")).collect();
    let last_half = text_width(xlabels.last().expect("two ticks"), TICK_SIZE) / 2.0;
    let plot_bottom = bottom - 44.0;
    // Room on the right for the longest bar's value label.
    let value_room = VALUE_GAP + widest_value(c, vmax) + 8.0;
    let xs = Scale {
        d0: 0.0,
        d1: *xt.last().expect("two ticks"),
        p0: left,
        p1: w - (last_half + 6.0).max(24.0).max(value_room),
    };
    svg.group("grid", |svg| {
        for v in &xt {
            let x = xs.at(*v);
            svg.polyline(&[(x, top + 4.0), (x, plot_bottom)], GRID, 1.0, None);
        }
    });
    for (v, s) in xt.iter().zip(&xlabels) {
        let x = xs.at(*v);
        svg.polyline(&[(x, plot_bottom), (x, plot_bottom + 4.0)], INK, 1.0, None);
        svg.text(x, plot_bottom + 18.0, TICK_SIZE, "middle", INK, s);
    }
    for (gi, g) in c.groups.iter().enumerate() {
        let y0 = top + 4.0 + gi as f64 * group_h + GROUP_GAP / 2.0;
        bar_group(&mut svg, c, g, &used, &xs, y0, vmax);
    }
    svg.polyline(
        &[(left, top + 4.0), (left, plot_bottom), (xs.p1, plot_bottom)],
        INK,
        1.0,
        None,
    );
    svg.text(
        (left + xs.p1) / 2.0,
        plot_bottom + 38.0,
        DESC_SIZE,
        "middle",
        INK,
        &c.y_label,
    );
    Some(svg.finish(&c.title, &c.caption))
}

/// The largest value or whisker end of a bar chart (0 when none is finite).
fn bar_max(c: &BarChart) -> f64 {
    c.groups
        .iter()
        .flat_map(|g| g.bars.iter().flat_map(|b| [b.1, b.3]))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
}

/// A bar's value as written beside it, as precise as the chart's scale needs.
fn value_text(v: f64, vmax: f64) -> String {
    let dec = match vmax {
        m if m >= 100.0 => 0,
        m if m >= 10.0 => 1,
        _ => 2,
    };
    format!("{v:.dec$}")
}

/// The width of the widest value label of a bar chart.
fn widest_value(c: &BarChart, vmax: f64) -> f64 {
    c.groups
        .iter()
        .flat_map(|g| g.bars.iter().filter(|b| b.1.is_finite()))
        .map(|b| text_width(&value_text(b.1, vmax), VALUE_SIZE))
        .fold(0.0, f64::max)
}

fn bar_group(
    svg: &mut Svg,
    c: &BarChart,
    g: &BarGroup,
    used: &[usize],
    xs: &Scale,
    y0: f64,
    vmax: f64,
) {
    let mid = y0 + used.len() as f64 * (BAR_H + 2.0) / 2.0;
    svg.text(xs.p0 - 8.0, mid + 4.0, TICK_SIZE, "end", INK, &g.label);
    for (slot, si) in used.iter().enumerate() {
        let y = y0 + slot as f64 * (BAR_H + 2.0);
        for b in g.bars.iter().filter(|b| b.0 == *si && b.1.is_finite()) {
            let color = c.series[*si].1.hex();
            svg.group("bar", |svg| bar(svg, &color, b, xs, y, vmax));
        }
    }
}

/// One bar in its own row from `y`: the bar, its whisker, and its value beside both
/// (in that row, so it never runs over another bar, the axis or the group label).
fn bar(svg: &mut Svg, color: &str, b: &(usize, f64, f64, f64), xs: &Scale, y: f64, vmax: f64) {
    svg.rect(xs.p0, y, xs.at(b.1) - xs.p0, BAR_H, color, 1.0);
    let ym = y + BAR_H / 2.0;
    let mut end = xs.at(b.1);
    if b.2.is_finite() && b.3.is_finite() {
        let (x0, x1) = (xs.at(b.2), xs.at(b.3));
        svg.polyline(&[(x0, ym), (x1, ym)], INK, 1.2, None);
        svg.polyline(&[(x0, ym - 3.0), (x0, ym + 3.0)], INK, 1.2, None);
        svg.polyline(&[(x1, ym - 3.0), (x1, ym + 3.0)], INK, 1.2, None);
        end = end.max(x1);
    }
    let base = ym + VALUE_SIZE * 0.36;
    let s = value_text(b.1, vmax);
    svg.text(end + VALUE_GAP, base, VALUE_SIZE, "start", INK, &s);
}

// ---------------------------------------------------------------- output

/// Render a chart to an SVG string. An empty chart is an error (never an empty axis).
pub fn to_svg(chart: &Chart, name: &str) -> Result<String, ReportError> {
    let svg = match chart {
        Chart::Line(c) => draw_line(c),
        Chart::Bar(c) => draw_bar(c),
    };
    svg.ok_or_else(|| ReportError::Chart {
        name: name.to_string(),
        message: "no data to draw".into(),
    })
}

/// The bundled font, and nothing else, for resvg.
pub fn fontdb() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family(FONT_FAMILY);
        Arc::new(db)
    })
    .clone()
}

/// Parse an SVG with the bundled font.
pub fn parse_svg(svg: &str) -> Result<usvg::Tree, usvg::Error> {
    let opt = usvg::Options {
        font_family: FONT_FAMILY.into(),
        fontdb: fontdb(),
        ..Default::default()
    };
    usvg::Tree::from_str(svg, &opt)
}

/// Rasterise an SVG to PNG bytes at its own size.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, RenderError> {
    let tree = parse_svg(svg)?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).ok_or(RenderError::ZeroSize)?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| RenderError::Encode(e.to_string()))
}

/// Render a chart to a PNG file (from its SVG; written atomically).
pub fn to_png(chart: &Chart, name: &str, path: &Path) -> Result<(), ReportError> {
    let svg = to_svg(chart, name)?;
    write_png(&svg, name, path)
}

/// Write an already rendered SVG as a PNG file (atomically).
pub fn write_png(svg: &str, name: &str, path: &Path) -> Result<(), ReportError> {
    let png = svg_to_png(svg).map_err(|e| ReportError::Chart {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    // A StoreError names the path once; ReportError::Store carries it as it is.
    Ok(crate::store::fsutil::write_atomic(path, &png)?)
}

/// Every text of an SVG as resvg lays it out: (text, left, top, right, bottom).
pub fn text_boxes(svg: &str) -> Result<Vec<(String, [f32; 4])>, usvg::Error> {
    fn walk(g: &usvg::Group, out: &mut Vec<(String, [f32; 4])>) {
        for n in g.children() {
            match n {
                usvg::Node::Group(g) => walk(g, out),
                usvg::Node::Text(t) => {
                    let s: String = t.chunks().iter().map(|c| c.text()).collect();
                    let r = t.abs_bounding_box();
                    out.push((s, [r.left(), r.top(), r.right(), r.bottom()]));
                }
                _ => {}
            }
        }
    }
    let tree = parse_svg(svg)?;
    let mut out = Vec::new();
    walk(tree.root(), &mut out);
    Ok(out)
}

/// Layout problems of an SVG: a text leaving the canvas, or two texts overlapping.
pub fn layout_issues(svg: &str) -> Result<Vec<String>, usvg::Error> {
    let size = parse_svg(svg)?.size();
    let boxes = text_boxes(svg)?;
    let mut out = Vec::new();
    for (s, [l, t, r, b]) in &boxes {
        if *l < 0.0 || *t < 0.0 || *r > size.width() || *b > size.height() {
            out.push(format!(
                "{s:?} leaves the canvas: {l:.0},{t:.0} to {r:.0},{b:.0}"
            ));
        }
    }
    for (i, (s1, a)) in boxes.iter().enumerate() {
        for (s2, b) in &boxes[i + 1..] {
            let overlap_x = a[2].min(b[2]) - a[0].max(b[0]);
            let overlap_y = a[3].min(b[3]) - a[1].max(b[1]);
            if overlap_x > 0.5 && overlap_y > 0.5 {
                out.push(format!("{s1:?} overlaps {s2:?}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::contrast::{over, MARK_MIN, TEXT_MIN};
    use super::*;

    fn hex(s: &str) -> RGBColor {
        parse_hex(s).expect("a #rrggbb constant")
    }

    /// What a line can be drawn over: the page, the report-week shading, and a CN or
    /// US band on that shading (the darkest of them).
    fn grounds() -> [(&'static str, RGBColor); 4] {
        let band = |c: RGBColor| over(c, hex(SHADE), BAND_OPACITY);
        [
            ("white", hex(BACKGROUND)),
            ("shading", hex(SHADE)),
            ("CN band on shading", band(PALETTE[0])),
            ("US band on shading", band(PALETTE[1])),
        ]
    }

    #[test]
    fn every_colour_keeps_its_contrast_on_every_ground() {
        let mut table: Vec<(String, RGBColor, f64)> = PALETTE
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("PALETTE[{i}] {}", c.hex()), *c, MARK_MIN))
            .collect();
        table.push(("REFERENCE".into(), hex(REFERENCE), MARK_MIN));
        table.push(("OTHER_BLOC".into(), OTHER_BLOC, MARK_MIN));
        table.push(("INK".into(), hex(INK), TEXT_MIN));
        table.push(("MUTED".into(), hex(MUTED), TEXT_MIN));
        let mut failures = Vec::new();
        for (name, colour, min) in &table {
            for (ground, bg) in grounds() {
                let r = contrast_ratio(*colour, bg);
                if r < *min {
                    failures.push(format!("{name} on {ground}: {r:.2}:1 < {min}:1"));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        // The shading is seen at all.
        assert!(contrast_ratio(hex(SHADE), hex(BACKGROUND)) > 1.1);
    }

    #[test]
    fn no_model_or_other_bloc_looks_like_cn_or_us() {
        let blocs = &PALETTE[..BLOC_COLOURS];
        let others = (0..3 * PALETTE.len()).map(|i| (format!("model {i}"), model_color(i)));
        for (what, c) in others.chain([("OTHER_BLOC".to_string(), OTHER_BLOC)]) {
            for bloc in blocs {
                let d = cvd::cie76(c, *bloc);
                assert!(
                    d >= 20.0,
                    "{what} {} is {d:.1} from bloc {}",
                    c.hex(),
                    bloc.hex()
                );
            }
        }
        const { assert!(OTHER_BLOC.0 == OTHER_BLOC.1 && OTHER_BLOC.1 == OTHER_BLOC.2) };
        // Every model colour is used before any repeats.
        let firsts: std::collections::BTreeSet<_> = (0..PALETTE.len() - BLOC_COLOURS)
            .map(|i| model_color(i).hex())
            .collect();
        assert_eq!(firsts.len(), PALETTE.len() - BLOC_COLOURS);
    }

    /// The lowest bottom edge of the badge and the highest grid line of a chart.
    fn badge_and_grid(svg: &str) -> (Option<f64>, f64) {
        let els = contrast::elements(svg).unwrap();
        let in_group = |g: &str| {
            let g = g.to_string();
            els.iter()
                .filter(move |e| e.group.as_ref() == Some(&g))
                .cloned()
        };
        let badge = in_group("badge")
            .filter(|e| e.name == "rect")
            .map(|e| e.num("y").unwrap() + e.num("height").unwrap())
            .reduce(f64::max);
        let grid_top = in_group("grid")
            .flat_map(|e| {
                let pts = e.attr("points").unwrap().to_string();
                let ys: Vec<f64> = pts
                    .split_whitespace()
                    .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
                    .collect();
                ys
            })
            .fold(f64::INFINITY, f64::min);
        (badge, grid_top)
    }

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 10, day).unwrap()
    }

    #[test]
    fn simulated_charts_carry_a_badge_above_the_grid() {
        let title = crate::report::text::short_label(true, "H100-SXM-80GB on-demand, CN vs US, a title long enough to wrap onto a second line beside the badge");
        let mut bars = test_bars();
        bars.title = title.clone();
        let line = LineChart {
            title,
            lines: vec![Line {
                label: "CN".into(),
                color: PALETTE[0],
                points: vec![(d(7), 1.0), (d(8), 2.0)],
                band: Vec::new(),
            }],
            step_days: 1,
            ..Default::default()
        };
        for (what, c) in [("bar", Chart::Bar(bars)), ("line", Chart::Line(line))] {
            let svg = to_svg(&c, what).unwrap();
            assert_eq!(layout_issues(&svg).unwrap(), Vec::<String>::new(), "{what}");
            assert_eq!(contrast_issues(&svg), Vec::<String>::new(), "{what}");
            let texts: Vec<String> = text_boxes(&svg).unwrap().into_iter().map(|t| t.0).collect();
            assert!(texts.iter().any(|t| t == BADGE), "{what}: {texts:?}");
            let (badge, grid_top) = badge_and_grid(&svg);
            let badge = badge.expect("a badge box");
            assert!(
                badge < grid_top,
                "{what}: badge to {badge}, grid from {grid_top}"
            );
        }
        let real = to_svg(&Chart::Bar(test_bars()), "real").unwrap();
        assert!(!real.contains(BADGE), "no badge on real data");
        // The badge text is as legible on its fill as on white.
        assert!(contrast_ratio(hex(INK), hex(BADGE_FILL)) >= TEXT_MIN);
        assert!(contrast_ratio(hex(BADGE_EDGE), hex(BADGE_FILL)) >= MARK_MIN);
    }

    #[test]
    fn reference_lines_are_named_and_charts_announced() {
        let c = LineChart {
            title: "CN/US ratio".into(),
            caption: "Below 1.0: cheaper in China.".into(),
            lines: vec![Line {
                label: "H100".into(),
                color: model_color(0),
                points: vec![(d(7), 0.8), (d(8), 0.9)],
                band: Vec::new(),
            }],
            reference: Some(Reference {
                value: 1.0,
                name: "parity, CN = US".into(),
            }),
            step_days: 1,
            ..Default::default()
        };
        let svg = to_svg(&Chart::Line(c), "ratio").unwrap();
        let texts: Vec<String> = text_boxes(&svg).unwrap().into_iter().map(|t| t.0).collect();
        assert!(
            texts.iter().any(|t| t == "parity, CN = US (1)"),
            "{texts:?}"
        );
        // The legend's key and the plot's line: both grey and dashed alike.
        let dashed = format!(r#"stroke="{REFERENCE}" stroke-width="#);
        let keys: Vec<&str> = svg.lines().filter(|l| l.contains(&dashed)).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().all(|l| l.contains(r#"stroke-dasharray="5 4""#)));
        let els = contrast::elements(&svg).unwrap();
        assert_eq!(
            (els[0].name.as_str(), els[0].attr("role")),
            ("svg", Some("img"))
        );
        assert_eq!(
            (els[1].name.as_str(), els[1].text.as_str()),
            ("title", "CN/US ratio")
        );
        assert_eq!(els[2].text, "Below 1.0: cheaper in China.");
    }

    fn test_bars() -> BarChart {
        let series = [
            ("CN", PALETTE[0]),
            ("US", PALETTE[1]),
            ("OTHER", OTHER_BLOC),
        ];
        BarChart {
            title: "Bars".into(),
            caption: "Test data.".into(),
            y_label: "USD per GPU-hour".into(),
            series: series.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            groups: vec![
                BarGroup {
                    label: "H100-SXM-80GB".into(),
                    bars: vec![(0, 1.85, 1.7, 2.0), (1, 2.45, 2.3, 2.6), (2, 2.9, 2.5, 3.4)],
                },
                BarGroup {
                    label: "RTX4090-24GB".into(),
                    bars: vec![(0, 0.28, 0.25, 0.3), (2, 0.0, f64::NAN, f64::NAN)],
                },
            ],
        }
    }

    /// A drawn bar: its box, the right end of its whisker (or bar), its value label.
    struct DrawnBar {
        rect: [f64; 4],
        end: f64,
        label: String,
    }

    fn drawn_bars(svg: &str) -> Vec<DrawnBar> {
        let mut out: Vec<DrawnBar> = Vec::new();
        let els = contrast::elements(svg).unwrap();
        for el in els.iter().filter(|e| e.group.as_deref() == Some("bar")) {
            let num = |k: &str| el.num(k).unwrap();
            match el.name.as_str() {
                "rect" => {
                    let (x, y) = (num("x"), num("y"));
                    let rect = [x, y, x + num("width"), y + num("height")];
                    out.push(DrawnBar {
                        rect,
                        end: rect[2],
                        label: String::new(),
                    });
                }
                "polyline" => {
                    let last = out.last_mut().unwrap();
                    for p in el.attr("points").unwrap().split_whitespace() {
                        let x: f64 = p.split(',').next().unwrap().parse().unwrap();
                        last.end = last.end.max(x);
                    }
                }
                "text" => out.last_mut().unwrap().label = el.text.clone(),
                _ => {}
            }
        }
        out
    }

    fn overlaps(a: [f64; 4], b: [f64; 4]) -> bool {
        a[2].min(b[2]) - a[0].max(b[0]) > 0.5 && a[3].min(b[3]) - a[1].max(b[1]) > 0.5
    }

    #[test]
    fn value_labels_sit_beside_their_own_bars() {
        let svg = draw_bar(&test_bars()).unwrap();
        assert_eq!(layout_issues(&svg).unwrap(), Vec::<String>::new());
        let bars = drawn_bars(&svg);
        let labels: Vec<&str> = bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["1.85", "2.45", "2.90", "0.28", "0.00"]);
        let boxes = text_boxes(&svg).unwrap();
        for b in &bars {
            let (_, t) = boxes.iter().find(|(s, _)| *s == b.label).unwrap();
            let t = t.map(f64::from);
            let mid = (t[1] + t[3]) / 2.0;
            assert!(
                b.rect[1] <= mid && mid <= b.rect[3],
                "{} beside its bar: {t:?}",
                b.label
            );
            assert!(
                t[0] >= b.end + 1.0,
                "{} past its bar and whisker: {t:?}",
                b.label
            );
            for o in &bars {
                assert!(
                    !overlaps(t, o.rect),
                    "{} over the bar of {}",
                    b.label,
                    o.label
                );
            }
        }
    }

    fn check(lo: f64, hi: f64, integer: bool, expected: &[&str]) {
        let (t, dec) = nice_ticks(lo, hi, integer, 8);
        let got: Vec<String> = t.iter().map(|v| format!("{v:.dec$}")).collect();
        assert_eq!(got, expected, "{lo}..{hi}");
    }

    #[test]
    fn ticks_are_distinct_and_as_precise_as_needed() {
        check(
            0.99,
            1.0,
            false,
            &["0.990", "0.992", "0.994", "0.996", "0.998", "1.000"],
        );
        check(
            0.0,
            2100.0,
            true,
            &["0", "500", "1000", "1500", "2000", "2500"],
        );
        check(0.0, 3.0, true, &["0", "1", "2", "3"]);
        check(
            0.0,
            2.6,
            false,
            &["0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0"],
        );
        check(
            0.8,
            1.2,
            false,
            &[
                "0.80", "0.85", "0.90", "0.95", "1.00", "1.05", "1.10", "1.15", "1.20",
            ],
        );
    }
}
