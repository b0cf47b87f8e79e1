//! A store on S3-compatible object storage (`--store s3://bucket/prefix`), kept in
//! step with a local working copy (the *cache*, an ordinary [`Store`]).
//!
//! The object layout is the local layout under `prefix/`: `offers/date=…/<feed>__<hour>
//! .parquet` and so on, so Spark, Trino, Athena and DuckDB read `prefix/offers` as they
//! read a local store. gpurent itself works on the cache: [`Remote::pull`] downloads
//! the objects the cache lacks (never `raw/` or `failed/`, which only `renormalise`
//! reads), the command runs on the cache as on a local store, and [`Remote::push`]
//! uploads what the cache holds that it has not seen in the bucket (`.known`, the
//! keys it pulled or pushed), so a file whose object a compaction deleted stays gone.
//! `alerts/` (the firings recorded) is pulled and pushed like the data, so a firing
//! recorded by one machine never fires again on another; `alerts::run` pushes that
//! folder alone ([`Remote::push_kinds`]) once it has delivered. Two machines that
//! evaluate one new firing at once both see it new: each claims it first
//! ([`Remote::claim`], a conditional create under `_gpurent/claims/`), and only the
//! one whose claim was created delivers it.
//!
//! Invariants:
//! - Several writers, no lock: every object but `fx/ecb.parquet` is written once, with
//!   a conditional create (`PutMode::Create`, `If-None-Match: *`); an object that
//!   exists is another writer's copy of the same run (or, for a payload blob, of the
//!   same content) and is left as it is, and the cache's file of that name is
//!   replaced by the bucket's object (a blob holds the same bytes and is kept; a raw
//!   hour, which names blobs the cache lacks, is removed), so
//!   the loser of a race reads what the bucket holds; its rejects of an hour whose
//!   offers object the bucket holds already are not that hour's, so they are never
//!   created: the bucket's replace them in the cache, or they are removed. Per run the order is the
//!   payload's blobs, the hour's raw folder that names them, rejects, then offers:
//!   the offers object commits the hour, so a crash mid-push leaves at most rejects
//!   without offers, which readers skip, or blobs no hour names yet. Each folder is
//!   walked once (`raw` skips `raw/blobs`), and a key goes to `.known` as soon as its
//!   object is known to exist.
//! - Only the blobs that a raw hour about to be pushed names are uploaded: an hour
//!   the bucket holds already (another writer won it) brings none, so losing an hour
//!   leaves no orphan blob unless the other writer creates it in the moment between
//!   this push's listing and its create. Blobs are never deleted, not even such an
//!   orphan: content-addressed, one may be named by any writer's hour at any time,
//!   and no lock tells when none does. An orphan costs space only.
//! - `compact` creates each day object, then deletes the hourly objects it holds
//!   ([`Remote::delete_covered`]); gpurent's readers skip an hour a day file holds,
//!   so they never count it twice in between. A push never creates an offers or
//!   rejects object whose hour a day object (in the bucket or the cache) holds, so a
//!   writer killed before it remembered an hourly object does not bring it back
//!   after the compaction deleted it.
//! - `fx/ecb.parquet` is the one object replaced: by a conditional update on its ETag,
//!   re-merged and retried when another writer replaced it first, so no rate is lost.
//! - [`Remote::probe`] refuses a server that ignores conditional creates (it would let
//!   two writers store one hour twice): a marker written twice must be refused the
//!   second time.
//! - Credentials come from the standard AWS variables and never reach a message: errors
//!   name the object URL only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::StoreError;
use crate::store::{fsutil, Store};

/// Kinds a reader needs; `raw/` and `failed/` stay in the bucket. `alerts/` holds the
/// firings recorded so far, so that no machine fires one again.
const PULLED: [&str; 5] = ["offers", "rejects", "runs", "fx", "alerts"];
/// Folders pushed, in commit order: the payload blobs before the hours that refer to
/// them (the rest of `raw/`, which skips `raw/blobs`), and an hour's offers after its
/// payload and rejects.
const PUSHED: [&str; 7] = [
    "raw/blobs",
    "raw",
    "failed",
    "rejects",
    "offers",
    "runs",
    "alerts",
];
/// Content-addressed objects: one that exists holds the same bytes as the cache's file.
const BLOBS: &str = "raw/blobs/";
const FX: &str = "fx/ecb.parquet";
/// Markers of who acts on a key ([`Remote::claim`]); outside every pulled folder.
const CLAIMS: &str = "_gpurent/claims";
const PARALLEL: usize = 8;

/// A bucket and prefix on an S3-compatible server.
pub struct Remote {
    os: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

/// What a pull or push moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Objects copied.
    pub copied: usize,
    /// Objects another writer had already stored (push only).
    pub already_there: usize,
}

/// The part of `s3://bucket/prefix` after the scheme, split.
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("s3a://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl Remote {
    /// Connect with the standard AWS variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`); path-style requests,
    /// plain HTTP only when the endpoint says `http://`.
    pub fn open(bucket: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::open_with(bucket, prefix, std::env::vars())
    }

    /// [`Remote::open`] with the `AWS_*` variables given rather than read from the
    /// environment (other names are ignored).
    pub fn open_with(
        bucket: &str,
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, StoreError> {
        let mut builder = AmazonS3Builder::new();
        let mut endpoint = String::new();
        for (k, v) in vars.into_iter().filter(|(k, _)| k.starts_with("AWS_")) {
            if k == "AWS_ENDPOINT_URL" || k == "AWS_ENDPOINT" {
                endpoint = v.clone();
            }
            if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, v);
            }
        }
        let os = builder
            .with_bucket_name(bucket)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()
            .map_err(|source| StoreError::Object {
                url: format!("s3://{bucket}/{prefix}"),
                source,
            })?;
        Ok(Self {
            os: Arc::new(os),
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn key(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn err(&self, rel: &str) -> impl FnOnce(object_store::Error) -> StoreError + '_ {
        let url = format!("{}/{rel}", self.url());
        move |source| StoreError::Object { url, source }
    }

    /// Check that the server refuses a second conditional create of one object.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let rel = format!("_gpurent/probe-{:016x}", fastrand::u64(..));
        let key = self.key(&rel);
        let create = || PutOptions::from(PutMode::Create);
        self.os
            .put_opts(&key, PutPayload::from_static(b"1"), create())
            .await
            .map_err(self.err(&rel))?;
        let second = self
            .os
            .put_opts(&key, PutPayload::from_static(b"2"), create())
            .await;
        let _ = self.os.delete(&key).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.err(&rel)(e)),
            Ok(_) => Err(StoreError::NoConditionalCreate { url: self.url() }),
        }
    }

    /// Every object key under the prefix, relative to it, of the given kinds (folders
    /// such as `offers` or `offers/date=2024-10-07`).
    async fn list(&self, kinds: &[&str]) -> Result<BTreeSet<String>, StoreError> {
        let mut out = BTreeSet::new();
        let cut = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        for kind in kinds {
            let prefix = self.key(kind);
            let metas: Vec<_> = self
                .os
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(self.err(kind))?;
            out.extend(
                metas
                    .into_iter()
                    .map(|m| m.location.as_ref()[cut..].to_string()),
            );
        }
        Ok(out)
    }

    /// Download into `cache` the objects a reader needs that it lacks. Objects are
    /// immutable, so a file of the same name is the same object. An object deleted
    /// between the listing and its download (a compaction moved its hour into a day
    /// object) makes the pull list again, so the day object is fetched instead.
    pub async fn pull(&self, cache: &Store) -> Result<Transfer, StoreError> {
        let mut copied = 0;
        for _ in 0..10 {
            let keys = self.list(&PULLED).await?;
            let wanted: Vec<String> = keys
                .iter()
                .filter(|k| *k != FX && !cache.root().join(k).exists())
                .cloned()
                .collect();
            let got: Vec<bool> = futures::stream::iter(wanted)
                .map(|rel| self.download(cache, rel))
                .buffer_unordered(PARALLEL)
                .try_collect()
                .await?;
            copied += got.iter().filter(|g| **g).count();
            if got.iter().all(|g| *g) {
                let known = known(cache);
                let listed: Vec<String> = keys
                    .iter()
                    .filter(|k| !known.contains(*k))
                    .cloned()
                    .collect();
                remember(cache, &listed)?;
                if keys.contains(FX) {
                    self.pull_fx(cache).await?;
                    copied += 1;
                }
                return Ok(Transfer {
                    copied,
                    already_there: 0,
                });
            }
        }
        Err(StoreError::Contended { url: self.url() })
    }

    /// The bucket's rates, plus any the cache has that a failed push left behind.
    async fn pull_fx(&self, cache: &Store) -> Result<(), StoreError> {
        let mine = match cache.root().join(FX).exists() {
            true => cache.fx_rates()?,
            false => Vec::new(),
        };
        if self.download(cache, FX.to_string()).await? {
            cache.merge_fx(&mine)?;
        }
        Ok(())
    }

    /// Copy one object into the cache; false when it no longer exists.
    async fn download(&self, cache: &Store, rel: String) -> Result<bool, StoreError> {
        let got = match self.os.get(&self.key(&rel)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.err(&rel)(e)),
        };
        let bytes = got.bytes().await.map_err(self.err(&rel))?;
        fsutil::write_atomic_via(&cache.tmp_dir(), &cache.root().join(&rel), &bytes)?;
        Ok(true)
    }

    /// Upload what `cache` holds and the bucket does not, in commit order (each folder
    /// of `PUSHED` finished before the next starts), each with a conditional create;
    /// then merge the FX rates into the bucket's.
    pub async fn push(&self, cache: &Store) -> Result<Transfer, StoreError> {
        let t = self.push_kinds(cache, &PUSHED).await?;
        self.push_fx(cache).await?;
        Ok(t)
    }

    /// [`Remote::push`] of the given folders only, in the order given (a reader that
    /// recorded alert firings pushes `["alerts"]`). A folder inside one pushed before
    /// is not walked again; an offers or rejects file whose hour a day object holds is
    /// never uploaded (`uncovered`). Each key is added to `.known` as soon as its
    /// object is known to exist.
    pub async fn push_kinds(&self, cache: &Store, kinds: &[&str]) -> Result<Transfer, StoreError> {
        let mut known = known(cache);
        let mut t = Transfer::default();
        let mut listed = Listings::default();
        for (i, kind) in kinds.iter().enumerate() {
            let done: Vec<PathBuf> = kinds[..i].iter().map(|k| cache.root().join(k)).collect();
            let mut files = Vec::new();
            local_files(cache.root(), &cache.root().join(kind), &done, &mut files);
            let mut new: Vec<String> = files
                .iter()
                .filter(|f| !known.contains(*f))
                .cloned()
                .collect();
            if *kind == "raw/blobs" {
                new = self.needed_blobs(cache, &known, &mut listed, new).await?;
                deflate(cache, &new).await;
            }
            if matches!(*kind, "offers" | "rejects") {
                new = self.uncovered(cache, &files, new, &mut listed).await?;
            }
            if *kind == "rejects" {
                new = self.not_lost(cache, new, &mut listed).await?;
            }
            let results: Vec<bool> = futures::stream::iter(new.clone())
                .map(|rel| self.upload(cache, rel))
                .buffer_unordered(PARALLEL)
                .try_collect()
                .await?;
            let created = results.iter().filter(|c| **c).count();
            t.copied += created;
            t.already_there += results.len() - created;
            known.extend(new);
        }
        Ok(t)
    }

    /// Of `new` (files of one kind the cache has not seen in the bucket; `local` all its
    /// files of that kind), those whose hours no day file holds, in the bucket or in
    /// the cache. The others are remembered and never uploaded: their hourly object
    /// was created by a writer killed before it remembered it, then deleted by a
    /// compaction, and creating it again would hold the hour twice. One listing per
    /// partition of `new` per push (`listed`, shared with [`Remote::not_lost`]).
    async fn uncovered(
        &self,
        cache: &Store,
        local: &[String],
        new: Vec<String>,
        listed: &mut Listings,
    ) -> Result<Vec<String>, StoreError> {
        let dirs: BTreeSet<&str> = new.iter().map(|f| dir_of(f)).collect();
        let mut names: BTreeSet<String> = local.iter().cloned().collect();
        for dir in dirs {
            names.extend(self.listed(listed, dir).await?.iter().cloned());
        }
        let covered = covered(&names);
        let (gone, keep): (Vec<String>, Vec<String>) =
            new.into_iter().partition(|f| covered.contains(f));
        remember(cache, &gone)?;
        Ok(keep)
    }

    /// Of `new` (rejects files the bucket has not seen from this cache), those of hours
    /// no other writer has committed. Where the bucket holds the hour's offers object
    /// already, another writer stored that hour first (its offers commit it; this
    /// cache pushes rejects before offers), so these rejects are not the hour's: the
    /// bucket's rejects object replaces the cache's file, or, when the winner had none,
    /// the cache's file is removed. One listing per partition of `new` per push
    /// (`listed`: the offers pass reads the same one).
    async fn not_lost(
        &self,
        cache: &Store,
        new: Vec<String>,
        listed: &mut Listings,
    ) -> Result<Vec<String>, StoreError> {
        let twin = |rel: &str| format!("offers/{}", rel.strip_prefix("rejects/").unwrap_or(rel));
        let dirs: BTreeSet<String> = new.iter().map(|f| twin(dir_of(f))).collect();
        let mut committed = BTreeSet::new();
        for dir in &dirs {
            committed.extend(self.listed(listed, dir).await?.iter().cloned());
        }
        let mut keep = Vec::new();
        for rel in new {
            if !committed.contains(&twin(&rel)) {
                keep.push(rel);
            } else if self.download(cache, rel.clone()).await? {
                remember(cache, std::slice::from_ref(&rel))?;
            } else {
                let path = cache.root().join(&rel);
                std::fs::remove_file(&path).map_err(fsutil::io(&path))?;
            }
        }
        Ok(keep)
    }

    /// The keys of one folder (a partition such as `offers/date=…`), listed once per
    /// push: the rejects' check of committed offers and the offers' check of day
    /// objects read the same listing.
    async fn listed<'a>(
        &self,
        listed: &'a mut Listings,
        dir: &str,
    ) -> Result<&'a BTreeSet<String>, StoreError> {
        if !listed.contains_key(dir) {
            let keys = self.list(&[dir]).await?;
            listed.insert(dir.to_string(), keys);
        }
        Ok(&listed[dir])
    }

    /// Of `new` (blob files the cache has not seen in the bucket), those a raw hour
    /// about to be pushed names: the hours this cache has not seen in the bucket and
    /// that the bucket does not hold yet (one listing per partition). A blob of an
    /// hour another writer stored first, or of a run that never named it, is not
    /// uploaded, so losing an hour leaves no blob in the bucket that no hour names
    /// (but for a loss in the moment between this listing and the hour's create).
    /// Blobs are never deleted: content-addressed, one may be named by any writer's
    /// hour. An unreadable hour's blobs are all offered, as before.
    async fn needed_blobs(
        &self,
        cache: &Store,
        known: &std::collections::HashSet<String>,
        listed: &mut Listings,
        new: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        if new.is_empty() {
            return Ok(new);
        }
        let blobs = cache.root().join(BLOBS.trim_end_matches('/'));
        let mut hours = Vec::new();
        local_files(
            cache.root(),
            &cache.root().join("raw"),
            &[blobs],
            &mut hours,
        );
        let mut named = BTreeSet::new();
        // `raw/date=…/<feed>__<hour>.json`; an hour written before blobs is a folder.
        let is_hour = |h: &String| h.ends_with(".json") && h.split('/').count() == 3;
        for hour in hours.iter().filter(|h| is_hour(h) && !known.contains(*h)) {
            if self.listed(listed, dir_of(hour)).await?.contains(hour) {
                continue;
            }
            let path = cache.root().join(hour);
            match std::fs::read(&path).map(|b| blob_keys(&b)) {
                Ok(Some(keys)) => named.extend(keys),
                // Not a blob-naming hour this build can read: keep every blob.
                _ => return Ok(new),
            }
        }
        Ok(new.into_iter().filter(|b| named.contains(b)).collect())
    }

    /// Claim `rel` (say `alerts/<key>.json`) for this machine: create the marker
    /// `_gpurent/claims/<rel>` holding `body` unless it exists. True when this call
    /// created it, so this machine alone acts on `rel` (delivers the alert); false
    /// when another writer claimed it first. Claims are never pulled, replaced or
    /// deleted, so a key is claimed once for the bucket's life.
    pub async fn claim(&self, rel: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let marker = format!("{CLAIMS}/{rel}");
        let put = self
            .os
            .put_opts(&self.key(&marker), body.into(), PutMode::Create.into())
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err(&marker)(e)),
        }
    }

    /// `rel` is another writer's to store (it won the claim on it): the bucket's
    /// object replaces the cache's file if the bucket holds it yet (true), and the
    /// key is remembered either way, so this cache never uploads its own file of
    /// that name over the claimer's.
    pub async fn defer(&self, cache: &Store, rel: &str) -> Result<bool, StoreError> {
        let copied = self.download(cache, rel.to_string()).await?;
        remember(cache, &[rel.to_string()])?;
        Ok(copied)
    }

    /// After a compaction was pushed: delete the hourly objects (and smaller day
    /// objects) whose hours a day object of the same feed and date holds. Readers
    /// skip such files already, so no moment of this counts an hour twice or misses
    /// one for gpurent; an engine globbing `offers/*/*.parquet` may count a day twice
    /// between the day object's creation and these deletions.
    pub async fn delete_covered(&self) -> Result<usize, StoreError> {
        let keys = self.list(&["offers", "rejects"]).await?;
        let gone = covered(&keys);
        let n = gone.len();
        futures::stream::iter(gone)
            .map(|rel| async move {
                match self.os.delete(&self.key(&rel)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.err(&rel)(e)),
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(n)
    }

    /// Create one object from the cache's file and remember its key; false when it
    /// already existed. Then, but for a blob (same name, same bytes), the bucket's
    /// object is another writer's run of the same hour and replaces the cache's file,
    /// so the cache reads as the bucket does.
    async fn upload(&self, cache: &Store, rel: String) -> Result<bool, StoreError> {
        let path = cache.root().join(&rel);
        let bytes = std::fs::read(&path).map_err(fsutil::io(&path))?;
        let put = self
            .os
            .put_opts(&self.key(&rel), bytes.into(), PutMode::Create.into())
            .await;
        let created = match put {
            Ok(_) => true,
            Err(object_store::Error::AlreadyExists { .. }) => false,
            Err(e) => return Err(self.err(&rel)(e)),
        };
        if !created {
            self.lost(cache, &rel).await?;
        }
        remember(cache, std::slice::from_ref(&rel))?;
        Ok(created)
    }

    /// The cache's file `rel` lost to the bucket's object of that name. A blob holds
    /// the same bytes and stays. A raw hour names the winner's blobs, which the cache
    /// lacks (`raw/` is never pulled), so it is removed, as for any hour the cache
    /// did not store itself: its next fetch of that feed asks about its own last
    /// payload, never one it cannot read. Any other file takes the bucket's object.
    async fn lost(&self, cache: &Store, rel: &str) -> Result<(), StoreError> {
        if rel.starts_with(BLOBS) {
            Ok(())
        } else if rel.starts_with("raw/") {
            let path = cache.root().join(rel);
            std::fs::remove_file(&path).map_err(fsutil::io(&path))
        } else {
            self.download(cache, rel.to_string()).await.map(|_| ())
        }
    }

    /// Replace `fx/ecb.parquet` with the union of the bucket's rates and the cache's,
    /// conditionally on the version read; on a race, read again and retry.
    async fn push_fx(&self, cache: &Store) -> Result<(), StoreError> {
        let local = cache.root().join(FX);
        if !local.exists() {
            return Ok(());
        }
        let key = self.key(FX);
        for _ in 0..10 {
            let mine = cache.fx_rates()?;
            let mode = match self.os.get(&key).await {
                Ok(got) => {
                    let version = UpdateVersion {
                        e_tag: got.meta.e_tag.clone(),
                        version: got.meta.version.clone(),
                    };
                    let bytes = got.bytes().await.map_err(self.err(FX))?;
                    fsutil::write_atomic_via(&cache.tmp_dir(), &local, &bytes)?;
                    if cache.merge_fx(&mine)? == 0 {
                        return Ok(());
                    }
                    PutMode::Update(version)
                }
                Err(object_store::Error::NotFound { .. }) => PutMode::Create,
                Err(e) => return Err(self.err(FX)(e)),
            };
            let bytes = std::fs::read(&local).map_err(fsutil::io(&local))?;
            match self.os.put_opts(&key, bytes.into(), mode.into()).await {
                Ok(_) => return Ok(()),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => continue,
                Err(e) => return Err(self.err(FX)(e)),
            }
        }
        Err(StoreError::Contended {
            url: format!("{}/{FX}", self.url()),
        })
    }
}

/// The cache's record of keys known to be in the bucket (pulled, pushed, or found
/// there), or left to the machine that claimed them ([`Remote::defer`]): one per line.
/// A push never uploads them again, so an hourly object that a compaction deleted is
/// not brought back by another machine's cache that still holds its file. Losing the
/// record costs one conditional create per file, nothing more.
const KNOWN: &str = ".known";

fn known(cache: &Store) -> std::collections::HashSet<String> {
    std::fs::read_to_string(cache.root().join(KNOWN))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Add keys to the record (appended; a torn last line only names no key).
fn remember(cache: &Store, keys: &[String]) -> Result<(), StoreError> {
    use std::io::Write as _;
    if keys.is_empty() {
        return Ok(());
    }
    let path = cache.root().join(KNOWN);
    std::fs::create_dir_all(cache.root()).map_err(fsutil::io(cache.root()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(fsutil::io(&path))?;
    let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
    f.write_all(text.as_bytes()).map_err(fsutil::io(&path))
}

/// The keys of `keys` (offers or rejects) whose hours a day file in the same
/// partition holds ([`super::not_covered`]).
fn covered(keys: &BTreeSet<String>) -> BTreeSet<String> {
    let mut by_dir: std::collections::BTreeMap<&str, Vec<PathBuf>> = Default::default();
    for k in keys {
        by_dir.entry(dir_of(k)).or_default().push(PathBuf::from(k));
    }
    let mut out = BTreeSet::new();
    for files in by_dir.into_values() {
        let kept: BTreeSet<PathBuf> = super::not_covered(files.clone()).into_iter().collect();
        let gone = files.into_iter().filter(|f| !kept.contains(f));
        out.extend(gone.map(|f| f.to_string_lossy().into_owned()));
    }
    out
}

/// Folder listings taken during one push, by folder.
type Listings = std::collections::BTreeMap<String, BTreeSet<String>>;

/// Deflate the blobs about to be uploaded (`rels`, relative to the cache) that
/// ingest wrote as stored blocks, off the async workers; one that cannot be deflated
/// is uploaded as it is, with a warning naming it.
async fn deflate(cache: &Store, rels: &[String]) {
    let (cache, rels) = (cache.clone(), rels.to_vec());
    let done = tokio::task::spawn_blocking(move || {
        for rel in rels {
            if let Err(e) = cache.deflate_blob(&cache.root().join(&rel)) {
                tracing::warn!("pushed as stored blocks, not deflated: {e}");
            }
        }
    })
    .await;
    if let Err(e) = done {
        tracing::warn!("deflating blobs before the push: {e}");
    }
}

/// The blob keys a raw hour's `.json` names (`blobs[].sha256`), or None when it is
/// not such a file.
fn blob_keys(json: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v.get("blobs")?
        .as_array()?
        .iter()
        .map(|b| {
            let sha = b.get("sha256")?.as_str()?;
            let hex = sha.len() == 64 && sha.bytes().all(|c| c.is_ascii_hexdigit());
            hex.then(|| format!("{BLOBS}{}/{sha}.gz", &sha[..2]))
        })
        .collect()
}

/// The folder of a key (`offers/date=…` of `offers/date=…/<file>`).
fn dir_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Data files under `dir`, as paths relative to `root` with `/` separators; temporary
/// and hidden names (`.tmp`, `.lock`) are never pushed, and folders in `skip` (pushed
/// already) are not walked.
fn local_files(root: &Path, dir: &Path, skip: &[PathBuf], out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            if !skip.contains(&p) {
                local_files(root, &p, skip, out);
            }
        } else if let Ok(rel) = p.strip_prefix(root) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
}

/// The cache directory of a bucket and prefix: `$GPURENT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/gpurent` or `~/.cache/gpurent`, then `s3/<bucket>/<prefix>`.
pub fn cache_dir(bucket: &str, prefix: &str) -> PathBuf {
    let base = std::env::var_os("GPURENT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gpurent")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/gpurent")))
        .unwrap_or_else(|| PathBuf::from(".gpurent-cache"));
    base.join("s3").join(bucket).join(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let check = |url: &str, expected: Option<(&str, &str)>| {
            let got = parse_url(url);
            let got = got.as_ref().map(|(b, p)| (b.as_str(), p.as_str()));
            assert_eq!(got, expected, "{url}");
        };
        check("s3://gpurent/history", Some(("gpurent", "history")));
        check("s3a://gpurent/a/b/", Some(("gpurent", "a/b")));
        check("s3://gpurent", Some(("gpurent", "")));
        check("s3:///x", None);
        check("gs://b/x", None);
    }
}
