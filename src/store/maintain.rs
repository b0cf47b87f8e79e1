//! Whole-store compaction, as `gpurent compact` and the daemon run it: every date
//! before a given one merged into day files ([`Store::compact`]), then, on a local
//! store, day files older than the row-order key re-sorted by model
//! ([`Store::resort_days`]), each feed's raw hour files of a date merged into a day
//! file ([`Store::merge_raw_hours`]), the raw payloads no hour names removed
//! ([`Store::remove_unnamed_blobs`]) and those ingest kept as stored blocks deflated
//! ([`Store::deflate_blobs`]).
//!
//! Invariants: nothing here changes a stored row or a payload an hour names, only
//! how files hold them; a day or blob that cannot be worked on is named in the result
//! and left as it was, and the other days and blobs go on; the caller holds the
//! store lock.

use chrono::NaiveDate;

use crate::error::StoreError;
use crate::store::deflate::Deflated;
use crate::store::{Store, Swept};

/// What [`Store::compact_before`] did.
#[derive(Debug, Default)]
pub struct Compacted {
    /// Dates whose hourly files were merged, the files they had and the files they have.
    pub days: usize,
    pub files_before: usize,
    pub files_after: usize,
    /// Older day files rewritten sorted by model.
    pub resorted: usize,
    /// Raw hour files merged into day files, and the day files written (a local
    /// store only).
    pub raw_hours: usize,
    pub raw_days: usize,
    /// Raw payloads no hour names, removed (a local store only).
    pub swept: Swept,
    /// Why no blob was removed: an hour's file that cannot be read.
    pub unswept: Option<StoreError>,
    /// Raw payloads deflated (a local store only).
    pub deflated: Deflated,
    /// Each day left uncompacted or day file left unsorted, with its error (the
    /// blobs left as stored are in `deflated.failed`).
    pub failed: Vec<StoreError>,
}

impl Compacted {
    /// Days, day files and blobs left as they were.
    pub fn failures(&self) -> usize {
        self.failed.len() + self.deflated.failed.len() + usize::from(self.unswept.is_some())
    }

    /// The summary lines `gpurent compact` prints and the daemon logs.
    pub fn lines(&self) -> [String; 2] {
        const MIB: f64 = 1024.0 * 1024.0;
        let d = &self.deflated;
        [
            format!(
                "{} days compacted ({} files merged into {}); {} older day files sorted by model",
                self.days, self.files_before, self.files_after, self.resorted
            ),
            format!(
                "{} raw payloads deflated, {:.1} MiB -> {:.1} MiB; {} no hour names removed ({:.1} MiB); \
                 {} raw hour files merged into {} day files",
                d.blobs,
                d.bytes_before as f64 / MIB,
                d.bytes_after as f64 / MIB,
                self.swept.blobs,
                self.swept.bytes as f64 / MIB,
                self.raw_hours,
                self.raw_days
            ),
        ]
    }

    /// One line per day, day file or blob left as it was.
    pub fn failure_lines(&self) -> Vec<String> {
        let days = self.failed.iter().map(|e| format!("left as it was: {e}"));
        let blobs =
            (self.deflated.failed.iter()).map(|e| format!("raw payload left as stored: {e}"));
        let unswept = (self.unswept.iter())
            .map(|e| format!("raw payloads no hour names kept, as one hour cannot be read: {e}"));
        days.chain(blobs).chain(unswept).collect()
    }
}

impl Store {
    /// Compact every date with offers before `before` (see the module's header);
    /// `local` adds the re-sorting of older day files and the deflating of blobs (an
    /// `s3://` store's day objects are written once, and its blobs were deflated
    /// before they were pushed). Fails only when the store cannot be listed.
    pub fn compact_before(&self, before: NaiveDate, local: bool) -> Result<Compacted, StoreError> {
        let mut out = Compacted::default();
        for date in self.offer_dates()?.into_iter().filter(|d| *d < before) {
            match self.compact(date) {
                Ok((b, a)) if a < b => {
                    out.days += 1;
                    out.files_before += b;
                    out.files_after += a;
                }
                Ok(_) => {}
                Err(e) => out.failed.push(e),
            }
            if local {
                match self.resort_days(date) {
                    Ok(r) => {
                        out.resorted += r.rewritten;
                        out.failed.extend(r.failed);
                    }
                    Err(e) => out.failed.push(e),
                }
            }
        }
        if local {
            let merged = self.merge_raw_hours(before)?;
            (out.raw_hours, out.raw_days) = (merged.hours, merged.days);
            out.failed.extend(merged.failed);
            match self.remove_unnamed_blobs() {
                Ok(s) => out.swept = s,
                Err(e) => out.unswept = Some(e),
            }
            out.deflated = self.deflate_blobs()?;
        }
        Ok(out)
    }
}
