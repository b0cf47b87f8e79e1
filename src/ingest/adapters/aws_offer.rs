//! `aws_offer`: AWS Price List bulk offer files for Amazon EC2, both forms AWS
//! publishes (`.../offers/v1.0/aws/AmazonEC2/current/<region>/index.json|.csv`, and
//! the China partition `https://pricing.cn-north-1.amazonaws.com.cn/offers/v1.0/cn/
//! AmazonEC2/current/<region>/index.json|.csv`). The form is sniffed: `{` is JSON.
//!
//! * JSON: `{"formatVersion", "disclaimer", "offerCode": "AmazonEC2", "version",
//!   "publicationDate", "products": {"<sku>": {"sku", "productFamily", "attributes":
//!   {"instanceType", "regionCode", "location", "operatingSystem", "tenancy",
//!   "preInstalledSw", "capacitystatus", "marketoption", "gpu", ...}}}, "terms":
//!   {"OnDemand"|"Reserved": {"<sku>": {"<sku>.<offerTermCode>": {"termAttributes":
//!   {"PurchaseOption", ...}, "priceDimensions": {"<rateCode>": {"rateCode", "unit":
//!   "Hrs", "pricePerUnit": {"USD": "98.3200000000"}}}}}}}}`.
//! * CSV: five preamble rows (`"FormatVersion"`, `"Disclaimer"`, `"Publication Date"`,
//!   `"Version"`, `"OfferCode"`), then a header row starting `"SKU","OfferTermCode",
//!   "RateCode","TermType",...` with, among ~90 columns, `Unit`, `PricePerUnit`,
//!   `Currency`, `PurchaseOption`, `Product Family`, `Instance Type`, `Tenancy`,
//!   `Operating System`, `CapacityStatus`, `GPU`, `MarketOption`, `Pre Installed S/W`,
//!   `Region Code`; one row per price dimension.
//!
//! Price as published: `pricePerUnit` / `PricePerUnit` for unit `Hrs`, per instance-hour
//! (`instance-hour`), in the currency that keys it / the `Currency` column (USD; CNY in
//! the China partition). Offer id: the rate code (`<sku>.<offerTermCode>.<rateCode>`).
//!
//! Kept: a plain GPU box, i.e. products of family `Compute Instance[ (bare metal)]`
//! whose `gpu` attribute is above 0, `operatingSystem` `Linux`, `tenancy` `Shared`,
//! `preInstalledSw` `NA`, `capacitystatus` `Used` and `marketoption` `OnDemand` (the
//! last three when the file has them). Everything else (non-GPU instance types,
//! Windows/RHEL/SUSE, dedicated hosts, capacity reservations, SQL Server images,
//! Capacity Blocks) is not a plain GPU offer and is dropped silently, as are prices of
//! other services in the file. Terms: `OnDemand` → `on_demand`; `Reserved` with
//! `PurchaseOption` `No Upfront` → `reserved` (a plain hourly price over a 1- or
//! 3-year term); Partial/All Upfront reservations are skipped, since their price is
//! an upfront fee plus an hourly rate and combining them would be a conversion.
//! Counted as rejects: an on-demand unit other than `Hrs`, a price that is not a
//! number, a price with no currency.
//!
//! Model and GPU count: the instance type is looked up in `tables/instances.csv`
//! (provider `aws`); `gpu_name_raw` stays empty, so a GPU instance type missing from
//! the catalogue is rejected as `unknown_instance_type` by normalisation. Region:
//! `regionCode` (`Region Code`), else the `location` text (country unknown); country
//! from `tables/regions.toml` `[aws]` (`cn-north-1`, `cn-northwest-1` are CN).
//! Provider: the feed's `provider`; when that is the default (the format name) it is
//! `aws`, the id the data tables use.
//!
//! Memory: offer files are hundreds of MB. The adapter reads streams
//! ([`Adapter::reads_streams`]), so a live fetch spools the body to a gzip file and
//! [`Adapter::parse_stream`] reads it from there; [`Adapter::parse`] reads a body in
//! memory (a recorded file) with the same code. The JSON is read with a streaming
//! serde visitor into small typed structs: products that are not plain GPU boxes are
//! dropped while reading, and terms of those products are skipped unparsed
//! (`IgnoredAny`); unknown fields are skipped. (Were `terms` to precede `products`,
//! which AWS files do not do, every SKU's terms would be kept until the join.) The CSV
//! is read row by row. Read from a stream, a JSON error may name a column one later
//! than the same error read from memory (serde_json's reader); nothing else differs.
//!
//! Version index: AWS publishes, per service, a small region index beside the
//! `current/` files, `.../AmazonEC2/current/region_index.json`: `{"formatVersion",
//! "disclaimer", "publicationDate", "regions": {"<region>": {"regionCode",
//! "currentVersionUrl": "/offers/v1.0/aws/AmazonEC2/<YYYYMMDDhhmmss>/<region>/index.json"}}}`,
//! the path relative to the index's server. For a feed URL of the form
//! `.../current/<region>/index.json|.csv`, [`Adapter::version_index`] names that index
//! and [`Adapter::versioned`] reads the region's `currentVersionUrl` (the version;
//! checked to be a plain path ending `/<region>/index.json`) and asks for that path on
//! the feed URL's server, `.csv` for a CSV feed. An unchanged version means unchanged
//! prices, so the fetch answers as a 304 would without downloading the offer file; an
//! index that fails or lacks the region leaves the feed URL to be fetched as it is.
//! Any other URL (a mirror, a recorded copy) has no index. Verified against the AWS
//! Billing user guide, "Service Region index file for AWS services"
//! (docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/service-region-infex-file-for-service.html,
//! and its docs.amazonaws.cn twin for the China partition: `regions` keyed by region
//! code, `currentVersionUrl` "the relative URL ... of this version", e.g.
//! `/offers/v1.0/aws/AmazonRDS/20230328234721/us-east-2/index.json`), AWS's blog post
//! on regional price lists (`currentRegionIndexUrl` relative to
//! `https://pricing.us-east-1.amazonaws.com`) and client code that joins
//! `regions[<region>].currentVersionUrl` to that origin. Assumed: that the versioned
//! CSV file sits at the same path with `index.csv`, as the `current/` files do.
//!
//! Verified against public sources (AWS Billing user guide "Reading the service price
//! list file", recorded EC2 offer files and client code): the JSON layout and field
//! names above, the CSV preamble and header (column names and order of a 2025 EC2
//! file, including `CapacityStatus` with no space, `GPU`, `MarketOption`,
//! `Pre Installed S/W`, `Region Code`), `Hrs`/`Quantity` units, `Upfront Fee` rows of
//! Partial/All Upfront reservations, the `No Upfront` purchase option, the China
//! partition URL. Assumed: that the China files key `pricePerUnit` by `CNY` and fill
//! `Currency` with `CNY` (AWS China prices in RMB); that every EC2 product with GPUs
//! has a `gpu` attribute above 0.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use url::Url;

use super::{keyless, Adapter, AdapterError, Header, Page, ParseCtx, Request};
use crate::ingest::urlpolicy;
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

/// The provider id of the data tables, used when the feed keeps the default provider.
pub const PROVIDER: &str = "aws";
const FORMAT: &str = "aws_offer";

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, AwsOffer)
}

pub struct AwsOffer;

/// The product attributes that decide whether a SKU is a plain GPU box.
#[derive(Debug, Clone, Default, PartialEq)]
struct Product {
    family: String,
    instance_type: String,
    region: Option<String>,
    os: String,
    tenancy: String,
    pre_sw: Option<String>,
    capacity: Option<String>,
    gpu: Option<String>,
    market: Option<String>,
}

impl Product {
    fn gpus(&self) -> f64 {
        self.gpu
            .as_deref()
            .and_then(|g| g.trim().parse::<f64>().ok())
            .filter(|g| g.is_finite())
            .unwrap_or(0.0)
    }

    /// Linux, shared tenancy, no pre-installed software, ordinary capacity, with GPUs.
    fn is_plain_gpu_box(&self) -> bool {
        let absent_or =
            |v: &Option<String>, want: &str| v.as_deref().is_none_or(|s| s.is_empty() || s == want);
        self.family.starts_with("Compute Instance")
            && !self.instance_type.is_empty()
            && self.gpus() > 0.0
            && self.os == "Linux"
            && self.tenancy == "Shared"
            && absent_or(&self.pre_sw, "NA")
            && absent_or(&self.capacity, "Used")
            && absent_or(&self.market, "OnDemand")
    }
}

/// The price class of a term, or `None` when gpurent does not take it.
fn term_class(term_type: &str, purchase_option: Option<&str>) -> Option<PriceClass> {
    match (term_type, purchase_option) {
        ("OnDemand", _) => Some(PriceClass::OnDemand),
        ("Reserved", Some("No Upfront")) => Some(PriceClass::Reserved),
        _ => None,
    }
}

/// One price dimension of a kept product and term: an offer, nothing, or a reject.
fn dimension(
    provider: &str,
    p: &Product,
    class: PriceClass,
    rate_code: &str,
    unit: &str,
    prices: &[(&str, &str)],
) -> Result<Option<RawOffer>, ParseReject> {
    let reject = |reason: &str, detail: String| ParseReject {
        offer_id: rate_code.to_string(),
        gpu_name_raw: String::new(),
        reason: reason.to_string(),
        detail: format!(
            "{} in {}: {detail}",
            p.instance_type,
            p.region.as_deref().unwrap_or("?")
        ),
    };
    if unit != "Hrs" {
        // Reservations also carry an `Upfront Fee` (unit `Quantity`); not an hourly price.
        return match class {
            PriceClass::OnDemand => Err(reject(
                "unsupported_unit",
                format!("unit {unit:?} (expected \"Hrs\")"),
            )),
            _ => Ok(None),
        };
    }
    let chosen = match prices {
        [] => return Err(reject("missing_price", "no price".into())),
        [one] => *one,
        many => *many.iter().find(|(c, _)| *c == "USD").unwrap_or(&many[0]),
    };
    let (currency, amount) = chosen;
    let price: f64 = amount
        .trim()
        .parse()
        .map_err(|_| reject("bad_price", format!("price {amount:?} is not a number")))?;
    if currency.trim().is_empty() {
        return Err(reject("missing_currency", "no currency".into()));
    }
    let mut o = RawOffer::new(provider, rate_code, "");
    o.instance_type = Some(p.instance_type.clone().into());
    o.region = p.region.clone().map(Into::into);
    o.price_class = class;
    o.price = Some(price);
    o.currency = currency.trim().to_string().into();
    o.price_unit = PriceUnit::instance_hour();
    Ok(Some(o))
}

fn push(out: &mut Parsed, r: Result<Option<RawOffer>, ParseReject>) {
    match r {
        Ok(Some(o)) => out.offers.push(o),
        Ok(None) => {}
        Err(rej) => out.rejects.push(rej),
    }
}

impl Adapter for AwsOffer {
    /// `.../current/region_index.json` beside a `.../current/<region>/index.*` URL.
    fn version_index(&self, url: &str) -> Option<Request> {
        let (mut u, _, _) = current_offer(url)?;
        u.path_segments_mut()
            .ok()?
            .pop()
            .pop()
            .push("region_index.json");
        Some(Request::get(u.as_str()))
    }

    /// The region's `currentVersionUrl` (the version), and a GET of that path on the
    /// feed URL's server in the feed URL's form (`.json` or `.csv`).
    fn versioned(&self, url: &str, index: &[u8]) -> Result<(String, Request), AdapterError> {
        let (mut u, region, ext) = current_offer(url).ok_or_else(|| {
            AdapterError::Endpoint(format!(
                "{} is not a .../current/<region>/index.json|.csv URL",
                urlpolicy::shown_url(url)
            ))
        })?;
        let version = current_version_url(index, &region)?;
        let stem = version.strip_suffix(".json").unwrap_or(&version);
        u.set_path(&format!("{stem}.{ext}"));
        urlpolicy::check(u.as_str())?;
        Ok((version, Request::get(u.as_str())))
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let provider = if ctx.provider == FORMAT {
            PROVIDER
        } else {
            ctx.provider
        };
        let first = page.body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            parse_json(serde_json::Deserializer::from_slice(&page.body), provider)
        } else {
            parse_csv(page.body.as_slice(), provider)
        }
    }

    fn reads_streams(&self) -> bool {
        true
    }

    /// The same visitor and row reader as [`AwsOffer::parse`], over a reader.
    fn parse_stream<'b>(
        &self,
        _label: &str,
        open: &super::Open<'b>,
        ctx: &ParseCtx,
    ) -> Result<Parsed, AdapterError> {
        let mut body = open().map_err(super::read_error)?;
        let body: &mut dyn BufRead = &mut *body;
        let provider = if ctx.provider == FORMAT {
            PROVIDER
        } else {
            ctx.provider
        };
        let mut skipped = Vec::new();
        let first = first_byte(body, &mut skipped).map_err(super::read_error)?;
        if first == Some(b'{') {
            // serde_json reads a byte at a time; a concrete `BufReader` serves each from
            // its buffer without a call through `dyn`.
            let bytes = std::io::BufReader::with_capacity(1 << 16, body);
            parse_json(serde_json::Deserializer::from_reader(bytes), provider)
        } else {
            parse_csv(skipped.as_slice().chain(body), provider)
        }
    }
}

/// The first byte that is not ASCII whitespace, left unread; the whitespace before
/// it is consumed into `skipped` (the CSV reader is given it back).
fn first_byte(body: &mut dyn BufRead, skipped: &mut Vec<u8>) -> std::io::Result<Option<u8>> {
    loop {
        let buf = body.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        let n = buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(buf.len());
        skipped.extend_from_slice(&buf[..n]);
        body.consume(n);
        if n == 0 {
            return Ok(Some(b));
        }
    }
}

// ---------------------------------------------------------------------------
// The region index: which version of each region's offer file is current.
// ---------------------------------------------------------------------------

/// A feed URL `<origin>/<path>/current/<region>/index.json|.csv` (no query): the URL,
/// its region and its form; `None` for any other URL (a mirror, a versioned or
/// all-regions file), which is fetched as it is.
fn current_offer(url: &str) -> Option<(Url, String, &'static str)> {
    let u = Url::parse(url).ok()?;
    if u.query().is_some() || u.fragment().is_some() {
        return None;
    }
    let segments: Vec<&str> = u.path_segments()?.collect();
    let [.., current, region, file] = segments.as_slice() else {
        return None;
    };
    let ext = match *file {
        "index.json" => "json",
        "index.csv" => "csv",
        _ => return None,
    };
    let region = region.to_string();
    (*current == "current" && !region.is_empty()).then(|| (u.clone(), region, ext))
}

/// `region_index.json`: only the regions map is read; each entry is kept as JSON so
/// that one odd region cannot spoil the others.
#[derive(Deserialize)]
struct RegionIndex {
    regions: HashMap<String, serde_json::Value>,
}

/// A path AWS could publish: `/`-separated names of letters, digits, `-`, `_`, `.`
/// (no empty, `.` or `..` segment), so it stays on the index's server.
fn plain_path(path: &str) -> bool {
    let name = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    path.strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(name))
}

/// The `currentVersionUrl` the region index names for `region`: a plain path to that
/// region's `index.json`.
fn current_version_url(index: &[u8], region: &str) -> Result<String, AdapterError> {
    let index: RegionIndex = serde_json::from_slice(index).map_err(|error| AdapterError::Json {
        error,
        hint: " (expected an AWS region index with a \"regions\" object)",
    })?;
    let entry = index.regions.get(region).ok_or_else(|| {
        AdapterError::Payload(format!("the region index names no region {region:?}"))
    })?;
    let path = entry
        .get("currentVersionUrl")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            AdapterError::Payload(format!("region {region:?} has no currentVersionUrl"))
        })?;
    if !(plain_path(path) && path.ends_with(&format!("/{region}/index.json"))) {
        return Err(AdapterError::Payload(format!(
            "currentVersionUrl {path:?} is not a path to the {region} offer file"
        )));
    }
    Ok(path.to_string())
}

// ---------------------------------------------------------------------------
// JSON: a streaming visitor that keeps only plain GPU products and their terms.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct JsonProduct {
    #[serde(default, rename = "productFamily")]
    family: String,
    #[serde(default)]
    attributes: JsonAttributes,
}

#[derive(Deserialize, Default)]
struct JsonAttributes {
    #[serde(default, rename = "instanceType")]
    instance_type: String,
    #[serde(default, rename = "regionCode")]
    region_code: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default, rename = "operatingSystem")]
    os: String,
    #[serde(default)]
    tenancy: String,
    #[serde(default, rename = "preInstalledSw")]
    pre_sw: Option<String>,
    #[serde(default, rename = "capacitystatus")]
    capacity: Option<String>,
    #[serde(default)]
    gpu: Option<String>,
    #[serde(default, rename = "marketoption", alias = "marketOption")]
    market: Option<String>,
}

impl From<JsonProduct> for Product {
    fn from(p: JsonProduct) -> Self {
        let a = p.attributes;
        Product {
            family: p.family,
            instance_type: a.instance_type,
            region: a.region_code.filter(|r| !r.is_empty()).or(a.location),
            os: a.os,
            tenancy: a.tenancy,
            pre_sw: a.pre_sw,
            capacity: a.capacity,
            gpu: a.gpu,
            market: a.market,
        }
    }
}

#[derive(Deserialize)]
struct JsonTerm {
    #[serde(default, rename = "priceDimensions")]
    dims: BTreeMap<String, JsonDimension>,
    #[serde(default, rename = "termAttributes")]
    attrs: JsonTermAttributes,
}

#[derive(Deserialize, Default)]
struct JsonTermAttributes {
    #[serde(default, rename = "PurchaseOption")]
    purchase_option: Option<String>,
}

#[derive(Deserialize)]
struct JsonDimension {
    #[serde(default, rename = "rateCode")]
    rate_code: String,
    #[serde(default)]
    unit: String,
    #[serde(default, rename = "pricePerUnit")]
    price: BTreeMap<String, String>,
}

/// Terms of one term type: (sku, its terms by key), in file order.
type SkuTerms = Vec<(String, BTreeMap<String, JsonTerm>)>;

struct OfferFile {
    products: Option<HashMap<String, Product>>,
    terms: Vec<(String, SkuTerms)>,
}

struct OfferVisitor;

impl<'de> Visitor<'de> for OfferVisitor {
    type Value = OfferFile;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AWS offer file object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OfferFile, A::Error> {
        let mut file = OfferFile {
            products: None,
            terms: Vec::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "products" => file.products = Some(map.next_value_seed(ProductsSeed)?),
                "terms" => {
                    let keep = file
                        .products
                        .as_ref()
                        .map(|p| p.keys().cloned().collect::<HashSet<String>>());
                    file.terms = map.next_value_seed(TermsSeed {
                        keep: keep.as_ref(),
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(file)
    }
}

/// `products`, keeping only plain GPU boxes.
struct ProductsSeed;

impl<'de> DeserializeSeed<'de> for ProductsSeed {
    type Value = HashMap<String, Product>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ProductsSeed {
    type Value = HashMap<String, Product>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of products by SKU")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = HashMap::new();
        while let Some(sku) = map.next_key::<String>()? {
            let p = Product::from(map.next_value::<JsonProduct>()?);
            if p.is_plain_gpu_box() {
                kept.insert(sku, p);
            }
        }
        Ok(kept)
    }
}

/// `terms`: `OnDemand` and `Reserved` terms of the kept SKUs (all SKUs when the
/// products have not been read yet).
struct TermsSeed<'k> {
    keep: Option<&'k HashSet<String>>,
}

impl<'de> DeserializeSeed<'de> for TermsSeed<'_> {
    type Value = Vec<(String, SkuTerms)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TermsSeed<'_> {
    type Value = Vec<(String, SkuTerms)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of term types")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(term_type) = map.next_key::<String>()? {
            if term_type == "OnDemand" || term_type == "Reserved" {
                let terms = map.next_value_seed(SkuTermsSeed { keep: self.keep })?;
                out.push((term_type, terms));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

struct SkuTermsSeed<'k> {
    keep: Option<&'k HashSet<String>>,
}

impl<'de> DeserializeSeed<'de> for SkuTermsSeed<'_> {
    type Value = SkuTerms;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SkuTermsSeed<'_> {
    type Value = SkuTerms;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of terms by SKU")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(sku) = map.next_key::<String>()? {
            if self.keep.is_none_or(|k| k.contains(&sku)) {
                out.push((sku, map.next_value::<BTreeMap<String, JsonTerm>>()?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// An offer file read by `de` (over a slice, or a reader for a spooled body).
fn parse_json<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    provider: &str,
) -> Result<Parsed, AdapterError> {
    let invalid = |error| AdapterError::Json { error, hint: "" };
    let file = serde::Deserializer::deserialize_map(&mut de, OfferVisitor).map_err(invalid)?;
    de.end().map_err(invalid)?;
    let products = file.products.ok_or_else(|| {
        AdapterError::Payload("not an AWS offer file: no \"products\" object".into())
    })?;
    let mut out = Parsed::default();
    for (term_type, skus) in &file.terms {
        for (sku, terms) in skus {
            let Some(p) = products.get(sku) else { continue };
            for term in terms.values() {
                let Some(class) = term_class(term_type, term.attrs.purchase_option.as_deref())
                else {
                    continue;
                };
                for (key, dim) in &term.dims {
                    let rate_code = if dim.rate_code.is_empty() {
                        key
                    } else {
                        &dim.rate_code
                    };
                    let prices: Vec<(&str, &str)> = dim
                        .price
                        .iter()
                        .map(|(c, a)| (c.as_str(), a.as_str()))
                        .collect();
                    push(
                        &mut out,
                        dimension(provider, p, class, rate_code, &dim.unit, &prices),
                    );
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// CSV: preamble, header, one row per price dimension.
// ---------------------------------------------------------------------------

/// Rows before the header that may hold the preamble.
const MAX_PREAMBLE_ROWS: usize = 10;

fn parse_csv<R: Read>(body: R, provider: &str) -> Result<Parsed, AdapterError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut records = rdr.records();
    let (header_row, header) = csv_header(&mut records)?;
    let c = CsvCols::of(&header, header_row)?;
    let mut out = Parsed::default();
    for (i, rec) in records.enumerate() {
        let line = header_row + 1 + i;
        let rec = rec.map_err(|error| AdapterError::CsvLine { line, error })?;
        let get = |col: usize| rec.get(col).map(str::trim).unwrap_or("");
        let opt = |col: Option<usize>| col.map(get).filter(|s| !s.is_empty()).map(str::to_string);
        let p = Product {
            family: get(c.family).to_string(),
            instance_type: get(c.instance_type).to_string(),
            region: opt(c.region).or_else(|| opt(c.location)),
            os: get(c.os).to_string(),
            tenancy: get(c.tenancy).to_string(),
            pre_sw: opt(c.pre_sw),
            capacity: opt(c.capacity),
            gpu: opt(c.gpu),
            market: opt(c.market),
        };
        if !p.is_plain_gpu_box() {
            continue;
        }
        let Some(class) = term_class(get(c.term), opt(c.purchase).as_deref()) else {
            continue;
        };
        let prices = [(get(c.currency), get(c.price))];
        let prices: &[(&str, &str)] = if get(c.price).is_empty() {
            &[]
        } else {
            &prices
        };
        push(
            &mut out,
            dimension(provider, &p, class, get(c.rate), get(c.unit), prices),
        );
    }
    Ok(out)
}

/// The header row (the first starting with "SKU", within [`MAX_PREAMBLE_ROWS`]) and
/// its row number; the file must start with the "FormatVersion" preamble.
fn csv_header<R: Read>(
    records: &mut csv::StringRecordsIter<R>,
) -> Result<(usize, csv::StringRecord), AdapterError> {
    for row in 1..=MAX_PREAMBLE_ROWS {
        let Some(rec) = records.next() else { break };
        let rec = rec.map_err(|error| AdapterError::CsvLine { line: row, error })?;
        let first = rec
            .get(0)
            .unwrap_or("")
            .trim_start_matches('\u{feff}')
            .trim();
        if row == 1 && first != "FormatVersion" {
            return Err(AdapterError::Payload(format!(
                "not an AWS price list file: the first row starts with {first:?}, not \"FormatVersion\" (nor a JSON object)"
            )));
        }
        if first == "SKU" {
            return Ok((row, rec));
        }
    }
    Err(AdapterError::Payload(format!(
        "no header row starting with \"SKU\" in the first {MAX_PREAMBLE_ROWS} rows"
    )))
}

/// The price list's columns: the ones every row needs, and optional ones.
struct CsvCols {
    term: usize,
    rate: usize,
    unit: usize,
    price: usize,
    currency: usize,
    family: usize,
    instance_type: usize,
    os: usize,
    tenancy: usize,
    region: Option<usize>,
    location: Option<usize>,
    pre_sw: Option<usize>,
    capacity: Option<usize>,
    gpu: Option<usize>,
    market: Option<usize>,
    purchase: Option<usize>,
}

impl CsvCols {
    fn of(header: &csv::StringRecord, header_row: usize) -> Result<Self, AdapterError> {
        let h = Header::of(header);
        let find = |names: &[&str]| h.find(names);
        let problem = format!("is not in the header (row {header_row})");
        let need = |name: &str| h.need(name, &problem);
        Ok(Self {
            term: need("TermType")?,
            rate: need("RateCode")?,
            unit: need("Unit")?,
            price: need("PricePerUnit")?,
            currency: need("Currency")?,
            family: need("Product Family")?,
            instance_type: need("Instance Type")?,
            os: need("Operating System")?,
            tenancy: need("Tenancy")?,
            region: find(&["Region Code"]),
            location: find(&["Location"]),
            pre_sw: find(&["Pre Installed S/W"]),
            capacity: find(&["CapacityStatus", "Capacity Status"]),
            gpu: find(&["GPU"]),
            market: find(&["MarketOption", "Market Option"]),
            purchase: find(&["PurchaseOption", "Purchase Option"]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Product {
        Product {
            family: "Compute Instance".into(),
            instance_type: "p5.48xlarge".into(),
            region: Some("us-east-1".into()),
            os: "Linux".into(),
            tenancy: "Shared".into(),
            pre_sw: Some("NA".into()),
            capacity: Some("Used".into()),
            gpu: Some("8".into()),
            market: Some("OnDemand".into()),
        }
    }

    fn check(change: fn(&mut Product), expected: bool, why: &str) {
        let mut p = base();
        change(&mut p);
        assert_eq!(p.is_plain_gpu_box(), expected, "{why}: {p:?}");
    }

    #[test]
    fn which_products_are_plain_gpu_boxes() {
        check(|_| {}, true, "Linux shared on-demand GPU box");
        check(
            |p| p.family = "Compute Instance (bare metal)".into(),
            true,
            "bare metal",
        );
        check(
            |p| p.gpu = Some("0.125".into()),
            true,
            "a GPU slice still has GPUs",
        );
        check(
            |p| p.capacity = None,
            true,
            "older files have no capacitystatus",
        );
        check(
            |p| p.market = None,
            true,
            "older files have no marketoption",
        );
        check(
            |p| p.gpu = None,
            false,
            "no gpu attribute: not a GPU instance",
        );
        check(|p| p.gpu = Some("0".into()), false, "zero GPUs");
        check(|p| p.gpu = Some("NA".into()), false, "gpu NA");
        check(|p| p.os = "Windows".into(), false, "Windows");
        check(|p| p.os = "RHEL".into(), false, "RHEL");
        check(
            |p| p.tenancy = "Dedicated".into(),
            false,
            "dedicated tenancy",
        );
        check(|p| p.tenancy = "Host".into(), false, "dedicated host");
        check(
            |p| p.pre_sw = Some("SQL Web".into()),
            false,
            "SQL Server pre-installed",
        );
        check(
            |p| p.capacity = Some("UnusedCapacityReservation".into()),
            false,
            "unused capacity reservation",
        );
        check(
            |p| p.capacity = Some("AllocatedCapacityReservation".into()),
            false,
            "allocated capacity reservation",
        );
        check(
            |p| p.market = Some("CapacityBlock".into()),
            false,
            "capacity block",
        );
        check(
            |p| p.family = "Dedicated Host".into(),
            false,
            "not an instance",
        );
        check(
            |p| p.instance_type = String::new(),
            false,
            "no instance type",
        );
    }

    #[test]
    fn which_terms_are_taken() {
        for (term, option, expected) in [
            ("OnDemand", None, Some(PriceClass::OnDemand)),
            ("Reserved", Some("No Upfront"), Some(PriceClass::Reserved)),
            ("Reserved", Some("Partial Upfront"), None),
            ("Reserved", Some("All Upfront"), None),
            ("Reserved", None, None),
            ("Spot", None, None),
        ] {
            assert_eq!(term_class(term, option), expected, "{term} {option:?}");
        }
    }

    #[test]
    fn dimensions_become_offers_or_rejects() {
        let p = base();
        let od = dimension(
            "aws",
            &p,
            PriceClass::OnDemand,
            "S.T.R",
            "Hrs",
            &[("USD", "98.3200000000")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (od.price, od.currency.as_str(), od.instance_type.as_deref()),
            (Some(98.32), "USD", Some("p5.48xlarge"))
        );
        assert_eq!(
            (
                od.gpu_name_raw.as_str(),
                od.gpu_count,
                od.price_unit.label()
            ),
            ("", None, "instance-hour".to_string())
        );
        let cny = dimension(
            "aws",
            &p,
            PriceClass::OnDemand,
            "S.T.R",
            "Hrs",
            &[("CNY", "29.41")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(cny.currency, "CNY");
        let both = dimension(
            "aws",
            &p,
            PriceClass::OnDemand,
            "S.T.R",
            "Hrs",
            &[("CNY", "1"), ("USD", "2")],
        )
        .unwrap()
        .unwrap();
        assert_eq!((both.currency.as_str(), both.price), ("USD", Some(2.0)));
        let reason = |r: Result<Option<RawOffer>, ParseReject>| r.unwrap_err().reason;
        assert_eq!(
            reason(dimension(
                "aws",
                &p,
                PriceClass::OnDemand,
                "x",
                "Hrs",
                &[("USD", "n/a")]
            )),
            "bad_price"
        );
        assert_eq!(
            reason(dimension(
                "aws",
                &p,
                PriceClass::OnDemand,
                "x",
                "Quantity",
                &[("USD", "1")]
            )),
            "unsupported_unit"
        );
        assert_eq!(
            reason(dimension("aws", &p, PriceClass::OnDemand, "x", "Hrs", &[])),
            "missing_price"
        );
        // A reservation's upfront fee is not an hourly price: skipped, not counted.
        assert!(dimension(
            "aws",
            &p,
            PriceClass::Reserved,
            "x",
            "Quantity",
            &[("USD", "0")]
        )
        .unwrap()
        .is_none());
    }

    fn parse(body: &str) -> Result<Parsed, String> {
        super::super::parse_page(&AwsOffer, "aws_offer", "", body)
    }

    const JSON: &str = r#"{"formatVersion":"v1.0","offerCode":"AmazonEC2","version":"1","publicationDate":"2024-10-01T00:00:00Z",
      "terms":{"OnDemand":{"GPU1":{"GPU1.JRTCKXETXF":{"offerTermCode":"JRTCKXETXF","sku":"GPU1","priceDimensions":{"GPU1.JRTCKXETXF.6YS6EN2CT7":{"rateCode":"GPU1.JRTCKXETXF.6YS6EN2CT7","unit":"Hrs","pricePerUnit":{"USD":"98.3200000000"}}},"termAttributes":{}}},
                           "CPU1":{"CPU1.JRTCKXETXF":{"priceDimensions":{"CPU1.JRTCKXETXF.6YS6EN2CT7":{"rateCode":"CPU1.JRTCKXETXF.6YS6EN2CT7","unit":"Hrs","pricePerUnit":{"USD":"0.096"}}}}}},
               "Reserved":{"GPU1":{"GPU1.4NA7Y494T4":{"priceDimensions":{"GPU1.4NA7Y494T4.6YS6EN2CT7":{"rateCode":"GPU1.4NA7Y494T4.6YS6EN2CT7","unit":"Hrs","pricePerUnit":{"USD":"57.6300000000"}}},"termAttributes":{"LeaseContractLength":"1yr","OfferingClass":"standard","PurchaseOption":"No Upfront"}},
                                   "GPU1.38NPMPTW36":{"priceDimensions":{"a":{"rateCode":"GPU1.38NPMPTW36.2TG2D8R56U","unit":"Quantity","pricePerUnit":{"USD":"250000"}},"b":{"rateCode":"GPU1.38NPMPTW36.6YS6EN2CT7","unit":"Hrs","pricePerUnit":{"USD":"28.5"}}},"termAttributes":{"PurchaseOption":"Partial Upfront"}}}}},
      "products":{"GPU1":{"sku":"GPU1","productFamily":"Compute Instance","attributes":{"servicecode":"AmazonEC2","location":"US East (N. Virginia)","instanceType":"p5.48xlarge","gpu":"8","gpuMemory":"640 GB","operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used","regionCode":"us-east-1","marketoption":"OnDemand"}},
                  "CPU1":{"sku":"CPU1","productFamily":"Compute Instance","attributes":{"instanceType":"m5.large","operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used","regionCode":"us-east-1"}}}}"#;

    #[test]
    fn json_terms_before_products_still_join() {
        let p = parse(JSON).unwrap();
        let rows = p.offers.rows();
        let got: Vec<(&str, PriceClass, Option<f64>)> = rows
            .iter()
            .map(|o| (o.offer_id.as_str(), o.price_class, o.price))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "GPU1.JRTCKXETXF.6YS6EN2CT7",
                    PriceClass::OnDemand,
                    Some(98.32)
                ),
                (
                    "GPU1.4NA7Y494T4.6YS6EN2CT7",
                    PriceClass::Reserved,
                    Some(57.63)
                ),
            ]
        );
        assert!(p
            .offers
            .iter()
            .all(|o| o.provider == "aws" && o.region.as_deref() == Some("us-east-1")));
        assert!(p.rejects.is_empty());
    }

    #[test]
    fn csv_with_preamble() {
        let csv = "\"FormatVersion\",\"v1.0\"\n\"Disclaimer\",\"x\"\n\"Publication Date\",\"2024-10-01T00:00:00Z\"\n\"Version\",\"1\"\n\"OfferCode\",\"AmazonEC2\"\n\
\"SKU\",\"OfferTermCode\",\"RateCode\",\"TermType\",\"PriceDescription\",\"Unit\",\"PricePerUnit\",\"Currency\",\"PurchaseOption\",\"Product Family\",\"Instance Type\",\"Tenancy\",\"Operating System\",\"CapacityStatus\",\"GPU\",\"Pre Installed S/W\",\"Region Code\"\n\
\"A\",\"JRTCKXETXF\",\"A.JRTCKXETXF.6YS6EN2CT7\",\"OnDemand\",\"d\",\"Hrs\",\"29.4100000000\",\"CNY\",,\"Compute Instance\",\"p3.2xlarge\",\"Shared\",\"Linux\",\"Used\",\"1\",\"NA\",\"cn-north-1\"\n\
\"B\",\"JRTCKXETXF\",\"B.JRTCKXETXF.6YS6EN2CT7\",\"OnDemand\",\"d\",\"Hrs\",\"1.0\",\"CNY\",,\"Compute Instance\",\"c5.large\",\"Shared\",\"Linux\",\"Used\",,\"NA\",\"cn-north-1\"\n\
\"A\",\"JRTCKXETXF\",\"A.JRTCKXETXF.X\",\"OnDemand\",\"d\",\"Hrs\",\"oops\",\"CNY\",,\"Compute Instance\",\"p3.2xlarge\",\"Shared\",\"Linux\",\"Used\",\"1\",\"NA\",\"cn-north-1\"\n";
        let p = parse(csv).unwrap();
        assert_eq!(p.offers.len(), 1);
        let o = &p.offers.row(0);
        assert_eq!(
            (o.currency.as_str(), o.price, o.region.as_deref()),
            ("CNY", Some(29.41), Some("cn-north-1"))
        );
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].reason, "bad_price");
    }

    const US: &str =
        "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json";
    const CN: &str =
        "https://pricing.cn-north-1.amazonaws.com.cn/offers/v1.0/cn/AmazonEC2/current/cn-north-1/index.csv";

    /// A region index in AWS's shape, with `regions` as given.
    fn index(regions: &str) -> String {
        format!(
            r#"{{"formatVersion":"v1.0","disclaimer":"This pricing list is for informational purposes only.","publicationDate":"2024-05-01T00:00:00Z","regions":{regions}}}"#
        )
    }

    /// One region entry as AWS writes it.
    fn region(code: &str, version_url: &str) -> String {
        format!(r#""{code}":{{"regionCode":"{code}","currentVersionUrl":"{version_url}"}}"#)
    }

    #[test]
    fn the_region_index_beside_a_current_offer_file() {
        let check = |url: &str, expected: Option<&str>| {
            let got = AwsOffer.version_index(url).map(|r| r.url);
            assert_eq!(got.as_deref(), expected, "{url}");
        };
        check(
            US,
            Some("https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/region_index.json"),
        );
        check(
            CN,
            Some("https://pricing.cn-north-1.amazonaws.com.cn/offers/v1.0/cn/AmazonEC2/current/region_index.json"),
        );
        check(
            "http://127.0.0.1:8080/p/current/eu-west-1/index.json",
            Some("http://127.0.0.1:8080/p/current/region_index.json"),
        );
        check("http://127.0.0.1:8080/aws/index.json", None);
        check(&format!("{US}?x=1"), None);
        check(&US.replace("/current/", "/20240501000000/"), None);
        check(&US.replace("us-east-1/index.json", "index.json"), None);
        check(&US.replace("index.json", "index.xml"), None);
        check("not a url", None);
    }

    #[test]
    fn the_region_index_names_the_version() {
        let v1 = "/offers/v1.0/aws/AmazonEC2/20240501000000/us-east-1/index.json";
        let cn1 = "/offers/v1.0/cn/AmazonEC2/20240501000000/cn-north-1/index.json";
        let both = index(&format!(
            "{{{},{}}}",
            region("us-east-1", v1),
            region("us-west-2", &v1.replace("us-east-1", "us-west-2"))
        ));
        let check = |url: &str, index: &str, expected: Result<(&str, &str), &str>| {
            let got = AwsOffer
                .versioned(url, index.as_bytes())
                .map(|(v, r)| (v, r.url))
                .map_err(|e| e.to_string());
            match (got, expected) {
                (Ok((v, u)), Ok((ev, eu))) => assert_eq!((v.as_str(), u.as_str()), (ev, eu)),
                (Err(e), Err(part)) => assert!(e.contains(part), "{url}: {e}"),
                (got, expected) => panic!("{url} {index}: {got:?}, expected {expected:?}"),
            }
        };
        let origin = "https://pricing.us-east-1.amazonaws.com";
        check(US, &both, Ok((v1, &format!("{origin}{v1}"))));
        let csv = format!("{origin}{}", v1.replace(".json", ".csv"));
        check(&US.replace(".json", ".csv"), &both, Ok((v1, &csv)));
        let cn = format!(
            "https://pricing.cn-north-1.amazonaws.com.cn{}",
            cn1.replace(".json", ".csv")
        );
        check(
            CN,
            &index(&format!("{{{}}}", region("cn-north-1", cn1))),
            Ok((cn1, &cn)),
        );
        check(
            "http://127.0.0.1:9/p/current/us-east-1/index.json",
            &both,
            Ok((v1, &format!("http://127.0.0.1:9{v1}"))),
        );
        let no_region = index(&format!("{{{}}}", region("us-west-2", v1)));
        check(US, &no_region, Err("names no region \"us-east-1\""));
        check(US, &index("{}"), Err("names no region"));
        check(
            US,
            &index(r#"{"us-east-1":{"regionCode":"us-east-1"}}"#),
            Err("no currentVersionUrl"),
        );
        for bad in [
            v1.replace("us-east-1", "us-west-2"),
            format!("//evil.example{v1}"),
            format!("https://evil.example{v1}"),
            v1.replace("/20240501000000/", "/../"),
            v1.replace("/20240501000000/", "//"),
            v1.replace("20240501000000", "2024?x"),
            v1.trim_start_matches('/').to_string(),
        ] {
            let bad_index = index(&format!("{{{}}}", region("us-east-1", &bad)));
            check(
                US,
                &bad_index,
                Err("is not a path to the us-east-1 offer file"),
            );
        }
        check(US, "<html>503</html>", Err("invalid JSON"));
        check(
            US,
            r#"{"formatVersion":"v1.0"}"#,
            Err("missing field `regions`"),
        );
        let savings_plan = r#"{"regions":[{"regionCode":"us-east-1","versionUrl":"/x"}]}"#;
        check(US, savings_plan, Err("invalid JSON"));
        check(
            "http://127.0.0.1:9/aws/index.json",
            &both,
            Err("is not a .../current/"),
        );
    }

    /// The payload read from a stream (a small buffer, so tokens straddle reads)
    /// gives what the slice gives: the same offers, rejects and errors.
    #[test]
    fn a_streamed_payload_parses_as_the_slice_does() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/feeds/samples/");
        let read = |f: &str| std::fs::read_to_string(format!("{samples}{f}")).unwrap();
        let ctx = ParseCtx {
            feed: "aws_offer",
            provider: "aws_offer",
        };
        let check = |body: &str| {
            let whole = super::super::parse_page(&AwsOffer, "aws_offer", "", body);
            let open = || -> std::io::Result<Box<dyn BufRead + '_>> {
                Ok(Box::new(std::io::BufReader::with_capacity(
                    7,
                    body.as_bytes(),
                )))
            };
            let streamed = AwsOffer
                .parse_stream("", &open, &ctx)
                .map_err(|e| e.to_string());
            // serde_json's reader may place an error one column later than its
            // slice does (it has consumed the peeked byte); the rest is the same.
            let text = |r: &Result<Parsed, String>| match r {
                Ok(p) => format!("{p:?}"),
                Err(e) => e.split(" column ").next().unwrap_or_default().to_string(),
            };
            let shown = &body[..body.len().min(60)];
            assert_eq!(text(&streamed), text(&whole), "{shown}");
            whole
        };
        for f in ["aws_offer.sample.json", "aws_offer_cn.sample.csv"] {
            let body = read(f);
            assert!(!check(&body).unwrap().offers.is_empty(), "{f}");
            let _ = check(&format!(" \n\t {body}"));
        }
        for body in [
            "",
            "   ",
            "{\"formatVersion\":\"v1.0\",\"terms\":{}}",
            "{\"products\": [1, 2]}",
            "{\"products\": {}} trailing",
            "SKU,Unit\nA,Hrs\n",
            "\"FormatVersion\",\"v1.0\"\n\"SKU\",\"RateCode\"\n",
        ] {
            assert!(check(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn malformed_payloads_say_what_broke() {
        for (body, expected) in [
            (
                "{\"formatVersion\":\"v1.0\",\"terms\":{}}",
                "no \"products\"",
            ),
            ("{\"products\": [1, 2]}", "invalid JSON"),
            ("{\"products\": {}} trailing", "invalid JSON"),
            ("SKU,Unit\nA,Hrs\n", "FormatVersion"),
            (
                "\"FormatVersion\",\"v1.0\"\n\"Disclaimer\",\"x\"\n",
                "no header row",
            ),
            (
                "\"FormatVersion\",\"v1.0\"\n\"SKU\",\"RateCode\"\n",
                "column \"TermType\"",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(expected), "{body:?}: {e}");
        }
    }
}
