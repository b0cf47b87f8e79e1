//! `shadeform`: Shadeform's `GET /v1/instances/types` response,
//! `{"instance_types": [{"cloud", "shade_instance_type", "cloud_instance_type",
//! "hourly_price", "configuration": {...}, "availability": [{"region", "available",
//! "display_name"}]}]}`.
//!
//! Shadeform is a marketplace that resells other clouds, so each offer keeps its
//! underlying cloud: `provider` is `<feed provider>:<cloud>`, e.g.
//! `shadeform:lambdalabs` or `shadeform:hyperstack`, and never merges with the
//! cloud's own feed. Price as published: US cents per instance-hour
//! (`cents/instance-hour`) for `configuration.num_gpus` GPUs, on demand.
//!
//! One offer per `availability` entry (offer id `<cloud>:<cloud_instance_type>@<region>`,
//! `gpus_available` = `num_gpus` when `available`, else 0); with no availability
//! list, one offer without region. Country: the leading two-letter code of the
//! region's `display_name` (`"US, Wichita, KS"` → US); otherwise the underlying
//! cloud's table in `tables/regions.toml` (Shadeform's `lambdalabs` is gpurent's
//! `lambda`); otherwise unknown (bloc OTHER).
//!
//! GPU name: `gpu_type` with the `interconnect` appended (`H100` + `sxm5` →
//! `H100 sxm5`) when the GPU table knows that form-qualified name, else `gpu_type`
//! alone (`A6000`); `vram_per_gpu_in_gb` is the reported memory. The instance type
//! is `cloud_instance_type` (not in the catalogue under this provider, so the name
//! decides the model).
//!
//! Live fetch: `GET https://api.shadeform.ai/v1/instances/types` with the header
//! `X-API-KEY: <key>` (key from `auth_env`).
//!
//! Verified against Shadeform's API reference (`/instances/types` OpenAPI and its
//! example response): the URL, `X-API-KEY`, every field name above, `hourly_price` as
//! an integer in cents, `availability[].display_name`. Assumed: that `hourly_price`
//! is for the whole instance (the docs give it per instance type, the example has
//! one GPU), that `display_name` starts with an ISO country code (one documented
//! example), and the Shadeform→gpurent cloud-name map in [`underlying`].

use serde::Deserialize;

use super::{json, keyless, str_at, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::model::{ParseReject, Parsed, PriceUnit, RawOffer};
use crate::tables::Tables;

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, Shadeform)
}

pub struct Shadeform;

#[derive(Deserialize)]
struct Response {
    instance_types: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct InstanceType {
    cloud: String,
    #[serde(default)]
    shade_instance_type: Option<String>,
    #[serde(default)]
    cloud_instance_type: Option<String>,
    #[serde(default)]
    hourly_price: Option<f64>,
    configuration: Configuration,
    #[serde(default)]
    availability: Vec<Availability>,
}

#[derive(Deserialize)]
struct Configuration {
    gpu_type: String,
    num_gpus: f64,
    #[serde(default)]
    vram_per_gpu_in_gb: Option<f64>,
    #[serde(default)]
    interconnect: Option<String>,
}

#[derive(Deserialize)]
struct Availability {
    region: String,
    #[serde(default)]
    available: bool,
    #[serde(default)]
    display_name: Option<String>,
}

/// gpurent's provider id (the table name in `tables/regions.toml`) for a Shadeform
/// cloud name, where they differ.
pub fn underlying(cloud: &str) -> &str {
    match cloud {
        "lambdalabs" => "lambda",
        "digitalocean" => "do",
        "vastai" => "vast",
        other => other,
    }
}

/// The ISO code a display name starts with: `"US, Wichita, KS"` → `US`.
pub fn country_of_display(name: &str) -> Option<String> {
    let first = name.split(',').next()?.trim();
    (first.len() == 2 && first.chars().all(|c| c.is_ascii_uppercase())).then(|| first.to_string())
}

/// `gpu_type` qualified by its interconnect when the GPU table knows that name.
pub fn gpu_name(gpu_type: &str, interconnect: Option<&str>, memory_gb: Option<f64>) -> String {
    let gpu_type = gpu_type.trim();
    if let Some(ic) = interconnect.map(str::trim).filter(|s| !s.is_empty()) {
        let qualified = format!("{gpu_type} {ic}");
        if Tables::embedded()
            .gpus
            .resolve(&qualified, memory_gb)
            .is_some()
        {
            return qualified;
        }
    }
    gpu_type.to_string()
}

impl Adapter for Shadeform {
    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        let mut r = Request::get(url);
        if let Some(key) = secret {
            r.headers.push(("X-API-KEY".into(), key.to_string()));
        }
        Ok(vec![r])
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let resp: Response = json(&page.body)?;
        let tables = Tables::embedded();
        let mut out = Parsed::default();
        for (i, value) in resp.instance_types.into_iter().enumerate() {
            let t: InstanceType = match serde_json::from_value(value.clone()) {
                Ok(t) => t,
                Err(e) => {
                    let s = |k: &str| str_at(&value, k);
                    out.rejects.push(ParseReject {
                        offer_id: format!("{}:{}", s("cloud"), s("cloud_instance_type")),
                        gpu_name_raw: value
                            .pointer("/configuration/gpu_type")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .into(),
                        reason: "bad_record".into(),
                        detail: format!("instance_types[{i}]: {e}"),
                    });
                    continue;
                }
            };
            let c = &t.configuration;
            let itype = t
                .cloud_instance_type
                .clone()
                .or_else(|| t.shade_instance_type.clone())
                .unwrap_or_else(|| format!("#{i}"));
            let provider = format!("{}:{}", ctx.provider, t.cloud);
            let mut base = RawOffer::new(
                &provider,
                format!("{}:{itype}", t.cloud),
                gpu_name(&c.gpu_type, c.interconnect.as_deref(), c.vram_per_gpu_in_gb),
            );
            base.instance_type = t.cloud_instance_type.clone().map(Into::into);
            base.gpu_count = Some(c.num_gpus);
            base.gpu_memory_gb = c.vram_per_gpu_in_gb;
            base.price = t.hourly_price;
            base.currency = "USD".into();
            base.price_unit = PriceUnit::parse("cents/instance-hour").expect("static unit");
            if t.availability.is_empty() {
                out.offers.push(base);
                continue;
            }
            for a in t.availability {
                let mut o = base.clone();
                o.offer_id = format!("{}@{}", base.offer_id, a.region).into();
                o.country = (a
                    .display_name
                    .as_deref()
                    .and_then(country_of_display)
                    .or_else(|| {
                        tables
                            .country(underlying(&t.cloud), &a.region)
                            .map(str::to_string)
                    }))
                .map(Into::into);
                o.gpus_available = Some(if a.available { c.num_gpus } else { 0.0 });
                o.region = Some(a.region.into());
                out.offers.push(o);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_country() {
        for (input, expected) in [
            ("US, Wichita, KS", Some("US")),
            ("CA, Montreal", Some("CA")),
            ("FI", Some("FI")),
            ("Finland, Helsinki", None),
            ("us, somewhere", None),
            ("", None),
        ] {
            assert_eq!(country_of_display(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn form_is_kept_only_when_the_table_knows_it() {
        for (gpu, ic, mem, expected) in [
            ("H100", Some("sxm5"), Some(80.0), "H100 sxm5"),
            ("A100", Some("pcie"), Some(80.0), "A100 pcie"),
            ("A6000", Some("pcie"), Some(48.0), "A6000"),
            ("L40S", None, Some(48.0), "L40S"),
            ("H100", Some(""), None, "H100"),
        ] {
            assert_eq!(gpu_name(gpu, ic, mem), expected, "{gpu} {ic:?}");
        }
    }

    fn parse(body: &str) -> Parsed {
        super::super::parse_page(&Shadeform, "shadeform", "", body).unwrap()
    }

    #[test]
    fn clouds_stay_distinct_and_regions_become_offers() {
        let p = parse(
            r#"{"instance_types":[
              {"cloud":"lambdalabs","shade_instance_type":"H100_sxm5x8","cloud_instance_type":"gpu_8x_h100_sxm5","hourly_price":2392,
               "configuration":{"num_gpus":8,"gpu_type":"H100","interconnect":"sxm5","vram_per_gpu_in_gb":80},
               "availability":[{"region":"us-west-1","available":true},{"region":"europe-central-1","available":false}]},
              {"cloud":"hyperstack","shade_instance_type":"A6000","cloud_instance_type":"n3-RTX-A6000x1","hourly_price":50,
               "configuration":{"num_gpus":1,"gpu_type":"A6000","interconnect":"pcie","vram_per_gpu_in_gb":48},
               "availability":[{"region":"canada-1","available":true,"display_name":"CA, Montreal"}]},
              {"cloud":"hyperstack","configuration":{"gpu_type":"L40"}}
            ]}"#,
        );
        let rows = p.offers.rows();
        let got: Vec<(&str, &str, Option<&str>, Option<f64>)> = rows
            .iter()
            .map(|o| {
                (
                    o.provider.as_str(),
                    o.offer_id.as_str(),
                    o.country.as_deref(),
                    o.gpus_available,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "shadeform:lambdalabs",
                    "lambdalabs:gpu_8x_h100_sxm5@us-west-1",
                    Some("US"),
                    Some(8.0)
                ),
                (
                    "shadeform:lambdalabs",
                    "lambdalabs:gpu_8x_h100_sxm5@europe-central-1",
                    Some("DE"),
                    Some(0.0)
                ),
                (
                    "shadeform:hyperstack",
                    "hyperstack:n3-RTX-A6000x1@canada-1",
                    Some("CA"),
                    Some(1.0)
                ),
            ]
        );
        assert_eq!(p.offers.row(0).gpu_name_raw, "H100 sxm5");
        assert_eq!(
            (p.offers.row(0).price, p.offers.row(0).gpu_count),
            (Some(2392.0), Some(8.0))
        );
        assert_eq!(p.offers.row(2).gpu_name_raw, "A6000");
        assert!(p
            .offers
            .iter()
            .all(|o| o.price_unit.label() == "cents/instance-hour"));
        assert_eq!(p.rejects.len(), 1);
        assert!(p.rejects[0].detail.contains("instance_types[2]"));
    }
}
