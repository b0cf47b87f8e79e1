//! `ppio`: PPIO's (派欧云) GPU-instance product list,
//! `GET /gpu-instance/openapi/v1/products` → `{"data": [{"id", "name", "price",
//! "regions", "availableDeploy", "cpuPerGpu", "memoryPerGpu", ...}]}`.
//!
//! Each product is one GPU model on offer (`name`, e.g. `NVIDIA GeForce RTX 4090 24GB`)
//! with its on-demand `price` in 1/100,000 of the currency per GPU-hour
//! (`hundred_thousandths/gpu-hour`). The currency is NOT in the payload, so it is a
//! required feed key: `currency = "CNY"` for PPIO's China site (ppinfra.com /
//! ppio.cn) and `"USD"` for the international site (the same API at Novita AI).
//!
//! One offer per entry in `regions` (the clusters the product can be deployed in;
//! offer id `<id>@<region>`, country from `tables/regions.toml` `[ppio]`), or one
//! offer with id `<id>` and no region when the list is empty. `gpu_count` is 1
//! (per-GPU price). `availableDeploy: false` means no GPU can be rented now:
//! `gpus_available = 0`; `true` gives no count (left empty). `spotPrice`, when present
//! and positive (a number or a numeric string), becomes a spot offer in the same unit.
//! `memoryPerGpu` is host RAM per GPU, not GPU memory, and is ignored.
//!
//! Live fetch: `GET https://api.ppinfra.com/gpu-instance/openapi/v1/products` with
//! `Authorization: Bearer <key>` (key from `auth_env`).
//!
//! Verified against PPIO's and Novita AI's API reference ("List GPU Products"): the
//! path, Bearer auth, the `data` array and the field names `id`, `name`,
//! `cpuPerGpu`, `memoryPerGpu` (GB of RAM per GPU), `availableDeploy` (whether an
//! instance can be created), `price` (integer), `regions` (`[string]`, the available
//! clusters), `monthlyPrice`, and Novita's `spotPrice` (string). Assumed: the price
//! scale 1/100,000 per GPU-hour (not stated on the reference page), that `spotPrice`
//! uses the same scale, and the currency per site (above).

use serde::Deserialize;
use serde_json::Value;

use super::generic_csv::check_currency;
use super::generic_json::{number, text};
use super::{adapter_keys, get_bearer, json, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    currency: String,
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    check_currency(&k.currency)?;
    Ok(Box::new(Ppio {
        currency: k.currency,
    }))
}

pub struct Ppio {
    currency: String,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Value>,
}

/// Region names in `regions`: strings, or objects naming one (`name`, `id`, `clusterName`).
fn region_names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::Object(m) => ["name", "id", "clusterName", "clusterId"]
                    .iter()
                    .find_map(|k| text(m.get(*k))),
                other => text(Some(other)),
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Adapter for Ppio {
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
        for (i, p) in resp.data.iter().enumerate() {
            let id = text(p.get("id")).unwrap_or_else(|| format!("#{i}"));
            let name = text(p.get("name")).unwrap_or_default();
            let prices = number(p.get("price"))
                .and_then(|od| number(p.get("spotPrice")).map(|spot| (od, spot)));
            let available = match p.get("availableDeploy") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(other) => Err(AdapterError::Value {
                    value: other.to_string(),
                    expected: "true or false",
                }),
            };
            let (on_demand, spot, available) = match (prices, available) {
                (Ok((od, spot)), Ok(a)) => (od, spot, a),
                (Err(e), _) | (_, Err(e)) => {
                    out.rejects.push(ParseReject {
                        offer_id: id,
                        gpu_name_raw: name,
                        reason: "bad_field".into(),
                        detail: format!("data[{i}]: {e}"),
                    });
                    continue;
                }
            };
            let mut base = RawOffer::new(ctx.provider, id.clone(), name);
            base.gpu_count = Some(1.0);
            base.gpus_available = (available == Some(false)).then_some(0.0);
            base.currency = self.currency.clone().into();
            base.price_unit =
                PriceUnit::parse("hundred_thousandths/gpu-hour").expect("static unit");
            let regions = region_names(p.get("regions"));
            let places: Vec<Option<String>> = if regions.is_empty() {
                vec![None]
            } else {
                regions.into_iter().map(Some).collect()
            };
            for region in places {
                let mut o = base.clone();
                if let Some(r) = &region {
                    o.offer_id = format!("{id}@{r}").into();
                }
                o.region = region.map(Into::into);
                let mut od = o.clone();
                od.price = on_demand;
                out.offers.push(od);
                if let Some(s) = spot.filter(|s| *s > 0.0) {
                    o.price_class = PriceClass::Spot;
                    o.price = Some(s);
                    out.offers.push(o);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::feed::parse_feed;
    use std::path::Path;

    fn parse(currency: &str, body: &str) -> Parsed {
        let f = parse_feed(
            Path::new("/feeds/p.toml"),
            &format!("format = 'ppio'\nurl = 'p.json'\ncurrency = '{currency}'"),
        )
        .unwrap();
        super::super::parse_page(&*f.adapter, "ppio", "", body).unwrap()
    }

    type Row = (String, Option<String>, PriceClass, Option<f64>, Option<f64>);

    type Want<'a> = (
        &'a str,
        Option<&'a str>,
        PriceClass,
        Option<f64>,
        Option<f64>,
    );

    fn check(product: &str, expected: &[Want]) {
        let p = parse("CNY", &format!(r#"{{"data":[{product}]}}"#));
        let got: Vec<Row> = p
            .offers
            .iter()
            .map(|o| {
                (
                    o.offer_id.to_string(),
                    o.region.as_deref().map(str::to_string),
                    o.price_class,
                    o.price,
                    o.gpus_available,
                )
            })
            .collect();
        let want: Vec<Row> = expected
            .iter()
            .map(|(a, b, c, d, e)| (a.to_string(), b.map(str::to_string), *c, *d, *e))
            .collect();
        assert_eq!(got, want, "{product}");
        assert!(p.offers.iter().all(|o| o.currency == "CNY"
            && o.price_unit.label() == "hundred_thousandths/gpu-hour"
            && o.gpu_count == Some(1.0)));
    }

    #[test]
    fn products_regions_and_spot() {
        use PriceClass::{OnDemand, Spot};
        check(
            r#"{"id":"p1","name":"RTX 4090 24GB","price":179000,"regions":["CN-East","US-West"],"availableDeploy":true,"spotPrice":"89000"}"#,
            &[
                (
                    "p1@CN-East",
                    Some("CN-East"),
                    OnDemand,
                    Some(179000.0),
                    None,
                ),
                ("p1@CN-East", Some("CN-East"), Spot, Some(89000.0), None),
                (
                    "p1@US-West",
                    Some("US-West"),
                    OnDemand,
                    Some(179000.0),
                    None,
                ),
                ("p1@US-West", Some("US-West"), Spot, Some(89000.0), None),
            ],
        );
        check(
            r#"{"id":"p2","name":"NVIDIA H800 SXM5 80GB","price":1490000,"regions":[],"availableDeploy":false,"spotPrice":"0"}"#,
            &[("p2", None, OnDemand, Some(1490000.0), Some(0.0))],
        );
        check(
            r#"{"id":"p3","name":"L40S","price":"150000","regions":[{"name":"CN-South"}],"monthlyPrice":[{"price":1,"month":1}]}"#,
            &[(
                "p3@CN-South",
                Some("CN-South"),
                OnDemand,
                Some(150000.0),
                None,
            )],
        );
        check(
            r#"{"id":"p4","name":"L20","price":"n/a","regions":["CN-North"]}"#,
            &[],
        );
        check(
            r#"{"id":"p5","name":"L20","price":1,"availableDeploy":"yes"}"#,
            &[],
        );
    }

    #[test]
    fn currency_is_required_and_checked() {
        for (text, expected) in [
            ("", "currency"),
            ("currency = 'yuan'", "ISO 4217"),
            ("currency = 'CNY'\nregion = 'x'", "region"),
        ] {
            let e = parse_feed(
                Path::new("/feeds/p.toml"),
                &format!("format = 'ppio'\nurl = 'p.json'\n{text}"),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
        let p = parse(
            "USD",
            r#"{"data":[{"id":"p1","name":"RTX 4090 24GB","price":35000}]}"#,
        );
        assert_eq!(p.offers.row(0).currency, "USD");
        let bad = parse("USD", r#"{"data":[{"id":"p1","name":"x","price":true}]}"#);
        assert_eq!((bad.offers.len(), bad.rejects.len()), (0, 1));
    }
}
