//! Tests on the real public data in `../shared/data` (SkyPilot catalogues, Alibaba and
//! Tencent CNY list prices, ECB rates). A user's clone has no `../shared`: these tests
//! then print SKIPPED and pass, unless `GPURENT_REQUIRE_SHARED=1` (set by `.ci/run`),
//! which makes a missing directory a failure.

use std::path::{Path, PathBuf};

use gpurent::backfill::{self, Spec};
use gpurent::store::Store;
use gpurent::tables::Tables;

use crate::common::*;

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var("GPURENT_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!("GPURENT_REQUIRE_SHARED=1 but {} is missing", dir.display());
    }
    crate::common::report_skip(&format!(
        "{} not found (real-data test; GPURENT_REQUIRE_SHARED=1 makes this a failure)",
        dir.display()
    ));
    None
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skypilot_aws_backfill() {
    let Some(data) = shared() else { return };
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
    let mut rdr = csv::Reader::from_path(data.join("ecb-fx/eurofxref-hist.csv")).unwrap();
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
    let Some(data) = shared() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path());
    let mut ecb_spec = spec_format("ecb_fx");
    ecb_spec.provider = Some("ecb".into());
    ecb_spec.at = Some("2024-10-11T00:00:00Z".parse().unwrap());
    import(&ecb_spec, &[data.join("ecb-fx/eurofxref-hist.csv")], &store).await;
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

/// Share of offers whose GPU resolved to a model, per imported real file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_share_of_real_files() {
    let Some(data) = shared() else { return };
    let tmp = tempdir();
    let store = Store::open(tmp.path());
    let mut ecb_spec = spec_format("ecb_fx");
    ecb_spec.provider = Some("ecb".into());
    ecb_spec.at = Some("2024-10-11T00:00:00Z".parse().unwrap());
    import(&ecb_spec, &[data.join("ecb-fx/eurofxref-hist.csv")], &store).await;
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
