//! The charts of a week (which are drawn, from which series, with which titles and
//! captions) and one note for each chart left out and why; `chart` draws them.
//!
//! Invariants: a chart's title span agrees with its x axis; simulated data are
//! labelled in titles and captions; a chart with no point is never drawn.

use std::collections::BTreeSet;

use crate::analysis::{self, WeekAnalysis};
use crate::report::chart::{
    model_color, BarChart, BarGroup, Chart, Line, LineChart, Reference, OTHER_BLOC, PALETTE,
};
use crate::week::IsoWeek;

use super::text::{label, short_label};

const CN: usize = 0;
const US: usize = 1;

/// The feeds whose offers were in force in the week (not only those observed in it:
/// a list price observed earlier still stands), `None` when no offer was.
fn week_feeds(a: &WeekAnalysis) -> Option<String> {
    let feeds: Vec<&str> = a
        .coverage
        .in_force_feeds
        .iter()
        .map(|f| f.0.as_str())
        .collect();
    (!feeds.is_empty()).then(|| format!("gpurent feeds {}", feeds.join(", ")))
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

/// Models quoted on demand in both blocs this week, the models a market watcher
/// looks for first (H100, H200, B200, A100, RTX 4090) first.
fn in_both_blocs(a: &WeekAnalysis) -> Vec<String> {
    let mut both: Vec<String> = a
        .ratios
        .iter()
        .filter(|r| r.kind == "same_model" && r.price_class == "on_demand" && r.segment == "all")
        .map(|r| r.gpu_model.clone())
        .collect();
    both.sort_by_key(|m| {
        let main = analysis::MAIN_MODELS.iter().position(|x| x == m);
        (main.unwrap_or(usize::MAX), m.clone())
    });
    both
}

/// The charts of a week, by file stem, and one line for each chart left out and why.
pub fn chart_set(a: &WeekAnalysis) -> (Vec<(String, Chart)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let both = in_both_blocs(a);
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
    let sources = week_feeds(a).unwrap_or_else(|| "no offer in force this week".into());
    label(
        a.coverage.sample_data,
        &format!("Sources: {sources}. {extra}"),
    )
}

/// [`caption`] for a chart whose points reach before the week: the sources named are
/// the week's; an earlier point's are the feeds in force in its own week.
fn span_caption(a: &WeekAnalysis, extra: &str) -> String {
    let week = match week_feeds(a) {
        Some(feeds) => format!("{feeds} this week"),
        None => "no offer in force this week".into(),
    };
    let s = format!("Sources: {week}; earlier points, the feeds of their weeks. {extra}");
    label(a.coverage.sample_data, &s)
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
        caption: span_caption(
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
                // A model never takes a bloc's colour.
                color: model_color(i),
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
        caption: span_caption(
            a,
            "Below 1.0: cheaper in China. Ratio of medians in USD per GPU-hour. Shaded: the report week.",
        ),
        y_label: "CN median / US median".into(),
        lines,
        reference: Some(Reference {
            value: 1.0,
            name: "parity, CN = US".into(),
        }),
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
        caption: span_caption(
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
        caption: span_caption(
            a,
            "Chain-linked Jevons index over cells (provider x model x class) in force in both adjacent weeks.",
        ),
        y_label: "index (first week = 100)".into(),
        lines,
        reference: Some(Reference {
            value: 100.0,
            name: "first week".into(),
        }),
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
        // OTHER is grey: no colour but CN's and US's own reads as a bloc.
        series: blocs
            .iter()
            .zip([PALETTE[CN], PALETTE[US], OTHER_BLOC])
            .map(|(b, colour)| (b.to_string(), colour))
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
                caption: span_caption(a, "Median of provider medians of the offers in force each week; gaps: no offer in force."),
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
