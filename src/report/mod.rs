//! The weekly report: `<out>/<YYYY-Www>/` with `index.html` (self-contained, inline
//! SVG), `report.md`, `summary.json`, `summary.csv` and `charts/*.svg|png`, plus
//! `<out>/index.html` (the latest week's headlines, then every week, newest first)
//! and `<out>/feed.xml` (an Atom feed, one entry per week).
//!
//! The parts: `text` (numbers, headlines, method), `figures` (which charts, from
//! which series), `chart` (drawing), `page` (the `WeekPage` both pages show), `html`
//! and `markdown` (its renderings), `site` (the reports index and feed), `alerts`.
//!
//! Invariants: no network I/O and no clock (`generated_at` is passed in); every piece
//! of feed-supplied text is escaped (by maud in HTML, by construction); numbers have a
//! fixed format and a unit; simulated or sample data are labelled in the title,
//! headers and chart captions.

pub mod alerts;
pub mod chart;
mod figures;
mod html;
mod markdown;
mod page;
mod site;
mod text;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::analysis::{self, StatRow, WeekAnalysis};
use crate::error::ReportError;
use crate::store::fsutil::{remove_stale_tmp, write_atomic};
use crate::store::Store;
use crate::week::IsoWeek;

pub use figures::{chart_set, charts};
pub use markdown::{md_code, md_text};
pub use site::{atom, esc, write_index};
pub use text::{banners, headlines, index_headline, method, usd, HEADLINES_KEPT};

use page::WeekPage;
use text::num;

pub const SCHEMA: &str = "gpurent.summary.v1";
pub const SIMULATED: &str = "SIMULATED DATA, not market prices";

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
    // What a crashed report left where readers look (no store lock covers `out`).
    for d in [out.to_path_buf(), dir.clone(), dir.join("charts")] {
        remove_stale_tmp(&d)?;
    }
    let heads = headlines(a);
    let drawn = write_charts(a, &dir.join("charts"))?;
    let fired = alerts::for_week(store, &a.week);
    let page = WeekPage::new(a, &heads, &drawn.svgs, &drawn.notes, &fired, &gen);
    let files: [(&str, Vec<u8>); 4] = [
        ("summary.json", summary_json(a, generated_at, &heads)),
        ("summary.csv", summary_csv(a).into_bytes()),
        ("report.md", markdown::week_page(&page).into_bytes()),
        ("index.html", html::week_page(&page).into_bytes()),
    ];
    for (name, bytes) in files {
        write_atomic(&dir.join(name), &bytes)?;
    }
    write_index(out)?;
    Ok(dir)
}

/// The charts of a week as drawn.
struct Drawn {
    /// Each chart's file stem and SVG text.
    svgs: Vec<(String, String)>,
    /// One line for each chart left out, and why.
    notes: Vec<String>,
}

/// Draw the week's charts into `charts_dir` (SVG and PNG).
fn write_charts(a: &WeekAnalysis, charts_dir: &Path) -> Result<Drawn, ReportError> {
    std::fs::create_dir_all(charts_dir).map_err(|source| ReportError::Io {
        path: charts_dir.to_path_buf(),
        source,
    })?;
    let (chart_list, notes) = chart_set(a);
    let mut svgs = Vec::new();
    for (name, c) in chart_list {
        let svg = chart::to_svg(&c, &name)?;
        write_atomic(&charts_dir.join(format!("{name}.svg")), svg.as_bytes())?;
        chart::write_png(&svg, &name, &charts_dir.join(format!("{name}.png")))?;
        svgs.push((name, svg));
    }
    Ok(Drawn { svgs, notes })
}

/// `summary.json`, pretty-printed.
fn summary_json(a: &WeekAnalysis, generated_at: DateTime<Utc>, heads: &[String]) -> Vec<u8> {
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
        headlines: heads.to_vec(),
    };
    serde_json::to_vec_pretty(&summary).expect("summary serialises")
}
