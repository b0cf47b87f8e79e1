//! Tests on the real public data in `../shared/data` (SkyPilot catalogues, Alibaba and
//! Tencent CNY list prices, the 2025-2026 China quotes, ECB rates). A user's clone has no `../shared`: these tests
//! then print SKIPPED and pass, unless `GPURENT_REQUIRE_SHARED=1` (set by `.ci/run`),
//! which makes a missing directory a failure.

use std::path::{Path, PathBuf};

use gpurent::ingest::backfill::{self, Spec};
use gpurent::store::Store;
use gpurent::tables::Tables;

use crate::common::*;

fn spec_format(format: &str) -> Spec {
    Spec {
        format: Some(format.into()),
        feed_file: None,
        provider: None,
        at: None,
    }
}

fn spec_feed(file: &str, at: Option<&str>) -> Spec {
    Spec {
        format: None,
        feed_file: Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("feeds/backfill")
                .join(file),
        ),
        provider: None,
        at: at.map(|a| a.parse().unwrap()),
    }
}

async fn import(spec: &Spec, paths: &[PathBuf], store: &Store) -> Vec<backfill::FileOutcome> {
    let out = backfill::backfill(spec, paths, store, Tables::embedded(), |_, _, _| {})
        .await
        .unwrap();
    for o in &out {
        assert!(o.error.is_none(), "{}: {:?}", o.path.display(), o.error);
    }
    out
}

/// The ECB's real history of rates, imported as provider `ecb` observed 2024-10-11.
async fn import_ecb(data: &Path, store: &Store) {
    let mut ecb_spec = spec_format("ecb_fx");
    ecb_spec.provider = Some("ecb".into());
    ecb_spec.at = Some("2024-10-11T00:00:00Z".parse().unwrap());
    import(&ecb_spec, &[data.join("ecb-fx/eurofxref-hist.csv")], store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skypilot_aws_backfill() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path());
    let aws = data.join("skypilot-catalog/aws");
    let first = import(
        &spec_format("skypilot_csv"),
        std::slice::from_ref(&aws),
        &store,
    )
    .await;
    assert_eq!(first.len(), 17);
    assert!(first.iter().all(|o| o.counts.is_some_and(|c| c.0 > 100)));
    let offers = read_all(&tmp.path().join("offers")).unwrap();
    let day = rows_where(
        &offers,
        &[
            ("offer_id", "p5.48xlarge|us-east-1"),
            ("price_class", "on_demand"),
        ],
    );
    let dates: Vec<String> = (0..day.height())
        .map(|i| {
            day.column("observed_at")
                .unwrap()
                .get(i)
                .unwrap()
                .to_string()
        })
        .collect();
    let i = dates
        .iter()
        .position(|d| d.starts_with("2023-08-01"))
        .expect("p5 on 2023-08-01");
    assert_eq!(str_col(&day, "gpu_model")[i], "H100-SXM-80GB");
    assert_eq!(f64_col(&day, "gpu_count")[i], 8.0);
    assert_eq!(f64_col(&day, "usd_per_gpu_hour")[i], 98.32 / 8.0);
    assert_eq!(str_col(&day, "bloc")[i], "US");
    assert_eq!(str_col(&day, "provider")[i], "aws");
    // Re-running adds nothing.
    let again = import(&spec_format("skypilot_csv"), &[aws], &store).await;
    assert!(again.iter().all(|o| o.counts.is_none()));
    assert_eq!(
        read_all(&tmp.path().join("offers")).unwrap().height(),
        offers.height()
    );
}

/// ECB USD and CNY per EUR on the latest date on or before `date`, read straight from
/// the CSV (independent of gpurent's as-of join).
fn ecb(data: &Path, date: &str) -> (String, f64, f64) {
    ecb_from(data, "eurofxref-hist.csv", date)
}

/// [`ecb`] from the ECB file `file` of `ecb-fx/`.
fn ecb_from(data: &Path, file: &str, date: &str) -> (String, f64, f64) {
    let mut rdr = csv::Reader::from_path(data.join("ecb-fx").join(file)).unwrap();
    let h = rdr.headers().unwrap().clone();
    let (iu, ic) = (
        h.iter().position(|x| x == "USD").unwrap(),
        h.iter().position(|x| x == "CNY").unwrap(),
    );
    rdr.records()
        .map(|r| r.unwrap())
        .filter(|r| &r[0] <= date && &r[iu] != "N/A" && &r[ic] != "N/A")
        .map(|r| {
            (
                r[0].to_string(),
                r[iu].parse().unwrap(),
                r[ic].parse().unwrap(),
            )
        })
        .max_by(|a: &(String, f64, f64), b| a.0.cmp(&b.0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn china_vs_us_a100_80gb_june_2023() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path());
    import_ecb(&data, &store).await;
    import(
        &spec_feed("alibaba-2023.toml", Some("2023-06-17T00:00:00Z")),
        &[data.join("arthurchiao-gpu-prices-2023/alibaba_cn-shanghai_gpu_prices_cny.csv")],
        &store,
    )
    .await;
    import(
        &spec_format("skypilot_csv"),
        &[data.join("skypilot-catalog/aws/2023-06-01/vms.csv")],
        &store,
    )
    .await;
    let offers = read_all(&tmp.path().join("offers")).unwrap();

    // Alibaba ecs.gn7e-c16g1.32xlarge: 8x A100 80GB, 277.93 CNY/hour; 2023-06-17 is a
    // Saturday, so the rate is Friday 2023-06-16's.
    let (fx_date, usd, cny) = ecb(&data, "2023-06-17");
    assert_eq!(fx_date, "2023-06-16");
    let cn = rows_where(&offers, &[("instance_type", "ecs.gn7e-c16g1.32xlarge")]);
    assert_eq!(cn.height(), 1);
    assert_eq!(str_col(&cn, "gpu_model")[0], "A100-SXM-80GB");
    assert_eq!(str_col(&cn, "bloc")[0], "CN");
    let cn_usd = 277.93 / 8.0 * usd / cny;
    assert!((f64_col(&cn, "usd_per_gpu_hour")[0] - cn_usd).abs() < 1e-9);
    let cn_ex = f64_col(&cn, "usd_per_gpu_hour_ex_vat")[0];
    assert!((cn_ex - cn_usd / 1.06).abs() < 1e-9);

    // AWS p4de.24xlarge: 8x A100 80GB SXM, on demand, us-east-1, SkyPilot snapshot 2023-06-01.
    let us = rows_where(
        &offers,
        &[
            ("offer_id", "p4de.24xlarge|us-east-1"),
            ("price_class", "on_demand"),
        ],
    );
    assert_eq!(us.height(), 1, "p4de in us-east-1 on 2023-06-01");
    assert_eq!(str_col(&us, "gpu_model")[0], "A100-SXM-80GB");
    let us_usd = f64_col(&us, "usd_per_gpu_hour")[0];
    let sky =
        std::fs::read_to_string(data.join("skypilot-catalog/aws/2023-06-01/vms.csv")).unwrap();
    let price: f64 = sky
        .lines()
        .find(|l| l.starts_with("p4de.24xlarge,") && l.contains(",us-east-1,"))
        .and_then(|l| l.split(',').rev().nth(3).map(|p| p.parse().unwrap()))
        .unwrap();
    assert!((us_usd - price / 8.0).abs() < 1e-9, "{us_usd} vs {price}/8");
    eprintln!(
        "REAL DATA: A100-SXM-80GB June 2023: Alibaba cn-shanghai {:.4} USD/GPU-h ({:.4} ex 6% VAT) at ECB {} (USD {usd}, CNY {cny} per EUR); AWS us-east-1 p4de {:.4} USD/GPU-h; CN/US ratio {:.3} with VAT, {:.3} without",
        cn_usd,
        cn_ex,
        fx_date,
        us_usd,
        cn_usd / us_usd,
        cn_ex / us_usd
    );
}

/// The rows of cn-rental-quotes whose provider cell starts with `provider`, as maps
/// from column to cell.
fn quotes(data: &Path, provider: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut rdr = csv::Reader::from_path(data.join("cn-rental-quotes/quotes.csv")).unwrap();
    let h = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| r.unwrap())
        .filter(|r| r[1].starts_with(provider))
        .map(|r| {
            h.iter()
                .map(String::from)
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// The one stored offer that matches `conds` and was observed on `day`, as a
/// one-row frame.
fn stored(
    offers: &polars::prelude::DataFrame,
    conds: &[(&str, &str)],
    day: &str,
) -> polars::prelude::DataFrame {
    let rows = rows_where(offers, conds);
    let at = rows.column("observed_at").unwrap();
    let days: Vec<usize> = (0..rows.height())
        .filter(|&i| at.get(i).unwrap().to_string().starts_with(day))
        .collect();
    assert_eq!(days.len(), 1, "{conds:?} on {day}");
    rows.slice(days[0] as i64, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn china_vs_us_aws_regions_and_compshare_2025() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path());
    let mut ecb_spec = spec_format("ecb_fx");
    ecb_spec.provider = Some("ecb".into());
    ecb_spec.at = Some("2026-10-30T00:00:00Z".parse().unwrap());
    import(
        &ecb_spec,
        &[data.join("ecb-fx/eurofxref-hist-2026-10-30.csv")],
        &store,
    )
    .await;
    let out = import(
        &spec_feed("cn-rental-quotes.toml", Some("2026-12-01T00:00:00Z")),
        &[data.join("cn-rental-quotes/quotes.csv")],
        &store,
    )
    .await;
    let offers = read_all(&tmp.path().join("offers")).unwrap();
    let rejects = read_all(&tmp.path().join("rejects")).unwrap();
    let (kept, rejected, _) = out[0].counts.unwrap();
    assert_eq!(kept + rejected, 406, "every quote is stored or rejected");
    assert_eq!((offers.height(), rejects.height()), (kept, rejected));

    // Every AWS quote (China and us-east-1) is stored under provider aws with its model.
    let aws = quotes(&data, "AWS");
    assert_eq!(aws.len(), 321);
    let stored_aws = rows_where(&offers, &[("provider", "aws")]);
    assert_eq!(stored_aws.height(), aws.len());
    assert!(str_col(&stored_aws, "gpu_model").iter().all(|m| [
        "A100-SXM-40GB",
        "A10G-24GB",
        "T4-16GB",
        "V100-SXM-16GB"
    ]
    .contains(&m.as_str())));

    // p4d.24xlarge (8x A100 SXM4 40GB) on 2025-11-30, a Sunday: Friday's ECB rate.
    let (fx_date, usd, cny) = ecb_from(&data, "eurofxref-hist-2026-10-30.csv", "2025-11-30");
    assert_eq!(fx_date, "2025-11-28");
    let quote = |region: &str, class: &str| -> f64 {
        aws.iter()
            .find(|q| {
                q["date"] == "2025-11-30"
                    && q["region"] == region
                    && q["price_class"] == class
                    && q["gpu_name"].contains("p4d.24xlarge")
            })
            .map(|q| q["price"].parse().unwrap())
            .unwrap()
    };
    let at = |region: &str, class: &str| {
        stored(
            &offers,
            &[
                ("instance_type", "p4d.24xlarge"),
                ("region", region),
                ("price_class", class),
            ],
            "2025-11-30",
        )
    };
    let price = |row: &polars::prelude::DataFrame| f64_col(row, "usd_per_gpu_hour")[0];
    let (cn, us) = (
        at("cn-northwest-1", "on_demand"),
        at("us-east-1", "on_demand"),
    );
    assert_eq!(str_col(&cn, "bloc")[0], "CN");
    assert_eq!(str_col(&us, "bloc")[0], "US");
    assert_eq!(str_col(&cn, "gpu_model")[0], "A100-SXM-40GB");
    let fx_day = cn.column("fx_date").unwrap().get(0).unwrap().to_string();
    assert_eq!(fx_day, "2025-11-28");
    let cn_usd = quote("cn-northwest-1", "on_demand") / 8.0 * usd / cny;
    assert!(
        (price(&cn) - cn_usd).abs() < 1e-9,
        "{} vs {cn_usd}",
        price(&cn)
    );
    let us_usd = quote("us-east-1", "on_demand") / 8.0;
    assert!(
        (price(&us) - us_usd).abs() < 1e-9,
        "{} vs {us_usd}",
        price(&us)
    );
    // The same instance keeps its offer id across the three dated snapshots, so it
    // counts once in a week that two of them span.
    let ningxia = rows_where(
        &offers,
        &[
            ("instance_type", "p4d.24xlarge"),
            ("region", "cn-northwest-1"),
            ("price_class", "on_demand"),
        ],
    );
    let mut ids = str_col(&ningxia, "offer_id");
    assert_eq!(ids.len(), 3);
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let reserved = price(&at("cn-northwest-1", "reserved"));
    assert!((reserved - quote("cn-northwest-1", "reserved") / 8.0 * usd / cny).abs() < 1e-9);

    // Compshare's per-card H20 price of 2025-10-01 (a Wednesday: that day's rate).
    let (fx_date, usd10, cny10) = ecb_from(&data, "eurofxref-hist-2026-10-30.csv", "2025-10-01");
    assert_eq!(fx_date, "2025-10-01");
    let h20: f64 = quotes(&data, "优云智算")
        .iter()
        .find(|q| q["date"] == "2025-10-01" && q["gpu_name"] == "H20")
        .map(|q| q["price"].parse().unwrap())
        .unwrap();
    let h20_row = stored(
        &offers,
        &[("provider", "compshare"), ("gpu_model", "H20-96GB")],
        "2025-10-01",
    );
    assert_eq!(str_col(&h20_row, "bloc")[0], "CN");
    assert!((price(&h20_row) - h20 * usd10 / cny10).abs() < 1e-9);
    eprintln!(
        "REAL DATA: A100-SXM-40GB p4d.24xlarge on 2025-11-30: AWS Ningxia {cn_usd:.4} vs us-east-1 {us_usd:.4} USD/GPU-h (ECB 2025-11-28), CN/US {:.3}; Compshare H20 {:.4} USD/GPU-h on 2025-10-01",
        cn_usd / us_usd,
        h20 * usd10 / cny10
    );
}

/// Share of offers whose GPU resolved to a model, per imported real file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_share_of_real_files() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path());
    import_ecb(&data, &store).await;
    let mut specs: Vec<(Spec, PathBuf)> = Vec::new();
    for root in ["skypilot-catalog", "seedling-catalog"] {
        for e in std::fs::read_dir(data.join(root)).unwrap() {
            specs.push((spec_format("skypilot_csv"), e.unwrap().path()));
        }
    }
    specs.push((
        spec_feed("alibaba-2023.toml", Some("2023-06-17T00:00:00Z")),
        data.join("arthurchiao-gpu-prices-2023/alibaba_cn-shanghai_gpu_prices_cny.csv"),
    ));
    specs.push((
        spec_feed("aws-2023-arthurchiao.toml", Some("2023-06-17T00:00:00Z")),
        data.join("arthurchiao-gpu-prices-2023/aws_gpu_prices_usd.csv"),
    ));
    specs.push((
        spec_feed("tencent-docs.toml", None),
        data.join("tencent-cloud-docs/gpu-price-overview"),
    ));
    let mut lines = Vec::new();
    let (mut total_ok, mut total_unknown) = (0usize, 0usize);
    for (spec, path) in &specs {
        let before_off = read_all(&tmp.path().join("offers"))
            .map(|d| d.height())
            .unwrap_or(0);
        let before_rej = read_all(&tmp.path().join("rejects"))
            .map(|d| rows_where_reason_unknown(&d))
            .unwrap_or(0);
        let before_not_gpu = read_all(&tmp.path().join("rejects"))
            .map(|d| rows_where(&d, &[("reason", "not_a_gpu")]).height())
            .unwrap_or(0);
        let out = backfill::backfill(
            spec,
            std::slice::from_ref(path),
            &store,
            Tables::embedded(),
            |_, _, _| {},
        )
        .await
        .unwrap();
        let failed: Vec<_> = out.iter().filter(|o| o.error.is_some()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        let ok = read_all(&tmp.path().join("offers"))
            .map(|d| d.height())
            .unwrap_or(0)
            - before_off;
        let unknown = read_all(&tmp.path().join("rejects"))
            .map(|d| rows_where_reason_unknown(&d))
            .unwrap_or(0)
            - before_rej;
        let not_gpu = read_all(&tmp.path().join("rejects"))
            .map(|d| rows_where(&d, &[("reason", "not_a_gpu")]).height())
            .unwrap_or(0)
            - before_not_gpu;
        total_ok += ok;
        total_unknown += unknown;
        let share = ok as f64 / (ok + unknown).max(1) as f64;
        lines.push(format!(
            "{:<70} {:>3} files {:>7} offers {:>6} unresolved {:>6} not GPUs  {:>6.1}% resolved",
            path.strip_prefix(&data).unwrap().display(),
            out.len(),
            ok,
            unknown,
            not_gpu,
            share * 100.0
        ));
        assert!(ok > 0, "{}: nothing stored", path.display());
    }
    let overall = total_ok as f64 / (total_ok + total_unknown) as f64;
    eprintln!(
        "REAL DATA resolved shares:\n{}\nall: {:.1}% of {} offers",
        lines.join("\n"),
        overall * 100.0,
        total_ok + total_unknown
    );
    assert!(overall > 0.97, "only {:.1}% resolved", overall * 100.0);
}

fn rows_where_reason_unknown(d: &polars::prelude::DataFrame) -> usize {
    rows_where(d, &[("reason", "unknown_gpu_name")]).height()
        + rows_where(d, &[("reason", "unknown_instance_type")]).height()
}

/// Median (linear interpolation) of the values.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Alibaba cn-shanghai A100 80GB: the per-GPU CNY prices of the source rows.
fn alibaba_a100_80gb_cny(data: &Path) -> Vec<f64> {
    let path = data.join("arthurchiao-gpu-prices-2023/alibaba_cn-shanghai_gpu_prices_cny.csv");
    let mut rdr = csv::Reader::from_path(path).unwrap();
    rdr.records()
        .map(|r| r.unwrap())
        .filter(|r| r[5].contains("A100 80G"))
        .map(|r| {
            let gpus: f64 = r[5].split('*').next().unwrap().trim().parse().unwrap();
            r[9].parse::<f64>().unwrap() / gpus
        })
        .collect()
}

/// AWS A100 80GB in US regions, per-GPU USD, one row per (instance type, region).
fn aws_a100_80gb_usd(data: &Path, date: &str) -> Vec<f64> {
    let path = data.join(format!("skypilot-catalog/aws/{date}/vms.csv"));
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let h = rdr.headers().unwrap().clone();
    let at = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (it, acc, cnt, price, region) = (
        at("InstanceType"),
        at("AcceleratorName"),
        at("AcceleratorCount"),
        at("Price"),
        at("Region"),
    );
    let mut seen = std::collections::BTreeMap::new();
    for r in rdr.records().map(|r| r.unwrap()) {
        if &r[acc] == "A100-80GB" && r[region].starts_with("us-") && !r[price].is_empty() {
            let per_gpu = r[price].parse::<f64>().unwrap() / r[cnt].parse::<f64>().unwrap();
            seen.insert((r[it].to_string(), r[region].to_string()), per_gpu);
        }
    }
    seen.into_values().collect()
}

/// ISO weeks (by Monday) in which some US on-demand price of `model` (or of any model
/// when `None`) changed, appeared or expired, judged from the stored snapshots alone:
/// a feed's snapshot that differs from its previous one, or its last snapshot's
/// prices expiring after their validity.
fn weeks_with_changes(
    offers: &polars::prelude::DataFrame,
    model: Option<&str>,
) -> std::collections::BTreeSet<chrono::NaiveDate> {
    use std::collections::{BTreeMap, BTreeSet};
    let us = rows_where(offers, &[("bloc", "US"), ("price_class", "on_demand")]);
    let (feed, provider, id, m) = (
        str_col(&us, "feed"),
        str_col(&us, "provider"),
        str_col(&us, "offer_id"),
        str_col(&us, "gpu_model"),
    );
    let price = f64_col(&us, "usd_per_gpu_hour");
    let t = i64_col(&us, "observed_at");
    // (feed, provider) -> snapshot time -> the snapshot's (offer, price bits) set.
    type Snapshots = BTreeMap<i64, BTreeSet<(String, u64)>>;
    let mut snaps: BTreeMap<(String, String), Snapshots> = BTreeMap::new();
    for i in 0..us.height() {
        let e = snaps
            .entry((feed[i].clone(), provider[i].clone()))
            .or_default()
            .entry(t[i])
            .or_default();
        if model.is_none_or(|x| x == m[i]) {
            e.insert((id[i].clone(), price[i].to_bits()));
        }
    }
    let monday = |ms: i64| {
        let d = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .date_naive();
        gpurent::week::IsoWeek::of(d).monday()
    };
    let mut out = BTreeSet::new();
    for ((_, provider), by_time) in &snaps {
        let mut prev: Option<&BTreeSet<(String, u64)>> = None;
        for (t, set) in by_time {
            if prev != Some(set) && !(prev.is_none() && set.is_empty()) {
                out.insert(monday(*t));
            }
            prev = Some(set);
        }
        let (last, set) = by_time.iter().next_back().unwrap();
        if !set.is_empty() {
            let valid = gpurent::tables::Providers::embedded().valid_hours(provider);
            out.insert(monday(last + (valid * 3_600_000.0) as i64));
        }
    }
    out
}

/// The real history, back-filled as a user would (SkyPilot catalogues of every cloud
/// for the months around June 2023, to keep the runtime modest; the Alibaba and AWS
/// 2023 lists; Tencent 2016-2021; ECB rates), and the 2023-W24 report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_history_2023_w24_methodology() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    import_ecb(&data, &store).await;
    let mut dirs = Vec::new();
    for root in ["skypilot-catalog", "seedling-catalog"] {
        for cloud in std::fs::read_dir(data.join(root)).unwrap() {
            for snap in std::fs::read_dir(cloud.unwrap().path()).unwrap() {
                let p = snap.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if ("2023-03-01".."2023-10-01").contains(&name.as_str()) {
                    dirs.push(p);
                }
            }
        }
    }
    dirs.sort();
    import(&spec_format("skypilot_csv"), &dirs, &store).await;
    import(
        &spec_feed("alibaba-2023.toml", Some("2023-06-17T00:00:00Z")),
        &[data.join("arthurchiao-gpu-prices-2023/alibaba_cn-shanghai_gpu_prices_cny.csv")],
        &store,
    )
    .await;
    import(
        &spec_feed("aws-2023-arthurchiao.toml", Some("2023-06-17T00:00:00Z")),
        &[data.join("arthurchiao-gpu-prices-2023/aws_gpu_prices_usd.csv")],
        &store,
    )
    .await;
    import(
        &spec_feed("tencent-docs.toml", None),
        &[data.join("tencent-cloud-docs/gpu-price-overview")],
        &store,
    )
    .await;
    let week = gpurent::week::IsoWeek::parse("2023-W24").unwrap();
    let generated = "2023-06-19T00:30:00Z".parse().unwrap();
    let out = tmp.path().join("reports");
    // Every weekly report of the five weeks up to 2023-W24 (more would only slow the
    // test: each one is checked against the long view below).
    let weeks: Vec<_> = (0..5)
        .map(|i| gpurent::week::IsoWeek::of(week.monday() - chrono::Duration::weeks(4 - i)))
        .collect();
    let dirs = tokio::task::spawn_blocking({
        let (store, out, weeks) = (store.clone(), out.clone(), weeks.clone());
        move || {
            weeks
                .iter()
                .map(|w| gpurent::report::write_week(&store, &out, *w, generated).unwrap())
                .collect::<Vec<_>>()
        }
    })
    .await
    .unwrap();
    let read = |d: &std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap()
    };
    let summary = read(dirs.last().unwrap());
    // Each week's own US A100-SXM-80GB figure is the long view's point for that week.
    for (w, d) in weeks.iter().zip(&dirs) {
        let own = read(d)["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["gpu_model"] == "A100-SXM-80GB"
                    && r["bloc"] == "US"
                    && r["price_class"] == "on_demand"
            })
            .map(|r| r["provider_median"].as_f64().unwrap());
        let long = summary["long_view"].as_array().unwrap().iter().find(|p| {
            p["gpu_model"] == "A100-SXM-80GB"
                && p["bloc"] == "US"
                && p["monday"] == w.monday().to_string()
        });
        assert_eq!(
            own,
            long.map(|p| p["median"].as_f64().unwrap()),
            "{}",
            w.label()
        );
    }

    // The Alibaba vs AWS A100-SXM-80GB pair, by hand from the two source files: the
    // providers' medians per GPU, CNY at the ECB rate of the observation date
    // (2023-06-17, a Saturday: Friday's rate).
    let (fx_date, usd, cny) = ecb(&data, "2023-06-17");
    let cn = median(alibaba_a100_80gb_cny(&data)) * usd / cny;
    let gn7e = 277.93 / 8.0 * usd / cny;
    assert!(
        (cn / gn7e - 1.0).abs() < 1e-4,
        "Alibaba's A100 80GB sizes cost the same per GPU"
    );
    let us = median(aws_a100_80gb_usd(&data, "2023-06-01"));
    assert!((us - 40.96575 / 8.0).abs() < 1e-9, "p4de: {us}");
    let pair = summary["provider_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["gpu_model"] == "A100-SXM-80GB"
                && p["price_class"] == "on_demand"
                && p["cn_provider"] == "aliyun"
                && p["us_provider"] == "aws"
        })
        .expect("Alibaba vs AWS A100-SXM-80GB pair in 2023-W24");
    let ratio = pair["ratio"].as_f64().unwrap();
    assert!((ratio - cn / us).abs() < 1e-9, "{ratio} vs {}", cn / us);
    eprintln!(
        "REAL DATA Alibaba vs AWS A100-SXM-80GB 2023-W24: provider medians {cn:.4} / {us:.4} USD/GPU-h = {ratio:.4}; gn7e 8-GPU vs p4de alone: {:.4}",
        gn7e / (40.96575 / 8.0)
    );

    // Weeks in which no US A100-SXM-80GB list price changed keep the same
    // provider-balanced figure; weeks with no US price change at all keep the index.
    let offers = read_all(&tmp.path().join("store/offers")).unwrap();
    let a100_changes = weeks_with_changes(&offers, Some("A100-SXM-80GB"));
    let any_changes = weeks_with_changes(&offers, None);
    let points = |model: &str, bloc: &str| -> std::collections::BTreeMap<String, f64> {
        summary["long_view"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["gpu_model"] == model && p["bloc"] == bloc)
            .map(|p| {
                (
                    p["monday"].as_str().unwrap().to_string(),
                    p["median"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let a100 = points("A100-SXM-80GB", "US");
    let index: std::collections::BTreeMap<String, f64> = summary["index"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["bloc"] == "US")
        .map(|p| {
            (
                p["monday"].as_str().unwrap().to_string(),
                p["index"].as_f64().unwrap(),
            )
        })
        .collect();
    let (mut quiet_a100, mut quiet_all) = (0, 0);
    let mut monday = chrono::NaiveDate::from_ymd_opt(2023, 4, 10).unwrap();
    while monday <= week.monday() {
        let (w, prev) = (
            monday.to_string(),
            (monday - chrono::Duration::days(7)).to_string(),
        );
        if !a100_changes.contains(&monday) {
            if let (Some(a), Some(b)) = (a100.get(&w), a100.get(&prev)) {
                assert_eq!(
                    a, b,
                    "US A100-SXM-80GB flipped in the week of {w} with no price change"
                );
                quiet_a100 += 1;
            }
        }
        if !any_changes.contains(&monday) {
            if let (Some(a), Some(b)) = (index.get(&w), index.get(&prev)) {
                assert!(
                    (a / b - 1.0).abs() < 1e-12,
                    "US index moved in the week of {w}: {b} -> {a}"
                );
                quiet_all += 1;
            }
        }
        monday += chrono::Duration::days(7);
    }
    assert!(
        quiet_a100 >= 3 && quiet_all >= 2,
        "too few quiet weeks: {quiet_a100}, {quiet_all}"
    );
    let heads: Vec<&str> = summary["headlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("A100-SXM-80GB (on-demand): CN")
                && h.contains("aliyun")
                && h.contains("aws")),
        "{heads:#?}"
    );
    eprintln!(
        "REAL DATA 2023-W24 (ECB {fx_date}): Alibaba vs AWS A100-SXM-80GB {ratio:.4}; {quiet_a100} quiet A100 weeks, {quiet_all} quiet index weeks\nheadlines:\n{}\nUS A100 weekly: {a100:?}",
        heads.join("\n")
    );
    // The method as portable SQL gets the same figures from the real week, on Spark
    // and DuckDB (when the engines are installed; tests/it/engines.rs says when not).
    crate::engines::check_week_sql(store.root(), "2023-W24", &summary);
}
