//! `skypilot_csv`: a SkyPilot service catalogue `vms.csv` (schema v5), used to backfill
//! real history from dated snapshots.
//!
//! Columns are found by header name (their order differs per cloud): `InstanceType`,
//! `AcceleratorName`, `AcceleratorCount`, `Price`, `SpotPrice`, `Region`, optional
//! `AvailabilityZone` and `GpuInfo` (a Python-dict string whose `SizeInMiB` gives GPU
//! memory). Prices are USD per hour for the whole row: per instance-hour, or for GCP's
//! accelerator rows (empty `InstanceType`) per `AcceleratorCount` attached GPUs only.
//! Rules (verified against the real files in `shared/data/skypilot-catalog`):
//! rows without an accelerator are host VMs, not GPU offers; a GCP GPU-only row is
//! priced together with each host VM bound to it in the same zone (`a2-highgpu-1g` =
//! its VM row + the `A100` x1 row), as the provider bills it, and is rejected as
//! `gpu_only_price` where no such host exists (N1-attached GPUs); a `Price`
//! of 0 or empty is missing, not free; on-demand prices repeat once per availability
//! zone, so one on-demand offer is kept per instance type and region, and one spot
//! offer per zone.

use std::collections::{HashMap, HashSet};

use super::{keyless, Adapter, AdapterError, Header, Page, ParseCtx};
use crate::model::{ParseReject, Parsed, PriceClass, PriceUnit, RawOffer};

pub fn build(keys: toml::Table) -> Result<Box<dyn Adapter>, AdapterError> {
    keyless(keys, SkyPilotCsv)
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

fn price(s: &str) -> Result<Option<f64>, AdapterError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let v: f64 = s.parse().map_err(|_| AdapterError::Value {
        value: format!("{s:?}"),
        expected: "a number",
    })?;
    Ok((v > 0.0).then_some(v))
}

/// One trimmed cell of a record ("" when the row is short).
fn get(rec: &csv::StringRecord, c: usize) -> &str {
    rec.get(c).map(str::trim).unwrap_or("")
}

/// A host VM row (an instance type without an accelerator) and its prices.
#[derive(Debug, Clone)]
struct HostVm {
    instance_type: String,
    od: Option<f64>,
    spot: Option<f64>,
}

/// Host VM rows by (region, zone).
type Hosts = HashMap<(String, String), Vec<HostVm>>;

/// GCP machine families whose GPUs are fixed by the machine type, and the SkyPilot
/// accelerator name each one carries (SkyPilot prices the VM and its GPUs as two rows;
/// the instance's price is their sum). N1 machines, to which T4, V100, P100, P4 and K80
/// attach in any number, have no bound host: their GPU-only rows are not comparable
/// with instance prices and are rejected as `gpu_only_price`.
const BOUND_FAMILIES: [(&str, &str); 6] = [
    ("a2-highgpu-", "A100"),
    ("a2-megagpu-", "A100"),
    ("a2-ultragpu-", "A100-80GB"),
    ("a3-highgpu-", "H100"),
    ("a3-megagpu-", "H100-MEGA"),
    ("g2-standard-", "L4"),
];

fn host_vms(
    records: &[csv::StringRecord],
    (c_it, c_acc, c_price, c_region): (usize, usize, usize, usize),
    c_spot: Option<usize>,
    c_zone: Option<usize>,
) -> Hosts {
    let mut hosts = Hosts::new();
    for rec in records {
        let it = get(rec, c_it);
        if it.is_empty() || !get(rec, c_acc).is_empty() {
            continue;
        }
        let zone = c_zone.map(|c| get(rec, c)).unwrap_or("").to_string();
        hosts
            .entry((get(rec, c_region).to_string(), zone))
            .or_default()
            .push(HostVm {
                instance_type: it.to_string(),
                od: price(get(rec, c_price)).ok().flatten(),
                spot: c_spot.and_then(|c| price(get(rec, c)).ok().flatten()),
            });
    }
    hosts
}

/// The host VMs in `region`/`zone` bound to `count` GPUs named `acc` (the GPU count of a
/// machine type comes from `tables/instances.csv`).
fn bound_hosts<'a>(
    hosts: &'a Hosts,
    provider: &str,
    acc: &str,
    count: f64,
    region: &str,
    zone: &str,
) -> Vec<&'a HostVm> {
    let tables = crate::tables::Tables::embedded();
    let Some(vms) = hosts.get(&(region.to_string(), zone.to_string())) else {
        return Vec::new();
    };
    vms.iter()
        .filter(|h| {
            BOUND_FAMILIES
                .iter()
                .any(|(prefix, a)| h.instance_type.starts_with(prefix) && *a == acc)
                && tables
                    .instance(provider, &h.instance_type)
                    .is_some_and(|g| (g.gpu_count - count).abs() < 1e-9)
        })
        .collect()
}

fn gpu_only_reject(acc: &str, count: f64, region: &str, zone: &str) -> ParseReject {
    ParseReject {
        offer_id: format!("{acc}x{count}|{zone}"),
        gpu_name_raw: acc.to_string(),
        reason: "gpu_only_price".into(),
        detail: format!(
            "{acc} x{count} in {region}/{zone} is priced without its host VM and no machine type bound to it is listed there: not comparable with instance prices"
        ),
    }
}

/// The catalogue's columns: required ones by index, optional ones if present.
struct Cols {
    it: usize,
    acc: usize,
    cnt: usize,
    price: usize,
    region: usize,
    spot: Option<usize>,
    zone: Option<usize>,
    info: Option<usize>,
}

impl Cols {
    fn of(headers: &csv::StringRecord) -> Result<Self, AdapterError> {
        let h = Header::of(headers);
        let need = |n: &str| h.need(n, "missing from the header");
        Ok(Self {
            it: need("InstanceType")?,
            acc: need("AcceleratorName")?,
            cnt: need("AcceleratorCount")?,
            price: need("Price")?,
            region: need("Region")?,
            spot: h.find(&["SpotPrice"]),
            zone: h.find(&["AvailabilityZone"]),
            info: h.find(&["GpuInfo"]),
        })
    }
}

/// A row's GPU count and on-demand and spot prices, or the reject saying why not.
fn row_numbers(
    rec: &csv::StringRecord,
    c: &Cols,
    line: usize,
    region: &str,
) -> Result<(f64, Option<f64>, Option<f64>), ParseReject> {
    let (acc, it) = (get(rec, c.acc), get(rec, c.it));
    let count = match get(rec, c.cnt).parse::<f64>() {
        Ok(n) if n > 0.0 => n,
        _ => {
            return Err(ParseReject {
                offer_id: format!("line{line}"),
                gpu_name_raw: acc.to_string(),
                reason: "bad_field".into(),
                detail: format!(
                    "line {line}: column \"AcceleratorCount\": {:?} is not a positive number",
                    get(rec, c.cnt)
                ),
            })
        }
    };
    match (
        price(get(rec, c.price)),
        c.spot.map(|s| price(get(rec, s))).transpose(),
    ) {
        (Ok(od), Ok(spot)) => Ok((count, od, spot.flatten())),
        (Err(e), _) | (_, Err(e)) => Err(ParseReject {
            offer_id: format!("{}|{region}", if it.is_empty() { acc } else { it }),
            gpu_name_raw: acc.to_string(),
            reason: "bad_field".into(),
            detail: format!("line {line}: price {e}"),
        }),
    }
}

/// One priced product of a row: instance type, on-demand and spot price.
type Priced = (String, Option<f64>, Option<f64>);

/// Offers of a row's priced products, each (product, region) on demand and each
/// (product, zone or region) spot once.
struct Emitter {
    out: Parsed,
    seen_od: HashSet<(String, String)>,
    seen_spot: HashSet<(String, String)>,
}

impl Emitter {
    fn emit(&mut self, base: &RawOffer, priced: Vec<Priced>, region: &str, zone: &str) {
        for (product, od, spot) in priced {
            let mut base = base.clone();
            base.instance_type = Some(product.clone().into());
            if self.seen_od.insert((product.clone(), region.to_string())) {
                let mut o = base.clone();
                o.offer_id = format!("{product}|{region}").into();
                o.price = od;
                self.out.offers.push(o);
            }
            if let Some(sp) = spot {
                let where_ = if zone.is_empty() { region } else { zone };
                if self.seen_spot.insert((product.clone(), where_.to_string())) {
                    let mut o = base;
                    o.offer_id = format!("{product}|{where_}").into();
                    o.price_class = PriceClass::Spot;
                    o.price = Some(sp);
                    self.out.offers.push(o);
                }
            }
        }
    }
}

impl Adapter for SkyPilotCsv {
    fn parse(&self, page: &Page, ctx: &ParseCtx) -> Result<Parsed, AdapterError> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(page.body.as_slice());
        let headers = rdr
            .headers()
            .map_err(|error| AdapterError::CsvHeader { error })?
            .clone();
        let c = Cols::of(&headers)?;
        let records: Vec<csv::StringRecord> = rdr
            .records()
            .enumerate()
            .map(|(i, r)| r.map_err(|error| AdapterError::CsvLine { line: i + 2, error }))
            .collect::<Result<_, _>>()?;
        let hosts = host_vms(&records, (c.it, c.acc, c.price, c.region), c.spot, c.zone);
        let mut em = Emitter {
            out: Parsed::default(),
            seen_od: HashSet::new(),
            seen_spot: HashSet::new(),
        };
        for (i, rec) in records.iter().enumerate() {
            let acc = get(rec, c.acc);
            if acc.is_empty() {
                continue;
            }
            let it = get(rec, c.it);
            let region = get(rec, c.region).to_string();
            let zone = c.zone.map(|z| get(rec, z)).unwrap_or("").to_string();
            let (count, od, spot) = match row_numbers(rec, &c, i + 2, &region) {
                Ok(n) => n,
                Err(r) => {
                    em.out.rejects.push(r);
                    continue;
                }
            };
            let mut base = RawOffer::new(ctx.provider, String::new(), acc);
            base.region = (!region.is_empty()).then(|| region.as_str().into());
            base.gpu_count = Some(count);
            base.gpu_memory_gb = c.info.map(|x| get(rec, x)).and_then(gpu_memory_gb);
            base.currency = "USD".into();
            base.price_unit = PriceUnit::instance_hour();
            // An instance row is priced whole; a GPU-only row (GCP) is priced with each
            // host VM that is bound to it in the same zone, or not at all.
            let priced: Vec<Priced> = if it.is_empty() {
                let bound = bound_hosts(&hosts, ctx.provider, acc, count, &region, &zone);
                if bound.is_empty() {
                    em.out
                        .rejects
                        .push(gpu_only_reject(acc, count, &region, &zone));
                    continue;
                }
                let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
                bound
                    .into_iter()
                    .map(|h| (h.instance_type.clone(), sum(h.od, od), sum(h.spot, spot)))
                    .collect()
            } else {
                vec![(it.to_string(), od, spot)]
            };
            em.emit(&base, priced, &region, &zone);
        }
        Ok(em.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(csv: &str) -> Parsed {
        super::super::parse_page(&SkyPilotCsv, "aws", "", csv).unwrap()
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
            .map(|o| (o.offer_id.to_string(), o.price_class, o.price))
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
        assert_eq!(p.offers.row(0).gpu_memory_gb, Some(80.0));
    }

    #[test]
    fn gcp_gpu_rows_are_priced_with_their_bound_host() {
        // GCP's layout: host VM rows without an accelerator, GPU rows without a type.
        let csv = "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n\
                   a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.9,0.3\n\
                   a2-highgpu-2g,24.0,170.0,,,,us-central1,us-central1-a,1.8,0.6\n\
                   n1-highmem-8,8.0,52.0,,,,us-central1,us-central1-a,0.47,0.1\n\
                   ,,,A100,1.0,,us-central1,us-central1-a,2.9,0.9\n\
                   ,,,A100,2.0,,us-central1,us-central1-a,5.8,1.8\n\
                   ,,,T4,1.0,,us-central1,us-central1-a,0.35,0.11\n";
        let p = super::super::parse_page(&SkyPilotCsv, "gcp", "", csv).unwrap();
        let got: Vec<(String, Option<String>, PriceClass, f64)> = p
            .offers
            .iter()
            .map(|o| {
                let v = (o.price.unwrap() * 1e6).round() / 1e6;
                (
                    o.offer_id.to_string(),
                    o.instance_type.as_deref().map(str::to_string),
                    o.price_class,
                    v,
                )
            })
            .collect();
        let it = |s: &str| Some(s.to_string());
        assert_eq!(
            got,
            vec![
                (
                    "a2-highgpu-1g|us-central1".into(),
                    it("a2-highgpu-1g"),
                    PriceClass::OnDemand,
                    3.8
                ),
                (
                    "a2-highgpu-1g|us-central1-a".into(),
                    it("a2-highgpu-1g"),
                    PriceClass::Spot,
                    1.2
                ),
                (
                    "a2-highgpu-2g|us-central1".into(),
                    it("a2-highgpu-2g"),
                    PriceClass::OnDemand,
                    7.6
                ),
                (
                    "a2-highgpu-2g|us-central1-a".into(),
                    it("a2-highgpu-2g"),
                    PriceClass::Spot,
                    2.4
                ),
            ]
        );
        // The T4 attaches to any N1 machine: no bound host, so not an instance price.
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].reason, "gpu_only_price");
        assert_eq!(p.rejects[0].gpu_name_raw, "T4");
    }
}
