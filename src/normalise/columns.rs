//! The pre-join frame: a payload's [`Offers`] as polars columns in stored row order,
//! with each offer's place (country, bloc), model, GPU count and unit factor.
//!
//! The offers' text columns are already kept once per distinct value; a place, a name
//! and a unit are resolved once per distinct combination of those values' indices,
//! and every string column is the distinct values gathered by the rows' indices.
//! Invariant: the rows come out in [`ROW_ORDER`] (time, then the strings' bytes), as
//! polars would sort them, whatever the payload's order.

use std::collections::HashMap;
use std::hash::Hash;

use polars::prelude::*;

use super::Context;
use crate::model::{Basis, PriceUnit};
use crate::offers::{Floats, Interned, Offers};
use crate::tables::Tables;
use crate::week::epoch_days;

/// The order of stored rows: observation time, provider, offer id, price class.
pub const ROW_ORDER: [&str; 4] = ["observed_at", "provider", "offer_id", "price_class"];

/// A reject found before the checks: reason and detail.
type PreReject = (&'static str, String);

/// How a raw name / instance type resolved.
#[derive(Debug, Clone)]
struct Resolution {
    model: Option<String>,
    count_from_catalogue: Option<f64>,
    reject: Option<PreReject>,
    china_variant: Option<bool>,
}

/// The fields a name resolves by.
struct Name<'a> {
    provider: &'a str,
    instance_type: Option<&'a str>,
    raw: &'a str,
    memory_gb: Option<f64>,
}

fn resolve(tables: &Tables, n: &Name) -> Resolution {
    let res = |model: Option<String>, count, reject| Resolution {
        china_variant: model
            .as_deref()
            .and_then(|m| tables.gpus.model(m))
            .map(|m| m.china_variant),
        model,
        count_from_catalogue: count,
        reject,
    };
    if let Some(it) = n.instance_type {
        if let Some(ig) = tables.instance(n.provider, it) {
            return res(Some(ig.gpu_model.clone()), Some(ig.gpu_count), None);
        }
        if n.raw.trim().is_empty() {
            let detail = format!(
                "instance type {it:?} of provider {} is not in tables/instances.csv",
                n.provider
            );
            return res(None, None, Some(("unknown_instance_type", detail)));
        }
    }
    if tables.gpus.is_not_gpu(n.raw) {
        let detail = format!("{:?} is an accelerator but not a GPU", n.raw);
        return res(None, None, Some(("not_a_gpu", detail)));
    }
    match tables.gpus.resolve_for(n.provider, n.raw, n.memory_gb) {
        Some(m) => res(Some(m), None, None),
        None => {
            let detail = format!("GPU name {:?} is not in tables/gpus.toml", n.raw);
            res(None, None, Some(("unknown_gpu_name", detail)))
        }
    }
}

/// Where an offer is: its country (stated, or its region's), bloc, and with
/// `check_places` the reject of a region its tables cannot place.
struct Place<'a> {
    country: Option<&'a str>,
    bloc: &'a str,
    reject: Option<PreReject>,
}

fn place<'a>(
    tables: &'a Tables,
    provider: &'a str,
    region: Option<&'a str>,
    stated: Option<&'a str>,
    check: bool,
) -> Place<'a> {
    let country = stated.or_else(|| region.and_then(|r| tables.country(provider, r)));
    let reject = (check && country.is_none())
        .then(|| unplaced(tables, provider, region))
        .flatten();
    Place {
        country,
        bloc: tables.bloc(country),
        reject,
    }
}

/// With `check_places`: an offer that names a region its tables cannot place.
fn unplaced(tables: &Tables, provider: &str, region: Option<&str>) -> Option<PreReject> {
    let region = region?;
    if !tables.knows_provider(provider) {
        return Some((
            "unknown_provider",
            format!(
                "provider {provider:?} has no table in tables/regions.toml (region {region:?})"
            ),
        ));
    }
    Some((
        "unknown_region",
        format!("region {region:?} of provider {provider} is not in tables/regions.toml"),
    ))
}

/// A unit as the tables read it: its label, factor to per-hour (none: unknown) and
/// whether the price is for the whole instance.
struct UnitInfo {
    label: String,
    factor: Option<f64>,
    per_instance: bool,
}

fn unit_info(u: &PriceUnit, tables: &Tables) -> UnitInfo {
    let factor = match (tables.scale(&u.scale), tables.period_hours(&u.period)) {
        (Some(s), Some(h)) => Some(s / h),
        _ => None,
    };
    UnitInfo {
        label: u.label(),
        factor,
        per_instance: u.basis == Basis::Instance,
    }
}

/// Values made once per distinct key, and each row's index into them. A row whose
/// key equals the row before's is not hashed.
struct PerDistinct<K, V> {
    index: HashMap<K, u32, foldhash::fast::RandomState>,
    values: Vec<V>,
    rows: Vec<u32>,
}

impl<K: Hash + Eq + Copy, V> PerDistinct<K, V> {
    fn build(n: usize, key: impl Fn(usize) -> K, mut make: impl FnMut(K) -> V) -> Self {
        let mut me = Self {
            index: HashMap::default(),
            values: Vec::new(),
            rows: Vec::with_capacity(n),
        };
        let mut last: Option<(K, u32)> = None;
        for i in 0..n {
            let k = key(i);
            let row = match last {
                Some((lk, row)) if lk == k => row,
                _ => {
                    let values = &mut me.values;
                    let row = *me.index.entry(k).or_insert_with(|| {
                        values.push(make(k));
                        (values.len() - 1) as u32
                    });
                    last = Some((k, row));
                    row
                }
            };
            me.rows.push(row);
        }
        me
    }

    fn get(&self, i: usize) -> &V {
        &self.values[self.rows[i] as usize]
    }
}

/// A payload's offers ready to become pre-join frames: the row order, and each
/// row's place, name and unit resolved once per distinct value.
pub(super) struct Prepared<'a> {
    offers: &'a Offers,
    observed: Vec<i64>,
    order: Vec<u32>,
    places: PerDistinct<(u32, u32, u32), Place<'a>>,
    names: PerDistinct<(u32, u32, u32, Option<u64>), Resolution>,
    units: Vec<UnitInfo>,
}

impl<'a> Prepared<'a> {
    pub(super) fn new(offers: &'a Offers, ctx: &Context, tables: &'a Tables) -> Self {
        let n = offers.len();
        let observed: Vec<i64> = (0..n)
            .map(|i| {
                offers
                    .observed_at
                    .get(i)
                    .unwrap_or(ctx.observed_at)
                    .timestamp_millis()
            })
            .collect();
        let order = in_row_order(offers, &observed);
        let (prov, reg, cty) = (&offers.provider, &offers.region, &offers.country);
        let places = PerDistinct::build(
            n,
            |i| (prov.rows[i], reg.rows[i], cty.rows[i]),
            |(p, r, c)| {
                let (p, r) = (
                    prov.values[p as usize].as_str(),
                    reg.values[r as usize].as_deref(),
                );
                place(
                    tables,
                    p,
                    r,
                    cty.values[c as usize].as_deref(),
                    ctx.check_places,
                )
            },
        );
        let (inst, raw) = (&offers.instance_type, &offers.gpu_name_raw);
        let names = PerDistinct::build(
            n,
            |i| {
                let mem = offers.gpu_memory_gb.get(i).map(f64::to_bits);
                (prov.rows[i], inst.rows[i], raw.rows[i], mem)
            },
            |(p, it, r, mem)| {
                let name = Name {
                    provider: &prov.values[p as usize],
                    instance_type: inst.values[it as usize].as_deref(),
                    raw: &raw.values[r as usize],
                    memory_gb: mem.map(f64::from_bits),
                };
                resolve(tables, &name)
            },
        );
        let units = offers
            .price_unit
            .values
            .iter()
            .map(|u| unit_info(u, tables))
            .collect();
        Self {
            offers,
            observed,
            order,
            places,
            names,
            units,
        }
    }

    /// Rows `rows` of the row order as one frame before FX and checks.
    pub(super) fn frame(
        &self,
        rows: std::ops::Range<usize>,
        feed: &str,
    ) -> PolarsResult<DataFrame> {
        Frame {
            p: self,
            order: &self.order[rows],
        }
        .build(feed)
    }
}

/// The row order: indices of the offers sorted by [`ROW_ORDER`] (as polars sorts
/// them: by time, then the strings' bytes). Payloads usually list offers in this
/// order already, which the stable sort detects.
fn in_row_order(offers: &Offers, observed: &[i64]) -> Vec<u32> {
    let key = |i: u32| {
        let i = i as usize;
        (
            observed[i],
            offers.provider.get(i).as_str(),
            offers.offer_id[i].as_str(),
            offers.price_class[i].as_str(),
        )
    };
    let mut order: Vec<u32> = (0..offers.len() as u32).collect();
    order.sort_by(|a, b| key(*a).cmp(&key(*b)));
    order
}

/// A slice `order` of the prepared row order, to become one pre-join frame.
struct Frame<'a> {
    p: &'a Prepared<'a>,
    order: &'a [u32],
}

impl Frame<'_> {
    /// A column of the offers in row order.
    fn ordered<T: Copy>(&self, v: &[T]) -> Vec<T> {
        self.order.iter().map(|&i| v[i as usize]).collect()
    }

    /// A number column of the offers, in row order.
    fn floats(&self, name: &str, c: &Floats) -> Column {
        let values = self.order.iter().map(|&i| c.get(i as usize));
        Float64Chunked::from_iter_options(name.into(), values).into_column()
    }

    /// `values` gathered by the rows' indices `rows`, in row order.
    fn gathered<T: PolarsDataType>(
        &self,
        values: ChunkedArray<T>,
        rows: &[u32],
    ) -> PolarsResult<Column>
    where
        ChunkedArray<T>: ChunkTake<IdxCa> + IntoSeries,
    {
        let idx = IdxCa::from_vec(PlSmallStr::EMPTY, self.ordered(rows));
        Ok(values.take(&idx)?.into_series().into())
    }

    /// An interned text column of the offers.
    fn text<T: AsRef<str>>(&self, name: &str, c: &Interned<T>) -> PolarsResult<Column> {
        let values = c.values.iter().map(|v| Some(v.as_ref()));
        self.gathered(
            StringChunked::from_iter_options(name.into(), values),
            &c.rows,
        )
    }

    /// An interned optional text column of the offers.
    fn opt_text<T: AsRef<str>>(&self, name: &str, c: &Interned<Option<T>>) -> PolarsResult<Column> {
        let values = c.values.iter().map(|v| v.as_ref().map(AsRef::as_ref));
        self.gathered(
            StringChunked::from_iter_options(name.into(), values),
            &c.rows,
        )
    }

    fn build(&self, feed: &str) -> PolarsResult<DataFrame> {
        let (o, n) = (self.p.offers, self.order.len());
        let observed = self.ordered(&self.p.observed);
        let obs_date: Vec<i32> = observed
            .iter()
            .map(|ms| {
                epoch_days(
                    chrono::DateTime::from_timestamp_millis(*ms)
                        .expect("a valid time")
                        .date_naive(),
                )
            })
            .collect();
        let (places, names) = (&self.p.places, &self.p.names);
        let units = &self.p.units;
        let count: Vec<Option<f64>> = self
            .order
            .iter()
            .map(|&i| {
                let i = i as usize;
                o.gpu_count.get(i).or(names.get(i).count_from_catalogue)
            })
            .collect();
        let pre: Vec<Option<(&str, &str)>> = self
            .order
            .iter()
            .map(|&i| {
                let (i, place) = (i as usize, places.get(i as usize));
                let r = names.get(i).reject.as_ref().or(place.reject.as_ref());
                r.map(|(r, d)| (*r, d.as_str()))
            })
            .collect();
        let class: Vec<&str> = self
            .order
            .iter()
            .map(|&i| o.price_class[i as usize].as_str())
            .collect();
        let offer_id: Vec<&str> = self
            .order
            .iter()
            .map(|&i| o.offer_id[i as usize].as_str())
            .collect();
        let unit_rows = &o.price_unit.rows;
        DataFrame::new_infer_height(vec![
            Column::new("observed_at".into(), observed),
            Column::new("obs_date".into(), obs_date),
            StringChunked::full("feed".into(), feed, n).into_column(),
            self.text("provider", &o.provider)?,
            Column::new("offer_id".into(), offer_id),
            self.opt_text("instance_type", &o.instance_type)?,
            self.opt_text("region", &o.region)?,
            self.gathered(
                StringChunked::from_iter_options(
                    "country".into(),
                    places.values.iter().map(|p| p.country),
                ),
                &places.rows,
            )?,
            self.gathered(
                StringChunked::from_iter_values(
                    "bloc".into(),
                    places.values.iter().map(|p| p.bloc),
                ),
                &places.rows,
            )?,
            self.text("gpu_name_raw", &o.gpu_name_raw)?,
            self.gathered(
                StringChunked::from_iter_options(
                    "gpu_model".into(),
                    names.values.iter().map(|r| r.model.as_deref()),
                ),
                &names.rows,
            )?,
            self.gathered(
                BooleanChunked::from_iter_options(
                    "china_variant".into(),
                    names.values.iter().map(|r| r.china_variant),
                ),
                &names.rows,
            )?,
            Column::new("gpu_count".into(), count),
            self.floats("gpu_memory_gb", &o.gpu_memory_gb),
            self.floats("gpus_available", &o.gpus_available),
            Column::new("price_class".into(), class),
            self.floats("price", &o.price),
            self.text("currency", &o.currency)?,
            self.gathered(
                StringChunked::from_iter_values(
                    "price_unit".into(),
                    units.iter().map(|u| u.label.as_str()),
                ),
                unit_rows,
            )?,
            self.gathered(
                Float64Chunked::from_iter_options(
                    "unit_factor".into(),
                    units.iter().map(|u| u.factor),
                ),
                unit_rows,
            )?,
            self.gathered(
                BooleanChunked::from_iter_values(
                    "per_instance".into(),
                    units.iter().map(|u| u.per_instance),
                ),
                unit_rows,
            )?,
            Column::new(
                "pre_reason".into(),
                pre.iter().map(|r| r.map(|r| r.0)).collect::<Vec<_>>(),
            ),
            Column::new(
                "pre_detail".into(),
                pre.iter().map(|r| r.map(|r| r.1)).collect::<Vec<_>>(),
            ),
            self.floats("group_offers", &o.group_offers),
        ])
    }
}
