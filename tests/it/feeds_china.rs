//! The two Chinese cloud price APIs end to end: Alibaba Cloud ECS `DescribePrice`
//! (`aliyun`) and Tencent Cloud CVM `InquiryPriceRunInstances` (`tencent`).
//!
//! 1. The recorded sample directories in `feeds/samples/` replayed through
//!    `gpurent::ingest::run` with the ECB rates of 2024-10-04, checking stored offers.
//! 2. The live path against a loopback server: the server checks that every request
//!    it got is correctly signed (signatures recomputed here with `sign.rs`), and the
//!    offers are stored.
//! 3. The `gpurent` binary with one keyed feed set and one unset: the unset one is
//!    skipped with a one-line notice, and the key never shows in the output or store.

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gpurent::ingest::adapters::sign::{aliyun_rpc_signature, tc3_authorization, Tc3Request};
use gpurent::ingest::{self, feed, fetch};
use gpurent::ingest::{RunReport, Status};
use gpurent::run::sim::{HttpRequest, HttpResponse};
use gpurent::{store::Store, tables::Tables};
use polars::prelude::DataFrame;

use crate::common::*;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The recorded answer `file` of `format`'s sample directory, served with 200.
fn answer(format: &str, file: &str) -> HttpResponse {
    sample_ok(&format!("{format}.sample/{file}"))
}

/// Observation on Monday 2024-10-07 ([`AT`]); the fixture holds the ECB rates of
/// Friday 2024-10-04.
fn at() -> DateTime<Utc> {
    AT.parse().unwrap()
}

/// Every feed of these tests publishes prices with 6% VAT included.
const VAT: f64 = 0.06;

fn ecb_feed() -> String {
    format!(
        "format = \"ecb_fx\"\nurl = {:?}\n",
        repo("tests/fixtures/eurofxref-daily.xml")
            .display()
            .to_string()
    )
}

fn write(dir: &Path, files: &[(&str, String)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

async fn run_ingest(feeds: &Path, store: &Path) -> RunReport {
    let (feeds, broken) = feed::load_dir(feeds).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let store = Store::open(store);
    ingest::run(
        feeds,
        broken,
        &store,
        &fetch::client(),
        at(),
        Tables::embedded(),
    )
    .await
}

fn line<'a>(report: &'a RunReport, feed: &str) -> (String, &'a Status) {
    let o = report
        .outcomes
        .iter()
        .find(|o| o.feed == feed)
        .unwrap_or_else(|| panic!("no outcome for {feed}"));
    (o.line(), &o.status)
}

struct Want<'a> {
    feed: &'a str,
    offer: &'a str,
    class: &'a str,
    model: &'a str,
    count: f64,
    country: &'a str,
    bloc: &'a str,
    /// Published price per GPU-hour in CNY, computed here from the sample by hand.
    cny_per_gpu_hour: f64,
}

/// Alibaba: TradePrice per instance-hour; 2023 list price of 8x A100 80GB SXM.
const ALI_SHANGHAI_A100: Want = Want {
    feed: "aliyun",
    offer: "cn-shanghai/ecs.gn7e-c16g1.32xlarge",
    class: "on_demand",
    model: "A100-SXM-80GB",
    count: 8.0,
    country: "CN",
    bloc: "CN",
    cny_per_gpu_hour: 277.93 / 8.0,
};

/// Tencent: UnitPriceDiscount null → UnitPrice 237.51 for 8x A100 40GB NVLink.
const TC_GUANGZHOU_A100: Want = Want {
    feed: "tencent",
    offer: "ap-guangzhou-6/GT4.41XLARGE948",
    class: "on_demand",
    model: "A100-SXM-40GB",
    count: 8.0,
    country: "CN",
    bloc: "CN",
    cny_per_gpu_hour: 237.51 / 8.0,
};

/// Tencent in Hong Kong, not mainland China.
const TC_HONGKONG_T4: Want = Want {
    feed: "tencent",
    offer: "ap-hongkong-2/GN7.2XLARGE32",
    class: "on_demand",
    model: "T4-16GB",
    count: 1.0,
    country: "HK",
    bloc: "OTHER",
    cny_per_gpu_hour: 9.2,
};

fn check_offer(offers: &DataFrame, w: &Want) {
    let r = rows_where(
        offers,
        &[
            ("feed", w.feed),
            ("offer_id", w.offer),
            ("price_class", w.class),
        ],
    );
    assert_eq!(
        r.height(),
        1,
        "{} {} {}: one stored row",
        w.feed,
        w.offer,
        w.class
    );
    let usd = w.cny_per_gpu_hour * USD_PER_CNY;
    let got = f64_col(&r, "usd_per_gpu_hour")[0];
    assert!(
        (got - usd).abs() < 1e-9,
        "{}: usd_per_gpu_hour {got} != {usd}",
        w.offer
    );
    let ex = f64_col(&r, "usd_per_gpu_hour_ex_vat")[0];
    assert!(
        (ex - usd / (1.0 + VAT)).abs() < 1e-9,
        "{}: ex VAT {ex}",
        w.offer
    );
    assert_eq!(str_col(&r, "gpu_model")[0], w.model, "{}", w.offer);
    assert_eq!(f64_col(&r, "gpu_count")[0], w.count, "{}", w.offer);
    assert_eq!(str_col(&r, "country")[0], w.country, "{}", w.offer);
    assert_eq!(str_col(&r, "bloc")[0], w.bloc, "{}", w.offer);
    assert_eq!(str_col(&r, "currency")[0], "CNY", "{}", w.offer);
    assert_eq!(
        r.column("fx_date").unwrap().get(0).unwrap().to_string(),
        "2024-10-04"
    );
}

const ALIYUN_QUERIES: &str =
    "regions = [\"cn-shanghai\"]\ninstance_types = [\"ecs.gn7e-c16g1.32xlarge\"]\n";
const TENCENT_QUERIES: &str = "image_id = \"img-pmqg1cw7\"\nqueries = [{ region = \"ap-guangzhou\", zone = \"ap-guangzhou-6\", instance_type = \"GT4.41XLARGE948\" }]\n";

/// A feed file of `format` replaying its recorded sample directory, `queries` appended.
fn recorded_feed(format: &str, queries: &str) -> String {
    let dir = repo(&format!("feeds/samples/{format}.sample"));
    format!(
        "format = \"{format}\"\nurl = {:?}\nsample = true\nprice_includes_vat = 0.06\n{queries}",
        dir.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_samples_replay_through_ingest() {
    let tmp = tempdir();
    let (feeds, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
    write(
        &feeds,
        &[
            ("ecb.toml", ecb_feed()),
            ("aliyun.toml", recorded_feed("aliyun", ALIYUN_QUERIES)),
            ("tencent.toml", recorded_feed("tencent", TENCENT_QUERIES)),
        ],
    );
    let report = run_ingest(&feeds, &store).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.outcomes);
    let (l, _) = line(&report, "aliyun");
    assert_eq!(
        l,
        "aliyun: ok, 5 offers read, 4 stored, 1 rejected (api_error 1)"
    );
    let (l, _) = line(&report, "tencent");
    assert_eq!(
        l,
        "tencent: ok, 4 offers read, 3 stored, 1 rejected (api_error 1)"
    );

    let offers = read_all(&store.join("offers")).expect("offers stored");
    let cases = [
        ALI_SHANGHAI_A100,
        // Subscription: 15160 CNY per instance-month (730 h), class reserved.
        Want {
            feed: "aliyun",
            offer: "cn-shanghai/ecs.gn7-c12g1.3xlarge",
            class: "reserved",
            model: "A100-SXM-40GB",
            count: 1.0,
            country: "CN",
            bloc: "CN",
            cny_per_gpu_hour: 15160.0 / 730.0,
        },
        // TradePrice 8.58 (OriginalPrice 9.53 minus a 0.95 promotion).
        Want {
            feed: "aliyun",
            offer: "cn-beijing/ecs.gn7i-c8g1.2xlarge",
            class: "on_demand",
            model: "A10-24GB",
            count: 1.0,
            country: "CN",
            bloc: "CN",
            cny_per_gpu_hour: 8.58,
        },
        // Hong Kong is not mainland China.
        Want {
            feed: "aliyun",
            offer: "cn-hongkong/ecs.gn6i-c4g1.xlarge",
            class: "on_demand",
            model: "T4-16GB",
            count: 1.0,
            country: "HK",
            bloc: "OTHER",
            cny_per_gpu_hour: 13.1,
        },
        TC_GUANGZHOU_A100,
        // UnitPriceDiscount 106.88 (not UnitPrice 118.75) for 4 GPUs.
        Want {
            feed: "tencent",
            offer: "ap-shanghai-5/GT4.20XLARGE474",
            class: "on_demand",
            model: "A100-SXM-40GB",
            count: 4.0,
            country: "CN",
            bloc: "CN",
            cny_per_gpu_hour: 106.88 / 4.0,
        },
        TC_HONGKONG_T4,
    ];
    for w in &cases {
        check_offer(&offers, w);
    }
    assert_eq!(offers.height(), cases.len());
    let units: HashSet<String> = str_col(&offers, "price_unit").into_iter().collect();
    assert_eq!(
        units,
        ["instance-hour", "instance-month"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert!(offers.column("sample").unwrap().bool().unwrap().all());

    // API errors are rejects of that query, naming the provider's error code.
    let rejects = read_all(&store.join("rejects")).expect("rejects stored");
    let ali = rows_where(&rejects, &[("feed", "aliyun"), ("reason", "api_error")]);
    assert_eq!(
        str_col(&ali, "offer_id"),
        ["cn-beijing/ecs.gn8v-c16g1.4xlarge"]
    );
    assert!(str_col(&ali, "detail")[0].contains("InvalidInstanceType.ValueNotSupported"));
    let tc = rows_where(&rejects, &[("feed", "tencent"), ("reason", "api_error")]);
    assert_eq!(str_col(&tc, "offer_id"), ["ap-beijing-7/GT4.4XLARGE96"]);
    assert!(str_col(&tc, "detail")[0].contains("ResourcesSoldOut.SpecifiedInstanceType"));
}

/// A unique environment variable name for this test process.
fn var_name(what: &str) -> String {
    format!(
        "GPURENT_TEST_{what}_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The server-side check of an Alibaba RPC request: the query, decoded, re-signed.
fn verify_aliyun(req: &HttpRequest, id: &str, secret: &str) -> BTreeMap<String, String> {
    assert_eq!(req.method, "GET");
    assert_eq!(req.path(), "/aliyun/");
    let query = req.target.split_once('?').expect("query string").1;
    let mut params: BTreeMap<String, String> = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let signature = params.remove("Signature").expect("Signature");
    assert_eq!(
        signature,
        aliyun_rpc_signature("GET", &params, secret),
        "signature of {query}"
    );
    assert_eq!(params["AccessKeyId"], id);
    assert_eq!(params["Action"], "DescribePrice");
    assert_eq!(params["Version"], "2014-05-26");
    assert_eq!(params["ResourceType"], "instance");
    assert_eq!(params["PriceUnit"], "Hour");
    assert_eq!(params["Format"], "JSON");
    assert_eq!(params["SignatureMethod"], "HMAC-SHA1");
    assert_eq!(params["SignatureVersion"], "1.0");
    assert_eq!(params["Timestamp"], "2024-10-07T12:00:00Z");
    assert!(!req.target.contains(secret), "the secret is never sent");
    params
}

/// The server-side check of a Tencent TC3 request: the Authorization header recomputed
/// from the method, Host, Content-Type, X-TC-Action, X-TC-Timestamp and body received.
fn verify_tencent(req: &HttpRequest, id: &str, key: &str) -> serde_json::Value {
    assert_eq!(req.method, "POST");
    assert_eq!(req.path(), "/tencent/");
    let h = |n: &str| {
        req.header(n)
            .unwrap_or_else(|| panic!("header {n}"))
            .to_string()
    };
    assert_eq!(h("X-TC-Action"), "InquiryPriceRunInstances");
    assert_eq!(h("X-TC-Version"), "2017-03-12");
    assert_eq!(h("Content-Type"), "application/json; charset=utf-8");
    let timestamp: i64 = h("X-TC-Timestamp").parse().unwrap();
    assert_eq!(timestamp, at().timestamp());
    let body = String::from_utf8(req.body.clone()).unwrap();
    let host = h("Host");
    let expected = tc3_authorization(
        &Tc3Request {
            method: &req.method,
            host: &host,
            service: "cvm",
            action: Some(&h("X-TC-Action")),
            content_type: &h("Content-Type"),
            query: "",
            payload: &body,
            timestamp,
        },
        id,
        key,
    );
    assert_eq!(h("Authorization"), expected);
    assert!(
        req.headers.iter().all(|(_, v)| !v.contains(key)),
        "the key is never sent"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["InstanceChargeType"], "POSTPAID_BY_HOUR");
    assert_eq!(v["ImageId"], "img-pmqg1cw7");
    assert_eq!(
        v["Placement"]["Zone"]
            .as_str()
            .map(|z| z.starts_with(h("X-TC-Region").as_str())),
        Some(true)
    );
    v
}

const ALI_SHANGHAI_FILE: &str = "cn-shanghai__ecs.gn7e-c16g1.32xlarge__Hour.json";
const TC_GUANGZHOU_FILE: &str = "ap-guangzhou__ap-guangzhou-6__GT4.41XLARGE948.json";

fn live_feeds(srv: &TestServer, ali_var: &str, tc_var: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ecb.toml", ecb_feed()),
        (
            "aliyun.toml",
            format!(
                "format = \"aliyun\"\nurl = \"{0}\"\nendpoint = \"{0}\"\nauth_env = \"{ali_var}\"\nretries = 0\nprice_includes_vat = 0.06\n\
                 regions = [\"cn-shanghai\", \"cn-hongkong\"]\ninstance_types = [\"ecs.gn7e-c16g1.32xlarge\"]\n",
                srv.url("/aliyun/")
            ),
        ),
        (
            "tencent.toml",
            format!(
                "format = \"tencent\"\nurl = \"{0}\"\nendpoint = \"{0}\"\nauth_env = \"{tc_var}\"\nretries = 0\nprice_includes_vat = 0.06\n\
                 image_id = \"img-pmqg1cw7\"\nqueries = [\n  {{ region = \"ap-guangzhou\", zone = \"ap-guangzhou-6\", instance_type = \"GT4.41XLARGE948\" }},\n  \
                 {{ region = \"ap-hongkong\", zone = \"ap-hongkong-2\", instance_type = \"GN7.2XLARGE32\" }},\n]\n",
                srv.url("/tencent/")
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_requests_are_signed_and_stored() {
    let srv = server().await;
    // Queries of one feed are made in order, so each gets its own scripted answer.
    srv.routes.script(
        "/aliyun/",
        vec![
            answer("aliyun", ALI_SHANGHAI_FILE),
            answer("aliyun", "cn-hongkong__ecs.gn6i-c4g1.xlarge__Hour.json"),
        ],
    );
    srv.routes.script(
        "/tencent/",
        vec![
            answer("tencent", TC_GUANGZHOU_FILE),
            answer("tencent", "ap-hongkong__ap-hongkong-2__GN7.2XLARGE32.json"),
        ],
    );
    let (ali_var, tc_var) = (var_name("ALIYUN"), var_name("TENCENT"));
    let (ali_id, ali_secret) = ("LTAI5tTestKeyId9x", "aliSecret/+=k3y&\u{7a7a}");
    let (tc_id, tc_key) = ("AKIDtestSecretId42", "tcSecretKey-0d1e2f");
    // Edition 2021: set_var is safe; the names are unique to this process and test.
    std::env::set_var(&ali_var, format!("{ali_id}:{ali_secret}"));
    std::env::set_var(&tc_var, format!("{tc_id}:{tc_key}"));

    let tmp = tempdir();
    let (feeds, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
    write(&feeds, &live_feeds(&srv, &ali_var, &tc_var));
    let report = run_ingest(&feeds, &store).await;
    std::env::remove_var(&ali_var);
    std::env::remove_var(&tc_var);
    assert_eq!(report.exit_code(), 0, "{:?}", report.outcomes);
    assert_eq!(
        line(&report, "aliyun").0,
        "aliyun: ok, 2 offers read, 2 stored, 0 rejected"
    );
    assert_eq!(
        line(&report, "tencent").0,
        "tencent: ok, 2 offers read, 2 stored, 0 rejected"
    );

    let received = srv.requests.lock().unwrap().clone();
    let ali: Vec<&HttpRequest> = received.iter().filter(|r| r.path() == "/aliyun/").collect();
    let tc: Vec<&HttpRequest> = received
        .iter()
        .filter(|r| r.path() == "/tencent/")
        .collect();
    assert_eq!((ali.len(), tc.len()), (2, 2));
    let params: Vec<BTreeMap<String, String>> = ali
        .iter()
        .map(|r| verify_aliyun(r, ali_id, ali_secret))
        .collect();
    let regions: Vec<&str> = params.iter().map(|p| p["RegionId"].as_str()).collect();
    assert_eq!(regions, ["cn-shanghai", "cn-hongkong"]);
    assert!(params
        .iter()
        .all(|p| p["InstanceType"] == "ecs.gn7e-c16g1.32xlarge"));
    assert_ne!(
        params[0]["SignatureNonce"], params[1]["SignatureNonce"],
        "a fresh nonce per request"
    );
    let bodies: Vec<serde_json::Value> = tc
        .iter()
        .map(|r| verify_tencent(r, tc_id, tc_key))
        .collect();
    assert_eq!(bodies[0]["InstanceType"], "GT4.41XLARGE948");
    assert_eq!(bodies[1]["Placement"]["Zone"], "ap-hongkong-2");
    assert_eq!(tc[1].header("X-TC-Region"), Some("ap-hongkong"));

    // The answers are stored under the query each request carried.
    let offers = read_all(&store.join("offers")).expect("offers stored");
    assert_eq!(offers.height(), 4);
    let cases = [
        ALI_SHANGHAI_A100,
        // The second answer (13.1 CNY per instance-hour) for the second query (8 GPUs, HK).
        Want {
            feed: "aliyun",
            offer: "cn-hongkong/ecs.gn7e-c16g1.32xlarge",
            class: "on_demand",
            model: "A100-SXM-80GB",
            count: 8.0,
            country: "HK",
            bloc: "OTHER",
            cny_per_gpu_hour: 13.1 / 8.0,
        },
        TC_GUANGZHOU_A100,
        TC_HONGKONG_T4,
    ];
    for w in &cases {
        check_offer(&offers, w);
    }
    assert!(
        !offers.column("sample").unwrap().bool().unwrap().any(),
        "live data are not samples"
    );
}

/// Every file under `dir`, gunzipped when it is gzip.
fn all_file_bytes(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_file_bytes(&p, out);
        } else {
            let mut bytes = std::fs::read(&p).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(bytes.as_slice())
                    .read_to_end(&mut plain)
                    .unwrap();
                bytes.extend(plain);
            }
            out.push((p, bytes));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_key_is_skipped_and_keys_never_leak() {
    let srv = server().await;
    srv.routes
        .set("/aliyun/", answer("aliyun", ALI_SHANGHAI_FILE));
    srv.routes
        .set("/tencent/", answer("tencent", TC_GUANGZHOU_FILE));
    let (ali_var, unset_var) = (var_name("ALIYUN_SET"), var_name("TENCENT_UNSET"));
    let (ali_id, ali_secret) = ("LTAI5tLeakCheckId7q", "leakCheckSecret8w");
    let tmp = tempdir();
    let (feeds, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
    write(&feeds, &live_feeds(&srv, &ali_var, &unset_var));

    // The binary, as a user runs it, with debug logs on; the key is in its environment only.
    let args = [
        "ingest".to_string(),
        "--feeds".into(),
        feeds.display().to_string(),
        "--store".into(),
        store.display().to_string(),
        "--at".into(),
        AT.into(),
    ];
    let env = format!("{ali_id}:{ali_secret}");
    let (var, unset) = (ali_var.clone(), unset_var.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
            .args(&args)
            .env(&var, &env)
            .env_remove(&unset)
            .env("GPURENT_LOG", "debug")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a skipped feed is not a failure\n{stdout}\n{stderr}"
    );
    let skipped: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("tencent:"))
        .collect();
    assert_eq!(
        skipped,
        [format!(
            "tencent: skipped: environment variable {unset_var} is not set"
        )]
    );
    assert!(
        stdout.contains("aliyun: ok, 2 offers read, 2 stored, 0 rejected"),
        "{stdout}"
    );
    assert!(
        srv.hits
            .lock()
            .unwrap()
            .iter()
            .all(|target| !target.starts_with("/tencent/")),
        "nothing sent for the skipped feed"
    );
    for text in [&stdout, &stderr] {
        for needle in [ali_secret, ali_id, env_value(ali_id, ali_secret).as_str()] {
            assert!(!text.contains(needle), "{needle:?} printed:\n{text}");
        }
    }

    // No file of the store (Parquet, raw pages gunzipped, feed copies, run records) holds the key.
    let mut files = Vec::new();
    all_file_bytes(&store, &mut files);
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|x| x == "parquet")),
        "offers stored"
    );
    // The raw hour's record keeps a copy of the feed file (`feed_toml`).
    let raw_feed = files
        .iter()
        .filter(|(p, _)| {
            p.starts_with(store.join("raw")) && p.extension().is_some_and(|x| x == "json")
        })
        .filter_map(|(_, b)| serde_json::from_slice::<serde_json::Value>(b).ok())
        .filter_map(|v| v["feed_toml"].as_str().map(str::to_string))
        .find(|text| text.contains("format = \"aliyun\""))
        .expect("the raw copy of the aliyun feed file");
    assert!(
        raw_feed.contains(&ali_var),
        "the feed copy names the variable"
    );
    for (p, bytes) in &files {
        for needle in [ali_secret, ali_id] {
            assert!(
                !contains(bytes, needle),
                "{needle:?} found in {}",
                p.display()
            );
        }
    }
}

fn env_value(id: &str, secret: &str) -> String {
    format!("{id}:{secret}")
}
