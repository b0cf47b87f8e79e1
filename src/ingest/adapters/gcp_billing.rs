//! `gcp_billing`: the Google Cloud Billing Catalog API, the SKUs of one service,
//! `GET https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus`
//! (Compute Engine), `{"skus": [...], "nextPageToken": "..."}`.
//!
//! Each SKU: `name`, `skuId`, `description` (`Nvidia Tesla A100 GPU running in
//! Americas`, `Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in
//! Americas`, `Commitment v1: Nvidia H100 80GB GPU running in Americas for 1 Year`),
//! `category` (`serviceDisplayName`, `resourceFamily`, `resourceGroup`, `usageType`),
//! `serviceRegions` (`["us-central1", ...]`) and `pricingInfo` (a timeline, oldest
//! first; the last entry is current) with `pricingExpression.usageUnit` (`h`) and
//! `tieredRates[].unitPrice` `{currencyCode, units (int64 as a string), nanos}`.
//! Pages: while `nextPageToken` is non-empty, the next URL is the feed URL with
//! `pageToken=<token>` set.
//!
//! Price as published: `units + nanos / 10^9` of `currencyCode` per attached GPU per
//! hour (`gpu-hour`, GPU count 1), from the first tier (lowest `startUsageAmount`).
//! One offer per (SKU, region in `serviceRegions`), offer id `<skuId>/<region>`.
//! Class: `usageType` `OnDemand` → `on_demand` (but a description starting
//! `Reserved ` → `reserved`), `Preemptible` → `spot`, `Commit1Yr`/`Commit3Yr`... →
//! `reserved` (committed-use prices are per hour, usage unit `h`).
//!
//! Kept: SKUs with `category.resourceGroup` `GPU`; every other SKU (vCPU, RAM, disks,
//! TPUs, licences) is not a GPU offer and is dropped silently. Counted as rejects:
//! Virtual Workstation SKUs (`virtual_workstation`: a GPU bundled with an NVIDIA
//! RTX vWS licence), usage units other than hours (`unsupported_unit`), unknown usage
//! types, SKUs without a price or region, bad records.
//!
//! GPU name: the description without the class prefix (`Commitment v1: `,
//! `Spot Preemptible `, `Preemptible `, `Reserved `) and without what follows the
//! name (` attached to `, ` running in `, ` in `, ` for `): `Nvidia Tesla A100 GPU`,
//! `Nvidia H100 80GB GPU`, `H200 141GB GPU`, `A4 Nvidia B200 (1 gpu slice)`. The
//! aliases are in `tables/gpus.toml`; names that do not state the form (A100, H100
//! 80GB) resolve to the honest coarser id. Region: the `serviceRegions` entry, country
//! from `tables/regions.toml` `[gcp]`. Provider: the feed's `provider`; when that is
//! the default (the format name) it is `gcp`, the id the data tables use.
//!
//! Key: the API key from `auth_env` is sent as the `X-Goog-Api-Key` header (Google
//! APIs accept it as a header or as `?key=`; the header keeps it out of URLs, logs and
//! the stored source) and is repeated on every page request.
//!
//! Verified against public sources (Cloud Billing API reference and how-to, client
//! code and recorded responses): the URL and Compute Engine service id, the field
//! names above, `units` as a string and `nanos` as a number, `usageUnit` `h`,
//! `usageType` values `OnDemand`/`Preemptible`/`Commit1Yr`/`Commit3Yr`, the description
//! shapes quoted above (including `Virtual Workstation`, `Spot Preemptible`,
//! `Commitment v1:` and `Reserved ... in <geo>`), an empty `nextPageToken` on the last
//! page, and the `X-Goog-Api-Key` header. Assumed: that `Reserved ...` SKUs are
//! per-hour reservation prices.

use serde::{Deserialize, Deserializer};

use super::{json, keyless, str_at, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

/// The provider id of the data tables, used when the feed keeps the default provider.
pub const PROVIDER: &str = "gcp";
const FORMAT: &str = "gcp_billing";
/// The header that carries the API key.
pub const KEY_HEADER: &str = "X-Goog-Api-Key";

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, GcpBilling)
}

/// The next page is the request's URL with its `pageToken` set to the payload's.
pub struct GcpBilling;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    skus: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextToken {
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sku {
    #[serde(default)]
    sku_id: String,
    #[serde(default)]
    description: String,
    category: Category,
    #[serde(default)]
    service_regions: Vec<String>,
    #[serde(default)]
    pricing_info: Vec<PricingInfo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Category {
    #[serde(default)]
    resource_group: String,
    #[serde(default)]
    usage_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PricingInfo {
    pricing_expression: PricingExpression,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PricingExpression {
    #[serde(default)]
    usage_unit: String,
    #[serde(default)]
    tiered_rates: Vec<TieredRate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TieredRate {
    #[serde(default)]
    start_usage_amount: f64,
    unit_price: Money,
}

/// `google.type.Money`: `units` is an int64, which JSON carries as a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Money {
    currency_code: String,
    #[serde(default, deserialize_with = "int64")]
    units: i64,
    #[serde(default)]
    nanos: i64,
}

fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom(format!("units {n} is not an integer"))),
        serde_json::Value::Null => Ok(0),
        v => Err(serde::de::Error::custom(format!(
            "units must be an int64, found {v}"
        ))),
    }
}

/// The GPU name in a SKU description (see the module header).
pub fn gpu_name(description: &str) -> String {
    let mut s = description.trim();
    loop {
        let before = s;
        for prefix in [
            "Commitment v1: ",
            "Commitment v2: ",
            "Commitment: ",
            "Spot Preemptible ",
            "Preemptible ",
            "Reserved ",
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.trim_start();
            }
        }
        if s == before {
            break;
        }
    }
    for cut in [" attached to ", " running in ", " in ", " for "] {
        if let Some(i) = s.find(cut) {
            s = &s[..i];
        }
    }
    s.trim().to_string()
}

/// `units + nanos / 10^9` as the decimal the API means (2, 933908000 → 2.933908),
/// read through its decimal text so no binary rounding is added.
pub fn money(units: i64, nanos: i64) -> f64 {
    if nanos.abs() >= 1_000_000_000 {
        return units as f64 + nanos as f64 / 1e9;
    }
    let sign = if units < 0 || nanos < 0 { "-" } else { "" };
    format!("{sign}{}.{:09}", units.unsigned_abs(), nanos.unsigned_abs())
        .parse()
        .unwrap_or(units as f64 + nanos as f64 / 1e9)
}

/// What becomes of one SKU.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// Offers of this class at this price and currency, one per region.
    Keep(PriceClass, f64, String),
    /// Not a GPU SKU: not an offer.
    Drop,
    Reject(&'static str, String),
}

fn classify(sku: &Sku) -> Verdict {
    if sku.category.resource_group != "GPU" {
        return Verdict::Drop;
    }
    let d = &sku.description;
    if d.contains("Virtual Workstation") {
        return Verdict::Reject(
            "virtual_workstation",
            format!("{d:?}: GPU bundled with a workstation licence"),
        );
    }
    let class = match sku.category.usage_type.as_str() {
        "OnDemand" if d.starts_with("Reserved ") => PriceClass::Reserved,
        "OnDemand" => PriceClass::OnDemand,
        "Preemptible" => PriceClass::Spot,
        u if u.starts_with("Commit") => PriceClass::Reserved,
        u => return Verdict::Reject("unsupported_usage_type", format!("{d:?}: usageType {u:?}")),
    };
    let Some(info) = sku.pricing_info.last() else {
        return Verdict::Reject("missing_price", format!("{d:?}: no pricingInfo"));
    };
    let expr = &info.pricing_expression;
    if expr.usage_unit != "h" {
        return Verdict::Reject(
            "unsupported_unit",
            format!("{d:?}: usageUnit {:?} (expected \"h\")", expr.usage_unit),
        );
    }
    let Some(rate) = expr
        .tiered_rates
        .iter()
        .min_by(|a, b| a.start_usage_amount.total_cmp(&b.start_usage_amount))
    else {
        return Verdict::Reject("missing_price", format!("{d:?}: no tieredRates"));
    };
    if sku.service_regions.is_empty() {
        return Verdict::Reject("no_region", format!("{d:?}: no serviceRegions"));
    }
    let m = &rate.unit_price;
    let price = money(m.units, m.nanos);
    Verdict::Keep(class, price, m.currency_code.clone())
}

/// `url` with query parameter `name` set to `value` (percent-encoded), replacing any
/// earlier value.
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (url, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (url, None),
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_string)
        .collect();
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    parts.push(format!("{name}={encoded}"));
    let mut out = format!("{path}?{}", parts.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl Adapter for GcpBilling {
    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        let mut r = Request::get(url);
        if let Some(key) = secret {
            r.headers.push((KEY_HEADER.to_string(), key.to_string()));
        }
        Ok(vec![r])
    }

    fn next_page(&self, url: &str, body: &[u8]) -> Option<String> {
        let token = serde_json::from_slice::<NextToken>(body)
            .ok()?
            .next_page_token?;
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        Some(with_query_param(url, "pageToken", token))
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let resp: Response = json(&page.body)?;
        if let Some(e) = resp.error {
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            return Err(AdapterError::Api(format!("API error: {msg}")));
        }
        let skus = resp.skus.unwrap_or_default();
        let provider = if ctx.provider == FORMAT {
            PROVIDER
        } else {
            ctx.provider
        };
        let mut out = Parsed::default();
        for (i, value) in skus.into_iter().enumerate() {
            let sku: Sku = match serde_json::from_value(value.clone()) {
                Ok(s) => s,
                Err(e) => {
                    let group = value
                        .pointer("/category/resourceGroup")
                        .and_then(|v| v.as_str());
                    if group.is_some_and(|g| g != "GPU") {
                        continue;
                    }
                    let s = |k: &str| str_at(&value, k);
                    out.rejects.push(ParseReject {
                        offer_id: s("skuId"),
                        gpu_name_raw: gpu_name(&s("description")),
                        reason: "bad_record".into(),
                        detail: format!("skus[{i}]: {e}"),
                    });
                    continue;
                }
            };
            let name = gpu_name(&sku.description);
            match classify(&sku) {
                Verdict::Drop => {}
                Verdict::Reject(reason, detail) => out.rejects.push(ParseReject {
                    offer_id: sku.sku_id.clone(),
                    gpu_name_raw: name,
                    reason: reason.into(),
                    detail,
                }),
                Verdict::Keep(class, price, currency) => {
                    for region in &sku.service_regions {
                        let mut o = RawOffer::new(
                            provider,
                            format!("{}/{region}", sku.sku_id),
                            name.clone(),
                        );
                        o.region = Some(region.clone().into());
                        o.gpu_count = Some(1.0);
                        o.price_class = class;
                        o.price = Some(price);
                        o.currency = currency.clone().into();
                        o.price_unit = PriceUnit::gpu_hour();
                        out.offers.push(o);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(description: &str, expected: &str) {
        assert_eq!(gpu_name(description), expected, "gpu_name({description:?})");
    }

    #[test]
    fn gpu_names_from_descriptions() {
        check_name(
            "Nvidia Tesla A100 GPU running in Americas",
            "Nvidia Tesla A100 GPU",
        );
        check_name(
            "Nvidia H100 80GB GPU running in Americas",
            "Nvidia H100 80GB GPU",
        );
        check_name("Nvidia L4 GPU running in Netherlands", "Nvidia L4 GPU");
        check_name(
            "Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Americas",
            "Nvidia Tesla T4 GPU",
        );
        check_name(
            "Spot Preemptible Nvidia Tesla A100 GPU running in Americas",
            "Nvidia Tesla A100 GPU",
        );
        check_name(
            "Commitment v1: Nvidia H100 80GB GPU running in Americas for 1 Year",
            "Nvidia H100 80GB GPU",
        );
        check_name(
            "Commitment v1: Nvidia Tesla A100 GPU in Americas for 3 Years",
            "Nvidia Tesla A100 GPU",
        );
        check_name(
            "Reserved Nvidia H100 80GB Mega GPU in Americas",
            "Nvidia H100 80GB Mega GPU",
        );
        check_name("H200 141GB GPU running in Netherlands", "H200 141GB GPU");
        check_name(
            "Spot Preemptible A4 Nvidia B200 (1 gpu slice) running in Americas",
            "A4 Nvidia B200 (1 gpu slice)",
        );
        check_name("RTX 6000 96GB running in Americas", "RTX 6000 96GB");
    }

    fn sku(
        description: &str,
        group: &str,
        usage: &str,
        unit: &str,
        units: &str,
        nanos: i64,
    ) -> Sku {
        let v = serde_json::json!({
            "name": "services/6F81-5844-456A/skus/AAAA-BBBB-CCCC", "skuId": "AAAA-BBBB-CCCC",
            "description": description,
            "category": {"serviceDisplayName": "Compute Engine", "resourceFamily": "Compute", "resourceGroup": group, "usageType": usage},
            "serviceRegions": ["us-central1", "asia-east2"],
            "pricingInfo": [{"pricingExpression": {"usageUnit": unit, "tieredRates": [
                {"startUsageAmount": 0, "unitPrice": {"currencyCode": "USD", "units": units, "nanos": nanos}}]}}]
        });
        serde_json::from_value(v).unwrap()
    }

    fn check(s: Sku, expected: &str) {
        let got = match classify(&s) {
            Verdict::Keep(c, p, cur) => format!("{} {p} {cur}", c.as_str()),
            Verdict::Drop => "drop".into(),
            Verdict::Reject(r, _) => format!("reject {r}"),
        };
        assert_eq!(got, expected, "{s:?}");
    }

    #[test]
    fn which_skus_are_kept_and_why() {
        let a100 = "Nvidia Tesla A100 GPU running in Americas";
        check(
            sku(a100, "GPU", "OnDemand", "h", "2", 933_908_000),
            "on_demand 2.933908 USD",
        );
        check(
            sku(
                "Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Americas",
                "GPU",
                "Preemptible",
                "h",
                "0",
                140_000_000,
            ),
            "spot 0.14 USD",
        );
        check(
            sku(
                "Commitment v1: Nvidia Tesla A100 GPU running in Americas for 1 Year",
                "GPU",
                "Commit1Yr",
                "h",
                "1",
                848_000_000,
            ),
            "reserved 1.848 USD",
        );
        check(
            sku(
                "Reserved Nvidia H100 80GB Mega GPU in Americas",
                "GPU",
                "OnDemand",
                "h",
                "9",
                0,
            ),
            "reserved 9 USD",
        );
        check(
            sku(
                "Nvidia L4 Virtual Workstation GPU running in Netherlands",
                "GPU",
                "OnDemand",
                "h",
                "1",
                0,
            ),
            "reject virtual_workstation",
        );
        check(
            sku(a100, "GPU", "OnDemand", "mo", "2", 0),
            "reject unsupported_unit",
        );
        check(
            sku(a100, "GPU", "Reserved", "h", "2", 0),
            "reject unsupported_usage_type",
        );
        check(
            sku(
                "N1 Predefined Instance Core running in Americas",
                "N1Standard",
                "OnDemand",
                "h",
                "0",
                31_611_000,
            ),
            "drop",
        );
        check(
            sku(
                "TpuV5e running in Americas",
                "TPU",
                "OnDemand",
                "h",
                "1",
                200_000_000,
            ),
            "drop",
        );
        let mut no_region = sku(a100, "GPU", "OnDemand", "h", "2", 0);
        no_region.service_regions.clear();
        check(no_region, "reject no_region");
        let mut no_price = sku(a100, "GPU", "OnDemand", "h", "2", 0);
        no_price.pricing_info.clear();
        check(no_price, "reject missing_price");
    }

    #[test]
    fn one_offer_per_region_and_numeric_units() {
        let body = r#"{"skus":[
            {"name":"services/6F81-5844-456A/skus/039F-D0DA-4055","skuId":"039F-D0DA-4055","description":"Nvidia Tesla A100 GPU running in Americas",
             "category":{"serviceDisplayName":"Compute Engine","resourceFamily":"Compute","resourceGroup":"GPU","usageType":"OnDemand"},
             "serviceRegions":["us-central1","us-east1"],
             "pricingInfo":[{"pricingExpression":{"usageUnit":"h","tieredRates":[{"startUsageAmount":0,"unitPrice":{"currencyCode":"USD","units":2,"nanos":933908000}}]}}]},
            {"skuId":"BAD","description":"Nvidia L4 GPU running in Americas","category":{"resourceGroup":"GPU","usageType":"OnDemand"},
             "serviceRegions":["us-central1"],"pricingInfo":[{"pricingExpression":{"usageUnit":"h","tieredRates":[{"unitPrice":{"currencyCode":"USD","units":"two"}}]}}]}
        ],"nextPageToken":""}"#;
        let p = super::super::parse_page(&GcpBilling, "gcp_billing", "", body).unwrap();
        let rows = p.offers.rows();
        let got: Vec<(&str, &str, Option<f64>, &str, &str)> = rows
            .iter()
            .map(|o| {
                (
                    o.provider.as_str(),
                    o.offer_id.as_str(),
                    o.price,
                    o.region.as_deref().unwrap(),
                    o.gpu_name_raw.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "gcp",
                    "039F-D0DA-4055/us-central1",
                    Some(2.933908),
                    "us-central1",
                    "Nvidia Tesla A100 GPU"
                ),
                (
                    "gcp",
                    "039F-D0DA-4055/us-east1",
                    Some(2.933908),
                    "us-east1",
                    "Nvidia Tesla A100 GPU"
                ),
            ]
        );
        assert!(p
            .offers
            .iter()
            .all(|o| o.gpu_count == Some(1.0) && o.price_unit == PriceUnit::gpu_hour()));
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(
            (
                p.rejects[0].reason.as_str(),
                p.rejects[0].gpu_name_raw.as_str()
            ),
            ("bad_record", "Nvidia L4 GPU")
        );
    }

    #[test]
    fn paging_and_the_key_header() {
        let g = GcpBilling;
        let url = "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus?currencyCode=USD&pageToken=old";
        assert_eq!(
            g.next_page(url, br#"{"skus":[],"nextPageToken":"a/b+c="}"#).as_deref(),
            Some("https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus?currencyCode=USD&pageToken=a%2Fb%2Bc%3D")
        );
        assert_eq!(g.next_page(url, br#"{"skus":[],"nextPageToken":""}"#), None);
        assert_eq!(g.next_page(url, br#"{"skus":[]}"#), None);
        assert_eq!(
            with_query_param("http://127.0.0.1:9/gcp", "pageToken", "T2"),
            "http://127.0.0.1:9/gcp?pageToken=T2"
        );
        let reqs = g
            .requests(
                "https://x.example/skus",
                Some("SECRET-KEY"),
                chrono::Utc::now(),
            )
            .unwrap();
        assert_eq!(reqs.len(), 1);
        assert!(
            !reqs[0].url.contains("SECRET-KEY"),
            "the key stays out of the URL"
        );
        assert_eq!(
            reqs[0].headers,
            vec![(KEY_HEADER.to_string(), "SECRET-KEY".to_string())]
        );
        assert!(g
            .requests("https://x.example/skus", None, chrono::Utc::now())
            .unwrap()[0]
            .headers
            .is_empty());
    }

    #[test]
    fn an_api_error_is_a_malformed_payload() {
        let e = super::super::parse_page(
            &GcpBilling,
            "gcp",
            "",
            r#"{"error":{"code":400,"message":"API key not valid."}}"#,
        )
        .unwrap_err();
        assert!(e.contains("API key not valid"), "{e}");
    }
}
