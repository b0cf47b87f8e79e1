//! `autodl`: AutoDL's GPU machine list (the 算力市场 market page's API),
//! `{"code": "Success", "msg": "", "data": {"list": [...], "page_index", "max_page"}}`.
//!
//! Each list item is one host machine: `machine_id`, `region_name` (e.g. `西北B区`),
//! `gpu_name` (`RTX 4090`), `gpu_number` (GPUs in the machine), `gpu_idle_num` (GPUs
//! free now) and `payg_price`, the pay-as-you-go price in thousandths of a yuan per
//! GPU-hour (`thousandths/gpu-hour`, CNY; `2720` = ¥2.72 per GPU-hour). One on-demand
//! offer per machine: offer id `machine_id`, `gpu_count` 1 (the price is per GPU and
//! a renter takes GPUs one by one), `gpus_available` = `gpu_idle_num`, region =
//! `region_name`; the country comes from `tables/regions.toml` `[autodl]` (all
//! mainland China; a region missing there stays unknown/OTHER until added). A
//! `code` other than `Success`/`OK` makes the payload malformed, naming `code`/`msg`.
//!
//! Live fetch: `POST https://api.autodl.com/api/v1/user/machine/list` with the JSON
//! body `{"charge_type": "payg", "page_index": N, "page_size": S, "gpu_idle_num": 0,
//! "region_sign_list": [], "gpu_type_name": []}` and the header
//! `Authorization: <token>` (the console token from `auth_env`, sent as is). The
//! fetcher follows GET links only, so the pages are requested up front: feed keys
//! `pages` (default 10) and `page_size` (default 100); pages past `max_page` come
//! back empty and add nothing.
//!
//! Verified against public client code for this endpoint (autodl-gpuhunter's
//! `list_machine`): the URL, method, raw-token `Authorization` header, the request
//! keys `charge_type`, `page_index`, `page_size`, `gpu_idle_num`,
//! `region_sign_list`, `gpu_type_name`, the envelope `code`/`msg`/`data.list`/
//! `data.max_page`, and the item fields `machine_id`, `region_name`, `region_sign`,
//! `gpu_name`, `gpu_idle_num`, `payg`, `payg_price` (example 2720 for an RTX 4090).
//! Assumed: `gpu_number` as the machine's GPU count (only informational here), that
//! `payg_price` is per GPU-hour in 1/1000 CNY (it matches the market page's ¥/卡·时
//! prices), that `gpu_idle_num: 0` with empty filters lists every machine, and that
//! AutoDL has no official public API (this is the web console's).

use serde::Deserialize;

use super::{
    adapter_keys, bad_record, json, str_at, Adapter, AdapterError, Page, ParseCtx, Request,
};
use crate::model::{Parsed, PriceUnit, RawOffer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default = "default_pages")]
    pages: u32,
    #[serde(default = "default_page_size")]
    page_size: u32,
}

fn default_pages() -> u32 {
    10
}

fn default_page_size() -> u32 {
    100
}

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    let k: Keys = adapter_keys(keys)?;
    if !(1..=100).contains(&k.pages) {
        return Err(AdapterError::Keys(format!(
            "key `pages` must be from 1 to 100, found {}",
            k.pages
        )));
    }
    if !(1..=1000).contains(&k.page_size) {
        return Err(AdapterError::Keys(format!(
            "key `page_size` must be from 1 to 1000, found {}",
            k.page_size
        )));
    }
    Ok(Box::new(AutoDl {
        pages: k.pages,
        page_size: k.page_size,
    }))
}

pub struct AutoDl {
    pages: u32,
    page_size: u32,
}

#[derive(Deserialize)]
struct Response {
    code: String,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    list: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Machine {
    machine_id: String,
    #[serde(default)]
    region_name: Option<String>,
    gpu_name: String,
    #[serde(default)]
    gpu_idle_num: Option<f64>,
    #[serde(default)]
    payg_price: Option<f64>,
}

impl Adapter for AutoDl {
    fn requests(
        &self,
        url: &str,
        secret: Option<&str>,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Request>, AdapterError> {
        Ok((1..=self.pages)
            .map(|page| {
                let mut r = Request::get(url);
                r.method = "POST".into();
                r.headers
                    .push(("Content-Type".into(), "application/json".into()));
                if let Some(token) = secret {
                    r.headers.push(("Authorization".into(), token.to_string()));
                }
                r.body = Some(
                    serde_json::json!({
                        "charge_type": "payg",
                        "page_index": page,
                        "page_size": self.page_size,
                        "gpu_idle_num": 0,
                        "region_sign_list": [],
                        "gpu_type_name": [],
                    })
                    .to_string(),
                );
                r.label = format!("page{page}");
                r
            })
            .collect())
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let resp: Response = json(&page.body)?;
        if resp.code != "Success" && resp.code != "OK" {
            return Err(AdapterError::Api(format!(
                "AutoDL answered code {:?}: {}",
                resp.code,
                resp.msg.unwrap_or_default()
            )));
        }
        let list = resp
            .data
            .and_then(|d| d.list)
            .ok_or_else(|| AdapterError::Payload("no `data.list` in the AutoDL response".into()))?;
        let mut out = Parsed::default();
        for (i, value) in list.into_iter().enumerate() {
            let m: Machine = match serde_json::from_value(value.clone()) {
                Ok(m) => m,
                Err(e) => {
                    let id = Some(str_at(&value, "machine_id")).filter(|s| !s.is_empty());
                    out.rejects.push(bad_record(
                        id.unwrap_or_else(|| format!("#{i}")),
                        str_at(&value, "gpu_name"),
                        format!("data.list[{i}]: {e}"),
                    ));
                    continue;
                }
            };
            let mut o = RawOffer::new(ctx.provider, m.machine_id, m.gpu_name);
            o.region = m
                .region_name
                .filter(|r| !r.trim().is_empty())
                .map(Into::into);
            o.gpu_count = Some(1.0);
            o.gpus_available = m.gpu_idle_num;
            o.price = m.payg_price;
            o.currency = "CNY".into();
            o.price_unit = PriceUnit::parse("thousandths/gpu-hour").expect("static unit");
            out.offers.push(o);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::feed::parse_feed;
    use std::path::Path;

    fn adapter(extra: &str) -> Result<Box<dyn Adapter>, String> {
        parse_feed(
            Path::new("/feeds/a.toml"),
            &format!("format = 'autodl'\nurl = 'a.json'\n{extra}"),
        )
        .map(|f| f.adapter)
        .map_err(|e| e.to_string())
    }

    fn parse(body: &str) -> Result<Parsed, String> {
        let a = adapter("").unwrap();
        super::super::parse_page(&*a, "autodl", "", body)
    }

    #[test]
    fn machines_become_per_gpu_offers() {
        let p = parse(
            r#"{"code":"Success","msg":"","data":{"list":[
              {"machine_id":"3a5e9c01b2","machine_alias":"063机","region_name":"西北B区","region_sign":"west-B","gpu_name":"RTX 4090","gpu_number":8,"gpu_idle_num":3,"gpu_order_num":3,"payg":true,"payg_price":1980},
              {"machine_id":"77f0d1e2c3","region_name":"北京B区","gpu_name":"RTX 4090D","gpu_number":8,"gpu_idle_num":0,"payg_price":null},
              {"machine_id":"bad","gpu_name":"RTX 3090","payg_price":"cheap"}
            ],"page_index":1,"max_page":1}}"#,
        )
        .unwrap();
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            &'a str,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        );
        let rows = p.offers.rows();
        let got: Vec<Row> = rows
            .iter()
            .map(|o| {
                (
                    o.offer_id.as_str(),
                    o.region.as_deref(),
                    o.gpu_name_raw.as_str(),
                    o.gpu_count,
                    o.gpus_available,
                    o.price,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "3a5e9c01b2",
                    Some("西北B区"),
                    "RTX 4090",
                    Some(1.0),
                    Some(3.0),
                    Some(1980.0)
                ),
                (
                    "77f0d1e2c3",
                    Some("北京B区"),
                    "RTX 4090D",
                    Some(1.0),
                    Some(0.0),
                    None
                ),
            ]
        );
        assert!(p.offers.iter().all(|o| o.currency == "CNY"
            && o.price_unit.label() == "thousandths/gpu-hour"
            && o.country.is_none()));
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].offer_id, "bad");
    }

    #[test]
    fn error_envelopes_are_malformed_payloads() {
        for (body, expected) in [
            (
                r#"{"code":"AuthorizeFailed","msg":"登录失效","data":null}"#,
                "AuthorizeFailed",
            ),
            (r#"{"code":"Success","data":{}}"#, "data.list"),
            (r#"{"data":{"list":[]}}"#, "code"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
        assert_eq!(
            parse(r#"{"code":"Success","data":{"list":[],"page_index":3,"max_page":2}}"#)
                .unwrap()
                .offers
                .len(),
            0
        );
    }

    #[test]
    fn live_requests_page_with_post_bodies() {
        let reqs = adapter("pages = 3\npage_size = 50")
            .unwrap()
            .requests(
                "https://api.autodl.com/api/v1/user/machine/list",
                Some("tok"),
                chrono::Utc::now(),
            )
            .unwrap();
        assert_eq!(reqs.len(), 3);
        for (i, r) in reqs.iter().enumerate() {
            assert_eq!(r.method, "POST");
            assert!(r.headers.contains(&("Authorization".into(), "tok".into())));
            let body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
            assert_eq!(
                (body["page_index"].as_u64(), body["page_size"].as_u64()),
                (Some(i as u64 + 1), Some(50))
            );
            assert_eq!(body["charge_type"], "payg");
        }
        for (extra, expected) in [
            ("pages = 0", "pages"),
            ("page_size = 5000", "page_size"),
            ("bogus = 1", "bogus"),
        ] {
            let e = adapter(extra).err().unwrap();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
    }
}
