//! `skypilot_csv`: a SkyPilot service catalogue `vms.csv` (schema v5), used to backfill
//! real history from dated snapshots.
//!
//! Columns are found by header name (their order differs per cloud): `InstanceType`,
//! `AcceleratorName`, `AcceleratorCount`, `Price`, `SpotPrice`, `Region`, optional
//! `AvailabilityZone` and `GpuInfo` (a Python-dict string whose `SizeInMiB` gives GPU
//! memory). Prices are USD per hour for the whole row: per instance-hour, or for GCP's
//! accelerator rows (empty `InstanceType`) per `AcceleratorCount` attached GPUs.
//! Rules (verified against the real files in `shared/data/skypilot-catalog`):
//! rows without an accelerator are host VMs, not GPU offers, and are skipped; a `Price`
//! of 0 or empty is missing, not free; on-demand prices repeat once per availability
//! zone, so one on-demand offer is kept per instance type and region, and one spot
//! offer per zone.

use std::collections::{HashMap, HashSet};

use super::{adapter_keys, Adapter, NoKeys, Page, ParseCtx};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, String> {
    let _: NoKeys = adapter_keys(keys)?;
    Ok(Box::new(SkyPilotCsv))
}

pub struct SkyPilotCsv;

/// GPU memory in GB from a `GpuInfo` string such as `{'Gpus': [{... 'SizeInMiB': 81920}}]}`.
pub fn gpu_memory_gb(info: &str) -> Option<f64> {
    let i = info.find("SizeInMiB")?;
    let digits: String = info[i + "SizeInMiB".len()..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse::<f64>()
        .ok()
        .filter(|m| *m > 0.0)
        .map(|mib| mib / 1024.0)
}

fn price(s: &str) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    Ok((v > 0.0).then_some(v))
}

impl Adapter for SkyPilotCsv {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, String> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(page.body.as_slice());
        let headers = rdr
            .headers()
            .map_err(|e| format!("invalid CSV header: {e}"))?
            .clone();
        let idx: HashMap<&str, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim(), i))
            .collect();
        let need = |n: &str| {
            idx.get(n)
                .copied()
                .ok_or_else(|| format!("column {n:?} missing from the header"))
        };
        let (c_it, c_acc, c_cnt, c_price, c_region) = (
            need("InstanceType")?,
            need("AcceleratorName")?,
            need("AcceleratorCount")?,
            need("Price")?,
            need("Region")?,
        );
        let c_spot = idx.get("SpotPrice").copied();
        let c_zone = idx.get("AvailabilityZone").copied();
        let c_info = idx.get("GpuInfo").copied();
        let mut out = Parsed::default();
        let mut seen_od: HashSet<(String, String)> = HashSet::new();
        let mut seen_spot: HashSet<(String, String)> = HashSet::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
            let get = |c: usize| rec.get(c).map(str::trim).unwrap_or("");
            let acc = get(c_acc);
            if acc.is_empty() {
                continue;
            }
            let it = get(c_it);
            let region = get(c_region).to_string();
            let zone = c_zone.map(get).unwrap_or("").to_string();
            let count = match get(c_cnt).parse::<f64>() {
                Ok(n) if n > 0.0 => n,
                _ => {
                    out.rejects.push(ParseReject {
                        offer_id: format!("line{line}"),
                        gpu_name_raw: acc.to_string(),
                        reason: "bad_field".into(),
                        detail: format!("line {line}: column \"AcceleratorCount\": {:?} is not a positive number", get(c_cnt)),
                    });
                    continue;
                }
            };
            let product = if it.is_empty() {
                format!("{acc}x{count}")
            } else {
                it.to_string()
            };
            let mut base = RawOffer::new(ctx.provider, String::new(), acc);
            base.instance_type = (!it.is_empty()).then(|| it.to_string());
            base.region = (!region.is_empty()).then(|| region.clone());
            base.gpu_count = Some(count);
            base.gpu_memory_gb = c_info.map(get).and_then(gpu_memory_gb);
            base.currency = "USD".into();
            base.price_unit = PriceUnit::instance_hour();
            let (od, spot) = match (
                price(get(c_price)),
                c_spot.map(|c| price(get(c))).transpose(),
            ) {
                (Ok(od), Ok(spot)) => (od, spot.flatten()),
                (Err(e), _) | (_, Err(e)) => {
                    out.rejects.push(ParseReject {
                        offer_id: format!("{product}|{region}"),
                        gpu_name_raw: acc.to_string(),
                        reason: "bad_field".into(),
                        detail: format!("line {line}: price {e}"),
                    });
                    continue;
                }
            };
            if seen_od.insert((product.clone(), region.clone())) {
                let mut o = base.clone();
                o.offer_id = format!("{product}|{region}");
                o.price = od;
                out.offers.push(o);
            }
            if let Some(sp) = spot {
                let where_ = if zone.is_empty() {
                    region.clone()
                } else {
                    zone.clone()
                };
                if seen_spot.insert((product.clone(), where_.clone())) {
                    let mut o = base;
                    o.offer_id = format!("{product}|{where_}");
                    o.price_class = PriceClass::Spot;
                    o.price = Some(sp);
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

    fn parse(csv: &str) -> Parsed {
        let ctx = ParseCtx {
            feed: "sky",
            provider: "aws",
            observed_at: chrono::Utc::now(),
        };
        SkyPilotCsv
            .parse(
                &Page {
                    label: String::new(),
                    body: csv.as_bytes().to_vec(),
                },
                &ctx,
            )
            .unwrap()
    }

    #[test]
    fn memory_from_gpu_info() {
        for (info, want) in [
            (
                "{'Gpus': [{'Name': 'H100', 'MemoryInfo': {'SizeInMiB': 81920}}]}",
                Some(80.0),
            ),
            (
                "{'Gpus': [{'MemoryInfo': {'SizeInMiB': 16384}}]}",
                Some(16.0),
            ),
            ("K80", None),
            ("", None),
        ] {
            assert_eq!(gpu_memory_gb(info), want, "{info}");
        }
    }

    #[test]
    fn one_on_demand_per_region_one_spot_per_zone() {
        let p = parse(
            "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone\n\
             p5.48xlarge,H100,8.0,192.0,2048.0,\"{'SizeInMiB': 81920}\",98.32,68.824,us-east-1,use1-az5\n\
             p5.48xlarge,H100,8.0,192.0,2048.0,\"{'SizeInMiB': 81920}\",98.32,60.1,us-east-1,use1-az6\n\
             m5.large,,,2.0,8.0,,0.096,0.03,us-east-1,use1-az1\n\
             g5.xlarge,A10G,1.0,4.0,16.0,,0.0,,us-east-1,use1-az1\n",
        );
        let got: Vec<(String, PriceClass, Option<f64>)> = p
            .offers
            .iter()
            .map(|o| (o.offer_id.clone(), o.price_class, o.price))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "p5.48xlarge|us-east-1".into(),
                    PriceClass::OnDemand,
                    Some(98.32)
                ),
                (
                    "p5.48xlarge|use1-az5".into(),
                    PriceClass::Spot,
                    Some(68.824)
                ),
                ("p5.48xlarge|use1-az6".into(), PriceClass::Spot, Some(60.1)),
                // A zero price is missing, not free: kept so normalisation rejects it.
                ("g5.xlarge|us-east-1".into(), PriceClass::OnDemand, None),
            ]
        );
        assert_eq!(p.offers[0].gpu_memory_gb, Some(80.0));
    }
}
