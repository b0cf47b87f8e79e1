//! `lambda`: Lambda Cloud's `GET /api/v1/instance-types` response,
//! `{"data": {"<name>": {"instance_type": {...}, "regions_with_capacity_available": [...]}}}`.
//!
//! Each entry is one instance type: `instance_type.name` (e.g. `gpu_8x_h100_sxm5`),
//! `description` (`8x H100 (80 GB SXM5)`), `gpu_description` (`H100 (80 GB SXM5)`),
//! `price_cents_per_hour` and `specs.gpus`. Price as published: US cents per
//! instance-hour (`cents/instance-hour`), on demand.
//!
//! Model: the instance type is looked up in `tables/instances.csv` (provider
//! `lambda`); the GPU name is `gpu_description`, or the `description` without its
//! `Nx ` prefix, so unknown instance types still resolve by name. GPU count:
//! `specs.gpus`. Availability: one offer per region in
//! `regions_with_capacity_available` (offer id `<name>@<region>`, region = the
//! region's `name`, country from `tables/regions.toml` `[lambda]`, `gpus_available` =
//! the instance's GPUs, i.e. at least one instance can be launched there). An
//! instance type with no capacity anywhere is still a published price: one offer
//! with id `<name>`, no region (so country unknown, bloc OTHER) and
//! `gpus_available = 0`.
//!
//! Live fetch: `GET https://cloud.lambda.ai/api/v1/instance-types` with
//! `Authorization: Bearer <key>` (key from `auth_env`).
//!
//! Verified against public sources (Lambda Cloud API reference and JSON schema
//! mirrors, client code using the endpoint): the URL, the `data` map, the field names
//! above including `specs.{vcpus,memory_gib,storage_gib,gpus}` and
//! `regions_with_capacity_available[].{name,description}`, the integer
//! `price_cents_per_hour`, and Bearer auth. Assumed: nothing beyond that the price is
//! the whole instance's (the API names it per instance type).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{get_bearer, json, keyless, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::model::{ParseReject, Parsed, PriceUnit, RawOffer};

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, Lambda)
}

pub struct Lambda;

#[derive(Deserialize)]
struct Response {
    data: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Entry {
    instance_type: InstanceType,
    #[serde(default)]
    regions_with_capacity_available: Vec<Region>,
}

#[derive(Deserialize)]
struct InstanceType {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    gpu_description: Option<String>,
    #[serde(default)]
    price_cents_per_hour: Option<f64>,
    #[serde(default)]
    specs: Option<Specs>,
}

#[derive(Deserialize)]
struct Specs {
    #[serde(default)]
    gpus: Option<f64>,
}

#[derive(Deserialize)]
struct Region {
    name: String,
}

/// The GPU name in an instance description: `8x H100 (80 GB SXM5)` → `H100 (80 GB SXM5)`.
pub fn gpu_of_description(d: &str) -> &str {
    let d = d.trim();
    match d.split_once(' ') {
        Some((n, rest))
            if n.len() > 1
                && n.ends_with(['x', 'X'])
                && n[..n.len() - 1].chars().all(|c| c.is_ascii_digit()) =>
        {
            rest.trim()
        }
        _ => d,
    }
}

impl Adapter for Lambda {
    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        Ok(vec![get_bearer(url, secret)])
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let resp: Response = json(&page.body)?;
        let mut out = Parsed::default();
        for (key, value) in resp.data {
            let e: Entry = match serde_json::from_value(value) {
                Ok(e) => e,
                Err(err) => {
                    out.rejects.push(ParseReject {
                        offer_id: key.clone(),
                        gpu_name_raw: String::new(),
                        reason: "bad_record".into(),
                        detail: format!("data.{key}: {err}"),
                    });
                    continue;
                }
            };
            let it = e.instance_type;
            let name = it
                .gpu_description
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .or(it.description.as_deref().map(gpu_of_description))
                .unwrap_or("")
                .to_string();
            let gpus = it.specs.and_then(|s| s.gpus);
            let mut base = RawOffer::new(ctx.provider, it.name.clone(), name);
            base.instance_type = Some(it.name.clone().into());
            base.gpu_count = gpus;
            base.price = it.price_cents_per_hour;
            base.currency = "USD".into();
            base.price_unit = PriceUnit::parse("cents/instance-hour").expect("static unit");
            if e.regions_with_capacity_available.is_empty() {
                base.gpus_available = Some(0.0);
                out.offers.push(base);
                continue;
            }
            for r in e.regions_with_capacity_available {
                let mut o = base.clone();
                o.offer_id = format!("{}@{}", it.name, r.name).into();
                o.region = Some(r.name.into());
                o.gpus_available = gpus;
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
    fn description_prefix() {
        for (input, expected) in [
            ("8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)"),
            ("1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)"),
            ("GH200 (96 GB)", "GH200 (96 GB)"),
            ("x H100", "x H100"),
            ("10x RTX 6000 (24 GB)", "RTX 6000 (24 GB)"),
            ("", ""),
        ] {
            assert_eq!(gpu_of_description(input), expected, "{input:?}");
        }
    }

    fn parse(body: &str) -> Parsed {
        super::super::parse_page(&Lambda, "lambda", "", body).unwrap()
    }

    #[test]
    fn regions_become_offers() {
        let p = parse(
            r#"{"data":{
              "gpu_8x_h100_sxm5":{"instance_type":{"name":"gpu_8x_h100_sxm5","description":"8x H100 (80 GB SXM5)","gpu_description":"H100 (80 GB SXM5)","price_cents_per_hour":2392,"specs":{"vcpus":208,"memory_gib":1800,"storage_gib":24780,"gpus":8}},
                "regions_with_capacity_available":[{"name":"us-west-1","description":"California, USA"},{"name":"us-east-1","description":"Virginia, USA"}]},
              "gpu_1x_a10":{"instance_type":{"name":"gpu_1x_a10","description":"1x A10 (24 GB PCIe)","price_cents_per_hour":75,"specs":{"gpus":1}},"regions_with_capacity_available":[]},
              "gpu_broken":{"instance_type":{"description":"no name"}}
            }}"#,
        );
        type Row<'a> = (&'a str, Option<&'a str>, &'a str, Option<f64>, Option<f64>);
        let rows = p.offers.rows();
        let got: Vec<Row> = rows
            .iter()
            .map(|o| {
                (
                    o.offer_id.as_str(),
                    o.region.as_deref(),
                    o.gpu_name_raw.as_str(),
                    o.gpu_count,
                    o.gpus_available,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("gpu_1x_a10", None, "A10 (24 GB PCIe)", Some(1.0), Some(0.0)),
                (
                    "gpu_8x_h100_sxm5@us-west-1",
                    Some("us-west-1"),
                    "H100 (80 GB SXM5)",
                    Some(8.0),
                    Some(8.0)
                ),
                (
                    "gpu_8x_h100_sxm5@us-east-1",
                    Some("us-east-1"),
                    "H100 (80 GB SXM5)",
                    Some(8.0),
                    Some(8.0)
                ),
            ]
        );
        assert!(p
            .offers
            .iter()
            .all(|o| o.price_unit.label() == "cents/instance-hour" && o.currency == "USD"));
        assert_eq!(p.offers.row(1).price, Some(2392.0));
        assert_eq!(
            p.offers.row(1).instance_type.as_deref(),
            Some("gpu_8x_h100_sxm5")
        );
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].offer_id, "gpu_broken");
    }
}
