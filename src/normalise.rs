//! Normalisation: raw offers to rows with a canonical GPU model, country, bloc and a
//! price in USD per GPU-hour, plus the rejected offers with their reason.
//!
//! Names, regions and instance types are resolved once per distinct value against
//! the data tables, and the pre-join columns borrow their strings from the offers;
//! the row-level arithmetic and the FX as-of join run in polars, lazily, collected
//! once (and once more over the rejected rows, for their details). Invariants: no
//! network I/O, no clock (the observation time is passed in), every offer ends up in
//! exactly one of `offers` or `rejects`, and rows come out in one order (time,
//! provider, offer id, class) whatever the payload's.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;

use crate::model::{Basis, FxRate, ParseReject, RawOffer};
use crate::tables::Tables;
use crate::week::epoch_days;

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
            normalise(Vec::new(), &[], &ctx, Tables::embedded(), &fx)
                .expect("normalising no offers cannot fail")
                .offers
                .schema()
                .clone()
        })
        .clone()
}

/// How a raw name / instance type resolved.
#[derive(Debug, Clone)]
struct Resolution {
    model: Option<String>,
    count_from_catalogue: Option<f64>,
    reject: Option<(&'static str, String)>,
}

fn resolve(tables: &Tables, o: &RawOffer) -> Resolution {
    if let Some(it) = o.instance_type.as_deref() {
        if let Some(ig) = tables.instance(&o.provider, it) {
            return Resolution {
                model: Some(ig.gpu_model.clone()),
                count_from_catalogue: Some(ig.gpu_count),
                reject: None,
            };
        }
        if o.gpu_name_raw.trim().is_empty() {
            return Resolution {
                model: None,
                count_from_catalogue: None,
                reject: Some((
                    "unknown_instance_type",
                    format!(
                        "instance type {it:?} of provider {} is not in tables/instances.csv",
                        o.provider
                    ),
                )),
            };
        }
    }
    if tables.gpus.is_not_gpu(&o.gpu_name_raw) {
        return Resolution {
            model: None,
            count_from_catalogue: None,
            reject: Some((
                "not_a_gpu",
                format!("{:?} is an accelerator but not a GPU", o.gpu_name_raw),
            )),
        };
    }
    match tables
        .gpus
        .resolve_for(&o.provider, &o.gpu_name_raw, o.gpu_memory_gb)
    {
        Some(m) => Resolution {
            model: Some(m),
            count_from_catalogue: None,
            reject: None,
        },
        None => Resolution {
            model: None,
            count_from_catalogue: None,
            reject: Some((
                "unknown_gpu_name",
                format!("GPU name {:?} is not in tables/gpus.toml", o.gpu_name_raw),
            )),
        },
    }
}

/// With `check_places`: an offer that names a region its tables cannot place.
fn unplaced(tables: &Tables, o: &RawOffer) -> Option<(&'static str, String)> {
    let region = o.region.as_deref()?;
    if !tables.knows_provider(&o.provider) {
        return Some((
            "unknown_provider",
            format!(
                "provider {:?} has no table in tables/regions.toml (region {region:?})",
                o.provider
            ),
        ));
    }
    Some((
        "unknown_region",
        format!(
            "region {region:?} of provider {} is not in tables/regions.toml",
            o.provider
        ),
    ))
}

/// The columns of a batch before FX and checks, filled offer by offer. The field list
/// and [`RawColumns::into_frame`] are the one place the pre-join columns are named.
/// Strings are borrowed from the offers and the tables; a name's resolution and a
/// unit's label are made once per distinct value ([`Distinct`]) and referred to by index.
struct RawColumns<'a> {
    observed: Vec<i64>,
    obs_date: Vec<i32>,
    provider: Interned<'a>,
    offer_id: Vec<&'a str>,
    instance_type: Interned<'a>,
    region: Interned<'a>,
    country: Interned<'a>,
    bloc: Interned<'a>,
    name_raw: Interned<'a>,
    resolution: Vec<u32>,
    count: Vec<Option<f64>>,
    avail: Vec<Option<f64>>,
    class: Interned<'a>,
    price: Vec<Option<f64>>,
    currency: Interned<'a>,
    unit: Vec<u32>,
    place_reject: Vec<Option<(&'static str, String)>>,
    groups: Vec<Option<f64>>,
}

/// A string column with few distinct values: each distinct value (null too) is kept
/// once and the rows refer to it by index; the column is the distinct values gathered
/// by the rows. Rows often repeat the row before, which is checked before hashing.
#[derive(Default)]
struct Interned<'a> {
    index: HashMap<Option<&'a str>, IdxSize, foldhash::fast::RandomState>,
    values: Vec<Option<&'a str>>,
    last: Option<(Option<&'a str>, IdxSize)>,
    rows: Vec<IdxSize>,
}

impl<'a> Interned<'a> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            rows: Vec::with_capacity(rows),
            ..Self::default()
        }
    }

    fn push(&mut self, value: Option<&'a str>) {
        let row = match self.last {
            Some((last, row)) if last == value => row,
            _ => {
                let values = &mut self.values;
                let row = *self.index.entry(value).or_insert_with(|| {
                    values.push(value);
                    (values.len() - 1) as IdxSize
                });
                self.last = Some((value, row));
                row
            }
        };
        self.rows.push(row);
    }

    fn column(self, name: &str) -> PolarsResult<Column> {
        let values = StringChunked::from_iter_options(name.into(), self.values.into_iter());
        gathered(values, &indices(self.rows))
    }
}

/// The rows' indices into a column's distinct values, for [`gathered`].
fn indices(rows: Vec<IdxSize>) -> IdxCa {
    IdxCa::from_vec(PlSmallStr::EMPTY, rows)
}

/// `values` gathered by `rows` (indices into `values`) as a column named as `values`.
fn gathered<T: PolarsDataType>(values: ChunkedArray<T>, rows: &IdxCa) -> PolarsResult<Column>
where
    ChunkedArray<T>: ChunkTake<IdxCa> + IntoSeries,
{
    Ok(values.take(rows)?.into_series().into())
}

/// A name as the tables resolve it: provider, instance type, raw name, memory (bits).
type NameKey<'a> = (&'a str, Option<&'a str>, &'a str, Option<u64>);

/// What a batch resolved once per distinct value: names (by provider, instance type,
/// raw name, memory) and units.
#[derive(Default)]
struct Distinct<'a> {
    index: HashMap<NameKey<'a>, u32, foldhash::fast::RandomState>,
    resolutions: Vec<(Resolution, Option<bool>)>,
    units: Vec<(&'a crate::model::PriceUnit, String, Option<f64>, bool)>,
}

impl<'a> Distinct<'a> {
    fn resolution(&mut self, o: &'a RawOffer, tables: &Tables) -> u32 {
        let key = (
            o.provider.as_str(),
            o.instance_type.as_deref(),
            o.gpu_name_raw.as_str(),
            o.gpu_memory_gb.map(f64::to_bits),
        );
        let next = self.resolutions.len() as u32;
        *self.index.entry(key).or_insert_with(|| {
            let res = resolve(tables, o);
            let china = res
                .model
                .as_deref()
                .and_then(|m| tables.gpus.model(m))
                .map(|m| m.china_variant);
            self.resolutions.push((res, china));
            next
        })
    }

    fn unit(&mut self, u: &'a crate::model::PriceUnit, tables: &Tables) -> u32 {
        if let Some(i) = self.units.iter().position(|(v, ..)| *v == u) {
            return i as u32;
        }
        let factor = match (tables.scale(&u.scale), tables.period_hours(&u.period)) {
            (Some(s), Some(h)) => Some(s / h),
            _ => None,
        };
        let per_instance = u.basis == Basis::Instance;
        self.units.push((u, u.label(), factor, per_instance));
        (self.units.len() - 1) as u32
    }
}

impl<'a> RawColumns<'a> {
    /// Room for `n` rows in every column, so no column is copied while it grows.
    fn with_capacity(n: usize) -> Self {
        Self {
            observed: Vec::with_capacity(n),
            obs_date: Vec::with_capacity(n),
            provider: Interned::with_capacity(n),
            offer_id: Vec::with_capacity(n),
            instance_type: Interned::with_capacity(n),
            region: Interned::with_capacity(n),
            country: Interned::with_capacity(n),
            bloc: Interned::with_capacity(n),
            name_raw: Interned::with_capacity(n),
            resolution: Vec::with_capacity(n),
            count: Vec::with_capacity(n),
            avail: Vec::with_capacity(n),
            class: Interned::with_capacity(n),
            price: Vec::with_capacity(n),
            currency: Interned::with_capacity(n),
            unit: Vec::with_capacity(n),
            place_reject: Vec::with_capacity(n),
            groups: Vec::with_capacity(n),
        }
    }

    /// One offer's row: place, model, count and unit factor resolved through the tables.
    fn push(
        &mut self,
        o: &'a RawOffer,
        ctx: &Context,
        tables: &'a Tables,
        distinct: &mut Distinct<'a>,
    ) {
        let at = o.observed_at.unwrap_or(ctx.observed_at);
        self.observed.push(at.timestamp_millis());
        self.obs_date.push(epoch_days(at.date_naive()));
        self.provider.push(Some(&o.provider));
        self.offer_id.push(&o.offer_id);
        self.instance_type.push(o.instance_type.as_deref());
        self.region.push(o.region.as_deref());
        let c = o.country.as_deref().or_else(|| {
            o.region
                .as_deref()
                .and_then(|r| tables.country(&o.provider, r))
        });
        self.bloc.push(Some(tables.bloc(c)));
        self.place_reject.push(if ctx.check_places && c.is_none() {
            unplaced(tables, o)
        } else {
            None
        });
        self.country.push(c);
        self.groups.push(o.group_offers);
        self.name_raw.push(Some(&o.gpu_name_raw));
        let r = distinct.resolution(o, tables);
        self.resolution.push(r);
        let catalogue = distinct.resolutions[r as usize].0.count_from_catalogue;
        self.count.push(o.gpu_count.or(catalogue));
        self.avail.push(o.gpus_available);
        self.class.push(Some(o.price_class.as_str()));
        self.price.push(o.price);
        self.currency.push(Some(&o.currency));
        self.unit.push(distinct.unit(&o.price_unit, tables));
    }

    fn into_frame(self, feed: &str, distinct: &Distinct) -> PolarsResult<DataFrame> {
        let res = &distinct.resolutions;
        let reject: Vec<Option<(&str, &str)>> = self
            .resolution
            .iter()
            .zip(&self.place_reject)
            .map(|(i, place)| {
                res[*i as usize]
                    .0
                    .reject
                    .as_ref()
                    .or(place.as_ref())
                    .map(|(r, d)| (*r, d.as_str()))
            })
            .collect();
        // Per distinct name and unit, gathered by the rows' indices.
        let (by_name, by_unit) = (indices(self.resolution), indices(self.unit));
        let (n, units) = (self.observed.len(), &distinct.units);
        DataFrame::new_infer_height(vec![
            Column::new("observed_at".into(), self.observed),
            Column::new("obs_date".into(), self.obs_date),
            StringChunked::full("feed".into(), feed, n).into_column(),
            self.provider.column("provider")?,
            Column::new("offer_id".into(), self.offer_id),
            self.instance_type.column("instance_type")?,
            self.region.column("region")?,
            self.country.column("country")?,
            self.bloc.column("bloc")?,
            self.name_raw.column("gpu_name_raw")?,
            gathered(
                StringChunked::from_iter_options(
                    "gpu_model".into(),
                    res.iter().map(|r| r.0.model.as_deref()),
                ),
                &by_name,
            )?,
            gathered(
                BooleanChunked::from_iter_options("china_variant".into(), res.iter().map(|r| r.1)),
                &by_name,
            )?,
            Column::new("gpu_count".into(), self.count),
            Column::new("gpus_available".into(), self.avail),
            self.class.column("price_class")?,
            Column::new("price".into(), self.price),
            self.currency.column("currency")?,
            gathered(
                StringChunked::from_iter_values(
                    "price_unit".into(),
                    units.iter().map(|u| u.1.as_str()),
                ),
                &by_unit,
            )?,
            gathered(
                Float64Chunked::from_iter_options("unit_factor".into(), units.iter().map(|u| u.2)),
                &by_unit,
            )?,
            gathered(
                BooleanChunked::from_iter_values("per_instance".into(), units.iter().map(|u| u.3)),
                &by_unit,
            )?,
            Column::new(
                "pre_reason".into(),
                reject.iter().map(|r| r.map(|r| r.0)).collect::<Vec<_>>(),
            ),
            Column::new(
                "pre_detail".into(),
                reject.iter().map(|r| r.map(|r| r.1)).collect::<Vec<_>>(),
            ),
            Column::new("group_offers".into(), self.groups),
        ])
    }
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
/// most `FX_MAX_AGE_DAYS` old), USD per GPU-hour, and the reject reason and detail
/// (null reason: the offer is stored).
struct Checks {
    fx_rate: Expr,
    fx_date: Expr,
    usd: Expr,
    reason: Expr,
    detail: Expr,
}

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
    let bad_price = col("price")
        .lt_eq(lit(0.0))
        .or(col("price").is_nan())
        .or(col("price").is_infinite());
    let reason = when(col("pre_reason").is_not_null())
        .then(col("pre_reason"))
        .when(col("gpu_count").is_null())
        .then(lit("missing_gpu_count"))
        .when(col("gpu_count").lt_eq(lit(0.0)))
        .then(lit("bad_gpu_count"))
        .when(col("unit_factor").is_null())
        .then(lit("unknown_unit"))
        .when(col("price").is_null())
        .then(lit("missing_price"))
        .when(bad_price.clone())
        .then(lit("non_positive_price"))
        .when(col("fx_usd_per_unit").is_null())
        .then(lit("missing_fx_rate"))
        .otherwise(lit(NULL).cast(DataType::String));
    let detail = when(col("pre_detail").is_not_null())
        .then(col("pre_detail"))
        .when(col("gpu_count").is_null())
        .then(lit(
            "no GPU count in the offer, and its instance type is not in tables/instances.csv",
        ))
        .when(col("gpu_count").lt_eq(lit(0.0)))
        .then(lit("GPU count ") + col("gpu_count").cast(DataType::String) + lit(" is not positive"))
        .when(col("unit_factor").is_null())
        .then(lit("unit ") + col("price_unit") + lit(" is not in tables/units.toml"))
        .when(col("price").is_null())
        .then(lit("no price in the offer"))
        .when(bad_price.clone())
        .then(
            lit("price ")
                + col("price").cast(DataType::String)
                + lit(" ")
                + col("currency")
                + lit(" per ")
                + col("price_unit")
                + lit(" is not a positive finite number"),
        )
        .when(col("fx_usd_per_unit").is_null())
        .then(
            lit("no ECB rate for ")
                + col("currency")
                + lit(format!(
                    " within {FX_MAX_AGE_DAYS} days before the observation"
                )),
        )
        .otherwise(lit(""));
    Checks {
        fx_rate,
        fx_date,
        usd,
        reason,
        detail,
    }
}

/// Normalise one feed run's offers. `fx` is [`fx_frame`]'s output (may be empty).
/// The offers are taken, and freed as soon as the pre-join frame holds them, so the
/// polars steps and the caller's Parquet write do not run beside them.
pub fn normalise(
    offers: Vec<RawOffer>,
    parse_rejects: &[ParseReject],
    ctx: &Context,
    tables: &Tables,
    fx: &DataFrame,
) -> PolarsResult<Batch> {
    let raw = pre_join_frame(&offers, ctx, tables)?;
    drop(offers);
    let Checks {
        fx_rate,
        fx_date,
        usd,
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
            reason.alias("reason"),
        ]);
    if needs_sort {
        all = all.sort(ROW_ORDER, Default::default());
    }
    let all = all.collect()?;
    let ok_mask = all.column("reason")?.is_null();
    let mut offers_df = all.select(OFFER_COLUMNS.iter().copied())?;
    if !ok_mask.all() {
        offers_df = offers_df.filter(&ok_mask)?;
    }
    // The reject detail is written for the rejected rows only (a string per row).
    let mut rejects_df = all
        .filter(&!&ok_mask)?
        .lazy()
        .with_column(detail.alias("detail"))
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

/// The offers as one frame before FX and checks, in row order.
fn pre_join_frame(offers: &[RawOffer], ctx: &Context, tables: &Tables) -> PolarsResult<DataFrame> {
    let mut distinct = Distinct::default();
    let mut raw = RawColumns::with_capacity(offers.len());
    for o in in_row_order(offers, ctx) {
        raw.push(o, ctx, tables, &mut distinct);
    }
    raw.into_frame(ctx.feed, &distinct)
}

/// The order of stored rows: observation time, provider, offer id, price class.
const ROW_ORDER: [&str; 4] = ["observed_at", "provider", "offer_id", "price_class"];

/// The offers in [`ROW_ORDER`] (as polars sorts them: by time, then the strings' bytes).
/// Payloads usually list offers in this order already, which the sort detects.
fn in_row_order<'a>(offers: &'a [RawOffer], ctx: &Context) -> Vec<&'a RawOffer> {
    let key = |o: &'a RawOffer| {
        let at = o.observed_at.unwrap_or(ctx.observed_at).timestamp_millis();
        (
            at,
            o.provider.as_str(),
            o.offer_id.as_str(),
            o.price_class.as_str(),
        )
    };
    let mut rows: Vec<&RawOffer> = offers.iter().collect();
    rows.sort_by(|a, b| key(a).cmp(&key(b)));
    rows
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
    use crate::model::{PriceClass, PriceUnit};
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

    /// Normalise `offers` observed 2024-10-07 01:00 UTC, with the ECB rates of
    /// 2024-10-04 (USD 1.1029 and CNY 7.7407 per EUR).
    fn batch(offers: &[RawOffer]) -> Batch {
        let d = NaiveDate::from_ymd_opt(2024, 10, 4).unwrap();
        let rate = |currency: &str, units_per_eur| FxRate {
            date: d,
            currency: currency.into(),
            units_per_eur,
        };
        let fx = fx_frame(&[rate("USD", 1.1029), rate("CNY", 7.7407)]).unwrap();
        let ctx = Context::new("t", Utc.with_ymd_and_hms(2024, 10, 7, 1, 0, 0).unwrap());
        normalise(offers.to_vec(), &[], &ctx, Tables::embedded(), &fx).unwrap()
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
