//! Peers' data beside gpurent's own feeds: one provider counted once, and where two
//! sources disagree.
//!
//! A peer feed (a catalogue or tracker that republishes providers' prices, e.g.
//! gpuhunt's catalogue) stores its rows with `peer = true`. When gpurent's own feed
//! carries the same provider, GPU model and price class, the own feed wins and the
//! peer's rows for that cell are left out: per period over the offers in force in the
//! weekly statistics (`analysis::inforce`), per observation day in `history`
//! ([`prefer_own_sources`]); where no own feed has the cell, the peer fills the gap.
//! [`crosscheck`] lists the cells where two sources' medians differ by more than a
//! tolerance. Invariant: rows stored before the `peer` column existed are own rows.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::ReportError;
use crate::store::Store;

/// The cell in which sources compete: provider, model, class and observation day.
const CELL: [&str; 4] = ["provider", "gpu_model", "price_class", "day"];

fn day() -> Expr {
    col("observed_at").cast(DataType::Date)
}

/// A row is a peer's: rows without a `peer` value (older stores) count as own rows.
pub(crate) fn is_peer() -> Expr {
    col("peer").fill_null(lit(false))
}

/// Drop peer rows of every (provider, gpu_model, price_class, day) for which an own
/// feed has rows (`is_peer`).
/// The cells with own rows are found first (a small distinct set) and joined back,
/// so the plan streams: no window over every row of the scan.
pub fn prefer_own_sources(lf: LazyFrame) -> LazyFrame {
    let keys = || CELL.iter().map(|c| col(*c)).collect::<Vec<_>>();
    let with_day = lf.with_column(day().alias("day"));
    let own_cells = with_day
        .clone()
        .filter(is_peer().not())
        .select(keys())
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit(true).alias("__own_here"));
    with_day
        .join(own_cells, keys(), keys(), JoinArgs::new(JoinType::Left))
        .filter(is_peer().not().or(col("__own_here").is_null()))
        .drop(cols(["day", "__own_here"]))
}

/// One cell where two sources' medians differ by more than the tolerance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Disagreement {
    pub provider: String,
    pub gpu_model: String,
    pub price_class: String,
    pub day: NaiveDate,
    /// The feed with the lower median and that median, USD per GPU-hour.
    pub low_feed: String,
    pub low_usd: f64,
    pub high_feed: String,
    pub high_usd: f64,
    /// (high - low) / low.
    pub rel_diff: f64,
}

impl Disagreement {
    pub fn header() -> String {
        format!(
            "{:<12}  {:<16}  {:<9}  {:<10}  {:>14}  {:>14}  {:>7}  feeds (low / high)",
            "provider", "model", "class", "day", "low USD/GPU-h", "high USD/GPU-h", "diff"
        )
    }

    /// One fixed-format line; prices in USD per GPU-hour, the difference in percent.
    pub fn line(&self) -> String {
        format!(
            "{:<12}  {:<16}  {:<9}  {:<10}  {:>14.4}  {:>14.4}  {:>6.1}%  {} / {}",
            self.provider,
            self.gpu_model,
            self.price_class,
            self.day,
            self.low_usd,
            self.high_usd,
            self.rel_diff * 100.0,
            self.low_feed,
            self.high_feed
        )
    }
}

/// Per cell and feed, the median USD per GPU-hour of whole-GPU offers.
fn source_medians(lf: LazyFrame) -> LazyFrame {
    let mut keys: Vec<Expr> = CELL.iter().map(|c| col(*c)).collect();
    keys.push(col("feed"));
    lf.filter(col("fractional_gpu").not())
        .with_column(day().alias("day"))
        .group_by(keys.clone())
        .agg([col("usd_per_gpu_hour").median().alias("median")])
        .sort_by_exprs(keys, SortMultipleOptions::default())
}

/// Cells of dates `from..=to` where two sources' medians differ by more than
/// `tolerance` (relative to the lower one), sorted by cell.
pub fn crosscheck(
    store: &Store,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    tolerance: f64,
) -> Result<Vec<Disagreement>, ReportError> {
    crosscheck_in(store, from, to, tolerance).map_err(|e| super::naming_damaged(store, e))
}

fn crosscheck_in(
    store: &Store,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    tolerance: f64,
) -> Result<Vec<Disagreement>, ReportError> {
    let Some(lf) = store.scan_offers(from, to)? else {
        return Ok(Vec::new());
    };
    let df = source_medians(lf).collect()?;
    let s = |c: &str| -> PolarsResult<Vec<String>> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect())
    };
    let (p, m, k, f) = (
        s("provider")?,
        s("gpu_model")?,
        s("price_class")?,
        s("feed")?,
    );
    let days = df.column("day")?.cast(&DataType::Int32)?;
    let days: Vec<Option<i32>> = days.i32()?.iter().collect();
    let med: Vec<Option<f64>> = df.column("median")?.f64()?.iter().collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let mut out = Vec::new();
    let mut i = 0;
    while i < df.height() {
        let mut j = i;
        while j < df.height() && (&p[j], &m[j], &k[j], days[j]) == (&p[i], &m[i], &k[i], days[i]) {
            j += 1;
        }
        let cell: Vec<(f64, &String)> = (i..j).filter_map(|x| med[x].map(|v| (v, &f[x]))).collect();
        let low = cell.iter().min_by(|a, b| a.0.total_cmp(&b.0));
        let high = cell.iter().max_by(|a, b| a.0.total_cmp(&b.0));
        if let (Some(lo), Some(hi), Some(d)) = (low, high, days[i]) {
            let rel = (hi.0 - lo.0) / lo.0;
            if cell.len() > 1 && rel > tolerance {
                out.push(Disagreement {
                    provider: p[i].clone(),
                    gpu_model: m[i].clone(),
                    price_class: k[i].clone(),
                    day: epoch + chrono::Days::new(d as u64),
                    low_feed: lo.1.clone(),
                    low_usd: lo.0,
                    high_feed: hi.1.clone(),
                    high_usd: hi.0,
                    rel_diff: rel,
                });
            }
        }
        i = j;
    }
    Ok(out)
}
