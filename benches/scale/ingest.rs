//! Ingest throughput from payload bytes: a SIMULATED vast.ai search response (the
//! wire format of `src/ingest/adapters/vastai.rs`) of many offers, recorded in a file
//! that a feed file points at, ingested by `gpurent ingest` as a user runs it: read,
//! parse, normalise, store (Parquet, fsync) and archive the raw payload.
//!
//! Invariants: the payload is deterministic (seeded fastrand); each run ingests into
//! a fresh store (a stored hour is never ingested twice); offers per CPU-second count
//! the payload's offers over the child's user + system time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gpurent::store::Store;
use polars::prelude::*;

use crate::child;
use crate::ops::{median, Config, Side};

/// (vast `gpu_name`, `gpu_ram` MB, USD per GPU-hour).
const GPUS: &[(&str, u32, f64)] = &[
    ("RTX 4090", 24564, 0.40),
    ("RTX 4090D", 24564, 0.30),
    ("H100 SXM", 81559, 2.40),
    ("A100 SXM4", 81920, 1.30),
    ("L40S", 46068, 0.85),
    ("H20", 97871, 1.10),
];
const GEO: &[&str] = &[
    "Texas, US",
    "California, US",
    "Guangdong, CN",
    "Zhejiang, CN",
    "Hong Kong, HK",
];

/// The payload: `{"offers": [...]}` with `n` offers of about 400 bytes each.
pub fn payload(n: usize) -> String {
    let mut r = fastrand::Rng::with_seed(0x696e_6765_7374);
    let mut s = String::with_capacity(n * 420);
    s.push_str("{\"offers\": [\n");
    for i in 0..n {
        let (name, ram, usd) = GPUS[r.usize(..GPUS.len())];
        let gpus = [1, 1, 2, 4, 8][r.usize(..5)];
        let dph = usd * gpus as f64 * (0.8 + 0.4 * r.f64());
        let bid = if r.bool() { dph * 0.55 } else { 0.0 };
        let _ = write!(
            s,
            "{sep}{{\"id\": {id}, \"machine_id\": {m}, \"gpu_name\": \"{name}\", \"num_gpus\": {gpus}, \
             \"gpu_ram\": {ram}, \"dph_total\": {dph:.4}, \"min_bid\": {bid:.4}, \"geolocation\": \"{geo}\", \
             \"rentable\": true, \"reliability2\": {rel:.4}, \"cpu_cores_effective\": {cpu}, \
             \"cpu_ram\": {cram}, \"disk_space\": {disk:.1}, \"inet_down\": {down:.1}, \"inet_up\": {up:.1}, \
             \"cuda_max_good\": 12.4, \"driver_version\": \"550.54.14\", \"verified\": true}}",
            sep = if i == 0 { "" } else { ",\n" },
            id = 10_000_000 + i,
            m = 40_000 + i / 4,
            geo = GEO[r.usize(..GEO.len())],
            rel = 0.9 + 0.1 * r.f64(),
            cpu = 8 * gpus,
            cram = 64_000 * gpus,
            disk = 100.0 + 900.0 * r.f64(),
            down = 100.0 + 2000.0 * r.f64(),
            up = 100.0 + 1000.0 * r.f64(),
        );
    }
    s.push_str("\n]}\n");
    s
}

/// What the ingest runs measured.
pub struct Ingest {
    pub offers: usize,
    pub payload_mib: f64,
    pub rows_stored: u64,
    pub side: Side,
}

impl Ingest {
    /// The one-line summary for the report.
    pub fn line(&self) -> String {
        if let Some(f) = self.side.failure() {
            return format!(
                "ingest (SIMULATED vast.ai payload, {} offers, {:.1} MiB): FAILED, {}: {}",
                self.offers,
                self.payload_mib,
                f.outcome.text(),
                f.stderr_tail
            );
        }
        let ok: Vec<_> = self.side.runs.iter().collect();
        let cpu = median(ok.iter().map(|r| r.cpu_s).collect()).unwrap_or(f64::NAN);
        let wall = self.side.wall_s().unwrap_or(f64::NAN);
        let rss = self.side.rss_mib().unwrap_or(f64::NAN);
        format!(
            "ingest (SIMULATED vast.ai payload, `gpurent ingest` of a recorded file): {} offers, {:.1} MiB of JSON -> {} rows stored; \
             median of {}: {wall:.2} s wall, {cpu:.2} CPU-s (user+sys) = {:.0} offers per CPU-second ({:.1} MiB/CPU-s); \
             peak RSS {rss:.0} MiB = {:.0} bytes per offer",
            self.offers,
            self.payload_mib,
            self.rows_stored,
            ok.len(),
            self.offers as f64 / cpu,
            self.payload_mib / cpu,
            rss * 1024.0 * 1024.0 / self.offers as f64,
        )
    }
}

/// Write the payload and its feed file under `dir`; the feeds directory.
fn prepare(dir: &Path, n: usize) -> std::io::Result<(PathBuf, f64)> {
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds)?;
    let body = payload(n);
    let file = dir.join("vastai-search.json");
    std::fs::write(&file, &body)?;
    let feed = format!(
        "# SIMULATED vast.ai payload for the scale benchmark.\nformat = \"vastai\"\nprovider = \"vastai\"\n\
         url = \"{}\"\nmax_bytes = 4000000000\nsample = true\n",
        file.display()
    );
    std::fs::write(feeds.join("vastai.toml"), feed)?;
    Ok((feeds, body.len() as f64 / (1024.0 * 1024.0)))
}

/// Ingest an `n`-offer payload `cfg.runs` times, each into a fresh store.
pub fn bench(cfg: &Config, n: usize) -> Result<Ingest, String> {
    let dir = cfg.work.join("ingest");
    let (feeds, payload_mib) = prepare(&dir, n).map_err(|e| format!("{}: {e}", dir.display()))?;
    let store = dir.join("store");
    let mut side = Side::default();
    for _ in 0..cfg.runs {
        if store.exists() {
            std::fs::remove_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
        }
        let mut c = cfg.gpurent();
        c.arg("ingest")
            .arg("--feeds")
            .arg(&feeds)
            .arg("--store")
            .arg(&store);
        c.args(["--at", "2026-12-01T00:00:00Z"]);
        side.runs.push(child::run(&mut c, cfg.cap_mib));
        if side.failure().is_some() {
            break;
        }
    }
    Ok(Ingest {
        offers: n,
        payload_mib,
        rows_stored: rows(&store).unwrap_or(0),
        side,
    })
}

fn rows(root: &Path) -> Option<u64> {
    let lf = Store::open(root).scan_offers(None, None).ok()??;
    let df = lf.select([len()]).collect().ok()?;
    df.column("len").ok()?.u32().ok()?.get(0).map(u64::from)
}
