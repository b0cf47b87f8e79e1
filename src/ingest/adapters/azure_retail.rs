//! `azure_retail`: the Azure Retail Prices API, `GET https://prices.azure.com/api/retail/prices`,
//! `{"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items": [...],
//! "NextPageLink": "https://prices.azure.com:443/api/retail/prices?...&$skip=100", "Count"}`.
//!
//! Each item is one meter: `armSkuName` (the VM size, e.g. `Standard_ND96isr_H100_v5`),
//! `armRegionName` (`eastus`), `productName` (`Virtual Machines NDsr H100 v5 Series`,
//! `... Series Windows` for Windows), `meterName` (`ND96isr H100 v5`, `... Spot`,
//! `... Low Priority`), `type` (`Consumption`, `Reservation`, `DevTestConsumption`),
//! `reservationTerm` (`1 Year`, `3 Years`, reservations only), `unitOfMeasure`
//! (`1 Hour`), `unitPrice`/`retailPrice`, `currencyCode`, `skuId`, `meterId`,
//! `tierMinimumUnits`, `isPrimaryMeterRegion`. Pages: the fetcher follows `NextPageLink`
//! until it is null or empty.
//!
//! Price as published: `unitPrice` in `currencyCode` (USD unless the URL asks for
//! another currency) for the whole VM:
//! * `Consumption`: per hour, `instance-hour`. `meterName` containing `Spot` is a Spot
//!   VM and containing `Low Priority` is a Low-Priority VM (Azure Batch's evictable
//!   capacity, the predecessor of Spot): both are `spot`; everything else `on_demand`.
//! * `Reservation`: `unitPrice` is the total for the whole term (the item still says
//!   `1 Hour`): `reservationTerm` `1 Year` is `instance-year`, `3 Years` is
//!   `instance-three_years` (26,280 h in `tables/units.toml`), price class `reserved`.
//!   The amount is stored untouched; normalisation divides by the term's hours.
//!
//! Kept: Linux prices of GPU VM sizes only. Azure's GPU sizes are the N-series, so
//! items that are not `serviceName` `Virtual Machines` with an `armSkuName` starting
//! `Standard_N` are not GPU offers and are dropped silently; so are non-primary meter
//! regions (`isPrimaryMeterRegion: false`, duplicates the preview API version adds)
//! and volume tiers above the first (`tierMinimumUnits > 0`). Counted as rejects
//! (`ParseReject`): Windows prices (`productName` contains `Windows`, reason
//! `windows_os`), Dev/Test prices (`dev_test_price`), units other than `1 Hour`
//! (`unsupported_unit`), unknown `type` or `reservationTerm`, bad items (`bad_record`).
//!
//! Model and GPU count: the VM size is looked up in `tables/instances.csv` (provider
//! `azure`); `gpu_name_raw` stays empty, so a GPU size missing from the catalogue is
//! rejected as `unknown_instance_type` by normalisation. Region: `armRegionName`,
//! country from `tables/regions.toml` `[azure]`. Offer id:
//! `<armRegionName>/<skuId>[/<term>]`. Provider: the feed's `provider`; when that is
//! the default (the format name) it is `azure`, the id the data tables use.
//!
//! Verified against public sources (Microsoft Learn "Azure Retail Prices overview",
//! client code and recorded responses using the API): the envelope and item field
//! names above, `NextPageLink` paging (null on the last page), `type` values, the
//! `reservationTerm` strings, `Spot`/`Low Priority` in `meterName`, Windows marked only
//! in `productName`, and reservation `unitPrice` being the total for the term (a
//! client's note verified against the live API: `"1 Year", unitPrice 1168.0` for a VM
//! whose hourly price is ~0.19). Assumed: every N-series size is a GPU size (the
//! NG-series AMD gaming sizes are N-series too and end as `unknown_instance_type`).

use serde::Deserialize;

use super::{json, keyless, str_at, Adapter, AdapterError, Page, ParseCtx};
use crate::model::{Basis, ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

/// The provider id of the data tables, used when the feed keeps the default provider.
pub const PROVIDER: &str = "azure";
const FORMAT: &str = "azure_retail";

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, AzureRetail)
}

pub struct AzureRetail;

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "Items")]
    items: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct NextLink {
    #[serde(rename = "NextPageLink", default)]
    next: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    currency_code: String,
    #[serde(default)]
    tier_minimum_units: f64,
    #[serde(default)]
    retail_price: Option<f64>,
    #[serde(default)]
    unit_price: Option<f64>,
    #[serde(default)]
    arm_region_name: String,
    #[serde(default)]
    meter_id: String,
    #[serde(default)]
    meter_name: String,
    #[serde(default)]
    sku_id: String,
    #[serde(default)]
    product_name: String,
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    unit_of_measure: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    is_primary_meter_region: bool,
    #[serde(default)]
    arm_sku_name: String,
    #[serde(default)]
    reservation_term: Option<String>,
}

/// What becomes of one price item.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// An offer with this class and published unit.
    Keep(PriceClass, PriceUnit),
    /// Not a GPU VM price (or a duplicate meter): not an offer at all.
    Drop,
    /// A GPU VM price gpurent does not compare: counted with a reason.
    Reject(&'static str, String),
}

fn classify(it: &Item) -> Verdict {
    if it.service_name != "Virtual Machines" || !it.arm_sku_name.starts_with("Standard_N") {
        return Verdict::Drop;
    }
    if !it.is_primary_meter_region || it.tier_minimum_units > 0.0 {
        return Verdict::Drop;
    }
    let what = format!("{} in {}", it.arm_sku_name, it.arm_region_name);
    if it.kind == "DevTestConsumption" {
        return Verdict::Reject(
            "dev_test_price",
            format!("{what}: Dev/Test price (not a public rental price)"),
        );
    }
    if it.product_name.contains("Windows") {
        return Verdict::Reject(
            "windows_os",
            format!(
                "{what}: productName {:?} is a Windows price (Linux only)",
                it.product_name
            ),
        );
    }
    if it.unit_of_measure != "1 Hour" {
        return Verdict::Reject(
            "unsupported_unit",
            format!(
                "{what}: unitOfMeasure {:?} (expected \"1 Hour\")",
                it.unit_of_measure
            ),
        );
    }
    match it.kind.as_str() {
        "Consumption" => {
            let spot = it.meter_name.contains("Spot") || it.meter_name.contains("Low Priority");
            let class = if spot {
                PriceClass::Spot
            } else {
                PriceClass::OnDemand
            };
            Verdict::Keep(class, PriceUnit::instance_hour())
        }
        "Reservation" => match it.reservation_term.as_deref() {
            Some("1 Year") => Verdict::Keep(
                PriceClass::Reserved,
                PriceUnit::new("unit", Basis::Instance, "year"),
            ),
            Some("3 Years") => Verdict::Keep(
                PriceClass::Reserved,
                PriceUnit::new("unit", Basis::Instance, "three_years"),
            ),
            other => Verdict::Reject(
                "unsupported_term",
                format!("{what}: reservationTerm {other:?}"),
            ),
        },
        other => Verdict::Reject("unsupported_price_type", format!("{what}: type {other:?}")),
    }
}

fn term_suffix(term: Option<&str>) -> &'static str {
    match term {
        Some("1 Year") => "/1y",
        Some("3 Years") => "/3y",
        _ => "",
    }
}

impl Adapter for AzureRetail {
    fn next_page(&self, _url: &str, body: &[u8]) -> Option<String> {
        serde_json::from_slice::<NextLink>(body)
            .ok()
            .and_then(|n| n.next)
            .filter(|l| !l.trim().is_empty())
    }

    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let resp: Response = json(&page.body)?;
        let provider = if ctx.provider == FORMAT {
            PROVIDER
        } else {
            ctx.provider
        };
        let mut out = Parsed::default();
        for (i, value) in resp.items.into_iter().enumerate() {
            let item: Item = match serde_json::from_value(value.clone()) {
                Ok(it) => it,
                Err(e) => {
                    let s = |k: &str| str_at(&value, k);
                    let sku = s("armSkuName");
                    // A bad item of a non-GPU size is not an offer either.
                    if !sku.is_empty() && !sku.starts_with("Standard_N") {
                        continue;
                    }
                    out.rejects.push(ParseReject {
                        offer_id: format!("{}/{}", s("armRegionName"), s("skuId")),
                        gpu_name_raw: String::new(),
                        reason: "bad_record".into(),
                        detail: format!("Items[{i}] ({sku}): {e}"),
                    });
                    continue;
                }
            };
            let id_base = if item.sku_id.is_empty() {
                &item.meter_id
            } else {
                &item.sku_id
            };
            let offer_id = format!(
                "{}/{}{}",
                item.arm_region_name,
                id_base,
                term_suffix(
                    item.reservation_term
                        .as_deref()
                        .filter(|_| item.kind == "Reservation")
                )
            );
            match classify(&item) {
                Verdict::Drop => {}
                Verdict::Reject(reason, detail) => out.rejects.push(ParseReject {
                    offer_id,
                    gpu_name_raw: String::new(),
                    reason: reason.into(),
                    detail,
                }),
                Verdict::Keep(class, unit) => {
                    let mut o = RawOffer::new(provider, offer_id, "");
                    o.instance_type = Some(item.arm_sku_name.clone().into());
                    o.region = (Some(item.arm_region_name.clone()).filter(|r| !r.is_empty()))
                        .map(Into::into);
                    o.price_class = class;
                    o.price = item.unit_price.or(item.retail_price);
                    o.currency = item.currency_code.clone().into();
                    o.price_unit = unit;
                    out.offers.push(o);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, product: &str, meter: &str, term: Option<&str>) -> Item {
        Item {
            currency_code: "USD".into(),
            tier_minimum_units: 0.0,
            retail_price: Some(98.32),
            unit_price: Some(98.32),
            arm_region_name: "eastus".into(),
            meter_id: "m-1".into(),
            meter_name: meter.into(),
            sku_id: "DZH318Z0NB1K/00B4".into(),
            product_name: product.into(),
            service_name: "Virtual Machines".into(),
            unit_of_measure: "1 Hour".into(),
            kind: kind.into(),
            is_primary_meter_region: true,
            arm_sku_name: "Standard_ND96isr_H100_v5".into(),
            reservation_term: term.map(str::to_string),
        }
    }

    fn check(it: Item, expected: &str) {
        let got = match classify(&it) {
            Verdict::Keep(c, u) => format!("{} {}", c.as_str(), u.label()),
            Verdict::Drop => "drop".into(),
            Verdict::Reject(r, _) => format!("reject {r}"),
        };
        assert_eq!(got, expected, "{it:?}");
    }

    #[test]
    fn which_items_are_kept_and_why() {
        let linux = "Virtual Machines NDsr H100 v5 Series";
        let win = "Virtual Machines NDsr H100 v5 Series Windows";
        // (type, product, meter, reservation term) → verdict
        #[rustfmt::skip]
        let cases = [
            ("Consumption", linux, "ND96isr H100 v5", None, "on_demand instance-hour"),
            ("Consumption", linux, "ND96isr H100 v5 Spot", None, "spot instance-hour"),
            ("Consumption", linux, "ND96isr H100 v5 Low Priority", None, "spot instance-hour"),
            ("Reservation", linux, "ND96isr H100 v5", Some("1 Year"), "reserved instance-year"),
            ("Reservation", linux, "ND96isr H100 v5", Some("3 Years"), "reserved instance-three_years"),
            ("Reservation", linux, "ND96isr H100 v5", Some("5 Years"), "reject unsupported_term"),
            ("Reservation", linux, "ND96isr H100 v5", None, "reject unsupported_term"),
            ("Consumption", win, "ND96isr H100 v5", None, "reject windows_os"),
            ("Consumption", win, "ND96isr H100 v5 Spot", None, "reject windows_os"),
            ("DevTestConsumption", linux, "ND96isr H100 v5", None, "reject dev_test_price"),
            ("SavingsPlan", linux, "ND96isr H100 v5", None, "reject unsupported_price_type"),
        ];
        for (kind, product, meter, term, expected) in cases {
            check(item(kind, product, meter, term), expected);
        }
        let mut month = item("Consumption", linux, "ND96isr H100 v5", None);
        month.unit_of_measure = "1/Month".into();
        check(month, "reject unsupported_unit");
        // Not GPU VM prices at all: dropped, not counted.
        let mut cpu = item(
            "Consumption",
            "Virtual Machines Dsv5 Series",
            "D2s v5",
            None,
        );
        cpu.arm_sku_name = "Standard_D2s_v5".into();
        check(cpu, "drop");
        let mut disk = item("Consumption", linux, "ND96isr H100 v5", None);
        disk.service_name = "Storage".into();
        check(disk, "drop");
        let mut secondary = item("Consumption", linux, "ND96isr H100 v5", None);
        secondary.is_primary_meter_region = false;
        check(secondary, "drop");
        let mut tier = item("Consumption", linux, "ND96isr H100 v5", None);
        tier.tier_minimum_units = 100.0;
        check(tier, "drop");
    }

    fn parse(body: &str, provider: &str) -> Parsed {
        super::super::parse_page(&AzureRetail, provider, "", body).unwrap()
    }

    #[test]
    fn offers_carry_the_published_price_and_the_vm_size() {
        let body = r#"{"BillingCurrency":"USD","CustomerEntityId":"Default","Items":[
            {"currencyCode":"USD","tierMinimumUnits":0.0,"retailPrice":98.32,"unitPrice":98.32,"armRegionName":"eastus","location":"US East","meterId":"m1","meterName":"ND96isr H100 v5","productId":"P","skuId":"P/00B4","productName":"Virtual Machines NDsr H100 v5 Series","skuName":"ND96isr H100 v5","serviceName":"Virtual Machines","serviceFamily":"Compute","unitOfMeasure":"1 Hour","type":"Consumption","isPrimaryMeterRegion":true,"armSkuName":"Standard_ND96isr_H100_v5"},
            {"currencyCode":"USD","tierMinimumUnits":0.0,"reservationTerm":"3 Years","retailPrice":1200000.0,"unitPrice":1200000.0,"armRegionName":"eastus","location":"US East","meterId":"m1","meterName":"ND96isr H100 v5","productId":"P","skuId":"P/01DF","productName":"Virtual Machines NDsr H100 v5 Series","skuName":"ND96isr H100 v5","serviceName":"Virtual Machines","serviceFamily":"Compute","unitOfMeasure":"1 Hour","type":"Reservation","isPrimaryMeterRegion":true,"armSkuName":"Standard_ND96isr_H100_v5"},
            {"currencyCode":"USD","armRegionName":"eastus","type":"Consumption","armSkuName":"Standard_NC6s_v3","unitPrice":"three"},
            {"currencyCode":"USD","armRegionName":"eastus","type":"Consumption","armSkuName":"Standard_D2s_v5","unitPrice":"x"}
        ],"NextPageLink":null,"Count":4}"#;
        let p = parse(body, "azure_retail");
        assert_eq!(p.offers.len(), 2);
        let od = &p.offers.row(0);
        assert_eq!(
            (
                od.provider.as_str(),
                od.offer_id.as_str(),
                od.instance_type.as_deref(),
                od.region.as_deref()
            ),
            (
                "azure",
                "eastus/P/00B4",
                Some("Standard_ND96isr_H100_v5"),
                Some("eastus")
            )
        );
        assert_eq!(
            (od.price, od.gpu_name_raw.as_str(), od.gpu_count),
            (Some(98.32), "", None)
        );
        let ri = &p.offers.row(1);
        assert_eq!(
            (ri.offer_id.as_str(), ri.price),
            ("eastus/P/01DF/3y", Some(1_200_000.0))
        );
        assert_eq!(ri.price_unit.label(), "instance-three_years");
        // The malformed GPU item is counted; the malformed CPU item is not an offer.
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].reason, "bad_record");
        // A feed that names its provider keeps it.
        assert_eq!(parse(body, "azure-cn").offers.row(0).provider, "azure-cn");
    }

    #[test]
    fn next_page_link() {
        let a = AzureRetail;
        assert_eq!(
            a.next_page("", br#"{"Items":[],"NextPageLink":"https://prices.azure.com:443/api/retail/prices?$skip=100"}"#),
            Some("https://prices.azure.com:443/api/retail/prices?$skip=100".into())
        );
        assert_eq!(
            a.next_page("", br#"{"Items":[],"NextPageLink":null}"#),
            None
        );
        assert_eq!(a.next_page("", br#"{"Items":[],"NextPageLink":""}"#), None);
        assert_eq!(a.next_page("", br#"{"Items":[]}"#), None);
        assert_eq!(a.next_page("", b"not json"), None);
    }

    #[test]
    fn a_payload_without_items_is_malformed() {
        let e =
            super::super::parse_page(&AzureRetail, "azure", "", r#"{"error":"x"}"#).unwrap_err();
        assert!(e.contains("Items"), "{e}");
    }
}
