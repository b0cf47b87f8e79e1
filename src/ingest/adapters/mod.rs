//! Feed adapters: the only code that knows providers' wire formats.
//!
//! An adapter is a config struct plus a builder, registered by name in [`REGISTRY`].
//! Adding a provider is adding a file here and one line to the registry.
//! Invariant: adapters turn bytes into [`Parsed`] offers exactly as published; they
//! never convert units or currencies and never touch the store.

use chrono::{DateTime, Utc};

pub use crate::error::AdapterError;
use crate::model::Parsed;

pub mod aliyun;
pub mod autodl;
pub mod aws_offer;
pub mod azure_retail;
pub mod cn_cloud;
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
mod vastai_scan;
mod vastai_stream;

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

/// The payload type adapters parse; it lives in `model` so that the store, which
/// archives payloads, does not depend on the adapters.
pub use crate::model::Page;

/// What an adapter is told when it parses: not the observation time, so a payload
/// parses to the same offers whenever it is read (`renormalise` parses a payload
/// kept for several hours once); an offer's own time goes in its `observed_at`.
#[derive(Debug, Clone)]
pub struct ParseCtx<'a> {
    pub feed: &'a str,
    pub provider: &'a str,
}

pub trait Adapter: Send + Sync {
    /// The requests of a live fetch. Default: GET the feed URL.
    fn requests(
        &self,
        url: &str,
        _secret: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        Ok(vec![Request::get(url)])
    }
    /// True when the API answers a per-request problem (an instance type a region does
    /// not sell, say) with a 4xx status and an error body that `parse` turns into a
    /// counted reject; other adapters fail the feed on any 4xx.
    fn error_bodies_are_records(&self) -> bool {
        false
    }
    /// The URL of the next page, when the payload names one; `url` is the request
    /// that returned `body`.
    fn next_page(&self, _url: &str, _body: &[u8]) -> Option<String> {
        None
    }
    /// The request for a small index that names the current version of the payload
    /// at `url`, when the provider publishes one (AWS's region index); fetched before
    /// the payload, so an unchanged version spares the download. Default: none.
    fn version_index(&self, _url: &str) -> Option<Request> {
        None
    }
    /// The version the index (`index`, the body [`Adapter::version_index`]'s request
    /// returned) names for the payload at `url`, and the request for that version's
    /// payload. An `Err` says why the index cannot be used.
    fn versioned(&self, _url: &str, _index: &[u8]) -> Result<(String, Request), AdapterError> {
        Err(AdapterError::Payload(
            "this format publishes no version index".into(),
        ))
    }
    /// True when the feed republishes a peer's data (another tracker or catalogue):
    /// its rows are stored with `peer = true` unless the feed file says otherwise.
    fn peer_by_default(&self) -> bool {
        false
    }
    /// Turn one payload into offers (or FX rates). An `Err` means the whole payload
    /// is malformed; a bad record is a [`crate::model::ParseReject`] instead.
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError>;
    /// True when [`Adapter::parse_stream`] reads a payload as a stream, so a live
    /// fetch may spool the body to a file instead of holding it in memory (AWS offer
    /// files). Such a format has no next page. Default: false.
    fn reads_streams(&self) -> bool {
        false
    }
    /// [`Adapter::parse`] of a page whose body (labelled `label`) is read from a
    /// reader that `open` gives (from the body's start each time it is called): the
    /// same offers, rejects and errors. Default: read it whole and parse.
    fn parse_stream<'b>(
        &self,
        label: &str,
        open: &Open<'b>,
        ctx: &ParseCtx,
    ) -> Result<Parsed, AdapterError> {
        self.parse(&Page::new(label, read_whole(open)?), ctx)
    }
}

/// Opens a reader on a payload from its start (for [`Adapter::parse_stream`]).
pub type Open<'b> = dyn Fn() -> std::io::Result<Box<dyn std::io::BufRead + 'b>> + 'b;

/// The payload `open` gives, read whole into memory.
pub fn read_whole(open: &Open) -> Result<Vec<u8>, AdapterError> {
    let mut bytes = Vec::new();
    open()
        .and_then(|mut body| body.read_to_end(&mut bytes))
        .map_err(read_error)?;
    Ok(bytes)
}

/// A payload that cannot be read, as an adapter says it.
pub fn read_error(e: std::io::Error) -> AdapterError {
    AdapterError::Payload(format!("cannot read the payload: {e}"))
}

/// Test helper: one payload (`label`, `body`) parsed as `provider`'s (also the feed's
/// name); an error as its text.
#[cfg(test)]
pub(crate) fn parse_page(
    adapter: &dyn Adapter,
    provider: &str,
    label: &str,
    body: &str,
) -> Result<Parsed, String> {
    let ctx = ParseCtx {
        feed: provider,
        provider,
    };
    let page = Page {
        label: label.into(),
        body: body.as_bytes().to_vec(),
        spool: None,
    };
    adapter.parse(&page, &ctx).map_err(|e| e.to_string())
}

/// Test helper: each of the `bad` credentials is refused with an error naming the
/// `form` they must take, and `value` (one of them) is not echoed.
#[cfg(test)]
pub(crate) fn check_bad_credentials(
    adapter: &dyn Adapter,
    (url, at): (&str, chrono::DateTime<chrono::Utc>),
    bad: &[Option<&str>],
    (form, value): (&str, &str),
) {
    for secret in bad {
        let e = adapter.requests(url, *secret, at).unwrap_err().to_string();
        assert!(e.contains(form) && !e.contains(value), "{e}");
    }
}

/// A CSV header row: column positions by their trimmed names.
pub(crate) struct Header<'a>(std::collections::HashMap<&'a str, usize>);

impl<'a> Header<'a> {
    pub(crate) fn of(rec: &'a csv::StringRecord) -> Self {
        Self(rec.iter().enumerate().map(|(i, h)| (h.trim(), i)).collect())
    }

    /// The position of the first of `names` the header has.
    pub(crate) fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.0.get(n).copied())
    }

    /// The position of `name`, or a column error that says `problem`.
    pub(crate) fn need(&self, name: &str, problem: &str) -> Result<usize, AdapterError> {
        self.find(&[name]).ok_or_else(|| AdapterError::Column {
            column: name.to_string(),
            problem: problem.to_string(),
        })
    }
}

/// Builds an adapter from its own keys (the feed file's keys less the common ones).
pub type Builder = fn(toml::Table) -> Result<Box<dyn Adapter>, AdapterError>;

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

/// Largest response body (decoded bytes) accepted per page, by format: a few times
/// the largest real payload, so a runaway or gzip-bombed response fails early. A
/// feed's `max_bytes` key overrides it. AWS region offer files are hundreds of MB;
/// API pages (Azure, GCP, vast.ai) are a few MB; signed per-query APIs a few KB.
pub const MAX_BYTES: &[(&str, usize)] = &[
    ("aws_offer", 1 << 30),
    ("vastai", 64 << 20),
    ("generic_csv", 64 << 20),
    ("generic_json", 64 << 20),
    ("skypilot_csv", 64 << 20),
    ("azure_retail", 16 << 20),
    ("gcp_billing", 32 << 20),
    ("shadeform", 16 << 20),
    ("runpod", 8 << 20),
    ("lambda", 4 << 20),
    ("autodl", 8 << 20),
    ("ppio", 8 << 20),
    ("aliyun", 1 << 20),
    ("tencent", 1 << 20),
    ("ecb_fx", 1 << 20),
];

/// The cap for formats not in [`MAX_BYTES`].
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

/// The response cap of a format, in bytes.
pub fn max_bytes(format: &str) -> usize {
    MAX_BYTES
        .iter()
        .find(|(n, _)| *n == format)
        .map_or(DEFAULT_MAX_BYTES, |(_, b)| *b)
}

pub fn builder(format: &str) -> Option<Builder> {
    REGISTRY.iter().find(|(n, _)| *n == format).map(|(_, b)| *b)
}

pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(n, _)| *n).collect()
}

/// Deserialize an adapter's own keys, rejecting unknown ones with the key's name.
pub fn adapter_keys<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, AdapterError> {
    T::deserialize(toml::Value::Table(table))
        .map_err(|e| AdapterError::Keys(e.to_string().trim().to_string()))
}

/// The `build` of an adapter that takes no keys of its own: `keys` must be empty.
pub fn keyless(
    keys: toml::Table,
    adapter: impl Adapter + 'static,
) -> Result<Box<dyn Adapter>, AdapterError> {
    let _: NoKeys = adapter_keys(keys)?;
    Ok(Box::new(adapter))
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

/// Parse JSON with a message that says where it broke. A number too large for an
/// f64 (`1e999`) would fail the whole payload in serde_json; it is turned into a
/// string first ([`quote_huge_numbers`]), so only the record holding it is rejected.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdapterError> {
    let body = quote_huge_numbers(body);
    serde_json::from_slice(&body).map_err(|error| AdapterError::Json { error, hint: "" })
}

/// Only a literal with an exponent or more than 308 characters can overflow an f64;
/// every other one is left unparsed.
fn may_overflow(token: &str) -> bool {
    token.len() > 308 || token.bytes().any(|b| b == b'e' || b == b'E')
}

/// JSON text with every number literal that overflows f64 (e.g. `1e999`,
/// `-1e400`, a 400-digit integer) wrapped in quotes, so it reads as the string
/// `"1e999"`: a typed field then fails for that record only (a `bad_record`), and a
/// price read from a string is rejected by normalisation as not finite. Strings
/// (and escapes inside them) are left alone; other bytes are copied unchanged.
pub fn quote_huge_numbers(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let number_byte = |c: u8| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E');
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < body.len() {
        let c = body[i];
        if in_string {
            // Jump to the next quote or backslash: strings are most of a payload.
            match memchr::memchr2(b'"', b'\\', &body[i..]) {
                Some(k) if body[i + k] == b'\\' => i += k + 2,
                Some(k) => {
                    in_string = false;
                    i += k + 1;
                }
                None => i = body.len(),
            }
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < body.len() && number_byte(body[i]) {
                i += 1;
            }
            let token = std::str::from_utf8(&body[start..i]).unwrap_or("");
            if may_overflow(token) && token.parse::<f64>().is_ok_and(|v| v.is_infinite()) {
                let o = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 16));
                o.extend_from_slice(&body[copied..start]);
                o.push(b'"');
                o.extend_from_slice(&body[start..i]);
                o.push(b'"');
                copied = i;
            }
            continue;
        }
        i += 1;
    }
    match out {
        None => std::borrow::Cow::Borrowed(body),
        Some(mut o) => {
            o.extend_from_slice(&body[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = quote_huge_numbers(input.as_bytes());
        assert_eq!(std::str::from_utf8(&got).unwrap(), expected, "{input}");
    }

    #[test]
    fn huge_numbers_become_strings() {
        check(r#"{"a":1e999}"#, r#"{"a":"1e999"}"#);
        check(r#"[1.5,-1E400,2]"#, r#"[1.5,"-1E400",2]"#);
        check(r#"{"s":"1e999","n":1e308}"#, r#"{"s":"1e999","n":1e308}"#);
        check(r#"{"s":"a\"1e999"}"#, r#"{"s":"a\"1e999"}"#);
        check(r#"{"s":"a\\","n":1e999}"#, r#"{"s":"a\\","n":"1e999"}"#);
        check(
            r#"{"s":"\u00e9\"","n":-2e400}"#,
            r#"{"s":"\u00e9\"","n":"-2e400"}"#,
        );
        check(
            r#"{"big":123456789012345678901234567890}"#,
            r#"{"big":123456789012345678901234567890}"#,
        );
        check("[\"unterminated \\", "[\"unterminated \\");
        check(
            &format!("[{}]", "9".repeat(400)),
            &format!("[\"{}\"]", "9".repeat(400)),
        );
        check("", "");
        check("not json 1e999", "not json \"1e999\"");
    }
}
