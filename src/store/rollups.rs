//! Where the per-week rollups live and what they were computed from.
//!
//! Layout: `<store>/rollups/<YYYY-Www>__<key>.parquet`, one file per ISO week. The key
//! is a fingerprint of the inputs (see `analysis::rollup`), so a rollup whose offers
//! changed (an ingest, a back-fill, FX healing, compaction, renormalise) is simply not
//! found and is computed again; nothing has to remember to invalidate it.
//! Invariants: rollups are written by writers (under the lock) through `.tmp/` +
//! rename, like every other file; a week keeps one file (older keys are deleted after
//! the new one is in place); they are derived data: deleting `rollups/` loses nothing.

use std::fs;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::StoreError;
use crate::store::fsutil::io;
use crate::store::{write_parquet_via, Store};

/// What a stored offers file is, for fingerprints: its date, its path under the
/// store, its length and its modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub date: NaiveDate,
    pub name: String,
    pub len: u64,
    pub modified_ns: u128,
}

impl Store {
    fn rollup_dir(&self) -> PathBuf {
        self.root().join("rollups")
    }

    pub fn rollup_path(&self, week: &str, key: &str) -> PathBuf {
        self.rollup_dir().join(format!("{week}__{key}.parquet"))
    }

    /// Every offers file a reader would scan (hours a day file holds are left out),
    /// with its stamp, sorted by date and name.
    pub fn offer_stamps(&self) -> Result<Vec<FileStamp>, StoreError> {
        let mut out = Vec::new();
        for path in self.files("offers", None, None)? {
            let meta = fs::metadata(&path).map_err(io(&path))?;
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let date = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str()?.strip_prefix("date="))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let (Some(date), Some(name)) = (date, path.file_name()) else {
                continue;
            };
            out.push(FileStamp {
                date,
                name: name.to_string_lossy().into_owned(),
                len: meta.len(),
                modified_ns,
            });
        }
        out.sort_by(|a, b| (a.date, &a.name).cmp(&(b.date, &b.name)));
        Ok(out)
    }

    /// Whether the rollup of `week` computed from inputs with fingerprint `key` is stored.
    pub fn has_rollup(&self, week: &str, key: &str) -> bool {
        self.rollup_path(week, key).exists()
    }

    /// The rollup of `week` computed from inputs with fingerprint `key`, if stored.
    pub fn read_rollup(&self, week: &str, key: &str) -> Result<Option<DataFrame>, StoreError> {
        let path = self.rollup_path(week, key);
        if !path.exists() {
            return Ok(None);
        }
        let f = fs::File::open(&path).map_err(io(&path))?;
        ParquetReader::new(f)
            .finish()
            .map(Some)
            .map_err(|source| StoreError::Polars { path, source })
    }

    /// Store the rollup of `week` under `key` and delete the week's older rollups.
    pub fn write_rollup(
        &self,
        week: &str,
        key: &str,
        df: &mut DataFrame,
    ) -> Result<(), StoreError> {
        let path = self.rollup_path(week, key);
        write_parquet_via(&self.tmp_dir(), &path, df)?;
        let prefix = format!("{week}__");
        let dir = self.rollup_dir();
        for e in fs::read_dir(&dir).map_err(io(&dir))? {
            let p = e.map_err(io(&dir))?.path();
            let stale = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && p != path);
            if stale {
                fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok(())
    }

    /// How many rollup files the store holds (for run summaries and tests).
    pub fn rollup_count(&self) -> Result<usize, StoreError> {
        let dir = self.rollup_dir();
        if !dir.exists() {
            return Ok(0);
        }
        Ok(fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            })
            .count())
    }
}
