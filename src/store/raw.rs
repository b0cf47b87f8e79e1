//! Raw payloads: what `renormalise` and FX healing rebuild every stored hour from,
//! each distinct page body kept once.
//!
//! Layout:
//! ```text
//! <store>/raw/blobs/<2 hex>/<sha256>.gz                 one distinct page body, gzipped,
//!                                                        named by the SHA-256 of the body
//! <store>/raw/date=YYYY-MM-DD/<feed>__<YYYYMMDDTHH>.json the hour: its pages as `blobs`
//!                                                        (hash, label), the feed file as
//!                                                        `feed_toml`, and the run's meta
//! <store>/raw/date=YYYY-MM-DD/<feed>__day.json           after `compact`: the feed's hours
//!                                                        of that date ([`super::rawday`])
//! <store>/failed/date=YYYY-MM-DD/<feed>__<hour>__<n>/    feed.toml, meta.json, page-NNN.gz
//! ```
//! A store written before blobs keeps each hour as a folder `<feed>__<YYYYMMDDTHH>/`
//! (`feed.toml`, `meta.json`, `page-NNN.gz`, `page-NNN.label`); such hours are read as
//! they are, and an hour that has both is read from its `.json`; an hour's `.json`
//! also wins over its entry in a day file (an hour stored again after the merge).
//!
//! Invariants: a payload seen by many hours (a list price unchanged for a month) is
//! kept once, and an hour costs one small file (one entry of a day file once
//! compacted); a blob is written (temporary file in `.tmp/`, fsync, rename) before
//! the hour that refers to it, and so is the hour's file, so a crash leaves at most
//! a blob nobody refers to, never a reference without its blob (`compact`, under the
//! lock, removes such blobs: [`Store::remove_unnamed_blobs`]); a blob is read only
//! if its content still hashes to its name (else an error naming the file), and the
//! next payload with that content writes it again.
//! The hour's file keeps what the server said of the payload (`etag`,
//! `last_modified`) and the version a version index named for it (`version`, AWS's
//! `currentVersionUrl`), each left out when unknown; [`Store::last_payload`] reads
//! them for a conditional GET or a version comparison.
//! `failed/` keeps its pages in full (diagnosis only).
//!
//! A blob is first written as a gzip of stored blocks, marked in its header; `compact`
//! (and a push to a bucket) deflates it later under the same name
//! ([`crate::store::deflate`]). Readers read either encoding alike.
//!
//! A spooled page (its body a gzip file in the run's spool folder under `.tmp/`,
//! [`crate::model::Spooled`]) is adopted as its blob by a rename, its hash and the
//! fsync done when it was spooled: no second compression, no read into memory; it
//! replaces a blob kept under that hash without reading it (the spool is intact by
//! construction). A page body in memory reuses an existing blob only after
//! streaming it through the hash. [`RawRun::load`]
//! reads bodies into memory; [`RawRun::load_for`] names the checked blobs instead
//! for a format read as a stream (never its whole body in memory), the format
//! known from the feed file, which [`RawRun::feed_text`] reads alone.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::model::{Page, Spooled, Validators};
use crate::store::fsutil::{self, io, write_atomic_via};
use crate::store::{hour_key, rawday, Store};

/// A kept raw run.
#[derive(Debug, Clone)]
pub struct RawRun {
    pub feed: String,
    pub at: DateTime<Utc>,
    /// The hour's `.json`, the day file it was merged into, or the folder of an hour
    /// written before blobs.
    pub path: PathBuf,
    /// `<store>/raw/blobs`.
    blobs: PathBuf,
    /// The hour as the day file at `path` holds it, read when the folder was listed:
    /// its feed file (shared by the day's hours with the same) and the rest.
    merged: Option<(Arc<str>, Arc<Hour>)>,
}

/// A feed's latest kept payload, which a conditional GET can ask the server about.
#[derive(Debug, Clone)]
pub struct LastPayload {
    pub run: RawRun,
    pub validators: Validators,
}

/// A payload's pages kept as blobs and not yet named by an hour
/// ([`Store::put_pages`], then [`Store::write_raw_hour`]).
pub struct KeptPages(Vec<BlobRef>);

/// What [`Store::remove_unnamed_blobs`] removed: blobs and their bytes on disk.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Swept {
    pub blobs: usize,
    pub bytes: u64,
}

/// One page of an hour, as `meta.json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BlobRef {
    sha256: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    label: String,
}

/// What the store reads back from an hour's `.json`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Hour {
    feed_toml: String,
    blobs: Vec<BlobRef>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    /// The version a version index named (absent in older hours, and for feeds
    /// without an index).
    #[serde(default)]
    version: Option<String>,
}

/// The name a page body is kept under: its SHA-256, lower-case hex.
pub fn content_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `YYYYMMDDTHH` as the hour it names.
pub(crate) fn parse_hour(s: &str) -> Option<DateTime<Utc>> {
    let at = chrono::NaiveDateTime::parse_from_str(&format!("{s}0000"), "%Y%m%dT%H%M%S").ok()?;
    (s.len() == 11).then(|| at.and_utc())
}

/// `body` through the gzip encoder `enc` into memory: a blob as first written
/// (`deflate::stored_gz`, stored blocks, marked) or a `failed/` page (fast level).
fn gzip(
    mut enc: flate2::write::GzEncoder<Vec<u8>>,
    body: &[u8],
    path: &Path,
) -> Result<Vec<u8>, StoreError> {
    enc.write_all(body).map_err(io(path))?;
    enc.finish().map_err(io(path))
}

/// The fast-level encoder `failed/` pages are written with.
fn fast_gz() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

fn gunzip(path: &Path) -> Result<Vec<u8>, StoreError> {
    let gz = fs::read(path).map_err(io(path))?;
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut body)
        .map_err(io(path))?;
    Ok(body)
}

/// The SHA-256 and length of the plain body of the gzip file at `path`, read as a
/// stream.
pub fn hash_gz(path: &Path) -> std::io::Result<(String, u64)> {
    let mut sha = Sha256::new();
    let mut gz = flate2::read::GzDecoder::new(std::io::BufReader::new(fs::File::open(path)?));
    let len = std::io::copy(&mut gz, &mut sha)?;
    Ok((hex::encode(sha.finalize()), len))
}

/// `found`, the hash of the blob at `path`, when it is the blob's name `sha`.
pub(super) fn check(path: &Path, sha: &str, found: String) -> Result<String, StoreError> {
    if found != sha {
        return Err(StoreError::BlobDamaged {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(found)
}

/// The blob at `path` as a page labelled `label`, checked against its name `sha`:
/// with `spooled`, a spooled body naming the blob (streamed through the hash), else
/// the body read into memory.
fn blob_page(path: &Path, sha: &str, label: &str, spooled: bool) -> Result<Page, StoreError> {
    if !spooled {
        let body = gunzip(path)?;
        check(path, sha, content_hash(&body))?;
        return Ok(Page::new(label, body));
    }
    let (found, len) = hash_gz(path).map_err(io(path))?;
    let spool = Spooled {
        path: path.to_path_buf(),
        sha256: check(path, sha, found)?,
        len,
        origin: None,
    };
    Ok(Page {
        label: label.to_string(),
        body: Vec::new(),
        spool: Some(spool),
    })
}

/// An hour's `.json`.
pub(super) fn read_hour(path: &Path) -> Result<Hour, StoreError> {
    read_json(path)
}

/// The JSON file at `path` (an hour's, a day file) as a `T`.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(raw_meta(path))
}

/// The error of a raw JSON file at `path` that does not read as it should.
pub(super) fn raw_meta(path: &Path) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |source| StoreError::RawMeta {
        path: path.to_path_buf(),
        source,
    }
}

/// What a name in a raw date folder stands for.
pub(super) enum RawName<'a> {
    /// `<feed>__<YYYYMMDDTHH>.json` (`json`), or an older store's hour folder.
    Hour {
        feed: &'a str,
        at: DateTime<Utc>,
        json: bool,
    },
    /// `<feed>__day.json`, the feed's merged hours ([`super::rawday`]).
    Day { feed: &'a str },
}

/// What `name` stands for in a raw date folder; `None` for a temporary (dot) file or
/// a name of neither form. Whether a non-`.json` name is a folder is the caller's.
pub(super) fn raw_name(name: &str) -> Option<RawName<'_>> {
    if name.starts_with('.') {
        return None;
    }
    let (stem, json) = match name.strip_suffix(".json") {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    let (feed, h) = stem.rsplit_once("__")?;
    if json && h == rawday::DAY {
        return Some(RawName::Day { feed });
    }
    Some(RawName::Hour {
        feed,
        at: parse_hour(h)?,
        json,
    })
}

/// Write a folder with the feed file and meta.json at `dir`.
fn write_refs(dir: &Path, feed_text: &str, meta: &serde_json::Value) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    fsutil::write_atomic(&dir.join("feed.toml"), feed_text.as_bytes())?;
    let meta_text = serde_json::to_vec_pretty(meta).expect("JSON value serialises");
    fsutil::write_atomic(&dir.join("meta.json"), &meta_text)
}

/// Write a payload's folder with its pages in full (feed file, meta.json, page-NNN.gz).
fn write_pages(
    dir: &Path,
    feed_text: &str,
    meta: &serde_json::Value,
    pages: &[Page],
) -> Result<(), StoreError> {
    write_refs(dir, feed_text, meta)?;
    for (i, p) in pages.iter().enumerate() {
        let path = dir.join(format!("page-{i:03}.gz"));
        match &p.spool {
            Some(s) => {
                fs::copy(&s.path, &path).map_err(io(&path))?;
            }
            None => fsutil::write_atomic(&path, &gzip(fast_gz(), &p.body, &path)?)?,
        }
        if !p.label.is_empty() {
            fsutil::write_atomic(&dir.join(format!("page-{i:03}.label")), p.label.as_bytes())?;
        }
    }
    Ok(())
}

impl RawRun {
    /// The kept feed file text and pages (from blobs, or an older hour's own pages),
    /// read into memory.
    pub fn load(&self) -> Result<(String, Vec<Page>), StoreError> {
        self.load_for(false)
    }

    /// The kept feed file text and pages; with `reads_streams` (a format read as a
    /// stream, `Adapter::reads_streams`) each page is a spooled body naming its blob
    /// (checked by streaming it through the hash), so a payload of hundreds of MB is
    /// not read into memory. An hour written before blobs is read into memory.
    pub fn load_for(&self, reads_streams: bool) -> Result<(String, Vec<Page>), StoreError> {
        if self.path.is_dir() {
            return Ok((self.feed_text()?, self.load_own_pages()?));
        }
        let hour = self.hour()?;
        let pages = hour
            .blobs
            .iter()
            .map(|r| blob_page(&self.blob_path(r)?, &r.sha256, &r.label, reads_streams))
            .collect::<Result<_, StoreError>>()?;
        Ok((hour.feed_toml, pages))
    }

    /// The kept feed file text alone (which names the adapter, and so how to load the
    /// pages).
    pub fn feed_text(&self) -> Result<String, StoreError> {
        if !self.path.is_dir() {
            return Ok(self.hour()?.feed_toml);
        }
        let feed = self.path.join("feed.toml");
        fs::read_to_string(&feed).map_err(io(&feed))
    }

    /// What the hour's payload is, without reading it: its feed file and its pages'
    /// labels and blob names. Hours with the same identity kept the same payload.
    /// `None` for an older store's hour folder (its pages are not named by hash).
    pub fn payload_id(&self) -> Result<Option<String>, StoreError> {
        if self.path.is_dir() {
            return Ok(None);
        }
        let hour = self.hour()?;
        let mut id = hour.feed_toml;
        for b in &hour.blobs {
            id.push_str(&format!("\n{} {}", b.sha256, b.label));
        }
        Ok(Some(id))
    }

    /// The hour's file, or its entry in the day file it was merged into.
    fn hour(&self) -> Result<Hour, StoreError> {
        match &self.merged {
            Some((text, h)) => Ok(Hour {
                feed_toml: text.to_string(),
                ..Hour::clone(h)
            }),
            None => read_hour(&self.path),
        }
    }

    /// Each blob the hour names, without copying a merged hour (and its feed text)
    /// as [`RawRun::hour`] does.
    fn blob_names(&self, mut name: impl FnMut(&str)) -> Result<(), StoreError> {
        match &self.merged {
            Some((_, h)) => h.blobs.iter().for_each(|b| name(&b.sha256)),
            None => read_hour(&self.path)?
                .blobs
                .iter()
                .for_each(|b| name(&b.sha256)),
        }
        Ok(())
    }

    fn blob_path(&self, r: &BlobRef) -> Result<PathBuf, StoreError> {
        if !is_hash(&r.sha256) {
            return Err(StoreError::BlobRef {
                path: self.path.clone(),
                reference: r.sha256.clone(),
            });
        }
        Ok(blob_path(&self.blobs, &r.sha256))
    }

    /// The pages of an hour written before blobs: `page-NNN.gz` and `page-NNN.label`.
    fn load_own_pages(&self) -> Result<Vec<Page>, StoreError> {
        let mut pages = Vec::new();
        for i in 0.. {
            let p = self.path.join(format!("page-{i:03}.gz"));
            if !p.exists() {
                break;
            }
            let label = fs::read_to_string(self.path.join(format!("page-{i:03}.label")))
                .unwrap_or_default();
            pages.push(Page::new(label, gunzip(&p)?));
        }
        Ok(pages)
    }
}

/// True when the blob at `path` exists and its content hashes to `sha`.
fn intact(path: &Path, sha: &str) -> bool {
    path.exists() && hash_gz(path).is_ok_and(|(found, _)| found == sha)
}

pub(super) fn blob_path(blobs: &Path, sha: &str) -> PathBuf {
    blobs.join(&sha[..2]).join(format!("{sha}.gz"))
}

impl Store {
    pub(super) fn blobs_dir(&self) -> PathBuf {
        self.root.join("raw").join("blobs")
    }

    fn raw_run(&self, feed: &str, at: DateTime<Utc>, path: PathBuf) -> RawRun {
        RawRun {
            feed: feed.to_string(),
            at,
            path,
            blobs: self.blobs_dir(),
            merged: None,
        }
    }

    /// Keep one page body as a blob, unless an intact copy is kept already (a damaged
    /// one is replaced); returns its hash.
    fn put_blob(&self, body: &[u8]) -> Result<String, StoreError> {
        let sha = content_hash(body);
        let path = blob_path(&self.blobs_dir(), &sha);
        if !intact(&path, &sha) {
            let gz = gzip(crate::store::deflate::stored_gz(Vec::new()), body, &path)?;
            write_atomic_via(&self.tmp_dir(), &path, &gz)?;
        }
        Ok(sha)
    }

    /// Keep a spooled body as its blob by renaming its file (gzip, synced when it
    /// was spooled); a page naming its blob already is left alone. Returns its hash.
    /// A blob kept already under that hash is replaced, not read: the spool file was
    /// hashed as it was written, so it is intact, and a rename costs nothing, where
    /// checking the kept copy would gunzip the whole payload (a damaged copy is
    /// healed the same way). Readers holding the old file read the same bytes.
    fn put_spooled(&self, s: &Spooled) -> Result<String, StoreError> {
        if !is_hash(&s.sha256) {
            return Err(StoreError::BlobRef {
                path: s.path.clone(),
                reference: s.sha256.clone(),
            });
        }
        let path = blob_path(&self.blobs_dir(), &s.sha256);
        if s.path.starts_with(self.blobs_dir()) {
            // A kept blob (a 304's payload): never moved or removed here.
            return Ok(s.sha256.clone());
        }
        let dir = path.parent().expect("a blob path has a folder");
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::rename(&s.path, &path).map_err(io(&path))?;
        fsutil::sync_dir(dir);
        Ok(s.sha256.clone())
    }

    /// Keep the raw payload and feed file of a run whose offers are about to be
    /// stored, for re-normalisation: each page as a blob (first), then the hour's
    /// `.json` naming them (`meta` with `blobs` and `feed_toml` added). It replaces any
    /// payload kept for that feed and hour (an older hour's folder is removed after),
    /// so the kept payload is always the one the stored offers came from.
    pub fn write_raw(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        feed_text: &str,
        meta: &serde_json::Value,
        pages: &[Page],
    ) -> Result<(), StoreError> {
        let kept = self.put_pages(pages)?;
        self.write_raw_hour(feed, at, feed_text, meta, &kept)
    }

    /// The first half of [`Store::write_raw`]: each page kept as a blob (or found
    /// kept), named by no hour yet. A run stores its offers between the halves, so a
    /// run that fails or crashes before its offers are in place leaves at most blobs
    /// nobody names, never an hour `renormalise` would rebuild.
    pub fn put_pages(&self, pages: &[Page]) -> Result<KeptPages, StoreError> {
        let mut refs = Vec::with_capacity(pages.len());
        for p in pages {
            let sha256 = match &p.spool {
                Some(s) => self.put_spooled(s)?,
                None => self.put_blob(&p.body)?,
            };
            refs.push(BlobRef {
                sha256,
                label: p.label.clone(),
            });
        }
        Ok(KeptPages(refs))
    }

    /// The second half of [`Store::write_raw`]: the hour's `.json` naming `kept`.
    pub fn write_raw_hour(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        feed_text: &str,
        meta: &serde_json::Value,
        kept: &KeptPages,
    ) -> Result<(), StoreError> {
        let mut hour = meta.clone();
        hour["blobs"] = serde_json::to_value(&kept.0).expect("blob references serialise");
        hour["feed_toml"] = feed_text.into();
        let folder = self
            .partition("raw", at.date_naive())
            .join(format!("{feed}__{}", hour_key(at)));
        let path = folder.with_extension("json");
        let text = serde_json::to_vec_pretty(&hour).expect("JSON value serialises");
        write_atomic_via(&self.tmp_dir(), &path, &text)?;
        if folder.is_dir() {
            fs::remove_dir_all(&folder).map_err(io(&folder))?;
        }
        Ok(())
    }

    /// Keep a payload that failed to parse (or looked like a changed format) apart
    /// from `raw/`, for diagnosis: `failed/date=…/<feed>__<hour>__<n>/` with the error
    /// in `meta.json` and its pages in full. `renormalise` never reads it. Returns the
    /// directory.
    pub fn write_failed(
        &self,
        feed: &str,
        at: DateTime<Utc>,
        feed_text: &str,
        meta: &serde_json::Value,
        pages: &[Page],
    ) -> Result<PathBuf, StoreError> {
        let parent = self.partition("failed", at.date_naive());
        let tmp = self.tmp_dir().join(format!("failed-{}", fastrand::u64(..)));
        let res = (|| {
            write_pages(&tmp, feed_text, meta, pages)?;
            fs::create_dir_all(&parent).map_err(io(&parent))?;
            for n in 1.. {
                let dir = parent.join(format!("{feed}__{}__{n:03}", hour_key(at)));
                if !dir.exists() {
                    fs::rename(&tmp, &dir).map_err(io(&dir))?;
                    return Ok(dir);
                }
            }
            unreachable!("some attempt number is free")
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res
    }

    /// The kept raw runs of one date folder, by (feed, hour) as their names say. An
    /// hour's `.json` wins over its entry in a day file (an hour stored again after
    /// its day was merged), which wins over an older folder; a day file that cannot
    /// be read stands for its feed as one run at the date's first hour, whose load
    /// names the file (and which nothing hides).
    fn raw_runs_in(&self, date: NaiveDate, dir: &Path) -> Result<Vec<RawRun>, StoreError> {
        let mut out: BTreeMap<(String, DateTime<Utc>), (u8, RawRun)> = BTreeMap::new();
        let mut put = |rank: u8, run: RawRun| {
            let key = (run.feed.clone(), run.at);
            if !matches!(out.get(&key), Some((r, _)) if *r >= rank) {
                out.insert(key, (rank, run));
            }
        };
        for e in fs::read_dir(dir).map_err(io(dir))? {
            let p = e.map_err(io(dir))?.path();
            let name = p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match raw_name(&name) {
                Some(RawName::Day { feed }) => {
                    for (rank, run) in self.day_runs(feed, &p, date) {
                        put(rank, run);
                    }
                }
                Some(RawName::Hour { feed, at, json }) if json || p.is_dir() => {
                    put(if json { 2 } else { 0 }, self.raw_run(feed, at, p));
                }
                _ => {}
            }
        }
        Ok(out.into_values().map(|(_, run)| run).collect())
    }

    /// The runs of the day file at `path` (of the date folder of `date`), each with
    /// its rank for [`Store::raw_runs_in`].
    fn day_runs(&self, feed: &str, path: &Path, date: NaiveDate) -> Vec<(u8, RawRun)> {
        let Ok(hours) = rawday::read_day(path) else {
            let at = date.and_time(chrono::NaiveTime::MIN).and_utc();
            return vec![(3, self.raw_run(feed, at, path.to_path_buf()))];
        };
        let mut shared: Option<Arc<str>> = None;
        let runs = hours.into_iter().filter_map(|(h, mut hour)| {
            let text = std::mem::take(&mut hour.feed_toml);
            let text = match &shared {
                Some(t) if **t == *text => Arc::clone(t),
                _ => Arc::clone(shared.insert(text.into())),
            };
            let mut run = self.raw_run(feed, parse_hour(&h)?, path.to_path_buf());
            run.merged = Some((text, Arc::new(hour)));
            Some((1, run))
        });
        runs.collect()
    }

    /// Every kept raw run: (feed, observation hour, file or folder), sorted.
    pub fn raw_runs(&self) -> Result<Vec<RawRun>, StoreError> {
        let mut out = Vec::new();
        for (date, dir) in self.partitions("raw")? {
            out.extend(self.raw_runs_in(date, &dir)?);
        }
        out.sort_by(|a, b| (a.at, &a.feed).cmp(&(b.at, &b.feed)));
        Ok(out)
    }

    /// Remove every blob no kept hour names: what a run left that failed or crashed
    /// between keeping its payload and naming it ([`Store::put_pages`]), or what an
    /// hour written again for the same feed and hour no longer names. The caller
    /// holds the store lock, so no run is between those two steps. Nothing is
    /// removed when an hour's file cannot be read, as what it names is then unknown;
    /// a file in `blobs/` not named like a blob is left alone.
    pub fn remove_unnamed_blobs(&self) -> Result<Swept, StoreError> {
        let mut named = std::collections::HashSet::new();
        for (date, dir) in self.partitions("raw")? {
            for run in self.raw_runs_in(date, &dir)? {
                if !run.path.is_dir() {
                    run.blob_names(|sha| {
                        named.insert(sha.to_string());
                    })?;
                }
            }
        }
        let mut swept = Swept::default();
        for path in crate::store::deflate::blob_files(&self.blobs_dir())? {
            let sha = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if !is_hash(sha) || named.contains(sha) {
                continue;
            }
            let len = fs::metadata(&path).map_err(io(&path))?.len();
            fs::remove_file(&path).map_err(io(&path))?;
            swept.blobs += 1;
            swept.bytes += len;
        }
        Ok(swept)
    }

    /// The feed's latest kept payload, when a conditional GET or a version index can
    /// stand for it: one page, kept as a blob, fetched with the same feed file
    /// (`feed_text`), and its version named (`etag`, `last_modified` or `version` in
    /// the hour's file). Its blob is not looked at here: the caller reads it before
    /// asking, so a blob deleted or damaged is noticed (and said) there.
    pub fn last_payload(&self, feed: &str, feed_text: &str) -> Option<LastPayload> {
        let run = self
            .partitions("raw")
            .ok()?
            .into_iter()
            .rev()
            .find_map(|(date, dir)| {
                let runs = self.raw_runs_in(date, &dir).ok()?;
                runs.into_iter()
                    .filter(|r| r.feed == feed)
                    .max_by_key(|r| r.at)
            })?;
        let hour = run.hour().ok()?;
        if hour.feed_toml != feed_text {
            return None;
        }
        let validators = Validators {
            etag: hour.etag,
            last_modified: hour.last_modified,
            version: hour.version,
        };
        (hour.blobs.len() == 1 && !validators.is_empty()).then_some(LastPayload { run, validators })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn page(label: &str, body: &str) -> Page {
        Page {
            label: label.into(),
            body: body.as_bytes().to_vec(),
            spool: None,
        }
    }

    fn hour(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 10, 7, h, 0, 0).unwrap()
    }

    fn blob_files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in fs::read_dir(root.join("raw/blobs")).unwrap().flatten() {
            out.extend(fs::read_dir(d.path()).unwrap().flatten().map(|e| e.path()));
        }
        out.sort();
        out
    }

    /// Hours that saw the same payload share one blob; each reads back whole, labels
    /// and order kept.
    #[test]
    fn one_blob_per_distinct_page() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let meta = serde_json::json!({"pages": 2});
        let same = [page("a", "list v1"), page("", "list v2")];
        for h in [10, 11] {
            store
                .write_raw("cn", hour(h), "format = \"x\"\n", &meta, &same)
                .unwrap();
        }
        let changed = [page("a", "list v1"), page("", "list v3")];
        store
            .write_raw("cn", hour(12), "format = \"x\"\n", &meta, &changed)
            .unwrap();
        assert_eq!(blob_files(tmp.path()).len(), 3);
        let mut hours: Vec<String> = fs::read_dir(tmp.path().join("raw/date=2024-10-07"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        hours.sort();
        assert_eq!(
            hours,
            [
                "cn__20241007T10.json",
                "cn__20241007T11.json",
                "cn__20241007T12.json"
            ]
        );
        let runs = store.raw_runs().unwrap();
        let loaded: Vec<Vec<Page>> = runs.iter().map(|r| r.load().unwrap().1).collect();
        assert_eq!(loaded, [same.to_vec(), same.to_vec(), changed.to_vec()]);
        let sha = content_hash(b"list v1");
        assert!(blob_files(tmp.path())[0].ends_with(format!("{}/{sha}.gz", &sha[..2])));
    }

    /// Blobs no hour names (a run that stopped between its two halves, an hour
    /// written again with another payload) are removed; named blobs and a file not
    /// named like a blob stay, and every hour still loads. An hour's file that cannot
    /// be read stops the sweep before anything is removed.
    #[test]
    fn blobs_no_hour_names_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let meta = serde_json::json!({});
        store
            .write_raw("v", hour(1), "", &meta, &[page("", "first")])
            .unwrap();
        store
            .write_raw("v", hour(1), "", &meta, &[page("", "again")])
            .unwrap();
        store
            .write_raw("v", hour(2), "", &meta, &[page("", "kept")])
            .unwrap();
        store.put_pages(&[page("", "never named")]).unwrap();
        let other = tmp.path().join("raw/blobs/zz/notes.gz");
        fs::create_dir_all(other.parent().unwrap()).unwrap();
        fs::write(&other, b"not a blob").unwrap();
        let unnamed: u64 = ["first", "never named"]
            .iter()
            .map(|b| {
                let sha = content_hash(b.as_bytes());
                fs::metadata(blob_path(&store.blobs_dir(), &sha))
                    .unwrap()
                    .len()
            })
            .sum();
        let broken = tmp.path().join("raw/date=2024-10-07/w__20241007T03.json");
        fs::write(&broken, b"{").unwrap();
        let e = store.remove_unnamed_blobs().unwrap_err().to_string();
        assert!(e.contains("w__20241007T03.json"), "{e}");
        assert_eq!(blob_files(tmp.path()).len(), 5);
        fs::remove_file(&broken).unwrap();

        let swept = store.remove_unnamed_blobs().unwrap();
        assert_eq!(
            swept,
            Swept {
                blobs: 2,
                bytes: unnamed
            }
        );
        let mut left: Vec<String> = (blob_files(tmp.path()).iter())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let named = |b: &str| format!("{}.gz", content_hash(b.as_bytes()));
        let mut expected = vec![named("again"), named("kept"), "notes.gz".to_string()];
        expected.sort();
        assert_eq!(left, expected);
        let loaded: Vec<Vec<Page>> = (store.raw_runs().unwrap().iter())
            .map(|r| r.load().unwrap().1)
            .collect();
        assert_eq!(loaded, [vec![page("", "again")], vec![page("", "kept")]]);
        assert_eq!(store.remove_unnamed_blobs().unwrap(), Swept::default());
    }

    /// A damaged blob is an error naming it, read into memory or streamed through
    /// the hash; the next payload with that content writes it again, and every hour
    /// referring to it reads again (or names it, spooled).
    #[test]
    fn a_damaged_blob_is_named_and_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let meta = serde_json::json!({});
        let p = [page("", "prices")];
        store.write_raw("v", hour(1), "", &meta, &p).unwrap();
        let blob = blob_files(tmp.path()).remove(0);
        let check = |damage: &[u8], expected: &str| {
            fs::write(&blob, damage).unwrap();
            for streams in [false, true] {
                let run = &store.raw_runs().unwrap()[0];
                let e = run.load_for(streams).unwrap_err().to_string();
                assert!(
                    e.contains(&blob.display().to_string()) && e.contains(expected),
                    "{e}"
                );
            }
        };
        check(b"this is not gzip data", "invalid gzip header");
        check(
            &gzip(fast_gz(), b"other prices", &blob).unwrap(),
            "damaged: its content hashes",
        );
        store.write_raw("v", hour(2), "", &meta, &p).unwrap();
        for run in store.raw_runs().unwrap() {
            assert_eq!(run.load().unwrap().1, p, "{}", run.at);
            let spool = run.load_for(true).unwrap().1.remove(0).spool.unwrap();
            assert_eq!((spool.path, spool.len), (blob.clone(), 6));
            assert_eq!(run.feed_text().unwrap(), "");
        }
    }

    /// An hour written before blobs (its own page-NNN.gz and .label) reads as it did,
    /// into memory even for a format read as a stream.
    #[test]
    fn hours_written_before_blobs_still_load() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let dir = tmp.path().join("raw/date=2024-10-07/cn__20241007T05");
        let pages = [page("cn-beijing__x", "one"), page("", "two")];
        write_pages(
            &dir,
            "format = \"x\"\n",
            &serde_json::json!({"pages": 2}),
            &pages,
        )
        .unwrap();
        let runs = store.raw_runs().unwrap();
        assert_eq!((runs[0].feed.as_str(), runs[0].at), ("cn", hour(5)));
        assert_eq!(
            runs[0].load_for(true).unwrap(),
            ("format = \"x\"\n".to_string(), pages.to_vec())
        );
        assert_eq!(runs[0].feed_text().unwrap(), "format = \"x\"\n");
        assert!(store.last_payload("cn", "format = \"x\"\n").is_none());
        // Written again, the hour is one `.json` and the older folder is gone.
        store
            .write_raw("cn", hour(5), "f", &serde_json::json!({}), &pages[..1])
            .unwrap();
        assert!(!dir.exists());
        let runs = store.raw_runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0].load().unwrap(),
            ("f".to_string(), pages[..1].to_vec())
        );
    }

    /// The validators of a feed's latest hour, only when a conditional GET can stand
    /// for it (same feed file, one page kept as a blob, a version named).
    #[test]
    fn last_payload_is_the_latest_hour_with_a_version() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let tagged = serde_json::json!({"etag": "\"v1\""});
        let one = [page("", "list")];
        store.write_raw("cn", hour(3), "f", &tagged, &one).unwrap();
        store
            .write_raw("cn", hour(1), "f", &serde_json::json!({}), &one)
            .unwrap();
        store
            .write_raw("cnx", hour(4), "f", &serde_json::json!({}), &one)
            .unwrap();
        let last = store.last_payload("cn", "f").unwrap();
        assert_eq!(
            (last.run.at, last.validators.etag.as_deref()),
            (hour(3), Some("\"v1\""))
        );
        assert!(store.last_payload("cn", "changed feed file").is_none());
        assert!(store.last_payload("cnx", "f").is_none(), "no version named");
        let two = [page("", "a"), page("", "b")];
        store.write_raw("cn", hour(5), "f", &tagged, &two).unwrap();
        assert!(store.last_payload("cn", "f").is_none(), "two pages");
        // A version index's version alone names the payload too.
        let indexed = serde_json::json!({"version": "/offers/v1.0/aws/AmazonEC2/1/x/index.json"});
        store
            .write_raw("aws", hour(6), "f", &indexed, &one)
            .unwrap();
        let last = store.last_payload("aws", "f").unwrap().validators;
        assert_eq!(
            (last.etag, last.version.as_deref()),
            (None, Some("/offers/v1.0/aws/AmazonEC2/1/x/index.json"))
        );
    }
}
