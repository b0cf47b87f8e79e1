//! The benchmark's outputs: the table (Markdown, one row per scale and operation,
//! units in the headers, ratios gpurent / DuckDB) and, when more than one scale ran,
//! two charts of the weekly report's time and peak RSS against rows stored, drawn by
//! the project's own chart code (`report::chart`, SVG).
//!
//! The charts are horizontal bar charts with one group per store size: `LineChart`'s
//! x axis is calendar dates, which rows stored are not. Everything is labelled
//! SIMULATED.

use std::path::{Path, PathBuf};

use gpurent::report::chart::{self, BarChart, BarGroup, Chart, PALETTE};

use crate::ops::{Measured, Side};

pub const HEADER: &str = "| scale | rows stored | store MiB | operation | gpurent s | gpurent peak RSS MiB | DuckDB s | DuckDB RSS MiB | time ratio | RSS ratio | agree |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|";

/// One Markdown row.
pub fn row(m: &Measured) -> String {
    let (gs, gr) = cells(&m.gpurent);
    let (ds, dr) = m
        .duckdb
        .as_ref()
        .map_or(("no DuckDB".into(), "".into()), cells);
    let d = m.duckdb.as_ref();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    };
    format!(
        "| {} | {} | {:.0} | {} | {gs} | {gr} | {ds} | {dr} | {} | {} | {} |",
        m.scale.label,
        thousands(m.store.rows),
        m.store.offers_mib,
        m.op,
        ratio(m.gpurent.wall_s(), d.and_then(Side::wall_s)),
        ratio(m.gpurent.rss_mib(), d.and_then(Side::rss_mib)),
        m.agree
    )
}

/// Seconds and peak RSS of a side, or how its first failing run ended.
fn cells(s: &Side) -> (String, String) {
    if let Some(f) = s.failure() {
        let at = if f.wall_s.is_finite() {
            format!(" after {:.1} s", f.wall_s)
        } else {
            String::new()
        };
        return (
            format!("FAILED: {}{at}", f.outcome.text()),
            format!("≥ {:.0}", f.peak_rss_mib),
        );
    }
    match (s.wall_s(), s.rss_mib()) {
        (Some(t), Some(r)) => (format!("{t:.2}"), format!("{r:.0}")),
        _ => ("–".into(), "–".into()),
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report rows' charts under `dir`; the files written.
pub fn plot(measured: &[Measured], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let reports: Vec<&Measured> = measured
        .iter()
        .filter(|m| m.op.starts_with("report"))
        .collect();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for (name, what, unit, get) in [
        (
            "scale-report-time.svg",
            "wall time",
            "seconds (median of runs)",
            Side::wall_s as fn(&Side) -> Option<f64>,
        ),
        (
            "scale-report-rss.svg",
            "peak RSS",
            "MiB (median of runs)",
            Side::rss_mib,
        ),
    ] {
        let chart = bars(&reports, what, unit, get);
        let svg = chart::to_svg(&Chart::Bar(chart), name).map_err(|e| e.to_string())?;
        let path = dir.join(name);
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

fn bars(reports: &[&Measured], what: &str, unit: &str, get: fn(&Side) -> Option<f64>) -> BarChart {
    let groups = reports
        .iter()
        .map(|m| {
            let mut bars = Vec::new();
            for (i, side) in [Some(&m.gpurent), m.duckdb.as_ref()]
                .into_iter()
                .enumerate()
            {
                if let Some(v) = side.and_then(get) {
                    bars.push((i, v, f64::NAN, f64::NAN));
                }
            }
            BarGroup {
                label: format!(
                    "{:.1} M rows ({})",
                    m.store.rows as f64 / 1e6,
                    m.scale.label
                ),
                bars,
            }
        })
        .collect();
    BarChart {
        title: format!("SIMULATED stores: weekly report {what} against rows stored"),
        caption: "gpurent report (the whole report) beside DuckDB computing the week's statistics (sql/weekly_stats.sql), 2 threads, on the same files. A missing gpurent bar: the run failed (see the table).".into(),
        y_label: unit.into(),
        series: vec![("gpurent".into(), PALETTE[1]), ("DuckDB".into(), PALETTE[2])],
        groups,
    }
}
