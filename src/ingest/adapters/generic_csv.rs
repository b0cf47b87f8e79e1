//! `generic_csv`: a declarative feed for any CSV price list.
//!
//! The feed file names the currency, the published unit, the price class and the
//! CSV columns, so a provider with a CSV price list needs a feed file, not code:
//!
//! ```toml
//! format = "generic_csv"
//! url = "samples/prices.csv"
//! provider = "examplecloud"
//! currency = "CNY"
//! price_unit = "instance-hour"   # gpu-hour, instance-hour, gpu-month, instance-month, ...
//! price_class = "on_demand"      # on_demand, spot, reserved
//! country = "CN"                 # optional: when every row is in one country
//! [columns]
//! gpu = "gpu"                    # optional when instance_type names a catalogued type
//! gpu_count = "gpus"             # optional: else the instance catalogue's count
//! price = "price"
//! region = "region"              # optional, also: country, offer_id, memory_gb, instance_type
//! ```
//!
//! For a peer's aggregated observations (one row per provider, model and day, e.g.
//! gpu-pricing-tracker-2026), `[columns]` may also name `date` (the row's observation
//! day, `YYYY-MM-DD` or RFC 3339), `provider` (mapped through tables/providers.toml),
//! `price_class` (`on_demand`, `spot`, `reserved`; overrides the key `price_class`)
//! and `offers` (the offers a group row summarises, stored as `group_offers`; `price`
//! is then the group's median). A `country` cell that is not an ISO 3166-1 alpha-2
//! code (e.g. `global`) states no country.
//!
//! A list whose rows differ in currency or unit (e.g. cn-rental-quotes: CNY per
//! card-hour beside USD per instance-hour) names them as `[columns]` `currency` and
//! `price_unit`; the keys of the same name are then optional, the value of a row
//! whose cell is empty. A cell that is not an ISO 4217 code or a known unit rejects
//! its row (`bad_field`), naming the line and column. A list that writes the
//! instance type into the GPU cell (`NVIDIA A10G (g5.12xlarge)`) sets
//! `instance_in_gpu = true`: a last parenthesised part that holds a dot and no space
//! is the row's instance type (looked up in tables/instances.csv) and the rest its GPU
//! name; `RTX 5090 (32GB)` is left whole.
//!
//! A list without an offer id column but with repeated snapshots (one row per day and
//! group, or per date and instance) names the columns that identify an offer:
//! `offer_key = ["provider", "gpu_model", "region"]`. The row's id is their cells
//! joined with `|`, so the same offer keeps its id from one date to the next and
//! counts once per period (METHODOLOGY.md section 2); without it, a row's id is its
//! line (`line42`), new in every snapshot.

use serde::Deserialize;

use super::{adapter_keys, Adapter, AdapterError, Header, Page, ParseCtx};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    price_unit: Option<String>,
    price_class: String,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    instance_in_gpu: bool,
    columns: Fields,
}

/// Where each field of an offer is: a CSV column name here, a JSON pointer in
/// `generic_json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    #[serde(default)]
    pub(super) gpu: Option<String>,
    #[serde(default)]
    pub(super) gpu_count: Option<String>,
    pub(super) price: String,
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) country: Option<String>,
    #[serde(default)]
    pub(super) offer_id: Option<String>,
    #[serde(default)]
    pub(super) memory_gb: Option<String>,
    #[serde(default)]
    pub(super) instance_type: Option<String>,
    #[serde(default)]
    pub(super) date: Option<String>,
    #[serde(default)]
    pub(super) provider: Option<String>,
    #[serde(default)]
    pub(super) price_class: Option<String>,
    #[serde(default)]
    pub(super) offers: Option<String>,
    #[serde(default)]
    pub(super) currency: Option<String>,
    #[serde(default)]
    pub(super) price_unit: Option<String>,
    /// Columns whose cells, joined with `|`, name an offer across snapshots.
    #[serde(default)]
    pub(super) offer_key: Option<Vec<String>>,
}

impl Fields {
    /// The `[columns]` keys only generic_csv reads, for adapters that must refuse them.
    pub(super) fn csv_only_key(&self) -> Option<&'static str> {
        [
            ("date", &self.date),
            ("provider", &self.provider),
            ("price_class", &self.price_class),
            ("offers", &self.offers),
            ("currency", &self.currency),
            ("price_unit", &self.price_unit),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .or(self.offer_key.as_ref().map(|_| "offer_key"))
    }
}

/// A country cell: kept only when it has the shape of an ISO 3166-1 alpha-2 code.
fn iso_country(s: String) -> Option<String> {
    (s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase())).then_some(s)
}

/// A date cell: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
fn row_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, AdapterError> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|_| AdapterError::Value {
            value: format!("{s:?}"),
            expected: "a date (YYYY-MM-DD) or an RFC 3339 time",
        })
}

pub struct GenericCsv {
    /// The feed's currency and unit: those of a row whose column is absent or empty.
    currency: Option<String>,
    unit: Option<PriceUnit>,
    class: PriceClass,
    country: Option<String>,
    instance_in_gpu: bool,
    columns: Fields,
}

/// A GPU cell split into the GPU name and the instance type written after it in
/// parentheses (`NVIDIA A10G (g5.12xlarge)`); a cell whose last parenthesised part
/// has no dot or has a space (`RTX 5090 (32GB)`) is all name.
fn split_instance(cell: &str) -> (&str, Option<&str>) {
    let split = cell.strip_suffix(')').and_then(|s| s.rsplit_once('('));
    match split {
        Some((name, inner)) if inner.contains('.') && !inner.contains(char::is_whitespace) => {
            (name.trim_end(), Some(inner))
        }
        _ => (cell, None),
    }
}

/// Check an ISO 4217 code's shape.
pub fn check_currency(c: &str) -> Result<(), AdapterError> {
    if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(AdapterError::key(
            "currency",
            format!("{c:?} is not an ISO 4217 code such as USD or CNY"),
        ))
    }
}

/// Parse a published unit such as `cents/instance-hour`, checked against the unit table.
pub fn known_unit(s: &str) -> Result<PriceUnit, AdapterError> {
    let t = crate::tables::Tables::embedded();
    PriceUnit::parse(s)
        .filter(|u| t.period_hours(&u.period).is_some() && t.scale(&u.scale).is_some())
        .ok_or_else(|| {
            AdapterError::key(
                "price_unit",
                format!("{s:?} is not a known unit such as gpu-hour or instance-month"),
            )
        })
}

/// Parse a declared price class.
pub fn known_class(s: &str) -> Result<PriceClass, AdapterError> {
    PriceClass::parse(s).ok_or_else(|| {
        AdapterError::key(
            "price_class",
            format!("{s:?} must be on_demand, spot or reserved"),
        )
    })
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    let currency = per_row_default("currency", k.currency, &k.columns.currency)?;
    if let Some(c) = &currency {
        check_currency(c)?;
    }
    let unit = per_row_default("price_unit", k.price_unit, &k.columns.price_unit)?;
    let unit = unit.as_deref().map(known_unit).transpose()?;
    if k.columns.gpu.is_none() && k.columns.instance_type.is_none() {
        return Err(AdapterError::Keys(
            "[columns] needs `gpu` or `instance_type` (looked up in tables/instances.csv)".into(),
        ));
    }
    let class = known_class(&k.price_class)?;
    if k.columns.offer_key.as_ref().is_some_and(Vec::is_empty) {
        return Err(AdapterError::key("columns.offer_key", "names no column"));
    }
    Ok(Box::new(GenericCsv {
        currency,
        unit,
        class,
        country: k.country,
        instance_in_gpu: k.instance_in_gpu,
        columns: k.columns,
    }))
}

/// A key that a `[columns]` entry of the same name may stand in for: required
/// unless the column is named, when it is the value of a row whose cell is empty.
fn per_row_default(
    key: &str,
    value: Option<String>,
    column: &Option<String>,
) -> Result<Option<String>, AdapterError> {
    if value.is_none() && column.is_none() {
        return Err(AdapterError::Keys(format!(
            "missing key `{key}` (or a `[columns]` `{key}` naming a column that holds it per row)"
        )));
    }
    Ok(value)
}

/// The optional per-row columns of group rows and mixed lists.
struct GroupCols {
    date: Option<usize>,
    provider: Option<usize>,
    class: Option<usize>,
    offers: Option<usize>,
    currency: Option<usize>,
    unit: Option<usize>,
}

impl GroupCols {
    /// The per-row field (`currency` or `price_unit`) a row leaves empty where the feed
    /// gives no default.
    fn unstated(&self, rec: &csv::StringRecord, feed: &GenericCsv) -> Option<&'static str> {
        let empty = |i: Option<usize>| {
            i.and_then(|i| rec.get(i))
                .is_none_or(|s| s.trim().is_empty())
        };
        if feed.currency.is_none() && empty(self.currency) {
            return Some("currency");
        }
        (feed.unit.is_none() && empty(self.unit)).then_some("price_unit")
    }

    /// Fill the offer from the row's date, provider, class, group size, currency and
    /// unit cells.
    fn apply(&self, rec: &csv::StringRecord, o: &mut RawOffer) -> Result<(), AdapterError> {
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).map(str::trim);
        if let Some(d) = get(self.date) {
            o.observed_at = Some(row_time(d).map_err(|e| e.at("column date"))?);
        }
        if let Some(p) = get(self.provider).filter(|p| !p.is_empty()) {
            o.provider = crate::tables::Tables::embedded().provider_id(p).into();
        }
        if let Some(c) = get(self.class) {
            o.price_class = known_class(c).map_err(|e| e.at("column price_class"))?;
        }
        if let Some(c) = get(self.currency).filter(|c| !c.is_empty()) {
            check_currency(c).map_err(|e| e.at("column currency"))?;
            o.currency = c.into();
        }
        if let Some(u) = get(self.unit).filter(|u| !u.is_empty()) {
            o.price_unit = known_unit(u).map_err(|e| e.at("column price_unit"))?;
        }
        if let Some(n) = get(self.offers).filter(|n| !n.is_empty()) {
            let n: f64 = n.parse().ok().filter(|n: &f64| *n >= 1.0).ok_or_else(|| {
                AdapterError::Value {
                    value: format!("{n:?}"),
                    expected: "a count of offers",
                }
                .at("column offers")
            })?;
            o.group_offers = Some(n);
        }
        Ok(())
    }
}

/// The header positions of the configured columns (`[columns]` of the feed file).
struct Cols {
    gpu: Option<usize>,
    count: Option<usize>,
    price: usize,
    region: Option<usize>,
    country: Option<usize>,
    offer_id: Option<usize>,
    /// The `offer_key` columns (empty without the key).
    offer_key: Vec<usize>,
    memory: Option<usize>,
    instance: Option<usize>,
    group: GroupCols,
}

impl Cols {
    fn of(headers: &csv::StringRecord, c: &Fields) -> Result<Self, AdapterError> {
        let h = Header::of(headers);
        let col = |name: &Option<String>, key: &str| -> Result<Option<usize>, AdapterError> {
            let problem = format!("(key `columns.{key}`) is not in the CSV header");
            name.as_deref().map(|n| h.need(n, &problem)).transpose()
        };
        Ok(Self {
            gpu: col(&c.gpu, "gpu")?,
            count: col(&c.gpu_count, "gpu_count")?,
            price: col(&Some(c.price.clone()), "price")?.unwrap_or_default(),
            region: col(&c.region, "region")?,
            country: col(&c.country, "country")?,
            offer_id: col(&c.offer_id, "offer_id")?,
            offer_key: c
                .offer_key
                .iter()
                .flatten()
                .map(|n| h.need(n, "(key `columns.offer_key`) is not in the CSV header"))
                .collect::<Result<_, _>>()?,
            memory: col(&c.memory_gb, "memory_gb")?,
            instance: col(&c.instance_type, "instance_type")?,
            group: GroupCols {
                date: col(&c.date, "date")?,
                provider: col(&c.provider, "provider")?,
                class: col(&c.price_class, "price_class")?,
                offers: col(&c.offers, "offers")?,
                currency: col(&c.currency, "currency")?,
                unit: col(&c.price_unit, "price_unit")?,
            },
        })
    }
}

impl Cols {
    /// A row's offer id: its id cell; else its `offer_key` cells joined with `|`;
    /// else its line (`line42`).
    fn offer_id(&self, rec: &csv::StringRecord, line: usize) -> String {
        let get = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
        if let Some(id) = self.offer_id.map(get).filter(|s| !s.is_empty()) {
            return id.to_string();
        }
        if self.offer_key.is_empty() {
            return format!("line{line}");
        }
        let cells: Vec<&str> = self.offer_key.iter().map(|&i| get(i)).collect();
        cells.join("|")
    }
}

impl GenericCsv {
    /// One row as an offer, or the reject saying which field was wrong.
    fn offer(
        &self,
        rec: &csv::StringRecord,
        k: &Cols,
        line: usize,
        ctx: &ParseCtx,
    ) -> Result<RawOffer, ParseReject> {
        let c = &self.columns;
        let get = |idx: usize| rec.get(idx).map(str::trim).unwrap_or("");
        let opt = |idx: Option<usize>| idx.map(get).filter(|s| !s.is_empty()).map(str::to_string);
        let cell = k.gpu.map(get).unwrap_or("");
        let (name, instance) = match self.instance_in_gpu {
            true => split_instance(cell),
            false => (cell, None),
        };
        let name = name.to_string();
        let id = k.offer_id(rec, line);
        let num = |idx: Option<usize>, field: &str| -> Result<Option<f64>, AdapterError> {
            let Some(s) = idx.map(get).filter(|s| !s.is_empty()) else {
                return Ok(None);
            };
            s.parse::<f64>().map(Some).map_err(|_| {
                AdapterError::Value {
                    value: format!("{s:?}"),
                    expected: "a number",
                }
                .at(format!("line {line}: column {field:?}"))
            })
        };
        let reject = |offer_id: String, gpu_name_raw: String, detail: String| ParseReject {
            offer_id,
            gpu_name_raw,
            reason: "bad_field".into(),
            detail,
        };
        let (n, p) = match (
            num(k.count, c.gpu_count.as_deref().unwrap_or("")),
            num(Some(k.price), &c.price),
        ) {
            (Ok(n), Ok(p)) => (n, p),
            (Err(e), _) | (_, Err(e)) => return Err(reject(id, name, e.to_string())),
        };
        let mut o = RawOffer::new(ctx.provider, id, name);
        o.region = opt(k.region).map(Into::into);
        o.country = (opt(k.country)
            .and_then(iso_country)
            .or_else(|| self.country.clone()))
        .map(Into::into);
        o.gpu_count = n;
        o.gpu_memory_gb = k.memory.and_then(|m| get(m).parse().ok());
        o.instance_type = opt(k.instance)
            .or(instance.map(str::to_string))
            .map(Into::into);
        o.price_class = self.class;
        o.price = p;
        if let Some(c) = &self.currency {
            o.currency = c.clone().into();
        }
        if let Some(u) = &self.unit {
            o.price_unit = u.clone();
        }
        if let Some(missing) = k.group.unstated(rec, self) {
            let detail = format!(
                "line {line}: column {missing}: empty, and the feed has no key `{missing}`"
            );
            return Err(reject(o.offer_id.into(), o.gpu_name_raw.into(), detail));
        }
        match k.group.apply(rec, &mut o) {
            Ok(()) => Ok(o),
            Err(detail) => Err(reject(
                o.offer_id.into(),
                o.gpu_name_raw.into(),
                format!("line {line}: {detail}"),
            )),
        }
    }
}

impl Adapter for GenericCsv {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(page.body.as_slice());
        let headers = rdr
            .headers()
            .map_err(|error| AdapterError::CsvHeader { error })?
            .clone();
        let cols = Cols::of(&headers, &self.columns)?;
        let mut out = Parsed::default();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|error| AdapterError::CsvLine { line, error })?;
            match self.offer(&rec, &cols, line, ctx) {
                Ok(o) => out.offers.push(o),
                Err(r) => out.rejects.push(r),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FeedError;
    use crate::ingest::feed::{parse_feed, Feed};

    /// A generic_csv feed of provider `t` with `keys` (its other keys and `[columns]`).
    fn feed(keys: &str) -> Result<Feed, FeedError> {
        let text = format!("format = 'generic_csv'\nurl = 'x.csv'\nprovider = 't'\n{keys}");
        parse_feed(std::path::Path::new("/feeds/t.toml"), &text)
    }

    /// `csv` read by the feed of `keys`.
    fn parse_with(keys: &str, csv: &str) -> Result<Parsed, String> {
        let f = feed(keys).unwrap();
        super::super::parse_page(f.adapter.as_ref(), "t", "", csv)
    }

    fn parse(csv: &str) -> Parsed {
        let keys = "currency = 'USD'\nprice_unit = 'gpu-hour'\nprice_class = 'on_demand'\n\
                    [columns]\ndate = 'date'\nprovider = 'provider'\ngpu = 'gpu_model'\n\
                    country = 'region'\nprice_class = 'rental_type'\n\
                    price = 'price_median_usd'\noffers = 'n_offers'\n";
        parse_with(keys, csv).unwrap()
    }

    /// (provider, day, country, class, price, group offers) of a stored group row.
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, PriceClass, f64, f64);

    /// One group row → its stored fields, or the reject detail.
    fn check(row: &str, expected: Result<Row, &str>) {
        let p = parse(&format!(
            "date,provider,gpu_model,region,rental_type,price_median_usd,n_offers\n{row}\n"
        ));
        match (p.offers.rows().first(), p.rejects.first(), expected) {
            (Some(o), None, Ok((prov, day, country, class, price, n))) => {
                let got = (
                    o.provider.as_str(),
                    o.observed_at.unwrap().date_naive().to_string(),
                    o.country.as_deref(),
                    o.price_class,
                    o.price.unwrap(),
                    o.group_offers.unwrap(),
                );
                assert_eq!(
                    got,
                    (prov, day.to_string(), country, class, price, n),
                    "{row}"
                );
            }
            (None, Some(r), Err(want)) => assert!(r.detail.contains(want), "{row}: {}", r.detail),
            (o, r, e) => panic!("{row}: got {o:?} / {r:?}, expected {e:?}"),
        }
    }

    #[test]
    fn group_rows() {
        use PriceClass::*;
        check(
            "2026-05-11,vast.ai,RTX_4090,CN,on_demand,0.36,12",
            Ok(("vastai", "2026-05-11", Some("CN"), OnDemand, 0.36, 12.0)),
        );
        check(
            "2026-05-11,Massed Compute,H100_SXM,global,spot,1.9,1",
            Ok(("massed_compute", "2026-05-11", None, Spot, 1.9, 1.0)),
        );
        check(
            "2026-05-11,oracle,H100_SXM,us,on_demand,10,3",
            Ok(("oci", "2026-05-11", None, OnDemand, 10.0, 3.0)),
        );
        check(
            "11/05/2026,vast.ai,RTX_4090,CN,on_demand,0.36,12",
            Err("column date"),
        );
        check(
            "2026-05-11,vast.ai,RTX_4090,CN,hourly,0.36,12",
            Err("column price_class"),
        );
        check(
            "2026-05-11,vast.ai,RTX_4090,CN,spot,0.36,0",
            Err("column offers"),
        );
    }

    /// Parse `csv` with a feed whose `[columns]` name currency, unit and the GPU cell
    /// (with its instance type); `keys` adds feed keys (defaults, `instance_in_gpu`).
    fn parse_mixed(keys: &str, csv: &str) -> Parsed {
        let keys = format!(
            "price_class = 'on_demand'\n{keys}\n[columns]\ngpu = 'gpu'\nprice = 'price'\n\
             currency = 'currency'\nprice_unit = 'unit'\n"
        );
        parse_with(&keys, csv).unwrap()
    }

    /// (GPU name, instance type, currency, unit) of a stored row.
    type Mixed<'a> = (&'a str, Option<&'a str>, &'a str, &'a str);

    /// One row of `gpu,price,currency,unit` → its stored fields, or the reject detail.
    fn check_mixed(keys: &str, row: &str, expected: Result<Mixed, &str>) {
        let p = parse_mixed(keys, &format!("gpu,price,currency,unit\n{row}\n"));
        match (p.offers.rows().first(), p.rejects.first(), expected) {
            (Some(o), None, Ok((name, instance, currency, unit))) => {
                let got = (
                    o.gpu_name_raw.as_str(),
                    o.instance_type.as_deref(),
                    o.currency.as_str(),
                    Some(o.price_unit.clone()),
                );
                let want = (name, instance, currency, PriceUnit::parse(unit));
                assert_eq!(got, want, "{row}");
            }
            (None, Some(r), Err(want)) => {
                assert_eq!(r.reason, "bad_field", "{row}");
                assert!(r.detail.contains(want), "{row}: {}", r.detail);
            }
            (o, r, e) => panic!("{row}: got {o:?} / {r:?}, expected {e:?}"),
        }
    }

    #[test]
    fn rows_of_mixed_currency_unit_and_instance() {
        let split = "instance_in_gpu = true";
        check_mixed(
            split,
            "NVIDIA A10G (g5.12xlarge),5.672,USD,instance-hour",
            Ok(("NVIDIA A10G", Some("g5.12xlarge"), "USD", "instance-hour")),
        );
        check_mixed(
            split,
            "H20,7.5,CNY,gpu-hour",
            Ok(("H20", None, "CNY", "gpu-hour")),
        );
        // A size in parentheses is part of the name, not an instance type.
        check_mixed(
            split,
            "RTX 5090 (32GB),3.03,CNY,gpu-hour",
            Ok(("RTX 5090 (32GB)", None, "CNY", "gpu-hour")),
        );
        // Without the key the cell is all name.
        check_mixed(
            "",
            "NVIDIA A10G (g5.12xlarge),5.672,USD,instance-hour",
            Ok(("NVIDIA A10G (g5.12xlarge)", None, "USD", "instance-hour")),
        );
        // An empty cell takes the feed's key; without one the row is rejected.
        check_mixed(
            "currency = 'CNY'\nprice_unit = 'instance-month'",
            "A800,6.23,,",
            Ok(("A800", None, "CNY", "instance-month")),
        );
        check_mixed(
            "",
            "A800,6.23,,gpu-hour",
            Err("line 2: column currency: empty"),
        );
        check_mixed(
            "",
            "A800,6.23,CNY,",
            Err("line 2: column price_unit: empty"),
        );
        check_mixed("", "A800,6.23,yuan,gpu-hour", Err("column currency"));
        check_mixed("", "A800,6.23,CNY,per-card", Err("column price_unit"));
    }

    #[test]
    fn offer_key_names_an_offer_across_snapshots() {
        let keys = |key: &str| {
            format!(
                "currency = 'USD'\nprice_unit = 'gpu-hour'\nprice_class = 'on_demand'\n\
                 [columns]\ndate = 'date'\ngpu = 'gpu'\ncountry = 'region'\nprice = 'price'\n{key}"
            )
        };
        let csv = "date,gpu,region,price\n2026-05-11,RTX_4090,CN,0.36\n\
                   2026-05-11,RTX_4090,US,0.50\n2026-05-12,RTX_4090,CN,0.37\n";
        let ids = |key: &str| -> Vec<String> {
            let p = parse_with(&keys(key), csv).unwrap();
            p.offers.iter().map(|o| o.offer_id.to_string()).collect()
        };
        assert_eq!(
            ids("offer_key = ['gpu', 'region']"),
            ["RTX_4090|CN", "RTX_4090|US", "RTX_4090|CN"]
        );
        assert_eq!(ids(""), ["line2", "line3", "line4"]);
        let e = feed(&keys("offer_key = []")).err().unwrap().to_string();
        assert!(
            e.contains("offer_key") && e.contains("names no column"),
            "{e}"
        );
        let e = parse_with(&keys("offer_key = ['gpu', 'host']"), csv).unwrap_err();
        assert!(e.contains("host") && e.contains("offer_key"), "{e}");
    }

    #[test]
    fn currency_and_unit_need_a_key_or_a_column() {
        let feed = |keys: &str| {
            feed(&format!(
                "price_class = 'on_demand'\n{keys}\n[columns]\ngpu = 'g'\nprice = 'p'\n"
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        assert!(feed("currency = 'USD'\nprice_unit = 'gpu-hour'").is_ok());
        let e = feed("price_unit = 'gpu-hour'").unwrap_err();
        assert!(e.contains("missing key `currency`"), "{e}");
        let e = feed("currency = 'USD'").unwrap_err();
        assert!(e.contains("missing key `price_unit`"), "{e}");
    }

    #[test]
    fn generic_json_refuses_csv_only_columns() {
        for key in ["date", "currency", "offer_key"] {
            let value = if key == "offer_key" { "['/a']" } else { "'/d'" };
            crate::ingest::feed::check_feed_keys(
                "generic_json",
                "x.json",
                &format!("currency = 'USD'\nprice_unit = 'gpu-hour'\nprice_class = 'spot'\n[pointers]\ngpu = '/g'\nprice = '/p'\n{key} = {value}"),
                Some(&format!("pointers.{key}")),
            );
        }
    }
}
