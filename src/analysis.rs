//! Analysis: weekly and daily statistics of USD per GPU-hour per model, bloc and
//! price class, the CN/US ratios and the data coverage of a week.
//!
//! Everything is a lazy polars query over the store's scan of just the dates needed,
//! run on the streaming engine and collected at the edge into small result rows.
//! Invariants: no network I/O, no clock; quantiles interpolate linearly (numpy's
//! default); fractional-GPU offers and implausible prices are counted, not averaged.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use polars::prelude::*;
use serde::Serialize;

use crate::error::ReportError;
use crate::store::Store;

/// Offers below `IMPLAUSIBLE_LOW` or above `IMPLAUSIBLE_HIGH` times their model's
/// median over the analysed window are flagged and left out of the statistics.
pub const IMPLAUSIBLE_LOW: f64 = 0.1;
pub const IMPLAUSIBLE_HIGH: f64 = 10.0;
/// Cells with fewer observations than this are marked thin.
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
    /// Cells with fewer observations are marked thin.
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

/// An ISO week: `YYYY-Www`, Monday to Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u32,
}

impl IsoWeek {
    pub fn parse(s: &str) -> Result<Self, ReportError> {
        let bad = || {
            ReportError::Invalid(format!(
                "week {s:?} is not of the form YYYY-Www (e.g. 2024-W07)"
            ))
        };
        let (y, w) = s.split_once("-W").ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let week: u32 = w.parse().map_err(|_| bad())?;
        if w.len() != 2 || NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).is_none() {
            return Err(bad());
        }
        Ok(Self { year, week })
    }
    pub fn of(d: NaiveDate) -> Self {
        let iw = d.iso_week();
        Self {
            year: iw.year(),
            week: iw.week(),
        }
    }
    pub fn monday(&self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon).expect("validated week")
    }
    pub fn sunday(&self) -> NaiveDate {
        self.monday() + Duration::days(6)
    }
    pub fn prev(&self) -> Self {
        Self::of(self.monday() - Duration::days(7))
    }
    pub fn label(&self) -> String {
        format!("{}-W{:02}", self.year, self.week)
    }
}

/// The last complete ISO week in the store: the week of the latest observed date when
/// that date is a Sunday, else the week before it.
pub fn default_week(store: &Store) -> Result<Option<IsoWeek>, ReportError> {
    let dates = store.offer_dates()?;
    Ok(dates.last().map(|d| {
        let w = IsoWeek::of(*d);
        if d.weekday() == Weekday::Sun {
            w
        } else {
            w.prev()
        }
    }))
}

/// Statistics of one (model, bloc, class) cell.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatRow {
    pub gpu_model: String,
    pub bloc: String,
    pub price_class: String,
    /// Offer observations (one offer seen in one hour counts once).
    pub offers: u32,
    pub distinct_offers: u32,
    pub providers: u32,
    /// Mean over the hours of GPUs the sources said were available (where they say).
    pub gpus_available_mean: Option<f64>,
    pub min: f64,
    pub p10: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p90: f64,
    pub trimmed_mean_10: f64,
    pub thin: bool,
}

/// CN vs US for one model (or one comparable pair across the export-control line).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RatioRow {
    pub gpu_model: String,
    pub cn_model: String,
    pub us_model: String,
    pub price_class: String,
    pub cn_median: f64,
    pub us_median: f64,
    pub cn_us_ratio: f64,
    /// `same_model`, or `export_pair` for a China variant against its US counterpart.
    pub kind: String,
}

/// One day of one cell.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DailyPoint {
    pub date: NaiveDate,
    pub gpu_model: String,
    pub bloc: String,
    pub price_class: String,
    pub offers: u32,
    pub gpus_available: f64,
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
}

/// What the week's data do and do not cover.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Coverage {
    /// Observations stored per feed.
    pub feeds: Vec<(String, u32)>,
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

/// Offers that enter statistics: whole GPUs at a plausible price.
fn usable() -> Expr {
    col("fractional_gpu").not().and(col("implausible").not())
}

fn q(name: &str, p: f64) -> Expr {
    col("v")
        .quantile(lit(p), QuantileMethod::Linear)
        .alias(name)
}

/// The offers of dates `from..=to` with `v` (USD/GPU-hour), `date` and the flags.
fn base(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Option<LazyFrame>, ReportError> {
    let Some(lf) = store.scan_offers(Some(from), Some(to))? else {
        return Ok(None);
    };
    let lf = crate::peers::prefer_own_sources(lf);
    let model_median = col("usd_per_gpu_hour").median().over([col("gpu_model")])?;
    Ok(Some(
        lf.with_columns([
            col("observed_at").cast(DataType::Date).alias("date"),
            col("usd_per_gpu_hour").alias("v"),
        ])
        .with_column(
            (col("v")
                .lt(model_median.clone() * lit(cfg.implausible_low))
                .or(col("v").gt(model_median * lit(cfg.implausible_high))))
            .alias("implausible"),
        ),
    ))
}

fn collect(lf: LazyFrame) -> PolarsResult<DataFrame> {
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

fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .collect())
}

fn u32s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(df
        .column(name)?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

/// Weekly statistics of dates `from..=to`, sorted by model, bloc, class.
pub fn stats(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Vec<StatRow>, ReportError> {
    let Some(lf) = base(store, from, to, cfg)? else {
        return Ok(Vec::new());
    };
    let trimmed = col("v")
        .filter(
            col("v")
                .gt_eq(col("v").quantile(lit(0.1), QuantileMethod::Linear))
                .and(col("v").lt_eq(col("v").quantile(lit(0.9), QuantileMethod::Linear))),
        )
        .mean()
        .alias("trimmed_mean_10");
    let hourly_avail = lf
        .clone()
        .filter(usable())
        .group_by([
            col("gpu_model"),
            col("bloc"),
            col("price_class"),
            col("observed_at"),
        ])
        .agg([
            col("gpus_available").sum().alias("avail"),
            col("gpus_available").count().alias("n_avail"),
        ])
        .group_by([col("gpu_model"), col("bloc"), col("price_class")])
        .agg([col("avail")
            .filter(col("n_avail").gt(lit(0)))
            .mean()
            .alias("gpus_available_mean")]);
    let df = collect(
        lf.filter(usable())
            .group_by([col("gpu_model"), col("bloc"), col("price_class")])
            .agg([
                len().alias("offers"),
                col("offer_id").n_unique().alias("distinct_offers"),
                col("provider").n_unique().alias("providers"),
                col("v").min().alias("min"),
                q("p10", 0.1),
                q("p25", 0.25),
                col("v").median().alias("median"),
                q("p75", 0.75),
                q("p90", 0.9),
                trimmed,
            ])
            .join(
                hourly_avail,
                [col("gpu_model"), col("bloc"), col("price_class")],
                [col("gpu_model"), col("bloc"), col("price_class")],
                JoinArgs::new(JoinType::Left),
            )
            .sort(["gpu_model", "bloc", "price_class"], Default::default()),
    )?;
    let (m, b, c) = (
        strs(&df, "gpu_model")?,
        strs(&df, "bloc")?,
        strs(&df, "price_class")?,
    );
    let (n, d, p) = (
        u32s(&df, "offers")?,
        u32s(&df, "distinct_offers")?,
        u32s(&df, "providers")?,
    );
    let cols: Vec<Vec<Option<f64>>> = [
        "min",
        "p10",
        "p25",
        "median",
        "p75",
        "p90",
        "trimmed_mean_10",
        "gpus_available_mean",
    ]
    .iter()
    .map(|c| f64s(&df, c))
    .collect::<PolarsResult<_>>()?;
    Ok((0..df.height())
        .map(|i| StatRow {
            gpu_model: m[i].clone(),
            bloc: b[i].clone(),
            price_class: c[i].clone(),
            offers: n[i],
            distinct_offers: d[i],
            providers: p[i],
            gpus_available_mean: cols[7][i],
            min: cols[0][i].unwrap_or(f64::NAN),
            p10: cols[1][i].unwrap_or(f64::NAN),
            p25: cols[2][i].unwrap_or(f64::NAN),
            median: cols[3][i].unwrap_or(f64::NAN),
            p75: cols[4][i].unwrap_or(f64::NAN),
            p90: cols[5][i].unwrap_or(f64::NAN),
            trimmed_mean_10: cols[6][i].unwrap_or(f64::NAN),
            thin: n[i] < cfg.thin_cell,
        })
        .collect())
}

/// CN/US ratios from weekly rows: the same model in both blocs, then the export pairs.
pub fn ratios(rows: &[StatRow]) -> Vec<RatioRow> {
    let find = |model: &str, bloc: &str, class: &str| {
        rows.iter()
            .find(|r| r.gpu_model == model && r.bloc == bloc && r.price_class == class)
    };
    let mut out = Vec::new();
    for cn in rows.iter().filter(|r| r.bloc == "CN") {
        if let Some(us) = find(&cn.gpu_model, "US", &cn.price_class) {
            out.push(RatioRow {
                gpu_model: cn.gpu_model.clone(),
                cn_model: cn.gpu_model.clone(),
                us_model: us.gpu_model.clone(),
                price_class: cn.price_class.clone(),
                cn_median: cn.median,
                us_median: us.median,
                cn_us_ratio: cn.median / us.median,
                kind: "same_model".into(),
            });
        }
    }
    for (cn_model, us_model) in EXPORT_PAIRS {
        for cn in rows
            .iter()
            .filter(|r| r.gpu_model == *cn_model && r.bloc == "CN")
        {
            if let Some(us) = find(us_model, "US", &cn.price_class) {
                out.push(RatioRow {
                    gpu_model: format!("{cn_model} vs {us_model}"),
                    cn_model: cn_model.to_string(),
                    us_model: us_model.to_string(),
                    price_class: cn.price_class.clone(),
                    cn_median: cn.median,
                    us_median: us.median,
                    cn_us_ratio: cn.median / us.median,
                    kind: "export_pair".into(),
                });
            }
        }
    }
    out
}

/// Daily medians and quartiles of dates `from..=to`, sorted by date, model, bloc, class.
pub fn daily(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Vec<DailyPoint>, ReportError> {
    let Some(lf) = base(store, from, to, cfg)? else {
        return Ok(Vec::new());
    };
    let df = collect(
        lf.filter(usable())
            .group_by([
                col("date"),
                col("gpu_model"),
                col("bloc"),
                col("price_class"),
            ])
            .agg([
                len().alias("offers"),
                col("gpus_available").sum().alias("gpus_available"),
                col("v").median().alias("median"),
                q("p25", 0.25),
                q("p75", 0.75),
            ])
            .with_column(col("date").cast(DataType::Int32).alias("day"))
            .sort(
                ["date", "gpu_model", "bloc", "price_class"],
                Default::default(),
            ),
    )?;
    let day: Vec<i32> = df
        .column("day")?
        .i32()?
        .iter()
        .map(|d| d.unwrap_or(0))
        .collect();
    let (m, b, c) = (
        strs(&df, "gpu_model")?,
        strs(&df, "bloc")?,
        strs(&df, "price_class")?,
    );
    let n = u32s(&df, "offers")?;
    let (a, med, p25, p75) = (
        f64s(&df, "gpus_available")?,
        f64s(&df, "median")?,
        f64s(&df, "p25")?,
        f64s(&df, "p75")?,
    );
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    Ok((0..df.height())
        .map(|i| DailyPoint {
            date: epoch + Duration::days(day[i] as i64),
            gpu_model: m[i].clone(),
            bloc: b[i].clone(),
            price_class: c[i].clone(),
            offers: n[i],
            gpus_available: a[i].unwrap_or(0.0),
            median: med[i].unwrap_or(f64::NAN),
            p25: p25[i].unwrap_or(f64::NAN),
            p75: p75[i].unwrap_or(f64::NAN),
        })
        .collect())
}

/// Coverage of dates `from..=to`.
pub fn coverage(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    thin_cells: u32,
    cfg: &Config,
) -> Result<Coverage, ReportError> {
    let mut cov = Coverage {
        thin_cells,
        ..Default::default()
    };
    let mut stored = 0u32;
    if let Some(lf) = base(store, from, to, cfg)? {
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
                .agg([
                    len().alias("n"),
                    col("implausible").sum().alias("implausible"),
                    col("fractional_gpu").sum().alias("fractional"),
                    col("sample").any(true).alias("sample"),
                ])
                .sort(["feed"], Default::default()),
        )?;
        let (f, n) = (strs(&df, "feed")?, u32s(&df, "n")?);
        cov.feeds = f.into_iter().zip(n.iter().copied()).collect();
        stored = n.iter().sum();
        cov.implausible = u32s(&df, "implausible")?.iter().sum();
        cov.fractional = u32s(&df, "fractional")?.iter().sum();
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

/// Every unresolved GPU name and instance type in the store, most frequent first.
pub fn unknown_names(store: &Store) -> Result<Vec<UnknownName>, ReportError> {
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

/// One week of a bloc's chain-linked, mix-adjusted price index.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexPoint {
    pub week: String,
    pub monday: NaiveDate,
    pub bloc: String,
    /// 100 at the bloc's first week with on-demand offers.
    pub index: f64,
    /// Models quoted in both this week and the previous week with data (the link).
    pub models_matched: u32,
}

/// Weekly on-demand medians per (Monday, model, bloc) for every week up to `to`,
/// one streaming pass over the store.
fn weekly_medians(
    store: &Store,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Vec<(NaiveDate, String, String, f64)>, ReportError> {
    let Some(lf) = base(store, NaiveDate::MIN, to, cfg)? else {
        return Ok(Vec::new());
    };
    // Days since 1970-01-01 (a Thursday) + 3, divided by 7 and truncated (dates after
    // 1970 are positive, so truncation is the floor): the Monday-based week number.
    let df = collect(
        lf.filter(
            usable()
                .and(col("price_class").eq(lit("on_demand")))
                .and(col("bloc").eq(lit("CN")).or(col("bloc").eq(lit("US")))),
        )
        .with_column(
            ((col("date").cast(DataType::Int32) + lit(3)).cast(DataType::Float64) / lit(7.0))
                .cast(DataType::Int32)
                .alias("wk"),
        )
        .group_by([col("wk"), col("gpu_model"), col("bloc")])
        .agg([col("v").median().alias("median")])
        .sort(["wk", "bloc", "gpu_model"], Default::default()),
    )?;
    let wk: Vec<i32> = df
        .column("wk")?
        .cast(&DataType::Int32)?
        .i32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let (m, b, med) = (
        strs(&df, "gpu_model")?,
        strs(&df, "bloc")?,
        f64s(&df, "median")?,
    );
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    Ok((0..df.height())
        .filter_map(|i| {
            let monday = epoch + Duration::days(wk[i] as i64 * 7 - 3);
            med[i].map(|v| (monday, m[i].clone(), b[i].clone(), v))
        })
        .collect())
}

/// Chain-link weekly medians into an index per bloc: each week's link is the geometric
/// mean of the price relatives of the models quoted in both it and the previous week
/// with data (Jevons), so a change in which models are offered is not a price move.
/// A week with no matched model is a gap: no point, and the chain goes on from the
/// last linked week.
pub fn chain_index(medians: &[(NaiveDate, String, String, f64)]) -> Vec<IndexPoint> {
    use std::collections::BTreeMap;
    let mut by_bloc: BTreeMap<&str, BTreeMap<NaiveDate, BTreeMap<&str, f64>>> = BTreeMap::new();
    for (monday, model, bloc, v) in medians {
        if *v > 0.0 && v.is_finite() {
            by_bloc
                .entry(bloc)
                .or_default()
                .entry(*monday)
                .or_default()
                .insert(model, *v);
        }
    }
    let mut out = Vec::new();
    for (bloc, weeks) in by_bloc {
        let mut prev: Option<(&BTreeMap<&str, f64>, f64)> = None;
        for (monday, models) in &weeks {
            let point = match prev {
                None => Some((100.0, models.len() as u32)),
                Some((pm, pi)) => {
                    let rel: Vec<f64> = models
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
                });
                prev = Some((models, index));
            }
        }
    }
    out
}

/// One provider's on-demand statistics for a model in a week.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProviderRow {
    pub gpu_model: String,
    pub provider: String,
    pub bloc: String,
    pub offers: u32,
    pub median: f64,
    pub p25: f64,
    pub p75: f64,
}

/// Per-provider on-demand medians of dates `from..=to`, sorted by model, provider, bloc.
pub fn provider_stats(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &Config,
) -> Result<Vec<ProviderRow>, ReportError> {
    let Some(lf) = base(store, from, to, cfg)? else {
        return Ok(Vec::new());
    };
    let df = collect(
        lf.filter(usable().and(col("price_class").eq(lit("on_demand"))))
            .group_by([col("gpu_model"), col("provider"), col("bloc")])
            .agg([
                len().alias("offers"),
                col("v").median().alias("median"),
                q("p25", 0.25),
                q("p75", 0.75),
            ])
            .sort(["gpu_model", "provider", "bloc"], Default::default()),
    )?;
    let (m, p, b, n) = (
        strs(&df, "gpu_model")?,
        strs(&df, "provider")?,
        strs(&df, "bloc")?,
        u32s(&df, "offers")?,
    );
    let (med, p25, p75) = (f64s(&df, "median")?, f64s(&df, "p25")?, f64s(&df, "p75")?);
    Ok((0..df.height())
        .map(|i| ProviderRow {
            gpu_model: m[i].clone(),
            provider: p[i].clone(),
            bloc: b[i].clone(),
            offers: n[i],
            median: med[i].unwrap_or(f64::NAN),
            p25: p25[i].unwrap_or(f64::NAN),
            p75: p75[i].unwrap_or(f64::NAN),
        })
        .collect())
}

/// Analyse one ISO week with the default settings.
pub fn analyse_week(store: &Store, week: IsoWeek) -> Result<WeekAnalysis, ReportError> {
    analyse_week_with(store, week, &Config::default())
}

/// Analyse one ISO week (daily series over the four weeks ending with it; the price
/// index over every week up to it).
pub fn analyse_week_with(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
) -> Result<WeekAnalysis, ReportError> {
    let (from, to) = (week.monday(), week.sunday());
    let rows = stats(store, from, to, cfg)?;
    let prev = week.prev();
    let prev_rows = stats(store, prev.monday(), prev.sunday(), cfg)?;
    let ratios = ratios(&rows);
    let daily = daily(store, from - Duration::days(21), to, cfg)?;
    let thin = rows.iter().filter(|r| r.thin).count() as u32;
    let coverage = coverage(store, from, to, thin, cfg)?;
    let index = chain_index(&weekly_medians(store, to, cfg)?);
    let providers = provider_stats(store, from, to, cfg)?;
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
                    p.models_matched,
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
