//! The append-only history: Parquet partitioned by date, raw payloads, FX rates, runs.
//!
//! Layout (only this module knows it):
//! ```text
//! <store>/offers/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>.parquet   normalised offers
//! <store>/offers/date=YYYY-MM-DD/<feed>__<YYYYMMDD>-<mask>.parquet a compacted day; <mask>
//!                                                                 is 6 hex digits, bit h = hour h held
//! <store>/rejects/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>.parquet  rejected offers + reason
//! <store>/raw/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>.json         the hour: its pages' blobs, feed file, meta
//! <store>/raw/date=YYYY-MM-DD/<feed>__day.json                    a compacted date's hours ([`rawday`])
//! <store>/raw/blobs/<2 hex>/<sha256>.gz                           each distinct page body once ([`raw`])
//! <store>/rollups/<YYYY-Www>__<key>.parquet                      per-week rollups (derived; see `rollups`)
//! <store>/fx/ecb.parquet                                          ECB rates (date, currency, units_per_eur)
//! <store>/failed/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>__<n>/      payloads that failed (diagnosis only)
//! <store>/runs/<YYYYMMDDTHHMMSS>-<kind>.json                       one record per run
//! <store>/.tmp/                                                   temporary files and swap jobs
//! <store>/.lock                                                   held by the writer
//! ```
//! Invariants: one file per feed and hour, never overwritten (except by FX healing,
//! which rebuilds an hour from its own raw payload), so re-ingesting an hour
//! adds nothing (the offers file, written last and even when empty, marks the run,
//! and a compacted day's name says which hours it holds); only Parquet files live in
//! the partition folders, so Spark, Trino, Athena and DuckDB read `offers/` as it is;
//! every file is written under `.tmp/`, synced and renamed into place, so a crash
//! leaves the whole file or none, and no glob such as `offers/*/*.parquet` ever sees a
//! partial file; whole directories (a compacted day, the renormalised trees) are
//! replaced by [`fsutil::swap_dirs`]. Taking the lock cleans up after a
//! crash: it finishes or drops swap jobs, empties `.tmp/`, and deletes a rejects file
//! whose hour has no offers file (the offers file is renamed last). `raw/` holds only
//! payloads whose offers were stored (the exact payload of each stored hour), each
//! distinct page once, written before the hour that refers to it;
//! payloads that failed go to `failed/`, which `renormalise` never reads. Readers
//! scan lazily and only the dates asked for, and read an hour a day file holds from
//! that day file only (a bucket mid-compaction or a cache may hold both).

pub mod deflate;
pub mod fsutil;
pub mod maintain;
mod parts;
mod raw;
mod rawday;
pub mod records;
pub mod remote;
pub mod rollups;

pub use parts::RunWriter;
pub use raw::{content_hash, LastPayload, RawRun, Swept};
pub use rawday::MergedHours;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use polars::prelude::*;

use crate::error::StoreError;
use crate::model::FxRate;
use crate::store::fsutil::{io, write_atomic_via};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Where a store lives, as `--store` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory (a plain path or a `file://` URL).
    Local(PathBuf),
    /// `s3://bucket/prefix` (or `s3a://`), worked on through a local cache.
    S3 { bucket: String, prefix: String },
}

/// Parse a `--store` argument. A URL with any other scheme (`gs://`, `https://`) is
/// refused rather than taken as a relative path, which would write a local folder
/// literally named `gs:/bucket/...` and exit 0.
pub fn parse_location(location: &str) -> Result<Location, StoreError> {
    let Some((scheme, rest)) = location.split_once("://") else {
        return Ok(Location::Local(PathBuf::from(location)));
    };
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let refused = || StoreError::Remote {
        location: location.to_string(),
        scheme: scheme.to_string(),
    };
    match scheme {
        _ if !is_scheme => Ok(Location::Local(PathBuf::from(location))),
        "file" => Ok(Location::Local(PathBuf::from(rest))),
        "s3" | "s3a" => {
            let (bucket, prefix) = remote::parse_url(location).ok_or_else(refused)?;
            Ok(Location::S3 { bucket, prefix })
        }
        _ => Err(refused()),
    }
}

/// Whether the file at `path` has a Parquet file's framing: `PAR1` at both ends and
/// a footer length that fits.
fn framed(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let check = || -> std::io::Result<bool> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        if len < 12 {
            return Ok(false);
        }
        let (mut head, mut tail) = ([0u8; 4], [0u8; 8]);
        f.read_exact(&mut head)?;
        f.seek(SeekFrom::End(-8))?;
        f.read_exact(&mut tail)?;
        let footer = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
        Ok(&head == b"PAR1" && &tail[4..] == b"PAR1" && footer + 12 <= len)
    };
    check().unwrap_or(false)
}

/// The rows of the Parquet file at `path`, from its footer.
fn parquet_rows(path: &Path) -> Result<usize, StoreError> {
    let f = File::open(path).map_err(io(path))?;
    ParquetReader::new(f).num_rows().map_err(pl(path))
}

/// The hour a feed run is stored under.
pub fn hour_key(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H").to_string()
}

fn pl(path: &Path) -> impl FnOnce(PolarsError) -> StoreError + '_ {
    move |source| StoreError::Polars {
        path: path.to_path_buf(),
        source,
    }
}

/// Write a frame as Parquet (zstd) atomically, the temporary file in `tmp_dir`.
pub fn write_parquet_via(
    tmp_dir: &Path,
    path: &Path,
    df: &mut DataFrame,
) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(pl(path))?;
    write_atomic_via(tmp_dir, path, &buf)
}

/// Row groups of a compacted day's offers: a group ends at the first model boundary
/// after it holds the minimum, and no group holds more than the maximum.
pub const DAY_GROUP_ROWS: (usize, usize) = (16_384, 131_072);

/// The footer key (Parquet file key-value metadata) and value that mark a day's
/// offers file as written by [`write_day_offers`]: rows sorted by model, then time.
/// Day files written before it (until 2026-12) are sorted by time alone, so a filter
/// on the model skips none of their row groups; [`Store::resort_days`] rewrites them.
pub const ROW_ORDER_KEY: &str = "gpurent.row_order";
pub const DAY_ROW_ORDER: &str = "gpu_model,observed_at";

/// Write a compacted day's offers atomically: rows sorted by model, then time (stable),
/// in row groups cut at model boundaries ([`DAY_GROUP_ROWS`]), so a reader asking for
/// one model skips the other models' groups by their min/max statistics. The footer
/// says so ([`ROW_ORDER_KEY`]).
pub fn write_day_offers(tmp_dir: &Path, path: &Path, df: &DataFrame) -> Result<(), StoreError> {
    let mut df = df
        .sort(
            ["gpu_model", "observed_at"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .map_err(pl(path))?;
    df.rechunk_mut();
    let groups = model_groups(&df).map_err(pl(path))?;
    let mut buf = Vec::new();
    let order = vec![(ROW_ORDER_KEY.to_string(), DAY_ROW_ORDER.to_string())];
    let mut writer = ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(order)))
        .batched(df.schema())
        .map_err(pl(path))?;
    for (offset, len) in groups {
        writer
            .write_batch(&df.slice(offset as i64, len))
            .map_err(pl(path))?;
    }
    writer.finish().map_err(pl(path))?;
    write_atomic_via(tmp_dir, path, &buf)
}

/// Whether a day's offers file says it is sorted by model, then time ([`ROW_ORDER_KEY`]).
fn day_order_marked(path: &Path) -> Result<bool, StoreError> {
    let f = File::open(path).map_err(io(path))?;
    let mut reader = ParquetReader::new(f);
    let meta = reader.get_metadata().map_err(pl(path))?;
    Ok(meta.key_value_metadata().as_ref().is_some_and(|kv| {
        kv.iter()
            .any(|k| k.key == ROW_ORDER_KEY && k.value.as_deref() == Some(DAY_ROW_ORDER))
    }))
}

/// (offset, rows) of each row group of a frame sorted by `gpu_model`.
fn model_groups(df: &DataFrame) -> PolarsResult<Vec<(usize, usize)>> {
    let (min, max) = DAY_GROUP_ROWS;
    let models = df.column("gpu_model")?.str()?;
    let mut cuts = Vec::new();
    let mut start = 0;
    let mut prev = None;
    for (i, m) in models.iter().enumerate() {
        if i > 0 && m != prev && i - start >= min {
            cuts.push((start, i - start));
            start = i;
        }
        prev = m;
    }
    if df.height() > start {
        cuts.push((start, df.height() - start));
    }
    Ok(cuts
        .into_iter()
        .flat_map(|(off, len)| {
            let parts = len.div_ceil(max);
            let each = len.div_ceil(parts);
            (0..parts).map(move |p| (off + p * each, each.min(len - p * each)))
        })
        .collect())
}

/// What [`Store::resort_days`] did: day files rewritten, and the errors of those it
/// could not read or rewrite (each names its file; the file is left as it was).
#[derive(Debug, Default)]
pub struct Resorted {
    pub rewritten: usize,
    pub failed: Vec<StoreError>,
}

/// Tries, 5 ms apart, before a held lock counts as held by another writer.
const BRIEF_LOCK_TRIES: u32 = 40;

/// How long `gpurent` waits for another writer's lock by default (`--lock-wait`).
pub const DEFAULT_LOCK_WAIT_S: u64 = 600;

/// Scan options for one kind of file. Offers are read against the current offer
/// schema, so files written before a column was added (e.g. `peer`) read as null in
/// that column, whatever order the files come in.
fn scan_args(kind: &str) -> ScanArgsParquet {
    ScanArgsParquet {
        allow_missing_columns: true,
        schema: (kind == "offers").then(crate::normalise::offer_schema),
        // No `date` column from the folder names: a compacted day written from such a
        // scan would repeat the partition column, which Spark refuses to read.
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Holds the store's writer lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    root: PathBuf,
}

/// Stores whose lock this process holds now (so a second attempt from this process
/// fails at once instead of waiting out [`BRIEF_LOCK_TRIES`]).
static HELD_HERE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn held_here() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    HELD_HERE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let mut held = held_here();
        if let Some(i) = held.iter().position(|r| *r == self.root) {
            held.swap_remove(i);
        }
    }
}

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// A store to read: `root` must be a directory (empty is fine), so a mistyped path
    /// or a file is an error naming it, not a store without offers.
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let why = match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => return Ok(Self::open(root)),
            Ok(_) => "not a directory".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such directory".into(),
            Err(e) => e.to_string(),
        };
        Err(StoreError::NotAStore { path: root, why })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where temporary files and swap jobs live (outside every partition).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    /// Take the writer lock, or fail at once if another process holds it. Taking it
    /// cleans up after a crashed writer (see the module header).
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let path = self.root.join(".lock");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        // A lock held only for a moment is waited for: a child process forked by this
        // one holds the inherited descriptor (and so the lock) until its exec. A lock
        // this process holds itself is reported at once.
        let mut result = f.try_lock();
        for _ in 0..BRIEF_LOCK_TRIES {
            let busy = matches!(result, Err(fs::TryLockError::WouldBlock));
            if !busy || held_here().contains(&self.root) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            result = f.try_lock();
        }
        match result {
            Ok(()) => {
                let _ = f.set_len(0);
                let _ = write!(f, "{}", std::process::id());
                held_here().push(self.root.clone());
                let lock = StoreLock {
                    _file: f,
                    root: self.root.clone(),
                };
                self.clean_up()?;
                Ok(lock)
            }
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                path: self.root.clone(),
                holder: fs::read_to_string(&path).unwrap_or_default(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }

    /// Take the writer lock, waiting up to `max` for another writer to finish
    /// (polling every 250 ms); `waiting` is told once, with the holder's pid, when the
    /// store is busy. After `max` the error says how long it waited.
    pub fn lock_wait(
        &self,
        max: std::time::Duration,
        waiting: impl FnOnce(&str),
    ) -> Result<StoreLock, StoreError> {
        let start = std::time::Instant::now();
        let mut waiting = Some(waiting);
        loop {
            match self.lock() {
                Err(StoreError::Locked { path, holder }) => {
                    if start.elapsed() >= max {
                        return Err(StoreError::LockTimeout {
                            path,
                            holder,
                            waited_s: start.elapsed().as_secs(),
                        });
                    }
                    if let Some(w) = waiting.take() {
                        w(holder.trim());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                other => return other,
            }
        }
    }

    /// After a crash (called with the lock held): finish or drop swap jobs, empty
    /// `.tmp/`, remove temporary files an older version left inside partitions, and
    /// delete rejects files whose hour has no offers file.
    fn clean_up(&self) -> Result<(), StoreError> {
        fsutil::recover_swaps(&self.tmp_dir())?;
        for kind in ["offers", "rejects", "raw"] {
            for (date, dir) in self.partitions(kind)? {
                for e in fs::read_dir(&dir).map_err(io(&dir))? {
                    let p = e.map_err(io(&dir))?.path();
                    if let Some(feed) = p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_suffix(".hours.txt"))
                    {
                        migrate_hours_list(&dir, feed, date, &p)?;
                        continue;
                    }
                    let stray = p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
                    if stray && p.is_dir() {
                        fs::remove_dir_all(&p).map_err(io(&p))?;
                    } else if stray || (kind == "rejects" && self.is_orphan_reject(&p)) {
                        fs::remove_file(&p).map_err(io(&p))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// An hourly rejects file whose hour has no offers (the run did not complete).
    fn is_orphan_reject(&self, path: &Path) -> bool {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((feed, rest)) = name.split_once("__") else {
            return false;
        };
        let Some(hour) = rest.strip_suffix(".parquet").filter(|h| h.contains('T')) else {
            return false;
        };
        let Ok(at) = chrono::NaiveDateTime::parse_from_str(&format!("{hour}0000"), "%Y%m%dT%H%M%S")
        else {
            return false;
        };
        !self.has_offers(feed, at.and_utc())
    }

    fn partition(&self, kind: &str, date: NaiveDate) -> PathBuf {
        self.root.join(kind).join(format!("date={date}"))
    }

    fn file(&self, kind: &str, feed: &str, at: DateTime<Utc>) -> PathBuf {
        self.partition(kind, at.date_naive())
            .join(format!("{feed}__{}.parquet", hour_key(at)))
    }

    /// True when this feed's offers for this hour are already stored.
    pub fn has_run(&self, feed: &str, at: DateTime<Utc>) -> bool {
        self.has_offers(feed, at)
    }

    fn has_offers(&self, feed: &str, at: DateTime<Utc>) -> bool {
        // The offers file is written last, so it marks a complete run.
        if self.file("offers", feed, at).exists() {
            return true;
        }
        // A compacted day's name holds the mask of its hours.
        self.day_file("offers", feed, at).is_some()
    }

    /// The compacted day file of a feed that holds the hour of `at`, if any.
    fn day_file(&self, kind: &str, feed: &str, at: DateTime<Utc>) -> Option<PathBuf> {
        let dir = self.partition(kind, at.date_naive());
        fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                matches!(parse_data_name(&name), Some((f, DataFile::Day(mask)))
                    if f == feed && mask & (1 << at.hour()) != 0)
            })
    }

    /// Merge each feed's hourly files of one date into one file per feed and kind
    /// (`<feed>__<YYYYMMDD>-<mask>.parquet`; offers sorted by model then time, in row
    /// groups by model ([`write_day_offers`]), rejects by time); the name holds the
    /// merged hours, so re-ingesting such an hour still adds nothing. The new
    /// partitions (offers and rejects together) are built under `.tmp/` and swapped in
    /// by one [`fsutil::swap_dirs`] job. Returns files before/after.
    /// The caller holds the store lock.
    pub fn compact(&self, date: NaiveDate) -> Result<(usize, usize), StoreError> {
        let (mut before, mut after) = (0, 0);
        let job = self.tmp_dir().join(format!("swap-compact-{date}"));
        if job.exists() {
            fs::remove_dir_all(&job).map_err(io(&job))?;
        }
        let mut targets = Vec::new();
        let res = (|| -> Result<(), StoreError> {
            for kind in ["offers", "rejects"] {
                let dir = self.partition(kind, date);
                if !dir.is_dir() {
                    continue;
                }
                let by_feed = self.partition_files(&dir)?;
                let files: usize = by_feed.values().map(|v| v.0.len()).sum();
                before += files;
                if by_feed.values().all(|v| v.0.len() <= 1) {
                    after += files;
                    continue;
                }
                let stage = job.join(format!("new-{}", targets.len()));
                fs::create_dir_all(&stage).map_err(io(&stage))?;
                for (feed, (files, hours)) in by_feed {
                    self.merge_files(kind, &dir, &stage, &feed, date, &files, hours)?;
                    after += 1;
                }
                targets.push((dir, stage));
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&job);
            return Err(e);
        }
        if !targets.is_empty() {
            fsutil::swap_dirs(&job, &targets)?;
        }
        Ok((before, after))
    }

    /// Rewrite each compacted day's offers file of `date` that is sorted by time alone
    /// (written before [`ROW_ORDER_KEY`]) as [`write_day_offers`] writes one: the same
    /// rows, sorted by model, then time, under the same name (a temporary file in
    /// `.tmp/`, renamed over it). A marked file is only read for its footer, so each
    /// file is rewritten once. A file that cannot be read or rewritten stays as it is
    /// and its error is returned beside the count, so one damaged file stops neither
    /// the other files nor compaction. The caller holds the store lock; for a local
    /// store only (an `s3://` store's day objects are written once).
    pub fn resort_days(&self, date: NaiveDate) -> Result<Resorted, StoreError> {
        let mut out = Resorted::default();
        let dir = self.partition("offers", date);
        if !dir.is_dir() {
            return Ok(out);
        }
        for (files, _) in self.partition_files(&dir)?.into_values() {
            for path in files {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if !matches!(parse_data_name(&name), Some((_, DataFile::Day(_)))) {
                    continue;
                }
                match self.resort_day(&path) {
                    Ok(true) => out.rewritten += 1,
                    Ok(false) => {}
                    Err(e) => out.failed.push(e),
                }
            }
        }
        Ok(out)
    }

    /// Rewrite one day's offers file sorted by model unless its footer says it is.
    fn resort_day(&self, path: &Path) -> Result<bool, StoreError> {
        if day_order_marked(path)? {
            return Ok(false);
        }
        let df = LazyFrame::scan_parquet(
            PlRefPath::try_from_path(path).map_err(pl(path))?,
            scan_args("offers"),
        )
        .and_then(|lf| lf.collect())
        .map_err(pl(path))?;
        write_day_offers(&self.tmp_dir(), path, &df)?;
        Ok(true)
    }

    /// A partition's data files by feed, with the hours they hold.
    #[allow(clippy::type_complexity)]
    fn partition_files(
        &self,
        dir: &Path,
    ) -> Result<BTreeMap<String, (Vec<PathBuf>, u32)>, StoreError> {
        let mut all = Vec::new();
        for e in fs::read_dir(dir).map_err(io(dir))? {
            all.push(e.map_err(io(dir))?.path());
        }
        let mut by_feed: BTreeMap<String, (Vec<PathBuf>, u32)> = BTreeMap::new();
        for p in not_covered(all) {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            if let Some((feed, file)) = parse_data_name(&name) {
                let entry = by_feed.entry(feed.to_string()).or_default();
                entry.1 |= file.mask();
                entry.0.push(p);
            }
        }
        Ok(by_feed)
    }

    /// Merge one feed's files of a date into `stage`: one file named with its hours.
    #[allow(clippy::too_many_arguments)]
    fn merge_files(
        &self,
        kind: &str,
        dir: &Path,
        stage: &Path,
        feed: &str,
        date: NaiveDate,
        files: &[PathBuf],
        hours: u32,
    ) -> Result<(), StoreError> {
        let mut files = files.to_vec();
        files.sort();
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|p| PlRefPath::try_from_path(p))
            .collect::<PolarsResult<_>>()
            .map_err(pl(dir))?;
        let args = scan_args(kind);
        // Rejects are sorted by time here; offers by model then time as they are
        // written (`write_day_offers`), so not twice. Both sorts are stable: an
        // hour's rows, which one file holds, keep their stored order.
        let mut df = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
            .and_then(|lf| match kind {
                "offers" => lf.collect(),
                _ => lf
                    .sort(
                        ["observed_at"],
                        SortMultipleOptions::default().with_maintain_order(true),
                    )
                    .collect(),
            })
            .map_err(|e| {
                // polars' error names no file: name the first damaged one if any.
                let bad = files.iter().find(|f| !framed(f));
                pl(bad.map_or(dir, |f| f.as_path()))(e)
            })?;
        let out = stage.join(day_file_name(feed, date, hours));
        match kind {
            "offers" => write_day_offers(stage, &out, &df),
            _ => write_parquet_via(stage, &out, &mut df),
        }
    }

    /// Store one feed run's offers and rejects. Returns false (and writes nothing)
    /// when that feed and hour are already stored.
    pub fn append(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        offers: &mut DataFrame,
        rejects: &mut DataFrame,
    ) -> Result<bool, StoreError> {
        // One chunk through the run writer, which puts rejects first and offers last
        // (even with no rows): the offers file marks the run complete. A crash between
        // the two leaves a rejects file without offers, which readers skip and the next
        // lock deletes; a re-run redoes the hour whole.
        let Some(mut writer) = self.run_writer(feed, at) else {
            return Ok(false);
        };
        writer.write(offers, rejects)?;
        writer.commit()?;
        Ok(true)
    }

    /// A writer of one feed run's offers and rejects chunk by chunk ([`RunWriter`]:
    /// nothing is in place until its `commit`, which puts rejects then offers as
    /// [`Store::append`] does); `None` when that feed and hour are already stored.
    pub fn run_writer(&self, feed: &str, at: DateTime<Utc>) -> Option<RunWriter> {
        if self.has_run(feed, at) {
            return None;
        }
        let (offers, rejects) = (
            self.file("offers", feed, at),
            self.file("rejects", feed, at),
        );
        Some(RunWriter::new(self.tmp_dir(), offers, rejects))
    }

    /// Offers stored by one feed run, `None` when its hour is not a file of its own
    /// (not stored, or merged into a compacted day).
    pub fn run_offer_count(
        &self,
        feed: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        self.run_rows("offers", feed, at)
    }

    /// Rejects stored by one feed run (0 when it has no rejects file), `None` when
    /// its offers are not a file of their own.
    pub fn run_reject_count(
        &self,
        feed: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        if !self.file("offers", feed, at).exists() {
            return Ok(None);
        }
        Ok(Some(self.run_rows("rejects", feed, at)?.unwrap_or(0)))
    }

    fn run_rows(
        &self,
        kind: &str,
        feed: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let path = self.file(kind, feed, at);
        if !path.exists() {
            return Ok(None);
        }
        parquet_rows(&path).map(Some)
    }

    /// Replace one stored run's offers and rejects (FX healing: the same raw payload
    /// normalised with rates that arrived later). Each file is replaced by rename;
    /// offers first, so a crash in between never loses an offer (it leaves the healed
    /// offers beside the old rejects, which the next healing rewrites).
    pub fn rewrite_run(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        offers: &mut DataFrame,
        rejects: &mut DataFrame,
    ) -> Result<(), StoreError> {
        let tmp = self.tmp_dir();
        write_parquet_via(&tmp, &self.file("offers", feed, at), offers)?;
        let rj = self.file("rejects", feed, at);
        if rejects.height() > 0 {
            write_parquet_via(&tmp, &rj, rejects)
        } else if rj.exists() {
            fs::remove_file(&rj).map_err(io(&rj))
        } else {
            Ok(())
        }
    }

    /// Offers and rejects files a reader scans whose Parquet framing is broken:
    /// shorter than a Parquet file can be, without the `PAR1` magic at either end, or
    /// with a footer longer than the file (what a truncated copy or a damaged disk
    /// leaves). Two small reads a file; readers call it only after a scan failed, to
    /// name the files, since polars' error does not.
    pub fn damaged_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut bad = Vec::new();
        for kind in ["offers", "rejects"] {
            bad.extend(
                self.files(kind, None, None)?
                    .into_iter()
                    .filter(|p| !framed(p)),
            );
        }
        bad.sort();
        Ok(bad)
    }

    /// The date partitions of `kind`, sorted.
    fn partitions(&self, kind: &str) -> Result<Vec<(NaiveDate, PathBuf)>, StoreError> {
        let base = self.root.join(kind);
        if !base.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for e in fs::read_dir(&base).map_err(io(&base))? {
            let p = e.map_err(io(&base))?.path();
            let name = p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(d) = name.strip_prefix("date=") {
                if let Ok(date) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                    out.push((date, p));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The newest date whose offers files hold a row, read from the files' footers. A
    /// run that stored nothing leaves an empty file (the run at `--at` that marks a
    /// back-filled file imported, a payload of no offers), and its date is no
    /// observation: a default report week or `prices` counted from it would find
    /// nothing.
    pub fn latest_offer_date(&self) -> Result<Option<NaiveDate>, StoreError> {
        for d in self.offer_dates()?.into_iter().rev() {
            if self.holds_offers(d, d)? {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// Whether an offers file dated `from..=to` holds a row (read from the footers,
    /// up to the first that does).
    pub fn holds_offers(&self, from: NaiveDate, to: NaiveDate) -> Result<bool, StoreError> {
        for p in self.files("offers", Some(from), Some(to))? {
            if parquet_rows(&p)? > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The groups (`group` of a date, e.g. its ISO week) whose offers files hold a row,
    /// from one listing of the partitions: [`Store::holds_offers`] for many ranges at
    /// once (footers read up to a group's first file that holds one).
    pub fn groups_holding_offers<K: Ord>(
        &self,
        group: impl Fn(NaiveDate) -> Option<K>,
    ) -> Result<BTreeSet<K>, StoreError> {
        let mut out = BTreeSet::new();
        for (d, dir) in self.partitions("offers")? {
            let Some(k) = group(d).filter(|k| !out.contains(k)) else {
                continue;
            };
            for p in self.data_files("offers", &dir)? {
                if parquet_rows(&p)? > 0 {
                    out.insert(k);
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Dates that hold offers files (some may be empty), sorted.
    pub fn offer_dates(&self) -> Result<Vec<NaiveDate>, StoreError> {
        Ok(self
            .partitions("offers")?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    fn files(
        &self,
        kind: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let mut files = Vec::new();
        for (d, dir) in self.partitions(kind)? {
            if from.is_some_and(|f| d < f) || to.is_some_and(|t| d > t) {
                continue;
            }
            files.extend(self.data_files(kind, &dir)?);
        }
        files.sort();
        Ok(files)
    }

    /// The data files of one partition folder of `kind`, as [`Store::files`] reads them.
    fn data_files(&self, kind: &str, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut here = Vec::new();
        for e in fs::read_dir(dir).map_err(io(dir))? {
            let p = e.map_err(io(dir))?.path();
            let is_data = p.extension().is_some_and(|x| x == "parquet")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && !(kind == "rejects" && self.is_orphan_reject(&p));
            if is_data {
                here.push(p);
            }
        }
        Ok(not_covered(here))
    }

    fn scan(
        &self,
        kind: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Option<LazyFrame>, StoreError> {
        let files = self.files(kind, from, to)?;
        if files.is_empty() {
            return Ok(None);
        }
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|p| PlRefPath::try_from_path(p))
            .collect::<PolarsResult<_>>()
            .map_err(pl(&self.root))?;
        let args = scan_args(kind);
        LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
            .map(Some)
            .map_err(pl(&self.root))
    }

    /// Lazily scan the offers of dates `from..=to` (all dates when `None`).
    pub fn scan_offers(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Option<LazyFrame>, StoreError> {
        self.scan("offers", from, to)
    }

    /// Lazily scan the rejects of dates `from..=to`.
    pub fn scan_rejects(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Option<LazyFrame>, StoreError> {
        self.scan("rejects", from, to)
    }

    pub(crate) fn fx_path(&self) -> PathBuf {
        self.root.join("fx").join("ecb.parquet")
    }

    /// Every stored ECB rate.
    pub fn fx_rates(&self) -> Result<Vec<FxRate>, StoreError> {
        let path = self.fx_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let f = File::open(&path).map_err(io(&path))?;
        let df = ParquetReader::new(f).finish().map_err(pl(&path))?;
        let dates = df
            .column("date")
            .and_then(|c| c.cast(&DataType::Int32))
            .map_err(pl(&path))?;
        let dates = dates.i32().map_err(pl(&path))?;
        let cur = df
            .column("currency")
            .map_err(pl(&path))?
            .str()
            .map_err(pl(&path))?
            .clone();
        let rate = df
            .column("units_per_eur")
            .map_err(pl(&path))?
            .f64()
            .map_err(pl(&path))?
            .clone();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        Ok(dates
            .iter()
            .zip(cur.iter())
            .zip(rate.iter())
            .filter_map(|((d, c), r)| {
                Some(FxRate {
                    date: epoch + chrono::Days::new(d? as u64),
                    currency: c?.to_string(),
                    units_per_eur: r?,
                })
            })
            .collect())
    }

    /// Merge new ECB rates into the stored table (a newer value for the same date and
    /// currency replaces the old one). Returns how many (date, currency) pairs are new.
    pub fn merge_fx(&self, new: &[FxRate]) -> Result<usize, StoreError> {
        let mut all: std::collections::BTreeMap<(NaiveDate, String), f64> = self
            .fx_rates()?
            .into_iter()
            .map(|r| ((r.date, r.currency), r.units_per_eur))
            .collect();
        let before = all.len();
        for r in new {
            all.insert((r.date, r.currency.clone()), r.units_per_eur);
        }
        let added = all.len() - before;
        let path = self.fx_path();
        let mut df = DataFrame::new_infer_height(vec![
            Column::new(
                "date".into(),
                all.keys()
                    .map(|k| crate::week::epoch_days(k.0))
                    .collect::<Vec<i32>>(),
            ),
            Column::new(
                "currency".into(),
                all.keys().map(|k| k.1.clone()).collect::<Vec<String>>(),
            ),
            Column::new(
                "units_per_eur".into(),
                all.values().copied().collect::<Vec<f64>>(),
            ),
        ])
        .and_then(|df| {
            df.lazy()
                .with_column(col("date").cast(DataType::Date))
                .collect()
        })
        .map_err(pl(&path))?;
        write_parquet_via(&self.tmp_dir(), &path, &mut df)?;
        Ok(added)
    }

    /// Record a run (ingest, report, backfill) as JSON under `runs/`: one of the
    /// [`records`] structs, its kind in the file name and in the record
    /// ([`records::to_json`]).
    pub fn write_run_record<R: records::RunRecord>(
        &self,
        at: DateTime<Utc>,
        record: &R,
    ) -> Result<PathBuf, StoreError> {
        let path = self.root.join("runs").join(format!(
            "{}{:03}-{}.json",
            at.format("%Y%m%dT%H%M%S"),
            at.nanosecond() / 1_000_000,
            R::KIND
        ));
        let text = records::to_json(record);
        write_atomic_via(&self.tmp_dir(), &path, &text)?;
        Ok(path)
    }

    /// Replace the offers and rejects trees with freshly built ones, as one
    /// [`fsutil::swap_dirs`] job: the new trees are built by `build` into a staging
    /// store under `.tmp/`; a crash before the swap commits keeps the old trees, one
    /// after it finishes at the next lock.
    pub fn replace_normalised<T>(
        &self,
        build: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let job = self.tmp_dir().join("swap-renormalise");
        if job.exists() {
            fs::remove_dir_all(&job).map_err(io(&job))?;
        }
        let stage = Store::open(job.join("stage"));
        let out = match build(&stage) {
            Ok(out) => out,
            Err(e) => {
                let _ = fs::remove_dir_all(&job);
                return Err(e);
            }
        };
        let targets: Vec<(PathBuf, PathBuf)> = ["offers", "rejects"]
            .iter()
            .map(|kind| (self.root.join(kind), stage.root.join(kind)))
            .collect();
        fsutil::swap_dirs(&job, &targets)?;
        Ok(out)
    }

    /// Every (feed, hour) with stored offers: hourly files and compacted days' hours.
    pub fn stored_runs(&self) -> Result<BTreeSet<(String, DateTime<Utc>)>, StoreError> {
        let mut out = BTreeSet::new();
        for (date, dir) in self.partitions("offers")? {
            for (feed, (_, mask)) in self.partition_files(&dir)? {
                let midnight = date.and_time(chrono::NaiveTime::MIN).and_utc();
                out.extend(
                    (0..24)
                        .filter(|h| mask & (1 << h) != 0)
                        .map(|h| (feed.clone(), midnight + chrono::Duration::hours(h))),
                );
            }
        }
        Ok(out)
    }

    /// Copy one stored run (feed, hour) into `to`, unchanged: the hourly files as they
    /// are, or the hour's rows of a compacted day.
    pub fn copy_run(&self, to: &Store, feed: &str, at: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut offers = 0;
        for kind in ["offers", "rejects"] {
            let hourly = self.file(kind, feed, at);
            let mut df = if hourly.exists() {
                let f = File::open(&hourly).map_err(io(&hourly))?;
                ParquetReader::new(f).finish().map_err(pl(&hourly))?
            } else {
                let Some(daily) = self.day_file(kind, feed, at) else {
                    continue;
                };
                let (from, to_t) = (at.timestamp_millis(), at.timestamp_millis() + 3_600_000);
                let t = col("observed_at").cast(DataType::Int64);
                // The stored columns only: no `date` from the folder name.
                LazyFrame::scan_parquet(
                    PlRefPath::try_from_path(&daily).map_err(pl(&daily))?,
                    scan_args(kind),
                )
                .map(|lf| lf.filter(t.clone().gt_eq(lit(from)).and(t.lt(lit(to_t)))))
                // A day's offers are sorted by model: put the hour back in stored order.
                .map(|lf| match kind {
                    "offers" => lf.sort(crate::normalise::ROW_ORDER, Default::default()),
                    _ => lf,
                })
                .and_then(|lf| lf.collect())
                .map_err(pl(&daily))?
            };
            if kind == "offers" {
                offers = df.height();
            } else if df.height() == 0 {
                continue;
            }
            write_parquet_via(&to.tmp_dir(), &to.file(kind, feed, at), &mut df)?;
        }
        Ok(offers)
    }
}

/// Migrate a compacted day of an older layout (`<feed>__<YYYYMMDD>.parquet` beside a
/// `<feed>.hours.txt` list, which Spark and Trino would try to read as Parquet) to the
/// masked name. The rename comes first, so a crash in between leaves a list whose day
/// file is already renamed, and the next lock only deletes it.
fn migrate_hours_list(
    dir: &Path,
    feed: &str,
    date: NaiveDate,
    list: &Path,
) -> Result<(), StoreError> {
    let old = dir.join(format!("{feed}__{}.parquet", date.format("%Y%m%d")));
    if old.exists() {
        let text = fs::read_to_string(list).map_err(io(list))?;
        let mask = text
            .lines()
            .filter_map(|l| l.split_once('T')?.1.parse::<u32>().ok())
            .filter(|h| *h < 24)
            .fold(0u32, |m, h| m | 1 << h);
        let new = dir.join(day_file_name(feed, date, mask));
        fs::rename(&old, &new).map_err(io(&old))?;
        fsutil::sync_dir(dir);
    }
    fs::remove_file(list).map_err(io(list))
}

/// What a data file in a partition holds, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataFile {
    /// `<feed>__<YYYYMMDDTHH>.parquet`: one hour.
    Hour(u32),
    /// `<feed>__<YYYYMMDD>-<mask>.parquet`: a compacted day, bit h set for hour h.
    Day(u32),
}

impl DataFile {
    fn mask(self) -> u32 {
        match self {
            DataFile::Hour(h) => 1 << h,
            DataFile::Day(m) => m,
        }
    }
}

/// A partition's data files without the hourly files whose hour a day file of the
/// same feed holds. Both exist while a bucket is being compacted (the day object is
/// created before the hourly objects are deleted) and in a cache that pulled the day
/// after its hours: each hour is then read once, from the day file.
/// Likewise a day file whose hours another day file of the feed holds with more (two
/// compactions of one day that saw different hours).
pub(crate) fn not_covered(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut days: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for p in &files {
        if let Some((feed, DataFile::Day(m))) = name(p).as_deref().and_then(parse_data_name) {
            days.entry(feed.to_string()).or_default().push(m);
        }
    }
    let covered = |feed: &str, file: DataFile| {
        let masks = days.get(feed).map(Vec::as_slice).unwrap_or_default();
        match file {
            DataFile::Hour(h) => masks.iter().any(|m| m & (1 << h) != 0),
            DataFile::Day(d) => masks.iter().any(|&m| m != d && m & d == d),
        }
    };
    files
        .into_iter()
        .filter(|p| {
            name(p)
                .as_deref()
                .and_then(parse_data_name)
                .is_none_or(|(feed, file)| !covered(feed, file))
        })
        .collect()
}

/// The name of a compacted day file holding the hours in `mask`.
fn day_file_name(feed: &str, date: NaiveDate, mask: u32) -> String {
    format!("{feed}__{}-{mask:06x}.parquet", date.format("%Y%m%d"))
}

/// The feed and hours of a data file name; `None` for anything else.
fn parse_data_name(name: &str) -> Option<(&str, DataFile)> {
    let (feed, rest) = name.strip_suffix(".parquet")?.split_once("__")?;
    if let Some((day, hour)) = rest.split_once('T') {
        let h: u32 = hour.parse().ok().filter(|h| *h < 24)?;
        (day.len() == 8 && hour.len() == 2).then_some((feed, DataFile::Hour(h)))
    } else {
        let (day, mask) = rest.split_once('-')?;
        let m = u32::from_str_radix(mask, 16)
            .ok()
            .filter(|m| *m < 1 << 24)?;
        (day.len() == 8 && mask.len() == 6).then_some((feed, DataFile::Day(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Option<(&str, DataFile)>) {
        assert_eq!(parse_data_name(name), expected, "{name}");
    }

    #[test]
    fn store_locations() {
        let check = |s: &str, expected: Option<Location>| {
            assert_eq!(parse_location(s).ok(), expected, "{s}");
        };
        let local = |p: &str| Some(Location::Local(PathBuf::from(p)));
        let s3 = |b: &str, p: &str| {
            Some(Location::S3 {
                bucket: b.into(),
                prefix: p.into(),
            })
        };
        check("data", local("data"));
        check("/srv/gpurent/data", local("/srv/gpurent/data"));
        check("file:///srv/data", local("/srv/data"));
        check("./odd://name", local("./odd://name"));
        check("s3://gpurent/history", s3("gpurent", "history"));
        check("s3a://gpurent/a/b/", s3("gpurent", "a/b"));
        check("s3://", None);
        check("gs://b/h", None);
        check("https://example.com/x", None);
    }

    #[test]
    fn hours_a_day_file_holds_are_read_from_it_only() {
        let check = |names: &[&str], expected: &[&str]| {
            let got = not_covered(names.iter().map(PathBuf::from).collect());
            let got: Vec<_> = got.iter().map(|p| p.to_str().unwrap()).collect();
            assert_eq!(got, expected, "{names:?}");
        };
        let (h0, h1, h5) = (
            "vast__20241007T00.parquet",
            "vast__20241007T01.parquet",
            "vast__20241007T05.parquet",
        );
        let day01 = "vast__20241007-000003.parquet";
        check(&[h0, h1, h5], &[h0, h1, h5]);
        check(&[h0, h1, h5, day01], &[h5, day01]);
        check(
            &[day01, "aws__20241007T00.parquet"],
            &[day01, "aws__20241007T00.parquet"],
        );
        let day015 = "vast__20241007-000023.parquet";
        check(&[h5, day01, day015], &[day015]);
    }

    #[test]
    fn data_file_names() {
        check(
            "vast__20241007T05.parquet",
            Some(("vast", DataFile::Hour(5))),
        );
        check(
            "vast__20241007-000007.parquet",
            Some(("vast", DataFile::Day(7))),
        );
        check(
            "vast__20241007-ffffff.parquet",
            Some(("vast", DataFile::Day(0xff_ffff))),
        );
        check("vast__20241007T24.parquet", None);
        check("vast__20241007-1000000.parquet", None);
        check("vast__20241007.parquet", None);
        check("vast.hours.txt", None);
        check(".tmp-vast__20241007T05.parquet.x", None);
        let d = NaiveDate::from_ymd_opt(2024, 10, 7).unwrap();
        assert_eq!(
            day_file_name("vast", d, 0b101),
            "vast__20241007-000005.parquet"
        );
    }

    /// A compacted day of the older layout (a `.hours.txt` list beside the data) is
    /// renamed under the lock, keeps its hours, and leaves only Parquet files.
    #[test]
    fn legacy_hours_lists_are_migrated_at_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let part = tmp.path().join("offers/date=2024-10-07");
        fs::create_dir_all(&part).unwrap();
        fs::write(part.join("vast__20241007.parquet"), b"PAR1").unwrap();
        fs::write(part.join("vast.hours.txt"), "20241007T00\n20241007T05\n").unwrap();
        let at = |h: u32| {
            NaiveDate::from_ymd_opt(2024, 10, 7)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
        };
        drop(store.lock().unwrap());
        let mut names: Vec<String> = fs::read_dir(&part)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["vast__20241007-000021.parquet"]);
        assert!(store.has_run("vast", at(0)) && store.has_run("vast", at(5)));
        assert!(!store.has_run("vast", at(1)));
        let runs: Vec<_> = store.stored_runs().unwrap().into_iter().collect();
        assert_eq!(
            runs,
            [("vast".to_string(), at(0)), ("vast".to_string(), at(5))]
        );
    }

    /// Model runs (lengths, in sorted order) -> the row groups a day's offers get.
    fn check_groups(runs: &[usize], expected: &[(usize, usize)]) {
        let models: Vec<String> = runs
            .iter()
            .enumerate()
            .flat_map(|(i, n)| std::iter::repeat_n(format!("M{i:02}"), *n))
            .collect();
        let df =
            DataFrame::new_infer_height(vec![Column::new("gpu_model".into(), models)]).unwrap();
        assert_eq!(model_groups(&df).unwrap(), expected, "{runs:?}");
    }

    #[test]
    fn day_row_groups_end_at_model_boundaries() {
        let (min, max) = DAY_GROUP_ROWS;
        check_groups(&[], &[]);
        check_groups(&[5], &[(0, 5)]);
        check_groups(&[10_000, 10_000, 10_000], &[(0, 20_000), (20_000, 10_000)]);
        check_groups(&[min, 3], &[(0, min), (min, 3)]);
        check_groups(&[min - 1, 1, 2], &[(0, min), (min, 2)]);
        check_groups(
            &[300_000],
            &[(0, 100_000), (100_000, 100_000), (200_000, 100_000)],
        );
        check_groups(&[1, max + 1], &[(0, 65_537), (65_537, 65_537)]);
    }

    /// A day's offers come back sorted by model, then time, each hour's rows in their
    /// stored order, in the row groups `model_groups` gives.
    #[test]
    fn day_offers_are_sorted_by_model_in_their_groups() {
        let dir = tempfile::tempdir().unwrap();
        let n = 40_000usize;
        let model = |i: usize| ["B", "A", "C"][i % 3].to_string();
        let df = DataFrame::new_infer_height(vec![
            Column::new("gpu_model".into(), (0..n).map(model).collect::<Vec<_>>()),
            Column::new(
                "observed_at".into(),
                (0..n).map(|i| (i / 1000) as i64).collect::<Vec<_>>(),
            ),
            Column::new("seq".into(), (0..n as u32).collect::<Vec<_>>()),
        ])
        .unwrap();
        let path = dir.path().join("day.parquet");
        write_day_offers(&dir.path().join(".tmp"), &path, &df).unwrap();
        let mut reader = ParquetReader::new(File::open(&path).unwrap());
        let groups: Vec<usize> = reader
            .get_metadata()
            .unwrap()
            .row_groups
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let back = reader.finish().unwrap();
        let col = |name| back.column(name).unwrap().clone();
        let models: Vec<String> = col("gpu_model")
            .str()
            .unwrap()
            .iter()
            .map(|m| m.unwrap().to_string())
            .collect();
        let seq: Vec<u32> = col("seq").u32().unwrap().into_no_null_iter().collect();
        let mut expected: Vec<u32> = (0..n as u32).collect();
        expected.sort_by_key(|i| (model(*i as usize), *i / 1000));
        assert_eq!(seq, expected, "model, then time, stable within an hour");
        assert_eq!(models.first().map(String::as_str), Some("A"));
        assert_eq!(groups, [26_667, 13_333], "A and B together, then C");

        // A day without offers (its hours' files were empty) is a readable empty file.
        write_day_offers(&dir.path().join(".tmp"), &path, &df.clear()).unwrap();
        let back = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        assert_eq!((back.height(), back.schema()), (0, df.schema()));
    }
}
