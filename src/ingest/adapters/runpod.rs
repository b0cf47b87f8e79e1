//! `runpod`: RunPod's GraphQL `gpuTypes` query response,
//! `{"data": {"gpuTypes": [{"id", "displayName", "memoryInGb", "securePrice", ...}]}}`.
//!
//! Live fetch: `POST https://api.runpod.io/graphql` with the JSON body
//! `{"query": "query GpuTypes { gpuTypes { ... } }"}` ([`QUERY`]) and, when the feed
//! has `auth_env`, the header `Authorization: Bearer <key>` (RunPod also accepts
//! `?api_key=`; the header keeps the key out of URLs and logs).
//!
//! Prices as published: USD per GPU-hour (`gpu-hour`), one price per GPU type and
//! cloud tier, not per data centre. Each GPU type becomes up to four offers, keeping
//! the two clouds apart by offer id:
//!
//! | offer id            | class       | field                |
//! |---------------------|-------------|----------------------|
//! | `<id>:secure`       | `on_demand` | `securePrice`        |
//! | `<id>:secure`       | `spot`      | `secureSpotPrice`    |
//! | `<id>:community`    | `on_demand` | `communityPrice`     |
//! | `<id>:community`    | `spot`      | `communitySpotPrice` |
//!
//! A tier whose flag (`secureCloud` / `communityCloud`) is `false` is not offered and
//! is skipped. Otherwise an on-demand price of `0` or `null` is *missing*, not free:
//! the offer is kept with no price (normalise counts it as `missing_price`). A spot
//! price of `0`/`null` means no spot offer. `gpu_count` is 1 (prices are per GPU);
//! the GPU name is the type `id` (e.g. `NVIDIA H100 80GB HBM3`) with `memoryInGb`.
//! `region` and `country` are left empty: these prices are global, so the offers are
//! bloc OTHER with an unknown country (per-data-centre prices need `lowestPrice` with
//! a `dataCenterId` per request, not done here).
//!
//! Verified against public sources (runpod-python's `QUERY_GPU_TYPES` and GraphQL
//! schema excerpts): the endpoint, the POST body, the field names `id`,
//! `displayName`, `memoryInGb`, `secureCloud`, `communityCloud`, `securePrice`,
//! `communityPrice`, `secureSpotPrice`, `communitySpotPrice`, `lowestPrice
//! {minimumBidPrice uninterruptablePrice stockStatus}`, and Bearer auth. Assumed:
//! that prices are USD per GPU-hour (RunPod's console shows them as $/hr per GPU) and
//! that `0` stands for "not offered" rather than a real price. `lowestPrice` and
//! `stockStatus` are ignored if present (no GPU count is published there).

use serde::Deserialize;

use super::{bad_record, json, keyless, str_at, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::model::{Parsed, PriceClass, PriceUnit, RawOffer};

/// The GraphQL query sent on a live fetch.
pub const QUERY: &str = "query GpuTypes { gpuTypes { id displayName memoryInGb secureCloud communityCloud securePrice communityPrice secureSpotPrice communitySpotPrice } }";

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, RunPod)
}

pub struct RunPod;

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    errors: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    #[serde(default)]
    gpu_types: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GpuType {
    id: String,
    #[serde(default)]
    memory_in_gb: Option<f64>,
    #[serde(default)]
    secure_cloud: Option<bool>,
    #[serde(default)]
    community_cloud: Option<bool>,
    #[serde(default)]
    secure_price: Option<f64>,
    #[serde(default)]
    community_price: Option<f64>,
    #[serde(default)]
    secure_spot_price: Option<f64>,
    #[serde(default)]
    community_spot_price: Option<f64>,
}

/// A published price; `0`, negative or `null` is missing.
fn published(p: Option<f64>) -> Option<f64> {
    p.filter(|p| *p > 0.0)
}

impl Adapter for RunPod {
    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        let mut r = Request::get(url);
        r.method = "POST".into();
        r.headers
            .push(("Content-Type".into(), "application/json".into()));
        if let Some(key) = secret {
            r.headers
                .push(("Authorization".into(), format!("Bearer {key}")));
        }
        r.body = Some(serde_json::json!({ "query": QUERY }).to_string());
        Ok(vec![r])
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let resp: Response = json(&page.body)?;
        let types = match resp.data.and_then(|d| d.gpu_types) {
            Some(t) => t,
            None => {
                let messages: Vec<String> = resp
                    .errors
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(|m| m.as_str())
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect();
                return Err(if messages.is_empty() {
                    AdapterError::Payload("no `data.gpuTypes` in the GraphQL response".into())
                } else {
                    AdapterError::Api(format!("GraphQL errors: {}", messages.join("; ")))
                });
            }
        };
        let mut out = Parsed::default();
        for (i, value) in types.into_iter().enumerate() {
            let t: GpuType = match serde_json::from_value(value.clone()) {
                Ok(t) => t,
                Err(e) => {
                    let id = str_at(&value, "id");
                    let offer_id = if id.is_empty() {
                        format!("#{i}")
                    } else {
                        id.clone()
                    };
                    out.rejects
                        .push(bad_record(offer_id, id, format!("gpuTypes[{i}]: {e}")));
                    continue;
                }
            };
            let tiers = [
                (
                    "secure",
                    t.secure_cloud,
                    t.secure_price,
                    t.secure_spot_price,
                ),
                (
                    "community",
                    t.community_cloud,
                    t.community_price,
                    t.community_spot_price,
                ),
            ];
            for (tier, offered, on_demand, spot) in tiers {
                if offered == Some(false) {
                    continue;
                }
                let mut base =
                    RawOffer::new(ctx.provider, format!("{}:{tier}", t.id), t.id.clone());
                base.gpu_memory_gb = t.memory_in_gb;
                base.gpu_count = Some(1.0);
                base.currency = "USD".into();
                base.price_unit = PriceUnit::gpu_hour();
                let mut od = base.clone();
                od.price = published(on_demand);
                out.offers.push(od);
                if let Some(p) = published(spot) {
                    let mut s = base;
                    s.price_class = PriceClass::Spot;
                    s.price = Some(p);
                    out.offers.push(s);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Parsed, String> {
        super::super::parse_page(&RunPod, "runpod", "", body)
    }

    type Row = (String, PriceClass, Option<f64>);

    fn check(fields: &str, expected: &[(&str, PriceClass, Option<f64>)]) {
        let body = format!(
            r#"{{"data":{{"gpuTypes":[{{"id":"NVIDIA L40S","displayName":"L40S","memoryInGb":48{fields}}}]}}}}"#
        );
        let p = parse(&body).unwrap();
        let got: Vec<Row> = p
            .offers
            .iter()
            .map(|o| (o.offer_id.to_string(), o.price_class, o.price))
            .collect();
        let want: Vec<Row> = expected
            .iter()
            .map(|(id, c, p)| (id.to_string(), *c, *p))
            .collect();
        assert_eq!(got, want, "fields {fields}");
        assert!(p.offers.iter().all(|o| o.gpu_count == Some(1.0)
            && o.gpu_memory_gb == Some(48.0)
            && o.region.is_none()
            && o.country.is_none()));
        assert!(p.offers.iter().all(|o| o.currency == "USD"
            && o.price_unit == PriceUnit::gpu_hour()
            && o.gpu_name_raw == "NVIDIA L40S"));
    }

    #[test]
    fn tiers_and_classes() {
        use PriceClass::{OnDemand, Spot};
        check(
            r#","secureCloud":true,"communityCloud":true,"securePrice":0.86,"communityPrice":0.79,"secureSpotPrice":0.4,"communitySpotPrice":0.35"#,
            &[
                ("NVIDIA L40S:secure", OnDemand, Some(0.86)),
                ("NVIDIA L40S:secure", Spot, Some(0.4)),
                ("NVIDIA L40S:community", OnDemand, Some(0.79)),
                ("NVIDIA L40S:community", Spot, Some(0.35)),
            ],
        );
        // A tier that is not offered is skipped, whatever its price says.
        check(
            r#","secureCloud":true,"communityCloud":false,"securePrice":0.86,"communityPrice":0,"communitySpotPrice":0.3"#,
            &[("NVIDIA L40S:secure", OnDemand, Some(0.86))],
        );
        // 0 / null on demand is missing (kept without a price); 0 / null spot is no spot offer.
        check(
            r#","securePrice":0,"communityPrice":null,"secureSpotPrice":0,"communitySpotPrice":null"#,
            &[
                ("NVIDIA L40S:secure", OnDemand, None),
                ("NVIDIA L40S:community", OnDemand, None),
            ],
        );
    }

    #[test]
    fn bad_records_and_graphql_errors() {
        let p = parse(r#"{"data":{"gpuTypes":[{"displayName":"no id"},{"id":"NVIDIA L4","securePrice":"x"},{"id":"NVIDIA L4","secureCloud":true,"communityCloud":false,"securePrice":0.43}]}}"#).unwrap();
        assert_eq!(p.offers.len(), 1);
        assert_eq!(p.rejects.len(), 2);
        assert_eq!(p.rejects[1].offer_id, "NVIDIA L4");
        assert!(p.rejects[0].detail.contains("gpuTypes[0]"));
        let e = parse(r#"{"data":null,"errors":[{"message":"Unauthorized"}]}"#).unwrap_err();
        assert!(e.contains("Unauthorized"), "{e}");
        assert!(parse(r#"{"data":{}}"#).unwrap_err().contains("gpuTypes"));
    }

    #[test]
    fn live_request_is_a_graphql_post() {
        let reqs = RunPod
            .requests(
                "https://api.runpod.io/graphql",
                Some("k3y"),
                chrono::Utc::now(),
            )
            .unwrap();
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(
            (r.method.as_str(), r.url.as_str()),
            ("POST", "https://api.runpod.io/graphql")
        );
        assert!(r
            .headers
            .contains(&("Authorization".into(), "Bearer k3y".into())));
        assert!(!r.url.contains("k3y"), "the key stays out of the URL");
        let body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert!(body["query"].as_str().unwrap().contains("gpuTypes"));
        let anon = RunPod
            .requests("https://api.runpod.io/graphql", None, chrono::Utc::now())
            .unwrap();
        assert!(anon[0].headers.iter().all(|(k, _)| k != "Authorization"));
    }
}
