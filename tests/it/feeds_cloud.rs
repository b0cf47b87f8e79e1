//! Hyperscaler feed formats end to end (`azure_retail`, `aws_offer`, `gcp_billing`) and
//! the fetcher's HTTP behaviour. The recorded samples in `feeds/samples/` are served
//! from 127.0.0.1, feed files point at them, the library's own ingest runs
//! (`feed::load_dir`, `fetch::client`, `ingest::run`), and specific stored offers are
//! read back from the Parquet store. Paging is followed over the loopback server
//! (Azure `NextPageLink`, GCP `nextPageToken`, its key sent as a header). AWS China prices in CNY run with an
//! ECB feed in the same run (real rates of Friday 2024-10-04, observed Monday
//! 2024-10-07).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gpurent::run::sim::HttpResponse;

use crate::common::*;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/samples")
}

fn hits(srv: &TestServer) -> Vec<String> {
    srv.hits.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------
// Azure Retail Prices: two pages linked by NextPageLink.
// ---------------------------------------------------------------------------

const AZURE_LINE: &str =
    "ok, 10 offers read, 7 stored, 3 rejected (dev_test_price 1, unknown_instance_type 1, windows_os 1)";

#[rustfmt::skip]
fn azure_wants() -> Vec<Want<'static>> {
    vec![
        // ND96isr H100 v5: 8x H100 SXM 80GB at 98.32 USD/h.
        ("eastus/DZH318Z0NB1K/00B4", "on_demand", 98.32 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("eastus/DZH318Z0NB1K/00B9", "spot", 39.33 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        // Reservations quote the term's total: 560,640 USD a year, 1,261,440 USD for 3 years.
        ("eastus/DZH318Z0NB1K/01A2/1y", "reserved", 560_640.0 / 8760.0 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("eastus/DZH318Z0NB1K/01A3/3y", "reserved", 1_261_440.0 / 26_280.0 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("eastasia/DZH318Z0NB1K/00B7", "on_demand", 110.0 / 8.0, "H100-SXM-80GB", 8.0, "HK", "OTHER"),
        // NC24ads A100 v4: one A100 80GB PCIe; Low Priority is spot.
        ("westeurope/DZH318Z0CSHC/00G1", "on_demand", 3.673, "A100-PCIE-80GB", 1.0, "NL", "OTHER"),
        ("westeurope/DZH318Z0CSHC/00G4", "spot", 0.7346, "A100-PCIE-80GB", 1.0, "NL", "OTHER"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_retail_follows_next_page_link() {
    let srv = server().await;
    let mut page1: serde_json::Value =
        serde_json::from_slice(&sample("azure_retail.sample/page-1.json")).unwrap();
    assert!(page1["NextPageLink"]
        .as_str()
        .unwrap()
        .starts_with("https://prices.azure.com"));
    page1["NextPageLink"] = srv.url("/azure?page=2").into();
    srv.routes.script(
        "/azure",
        vec![
            HttpResponse::ok("application/json", serde_json::to_vec(&page1).unwrap()),
            sample_ok("azure_retail.sample/page-2.json"),
        ],
    );
    // No `provider`: the default (the format name) maps to the tables' id `azure`.
    let feed = format!(
        "format = \"azure_retail\"\nurl = \"{}\"\nretries = 0\n",
        srv.url("/azure")
    );
    let (offers, lines) = ingest_ok(&[("azure", feed)]).await;
    assert_eq!(line(&lines, "azure"), format!("azure: {AZURE_LINE}"));
    assert_eq!(
        hits(&srv),
        vec!["/azure".to_string(), "/azure?page=2".to_string()]
    );
    check_offers(&offers, &azure_wants());
    assert!(str_col(&offers, "provider").iter().all(|p| p == "azure"));
    let ri = rows_where(&offers, &[("offer_id", "eastus/DZH318Z0NB1K/01A3/3y")]);
    assert_eq!(str_col(&ri, "price_unit")[0], "instance-three_years");
    assert_eq!(
        f64_col(&ri, "price")[0],
        1_261_440.0,
        "the published amount is stored untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_recorded_pages_replay_through_the_same_path() {
    let feed = format!(
        "format = \"azure_retail\"\nurl = \"{}\"\nprovider = \"azure\"\nsample = true\n",
        samples_dir().join("azure_retail.sample").display()
    );
    let (offers, lines) = ingest_ok(&[("azure", feed)]).await;
    assert_eq!(line(&lines, "azure"), format!("azure: {AZURE_LINE}"));
    check_offers(&offers, &azure_wants());
}

// ---------------------------------------------------------------------------
// AWS bulk offer files: JSON (global) and CSV (China, CNY, with ECB rates).
// ---------------------------------------------------------------------------

const AWS_EXTRA: &str = "provider = \"aws\"\nretries = 0\n";
const AWS_LINE: &str = "aws: ok, 5 offers read, 4 stored, 1 rejected (unknown_instance_type 1)";
/// p5.48xlarge on demand in us-east-1: 8x H100 SXM at 98.32 USD/h.
const P5_ON_DEMAND: Want = (
    "P5LINUXUSE1AAAA.JRTCKXETXF.6YS6EN2CT7",
    "on_demand",
    12.29,
    "H100-SXM-80GB",
    8.0,
    "US",
    "US",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_offer_json_keeps_plain_linux_gpu_boxes() {
    let srv = server().await;
    let (path, name) = ("/aws/index.json", "aws_offer.sample.json");
    let feed = sample_feed(&srv, "aws_offer", path, name, AWS_EXTRA);
    let (offers, lines) = ingest_ok(&[("aws", feed)]).await;
    // p5 on demand + No Upfront reserved, p4d, g5 (Hong Kong), g4ad (not catalogued);
    // Windows, dedicated, capacity reservation, Capacity Block, All Upfront and m5 are
    // not plain GPU offers.
    assert_eq!(line(&lines, "aws"), AWS_LINE);
    #[rustfmt::skip]
    let wants: &[Want] = &[
        P5_ON_DEMAND,
        ("P5LINUXUSE1AAAA.4NA7Y494T4.6YS6EN2CT7", "reserved", 57.63 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("P4DLINUXUSW2AAA.JRTCKXETXF.6YS6EN2CT7", "on_demand", 32.7726 / 8.0, "A100-SXM-40GB", 8.0, "US", "US"),
        ("G5LINUXAPE1AAAA.JRTCKXETXF.6YS6EN2CT7", "on_demand", 1.308, "A10G-24GB", 1.0, "HK", "OTHER"),
    ];
    check_offers(&offers, wants);
    assert_eq!(offers.height(), 4);
    assert!(str_col(&offers, "instance_type")
        .iter()
        .all(|t| t != "m5.large"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_offer_csv_china_partition_in_cny() {
    let srv = server().await;
    let (path, name) = ("/awscn/index.csv", "aws_offer_cn.sample.csv");
    let feed = sample_feed(&srv, "aws_offer", path, name, AWS_EXTRA);
    let (offers, lines) = ingest_ok(&[("aws_cn", feed), ecb_feed(&srv)]).await;
    assert_eq!(
        line(&lines, "aws_cn"),
        "aws_cn: ok, 4 offers read, 4 stored, 0 rejected"
    );
    assert!(line(&lines, "ecb").starts_with("ecb: ok"), "{lines:#?}");
    let r = USD_PER_CNY;
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("CNP3LINUXCNN1AA.JRTCKXETXF.6YS6EN2CT7", "on_demand", 29.411 * r, "V100-SXM-16GB", 1.0, "CN", "CN"),
        ("CNP3LINUXCNN1AA.4NA7Y494T4.6YS6EN2CT7", "reserved", 19.9 * r, "V100-SXM-16GB", 1.0, "CN", "CN"),
        ("CNP316LINUXCNW1.JRTCKXETXF.6YS6EN2CT7", "on_demand", 235.288 / 8.0 * r, "V100-SXM-16GB", 8.0, "CN", "CN"),
        ("CNG4DNLINUXCNW1.JRTCKXETXF.6YS6EN2CT7", "on_demand", 3.979 * r, "T4-16GB", 1.0, "CN", "CN"),
    ];
    check_offers(&offers, wants);
    assert!(str_col(&offers, "currency").iter().all(|c| c == "CNY"));
    assert!(
        f64_col(&offers, "price").contains(&29.411),
        "the CNY amount is stored as published"
    );
}

// ---------------------------------------------------------------------------
// GCP Cloud Billing Catalog: two pages linked by nextPageToken, key from auth_env.
// ---------------------------------------------------------------------------

const GCP_KEY: &str = "gcp-test-key-4711";
const GCP_LINE: &str = "ok, 7 offers read, 6 stored, 1 rejected (virtual_workstation 1)";

#[rustfmt::skip]
fn gcp_wants() -> Vec<Want<'static>> {
    vec![
        // "Nvidia Tesla A100 GPU" states neither form nor memory, but on GCP an A100
        // is only attached to A2 machines (SXM4, 40 GB): tables/gpus.toml [[provider_alias]].
        ("039F-D0DA-4055/us-central1", "on_demand", 2.933908, "A100-SXM-40GB", 1.0, "US", "US"),
        ("039F-D0DA-4055/us-east1", "on_demand", 2.933908, "A100-SXM-40GB", 1.0, "US", "US"),
        ("2A9E-7A4C-11D1/us-central1", "on_demand", 0.560528, "L4-24GB", 1.0, "US", "US"),
        ("8D6F-2A46-4A3B/us-central1", "spot", 0.14, "T4-16GB", 1.0, "US", "US"),
        ("5C1E-97B4-0E6A/asia-northeast1", "on_demand", 13.48, "H100-SXM-80GB", 1.0, "JP", "OTHER"),
        ("7F3B-25C9-D4E2/us-central1", "reserved", 0.353133, "L4-24GB", 1.0, "US", "US"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_billing_follows_next_page_token() {
    let srv = server().await;
    srv.routes.script(
        "/gcp/skus",
        vec![
            sample_ok("gcp_billing.sample/page-1.json"),
            sample_ok("gcp_billing.sample/page-2.json"),
        ],
    );
    std::env::set_var("GPURENT_TEST_GCP_KEY_PAGING", GCP_KEY);
    let feed = format!(
        "format = \"gcp_billing\"\nurl = \"{}\"\nauth_env = \"GPURENT_TEST_GCP_KEY_PAGING\"\nretries = 0\n",
        srv.url("/gcp/skus?currencyCode=USD")
    );
    let (offers, lines) = ingest_ok(&[("gcp", feed)]).await;
    assert_eq!(line(&lines, "gcp"), format!("gcp: {GCP_LINE}"));
    assert_eq!(
        hits(&srv),
        vec![
            "/gcp/skus?currencyCode=USD".to_string(),
            "/gcp/skus?currencyCode=USD&pageToken=CAESBgoEOEQ2Rg".to_string(),
        ]
    );
    check_offers(&offers, &gcp_wants());
    assert!(str_col(&offers, "provider").iter().all(|p| p == "gcp"));
    // The key goes in a header on every page, never in a URL.
    let requests = srv.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.header("x-goog-api-key"), Some(GCP_KEY), "{}", r.target);
        assert!(!r.target.contains(GCP_KEY), "key in URL: {}", r.target);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_recorded_pages_replay_through_the_same_path() {
    let feed = format!(
        "format = \"gcp_billing\"\nurl = \"{}\"\nsample = true\n",
        samples_dir().join("gcp_billing.sample").display()
    );
    let (offers, lines) = ingest_ok(&[("gcp", feed)]).await;
    assert_eq!(line(&lines, "gcp"), format!("gcp: {GCP_LINE}"));
    check_offers(&offers, &gcp_wants());
}

// ---------------------------------------------------------------------------
// HTTP behaviour: retries on 503 and 429 (Retry-After), none on 404.
// ---------------------------------------------------------------------------

fn aws_feed(srv: &TestServer, path: &str) -> String {
    format!(
        "format = \"aws_offer\"\nurl = \"{}\"\nretry_base_ms = 10\n",
        srv.url(path)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_and_the_feed_succeeds() {
    let srv = server().await;
    srv.routes.script(
        "/aws",
        vec![
            HttpResponse::status(503),
            sample_ok("aws_offer.sample.json"),
        ],
    );
    let (offers, lines) = ingest_ok(&[("aws", aws_feed(&srv, "/aws"))]).await;
    assert_eq!(line(&lines, "aws"), AWS_LINE);
    assert_eq!(hits(&srv).len(), 2, "one retry");
    check_offers(&offers, &[P5_ON_DEMAND]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_retry_after() {
    let srv = server().await;
    srv.routes.script(
        "/aws",
        vec![
            HttpResponse::status(429).with_header("Retry-After", "1"),
            sample_ok("aws_offer.sample.json"),
        ],
    );
    let started = Instant::now();
    let (offers, lines) = ingest_ok(&[("aws", aws_feed(&srv, "/aws"))]).await;
    let waited = started.elapsed();
    assert!(
        line(&lines, "aws").starts_with("aws: ok, 5 offers read, 4 stored"),
        "{lines:#?}"
    );
    assert_eq!(hits(&srv).len(), 2);
    // retry_base_ms is 10: only Retry-After explains a wait of about a second.
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}"
    );
    assert_eq!(offers.height(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_fails_that_feed_only() {
    let srv = server().await;
    srv.routes.script("/gone", vec![HttpResponse::status(404)]);
    srv.routes.set("/aws", sample_ok("aws_offer.sample.json"));
    let (report, lines, offers) = run_feeds(&[
        ("gone", aws_feed(&srv, "/gone")),
        ("aws", aws_feed(&srv, "/aws")),
    ])
    .await;
    assert_eq!(report.exit_code(), 1, "{lines:#?}");
    assert_eq!(report.failed(), 1);
    let gone = line(&lines, "gone");
    assert!(
        gone.starts_with("gone: FAILED") && gone.contains("HTTP status 404"),
        "{gone}"
    );
    let gone_hits = hits(&srv).iter().filter(|h| h.as_str() == "/gone").count();
    assert_eq!(gone_hits, 1, "no retry on 404");
    assert!(
        line(&lines, "aws").starts_with("aws: ok, 5 offers read, 4 stored"),
        "{lines:#?}"
    );
    let offers = offers.expect("the other feed is stored");
    assert!(str_col(&offers, "feed").iter().all(|f| f == "aws"));
    assert_eq!(offers.height(), 4);
}

#[test]
fn default_feed_files_load() {
    // (feed, format, provider, auth_env)
    let mine = [
        ("azure_retail", "azure_retail", "azure", None),
        ("aws_offer", "aws_offer", "aws", None),
        ("aws_offer_cn", "aws_offer", "aws", None),
        (
            "gcp_billing",
            "gcp_billing",
            "gcp",
            Some("GPURENT_GCP_API_KEY"),
        ),
    ];
    let names: Vec<&str> = mine.iter().map(|m| m.0).collect();
    for ((name, format, provider, auth_env), c) in mine.into_iter().zip(repo_feeds(&names)) {
        assert_eq!(
            (c.format.as_str(), c.provider.as_str()),
            (format, provider),
            "{name}"
        );
        assert_eq!(
            c.auth_env.as_deref(),
            auth_env,
            "{name}: keyless feeds are enabled without a key"
        );
        assert!(c.enabled && !c.sample, "{name}: a live feed");
        assert!(
            matches!(c.source, gpurent::ingest::feed::Source::Http(ref u) if u.starts_with("https://")),
            "{name}: live URL"
        );
    }
}
