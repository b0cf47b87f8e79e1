//! `tencent`: Tencent Cloud CVM `InquiryPriceRunInstances` (API 3.0, version `2017-03-12`).
//!
//! # Wire format
//!
//! One response per (region, zone, instance type) query, JSON:
//!
//! ```json
//! {"Response": {"Price": {"InstancePrice": {"UnitPrice": 16.09, "UnitPriceDiscount": 3.33,
//!                                           "ChargeUnit": "HOUR", "Discount": 21, …},
//!                         "BandwidthPrice": {"UnitPrice": 0.8, "ChargeUnit": "GB", …}},
//!               "RequestId": "…"}}
//! ```
//!
//! An error is `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` (HTTP 200).
//! The response does not repeat the request, so the request context travels in the
//! page label `<Region>__<Zone>__<InstanceType>` (e.g.
//! `ap-guangzhou__ap-guangzhou-6__GT4.41XLARGE948`): [`Adapter::requests`] sets it on
//! each live request, and a recorded replay is a DIRECTORY of pure responses named
//! `<label>.json` (the fetcher gives the file stem as the label).
//!
//! # Request
//!
//! `POST` of `{"Placement":{"Zone":…},"InstanceType":…,"InstanceChargeType":"POSTPAID_BY_HOUR","ImageId":…}`
//! with headers `Authorization` (TC3-HMAC-SHA256 via `sign.rs`, signed headers
//! `content-type;host;x-tc-action`, service `cvm`), `Content-Type: application/json; charset=utf-8`,
//! `Host`, `X-TC-Action: InquiryPriceRunInstances`, `X-TC-Timestamp`,
//! `X-TC-Version: 2017-03-12`, `X-TC-Region`.
//!
//! # Price as published
//!
//! `InstancePrice.UnitPriceDiscount` (the discounted pay-as-you-go unit price, what
//! the account pays), falling back to `UnitPrice` (list) when it is absent or null,
//! per INSTANCE and per `ChargeUnit` (`HOUR` → hour; any other unit is rejected as
//! `unsupported_charge_unit`); class `on_demand`. The response does not name the
//! currency: China-site accounts are billed in CNY (the default; the optional
//! `currency` key overrides it, e.g. USD for an international-site account). Tencent
//! prices some instance types in three tiers by hours used; the first tier
//! (`UnitPrice…`, not `…SecondStep`/`…ThirdStep`) is taken. The GPU model and count
//! come from `tables/instances.csv` (provider `tencent`), the country from
//! `tables/regions.toml` `[tencent]` (`ap-hongkong` is HK, not mainland).
//!
//! # Feed keys
//!
//! ```toml
//! format = "tencent"
//! url = "https://cvm.tencentcloudapi.com/"   # or a recorded directory
//! auth_env = "TENCENTCLOUD_CREDENTIALS"      # holds SECRET_ID:SECRET_KEY
//! image_id = "img-…"                         # a public image of the regions asked
//! queries = [{ region = "ap-guangzhou", zone = "ap-guangzhou-6", instance_type = "GT4.41XLARGE948" }]
//! currency = "CNY"                           # optional
//! endpoint = "https://cvm.{region}.tencentcloudapi.com/"   # optional
//! ```
//!
//! The request goes to `endpoint` when set (`{region}` is replaced by the query's
//! region), else to the feed's `url`; the `Host` header and signature follow it.
//!
//! # Verified vs assumed
//!
//! Verified: the response shape and field names (`Price.InstancePrice.UnitPrice`,
//! `UnitPriceDiscount`, `ChargeUnit: "HOUR"`, `BandwidthPrice`, `RequestId`) against
//! the CVM examples shipped with `TencentCloud/tencentcloud-cli`
//! (`tccli/examples/cvm/v20170312/InquiryPriceRunInstances.md`, example 3 is a
//! POSTPAID_BY_HOUR quote); the `ItemPrice` field docs (`ChargeUnit` HOUR/GB, fields
//! may be null) in the tencentcloud-sdk `ItemPrice` model; the error envelope
//! (`Response.Error.Code/Message`, `RequestId`) from Tencent Cloud's "Responses" page;
//! the TC3 signature from `sign.rs`' worked examples; the required request fields
//! `Placement.Zone` and `ImageId` from the same CLI example. Assumed: that the quote
//! is in CNY for China-site accounts, that its list prices include 6% VAT (the
//! default feed's `price_includes_vat`), and the sample prices (see
//! `feeds/samples/README.md`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::cn_cloud::{self, endpoint_for, valid_id, Cloud};
use super::sign::{tc3_authorization, Tc3Request};
use super::{adapter_keys, json, Adapter, AdapterError, Page, ParseCtx, Request};
use crate::ingest::urlpolicy;
use crate::model::{Basis, ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

pub const ACTION: &str = "InquiryPriceRunInstances";
pub const API_VERSION: &str = "2017-03-12";
pub const SERVICE: &str = "cvm";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub region: String,
    pub zone: String,
    pub instance_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    queries: Vec<Query>,
    image_id: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// The `tencent` adapter: the queries of one feed.
#[derive(Debug, Clone)]
pub struct Tencent {
    queries: Vec<Query>,
    image_id: String,
    currency: String,
    endpoint: Option<String>,
}

/// The `Host` of an endpoint URL (authority without user info).
fn host_of(url: &str) -> Result<&str, AdapterError> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| AdapterError::Endpoint(format!("endpoint {url:?} is not an http(s) URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(AdapterError::Endpoint(format!(
            "endpoint {url:?} has no plain host"
        )));
    }
    Ok(authority)
}

const CLOUD: Cloud = Cloud {
    name: "Tencent Cloud",
    key_form: "SECRET_ID:SECRET_KEY",
    label_form: "<Region>__<Zone>__<InstanceType>",
};

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    if k.queries.is_empty() {
        return Err(AdapterError::Keys(
            "key `queries` must list at least one { region, zone, instance_type }".into(),
        ));
    }
    for (i, q) in k.queries.iter().enumerate() {
        for (name, v) in [
            ("region", &q.region),
            ("zone", &q.zone),
            ("instance_type", &q.instance_type),
        ] {
            if !valid_id(v) {
                return Err(AdapterError::key(
                    format!("queries[{i}].{name}"),
                    format!("{v:?} is not a valid id (letters, digits, `-`, `_`, `.`)"),
                ));
            }
        }
    }
    if !valid_id(&k.image_id) {
        return Err(AdapterError::key(
            "image_id",
            format!("{:?} is not an image id such as img-xxxxxxxx", k.image_id),
        ));
    }
    let currency = k.currency.unwrap_or_else(|| "CNY".into());
    super::generic_csv::check_currency(&currency)?;
    if let Some(e) = &k.endpoint {
        urlpolicy::check(&endpoint_for(e, "ap-guangzhou"))
            .map(|_| ())
            .map_err(|m| AdapterError::key("endpoint", m.to_string()))?;
        host_of(e).map_err(|m| AdapterError::key("endpoint", m.to_string()))?;
    }
    Ok(Box::new(Tencent {
        queries: k.queries,
        image_id: k.image_id,
        currency,
        endpoint: k.endpoint,
    }))
}

/// The page label of one query: `<Region>__<Zone>__<InstanceType>`.
pub fn label(q: &Query) -> String {
    cn_cloud::label(&q.region, &q.zone, &q.instance_type)
}

impl Tencent {
    /// The JSON body of one query, exactly as sent and signed.
    pub fn body(&self, q: &Query) -> String {
        serde_json::json!({
            "Placement": {"Zone": q.zone},
            "InstanceType": q.instance_type,
            "InstanceChargeType": "POSTPAID_BY_HOUR",
            "ImageId": self.image_id,
        })
        .to_string()
    }

    /// The signed POST of one query to `endpoint` at time `now`.
    pub fn signed_request(
        &self,
        endpoint: &str,
        q: &Query,
        secret_id: &str,
        secret_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Request, AdapterError> {
        let url = endpoint_for(endpoint, &q.region);
        let host = host_of(&url)?;
        let payload = self.body(q);
        let timestamp = now.timestamp();
        let sig = Tc3Request {
            method: "POST",
            host,
            service: SERVICE,
            action: Some(ACTION),
            content_type: CONTENT_TYPE,
            query: "",
            payload: &payload,
            timestamp,
        };
        let authorization = tc3_authorization(&sig, secret_id, secret_key);
        let headers = [
            ("Authorization", authorization.as_str()),
            ("Content-Type", CONTENT_TYPE),
            ("Host", host),
            ("X-TC-Action", ACTION),
            ("X-TC-Timestamp", &timestamp.to_string()),
            ("X-TC-Version", API_VERSION),
            ("X-TC-Region", &q.region),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Ok(Request {
            method: "POST".into(),
            url: url.clone(),
            headers,
            body: Some(payload),
            label: label(q),
        })
    }
}

// --- the response ----------------------------------------------------------------

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    code: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Body {
    price: Price,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Price {
    instance_price: ItemPrice,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemPrice {
    #[serde(default)]
    unit_price: Option<f64>,
    #[serde(default)]
    unit_price_discount: Option<f64>,
    #[serde(default)]
    charge_unit: Option<String>,
}

impl Adapter for Tencent {
    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        let (id, key) = CLOUD.credentials(secret)?;
        let endpoint = self.endpoint.as_deref().unwrap_or(url);
        self.queries
            .iter()
            .map(|q| {
                urlpolicy::check(&endpoint_for(endpoint, &q.region))?;
                self.signed_request(endpoint, q, id, key, now)
            })
            .collect()
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let (region, zone, instance_type) = CLOUD.parse_label(&page.label)?;
        let offer_id = format!("{zone}/{instance_type}");
        let envelope: Envelope = json(&page.body).map_err(|e| match e {
            AdapterError::Json { error, .. } => AdapterError::Json {
                error,
                hint: " (expected a Tencent Cloud API 3.0 `{\"Response\": …}` body)",
            },
            e => e,
        })?;
        let resp = envelope.response;
        let request_id = resp
            .get("RequestId")
            .and_then(|r| r.as_str())
            .unwrap_or("")
            .to_string();
        let mut out = Parsed::default();
        let reject = |reason: &str, detail: String| ParseReject {
            offer_id: offer_id.clone(),
            gpu_name_raw: String::new(),
            reason: reason.into(),
            detail,
        };
        if let Some(err) = resp.get("Error") {
            let detail = match ApiError::deserialize(err) {
                Ok(e) => format!(
                    "Tencent Cloud error {} for {}: {} (RequestId {request_id})",
                    e.code,
                    page.label,
                    e.message.unwrap_or_default()
                ),
                Err(_) => format!(
                    "Tencent Cloud error for {}: {err} (RequestId {request_id})",
                    page.label
                ),
            };
            out.rejects.push(reject("api_error", detail));
            return Ok(out);
        }
        let body = match Body::deserialize(&resp) {
            Ok(b) => b,
            Err(e) => {
                out.rejects
                    .push(reject("bad_record", format!("{}: {e}", page.label)));
                return Ok(out);
            }
        };
        let item = body.price.instance_price;
        let period = match item.charge_unit.as_deref() {
            Some("HOUR") => "hour",
            other => {
                out.rejects.push(reject(
                    "unsupported_charge_unit",
                    format!(
                        "{}: InstancePrice.ChargeUnit {other:?} (only HOUR is read)",
                        page.label
                    ),
                ));
                return Ok(out);
            }
        };
        let mut o = RawOffer::new(ctx.provider, offer_id.clone(), "");
        o.region = Some(region.to_string().into());
        o.instance_type = Some(instance_type.to_string().into());
        o.price_class = PriceClass::OnDemand;
        o.price = item.unit_price_discount.or(item.unit_price);
        o.currency = self.currency.clone().into();
        o.price_unit = PriceUnit::new("unit", Basis::Instance, period);
        out.offers.push(o);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::adapters::sign::tc3_signature;

    fn q(region: &str, zone: &str, it: &str) -> Query {
        Query {
            region: region.into(),
            zone: zone.into(),
            instance_type: it.into(),
        }
    }

    fn adapter() -> Tencent {
        Tencent {
            queries: vec![
                q("ap-guangzhou", "ap-guangzhou-6", "GT4.41XLARGE948"),
                q("ap-hongkong", "ap-hongkong-2", "GN7.2XLARGE32"),
            ],
            image_id: "img-pmqg1cw7".into(),
            currency: "CNY".into(),
            endpoint: None,
        }
    }

    fn at() -> DateTime<Utc> {
        // 1551113065 = 2019-02-25T16:44:25Z, the timestamp of Tencent's worked example.
        DateTime::from_timestamp(1_551_113_065, 0).unwrap()
    }

    fn header<'a>(r: &'a Request, name: &str) -> &'a str {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn signed_request_headers_and_body() {
        let a = adapter();
        let reqs = a
            .requests(
                "https://cvm.tencentcloudapi.com/",
                Some("AKIDtest:keytest"),
                at(),
            )
            .unwrap();
        assert_eq!(reqs.len(), 2);
        let r = &reqs[0];
        assert_eq!(
            (r.method.as_str(), r.url.as_str()),
            ("POST", "https://cvm.tencentcloudapi.com/")
        );
        assert_eq!(r.label, "ap-guangzhou__ap-guangzhou-6__GT4.41XLARGE948");
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Authorization",
                "Content-Type",
                "Host",
                "X-TC-Action",
                "X-TC-Timestamp",
                "X-TC-Version",
                "X-TC-Region"
            ]
        );
        assert_eq!(header(r, "Content-Type"), "application/json; charset=utf-8");
        assert_eq!(header(r, "Host"), "cvm.tencentcloudapi.com");
        assert_eq!(header(r, "X-TC-Action"), "InquiryPriceRunInstances");
        assert_eq!(header(r, "X-TC-Timestamp"), "1551113065");
        assert_eq!(header(r, "X-TC-Version"), "2017-03-12");
        assert_eq!(header(r, "X-TC-Region"), "ap-guangzhou");
        assert_eq!(header(&reqs[1], "X-TC-Region"), "ap-hongkong");
        let body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"Placement": {"Zone": "ap-guangzhou-6"}, "InstanceType": "GT4.41XLARGE948",
                               "InstanceChargeType": "POSTPAID_BY_HOUR", "ImageId": "img-pmqg1cw7"})
        );
        // The Authorization header, recomputed from what is sent.
        let sig = tc3_signature(
            &Tc3Request {
                method: "POST",
                host: "cvm.tencentcloudapi.com",
                service: "cvm",
                action: Some("InquiryPriceRunInstances"),
                content_type: "application/json; charset=utf-8",
                query: "",
                payload: r.body.as_deref().unwrap(),
                timestamp: 1_551_113_065,
            },
            "keytest",
        );
        assert_eq!(
            header(r, "Authorization"),
            format!(
                "TC3-HMAC-SHA256 Credential=AKIDtest/2019-02-25/cvm/tc3_request, \
                 SignedHeaders=content-type;host;x-tc-action, Signature={sig}"
            )
        );
        assert!(
            r.headers.iter().all(|(_, v)| !v.contains("keytest")),
            "the key never goes on the wire"
        );
    }

    #[test]
    fn endpoint_and_host() {
        let mut a = adapter();
        let r = a
            .requests("http://127.0.0.1:4321/tc", Some("i:k"), at())
            .unwrap();
        assert_eq!(r[0].url, "http://127.0.0.1:4321/tc");
        assert_eq!(header(&r[0], "Host"), "127.0.0.1:4321");
        a.endpoint = Some("https://cvm.{region}.tencentcloudapi.com/".into());
        let r = a
            .requests("https://cvm.tencentcloudapi.com/", Some("i:k"), at())
            .unwrap();
        assert_eq!(r[1].url, "https://cvm.ap-hongkong.tencentcloudapi.com/");
        assert_eq!(header(&r[1], "Host"), "cvm.ap-hongkong.tencentcloudapi.com");
        let bad = [None, Some("nocolon"), Some("id:")];
        let form = ("SECRET_ID:SECRET_KEY", "nocolon");
        super::super::check_bad_credentials(&a, (URL, at()), &bad, form);
    }

    const URL: &str = "https://cvm.tencentcloudapi.com/";

    fn check_build(keys: &str, expected_err: Option<&str>) {
        crate::ingest::feed::check_feed_keys("tencent", URL, keys, expected_err);
    }

    #[test]
    fn feed_keys() {
        let ok = "image_id = 'img-pmqg1cw7'\nqueries = [{ region = 'ap-guangzhou', zone = 'ap-guangzhou-6', instance_type = 'GT4.41XLARGE948' }]\n";
        let endpoint = "https://cvm.{region}.tencentcloudapi.com/";
        crate::ingest::feed::check_endpoint_keys("tencent", URL, ok, endpoint);
        check_build(&format!("{ok}currency = 'USD'"), None);
        check_build(&format!("{ok}currency = 'yuan'"), Some("currency"));
        check_build("image_id = 'img-1'\nqueries = []", Some("queries"));
        check_build(
            "queries = [{ region = 'ap-guangzhou', zone = 'z', instance_type = 'x' }]",
            Some("image_id"),
        );
        check_build(
            "image_id = 'img-1'\nqueries = [{ region = 'ap-guangzhou', zone = 'z', instance_type = 'x', extra = 1 }]",
            Some("extra"),
        );
        check_build("image_id = 'img-1'\nqueries = [{ region = 'ap guangzhou', zone = 'z', instance_type = 'x' }]", Some("queries[0].region"));
    }

    fn parse(label: &str, body: &str) -> Result<Parsed, String> {
        super::super::parse_page(&adapter(), "tencent", label, body)
    }

    /// body → the one offer's price, or the reject reason and a word its detail must contain.
    fn check(body: &str, expected: Result<f64, (&str, &str)>) {
        let label = "ap-guangzhou__ap-guangzhou-6__GT4.41XLARGE948";
        let p = parse(label, body).unwrap();
        match expected {
            Ok(price) => {
                assert_eq!(p.offers.len(), 1, "{body}: {:?}", p.rejects);
                let o = &p.offers.row(0);
                assert_eq!(o.price, Some(price), "{body}");
                assert_eq!(o.price_unit.label(), "instance-hour");
                assert_eq!(o.price_class, PriceClass::OnDemand);
                assert_eq!(o.currency, "CNY");
                assert_eq!(o.region.as_deref(), Some("ap-guangzhou"));
                assert_eq!(o.instance_type.as_deref(), Some("GT4.41XLARGE948"));
                assert_eq!(o.offer_id, "ap-guangzhou-6/GT4.41XLARGE948");
                assert_eq!(o.gpu_count, None);
            }
            Err((reason, word)) => {
                assert!(p.offers.is_empty(), "{body}");
                assert_eq!(p.rejects.len(), 1, "{body}");
                assert_eq!(p.rejects[0].reason, reason, "{body}");
                assert!(
                    p.rejects[0].detail.contains(word),
                    "{}",
                    p.rejects[0].detail
                );
                assert_eq!(p.rejects[0].offer_id, "ap-guangzhou-6/GT4.41XLARGE948");
            }
        }
    }

    #[test]
    fn parse_rules() {
        // tccli example 3 (POSTPAID_BY_HOUR), verbatim shape.
        check(
            r#"{"Response":{"Price":{"InstancePrice":{"OriginalInstanceTypePrice":15.95,"UnitPrice":16.09,"UnitPriceThirdStep":16.09,"Discount":21,"UnitPriceDiscountThirdStep":3.33,"UnitPriceSecondStep":16.09,"UnitPriceDiscount":3.33,"UnitPriceDiscountSecondStep":3.33,"ChargeUnit":"HOUR"},"BandwidthPrice":{"ChargeUnit":"GB","UnitPrice":0.8,"Discount":65,"UnitPriceDiscount":0.52}},"RequestId":"3c140219-cfe9-470e-b241-907877d6fb03"}}"#,
            Ok(3.33),
        );
        // Null discount price: fall back to the list unit price; null fields are fine.
        check(
            r#"{"Response":{"Price":{"InstancePrice":{"UnitPrice":237.51,"UnitPriceDiscount":null,"ChargeUnit":"HOUR","OriginalPrice":null,"DiscountPrice":null}},"RequestId":"r"}}"#,
            Ok(237.51),
        );
        check(
            r#"{"Response":{"Price":{"InstancePrice":{"UnitPrice":2.5,"ChargeUnit":"HOUR"}},"RequestId":"r"}}"#,
            Ok(2.5),
        );
        // Errors: a reject naming the code.
        check(
            r#"{"Response":{"Error":{"Code":"ResourcesSoldOut.SpecifiedInstanceType","Message":"sold out"},"RequestId":"e1"}}"#,
            Err(("api_error", "ResourcesSoldOut.SpecifiedInstanceType")),
        );
        check(
            r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"e2"}}"#,
            Err(("api_error", "AuthFailure.SignatureFailure")),
        );
        // A prepaid-style quote (no ChargeUnit) or another unit is not read as hourly.
        check(
            r#"{"Response":{"Price":{"InstancePrice":{"DiscountPrice":1804.9,"OriginalPrice":8884.5}},"RequestId":"r"}}"#,
            Err(("unsupported_charge_unit", "None")),
        );
        check(
            r#"{"Response":{"Price":{"InstancePrice":{"UnitPrice":1,"ChargeUnit":"GB"}},"RequestId":"r"}}"#,
            Err(("unsupported_charge_unit", "GB")),
        );
        check(
            r#"{"Response":{"RequestId":"r"}}"#,
            Err(("bad_record", "Price")),
        );
        check(
            r#"{"Response":{"Price":{"InstancePrice":{"UnitPrice":"x","ChargeUnit":"HOUR"}}}}"#,
            Err(("bad_record", "")),
        );
    }

    #[test]
    fn malformed_payloads_and_labels_are_errors() {
        let body =
            r#"{"Response":{"Price":{"InstancePrice":{"UnitPrice":1,"ChargeUnit":"HOUR"}}}}"#;
        for bad in [
            "",
            "ap-guangzhou",
            "ap-guangzhou__GT4.41XLARGE948",
            "a__b__c__d",
            "a____c",
        ] {
            assert!(
                parse(bad, body)
                    .unwrap_err()
                    .contains("<Region>__<Zone>__<InstanceType>"),
                "{bad}"
            );
        }
        let e = parse("a__b__c", "{\"Price\":{}}").unwrap_err();
        assert!(e.contains("Response"), "{e}");
        assert!(parse("a__b__c", "not json")
            .unwrap_err()
            .contains("invalid JSON"));
    }
}
