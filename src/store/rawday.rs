//! Day files of raw hours. `compact` merges each feed's hour files of a date
//! (`raw/date=D/<feed>__<YYYYMMDDTHH>.json`) into one `raw/date=D/<feed>__day.json`,
//! `{"hours": {"<YYYYMMDDTHH>": <the hour's file as written>, ...}}`: a year of a
//! dozen hourly feeds is then about 4,400 small files instead of 105,120, each of
//! which took a 4 KiB block for about 500 bytes.
//!
//! Invariants: an hour's object is kept as written (every key, so `renormalise`,
//! `last_payload` and the blob sweep read what they read before); the day file is
//! written whole (temporary file in `.tmp/`, fsync, rename) before the hour files
//! it took in are removed, so a crash leaves an hour in both places, read from its
//! hour file, never in neither; an hour file written after its day was merged (a
//! back-fill, an hour ingested again) wins over the day's entry until the next merge
//! takes it in; a feed whose hour file or day file cannot be read is named and left
//! as it is, and the other feeds go on.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::fsutil::{io, sync_dir, write_atomic_via};
use super::hour_key;
use super::raw::{raw_meta as meta, raw_name, read_json, Hour, RawName};
use super::Store;
use crate::error::StoreError;

/// What follows `<feed>__` in a day file's name (before `.json`).
pub(super) const DAY: &str = "day";

#[derive(Deserialize)]
struct Day {
    hours: BTreeMap<String, Hour>,
}

/// The hours of the day file at `path`, by `YYYYMMDDTHH`.
pub(super) fn read_day(path: &Path) -> Result<BTreeMap<String, Hour>, StoreError> {
    Ok(read_json::<Day>(path)?.hours)
}

/// What [`Store::merge_raw_hours`] did: hour files taken into day files, the day
/// files written, and each feed's date left as it was, with its error.
#[derive(Debug, Default)]
pub struct MergedHours {
    pub hours: usize,
    pub days: usize,
    pub failed: Vec<StoreError>,
}

/// Each feed's hour files in the date folder `dir` (named as the readers name them,
/// [`raw_name`]): (`YYYYMMDDTHH`, path), sorted.
fn hour_files(dir: &Path) -> Result<BTreeMap<String, Vec<(String, PathBuf)>>, StoreError> {
    let mut out: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in rd {
        let p = e.map_err(io(dir))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(RawName::Hour {
            feed,
            at,
            json: true,
        }) = raw_name(name)
        {
            let feed = feed.to_string();
            out.entry(feed).or_default().push((hour_key(at), p));
        }
    }
    out.values_mut().for_each(|v| v.sort());
    Ok(out)
}

impl Store {
    /// Merge each feed's hour files of every date before `before` into its day file
    /// (see the module's header). The caller holds the store lock.
    pub fn merge_raw_hours(&self, before: NaiveDate) -> Result<MergedHours, StoreError> {
        let mut out = MergedHours::default();
        for (date, dir) in self.partitions("raw")? {
            if date >= before {
                continue;
            }
            for (feed, hours) in hour_files(&dir)? {
                match self.merge_feed(&dir, &feed, &hours) {
                    Ok(()) => {
                        out.hours += hours.len();
                        out.days += 1;
                    }
                    Err(e) => out.failed.push(e),
                }
            }
        }
        Ok(out)
    }

    /// Take `hours` (one feed's hour files in `dir`) into the feed's day file there.
    fn merge_feed(
        &self,
        dir: &Path,
        feed: &str,
        hours: &[(String, PathBuf)],
    ) -> Result<(), StoreError> {
        let day = dir.join(format!("{feed}__{DAY}.json"));
        let mut all = match day.exists() {
            true => day_entries(&day)?,
            false => Map::new(),
        };
        for (h, path) in hours {
            let hour: Value = read_json(path)?;
            // An hour its readers cannot read would make the whole day unreadable.
            Hour::deserialize(&hour).map_err(meta(path))?;
            all.insert(h.clone(), hour);
        }
        let text = serde_json::to_vec(&serde_json::json!({ "hours": all }))
            .expect("JSON values serialise");
        write_atomic_via(&self.tmp_dir(), &day, &text)?;
        for (_, path) in hours {
            fs::remove_file(path).map_err(io(path))?;
        }
        sync_dir(dir);
        Ok(())
    }
}

/// The `hours` object of the day file at `path`, every entry readable.
fn day_entries(path: &Path) -> Result<Map<String, Value>, StoreError> {
    let value: Value = read_json(path)?;
    Day::deserialize(&value).map_err(meta(path))?;
    match value {
        Value::Object(mut day) => match day.remove("hours") {
            Some(Value::Object(hours)) => Ok(hours),
            _ => unreachable!("a Day has `hours`, an object"),
        },
        _ => unreachable!("a Day is an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Page;
    use chrono::{DateTime, TimeZone, Utc};

    fn at(day: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 10, day, h, 0, 0).unwrap()
    }

    fn pages(body: &str) -> [Page; 1] {
        [Page::new("", body.as_bytes().to_vec())]
    }

    /// Every run as (feed, hour, feed file, pages, payload id).
    type Seen = Vec<(String, DateTime<Utc>, String, Vec<Page>, Option<String>)>;

    fn seen(store: &Store) -> Seen {
        let runs = store.raw_runs().unwrap();
        (runs.iter())
            .map(|r| {
                let (text, pages) = r.load().unwrap();
                (r.feed.clone(), r.at, text, pages, r.payload_id().unwrap())
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = (fs::read_dir(dir).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Merged hours read back as they were written (pages, feed file, validators),
    /// only dates before the cut are merged, an hour written again after its day was
    /// merged wins until the next merge takes it in, and blobs named only in a day
    /// file are not swept.
    #[test]
    fn merged_hours_read_as_they_were_written() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let tagged = serde_json::json!({"etag": "\"v1\"", "not_modified": true});
        for h in 0..3 {
            let body = if h == 2 { "changed" } else { "list" };
            (store.write_raw("cn", at(7, h), "f = 1\n", &tagged, &pages(body))).unwrap();
            let meta = serde_json::json!({"n": h});
            (store.write_raw("us", at(7, h), "g = 2\n", &meta, &pages("us list"))).unwrap();
        }
        (store.write_raw("cn", at(8, 0), "f = 1\n", &tagged, &pages("list"))).unwrap();
        let before = seen(&store);
        let merged = store.merge_raw_hours(at(8, 0).date_naive()).unwrap();
        assert_eq!((merged.hours, merged.days, merged.failed.len()), (6, 2, 0));
        let day = tmp.path().join("raw/date=2024-10-07");
        assert_eq!(names(&day), ["cn__day.json", "us__day.json"]);
        let next = tmp.path().join("raw/date=2024-10-08");
        assert_eq!(names(&next), ["cn__20241008T00.json"]);
        assert_eq!(seen(&store), before);
        let written: Value = read_json(&day.join("us__day.json")).unwrap();
        assert_eq!(written["hours"]["20241007T01"]["n"], 1);
        assert_eq!(
            store.remove_unnamed_blobs().unwrap(),
            super::super::Swept::default()
        );
        let last = store.last_payload("cn", "f = 1\n").unwrap();
        assert_eq!(last.validators.etag.as_deref(), Some("\"v1\""));
        assert_eq!(last.run.at, at(8, 0));

        // Hour 1 of the merged day written again, with another payload: it wins.
        (store.write_raw("cn", at(7, 1), "f = 1\n", &tagged, &pages("again"))).unwrap();
        let again = |s: &Seen| s.iter().find(|r| r.1 == at(7, 1) && r.0 == "cn").cloned();
        let expected = Some((
            "cn".into(),
            at(7, 1),
            "f = 1\n".into(),
            pages("again").to_vec(),
        ));
        let got = again(&seen(&store)).map(|r| (r.0, r.1, r.2, r.3));
        assert_eq!(got, expected);
        let merged = store.merge_raw_hours(at(8, 0).date_naive()).unwrap();
        assert_eq!((merged.hours, merged.days), (1, 1));
        assert_eq!(names(&day), ["cn__day.json", "us__day.json"]);
        let got = again(&seen(&store)).map(|r| (r.0, r.1, r.2, r.3));
        assert_eq!(got, expected);
        assert_eq!(seen(&store).len(), before.len());
        // The blob of hour 1's first payload ("list") is still named by hour 0.
        assert_eq!(store.remove_unnamed_blobs().unwrap().blobs, 0);
    }

    /// A feed's hour file that cannot be read leaves that feed's date as it is (named)
    /// while the other feed merges; a day file that cannot be read is one run that
    /// names it, and stops the blob sweep.
    #[test]
    fn unreadable_hour_or_day_files_are_named_and_left() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let meta = serde_json::json!({});
        for feed in ["cn", "us"] {
            (store.write_raw(feed, at(7, 0), "f\n", &meta, &pages(feed))).unwrap();
        }
        let day = tmp.path().join("raw/date=2024-10-07");
        fs::write(day.join("cn__20241007T05.json"), b"{\"blobs\": 3}").unwrap();
        let merged = store.merge_raw_hours(at(8, 0).date_naive()).unwrap();
        assert_eq!((merged.hours, merged.days), (1, 1));
        let e = merged.failed[0].to_string();
        assert!(e.contains("cn__20241007T05.json"), "{e}");
        assert_eq!(
            names(&day),
            [
                "cn__20241007T00.json",
                "cn__20241007T05.json",
                "us__day.json"
            ]
        );

        fs::write(day.join("us__day.json"), b"{\"hours\": ").unwrap();
        let runs = store.raw_runs().unwrap();
        let us: Vec<_> = runs.iter().filter(|r| r.feed == "us").collect();
        assert_eq!(us.len(), 1);
        assert_eq!(us[0].at, at(7, 0));
        let e = us[0].load().unwrap_err().to_string();
        assert!(e.contains("us__day.json"), "{e}");
        assert!(store.remove_unnamed_blobs().is_err());
    }
}
