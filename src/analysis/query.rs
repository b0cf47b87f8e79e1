//! Query commands for market watchers: `gpurent prices` (the latest price in force
//! per provider, see METHODOLOGY.md) and `gpurent history` (one model's median and
//! quartiles per hour, day or ISO week, optionally per provider or segment).
//!
//! Each query is one lazy polars plan over [`Store::scan_offers`] (only the dates
//! needed), run on the streaming engine and collected once into a small [`Table`].
//! Invariants: no network, no clock; rows are sorted; every price is USD per
//! GPU-hour with exactly 4 decimals and the unit in the column name; quantiles
//! interpolate linearly (numpy's default, as in the weekly report); fractional-GPU
//! offers are left out (their per-GPU price is not comparable), and a peer's rows give
//! way to gpurent's own feed of the same provider, model, class and day
//! ([`crate::analysis::peers::prefer_own_sources`]); everything else is counted as
//! stored. One offer seen in one hourly snapshot counts once.

use std::fmt::Write as _;
use std::str::FromStr;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use crate::analysis::inforce::{self, quantile, InForce};
use crate::analysis::{collect, rollup, strs, Config};
use crate::error::ReportError;
use crate::store::Store;
use crate::tables::Providers;
use crate::week::{epoch_days, IsoWeek, DAY_MS, FIRST_MONDAY_MS, HOUR_MS};

/// A word that is none of a query option's choices (`--format`, `--every`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (use {choices})")]
pub struct UnknownChoice {
    pub what: &'static str,
    pub value: String,
    pub choices: &'static str,
}

/// Output format of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    Csv,
    /// An array of objects, one per row, keys as the CSV header.
    Json,
}

impl FromStr for Format {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            _ => Err(UnknownChoice {
                what: "format",
                value: s.to_string(),
                choices: "table, csv or json",
            }),
        }
    }
}

/// The period of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Hour,
    Day,
    /// ISO week, Monday to Sunday (UTC).
    Week,
}

impl FromStr for Every {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "1h" => Ok(Self::Hour),
            "1d" => Ok(Self::Day),
            "1w" => Ok(Self::Week),
            _ => Err(UnknownChoice {
                what: "period",
                value: s.to_string(),
                choices: "1h, 1d or 1w",
            }),
        }
    }
}

/// One cell of a result table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(u64),
    /// USD per GPU-hour, printed with 4 decimals (`None` when undefined).
    Num(Option<f64>),
}

impl Cell {
    fn plain(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(Some(v)) if v.is_finite() => format!("{v:.4}"),
            Cell::Num(_) => String::new(),
        }
    }
    fn json(&self) -> String {
        match self {
            Cell::Text(s) => serde_json::to_string(s).expect("string serialises"),
            Cell::Num(Some(v)) if !v.is_finite() => "null".into(),
            Cell::Num(None) => "null".into(),
            _ => self.plain(),
        }
    }
}

/// A query result: column names (with units) and sorted rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The table in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(&self.columns).expect("write to memory");
                for r in &self.rows {
                    w.write_record(r.iter().map(Cell::plain))
                        .expect("write to memory");
                }
                String::from_utf8(w.into_inner().expect("flush to memory"))
                    .expect("UTF-8 in, UTF-8 out")
            }
            Format::Json => {
                let mut s = String::from("[");
                for (i, r) in self.rows.iter().enumerate() {
                    let fields: Vec<String> = self
                        .columns
                        .iter()
                        .zip(r)
                        .map(|(c, v)| format!("\"{c}\": {}", v.json()))
                        .collect();
                    let _ = write!(
                        s,
                        "{}\n  {{{}}}",
                        if i == 0 { "" } else { "," },
                        fields.join(", ")
                    );
                }
                s.push_str(if self.rows.is_empty() { "]\n" } else { "\n]\n" });
                s
            }
            Format::Table => {
                let cells: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| r.iter().map(Cell::plain).collect())
                    .collect();
                let widths: Vec<usize> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        cells
                            .iter()
                            .map(|r| r[i].chars().count())
                            .max()
                            .unwrap_or(0)
                            .max(c.len())
                    })
                    .collect();
                let numeric: Vec<bool> = (0..self.columns.len())
                    .map(|i| {
                        self.rows
                            .first()
                            .is_some_and(|r| !matches!(r[i], Cell::Text(_)))
                    })
                    .collect();
                let line = |vals: Vec<&str>| {
                    let parts: Vec<String> = vals
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            if numeric[i] {
                                format!("{v:>w$}", w = widths[i])
                            } else {
                                format!("{v:<w$}", w = widths[i])
                            }
                        })
                        .collect();
                    format!("{}\n", parts.join("  ").trim_end())
                };
                let mut s = line(self.columns.clone());
                for r in &cells {
                    s.push_str(&line(r.iter().map(String::as_str).collect()));
                }
                s
            }
        }
    }
}

fn q(name: &str, p: f64) -> Expr {
    col("usd_per_gpu_hour")
        .quantile(lit(p), QuantileMethod::Linear)
        .alias(name)
}

/// Offers, then median, p25, p75 of `usd_per_gpu_hour`.
fn stats() -> [Expr; 4] {
    [
        len().alias("offers"),
        col("usd_per_gpu_hour").median().alias("median"),
        q("p25", 0.25),
        q("p75", 0.75),
    ]
}

fn observed_ms() -> Expr {
    col("observed_at").dt().timestamp(TimeUnit::Milliseconds)
}

fn nums(df: &DataFrame, name: &str) -> PolarsResult<Vec<Cell>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .map(Cell::Num)
        .collect())
}

fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

const PRICE_COLUMNS: [&str; 4] = [
    "offers",
    "median_usd_per_gpu_hour",
    "p25_usd_per_gpu_hour",
    "p75_usd_per_gpu_hour",
];

/// Rows of `df` (grouped by `gpu_model`, `bloc`, `price_class` and a period column
/// `key`, already sorted) with the period labelled by `label`.
fn rows(df: &DataFrame, key: &str, label: impl Fn(i64) -> String) -> PolarsResult<Vec<Vec<Cell>>> {
    let (k, m, b, c) = (
        ints(df, key)?,
        strs(df, "gpu_model")?,
        strs(df, "bloc")?,
        strs(df, "price_class")?,
    );
    let n = ints(df, "offers")?;
    let (med, p25, p75) = (nums(df, "median")?, nums(df, "p25")?, nums(df, "p75")?);
    Ok((0..df.height())
        .map(|i| {
            vec![
                Cell::Text(label(k[i])),
                Cell::Text(m[i].clone()),
                Cell::Text(b[i].clone()),
                Cell::Text(c[i].clone()),
                Cell::Int(n[i].max(0) as u64),
                med[i].clone(),
                p25[i].clone(),
                p75[i].clone(),
            ]
        })
        .collect())
}

fn utc_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// (model, bloc, class, provider).
type ProviderCell<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The latest price in force per provider, model, bloc and class at the store's
/// latest observation time: the provider's median over its offers in force, when
/// its latest price was observed and how old it is then (hours).
pub fn prices(store: &Store) -> Result<Table, ReportError> {
    prices_in(store).map_err(|e| super::naming_damaged(store, e))
}

fn prices_in(store: &Store) -> Result<Table, ReportError> {
    let columns = vec![
        "gpu_model",
        "bloc",
        "price_class",
        "provider",
        "offers",
        "median_usd_per_gpu_hour",
        "observed_at_utc",
        "age_hours",
    ];
    let Some(last) = store.latest_offer_date()? else {
        return Ok(Table {
            columns,
            rows: Vec::new(),
        });
    };
    let cfg = Config::default();
    let week = IsoWeek::of(last);
    // With the earlier weeks' outlier medians stored, only the rows that may stand at
    // the latest observation are read, the current week's medians from its prices
    // alone; otherwise whole weeks back to the longest validity.
    let stored = rollup::stored_medians(store, week, &cfg)?;
    let inf = match (stored, inforce::latest_observation(store, last)?) {
        (Some(mut known), Some(at)) => {
            tracing::debug!("prices: the rows standing at {at} ms, the medians stored");
            known.extend(inforce::week_medians(store, week.monday(), last)?);
            InForce::load_at(store, at, &cfg, &known)?
        }
        _ => {
            tracing::debug!("prices: whole weeks, a rollup missing or stale");
            InForce::load(store, last, last, &cfg)?
        }
    };
    let Some(now) = inf.latest else {
        return Ok(Table {
            columns,
            rows: Vec::new(),
        });
    };
    let mut groups: BTreeMap<ProviderCell, (Vec<f64>, i64)> = BTreeMap::new();
    for o in inf.standing(now, now + 1) {
        let k = o.key;
        let e = groups
            .entry((&k.gpu_model, &k.bloc, &k.price_class, &k.provider))
            .or_insert((Vec::new(), i64::MIN));
        e.0.push(o.v);
        e.1 = e.1.max(o.observed);
    }
    let rows = groups
        .into_iter()
        .map(|((m, b, c, p), (mut v, seen))| {
            vec![
                Cell::Text(m.to_string()),
                Cell::Text(b.to_string()),
                Cell::Text(c.to_string()),
                Cell::Text(p.to_string()),
                Cell::Int(v.len() as u64),
                Cell::Num(Some(quantile(&mut v, 0.5))),
                Cell::Text(utc_ms(seen).format("%Y-%m-%dT%H:%MZ").to_string()),
                Cell::Num(Some((now - seen) as f64 / HOUR_MS as f64)),
            ]
        })
        .collect();
    Ok(Table { columns, rows })
}

/// What `gpurent history` asks for.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Canonical model id, e.g. `H100-SXM-80GB`.
    pub model: String,
    /// `CN`, `US` or `OTHER`; all blocs when `None`.
    pub bloc: Option<String>,
    /// ISO 3166-1 alpha-2 country (e.g. `HK`); all countries when `None`.
    pub country: Option<String>,
    /// `on_demand`, `spot` or `reserved`; all classes when `None`.
    pub class: Option<String>,
    pub every: Every,
    /// First and last observation dates (UTC), inclusive; all when `None`.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// One provider only (the stored `provider` id).
    pub provider: Option<String>,
    /// One segment of `tables/providers.toml` only (`unknown` for unlisted providers).
    pub segment: Option<String>,
    /// A row per provider too (adds a `provider` column).
    pub by_provider: bool,
}

/// The rows of the cell a history asks for. The model, class, provider and segment
/// are part of (or fixed by) the cell a peer row gives way in, so they filter before
/// that window: it then holds one model's rows, not the store's. Bloc, country and
/// fractional GPUs filter after it (an own row of another bloc or a fractional one
/// still makes a peer yield).
fn cell_filter(store: &Store, hq: &HistoryQuery) -> Result<Expr, ReportError> {
    let mut cell = col("gpu_model").eq(lit(hq.model.clone()));
    if let Some(c) = &hq.class {
        cell = cell.and(class_is(c));
    }
    if let Some(p) = &hq.provider {
        cell = cell.and(provider_is(p));
    }
    if let Some(seg) = &hq.segment {
        cell = cell.and(in_segment(store, seg)?);
    }
    Ok(cell)
}

/// A history's `--provider`, `--class`, `--bloc` and `--country` as row tests, the one
/// place their values are normalised (class `on-demand` is `on_demand`; bloc and
/// country upper case), for the query and for naming the filter that leaves nothing.
fn provider_is(p: &str) -> Expr {
    col("provider").eq(lit(p.to_string()))
}

fn class_is(c: &str) -> Expr {
    col("price_class").eq(lit(c.replace('-', "_")))
}

fn bloc_is(b: &str) -> Expr {
    col("bloc").eq(lit(b.to_ascii_uppercase()))
}

fn country_is(c: &str) -> Expr {
    col("country").eq(lit(c.to_ascii_uppercase()))
}

/// A row's provider is one of the store's providers in segment `seg`.
fn in_segment(store: &Store, seg: &str) -> Result<Expr, ReportError> {
    let table = Providers::embedded();
    Ok(providers(store)?
        .into_iter()
        .filter(|p| table.segment(p) == seg)
        .fold(lit(false), |acc, p| acc.or(col("provider").eq(lit(p)))))
}

/// A filter a history was given, as its flag(s) and value(s), e.g. `--bloc CN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenFilter {
    pub label: String,
    /// None of the model's whole-GPU offers passes this filter alone.
    pub matches_nothing: bool,
}

/// The filters `hq` was given besides the model (`--provider`, `--segment`, `--bloc`,
/// `--country`, `--class`, then `--from`/`--to` as one), each marked when it alone
/// leaves none of the model's whole-GPU offers: for a history without rows, which
/// filter to name. One scan of the store, only when `hq` has filters.
pub fn given_filters(store: &Store, hq: &HistoryQuery) -> Result<Vec<GivenFilter>, ReportError> {
    let tests = filter_tests(store, hq)?;
    if tests.is_empty() {
        return Ok(Vec::new());
    }
    let matched: Vec<bool> = match store.scan_offers(None, None)? {
        None => vec![false; tests.len()],
        Some(lf) => {
            let model = col("gpu_model")
                .eq(lit(hq.model.clone()))
                .and(col("fractional_gpu").not());
            let any: Vec<Expr> = tests
                .iter()
                .enumerate()
                .map(|(i, (_, e))| {
                    e.clone()
                        .fill_null(lit(false))
                        .any(true)
                        .alias(format!("f{i}"))
                })
                .collect();
            let df = collect(lf.filter(model).select(any))?;
            (0..tests.len())
                .map(|i| {
                    let c = df.column(&format!("f{i}"))?;
                    Ok(c.bool()?.get(0).unwrap_or(false))
                })
                .collect::<PolarsResult<_>>()?
        }
    };
    Ok(tests
        .into_iter()
        .zip(matched)
        .map(|((label, _), m)| GivenFilter {
            label,
            matches_nothing: !m,
        })
        .collect())
}

/// Each filter `hq` was given besides the model, as its label and the expression a
/// row must pass.
fn filter_tests(store: &Store, hq: &HistoryQuery) -> Result<Vec<(String, Expr)>, ReportError> {
    let day = || {
        col("observed_at")
            .cast(DataType::Date)
            .cast(DataType::Int32)
    };
    let mut tests: Vec<(String, Expr)> = Vec::new();
    if let Some(p) = &hq.provider {
        tests.push((format!("--provider {p}"), provider_is(p)));
    }
    if let Some(seg) = &hq.segment {
        tests.push((format!("--segment {seg}"), in_segment(store, seg)?));
    }
    if let Some(b) = &hq.bloc {
        tests.push((format!("--bloc {b}"), bloc_is(b)));
    }
    if let Some(c) = &hq.country {
        tests.push((format!("--country {c}"), country_is(c)));
    }
    if let Some(c) = &hq.class {
        tests.push((format!("--class {c}"), class_is(c)));
    }
    if hq.from.is_some() || hq.to.is_some() {
        let mut e = lit(true);
        let mut label = Vec::new();
        if let Some(f) = hq.from {
            e = e.and(day().gt_eq(lit(epoch_days(f))));
            label.push(format!("--from {f}"));
        }
        if let Some(t) = hq.to {
            e = e.and(day().lt_eq(lit(epoch_days(t))));
            label.push(format!("--to {t}"));
        }
        tests.push((label.join(" "), e));
    }
    Ok(tests)
}

/// Median, p25, p75 and offer observations of one model per period, bloc and class.
pub fn history(store: &Store, hq: &HistoryQuery) -> Result<Table, ReportError> {
    history_in(store, hq).map_err(|e| super::naming_damaged(store, e))
}

fn history_in(store: &Store, hq: &HistoryQuery) -> Result<Table, ReportError> {
    let mut columns = vec!["period_utc", "gpu_model", "bloc", "price_class"];
    columns.extend(PRICE_COLUMNS);
    if hq.by_provider {
        columns.insert(4, "provider");
    }
    let Some(df) = history_frame(store, hq)? else {
        return Ok(Table {
            columns,
            rows: Vec::new(),
        });
    };
    let every = hq.every;
    let mut rows = rows(&df, "period", |p| {
        let t = utc_ms(p);
        match every {
            Every::Hour => t.format("%Y-%m-%dT%H:00Z").to_string(),
            Every::Day => t.format("%Y-%m-%d").to_string(),
            Every::Week => IsoWeek::of(t.date_naive()).label(),
        }
    })?;
    if hq.by_provider {
        for (r, p) in rows.iter_mut().zip(strs(&df, "provider")?) {
            r.insert(4, Cell::Text(p));
        }
    }
    debug_assert!(rows.iter().all(|r| r.len() == columns.len()));
    Ok(Table { columns, rows })
}

/// Parquet bytes of offers a `history` batch reads at most, unless one day alone
/// holds more: a batch of a dense store is a day or two, of a sparse one a week.
const HISTORY_BATCH_BYTES: u64 = 8 << 20;

/// The history's groups, one batch of dates at a time: quantiles are not a streaming
/// aggregation, so polars holds a plan's input in memory; a batch at a time bounds
/// that by a batch's rows of the model, not the span asked for. No period and no
/// peer-rule day crosses a batch, so the batches' sorted results, stacked in order,
/// are the whole answer, sorted.
fn history_frame(store: &Store, hq: &HistoryQuery) -> Result<Option<DataFrame>, ReportError> {
    let cell = cell_filter(store, hq)?;
    let peers = any_peer_rows(store, hq, &cell)?;
    let mut out: Option<DataFrame> = None;
    for (from, to) in history_batches(store, hq)? {
        let Some(lf) = store.scan_offers(Some(from), Some(to))? else {
            continue;
        };
        let part = collect(history_plan(lf.filter(cell.clone()), hq, peers))?;
        match out.as_mut() {
            Some(df) => {
                df.vstack_mut(&part)?;
            }
            None => out = Some(part),
        }
    }
    Ok(out)
}

/// The date spans (first, last) a history reads one at a time, in order: the dates
/// of one ISO week, for hourly and daily periods split where a batch would read more
/// than [`HISTORY_BATCH_BYTES`] (one call per file, its length, no read).
fn history_batches(
    store: &Store,
    hq: &HistoryQuery,
) -> Result<Vec<(NaiveDate, NaiveDate)>, ReportError> {
    let in_span = |d: &NaiveDate| hq.from.is_none_or(|f| *d >= f) && hq.to.is_none_or(|t| *d <= t);
    let mut days: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for s in store
        .offer_stamps()?
        .into_iter()
        .filter(|s| in_span(&s.date))
    {
        *days.entry(s.date).or_default() += s.len;
    }
    let cap = match hq.every {
        Every::Week => u64::MAX,
        Every::Hour | Every::Day => HISTORY_BATCH_BYTES,
    };
    Ok(split_batches(days, cap))
}

/// Consecutive dates (with their bytes) in spans of one ISO week at most, each
/// holding at most `cap` bytes unless a date alone holds more.
fn split_batches(days: BTreeMap<NaiveDate, u64>, cap: u64) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate, u64)> = Vec::new();
    for (d, bytes) in days {
        match out.last_mut() {
            Some((first, last, sum))
                if IsoWeek::of(*first) == IsoWeek::of(d) && sum.saturating_add(bytes) <= cap =>
            {
                (*last, *sum) = (d, *sum + bytes);
            }
            _ => out.push((d, d, bytes)),
        }
    }
    out.into_iter().map(|(f, l, _)| (f, l)).collect()
}

/// Whether any stored row of the history's cell and span is a peer's (the rule sees
/// that cell's rows only). When none is, the peer rule would drop nothing, and
/// `history` skips it: its unique and join over every row of the model were a third
/// of a year's history. One streaming count, which reads only the row groups of the
/// model in a compacted day.
fn any_peer_rows(store: &Store, hq: &HistoryQuery, cell: &Expr) -> Result<bool, ReportError> {
    let Some(lf) = store.scan_offers(hq.from, hq.to)? else {
        return Ok(false);
    };
    let peer_rows = lf
        .filter(cell.clone().and(crate::analysis::peers::is_peer()))
        .select([len()]);
    let df = collect(peer_rows)?;
    Ok(df.column("len")?.u32()?.get(0).unwrap_or(0) > 0)
}

/// One batch's groups: the peer rule (where the span has peer rows), the remaining
/// filters, periods, statistics.
fn history_plan(lf: LazyFrame, hq: &HistoryQuery, peers: bool) -> LazyFrame {
    let lf = match peers {
        true => crate::analysis::peers::prefer_own_sources(lf),
        false => lf,
    };
    let mut cond = col("fractional_gpu").not();
    if let Some(b) = &hq.bloc {
        cond = cond.and(bloc_is(b));
    }
    if let Some(c) = &hq.country {
        cond = cond.and(country_is(c));
    }
    let ms = observed_ms();
    let period = match hq.every {
        Every::Hour => (ms.clone() / lit(HOUR_MS)) * lit(HOUR_MS),
        Every::Day => (ms.clone() / lit(DAY_MS)) * lit(DAY_MS),
        Every::Week => {
            ((ms - lit(FIRST_MONDAY_MS)) / lit(7 * DAY_MS)) * lit(7 * DAY_MS) + lit(FIRST_MONDAY_MS)
        }
    };
    // The cell filter leaves one model: a constant, added after the grouping rather
    // than concatenated and row-encoded as a key.
    let mut keys = vec![col("period"), col("bloc"), col("price_class")];
    let mut order = vec!["period", "bloc", "price_class"];
    if hq.by_provider {
        keys.push(col("provider"));
        order.push("provider");
    }
    lf.filter(cond)
        .with_column(period.alias("period"))
        .group_by(keys)
        .agg(stats())
        .with_column(lit(hq.model.clone()).alias("gpu_model"))
        .sort(order, Default::default())
}

/// The providers in the store, sorted.
pub fn providers(store: &Store) -> Result<Vec<String>, ReportError> {
    let Some(lf) = store.scan_offers(None, None)? else {
        return Ok(Vec::new());
    };
    let df = collect(
        lf.select([col("provider")])
            .unique(None, UniqueKeepStrategy::Any)
            .sort(["provider"], Default::default()),
    )?;
    Ok(strs(&df, "provider")?)
}

/// The canonical models in the store (for a helpful message when a model has no rows).
pub fn models(store: &Store) -> Result<Vec<String>, ReportError> {
    let Some(lf) = store.scan_offers(None, None)? else {
        return Ok(Vec::new());
    };
    let df = collect(
        lf.select([col("gpu_model")])
            .unique(None, UniqueKeepStrategy::Any)
            .sort(["gpu_model"], Default::default()),
    )?;
    Ok(strs(&df, "gpu_model")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rows: Vec<Vec<Cell>>, format: Format, expected: &str) {
        let t = Table {
            columns: vec!["period_utc", "offers", "median_usd_per_gpu_hour"],
            rows,
        };
        assert_eq!(t.render(format), expected, "{format:?}");
    }

    #[test]
    fn renders_fixed_formats() {
        let rows = || {
            vec![
                vec![
                    Cell::Text("2024-10-07".into()),
                    Cell::Int(3),
                    Cell::Num(Some(2.5)),
                ],
                vec![Cell::Text("a,\"b\"".into()), Cell::Int(12), Cell::Num(None)],
            ]
        };
        check(
            rows(),
            Format::Csv,
            "period_utc,offers,median_usd_per_gpu_hour\n2024-10-07,3,2.5000\n\"a,\"\"b\"\"\",12,\n",
        );
        check(
            rows(),
            Format::Json,
            "[\n  {\"period_utc\": \"2024-10-07\", \"offers\": 3, \"median_usd_per_gpu_hour\": 2.5000},\n  {\"period_utc\": \"a,\\\"b\\\"\", \"offers\": 12, \"median_usd_per_gpu_hour\": null}\n]\n",
        );
        check(
            rows(),
            Format::Table,
            "period_utc  offers  median_usd_per_gpu_hour\n2024-10-07       3                   2.5000\na,\"b\"           12\n",
        );
        check(Vec::new(), Format::Json, "[]\n");
    }

    /// (day of Nov 2026, bytes) and a cap -> the spans (first day, last day).
    fn check_batches(days: &[(u32, u64)], cap: u64, expected: &[(u32, u32)]) {
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        let spans: Vec<_> = expected.iter().map(|(f, l)| (d(*f), d(*l))).collect();
        let map = days.iter().map(|(n, b)| (d(*n), *b)).collect();
        assert_eq!(split_batches(map, cap), spans, "{days:?} cap {cap}");
    }

    #[test]
    fn history_batches_keep_to_a_week_and_the_cap() {
        // 2026-11-16 is a Monday, 2026-11-22 a Sunday.
        check_batches(&[], 10, &[]);
        check_batches(
            &[(16, 1), (17, 1), (22, 1), (23, 1)],
            u64::MAX,
            &[(16, 22), (23, 23)],
        );
        check_batches(
            &[(16, 4), (17, 4), (18, 4), (19, 4)],
            8,
            &[(16, 17), (18, 19)],
        );
        check_batches(&[(16, 20), (17, 1), (18, 1)], 8, &[(16, 16), (17, 18)]);
        check_batches(&[(16, 1), (18, 1), (21, 1)], 2, &[(16, 18), (21, 21)]);
    }

    #[test]
    fn parses_options() {
        assert_eq!("1w".parse::<Every>(), Ok(Every::Week));
        assert_eq!(
            "7d".parse::<Every>().unwrap_err().to_string(),
            "unknown period \"7d\" (use 1h, 1d or 1w)"
        );
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
        assert_eq!(
            "xml".parse::<Format>().unwrap_err().to_string(),
            "unknown format \"xml\" (use table, csv or json)"
        );
    }
}
