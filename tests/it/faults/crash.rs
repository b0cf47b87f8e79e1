//! Crash safety: `kill -9` at seeded random moments during ingest, backfill, compact
//! and renormalise (10 trials each). After each kill every visible Parquet file is
//! readable by an independent glob reader, every stored hour is whole (exactly the
//! reference run's offers and rejects) or absent, and a re-run completes the store
//! exactly once (same rows as an uninterrupted run, no duplicate keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::*;

use super::{check_store, glob_read};

const TRIALS: u64 = 10;

/// A vast.ai payload of `n` offers, every 7th with an unknown GPU name (a reject).
fn payload(n: usize, seed: usize) -> String {
    let offers: Vec<String> = (1..=n)
        .map(|i| {
            let name = if i % 7 == 0 { "Mystery GPU 9000" } else { "H100 SXM" };
            format!(
                r#"{{"id": {i}, "gpu_name": "{name}", "num_gpus": 1, "dph_total": {:.3}, "min_bid": 1.1, "geolocation": "Texas, US"}}"#,
                2.0 + ((i * 31 + seed) % 100) as f64 / 100.0
            )
        })
        .collect();
    format!("{{\"offers\": [{}]}}", offers.join(",\n"))
}

/// Four file-source feeds of different sizes under `dir/feeds`.
fn file_feeds(dir: &Path) -> PathBuf {
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    for (k, n) in [(1, 1500), (2, 800), (3, 400), (4, 150)] {
        let p = dir.join(format!("v{k}.json"));
        std::fs::write(&p, payload(n, k)).unwrap();
        std::fs::write(
            feeds.join(format!("v{k}.toml")),
            format!("format = \"vastai\"\nurl = \"{}\"\n", p.display()),
        )
        .unwrap();
    }
    feeds
}

/// Rows per (feed, observation hour) of a tree, read with the independent glob reader;
/// for rejects only hours whose offers are stored count (gpurent's own rule).
fn per_hour(store: &Path, kind: &str) -> BTreeMap<(String, i64), usize> {
    let mut out = BTreeMap::new();
    let Some(df) = glob_read(store, kind) else {
        return out;
    };
    let feed = df.column("feed").unwrap().str().unwrap().clone();
    let t = df
        .column("observed_at")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    let t = t.i64().unwrap();
    for (f, t) in feed.iter().zip(t.iter()) {
        *out.entry((f.unwrap().to_string(), t.unwrap().div_euclid(3_600_000)))
            .or_insert(0) += 1;
    }
    out
}

/// Offers and rejects by hour, as gpurent itself counts them.
fn own_rejects(store: &Path) -> usize {
    gpurent::store::Store::open(store)
        .scan_rejects(None, None)
        .unwrap()
        .map(|lf| lf.collect().unwrap().height())
        .unwrap_or(0)
}

/// Each stored hour equals the reference hour (whole), or is absent.
fn whole_or_absent(store: &Path, reference: &BTreeMap<(String, i64), usize>, what: &str) {
    check_store(store);
    for (k, n) in per_hour(store, "offers") {
        assert_eq!(
            Some(&n),
            reference.get(&k),
            "{what}: hour {k:?} has {n} offers"
        );
    }
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gpurent"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Start `args`, kill -9 it after `delay`; true when it was still running.
fn kill_after(args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gpurent"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

fn timed(args: &[&str]) -> Duration {
    let t = Instant::now();
    let (code, out) = run(args);
    assert!(code == 0, "{args:?}: {out}");
    t.elapsed()
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The arguments `cmd` gives, borrowed as the runners take them.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Rows per hour of the reference store.
type Reference = BTreeMap<(String, i64), usize>;

/// Kill `cmd` at random moments in copies of `base` (None: a fresh store); after each
/// kill check whole-or-absent, re-run it, and compare with `reference`.
#[allow(clippy::too_many_arguments)]
fn trials(
    what: &str,
    seed: u64,
    base: Option<&Path>,
    work: &Path,
    cmd: impl Fn(&str) -> Vec<String>,
    reference: &Reference,
    reference_rejects: usize,
    span: Duration,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut killed = 0;
    for i in 0..TRIALS {
        let store = work.join(format!("{what}-{i}"));
        if let Some(b) = base {
            copy_dir(b, &store);
        }
        let s = store.to_str().unwrap();
        let delay = Duration::from_micros(rng.u64(0..=span.as_micros() as u64));
        if kill_after(&strs(&cmd(s)), delay) {
            killed += 1;
        }
        whole_or_absent(
            &store,
            reference,
            &format!("{what} trial {i} after kill at {delay:?}"),
        );
        let (code, out) = run(&strs(&cmd(s)));
        assert!(code == 0, "{what} trial {i}: re-run failed: {out}");
        assert_eq!(
            &per_hour(&store, "offers"),
            reference,
            "{what} trial {i}: re-run"
        );
        assert_eq!(
            own_rejects(&store),
            reference_rejects,
            "{what} trial {i}: rejects"
        );
        let tmp_left = std::fs::read_dir(store.join(".tmp"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(tmp_left, 0, "{what} trial {i}: .tmp not cleaned");
    }
    println!("crash {what}: {TRIALS} trials, {killed} killed while running (window {span:?})");
}

/// `cmd` run uninterrupted into `work/ref-{what}` must store `hours` hours; then
/// trials in fresh stores. The reference's rejects.
fn fresh_trials(
    what: &str,
    seed: u64,
    work: &Path,
    hours: usize,
    cmd: impl Fn(&str) -> Vec<String>,
) -> usize {
    let ref_store = work.join(format!("ref-{what}"));
    let span = timed(&strs(&cmd(ref_store.to_str().unwrap())));
    let reference = per_hour(&ref_store, "offers");
    assert_eq!(reference.len(), hours);
    let ref_rejects = own_rejects(&ref_store);
    trials(what, seed, None, work, cmd, &reference, ref_rejects, span);
    ref_rejects
}

/// `cmd` timed on a copy of `base` (`work/probe-{what}`); then trials in copies of
/// `base`, compared with `reference` and `ref_rejects`.
fn copy_trials(
    what: &str,
    seed: u64,
    (work, base): (&Path, &Path),
    (reference, ref_rejects): (&Reference, usize),
    cmd: impl Fn(&str) -> Vec<String>,
) {
    let probe = work.join(format!("probe-{what}"));
    copy_dir(base, &probe);
    let span = timed(&strs(&cmd(probe.to_str().unwrap())));
    let rejects = ref_rejects;
    trials(what, seed, Some(base), work, cmd, reference, rejects, span);
}

/// A store `work/base` with 2 days of hourly runs of one small file feed.
fn two_days_of_runs(work: &Path) -> PathBuf {
    let base = work.join("base");
    let small = work.join("small");
    std::fs::create_dir_all(small.join("feeds")).unwrap();
    std::fs::write(small.join("s.json"), payload(100, 1)).unwrap();
    std::fs::write(
        small.join("feeds/s.toml"),
        format!(
            "format = \"vastai\"\nurl = \"{}\"\n",
            small.join("s.json").display()
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let times: Vec<chrono::DateTime<chrono::Utc>> = (0..2 * 24)
        .map(|h| {
            "2024-10-01T00:00:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                + chrono::Duration::hours(h)
        })
        .collect();
    rt.block_on(crate::common::ingest_times(
        &small.join("feeds"),
        &gpurent::store::Store::open(&base),
        &times,
    ));
    base
}

#[test]
fn kill_9_during_ingest_backfill_compact_renormalise() {
    let tmp = super::fast_tempdir();
    let work = tmp.path();
    let feeds = file_feeds(work);
    let f = feeds.to_str().unwrap().to_string();
    let at = "2024-10-07T12:00:00Z";
    let ingest = |s: &str| -> Vec<String> {
        ["ingest", "--feeds", &f, "--store", s, "--at", at]
            .map(String::from)
            .to_vec()
    };
    let ref_rejects = fresh_trials("ingest", 9, work, 4, ingest);
    assert!(ref_rejects > 0);

    // Backfill: dated snapshots, one run per day.
    let snaps = work.join("snaps/vastai");
    for d in 1..=4 {
        let dir = snaps.join(format!("2024-10-0{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("offers.json"), payload(600, d)).unwrap();
    }
    let sn = snaps.to_str().unwrap().to_string();
    let backfill = |s: &str| -> Vec<String> {
        ["backfill", "--format", "vastai", "--store", s, &sn]
            .map(String::from)
            .to_vec()
    };
    fresh_trials("backfill", 10, work, 4, backfill);

    // Compact and renormalise work on a copy of a store with 2 days of hourly runs.
    let base = two_days_of_runs(work);
    let reference = per_hour(&base, "offers");
    assert_eq!(reference.len(), 48);
    let expected = (&reference, own_rejects(&base));
    let compact = |s: &str| -> Vec<String> {
        ["compact", "--store", s, "--before", "2024-10-05"]
            .map(String::from)
            .to_vec()
    };
    copy_trials("compact", 11, (work, &base), expected, compact);
    let renorm =
        |s: &str| -> Vec<String> { ["renormalise", "--store", s].map(String::from).to_vec() };
    copy_trials("renormalise", 12, (work, &base), expected, renorm);
}
