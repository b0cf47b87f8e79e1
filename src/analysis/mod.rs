//! Analysis: weekly and daily statistics of USD per GPU-hour per model, bloc and
//! price class over the offers in force (`inforce`), provider-balanced headline
//! figures, CN/US ratios per provider segment and per provider pair, the matched-cell
//! chain-linked index and the long view of the main models. METHODOLOGY.md states
//! the method.
//!
//! The store is scanned lazily (only the dates needed) and collected once; the
//! statistics are then plain arithmetic over the offers in force. Invariants: no
//! network I/O, no clock; quantiles interpolate linearly (numpy's default);
//! fractional-GPU offers and implausible prices are counted, not averaged; each offer
//! counts once per period and each provider once per headline figure.

pub mod inforce;
pub mod peers;
pub mod query;
pub mod rollup;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use polars::prelude::*;
use serde::Serialize;

use std::collections::BTreeMap;

use crate::analysis::inforce::{ms, quantile, FastMap, InForce, Standing, DAY_MS, HOUR_MS};
use crate::error::ReportError;
use crate::store::Store;
use crate::tables::{Providers, SEGMENTS};
use crate::week::IsoWeek;

/// Offers below `IMPLAUSIBLE_LOW` or above `IMPLAUSIBLE_HIGH` times the median of
/// their model's observations in the same ISO week are flagged and left out of the
/// statistics (the one outlier rule, applied in `inforce`).
pub const IMPLAUSIBLE_LOW: f64 = 0.1;
pub const IMPLAUSIBLE_HIGH: f64 = 10.0;
/// Cells with fewer offers in force than this are marked thin.
pub const THIN_CELL: u32 = 5;
/// How many unresolved names a week's coverage lists.
pub const UNRESOLVED_LISTED: usize = 20;

/// Analysis settings; the defaults are the constants above.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Config {
    /// Offers below this multiple of their model's median are implausible.
    pub implausible_low: f64,
    /// Offers above this multiple of their model's median are implausible.
    pub implausible_high: f64,
    /// Cells with fewer offers in force are marked thin.
    pub thin_cell: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            implausible_low: IMPLAUSIBLE_LOW,
            implausible_high: IMPLAUSIBLE_HIGH,
            thin_cell: THIN_CELL,
        }
    }
}

/// The last complete ISO week in the store: the week of the latest observed date when
/// that date is a Sunday, else the week before it.
pub fn default_week(store: &Store) -> Result<Option<IsoWeek>, ReportError> {
    Ok(store.latest_offer_date()?.map(|d| {
        let w = IsoWeek::of(d);
        if d.weekday() == Weekday::Sun {
            w
        } else {
            w.prev()
        }
    }))
}

/// Statistics of one (model, bloc, class) cell over the offers in force in a period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatRow {
    pub gpu_model: String,
    pub bloc: String,
    pub price_class: String,
    /// Offers in force in the period, each counted once however often it was seen.
    pub offers: u32,
    /// Same as `offers` (kept for readers of the v1 summary).
    pub distinct_offers: u32,
    /// Stored observations made in the period (one offer in one snapshot counts once).
    pub observations: u32,
    pub providers: u32,
    /// The providers behind the cell, sorted.
    pub provider_names: Vec<String>,
    /// Mean over the hours of GPUs the sources said were available (where they say).
    pub gpus_available_mean: Option<f64>,
    /// Offer-level distribution (each offer in force once).
    pub min: f64,
    pub p10: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p90: f64,
    pub trimmed_mean_10: f64,
    /// The headline figure: the median of the providers' median prices (each provider
    /// counts once).
    pub provider_median: f64,
    /// The same from the prices excluding VAT.
    pub provider_median_ex_vat: f64,
    /// Fewer than `thin_cell` offers in force, or a single provider.
    pub thin: bool,
}

/// CN vs US for one model (or one comparable pair across the export-control line)
/// within one provider segment (or `all`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RatioRow {
    pub gpu_model: String,
    pub cn_model: String,
    pub us_model: String,
    pub price_class: String,
    /// `all`, or one segment of `tables/providers.toml`.
    pub segment: String,
    /// Provider-balanced figures (median of provider medians), as published.
    pub cn_median: f64,
    pub us_median: f64,
    pub cn_us_ratio: f64,
    /// The same from prices excluding VAT.
    pub cn_median_ex_vat: f64,
    pub us_median_ex_vat: f64,
    pub cn_us_ratio_ex_vat: f64,
    pub cn_providers: Vec<String>,
    pub us_providers: Vec<String>,
    pub cn_offers: u32,
    pub us_offers: u32,
    /// Either side is a thin cell.
    pub thin: bool,
    /// `same_model`, or `export_pair` for a China variant against its US counterpart.
    pub kind: String,
}

/// One CN provider against one US provider for the same model and class.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProviderPair {
    pub gpu_model: String,
    pub price_class: String,
    pub cn_provider: String,
    pub us_provider: String,
    pub cn_median: f64,
    pub us_median: f64,
    pub ratio: f64,
    pub cn_offers: u32,
    pub us_offers: u32,
}

/// One day of one cell.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DailyPoint {
    pub date: NaiveDate,
    pub gpu_model: String,
    pub bloc: String,
    pub price_class: String,
    /// Offers in force that day.
    pub offers: u32,
    pub providers: u32,
    /// Observations stored that day.
    pub observations: u32,
    pub gpus_available: f64,
    /// Provider-balanced median.
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
}

/// One week of the long view: the provider-balanced figure of a main model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WeeklyPoint {
    pub monday: NaiveDate,
    pub gpu_model: String,
    pub bloc: String,
    pub price_class: String,
    pub providers: u32,
    pub offers: u32,
    pub median: f64,
}

/// What the week's data do and do not cover.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Coverage {
    /// Observations stored per feed.
    pub feeds: Vec<(String, u32)>,
    /// Offers in force in the period per feed, sorted by feed: the sources of the
    /// period's figures, including list prices observed before it that still stand.
    pub in_force_feeds: Vec<(String, u32)>,
    /// Rejected offers per reason.
    pub rejects: Vec<(String, u32)>,
    /// Observations stored per provider.
    pub providers: Vec<(String, u32)>,
    /// Raw GPU names and instance types that did not resolve, as published:
    /// (provider, name, rejected observations), most frequent first, at most
    /// [`UNRESOLVED_LISTED`].
    pub unresolved_names: Vec<(String, String, u32)>,
    /// Stored / (stored + rejected for an unknown GPU name or instance type); offers of
    /// accelerators that are not GPUs (`not_a_gpu`) count in neither.
    pub resolved_share: f64,
    pub implausible: u32,
    pub fractional: u32,
    pub thin_cells: u32,
    pub sample_data: bool,
}

/// A week's analysis, plus the daily series of the four weeks up to its end.
#[derive(Debug, Clone, Serialize)]
pub struct WeekAnalysis {
    pub index: Vec<IndexPoint>,
    pub providers: Vec<ProviderRow>,
    /// The same per-provider rows for the previous week (for the provider-move alerts).
    pub prev_providers: Vec<ProviderRow>,
    pub provider_pairs: Vec<ProviderPair>,
    /// Weekly provider-balanced figures of the main models over the whole history.
    pub long_view: Vec<WeeklyPoint>,
    pub config: Config,
    pub week: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: Vec<StatRow>,
    pub prev_rows: Vec<StatRow>,
    pub ratios: Vec<RatioRow>,
    pub daily: Vec<DailyPoint>,
    pub coverage: Coverage,
}

/// Comparable pairs across the export-control line: (China variant, US model).
pub const EXPORT_PAIRS: &[(&str, &str)] = &[
    ("H20-96GB", "H100-SXM-80GB"),
    ("H800-SXM-80GB", "H100-SXM-80GB"),
    ("H800-PCIE-80GB", "H100-PCIE-80GB"),
    ("A800-SXM-80GB", "A100-SXM-80GB"),
    ("A800-PCIE-80GB", "A100-PCIE-80GB"),
    ("RTX4090D-24GB", "RTX4090-24GB"),
    ("L20-48GB", "L40S-48GB"),
];

/// The models headlined first, in this order (export pairs follow them).
pub const MAIN_MODELS: &[&str] = &[
    "H100-SXM-80GB",
    "H200-SXM-141GB",
    "B200-SXM-180GB",
    "A100-SXM-80GB",
    "RTX4090-24GB",
];

/// Cells with fewer providers than this are thin.
pub const MIN_PROVIDERS: u32 = 2;

/// Run a lazy query once on the streaming engine.
pub(crate) fn collect(lf: LazyFrame) -> PolarsResult<DataFrame> {
    // A plain query has one sink, so the result is a single frame.
    lf.collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())
}

/// A string column as owned strings ("" for null).
pub(crate) fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect())
}

pub(crate) fn u32s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(df
        .column(name)?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

type CellKey = (String, String, String);

/// The offers in force grouped by (model, bloc, class), optionally of one segment.
fn cells<'a>(st: &'a [Standing<'a>], segment: &str) -> BTreeMap<CellKey, Vec<&'a Standing<'a>>> {
    let seg = Providers::embedded();
    let mut out: BTreeMap<CellKey, Vec<&Standing>> = BTreeMap::new();
    for o in st {
        if segment == "all" || seg.segment(&o.key.provider) == segment {
            let k = &o.key;
            out.entry((k.gpu_model.clone(), k.bloc.clone(), k.price_class.clone()))
                .or_default()
                .push(o);
        }
    }
    out
}

/// Per provider (sorted): its offers' median price, median ex-VAT price, offer count.
fn by_provider(offers: &[&Standing]) -> BTreeMap<String, (f64, f64, u32)> {
    let mut prices: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for o in offers {
        let e = prices.entry(&o.key.provider).or_default();
        e.0.push(o.v);
        e.1.push(o.v_ex_vat);
    }
    prices
        .into_iter()
        .map(|(p, (mut v, mut x))| {
            let n = v.len() as u32;
            (
                p.to_string(),
                (quantile(&mut v, 0.5), quantile(&mut x, 0.5), n),
            )
        })
        .collect()
}

/// The 10% trimmed mean as `scipy.stats.trim_mean(v, 0.1)`: the mean after cutting
/// floor(10% of n) values at each end.
fn trimmed_mean(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 10;
    let kept = &v[cut..v.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

fn stat_row(key: &CellKey, offers: &[&Standing], cfg: &Config) -> StatRow {
    let mut v: Vec<f64> = offers.iter().map(|o| o.v).collect();
    let provs = by_provider(offers);
    let mut pm: Vec<f64> = provs.values().map(|p| p.0).collect();
    let mut px: Vec<f64> = provs.values().map(|p| p.1).collect();
    let n = offers.len() as u32;
    let providers = provs.len() as u32;
    StatRow {
        gpu_model: key.0.clone(),
        bloc: key.1.clone(),
        price_class: key.2.clone(),
        offers: n,
        distinct_offers: n,
        observations: offers.iter().map(|o| o.observations).sum(),
        providers,
        provider_names: provs.keys().cloned().collect(),
        gpus_available_mean: None,
        min: quantile(&mut v, 0.0),
        p10: quantile(&mut v, 0.1),
        p25: quantile(&mut v, 0.25),
        median: quantile(&mut v, 0.5),
        p75: quantile(&mut v, 0.75),
        p90: quantile(&mut v, 0.9),
        trimmed_mean_10: trimmed_mean(&mut v),
        provider_median: quantile(&mut pm, 0.5),
        provider_median_ex_vat: quantile(&mut px, 0.5),
        thin: n < cfg.thin_cell || providers < MIN_PROVIDERS,
    }
}

/// Cell statistics of the offers in force, sorted by model, bloc, class.
pub fn stat_rows(st: &[Standing], segment: &str, cfg: &Config) -> Vec<StatRow> {
    cells(st, segment)
        .iter()
        .map(|(k, offers)| stat_row(k, offers, cfg))
        .collect()
}

/// Mean over the hours of the period of GPUs reported available per cell.
fn availability(inf: &InForce, from: i64, to: i64) -> BTreeMap<CellKey, f64> {
    let mut hours: BTreeMap<(CellKey, i64), f64> = BTreeMap::new();
    for s in inf
        .spans
        .iter()
        .filter(|s| s.usable && s.start >= from && s.start < to)
    {
        if let Some(a) = s.gpus_available() {
            let k = &inf.offers[s.offer()];
            let cell = (k.gpu_model.clone(), k.bloc.clone(), k.price_class.clone());
            *hours
                .entry((cell, s.start.div_euclid(HOUR_MS)))
                .or_default() += a;
        }
    }
    let mut sums: BTreeMap<CellKey, (f64, u32)> = BTreeMap::new();
    for ((cell, _), a) in hours {
        let e = sums.entry(cell).or_default();
        e.0 += a;
        e.1 += 1;
    }
    sums.into_iter()
        .map(|(k, (a, n))| (k, a / n as f64))
        .collect()
}

/// Weekly statistics of the offers in force on dates `from..=to`, sorted by model,
/// bloc, class.
pub fn stats(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Vec<StatRow>, ReportError> {
    let inf = InForce::load(store, from, to, cfg)?;
    Ok(period_stats(&inf, from, to, cfg))
}

fn period_stats(inf: &InForce, from: NaiveDate, to: NaiveDate, cfg: &Config) -> Vec<StatRow> {
    let (a, b) = (ms(from), ms(to) + DAY_MS);
    let avail = availability(inf, a, b);
    let mut rows = stat_rows(&inf.standing(a, b), "all", cfg);
    for r in &mut rows {
        let k = (r.gpu_model.clone(), r.bloc.clone(), r.price_class.clone());
        r.gpus_available_mean = avail.get(&k).copied();
    }
    rows
}

fn ratio_row(cn: &StatRow, us: &StatRow, segment: &str, kind: &str) -> RatioRow {
    let gpu_model = if kind == "same_model" {
        cn.gpu_model.clone()
    } else {
        format!("{} vs {}", cn.gpu_model, us.gpu_model)
    };
    RatioRow {
        gpu_model,
        cn_model: cn.gpu_model.clone(),
        us_model: us.gpu_model.clone(),
        price_class: cn.price_class.clone(),
        segment: segment.to_string(),
        cn_median: cn.provider_median,
        us_median: us.provider_median,
        cn_us_ratio: cn.provider_median / us.provider_median,
        cn_median_ex_vat: cn.provider_median_ex_vat,
        us_median_ex_vat: us.provider_median_ex_vat,
        cn_us_ratio_ex_vat: cn.provider_median_ex_vat / us.provider_median_ex_vat,
        cn_providers: cn.provider_names.clone(),
        us_providers: us.provider_names.clone(),
        cn_offers: cn.offers,
        us_offers: us.offers,
        thin: cn.thin || us.thin,
        kind: kind.to_string(),
    }
}

/// CN/US ratios from cell rows of one segment: the same model in both blocs, then
/// the export pairs.
pub fn ratios(rows: &[StatRow], segment: &str) -> Vec<RatioRow> {
    let find = |model: &str, bloc: &str, class: &str| {
        rows.iter()
            .find(|r| r.gpu_model == model && r.bloc == bloc && r.price_class == class)
    };
    let mut out = Vec::new();
    for cn in rows.iter().filter(|r| r.bloc == "CN") {
        if let Some(us) = find(&cn.gpu_model, "US", &cn.price_class) {
            out.push(ratio_row(cn, us, segment, "same_model"));
        }
    }
    for (cn_model, us_model) in EXPORT_PAIRS {
        for cn in rows
            .iter()
            .filter(|r| r.gpu_model == *cn_model && r.bloc == "CN")
        {
            if let Some(us) = find(us_model, "US", &cn.price_class) {
                out.push(ratio_row(cn, us, segment, "export_pair"));
            }
        }
    }
    out
}

/// Ratios over all providers, then per segment where both blocs have one (a segment
/// row that repeats the `all` row, same providers on both sides, is left out).
pub fn segment_ratios(st: &[Standing], all_rows: &[StatRow], cfg: &Config) -> Vec<RatioRow> {
    let all = ratios(all_rows, "all");
    let mut out = all.clone();
    for seg in SEGMENTS {
        let rows = stat_rows(st, seg, cfg);
        out.extend(ratios(&rows, seg).into_iter().filter(|r| {
            r.kind == "same_model"
                && !all.iter().any(|a| {
                    a.gpu_model == r.gpu_model
                        && a.price_class == r.price_class
                        && a.cn_providers == r.cn_providers
                        && a.us_providers == r.us_providers
                })
        }));
    }
    out
}

/// Each CN provider against each US provider, per model and class.
pub fn provider_pairs(providers: &[ProviderRow]) -> Vec<ProviderPair> {
    let mut out = Vec::new();
    for cn in providers.iter().filter(|p| p.bloc == "CN") {
        for us in providers.iter().filter(|p| {
            p.bloc == "US" && p.gpu_model == cn.gpu_model && p.price_class == cn.price_class
        }) {
            out.push(ProviderPair {
                gpu_model: cn.gpu_model.clone(),
                price_class: cn.price_class.clone(),
                cn_provider: cn.provider.clone(),
                us_provider: us.provider.clone(),
                cn_median: cn.median,
                us_median: us.median,
                ratio: cn.median / us.median,
                cn_offers: cn.offers,
                us_offers: us.offers,
            });
        }
    }
    out
}

/// Daily statistics of the offers in force, sorted by date, model, bloc, class.
pub(crate) fn daily_points(
    inf: &InForce,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Vec<DailyPoint> {
    let mut out = Vec::new();
    let avail = daily_availability(inf, from, to);
    for (date, st) in inf.daily(from, to) {
        let day = ms(date).div_euclid(DAY_MS);
        for (k, offers) in cells(&st, "all") {
            let r = stat_row(&k, &offers, cfg);
            out.push(DailyPoint {
                date,
                gpu_model: r.gpu_model,
                bloc: r.bloc,
                price_class: r.price_class,
                offers: r.offers,
                providers: r.providers,
                observations: r.observations,
                gpus_available: (avail.get(&(day, k.0.as_str(), k.1.as_str(), k.2.as_str())))
                    .copied()
                    .unwrap_or(0.0),
                median: r.provider_median,
                p25: r.p25,
                p75: r.p75,
            });
        }
    }
    out
}

/// GPUs available per (day since the epoch, model, bloc, class): the sum over the
/// usable observations made that day, added in span order, in one pass.
fn daily_availability(
    inf: &InForce,
    from: NaiveDate,
    to: NaiveDate,
) -> FastMap<(i64, &str, &str, &str), f64> {
    let (a, b) = (ms(from), ms(to) + DAY_MS);
    let mut avail = FastMap::default();
    for s in (inf.spans.iter()).filter(|s| s.usable && s.start >= a && s.start < b) {
        let k = &inf.offers[s.offer()];
        let cell = (
            s.start.div_euclid(DAY_MS),
            k.gpu_model.as_str(),
            k.bloc.as_str(),
            k.price_class.as_str(),
        );
        *avail.entry(cell).or_default() += s.gpus_available().unwrap_or(0.0);
    }
    avail
}

/// Daily medians and quartiles of the offers in force on dates `from..=to`.
pub fn daily(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Vec<DailyPoint>, ReportError> {
    let inf = InForce::load(store, from, to, cfg)?;
    Ok(daily_points(&inf, from, to, cfg))
}

/// Coverage of dates `from..=to`; `standing` holds the offers in force in them.
pub fn coverage(
    store: &Store,
    inf: &InForce,
    standing: &[Standing],
    from: NaiveDate,
    to: NaiveDate,
    thin_cells: u32,
) -> Result<Coverage, ReportError> {
    let mut cov = Coverage {
        thin_cells,
        ..Default::default()
    };
    let (a, b) = (ms(from), ms(to) + DAY_MS);
    let seen = inf.spans.iter().filter(|s| s.start >= a && s.start < b);
    for s in seen {
        cov.fractional += u32::from(s.fractional);
        cov.implausible += u32::from(!s.fractional && s.implausible);
    }
    let mut in_force: BTreeMap<&str, u32> = BTreeMap::new();
    for o in standing {
        *in_force.entry(o.key.feed.as_str()).or_default() += 1;
    }
    cov.in_force_feeds = in_force
        .into_iter()
        .map(|(f, n)| (f.to_string(), n))
        .collect();
    let mut stored = 0u32;
    if let Some(lf) = store.scan_offers(Some(from), Some(to))? {
        let df = collect(
            lf.clone()
                .group_by([col("provider")])
                .agg([len().alias("n")])
                .sort(["provider"], Default::default()),
        )?;
        cov.providers = strs(&df, "provider")?
            .into_iter()
            .zip(u32s(&df, "n")?)
            .collect();
        let df = collect(
            lf.group_by([col("feed")])
                .agg([len().alias("n"), col("sample").any(true).alias("sample")])
                .sort(["feed"], Default::default()),
        )?;
        let (f, n) = (strs(&df, "feed")?, u32s(&df, "n")?);
        cov.feeds = f.into_iter().zip(n.iter().copied()).collect();
        stored = n.iter().sum();
        cov.sample_data = df.column("sample")?.bool()?.iter().any(|b| b == Some(true));
    }
    let mut unresolved = 0u32;
    if let Some(lf) = store.scan_rejects(Some(from), Some(to))? {
        let df = collect(
            unresolved_rejects(lf.clone())
                .group_by([col("provider"), col("name")])
                .agg([len().alias("n")])
                .sort_by_exprs(
                    [col("n"), col("provider"), col("name")],
                    SortMultipleOptions::default()
                        .with_order_descending_multi([true, false, false]),
                )
                .limit(UNRESOLVED_LISTED as IdxSize),
        )?;
        let (p, nm, n) = (strs(&df, "provider")?, strs(&df, "name")?, u32s(&df, "n")?);
        cov.unresolved_names = (0..df.height())
            .map(|i| (p[i].clone(), nm[i].clone(), n[i]))
            .collect();
        let df = collect(
            lf.group_by([col("reason")])
                .agg([len().alias("n")])
                .sort(["reason"], Default::default()),
        )?;
        let (r, n) = (strs(&df, "reason")?, u32s(&df, "n")?);
        for (reason, count) in r.iter().zip(&n) {
            if UNRESOLVED_REASONS.contains(&reason.as_str()) {
                unresolved += count;
            }
        }
        cov.rejects = r.into_iter().zip(n).collect();
    }
    cov.resolved_share = if stored + unresolved == 0 {
        f64::NAN
    } else {
        stored as f64 / (stored + unresolved) as f64
    };
    Ok(cov)
}

/// Reject reasons that mean "the tables do not know this name" (not a bad price etc.).
pub const UNRESOLVED_REASONS: [&str; 4] = [
    "unknown_gpu_name",
    "unknown_instance_type",
    "unknown_provider",
    "unknown_region",
];

/// The rejects whose GPU name or instance type did not resolve, with that raw value
/// in a `name` column.
fn unresolved_rejects(rejects: LazyFrame) -> LazyFrame {
    rejects
        .filter(
            UNRESOLVED_REASONS
                .iter()
                .fold(lit(false), |any, r| any.or(col("reason").eq(lit(*r)))),
        )
        .with_column(
            when(col("reason").eq(lit("unknown_instance_type")))
                .then(col("instance_type"))
                .when(col("reason").eq(lit("unknown_provider")))
                .then(col("provider"))
                .when(col("reason").eq(lit("unknown_region")))
                .then(col("provider") + lit("/") + col("region"))
                .otherwise(col("gpu_name_raw"))
                .alias("name"),
        )
}

/// A raw GPU name or instance type that did not resolve, with how often it appeared.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnknownName {
    pub feed: String,
    pub reason: String,
    pub name: String,
    pub count: u32,
}

/// `e`, naming the store's damaged files when it is a failed scan and there are
/// some: what every reader entry point returns, since polars' error names no file.
pub fn naming_damaged(store: &Store, e: ReportError) -> ReportError {
    let scan_failed = matches!(
        e,
        ReportError::Polars(_) | ReportError::Store(crate::error::StoreError::Polars { .. })
    );
    match store.damaged_files() {
        Ok(files) if scan_failed && !files.is_empty() => ReportError::Damaged {
            files,
            source: Box::new(e),
        },
        _ => e,
    }
}

/// Every unresolved GPU name and instance type in the store, most frequent first.
pub fn unknown_names(store: &Store) -> Result<Vec<UnknownName>, ReportError> {
    unknown_names_in(store).map_err(|e| naming_damaged(store, e))
}

fn unknown_names_in(store: &Store) -> Result<Vec<UnknownName>, ReportError> {
    let Some(lf) = store.scan_rejects(None, None)? else {
        return Ok(Vec::new());
    };
    let df = collect(
        unresolved_rejects(lf)
            .group_by([col("feed"), col("reason"), col("name")])
            .agg([len().alias("count")])
            .sort_by_exprs(
                [col("count"), col("feed"), col("name")],
                SortMultipleOptions::default().with_order_descending_multi([true, false, false]),
            ),
    )?;
    let (f, r, n, c) = (
        strs(&df, "feed")?,
        strs(&df, "reason")?,
        strs(&df, "name")?,
        u32s(&df, "count")?,
    );
    Ok((0..df.height())
        .map(|i| UnknownName {
            feed: f[i].clone(),
            reason: r[i].clone(),
            name: n[i].clone(),
            count: c[i],
        })
        .collect())
}

/// One week of a bloc's chain-linked, matched-cell price index.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexPoint {
    pub week: String,
    pub monday: NaiveDate,
    pub bloc: String,
    /// 100 at the bloc's first week with offers in force.
    pub index: f64,
    /// Cells (provider x model x class) in force both this week and the previous
    /// week with data: the link. Same as `cells_matched` (v1 name).
    pub models_matched: u32,
    pub cells_matched: u32,
}

/// One weekly cell of the index: (Monday, "provider|model|class", bloc, median).
pub type IndexCell = (NaiveDate, String, String, f64);

/// Per week from `from` to `to`: each provider's median per (model, bloc, class),
/// the index cells; and the main models' provider-balanced figures (long view).
pub(crate) fn history(
    inf: &InForce,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> (Vec<IndexCell>, Vec<WeeklyPoint>) {
    let (mut cells_out, mut long) = (Vec::new(), Vec::new());
    for (monday, st) in inf.weekly(from, to) {
        for ((model, bloc, class), offers) in cells(&st, "all") {
            if bloc != "CN" && bloc != "US" {
                continue;
            }
            for (p, (median, _, _)) in by_provider(&offers) {
                let cell = format!("{p}|{model}|{class}");
                cells_out.push((monday, cell, bloc.clone(), median));
            }
            if class == "on_demand"
                && MAIN_MODELS
                    .iter()
                    .chain(EXPORT_PAIRS.iter().map(|p| &p.0))
                    .any(|m| *m == model)
            {
                let r = stat_row(&(model, bloc, class), &offers, cfg);
                long.push(WeeklyPoint {
                    monday,
                    gpu_model: r.gpu_model,
                    bloc: r.bloc,
                    price_class: r.price_class,
                    providers: r.providers,
                    offers: r.offers,
                    median: r.provider_median,
                });
            }
        }
    }
    (cells_out, long)
}

/// Chain-link weekly cells into an index per bloc: each week's link is the geometric
/// mean of the price relatives of the cells (provider x model x class) in force in
/// both it and the previous week with data (Jevons over matched items), so a
/// provider or model that appears, disappears or misses a snapshot is not a price
/// move. A week with no matched cell is a gap: no point, and the chain goes on from
/// the last linked week.
pub fn chain_index(cells: &[IndexCell]) -> Vec<IndexPoint> {
    let mut by_bloc: BTreeMap<&str, BTreeMap<NaiveDate, BTreeMap<&str, f64>>> = BTreeMap::new();
    for (monday, cell, bloc, v) in cells {
        if *v > 0.0 && v.is_finite() {
            by_bloc
                .entry(bloc)
                .or_default()
                .entry(*monday)
                .or_default()
                .insert(cell, *v);
        }
    }
    let mut out = Vec::new();
    for (bloc, weeks) in by_bloc {
        let mut prev: Option<(&BTreeMap<&str, f64>, f64)> = None;
        for (monday, cells) in &weeks {
            let point = match prev {
                None => Some((100.0, cells.len() as u32)),
                Some((pm, pi)) => {
                    let rel: Vec<f64> = cells
                        .iter()
                        .filter_map(|(m, v)| pm.get(m).map(|p| (v / p).ln()))
                        .collect();
                    (!rel.is_empty()).then(|| {
                        (
                            pi * (rel.iter().sum::<f64>() / rel.len() as f64).exp(),
                            rel.len() as u32,
                        )
                    })
                }
            };
            if let Some((index, matched)) = point {
                out.push(IndexPoint {
                    week: IsoWeek::of(*monday).label(),
                    monday: *monday,
                    bloc: bloc.to_string(),
                    index,
                    models_matched: matched,
                    cells_matched: matched,
                });
                prev = Some((cells, index));
            }
        }
    }
    out
}

/// One provider's statistics for a model and class in a week (offers in force).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProviderRow {
    pub gpu_model: String,
    pub provider: String,
    pub bloc: String,
    pub price_class: String,
    pub segment: String,
    pub offers: u32,
    pub median: f64,
    pub median_ex_vat: f64,
    pub p25: f64,
    pub p75: f64,
}

/// Per-provider medians of the offers in force, sorted by model, provider, bloc, class.
pub fn provider_rows(st: &[Standing]) -> Vec<ProviderRow> {
    let mut groups: BTreeMap<(&str, &str, &str, &str), Vec<&Standing>> = BTreeMap::new();
    for o in st {
        let k = o.key;
        groups
            .entry((&k.gpu_model, &k.provider, &k.bloc, &k.price_class))
            .or_default()
            .push(o);
    }
    let seg = Providers::embedded();
    groups
        .into_iter()
        .map(|((m, p, b, c), offers)| {
            let mut v: Vec<f64> = offers.iter().map(|o| o.v).collect();
            let mut x: Vec<f64> = offers.iter().map(|o| o.v_ex_vat).collect();
            ProviderRow {
                gpu_model: m.to_string(),
                provider: p.to_string(),
                bloc: b.to_string(),
                price_class: c.to_string(),
                segment: seg.segment(p).to_string(),
                offers: offers.len() as u32,
                median: quantile(&mut v, 0.5),
                median_ex_vat: quantile(&mut x, 0.5),
                p25: quantile(&mut v, 0.25),
                p75: quantile(&mut v, 0.75),
            }
        })
        .collect()
}

/// Analyse one ISO week with the default settings.
pub fn analyse_week(store: &Store, week: IsoWeek) -> Result<WeekAnalysis, ReportError> {
    analyse_week_with(store, week, &Config::default())
}

/// Analyse one ISO week: its offers in force, the previous week's, the daily series
/// over the four weeks ending with it, and the index and long view over every week
/// up to it. Offers are read for the week and the one before (and before them only
/// those that may still stand); the weeks before come from their rollups (`rollup`),
/// read where stored and current, else computed one week at a time. The result
/// equals [`analyse_week_scanning_all`].
pub fn analyse_week_with(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
) -> Result<WeekAnalysis, ReportError> {
    analyse_week_in(store, week, cfg).map_err(|e| naming_damaged(store, e))
}

fn analyse_week_in(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
) -> Result<WeekAnalysis, ReportError> {
    let recent = week.prev();
    let first = first_week(store, recent)?;
    let past = rollup::weeks(store, first, recent.prev(), cfg)?;
    let known = past.known_medians();
    let inf = InForce::load_recent(store, recent.monday(), week.sunday(), cfg, &known, None)?;
    analyse(store, week, cfg, &inf, recent, past)
}

/// The same analysis from one scan of every offer up to the week's end: the
/// reference the rollups are tested against (its cost grows with the history).
pub fn analyse_week_scanning_all(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
) -> Result<WeekAnalysis, ReportError> {
    let first = first_week(store, week)?;
    let inf = InForce::load(store, first.monday(), week.sunday(), cfg)?;
    analyse(store, week, cfg, &inf, first, rollup::Rollup::default())
}

/// The week of the store's first offers, or `week` when that is earlier.
fn first_week(store: &Store, week: IsoWeek) -> Result<IsoWeek, ReportError> {
    Ok(store
        .offer_dates()?
        .first()
        .map_or(week, |d| IsoWeek::of(*d).min(week)))
}

/// The week's figures from `inf` (which holds every offer in force from `scanned`
/// on) and the history of the weeks before `scanned` (`past`).
fn analyse(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
    inf: &InForce,
    scanned: IsoWeek,
    mut past: rollup::Rollup,
) -> Result<WeekAnalysis, ReportError> {
    let (from, to) = (week.monday(), week.sunday());
    let rows = period_stats(inf, from, to, cfg);
    let prev = week.prev();
    let prev_rows = period_stats(inf, prev.monday(), prev.sunday(), cfg);
    let standing = inf.standing(ms(from), ms(to) + DAY_MS);
    let ratios = segment_ratios(&standing, &rows, cfg);
    let providers = provider_rows(&standing);
    let prev_providers =
        provider_rows(&inf.standing(ms(prev.monday()), ms(prev.sunday()) + DAY_MS));
    let provider_pairs = provider_pairs(&providers);
    let daily_from = from - Duration::days(21);
    let mut daily: Vec<DailyPoint> = std::mem::take(&mut past.daily)
        .into_iter()
        .filter(|d| d.date >= daily_from)
        .collect();
    daily.extend(daily_points(inf, daily_from.max(scanned.monday()), to, cfg));
    let thin = rows.iter().filter(|r| r.thin).count() as u32;
    let coverage = coverage(store, inf, &standing, from, to, thin)?;
    let (cells, long) = history(inf, scanned.monday(), to, cfg);
    past.cells.extend(cells);
    past.long.extend(long);
    let index = chain_index(&past.cells);
    Ok(WeekAnalysis {
        week: week.label(),
        from,
        to,
        rows,
        prev_rows,
        ratios,
        daily,
        coverage,
        index,
        providers,
        prev_providers,
        provider_pairs,
        long_view: past.long,
        config: *cfg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn chain_index_ignores_mix_changes() {
        let m = |w: &str, model: &str, v: f64| (d(w), model.to_string(), "CN".to_string(), v);
        // Week 2: A +10%, B -10%, C appears (new, expensive: must not move the index).
        // Week 3: nothing matched (gap). Week 4: A +21% on week 2.
        let rows = vec![
            m("2024-01-01", "A", 1.0),
            m("2024-01-01", "B", 2.0),
            m("2024-01-08", "A", 1.1),
            m("2024-01-08", "B", 1.8),
            m("2024-01-08", "C", 50.0),
            m("2024-01-15", "D", 3.0),
            m("2024-01-22", "A", 1.331),
        ];
        let idx = chain_index(&rows);
        let got: Vec<(String, f64, u32)> = idx
            .iter()
            .map(|p| {
                (
                    p.week.clone(),
                    (p.index * 1e6).round() / 1e6,
                    p.cells_matched,
                )
            })
            .collect();
        let w2 = 100.0 * (1.1f64 * 0.9).sqrt();
        assert_eq!(
            got,
            vec![
                ("2024-W01".into(), 100.0, 2),
                ("2024-W02".into(), (w2 * 1e6).round() / 1e6, 2),
                ("2024-W04".into(), (w2 * 1.21 * 1e6).round() / 1e6, 1),
            ]
        );
    }

    #[test]
    fn iso_weeks() {
        for (s, mon) in [
            ("2024-W01", "2024-01-01"),
            ("2020-W53", "2020-12-28"),
            ("2026-W48", "2026-11-23"),
        ] {
            let w = IsoWeek::parse(s).unwrap();
            assert_eq!(w.monday().to_string(), mon, "{s}");
            assert_eq!(w.label(), s);
        }
        for bad in ["2024-W1", "2024W01", "2021-W53", "x"] {
            assert!(IsoWeek::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            IsoWeek::parse("2024-W01").unwrap().prev().label(),
            "2023-W52"
        );
    }
}
