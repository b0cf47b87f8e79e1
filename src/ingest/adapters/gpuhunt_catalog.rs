//! `gpuhunt_catalog`: dstack gpuhunt's published offline catalogue, a peer's data.
//!
//! `url` is the catalogue base (default [`DEFAULT_URL`]). A live fetch reads
//! `<url>/version` (one line, e.g. `20240508`), then `<url>/<version>/catalog.zip`
//! (the second request is the first page's [`Adapter::next_page`]); the optional key
//! `version` pins one version and skips the first request.
//!
//! The zip holds one `<provider>.csv` per provider (aws, azure, datacrunch, gcp,
//! lambdalabs, nebius, oci, runpod, cloudrift, ...). Columns are read by header name:
//! `instance_name`, `location`, `price` (USD per hour for the whole instance),
//! `gpu_count`, `gpu_name`, `gpu_memory` (GB per GPU), `spot` (`True`/`False`), and
//! any others (`cpu`, `memory`, `disk_size`, `gpu_vendor`, `flags`, `provider_data`,
//! ...) are ignored. The provider is the file name mapped through
//! tables/providers.toml (`lambdalabs` is `lambda`). Rows without a GPU (`gpu_count`
//! 0 or empty, or no `gpu_name`) are CPU machines, not GPU offers: they are dropped,
//! not rejected. A row repeated with the same instance, location and class is kept
//! once. A provider file without a required column becomes one `bad_record` reject
//! naming the file; the other files are still read.

use std::collections::HashSet;
use std::io::Read;

use serde::Deserialize;

use super::{adapter_keys, bad_record, Adapter, AdapterError, Header, Page, ParseCtx, Request};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};
use crate::tables::Tables;

/// dstack's public catalogue bucket.
pub const DEFAULT_URL: &str = "https://dstack-gpu-pricing.s3.eu-west-1.amazonaws.com/v2";

/// Largest provider CSV read out of the zip, in bytes (a guard against zip bombs).
pub const MAX_CSV_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default)]
    version: Option<String>,
}

pub struct GpuhuntCatalog {
    version: Option<String>,
}

/// A version names a folder: letters, digits, `-`, `_` and `.` only.
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The catalogue zip of one version under a base URL.
pub fn zip_url(base: &str, version: &str) -> String {
    format!("{}/{version}/catalog.zip", base.trim_end_matches('/'))
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    if let Some(v) = k.version.as_deref().filter(|v| !valid_version(v)) {
        return Err(AdapterError::key(
            "version",
            format!("{v:?} is not a catalogue version such as \"20240508\""),
        ));
    }
    Ok(Box::new(GpuhuntCatalog { version: k.version }))
}

fn is_zip(body: &[u8]) -> bool {
    body.starts_with(b"PK")
}

impl Adapter for GpuhuntCatalog {
    fn requests(
        &self,
        url: &str,
        _secret: Option<&str>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        let base = url.trim_end_matches('/');
        Ok(vec![match &self.version {
            Some(v) => Request::get(&zip_url(base, v)),
            None => Request::get(&format!("{base}/version")),
        }])
    }

    fn peer_by_default(&self) -> bool {
        true
    }

    /// After `<base>/version`, the zip of the version it names, under the same base.
    fn next_page(&self, url: &str, body: &[u8]) -> Option<String> {
        let base = url.strip_suffix("/version")?;
        if is_zip(body) {
            return None;
        }
        let v = std::str::from_utf8(body).ok()?.trim();
        valid_version(v).then(|| zip_url(base, v))
    }

    fn parse(&self, page: &Page, _ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        if !is_zip(&page.body) {
            let text = String::from_utf8_lossy(&page.body);
            return if valid_version(text.trim()) {
                Ok(Parsed::default())
            } else {
                Err(AdapterError::Payload(
                    "neither a catalog.zip nor a version string".into(),
                ))
            };
        }
        parse_zip(&page.body)
    }
}

/// Every `<provider>.csv` of a catalogue zip, in file-name order.
fn parse_zip(body: &[u8]) -> Result<Parsed, AdapterError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body))
        .map_err(|e| AdapterError::Payload(format!("invalid catalog.zip: {e}")))?;
    let mut names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .filter(|n| n.ends_with(".csv"))
        .collect();
    names.sort();
    let tables = Tables::embedded();
    let mut out = Parsed::default();
    for name in names {
        let mut bytes = Vec::new();
        zip.by_name(&name)
            .map_err(|e| AdapterError::Payload(format!("catalog.zip: {name}: {e}")))?
            .take(MAX_CSV_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| AdapterError::Payload(format!("catalog.zip: {name}: {e}")))?;
        if bytes.len() as u64 > MAX_CSV_BYTES {
            return Err(AdapterError::Payload(format!(
                "catalog.zip: {name} is larger than {MAX_CSV_BYTES} bytes"
            )));
        }
        let stem = name.rsplit('/').next().unwrap_or(&name);
        let provider = tables.provider_id(stem.trim_end_matches(".csv"));
        if let Err(e) = parse_csv(&bytes, &provider, &mut out) {
            out.rejects.push(bad_record(
                name.clone(),
                String::new(),
                format!("{name}: {e}"),
            ));
        }
    }
    Ok(out)
}

/// The column indexes of one provider file.
struct Cols {
    instance: usize,
    location: usize,
    price: usize,
    gpu_count: usize,
    gpu_name: usize,
    spot: usize,
    gpu_memory: Option<usize>,
}

fn columns(headers: &csv::StringRecord) -> Result<Cols, AdapterError> {
    let h = Header::of(headers);
    let need = |n: &str| h.need(n, "missing from the header");
    Ok(Cols {
        instance: need("instance_name")?,
        location: need("location")?,
        price: need("price")?,
        gpu_count: need("gpu_count")?,
        gpu_name: need("gpu_name")?,
        spot: need("spot")?,
        gpu_memory: h.find(&["gpu_memory"]),
    })
}

fn parse_csv(bytes: &[u8], provider: &str, out: &mut Parsed) -> Result<(), AdapterError> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let c = columns(
        &rdr.headers()
            .map_err(|error| AdapterError::CsvHeader { error })?
            .clone(),
    )?;
    let mut seen: HashSet<(String, String, bool)> = HashSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|error| AdapterError::CsvLine { line, error })?;
        let get = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
        let (it, loc, name) = (get(c.instance), get(c.location), get(c.gpu_name));
        let count: f64 = get(c.gpu_count).parse().unwrap_or(0.0);
        if name.is_empty() || count <= 0.0 {
            continue; // a CPU machine, not a GPU offer
        }
        let id = format!("{it}|{loc}");
        let reject = |detail: String| ParseReject {
            offer_id: id.clone(),
            gpu_name_raw: name.to_string(),
            reason: "bad_field".into(),
            detail: format!("{provider}.csv line {line}: {detail}"),
        };
        let spot = match get(c.spot) {
            "True" | "true" => true,
            "False" | "false" => false,
            s => {
                out.rejects.push(reject(format!(
                    "column \"spot\": {s:?} is not True or False"
                )));
                continue;
            }
        };
        let price = match get(c.price).parse::<f64>() {
            Ok(p) => p,
            Err(_) => {
                out.rejects.push(reject(format!(
                    "column \"price\": {:?} is not a number",
                    get(c.price)
                )));
                continue;
            }
        };
        if !seen.insert((it.to_string(), loc.to_string(), spot)) {
            continue;
        }
        let mut o = RawOffer::new(provider, id, name);
        o.instance_type = (!it.is_empty()).then(|| it.into());
        o.region = (!loc.is_empty()).then(|| loc.into());
        o.gpu_count = Some(count);
        o.gpu_memory_gb = c
            .gpu_memory
            .and_then(|m| get(m).parse().ok())
            .filter(|m| *m > 0.0);
        o.price_class = if spot {
            PriceClass::Spot
        } else {
            PriceClass::OnDemand
        };
        o.price = Some(price);
        o.currency = "USD".into();
        o.price_unit = PriceUnit::instance_hour();
        out.offers.push(o);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(version: &str, expected: bool) {
        assert_eq!(valid_version(version), expected, "{version:?}");
    }

    #[test]
    fn versions() {
        for (v, ok) in [
            ("20240508", true),
            ("v2.1", true),
            ("", false),
            ("../etc", false),
            ("2024 05", false),
            ("<html>", false),
        ] {
            check(v, ok);
        }
    }

    #[test]
    fn keys() {
        crate::ingest::feed::check_feed_keys("gpuhunt_catalog", DEFAULT_URL, "", None);
        crate::ingest::feed::check_feed_keys(
            "gpuhunt_catalog",
            DEFAULT_URL,
            "version = '20240508'",
            None,
        );
        crate::ingest::feed::check_feed_keys(
            "gpuhunt_catalog",
            DEFAULT_URL,
            "version = '../x'",
            Some("key `version`"),
        );
    }
}
