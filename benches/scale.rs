//! The scale benchmark (issue 10), in one run, side by side with DuckDB:
//! `cargo bench --bench scale`. Everything here is SIMULATED data.
//!
//! 1. Ingest throughput: a vast.ai payload of many offers through `gpurent ingest`
//!    (offers per CPU-second, peak RSS per offer); then where its CPU time goes, the
//!    same payload through ingest's library calls in-process, phase by phase: the
//!    parser's floor (serde_json skipping the payload) and limit (the vast.ai
//!    adapter alone), parse, archive (SHA-256 + gzip), normalise and write (Parquet),
//!    each in CPU-s, offers per CPU-s and share, their sum beside the child's CPU-s
//!    (`scale/ingest.rs` shows the lines).
//! 2. For each scale: a synthetic store written directly (compacted day files), its
//!    per-week rollups stored once (`gpurent compact`, as every writer does), then
//!    `gpurent report --week`, `history --model` and `prices` as child processes of the
//!    built binary, each beside DuckDB (`scripts/bench-duckdb.py`, 2 threads) on the
//!    same files, runs alternating; wall time, CPU time from `wait4`, peak RSS as the
//!    child's own `VmHWM` after its exec (`child.rs`); the figures
//!    compared row by row.
//! 3. The table, the ingest line, charts when more than one scale ran
//!    (`<target>/bench/scale-report-*.svg`), and the benchmark's own duration.
//!
//! Environment: GPURENT_BENCH_SCALES (comma-separated, default `4w`; `1y` is 52
//! weeks at 2,000 offers an hour, `1y20k` at 20,000), GPURENT_BENCH_RUNS (3),
//! GPURENT_BENCH_INGEST_OFFERS (300000; 0 skips), GPURENT_BENCH_MAX_RSS_MIB (default
//! 70 % of the memory available at start, at most 16384: a child above it is killed
//! and recorded), GPURENT_BENCH_DIR (stores, kept between
//! runs; default `<target>/tmp/bench-scale`), GPURENT_BENCH_REWRITE=1 (write the
//! stores again), GPURENT_BENCH_MODEL (`H100-SXM-80GB`), GPURENT_ENGINES_PYTHON
//! (default `/var/tmp/gpurent-engines/bin/python`, from `scripts/engines.sh`).

#[path = "scale/child.rs"]
mod child;
#[path = "scale/columns.rs"]
mod columns;
#[path = "scale/compare.rs"]
mod compare;
#[path = "scale/ingest.rs"]
mod ingest;
#[path = "scale/ops.rs"]
mod ops;
#[path = "scale/output.rs"]
mod output;
#[path = "scale/phases.rs"]
mod phases;
#[path = "scale/synth.rs"]
mod synth;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use ops::{Config, Op};
use synth::Scale;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The engines venv's Python, if it can import DuckDB.
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("GPURENT_ENGINES_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/gpurent-engines/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!(
            "DuckDB: {} cannot import duckdb (run scripts/engines.sh); gpurent alone",
            p.display()
        );
    }
    ok.then_some(p)
}

/// The RSS cap for a child: 70 % of the memory available now (the machine may be
/// shared), at most 16 GiB.
fn default_cap_mib() -> u64 {
    let available_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    });
    available_kb.map_or(16_384, |kb| (kb / 1024 * 7 / 10).min(16_384))
}

fn config() -> Config {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    Config {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_gpurent")),
        python: python(),
        runs: env_or("GPURENT_BENCH_RUNS", 3usize).max(1),
        cap_mib: env_or("GPURENT_BENCH_MAX_RSS_MIB", default_cap_mib()),
        work: std::env::var_os("GPURENT_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("bench-scale")),
        model: std::env::var("GPURENT_BENCH_MODEL").unwrap_or_else(|_| "H100-SXM-80GB".into()),
    }
}

fn scales() -> Vec<Scale> {
    let spec = std::env::var("GPURENT_BENCH_SCALES").unwrap_or_else(|_| "4w".into());
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Scale::parse(s).unwrap_or_else(|| {
                panic!("GPURENT_BENCH_SCALES: {s:?} is not like 4w, 1y or 1y20k")
            })
        })
        .collect()
}

/// Store the per-week rollups as a writer does after every write (`gpurent compact`
/// on these already-compacted stores does only that), and say what it cost. An
/// installation pays this once per week as weeks complete; a store written directly
/// has none yet, and the report would compute every week's in memory at each run.
fn rollups(cfg: &Config, store: &std::path::Path) {
    let mut cmd = cfg.gpurent();
    cmd.arg("compact").arg("--store").arg(store);
    let r = child::run(&mut cmd, cfg.cap_mib);
    println!(
        "  rollups (gpurent compact, once): {}, {:.1} s wall, {:.1} CPU-s, peak RSS {:.0} MiB",
        r.outcome.text(),
        r.wall_s,
        r.cpu_s,
        r.peak_rss_mib
    );
}

/// Write (or keep) each scale's store and run the three operations on it.
fn measure_scales(cfg: &Config, scales: &[Scale]) -> Vec<ops::Measured> {
    let rewrite = std::env::var("GPURENT_BENCH_REWRITE").is_ok_and(|v| v == "1");
    let mut all = Vec::new();
    for scale in scales {
        let store = match synth::ensure(&cfg.work.join("stores"), scale, rewrite) {
            Ok(w) => w,
            Err(e) => {
                println!("scale {}: the store could not be written: {e}", scale.label);
                continue;
            }
        };
        println!(
            "scale {}: SIMULATED store, {} weeks x {} offers/h: {} rows, {:.0} MiB of offers, {} in {:.1} s ({})",
            scale.label,
            scale.weeks,
            scale.per_hour,
            output::thousands(store.rows),
            store.offers_mib,
            if store.kept { "kept, written earlier" } else { "written" },
            store.write_s,
            store.root.display()
        );
        rollups(cfg, &store.root);
        for op in Op::ALL {
            let m = ops::bench(cfg, scale, &store, op);
            eprintln!("{}", output::row(&m));
            all.push(m);
        }
    }
    all
}

fn main() {
    let started = Instant::now();
    let cfg = config();
    let scales = scales();
    println!(
        "scale bench: SIMULATED data; {} run(s) per figure, medians; children killed above {} MiB RSS; gpurent {}",
        cfg.runs,
        cfg.cap_mib,
        cfg.bin.display()
    );
    let offers = env_or("GPURENT_BENCH_INGEST_OFFERS", 300_000usize);
    let ingest = (offers > 0).then(|| ingest::bench(&cfg, offers));
    if let Some(i) = &ingest {
        println!(
            "{}",
            i.as_ref()
                .map_or_else(|e| format!("ingest: {e}"), ingest::Ingest::lines)
        );
    }
    let measured = measure_scales(&cfg, &scales);
    println!("\n{}", output::HEADER);
    for m in &measured {
        println!("{}", output::row(m));
    }
    if let Some(i) = &ingest {
        println!(
            "\n{}",
            i.as_ref()
                .map_or_else(|e| format!("ingest: {e}"), ingest::Ingest::lines)
        );
    }
    if scales.len() > 1 {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.parent().unwrap_or(&tmp).join("bench");
        match output::plot(&measured, &dir) {
            Ok(files) => files
                .iter()
                .for_each(|f| println!("chart: {}", f.display())),
            Err(e) => println!("charts not drawn: {e}"),
        }
    }
    println!(
        "scale bench: total {:.1} s wall",
        started.elapsed().as_secs_f64()
    );
}
