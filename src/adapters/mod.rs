//! Feed adapters: the only code that knows providers' wire formats.
//!
//! An adapter is a config struct plus a builder, registered by name in [`REGISTRY`].
//! Adding a provider is adding a file here and one line to the registry.
//! Invariant: adapters turn bytes into [`Parsed`] offers exactly as published; they
//! never convert units or currencies and never touch the store.

use chrono::{DateTime, Utc};

use crate::feed::FeedConfig;
use crate::model::Parsed;

pub mod aliyun;
pub mod autodl;
pub mod aws_offer;
pub mod azure_retail;
pub mod ecb_fx;
pub mod gcp_billing;
pub mod generic_csv;
pub mod generic_json;
pub mod gpuhunt_catalog;
pub mod lambda;
pub mod ppio;
pub mod runpod;
pub mod shadeform;
pub mod sign;
pub mod skypilot_csv;
pub mod tencent;
pub mod vastai;

/// One HTTP request an adapter wants made for a live fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Context handed back to `parse` with the response (e.g. the region asked for).
    pub label: String,
}

impl Request {
    pub fn get(url: &str) -> Self {
        Self {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            label: String::new(),
        }
    }
}

/// One fetched payload and the label of the request that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub label: String,
    pub body: Vec<u8>,
}

/// What an adapter is told when it parses.
#[derive(Debug, Clone)]
pub struct ParseCtx<'a> {
    pub feed: &'a str,
    pub provider: &'a str,
    pub observed_at: DateTime<Utc>,
}

pub trait Adapter: Send + Sync {
    /// The requests of a live fetch. Default: GET the feed URL.
    fn requests(
        &self,
        url: &str,
        _secret: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Request>, String> {
        Ok(vec![Request::get(url)])
    }
    /// True when the API answers a per-request problem (an instance type a region does
    /// not sell, say) with a 4xx status and an error body that `parse` turns into a
    /// counted reject; other adapters fail the feed on any 4xx.
    fn error_bodies_are_records(&self) -> bool {
        false
    }
    /// The URL of the next page, when the payload names one.
    fn next_page(&self, _body: &[u8]) -> Option<String> {
        None
    }
    /// True when the feed republishes a peer's data (another tracker or catalogue):
    /// its rows are stored with `peer = true` unless the feed file says otherwise.
    fn peer_by_default(&self) -> bool {
        false
    }
    /// Turn one payload into offers (or FX rates). An `Err` means the whole payload
    /// is malformed; a bad record is a [`crate::model::ParseReject`] instead.
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, String>;
}

/// Builds an adapter from the feed's common keys and its remaining, adapter-specific keys.
pub type Builder = fn(&FeedConfig, toml::Table) -> Result<Box<dyn Adapter>, String>;

/// Every adapter, by the `format` name feed files use.
pub const REGISTRY: &[(&str, Builder)] = &[
    ("vastai", vastai::build),
    ("generic_csv", generic_csv::build),
    ("ecb_fx", ecb_fx::build),
    ("azure_retail", azure_retail::build),
    ("aws_offer", aws_offer::build),
    ("gcp_billing", gcp_billing::build),
    ("aliyun", aliyun::build),
    ("tencent", tencent::build),
    ("skypilot_csv", skypilot_csv::build),
    ("runpod", runpod::build),
    ("lambda", lambda::build),
    ("shadeform", shadeform::build),
    ("autodl", autodl::build),
    ("ppio", ppio::build),
    ("generic_json", generic_json::build),
    ("gpuhunt_catalog", gpuhunt_catalog::build),
];

pub fn builder(format: &str) -> Option<Builder> {
    REGISTRY.iter().find(|(n, _)| *n == format).map(|(_, b)| *b)
}

pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(n, _)| *n).collect()
}

/// Deserialize an adapter's own keys, rejecting unknown ones with the key's name.
pub fn adapter_keys<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table)).map_err(|e| e.to_string().trim().to_string())
}

/// For adapters that take no keys of their own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoKeys {}

/// A string field of a JSON record, by key or JSON pointer (`/a/b`); "" when absent.
pub fn str_at(value: &serde_json::Value, key: &str) -> String {
    let v = if key.starts_with('/') {
        value.pointer(key)
    } else {
        value.get(key)
    };
    v.and_then(|v| v.as_str()).unwrap_or("").to_string()
}

/// A `bad_record` reject: one record did not have the shape the adapter expects.
pub fn bad_record(
    offer_id: String,
    gpu_name_raw: String,
    detail: String,
) -> crate::model::ParseReject {
    crate::model::ParseReject {
        offer_id,
        gpu_name_raw,
        reason: "bad_record".into(),
        detail,
    }
}

/// GET `url`, with `Authorization: Bearer <secret>` when a secret is set.
pub fn get_bearer(url: &str, secret: Option<&str>) -> Request {
    let mut r = Request::get(url);
    if let Some(key) = secret {
        r.headers
            .push(("Authorization".into(), format!("Bearer {key}")));
    }
    r
}

/// Parse JSON with a message that says where it broke.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}
