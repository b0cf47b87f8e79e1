//! Ingest's phases in-process: the SIMULATED vast.ai payload (the wire format of
//! `src/ingest/adapters/vastai.rs`) and its feed file, and one pass of ingest's own
//! library calls over it, each phase timed by the process's CPU time (user + sys,
//! `getrusage(RUSAGE_SELF)`, so polars' worker threads count too).
//!
//! The phases, in ingest's order (`ingest::parse_all`, `store_parsed`):
//! - floor: `serde_json` skipping the whole payload (`IgnoredAny`), the tokenizer's
//!   own limit; not part of ingest.
//! - adapter: `Adapter::parse` of the page alone, the parser's limit.
//! - archive: `ingest::spool::spool_file` (SHA-256 and stored-block gzip of the recorded file to
//!   a spool file, fsync, as `gpurent ingest` fetches a recorded file of a format
//!   that reads streams) and `Store::write_raw` (the spool file renamed as its blob,
//!   the hour's `.json`).
//! - parse: `ingest::parse_checked` of the spooled page (the recorded file read
//!   plain while unchanged, as `gpurent ingest` reads it, and the adapter's
//!   `parse_stream`, duplicate offers, the format check).
//! - normalise: `normalise::normalise_chunks` (the offers to DataFrames, a chunk of
//!   `CHUNK_ROWS` rows at a time, as `ingest::store_parsed` does).
//! - write: each chunk through a `RunWriter` (Parquet row groups, zstd), then its
//!   `commit` (fsync, rename).
//! - write, numbers only (not part of ingest): the same offers without their text
//!   columns through a `RunWriter` of a scratch store (removed after): what writing costs
//!   when polars has no string to hash into a dictionary page; write minus it is
//!   what the text columns cost.
//! - deflate (after ingest, not part of it): `Store::deflate_blobs`, which
//!   `gpurent compact` and the daemon's daily compaction run over the blob.
//!
//! Invariants: the calls are the library's own, in the order ingest makes them, so
//! the store written here holds the rows `gpurent ingest` stores from the same
//! payload (tests/it/ingest_phases.rs checks it); the store must be new; nothing
//! is copied from the library. Also included by that test (`#[path]`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gpurent::ingest::adapters::ParseCtx;
use gpurent::ingest::feed::{self, Source};
use gpurent::ingest::{self, spool, Archive};
use gpurent::model::Page;
use gpurent::normalise;
use gpurent::store::Store;
use gpurent::tables::Tables;

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

/// Write an `n`-offer payload and its feed file under `dir`: the feeds directory
/// and the payload's size in bytes.
pub fn prepare(dir: &Path, n: usize) -> std::io::Result<(PathBuf, usize)> {
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
    Ok((feeds, body.len()))
}

/// CPU seconds of each phase of one pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    pub floor: f64,
    /// SHA-256 of the body alone (the blob's name), and gzip at the archive's level
    /// alone into a sink: the archive's own floors.
    pub sha: f64,
    pub gzip: f64,
    pub adapter: f64,
    pub parse: f64,
    pub archive: f64,
    pub normalise: f64,
    pub write: f64,
    /// The same offers' frames without their text (`String`) columns, written
    /// through a second `RunWriter` after the pass.
    pub write_numbers: f64,
    /// `Store::deflate_blobs` after the pass, as `gpurent compact` (or the daemon,
    /// once a day) runs it later: the deflate ingest no longer does.
    pub deflate: f64,
    /// Offers stored.
    pub rows: usize,
}

/// This process's CPU seconds so far, user + sys, all threads.
pub fn cpu_s() -> f64 {
    // SAFETY: rusage is plain data; getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(ru.ru_utime) + s(ru.ru_stime)
}

/// `f()` and the CPU seconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = cpu_s();
    let out = f();
    (out, cpu_s() - start)
}

/// CPU seconds of SHA-256 over `body`, then of gzip of `body` into a sink as the
/// spool writes blobs (stored blocks: CRC-32 and framing; `compact` deflates later).
fn archive_floors(body: &[u8]) -> Result<(f64, f64), String> {
    use sha2::Digest as _;
    use std::io::Write as _;
    let (digest, t_sha) = timed(|| sha2::Sha256::digest(body));
    std::hint::black_box(digest);
    let (gz, t_gzip) = timed(|| {
        let mut gz = gpurent::store::deflate::stored_gz(std::io::sink());
        gz.write_all(body).and_then(|_| gz.finish())
    });
    gz.map_err(|e| format!("gzip: {e}"))?;
    Ok((t_sha, t_gzip))
}

/// `df` without its text (`String`) columns.
fn without_text(df: &polars::prelude::DataFrame) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let text = df.schema().iter().filter(|(_, d)| **d == DataType::String);
    let names: Vec<PlSmallStr> = text.map(|(n, _)| n.clone()).collect();
    df.drop_many(names)
}

/// CPU seconds of writing `frames` through a `RunWriter` of a scratch store beside
/// `root` (removed after), as the pass writes its offers.
fn write_numbers(
    root: &Path,
    name: &str,
    at: DateTime<Utc>,
    frames: Vec<polars::prelude::DataFrame>,
) -> Result<f64, String> {
    let scratch = root.with_extension("numbers");
    let _ = std::fs::remove_dir_all(&scratch);
    let store = Store::open(&scratch);
    let mut writer = store
        .run_writer(name, at)
        .ok_or("a new store holds no hour")?;
    let (done, dt) = timed(|| {
        for mut df in frames {
            let mut none = polars::prelude::DataFrame::empty();
            writer.write(&mut df, &mut none)?;
        }
        writer.commit()
    });
    done.map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    Ok(dt)
}

/// One pass over the feeds in `feeds` (one feed, a recorded file) into the new store
/// at `root`, observed at `at`, with the embedded tables, as `gpurent ingest` runs it.
pub fn run(feeds: &Path, root: &Path, at: DateTime<Utc>) -> Result<Phases, String> {
    let (mut all, broken) = feed::load_dir(feeds).map_err(|e| e.to_string())?;
    if let Some(b) = broken.first() {
        return Err(format!("feed {}: {}", b.name, b.error));
    }
    let feed = match (all.pop(), all.is_empty()) {
        (Some(f), true) => f,
        _ => return Err(format!("{}: not exactly one feed", feeds.display())),
    };
    let Source::File(path) = &feed.config.source else {
        return Err("the feed is not a recorded file".into());
    };
    let body = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let store = Store::open(root);
    let _lock = store.lock().map_err(|e| e.to_string())?;
    let name = feed.config.name.as_str();
    let mut t = Phases::default();

    let (floor, t_floor) = timed(|| serde_json::from_slice::<serde::de::IgnoredAny>(&body));
    floor.map_err(|e| format!("serde_json: {e}"))?;
    t.floor = t_floor;
    (t.sha, t.gzip) = archive_floors(&body)?;

    let pages = vec![Page::new(String::new(), body)];
    let ctx = ParseCtx {
        feed: name,
        provider: &feed.config.provider,
    };
    let (alone, t_adapter) = timed(|| feed.adapter.parse(&pages[0], &ctx));
    drop(alone.map_err(|e| format!("adapter: {e}"))?);
    t.adapter = t_adapter;

    // As `gpurent ingest` fetches a recorded file of a format that reads streams:
    // spooled from the file (SHA-256 and gzip), then parsed from the spool file.
    drop(pages);
    let spool_dir = store
        .tmp_dir()
        .join(format!("spool-bench-{}", std::process::id()));
    let (spooled, t_spool) = timed(|| spool::spool_file(path, &spool_dir));
    let spooled = spooled.map_err(|e| format!("spooling {}: {e}", path.display()))?;
    let pages = vec![Page {
        label: String::new(),
        body: Vec::new(),
        spool: Some(spooled),
    }];

    let (parsed, t_parse) = timed(|| ingest::parse_checked(&feed, &pages));
    let parsed = parsed.map_err(|e| e.to_string())?;
    t.parse = t_parse;

    let (archived, t_raw) = timed(|| {
        let meta = ingest::payload_meta(&feed, at, &Archive::plain(&pages));
        store
            .write_raw(name, at, &feed.config.text, &meta, &pages)
            .map_err(|e| e.to_string())
    });
    archived?;
    t.archive = t_spool + t_raw;
    let _ = std::fs::remove_dir_all(&spool_dir);

    let fx = ingest::load_fx(&store).map_err(|e| e.to_string())?;
    let tables = Tables::embedded();
    let ctx = ingest::context(&feed, at);
    let (rows, rejects) = (&parsed.offers, &parsed.rejects);
    let chunk = normalise::CHUNK_ROWS;
    let mut chunks = normalise::normalise_chunks(rows, rejects, &ctx, tables, &fx, chunk);
    let Some(mut writer) = store.run_writer(name, at) else {
        return Err(format!("{}: the hour is stored already", root.display()));
    };
    let mut numbers = Vec::new();
    loop {
        let (next, dt) = timed(|| chunks.next());
        t.normalise += dt;
        let Some(batch) = next else { break };
        let mut batch = batch.map_err(|e| e.to_string())?;
        t.rows += batch.offers.height();
        numbers.push(without_text(&batch.offers));
        let (written, dt) = timed(|| writer.write(&mut batch.offers, &mut batch.rejects));
        written.map_err(|e| e.to_string())?;
        t.write += dt;
    }
    let (committed, dt) = timed(|| writer.commit());
    committed.map_err(|e| e.to_string())?;
    t.write += dt;
    t.write_numbers = write_numbers(root, name, at, numbers)?;

    let (deflated, dt) = timed(|| store.deflate_blobs());
    let deflated = deflated.map_err(|e| e.to_string())?;
    if deflated.blobs != 1 || !deflated.failed.is_empty() {
        return Err(format!("compact deflated {deflated:?}, not the one blob"));
    }
    t.deflate = dt;
    Ok(t)
}
