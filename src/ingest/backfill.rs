//! Backfill and re-normalisation: feed runs that come from files rather than the clock.
//!
//! `backfill` imports a tree of dated snapshots (a folder or file name holding
//! `YYYY-MM-DD` gives the observation date) through the same parse → normalise →
//! store path as a live ingest; re-running it adds nothing, because the store keeps
//! one file per feed and hour. `renormalise` rebuilds the offers and rejects from the
//! kept raw payloads after the tables change, swapping the new trees in atomically.
//! `backfill_versions` fetches a peer's dated catalogue versions (gpuhunt's
//! `YYYYMMDD`) over HTTP, one per day, skipping and counting the missing ones.
//! `heal_fx` re-normalises the kept runs whose offers waited for an FX rate, once
//! the rate is stored. Rows that carry their own observation day (a peer's daily
//! observations) are stored under that day, one run per day ([`store_by_day`]), so
//! date-bounded reads find them.
//! Invariants: no network I/O except in `backfill_versions`; the observation time comes
//! from the path, the version or the caller, and a date outside
//! `week::OBSERVATION_YEARS` fails that file or version alone, naming it; `renormalise`
//! never drops a stored hour: an hour whose raw payload is missing or no longer parses
//! keeps its stored offers unchanged, and is counted; `renormalise` and `heal_fx` read
//! a kept run's feed file first, so the payload of a format read as a stream (an AWS
//! offer file) is parsed from its blob file, never read whole into memory; `backfill`
//! spools a recorded payload of such a format as an ingest of the file does, in a
//! folder under `.tmp/` it removes when done.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{FeedError, StoreError};
use crate::ingest::adapters::Page;
use crate::ingest::feed::{self, Feed};
use crate::ingest::{
    by_day, load_fx, normalise_parsed, parse_checked, parse_pages, quarantine, store_by_day,
    Archive, Stored,
};
use crate::ingest::{fetch, spool};
use crate::model::Parsed;
use crate::store::{hour_key, RawRun, Store};
use crate::tables::Tables;

/// The last `YYYY-MM-DD` in a path, if any.
pub fn date_in_path(p: &Path) -> Option<NaiveDate> {
    let s = p.to_string_lossy();
    let b = s.as_bytes();
    (0..b.len().saturating_sub(9))
        .rev()
        .filter(|&i| {
            b[i..i + 10].iter().enumerate().all(|(j, c)| {
                if j == 4 || j == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
        })
        .find_map(|i| NaiveDate::parse_from_str(&s[i..i + 10], "%Y-%m-%d").ok())
}

/// The folder name just above the first folder named exactly `YYYY-MM-DD`
/// (`.../aws/2023-08-01/vms.csv` → `aws`).
pub fn provider_in_path(p: &Path) -> Option<String> {
    let comps: Vec<String> = p
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let i = comps
        .iter()
        .position(|c| c.len() == 10 && NaiveDate::parse_from_str(c, "%Y-%m-%d").is_ok())?;
    comps.get(i.checked_sub(1)?).cloned()
}

/// Every regular, non-hidden file under the given paths, sorted.
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, std::io::Error> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), std::io::Error> {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            return Ok(());
        }
        if p.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), out)?;
            }
        } else if p.is_file() {
            out.push(p.to_path_buf());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", p.display()),
            ));
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// What to import.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The adapter, when no feed file is given.
    pub format: Option<String>,
    /// A feed file whose keys describe the files (its `url` is replaced by each file).
    pub feed_file: Option<PathBuf>,
    /// Provider; default: the feed file's, else the folder above the dated component.
    pub provider: Option<String>,
    /// Observation time for files whose path holds no date.
    pub at: Option<DateTime<Utc>>,
}

/// One imported file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub feed: String,
    pub observed_at: Option<DateTime<Utc>>,
    /// Stored, rejected, FX rates; `None` when the file was already imported.
    pub counts: Option<(usize, usize, usize)>,
    /// Rejects by reason (e.g. `unknown_region`), sorted by reason.
    pub rejected: Vec<(String, usize)>,
    /// A catalogue version that does not exist (HTTP 404 or 403); nothing stored.
    pub missing: bool,
    /// Earlier runs healed by the FX rates this file brought.
    pub healed: Healed,
    pub error: Option<String>,
}

/// Why one file or version was not imported (its text is [`FileOutcome::error`]).
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: no YYYY-MM-DD in the path; pass --at", path.display())]
    NoDate { path: PathBuf },
    /// An observation date outside [`crate::week::OBSERVATION_YEARS`] (`by`: where
    /// it came from: the path, `--at`, the version).
    #[error("{}: observation date {date} from {by}: {}", path.display(), crate::week::implausible_why(*date))]
    Implausible {
        path: PathBuf,
        date: NaiveDate,
        by: &'static str,
    },
    /// A payload that did not parse, and what became of it (kept under `failed/`).
    #[error("{error}{quarantined}")]
    Unparsed {
        error: Box<FeedError>,
        quarantined: String,
    },
}

/// The stored FX rates as [`load_fx`] gives them, an error worded under `<store>/fx`
/// as it always was (the text only, so the error's cause chain is one line).
fn fx_of(store: &Store) -> Result<polars::prelude::DataFrame, StoreError> {
    load_fx(store).map_err(|e| StoreError::Io {
        path: store.root().join("fx"),
        source: std::io::Error::other(e.to_string()),
    })
}

fn feed_for(spec: &Spec, file: &Path) -> Result<Feed, FeedError> {
    let cfg_err = |m: String| FeedError::Config {
        path: spec.feed_file.clone().unwrap_or_else(|| file.to_path_buf()),
        message: m,
    };
    let mut table: toml::Table = match &spec.feed_file {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).map_err(|e| cfg_err(format!("cannot read: {e}")))?;
            toml::from_str(&text).map_err(|e| cfg_err(format!("invalid TOML: {e}")))?
        }
        None => toml::Table::new(),
    };
    if let Some(fmt) = &spec.format {
        table.insert("format".into(), toml::Value::String(fmt.clone()));
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    table.insert(
        "url".into(),
        toml::Value::String(abs.to_string_lossy().into_owned()),
    );
    let provider = spec
        .provider
        .clone()
        .or_else(|| {
            table
                .get("provider")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .or_else(|| provider_in_path(file))
        .ok_or_else(|| cfg_err("no provider: pass --provider".into()))?;
    table.insert("provider".into(), toml::Value::String(provider.clone()));
    table
        .entry("check_places")
        .or_insert(toml::Value::Boolean(true));
    let format = table
        .get("format")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let name = match &spec.feed_file {
        Some(f) => format!(
            "backfill-{}",
            f.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => format!("backfill-{format}-{provider}"),
    };
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let text = toml::to_string(&table).map_err(|e| cfg_err(e.to_string()))?;
    feed::parse_feed(&PathBuf::from(format!("{name}.toml")), &text)
}

/// Parse a run's payload (an unparseable one is kept under `failed/`, never in
/// `raw/`), merge its FX rates (healing the runs that waited for them), then store its
/// offers by day with the payload, filling in the outcome's counts.
fn import_run(
    feed: &Feed,
    pages: &[Page],
    at: DateTime<Utc>,
    store: &Store,
    tables: &Tables,
    fx: &mut polars::prelude::DataFrame,
    o: &mut FileOutcome,
) -> Result<(), FileError> {
    let parsed = match parse_checked(feed, pages) {
        Ok(p) => p,
        Err(error) => {
            let quarantined = quarantine(store, feed, at, pages, &error.to_string());
            return Err(FileError::Unparsed {
                error: Box::new(error),
                quarantined,
            });
        }
    };
    if !parsed.fx.is_empty() {
        store.merge_fx(&parsed.fx)?;
        *fx = load_fx(store)?;
        o.healed = heal_fx(store, tables, &parsed.fx)?;
    }
    if parsed.offers.is_empty() && parsed.rejects.is_empty() {
        o.counts = Some((0, 0, parsed.fx.len()));
        return Ok(());
    }
    let fx_rates = parsed.fx.len();
    let added = store_by_day(
        feed,
        parsed,
        at,
        store,
        tables,
        fx,
        Some(Archive::plain(pages)),
    )?;
    if let Some((stored, rejected)) = added {
        o.counts = Some((stored, rejected.iter().map(|r| r.1).sum(), fx_rates));
        o.rejected = rejected;
    }
    Ok(())
}

/// Import every file under `paths`; `progress` is called once per file with a line.
pub async fn backfill(
    spec: &Spec,
    paths: &[PathBuf],
    store: &Store,
    tables: &Tables,
    mut progress: impl FnMut(&FileOutcome, usize, usize),
) -> Result<Vec<FileOutcome>, StoreError> {
    let files = find_files(paths).map_err(|source| StoreError::Io {
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    let mut fx = fx_of(store)?;
    let mut out = Vec::new();
    // Payloads of formats read as streams are spooled here, adopted as blobs or
    // removed below (and emptied with `.tmp/` should the back-fill not finish).
    let spool = spool::folder(&store.tmp_dir(), "backfill");
    for (i, file) in files.iter().enumerate() {
        let mut o = FileOutcome {
            path: file.clone(),
            feed: String::new(),
            observed_at: None,
            counts: None,
            rejected: Vec::new(),
            missing: false,
            healed: Healed::default(),
            error: None,
        };
        let res: Result<(), FileError> = async {
            let feed = feed_for(spec, file)?;
            o.feed = feed.config.name.clone();
            let (at, by) = match (spec.at, date_in_path(file)) {
                (Some(at), _) => (at, "--at"),
                (None, Some(d)) => (
                    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc(),
                    "the path",
                ),
                (None, None) => return Err(FileError::NoDate { path: file.clone() }),
            };
            if !crate::week::plausible(at.date_naive()) {
                return Err(FileError::Implausible {
                    path: file.clone(),
                    date: at.date_naive(),
                    by,
                });
            }
            o.observed_at = Some(at);
            if store.has_run(&feed.config.name, at) {
                return Ok(());
            }
            let pages = fetch::recorded_payload(&feed, file, &spool).await?;
            let imported = import_run(&feed, &pages, at, store, tables, &mut fx, &mut o);
            remove_spooled(&pages);
            imported
        }
        .await;
        o.error = res.err().map(|e| e.to_string());
        progress(&o, i + 1, files.len());
        out.push(o);
    }
    spool::remove_folder(&spool).await;
    Ok(out)
}

/// Remove the spool files of `pages` that were not adopted as blobs (a run already
/// stored, a payload that did not parse: `failed/` keeps a copy).
fn remove_spooled(pages: &[Page]) {
    for s in pages.iter().filter_map(|p| p.spool.as_ref()) {
        let _ = std::fs::remove_file(&s.path);
    }
}

/// What a renormalisation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Renormalised {
    /// Runs rebuilt from their raw payload.
    pub rebuilt: usize,
    /// Offers stored by the rebuilt runs.
    pub stored: usize,
    /// Stored runs kept unchanged (raw payload missing or unparseable) and their offers.
    pub kept_runs: usize,
    pub kept_offers: usize,
    /// One line per raw payload that could not be rebuilt (its old offers were kept).
    pub failures: Vec<String>,
}

/// A peer's dated catalogue versions to import, one per day.
#[derive(Debug, Clone)]
pub struct VersionSpec {
    /// The adapter; it must read a `version` key (gpuhunt_catalog).
    pub format: String,
    /// The catalogue base URL.
    pub url: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The feed of one version: stored as `backfill-<format>`, places checked.
fn version_feed(spec: &VersionSpec, version: &str) -> Result<Feed, FeedError> {
    let mut t = toml::Table::new();
    for (k, v) in [("format", &spec.format), ("url", &spec.url)] {
        t.insert(k.into(), toml::Value::String(v.clone()));
    }
    t.insert("version".into(), toml::Value::String(version.into()));
    t.insert("check_places".into(), toml::Value::Boolean(true));
    let text = toml::to_string(&t).map_err(|e| FeedError::Config {
        path: PathBuf::from(&spec.url),
        message: e.to_string(),
    })?;
    feed::parse_feed(
        &PathBuf::from(format!("backfill-{}.toml", spec.format)),
        &text,
    )
}

/// Fetch and store each day's version `YYYYMMDD` from `from` to `to`, at that day's
/// midnight. A version the server does not have (404, or 403 as S3 answers for a
/// missing key) is counted as missing; a day already stored is not fetched again.
pub async fn backfill_versions(
    spec: &VersionSpec,
    store: &Store,
    tables: &Tables,
    client: &reqwest::Client,
    mut progress: impl FnMut(&FileOutcome, usize, usize),
) -> Result<Vec<FileOutcome>, StoreError> {
    let mut fx = fx_of(store)?;
    let days: Vec<NaiveDate> = spec
        .from
        .iter_days()
        .take_while(|d| *d <= spec.to)
        .collect();
    let mut out = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let version = day.format("%Y%m%d").to_string();
        let at = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        let mut o = FileOutcome {
            path: PathBuf::from(&version),
            feed: format!("backfill-{}", spec.format),
            observed_at: Some(at),
            counts: None,
            rejected: Vec::new(),
            missing: false,
            healed: Healed::default(),
            error: None,
        };
        let res: Result<(), FileError> = async {
            if !crate::week::plausible(*day) {
                return Err(FileError::Implausible {
                    path: PathBuf::from(&version),
                    date: *day,
                    by: "the version",
                });
            }
            let feed = version_feed(spec, &version)?;
            if store.has_run(&feed.config.name, at) {
                return Ok(());
            }
            let pages = match fetch::fetch(client, &feed, None, at).await {
                Err(FeedError::Status {
                    status: 403 | 404, ..
                }) => {
                    o.missing = true;
                    return Ok(());
                }
                r => r?,
            };
            import_run(&feed, &pages, at, store, tables, &mut fx, &mut o)
        }
        .await;
        o.error = res.err().map(|e| e.to_string());
        progress(&o, i + 1, days.len());
        out.push(o);
    }
    Ok(out)
}

/// Why a kept run was not rebuilt.
#[derive(Debug, thiserror::Error)]
enum Unbuilt {
    #[error("raw payload unreadable: {0}")]
    Raw(#[from] StoreError),
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// A kept run's feed and pages. The feed file is read first: the pages of a format
/// read as a stream name their checked blobs (never the whole body in memory).
fn load_run(run: &RawRun) -> Result<(Feed, Vec<Page>), Unbuilt> {
    let text = run.feed_text()?;
    let feed = feed::parse_feed(&PathBuf::from(format!("{}.toml", run.feed)), &text)?;
    let (_, pages) = run.load_for(feed.adapter.reads_streams())?;
    Ok((feed, pages))
}

/// A feed's last parsed payload in a renormalise or FX healing, under the payload's identity
/// ([`RawRun::payload_id`]): the hours that kept the same payload (an unchanged list,
/// a 304) parse it once. A parse does not depend on the observation time.
struct LastParse {
    id: Option<String>,
    feed: Feed,
    parsed: Parsed,
}

/// A kept run's feed and parsed payload: `last`'s when the feed's last parse was of
/// the same payload, else loaded, parsed and kept there.
fn parsed_run<'a>(
    run: &RawRun,
    last: &'a mut HashMap<String, LastParse>,
) -> Result<&'a LastParse, Unbuilt> {
    let id = run.payload_id()?;
    let known = last.get(&run.feed).and_then(|p| p.id.as_ref());
    if id.is_none() || known != id.as_ref() {
        let (feed, pages) = load_run(run)?;
        let parsed = parse_pages(&feed, &pages)?;
        last.insert(run.feed.clone(), LastParse { id, feed, parsed });
    }
    Ok(&last[&run.feed])
}

/// Rebuild one kept run into `stage`; `None` when its payload holds no offers or
/// rejects. `last` holds each feed's last parse.
fn rebuild(
    run: &RawRun,
    stage: &Store,
    tables: &Tables,
    fx: &polars::prelude::DataFrame,
    last: &mut HashMap<String, LastParse>,
) -> Result<Option<Stored>, Unbuilt> {
    let p = parsed_run(run, last)?;
    if p.parsed.offers.is_empty() && p.parsed.rejects.is_empty() {
        return Ok(None);
    }
    let parsed = p.parsed.clone();
    Ok(store_by_day(
        &p.feed, parsed, run.at, stage, tables, fx, None,
    )?)
}

/// Rebuild offers and rejects from every kept raw payload with the current tables.
/// A stored run that cannot be rebuilt keeps its stored offers and rejects unchanged.
pub fn renormalise(store: &Store, tables: &Tables) -> Result<Renormalised, StoreError> {
    let fx = fx_of(store)?;
    let runs = store.raw_runs()?;
    let stored_runs = store.stored_runs()?;
    store.replace_normalised(|stage| {
        let mut out = Renormalised::default();
        let mut last = HashMap::new();
        for run in &runs {
            match rebuild(run, stage, tables, &fx, &mut last) {
                Ok(None) => {}
                Ok(Some((n, _))) => {
                    out.stored += n;
                    out.rebuilt += 1;
                }
                // A failed write to the staging tree aborts (the live tree stays).
                Err(Unbuilt::Feed(FeedError::Store { source, .. })) => return Err(source),
                Err(e) => out.failures.push(format!(
                    "{} {}: {e}; its stored offers are kept",
                    run.feed, run.at
                )),
            }
        }
        // Every stored run the stage does not hold yet is carried over unchanged.
        for (feed, at) in &stored_runs {
            if !stage.has_run(feed, *at) {
                out.kept_offers += store.copy_run(stage, feed, *at)?;
                out.kept_runs += 1;
            }
        }
        Ok(out)
    })
}

/// Runs re-normalised by [`heal_fx`] and the offers they now store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Healed {
    pub runs: usize,
    pub offers: usize,
    /// Runs that would heal but sit in a compacted day (run `gpurent renormalise`).
    pub compacted: usize,
}

/// The (feed, hour) of every stored run with `missing_fx_rate` rejects in one of
/// `currencies`.
fn waiting_runs(
    store: &Store,
    currencies: &[String],
) -> Result<std::collections::BTreeSet<(String, String)>, StoreError> {
    use polars::prelude::*;
    let Some(lf) = store.scan_rejects(None, None)? else {
        return Ok(Default::default());
    };
    let pl = |source| StoreError::Polars {
        path: store.root().join("rejects"),
        source,
    };
    let wanted = currencies.iter().fold(lit(false), |any, c| {
        any.or(col("currency").eq(lit(c.clone())))
    });
    let df = lf
        .filter(col("reason").eq(lit("missing_fx_rate")).and(wanted))
        .select([col("feed"), col("observed_at").dt().strftime("%Y%m%dT%H")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .map_err(pl)?;
    let feeds = df
        .column("feed")
        .and_then(|c| c.str().cloned())
        .map_err(pl)?;
    let hours = df
        .column("observed_at")
        .and_then(|c| c.str().cloned())
        .map_err(pl)?;
    Ok(feeds
        .iter()
        .zip(hours.iter())
        .filter_map(|(f, h)| Some((f?.to_string(), h?.to_string())))
        .collect())
}

/// After new FX rates are stored: re-normalise, from the kept raw payloads, the runs
/// whose offers were rejected as `missing_fx_rate` in a currency of `new_rates`, and
/// replace their offers and rejects when more offers now convert. No manual
/// `renormalise` is needed whichever of the prices and the rates arrived first.
/// A payload whose rows carry their own dates was stored as one run per day
/// ([`by_day`]), only the run at its `at` keeping it: such a day's run is healed
/// from that payload, split as it was stored.
pub fn heal_fx(
    store: &Store,
    tables: &Tables,
    new_rates: &[crate::model::FxRate],
) -> Result<Healed, StoreError> {
    let mut currencies: Vec<String> = new_rates.iter().map(|r| r.currency.clone()).collect();
    currencies.sort();
    currencies.dedup();
    let waiting = waiting_runs(store, &currencies)?;
    let mut healed = Healed::default();
    if waiting.is_empty() {
        return Ok(healed);
    }
    let fx = fx_of(store)?;
    let runs = store.raw_runs()?;
    let kept: std::collections::BTreeSet<(String, String)> = runs
        .iter()
        .map(|r| (r.feed.clone(), hour_key(r.at)))
        .collect();
    // Waiting runs with no payload of their own: days split off a payload.
    let split_off: std::collections::BTreeSet<&str> = waiting
        .iter()
        .filter(|w| !kept.contains(*w))
        .map(|(feed, _)| feed.as_str())
        .collect();
    let mut last = HashMap::new();
    for run in &runs {
        let own = waiting.contains(&(run.feed.clone(), hour_key(run.at)));
        if !own && !split_off.contains(run.feed.as_str()) {
            continue;
        }
        // A feed file or payload that fails failed the same way when it was stored.
        let p = match parsed_run(run, &mut last) {
            Ok(p) => p,
            Err(Unbuilt::Raw(e)) => return Err(e),
            Err(Unbuilt::Feed(_)) => continue,
        };
        for (when, part) in by_day(p.parsed.clone(), run.at) {
            // A day's run is this payload's only where no payload of its own is kept.
            let mine = when == run.at || !kept.contains(&(run.feed.clone(), hour_key(when)));
            if mine && waits(&part, &run.feed, when, &waiting) {
                let stored = (run.feed.as_str(), when);
                heal_run(store, &p.feed, stored, part, (tables, &fx), &mut healed)?;
            }
        }
    }
    if healed.runs + healed.compacted > 0 {
        tracing::info!(
            runs = healed.runs,
            offers = healed.offers,
            compacted = healed.compacted,
            "re-normalised runs that waited for FX rates"
        );
    }
    Ok(healed)
}

/// Whether a part of a payload, stored at `when`, holds a row that waits: one whose
/// observation hour (its own time, else `when`) has `missing_fx_rate` rejects of
/// `feed` in `waiting`, as [`waiting_runs`] names them by the rejects' `observed_at`.
fn waits(
    part: &Parsed,
    feed: &str,
    when: DateTime<Utc>,
    waiting: &std::collections::BTreeSet<(String, String)>,
) -> bool {
    let times = &part.offers.observed_at.values;
    times
        .iter()
        .any(|t| waiting.contains(&(feed.to_string(), hour_key(t.unwrap_or(when)))))
}

/// Re-normalise the stored run `(name, at)` from its part of a payload read with
/// `feed`, and replace its offers and rejects when more offers now convert.
fn heal_run(
    store: &Store,
    feed: &Feed,
    (name, at): (&str, DateTime<Utc>),
    part: Parsed,
    (tables, fx): (&Tables, &polars::prelude::DataFrame),
    healed: &mut Healed,
) -> Result<(), StoreError> {
    let Ok(mut batch) = normalise_parsed(feed, part, at, tables, fx) else {
        return Ok(());
    };
    // More offers convert now; or as many, but the stored rejects still list some
    // (a healing that crashed between its two files).
    let before = store.run_offer_count(name, at)?;
    let rejects = store.run_reject_count(name, at)?;
    match (before, rejects) {
        (Some(n), Some(r)) if batch.offers.height() > n || batch.rejects.height() < r => {
            store.rewrite_run(name, at, &mut batch.offers, &mut batch.rejects)?;
            healed.runs += 1;
            healed.offers += batch.offers.height().saturating_sub(n);
        }
        (None, _) => healed.compacted += 1,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_providers_from_paths() {
        for (p, date, provider) in [
            (
                "../shared/data/skypilot-catalog/aws/2023-08-01/vms.csv",
                Some("2023-08-01"),
                Some("aws"),
            ),
            ("snapshots/lambda_2024-02-05.csv", Some("2024-02-05"), None),
            (
                "a/2023-01-01/b/2023-06-01/x.csv",
                Some("2023-06-01"),
                Some("a"),
            ),
            ("no/date/here.csv", None, None),
            ("x/2023-13-45/y.csv", None, None),
        ] {
            assert_eq!(
                date_in_path(Path::new(p)).map(|d| d.to_string()).as_deref(),
                date,
                "{p}"
            );
            assert_eq!(provider_in_path(Path::new(p)).as_deref(), provider, "{p}");
        }
    }

    /// The tracker's backfill feed and a parse of `rows` (lines after its header).
    fn tracker(rows: &str) -> (Feed, Parsed) {
        let text = include_str!("../../feeds/backfill/gpu-pricing-tracker-2026.toml");
        let feed = feed::parse_feed(Path::new("tracker.toml"), text).unwrap();
        let header =
            "date,provider,gpu_model,gpu_count,region,rental_type,price_median_usd,n_offers\n";
        let ctx = crate::ingest::adapters::ParseCtx {
            feed: &feed.config.name,
            provider: &feed.config.provider,
        };
        let page = Page::new("", format!("{header}{rows}").into_bytes());
        let parsed = feed.adapter.parse(&page, &ctx).unwrap();
        (feed, parsed)
    }

    /// A file whose rows fall on several days: the run at `at` (which keeps the raw
    /// payload and tells a re-run the file is imported) is stored after every other
    /// day, so a write that fails on a later day leaves the file to be finished by
    /// the re-run (found by a fault hunt: the re-run said "already imported" and the
    /// later day's rows were never stored).
    #[test]
    fn the_run_at_at_is_stored_last_so_a_re_run_finishes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store"));
        let rows = "2026-07-20,vast.ai,RTX 4090,1,US,on_demand,0.40,12\n\
                    2026-07-21,vast.ai,RTX 4090,1,US,on_demand,0.41,11\n\
                    2026-07-22,vast.ai,RTX 4090,1,US,on_demand,0.42,10\n";
        let (feed, _) = tracker(rows);
        let parse = || tracker(rows).1;
        let at = "2026-07-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let (tables, fx) = (Tables::embedded(), load_fx(&store).unwrap());
        // A file where the 07-22 partition folder would be: that day's write fails.
        let blocker = dir.path().join("store/offers/date=2026-07-22");
        std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
        std::fs::write(&blocker, b"").unwrap();
        let first = store_by_day(&feed, parse(), at, &store, tables, &fx, None);
        assert!(first.is_err(), "{first:?}");
        assert!(
            !store.has_run(&feed.config.name, at),
            "the file is not imported yet"
        );

        std::fs::remove_file(&blocker).unwrap();
        let again = store_by_day(&feed, parse(), at, &store, tables, &fx, None).unwrap();
        assert_eq!(
            again.map(|s| s.0),
            Some(2),
            "07-21 and 07-22; 07-20 was stored"
        );
        let day = |d: &str| {
            let t = format!("{d}T00:00:00Z").parse::<DateTime<Utc>>().unwrap();
            store.has_run(&feed.config.name, t)
        };
        assert!(day("2026-07-20") && day("2026-07-21") && day("2026-07-22"));
    }

    /// A row whose own date is a typo (year 1024) is a `bad_date` reject of the run
    /// at `at`: no run, partition or rollup of that year (found by a fault hunt: the
    /// rollup refresh then wrote a file for every week since).
    #[test]
    fn a_row_dated_centuries_away_is_a_reject_of_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store"));
        let (feed, parsed) = tracker(
            "2026-07-20,vast.ai,RTX 4090,1,US,on_demand,0.40,12\n\
             1026-07-21,vast.ai,RTX 4090,1,CN,on_demand,0.41,11\n",
        );
        let at = "2026-07-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let fx = load_fx(&store).unwrap();
        let stored = store_by_day(&feed, parsed, at, &store, Tables::embedded(), &fx, None);
        let (n, rejected) = stored.unwrap().unwrap();
        assert_eq!((n, rejected), (1, vec![("bad_date".to_string(), 1)]));
        assert_eq!(
            store.offer_dates().unwrap(),
            ["2026-07-20", "2026-07-21"].map(|d| d.parse::<NaiveDate>().unwrap())
        );
    }
}
