//! `generic_json`: a declarative feed for any JSON price list, addressed with
//! RFC 6901 JSON pointers.
//!
//! Like `generic_csv`, the feed file names the currency, the published unit and the
//! price class, and says where the offers and their fields are, so a provider with a
//! JSON price list needs a feed file, not code:
//!
//! ```toml
//! format = "generic_json"
//! url = "samples/generic_json.sample.json"
//! provider = "examplecloud"
//! currency = "USD"
//! price_unit = "instance-hour"   # gpu-hour, instance-hour, cents/instance-hour, ...
//! price_class = "on_demand"      # on_demand, spot, reserved
//! country = "US"                 # optional: when every offer is in one country
//! offers = "/result/items"       # pointer to the offers; "" is the document root
//! [pointers]                     # relative to each offer
//! gpu = "/gpu/model"             # optional when instance_type names a catalogued type
//! gpu_count = "/gpu/count"       # optional: else the instance catalogue's count
//! price = "/pricing/hourly"
//! region = "/location/region"    # optional, also: country, offer_id, memory_gb, instance_type
//! ```
//!
//! `offers` may point at an array (offer ids default to `#<index>`) or at an object
//! whose values are the offers (ids default to the key, e.g. Lambda-style maps).
//! Numbers may be JSON numbers or strings (`"2.50"`); `null`, an absent field or an
//! empty string is missing. A value that is not a number where one is needed makes
//! that offer a `bad_field` reject; an `offers` pointer that does not resolve to an
//! array or object makes the payload malformed. Prices pass through as published.

use serde::Deserialize;
use serde_json::Value;

use super::generic_csv::{check_currency, known_class, known_unit, Fields};
use super::{adapter_keys, json, Adapter, AdapterError, Page, ParseCtx};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    currency: String,
    price_unit: String,
    price_class: String,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    offers: String,
    pointers: Fields,
}

pub struct GenericJson {
    currency: String,
    unit: PriceUnit,
    class: PriceClass,
    country: Option<String>,
    offers: String,
    pointers: Fields,
}

/// A JSON pointer must be empty or start with `/` (RFC 6901).
fn check_pointer(p: &str, key: &str) -> Result<(), AdapterError> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(AdapterError::key(
            key,
            format!("{p:?} is not a JSON pointer (RFC 6901: \"\" or starting with \"/\")"),
        ))
    }
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    check_currency(&k.currency)?;
    let unit = known_unit(&k.price_unit)?;
    let class = known_class(&k.price_class)?;
    check_pointer(&k.offers, "offers")?;
    let p = &k.pointers;
    check_pointer(&p.price, "pointers.price")?;
    for (name, ptr) in [
        ("gpu", &p.gpu),
        ("gpu_count", &p.gpu_count),
        ("region", &p.region),
        ("country", &p.country),
        ("offer_id", &p.offer_id),
        ("memory_gb", &p.memory_gb),
        ("instance_type", &p.instance_type),
    ] {
        if let Some(ptr) = ptr {
            check_pointer(ptr, &format!("pointers.{name}"))?;
        }
    }
    if let Some(k) = p.csv_only_key() {
        return Err(AdapterError::key(
            format!("pointers.{k}"),
            "is read by generic_csv only (group rows, mixed lists, offer keys)",
        ));
    }
    if p.gpu.is_none() && p.instance_type.is_none() {
        return Err(AdapterError::Keys(
            "[pointers] needs `gpu` or `instance_type` (looked up in tables/instances.csv)".into(),
        ));
    }
    Ok(Box::new(GenericJson {
        currency: k.currency,
        unit,
        class,
        country: k.country,
        offers: k.offers,
        pointers: k.pointers,
    }))
}

/// A JSON value read as a number: a number, or a string holding one. `Ok(None)` for
/// null, an empty string or an absent value; `Err` for anything else.
pub fn number(v: Option<&Value>) -> Result<Option<f64>, AdapterError> {
    let not = |value: String, expected| AdapterError::Value { value, expected };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| not(n.to_string(), "a finite number")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| not(format!("{s:?}"), "a number")),
        Some(other) => Err(not(other.to_string(), "a number")),
    }
}

/// A JSON value read as text: strings as they are, numbers and booleans printed;
/// `None` for null, empty strings, arrays and objects.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Adapter for GenericJson {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let doc: Value = json(&page.body)?;
        let list: Vec<(String, &Value)> = match doc.pointer(&self.offers) {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("#{i}"), v))
                .collect(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Some(other) => {
                return Err(AdapterError::key(
                    "offers",
                    format!(
                        "{:?} points at a {} value, not an array or object of offers",
                        self.offers,
                        kind(other)
                    ),
                ))
            }
            None => {
                return Err(AdapterError::key(
                    "offers",
                    format!("{:?} does not resolve in the payload", self.offers),
                ))
            }
        };
        let p = &self.pointers;
        let mut out = Parsed::default();
        for (default_id, offer) in list {
            let get = |ptr: &Option<String>| ptr.as_deref().and_then(|ptr| offer.pointer(ptr));
            let id = text(get(&p.offer_id)).unwrap_or(default_id);
            let name = text(get(&p.gpu)).unwrap_or_default();
            let field = |key: &str, ptr: &Option<String>| -> Result<Option<f64>, AdapterError> {
                number(get(ptr)).map_err(|e| {
                    e.at(format!(
                        "offer {id}: pointers.{key} {:?}",
                        ptr.as_deref().unwrap_or("")
                    ))
                })
            };
            let parsed = (|| {
                Ok::<_, AdapterError>((
                    field("gpu_count", &p.gpu_count)?,
                    field("price", &Some(p.price.clone()))?,
                    field("memory_gb", &p.memory_gb)?,
                ))
            })();
            let (count, price, memory) = match parsed {
                Ok(v) => v,
                Err(detail) => {
                    out.rejects.push(ParseReject {
                        offer_id: id,
                        gpu_name_raw: name,
                        reason: "bad_field".into(),
                        detail: detail.to_string(),
                    });
                    continue;
                }
            };
            let mut o = RawOffer::new(ctx.provider, id, name);
            o.region = text(get(&p.region)).map(Into::into);
            o.country = (text(get(&p.country)).or_else(|| self.country.clone())).map(Into::into);
            o.instance_type = text(get(&p.instance_type)).map(Into::into);
            o.gpu_count = count;
            o.gpu_memory_gb = memory;
            o.price_class = self.class;
            o.price = price;
            o.currency = self.currency.clone().into();
            o.price_unit = self.unit.clone();
            out.offers.push(o);
        }
        Ok(out)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::feed::parse_feed;
    use std::path::Path;

    const FEED: &str = r#"
format = "generic_json"
url = "x.json"
provider = "examplecloud"
currency = "USD"
price_unit = "instance-hour"
price_class = "on_demand"
offers = "/result/items"
[pointers]
gpu = "/gpu/model"
gpu_count = "/gpu/count"
price = "/pricing/hourly"
region = "/location/region"
country = "/location/country"
offer_id = "/sku"
memory_gb = "/gpu/memory_gb"
instance_type = "/type"
"#;

    fn parse_with(feed: &str, body: &str) -> Result<Parsed, String> {
        let f = parse_feed(Path::new("/feeds/g.toml"), feed).map_err(|e| e.to_string())?;
        super::super::parse_page(&*f.adapter, "examplecloud", "", body)
    }

    fn check_number(input: &str, expected: Result<Option<f64>, ()>) {
        let v: Option<Value> = if input == "<absent>" {
            None
        } else {
            Some(serde_json::from_str(input).unwrap())
        };
        assert_eq!(
            number(v.as_ref()).map_err(|_| ()),
            expected,
            "number({input})"
        );
    }

    #[test]
    fn numbers_and_strings() {
        check_number("2.5", Ok(Some(2.5)));
        check_number("8", Ok(Some(8.0)));
        check_number("\"2.50\"", Ok(Some(2.5)));
        check_number("\" 8 \"", Ok(Some(8.0)));
        check_number("\"\"", Ok(None));
        check_number("null", Ok(None));
        check_number("<absent>", Ok(None));
        check_number("\"two\"", Err(()));
        check_number("\"NaN\"", Err(()));
        check_number("true", Err(()));
        check_number("[1]", Err(()));
    }

    #[test]
    fn offers_are_read_through_pointers() {
        let body = r#"{"result":{"items":[
            {"sku":"h100x8","type":"gpu-8x","gpu":{"model":"H100 SXM","count":"8","memory_gb":80},"pricing":{"hourly":"21.52"},"location":{"region":"us-east","country":"US"}},
            {"gpu":{"model":"RTX 4090","count":1},"pricing":{"hourly":0.4}},
            {"sku":"bad","gpu":{"model":"A100","count":"eight"},"pricing":{"hourly":1}}
        ]}}"#;
        let p = parse_with(FEED, body).unwrap();
        assert_eq!(p.offers.len(), 2);
        let a = &p.offers.row(0);
        assert_eq!(
            (
                a.offer_id.as_str(),
                a.gpu_name_raw.as_str(),
                a.gpu_count,
                a.price,
                a.gpu_memory_gb
            ),
            ("h100x8", "H100 SXM", Some(8.0), Some(21.52), Some(80.0))
        );
        assert_eq!(
            (
                a.region.as_deref(),
                a.country.as_deref(),
                a.instance_type.as_deref()
            ),
            (Some("us-east"), Some("US"), Some("gpu-8x"))
        );
        assert_eq!(
            (a.currency.as_str(), a.price_unit.label(), a.price_class),
            ("USD", "instance-hour".to_string(), PriceClass::OnDemand)
        );
        let b = &p.offers.row(1);
        assert_eq!(
            (
                b.offer_id.as_str(),
                b.region.as_deref(),
                b.country.as_deref()
            ),
            ("#1", None, None)
        );
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].reason, "bad_field");
        assert!(
            p.rejects[0].detail.contains("gpu_count") && p.rejects[0].detail.contains("eight"),
            "{}",
            p.rejects[0].detail
        );
    }

    #[test]
    fn root_array_object_map_and_feed_country() {
        let feed = r#"
format = "generic_json"
url = "x.json"
currency = "CNY"
price_unit = "thousandths/gpu-hour"
price_class = "spot"
country = "CN"
[pointers]
gpu = "/g"
price = "/p"
"#;
        let p = parse_with(feed, r#"[{"g":"RTX 4090","p":1980}]"#).unwrap();
        let o = &p.offers.row(0);
        assert_eq!(
            (o.offer_id.as_str(), o.country.as_deref(), o.price_class),
            ("#0", Some("CN"), PriceClass::Spot)
        );
        assert_eq!(o.price_unit.label(), "thousandths/gpu-hour");
        assert_eq!(
            o.gpu_count, None,
            "no gpu_count pointer: left to the catalogue"
        );
        let feed_map = feed.replace("country = \"CN\"\n", "offers = \"/data\"\n");
        let p = parse_with(
            &feed_map,
            r#"{"data":{"x1":{"g":"L40S","p":"2"},"x2":{"g":"L4","p":null}}}"#,
        )
        .unwrap();
        let rows = p.offers.rows();
        let got: Vec<(&str, Option<f64>, Option<&str>)> = rows
            .iter()
            .map(|o| (o.offer_id.as_str(), o.price, o.country.as_deref()))
            .collect();
        assert_eq!(got, vec![("x1", Some(2.0), None), ("x2", None, None)]);
    }

    #[test]
    fn malformed_payloads_and_feed_files() {
        for (body, expected) in [
            (r#"{"result":{}}"#, "does not resolve"),
            (r#"{"result":{"items":3}}"#, "number value"),
            ("{not json", "invalid JSON"),
        ] {
            let e = parse_with(FEED, body).unwrap_err();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
        for (from, to, expected) in [
            (
                "offers = \"/result/items\"",
                "offers = \"result\"",
                "JSON pointer",
            ),
            (
                "price = \"/pricing/hourly\"",
                "price = \"pricing\"",
                "pointers.price",
            ),
            ("currency = \"USD\"", "currency = \"usd\"", "currency"),
            (
                "price_unit = \"instance-hour\"",
                "price_unit = \"gpu-fortnight\"",
                "price_unit",
            ),
            ("[pointers]", "bogus = 1\n[pointers]", "bogus"),
            (
                "gpu = \"/gpu/model\"\n",
                "",
                "needs `gpu` or `instance_type`",
            ),
        ] {
            let mut feed = FEED.replace(from, to);
            if expected.starts_with("needs") {
                feed = feed.replace("instance_type = \"/type\"\n", "");
            }
            let e = parse_with(&feed, "[]").unwrap_err();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
    }
}
