//! Real engines read the store as it is: PySpark 4 in local mode (Debian's OpenJDK 17)
//! with `spark.read.parquet('<store>/offers')`, and DuckDB with `read_parquet(...,
//! hive_partitioning = true)`, over a store with hourly files and a compacted day.
//! Each must see every row gpurent stored, per date, with `date` typed as a date.
//! Both then run `sql/weekly_stats.sql` (the weekly statistics as portable SQL) and
//! must get the week's `rows` of gpurent's own `summary.json`.
//!
//! The engines come from `scripts/engines.sh` (a venv at `/var/tmp/gpurent-engines`,
//! or `GPURENT_ENGINES_PYTHON`). Without them the test prints SKIPPED, unless
//! `GPURENT_REQUIRE_ENGINES=1` (CI), which turns the skip into a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gpurent::store::Store;
use polars::prelude::*;

use crate::common::*;

/// The Python of the engines venv (`GPURENT_ENGINES_PYTHON` overrides), or None
/// after [`missing_part`].
fn engines_python(what: &str) -> Option<PathBuf> {
    let p = std::env::var_os("GPURENT_ENGINES_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/gpurent-engines/bin/python"));
    python_at(p, what)
}

/// `python` if it exists (a venv `scripts/engines.sh` makes), or None after
/// [`missing_part`].
pub fn python_at(python: PathBuf, what: &str) -> Option<PathBuf> {
    if python.exists() {
        return Some(python);
    }
    let shown = python.display();
    missing_part(
        "GPURENT_REQUIRE_ENGINES",
        &format!("{what}: no {shown} (scripts/engines.sh)"),
    );
    None
}

/// Rows and the sum of USD per GPU-hour per date, as gpurent stored them.
pub fn own_reading(store: &Path) -> BTreeMap<String, (i64, f64)> {
    let df = read_all(&store.join("offers")).unwrap();
    let days = df
        .column("observed_at")
        .unwrap()
        .cast(&DataType::Date)
        .unwrap()
        .cast(&DataType::String)
        .unwrap();
    let days = days.str().unwrap();
    let usd = f64_col(&df, "usd_per_gpu_hour");
    let mut out: BTreeMap<String, (i64, f64)> = BTreeMap::new();
    for (i, u) in usd.into_iter().enumerate() {
        let e = out.entry(days.get(i).unwrap().to_string()).or_default();
        e.0 += 1;
        e.1 += u;
    }
    out
}

pub fn check_engine(line: &str, own: &BTreeMap<String, (i64, f64)>) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let engine = v["engine"].as_str().unwrap();
    let date_type = v["date_type"].as_str().unwrap().to_lowercase();
    assert_eq!(
        date_type, "date",
        "{engine} types the partition column as {date_type}"
    );
    let ts = v["observed_at_type"].as_str().unwrap().to_lowercase();
    assert!(ts.starts_with("timestamp"), "{engine}: observed_at is {ts}");
    let mut seen = BTreeMap::new();
    for r in v["per_date"].as_array().unwrap() {
        let (d, n, usd) = (
            r[0].as_str().unwrap(),
            r[1].as_i64().unwrap(),
            r[2].as_f64().unwrap(),
        );
        seen.insert(d.to_string(), (n, usd));
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        own.keys().collect::<Vec<_>>(),
        "{engine}: dates"
    );
    for (d, (n, usd)) in own {
        let (en, eusd) = seen[d];
        assert_eq!(en, *n, "{engine}: rows on {d}");
        assert!(
            (eusd - usd).abs() <= 1e-9 * usd.abs().max(1.0),
            "{engine}: USD sum on {d}: {eusd} vs {usd}"
        );
    }
    eprintln!(
        "{engine}: {} dates, {} rows, equal to gpurent's",
        own.len(),
        own.values().map(|v| v.0).sum::<i64>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_and_duckdb_read_every_stored_row() {
    let Some(python) = engines_python("Spark and DuckDB reading a store") else {
        return;
    };
    let srv = server().await;
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    fixture_feeds(&srv, &feeds);
    let root = tmp.path().join("store");
    let store = Store::open(&root);
    let times: Vec<_> = [
        "2024-10-07T00:00:00Z",
        "2024-10-07T01:00:00Z",
        "2024-10-08T03:00:00Z",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    ingest_times(&feeds, &store, &times).await;
    // One compacted day beside a day of hourly files.
    store.compact(times[0].date_naive()).unwrap();
    let own = own_reading(&root);
    assert_eq!(own.len(), 2);

    for line in run_script(&python, "engines-read.py", &[&root]) {
        check_engine(&line, &own);
    }

    // The method in SQL equals the method in Rust, on both engines.
    let week = gpurent::week::IsoWeek::parse("2024-W41").unwrap();
    let reports = tmp.path().join("reports");
    let generated = "2024-10-14T00:30:00Z".parse().unwrap();
    let dir = gpurent::report::write_week(&store, &reports, week, generated).unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    for line in run_script(&python, "weekly-stats.py", &[&root, Path::new("2024-W41")]) {
        check_sql_rows(&line, &summary);
    }
}

/// `sql/weekly_stats.sql` on Spark and DuckDB over `store` equals `summary`'s rows for
/// `week`; nothing when the engines are not installed (unless required).
pub fn check_week_sql(store: &Path, week: &str, summary: &serde_json::Value) {
    let Some(python) = engines_python("the SQL check of a real week") else {
        return;
    };
    for line in run_script(&python, "weekly-stats.py", &[store, Path::new(week)]) {
        check_sql_rows(&line, summary);
    }
}

/// Run a script of `scripts/` with the engines' Python; its JSON lines.
fn run_script(python: &Path, script: &str, args: &[&Path]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let tail: Vec<_> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .rev()
        .take(15)
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success(),
        "{script:?}: {stdout}\n{}",
        tail.join("\n")
    );
    let lines: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    lines
}

/// A statistics row's cell: model, bloc, price class.
fn cell(get: impl Fn(&str) -> serde_json::Value) -> [String; 3] {
    ["gpu_model", "bloc", "price_class"].map(|k| get(k).as_str().unwrap_or("").to_string())
}

/// The engine's rows of `sql/weekly_stats.sql` equal summary.json's `rows`.
fn check_sql_rows(line: &str, summary: &serde_json::Value) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let engine = v["engine"].as_str().unwrap();
    let cols: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let ours: BTreeMap<[String; 3], &serde_json::Value> = summary["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (cell(|k| r[k].clone()), r))
        .collect();
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{engine}: no rows");
    let mut seen = Vec::new();
    for row in rows {
        let get = |k: &str| row[cols.iter().position(|c| *c == k).unwrap()].clone();
        let k = cell(get);
        let Some(own) = ours.get(&k) else {
            panic!("{engine}: {k:?} is not in summary.json");
        };
        for c in &cols[3..] {
            let (a, b) = (get(c).as_f64().unwrap(), own[*c].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{engine}: {k:?} {c}: SQL {a} vs gpurent {b}"
            );
        }
        seen.push(k);
    }
    assert_eq!(seen.len(), ours.len(), "{engine}: cells {seen:?}");
    eprintln!(
        "{engine}: sql/weekly_stats.sql equals summary.json in {} cells",
        seen.len()
    );
}
