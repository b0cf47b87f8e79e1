//! Normalisation: raw offers to rows with a canonical GPU model, country, bloc and a
//! price in USD per GPU-hour, plus the rejected offers with their reason.
//!
//! Names, regions and instance types are resolved once per distinct value against
//! the data tables, and the pre-join columns are gathered from the offers' distinct
//! values (`columns`); normalising in chunks gives the same rows as normalising whole;
//! the row-level arithmetic and the FX as-of join run in polars, lazily, collected
//! once per chunk (and once more over its rejected rows, for their details). Invariants: no
//! network I/O, no clock (the observation time is passed in), every offer ends up in
//! exactly one of `offers` or `rejects`, and rows come out in one order (time,
//! provider, offer id, class) whatever the payload's.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use crate::model::{FxRate, Offers, ParseReject};
use crate::tables::Tables;
use crate::week::epoch_days;

mod columns;
use columns::Prepared;
pub use columns::ROW_ORDER;

/// FX rates older than this many days before the observation are not used.
pub const FX_MAX_AGE_DAYS: i32 = 7;

/// Columns of a stored offer row, in order.
pub const OFFER_COLUMNS: &[&str] = &[
    "observed_at",
    "feed",
    "provider",
    "offer_id",
    "instance_type",
    "region",
    "country",
    "bloc",
    "gpu_name_raw",
    "gpu_model",
    "china_variant",
    "gpu_count",
    "fractional_gpu",
    "gpus_available",
    "price_class",
    "price",
    "currency",
    "price_unit",
    "fx_date",
    "fx_usd_per_unit",
    "vat_rate",
    "usd_per_gpu_hour",
    "usd_per_gpu_hour_ex_vat",
    "sample",
    "peer",
    "group_offers",
];

/// Columns of a stored reject row, in order.
pub const REJECT_COLUMNS: &[&str] = &[
    "observed_at",
    "feed",
    "provider",
    "offer_id",
    "instance_type",
    "region",
    "gpu_name_raw",
    "price_class",
    "price",
    "currency",
    "price_unit",
    "reason",
    "detail",
];

/// What normalisation needs to know about the run.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub feed: &'a str,
    pub observed_at: DateTime<Utc>,
    /// VAT share included in published prices (0 when net).
    pub vat_rate: f64,
    /// The feed is a labelled sample or simulation.
    pub sample: bool,
    /// The feed republishes a peer's data (stored as column `peer`).
    pub peer: bool,
    /// Reject offers whose provider or region tables/regions.toml does not know,
    /// instead of storing them as bloc OTHER (backfills).
    pub check_places: bool,
}

impl<'a> Context<'a> {
    /// A run of `feed` observed at `observed_at`: net prices (no VAT), not a sample,
    /// not a peer's data, places not checked.
    pub fn new(feed: &'a str, observed_at: DateTime<Utc>) -> Self {
        Self {
            feed,
            observed_at,
            vat_rate: 0.0,
            sample: false,
            peer: false,
            check_places: false,
        }
    }
}

/// Normalised offers and rejects of one feed run.
#[derive(Debug, Clone)]
pub struct Batch {
    pub offers: DataFrame,
    pub rejects: DataFrame,
}

impl Batch {
    /// Rejects counted by reason, sorted by reason.
    pub fn reject_counts(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        if let Ok(col) = self.rejects.column("reason") {
            if let Ok(ca) = col.str() {
                for r in ca.iter().flatten() {
                    *counts.entry(r.to_string()).or_default() += 1;
                }
            }
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort();
        v
    }
}

/// The FX table as a frame: `fx_date` (Date), `currency`, `fx_usd_per_unit`, sorted by date.
/// USD per unit = (USD per EUR) / (units per EUR); EUR itself is USD per EUR.
pub fn fx_frame(rates: &[FxRate]) -> PolarsResult<DataFrame> {
    let mut usd_per_eur: HashMap<NaiveDate, f64> = HashMap::new();
    for r in rates.iter().filter(|r| r.currency == "USD") {
        usd_per_eur.insert(r.date, r.units_per_eur);
    }
    let mut rows: Vec<(i32, String, f64)> = Vec::new();
    for (d, usd) in &usd_per_eur {
        rows.push((epoch_days(*d), "EUR".into(), *usd));
    }
    for r in rates
        .iter()
        .filter(|r| r.currency != "USD" && r.currency != "EUR")
    {
        if let Some(usd) = usd_per_eur.get(&r.date) {
            rows.push((
                epoch_days(r.date),
                r.currency.clone(),
                usd / r.units_per_eur,
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let df = DataFrame::new_infer_height(vec![
        Column::new(
            "fx_date".into(),
            rows.iter().map(|r| r.0).collect::<Vec<i32>>(),
        ),
        Column::new(
            "currency".into(),
            rows.iter().map(|r| r.1.clone()).collect::<Vec<String>>(),
        ),
        Column::new(
            "fx_usd_per_unit".into(),
            rows.iter().map(|r| r.2).collect::<Vec<f64>>(),
        ),
    ])?;
    df.lazy()
        .with_column(col("fx_date").cast(DataType::Date))
        .collect()
}

/// The schema of stored offer rows (what [`normalise`] writes), built once.
pub fn offer_schema() -> SchemaRef {
    static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let ctx = Context::new("", DateTime::<Utc>::UNIX_EPOCH);
            let fx = fx_frame(&[]).expect("an empty FX frame builds");
            normalise(Offers::default(), &[], &ctx, Tables::embedded(), &fx)
                .expect("normalising no offers cannot fail")
                .offers
                .schema()
                .clone()
        })
        .clone()
}

/// As-of join on the ECB rates: the rate of the observation date or the latest earlier
/// one, per currency. A batch priced only in USD needs no rate: its rate columns are
/// null, as the join would leave them (the checks then use 1.0), and its rows keep
/// their order. True when the join reordered the rows (they must be sorted again).
fn join_fx(raw: DataFrame, fx: &DataFrame) -> PolarsResult<(LazyFrame, bool)> {
    let only_usd = raw
        .column("currency")?
        .str()?
        .iter()
        .all(|c| c == Some("USD"));
    if only_usd {
        return Ok((
            raw.lazy().with_columns([
                col("observed_at").cast(DataType::Datetime(TimeUnit::Milliseconds, None)),
                col("obs_date").cast(DataType::Date),
                lit(NULL).cast(DataType::Date).alias("fx_date"),
                lit(NULL).cast(DataType::Float64).alias("fx_usd_per_unit"),
            ]),
            false,
        ));
    }
    let fx_lf = fx
        .clone()
        .lazy()
        .with_column(col("fx_date").alias("fx_key"));
    let joined = raw
        .lazy()
        .with_columns([
            col("observed_at").cast(DataType::Datetime(TimeUnit::Milliseconds, None)),
            col("obs_date").cast(DataType::Date),
            col("obs_date").cast(DataType::Date).alias("fx_key"),
        ])
        .sort(["fx_key"], Default::default())
        .join(
            fx_lf,
            [col("fx_key")],
            [col("fx_key")],
            JoinArgs::new(JoinType::AsOf(Box::new(AsOfOptions {
                strategy: AsofStrategy::Backward,
                left_by: Some(vec!["currency".into()]),
                right_by: Some(vec!["currency".into()]),
                allow_eq: true,
                ..Default::default()
            }))),
        );
    Ok((joined, true))
}

/// The checks as expressions: the USD rate and its date (USD itself, or a rate at
/// most `FX_MAX_AGE_DAYS` old), USD per GPU-hour, whether the offer is rejected,
/// and the reject reason and detail (null reason: the offer is stored). `rejected`
/// is true exactly where `reason` is not null; it is a boolean over every row, the
/// reason and the detail texts are written for the rejected rows only.
struct Checks {
    fx_rate: Expr,
    fx_date: Expr,
    usd: Expr,
    rejected: Expr,
    reason: Expr,
    detail: Expr,
}

/// The offer's numbers other than the GPU count and the price that must be finite
/// and not negative (`bad_number`): the reported memory (it narrows a GPU name), the
/// GPUs available and a group row's offers (averaged and summed by the statistics).
const OTHER_NUMBERS: [&str; 3] = ["gpu_memory_gb", "gpus_available", "group_offers"];

/// `c` is a finite number above zero. NaN, infinities (and `1e400`, which parses as
/// infinity) are not; a null is neither true nor false, so a missing value is left to
/// the `missing_*` rules.
fn positive_finite(c: &str) -> Expr {
    col(c).is_finite().and(col(c).gt(lit(0.0)))
}

/// `c` is a finite number, zero or above (null when missing: an optional number may be).
fn non_negative_finite(c: &str) -> Expr {
    col(c).is_finite().and(col(c).gt_eq(lit(0.0)))
}

/// The detail of a `bad_number` reject: the first of [`OTHER_NUMBERS`] that is bad.
fn number_detail() -> Expr {
    OTHER_NUMBERS.iter().rev().fold(lit(""), |later, c| {
        when(non_negative_finite(c).not())
            .then(
                lit(format!("{c} "))
                    + col(*c).cast(DataType::String)
                    + lit(" is not a finite number of zero or more"),
            )
            .otherwise(later)
    })
}

/// Every number an offer carries is finite: a GPU count and a price above zero
/// (`bad_gpu_count`, `non_positive_price`), the others ([`OTHER_NUMBERS`]) zero or
/// above (`bad_number`); a payload's `NaN`, `inf` or `1e400` is rejected here, for
/// every adapter, before it reaches any arithmetic.
fn checks() -> Checks {
    let is_usd = col("currency").eq(lit("USD"));
    let age = col("obs_date").cast(DataType::Int32) - col("fx_date").cast(DataType::Int32);
    let fresh = age.lt_eq(lit(FX_MAX_AGE_DAYS));
    let fx_rate = when(is_usd.clone())
        .then(lit(1.0))
        .when(fresh.clone())
        .then(col("fx_usd_per_unit"))
        .otherwise(lit(NULL).cast(DataType::Float64));
    let fx_date = when(is_usd)
        .then(col("obs_date"))
        .when(fresh)
        .then(col("fx_date"))
        .otherwise(lit(NULL).cast(DataType::Date));
    let per_gpu = col("price") * col("unit_factor")
        / when(col("per_instance"))
            .then(col("gpu_count"))
            .otherwise(lit(1.0));
    let usd = per_gpu * col("fx_usd_per_unit");
    let bad_price = positive_finite("price").not();
    let bad_count = positive_finite("gpu_count").not();
    let bad_number = OTHER_NUMBERS
        .iter()
        .fold(lit(false), |any, c| any.or(non_negative_finite(c).not()));
    // The reject rules in order, each with its reason and detail: the first that
    // holds names them, and an offer is rejected when any holds (a null condition is
    // not taken by `when`, so it does not reject either). One list serves all three,
    // so they agree.
    let price_detail = lit("price ")
        + col("price").cast(DataType::String)
        + lit(" ")
        + col("currency")
        + lit(" per ")
        + col("price_unit")
        + lit(" is not a positive finite number");
    let fx_detail = lit("no ECB rate for ")
        + col("currency")
        + lit(format!(
            " within {FX_MAX_AGE_DAYS} days before the observation"
        ));
    let rules = [
        (
            col("pre_reason").is_not_null(),
            col("pre_reason"),
            col("pre_detail"),
        ),
        (
            col("gpu_count").is_null(),
            lit("missing_gpu_count"),
            lit("no GPU count in the offer, and its instance type is not in tables/instances.csv"),
        ),
        (
            bad_count,
            lit("bad_gpu_count"),
            lit("GPU count ")
                + col("gpu_count").cast(DataType::String)
                + lit(" is not a positive finite number"),
        ),
        (bad_number, lit("bad_number"), number_detail()),
        (
            col("unit_factor").is_null(),
            lit("unknown_unit"),
            lit("unit ") + col("price_unit") + lit(" is not in tables/units.toml"),
        ),
        (
            col("price").is_null(),
            lit("missing_price"),
            lit("no price in the offer"),
        ),
        (bad_price, lit("non_positive_price"), price_detail),
        (
            col("fx_usd_per_unit").is_null(),
            lit("missing_fx_rate"),
            fx_detail,
        ),
    ];
    let rejected = rules.iter().fold(lit(false), |any, (c, _, _)| {
        any.or(c.clone().fill_null(lit(false)))
    });
    // Each chain built from the last rule back, so the first rule is tested first.
    let chain = |pick: fn(&(Expr, Expr, Expr)) -> Expr, otherwise: Expr| {
        rules.iter().rev().fold(otherwise, |later, rule| {
            when(rule.0.clone()).then(pick(rule)).otherwise(later)
        })
    };
    let reason = chain(|r| r.1.clone(), lit(NULL).cast(DataType::String));
    let detail = chain(|r| r.2.clone(), lit(""));
    Checks {
        fx_rate,
        fx_date,
        usd,
        rejected,
        reason,
        detail,
    }
}

/// Normalise one feed run's offers. `fx` is [`fx_frame`]'s output (may be empty).
/// The offers are taken, and freed as soon as the pre-join frame holds them, so the
/// polars steps and the caller's Parquet write do not run beside them.
pub fn normalise(
    offers: Offers,
    parse_rejects: &[ParseReject],
    ctx: &Context,
    tables: &Tables,
    fx: &DataFrame,
) -> PolarsResult<Batch> {
    let raw = Prepared::new(&offers, ctx, tables).frame(0..offers.len(), ctx.feed)?;
    drop(offers);
    checked(raw, parse_rejects, ctx, fx)
}

/// Rows a chunk of [`normalise_chunks`] holds by default: the polars frames of a
/// chunk, not of the whole payload, are in memory at once.
pub const CHUNK_ROWS: usize = 1 << 15;

/// [`normalise`] in chunks of `rows` rows: batches whose offers and rejects,
/// concatenated in order, are [`normalise`]'s (the parse rejects come with the last
/// one). There is always at least one batch, so an empty run still has the schema.
pub fn normalise_chunks<'a>(
    offers: &'a Offers,
    parse_rejects: &'a [ParseReject],
    ctx: &'a Context,
    tables: &'a Tables,
    fx: &'a DataFrame,
    rows: usize,
) -> impl Iterator<Item = PolarsResult<Batch>> + 'a {
    let prepared = Prepared::new(offers, ctx, tables);
    let (n, rows) = (offers.len(), rows.max(1));
    let chunks = n.div_ceil(rows).max(1);
    (0..chunks).map(move |k| {
        let raw = prepared.frame(k * rows..((k + 1) * rows).min(n), ctx.feed)?;
        let last = k + 1 == chunks;
        checked(raw, if last { parse_rejects } else { &[] }, ctx, fx)
    })
}

/// The pre-join frame `raw` joined to its FX rates, checked, and split into offers
/// and rejects (`parse_rejects` added to the rejects).
fn checked(
    raw: DataFrame,
    parse_rejects: &[ParseReject],
    ctx: &Context,
    fx: &DataFrame,
) -> PolarsResult<Batch> {
    let Checks {
        fx_rate,
        fx_date,
        usd,
        rejected,
        reason,
        detail,
    } = checks();
    let (all, needs_sort) = join_fx(raw, fx)?;
    let mut all = all
        .with_columns([fx_rate.alias("fx_usd_per_unit"), fx_date.alias("fx_date")])
        .with_columns([
            usd.alias("usd_per_gpu_hour"),
            lit(ctx.vat_rate).alias("vat_rate"),
            col("gpu_count").lt(lit(1.0)).alias("fractional_gpu"),
            lit(ctx.sample).alias("sample"),
            lit(ctx.peer).alias("peer"),
        ])
        .with_columns([
            (col("usd_per_gpu_hour") / (lit(1.0) + col("vat_rate")))
                .alias("usd_per_gpu_hour_ex_vat"),
            rejected.alias("rejected"),
        ]);
    if needs_sort {
        all = all.sort(ROW_ORDER, Default::default());
    }
    let all = all.collect()?;
    let ok_mask = !all.column("rejected")?.bool()?;
    let mut offers_df = all.select(OFFER_COLUMNS.iter().copied())?;
    if !ok_mask.all() {
        offers_df = offers_df.filter(&ok_mask)?;
    }
    // The reject reason and detail are written for the rejected rows only (a string
    // per row, from a chain of conditions: costly over every row).
    let mut rejects_df = all
        .filter(&!&ok_mask)?
        .lazy()
        .with_columns([reason.alias("reason"), detail.alias("detail")])
        .select(REJECT_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()?;
    if !parse_rejects.is_empty() {
        rejects_df.vstack_mut_owned(parse_rejects_frame(parse_rejects, ctx)?)?;
    }
    Ok(Batch {
        offers: offers_df,
        rejects: rejects_df,
    })
}

fn parse_rejects_frame(rejects: &[ParseReject], ctx: &Context) -> PolarsResult<DataFrame> {
    let n = rejects.len();
    let none_s = || vec![None::<String>; n];
    let df = DataFrame::new_infer_height(vec![
        Column::new(
            "observed_at".into(),
            vec![ctx.observed_at.timestamp_millis(); n],
        ),
        Column::new("feed".into(), vec![ctx.feed.to_string(); n]),
        Column::new("provider".into(), none_s()),
        Column::new(
            "offer_id".into(),
            rejects
                .iter()
                .map(|r| r.offer_id.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new("instance_type".into(), none_s()),
        Column::new("region".into(), none_s()),
        Column::new(
            "gpu_name_raw".into(),
            rejects
                .iter()
                .map(|r| r.gpu_name_raw.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new("price_class".into(), none_s()),
        Column::new("price".into(), vec![None::<f64>; n]),
        Column::new("currency".into(), none_s()),
        Column::new("price_unit".into(), none_s()),
        Column::new(
            "reason".into(),
            rejects.iter().map(|r| r.reason.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "detail".into(),
            rejects.iter().map(|r| r.detail.clone()).collect::<Vec<_>>(),
        ),
    ])?;
    df.lazy()
        .with_column(col("observed_at").cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PriceClass, PriceUnit, RawOffer};
    use chrono::TimeZone;

    /// (published price, unit, GPUs, currency) → USD per GPU-hour, with ECB rates of
    /// USD 1.1029 and CNY 7.7407 per EUR.
    fn check(price: f64, unit: &str, gpus: f64, currency: &str, expected: f64) {
        let mut o = RawOffer::new("t", "x", "H100 SXM");
        o.price = Some(price);
        o.gpu_count = Some(gpus);
        o.price_unit = PriceUnit::parse(unit).unwrap();
        o.currency = currency.into();
        let b = batch(&[o]);
        let got = b
            .offers
            .column("usd_per_gpu_hour")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap();
        assert!(
            (got - expected).abs() < 1e-9,
            "{price} {currency} {unit} x{gpus}: {got} != {expected}"
        );
    }

    #[test]
    fn units_and_currencies() {
        let usd_per_cny = 1.1029 / 7.7407;
        check(2.5, "gpu-hour", 1.0, "USD", 2.5);
        check(20.0, "instance-hour", 8.0, "USD", 2.5);
        check(1825.0, "gpu-month", 1.0, "USD", 2.5);
        check(14600.0, "instance-month", 8.0, "USD", 2.5);
        check(2000.0, "cents/instance-hour", 8.0, "USD", 2.5);
        check(21900.0, "gpu-year", 1.0, "USD", 2.5);
        check(60.0, "gpu-day", 1.0, "USD", 2.5);
        check(
            2180.0,
            "thousandths/gpu-hour",
            1.0,
            "CNY",
            2.18 * usd_per_cny,
        );
        check(
            218000.0,
            "hundred_thousandths/gpu-hour",
            1.0,
            "CNY",
            2.18 * usd_per_cny,
        );
        check(
            277.93,
            "instance-hour",
            8.0,
            "CNY",
            277.93 / 8.0 * usd_per_cny,
        );
        check(1.0, "gpu-hour", 1.0, "EUR", 1.1029);
    }

    /// One offer (2 USD per GPU-hour, 1 GPU) with `field` set to `value`: stored when
    /// `expected` is `None`, else rejected with that reason and a detail holding the text.
    fn check_number(field: &str, value: f64, expected: Option<(&str, &str)>) {
        let mut o = RawOffer::new("t", "x", "H100 SXM");
        (o.price, o.gpu_count) = (Some(2.0), Some(1.0));
        let slot = match field {
            "price" => &mut o.price,
            "gpu_count" => &mut o.gpu_count,
            "gpu_memory_gb" => &mut o.gpu_memory_gb,
            "gpus_available" => &mut o.gpus_available,
            "group_offers" => &mut o.group_offers,
            _ => unreachable!("{field}"),
        };
        *slot = Some(value);
        let b = batch(&[o]);
        let text = |c: &str| {
            let v = b.rejects.column(c).unwrap().str().unwrap().get(0);
            v.unwrap_or_default().to_string()
        };
        match expected {
            None => assert_eq!(b.offers.height(), 1, "{field} {value}: {:?}", b.rejects),
            Some((reason, detail)) => {
                assert_eq!(b.offers.height(), 0, "{field} {value}: {:?}", b.offers);
                assert_eq!(text("reason"), reason, "{field} {value}");
                assert!(
                    text("detail").contains(detail),
                    "{field} {value}: {}",
                    text("detail")
                );
            }
        }
    }

    /// NaN, infinities (a `1e400` in a CSV parses as infinity) and out-of-range values
    /// are rejected whichever number holds them, never stored or computed with.
    #[test]
    fn numbers_that_are_not_finite_are_rejected() {
        let count = Some(("bad_gpu_count", "is not a positive finite number"));
        let price = Some(("non_positive_price", "is not a positive finite number"));
        let other = |c: &'static str| Some(("bad_number", c));
        let inf: f64 = "1e400".parse().unwrap();
        for v in [f64::NAN, inf, f64::NEG_INFINITY, 0.0, -1.0] {
            check_number("gpu_count", v, count);
            check_number("price", v, price);
        }
        check_number(
            "gpu_count",
            f64::NAN,
            Some(("bad_gpu_count", "GPU count NaN")),
        );
        check_number("gpu_count", inf, Some(("bad_gpu_count", "GPU count inf")));
        for c in ["gpu_memory_gb", "gpus_available", "group_offers"] {
            for v in [f64::NAN, inf, f64::NEG_INFINITY, -1.0] {
                check_number(c, v, other(c));
            }
            check_number(c, 0.0, None);
        }
        check_number("gpu_memory_gb", 80.0, None);
        check_number("gpus_available", 3.0, None);
        check_number("gpu_count", 0.5, None);
    }

    /// A mixed batch: offers out of order, a spot and an on-demand row per id, two
    /// observation times, rejects of several kinds (unknown name, no price, bad count).
    fn mixed_batch() -> Vec<RawOffer> {
        let t = |h| Some(Utc.with_ymd_and_hms(2024, 10, 7, h, 0, 0).unwrap());
        let mut rows = Vec::new();
        let ids = ["b7", "a10", "a9", "c", "a1", "b10", "a2", "zz9"];
        for (i, id) in ids.iter().enumerate() {
            for class in [PriceClass::Spot, PriceClass::OnDemand] {
                let name = ["H100 SXM", "RTX 4090", "Warp Drive 9000"][i % 3];
                let mut o = RawOffer::new(["vastai", "runpod"][i % 2], *id, name);
                o.price_class = class;
                o.price = (i != 3).then_some(1.0 + i as f64);
                o.gpu_count = Some(if i == 4 { 0.0 } else { 1.0 + i as f64 });
                o.observed_at = t(if i == 2 { 0 } else { 1 });
                o.region = Some("Texas, US".into());
                o.country = Some("US".into());
                rows.push(o);
            }
        }
        rows
    }

    /// An ECB rate of 2024-10-04.
    fn rate(currency: &str, units_per_eur: f64) -> FxRate {
        FxRate {
            date: NaiveDate::from_ymd_opt(2024, 10, 4).unwrap(),
            currency: currency.into(),
            units_per_eur,
        }
    }

    /// Normalise `offers` observed 2024-10-07 01:00 UTC, with the ECB rates of
    /// 2024-10-04 (USD 1.1029 and CNY 7.7407 per EUR).
    fn batch(offers: &[RawOffer]) -> Batch {
        let fx = fx_frame(&[rate("USD", 1.1029), rate("CNY", 7.7407)]).unwrap();
        let ctx = Context::new("t", Utc.with_ymd_and_hms(2024, 10, 7, 1, 0, 0).unwrap());
        normalise(
            Offers::from(offers.to_vec()),
            &[],
            &ctx,
            Tables::embedded(),
            &fx,
        )
        .unwrap()
    }

    /// A USD-only batch skips the FX join and the final sort; with one CNY offer
    /// added it takes both. Its rows must come out the same, in the same order.
    #[test]
    fn usd_only_batch_equals_the_joined_and_sorted_batch() {
        let usd = batch(&mixed_batch());
        let mut with_cny = mixed_batch();
        let mut cny = RawOffer::new("autodl", "zz", "RTX 4090");
        cny.price = Some(2.0);
        cny.gpu_count = Some(1.0);
        cny.currency = "CNY".into();
        with_cny.push(cny);
        let joined = batch(&with_cny);
        let not_cny = |df: &DataFrame| {
            let mask = df.column("currency").unwrap().str().unwrap().equal("USD");
            df.filter(&mask).unwrap()
        };
        assert_eq!(usd.offers.height(), 8, "{:?}", usd.offers);
        assert!(usd.offers.equals_missing(&not_cny(&joined.offers)));
        assert!(usd.rejects.equals_missing(&not_cny(&joined.rejects)));
        let reasons = usd.reject_counts();
        assert_eq!(
            reasons,
            vec![
                ("bad_gpu_count".to_string(), 2),
                ("missing_price".to_string(), 2),
                ("unknown_gpu_name".to_string(), 4)
            ]
        );
    }

    /// Normalised in chunks of any size, the batches concatenated are the batch
    /// normalised whole: same rows in the same order, parse rejects last. The offers
    /// are out of order and one is in CNY, so the chunks take the FX join and sort.
    #[test]
    fn chunks_concatenated_are_the_whole_batch() {
        let mut offers = mixed_batch();
        offers.reverse();
        let mut cny = RawOffer::new("autodl", "zz", "RTX 4090");
        (cny.price, cny.gpu_count, cny.currency) = (Some(2.0), Some(1.0), "CNY".into());
        offers.insert(5, cny);
        let parse_rejects = [ParseReject {
            offer_id: "bad".into(),
            gpu_name_raw: "H100".into(),
            reason: "bad_field".into(),
            detail: "num_gpus is not a number".into(),
        }];
        let fx = fx_frame(&[rate("USD", 1.1029), rate("CNY", 7.7407)]).unwrap();
        let ctx = Context::new("t", Utc.with_ymd_and_hms(2024, 10, 7, 1, 0, 0).unwrap());
        let offers = Offers::from(offers);
        let tables = Tables::embedded();
        let whole = normalise(offers.clone(), &parse_rejects, &ctx, tables, &fx).unwrap();
        assert_eq!(whole.rejects.height(), 9, "{:?}", whole.rejects);
        for rows in [1, 3, 7, 17, 100] {
            let chunks = normalise_chunks(&offers, &parse_rejects, &ctx, tables, &fx, rows);
            let chunks: Vec<Batch> = chunks.map(Result::unwrap).collect();
            assert_eq!(
                chunks.len(),
                offers.len().div_ceil(rows),
                "{rows} rows a chunk"
            );
            let (mut o, mut r) = (chunks[0].offers.clone(), chunks[0].rejects.clone());
            for b in &chunks[1..] {
                o.vstack_mut(&b.offers).unwrap();
                r.vstack_mut(&b.rejects).unwrap();
            }
            assert!(
                o.equals_missing(&whole.offers),
                "{rows} rows a chunk: {o:?}"
            );
            assert!(
                r.equals_missing(&whole.rejects),
                "{rows} rows a chunk: {r:?}"
            );
        }
        let none = Offers::default();
        let empty: Vec<Batch> = normalise_chunks(&none, &parse_rejects, &ctx, tables, &fx, 4)
            .map(Result::unwrap)
            .collect();
        assert_eq!((empty.len(), empty[0].offers.height()), (1, 0));
        assert_eq!(empty[0].offers.schema(), whole.offers.schema());
        assert_eq!(empty[0].rejects.height(), 1);
    }

    /// The rows are stored sorted by time, provider, offer id and class, whatever the
    /// payload's order.
    #[test]
    fn rows_are_in_row_order_whatever_the_input_order() {
        let offers = mixed_batch();
        let mut reversed = offers.clone();
        reversed.reverse();
        let b = batch(&offers);
        assert!(b.offers.equals_missing(&batch(&reversed).offers));
        let col_str = |c: &str| -> Vec<String> {
            let s = b.offers.column(c).unwrap().str().unwrap().clone();
            s.iter().map(|v| v.unwrap().to_string()).collect()
        };
        let at = b
            .offers
            .column("observed_at")
            .unwrap()
            .cast(&DataType::Int64);
        let at: Vec<i64> = at.unwrap().i64().unwrap().into_no_null_iter().collect();
        let (provider, id, class) = (
            col_str("provider"),
            col_str("offer_id"),
            col_str("price_class"),
        );
        let rows: Vec<_> = (0..at.len())
            .map(|i| (at[i], &provider[i], &id[i], &class[i]))
            .collect();
        let mut sorted = rows.clone();
        sorted.sort();
        assert_eq!(rows, sorted);
    }
}
