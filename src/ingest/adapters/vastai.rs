//! `vastai`: the vast.ai bundles search response, `{"offers": [...]}`.
//!
//! Each offer is one host machine slice: `num_gpus` GPUs of `gpu_name` with
//! `gpu_ram` MB each. On-demand price: `dph_total`, USD per hour for the whole
//! offer. Spot (interruptible) price: `min_bid` when present and positive.
//! Country: the two-letter code after the last comma of `geolocation`
//! (`"Guangdong, CN"`, `"Texas, US"`); vast.ai has hosts in both blocs.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    bad_record, keyless, quote_huge_numbers, str_at, Adapter, AdapterError, Page, ParseCtx,
};
use crate::model::{Parsed, PriceClass, PriceUnit, RawOffer, Text};

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, VastAi)
}

pub struct VastAi;

/// The offers are kept as borrowed JSON text and each is read straight into an
/// `Offer`: no `Value` tree per offer (its maps were most of ingest's allocations).
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    offers: Vec<&'a RawValue>,
}

/// One offer, its strings borrowed from the payload where they hold no escape.
#[derive(Deserialize)]
struct Offer<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    gpu_name: Cow<'a, str>,
    num_gpus: f64,
    #[serde(default)]
    gpu_ram: Option<f64>,
    #[serde(default)]
    dph_total: Option<f64>,
    #[serde(default)]
    min_bid: Option<f64>,
    #[serde(default, borrow)]
    geolocation: Option<Cow<'a, str>>,
}

/// The offer id as text: a string's value, an integer's digits, else the JSON value
/// as serde_json writes it (as ids were always written).
fn id_text(raw: &RawValue) -> Text {
    let text = raw.get();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Text::from(text);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => s.into(),
        Ok(v) => v.to_string().into(),
        Err(_) => Text::from(text),
    }
}

/// The ISO country code at the end of a vast geolocation, if it looks like one.
pub fn country_of(geolocation: &str) -> Option<Text> {
    let code = geolocation.rsplit(',').next()?.trim();
    (code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic())).then(|| {
        let mut code = Text::from(code);
        code.make_ascii_uppercase();
        code
    })
}

/// The reject for an offer that is not a valid record: serde_json's error without
/// its position in the offer's text (the position in the payload is `offers[i]`).
fn bad_offer(i: usize, text: &str) -> crate::model::ParseReject {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let error = serde_json::from_str::<Offer>(text).err().map_or_else(
        || "not an offer".to_string(),
        |e| {
            let text = e.to_string();
            text.rsplit_once(" at line ")
                .map_or(text.clone(), |(head, _)| head.to_string())
        },
    );
    bad_record(
        value
            .get("id")
            .map(|v| v.to_string())
            .unwrap_or_else(|| format!("#{i}")),
        str_at(&value, "gpu_name"),
        format!("offers[{i}]: {error}"),
    )
}

/// The fast path: every offer read in one pass, each turned into rows as soon as it
/// is read (no list of offers is held). Any offer that is not a valid record fails
/// it, and the payload is read again offer by offer ([`Response`]).
struct AllValid<'o, 'c>(OfferRows<'o, 'c>);

impl<'de> Visitor<'de> for AllValid<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a vast.ai search response")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The rows' seed, until the `offers` key uses it.
        let mut unread = Some(self.0);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key != "offers" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let seed = unread
                .take()
                .ok_or_else(|| de::Error::duplicate_field("offers"))?;
            map.next_value_seed(seed)?;
        }
        match unread {
            None => Ok(()),
            Some(_) => Err(de::Error::missing_field("offers")),
        }
    }
}

/// The `offers` array of [`AllValid`], read into rows offer by offer.
struct OfferRows<'o, 'c> {
    rows: &'o mut Vec<RawOffer>,
    ctx: &'o ParseCtx<'c>,
}

impl<'de> DeserializeSeed<'de> for OfferRows<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for OfferRows<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of offers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(offer) = seq.next_element::<Offer>()? {
            push_rows(self.rows, offer, self.ctx);
        }
        Ok(())
    }
}

/// The rows of a payload whose offers are all valid records, or `None`.
fn all_valid(body: &[u8], ctx: &ParseCtx) -> Option<Vec<RawOffer>> {
    // About 1.5 rows per offer of about 384 bytes: room for a row per 200 bytes, so
    // the rows are not copied while growing (untouched capacity is address space).
    let mut rows = Vec::with_capacity(body.len() / 200);
    let mut de = serde_json::Deserializer::from_slice(body);
    let visitor = AllValid(OfferRows {
        rows: &mut rows,
        ctx,
    });
    de.deserialize_map(visitor).ok()?;
    de.end().ok()?;
    Some(rows)
}

impl Adapter for VastAi {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        if let Some(offers) = all_valid(&page.body, ctx) {
            return Ok(Parsed {
                offers,
                ..Parsed::default()
            });
        }
        // Numbers that overflow an f64 fail only the offer that uses one (below); the
        // whole body is quoted only if it cannot be read as it is.
        let quoted;
        let resp: Response = match serde_json::from_slice(&page.body) {
            Ok(r) => r,
            Err(_) => {
                quoted = quote_huge_numbers(&page.body);
                serde_json::from_slice(&quoted)
                    .map_err(|error| AdapterError::Json { error, hint: "" })?
            }
        };
        let mut out = Parsed::default();
        // Room for an on-demand and a spot row per offer: untouched capacity is
        // only address space, and the rows are never moved while growing.
        out.offers.reserve(2 * resp.offers.len());
        for (i, raw) in resp.offers.iter().enumerate() {
            match serde_json::from_str::<Offer>(raw.get()) {
                Ok(offer) => push_rows(&mut out.offers, offer, ctx),
                Err(_) => {
                    // As if huge numbers were strings: a typed field then fails.
                    let q = quote_huge_numbers(raw.get().as_bytes());
                    let text = std::str::from_utf8(&q).unwrap_or(raw.get());
                    match serde_json::from_str::<Offer>(text) {
                        Ok(offer) => push_rows(&mut out.offers, offer, ctx),
                        Err(_) => out.rejects.push(bad_offer(i, text)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// An offer's on-demand row, and its spot row when it has a positive `min_bid`.
fn push_rows(rows: &mut Vec<RawOffer>, offer: Offer, ctx: &ParseCtx) {
    let mut base = RawOffer::new(ctx.provider, id_text(offer.id), offer.gpu_name);
    base.country = offer.geolocation.as_deref().and_then(country_of);
    base.region = offer.geolocation.as_deref().map(Text::from);
    base.gpu_count = Some(offer.num_gpus);
    base.gpu_memory_gb = offer.gpu_ram.map(|mb| mb / 1024.0);
    base.gpus_available = Some(offer.num_gpus);
    base.price_unit = PriceUnit::instance_hour();
    let spot = offer.min_bid.filter(|b| *b > 0.0).map(|bid| {
        let mut spot = base.clone();
        spot.price_class = PriceClass::Spot;
        spot.price = Some(bid);
        spot
    });
    base.price = offer.dph_total;
    rows.push(base);
    rows.extend(spot);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(geo: &str, expected: Option<&str>) {
        assert_eq!(country_of(geo).as_deref(), expected, "country_of({geo:?})");
    }

    #[test]
    fn geolocation_country() {
        check("Guangdong, CN", Some("CN"));
        check("Texas, US", Some("US"));
        check("Hong Kong, HK", Some("HK"));
        check("US", Some("US"));
        check("Sichuan, China, cn", Some("CN"));
        check("Somewhere", None);
        check("", None);
    }

    fn parse(body: &str) -> Parsed {
        super::super::parse_page(&VastAi, "vastai", "", body).unwrap()
    }

    #[test]
    fn price_rules() {
        // (min_bid, expected classes and prices)
        let cases: &[(&str, &[(PriceClass, f64)])] = &[
            (
                "0.5",
                &[(PriceClass::OnDemand, 0.8), (PriceClass::Spot, 0.5)],
            ),
            ("0", &[(PriceClass::OnDemand, 0.8)]),
            ("null", &[(PriceClass::OnDemand, 0.8)]),
            ("-1", &[(PriceClass::OnDemand, 0.8)]),
        ];
        for (bid, expected) in cases {
            let p = parse(&format!(
                r#"{{"offers":[{{"id":7,"gpu_name":"RTX 4090","num_gpus":2,"gpu_ram":24564,"dph_total":0.8,"min_bid":{bid},"geolocation":"Guangdong, CN"}}]}}"#
            ));
            let got: Vec<(PriceClass, f64)> = p
                .offers
                .iter()
                .map(|o| (o.price_class, o.price.unwrap()))
                .collect();
            assert_eq!(&got, expected, "min_bid {bid}");
            assert!(p
                .offers
                .iter()
                .all(|o| o.gpu_count == Some(2.0) && o.country.as_deref() == Some("CN")));
        }
    }

    #[test]
    fn bad_record_is_rejected_not_fatal() {
        let p = parse(
            r#"{"offers":[{"id":1,"gpu_name":"RTX 4090","num_gpus":"two"},{"id":2,"gpu_name":"H100 SXM","num_gpus":1,"dph_total":2.0}]}"#,
        );
        assert_eq!(p.offers.len(), 1);
        assert_eq!(p.rejects.len(), 1);
        assert!(p.rejects[0].detail.contains("offers[0]"));
    }
}
