//! The append-only history: Parquet partitioned by date, raw payloads, FX rates, runs.
//!
//! Layout (only this module knows it):
//! ```text
//! <store>/offers/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>.parquet   normalised offers
//! <store>/offers/date=YYYY-MM-DD/<feed>__<YYYYMMDD>.parquet     a compacted day, with
//! <store>/offers/date=YYYY-MM-DD/<feed>.hours.txt                the hours it holds
//! <store>/rejects/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>.parquet  rejected offers + reason
//! <store>/raw/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>/             feed.toml, meta.json, page-NNN.gz
//! <store>/fx/ecb.parquet                                          ECB rates (date, currency, units_per_eur)
//! <store>/runs/<YYYYMMDDTHHMMSS>-<kind>.json                       one record per run
//! <store>/.lock                                                   held by the writer
//! ```
//! Invariants: one file per feed and hour, never overwritten (except by FX healing,
//! which rebuilds an hour from its own raw payload), so re-ingesting an hour
//! adds nothing (the offers file, written last and even when empty, marks the run);
//! every file is written to a temporary name, synced and renamed, so a crash leaves
//! the whole file or none; readers scan lazily and only the dates asked for.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use polars::prelude::*;

use crate::adapters::Page;
use crate::error::StoreError;
use crate::fsutil::{tmp_name, write_atomic};
use crate::model::FxRate;

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// The hour a feed run is stored under.
pub fn hour_key(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H").to_string()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pl(path: &Path) -> impl FnOnce(PolarsError) -> StoreError + '_ {
    move |source| StoreError::Polars {
        path: path.to_path_buf(),
        source,
    }
}

/// Write a frame as Parquet (zstd) atomically.
pub fn write_parquet_atomic(path: &Path, df: &mut DataFrame) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(pl(path))?;
    write_atomic(path, &buf)
}

/// Scan options for one kind of file. Offers are read against the current offer
/// schema, so files written before a column was added (e.g. `peer`) read as null in
/// that column, whatever order the files come in.
fn scan_args(kind: &str) -> ScanArgsParquet {
    ScanArgsParquet {
        allow_missing_columns: true,
        schema: (kind == "offers").then(crate::normalise::offer_schema),
        ..Default::default()
    }
}

/// Holds the store's writer lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Take the writer lock, or fail at once if another process holds it.
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
        match f.try_lock() {
            Ok(()) => {
                let _ = f.set_len(0);
                let _ = write!(f, "{}", std::process::id());
                Ok(StoreLock { _file: f })
            }
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                path: self.root.clone(),
                holder: fs::read_to_string(&path).unwrap_or_default(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
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
        // The offers file is written last, so it marks a complete run.
        if self.file("offers", feed, at).exists() {
            return true;
        }
        // A compacted day lists the hours it holds.
        let key = hour_key(at);
        ["offers", "rejects"].iter().any(|kind| {
            std::fs::read_to_string(
                self.partition(kind, at.date_naive())
                    .join(format!("{feed}.hours.txt")),
            )
            .is_ok_and(|t| t.lines().any(|l| l == key))
        })
    }

    /// Merge each feed's hourly files of one date into one file per feed and kind
    /// (`<feed>__<YYYYMMDD>.parquet`, rows sorted by time) and record the merged hours
    /// in `<feed>.hours.txt`, so re-ingesting such an hour still adds nothing. The new
    /// partition is built aside and swapped in by rename. Returns files before/after.
    /// The caller holds the store lock.
    pub fn compact(&self, date: NaiveDate) -> Result<(usize, usize), StoreError> {
        let (mut before, mut after) = (0, 0);
        for kind in ["offers", "rejects"] {
            let dir = self.partition(kind, date);
            if !dir.is_dir() {
                continue;
            }
            let mut by_feed: std::collections::BTreeMap<
                String,
                (Vec<PathBuf>, std::collections::BTreeSet<String>),
            > = Default::default();
            for e in fs::read_dir(&dir).map_err(io(&dir))? {
                let p = e.map_err(io(&dir))?.path();
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') {
                    continue;
                }
                if let Some(feed) = name.strip_suffix(".hours.txt") {
                    let text = fs::read_to_string(&p).map_err(io(&p))?;
                    by_feed
                        .entry(feed.to_string())
                        .or_default()
                        .1
                        .extend(text.lines().map(str::to_string));
                } else if let Some((feed, rest)) = name.split_once("__") {
                    let stem = rest.trim_end_matches(".parquet");
                    let entry = by_feed.entry(feed.to_string()).or_default();
                    if stem.contains('T') {
                        entry.1.insert(stem.to_string());
                    }
                    entry.0.push(p);
                }
            }
            let files: usize = by_feed.values().map(|v| v.0.len()).sum();
            before += files;
            if by_feed.values().all(|v| v.0.len() <= 1) {
                after += files;
                continue;
            }
            let stage = dir.with_file_name(format!(".date={date}.compact-{}", std::process::id()));
            if stage.exists() {
                fs::remove_dir_all(&stage).map_err(io(&stage))?;
            }
            let res = (|| -> Result<(), StoreError> {
                fs::create_dir_all(&stage).map_err(io(&stage))?;
                for (feed, (mut files, hours)) in by_feed {
                    files.sort();
                    let paths: Vec<PlRefPath> = files
                        .iter()
                        .map(|p| PlRefPath::try_from_path(p))
                        .collect::<PolarsResult<_>>()
                        .map_err(pl(&dir))?;
                    let args = scan_args(kind);
                    let mut df = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)
                        .and_then(|lf| {
                            lf.sort(
                                ["observed_at"],
                                SortMultipleOptions::default().with_maintain_order(true),
                            )
                            .collect()
                        })
                        .map_err(pl(&dir))?;
                    let out = stage.join(format!("{feed}__{}.parquet", date.format("%Y%m%d")));
                    write_parquet_atomic(&out, &mut df)?;
                    let list: Vec<String> = hours.into_iter().collect();
                    write_atomic(
                        &stage.join(format!("{feed}.hours.txt")),
                        (list.join("\n") + "\n").as_bytes(),
                    )?;
                    after += 1;
                }
                Ok(())
            })();
            if let Err(e) = res {
                let _ = fs::remove_dir_all(&stage);
                return Err(e);
            }
            let old = dir.with_file_name(format!(".date={date}.old-{}", std::process::id()));
            fs::rename(&dir, &old).map_err(io(&dir))?;
            fs::rename(&stage, &dir).map_err(io(&dir))?;
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok((before, after))
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
        if self.has_run(feed, at) {
            return Ok(false);
        }
        // Rejects first, offers last (even with no rows): the offers file marks the run
        // complete, so a crash between the two leaves an hour that a re-run redoes
        // whole (the rejects file is replaced by rename), never one that is half kept.
        if rejects.height() > 0 {
            write_parquet_atomic(&self.file("rejects", feed, at), rejects)?;
        }
        write_parquet_atomic(&self.file("offers", feed, at), offers)?;
        Ok(true)
    }

    /// Offers stored by one feed run, `None` when its hour is not a file of its own
    /// (not stored, or merged into a compacted day).
    pub fn run_offer_count(
        &self,
        feed: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let path = self.file("offers", feed, at);
        if !path.exists() {
            return Ok(None);
        }
        let f = File::open(&path).map_err(io(&path))?;
        let mut r = ParquetReader::new(f);
        let n = r.num_rows().map_err(pl(&path))?;
        Ok(Some(n))
    }

    /// Replace one stored run's offers and rejects (FX healing: the same raw payload
    /// normalised with rates that arrived later). Each file is replaced by rename;
    /// offers first, so a crash in between never counts an offer twice.
    pub fn rewrite_run(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        offers: &mut DataFrame,
        rejects: &mut DataFrame,
    ) -> Result<(), StoreError> {
        write_parquet_atomic(&self.file("offers", feed, at), offers)?;
        let rj = self.file("rejects", feed, at);
        if rejects.height() > 0 {
            write_parquet_atomic(&rj, rejects)
        } else if rj.exists() {
            fs::remove_file(&rj).map_err(io(&rj))
        } else {
            Ok(())
        }
    }

    /// Keep a run's raw payload pages (gzip) and the feed file, for re-normalisation.
    pub fn write_raw(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        feed_text: &str,
        meta: &serde_json::Value,
        pages: &[Page],
    ) -> Result<(), StoreError> {
        let dir = self
            .partition("raw", at.date_naive())
            .join(format!("{feed}__{}", hour_key(at)));
        if dir.exists() {
            return Ok(());
        }
        let parent = dir.parent().expect("raw dir has a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = tmp_name(&dir);
        let res = (|| -> Result<(), StoreError> {
            fs::create_dir_all(&tmp).map_err(io(&tmp))?;
            write_atomic(&tmp.join("feed.toml"), feed_text.as_bytes())?;
            let meta_text = serde_json::to_vec_pretty(meta).expect("JSON value serialises");
            write_atomic(&tmp.join("meta.json"), &meta_text)?;
            for (i, p) in pages.iter().enumerate() {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&p.body).map_err(io(&tmp))?;
                let gz = enc.finish().map_err(io(&tmp))?;
                write_atomic(&tmp.join(format!("page-{i:03}.gz")), &gz)?;
                if !p.label.is_empty() {
                    write_atomic(&tmp.join(format!("page-{i:03}.label")), p.label.as_bytes())?;
                }
            }
            fs::rename(&tmp, &dir).map_err(io(&dir))
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res
    }

    /// Every kept raw run: (feed, observation hour, directory), sorted.
    pub fn raw_runs(&self) -> Result<Vec<RawRun>, StoreError> {
        let mut out = Vec::new();
        for (_, dir) in self.partitions("raw")? {
            for e in fs::read_dir(&dir).map_err(io(&dir))? {
                let p = e.map_err(io(&dir))?.path();
                let name = p
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') {
                    continue;
                }
                if let Some((feed, hour)) = name.rsplit_once("__") {
                    if let Ok(at) = chrono::NaiveDateTime::parse_from_str(
                        &format!("{hour}0000"),
                        "%Y%m%dT%H%M%S",
                    ) {
                        out.push(RawRun {
                            feed: feed.to_string(),
                            at: at.and_utc(),
                            dir: p.clone(),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| (a.at, &a.feed).cmp(&(b.at, &b.feed)));
        Ok(out)
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

    /// Dates that hold offers, sorted.
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
            for e in fs::read_dir(&dir).map_err(io(&dir))? {
                let p = e.map_err(io(&dir))?.path();
                let is_data = p.extension().is_some_and(|x| x == "parquet")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if is_data {
                    files.push(p);
                }
            }
        }
        files.sort();
        Ok(files)
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

    fn fx_path(&self) -> PathBuf {
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
                    .map(|k| crate::normalise::days(k.0))
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
        write_parquet_atomic(&path, &mut df)?;
        Ok(added)
    }

    /// Record a run (ingest, report, backfill) as JSON under `runs/`.
    pub fn write_run_record(
        &self,
        at: DateTime<Utc>,
        kind: &str,
        record: &serde_json::Value,
    ) -> Result<PathBuf, StoreError> {
        let path = self.root.join("runs").join(format!(
            "{}{:03}-{kind}.json",
            at.format("%Y%m%dT%H%M%S"),
            at.nanosecond() / 1_000_000
        ));
        let text = serde_json::to_vec_pretty(record).expect("JSON value serialises");
        write_atomic(&path, &text)?;
        Ok(path)
    }

    /// Replace the offers and rejects trees with freshly built ones, atomically per tree:
    /// the new tree is built aside by `build` and swapped in by rename.
    pub fn replace_normalised(
        &self,
        build: impl FnOnce(&Store) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let staging = self
            .root
            .join(format!(".renormalise-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        let stage = Store::open(&staging);
        if let Err(e) = build(&stage) {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        for kind in ["offers", "rejects"] {
            let live = self.root.join(kind);
            let old = self
                .root
                .join(format!(".old-{kind}-{}", std::process::id()));
            let new = staging.join(kind);
            if live.exists() {
                fs::rename(&live, &old).map_err(io(&live))?;
            }
            if new.exists() {
                fs::rename(&new, &live).map_err(io(&live))?;
            }
            if old.exists() {
                fs::remove_dir_all(&old).map_err(io(&old))?;
            }
        }
        let _ = fs::remove_dir_all(&staging);
        Ok(())
    }
}

/// A kept raw run.
#[derive(Debug, Clone)]
pub struct RawRun {
    pub feed: String,
    pub at: DateTime<Utc>,
    pub dir: PathBuf,
}

impl RawRun {
    /// The kept feed file text and pages.
    pub fn load(&self) -> Result<(String, Vec<Page>), StoreError> {
        use std::io::Read;
        let feed_text = fs::read_to_string(self.dir.join("feed.toml")).map_err(io(&self.dir))?;
        let mut pages = Vec::new();
        for i in 0.. {
            let p = self.dir.join(format!("page-{i:03}.gz"));
            if !p.exists() {
                break;
            }
            let gz = fs::read(&p).map_err(io(&p))?;
            let mut body = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut body)
                .map_err(io(&p))?;
            let label =
                fs::read_to_string(self.dir.join(format!("page-{i:03}.label"))).unwrap_or_default();
            pages.push(Page { label, body });
        }
        Ok((feed_text, pages))
    }
}
