//! Peers as feeds: gpuhunt's catalogue over a loopback server (live fetch via
//! `/version`, dated back-fill with a missing version, re-run idempotency), one
//! provider counted once beside its own feed, stores written before the `peer`
//! column, FX rates that arrive after the prices, unknown places, and the real
//! gpu-pricing-tracker-2026 observations (CN vs US RTX 4090 on vast.ai).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use gpurent::ingest::backfill::{self, Spec, VersionSpec};
use gpurent::run::sim::HttpResponse;
use gpurent::store::Store;
use gpurent::tables::Tables;
use polars::prelude::*;

use crate::common::*;

/// gpuhunt's published header, with the newer columns the adapter must ignore.
const HEADER: &str = "instance_name,location,price,cpu,memory,gpu_count,gpu_name,gpu_memory,spot,disk_size,gpu_vendor,flags,provider_data\n";

/// A catalog.zip holding these `<provider>.csv` files, deflated like gpuhunt's.
fn catalog(files: &[(&str, String)]) -> Vec<u8> {
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Deflated);
    for (name, text) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// AWS (an 8-GPU instance on demand and spot, a CPU machine) and Lambda Labs.
fn standard_catalog(p5_price: f64) -> Vec<u8> {
    catalog(&[
        (
            "aws.csv",
            format!(
                "{HEADER}p5.48xlarge,us-east-1,{p5_price},192,2048.0,8,H100,80.0,False,,nvidia,,\"{{'a': 1}}\"\n\
                 p5.48xlarge,us-east-1,39.33,192,2048.0,8,H100,80.0,True,,nvidia,,\n\
                 m5.large,us-east-1,0.096,2,8.0,0,,,False,,,,\n\
                 c5.xlarge,us-east-1,0.17,4,8.0,,,,False,,,,\n"
            ),
        ),
        (
            "lambdalabs.csv",
            format!(
                "{HEADER}gpu_8x_h100_sxm5,us-west-1,23.92,208,1800.0,8,H100,80.0,False,24780,nvidia,,\n\
                 cpu_4x_general,us-west-1,0.2,4,16.0,0,,,False,,,,\n"
            ),
        ),
    ])
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn ingest(
    dir: &Path,
    feeds: &[(&str, String)],
    store: &Store,
    when: &str,
) -> gpurent::ingest::RunReport {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in feeds {
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
    let (f, b) = gpurent::ingest::feed::load_dir(dir).unwrap();
    assert!(b.is_empty(), "{b:?}");
    let client = gpurent::ingest::fetch::client();
    gpurent::ingest::run(f, b, store, &client, at(when), Tables::embedded()).await
}

fn bools(df: &DataFrame, c: &str) -> Vec<Option<bool>> {
    df.column(c).unwrap().bool().unwrap().iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_catalogue_reads_version_then_zip() {
    let srv = server().await;
    srv.routes
        .set("/v2/version", HttpResponse::ok("text/plain", "20240508\n"));
    srv.routes.set(
        "/v2/20240508/catalog.zip",
        HttpResponse::ok("application/zip", standard_catalog(98.32)),
    );
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let feed = format!(
        "format = \"gpuhunt_catalog\"\nurl = \"{}\"\n",
        srv.url("/v2")
    );
    let r = ingest(&tmp.path().join("feeds"), &[("gpuhunt", feed)], &store, AT).await;
    assert_eq!(r.exit_code(), 0, "{:?}", r.outcomes);
    let hits = srv.hits.lock().unwrap().clone();
    assert_eq!(hits, vec!["/v2/version", "/v2/20240508/catalog.zip"]);

    let offers = read_all(&tmp.path().join("store/offers")).unwrap();
    // CPU machines (gpu_count 0 or empty) are dropped, not stored and not rejected.
    assert_eq!(offers.height(), 3, "{offers}");
    assert!(read_all(&tmp.path().join("store/rejects")).is_none());
    check_offers(
        &offers,
        &[
            (
                "p5.48xlarge|us-east-1",
                "on_demand",
                98.32 / 8.0,
                "H100-SXM-80GB",
                8.0,
                "US",
                "US",
            ),
            (
                "p5.48xlarge|us-east-1",
                "spot",
                39.33 / 8.0,
                "H100-SXM-80GB",
                8.0,
                "US",
                "US",
            ),
            (
                "gpu_8x_h100_sxm5|us-west-1",
                "on_demand",
                23.92 / 8.0,
                "H100-SXM-80GB",
                8.0,
                "US",
                "US",
            ),
        ],
    );
    let mut providers = str_col(&offers, "provider");
    providers.sort();
    assert_eq!(
        providers,
        vec!["aws", "aws", "lambda"],
        "lambdalabs.csv is provider lambda"
    );
    assert!(bools(&offers, "peer").iter().all(|p| *p == Some(true)));
    assert_eq!(str_col(&offers, "price_unit")[0], "instance-hour");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_skips_missing_versions_and_reruns_add_nothing() {
    let srv = server().await;
    for v in ["20240101", "20240103"] {
        srv.routes.set(
            &format!("/v2/{v}/catalog.zip"),
            HttpResponse::ok("application/zip", standard_catalog(98.32)),
        );
    }
    // 20240102 is not served: the loopback server answers 404.
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let spec = VersionSpec {
        format: "gpuhunt_catalog".into(),
        url: srv.url("/v2"),
        from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 1, 3).unwrap(),
    };
    let client = gpurent::ingest::fetch::client();
    let mut bar = Vec::new();
    let first =
        backfill::backfill_versions(&spec, &store, Tables::embedded(), &client, |o, i, n| {
            bar.push((o.path.display().to_string(), i, n))
        })
        .await
        .unwrap();
    assert_eq!(bar.len(), 3, "one progress step per day");
    let summary: Vec<(String, bool, Option<usize>)> = first
        .iter()
        .map(|o| {
            (
                o.path.display().to_string(),
                o.missing,
                o.counts.map(|c| c.0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("20240101".into(), false, Some(3)),
            ("20240102".into(), true, None),
            ("20240103".into(), false, Some(3)),
        ]
    );
    assert!(first.iter().all(|o| o.error.is_none()), "{first:?}");
    assert_eq!(store.offer_dates().unwrap(), vec![spec.from, spec.to]);
    let before = read_all(&tmp.path().join("store/offers")).unwrap().height();
    assert_eq!(before, 6);

    srv.hits.lock().unwrap().clear();
    let again =
        backfill::backfill_versions(&spec, &store, Tables::embedded(), &client, |_, _, _| {})
            .await
            .unwrap();
    assert!(again
        .iter()
        .all(|o| o.counts.is_none() && o.error.is_none()));
    assert_eq!(
        read_all(&tmp.path().join("store/offers")).unwrap().height(),
        before
    );
    // Stored days are not fetched again; only the missing version is asked for.
    assert_eq!(*srv.hits.lock().unwrap(), vec!["/v2/20240102/catalog.zip"]);
}

/// gpurent's own AWS feed (96.00 USD per p5.48xlarge-hour) beside the peer catalogue.
async fn own_and_peer_store(tmp: &Path) -> Store {
    let srv = server().await;
    srv.routes.set(
        "/v2/20241007/catalog.zip",
        HttpResponse::ok("application/zip", standard_catalog(98.32)),
    );
    srv.routes.set(
        "/aws.csv",
        HttpResponse::ok(
            "text/csv",
            "instance_type,gpu,gpus,region,price\np5.48xlarge,H100 SXM,8,us-east-1,96.00\n",
        ),
    );
    let own = format!("format = \"generic_csv\"\nurl = \"{}\"\nprovider = \"aws\"\ncurrency = \"USD\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\n[columns]\ninstance_type = \"instance_type\"\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nregion = \"region\"\nprice = \"price\"\n", srv.url("/aws.csv"));
    let peer = format!(
        "format = \"gpuhunt_catalog\"\nurl = \"{}\"\nversion = \"20241007\"\n",
        srv.url("/v2")
    );
    let store = Store::open(tmp.join("store"));
    let r = ingest(
        &tmp.join("feeds"),
        &[("aws_own", own), ("gpuhunt", peer)],
        &store,
        AT,
    )
    .await;
    assert_eq!(r.exit_code(), 0, "{:?}", r.outcomes);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_feed_wins_and_provider_counts_once() {
    let tmp = tempdir();
    let store = own_and_peer_store(tmp.path()).await;
    let all = store.scan_offers(None, None).unwrap().unwrap();
    let kept = gpurent::analysis::peers::prefer_own_sources(all.clone())
        .sort(["provider", "price_class", "feed"], Default::default())
        .collect()
        .unwrap();
    let all = all.collect().unwrap();
    let cell = [
        ("provider", "aws"),
        ("price_class", "on_demand"),
        ("gpu_model", "H100-SXM-80GB"),
    ];
    assert_eq!(rows_where(&all, &cell).height(), 2, "both sources stored");
    let aws_od = rows_where(&kept, &cell);
    assert_eq!(
        str_col(&aws_od, "feed"),
        vec!["aws_own"],
        "the own feed wins"
    );
    assert_eq!(f64_col(&aws_od, "usd_per_gpu_hour"), vec![12.0]);
    // The peer still fills cells no own feed has: AWS spot and Lambda.
    let rest: Vec<(String, String, String)> = (0..kept.height())
        .map(|i| {
            (
                str_col(&kept, "provider")[i].clone(),
                str_col(&kept, "price_class")[i].clone(),
                str_col(&kept, "feed")[i].clone(),
            )
        })
        .collect();
    assert_eq!(
        rest,
        vec![
            ("aws".into(), "on_demand".into(), "aws_own".into()),
            ("aws".into(), "spot".into(), "gpuhunt".into()),
            ("lambda".into(), "on_demand".into(), "gpuhunt".into()),
        ]
    );
    assert_eq!(bools(&aws_od, "peer"), vec![Some(false)]);
}

/// `history` applies the peer rule where the span holds peer rows (it skips the
/// rule's join when none does): AWS on-demand H100 is the own feed's one offer at
/// 12 USD per GPU-hour, not the peer's beside it; AWS spot is the peer's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lets_the_own_feed_win() {
    use gpurent::analysis::query::{history, Every, Format, HistoryQuery};
    let tmp = tempdir();
    let store = own_and_peer_store(tmp.path()).await;
    let hq = HistoryQuery {
        model: "H100-SXM-80GB".into(),
        bloc: None,
        country: None,
        class: None,
        every: Every::Day,
        from: None,
        to: None,
        provider: Some("aws".into()),
        segment: None,
        by_provider: true,
    };
    let csv = history(&store, &hq).unwrap().render(Format::Csv);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // period, model, bloc, class, provider, offers, median, p25, p75
    let od: Vec<&Vec<&str>> = rows.iter().filter(|r| r[3] == "on_demand").collect();
    assert_eq!(od.len(), 1, "{csv}");
    assert_eq!((od[0][5], od[0][6]), ("1", "12.0000"), "{csv}");
    assert!(rows.iter().any(|r| r[3] == "spot"), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crosscheck_lists_cells_where_sources_disagree() {
    let tmp = tempdir();
    let store = own_and_peer_store(tmp.path()).await;
    let rows = gpurent::analysis::peers::crosscheck(&store, None, None, 0.01).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (
            r.provider.as_str(),
            r.gpu_model.as_str(),
            r.price_class.as_str()
        ),
        ("aws", "H100-SXM-80GB", "on_demand")
    );
    assert_eq!(
        (r.low_feed.as_str(), r.high_feed.as_str()),
        ("aws_own", "gpuhunt")
    );
    assert!((r.low_usd - 12.0).abs() < 1e-12 && (r.high_usd - 12.29).abs() < 1e-12);
    assert!((r.rel_diff - (12.29 - 12.0) / 12.0).abs() < 1e-12);
    assert_eq!(r.day, NaiveDate::from_ymd_opt(2024, 10, 7).unwrap());
    let table: Vec<String> = std::iter::once(gpurent::analysis::peers::Disagreement::header())
        .chain(rows.iter().map(|r| r.line()))
        .collect();
    insta::assert_snapshot!("crosscheck_table", table.join("\n"));
    // 2.4% apart: within a 5% tolerance.
    assert!(
        gpurent::analysis::peers::crosscheck(&store, None, None, 0.05)
            .unwrap()
            .is_empty()
    );
    let (code, out, _) = gpurent(&[
        "crosscheck",
        "--store",
        store.root().to_str().unwrap(),
        "--tolerance",
        "0.01",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("aws") && out.contains("2.4%") && out.contains("aws_own / gpuhunt"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_written_before_the_peer_column_still_scan() {
    let tmp = tempdir();
    let store = own_and_peer_store(tmp.path()).await;
    // An offers file as an older gpurent wrote it: no `peer`, no `group_offers`, in a
    // date partition that sorts first, so it is the first file a scan meets.
    let mut files = Vec::new();
    walk(&tmp.path().join("store/offers"), &mut files);
    let own = files
        .iter()
        .find(|p| p.to_string_lossy().contains("aws_own"))
        .unwrap();
    let mut old = ParquetReader::new(std::fs::File::open(own).unwrap())
        .finish()
        .unwrap()
        .drop_many(["peer", "group_offers"]);
    let dir = tmp.path().join("store/offers/date=2024-10-06");
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("aws_old__20241006T12.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut old)
        .unwrap();
    let df = store
        .scan_offers(None, None)
        .unwrap()
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 5);
    let peer = bools(&df, "peer");
    assert_eq!(
        peer.iter().filter(|p| p.is_none()).count(),
        1,
        "old rows read as null"
    );
    let kept = gpurent::analysis::peers::prefer_own_sources(
        store.scan_offers(None, None).unwrap().unwrap(),
    )
    .collect()
    .unwrap();
    assert_eq!(
        kept.height(),
        4,
        "old rows count as own rows; one peer row gives way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_waiting_for_an_fx_rate_heal_when_it_arrives() {
    let srv = server().await;
    srv.routes.set(
        "/cn.csv",
        HttpResponse::ok("text/csv", fixture("cn_cloud_prices.csv")),
    );
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let cny = format!("format = \"generic_csv\"\nurl = \"{}\"\nprovider = \"aliyun\"\ncurrency = \"CNY\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\n[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price_cny_per_hour\"\nregion = \"region\"\ninstance_type = \"instance_type\"\n", srv.url("/cn.csv"));
    // CNY prices first, with no FX rate in the store: all rejected as missing_fx_rate.
    let r = ingest(&tmp.path().join("a"), &[("cncloud", cny)], &store, AT).await;
    assert!(
        r.outcomes[0].line().contains("missing_fx_rate"),
        "{}",
        r.outcomes[0].line()
    );
    assert_eq!(
        read_all(&tmp.path().join("store/offers")).unwrap().height(),
        0
    );

    // The ECB rates arrive an hour later, in a run of their own.
    let rj = tmp
        .path()
        .join("store/rejects/date=2024-10-07/cncloud__20241007T12.parquet");
    let waiting_rejects = std::fs::read(&rj).unwrap();
    let (name, text) = ecb_feed(&srv);
    let r = ingest(
        &tmp.path().join("b"),
        &[(name, text.clone())],
        &store,
        "2024-10-07T13:00:00Z",
    )
    .await;
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.healed.runs, 1, "{:?}", r.healed);
    let offers = read_all(&tmp.path().join("store/offers")).unwrap();
    let cn = rows_where(&offers, &[("feed", "cncloud")]);
    assert_eq!(cn.height(), r.healed.offers);
    assert!(cn.height() >= 3, "{cn}");
    let a100 = rows_where(&cn, &[("offer_id", "line2")]);
    let want = 69.0 / 8.0 * USD_PER_CNY;
    assert!((f64_col(&a100, "usd_per_gpu_hour")[0] - want).abs() < 1e-9);
    let rejects = read_all(&tmp.path().join("store/rejects"));
    let waiting = rejects
        .map(|r| rows_where(&r, &[("reason", "missing_fx_rate")]).height())
        .unwrap_or(0);
    assert_eq!(waiting, 0, "no offer still waits for a rate");

    // A healing that crashed between its two files: the healed offers beside the old
    // rejects. The next rates heal the rejects too (found by a fault hunt: nothing
    // did, so those offers were counted as stored and as rejected).
    std::fs::write(&rj, waiting_rejects).unwrap();
    let r2 = ingest(
        &tmp.path().join("c"),
        &[(name, text)],
        &store,
        "2024-10-07T14:00:00Z",
    )
    .await;
    assert_eq!(
        (r2.healed.runs, r2.healed.offers),
        (1, 0),
        "{:?}",
        r2.healed
    );
    assert!(
        !rj.exists(),
        "the rejects file that listed healed offers is gone"
    );
    let again = read_all(&tmp.path().join("store/offers")).unwrap();
    assert_eq!(
        rows_where(&again, &[("feed", "cncloud")]).height(),
        cn.height()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_unknown_provider_or_region_is_loud() {
    let tmp = tempdir();
    let csv = "InstanceType,AcceleratorName,AcceleratorCount,Price,Region\n\
               p5.48xlarge,H100,8.0,98.32,us-east-1\n\
               p5.48xlarge,H100,8.0,99.00,mars-north-1\n";
    for cloud in ["aws", "mysterycloud"] {
        let d = tmp.path().join(format!("snap/{cloud}/2024-01-01"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vms.csv"), csv).unwrap();
    }
    let store = Store::open(tmp.path().join("store"));
    let spec = Spec {
        format: Some("skypilot_csv".into()),
        feed_file: None,
        provider: None,
        at: None,
    };
    let out = backfill::backfill(
        &spec,
        &[tmp.path().join("snap")],
        &store,
        Tables::embedded(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    let rejected: Vec<Vec<(String, usize)>> = out.iter().map(|o| o.rejected.clone()).collect();
    assert_eq!(
        rejected,
        vec![
            vec![("unknown_region".to_string(), 1)],
            vec![("unknown_provider".to_string(), 2)],
        ]
    );
    let offers = read_all(&tmp.path().join("store/offers")).unwrap();
    assert_eq!(
        str_col(&offers, "region"),
        vec!["us-east-1"],
        "nothing stored as bloc OTHER"
    );
    let names: Vec<(String, String, u32)> = gpurent::analysis::unknown_names(&store)
        .unwrap()
        .into_iter()
        .filter(|n| n.reason.starts_with("unknown_p") || n.reason == "unknown_region")
        .map(|n| (n.reason, n.name, n.count))
        .collect();
    assert_eq!(
        names,
        vec![
            ("unknown_provider".into(), "mysterycloud".into(), 2),
            ("unknown_region".into(), "aws/mars-north-1".into(), 1),
        ]
    );
}

/// The hand computation: vast.ai's on-demand RTX 4090 group medians of one host
/// country in the week starting `monday`, read straight from the CSV.
fn tracker_medians(csv_path: &Path, monday: NaiveDate, country: &str) -> Vec<f64> {
    let mut rdr = csv::Reader::from_path(csv_path).unwrap();
    let h = rdr.headers().unwrap().clone();
    let i = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (d, p, m, r, k, v) = (
        i("date"),
        i("provider"),
        i("gpu_model"),
        i("region"),
        i("rental_type"),
        i("price_median_usd"),
    );
    rdr.records()
        .map(|x| x.unwrap())
        .filter(|x| {
            let day = NaiveDate::parse_from_str(&x[d], "%Y-%m-%d").unwrap();
            (monday..monday + chrono::Days::new(7)).contains(&day)
                && &x[p] == "vast.ai"
                && &x[m] == "RTX_4090"
                && &x[r] == country
                && &x[k] == "on_demand"
        })
        .map(|x| x[v].parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_tracker_cn_vs_us_rtx4090_week() {
    let Some(data) = shared_data() else { return };
    let csv_path = data.join("gpu-pricing-tracker-2026/observations.csv");
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let spec = Spec {
        format: None,
        feed_file: Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("feeds/backfill/gpu-pricing-tracker-2026.toml"),
        ),
        provider: None,
        at: Some(at("2026-07-21T00:00:00Z")),
    };
    let out = backfill::backfill(
        &spec,
        std::slice::from_ref(&csv_path),
        &store,
        Tables::embedded(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    assert!(out[0].error.is_none(), "{out:?}");
    // 2026-W20: Monday 2026-05-11, the first full week with CN hosts.
    let monday = NaiveDate::from_ymd_opt(2026, 5, 11).unwrap();
    let sunday = monday + chrono::Days::new(6);
    let lf = store
        .scan_offers(Some(monday), Some(sunday))
        .unwrap()
        .unwrap();
    let got = lf
        .filter(
            col("provider")
                .eq(lit("vastai"))
                .and(col("gpu_model").eq(lit("RTX4090-24GB")))
                .and(col("price_class").eq(lit("on_demand"))),
        )
        .group_by([col("country")])
        .agg([
            col("usd_per_gpu_hour").median().alias("median"),
            len().alias("n"),
            col("peer").all(true).alias("peer"),
        ])
        .sort(["country"], Default::default())
        .collect()
        .unwrap();
    let pick = |c: &str| {
        let r = rows_where(&got, &[("country", c)]);
        assert_eq!(r.height(), 1, "{c}: {got}");
        (
            f64_col(&r, "median")[0],
            r.column("n").unwrap().u32().unwrap().get(0).unwrap() as usize,
        )
    };
    let (cn, n_cn) = pick("CN");
    let (us, n_us) = pick("US");
    let (want_cn, want_us) = (
        tracker_medians(&csv_path, monday, "CN"),
        tracker_medians(&csv_path, monday, "US"),
    );
    assert_eq!(
        (n_cn, n_us),
        (want_cn.len(), want_us.len()),
        "one stored row per group row"
    );
    let (hand_cn, hand_us) = (
        crate::common::quantile(&want_cn, 0.5),
        crate::common::quantile(&want_us, 0.5),
    );
    assert!((cn - hand_cn).abs() < 1e-12, "CN {cn} != {hand_cn}");
    assert!((us - hand_us).abs() < 1e-12, "US {us} != {hand_us}");
    assert!(bools(&got, "peer").iter().all(|p| *p == Some(true)));
    eprintln!(
        "2026-W20 vast.ai RTX 4090 on-demand: CN {cn:.4} USD/GPU-h ({n_cn} groups), US {us:.4} USD/GPU-h ({n_us} groups), CN/US {:.3}",
        cn / us
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_backfill_of_versions_shows_progress_and_counts_missing() {
    let srv = server().await;
    srv.routes.set(
        "/v2/20240102/catalog.zip",
        HttpResponse::ok("application/zip", standard_catalog(98.32)),
    );
    let tmp = tempdir();
    let store = tmp.path().join("store").display().to_string();
    let url = srv.url("/v2");
    let args = [
        "backfill",
        "--format",
        "gpuhunt_catalog",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--url",
        &url,
        "--store",
        &store,
    ]
    .map(String::from);
    let run = move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        gpurent(&a)
    };
    let (code, out, err) = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("[###############---------------] 1/2 20240101: no such version, skipped"),
        "{err}"
    );
    assert!(
        err.contains("2/2 20240102: 3 offers stored, 0 rejected"),
        "{err}"
    );
    assert!(
        out.contains("backfill: 2 days, 3 offers stored, 1 versions missing, 0 failed"),
        "{out}"
    );
    let (code, out, err) = tokio::task::spawn_blocking(run).await.unwrap();
    assert_eq!(code, 0);
    assert!(
        err.contains("20240102: already imported, nothing added"),
        "{err}"
    );
    assert!(
        out.contains("backfill: 2 days, 0 offers stored, 1 versions missing"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_fx_rates_heals_earlier_backfilled_prices() {
    let tmp = tempdir();
    let day = tmp.path().join("cn/2024-10-07");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("prices.csv"), fixture("cn_cloud_prices.csv")).unwrap();
    let feed = tmp.path().join("cncloud.toml");
    std::fs::write(&feed, "format = \"generic_csv\"\nurl = \"x.csv\"\nprovider = \"aliyun\"\ncurrency = \"CNY\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\ncheck_places = false\n[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price_cny_per_hour\"\nregion = \"region\"\ninstance_type = \"instance_type\"\n").unwrap();
    let store = Store::open(tmp.path().join("store"));
    let spec = Spec {
        format: None,
        feed_file: Some(feed),
        provider: None,
        at: None,
    };
    let out = backfill::backfill(
        &spec,
        &[tmp.path().join("cn")],
        &store,
        Tables::embedded(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    assert!(
        out[0].rejected.iter().any(|r| r.0 == "missing_fx_rate"),
        "{out:?}"
    );
    assert_eq!(
        read_all(&tmp.path().join("store/offers")).unwrap().height(),
        0
    );

    let ecb = tmp.path().join("fx.xml");
    std::fs::write(&ecb, fixture("eurofxref-daily.xml")).unwrap();
    let spec = Spec {
        format: Some("ecb_fx".into()),
        feed_file: None,
        provider: Some("ecb".into()),
        at: Some(at("2024-10-07T16:00:00Z")),
    };
    let fx = backfill::backfill(&spec, &[ecb], &store, Tables::embedded(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(fx[0].healed.runs, 1, "{fx:?}");
    let offers = read_all(&tmp.path().join("store/offers")).unwrap();
    let a100 = rows_where(&offers, &[("offer_id", "line2")]);
    assert_eq!(a100.height(), 1, "healed without a manual renormalise");
    let want = 69.0 / 8.0 * USD_PER_CNY;
    assert!((f64_col(&a100, "usd_per_gpu_hour")[0] - want).abs() < 1e-9);
}

/// Back-fill `file` (rows with their own dates) with the dated CNY feed, and the ECB
/// fixture's rates, in the order `rates_first` says; the store's offers and rejects
/// (none when no file holds any), sorted.
async fn dated_cny_and_rates(dir: &Path, file: &Path, rates_first: bool) -> [Option<DataFrame>; 2] {
    let feed = dir.join("cndated.toml");
    std::fs::write(&feed, "format = \"generic_csv\"\nurl = \"x.csv\"\nprovider = \"aliyun\"\ncurrency = \"CNY\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\ncheck_places = false\n[columns]\ndate = \"date\"\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price_cny_per_hour\"\nregion = \"region\"\ninstance_type = \"instance_type\"\n").unwrap();
    let store = Store::open(dir.join("store"));
    let prices = Spec {
        format: None,
        feed_file: Some(feed),
        provider: None,
        at: Some(at("2024-10-09T12:00:00Z")),
    };
    let ecb = dir.join("fx.xml");
    std::fs::write(&ecb, fixture("eurofxref-daily.xml")).unwrap();
    let rates = Spec {
        format: Some("ecb_fx".into()),
        feed_file: None,
        provider: Some("ecb".into()),
        at: Some(at("2024-10-04T16:00:00Z")),
    };
    let order = match rates_first {
        true => [(&rates, ecb.as_path()), (&prices, file)],
        false => [(&prices, file), (&rates, ecb.as_path())],
    };
    for (spec, path) in order {
        let paths = [path.to_path_buf()];
        backfill::backfill(spec, &paths, &store, Tables::embedded(), |_, _, _| {})
            .await
            .unwrap();
    }
    let by = ["observed_at", "offer_id", "price_class"];
    let sorted = |d: &str| {
        let df = read_all(&dir.join("store").join(d))?;
        let by: Vec<&str> = by
            .iter()
            .copied()
            .filter(|c| df.column(c).is_ok())
            .collect();
        Some(df.sort(by, Default::default()).unwrap())
    };
    [sorted("offers"), sorted("rejects")]
}

/// A file whose rows carry their own dates is stored as one run per day, and only
/// the run at `--at` keeps the payload. Rates that arrive after it heal every day's
/// run, not that run alone (found by a differential hunt: back-filling the China
/// quotes before the ECB rates stored 105 of their 337 offers for good), and the
/// store is the one the other order gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_after_a_dated_file_heal_every_day_it_was_split_into() {
    let tmp = tempdir();
    let file = tmp.path().join("prices.csv");
    std::fs::write(
        &file,
        "date,instance_type,gpu,gpus,region,price_cny_per_hour\n\
         2024-10-07,ecs.gn7e-c16g1.4xlarge,NVIDIA A100 80G,1,cn-beijing,8.70\n\
         2024-10-08,ecs.gn7e-c16g1.4xlarge,NVIDIA A100 80G,1,cn-beijing,8.20\n\
         2024-10-09,ecs.gn7e-c16g1.4xlarge,NVIDIA A100 80G,1,cn-beijing,8.00\n",
    )
    .unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let [first_offers, first_rejects] = dated_cny_and_rates(&a, &file, true).await;
    let [later_offers, later_rejects] = dated_cny_and_rates(&b, &file, false).await;
    let height = |df: &Option<DataFrame>| df.as_ref().map_or(0, DataFrame::height);
    assert_eq!(height(&first_offers), 3, "{first_offers:?}");
    assert_eq!(later_offers, first_offers, "rates after the prices");
    assert_eq!(
        height(&later_rejects),
        height(&first_rejects),
        "{later_rejects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_provider_file_is_one_reject_naming_it() {
    let srv = server().await;
    let zip = catalog(&[
        (
            "aws.csv",
            format!(
                "{HEADER}g5.xlarge,us-west-2,1.006,4,16.0,1,A10G,24.0,False,,nvidia,,\n\
                     g5.2xlarge,us-west-2,cheap,8,32.0,1,A10G,24.0,False,,nvidia,,\n\
                     g5.4xlarge,us-west-2,1.6,16,64.0,1,A10G,24.0,maybe,,nvidia,,\n"
            ),
        ),
        (
            "oci.csv",
            "instance_name,location,cpu\nBM.GPU4.8,us-ashburn-1,64\n".into(),
        ),
    ]);
    srv.routes.set(
        "/v2/20240508/catalog.zip",
        HttpResponse::ok("application/zip", zip),
    );
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let feed = format!(
        "format = \"gpuhunt_catalog\"\nurl = \"{}\"\nversion = \"20240508\"\n",
        srv.url("/v2")
    );
    let r = ingest(&tmp.path().join("feeds"), &[("gpuhunt", feed)], &store, AT).await;
    let line = r.outcomes[0].line();
    assert!(line.contains("1 stored, 3 rejected"), "{line}");
    let rejects = read_all(&tmp.path().join("store/rejects")).unwrap();
    let details = str_col(&rejects, "detail").join("\n");
    for want in [
        "oci.csv: column \"price\" missing from the header",
        "aws.csv line 3: column \"price\": \"cheap\" is not a number",
        "aws.csv line 4: column \"spot\": \"maybe\" is not True or False",
    ] {
        assert!(details.contains(want), "{want:?} not in {details}");
    }
}
