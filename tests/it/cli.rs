//! The command line catches the usual mistakes: each gives one clear message and a
//! non-zero exit (2 usage or fatal, 3 a query with no rows), never an empty table.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use gpurent::run::schedule::{Clock, Daemon, DaemonStats};
use gpurent::store::Store;

use crate::common::*;

/// A store with one hour of H100 SXM offers (CN and US) from a local vastai payload.
fn small_store(root: &Path) -> PathBuf {
    let (feeds, store) = (root.join("feeds"), root.join("store"));
    std::fs::create_dir_all(&feeds).unwrap();
    let vast = serde_json::json!({"offers": [
        {"id": 1, "gpu_name": "H100 SXM", "num_gpus": 8, "gpu_ram": 81559, "dph_total": 16.0, "geolocation": "Beijing, CN"},
        {"id": 2, "gpu_name": "H100 SXM", "num_gpus": 1, "gpu_ram": 81559, "dph_total": 2.5, "geolocation": "Texas, US"},
    ]});
    std::fs::write(feeds.join("vast.json"), vast.to_string()).unwrap();
    std::fs::write(
        feeds.join("vast.toml"),
        "format = \"vastai\"\nurl = \"vast.json\"\n",
    )
    .unwrap();
    ingest_cli(&feeds, &store, "2024-10-07T10:00:00Z");
    store
}

fn history(store: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["history", "--store", store.to_str().unwrap()];
    args.extend(extra);
    gpurent(&args)
}

#[test]
fn wrong_values_are_errors_that_list_the_values() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    let check = |extra: &[&str], want: &[&str]| {
        let (code, out, err) = history(&store, extra);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert_eq!(out, "", "{extra:?}: no table on a mistake");
        for w in want {
            assert!(err.contains(w), "{extra:?}: {err:?} lacks {w:?}");
        }
    };
    let m = ["--model", "H100-SXM-80GB"];
    check(
        &[&m[..], &["--bloc", "CHINA"]].concat(),
        &["invalid value 'CHINA'", "CN, US, OTHER"],
    );
    check(
        &[&m[..], &["--class", "ondemand"]].concat(),
        &["invalid value 'ondemand'", "on_demand, spot, reserved"],
    );
    check(
        &[&m[..], &["--format", "xml"]].concat(),
        &["invalid value 'xml'", "table, csv, json"],
    );
    check(&[&m[..], &["--every", "7d"]].concat(), &["1h, 1d, 1w"]);
    check(
        &[&m[..], &["--segment", "marketplce"]].concat(),
        &[
            "invalid value 'marketplce'",
            "hyperscaler, gpu_cloud, marketplace, unknown",
        ],
    );
    check(
        &[&m[..], &["--from", "2024-10-08", "--to", "2024-10-07"]].concat(),
        &["--from 2024-10-08 is later than --to 2024-10-07"],
    );
    // A misspelt model: the close canonical ids are offered.
    check(
        &["--model", "H100-SXM-80G"],
        &["did you mean", "H100-SXM-80GB"],
    );
    check(&["--model", "Quantum GPU"], &["no GPU model or alias"]);
    // `--help` lists the values.
    let (code, help, _) = gpurent(&["history", "--help"]);
    assert_eq!(code, 0);
    for w in [
        "[possible values: CN, US, OTHER]",
        "on_demand",
        "[possible values: table, csv, json]",
        "1h, 1d, 1w",
    ] {
        assert!(help.contains(w), "{help} lacks {w}");
    }
}

#[test]
fn models_resolve_through_the_tables_and_empty_queries_say_why() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    for (typed, lowercase_bloc) in [("h100-sxm-80gb", "cn"), ("H100 SXM5", "CN")] {
        let (code, out, err) = history(
            &store,
            &[
                "--model",
                typed,
                "--bloc",
                lowercase_bloc,
                "--format",
                "csv",
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("using H100-SXM-80GB"), "{err}");
        assert!(
            out.contains("2024-10-07,H100-SXM-80GB,CN,on_demand,1,2.0000"),
            "{out}"
        );
    }
    // The canonical id as written: no note.
    let (code, _, err) = history(&store, &["--model", "H100-SXM-80GB"]);
    assert_eq!((code, err.as_str()), (0, ""));
    // Filters that match nothing: exit 3 and the reason, no table.
    let (code, out, err) = history(&store, &["--model", "H100-SXM-80GB", "--bloc", "OTHER"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("no offers of H100-SXM-80GB match --bloc OTHER")
            && err.contains("from 2024-10-07 to 2024-10-07"),
        "{err}"
    );
    // An empty store (a directory with nothing in it) has no rows: exit 3.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = gpurent(&["prices", "--store", empty.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn backfill_takes_a_date_and_reports_each_mistake_once() {
    let tmp = tempdir();
    let dir = tmp.path().join("snaps");
    std::fs::create_dir_all(&dir).unwrap();
    let files = ["a.json", "b.json", "c.json"];
    for f in files {
        let offer = r#"{"offers": [{"id": 7, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564, "dph_total": 0.4, "geolocation": "Texas, US"}]}"#;
        std::fs::write(dir.join(f), offer).unwrap();
    }
    let store = tmp.path().join("store");
    let s = store.to_str().unwrap();
    let d = dir.to_str().unwrap();

    // `gpurent backfill --format F --provider x --store s [at…] PATH`.
    let backfill = |format: &str, at: &[&str], path: &str| {
        let head = [
            "backfill",
            "--format",
            format,
            "--provider",
            "x",
            "--store",
            s,
        ];
        gpurent(&[&head[..], at, &[path]].concat())
    };

    // A bad --format: one message, the values listed, no feed file named.
    let (code, out, err) = backfill("nope", &[], d);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.matches("nope").count(), 1, "{err}");
    assert!(
        err.contains("vastai") && !err.contains("backfill-"),
        "{err}"
    );
    // A missing path: named once.
    let missing = tmp.path().join("no-such-dir");
    let (code, _, err) = backfill("vastai", &[], missing.to_str().unwrap());
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("no-such-dir").count(), 1, "{err}");
    // --at as a date: files without a date in their path are observed at 00:00 UTC.
    let (code, out, err) = backfill("vastai", &["--at", "2023-06-17"], d);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("backfill: 3 files"), "{out}");
    let (code, _, err) = backfill("vastai", &["--at", "17/06/2023"], d);
    assert_eq!(code, 2);
    assert!(
        err.contains("neither a date (2023-06-17) nor an RFC 3339 time"),
        "{err}"
    );
}

/// `--store s3://...` used to exit 0 having written a local folder named `s3:/...`.
/// A URL gpurent cannot serve is refused, and a command that rewrites stored files
/// refuses an `s3://` store, before any network access; nothing is written.
#[test]
fn store_urls_are_refused_not_taken_as_folders() {
    let tmp = tempdir();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cases: [(&[&str], &str); 5] = [
        (
            &["ingest", "--store", "gs://b/history"],
            "gs:// stores are not supported",
        ),
        (
            &["report", "--store", "https://example.com/h"],
            "https:// stores are not supported",
        ),
        (
            &["prices", "--store", "s3://"],
            "s3:// stores are not supported",
        ),
        (
            &["daemon", "--store", "s3://b/h"],
            "daemon works on a local store only",
        ),
        (
            &["renormalise", "--store", "s3://b/h"],
            "renormalise works on a local store only",
        ),
    ];
    for (cmd, says) in cases {
        let (code, err) = run(cmd);
        assert_eq!(code, Some(2), "{cmd:?}: {err}");
        assert!(err.contains(says), "{cmd:?}: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the refused commands wrote {left:?}");
}

/// A report that cannot be written says where and why, once (the cause used to be
/// printed two or three times, and a store error's path twice).
#[test]
fn write_errors_name_the_path_and_cause_once() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("2024-W41/index.html")).unwrap();
    let (code, _, err) = gpurent(&[
        "report",
        "--store",
        store.to_str().unwrap(),
        "--week",
        "2024-W41",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("2024-W41/index.html"), "{err}");
    assert_eq!(err.matches("Is a directory").count(), 1, "{err}");
    assert_eq!(err.matches("index.html").count(), 1, "{err}");
}

#[test]
fn compact_help_states_one_default() {
    let (code, help, _) = gpurent(&["compact", "--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("default: today, so every day up to yesterday"),
        "{help}"
    );
    assert!(!help.contains("default: yesterday"), "{help}");
    assert!(help.contains("removes raw payloads no stored"), "{help}");
}

#[test]
fn tables_override_is_read_and_checked_at_run_time() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    let tables = tmp.path().join("tables");
    std::fs::create_dir_all(&tables).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tables");
    for f in ["gpus.toml", "regions.toml", "instances.csv", "units.toml"] {
        std::fs::copy(repo.join(f), tables.join(f)).unwrap();
    }
    // An analyst's alias, added without a rebuild.
    let gpus = std::fs::read_to_string(tables.join("gpus.toml")).unwrap();
    let gpus = gpus.replacen("\"H100 SXM\", ", "\"H100 SXM\", \"Hopper Big\", ", 1);
    std::fs::write(tables.join("gpus.toml"), &gpus).unwrap();
    let t = tables.to_str().unwrap();
    let (code, _, err) = history(&store, &["--tables", t, "--model", "hopper big"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("using H100-SXM-80GB"), "{err}");
    let (code, _, err) = history(&store, &["--model", "hopper big"]);
    assert_eq!(code, 2, "the embedded tables lack the alias: {err}");
    // The environment variable does the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
        .args([
            "history",
            "--store",
            store.to_str().unwrap(),
            "--model",
            "HOPPER BIG",
        ])
        .env("GPURENT_TABLES", t)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // A broken table is an error naming the file under the override.
    std::fs::write(tables.join("units.toml"), "period_hours = 3\n").unwrap();
    let (code, _, err) = history(&store, &["--tables", t, "--model", "H100-SXM-80GB"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&tables.join("units.toml").display().to_string()),
        "{err}"
    );
}

struct FixedClock(chrono::DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0
    }
    async fn sleep_until(&self, _t: chrono::DateTime<Utc>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_does_not_claim_reports_it_never_wrote() {
    let tmp = tempdir();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&lines);
    let d = Daemon {
        feeds: tmp.path().join("feeds"),
        store: Store::open(tmp.path().join("store")),
        reports: tmp.path().join("reports"),
        client: gpurent::ingest::fetch::client(),
        tables: gpurent::tables::Tables::embedded(),
        log: std::sync::Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string())),
        alerts: None,
    };
    let clock = FixedClock(Utc.with_ymd_and_hms(2026, 11, 30, 0, 30, 0).unwrap());
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    d.report_once(&clock, &mut rx, &mut DaemonStats::default())
        .await;
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("report: nothing to write (no week up to 2026-W48 has offers yet)")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("has a report")),
        "{lines:#?}"
    );
}

/// A history with no rows names every filter it was given, and which of them alone
/// leaves nothing (the message used to leave out `--provider` and `--segment`, ending
/// "match  (", and blamed `--bloc CN` for `--bloc CN --provider nope`).
#[test]
fn empty_histories_name_every_filter_and_the_one_that_leaves_nothing() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    // (filters, what stderr must say, what it must not say)
    let check = |filters: &[&str], says: &str, not: &str| {
        let (code, out, err) = history(&store, &[&["--model", "H100-SXM-80GB"], filters].concat());
        assert_eq!((code, out.as_str()), (3, ""), "{filters:?}: {err}");
        let want = format!("gpurent: no offers of H100-SXM-80GB match {says} (the store holds offers from 2024-10-07 to 2024-10-07)\n");
        assert_eq!(err, want, "{filters:?}");
        assert!(not.is_empty() || !err.contains(not), "{filters:?}: {err}");
    };
    check(&["--segment", "hyperscaler"], "--segment hyperscaler", "");
    check(&["--provider", "vast.ai"], "--provider vast.ai", "");
    check(&["--from", "2025-01-01"], "--from 2025-01-01", "");
    check(
        &["--bloc", "CN", "--provider", "nope"],
        "--provider nope --bloc CN; --provider nope alone matches none of them",
        "--bloc CN alone",
    );
    check(
        &["--bloc", "OTHER", "--class", "spot", "--to", "2024-10-07"],
        "--bloc OTHER --class spot --to 2024-10-07; --bloc OTHER, --class spot each alone match none of them",
        "",
    );
    check(
        &["--bloc", "CN", "--country", "US"],
        "--bloc CN --country US; each filter alone matches some, but not all together",
        "",
    );
}

/// A GPU count or a price of `NaN`, `inf` or `1e400` (which parses as infinity) in a
/// CSV used to be stored, giving a 0.0000 or blank quantile in `history`: each such
/// row is now rejected with its reason and a detail, whichever adapter read it.
#[test]
fn numbers_that_are_not_finite_are_rejected_with_a_detail() {
    let tmp = tempdir();
    let (feeds, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
    std::fs::create_dir_all(&feeds).unwrap();
    // (offer id, GPU count, price in USD per instance-hour, reject reason or "" if stored)
    let rows = [
        ("good", "8", "24.00", ""),
        ("nan", "NaN", "24.00", "bad_gpu_count"),
        ("inf", "inf", "24.00", "bad_gpu_count"),
        ("big", "1e400", "24.00", "bad_gpu_count"),
        ("neg", "-inf", "24.00", "bad_gpu_count"),
        ("nanprice", "8", "NaN", "non_positive_price"),
        ("bigprice", "8", "1e400", "non_positive_price"),
    ];
    let mut csv = String::from("id,gpu,gpus,price\n");
    for (id, gpus, price, _) in rows {
        csv.push_str(&format!("{id},H100 SXM 80GB,{gpus},{price}\n"));
    }
    std::fs::write(feeds.join("list.csv"), csv).unwrap();
    std::fs::write(
        feeds.join("examplecsv.toml"),
        "format = \"generic_csv\"\nurl = \"list.csv\"\nprovider = \"examplecloud\"\n\
         currency = \"USD\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\n\
         country = \"US\"\n[columns]\noffer_id = \"id\"\ngpu = \"gpu\"\ngpu_count = \"gpus\"\n\
         price = \"price\"\n",
    )
    .unwrap();
    std::fs::write(
        feeds.join("vms.csv"),
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone\n\
         p5.48xlarge,H100,inf,192.0,2048.0,,98.32,,us-east-1,use1-az1\n",
    )
    .unwrap();
    std::fs::write(
        feeds.join("sky.toml"),
        "format = \"skypilot_csv\"\nurl = \"vms.csv\"\nprovider = \"aws\"\n",
    )
    .unwrap();
    let (code, out, err) = gpurent(&ingest_args(&feeds, &store, "2024-10-07T00:00:00Z"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("examplecsv: ok, 7 offers read, 1 stored, 6 rejected (bad_gpu_count 4, non_positive_price 2)"),
        "{out}"
    );
    assert!(
        out.contains("sky: ok, 1 offers read, 0 stored, 1 rejected (bad_gpu_count 1)"),
        "{out}"
    );
    let rejects = read_all(&store.join("rejects")).expect("rejects stored");
    let (ids, reasons, details) = (
        str_col(&rejects, "offer_id"),
        str_col(&rejects, "reason"),
        str_col(&rejects, "detail"),
    );
    for (id, gpus, price, want) in rows.iter().filter(|r| !r.3.is_empty()) {
        let i = ids
            .iter()
            .position(|x| x == id)
            .unwrap_or_else(|| panic!("{id} not rejected"));
        assert_eq!(&reasons[i], want, "{id}");
        let shown = if *want == "bad_gpu_count" {
            gpus
        } else {
            price
        };
        let shown = shown.replace("1e400", "inf");
        assert!(
            details[i].contains(&shown) && details[i].contains("is not a positive finite number"),
            "{id}: {}",
            details[i]
        );
    }
    // The one good offer alone makes the history: 3.0000 USD per GPU-hour, no blank.
    let (code, out, err) = history(&store, &["--model", "H100-SXM-80GB", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2024-10-07,H100-SXM-80GB,US,on_demand,1,3.0000,3.0000,3.0000"),
        "{out}"
    );
}

/// A mistyped year (`--at 1024-…` for 2024, a folder dated `0000-01-01`) used to be
/// taken as given, and the rollup refresh then wrote a file per ISO week from that
/// year on, for minutes, under the lock. Flags are refused naming the flag; a badly
/// dated backfill file fails alone, naming the file, and the others are stored.
#[test]
fn implausible_observation_years_are_refused() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    // The flags are checked before anything is read: no feeds folder is needed.
    let (s, feeds) = (store.to_str().unwrap(), tmp.path().join("no-feeds"));
    let f = feeds.to_str().unwrap();
    // (arguments, what stderr must say); each exits 2 and writes nothing.
    let check = |args: &[&str], says: &[&str]| {
        let (code, out, err) = gpurent(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        for w in says {
            assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
        }
    };
    let year = "outside the years 2000 to 2099";
    check(
        &[
            "ingest",
            "--feeds",
            f,
            "--store",
            s,
            "--at",
            "1024-10-07T12:00:00Z",
        ],
        &["--at", "year 1024", year],
    );
    check(
        &["ingest", "--feeds", f, "--store", s, "--at", "2100-01-01"],
        &["--at", "year 2100", year],
    );
    check(
        &[
            "backfill",
            "--format",
            "vastai",
            "--provider",
            "x",
            "--store",
            s,
            "--at",
            "1999-12-31",
            f,
        ],
        &["--at", "year 1999", year],
    );
    check(
        &[
            "backfill",
            "--format",
            "gpuhunt_catalog",
            "--store",
            s,
            "--from",
            "1024-01-01",
            "--to",
            "2024-01-01",
        ],
        &["--from", "year 1024", year],
    );
    let rollups = || std::fs::read_dir(store.join("rollups")).map_or(0, |d| d.count());
    let before = rollups();
    // Three dated folders, two of them typos: those two fail by name, one is stored.
    let snaps = tmp.path().join("snaps");
    let offer = r#"{"offers": [{"id": 7, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564, "dph_total": 0.4, "geolocation": "Texas, US"}]}"#;
    for day in ["0000-01-01", "2024-10-08", "9999-12-31"] {
        std::fs::create_dir_all(snaps.join(day)).unwrap();
        std::fs::write(snaps.join(day).join("v.json"), offer).unwrap();
    }
    let (code, out, err) = gpurent(&[
        "backfill",
        "--format",
        "vastai",
        "--provider",
        "vastai",
        "--store",
        s,
        snaps.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("backfill: 3 files, 1 offers stored, 2 failed"),
        "{out}"
    );
    for (day, y) in [("0000-01-01", "year 0 "), ("9999-12-31", "year 9999")] {
        let file = snaps.join(day).join("v.json").display().to_string();
        let line = err.lines().find(|l| l.contains(&file)).unwrap_or_default();
        assert!(
            line.contains("FAILED")
                && line.contains(&format!("observation date {day} from the path"))
                && line.contains(y),
            "{day}: {err}"
        );
    }
    assert!(rollups() <= before + 1, "{} rollup files", rollups());
}

/// A feed file named `.hid.toml` (or `..toml`, `...toml`) used to store its offers
/// under hidden names that every reader skips (or fail with an OS error): it is now
/// a broken feed naming its file and why, and the other feeds are stored.
#[test]
fn feed_names_starting_with_a_dot_are_refused() {
    let tmp = tempdir();
    let (feeds, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(feeds.join("v.json"), sample("vastai.sample.json")).unwrap();
    let feed = "format = \"vastai\"\nurl = \"v.json\"\n";
    for name in ["ok.toml", ".hid.toml", "..toml", "...toml"] {
        std::fs::write(feeds.join(name), feed).unwrap();
    }
    let (code, out, err) = gpurent(&ingest_args(&feeds, &store, AT));
    assert_eq!(code, 1, "{out}{err}");
    let said = format!("{out}{err}");
    for name in [".hid.toml", "..toml", "...toml"] {
        let file = feeds.join(name).display().to_string();
        assert!(
            said.lines()
                .any(|l| l.contains(&file) && l.contains("starts with `.`")),
            "{name}: {said}"
        );
    }
    assert!(out.contains("ok: ok,"), "{out}");
    let mut files = Vec::new();
    walk(&store.join("offers"), &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("ok__")),
        "{names:?}"
    );
}

/// Small mistakes on the command line, each one message and exit 2: (arguments, what
/// stderr must say).
#[test]
fn small_mistakes_say_what_is_wrong() {
    let tmp = tempdir();
    let store = small_store(tmp.path());
    let out = tmp.path().join("out");
    let check = |args: &[&str], says: &[&str]| {
        let (code, stdout, err) = gpurent(args);
        assert_eq!(code, 2, "{args:?}: {stdout}{err}");
        for w in says {
            assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
        }
    };
    // 2024 has 52 ISO weeks: the form is right, the week does not exist.
    check(
        &report_args(&store, &out, "2024-W53"),
        &["week \"2024-W53\" does not exist: 2024 has ISO weeks 01 to 52"],
    );
    check(
        &report_args(&store, &out, "2024-W5"),
        &["is not of the form YYYY-Www"],
    );
    // A store to read that is missing or a file is an error naming it, for every
    // reader (it used to be "no offers in the store", exit 3, or an empty listing).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a store").unwrap();
    let missing = tmp.path().join("no-such-store");
    for (path, why) in [(&missing, "no such directory"), (&file, "not a directory")] {
        let p = path.to_str().unwrap();
        let o = out.to_str().unwrap();
        let says = [&format!("store {p}: {why}")[..]];
        check(&["prices", "--store", p], &says);
        check(
            &["history", "--store", p, "--model", "H100-SXM-80GB"],
            &says,
        );
        check(&["report", "--store", p, "--out", o], &says);
        check(
            &["report", "--store", p, "--out", o, "--week", "2024-W41"],
            &says,
        );
        check(&["unknown", "--store", p], &says);
        check(&["crosscheck", "--store", p], &says);
    }
    assert!(!missing.exists() && !out.exists());
    // An empty `url` (it used to read the feeds folder itself as the payload) or
    // `provider`: that feed fails naming its file and key, the others run.
    let feeds = tmp.path().join("feeds");
    for (i, (name, text, key)) in [
        (
            "empty_url",
            "format = \"vastai\"\nurl = \"\"\n",
            "key `url` is empty",
        ),
        (
            "empty_provider",
            "format = \"vastai\"\nurl = \"vast.json\"\nprovider = \"\"\n",
            "key `provider` is empty",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = feeds.join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        // A new hour each time, so the good feed stores again.
        let at = format!("2024-10-07T1{}:00:00Z", i + 1);
        let (code, stdout, err) = gpurent(&ingest_args(&feeds, &store, &at));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(code, 1, "{name}: {stdout}{err}");
        let said = format!("{stdout}{err}");
        assert!(
            said.lines()
                .any(|l| l.contains(&file.display().to_string()) && l.contains(key)),
            "{name}: {said}"
        );
        assert!(stdout.contains("vast: ok"), "{name}: {stdout}");
    }
}

/// A store whose newest date holds only an empty run (here the run at `--at` that
/// marks a back-filled file of older dated rows imported) is read from its newest
/// observation: `report` without `--week` writes the last complete week before it,
/// and `prices` lists the prices in force then (both used to count from the empty
/// run's date and find nothing: on the real back-fill, "no offers stored for
/// 2026-W48" and "no offers in the store").
#[test]
fn an_empty_last_run_is_no_observation() {
    let tmp = tempdir();
    let store = dated_backfill_with_a_later_empty_run(tmp.path());
    let s = store.to_str().unwrap();

    let out_dir = tmp.path().join("reports");
    let (code, out, err) = gpurent(&["report", "--store", s, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("2024-W01/index.html"), "{out}");

    let (code, out, err) = gpurent(&["prices", "--store", s, "--format", "csv"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("H100-SXM-80GB,US,on_demand,lambda,1,2.4000,2024-01-08T00:00Z"),
        "{out}"
    );
}
