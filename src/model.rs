//! The offer types that pass between feed adapters, normalisation and the store.
//!
//! Invariant: a `RawOffer` carries the price exactly as the provider published it
//! (amount, currency, scale, basis and period); conversion happens only in `normalise`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use crate::offers::Offers;

/// On-demand, spot (interruptible / preemptible / bid) or reserved (a term commitment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceClass {
    OnDemand,
    Spot,
    Reserved,
}

impl PriceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceClass::OnDemand => "on_demand",
            PriceClass::Spot => "spot",
            PriceClass::Reserved => "reserved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::OnDemand, Self::Spot, Self::Reserved]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Whether a published price is for one GPU or for the whole instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Gpu,
    Instance,
}

/// A short string kept inline (up to 24 bytes, no allocation): the text fields of a
/// `RawOffer` and a `PriceUnit`, which are ids, names, regions, codes and unit names.
pub type Text = compact_str::CompactString;

/// A published price unit: `[<scale>/]<basis>-<period>`, e.g. `gpu-hour`,
/// `cents/instance-hour`, `thousandths/gpu-hour`, `instance-month`.
/// Scale and period names are looked up in `tables/units.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriceUnit {
    pub scale: Text,
    pub basis: Basis,
    pub period: Text,
}

impl PriceUnit {
    pub fn new(scale: &str, basis: Basis, period: &str) -> Self {
        Self {
            scale: scale.into(),
            basis,
            period: period.into(),
        }
    }
    pub fn gpu_hour() -> Self {
        Self::new("unit", Basis::Gpu, "hour")
    }
    pub fn instance_hour() -> Self {
        Self::new("unit", Basis::Instance, "hour")
    }
    /// Parse `[<scale>/]<basis>-<period>`. Names are checked against the unit table later.
    pub fn parse(s: &str) -> Option<Self> {
        let (scale, rest) = match s.split_once('/') {
            Some((scale, rest)) => (scale, rest),
            None => ("unit", s),
        };
        let (basis, period) = rest.split_once('-')?;
        let basis = match basis {
            "gpu" => Basis::Gpu,
            "instance" => Basis::Instance,
            _ => return None,
        };
        if scale.is_empty() || period.is_empty() {
            return None;
        }
        Some(Self::new(scale, basis, period))
    }
    /// The unit as published, e.g. `cents/instance-hour`.
    pub fn label(&self) -> String {
        let basis = match self.basis {
            Basis::Gpu => "gpu",
            Basis::Instance => "instance",
        };
        if self.scale == "unit" {
            format!("{basis}-{}", self.period)
        } else {
            format!("{}/{basis}-{}", self.scale, self.period)
        }
    }
}

/// One offer as a feed adapter read it, before any conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOffer {
    pub provider: Text,
    pub offer_id: Text,
    pub region: Option<Text>,
    /// Country when the source states it directly (ISO 3166-1 alpha-2).
    pub country: Option<Text>,
    pub gpu_name_raw: Text,
    /// GPU memory in GB when the source reports it (used to narrow a family name).
    pub gpu_memory_gb: Option<f64>,
    pub instance_type: Option<Text>,
    /// GPUs in the offer; `None` means "look the instance type up in the catalogue".
    pub gpu_count: Option<f64>,
    pub price_class: PriceClass,
    /// The amount as published, in `price_unit` of `currency`. `None` when missing.
    pub price: Option<f64>,
    pub currency: Text,
    pub price_unit: PriceUnit,
    /// GPUs the source says are free to rent now, when it says.
    pub gpus_available: Option<f64>,
    /// Overrides the run's observation time (backfill of dated snapshots).
    pub observed_at: Option<DateTime<Utc>>,
    /// For a peer's group row (an aggregate, e.g. a daily median over offers): the
    /// offers it summarises. `None` for a single offer.
    pub group_offers: Option<f64>,
}

impl RawOffer {
    /// A blank offer to fill in; adapters set the fields they know.
    pub fn new(provider: &str, offer_id: impl Into<Text>, gpu_name_raw: impl Into<Text>) -> Self {
        Self {
            provider: provider.into(),
            offer_id: offer_id.into(),
            region: None,
            country: None,
            gpu_name_raw: gpu_name_raw.into(),
            gpu_memory_gb: None,
            instance_type: None,
            gpu_count: None,
            price_class: PriceClass::OnDemand,
            price: None,
            currency: Text::const_new("USD"),
            price_unit: PriceUnit::gpu_hour(),
            gpus_available: None,
            observed_at: None,
            group_offers: None,
        }
    }
}

/// A record the adapter could not turn into an offer at all (a bad field).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseReject {
    pub offer_id: String,
    pub gpu_name_raw: String,
    pub reason: String,
    pub detail: String,
}

/// A euro reference rate: `units_per_eur` of `currency` buy one euro on `date`.
#[derive(Debug, Clone, PartialEq)]
pub struct FxRate {
    pub date: NaiveDate,
    pub currency: String,
    pub units_per_eur: f64,
}

/// What an adapter read from one payload.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    pub offers: Offers,
    pub rejects: Vec<ParseReject>,
    pub fx: Vec<FxRate>,
}

impl Parsed {
    /// Append `other`; into an empty `Parsed` its vectors are moved, not copied.
    pub fn extend(&mut self, other: Parsed) {
        fn append<T>(to: &mut Vec<T>, mut from: Vec<T>) {
            if to.is_empty() {
                std::mem::swap(to, &mut from);
            } else {
                to.append(&mut from);
            }
        }
        self.offers.append(other.offers);
        append(&mut self.rejects, other.rejects);
        append(&mut self.fx, other.fx);
    }
}

/// One fetched payload and the label of the request that produced it (for a live
/// fetch, the adapter's request context; for a recorded file, its stem).
///
/// The body is in memory (`body`), or, for a format whose adapter reads streams
/// (AWS offer files, hundreds of MB), spooled to a gzip file (`spool`, `body` then
/// empty): a live fetch writes it to the run's spool folder in the store's `.tmp/`,
/// and a 304 names the kept blob itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub label: String,
    pub body: Vec<u8>,
    pub spool: Option<Spooled>,
}

impl Page {
    /// A page whose body is in memory.
    pub fn new(label: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            label: label.into(),
            body,
            spool: None,
        }
    }
}

/// A page body kept in a gzip file: its path, and the SHA-256 (lower-case hex) and
/// length of the plain body, so the store can adopt the file as the blob named by
/// that hash without reading it; and, for a recorded payload, the plain file it was
/// spooled from (`origin`), which is parsed instead of the gzip file while it is
/// unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Spooled {
    pub path: std::path::PathBuf,
    pub sha256: String,
    pub len: u64,
    pub origin: Option<Origin>,
}

/// The recorded file a spooled body was read from, its modification time then, and
/// the CRC-32 of the bytes spooled.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub path: std::path::PathBuf,
    pub modified: std::time::SystemTime,
    /// CRC-32 of the bytes spooled, which a parse of the file must read again.
    pub crc32: u32,
}

impl Origin {
    /// True while the file still has the modification time and length (`len`, the
    /// spooled body's) it had when it was spooled, so reading it gives the spooled
    /// bytes (a rewrite sets a new modification time).
    pub fn unchanged(&self, len: u64) -> bool {
        std::fs::metadata(&self.path)
            .is_ok_and(|m| m.len() == len && m.modified().is_ok_and(|t| t == self.modified))
    }
}

/// What a server said about a payload's version (`ETag`, `Last-Modified`), kept with
/// the payload so the next fetch can ask whether anything changed
/// (`If-None-Match`, `If-Modified-Since`); and the version a provider's version index
/// named for it (AWS's `currentVersionUrl`), which the next fetch compares with the
/// index's before downloading anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub version: Option<String>,
}

impl Validators {
    /// True when nothing names the payload's version, so the next fetch has nothing
    /// to ask or compare.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none() && self.version.is_none()
    }
}
