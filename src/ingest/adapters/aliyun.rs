//! `aliyun`: Alibaba Cloud ECS `DescribePrice` (RPC API, version `2014-05-26`).
//!
//! # Wire format
//!
//! One response per (region, instance type) query, JSON (`Format=JSON`):
//!
//! ```json
//! {"RequestId": "…",
//!  "PriceInfo": {"Price": {"Currency": "CNY", "OriginalPrice": 277.93, "DiscountPrice": 0,
//!                          "TradePrice": 277.93,
//!                          "DetailInfos": {"DetailInfo": [{"Resource": "…", "TradePrice": …}]}},
//!                "Rules": {"Rule": [{"RuleId": …, "Description": "…"}]}}}
//! ```
//!
//! An error is `{"RequestId", "HostId", "Code", "Message"}` (HTTP 4xx/5xx live).
//! The response does not repeat the request, so the request context travels in the
//! page label `<RegionId>__<InstanceType>__<PriceUnit>` (e.g.
//! `cn-shanghai__ecs.gn7e-c16g1.32xlarge__Hour`): [`Adapter::requests`] sets it on each
//! live request, and a recorded replay is a DIRECTORY of pure `DescribePrice`
//! responses named `<label>.json` (the fetcher gives the file stem as the label).
//!
//! # Price as published
//!
//! `Price.TradePrice` ("final price: original price minus discount", i.e. what a
//! renter pays) in `Price.Currency` (CNY on the China site aliyun.com, USD on the
//! international site), per INSTANCE and per `PriceUnit` period: `Hour` → hour
//! (pay-as-you-go, class `on_demand`), `Week`/`Month`/`Year` → week/month/year
//! (subscription, a term commitment: class `reserved`). `OriginalPrice` (the list
//! price before promotions) is not stored: it is not a price anyone pays.
//! `TradePrice` is the quote for the whole queried configuration, which with
//! `ResourceType=instance` and no disk parameters is the instance type plus the
//! default system disk (`DetailInfos` breaks it down; the disk is a negligible share
//! of a GPU instance's price and is kept in, as a renter cannot run without it).
//! The GPU model and count come from `tables/instances.csv` (provider `aliyun`), the
//! country from `tables/regions.toml` `[aliyun]` (`cn-hongkong` is HK, not mainland).
//! China-site list prices include 6% VAT: the default feed sets
//! `price_includes_vat = 0.06` (an assumption applied to every region of the feed).
//!
//! # Feed keys
//!
//! ```toml
//! format = "aliyun"
//! url = "https://ecs.aliyuncs.com/"          # or a recorded directory
//! auth_env = "ALIYUN_CREDENTIALS"            # holds ACCESS_KEY_ID:ACCESS_KEY_SECRET
//! regions = ["cn-shanghai", "cn-beijing"]
//! instance_types = ["ecs.gn7e-c16g1.32xlarge", "ecs.gn7i-c8g1.2xlarge"]
//! price_unit = "Hour"                        # optional: Hour (default), Week, Month, Year
//! endpoint = "https://ecs.{region}.aliyuncs.com/"   # optional
//! ```
//!
//! Every region is asked for every instance type: one signed GET each. The request
//! goes to `endpoint` when set, else to the feed's `url` (the default feed file uses
//! the central endpoint `https://ecs.aliyuncs.com/`, which serves every `RegionId`, as
//! in the API reference's own DescribePrice example). `{region}` in `endpoint` is
//! replaced by the region, for the regional endpoints `https://ecs.<RegionId>.aliyuncs.com/`.
//!
//! # Verified vs assumed
//!
//! Verified against the ECS API reference page `DescribePrice` (source markdown in a
//! GitHub copy of `AlibabaCloudDocs/ecs`, `cn.zh-CN/API参考/其他接口/DescribePrice.md`)
//! and the generated SDK model `aliyun/alibabacloud-csharp-sdk`
//! `ecs-20140526/core/Models/DescribePriceResponseBody.cs`: the request parameters
//! (`RegionId`, `ResourceType=instance`, `InstanceType`, `PriceUnit` ∈ Hour/Week/Month/Year,
//! default pay-as-you-go), the response fields and their nesting (`PriceInfo.Price`,
//! `Rules.Rule[]`, `DetailInfos.DetailInfo[]`), the meaning of `TradePrice`, CNY on
//! the China site; the error body (`Code`, `Message`, `RequestId`, `HostId`) from the
//! Alibaba Cloud "Responses" page; the RPC signature from `sign.rs`' worked example.
//! Assumed: that `Week`/`Month`/`Year` quotes are per one such period (the default
//! `Period=1`), that list prices include 6% VAT, and the sample prices (see
//! `feeds/samples/README.md`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::cn_cloud::{self, endpoint_for, valid_id, Cloud};
use super::sign::{aliyun_percent_encode, aliyun_rpc_signature};
use super::{adapter_keys, json, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::ingest::urlpolicy;
use crate::model::{Basis, ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

/// The ECS API version `DescribePrice` belongs to.
pub const API_VERSION: &str = "2014-05-26";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    regions: Vec<String>,
    instance_types: Vec<String>,
    #[serde(default)]
    price_unit: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// The `aliyun` adapter: the queries of one feed.
#[derive(Debug, Clone)]
pub struct Aliyun {
    regions: Vec<String>,
    instance_types: Vec<String>,
    price_unit: String,
    endpoint: Option<String>,
}

/// The period a `PriceUnit` value stands for, and the price class of such a quote.
pub fn period_of(price_unit: &str) -> Option<(&'static str, PriceClass)> {
    match price_unit {
        "Hour" => Some(("hour", PriceClass::OnDemand)),
        "Week" => Some(("week", PriceClass::Reserved)),
        "Month" => Some(("month", PriceClass::Reserved)),
        "Year" => Some(("year", PriceClass::Reserved)),
        _ => None,
    }
}

/// `{region}` in an endpoint template replaced by the region.
fn check_endpoint(template: &str) -> Result<(), AdapterError> {
    if template.contains('?') || template.contains('#') {
        return Err(AdapterError::key(
            "endpoint",
            format!("{template:?} must not carry a query or fragment"),
        ));
    }
    urlpolicy::check(&endpoint_for(template, "cn-hangzhou"))
        .map(|_| ())
        .map_err(|m| AdapterError::key("endpoint", m.to_string()))
}

const CLOUD: Cloud = Cloud {
    name: "Alibaba Cloud",
    key_form: "ACCESS_KEY_ID:ACCESS_KEY_SECRET",
    label_form: "<RegionId>__<InstanceType>__<PriceUnit> (PriceUnit Hour, Week, Month or Year)",
};

fn check_names(what: &str, names: &[String]) -> Result<(), AdapterError> {
    if names.is_empty() {
        return Err(AdapterError::Keys(format!(
            "key `{what}` must list at least one value"
        )));
    }
    for n in names {
        // Names end up in the query, the page label and file names.
        if !valid_id(n) {
            return Err(AdapterError::key(
                what,
                format!("{n:?} is not a valid id (letters, digits, `-`, `_`, `.`)"),
            ));
        }
    }
    Ok(())
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    check_names("regions", &k.regions)?;
    check_names("instance_types", &k.instance_types)?;
    let price_unit = k.price_unit.unwrap_or_else(|| "Hour".into());
    if period_of(&price_unit).is_none() {
        return Err(AdapterError::key(
            "price_unit",
            format!("{price_unit:?} must be Hour, Week, Month or Year"),
        ));
    }
    if let Some(e) = &k.endpoint {
        check_endpoint(e)?;
    }
    Ok(Box::new(Aliyun {
        regions: k.regions,
        instance_types: k.instance_types,
        price_unit,
        endpoint: k.endpoint,
    }))
}

/// The page label of one query: `<RegionId>__<InstanceType>__<PriceUnit>`.
pub fn label(region: &str, instance_type: &str, price_unit: &str) -> String {
    cn_cloud::label(region, instance_type, price_unit)
}

/// A random `SignatureNonce` in the UUID v4 shape.
fn random_nonce() -> String {
    let b = fastrand::u128(..).to_be_bytes();
    let h = hex::encode(b);
    // Set the version (4) and variant (10xx) nibbles, as a v4 UUID.
    let variant = ["8", "9", "a", "b"][usize::from(b[8] >> 6)];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    )
}

impl Aliyun {
    /// The signed GET of one query. `nonce` and `now` are inputs so that tests are
    /// deterministic; [`Adapter::requests`] passes a random nonce and the run's time.
    #[allow(clippy::too_many_arguments)]
    pub fn signed_request(
        &self,
        endpoint: &str,
        region: &str,
        instance_type: &str,
        access_key_id: &str,
        access_key_secret: &str,
        now: DateTime<Utc>,
        nonce: &str,
    ) -> Request {
        let mut params: BTreeMap<String, String> = [
            ("Action", "DescribePrice"),
            ("Version", API_VERSION),
            ("RegionId", region),
            ("ResourceType", "instance"),
            ("InstanceType", instance_type),
            ("PriceUnit", self.price_unit.as_str()),
            ("Format", "JSON"),
            ("AccessKeyId", access_key_id),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.insert(
            "Timestamp".into(),
            now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        let signature = aliyun_rpc_signature("GET", &params, access_key_secret);
        let mut query = super::sign::aliyun_canonicalized_query(&params);
        query.push_str("&Signature=");
        query.push_str(&aliyun_percent_encode(&signature));
        let mut req = Request::get(&format!("{}?{query}", endpoint_for(endpoint, region)));
        req.label = label(region, instance_type, &self.price_unit);
        req
    }
}

// --- the response ----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    price_info: PriceInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PriceInfo {
    price: Price,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Price {
    currency: String,
    #[serde(default)]
    trade_price: Option<f64>,
}

/// The request context a page label carries: region, instance type, price unit.
fn parse_label(label: &str) -> Result<(&str, &str, &str), AdapterError> {
    let (r, t, u) = CLOUD.parse_label(label)?;
    if period_of(u).is_none() {
        return Err(CLOUD.bad_label(label));
    }
    Ok((r, t, u))
}

impl Adapter for Aliyun {
    /// Alibaba answers e.g. an instance type a region does not sell with HTTP 400/404
    /// and an error body; that is one rejected query, not a failed feed.
    fn error_bodies_are_records(&self) -> bool {
        true
    }

    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        let (id, key) = CLOUD.credentials(secret)?;
        let endpoint = self.endpoint.as_deref().unwrap_or(url);
        if endpoint.contains('?') {
            return Err(AdapterError::Endpoint(format!(
                "endpoint {endpoint:?} must not carry a query"
            )));
        }
        let mut out = Vec::with_capacity(self.regions.len() * self.instance_types.len());
        for region in &self.regions {
            urlpolicy::check(&endpoint_for(endpoint, region))?;
            for it in &self.instance_types {
                out.push(self.signed_request(endpoint, region, it, id, key, now, &random_nonce()));
            }
        }
        Ok(out)
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let (region, instance_type, unit) = parse_label(&page.label)?;
        let (period, class) = period_of(unit).expect("checked by parse_label");
        let offer_id = format!("{region}/{instance_type}");
        let value: serde_json::Value = json(&page.body)?;
        let mut out = Parsed::default();
        let reject = |reason: &str, detail: String| ParseReject {
            offer_id: offer_id.clone(),
            gpu_name_raw: String::new(),
            reason: reason.into(),
            detail,
        };
        if value.get("PriceInfo").is_none() {
            if let Some(code) = value.get("Code").and_then(|c| c.as_str()) {
                let message = value.get("Message").and_then(|m| m.as_str()).unwrap_or("");
                let request_id = value
                    .get("RequestId")
                    .and_then(|m| m.as_str())
                    .unwrap_or("");
                out.rejects.push(reject(
                    "api_error",
                    format!(
                        "Alibaba Cloud error {code} for {}: {message} (RequestId {request_id})",
                        page.label
                    ),
                ));
                return Ok(out);
            }
        }
        let resp: Response = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                out.rejects
                    .push(reject("bad_record", format!("{}: {e}", page.label)));
                return Ok(out);
            }
        };
        let price = resp.price_info.price;
        if !(price.currency.len() == 3 && price.currency.chars().all(|c| c.is_ascii_uppercase())) {
            out.rejects.push(reject(
                "bad_record",
                format!(
                    "{}: Currency {:?} is not an ISO 4217 code",
                    page.label, price.currency
                ),
            ));
            return Ok(out);
        }
        let mut o = RawOffer::new(ctx.provider, offer_id.clone(), "");
        o.region = Some(region.to_string().into());
        o.instance_type = Some(instance_type.to_string().into());
        o.price_class = class;
        o.price = price.trade_price;
        o.currency = price.currency.into();
        o.price_unit = PriceUnit::new("unit", Basis::Instance, period);
        out.offers.push(o);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(unit: &str) -> Aliyun {
        Aliyun {
            regions: vec!["cn-shanghai".into()],
            instance_types: vec!["ecs.gn7e-c16g1.32xlarge".into()],
            price_unit: unit.into(),
            endpoint: None,
        }
    }

    fn at() -> DateTime<Utc> {
        "2024-10-07T12:15:30Z".parse().unwrap()
    }

    /// Split a query string into decoded pairs (test-side, independent of sign.rs).
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn query_of(url: &str) -> BTreeMap<String, String> {
        url.split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (decode(k), decode(v))
            })
            .collect()
    }

    #[test]
    fn signed_request_carries_every_rpc_parameter() {
        let a = adapter("Hour");
        let req = a.signed_request(
            "https://ecs.aliyuncs.com/",
            "cn-shanghai",
            "ecs.gn7e-c16g1.32xlarge",
            "testid",
            "testsecret",
            at(),
            "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        );
        assert_eq!(req.method, "GET");
        assert!(
            req.url.starts_with("https://ecs.aliyuncs.com/?"),
            "{}",
            req.url
        );
        assert_eq!(req.label, "cn-shanghai__ecs.gn7e-c16g1.32xlarge__Hour");
        assert!(req.body.is_none() && req.headers.is_empty());
        let mut q = query_of(&req.url);
        let expected = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribePrice"),
            ("Format", "JSON"),
            ("InstanceType", "ecs.gn7e-c16g1.32xlarge"),
            ("PriceUnit", "Hour"),
            ("RegionId", "cn-shanghai"),
            ("ResourceType", "instance"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-10-07T12:15:30Z"),
            ("Version", "2014-05-26"),
        ];
        let sig = q.remove("Signature").expect("Signature parameter");
        let got: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, expected);
        // The signature is the RPC signature of exactly the other parameters.
        assert_eq!(sig, aliyun_rpc_signature("GET", &q, "testsecret"));
        // ... and the Timestamp is percent-encoded on the wire.
        assert!(req.url.contains("Timestamp=2024-10-07T12%3A15%3A30Z"));
    }

    #[test]
    fn requests_cover_every_region_and_type_with_fresh_nonces() {
        let a = Aliyun {
            regions: vec!["cn-shanghai".into(), "cn-hongkong".into()],
            instance_types: vec![
                "ecs.gn7i-c8g1.2xlarge".into(),
                "ecs.gn6i-c4g1.xlarge".into(),
            ],
            price_unit: "Month".into(),
            endpoint: Some("https://ecs.{region}.aliyuncs.com/".into()),
        };
        let reqs = a
            .requests("https://ecs.aliyuncs.com/", Some("id:secret"), at())
            .unwrap();
        let labels: Vec<&str> = reqs.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "cn-shanghai__ecs.gn7i-c8g1.2xlarge__Month",
                "cn-shanghai__ecs.gn6i-c4g1.xlarge__Month",
                "cn-hongkong__ecs.gn7i-c8g1.2xlarge__Month",
                "cn-hongkong__ecs.gn6i-c4g1.xlarge__Month",
            ]
        );
        assert!(reqs[2]
            .url
            .starts_with("https://ecs.cn-hongkong.aliyuncs.com/?"));
        let nonces: std::collections::HashSet<String> = reqs
            .iter()
            .map(|r| query_of(&r.url)["SignatureNonce"].clone())
            .collect();
        assert_eq!(nonces.len(), 4, "one fresh nonce per request");
        for r in &reqs {
            assert!(
                !r.url.contains("secret"),
                "the secret never goes on the wire"
            );
        }
        // Without endpoint the feed URL is used.
        let b = adapter("Hour");
        let reqs = b
            .requests("http://127.0.0.1:9/", Some("id:secret"), at())
            .unwrap();
        assert!(reqs[0].url.starts_with("http://127.0.0.1:9/?"));
    }

    #[test]
    fn credentials_must_be_id_colon_secret_and_are_not_echoed() {
        let bad = [None, Some("justonevalue"), Some(":x"), Some("x:")];
        let form = ("ACCESS_KEY_ID:ACCESS_KEY_SECRET", "justonevalue");
        super::super::check_bad_credentials(&adapter("Hour"), (URL, at()), &bad, form);
    }

    const URL: &str = "https://ecs.aliyuncs.com/";

    fn check_build(keys: &str, expected_err: Option<&str>) {
        crate::ingest::feed::check_feed_keys("aliyun", URL, keys, expected_err);
    }

    #[test]
    fn feed_keys() {
        let ok = "regions = ['cn-shanghai']\ninstance_types = ['ecs.gn7i-c8g1.2xlarge']\n";
        let endpoint = "https://ecs.{region}.aliyuncs.com/";
        crate::ingest::feed::check_endpoint_keys("aliyun", URL, ok, endpoint);
        check_build(&format!("{ok}price_unit = 'Year'"), None);
        check_build(&format!("{ok}price_unit = 'Day'"), Some("price_unit"));
        check_build("regions = []\ninstance_types = ['x']", Some("regions"));
        check_build("regions = ['cn-shanghai']", Some("instance_types"));
        check_build("regions = ['a b']\ninstance_types = ['x']", Some("regions"));
    }

    fn parse(label: &str, body: &str) -> Result<Parsed, String> {
        super::super::parse_page(&adapter("Hour"), "aliyun", label, body)
    }

    /// (label, body) → the one offer's (class, price, currency, unit) or the reject reason.
    fn check(label: &str, body: &str, expected: Result<(PriceClass, f64, &str, &str), &str>) {
        let p = parse(label, body).unwrap();
        match expected {
            Ok((class, price, currency, unit)) => {
                assert_eq!(p.offers.len(), 1, "{label}: {:?}", p.rejects);
                let o = &p.offers.row(0);
                assert_eq!(
                    (
                        o.price_class,
                        o.price,
                        o.currency.as_str(),
                        o.price_unit.label().as_str()
                    ),
                    (class, Some(price), currency, unit),
                    "{label}"
                );
                let (region, it) = (
                    label.split("__").next().unwrap(),
                    label.split("__").nth(1).unwrap(),
                );
                assert_eq!(o.region.as_deref(), Some(region));
                assert_eq!(o.instance_type.as_deref(), Some(it));
                assert_eq!(o.offer_id, format!("{region}/{it}"));
                assert_eq!(o.provider, "aliyun");
                assert_eq!(
                    o.gpu_count, None,
                    "the count comes from the instance catalogue"
                );
            }
            Err(reason) => {
                assert!(p.offers.is_empty(), "{label}");
                assert_eq!(p.rejects.len(), 1, "{label}");
                assert_eq!(
                    p.rejects[0].reason, reason,
                    "{label}: {}",
                    p.rejects[0].detail
                );
            }
        }
    }

    #[test]
    fn parse_rules() {
        let doc = r#"{"RequestId":"04F0F334-1335-436C-A1D7-6C044FE73368","PriceInfo":{"Price":{"Currency":"CNY","DiscountPrice":655.2,"OriginalPrice":4368,"TradePrice":3712.8},"Rules":{"Rule":[{"Description":"x","RuleId":587}]}}}"#;
        // The API reference's own example body: TradePrice, not OriginalPrice.
        check(
            "cn-hangzhou__ecs.g6.large__Year",
            doc,
            Ok((PriceClass::Reserved, 3712.8, "CNY", "instance-year")),
        );
        check(
            "cn-hangzhou__ecs.g6.large__Hour",
            doc,
            Ok((PriceClass::OnDemand, 3712.8, "CNY", "instance-hour")),
        );
        check(
            "cn-hangzhou__ecs.g6.large__Week",
            doc,
            Ok((PriceClass::Reserved, 3712.8, "CNY", "instance-week")),
        );
        check(
            "cn-hangzhou__ecs.g6.large__Month",
            doc,
            Ok((PriceClass::Reserved, 3712.8, "CNY", "instance-month")),
        );
        // International site: USD.
        check(
            "ap-southeast-1__ecs.gn7i-c8g1.2xlarge__Hour",
            r#"{"RequestId":"r","PriceInfo":{"Price":{"Currency":"USD","OriginalPrice":1.9,"DiscountPrice":0,"TradePrice":1.9}}}"#,
            Ok((PriceClass::OnDemand, 1.9, "USD", "instance-hour")),
        );
        // Errors are rejects of that query naming the code.
        let err = r#"{"RequestId":"540CFF28","HostId":"ecs.aliyuncs.com","Code":"InvalidInstanceType.ValueNotSupported","Message":"The specified InstanceType does not exist or beyond the permitted range."}"#;
        check("cn-beijing__ecs.nope__Hour", err, Err("api_error"));
        let p = parse("cn-beijing__ecs.nope__Hour", err).unwrap();
        assert!(p.rejects[0]
            .detail
            .contains("InvalidInstanceType.ValueNotSupported"));
        assert_eq!(p.rejects[0].offer_id, "cn-beijing/ecs.nope");
        // A response without the price is a bad record, not a crash.
        check(
            "cn-beijing__ecs.x__Hour",
            r#"{"RequestId":"r","PriceInfo":{}}"#,
            Err("bad_record"),
        );
        check(
            "cn-beijing__ecs.x__Hour",
            r#"{"RequestId":"r","PriceInfo":{"Price":{"Currency":"yuan","TradePrice":1}}}"#,
            Err("bad_record"),
        );
        // No TradePrice: an offer without a price (normalise counts it as missing_price).
        let p = parse(
            "cn-beijing__ecs.x__Hour",
            r#"{"RequestId":"r","PriceInfo":{"Price":{"Currency":"CNY","OriginalPrice":3}}}"#,
        )
        .unwrap();
        assert_eq!(p.offers.row(0).price, None);
    }

    #[test]
    fn malformed_payloads_and_labels_are_errors() {
        let body = r#"{"PriceInfo":{"Price":{"Currency":"CNY","TradePrice":1}}}"#;
        for bad in [
            "",
            "cn-shanghai",
            "cn-shanghai__ecs.x",
            "cn-shanghai__ecs.x__Day",
            "a__b__Hour__c",
        ] {
            let e = parse(bad, body).unwrap_err();
            assert!(e.contains("<RegionId>__<InstanceType>__<PriceUnit>"), "{e}");
        }
        assert!(parse("cn-shanghai__ecs.x__Hour", "{not json")
            .unwrap_err()
            .contains("invalid JSON"));
    }

    #[test]
    fn nonce_shape() {
        let n = random_nonce();
        assert_eq!(n.len(), 36, "{n}");
        assert_eq!(n.as_bytes()[14], b'4', "{n}");
        assert!("89ab".contains(char::from(n.as_bytes()[19])), "{n}");
        assert_ne!(n, random_nonce());
    }
}
