//! The fault soak: the daemon on a simulated clock for 30 days of hours (set
//! `GPURENT_SOAK_DAYS` for a longer one) against three SIMULATED loopback providers
//! (the demo's vast.ai, CN price list and ECB payloads), with a fault drawn at random
//! (seeded) for every request: 5xx, 429, a body cut off mid-transfer, a half payload,
//! a changed schema, a `1e999`, a duplicated offer, a 404. At the end every hour is
//! accounted for in the run records (each feed stored, or failed with a reason), the
//! store has no duplicate keys and reads with an independent reader, the weekly
//! reports are written, and the peak RSS (VmHWM) is printed (not asserted).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use gpurent::run::schedule::{self, Clock, Daemon, SimClock};
use gpurent::store::Store;
use gpurent::tables::Tables;

use super::{check_store, fault_server, Fault};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The fault for one request, and its name (counted).
fn draw(rng: &mut fastrand::Rng, path: &str, h: i64) -> (&'static str, Fault) {
    let body = match path {
        "/vast" => gpurent::run::demo::vast_payload(h).into_bytes(),
        "/cn.csv" => gpurent::run::demo::cn_cloud_csv(h).into_bytes(),
        _ => gpurent::run::demo::ecb_xml(h).into_bytes(),
    };
    let vast = path == "/vast";
    match rng.u32(0..100) {
        0..=54 => ("ok", Fault::json(body)),
        55..=64 => ("503", Fault::status(503, &[])),
        65..=69 => ("429", Fault::status(429, &[("Retry-After", "0")])),
        70..=74 => (
            "cut_off",
            Fault::Truncate {
                keep: body.len() / 3,
                body,
            },
        ),
        75..=79 => ("half_payload", Fault::json(body[..body.len() / 2].to_vec())),
        80..=84 if vast => (
            "schema_change",
            Fault::json(
                String::from_utf8(body)
                    .unwrap()
                    .replace("\"gpu_name\"", "\"gpuName\""),
            ),
        ),
        85..=89 if vast => (
            "huge_number",
            Fault::json(String::from_utf8(body).unwrap().replacen(
                "\"dph_total\":",
                "\"dph_total\":1e999,\"x\":",
                1,
            )),
        ),
        90..=94 if vast => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let first = v["offers"][0].clone();
            v["offers"].as_array_mut().unwrap().push(first);
            ("duplicate", Fault::json(serde_json::to_vec(&v).unwrap()))
        }
        95..=99 => ("404", Fault::status(404, &[])),
        _ => ("ok", Fault::json(body)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_fault_soak() {
    let days: i64 = std::env::var("GPURENT_SOAK_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let tmp = super::fast_tempdir();
    let started = std::time::Instant::now();
    let (feeds, store, reports) = (
        tmp.path().join("feeds"),
        tmp.path().join("store"),
        tmp.path().join("reports"),
    );
    let start = gpurent::run::demo::start();
    let end = start + Duration::hours(days * 24);
    let (tx, shutdown) = tokio::sync::watch::channel(false);
    let clock = Arc::new(SimClock::new(start).stop_at(end, tx));
    let faults: Arc<Mutex<BTreeMap<&'static str, u32>>> = Arc::default();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    // VmRSS at the first request of each simulated day.
    let rss: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (c, f, r5) = (Arc::clone(&clock), Arc::clone(&faults), Arc::clone(&rss));
    // One seeded generator per provider: each feed's requests come one after another,
    // so the fault sequence (and the figures printed) are the same on every run.
    let rngs: Mutex<BTreeMap<String, fastrand::Rng>> = Mutex::default();
    let srv = fault_server(move |req| {
        let h = (c.now() - gpurent::run::demo::start()).num_hours();
        {
            let mut r = r5.lock().unwrap();
            if r.len() as i64 <= h / 24 {
                r.push(status_kb("VmRSS:"));
            }
        }
        let mut rngs = rngs.lock().unwrap();
        let seed = 2024 + req.path.len() as u64;
        let rng = rngs
            .entry(req.path.clone())
            .or_insert_with(|| fastrand::Rng::with_seed(seed));
        let (name, fault) = draw(rng, &req.path, h);
        *f.lock().unwrap().entry(name).or_default() += 1;
        fault
    });
    std::fs::create_dir_all(&feeds).unwrap();
    let common = "sample = true\ntimeout_s = 5\nretries = 1\nretry_base_ms = 1\n";
    for (name, text) in [
        ("vast", format!("format = \"vastai\"\nurl = \"{}\"\nprovider = \"sim-vastai\"\n{common}", srv.url("/vast"))),
        ("cn", format!("format = \"generic_csv\"\nurl = \"{}\"\nprovider = \"sim-cn-cloud\"\ncurrency = \"CNY\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\nprice_includes_vat = 0.06\n{common}[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price_cny_per_hour\"\nregion = \"region\"\ncountry = \"country\"\ninstance_type = \"instance_type\"\n", srv.url("/cn.csv"))),
        ("ecb", format!("format = \"ecb_fx\"\nurl = \"{}\"\n{common}", srv.url("/ecb.xml"))),
    ] {
        std::fs::write(feeds.join(format!("{name}.toml")), text).unwrap();
    }
    let d = Daemon {
        feeds: feeds.clone(),
        store: Store::open(&store),
        reports: reports.clone(),
        client: gpurent::ingest::fetch::client(),
        tables: Tables::embedded(),
        alerts: None,
        log: {
            let l = Arc::clone(&log);
            Arc::new(move |line: &str| {
                // Run-level lines (not the per-feed ones) explain a missing record.
                if line.contains(" ingest: ") || line.contains(" report") {
                    l.lock().unwrap().push(line.to_string());
                }
            })
        },
    };
    let stats = schedule::run(&d, clock.as_ref(), shutdown).await.unwrap();
    assert_eq!(clock.now(), end);
    let (rss_daemon, hwm_daemon) = (status_kb("VmRSS:"), status_kb("VmHWM:"));

    // Every hour has one ingest record, and every feed in it is accounted for.
    let mut hours = BTreeMap::new();
    let (mut stored, mut failed) = (0, 0);
    for e in std::fs::read_dir(store.join("runs")).unwrap().flatten() {
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        if rec["kind"] != "ingest" {
            continue;
        }
        let at: DateTime<Utc> = rec["observed_at"].as_str().unwrap().parse().unwrap();
        assert!(
            hours.insert(at, ()).is_none(),
            "two ingest records for {at}"
        );
        let list = rec["feeds"].as_array().unwrap();
        let names: Vec<&str> = list.iter().map(|f| f["feed"].as_str().unwrap()).collect();
        assert_eq!(names, ["cn", "ecb", "vast"], "{rec}");
        for f in list {
            let line = f["line"].as_str().unwrap();
            match f["status"].as_str().unwrap() {
                "stored" => stored += 1,
                "failed" => {
                    failed += 1;
                    let why = line.split("FAILED: ").nth(1).unwrap_or("");
                    assert!(
                        why.starts_with(&format!("feed {}", f["feed"].as_str().unwrap()))
                            && why.len() > 20,
                        "{line}"
                    );
                }
                s => panic!("{at}: {line} ({s})"),
            }
            let name = f["feed"].as_str().unwrap();
            if name != "ecb" {
                let has = Store::open(&store).has_run(name, at);
                assert_eq!(has, f["status"] == "stored", "{at}: {line}");
            }
        }
    }
    let want: Vec<DateTime<Utc>> = (0..=days * 24)
        .map(|h| start + Duration::hours(h))
        .collect();
    let got: Vec<DateTime<Utc>> = hours.keys().copied().collect();
    let missing: Vec<_> = want.iter().filter(|t| !hours.contains_key(t)).collect();
    let extra: Vec<_> = got.iter().filter(|t| !want.contains(t)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "one ingest record per hour: missing {missing:?}, extra {extra:?}; log {:#?}",
        log.lock().unwrap()
    );
    let offers = check_store(&store);
    assert!(offers.height() > 0);
    // Reports: every ISO week whose Monday 00:30 report time came before the end.
    let weeks = (days * 24 * 60 - 30) / (7 * 24 * 60);
    let written = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("summary.json").is_file())
        .count() as i64;
    let failed_reports: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("FAILED"))
        .cloned()
        .collect();
    assert!(
        written >= weeks && failed_reports.is_empty(),
        "{written} reports for {days} days: {failed_reports:#?}"
    );
    let faults = faults.lock().unwrap().clone();
    for kind in [
        "503",
        "429",
        "cut_off",
        "half_payload",
        "schema_change",
        "huge_number",
        "duplicate",
        "404",
    ] {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0,
            "fault {kind} never drawn: {faults:?}"
        );
    }
    let rss = rss.lock().unwrap().clone();
    let weekly: Vec<String> = rss
        .iter()
        .step_by(7)
        .map(|kb| format!("{} MB", kb / 1024))
        .collect();
    println!(
        "soak: {} simulated hours in {:.0} s, {} ingest runs, {stored} feed-hours stored, {failed} failed with a reason, {} offers, {written} reports; faults {faults:?}; VmRSS (whole test process) at days 0, 7, 14, ...: {}; when the daemon stopped {} MB (VmHWM {} MB); after the checks VmHWM {} MB",
        want.len(),
        started.elapsed().as_secs_f64(),
        stats.ingest_runs,
        offers.height(),
        weekly.join(", "),
        rss_daemon / 1024,
        hwm_daemon / 1024,
        status_kb("VmHWM:") / 1024
    );
}
