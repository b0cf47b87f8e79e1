//! `ecb_fx`: the ECB euro foreign exchange reference rates.
//!
//! Reads both the daily XML (`eurofxref-daily.xml`, also the 90-day and history
//! XML: `<Cube time="YYYY-MM-DD"><Cube currency="USD" rate="1.0938"/>...`) and the
//! history CSV (`eurofxref-hist.csv`: `Date,USD,JPY,...` with `N/A` for no rate).
//! Rates are units of the currency per euro.

use chrono::NaiveDate;

use super::{keyless, Adapter, AdapterError, Page, ParseCtx};
use crate::model::{FxRate, Parsed};

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, EcbFx)
}

pub struct EcbFx;

impl Adapter for EcbFx {
    fn parse(&self, page: &Page, _ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let text = std::str::from_utf8(&page.body)
            .map_err(|e| AdapterError::Payload(format!("not UTF-8: {e}")))?;
        let fx = if text.trim_start().starts_with('<') {
            parse_xml(text)?
        } else {
            parse_csv(text)?
        };
        if fx.is_empty() {
            return Err(AdapterError::Payload("no rates found".into()));
        }
        Ok(Parsed {
            fx,
            ..Parsed::default()
        })
    }
}

fn rate(currency: &str, value: &str, where_: &str) -> Result<Option<f64>, AdapterError> {
    let v = value.trim();
    if v.is_empty() || v == "N/A" {
        return Ok(None);
    }
    let not = |expected| {
        AdapterError::Value {
            value: format!("rate {v:?} for {currency}"),
            expected,
        }
        .at(where_)
    };
    let r: f64 = v.parse().map_err(|_| not("a number"))?;
    if !(r.is_finite() && r > 0.0) {
        return Err(not("positive"));
    }
    Ok(Some(r))
}

pub fn parse_csv(text: &str) -> Result<Vec<FxRate>, AdapterError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|error| AdapterError::CsvHeader { error })?
        .clone();
    if headers.get(0).map(str::trim) != Some("Date") {
        return Err(AdapterError::Payload(
            "CSV header must start with Date".into(),
        ));
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|error| AdapterError::CsvLine { line, error })?;
        let date = NaiveDate::parse_from_str(rec.get(0).unwrap_or("").trim(), "%Y-%m-%d").map_err(
            |e| AdapterError::Payload(e.to_string()).at(format!("line {line}: column Date")),
        )?;
        for (j, cur) in headers.iter().enumerate().skip(1) {
            let cur = cur.trim();
            if cur.is_empty() {
                continue;
            }
            if let Some(r) = rate(cur, rec.get(j).unwrap_or(""), &format!("line {line}"))? {
                out.push(FxRate {
                    date,
                    currency: cur.to_string(),
                    units_per_eur: r,
                });
            }
        }
    }
    Ok(out)
}

pub fn parse_xml(text: &str) -> Result<Vec<FxRate>, AdapterError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut date: Option<NaiveDate> = None;
    let mut out = Vec::new();
    loop {
        match reader.read_event().map_err(|e| {
            AdapterError::Payload(format!(
                "invalid XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })? {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Cube" => {
                let mut time = None;
                let mut currency = None;
                let mut value = None;
                for a in e.attributes() {
                    let bad = |e: &dyn std::fmt::Display| {
                        AdapterError::Payload(format!("invalid XML attribute: {e}"))
                    };
                    let a = a.map_err(|e| bad(&e))?;
                    let v = a.unescape_value().map_err(|e| bad(&e))?.into_owned();
                    match a.key.as_ref() {
                        b"time" => time = Some(v),
                        b"currency" => currency = Some(v),
                        b"rate" => value = Some(v),
                        _ => {}
                    }
                }
                if let Some(t) = time {
                    date = Some(NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|e| {
                        AdapterError::Payload(e.to_string()).at(format!("Cube time {t:?}"))
                    })?);
                }
                if let (Some(c), Some(v)) = (currency, value) {
                    let d = date.ok_or_else(|| {
                        AdapterError::Payload(format!("rate for {c} outside a dated Cube"))
                    })?;
                    if let Some(r) = rate(&c, &v, &d.to_string())? {
                        out.push(FxRate {
                            date: d,
                            currency: c,
                            units_per_eur: r,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_xml() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <Cube><Cube time='2024-10-11'><Cube currency='USD' rate='1.0938'/><Cube currency='CNY' rate='7.7282'/></Cube></Cube>
</gesmes:Envelope>"#;
        let r = parse_xml(xml).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].currency, "CNY");
        assert_eq!(r[1].units_per_eur, 7.7282);
        assert_eq!(r[0].date, NaiveDate::from_ymd_opt(2024, 10, 11).unwrap());
    }

    #[test]
    fn history_csv_skips_na() {
        let csv = "Date,USD,CYP,CNY,\n2024-10-11,1.0938,N/A,7.7282,\n";
        let r = parse_csv(csv).unwrap();
        assert_eq!(
            r.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>(),
            ["USD", "CNY"]
        );
        assert!(parse_csv("Date,USD\n2024-10-11,abc\n")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
    }
}
