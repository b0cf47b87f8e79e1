//! The daemon on a simulated clock against loopback feeds (hourly ingest, per-feed
//! intervals, Monday reports, catch-up of missed weeks, the store lock), and the
//! `prices` and `history` commands against an independent computation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use gpurent::error::StoreError;
use gpurent::run::schedule::{self, Clock, Daemon, SimClock};
use gpurent::run::sim::{self, HttpRequest, HttpResponse};
use gpurent::store::Store;
use gpurent::tables::Tables;

use crate::common::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
}

/// Feed hour keys (`YYYYMMDDTHH`) of the offer files of `feed` in the store: an
/// hourly file's own, and each hour a compacted day file's mask names
/// (`<feed>__<YYYYMMDD>-<mask>`, bit h = hour h).
fn offer_hours(store: &Path, feed: &str) -> Vec<String> {
    let mut files = Vec::new();
    walk(&store.join("offers"), &mut files);
    let mut hours: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?;
            stem.strip_prefix(&format!("{feed}__")).map(String::from)
        })
        .flat_map(|rest| match rest.split_once('-') {
            None => vec![rest],
            Some((day, mask)) => {
                let mask = u32::from_str_radix(mask, 16).unwrap();
                (0..24)
                    .filter(|h| mask & (1 << h) != 0)
                    .map(|h| format!("{day}T{h:02}"))
                    .collect()
            }
        })
        .collect();
    hours.sort();
    hours
}

/// The offer files of `feed` named as compacted days, by date folder.
fn day_files(store: &Path, feed: &str) -> BTreeMap<String, usize> {
    let mut files = Vec::new();
    walk(&store.join("offers"), &mut files);
    let mut days = BTreeMap::new();
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let date = p.parent().unwrap().file_name().unwrap().to_string_lossy();
        if name.starts_with(&format!("{feed}__")) && name.contains('-') {
            *days.entry(date.into_owned()).or_insert(0) += 1;
        }
    }
    days
}

fn key(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H").to_string()
}

/// The run records of `kind`: (file name, JSON), sorted by name.
fn run_records(store: &Path, kind: &str) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(store.join("runs"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(&format!("-{kind}.json")).then(|| {
                        (
                            name,
                            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap(),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A loopback vast.ai-format provider whose payload follows the simulated clock, and
/// which tries the store lock on every request: a request arrives only while an
/// ingest runs, so each attempt tells whether the daemon holds the lock during runs.
struct Provider {
    server: sim::Server,
    lock_attempts: Arc<Mutex<Vec<&'static str>>>,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn provider(clock: Arc<SimClock>, store: PathBuf) -> Provider {
    let lock_attempts = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::clone(&lock_attempts);
    let handler: sim::Handler = Arc::new(move |req: &HttpRequest| {
        let outcome = match Store::open(&store).lock() {
            Ok(_) => "acquired",
            Err(StoreError::Locked { .. }) => "locked",
            Err(_) => "error",
        };
        attempts.lock().unwrap().push(outcome);
        let h = (clock.now() - gpurent::run::demo::start()).num_hours();
        match req.path() {
            "/vast" | "/vast6" => {
                HttpResponse::ok("application/json", gpurent::run::demo::vast_payload(h))
            }
            _ => HttpResponse::status(404),
        }
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = sim::serve(handler, rx).await.unwrap();
    Provider {
        server,
        lock_attempts,
        _stop: tx,
    }
}

fn write_feeds(dir: &Path, p: &Provider) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("vast.toml"),
        format!(
            "format = \"vastai\"\nurl = \"{}\"\nretry_base_ms = 10\n",
            p.server.url("/vast")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("vast6.toml"),
        format!(
            "format = \"vastai\"\nurl = \"{}\"\nretry_base_ms = 10\ninterval_hours = 6\n",
            p.server.url("/vast6")
        ),
    )
    .unwrap();
}

fn daemon(feeds: &Path, store: &Path, reports: &Path, log: Arc<Mutex<Vec<String>>>) -> Daemon {
    Daemon {
        feeds: feeds.to_path_buf(),
        store: Store::open(store),
        reports: reports.to_path_buf(),
        client: gpurent::ingest::fetch::client(),
        tables: Tables::embedded(),
        log: Arc::new(move |l: &str| log.lock().unwrap().push(l.to_string())),
        alerts: None,
    }
}

/// A simulated clock from `start` that signals shutdown when asked to sleep past `end`.
fn sim_clock(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (Arc<SimClock>, tokio::sync::watch::Receiver<bool>) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    (Arc::new(SimClock::new(start).stop_at(end, tx)), rx)
}

async fn run_daemon(
    d: &Daemon,
    clock: &SimClock,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> schedule::DaemonStats {
    tokio::time::timeout(
        std::time::Duration::from_secs(300),
        schedule::run(d, clock, shutdown),
    )
    .await
    .expect("the simulated daemon finishes in seconds")
    .expect("daemon starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_on_a_simulated_clock() {
    let tmp = tempdir();
    let (feeds, store, reports) = (
        tmp.path().join("feeds"),
        tmp.path().join("store"),
        tmp.path().join("reports"),
    );
    // Saturday 2026-10-24 00:00 (ISO 2026-W43) to Wednesday 2026-11-04 00:00 (W45).
    let (start, end) = (utc(2026, 10, 24, 0, 0), utc(2026, 11, 4, 0, 0));
    let (clock, shutdown) = sim_clock(start, end);
    let p = provider(Arc::clone(&clock), store.clone()).await;
    write_feeds(&feeds, &p);
    let log = Arc::new(Mutex::new(Vec::new()));
    let d = daemon(&feeds, &store, &reports, Arc::clone(&log));

    // An older week (W41) is in the store without a report: a gap the daemon missed.
    let seed_at = utc(2026, 10, 7, 12, 0);
    let seed_clock = SimClock::new(seed_at);
    let mut no_stop = tokio::sync::watch::channel(false).1;
    d.ingest_once(&seed_clock, seed_at, &mut no_stop, &mut Default::default())
        .await;
    assert_eq!(offer_hours(&store, "vast"), vec![key(seed_at)]);
    let seeded_ingest_records = run_records(&store, "ingest").len();
    p.lock_attempts.lock().unwrap().clear();

    let started = std::time::Instant::now();
    let stats = run_daemon(&d, &clock, shutdown).await;
    eprintln!(
        "simulated {} hours in {:.1} s",
        (end - start).num_hours(),
        started.elapsed().as_secs_f64()
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(clock.now(), end);

    // One ingest per hour, from the start hour to the end hour inclusive.
    let hours: Vec<DateTime<Utc>> = (0..=(end - start).num_hours())
        .map(|h| start + Duration::hours(h))
        .collect();
    let mut want: Vec<String> = hours.iter().map(|t| key(*t)).collect();
    want.insert(0, key(seed_at));
    assert_eq!(
        offer_hours(&store, "vast"),
        want,
        "one vast offer file per hour"
    );
    assert_eq!(stats.ingest_runs as usize, hours.len());
    assert_eq!(
        run_records(&store, "ingest").len(),
        seeded_ingest_records + hours.len(),
        "one ingest run record per hour"
    );
    // interval_hours = 6: only at 00, 06, 12 and 18 UTC.
    let mut want6: Vec<String> = hours
        .iter()
        .filter(|t| t.hour() % 6 == 0)
        .map(|t| key(*t))
        .collect();
    want6.insert(0, key(seed_at));
    assert_eq!(offer_hours(&store, "vast6"), want6, "the 6-hourly feed");
    assert!(log.iter().any(|l| l.starts_with("2026-10-24T01:00:00Z ingest vast6: skipped: not due (interval_hours = 6; next run 2026-10-24T06:00:00Z)")), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("2026-10-24T06:00:00Z ingest vast6: ok,")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("2026-10-24T01:00:00Z ingest vast: ok,")),
        "{log:#?}"
    );

    // Reports: W41 caught up at start; W43 on Monday 26 Oct 00:30; W44 on Monday 2 Nov
    // 00:30; W42 has no offers; W45 is not complete.
    let mut weeks: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    weeks.sort();
    assert_eq!(weeks, ["2026-W41", "2026-W43", "2026-W44"]);
    for (week, generated) in [
        ("2026-W41", "2026-10-24T00:00:00+00:00"),
        ("2026-W43", "2026-10-26T00:30:00+00:00"),
        ("2026-W44", "2026-11-02T00:30:00+00:00"),
    ] {
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(reports.join(week).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(s["week"], week);
        assert_eq!(
            s["generated_at"], generated,
            "{week} written at {generated}"
        );
        assert!(reports.join(week).join("index.html").is_file());
    }
    // W43 holds Saturday and Sunday only: 48 hourly vast snapshots, 8 six-hourly ones,
    // and the report counts every stored vast row of those two days.
    let in_w43 = |k: &String| k.starts_with("20261024") || k.starts_with("20261025");
    assert_eq!(
        offer_hours(&store, "vast")
            .iter()
            .filter(|k| in_w43(k))
            .count(),
        48
    );
    assert_eq!(
        offer_hours(&store, "vast6")
            .iter()
            .filter(|k| in_w43(k))
            .count(),
        8
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.join("2026-W43/summary.json")).unwrap())
            .unwrap();
    let feed_obs: BTreeMap<String, u64> = s["coverage"]["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_str().unwrap().to_string(), f[1].as_u64().unwrap()))
        .collect();
    let mut sat = read_all(&store.join("offers/date=2026-10-24")).unwrap();
    sat.vstack_mut_owned(read_all(&store.join("offers/date=2026-10-25")).unwrap())
        .unwrap();
    assert_eq!(
        feed_obs["vast"],
        rows_where(&sat, &[("feed", "vast")]).height() as u64
    );
    assert_eq!(
        feed_obs["vast6"],
        rows_where(&sat, &[("feed", "vast6")]).height() as u64
    );

    // Exactly one report run per slot, each week written exactly once.
    let recs = run_records(&store, "report");
    let names: Vec<&str> = recs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "20261024T000000000-report.json",
            "20261026T003000000-report.json",
            "20261102T003000000-report.json"
        ]
    );
    let written: Vec<String> = recs
        .iter()
        .flat_map(|r| r.1["weeks"].as_array().unwrap().clone())
        .filter(|w| w["status"] == "written")
        .map(|w| w["week"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(written, ["2026-W41", "2026-W43", "2026-W44"]);
    assert_eq!(stats.reports_written, 3);

    // The lock: every request came while the daemon held the store lock.
    let attempts = p.lock_attempts.lock().unwrap().clone();
    let expected_requests = hours.len() + want6.len() - 1;
    assert_eq!(
        attempts.len(),
        expected_requests,
        "one request per feed run"
    );
    assert!(
        attempts.iter().all(|a| *a == "locked"),
        "a second writer is refused during a run: {attempts:?}"
    );
    // Between runs (and after) the lock is free: a manual ingest could run.
    drop(
        Store::open(&store)
            .lock()
            .expect("lock free after the daemon stopped"),
    );

    // Each date's first run compacted every earlier date: one vast file per closed day
    // (24 Oct to 3 Nov), the hours above read back through their masks; the seeded
    // 7 Oct (one hour, nothing to merge) and 4 Nov (today) keep their hourly files;
    // every raw payload deflated.
    let closed: Vec<String> = (0..11)
        .map(|d| format!("date={}", (start + Duration::days(d)).format("%Y-%m-%d")))
        .collect();
    let days = day_files(&store, "vast");
    assert_eq!(days.keys().cloned().collect::<Vec<_>>(), closed);
    assert!(days.values().all(|n| *n == 1), "{days:?}");
    let compactions: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" compact: ") && l.contains("days compacted"))
        .collect();
    // The seeded run's, then one per date, 24 Oct to 4 Nov; the seeded day has
    // nothing to merge; 24 Oct's 24 vast and 4 vast6 hours become two files.
    assert_eq!(compactions.len(), 13, "{compactions:#?}");
    assert_eq!(
        compactions[1],
        "2026-10-24T00:00:00Z compact: 0 days compacted (0 files merged into 0); \
         0 older day files sorted by model"
    );
    assert_eq!(
        compactions[2],
        "2026-10-25T00:00:00Z compact: 1 days compacted (28 files merged into 2); \
         0 older day files sorted by model"
    );
    assert!(!log.iter().any(|l| l.contains("FAILED")), "{log:#?}");
    // Each feed's raw hour files of an earlier date are one day file; 24 Oct's
    // 24 vast and 4 vast6 hours are merged at 25 Oct's first run; today's stay.
    let raw_merges: Vec<&String> = (log.iter())
        .filter(|l| l.contains("raw hour files merged into"))
        .collect();
    assert_eq!(raw_merges.len(), 13, "{raw_merges:#?}");
    assert!(
        raw_merges[2].starts_with("2026-10-25T00:00:00Z compact: ")
            && raw_merges[2].ends_with("; 28 raw hour files merged into 2 day files"),
        "{raw_merges:#?}"
    );
    for dir in std::fs::read_dir(store.join("raw")).unwrap().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if !name.starts_with("date=") {
            continue;
        }
        let files: Vec<String> = (std::fs::read_dir(dir.path()).unwrap().flatten())
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .collect();
        let merged = files.iter().all(|f| f.ends_with("__day.json"));
        assert_eq!(merged, name != "date=2026-11-04", "{name}: {files:?}");
    }
    let blobs: Vec<PathBuf> = std::fs::read_dir(store.join("raw/blobs"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!blobs.is_empty());
    for b in &blobs {
        assert!(
            !gpurent::store::deflate::is_stored(b).unwrap(),
            "{} still as ingest wrote it",
            b.display()
        );
    }

    // A restart with nothing missed writes no report and adds nothing for W45.
    let log2 = Arc::new(Mutex::new(Vec::new()));
    let d2 = daemon(&feeds, &store, &reports, Arc::clone(&log2));
    let (clock2, shutdown2) = sim_clock(end + Duration::minutes(20), end + Duration::minutes(20));
    let stats2 = run_daemon(&d2, &clock2, shutdown2).await;
    assert_eq!(stats2.reports_written, 0);
    let log2 = log2.lock().unwrap().clone();
    assert!(
        log2.iter().any(
            |l| l.contains("report: nothing to write (every week up to 2026-W44 has a report)")
        ),
        "{log2:#?}"
    );
    assert!(
        log2.iter()
            .any(|l| l.contains("ingest vast: already stored for this hour, nothing added")),
        "{log2:#?}"
    );
    assert!(
        log2.iter().any(|l| l.contains(
            "compact: 0 days compacted (0 files merged into 0); 0 older day files sorted by model"
        )),
        "a restart compacts again and finds nothing to do: {log2:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_refuses_a_locked_store() {
    let tmp = tempdir();
    let (feeds, store, reports) = (
        tmp.path().join("feeds"),
        tmp.path().join("store"),
        tmp.path().join("reports"),
    );
    let start = utc(2026, 10, 28, 9, 0);
    let (clock, shutdown) = sim_clock(start, start + Duration::hours(2));
    let p = provider(Arc::clone(&clock), store.clone()).await;
    write_feeds(&feeds, &p);
    let log = Arc::new(Mutex::new(Vec::new()));
    let d = daemon(&feeds, &store, &reports, Arc::clone(&log));

    // Another writer (a manual ingest) holds the lock for the whole span.
    let held = Store::open(&store).lock().unwrap();
    assert!(matches!(
        Store::open(&store).lock(),
        Err(StoreError::Locked { .. })
    ));
    let stats = run_daemon(&d, &clock, shutdown).await;
    assert_eq!(stats.ingest_runs, 0);
    assert!(stats.locked_runs >= 1, "{stats:?}");
    assert!(
        offer_hours(&store, "vast").is_empty(),
        "nothing written while another writer holds the lock"
    );
    assert!(
        p.lock_attempts.lock().unwrap().is_empty(),
        "no feed fetched"
    );
    let log = log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.contains("ingest: store locked by another writer")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("ingest: skipped:") && l.contains("locked")),
        "{log:#?}"
    );

    // Released: the next daemon run ingests.
    drop(held);
    let (clock, shutdown) = sim_clock(start + Duration::hours(3), start + Duration::hours(3));
    let stats = run_daemon(&d, &clock, shutdown).await;
    assert_eq!(stats.ingest_runs, 1);
    assert_eq!(
        offer_hours(&store, "vast"),
        vec![key(start + Duration::hours(3))]
    );
}

// ---- prices and history ----

/// A vast.ai offer: (id, gpu_name, gpu_ram MB, num_gpus, dph_total, min_bid, geolocation).
type Offer = (u64, &'static str, f64, f64, f64, f64, &'static str);

fn vast_json(offers: &[Offer]) -> String {
    let list: Vec<serde_json::Value> = offers
        .iter()
        .map(|o| serde_json::json!({"id": o.0, "gpu_name": o.1, "gpu_ram": o.2, "num_gpus": o.3, "dph_total": o.4, "min_bid": o.5, "geolocation": o.6}))
        .collect();
    serde_json::json!({ "offers": list }).to_string()
}

const HOUR_10: &[Offer] = &[
    (1, "H100 SXM", 81559.0, 1.0, 2.0, 1.2, "Texas, US"),
    (2, "H100 SXM", 81559.0, 2.0, 5.0, 0.0, "Oregon, US"),
    (3, "H100 SXM", 81559.0, 4.0, 12.0, 6.0, "Iowa, US"),
    (4, "H100 SXM", 81559.0, 8.0, 16.0, 0.0, "Beijing, CN"),
    (5, "RTX 4090", 24564.0, 1.0, 0.4, 0.0, "Virginia, US"),
];
const HOUR_11: &[Offer] = &[
    (1, "H100 SXM", 81559.0, 1.0, 2.2, 1.1, "Texas, US"),
    (2, "H100 SXM", 81559.0, 2.0, 5.4, 0.0, "Oregon, US"),
    (3, "H100 SXM", 81559.0, 4.0, 11.6, 6.4, "Iowa, US"),
    (6, "H100 SXM", 81559.0, 8.0, 27.2, 0.0, "Virginia, US"),
    (4, "H100 SXM", 81559.0, 8.0, 17.6, 0.0, "Beijing, CN"),
    (7, "H100 SXM", 81559.0, 4.0, 7.6, 0.0, "Shanghai, CN"),
    (5, "RTX 4090", 24564.0, 1.0, 0.44, 0.0, "Virginia, US"),
    // Half a GPU: stored, flagged fractional, left out of prices and history.
    (8, "H100 SXM", 81559.0, 0.5, 0.5, 0.0, "Texas, US"),
];

/// Independent expectation: per (model, bloc, class), the USD per GPU-hour values.
fn groups(offers: &[Offer]) -> BTreeMap<(String, String, String), Vec<f64>> {
    let model = |name: &str| match name {
        "H100 SXM" => "H100-SXM-80GB",
        "RTX 4090" => "RTX4090-24GB",
        other => panic!("{other}"),
    };
    let mut g: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for o in offers.iter().filter(|o| o.3 >= 1.0) {
        let bloc = o.6.rsplit(", ").next().unwrap().to_string();
        g.entry((model(o.1).into(), bloc.clone(), "on_demand".into()))
            .or_default()
            .push(o.4 / o.3);
        if o.5 > 0.0 {
            g.entry((model(o.1).into(), bloc, "spot".into()))
                .or_default()
                .push(o.5 / o.3);
        }
    }
    g
}

fn stats_cells(v: &[f64]) -> String {
    format!(
        "{},{:.4},{:.4},{:.4}",
        v.len(),
        quantile(v, 0.5),
        quantile(v, 0.25),
        quantile(v, 0.75)
    )
}

fn query_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let (feeds, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(
        feeds.join("vast.toml"),
        "format = \"vastai\"\nurl = \"payload.json\"\n",
    )
    .unwrap();
    for (at, offers) in [
        ("2024-10-07T10:00:00Z", HOUR_10),
        ("2024-10-07T11:00:00Z", HOUR_11),
    ] {
        std::fs::write(feeds.join("payload.json"), vast_json(offers)).unwrap();
        ingest_cli(&feeds, &store, at);
    }
    (tmp, store)
}

#[test]
fn prices_and_history_match_an_independent_computation() {
    let (_tmp, store) = query_store();
    let s = store.to_str().unwrap();

    // prices: the prices in force at the latest observation (11:00): the 10:00
    // offers missing from the 11:00 snapshot have ended; one provider (vastai).
    let (code, out, err) = gpurent(&["prices", "--store", s, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut want = String::from("gpu_model,bloc,price_class,provider,offers,median_usd_per_gpu_hour,observed_at_utc,age_hours\n");
    for ((m, b, c), v) in groups(HOUR_11) {
        want.push_str(&format!(
            "{m},{b},{c},vastai,{},{:.4},2024-10-07T11:00Z,0.0000\n",
            v.len(),
            quantile(&v, 0.5)
        ));
    }
    assert_eq!(out, want);
    // e.g. US on-demand H100 at 11:00: 2.2, 2.7, 2.9, 3.4 → median 2.8.
    assert!(
        out.contains("H100-SXM-80GB,US,on_demand,vastai,4,2.8000,"),
        "{out}"
    );

    let (_, json, _) = gpurent(&["prices", "--store", s, "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), groups(HOUR_11).len());
    let h100_us = rows
        .iter()
        .find(|r| {
            r["gpu_model"] == "H100-SXM-80GB"
                && r["bloc"] == "US"
                && r["price_class"] == "on_demand"
        })
        .unwrap();
    assert_eq!(h100_us["offers"], 4);
    assert!((h100_us["median_usd_per_gpu_hour"].as_f64().unwrap() - 2.8).abs() < 1e-9);
    assert!(
        json.contains("\"median_usd_per_gpu_hour\": 2.8000"),
        "fixed 4 decimals: {json}"
    );

    let (_, table, _) = gpurent(&["prices", "--store", s]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("gpu_model") && lines[0].contains("median_usd_per_gpu_hour"),
        "{table}"
    );
    assert_eq!(lines.len(), 1 + groups(HOUR_11).len(), "{table}");

    // history per hour: US on-demand H100 at 10:00 and 11:00.
    let (code, out, err) = gpurent(&[
        "history",
        "--store",
        s,
        "--model",
        "H100-SXM-80GB",
        "--bloc",
        "US",
        "--class",
        "on_demand",
        "--every",
        "1h",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    let key = (
        "H100-SXM-80GB".to_string(),
        "US".to_string(),
        "on_demand".to_string(),
    );
    let (v10, v11) = (groups(HOUR_10)[&key].clone(), groups(HOUR_11)[&key].clone());
    let header = "period_utc,gpu_model,bloc,price_class,offers,median_usd_per_gpu_hour,p25_usd_per_gpu_hour,p75_usd_per_gpu_hour\n";
    assert_eq!(
        out,
        format!(
            "{header}2024-10-07T10:00Z,H100-SXM-80GB,US,on_demand,{}\n2024-10-07T11:00Z,H100-SXM-80GB,US,on_demand,{}\n",
            stats_cells(&v10),
            stats_cells(&v11)
        )
    );

    // history per day and per ISO week: both hours pooled, every bloc and class.
    let mut pooled: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for g in [groups(HOUR_10), groups(HOUR_11)] {
        for ((m, b, c), v) in g {
            if m == "H100-SXM-80GB" {
                pooled.entry((b, c)).or_default().extend(v);
            }
        }
    }
    for (every, period) in [("1d", "2024-10-07"), ("1w", "2024-W41")] {
        let (code, out, err) = gpurent(&[
            "history",
            "--store",
            s,
            "--model",
            "H100-SXM-80GB",
            "--every",
            every,
            "--format",
            "csv",
        ]);
        assert_eq!(code, 0, "{err}");
        let mut want = header.to_string();
        for ((b, c), v) in &pooled {
            want.push_str(&format!(
                "{period},H100-SXM-80GB,{b},{c},{}\n",
                stats_cells(v)
            ));
        }
        assert_eq!(out, want, "--every {every}");
    }

    // A family name is not one model: the models it covers are listed (exit 2).
    let (code, out, err) = gpurent(&[
        "history", "--store", s, "--model", "H100", "--format", "csv",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("H100-SXM-80GB") && err.contains("H100-PCIE-80GB"),
        "{err}"
    );
    // A model with no offers in the store: no rows, exit 3, the models that exist named.
    let (code, out, err) = gpurent(&[
        "history",
        "--store",
        s,
        "--model",
        "b200-sxm-180gb",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("using B200-SXM-180GB")
            && err.contains("H100-SXM-80GB")
            && err.contains("RTX4090-24GB"),
        "{err}"
    );
}

/// The daemon's catch-up reports only weeks whose files hold a row: the empty run
/// that marks a back-filled file imported (dated `--at`, after the file's rows) is
/// no week to report, where it used to be retried, and fail, at every start.
#[test]
fn weeks_of_empty_runs_are_not_pending() {
    let tmp = tempfile::tempdir().unwrap();
    let root = dated_backfill_with_a_later_empty_run(tmp.path());
    let store = Store::open(&root);
    let reports = tmp.path().join("reports");
    let pending = schedule::pending_weeks(&store, &reports, utc(2024, 3, 1, 0, 0)).unwrap();
    let labels: Vec<String> = pending.iter().map(|w| w.label()).collect();
    assert_eq!(
        labels,
        ["2024-W01", "2024-W02"],
        "not 2024-W05, the empty run's"
    );
}
