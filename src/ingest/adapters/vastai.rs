//! `vastai`: the vast.ai bundles search response, `{"offers": [...]}`.
//!
//! Each offer is one host machine slice: `num_gpus` GPUs of `gpu_name` with
//! `gpu_ram` MB each. On-demand price: `dph_total`, USD per hour for the whole
//! offer. Spot (interruptible) price: `min_bid` when present and positive.
//! Country: the two-letter code after the last comma of `geolocation`
//! (`"Guangdong, CN"`, `"Texas, US"`); vast.ai has hosts in both blocs.
//!
//! Reading, fastest first, each taken only where the one before cannot be sure:
//! - `scan`: a `Cursor` over the text picks out the seven fields of each offer
//!   and skips every other value unread (an offer with an escape in a key or in a
//!   wanted string is read by serde_json alone);
//! - `all_valid`: serde_json reads the offers in one pass;
//! - offer by offer, each bad offer a reject.
//!
//! Where the scan reads a payload it gives the very rows `all_valid` gives (the
//! tests compare them); both fail where any offer is not a valid record, and the
//! offer-by-offer path then reads it as it always did.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::vastai_scan::{f64_of, Cursor, Str};
use super::vastai_stream;
use super::{
    bad_record, keyless, quote_huge_numbers, str_at, Adapter, AdapterError, Page, ParseCtx,
};
use crate::model::{Offers, Parsed, PriceClass, PriceUnit, RawOffer, Text};

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
pub(super) struct Offer<'a> {
    /// The id's JSON text, any value (see [`id_text`]).
    #[serde(borrow, deserialize_with = "raw_text")]
    id: &'a str,
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

/// A value's JSON text, as written in the payload.
fn raw_text<'de, D: Deserializer<'de>>(d: D) -> Result<&'de str, D::Error> {
    <&RawValue>::deserialize(d).map(RawValue::get)
}

/// The offer id as text, from its JSON text (`text`, a valid JSON value): a
/// string's value, an integer's digits, else the JSON value as serde_json writes it
/// (as ids were always written).
fn id_text(text: &str) -> Text {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Text::from(text);
    }
    // A string without an escape is its text between the quotes.
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
    if let Some(inner) = inner.filter(|t| !t.contains('\\')) {
        return Text::from(inner);
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

/// The serde fast path: every offer read in one pass, each turned into rows as soon
/// as it is read (no list of offers is held). Any offer that is not a valid record
/// fails it, and the payload is read again offer by offer ([`Response`]).
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
    rows: &'o mut Offers,
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

/// An empty list of rows for `body`: about 1.5 rows per offer of about 384 bytes,
/// so room for a row per 200 bytes, and the rows are not copied while growing
/// (untouched capacity is address space).
fn row_room(body: &[u8]) -> Offers {
    Offers::with_capacity(body.len() / 200)
}

/// The rows of a payload whose offers are all valid records, or `None`.
fn all_valid(body: &[u8], ctx: &ParseCtx) -> Option<Offers> {
    let mut rows = row_room(body);
    let mut de = serde_json::Deserializer::from_slice(body);
    let visitor = AllValid(OfferRows {
        rows: &mut rows,
        ctx,
    });
    de.deserialize_map(visitor).ok()?;
    de.end().ok()?;
    Some(rows)
}

/// The rows of a payload whose offers are all valid records, read with a
/// [`Cursor`]; `None` where it cannot be sure to read the payload as [`all_valid`]
/// does (which then runs), else the very rows [`all_valid`] gives.
fn scan(body: &[u8], ctx: &ParseCtx) -> Option<Offers> {
    // Checking all of the text refuses some payloads serde_json reads (invalid UTF-8
    // in a skipped string: left to it), none it refuses.
    let mut c = Cursor::new(std::str::from_utf8(body).ok()?);
    let mut rows = row_room(body);
    let mut offers = false;
    c.members(|c, key| match key.raw {
        // An escaped key may spell `offers`.
        _ if key.escaped => None,
        // A second `offers` fails serde_json.
        "offers" if !offers => {
            offers = true;
            scan_offers(c, &mut rows, ctx)
        }
        "offers" => None,
        _ => c.skip(),
    })?;
    (offers && c.at_end()).then_some(rows)
}

/// The `offers` array next, its rows pushed onto `rows`; `None` when the scan gives
/// up.
fn scan_offers(c: &mut Cursor, rows: &mut Offers, ctx: &ParseCtx) -> Option<()> {
    c.elements(|c| {
        let offer = scan_one(c)?;
        push_rows(rows, offer, ctx);
        Some(())
    })
}

/// The offer element next, read as serde_json reads an [`Offer`]; `None` when the
/// scan gives up.
pub(super) fn scan_one<'a>(c: &mut Cursor<'a>) -> Option<Offer<'a>> {
    let start = c.pos();
    match scan_offer(c) {
        Ok(offer) => Some(offer),
        Err(Stop::GiveUp) => None,
        // serde_json reads this offer's text as it reads it within the payload (the
        // depth of nesting around it does not matter: skipped values are read
        // without a depth limit).
        Err(Stop::Serde) => {
            c.rewind(start);
            serde_json::from_str(c.value()?).ok()
        }
    }
}

/// Why [`scan_offer`] did not read an offer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// It has an escape in a key or in a wanted string, which serde_json decodes.
    Serde,
    /// Anything else: serde_json fails on it, or the scan does not handle it.
    GiveUp,
}

/// The offer object next, read as serde_json reads an [`Offer`].
fn scan_offer<'a>(c: &mut Cursor<'a>) -> Result<Offer<'a>, Stop> {
    let mut fields = Fields::default();
    let mut stop = Stop::GiveUp;
    let read = c.members(|c, key| fields.member(c, key).map_err(|s| stop = s).ok());
    read.ok_or(stop)?;
    fields.offer()
}

/// Bits of [`Fields::seen`], one per field of [`Offer`].
const ID: u8 = 1;
const GPU_NAME: u8 = 2;
const NUM_GPUS: u8 = 4;
const GPU_RAM: u8 = 8;
const DPH_TOTAL: u8 = 16;
const MIN_BID: u8 = 32;
const GEOLOCATION: u8 = 64;

/// An [`Offer`]'s fields as the scan meets them.
#[derive(Default)]
struct Fields<'a> {
    /// The fields met so far: serde_json fails on a field met twice.
    seen: u8,
    id: &'a str,
    gpu_name: &'a str,
    num_gpus: f64,
    gpu_ram: Option<f64>,
    dph_total: Option<f64>,
    min_bid: Option<f64>,
    geolocation: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Read the value of the member `key` (the cursor after its colon).
    fn member(&mut self, c: &mut Cursor<'a>, key: Str<'a>) -> Result<(), Stop> {
        if key.escaped {
            return Err(Stop::Serde);
        }
        match key.raw {
            "id" => self.id = self.first(ID).and(c.value().ok_or(Stop::GiveUp))?,
            "gpu_name" => self.gpu_name = self.first(GPU_NAME).and(plain(c))?,
            "num_gpus" => self.num_gpus = self.first(NUM_GPUS).and(number(c))?,
            "gpu_ram" => self.gpu_ram = self.first(GPU_RAM).and(or_null(c, number))?,
            "dph_total" => self.dph_total = self.first(DPH_TOTAL).and(or_null(c, number))?,
            "min_bid" => self.min_bid = self.first(MIN_BID).and(or_null(c, number))?,
            "geolocation" => self.geolocation = self.first(GEOLOCATION).and(or_null(c, plain))?,
            _ => c.skip().ok_or(Stop::GiveUp)?,
        }
        Ok(())
    }

    /// Mark `field` met; an error if it was already.
    fn first(&mut self, field: u8) -> Result<(), Stop> {
        let seen = self.seen & field != 0;
        self.seen |= field;
        if seen {
            Err(Stop::GiveUp)
        } else {
            Ok(())
        }
    }

    /// The offer, when the fields serde_json requires were all met.
    fn offer(self) -> Result<Offer<'a>, Stop> {
        let required = ID | GPU_NAME | NUM_GPUS;
        if self.seen & required != required {
            return Err(Stop::GiveUp);
        }
        Ok(Offer {
            id: self.id,
            gpu_name: Cow::Borrowed(self.gpu_name),
            num_gpus: self.num_gpus,
            gpu_ram: self.gpu_ram,
            dph_total: self.dph_total,
            min_bid: self.min_bid,
            geolocation: self.geolocation.map(Cow::Borrowed),
        })
    }
}

/// The string next, when it holds no escape (its value is then its text).
fn plain<'a>(c: &mut Cursor<'a>) -> Result<&'a str, Stop> {
    match c.string() {
        Some(Str {
            raw,
            escaped: false,
        }) => Ok(raw),
        Some(_) => Err(Stop::Serde),
        None => Err(Stop::GiveUp),
    }
}

/// The number next, as serde_json reads it into an `f64`.
fn number(c: &mut Cursor) -> Result<f64, Stop> {
    c.number().and_then(f64_of).ok_or(Stop::GiveUp)
}

/// `null` next, as `None`, or what `read` reads.
fn or_null<'a, T>(
    c: &mut Cursor<'a>,
    read: impl FnOnce(&mut Cursor<'a>) -> Result<T, Stop>,
) -> Result<Option<T>, Stop> {
    if c.null() {
        Ok(None)
    } else {
        read(c).map(Some)
    }
}

impl Adapter for VastAi {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        match scan(&page.body, ctx) {
            Some(offers) => Ok(Parsed {
                offers,
                ..Parsed::default()
            }),
            None => parse_serde(&page.body, ctx),
        }
    }

    /// A live or recorded payload is spooled, and read here a window at a time.
    fn reads_streams(&self) -> bool {
        true
    }

    /// The scan over the stream (`vastai_stream::scan`); where it gives up, the
    /// payload read whole and parsed as [`VastAi::parse`] parses it.
    fn parse_stream<'b>(
        &self,
        label: &str,
        open: &super::Open<'b>,
        ctx: &ParseCtx,
    ) -> Result<Parsed, AdapterError> {
        let mut body = open().map_err(super::read_error)?;
        if let Some(offers) = vastai_stream::scan(&mut *body, ctx).map_err(super::read_error)? {
            return Ok(Parsed {
                offers,
                ..Parsed::default()
            });
        }
        drop(body);
        self.parse(&Page::new(label, super::read_whole(open)?), ctx)
    }
}

/// The payload read with serde_json alone: [`all_valid`], else offer by offer.
fn parse_serde(body: &[u8], ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
    if let Some(offers) = all_valid(body, ctx) {
        return Ok(Parsed {
            offers,
            ..Parsed::default()
        });
    }
    // Numbers that overflow an f64 fail only the offer that uses one (below); the
    // whole body is quoted only if it cannot be read as it is.
    let quoted;
    let resp: Response = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => {
            quoted = quote_huge_numbers(body);
            serde_json::from_slice(&quoted)
                .map_err(|error| AdapterError::Json { error, hint: "" })?
        }
    };
    // Room for an on-demand and a spot row per offer: untouched capacity is
    // only address space, and the rows are never moved while growing.
    let mut out = Parsed {
        offers: Offers::with_capacity(2 * resp.offers.len()),
        ..Parsed::default()
    };
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

/// An offer's on-demand row, and its spot row when it has a positive `min_bid`.
pub(super) fn push_rows(rows: &mut Offers, offer: Offer, ctx: &ParseCtx) {
    let mut base = RawOffer::new(ctx.provider, id_text(offer.id), offer.gpu_name);
    base.country = offer.geolocation.as_deref().and_then(country_of);
    base.region = offer.geolocation.as_deref().map(Text::from);
    base.gpu_count = Some(offer.num_gpus);
    base.gpu_memory_gb = offer.gpu_ram.map(|mb| mb / 1024.0);
    base.gpus_available = Some(offer.num_gpus);
    base.price_unit = PriceUnit::instance_hour();
    base.price = offer.dph_total;
    rows.push(base);
    if let Some(bid) = offer.min_bid.filter(|b| *b > 0.0) {
        rows.push_variant(PriceClass::Spot, Some(bid));
    }
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

    const CTX: ParseCtx = ParseCtx {
        feed: "vastai",
        provider: "vastai",
    };

    /// Rows as text: `{:?}` of an `f64` tells every bit apart (`-0.0` from `0.0`).
    fn text<T: std::fmt::Debug>(value: &T) -> String {
        format!("{value:#?}")
    }

    /// A payload of one offer with `members`, between a key before and after.
    fn one(members: &str) -> String {
        format!(r#"{{"before": 1, "offers": [{{{members}}}], "after": [{{}}]}}"#)
    }

    /// A valid offer: `members` first, then the required fields that are not in it.
    fn offer(members: &str) -> String {
        let mut all = members.to_string();
        for (key, value) in [
            ("id", "7"),
            ("gpu_name", r#""RTX 4090""#),
            ("num_gpus", "2"),
        ] {
            if !members.contains(&format!(r#""{key}""#)) {
                all = format!(
                    r#"{all}{}"{key}": {value}"#,
                    if all.is_empty() { "" } else { ", " }
                );
            }
        }
        one(&all)
    }

    /// `body` read by the adapter as it reads it now and with serde_json alone: the
    /// same offers, rejects or error; and whether the scan read it.
    fn same(body: &[u8]) -> bool {
        let now = VastAi.parse(&Page::new(String::new(), body.to_vec()), &CTX);
        let serde = parse_serde(body, &CTX);
        let shown = String::from_utf8_lossy(body);
        let (now, serde) = (
            now.map_err(|e| e.to_string()),
            serde.map_err(|e| e.to_string()),
        );
        assert_eq!(text(&now), text(&serde), "{shown}");
        let scanned = scan(body, &CTX);
        if let Some(rows) = &scanned {
            assert_eq!(
                text(&Some(rows)),
                text(&all_valid(body, &CTX).as_ref()),
                "{shown}"
            );
        }
        streams_as_scanned(body, scanned.as_ref());
        let open = || -> std::io::Result<Box<dyn std::io::BufRead + '_>> {
            Ok(Box::new(std::io::BufReader::with_capacity(5, body)))
        };
        let streamed = VastAi.parse_stream("", &open, &CTX);
        assert_eq!(
            text(&streamed.map_err(|e| e.to_string())),
            text(&now),
            "{shown}"
        );
        scanned.is_some()
    }

    /// The scan over a stream, read a few bytes at a time so that every token is cut
    /// somewhere, gives what the scan of the whole text gives.
    fn streams_as_scanned(body: &[u8], scanned: Option<&Offers>) {
        for (capacity, read) in [(1, 1), (3, 2), (7, 16), (64, 1 << 20)] {
            let mut r = std::io::BufReader::with_capacity(capacity, body);
            let streamed = vastai_stream::scan_reading(&mut r, &CTX, read).unwrap();
            let shown = String::from_utf8_lossy(body);
            assert_eq!(
                text(&streamed.as_ref()),
                text(&scanned),
                "{shown} read {read} bytes at a time"
            );
        }
    }

    /// Payloads the scan reads itself: the rows of serde_json's fast path.
    #[test]
    fn scan_reads_as_serde() {
        let bodies = [
            r#"{"offers": []}"#.to_string(),
            " \n{ \"offers\" :\t[ ] } \r\n".to_string(),
            offer(r#""geolocation": "Texas, US", "min_bid": 0.5, "dph_total": 0.8, "gpu_ram": 24564"#),
            offer(r#""num_gpus": 8, "gpu_name": "H100 SXM", "id": 1, "geolocation": "Guangdong, CN""#),
            // Unknown keys with nested objects, arrays, escapes, unicode, huge numbers.
            offer(r#""x": {"a": [1, {"b": "c\"\\\/\b\f\n\r\t\u00e9\uD800"}], "d": [], "e": {}}"#),
            offer(r#""名前": "値 é 😀", "n": -0.0e-5, "big": 1e999, "t": [true, false, null]"#),
            offer(r#""": "", "deep": [[[[[[[[[[{"a": [[[[]]]]}]]]]]]]]]]"#),
            // Ids of every kind: integers, strings (escaped too), anything else.
            offer(r#""id": -12"#),
            offer(r#""id": 123456789012345678901234567890"#),
            offer(r#""id": "abc-1""#),
            offer(r#""id": "a\"b\u00e9""#),
            offer(r#""id": 1.50"#),
            offer(r#""id": 1e3"#),
            offer(r#""id": -0"#),
            offer(r#""id": null"#),
            offer(r#""id": true"#),
            offer(r#""id": { "b" : [1, 2.0] , "a": "x" }"#),
            offer(r#""id": [ ]"#),
            offer(r#""id": "\ud800""#),
            // Optional fields null or absent; min_bid zero, negative, positive.
            offer(r#""gpu_ram": null, "dph_total": null, "min_bid": null, "geolocation": null"#),
            offer(r#""min_bid": 0"#),
            offer(r#""min_bid": -1, "dph_total": 3"#),
            offer(r#""min_bid": 1e-3"#),
            offer(r#""geolocation": "" "#),
            // Strings the scan leaves to serde_json for this offer: escapes in a
            // wanted string or in a key.
            offer(r#""gpu_name": "RTX \"4090\"""#),
            offer(r#""geolocation": "Texas,\u0020US""#),
            one(r#""gpu\u005fname": "H20", "id": 7, "num_gpus": 1"#),
            offer(r#""x\n": 1"#),
            // Whitespace everywhere.
            " \t\n{ \"a\" : [ 1 , { } ] , \"offers\" :\n[\n{ \"id\" :\r7 ,\"gpu_name\"\t: \"L40S\" , \"num_gpus\" : 1 ,\"min_bid\" : 0.25 } ,\n{\"id\":8,\"gpu_name\":\"L40S\",\"num_gpus\":1}\n] , \"b\" : null }\n\n".to_string(),
        ];
        for body in bodies {
            assert!(same(body.as_bytes()), "not scanned: {body}");
        }
    }

    /// Numbers in every numeric field, bit for bit as serde_json reads them.
    #[test]
    fn scan_numbers_as_serde() {
        let numbers = [
            "0",
            "-0",
            "-0.0",
            "0.1",
            "0.30000000000000004",
            "1e2",
            "1E+2",
            "1e-2",
            "2.5",
            "0.4123",
            "12.50",
            "24564",
            "-1",
            "1.7976931348623157e308",
            "123456789012345678901234567890",
            "2.2250738585072011e-308",
            "5e-324",
            "9007199254740993",
            "9007199254740993.5",
            "0.9007199254740993",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1234567890123456789",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "3.0000000000000000000000000001",
            "1e22",
            "1e23",
            "7e-10",
            "1.000000000000000000001e3",
        ];
        for n in numbers {
            let json = format!(r#"[{n}]"#);
            let serde: [f64; 1] = serde_json::from_str(&json).unwrap();
            let scanned = f64_of(n).unwrap();
            assert_eq!(scanned.to_bits(), serde[0].to_bits(), "{n}");
            for key in ["num_gpus", "gpu_ram", "dph_total", "min_bid"] {
                let body = offer(&format!(r#""{key}": {n}"#));
                assert!(same(body.as_bytes()), "not scanned: {body}");
            }
        }
    }

    /// Payloads the scan leaves to serde_json, which reads them as before: the same
    /// offers, rejects or error.
    #[test]
    fn scan_gives_up_where_unsure() {
        let valid = r#"{"id": 1, "gpu_name": "H20", "num_gpus": 1}"#;
        let bodies: Vec<Vec<u8>> = [
            format!(r#"{{"offers": [{valid}], "offers": []}}"#),
            offer(r#""dph_total": 1, "dph_total": 2"#),
            offer(r#""gpu_name": "H20", "gpu_name": "H20""#),
            offer(r#""gpu\u005fname": "H20", "gpu_name": "H20""#),
            offer(r#""num_gpus": "two""#),
            offer(r#""num_gpus": null"#),
            offer(r#""gpu_name": 4090"#),
            offer(r#""gpu_name": "\ud800""#),
            offer(r#""geolocation": 1"#),
            offer(r#""min_bid": "0.5""#),
            offer(r#""dph_total": 1e999"#),
            offer(r#""dph_total": -1e400, "gpu_ram": 1"#),
            offer(r#""x": 01"#),
            offer(r#""x": 1."#),
            offer(r#""x": -"#),
            offer(r#""x": tru"#),
            offer(r#""x": "\x""#),
            offer(r#""x": "\u12G4""#),
            offer("\"x\": \"tab\there\""),
            offer(r#""x": [1,]"#),
            offer(r#""x": 1,"#),
            offer(&format!(r#""x": {}{}"#, "[".repeat(100), "]".repeat(100))),
            format!(r#"{{"off\u0065rs": [{valid}]}}"#),
            format!(r#"{{"offers": [{valid}]}} x"#),
            format!(r#"{{"offers": [{valid}]"#),
            format!(r#"{{"offers": [{valid}"#),
            r#"{"offers": [{"id": 1, "gpu_name": "H2"#.to_string(),
            format!("\u{feff}{{\"offers\": [{valid}]}}"),
            format!(r#"{{"offers": [{valid}, [2, "H20", 1]]}}"#),
            format!(r#"{{"offers": [{valid}, {{"id": 2}}]}}"#),
            format!(r#"{{"offers": [{valid}, 3]}}"#),
            r#"{"offers": {}}"#.to_string(),
            r#"{"offers": null}"#.to_string(),
            r#"{"other": []}"#.to_string(),
            "[]".to_string(),
            String::new(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .chain([
            // Invalid UTF-8 in a skipped string (serde_json does not check it) and
            // in a wanted one.
            one(r#""id": 1, "gpu_name": "H20", "num_gpus": 1, "x": "?""#)
                .replace('?', "\u{0}")
                .into_bytes()
                .into_iter()
                .map(|b| if b == 0 { 0xff } else { b })
                .collect(),
            one(r#""id": 1, "gpu_name": "H?", "num_gpus": 1"#)
                .into_bytes()
                .into_iter()
                .map(|b| if b == b'?' { 0xc3 } else { b })
                .collect(),
        ])
        .collect();
        for body in bodies {
            assert!(!same(&body), "scanned: {}", String::from_utf8_lossy(&body));
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        /// JSON whitespace, mostly none.
        fn ws() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["", "", "", " ", "\n", "\t ", "\r\n  "])
        }

        /// Number texts: integers, decimals, exponents, and a few that break the rules.
        fn number() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                (any::<bool>(), "[0-9]{1,12}", "[0-9]{1,24}").prop_map(|(neg, w, f)| format!(
                    "{}{}.{f}",
                    if neg { "-" } else { "" },
                    w.trim_start_matches('0')
                        .chars()
                        .next()
                        .map_or("0".to_string(), |_| w.trim_start_matches('0').to_string())
                )),
                any::<f64>().prop_map(|f| format!("{f:?}")),
                any::<f64>().prop_map(|f| format!("{f:e}")),
                (1u32..40, -330i32..330).prop_map(|(d, e)| format!("{d}.5E{e:+}")),
                prop::sample::select(vec![
                    "1e999",
                    "01",
                    "1.",
                    "-",
                    "0.30000000000000004",
                    "2.2250738585072011e-308"
                ])
                .prop_map(String::from),
            ]
        }

        /// String texts (quoted), with escapes and non-ASCII now and then.
        fn string() -> impl Strategy<Value = String> {
            let pieces = vec![
                "a",
                "RTX 4090",
                " ",
                "é",
                "漢",
                "😀",
                "\\\"",
                "\\\\",
                "\\n",
                "\\u00e9",
                "\\ud800",
                ",",
                "Texas, US",
            ];
            prop::collection::vec(prop::sample::select(pieces), 0..4)
                .prop_map(|p| format!("\"{}\"", p.concat()))
        }

        /// Any JSON value texts, nested a little.
        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                number(),
                string(),
                prop::sample::select(vec!["true", "false", "null"]).prop_map(String::from),
            ];
            leaf.prop_recursive(3, 12, 4, |inner| {
                prop_oneof![
                    prop::collection::vec((inner.clone(), ws()), 0..4).prop_map(|v| {
                        let items: Vec<String> =
                            v.into_iter().map(|(x, w)| format!("{w}{x}{w}")).collect();
                        format!("[{}]", items.join(","))
                    }),
                    prop::collection::vec((string(), inner, ws()), 0..4).prop_map(|v| {
                        let items: Vec<String> = v
                            .into_iter()
                            .map(|(k, x, w)| format!("{w}{k}{w}:{x}"))
                            .collect();
                        format!("{{{}}}", items.join(","))
                    }),
                ]
            })
        }

        /// One member of an offer: a wanted key (mostly with a value of its type) or
        /// another.
        fn member() -> impl Strategy<Value = (String, String)> {
            let key = prop::sample::select(vec![
                "id",
                "gpu_name",
                "num_gpus",
                "gpu_ram",
                "dph_total",
                "min_bid",
                "geolocation",
                "machine_id",
                "gpu\\u005fname",
                "x",
            ]);
            (key, prop::num::u8::ANY, number(), string(), value()).prop_map(|(k, pick, n, s, v)| {
                let typed = match k {
                    "gpu_name" | "geolocation" | "gpu\\u005fname" => s,
                    "id" | "machine_id" | "x" => v.clone(),
                    _ => n,
                };
                let value = match pick % 16 {
                    0 => v,
                    1 => "null".to_string(),
                    _ => typed,
                };
                (format!("\"{k}\""), value)
            })
        }

        /// An offer object, its members shuffled, mostly with the required ones.
        fn offer() -> impl Strategy<Value = String> {
            let required = (number(), string(), prop::num::u16::ANY).prop_map(|(n, s, id)| {
                vec![
                    ("\"id\"".to_string(), id.to_string()),
                    ("\"gpu_name\"".to_string(), s),
                    ("\"num_gpus\"".to_string(), n),
                ]
            });
            (
                required,
                prop::collection::vec(member(), 0..8),
                any::<bool>(),
            )
                .prop_map(|(mut req, more, keep)| {
                    if !keep {
                        req.pop();
                    }
                    req.extend(more);
                    req
                })
                .prop_shuffle()
                .prop_map(|members| {
                    members
                        .into_iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                })
                .prop_map(|members| format!("{{{}}}", members.join(", ")))
        }

        /// A payload: offers between other keys.
        fn payload() -> impl Strategy<Value = String> {
            (value(), prop::collection::vec(offer(), 0..5), value(), ws()).prop_map(
                |(before, offers, after, w)| {
                    format!(
                        "{w}{{\"before\":{before},{w}\"offers\":{w}[{}],\"after\":{after}}}{w}",
                        offers.join(&format!(",{w}"))
                    )
                },
            )
        }

        /// Wherever the scan reads a payload, it reads the rows of serde_json's fast
        /// path, and the adapter's answer is serde_json's; most payloads are scanned.
        #[test]
        fn scan_agrees_with_serde() {
            let mut runner = TestRunner::new(Config {
                cases: 3000,
                failure_persistence: None,
                ..Config::default()
            });
            let (scanned, valid) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
            runner
                .run(&payload(), |body| {
                    let serde = all_valid(body.as_bytes(), &CTX);
                    valid.set(valid.get() + usize::from(serde.is_some()));
                    scanned.set(scanned.get() + usize::from(same(body.as_bytes())));
                    Ok(())
                })
                .unwrap();
            let (scanned, valid) = (scanned.get(), valid.get());
            eprintln!("{scanned} of {valid} valid payloads scanned");
            assert!(scanned * 2 > valid, "{scanned} of {valid} scanned");
        }
    }
}
