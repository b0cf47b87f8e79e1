//! Backfill and re-normalisation: feed runs that come from files rather than the clock.
//!
//! `backfill` imports a tree of dated snapshots (a folder or file name holding
//! `YYYY-MM-DD` gives the observation date) through the same parse → normalise →
//! store path as a live ingest; re-running it adds nothing, because the store keeps
//! one file per feed and hour. `renormalise` rebuilds the offers and rejects from the
//! kept raw payloads after the tables change, swapping the new trees in atomically.
//! Invariants: no network I/O; the observation time comes from the path or the
//! caller; `renormalise` never drops a stored hour: an hour whose raw payload is
//! missing or no longer parses keeps its stored offers unchanged, and is counted.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{FeedError, StoreError};
use crate::ingest::feed::{self, Feed};
use crate::ingest::fetch;
use crate::ingest::{load_fx, parse_checked, parse_pages, quarantine, store_parsed};
use crate::store::Store;
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
    pub error: Option<String>,
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
    let mut fx = load_fx(store).map_err(|e| StoreError::Io {
        path: store.root().join("fx"),
        source: std::io::Error::other(e),
    })?;
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut o = FileOutcome {
            path: file.clone(),
            feed: String::new(),
            observed_at: None,
            counts: None,
            error: None,
        };
        let res: Result<(), String> = async {
            let feed = feed_for(spec, file).map_err(|e| e.to_string())?;
            o.feed = feed.config.name.clone();
            let at = match (spec.at, date_in_path(file)) {
                (Some(at), _) => at,
                (None, Some(d)) => d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc(),
                (None, None) => {
                    return Err(format!(
                        "{}: no YYYY-MM-DD in the path; pass --at",
                        file.display()
                    ))
                }
            };
            o.observed_at = Some(at);
            if store.has_run(&feed.config.name, at) {
                return Ok(());
            }
            let pages = fetch::read_recorded(&feed.config.name, file)
                .await
                .map_err(|e| e.to_string())?;
            let parsed = match parse_checked(&feed, &pages, at) {
                Ok(p) => p,
                Err(e) => {
                    let msg = e.to_string();
                    return Err(msg.clone() + &quarantine(store, &feed, at, &pages, &msg));
                }
            };
            if !parsed.fx.is_empty() {
                store.merge_fx(&parsed.fx).map_err(|e| e.to_string())?;
                fx = load_fx(store)?;
            }
            if parsed.offers.is_empty() && parsed.rejects.is_empty() {
                o.counts = Some((0, 0, parsed.fx.len()));
                return Ok(());
            }
            let added = store_parsed(
                &feed,
                &parsed,
                at,
                store,
                tables,
                &fx,
                Some(pages.as_slice()),
            )
            .map_err(|e| e.to_string())?;
            o.counts = added.map(|(stored, rejected)| {
                (stored, rejected.iter().map(|r| r.1).sum(), parsed.fx.len())
            });
            Ok(())
        }
        .await;
        o.error = res.err();
        progress(&o, i + 1, files.len());
        out.push(o);
    }
    Ok(out)
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

/// Rebuild offers and rejects from every kept raw payload with the current tables.
/// A stored run that cannot be rebuilt keeps its stored offers and rejects unchanged.
pub fn renormalise(store: &Store, tables: &Tables) -> Result<Renormalised, StoreError> {
    let fx = load_fx(store).map_err(|e| StoreError::Io {
        path: store.root().join("fx"),
        source: std::io::Error::other(e),
    })?;
    let runs = store.raw_runs()?;
    let stored_runs = store.stored_runs()?;
    store.replace_normalised(|stage| {
        let mut out = Renormalised::default();
        for run in &runs {
            let (text, pages) = match run.load() {
                Ok(x) => x,
                Err(e) => {
                    out.failures.push(format!(
                        "{} {}: raw payload unreadable: {e}; its stored offers are kept",
                        run.feed, run.at
                    ));
                    continue;
                }
            };
            let res = feed::parse_feed(&PathBuf::from(format!("{}.toml", run.feed)), &text)
                .and_then(|feed| {
                    let parsed = parse_pages(&feed, &pages, run.at)?;
                    if parsed.offers.is_empty() && parsed.rejects.is_empty() {
                        return Ok(None);
                    }
                    store_parsed(&feed, &parsed, run.at, stage, tables, &fx, None)
                });
            match res {
                Ok(None) => {}
                Ok(Some((n, _))) => {
                    out.stored += n;
                    out.rebuilt += 1;
                }
                // A failed write to the staging tree aborts (the live tree stays).
                Err(FeedError::Store { source, .. }) => return Err(source),
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
}
