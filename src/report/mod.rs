//! The weekly report: `<out>/<YYYY-Www>/` with `index.html` (self-contained, inline
//! SVG), `report.md`, `summary.json`, `summary.csv` and `charts/*.svg|png`, plus
//! `<out>/index.html` (the latest week's headlines, then every week, newest first)
//! and `<out>/feed.xml` (an Atom feed, one entry per week).
//!
//! Invariants: no network I/O and no clock (`generated_at` is passed in); every piece
//! of feed-supplied text is HTML-escaped; numbers have a fixed format and a unit;
//! simulated or sample data are labelled in the title, headers and chart captions.

pub mod alerts;
pub mod chart;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::analysis::{self, StatRow, WeekAnalysis};
use crate::error::ReportError;
use crate::report::alerts::Firing;
use crate::report::chart::{BarChart, BarGroup, Chart, Line, LineChart, PALETTE};
use crate::store::fsutil::write_atomic;
use crate::store::Store;
use crate::week::IsoWeek;

pub const SCHEMA: &str = "gpurent.summary.v1";
pub const SIMULATED: &str = "SIMULATED DATA, not market prices";
const CN: usize = 0;
const US: usize = 1;

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Feed-supplied text as a Markdown code span, so renderers show it literally (no
/// HTML, no emphasis): a backtick fence longer than any run inside, one line.
pub fn md_code(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let longest = one_line
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {one_line} {fence}")
}

/// `$1.23`, or `n/a` for a missing value.
pub fn usd(v: f64) -> String {
    if v.is_finite() {
        format!("${v:.2}")
    } else {
        "n/a".into()
    }
}

fn num(v: f64, places: usize) -> String {
    if v.is_finite() {
        format!("{v:.places$}")
    } else {
        "n/a".into()
    }
}

fn pct1(v: f64) -> String {
    if v.is_finite() {
        format!("{:+.1}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:+.0}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

/// The machine-readable summary (`summary.json`). Schema documented in README.md.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub schema: &'static str,
    pub week: &'a str,
    pub from: String,
    pub to: String,
    pub generated_at: String,
    pub simulated: bool,
    pub price_basis: &'static str,
    pub rows: &'a [StatRow],
    pub ratios: &'a [analysis::RatioRow],
    pub coverage: &'a analysis::Coverage,
    pub index: &'a [analysis::IndexPoint],
    pub providers: &'a [analysis::ProviderRow],
    pub provider_pairs: &'a [analysis::ProviderPair],
    pub long_view: &'a [analysis::WeeklyPoint],
    pub config: analysis::Config,
    pub headlines: Vec<String>,
}

fn prev_row<'a>(a: &'a WeekAnalysis, model: &str, bloc: &str, class: &str) -> Option<&'a StatRow> {
    a.prev_rows
        .iter()
        .find(|r| r.gpu_model == model && r.bloc == bloc && r.price_class == class)
}

/// Provider names, at most four, then how many more.
fn names(p: &[String]) -> String {
    let mut s = p.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    if p.len() > 4 {
        let _ = write!(s, " +{} more", p.len() - 4);
    }
    s
}

fn side(v: f64, providers: &[String], offers: u32) -> String {
    let plural = if offers == 1 { "" } else { "s" };
    format!("{} ({}; {offers} offer{plural})", usd(v), names(providers))
}

/// Which headline comes first: on-demand before other classes; within a class the
/// main models in their order, then the export pairs, then the rest by how many
/// providers stand behind them.
fn rank(r: &analysis::RatioRow) -> (bool, usize, std::cmp::Reverse<usize>, String) {
    let main = analysis::MAIN_MODELS.iter().position(|m| *m == r.gpu_model);
    let group = match (r.kind.as_str(), main) {
        ("same_model", Some(i)) => i,
        ("export_pair", _) => analysis::MAIN_MODELS.len(),
        _ => analysis::MAIN_MODELS.len() + 1,
    };
    let depth = r.cn_providers.len() + r.us_providers.len();
    (
        r.price_class != "on_demand",
        group,
        std::cmp::Reverse(depth),
        format!("{} {}", r.gpu_model, r.price_class),
    )
}

/// Why a ratio is thin, side by side: " (thin: one CN provider, 3 US offers)".
fn thin_note(r: &analysis::RatioRow, cfg: &analysis::Config) -> String {
    let mut why = Vec::new();
    for (bloc, providers, offers) in [
        ("CN", r.cn_providers.len(), r.cn_offers),
        ("US", r.us_providers.len(), r.us_offers),
    ] {
        if (providers as u32) < analysis::MIN_PROVIDERS {
            why.push(format!("one {bloc} provider"));
        }
        if offers < cfg.thin_cell {
            why.push(format!(
                "{offers} {bloc} offer{}",
                if offers == 1 { "" } else { "s" }
            ));
        }
    }
    if why.is_empty() {
        String::new()
    } else {
        format!(" (thin: {})", why.join(", "))
    }
}

/// How many ratio headlines a report keeps (the ratio tables list all).
pub const HEADLINES_KEPT: usize = 6;

/// What moved since last week: the ratio, and each side's provider-balanced price.
fn change(a: &WeekAnalysis, r: &analysis::RatioRow) -> String {
    let (Some(pc), Some(pu)) = (
        prev_row(a, &r.cn_model, "CN", &r.price_class),
        prev_row(a, &r.us_model, "US", &r.price_class),
    ) else {
        return String::new();
    };
    let prev_ratio = pc.provider_median / pu.provider_median;
    if !prev_ratio.is_finite() {
        return String::new();
    }
    format!(
        "; ratio {} on the week (CN price {}, US price {})",
        pct(r.cn_us_ratio / prev_ratio - 1.0),
        pct(r.cn_median / pc.provider_median - 1.0),
        pct(r.us_median / pu.provider_median - 1.0)
    )
}

/// "No China / no US data this week" warnings, empty when both blocs have offers.
pub fn banners(a: &WeekAnalysis) -> Vec<String> {
    [("CN", "China"), ("US", "the US")]
        .iter()
        .filter(|(bloc, _)| !a.rows.iter().any(|r| r.bloc == *bloc))
        .map(|(bloc, name)| {
            format!(
                "No {bloc} data this week: no offer from {name} was in force in {}, so no China-vs-US comparison can be made for it.",
                a.week
            )
        })
        .collect()
}

/// Headline sentences: the banners, the ranked ratios over all providers (each names
/// the providers and offers behind both sides and flags thin cells), the index.
pub fn headlines(a: &WeekAnalysis) -> Vec<String> {
    let mut out = banners(a);
    let mut ratios: Vec<&analysis::RatioRow> =
        a.ratios.iter().filter(|r| r.segment == "all").collect();
    ratios.sort_by_key(|r| rank(r));
    for r in ratios.into_iter().take(HEADLINES_KEPT) {
        let class = r.price_class.replace('_', "-");
        let thin = thin_note(r, &a.config);
        let cn = side(r.cn_median, &r.cn_providers, r.cn_offers);
        let us = side(r.us_median, &r.us_providers, r.us_offers);
        let ratio = format!(
            "ratio {} ({} ex VAT)",
            num(r.cn_us_ratio, 2),
            num(r.cn_us_ratio_ex_vat, 2)
        );
        let what = if r.kind == "same_model" {
            format!("{} ({class}): CN {cn} vs US {us} per GPU-hour", r.gpu_model)
        } else {
            format!(
                "{} in China {cn} vs {} in the US {us} per GPU-hour ({class})",
                r.cn_model, r.us_model
            )
        };
        out.push(format!("{what}: {ratio}{}{thin}", change(a, r)));
    }
    out.extend(index_headline(a));
    out
}

fn label(sim: bool, s: &str) -> String {
    if sim {
        format!("{s} [{SIMULATED}]")
    } else {
        s.to_string()
    }
}

/// Chart titles carry the short label; captions and headers the full one.
fn short_label(sim: bool, s: &str) -> String {
    if sim {
        format!("SIMULATED: {s}")
    } else {
        s.to_string()
    }
}

fn sources(a: &WeekAnalysis) -> String {
    let feeds: Vec<&str> = a.coverage.feeds.iter().map(|f| f.0.as_str()).collect();
    format!("Sources: gpurent feeds {}", feeds.join(", "))
}

/// The dates a line chart's x axis covers (its points and the shaded week), as a
/// title's span, so the title and the axis agree.
fn span_of(lines: &[Line], week: Option<(chrono::NaiveDate, chrono::NaiveDate)>) -> Option<String> {
    let dates: Vec<chrono::NaiveDate> = lines
        .iter()
        .flat_map(|l| l.points.iter().filter(|p| p.1.is_finite()).map(|p| p.0))
        .collect();
    let (first, last) = (dates.iter().min()?, dates.iter().max()?);
    let (first, last) = match week {
        Some((a, b)) => ((*first).min(a), (*last).max(b)),
        None => (*first, *last),
    };
    Some(format!("{first} to {last}"))
}

/// The charts of a week, by file stem.
pub fn charts(a: &WeekAnalysis) -> Vec<(String, Chart)> {
    chart_set(a).0
}

/// The daily on-demand series of one model in one bloc.
fn daily_of<'a>(a: &'a WeekAnalysis, model: &str, bloc: &str) -> Vec<&'a analysis::DailyPoint> {
    a.daily
        .iter()
        .filter(|d| d.gpu_model == model && d.bloc == bloc && d.price_class == "on_demand")
        .collect()
}

/// The charts of a week, by file stem, and one line for each chart left out and why.
pub fn chart_set(a: &WeekAnalysis) -> (Vec<(String, Chart)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    // Models quoted on demand in both blocs this week.
    let mut both: Vec<String> = a
        .ratios
        .iter()
        .filter(|r| r.kind == "same_model" && r.price_class == "on_demand" && r.segment == "all")
        .map(|r| r.gpu_model.clone())
        .collect();
    // The models a market watcher looks for first (H100, H200, B200, A100, RTX 4090).
    both.sort_by_key(|m| {
        let main = analysis::MAIN_MODELS.iter().position(|x| x == m);
        (main.unwrap_or(usize::MAX), m.clone())
    });
    for model in &both {
        out.push((
            format!("price-{}", model.to_lowercase()),
            price_chart(a, model),
        ));
    }
    match ratio_chart(a, &both) {
        Some(c) => out.push(("ratio".into(), c)),
        None => notes.push(
            "CN/US ratio chart not drawn: no day with both CN and US on-demand offers of the same model."
                .to_string(),
        ),
    }
    match medians_chart(a) {
        Some(c) => out.push(("week-medians".into(), c)),
        None => notes.push(format!(
            "Median-per-model chart not drawn: no on-demand offer in CN or US in {}.",
            a.week
        )),
    }
    out.push(("availability".into(), availability_chart(a)));
    match index_chart(a) {
        Some(c) => out.push(("index".into(), c)),
        None => notes.push(
            "Price index chart not drawn: no two consecutive weeks with a model quoted in both."
                .to_string(),
        ),
    }
    out.extend(export_chart(a));
    out.extend(long_view_charts(a));
    for model in both.iter().take(3) {
        match provider_chart(a, model) {
            Some(c) => out.push((format!("providers-{}", model.to_lowercase()), c)),
            None => notes.push(format!(
                "{model} provider chart not drawn: a single provider quotes it on demand this week."
            )),
        }
    }
    // A chart with no point is never drawn (no empty axis).
    out.retain(|(name, c)| {
        let empty = c.is_empty();
        if empty {
            notes.push(format!(
                "{name} chart not drawn: no data in the four weeks."
            ));
        }
        !empty
    });
    (out, notes)
}

fn caption(a: &WeekAnalysis, extra: &str) -> String {
    label(a.coverage.sample_data, &format!("{}. {extra}", sources(a)))
}

fn price_chart(a: &WeekAnalysis, model: &str) -> Chart {
    let sim = a.coverage.sample_data;
    let lines: Vec<Line> = [("CN", CN), ("US", US)]
        .iter()
        .map(|(bloc, ci)| {
            let pts = daily_of(a, model, bloc);
            Line {
                label: format!("{bloc} provider-balanced median"),
                color: PALETTE[*ci],
                points: pts.iter().map(|d| (d.date, d.median)).collect(),
                band: pts.iter().map(|d| (d.date, d.p25, d.p75)).collect(),
            }
        })
        .collect();
    let span = span_of(&lines, Some((a.from, a.to))).unwrap_or_default();
    Chart::Line(LineChart {
        title: short_label(
            sim,
            &format!("{model} on-demand, CN vs US, daily median, {span}"),
        ),
        caption: caption(
            a,
            "Lines: median of provider medians of the offers in force each day. Bands: p25 to p75 of those offers. Shaded: the report week.",
        ),
        y_label: "USD per GPU-hour".into(),
        lines,
        y_from_zero: true,
        step_days: 1,
        highlight: Some((a.from, a.to)),
        ..Default::default()
    })
}

/// CN/US ratio over time for the models in both blocs; `None` when no day has both.
fn ratio_chart(a: &WeekAnalysis, both: &[String]) -> Option<Chart> {
    let sim = a.coverage.sample_data;
    let mut lines = Vec::new();
    for (i, model) in both.iter().enumerate() {
        let us = daily_of(a, model, "US");
        let points: Vec<_> = daily_of(a, model, "CN")
            .iter()
            .filter_map(|c| {
                us.iter()
                    .find(|u| u.date == c.date)
                    .map(|u| (c.date, c.median / u.median))
            })
            .collect();
        if !points.is_empty() {
            lines.push(Line {
                label: model.clone(),
                color: PALETTE[(i + 2) % PALETTE.len()],
                points,
                band: Vec::new(),
            });
        }
    }
    let span = span_of(&lines, Some((a.from, a.to)))?;
    Some(Chart::Line(LineChart {
        title: short_label(
            sim,
            &format!("CN/US ratio of daily on-demand medians, {span}"),
        ),
        caption: caption(
            a,
            "Below 1.0: cheaper in China. Ratio of medians in USD per GPU-hour. Shaded: the report week.",
        ),
        y_label: "CN median / US median".into(),
        lines,
        reference: Some(1.0),
        step_days: 1,
        highlight: Some((a.from, a.to)),
        ..Default::default()
    }))
}

/// Latest week: median per model, CN beside US.
fn medians_chart(a: &WeekAnalysis) -> Option<Chart> {
    let sim = a.coverage.sample_data;
    let models: BTreeSet<&str> = a
        .rows
        .iter()
        .filter(|r| r.price_class == "on_demand" && (r.bloc == "CN" || r.bloc == "US"))
        .map(|r| r.gpu_model.as_str())
        .collect();
    let groups: Vec<BarGroup> = models
        .iter()
        .map(|m| BarGroup {
            label: m.to_string(),
            bars: a
                .rows
                .iter()
                .filter(|r| r.gpu_model == *m && r.price_class == "on_demand")
                .filter_map(|r| match r.bloc.as_str() {
                    "CN" => Some((CN, r.provider_median, r.p25, r.p75)),
                    "US" => Some((US, r.provider_median, r.p25, r.p75)),
                    _ => None,
                })
                .collect(),
        })
        .collect();
    (!groups.is_empty()).then(|| {
        Chart::Bar(BarChart {
            title: short_label(
                sim,
                &format!(
                    "On-demand median per model, {} ({} to {})",
                    a.week, a.from, a.to
                ),
            ),
            caption: caption(
                a,
                "Bars: median of provider medians. Whiskers: p25 to p75 of the offers in force.",
            ),
            y_label: "USD per GPU-hour".into(),
            series: vec![("CN".into(), PALETTE[CN]), ("US".into(), PALETTE[US])],
            groups,
        })
    })
}

/// Availability: offers in force per day per bloc.
fn availability_chart(a: &WeekAnalysis) -> Chart {
    let sim = a.coverage.sample_data;
    let mut lines = Vec::new();
    for (bloc, ci) in [("CN", CN), ("US", US)] {
        let mut per_day: std::collections::BTreeMap<chrono::NaiveDate, f64> = Default::default();
        for d in a.daily.iter().filter(|d| d.bloc == bloc) {
            *per_day.entry(d.date).or_default() += d.offers as f64;
        }
        lines.push(Line {
            label: format!("{bloc} offers in force"),
            color: PALETTE[ci],
            points: per_day.into_iter().collect(),
            band: Vec::new(),
        });
    }
    let span = span_of(&lines, Some((a.from, a.to))).unwrap_or_default();
    Chart::Line(LineChart {
        title: short_label(sim, &format!("Offers in force per day by bloc, {span}")),
        caption: caption(
            a,
            "Each offer counts once a day, however often it was seen. Shaded: the report week.",
        ),
        y_label: "offers in force per day".into(),
        lines,
        y_from_zero: true,
        step_days: 1,
        highlight: Some((a.from, a.to)),
        integer_y: true,
        ..Default::default()
    })
}

/// The chain-linked price index per bloc; `None` without any index point.
fn index_chart(a: &WeekAnalysis) -> Option<Chart> {
    let sim = a.coverage.sample_data;
    let lines: Vec<Line> = [("CN", CN), ("US", US)]
        .iter()
        .map(|(bloc, ci)| Line {
            label: format!("{bloc} index"),
            color: PALETTE[*ci],
            points: a
                .index
                .iter()
                .filter(|p| p.bloc == *bloc)
                .map(|p| (p.monday, p.index))
                .collect(),
            band: Vec::new(),
        })
        .collect();
    let first = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .min()?;
    Some(Chart::Line(LineChart {
        title: short_label(
            sim,
            &format!(
                "On-demand price index by bloc, matched cells, weeks {} to {}",
                IsoWeek::of(first).label(),
                a.week
            ),
        ),
        caption: caption(
            a,
            "Chain-linked Jevons index over cells (provider x model x class) in force in both adjacent weeks.",
        ),
        y_label: "index (first week = 100)".into(),
        lines,
        reference: Some(100.0),
        step_days: 7,
        ..Default::default()
    }))
}

/// One model's median by provider and bloc; `None` when a single provider quotes it.
fn provider_chart(a: &WeekAnalysis, model: &str) -> Option<Chart> {
    let sim = a.coverage.sample_data;
    let rows: Vec<&analysis::ProviderRow> = a
        .providers
        .iter()
        .filter(|p| p.gpu_model == model && p.price_class == "on_demand")
        .collect();
    let blocs = ["CN", "US", "OTHER"];
    let providers: BTreeSet<&str> = rows.iter().map(|r| r.provider.as_str()).collect();
    if providers.len() < 2 {
        return None;
    }
    let groups: Vec<BarGroup> = providers
        .into_iter()
        .map(|prov| BarGroup {
            label: prov.to_string(),
            bars: rows
                .iter()
                .filter(|r| r.provider == prov)
                .filter_map(|r| {
                    blocs
                        .iter()
                        .position(|b| *b == r.bloc)
                        .map(|i| (i, r.median, r.p25, r.p75))
                })
                .collect(),
        })
        .collect();
    Some(Chart::Bar(BarChart {
        title: short_label(
            sim,
            &format!("{model} on-demand median by provider and bloc, {}", a.week),
        ),
        caption: caption(
            a,
            "Bars: provider median of the offers in force. Whiskers: p25 to p75.",
        ),
        y_label: "USD per GPU-hour".into(),
        series: blocs
            .iter()
            .enumerate()
            .map(|(i, b)| (b.to_string(), PALETTE[i]))
            .collect(),
        groups,
    }))
}

/// Export-control pairs: the China variant in China beside its US counterpart in the
/// US (provider-balanced, all segments).
fn export_chart(a: &WeekAnalysis) -> Option<(String, Chart)> {
    let sim = a.coverage.sample_data;
    let groups: Vec<BarGroup> = a
        .ratios
        .iter()
        .filter(|r| r.kind == "export_pair" && r.segment == "all")
        .map(|r| BarGroup {
            label: format!("{} vs {} ({})", r.cn_model, r.us_model, r.price_class),
            bars: vec![
                (CN, r.cn_median, r.cn_median, r.cn_median),
                (US, r.us_median, r.us_median, r.us_median),
            ],
        })
        .collect();
    (!groups.is_empty()).then(|| {
        (
            "export-pairs".to_string(),
            Chart::Bar(BarChart {
                title: short_label(sim, &format!("Export-control pairs, {}", a.week)),
                caption: caption(a, "China variant in China (CN) against its US counterpart in the US (US); median of provider medians."),
                y_label: "USD per GPU-hour".into(),
                series: vec![("CN".into(), PALETTE[CN]), ("US".into(), PALETTE[US])],
                groups,
            }),
        )
    })
}

/// Per main model: weekly provider-balanced on-demand figures in each bloc over the
/// whole history in the store.
fn long_view_charts(a: &WeekAnalysis) -> Vec<(String, Chart)> {
    let sim = a.coverage.sample_data;
    let mut out = Vec::new();
    for model in analysis::MAIN_MODELS {
        let lines: Vec<Line> = [("CN", CN), ("US", US)]
            .iter()
            .map(|(bloc, ci)| Line {
                label: format!("{bloc} weekly"),
                color: PALETTE[*ci],
                points: a
                    .long_view
                    .iter()
                    .filter(|p| p.gpu_model == *model && p.bloc == *bloc)
                    .map(|p| (p.monday, p.median))
                    .collect(),
                band: Vec::new(),
            })
            .collect();
        let Some(first) = lines
            .iter()
            .flat_map(|l| l.points.first())
            .map(|p| p.0)
            .min()
        else {
            continue;
        };
        out.push((
            format!("long-{}", model.to_lowercase()),
            Chart::Line(LineChart {
                title: short_label(
                    sim,
                    &format!("{model} on-demand, CN vs US, weekly, {first} to {}", a.to),
                ),
                caption: caption(a, "Median of provider medians of the offers in force each week; gaps: no offer in force."),
                y_label: "USD per GPU-hour".into(),
                lines,
                y_from_zero: true,
                step_days: 7,
                ..Default::default()
            }),
        ));
    }
    out
}

/// The index headline: level, change on the week and over four weeks, per bloc.
pub fn index_headline(a: &WeekAnalysis) -> Option<String> {
    let mut parts = Vec::new();
    for bloc in ["CN", "US"] {
        let pts: Vec<&analysis::IndexPoint> = a
            .index
            .iter()
            .filter(|p| p.bloc == bloc && p.monday <= a.from)
            .collect();
        let Some(last) = pts.last().filter(|p| p.monday == a.from) else {
            continue;
        };
        let back = |weeks: i64| {
            pts.iter()
                .find(|p| p.monday == a.from - chrono::Duration::days(7 * weeks))
                .map(|p| last.index / p.index - 1.0)
                .unwrap_or(f64::NAN)
        };
        parts.push(format!(
            "{bloc} {} ({} on the week, {} over four weeks; {} cells linked)",
            num(last.index, 1),
            pct1(back(1)),
            pct1(back(4)),
            last.cells_matched
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "Price index over matched cells (provider x model x class, first week = 100): {}",
            parts.join("; ")
        )
    })
}

/// Feed-supplied text inside Markdown prose: characters with a Markdown or HTML
/// meaning are backslash-escaped, so renderers show them literally.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>&|#".contains(c) {
            out.push('\\');
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// A table for both renderings: header and rows of plain text.
struct Table {
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn md(&self) -> String {
        let mut s = format!("| {} |\n|", self.head.join(" | "));
        s.push_str(&"---|".repeat(self.head.len()));
        s.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|c| md_text(c)).collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        s
    }
    fn html(&self) -> String {
        let mut s = String::from("<table><tr>");
        for h in &self.head {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("</tr>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for c in r {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        s
    }
}

/// CN/US ratios per model, class and segment, with the providers behind each side.
fn ratio_table(a: &WeekAnalysis, kind: &str) -> Table {
    Table {
        head: vec![
            "model",
            "class",
            "segment",
            "CN USD/GPU-h",
            "CN providers",
            "CN offers",
            "US USD/GPU-h",
            "US providers",
            "US offers",
            "CN/US",
            "CN/US ex VAT",
            "thin",
        ],
        rows: a
            .ratios
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| {
                vec![
                    r.gpu_model.clone(),
                    r.price_class.clone(),
                    r.segment.clone(),
                    num(r.cn_median, 4),
                    r.cn_providers.join(", "),
                    r.cn_offers.to_string(),
                    num(r.us_median, 4),
                    r.us_providers.join(", "),
                    r.us_offers.to_string(),
                    num(r.cn_us_ratio, 3),
                    num(r.cn_us_ratio_ex_vat, 3),
                    if r.thin { "thin" } else { "" }.to_string(),
                ]
            })
            .collect(),
    }
}

/// Each CN provider against each US provider for the same model and class.
fn pair_table(a: &WeekAnalysis) -> Table {
    Table {
        head: vec![
            "model",
            "class",
            "CN provider",
            "CN USD/GPU-h",
            "CN offers",
            "US provider",
            "US USD/GPU-h",
            "US offers",
            "CN/US",
        ],
        rows: a
            .provider_pairs
            .iter()
            .map(|p| {
                vec![
                    p.gpu_model.clone(),
                    p.price_class.clone(),
                    p.cn_provider.clone(),
                    num(p.cn_median, 4),
                    p.cn_offers.to_string(),
                    p.us_provider.clone(),
                    num(p.us_median, 4),
                    p.us_offers.to_string(),
                    num(p.ratio, 3),
                ]
            })
            .collect(),
    }
}

/// The comparison tables of a week: (heading, table).
fn tables(a: &WeekAnalysis) -> Vec<(&'static str, Table)> {
    vec![
        (
            "CN/US ratios per model and segment (median of provider medians)",
            ratio_table(a, "same_model"),
        ),
        (
            "Export-control pairs (China variant in China vs US model in the US)",
            ratio_table(a, "export_pair"),
        ),
        (
            "Provider pairs (provider median against provider median)",
            pair_table(a),
        ),
        ("Prices per provider", provider_table(a)),
        ("What could not be compared, and why", uncompared_table(a)),
    ]
}

/// Each provider's median of the offers in force, per model, class and bloc.
fn provider_table(a: &WeekAnalysis) -> Table {
    let mut rows: Vec<&analysis::ProviderRow> = a.providers.iter().collect();
    rows.sort_by(|x, y| {
        (&x.gpu_model, &x.price_class, &x.bloc, &x.provider).cmp(&(
            &y.gpu_model,
            &y.price_class,
            &y.bloc,
            &y.provider,
        ))
    });
    Table {
        head: vec![
            "model",
            "class",
            "bloc",
            "provider",
            "segment",
            "offers",
            "USD/GPU-h",
            "p25",
            "p75",
        ],
        rows: rows
            .into_iter()
            .map(|p| {
                vec![
                    p.gpu_model.clone(),
                    p.price_class.clone(),
                    p.bloc.clone(),
                    p.provider.clone(),
                    p.segment.clone(),
                    p.offers.to_string(),
                    num(p.median, 4),
                    num(p.p25, 4),
                    num(p.p75, 4),
                ]
            })
            .collect(),
    }
}

/// Why a model quoted in CN or the US this week has no CN/US ratio.
fn uncompared_reason(a: &WeekAnalysis, model: &str, class: &str, blocs: &[&str]) -> Option<String> {
    let ratio = |kind: &str, side: fn(&analysis::RatioRow) -> &str| {
        a.ratios
            .iter()
            .any(|r| r.kind == kind && r.price_class == class && side(r) == model)
    };
    if ratio("same_model", |r| &r.gpu_model) {
        return None;
    }
    if crate::tables::Tables::embedded()
        .gpus
        .model(model)
        .is_none()
    {
        return Some("coarse id: the source gave no form or memory, so it is kept apart from every full model".into());
    }
    if ratio("export_pair", |r| &r.cn_model) || ratio("export_pair", |r| &r.us_model) {
        return Some("compared only as an export-control pair (table above)".into());
    }
    Some(match blocs {
        ["CN"] => "offered in CN only this week".into(),
        ["US"] => "offered in the US only this week".into(),
        _ => "no offer in force in both blocs".into(),
    })
}

/// Models quoted in CN or the US this week that have no same-model ratio, and why.
fn uncompared_table(a: &WeekAnalysis) -> Table {
    let mut cells: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
    for r in a.rows.iter().filter(|r| r.bloc == "CN" || r.bloc == "US") {
        cells
            .entry((r.gpu_model.as_str(), r.price_class.as_str()))
            .or_default()
            .push(r.bloc.as_str());
    }
    Table {
        head: vec!["model", "class", "seen in", "why not compared"],
        rows: cells
            .into_iter()
            .filter_map(|((m, c), mut blocs)| {
                blocs.sort_unstable();
                blocs.dedup();
                let why = uncompared_reason(a, m, c, &blocs)?;
                Some(vec![m.to_string(), c.to_string(), blocs.join(", "), why])
            })
            .collect(),
    }
}

fn stat_table_md(rows: &[StatRow]) -> String {
    let mut s = String::from(
        "| model | bloc | class | offers | providers | provider-balanced | p25 | median | p75 | min | p90 |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} |",
            r.gpu_model,
            r.bloc,
            r.price_class,
            r.offers,
            if r.thin { " (thin)" } else { "" },
            r.providers,
            usd(r.provider_median),
            usd(r.p25),
            usd(r.median),
            usd(r.p75),
            usd(r.min),
            usd(r.p90)
        );
    }
    s
}

/// The methodology paragraph, with the thresholds actually used (METHODOLOGY.md has
/// the full text).
pub fn method(cfg: &analysis::Config) -> String {
    format!("Prices are USD per GPU-hour: each published price is divided by the GPUs in the offer, converted from its unit (per instance, per month of 730 hours, cents, thousandths of a yuan) and from its currency at the ECB reference rate of the observation date or the latest earlier one (at most 7 days). A price stands from its observation until the same feed's next snapshot of that provider supersedes it (an offer missing from that snapshot has ended) or until it expires: list prices after at most 45 days, marketplace offers after a few hours (tables/providers.toml); gaps beyond that stay gaps. Each week's and day's statistics are over the offers in force in it, each offer counted once at its last price in force. The headline figure of a model, bloc and class is the median of the providers' median prices, so each provider counts once; the offer-level quartiles stand beside it. Ratios compare these figures over all providers and within each segment (hyperscaler, gpu_cloud, marketplace), and provider by provider. Fractional-GPU offers and prices under {}x or over {}x the median of their model's observations in the same ISO week are left out and counted; cells with fewer than {} offers in force or a single provider are marked thin. GPU models are never merged across SXM/PCIe or across export variants (H800, H20, A800, RTX 4090D stay apart from H100, A100, RTX 4090); comparable pairs across the export-control line are shown as such. The price index chains week to week the geometric mean of the price relatives of the cells (provider x model x class) in force in both weeks (Jevons over matched items, first week = 100), so providers or models appearing or missing are not price moves. Bloc CN is mainland China; Hong Kong, Macau and Taiwan are OTHER. Prices compared are as published: Chinese list prices may include VAT, US list prices do not; ratios excluding VAT are shown beside. See METHODOLOGY.md.", cfg.implausible_low, cfg.implausible_high, cfg.thin_cell)
}

fn markdown(
    a: &WeekAnalysis,
    heads: &[String],
    chart_names: &[String],
    notes: &[String],
    fired: &[Firing],
    generated_at: &str,
) -> String {
    let sim = a.coverage.sample_data;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {}\n",
        label(sim, &format!("GPU rental prices, China vs US, {}", a.week))
    );
    if sim {
        let _ = writeln!(
            s,
            "> **{SIMULATED}.** This report was generated from simulated providers.\n"
        );
    }
    let _ = writeln!(
        s,
        "{} to {} (UTC). Generated {generated_at}.\n",
        a.from, a.to
    );
    for b in banners(a) {
        let _ = writeln!(s, "> **{}**\n", md_text(&b));
    }
    let _ = writeln!(s, "## Headlines\n");
    if heads.is_empty() {
        let _ = writeln!(
            s,
            "No model was quoted in both China and the US this week.\n"
        );
    }
    for h in heads {
        let _ = writeln!(s, "- {}", md_text(h));
    }
    for (title, t) in tables(a) {
        let _ = writeln!(s, "\n## {title}\n");
        if t.rows.is_empty() {
            let _ = writeln!(s, "None this week.");
        } else {
            s.push_str(&t.md());
        }
    }
    if !fired.is_empty() {
        let _ = writeln!(s, "\n## Alerts\n");
        for f in fired {
            let _ = writeln!(
                s,
                "- {} (rule {}, {})",
                md_text(&f.message),
                md_code(&f.rule),
                f.fired_at
            );
        }
    }
    let _ = writeln!(s, "\n## Charts\n");
    for c in chart_names {
        let _ = writeln!(s, "![{c}](charts/{c}.svg)");
    }
    for n in notes {
        let _ = writeln!(s, "\n{n}");
    }
    let _ = writeln!(
        s,
        "\n## Statistics (USD per GPU-hour)\n\n{}",
        stat_table_md(&a.rows)
    );
    let _ = writeln!(s, "## Coverage\n");
    for line in coverage_lines(a) {
        let _ = writeln!(s, "- {}", md_parts(&line));
    }
    s.push('\n');
    let _ = writeln!(s, "## Methodology\n\n{}", method(&a.config));
    s
}

/// A piece of a report line: our own words and numbers, or a name a feed supplied
/// (shown as code, escaped for the format).
enum Part {
    Text(String),
    Code(String),
}

fn text(s: impl Into<String>) -> Part {
    Part::Text(s.into())
}

/// The coverage section, once, for both the Markdown and the HTML page.
fn coverage_lines(a: &WeekAnalysis) -> Vec<Vec<Part>> {
    let c = &a.coverage;
    let mut out: Vec<Vec<Part>> = Vec::new();
    for (f, n) in &c.feeds {
        out.push(vec![text(format!("feed {f}: {n} offer observations"))]);
    }
    for (r, n) in &c.rejects {
        out.push(vec![text(format!("rejected, {r}: {n}"))]);
    }
    for (p, n) in &c.providers {
        let rest = format!(": {n} offer observations");
        out.push(vec![text("provider "), Part::Code(p.clone()), text(rest)]);
    }
    for (p, name, n) in &c.unresolved_names {
        out.push(vec![
            text("unresolved name "),
            Part::Code(name.clone()),
            text(" (provider "),
            Part::Code(p.clone()),
            text(format!("): {n} rejected observations")),
        ]);
    }
    let share = pct_plain(c.resolved_share);
    let thin = format!(
        "thin cells (fewer than {} offers in force, or one provider): {}",
        a.config.thin_cell, c.thin_cells
    );
    out.push(vec![text(format!(
        "share of offers whose GPU resolved to a model: {share}"
    ))]);
    out.push(vec![text(format!(
        "implausible prices left out: {}",
        c.implausible
    ))]);
    out.push(vec![text(format!(
        "fractional-GPU offers left out: {}",
        c.fractional
    ))]);
    out.push(vec![text(thin)]);
    out
}

fn md_parts(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.clone(),
            Part::Code(c) => md_code(c),
        })
        .collect()
}

fn html_parts(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => esc(t),
            Part::Code(c) => format!("<code>{}</code>", esc(c)),
        })
        .collect()
}

fn pct_plain(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

const CSS: &str = "body{font-family:'DejaVu Sans',system-ui,sans-serif;max-width:1000px;margin:0 auto;padding:12px;color:#222;line-height:1.45}li,p,h1,h2{overflow-wrap:anywhere}figure{margin:1em 0;overflow-x:auto}figure svg{min-width:600px}.note{color:#555;font-style:italic}h1{font-size:1.5em}svg{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.85em;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left}.sim{background:#fff3cd;border:2px solid #d39e00;padding:8px;font-weight:bold}.thin{color:#999}";

/// The week's page: head, headlines, tables, alerts, charts, statistics, coverage,
/// method. Every feed-supplied string goes through `esc`.
fn html(
    a: &WeekAnalysis,
    heads: &[String],
    svgs: &[(String, String)],
    notes: &[String],
    fired: &[Firing],
    generated_at: &str,
) -> String {
    let mut s = String::new();
    html_top(&mut s, a, heads, generated_at);
    for (title, t) in tables(a) {
        let _ = writeln!(s, "<h2>{}</h2>", esc(title));
        if t.rows.is_empty() {
            let _ = writeln!(s, "<p>None this week.</p>");
        } else {
            s.push_str(&t.html());
        }
    }
    html_alerts(&mut s, fired);
    let _ = writeln!(s, "<h2>Charts</h2>");
    for (name, svg) in svgs {
        // The SVG is written by crate::report::chart from escaped text, without an XML prolog.
        let _ = writeln!(s, "<figure id=\"{}\">{}</figure>", esc(name), svg.trim());
    }
    for n in notes {
        let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(n));
    }
    html_statistics(&mut s, a);
    let _ = writeln!(s, "</table><h2>Coverage</h2><ul>");
    for line in coverage_lines(a) {
        let _ = writeln!(s, "<li>{}</li>", html_parts(&line));
    }
    let _ = writeln!(s, "</ul>");
    let _ = writeln!(
        s,
        "<h2>Methodology</h2><p>{}</p>\n</body></html>",
        esc(&method(&a.config))
    );
    s
}

/// The head, title, simulated-data label, period, banners and headlines.
fn html_top(s: &mut String, a: &WeekAnalysis, heads: &[String], generated_at: &str) {
    let sim = a.coverage.sample_data;
    let title = label(sim, &format!("GPU rental prices, China vs US, {}", a.week));
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    if sim {
        let _ = writeln!(s, "<p class=\"sim\">{SIMULATED}. Every number on this page comes from simulated providers.</p>");
    }
    let _ = writeln!(
        s,
        "<p>{} to {} (UTC). Generated {}.</p>",
        a.from,
        a.to,
        esc(generated_at)
    );
    for b in banners(a) {
        let _ = writeln!(s, "<p class=\"sim\">{}</p>", esc(&b));
    }
    let _ = writeln!(s, "<h2>Headlines</h2><ul>");
    if heads.is_empty() {
        let _ = writeln!(
            s,
            "<li>No model was quoted in both China and the US this week.</li>"
        );
    }
    for h in heads {
        let _ = writeln!(s, "<li>{}</li>", esc(h));
    }
    let _ = writeln!(s, "</ul>");
}

/// The week's alert firings, when there are any.
fn html_alerts(s: &mut String, fired: &[Firing]) {
    if fired.is_empty() {
        return;
    }
    let _ = writeln!(s, "<h2>Alerts</h2><ul>");
    for f in fired {
        let _ = writeln!(
            s,
            "<li>{} (rule <code>{}</code>, {})</li>",
            esc(&f.message),
            esc(&f.rule),
            esc(&f.fired_at)
        );
    }
    let _ = writeln!(s, "</ul>");
}

/// The statistics table (left open: the caller closes it).
fn html_statistics(s: &mut String, a: &WeekAnalysis) {
    let _ = writeln!(s, "<h2>Statistics (USD per GPU-hour)</h2><table><tr><th>model</th><th>bloc</th><th>class</th><th>offers</th><th>providers</th><th>provider-balanced</th><th>p25</th><th>median</th><th>p75</th><th>min</th><th>p90</th><th>10% trimmed mean</th></tr>");
    for r in &a.rows {
        let _ = writeln!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.thin { " class=\"thin\"" } else { "" },
            esc(&r.gpu_model),
            esc(&r.bloc),
            esc(&r.price_class),
            r.offers,
            r.providers,
            usd(r.provider_median),
            usd(r.p25),
            usd(r.median),
            usd(r.p75),
            usd(r.min),
            usd(r.p90),
            usd(r.trimmed_mean_10)
        );
    }
}

/// `summary.csv`: the statistics rows, written by the `csv` crate (quoted as needed).
fn summary_csv(a: &WeekAnalysis) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = "week,gpu_model,bloc,price_class,offers,distinct_offers,providers,min,p10,p25,median,p75,p90,trimmed_mean_10,thin,provider_median,provider_median_ex_vat,observations";
    let mut rows = vec![header.split(',').map(str::to_string).collect::<Vec<_>>()];
    for r in &a.rows {
        rows.push(vec![
            a.week.to_string(),
            r.gpu_model.clone(),
            r.bloc.clone(),
            r.price_class.clone(),
            r.offers.to_string(),
            r.distinct_offers.to_string(),
            r.providers.to_string(),
            num(r.min, 4),
            num(r.p10, 4),
            num(r.p25, 4),
            num(r.median, 4),
            num(r.p75, 4),
            num(r.p90, 4),
            num(r.trimmed_mean_10, 4),
            r.thin.to_string(),
            num(r.provider_median, 4),
            num(r.provider_median_ex_vat, 4),
            r.observations.to_string(),
        ]);
    }
    for row in rows {
        w.write_record(&row)
            .expect("writing CSV to memory cannot fail");
    }
    let bytes = w.into_inner().expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// Write one week's report under `out`. Returns the week directory.
pub fn write_week(
    store: &Store,
    out: &Path,
    week: IsoWeek,
    generated_at: DateTime<Utc>,
) -> Result<PathBuf, ReportError> {
    write_week_with(store, out, week, generated_at, &analysis::Config::default())
}

/// Write one week's report with explicit analysis settings.
pub fn write_week_with(
    store: &Store,
    out: &Path,
    week: IsoWeek,
    generated_at: DateTime<Utc>,
    cfg: &analysis::Config,
) -> Result<PathBuf, ReportError> {
    let a = analysis::analyse_week_with(store, week, cfg)?;
    write_analysed(store, out, &a, generated_at)
}

/// Write one week's report from its analysis (made once by the caller, e.g. shared
/// with the alert rules evaluated before the report).
pub fn write_analysed(
    store: &Store,
    out: &Path,
    a: &WeekAnalysis,
    generated_at: DateTime<Utc>,
) -> Result<PathBuf, ReportError> {
    if a.rows.is_empty() {
        return Err(ReportError::Invalid(format!(
            "no offers stored for {} ({} to {})",
            a.week, a.from, a.to
        )));
    }
    let gen = generated_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let dir = out.join(&a.week);
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|source| ReportError::Io {
        path: charts_dir.clone(),
        source,
    })?;
    let heads = headlines(a);
    let mut svgs = Vec::new();
    let (chart_list, notes) = chart_set(a);
    let fired = crate::report::alerts::for_week(store, &a.week);
    for (name, c) in chart_list {
        let svg = chart::to_svg(&c, &name)?;
        let p = charts_dir.join(format!("{name}.svg"));
        write_atomic(&p, svg.as_bytes())?;
        chart::write_png(&svg, &name, &charts_dir.join(format!("{name}.png")))?;
        svgs.push((name, svg));
    }
    let names: Vec<String> = svgs.iter().map(|s| s.0.clone()).collect();
    let summary = Summary {
        schema: SCHEMA,
        week: &a.week,
        from: a.from.to_string(),
        to: a.to.to_string(),
        generated_at: generated_at.to_rfc3339(),
        simulated: a.coverage.sample_data,
        price_basis: "usd_per_gpu_hour: published price per GPU-hour in USD at the ECB rate of the observation date",
        rows: &a.rows,
        ratios: &a.ratios,
        coverage: &a.coverage,
        index: &a.index,
        providers: &a.providers,
        provider_pairs: &a.provider_pairs,
        long_view: &a.long_view,
        config: a.config,
        headlines: heads.clone(),
    };
    let files: [(&str, Vec<u8>); 4] = [
        (
            "summary.json",
            serde_json::to_vec_pretty(&summary).expect("summary serialises"),
        ),
        ("summary.csv", summary_csv(a).into_bytes()),
        (
            "report.md",
            markdown(a, &heads, &names, &notes, &fired, &gen).into_bytes(),
        ),
        (
            "index.html",
            html(a, &heads, &svgs, &notes, &fired, &gen).into_bytes(),
        ),
    ];
    for (name, bytes) in files {
        let p = dir.join(name);
        write_atomic(&p, &bytes)?;
    }
    write_index(out)?;
    Ok(dir)
}

/// Every week under `out` that has a readable summary, newest first.
fn summaries(out: &Path) -> Vec<(String, serde_json::Value)> {
    let mut weeks: Vec<(String, serde_json::Value)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if IsoWeek::parse(&name).is_err() {
                continue;
            }
            if let Ok(text) = std::fs::read(e.path().join("summary.json")) {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
                    weeks.push((name, v));
                }
            }
        }
    }
    weeks.sort_by(|a, b| b.0.cmp(&a.0));
    weeks
}

fn is_sim(v: &serde_json::Value) -> bool {
    v["simulated"] == serde_json::Value::Bool(true)
}

fn heads_of(v: &serde_json::Value) -> Vec<&str> {
    v["headlines"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h.as_str()).collect())
        .unwrap_or_default()
}

const NO_HEADLINE: &str = "No model was quoted in both China and the US this week.";
const INDEX_TITLE: &str = "gpurent weekly reports: GPU rental prices, China vs US";

/// Rewrite `<out>/index.html` (the latest week's headlines first, then every week,
/// newest first) and `<out>/feed.xml` (Atom, one entry per week).
pub fn write_index(out: &Path) -> Result<(), ReportError> {
    let weeks = summaries(out);
    let any_sim = weeks.iter().any(|w| is_sim(&w.1));
    let title = label(any_sim, INDEX_TITLE);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><link rel=\"alternate\" type=\"application/atom+xml\" href=\"feed.xml\" title=\"gpurent weekly reports\"><style>{CSS}</style></head><body><h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    if let Some((w, v)) = weeks.first() {
        let heads = heads_of(v);
        let _ = writeln!(
            s,
            "<h2>Latest: <a href=\"{}/index.html\">{}</a>{}</h2><ul>",
            esc(w),
            esc(w),
            sim_tag(v)
        );
        if heads.is_empty() {
            let _ = writeln!(s, "<li>{NO_HEADLINE}</li>");
        }
        for h in heads.iter().take(6) {
            let _ = writeln!(s, "<li>{}</li>", esc(h));
        }
        let _ = writeln!(s, "</ul>");
    } else {
        let _ = writeln!(s, "<p>No weekly report has been written yet.</p>");
    }
    let _ = writeln!(s, "<h2>Every week, newest first</h2><ul>");
    for (w, v) in &weeks {
        let head = heads_of(v).first().copied().unwrap_or(NO_HEADLINE);
        let _ = writeln!(
            s,
            "<li><a href=\"{}/index.html\">{}</a>{}: {}</li>",
            esc(w),
            esc(w),
            sim_tag(v),
            esc(head)
        );
    }
    s.push_str("</ul><p><a href=\"feed.xml\">Atom feed</a></p></body></html>\n");
    let p = out.join("index.html");
    write_atomic(&p, s.as_bytes())?;
    let p = out.join("feed.xml");
    Ok(write_atomic(&p, atom(&weeks).as_bytes())?)
}

fn sim_tag(v: &serde_json::Value) -> String {
    if is_sim(v) {
        format!(" <strong>[{SIMULATED}]</strong>")
    } else {
        String::new()
    }
}

/// The Atom feed of the weeks (newest first). Times come from each summary's
/// `generated_at`, never from the clock.
pub fn atom(weeks: &[(String, serde_json::Value)]) -> String {
    let any_sim = weeks.iter().any(|w| is_sim(&w.1));
    let updated = |v: &serde_json::Value| v["generated_at"].as_str().unwrap_or("").to_string();
    let latest = weeks
        .iter()
        .map(|w| updated(&w.1))
        .max()
        .unwrap_or_else(|| "1970-01-01T00:00:00+00:00".into());
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n  <title>{}</title>\n  <id>urn:gpurent:weekly-reports</id>\n  <updated>{}</updated>\n  <author><name>gpurent</name></author>\n  <link rel=\"alternate\" type=\"text/html\" href=\"index.html\"/>\n  <link rel=\"self\" href=\"feed.xml\"/>\n",
        esc(&label(any_sim, INDEX_TITLE)),
        esc(&latest)
    );
    for (w, v) in weeks {
        let heads = heads_of(v);
        let first = heads.first().copied().unwrap_or(NO_HEADLINE);
        let title = label(is_sim(v), &format!("{w}: {first}"));
        let items: String = heads
            .iter()
            .take(6)
            .map(|h| format!("<li>{}</li>", esc(h)))
            .collect();
        let _ = write!(
            s,
            "  <entry>\n    <title>{}</title>\n    <id>urn:gpurent:weekly-report:{}</id>\n    <updated>{}</updated>\n    <link rel=\"alternate\" type=\"text/html\" href=\"{}/index.html\"/>\n    <summary>{}</summary>\n    <content type=\"html\">{}</content>\n  </entry>\n",
            esc(&title),
            esc(w),
            esc(&updated(v)),
            esc(w),
            esc(&format!("{} to {}. {first}", v["from"].as_str().unwrap_or(""), v["to"].as_str().unwrap_or(""))),
            esc(&format!("<ul>{items}</ul>"))
        );
    }
    s.push_str("</feed>\n");
    s
}

#[cfg(test)]
mod md_tests {
    use super::*;

    #[test]
    fn md_code_spans() {
        let check = |input: &str, expected: &str| assert_eq!(md_code(input), expected, "{input}");
        check("H100", "` H100 `");
        check("<script>alert(1)</script>", "` <script>alert(1)</script> `");
        check("a`b", "`` a`b ``");
        check("a\nb", "` a b `");
    }

    #[test]
    fn md_text_escapes_markup() {
        let check = |input: &str, expected: &str| assert_eq!(md_text(input), expected, "{input}");
        check("aws, gcp", "aws, gcp");
        check("<script>", "\\<script\\>");
        check("on_demand *x* [y]", "on\\_demand \\*x\\* \\[y\\]");
        check("a|b\nc", "a\\|b c");
    }
}
