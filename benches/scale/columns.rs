//! The stored offer columns of a SIMULATED day file, filled row by row into plain
//! vectors and turned into one frame of the stored offers schema.
//!
//! Invariants: the frame has `normalise::OFFER_COLUMNS` in order with the types of
//! `normalise::offer_schema()` (the writer checks); `fractional_gpu` is `gpu_count <
//! 1` and `usd_per_gpu_hour_ex_vat` is `usd_per_gpu_hour / (1 + vat_rate)`, as
//! normalisation makes them; `sample` is true, `peer` false, `group_offers` null.

use gpurent::normalise::{offer_schema, OFFER_COLUMNS};
use polars::prelude::*;

/// One stored offer row (the columns that vary).
#[derive(Clone)]
pub struct Row<'a> {
    pub t_ms: i64,
    pub feed: &'a str,
    pub provider: &'a str,
    pub offer_id: String,
    pub instance_type: Option<&'a str>,
    pub region: &'a str,
    pub country: &'a str,
    pub bloc: &'a str,
    pub name_raw: &'a str,
    pub model: &'a str,
    pub china: bool,
    pub count: f64,
    pub avail: Option<f64>,
    pub class: &'a str,
    /// Published price, `currency` per `unit`.
    pub price: f64,
    pub currency: &'a str,
    pub unit: &'a str,
    /// Days since the epoch of the FX rate used.
    pub fx_date: i32,
    /// USD per unit of `currency`.
    pub fx: f64,
    pub vat: f64,
    pub usd: f64,
}

#[derive(Default)]
pub struct Cols<'a> {
    t: Vec<i64>,
    feed: Vec<&'a str>,
    provider: Vec<&'a str>,
    offer_id: Vec<String>,
    instance_type: Vec<Option<&'a str>>,
    region: Vec<&'a str>,
    country: Vec<&'a str>,
    bloc: Vec<&'a str>,
    name_raw: Vec<&'a str>,
    model: Vec<&'a str>,
    china: Vec<bool>,
    count: Vec<f64>,
    avail: Vec<Option<f64>>,
    class: Vec<&'a str>,
    price: Vec<f64>,
    currency: Vec<&'a str>,
    unit: Vec<&'a str>,
    fx_date: Vec<i32>,
    fx: Vec<f64>,
    vat: Vec<f64>,
    usd: Vec<f64>,
}

impl<'a> Cols<'a> {
    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.t.len()
    }

    pub fn push(&mut self, r: Row<'a>) {
        self.t.push(r.t_ms);
        self.feed.push(r.feed);
        self.provider.push(r.provider);
        self.offer_id.push(r.offer_id);
        self.instance_type.push(r.instance_type);
        self.region.push(r.region);
        self.country.push(r.country);
        self.bloc.push(r.bloc);
        self.name_raw.push(r.name_raw);
        self.model.push(r.model);
        self.china.push(r.china);
        self.count.push(r.count);
        self.avail.push(r.avail);
        self.class.push(r.class);
        self.price.push(r.price);
        self.currency.push(r.currency);
        self.unit.push(r.unit);
        self.fx_date.push(r.fx_date);
        self.fx.push(r.fx);
        self.vat.push(r.vat);
        self.usd.push(r.usd);
    }

    /// The columns derived from others, and the constant ones.
    fn derived(&self) -> Vec<Column> {
        let n = self.rows();
        let frac: Vec<bool> = self.count.iter().map(|c| *c < 1.0).collect();
        let ex: Vec<f64> = self
            .usd
            .iter()
            .zip(&self.vat)
            .map(|(u, v)| u / (1.0 + v))
            .collect();
        vec![
            Column::new("fractional_gpu".into(), frac),
            Column::new("usd_per_gpu_hour_ex_vat".into(), ex),
            Column::new("sample".into(), vec![true; n]),
            Column::new("peer".into(), vec![false; n]),
            Column::new("group_offers".into(), vec![None::<f64>; n]),
        ]
    }

    /// The frame in the stored offers schema.
    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        let mut cols = self.derived();
        cols.extend([
            Column::new("observed_at".into(), self.t),
            Column::new("feed".into(), self.feed),
            Column::new("provider".into(), self.provider),
            Column::new("offer_id".into(), self.offer_id),
            Column::new("instance_type".into(), self.instance_type),
            Column::new("region".into(), self.region),
            Column::new("country".into(), self.country),
            Column::new("bloc".into(), self.bloc),
            Column::new("gpu_name_raw".into(), self.name_raw),
            Column::new("gpu_model".into(), self.model),
            Column::new("china_variant".into(), self.china),
            Column::new("gpu_count".into(), self.count),
            Column::new("gpus_available".into(), self.avail),
            Column::new("price_class".into(), self.class),
            Column::new("price".into(), self.price),
            Column::new("currency".into(), self.currency),
            Column::new("price_unit".into(), self.unit),
            Column::new("fx_date".into(), self.fx_date),
            Column::new("fx_usd_per_unit".into(), self.fx),
            Column::new("vat_rate".into(), self.vat),
            Column::new("usd_per_gpu_hour".into(), self.usd),
        ]);
        let schema = offer_schema();
        let typed = OFFER_COLUMNS
            .iter()
            .map(|name| {
                let c = cols
                    .iter()
                    .find(|c| c.name().as_str() == *name)
                    .ok_or_else(|| polars_err!(ColumnNotFound: "{name}"))?;
                let dtype = schema
                    .get(name)
                    .ok_or_else(|| polars_err!(ColumnNotFound: "{name} in the schema"))?;
                c.cast(dtype)
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        DataFrame::new_infer_height(typed)
    }
}
