//! `generic_csv`: a declarative feed for any CSV price list.
//!
//! The feed file names the currency, the published unit, the price class and the
//! CSV columns, so a provider with a CSV price list needs a feed file, not code:
//!
//! ```toml
//! format = "generic_csv"
//! url = "samples/prices.csv"
//! provider = "examplecloud"
//! currency = "CNY"
//! price_unit = "instance-hour"   # gpu-hour, instance-hour, gpu-month, instance-month, ...
//! price_class = "on_demand"      # on_demand, spot, reserved
//! country = "CN"                 # optional: when every row is in one country
//! [columns]
//! gpu = "gpu"                    # optional when instance_type names a catalogued type
//! gpu_count = "gpus"             # optional: else the instance catalogue's count
//! price = "price"
//! region = "region"              # optional, also: country, offer_id, memory_gb, instance_type
//! ```

use std::collections::HashMap;

use serde::Deserialize;

use super::{adapter_keys, Adapter, Page, ParseCtx};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    currency: String,
    price_unit: String,
    price_class: String,
    #[serde(default)]
    country: Option<String>,
    columns: Fields,
}

/// Where each field of an offer is: a CSV column name here, a JSON pointer in
/// `generic_json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    #[serde(default)]
    pub(super) gpu: Option<String>,
    #[serde(default)]
    pub(super) gpu_count: Option<String>,
    pub(super) price: String,
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) country: Option<String>,
    #[serde(default)]
    pub(super) offer_id: Option<String>,
    #[serde(default)]
    pub(super) memory_gb: Option<String>,
    #[serde(default)]
    pub(super) instance_type: Option<String>,
}

pub struct GenericCsv {
    currency: String,
    unit: PriceUnit,
    class: PriceClass,
    country: Option<String>,
    columns: Fields,
}

/// Check an ISO 4217 code's shape.
pub fn check_currency(c: &str) -> Result<(), String> {
    if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "key `currency`: {c:?} is not an ISO 4217 code such as USD or CNY"
        ))
    }
}

/// Parse a published unit such as `cents/instance-hour`, checked against the unit table.
pub fn known_unit(s: &str) -> Result<PriceUnit, String> {
    let t = crate::tables::Tables::embedded();
    PriceUnit::parse(s)
        .filter(|u| t.period_hours(&u.period).is_some() && t.scale(&u.scale).is_some())
        .ok_or_else(|| {
            format!(
                "key `price_unit`: {s:?} is not a known unit such as gpu-hour or instance-month"
            )
        })
}

/// Parse a declared price class.
pub fn known_class(s: &str) -> Result<PriceClass, String> {
    PriceClass::parse(s)
        .ok_or_else(|| format!("key `price_class`: {s:?} must be on_demand, spot or reserved"))
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, String> {
    let k: Keys = adapter_keys(keys)?;
    check_currency(&k.currency)?;
    let unit = known_unit(&k.price_unit)?;
    if k.columns.gpu.is_none() && k.columns.instance_type.is_none() {
        return Err(
            "[columns] needs `gpu` or `instance_type` (looked up in tables/instances.csv)".into(),
        );
    }
    let class = known_class(&k.price_class)?;
    Ok(Box::new(GenericCsv {
        currency: k.currency,
        unit,
        class,
        country: k.country,
        columns: k.columns,
    }))
}

impl Adapter for GenericCsv {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, String> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(page.body.as_slice());
        let headers = rdr
            .headers()
            .map_err(|e| format!("invalid CSV header: {e}"))?
            .clone();
        let index: HashMap<&str, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim(), i))
            .collect();
        let col = |name: &Option<String>, key: &str| -> Result<Option<usize>, String> {
            match name {
                None => Ok(None),
                Some(n) => index.get(n.as_str()).copied().map(Some).ok_or_else(|| {
                    format!("column {n:?} (key `columns.{key}`) is not in the CSV header")
                }),
            }
        };
        let c = &self.columns;
        let gpu = col(&c.gpu, "gpu")?;
        let count = col(&c.gpu_count, "gpu_count")?;
        let price = col(&Some(c.price.clone()), "price")?.unwrap_or_default();
        let region = col(&c.region, "region")?;
        let country = col(&c.country, "country")?;
        let offer_id = col(&c.offer_id, "offer_id")?;
        let memory = col(&c.memory_gb, "memory_gb")?;
        let instance = col(&c.instance_type, "instance_type")?;
        let mut out = Parsed::default();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
            let get = |idx: usize| rec.get(idx).map(str::trim).unwrap_or("");
            let opt =
                |idx: Option<usize>| idx.map(get).filter(|s| !s.is_empty()).map(str::to_string);
            let name = gpu.map(get).unwrap_or("").to_string();
            let id = opt(offer_id).unwrap_or_else(|| format!("line{line}"));
            let num = |idx: Option<usize>, field: &str| -> Result<Option<f64>, String> {
                let Some(idx) = idx else { return Ok(None) };
                let s = get(idx);
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("line {line}: column {field:?}: {s:?} is not a number"))
            };
            let (n, p) = match (
                num(count, c.gpu_count.as_deref().unwrap_or("")),
                num(Some(price), &c.price),
            ) {
                (Ok(n), Ok(p)) => (n, p),
                (Err(e), _) | (_, Err(e)) => {
                    out.rejects.push(ParseReject {
                        offer_id: id,
                        gpu_name_raw: name,
                        reason: "bad_field".into(),
                        detail: e,
                    });
                    continue;
                }
            };
            let mut o = RawOffer::new(ctx.provider, id, name);
            o.region = opt(region);
            o.country = opt(country).or_else(|| self.country.clone());
            o.gpu_count = n;
            o.gpu_memory_gb = memory.and_then(|m| get(m).parse().ok());
            o.instance_type = opt(instance);
            o.price_class = self.class;
            o.price = p;
            o.currency = self.currency.clone();
            o.price_unit = self.unit.clone();
            out.offers.push(o);
        }
        Ok(out)
    }
}
