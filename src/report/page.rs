//! One week's report as its pages show it: `WeekPage`, built once from the week's
//! analysis, holds every section (title, period, banners, headlines, tables, alerts,
//! charts and their notes, statistics, coverage, method) as plain text; `html` and
//! `markdown` render the same `WeekPage`, so the two pages cannot drift apart.
//!
//! Invariants: nothing here is escaped or formatted for a markup; text a feed
//! supplied stays apart from our own words where a renderer shows it differently
//! (`Part::Code`); tables hold their cells already formatted (4-decimal USD).

use crate::analysis::{self, StatRow, WeekAnalysis};
use crate::report::alerts::Firing;

use super::text::{banners, label, method, num, pct_plain, usd};

/// A week's report, ready for a renderer.
pub struct WeekPage<'a> {
    /// "GPU rental prices, China vs US, <week>", labelled when simulated.
    pub title: String,
    pub simulated: bool,
    /// "<from> to <to> (UTC). Generated <time>."
    pub period: String,
    /// No-CN / no-US data warnings.
    pub banners: Vec<String>,
    pub headlines: &'a [String],
    /// The comparison tables: (heading, table).
    pub tables: Vec<(&'static str, Table)>,
    pub alerts: &'a [Firing],
    /// The charts drawn: (file stem, SVG text written by `chart`).
    pub charts: &'a [(String, String)],
    /// One line per chart left out, and why.
    pub chart_notes: &'a [String],
    pub statistics: Vec<StatLine>,
    pub coverage: Vec<Vec<Part>>,
    pub method: String,
}

impl<'a> WeekPage<'a> {
    /// The page of week `a`: its headlines, charts (with notes) and alert firings are
    /// made by the caller, since `summary.json` and the chart files use them too.
    pub fn new(
        a: &WeekAnalysis,
        headlines: &'a [String],
        charts: &'a [(String, String)],
        chart_notes: &'a [String],
        alerts: &'a [Firing],
        generated_at: &str,
    ) -> Self {
        let simulated = a.coverage.sample_data;
        WeekPage {
            title: label(
                simulated,
                &format!("GPU rental prices, China vs US, {}", a.week),
            ),
            simulated,
            period: format!("{} to {} (UTC). Generated {generated_at}.", a.from, a.to),
            banners: banners(a),
            headlines,
            tables: tables(a),
            alerts,
            charts,
            chart_notes,
            statistics: a.rows.iter().map(StatLine::of).collect(),
            coverage: coverage_lines(a),
            method: method(&a.config),
        }
    }
}

/// A table for both renderings: header and rows of plain text.
pub struct Table {
    pub head: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// One row of the statistics table, formatted (`$1.23`, `n/a`).
pub struct StatLine {
    pub gpu_model: String,
    pub bloc: String,
    pub price_class: String,
    pub offers: u32,
    pub providers: u32,
    pub thin: bool,
    /// provider-balanced, p25, median, p75, min, p90, 10% trimmed mean.
    pub usd: [String; 7],
}

impl StatLine {
    fn of(r: &StatRow) -> Self {
        StatLine {
            gpu_model: r.gpu_model.clone(),
            bloc: r.bloc.clone(),
            price_class: r.price_class.clone(),
            offers: r.offers,
            providers: r.providers,
            thin: r.thin,
            usd: [
                r.provider_median,
                r.p25,
                r.median,
                r.p75,
                r.min,
                r.p90,
                r.trimmed_mean_10,
            ]
            .map(usd),
        }
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

/// A piece of a report line: our own words and numbers, or a name a feed supplied
/// (shown as code, escaped for the format).
pub enum Part {
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
    for (f, n) in &c.in_force_feeds {
        out.push(vec![text(format!("feed {f}: {n} offers in force"))]);
    }
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
