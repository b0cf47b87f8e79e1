//! The weekly report: `<out>/<YYYY-Www>/` with `index.html` (self-contained, inline
//! SVG), `report.md`, `summary.json`, `summary.csv` and `charts/*.svg|png`, plus
//! `<out>/index.html` (the latest week's headlines, then every week, newest first)
//! and `<out>/feed.xml` (an Atom feed, one entry per week).
//!
//! Invariants: no network I/O and no clock (`generated_at` is passed in); every piece
//! of feed-supplied text is HTML-escaped; numbers have a fixed format and a unit;
//! simulated or sample data are labelled in the title, headers and chart captions.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alerts::Firing;
use crate::analysis::{self, IsoWeek, StatRow, WeekAnalysis};
use crate::chart::{self, BarChart, BarGroup, Chart, Line, LineChart, PALETTE};
use crate::error::ReportError;
use crate::fsutil::write_atomic;
use crate::store::Store;

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
    pub config: analysis::Config,
    pub headlines: Vec<String>,
}

fn prev_median(a: &WeekAnalysis, model: &str, bloc: &str, class: &str) -> f64 {
    a.prev_rows
        .iter()
        .find(|r| r.gpu_model == model && r.bloc == bloc && r.price_class == class)
        .map(|r| r.median)
        .unwrap_or(f64::NAN)
}

/// Headline sentences: one per model quoted in both blocs (on-demand first).
pub fn headlines(a: &WeekAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    let mut ratios: Vec<&analysis::RatioRow> = a.ratios.iter().collect();
    ratios.sort_by(|x, y| {
        (
            x.kind != "same_model",
            x.price_class != "on_demand",
            &x.gpu_model,
            &x.price_class,
        )
            .cmp(&(
                y.kind != "same_model",
                y.price_class != "on_demand",
                &y.gpu_model,
                &y.price_class,
            ))
    });
    for r in ratios {
        let prev_cn = prev_median(a, &r.cn_model, "CN", &r.price_class);
        let prev_us = prev_median(a, &r.us_model, "US", &r.price_class);
        let prev_ratio = prev_cn / prev_us;
        let change = if prev_ratio.is_finite() {
            format!(", {} on the week", pct(r.cn_us_ratio / prev_ratio - 1.0))
        } else {
            String::new()
        };
        let class = r.price_class.replace('_', "-");
        if r.kind == "same_model" {
            out.push(format!(
                "{} ({class}): US median {}, CN-hosted {} per GPU-hour, ratio {}{change}",
                r.gpu_model,
                usd(r.us_median),
                usd(r.cn_median),
                num(r.cn_us_ratio, 2)
            ));
        } else {
            out.push(format!(
                "{} in China ({}) against {} in the US ({}) per GPU-hour ({class}): ratio {}{change}",
                r.cn_model,
                usd(r.cn_median),
                r.us_model,
                usd(r.us_median),
                num(r.cn_us_ratio, 2)
            ));
        }
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
    let both: Vec<String> = a
        .ratios
        .iter()
        .filter(|r| r.kind == "same_model" && r.price_class == "on_demand")
        .map(|r| r.gpu_model.clone())
        .collect();
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
                label: format!("{bloc} median"),
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
            "Bands: p25 to p75 of offers per day. Shaded: the report week.",
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
                    "CN" => Some((CN, r.median, r.p25, r.p75)),
                    "US" => Some((US, r.median, r.p25, r.p75)),
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
            caption: caption(a, "Whiskers: p25 to p75."),
            y_label: "USD per GPU-hour".into(),
            series: vec![("CN".into(), PALETTE[CN]), ("US".into(), PALETTE[US])],
            groups,
        })
    })
}

/// Availability: offer observations per day per bloc.
fn availability_chart(a: &WeekAnalysis) -> Chart {
    let sim = a.coverage.sample_data;
    let mut lines = Vec::new();
    for (bloc, ci) in [("CN", CN), ("US", US)] {
        let mut per_day: std::collections::BTreeMap<chrono::NaiveDate, f64> = Default::default();
        for d in a.daily.iter().filter(|d| d.bloc == bloc) {
            *per_day.entry(d.date).or_default() += d.offers as f64;
        }
        lines.push(Line {
            label: format!("{bloc} offer observations"),
            color: PALETTE[ci],
            points: per_day.into_iter().collect(),
            band: Vec::new(),
        });
    }
    let span = span_of(&lines, Some((a.from, a.to))).unwrap_or_default();
    Chart::Line(LineChart {
        title: short_label(sim, &format!("Offers observed per day by bloc, {span}")),
        caption: caption(
            a,
            "One offer seen in one hourly snapshot counts once. Shaded: the report week.",
        ),
        y_label: "offer observations per day".into(),
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
                "On-demand price index by bloc, weeks {} to {}",
                IsoWeek::of(first).label(),
                a.week
            ),
        ),
        caption: caption(
            a,
            "Chain-linked over matched models (geometric mean of median relatives).",
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
        .filter(|p| p.gpu_model == model)
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
        caption: caption(a, "Whiskers: p25 to p75."),
        y_label: "USD per GPU-hour".into(),
        series: blocs
            .iter()
            .enumerate()
            .map(|(i, b)| (b.to_string(), PALETTE[i]))
            .collect(),
        groups,
    }))
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
            "{bloc} {} ({} on the week, {} over four weeks)",
            num(last.index, 1),
            pct1(back(1)),
            pct1(back(4))
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "On-demand price index, mix-adjusted (first week = 100): {}",
            parts.join("; ")
        )
    })
}

fn stat_table_md(rows: &[StatRow]) -> String {
    let mut s = String::from(
        "| model | bloc | class | offers | p25 | median | p75 | min | p90 |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} |",
            r.gpu_model,
            r.bloc,
            r.price_class,
            r.offers,
            if r.thin { " (thin)" } else { "" },
            usd(r.p25),
            usd(r.median),
            usd(r.p75),
            usd(r.min),
            usd(r.p90)
        );
    }
    s
}

/// The methodology paragraph, with the thresholds actually used.
pub fn method(cfg: &analysis::Config) -> String {
    format!("Prices are USD per GPU-hour: each published price is divided by the GPUs in the offer, converted from its unit (per instance, per month of 730 hours, cents, thousandths of a yuan) and from its currency at the ECB reference rate of the observation date or the latest earlier one (at most 7 days). Statistics are over every offer observation of the week (one offer in one hourly snapshot counts once); quantiles interpolate linearly. Fractional-GPU offers and prices under {}x or over {}x their model's median over the week are left out and counted; cells with fewer than {} observations are marked thin. GPU models are never merged across SXM/PCIe or across export variants (H800, H20, A800, RTX 4090D stay apart from H100, A100, RTX 4090); comparable pairs across the export-control line (e.g. H20 in China against H100 in the US) are shown as such. The price index chains week to week the geometric mean of the median price relatives of the models quoted in both weeks (first week = 100), so a change in which models are offered is not a price move. Bloc CN is mainland China; Hong Kong, Macau and Taiwan are OTHER. Prices compared are as published (usd_per_gpu_hour): Chinese list prices may include VAT, US list prices do not; the store also keeps the ex-VAT price.", cfg.implausible_low, cfg.implausible_high, cfg.thin_cell)
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
    let _ = writeln!(s, "## Headlines\n");
    if heads.is_empty() {
        let _ = writeln!(
            s,
            "No model was quoted in both China and the US this week.\n"
        );
    }
    for h in heads {
        let _ = writeln!(s, "- {h}");
    }
    if !fired.is_empty() {
        let _ = writeln!(s, "\n## Alerts\n");
        for f in fired {
            let _ = writeln!(
                s,
                "- {} (rule {}, {})",
                f.message,
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
    for (f, n) in &a.coverage.feeds {
        let _ = writeln!(s, "- feed {f}: {n} offer observations");
    }
    for (r, n) in &a.coverage.rejects {
        let _ = writeln!(s, "- rejected, {r}: {n}");
    }
    for (p, n) in &a.coverage.providers {
        let _ = writeln!(s, "- provider {}: {n} offer observations", md_code(p));
    }
    for (p, name, n) in &a.coverage.unresolved_names {
        let _ = writeln!(
            s,
            "- unresolved name {} (provider {}): {n} rejected observations",
            md_code(name),
            md_code(p)
        );
    }
    let _ = writeln!(
        s,
        "- share of offers whose GPU resolved to a model: {}\n- implausible prices left out: {}\n- fractional-GPU offers left out: {}\n- thin cells (fewer than {} observations): {}\n",
        pct_plain(a.coverage.resolved_share),
        a.coverage.implausible,
        a.coverage.fractional,
        a.config.thin_cell,
        a.coverage.thin_cells
    );
    let _ = writeln!(s, "## Methodology\n\n{}", method(&a.config));
    s
}

fn pct_plain(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

const CSS: &str = "body{font-family:'DejaVu Sans',system-ui,sans-serif;max-width:1000px;margin:0 auto;padding:12px;color:#222;line-height:1.45}li,p,h1,h2{overflow-wrap:anywhere}figure{margin:1em 0;overflow-x:auto}figure svg{min-width:600px}.note{color:#555;font-style:italic}h1{font-size:1.5em}svg{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.85em;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left}.sim{background:#fff3cd;border:2px solid #d39e00;padding:8px;font-weight:bold}.thin{color:#999}";

fn html(
    a: &WeekAnalysis,
    heads: &[String],
    svgs: &[(String, String)],
    notes: &[String],
    fired: &[Firing],
    generated_at: &str,
) -> String {
    let sim = a.coverage.sample_data;
    let title = label(sim, &format!("GPU rental prices, China vs US, {}", a.week));
    let mut s = String::new();
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
    if !fired.is_empty() {
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
    let _ = writeln!(s, "<h2>Charts</h2>");
    for (name, svg) in svgs {
        // The SVG is written by crate::chart from escaped text, without an XML prolog.
        let _ = writeln!(s, "<figure id=\"{}\">{}</figure>", esc(name), svg.trim());
    }
    for n in notes {
        let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(n));
    }
    let _ = writeln!(s, "<h2>Statistics (USD per GPU-hour)</h2><table><tr><th>model</th><th>bloc</th><th>class</th><th>offers</th><th>providers</th><th>p25</th><th>median</th><th>p75</th><th>min</th><th>p90</th><th>10% trimmed mean</th></tr>");
    for r in &a.rows {
        let _ = writeln!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.thin { " class=\"thin\"" } else { "" },
            esc(&r.gpu_model),
            esc(&r.bloc),
            esc(&r.price_class),
            r.offers,
            r.providers,
            usd(r.p25),
            usd(r.median),
            usd(r.p75),
            usd(r.min),
            usd(r.p90),
            usd(r.trimmed_mean_10)
        );
    }
    let _ = writeln!(s, "</table><h2>Coverage</h2><ul>");
    for (f, n) in &a.coverage.feeds {
        let _ = writeln!(s, "<li>feed {}: {n} offer observations</li>", esc(f));
    }
    for (r, n) in &a.coverage.rejects {
        let _ = writeln!(s, "<li>rejected, {}: {n}</li>", esc(r));
    }
    for (p, n) in &a.coverage.providers {
        let _ = writeln!(
            s,
            "<li>provider <code>{}</code>: {n} offer observations</li>",
            esc(p)
        );
    }
    for (p, name, n) in &a.coverage.unresolved_names {
        let _ = writeln!(
            s,
            "<li>unresolved name <code>{}</code> (provider <code>{}</code>): {n} rejected observations</li>",
            esc(name),
            esc(p)
        );
    }
    let _ = writeln!(
        s,
        "<li>share of offers whose GPU resolved to a model: {}</li><li>implausible prices left out: {}</li><li>fractional-GPU offers left out: {}</li><li>thin cells (fewer than {} observations, greyed): {}</li></ul>",
        pct_plain(a.coverage.resolved_share),
        a.coverage.implausible,
        a.coverage.fractional,
        a.config.thin_cell,
        a.coverage.thin_cells
    );
    let _ = writeln!(
        s,
        "<h2>Methodology</h2><p>{}</p>\n</body></html>",
        esc(&method(&a.config))
    );
    s
}

fn io_err(path: &Path) -> impl FnOnce(crate::error::StoreError) -> ReportError + '_ {
    move |e| ReportError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn summary_csv(a: &WeekAnalysis) -> String {
    let mut s = String::from("week,gpu_model,bloc,price_class,offers,distinct_offers,providers,min,p10,p25,median,p75,p90,trimmed_mean_10,thin\n");
    for r in &a.rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            a.week,
            r.gpu_model,
            r.bloc,
            r.price_class,
            r.offers,
            r.distinct_offers,
            r.providers,
            num(r.min, 4),
            num(r.p10, 4),
            num(r.p25, 4),
            num(r.median, 4),
            num(r.p75, 4),
            num(r.p90, 4),
            num(r.trimmed_mean_10, 4),
            r.thin
        );
    }
    s
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
    let heads = headlines(&a);
    let mut svgs = Vec::new();
    let (chart_list, notes) = chart_set(&a);
    let fired = crate::alerts::for_week(store, &a.week);
    for (name, c) in chart_list {
        let svg = chart::to_svg(&c, &name)?;
        let p = charts_dir.join(format!("{name}.svg"));
        write_atomic(&p, svg.as_bytes()).map_err(io_err(&p))?;
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
        config: a.config,
        headlines: heads.clone(),
    };
    let files: [(&str, Vec<u8>); 4] = [
        (
            "summary.json",
            serde_json::to_vec_pretty(&summary).expect("summary serialises"),
        ),
        ("summary.csv", summary_csv(&a).into_bytes()),
        (
            "report.md",
            markdown(&a, &heads, &names, &notes, &fired, &gen).into_bytes(),
        ),
        (
            "index.html",
            html(&a, &heads, &svgs, &notes, &fired, &gen).into_bytes(),
        ),
    ];
    for (name, bytes) in files {
        let p = dir.join(name);
        write_atomic(&p, &bytes).map_err(io_err(&p))?;
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
    write_atomic(&p, s.as_bytes()).map_err(io_err(&p))?;
    let p = out.join("feed.xml");
    write_atomic(&p, atom(&weeks).as_bytes()).map_err(io_err(&p))
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
}
