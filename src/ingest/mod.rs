//! Ingest: fetch every enabled feed concurrently, parse, normalise, append to the store.
//!
//! One broken feed never stops the others: each feed ends as stored, skipped or
//! failed, and the run's exit status says whether any failed. FX feeds are merged
//! first so that price feeds of the same run convert at the freshest rates.
//!
//! Invariants: a payload is archived under `raw/` only once it parsed and passed the
//! format check, immediately before its offers are stored (so `raw/` always holds the
//! payload the stored offers came from); a payload that failed goes to `failed/`. A
//! feed whose records are all, or nearly all, malformed has failed ([`check_format`]):
//! a changed format must not look like a quiet run. An offer listed twice in one run
//! is kept once (the first) and counted as a `duplicate_offer` reject. Every message
//! is scrubbed of the feed's secret ([`fetch::scrub`]). A feed whose last kept payload
//! has a version the server named is fetched conditionally; a 304 means that payload
//! is still in force, so it is parsed and stored again under this hour (a snapshot
//! like any other, marked `not_modified`), never counted as a failure. A version
//! index naming the version kept with the last payload (AWS's region index) counts
//! the same way; an index that could not be used, or a versioned file fetched from
//! the feed URL instead, is said in the feed's line. The last kept payload is read
//! back (its blobs checked) before the server is asked about it: one that cannot be
//! read is not asked about, so the payload is fetched in full (writing its blob
//! again), and the feed's line and the log say why.

pub mod adapters;
pub mod backfill;
pub mod feed;
pub mod fetch;
pub mod spool;
pub mod urlpolicy;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::DataFrame;

use crate::error::{FeedError, StoreError};
use crate::ingest::adapters::{Page, ParseCtx};
use crate::ingest::feed::{BrokenFeed, Feed, Source};
use crate::ingest::fetch::Fetched;
use crate::model::{Offers, ParseReject, Parsed, Validators};
use crate::normalise::{self, Batch, Context};
use crate::store::records::{FeedCounts, FeedRecord, IngestRecord};
use crate::store::{LastPayload, Store};
use crate::tables::Tables;

/// How one feed's run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Offers (and/or FX rates) were read and stored.
    Stored {
        read: usize,
        stored: usize,
        rejected: Vec<(String, usize)>,
        fx_rates: usize,
        /// The server answered 304 (or its version index named the version kept
        /// last): the last payload, still in force, was ingested again under this hour.
        not_modified: bool,
        /// How the fetch went another way than planned, and why (a version index
        /// that could not be used); added to the feed's line.
        note: Option<String>,
    },
    /// This feed and hour were already in the store; nothing was added.
    AlreadyStored,
    /// Not run, for the reason given (disabled, key not set).
    Skipped(String),
    /// The feed failed; the message names the feed and what broke.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub feed: String,
    pub status: Status,
}

impl Outcome {
    /// The one line printed per feed.
    pub fn line(&self) -> String {
        match &self.status {
            Status::Stored {
                read,
                stored,
                rejected,
                fx_rates,
                not_modified,
                note,
            } => {
                let total: usize = rejected.iter().map(|r| r.1).sum();
                let reused = if *not_modified {
                    " (not modified: last payload ingested again)"
                } else {
                    ""
                };
                let mut s = format!(
                    "{}: ok{reused}, {read} offers read, {stored} stored, {total} rejected",
                    self.feed
                );
                if !rejected.is_empty() {
                    let parts: Vec<String> =
                        rejected.iter().map(|(r, n)| format!("{r} {n}")).collect();
                    s.push_str(&format!(" ({})", parts.join(", ")));
                }
                if *fx_rates > 0 {
                    s.push_str(&format!(", {fx_rates} FX rates"));
                }
                if let Some(note) = note {
                    s.push_str(&format!("; {note}"));
                }
                s
            }
            Status::AlreadyStored => {
                format!("{}: already stored for this hour, nothing added", self.feed)
            }
            Status::Skipped(why) => format!("{}: skipped: {why}", self.feed),
            Status::Failed(e) => format!("{}: FAILED: {e}", self.feed),
        }
    }
    /// This feed's entry in the run record.
    pub fn record(&self) -> FeedRecord {
        let (status, counts) = match &self.status {
            Status::Stored {
                read,
                stored,
                rejected,
                fx_rates,
                not_modified,
                ..
            } => (
                "stored",
                Some(FeedCounts {
                    read: *read,
                    stored: *stored,
                    fx_rates: *fx_rates,
                    rejected: rejected.iter().cloned().collect(),
                    not_modified: *not_modified,
                }),
            ),
            Status::AlreadyStored => ("already_stored", None),
            Status::Skipped(_) => ("skipped", None),
            Status::Failed(_) => ("failed", None),
        };
        FeedRecord {
            feed: self.feed.clone(),
            line: self.line(),
            status,
            counts,
        }
    }
}

/// A whole run's outcomes, sorted by feed name.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub outcomes: Vec<Outcome>,
    /// Earlier runs re-normalised because FX rates they waited for arrived.
    pub healed: crate::ingest::backfill::Healed,
}

impl RunReport {
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Failed(_)))
            .count()
    }
    /// 0 when every feed succeeded or was skipped, 1 when some failed.
    pub fn exit_code(&self) -> i32 {
        if self.failed() > 0 {
            1
        } else {
            0
        }
    }
    /// The run record of this run at observation time `at`.
    pub fn record(&self, at: DateTime<Utc>) -> IngestRecord {
        IngestRecord {
            observed_at: at.to_rfc3339(),
            feeds: self.outcomes.iter().map(Outcome::record).collect(),
            failed: self.failed(),
            fx_healed_runs: self.healed.runs,
            fx_healed_offers: self.healed.offers,
            hour_index: None,
        }
    }
}

/// Parse a feed's pages with its adapter.
pub fn parse_pages(feed: &Feed, pages: &[Page]) -> Result<Parsed, FeedError> {
    let ctx = ParseCtx {
        feed: &feed.config.name,
        provider: &feed.config.provider,
    };
    let mut parsed = Parsed::default();
    for (i, page) in pages.iter().enumerate() {
        let p = match &page.spool {
            None => feed.adapter.parse(page, &ctx),
            Some(s) => parse_spooled(feed, &page.label, s, &ctx),
        };
        let p = p.map_err(|error| FeedError::Parse {
            feed: feed.config.name.clone(),
            source_name: match &feed.config.source {
                Source::File(p) => p.display().to_string(),
                Source::Http(u) if pages.len() > 1 => {
                    format!("{} (page {})", urlpolicy::shown_url(u), i + 1)
                }
                Source::Http(u) => urlpolicy::shown_url(u),
            },
            error,
        })?;
        parsed.extend(p);
    }
    dedupe(&mut parsed);
    Ok(parsed)
}

/// Parse a spooled body as a stream: memory holds the parsed offers, not the body.
/// A recorded payload is read from its own plain file when that file seems unchanged
/// (length and modification time) and every read of it gave exactly the bytes spooled
/// (length and CRC-32, checked as they pass): no gunzip. Otherwise the parse is redone
/// from the gzip file, which holds the bytes that were hashed and will be archived.
fn parse_spooled(
    feed: &Feed,
    label: &str,
    spool: &crate::model::Spooled,
    ctx: &ParseCtx,
) -> Result<Parsed, adapters::AdapterError> {
    if let Some(origin) = spool.origin.as_ref().filter(|o| o.unchanged(spool.len)) {
        let reads = std::cell::RefCell::new(Vec::new());
        let open = || {
            open_body(&origin.path, "the payload", |f| {
                Box::new(CrcRead::new(f, &reads))
            })
        };
        let parsed = feed.adapter.parse_stream(label, &open, ctx);
        let reads = reads.into_inner();
        if !reads.is_empty() && reads.iter().all(|r| *r == Some((origin.crc32, spool.len))) {
            return parsed;
        }
    }
    let gunzip = |f| {
        let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
        Box::new(gz) as Box<dyn std::io::Read>
    };
    let open = || open_body(&spool.path, "the spooled body", gunzip);
    feed.adapter.parse_stream(label, &open, ctx)
}

/// A reader that hashes (CRC-32) and counts the bytes it passes on, and writes the
/// pair into its slot of `reads` when dropped (a slot left `None`: a reader not
/// dropped yet).
struct CrcRead<'r, R> {
    inner: R,
    crc: crc32fast::Hasher,
    len: u64,
    slot: usize,
    reads: &'r std::cell::RefCell<Vec<Option<(u32, u64)>>>,
}

impl<'r, R> CrcRead<'r, R> {
    fn new(inner: R, reads: &'r std::cell::RefCell<Vec<Option<(u32, u64)>>>) -> Self {
        let slot = {
            let mut r = reads.borrow_mut();
            r.push(None);
            r.len() - 1
        };
        CrcRead {
            inner,
            crc: crc32fast::Hasher::new(),
            len: 0,
            slot,
            reads,
        }
    }
}

impl<R: std::io::Read> std::io::Read for CrcRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

impl<R> Drop for CrcRead<'_, R> {
    fn drop(&mut self) {
        let crc = std::mem::take(&mut self.crc).finalize();
        self.reads.borrow_mut()[self.slot] = Some((crc, self.len));
    }
}

/// A buffered reader of the file at `path` (`what` names it in an error), through
/// `decode`.
fn open_body<'r>(
    path: &std::path::Path,
    what: &str,
    decode: impl Fn(std::fs::File) -> Box<dyn std::io::Read + 'r>,
) -> std::io::Result<Box<dyn std::io::BufRead + 'r>> {
    let file = std::fs::File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))?;
    Ok(Box::new(std::io::BufReader::with_capacity(
        1 << 18,
        decode(file),
    )))
}

/// Keep the first of offers that share (offer id, price class, observation time) in
/// one run; each later one becomes a `duplicate_offer` reject.
pub fn dedupe(parsed: &mut Parsed) {
    let keep = first_of_each(&parsed.offers);
    if keep.iter().all(|k| *k) {
        return;
    }
    let dups = keep.iter().enumerate().filter(|(_, k)| !**k);
    let dups: Vec<ParseReject> = dups
        .map(|(i, _)| {
            let o = parsed.offers.row(i);
            ParseReject {
                offer_id: o.offer_id.to_string(),
                gpu_name_raw: o.gpu_name_raw.to_string(),
                reason: "duplicate_offer".into(),
                detail: format!(
                    "offer id {:?} ({}) is listed more than once in the payload; the first is kept",
                    o.offer_id,
                    o.price_class.as_str()
                ),
            }
        })
        .collect();
    parsed.offers.keep(&keep);
    parsed.rejects.extend(dups);
}

/// For each offer, whether it is the first with its (observation time, offer id, price
/// class). A stable sort of the indices puts equal keys side by side in payload order
/// (a payload listed in id order is sorted already, which the sort detects).
fn first_of_each(offers: &Offers) -> Vec<bool> {
    let key = |i: u32| {
        let i = i as usize;
        (
            *offers.observed_at.get(i),
            offers.offer_id[i].as_str(),
            offers.price_class[i],
        )
    };
    let mut order: Vec<u32> = (0..offers.len() as u32).collect();
    order.sort_by(|a, b| key(*a).cmp(&key(*b)));
    let mut keep = vec![true; offers.len()];
    for pair in order.windows(2) {
        if key(pair[0]) == key(pair[1]) {
            keep[pair[1] as usize] = false;
        }
    }
    keep
}

/// Reject reasons that mean a record did not have the shape the adapter expects.
pub const MALFORMED: &[&str] = &["bad_record", "bad_field"];
/// A run with at least this many records ...
pub const DRIFT_MIN_RECORDS: usize = 5;
/// ... of which at least this share is malformed has failed (and so has a run whose
/// every record is malformed, however few).
pub const DRIFT_SHARE: f64 = 0.9;

/// Fail a run whose records are all, or nearly all, malformed: the provider has most
/// likely renamed or moved fields. The message names the missing fields.
pub fn check_format(feed: &Feed, parsed: &Parsed) -> Result<(), FeedError> {
    let bad: Vec<&ParseReject> = parsed
        .rejects
        .iter()
        .filter(|r| MALFORMED.contains(&r.reason.as_str()))
        .collect();
    let total = parsed.offers.len() + parsed.rejects.len();
    let drifted = !bad.is_empty()
        && (bad.len() == total
            || (total >= DRIFT_MIN_RECORDS && bad.len() as f64 >= DRIFT_SHARE * total as f64));
    if !drifted {
        return Ok(());
    }
    let mut missing: Vec<&str> = bad
        .iter()
        .filter_map(|r| r.detail.split("missing field `").nth(1))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let what = if missing.is_empty() {
        format!("first: {}", bad[0].detail)
    } else {
        format!("missing fields: {}", missing.join(", "))
    };
    Err(FeedError::FormatChanged {
        feed: feed.config.name.clone(),
        source_name: source_name(feed),
        message: format!(
            "{} of {total} records malformed ({what}); nothing stored",
            bad.len()
        ),
    })
}

fn source_name(feed: &Feed) -> String {
    match &feed.config.source {
        Source::File(p) => p.display().to_string(),
        Source::Http(u) => urlpolicy::shown_url(u),
    }
}

/// Parse a run's pages and check their format.
pub fn parse_checked(feed: &Feed, pages: &[Page]) -> Result<Parsed, FeedError> {
    let parsed = parse_pages(feed, pages)?;
    check_format(feed, &parsed)?;
    Ok(parsed)
}

/// A payload to keep with a run: its pages and what the server said of them.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    pub pages: &'a [Page],
    /// The version the server named (`etag`, `last_modified` in `meta.json`, which
    /// the next fetch sends back as conditions) and the version a version index
    /// named (`version`, which the next fetch compares with the index's).
    pub validators: &'a Validators,
    /// The server answered 304 (or the version index named the version kept last):
    /// `pages` are the last payload, still in force.
    pub not_modified: bool,
}

static NO_VALIDATORS: Validators = Validators {
    etag: None,
    last_modified: None,
    version: None,
};

impl<'a> Archive<'a> {
    /// Pages from a file or an unconditional fetch: no version known.
    pub fn plain(pages: &'a [Page]) -> Self {
        Self {
            pages,
            validators: &NO_VALIDATORS,
            not_modified: false,
        }
    }
}

/// A fetched payload, owned: what [`Archive`] borrows.
#[derive(Debug, Clone)]
struct Payload {
    pages: Vec<Page>,
    validators: Validators,
    not_modified: bool,
    /// The fetch's note ([`Fetched`]), for the feed's line.
    note: Option<String>,
}

impl Payload {
    fn archive(&self) -> Archive<'_> {
        Archive {
            pages: &self.pages,
            validators: &self.validators,
            not_modified: self.not_modified,
        }
    }
}

/// The `meta.json` kept with a run's payload.
pub fn payload_meta(feed: &Feed, at: DateTime<Utc>, archive: &Archive) -> serde_json::Value {
    let mut meta = serde_json::json!({
        "feed": feed.config.name,
        "format": feed.config.format,
        "source": source_name(feed),
        "observed_at": at.to_rfc3339(),
        "pages": archive.pages.len(),
    });
    let v = archive.validators;
    let named = [
        ("etag", &v.etag),
        ("last_modified", &v.last_modified),
        ("version", &v.version),
    ];
    for (key, value) in named {
        if let Some(value) = value {
            meta[key] = value.as_str().into();
        }
    }
    if archive.not_modified {
        meta["not_modified"] = true.into();
    }
    meta
}

/// Keep a failed payload under `failed/` for diagnosis; the note to add to the
/// error (where it went, or why it could not be kept).
pub fn quarantine(
    store: &Store,
    feed: &Feed,
    at: DateTime<Utc>,
    pages: &[Page],
    error: &str,
) -> String {
    let mut meta = payload_meta(feed, at, &Archive::plain(pages));
    meta["error"] = error.into();
    match store.write_failed(&feed.config.name, at, &feed.config.text, &meta, pages) {
        Ok(dir) => format!(" (payload kept in {})", dir.display()),
        Err(e) => format!(" (payload not kept: {e})"),
    }
}

/// Normalise parsed offers of a feed run.
pub fn normalise_parsed(
    feed: &Feed,
    parsed: Parsed,
    at: DateTime<Utc>,
    tables: &Tables,
    fx: &DataFrame,
) -> Result<Batch, FeedError> {
    normalise::normalise(
        parsed.offers,
        &parsed.rejects,
        &context(feed, at),
        tables,
        fx,
    )
    .map_err(|e| normalise_err(feed, e))
}

/// What normalising a run of `feed` at `at` needs to know about it.
pub fn context(feed: &Feed, at: DateTime<Utc>) -> Context<'_> {
    Context {
        feed: &feed.config.name,
        observed_at: at,
        vat_rate: feed.config.price_includes_vat,
        sample: feed.config.sample,
        peer: feed.config.peer,
        check_places: feed.config.check_places,
    }
}

fn normalise_err(feed: &Feed, e: polars::prelude::PolarsError) -> FeedError {
    FeedError::Normalise {
        feed: feed.config.name.clone(),
        message: e.to_string(),
    }
}

/// The stored ECB rates as the frame normalisation joins on.
pub fn load_fx(store: &Store) -> Result<DataFrame, StoreError> {
    let rates = store.fx_rates()?;
    normalise::fx_frame(&rates).map_err(|source| StoreError::Polars {
        path: store.fx_path(),
        source,
    })
}

/// What one stored run holds: offers stored, and rejects counted by reason.
pub type Stored = (usize, Vec<(String, usize)>);

/// Store a parsed run; offers that carry their own observation day are stored as one
/// run per day (at midnight, or at `at` on `at`'s own day, stored last). Parse
/// rejects stay with `at`. `None` when every day was already stored.
pub fn store_by_day(
    feed: &Feed,
    parsed: Parsed,
    at: DateTime<Utc>,
    store: &Store,
    tables: &Tables,
    fx: &DataFrame,
    pages: Option<Archive>,
) -> Result<Option<Stored>, FeedError> {
    let run = (feed, at, store);
    store_by_day_counted(run, parsed, (tables, fx), pages).map(|(stored, _)| stored)
}

/// [`store_by_day`], and the offers and rejects of the days that were stored before
/// (a list of several days fetched again stores only the days it has not).
pub fn store_by_day_counted(
    (feed, at, store): (&Feed, DateTime<Utc>, &Store),
    parsed: Parsed,
    (tables, fx): (&Tables, &DataFrame),
    pages: Option<Archive>,
) -> Result<(Option<Stored>, usize), FeedError> {
    let mut pages = pages;
    let mut total: Option<Stored> = None;
    let mut before = 0;
    for (when, part) in by_day(parsed, at) {
        // The run at `at` keeps the raw payload, even when none of its rows is of
        // that day, so `renormalise` can rebuild every day from it.
        let raw = if when == at { pages.take() } else { None };
        let rows = part.offers.len() + part.rejects.len();
        let Some((n, rejected)) = store_parsed(feed, part, when, store, tables, fx, raw)? else {
            before += rows;
            continue;
        };
        let t = total.get_or_insert_with(|| (0, Vec::new()));
        t.0 += n;
        for (reason, k) in rejected {
            match t.1.iter_mut().find(|r| r.0 == reason) {
                Some(r) => r.1 += k,
                None => t.1.push((reason, k)),
            }
        }
    }
    if let Some(t) = total.as_mut() {
        t.1.sort();
    }
    Ok((total, before))
}

/// A parsed run split into the runs [`store_by_day`] stores: (the time a part is
/// stored at, the part). Rows whose own observation day is not `at`'s go to a run at
/// that day's midnight; the run at `at` holds `at`'s rows, the parse rejects and the
/// rows whose date is implausible (`bad_date`), and comes last: a re-run skips the
/// file once that run is stored, so every other day must be in place before it (a
/// crash or a failed write in between is finished by the re-run, each day already
/// stored being skipped). Days with nothing are left out, but `at`'s run is always
/// there.
pub fn by_day(parsed: Parsed, at: DateTime<Utc>) -> Vec<(DateTime<Utc>, Parsed)> {
    let day_of = |t: Option<DateTime<Utc>>| t.map_or(at.date_naive(), |t| t.date_naive());
    // The observation times read from their column, no row built.
    let times = &parsed.offers.observed_at;
    if (0..parsed.offers.len()).all(|i| day_of(*times.get(i)) == at.date_naive()) {
        return vec![(at, parsed)];
    }
    let mut days: std::collections::BTreeMap<NaiveDate, Parsed> = Default::default();
    days.entry(at.date_naive()).or_default().rejects = parsed.rejects;
    for o in parsed.offers.iter() {
        let day = day_of(o.observed_at);
        if !crate::week::plausible(day) {
            // A typo in a row's date column: a reject of the run at `at`, never a run
            // (and rollups) of a day centuries away.
            let reject = crate::model::ParseReject {
                offer_id: o.offer_id.to_string(),
                gpu_name_raw: o.gpu_name_raw.to_string(),
                reason: "bad_date".into(),
                detail: format!(
                    "the row's date {day}: {}",
                    crate::week::implausible_why(day)
                ),
            };
            days.entry(at.date_naive())
                .or_default()
                .rejects
                .push(reject);
            continue;
        }
        days.entry(day).or_default().offers.push(o);
    }
    let mine = days.remove(&at.date_naive()).unwrap_or_default();
    let midnight = |day: NaiveDate| day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let mut out: Vec<(DateTime<Utc>, Parsed)> = days
        .into_iter()
        .filter(|(_, part)| !(part.offers.is_empty() && part.rejects.is_empty()))
        .map(|(day, part)| (midnight(day), part))
        .collect();
    out.push((at, mine));
    out
}

/// Normalise a feed run's parsed offers and append them to `store`, a chunk of
/// [`normalise::CHUNK_ROWS`] rows at a time through a [`crate::store::RunWriter`].
/// When `raw` is given, the payload is archived under `raw/` (replacing an earlier
/// one): its blobs after every chunk is written, the hour naming them only once the
/// run is committed, so a failed or crashed normalise, write or commit leaves no raw
/// hour (at most blobs nobody names), and `renormalise` never rebuilds a run that was
/// not stored. Returns the offers stored and the
/// rejects by reason, or `None` when that feed and hour were already stored (nothing
/// written).
pub fn store_parsed(
    feed: &Feed,
    parsed: Parsed,
    at: DateTime<Utc>,
    store: &Store,
    tables: &Tables,
    fx: &DataFrame,
    raw: Option<Archive>,
) -> Result<Option<Stored>, FeedError> {
    let Some(mut writer) = store.run_writer(&feed.config.name, at) else {
        return Ok(None);
    };
    let store_err = |source| FeedError::Store {
        feed: feed.config.name.clone(),
        source,
    };
    let (mut stored, mut rejected) = (0, BTreeMap::<String, usize>::new());
    let ctx = context(feed, at);
    let chunks = normalise::normalise_chunks(
        &parsed.offers,
        &parsed.rejects,
        &ctx,
        tables,
        fx,
        normalise::CHUNK_ROWS,
    );
    for batch in chunks {
        let mut batch = batch.map_err(|e| normalise_err(feed, e))?;
        stored += batch.offers.height();
        for (reason, n) in batch.reject_counts() {
            *rejected.entry(reason).or_default() += n;
        }
        writer
            .write(&mut batch.offers, &mut batch.rejects)
            .map_err(store_err)?;
    }
    drop(parsed);
    // The payload's blobs first, the offers next, the hour naming the blobs last: a
    // run that is not stored leaves no raw hour for `renormalise` to rebuild.
    let kept = match raw {
        Some(raw) => {
            let kept = store.put_pages(raw.pages).map_err(store_err)?;
            Some((payload_meta(feed, at, &raw), kept))
        }
        None => None,
    };
    writer.commit().map_err(store_err)?;
    if let Some((meta, kept)) = kept {
        let name = &feed.config.name;
        if let Err(e) = store.write_raw_hour(name, at, &feed.config.text, &meta, &kept) {
            // The offers are stored; without the hour, renormalise keeps them as they are.
            tracing::warn!(feed = %name, "the raw payload of {at} is not kept: {e}");
        }
    }
    Ok(Some((stored, rejected.into_iter().collect())))
}

/// Run one ingest of `feeds` at observation time `at`.
///
/// Only the fetches run on the async runtime; everything after them (parsing, gzip,
/// polars, fsync) runs in one blocking task (`store_all`), so a run never stalls
/// the runtime's worker threads. The tables are `'static` because that task may
/// outlive a cancelled caller (`Tables::embedded()` is, and the binary leaks its
/// `--tables` once).
pub async fn run(
    feeds: Vec<Feed>,
    broken: Vec<BrokenFeed>,
    store: &Store,
    client: &reqwest::Client,
    at: DateTime<Utc>,
    tables: &'static Tables,
) -> RunReport {
    let mut outcomes: BTreeMap<String, Status> = BTreeMap::new();
    for b in broken {
        outcomes.insert(b.name, Status::Failed(b.error.to_string()));
    }
    let to_fetch = select(feeds, store, at, &mut outcomes);
    // Bodies spooled by this run (AWS offer files); adopted as blobs or removed below,
    // and emptied with `.tmp/` when the lock is next taken should the run not finish.
    let spool = spool::folder(&store.tmp_dir(), "ingest");
    let fetched = fetch_all(&to_fetch, client, at, &spool).await;
    // Kept to report every fetched feed as failed should the blocking task panic.
    let fallback = (outcomes.clone(), to_fetch.clone());
    let (store, dir) = (store.clone(), spool.clone());
    let task = tokio::task::spawn_blocking(move || {
        store_all(to_fetch, fetched, (&store, &dir), at, tables, outcomes)
    });
    let report = match task.await {
        Ok(report) => report,
        Err(e) => {
            // The message goes out scrubbed, in the outcomes only.
            tracing::error!("ingest: the parse-and-store task failed");
            let (mut outcomes, to_fetch) = fallback;
            for ToFetch { feed, .. } in &to_fetch {
                outcomes
                    .entry(feed.config.name.clone())
                    .or_insert_with(|| Status::Failed(format!("parse-and-store task failed: {e}")));
            }
            RunReport {
                healed: Default::default(),
                outcomes: scrubbed(outcomes, &to_fetch),
            }
        }
    };
    spool::remove_folder(&spool).await;
    report
}

/// The blocking part of a run, after the fetches: parse, merge FX rates, normalise
/// and store each feed, heal runs that waited for FX, scrub the outcomes.
fn store_all(
    to_fetch: Vec<ToFetch>,
    fetched: Vec<Option<FetchedRun>>,
    (store, spool): (&Store, &std::path::Path),
    at: DateTime<Utc>,
    tables: &Tables,
    mut outcomes: BTreeMap<String, Status>,
) -> RunReport {
    let parsed_runs = parse_all(&to_fetch, fetched, (store, spool), at, &mut outcomes);
    let (fx_added, new_rates) = merge_rates(&parsed_runs, store, &mut outcomes);
    let fx = match load_fx(store) {
        Ok(fx) => fx,
        Err(e) => {
            tracing::error!("FX table unreadable, non-USD prices will be rejected: {e}");
            normalise::fx_frame(&[]).expect("empty FX frame builds")
        }
    };
    for (feed, parsed, payload) in parsed_runs {
        let name = feed.config.name.clone();
        if outcomes.contains_key(&name) {
            continue;
        }
        let fx_rates = fx_added.get(&name).copied().unwrap_or(0);
        let raw = payload.archive();
        let mut status = store_one(&feed, parsed, raw, fx_rates, at, store, tables, &fx);
        if let Status::Stored { note, .. } = &mut status {
            let notes: Vec<String> = note
                .take()
                .into_iter()
                .chain(payload.note.clone())
                .collect();
            *note = (!notes.is_empty()).then(|| notes.join("; "));
        }
        outcomes.insert(name, status);
    }
    let healed = if new_rates.is_empty() {
        Default::default()
    } else {
        crate::ingest::backfill::heal_fx(store, tables, &new_rates).unwrap_or_else(|e| {
            tracing::error!("re-normalising runs that waited for FX rates: {e}");
            Default::default()
        })
    };
    RunReport {
        healed,
        outcomes: scrubbed(outcomes, &to_fetch),
    }
}

/// A feed to fetch, its secret if it has one, and its last kept payload if the
/// server can be asked whether it changed.
#[derive(Clone)]
struct ToFetch {
    feed: Arc<Feed>,
    secret: Option<String>,
    last: Option<LastPayload>,
}
/// A feed whose payload parsed, with the payload.
type ParsedRun = (Arc<Feed>, Parsed, Payload);

/// The feeds to fetch this hour; the others get their outcome (disabled, no key set,
/// already stored).
fn select(
    feeds: Vec<Feed>,
    store: &Store,
    at: DateTime<Utc>,
    outcomes: &mut BTreeMap<String, Status>,
) -> Vec<ToFetch> {
    let mut to_fetch = Vec::new();
    for feed in feeds {
        let name = feed.config.name.clone();
        if !feed.config.enabled {
            outcomes.insert(name, Status::Skipped("disabled (enabled = false)".into()));
            continue;
        }
        let secret = fetch::secret(&feed);
        if let (Some(var), None) = (&feed.config.auth_env, &secret) {
            outcomes.insert(
                name,
                Status::Skipped(format!("environment variable {var} is not set")),
            );
            continue;
        }
        if store.has_run(&name, at) {
            outcomes.insert(name, Status::AlreadyStored);
            continue;
        }
        let last = match &feed.config.source {
            Source::Http(_) => store.last_payload(&name, &feed.config.text),
            Source::File(_) => None,
        };
        to_fetch.push(ToFetch {
            feed: Arc::new(feed),
            secret,
            last,
        });
    }
    to_fetch
}

/// The last kept payload of a feed, read back (its blobs checked against their
/// hashes) before the server is asked whether it changed.
#[derive(Debug)]
struct Kept {
    pages: Vec<Page>,
    validators: Validators,
}

/// What fetching one feed brought, and the kept payload it asked about.
type FetchedRun = (Result<Fetched, FeedError>, Option<Kept>);

/// Fetch every feed concurrently (conditionally where the last payload's version is
/// known and that payload can be read); the results are in `to_fetch`'s order.
async fn fetch_all(
    to_fetch: &[ToFetch],
    client: &reqwest::Client,
    at: DateTime<Utc>,
    spool: &std::path::Path,
) -> Vec<Option<FetchedRun>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in to_fetch.iter().enumerate() {
        let (feed, secret, client) = (Arc::clone(&f.feed), f.secret.clone(), client.clone());
        let (last, spool) = (f.last.clone(), spool.to_path_buf());
        set.spawn(async move {
            let (kept, unread) = kept_of(&feed, last).await;
            let known = kept.as_ref().map(|k| &k.validators);
            let secret = secret.as_deref();
            let fetched =
                fetch::fetch_if_changed(&client, &feed, secret, at, known, Some(&spool)).await;
            (i, (fetched.map(|f| f.noted(unread)), kept))
        });
    }
    let mut fetched: Vec<Option<FetchedRun>> = (0..to_fetch.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => fetched[i] = Some(r),
            Err(e) => tracing::error!("fetch task panicked: {e}"),
        }
    }
    fetched
}

/// The last payload kept for `feed`, read off the runtime's worker threads; or,
/// when it cannot be read (a blob deleted or damaged), none and the note that
/// says why, so that the payload is fetched in full (and its blob written again).
async fn kept_of(feed: &Arc<Feed>, last: Option<LastPayload>) -> (Option<Kept>, Option<String>) {
    let Some(last) = last else {
        return (None, None);
    };
    let read = tokio::task::spawn_blocking(move || read_kept(&last)).await;
    match read.unwrap_or_else(|e| Err(e.to_string())) {
        Ok(kept) => (Some(kept), None),
        Err(why) => {
            let name = &feed.config.name;
            tracing::warn!(feed = %name, "last payload cannot be read, fetching in full: {why}");
            (
                None,
                Some(format!(
                    "last payload cannot be read ({why}); fetched in full"
                )),
            )
        }
    }
}

/// Read a kept payload back: its pages name their blobs, checked by streaming them
/// through the hash, and are parsed from those files if they stand for this hour
/// (never held in memory while the feeds are fetched).
fn read_kept(last: &LastPayload) -> Result<Kept, String> {
    let (_, pages) = last.run.load_for(true).map_err(|e| e.to_string())?;
    Ok(Kept {
        pages,
        validators: last.validators.clone(),
    })
}

/// A parse's rejects with the feed's secret scrubbed from their texts: they quote
/// what an adapter decoded from the body, where an escaped echo of the key that the
/// body's scrub did not recognise would be a key in clear.
fn scrub_rejects(parsed: &mut Parsed, secret: Option<&str>) {
    if secret.is_none() {
        return;
    }
    let scrubber = fetch::Scrubber::new(secret);
    for r in &mut parsed.rejects {
        for text in [&mut r.offer_id, &mut r.gpu_name_raw, &mut r.detail] {
            *text = scrubber.text(text);
        }
    }
}

/// Parse and check every fetched payload; a failed one is quarantined. A large
/// fetched body that parsed is spilled to the run's `spool` folder
/// ([`spool::spill`]), so the payloads of all feeds are not held while each is
/// normalised.
fn parse_all(
    to_fetch: &[ToFetch],
    fetched: Vec<Option<FetchedRun>>,
    (store, spool): (&Store, &std::path::Path),
    at: DateTime<Utc>,
    outcomes: &mut BTreeMap<String, Status>,
) -> Vec<ParsedRun> {
    let mut parsed_runs = Vec::new();
    for (f, result) in to_fetch.iter().zip(fetched) {
        let (feed, name) = (&f.feed, f.feed.config.name.clone());
        let payload = match result {
            Some((Ok(fetched), kept)) => payload_of(fetched, kept),
            Some((Err(e), _)) => Err(e.to_string()),
            None => Err("fetch task did not finish".into()),
        };
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                outcomes.insert(name, Status::Failed(e));
                continue;
            }
        };
        match parse_checked(feed, &payload.pages) {
            Ok(mut p) => {
                scrub_rejects(&mut p, f.secret.as_deref());
                let mut payload = payload;
                spill_all(&mut payload.pages, spool, &name);
                parsed_runs.push((Arc::clone(feed), p, payload))
            }
            Err(e) => {
                // Scrubbed before it is written: an adapter's error may quote text
                // it decoded from the body (an escaped echo of the key).
                let msg = fetch::scrub(&e.to_string(), f.secret.as_deref());
                let kept = quarantine(store, feed, at, &payload.pages, &msg);
                let note = payload.note.map(|n| format!("; {n}")).unwrap_or_default();
                outcomes.insert(name, Status::Failed(msg + &kept + &note));
            }
        }
    }
    parsed_runs
}

/// Spill each large in-memory page of feed `name` ([`spool::spill`]); one that cannot
/// be spilled stays in memory. A payload read back from the store names its blobs
/// already, so only fetched bodies are spilled.
fn spill_all(pages: &mut [Page], spool: &std::path::Path, name: &str) {
    for page in pages {
        if let Err(e) = spool::spill(page, spool) {
            tracing::warn!(feed = %name, "{e}; the body stays in memory");
        }
    }
}

/// The payload a fetch stands for. After a 304 (or an unchanged version) it is the
/// last kept payload, read back before the fetch, under the validators the 304
/// carried (else the kept ones).
fn payload_of(fetched: Fetched, kept: Option<Kept>) -> Result<Payload, String> {
    let (fresh, note) = match fetched {
        Fetched::Pages {
            pages,
            validators,
            note,
        } => {
            return Ok(Payload {
                pages,
                validators,
                not_modified: false,
                note,
            })
        }
        Fetched::NotModified { validators, note } => (validators, note),
    };
    let Kept { pages, validators } =
        kept.ok_or("not modified (HTTP 304), but no version was asked about")?;
    Ok(Payload {
        pages,
        validators: Validators {
            etag: fresh.etag.or(validators.etag),
            last_modified: fresh.last_modified.or(validators.last_modified),
            version: fresh.version.or(validators.version),
        },
        not_modified: true,
        note,
    })
}

/// Store the FX rates of every run first (so this hour's CNY offers find today's
/// rate); returns the rates added per feed and all newly stored rates.
fn merge_rates(
    parsed_runs: &[ParsedRun],
    store: &Store,
    outcomes: &mut BTreeMap<String, Status>,
) -> (BTreeMap<String, usize>, Vec<crate::model::FxRate>) {
    let mut fx_added: BTreeMap<String, usize> = BTreeMap::new();
    for (feed, parsed, _) in parsed_runs {
        if parsed.fx.is_empty() {
            continue;
        }
        match store.merge_fx(&parsed.fx) {
            Ok(_) => {
                fx_added.insert(feed.config.name.clone(), parsed.fx.len());
            }
            Err(e) => {
                outcomes.insert(
                    feed.config.name.clone(),
                    Status::Failed(format!("storing FX rates: {e}")),
                );
            }
        }
    }
    let new_rates = parsed_runs
        .iter()
        .filter(|(f, _, _)| fx_added.contains_key(&f.config.name))
        .flat_map(|(_, p, _)| p.fx.iter().cloned())
        .collect();
    (fx_added, new_rates)
}

/// Normalise and store one parsed run (an FX-only payload keeps its raw pages only).
#[allow(clippy::too_many_arguments)]
fn store_one(
    feed: &Feed,
    parsed: Parsed,
    raw: Archive,
    fx_rates: usize,
    at: DateTime<Utc>,
    store: &Store,
    tables: &Tables,
    fx: &DataFrame,
) -> Status {
    let name = &feed.config.name;
    let not_modified = raw.not_modified;
    if parsed.offers.is_empty() && parsed.rejects.is_empty() && fx_rates > 0 {
        let meta = payload_meta(feed, at, &raw);
        if let Err(e) = store.write_raw(name, at, &feed.config.text, &meta, raw.pages) {
            tracing::warn!(feed = %name, "keeping the raw FX payload: {e}");
        }
        return Status::Stored {
            read: 0,
            stored: 0,
            rejected: Vec::new(),
            fx_rates,
            not_modified,
            note: None,
        };
    }
    let read = parsed.offers.len() + parsed.rejects.len();
    match store_by_day_counted((feed, at, store), parsed, (tables, fx), Some(raw)) {
        Ok((Some((stored, rejected)), before)) => Status::Stored {
            read,
            stored,
            rejected,
            fx_rates,
            not_modified,
            note: (before > 0).then(|| format!("{before} dated on days stored before")),
        },
        Ok((None, _)) => Status::AlreadyStored,
        Err(FeedError::Store { source, .. }) => Status::Failed(format!("store: {source}")),
        Err(e) => Status::Failed(e.to_string()),
    }
}

/// The outcomes in feed order, each failure message scrubbed of its feed's secret.
fn scrubbed(outcomes: BTreeMap<String, Status>, to_fetch: &[ToFetch]) -> Vec<Outcome> {
    let secrets: BTreeMap<&str, Option<&str>> = to_fetch
        .iter()
        .map(|f| (f.feed.config.name.as_str(), f.secret.as_deref()))
        .collect();
    outcomes
        .into_iter()
        .map(|(feed, status)| {
            let secret = secrets.get(feed.as_str()).copied().flatten();
            let status = match status {
                Status::Failed(m) => Status::Failed(fetch::scrub(&m, secret)),
                other => other,
            };
            Outcome { feed, status }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A recorded payload is parsed from its own plain file while that file is
    /// unchanged (the spool is not read: here it is damaged), and from the spool,
    /// which holds the bytes hashed for the archive, once the file has changed: a new
    /// modification time, or other bytes of the same length under the old one.
    #[test]
    fn a_recorded_file_is_parsed_plain_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, toml) = (dir.path().join("v.json"), dir.path().join("v.toml"));
        let fixture = include_bytes!("../../tests/fixtures/vastai_search.json");
        std::fs::write(&src, fixture).unwrap();
        let feed_text = "format = \"vastai\"\nurl = \"v.json\"\nprovider = \"vastai\"\n";
        std::fs::write(&toml, feed_text).unwrap();
        let feed = feed::load_feed(&toml).unwrap();
        let spooled = spool::spool_file(&src, &dir.path().join("spool")).unwrap();
        let page = Page {
            label: "v".into(),
            body: Vec::new(),
            spool: Some(spooled.clone()),
        };
        let parse = || parse_pages(&feed, std::slice::from_ref(&page));
        let in_memory = parse_pages(&feed, &[Page::new("v", fixture.to_vec())]).unwrap();
        assert!(in_memory.offers.len() > 1);
        let good_spool = std::fs::read(&spooled.path).unwrap();
        std::fs::write(&spooled.path, b"not gzip").unwrap();
        assert!(
            parse().unwrap().offers == in_memory.offers,
            "read from the plain file"
        );

        std::fs::write(&spooled.path, good_spool).unwrap();
        std::fs::write(&src, br#"{"offers": []}"#).unwrap();
        let later = spooled.origin.as_ref().unwrap().modified + std::time::Duration::from_secs(1);
        let file = std::fs::File::options().write(true).open(&src).unwrap();
        file.set_modified(later).unwrap();
        assert!(
            parse().unwrap().offers == in_memory.offers,
            "read from the spool"
        );

        // Rewritten to the same length, its modification time put back: the bytes
        // read no longer have the spooled CRC-32, so the spool is parsed again.
        let at = fixture
            .windows(10)
            .position(|w| w == b"dph_total\"")
            .unwrap();
        let digit = at + fixture[at..].iter().position(u8::is_ascii_digit).unwrap();
        let mut altered = fixture.to_vec();
        altered[digit] = if altered[digit] == b'9' {
            b'8'
        } else {
            altered[digit] + 1
        };
        let other = parse_pages(&feed, &[Page::new("v", altered.clone())]).unwrap();
        assert!(
            other.offers != in_memory.offers,
            "the rewrite changes a price"
        );
        std::fs::write(&src, &altered).unwrap();
        let file = std::fs::File::options().write(true).open(&src).unwrap();
        file.set_modified(spooled.origin.as_ref().unwrap().modified)
            .unwrap();
        assert!(spooled.origin.as_ref().unwrap().unchanged(spooled.len));
        assert!(
            parse().unwrap().offers == in_memory.offers,
            "a same-length rewrite with its old time is read from the spool"
        );
    }

    #[test]
    fn run_record_per_status() {
        let outcome = |feed: &str, status| Outcome {
            feed: feed.into(),
            status,
        };
        let report = RunReport {
            outcomes: vec![
                outcome("already", Status::AlreadyStored),
                outcome("broken", Status::Failed("timed out".into())),
                outcome("off", Status::Skipped("disabled".into())),
                outcome(
                    "same",
                    Status::Stored {
                        read: 2,
                        stored: 2,
                        rejected: Vec::new(),
                        fx_rates: 0,
                        not_modified: true,
                        note: None,
                    },
                ),
                outcome(
                    "vast",
                    Status::Stored {
                        read: 4,
                        stored: 2,
                        rejected: vec![("duplicate_offer".into(), 1), ("unknown_gpu".into(), 1)],
                        fx_rates: 3,
                        not_modified: false,
                        note: Some("version index not used (x); fetched the feed URL".into()),
                    },
                ),
            ],
            healed: backfill::Healed {
                runs: 2,
                offers: 7,
                compacted: 0,
            },
        };
        let at = Utc.with_ymd_and_hms(2026, 10, 26, 5, 0, 0).unwrap();
        let line = |i: usize| report.outcomes[i].line();
        let expected = serde_json::json!({
            "observed_at": "2026-10-26T05:00:00+00:00",
            "feeds": [
                {"feed": "already", "line": line(0), "status": "already_stored"},
                {"feed": "broken", "line": line(1), "status": "failed"},
                {"feed": "off", "line": line(2), "status": "skipped"},
                {"feed": "same", "line": line(3), "status": "stored", "read": 2, "stored": 2,
                 "fx_rates": 0, "rejected": {}, "not_modified": true},
                {"feed": "vast", "line": line(4), "status": "stored", "read": 4, "stored": 2,
                 "fx_rates": 3, "rejected": {"duplicate_offer": 1, "unknown_gpu": 1}},
            ],
            "failed": 1,
            "fx_healed_runs": 2,
            "fx_healed_offers": 7,
        });
        assert_eq!(serde_json::to_value(report.record(at)).unwrap(), expected);
        assert_eq!(
            line(3),
            "same: ok (not modified: last payload ingested again), 2 offers read, 2 stored, 0 rejected"
        );
        assert_eq!(
            line(4),
            "vast: ok, 4 offers read, 2 stored, 2 rejected (duplicate_offer 1, unknown_gpu 1), \
             3 FX rates; version index not used (x); fetched the feed URL"
        );
    }
}
