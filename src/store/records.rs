//! The run records under `<store>/runs/`: one typed struct per kind of record.
//!
//! [`Store::write_run_record`](crate::store::Store::write_run_record) takes any
//! [`RunRecord`], writes it as pretty JSON and adds the `kind` key from its type (the
//! kind in the file name), so a record's kind and its file name never disagree.
//! Invariants: keys are written in sorted order whatever the field order here (the
//! records have always had sorted keys); an optional field that is `None` is left
//! out, not written as `null`.

use std::collections::BTreeMap;

use serde::Serialize;

/// A struct written under `runs/`: a JSON object of the kind `KIND`.
pub trait RunRecord: Serialize {
    /// The `kind` key and the file name's suffix (`<timestamp>-<kind>.json`).
    const KIND: &'static str;
}

impl RunRecord for IngestRecord {
    const KIND: &'static str = "ingest";
}
impl RunRecord for IngestFailedRecord {
    const KIND: &'static str = "ingest";
}
impl RunRecord for ReportRecord {
    const KIND: &'static str = "report";
}
impl RunRecord for BackfillRecord {
    const KIND: &'static str = "backfill";
}
impl RunRecord for BackfillVersionsRecord {
    const KIND: &'static str = "backfill";
}

/// `ingest`: one run of the feeds.
#[derive(Debug, Clone, Serialize)]
pub struct IngestRecord {
    /// The run's observation time (RFC 3339).
    pub observed_at: String,
    /// One entry per feed, sorted by feed name.
    pub feeds: Vec<FeedRecord>,
    /// Feeds that failed.
    pub failed: usize,
    /// Earlier runs re-normalised because FX rates they waited for arrived ...
    pub fx_healed_runs: usize,
    /// ... and the offers they recovered.
    pub fx_healed_offers: usize,
    /// Hours since the Unix epoch (daemon runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour_index: Option<i64>,
}

/// One feed's outcome in an [`IngestRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct FeedRecord {
    pub feed: String,
    /// The line printed for this feed.
    pub line: String,
    /// `stored`, `already_stored`, `skipped` or `failed`.
    pub status: &'static str,
    /// The counts, for a stored feed only.
    #[serde(flatten)]
    pub counts: Option<FeedCounts>,
}

/// What a stored feed read, stored and rejected.
#[derive(Debug, Clone, Serialize)]
pub struct FeedCounts {
    pub read: usize,
    pub stored: usize,
    pub fx_rates: usize,
    /// Rejected offers by reason.
    pub rejected: BTreeMap<String, usize>,
    /// The server answered 304 and the last payload was ingested again (left out
    /// when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_modified: bool,
}

/// `ingest`: a daemon run that could not read the feeds directory.
#[derive(Debug, Clone, Serialize)]
pub struct IngestFailedRecord {
    pub observed_at: String,
    pub error: String,
    /// Always 1: the run failed as a whole.
    pub failed: usize,
}

/// `report`: one daemon report run over the pending weeks.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRecord {
    /// When the run started (RFC 3339).
    pub at: String,
    pub last_complete_week: String,
    pub weeks: Vec<WeekRecord>,
    /// Weeks (or store reads) that failed.
    pub failed: usize,
}

/// One week of a [`ReportRecord`] (or the failure to find the pending weeks).
#[derive(Debug, Clone, Serialize)]
pub struct WeekRecord {
    /// The ISO week (`YYYY-Www`); absent when the store could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub week: Option<String>,
    /// `written` or `failed`.
    pub status: &'static str,
    /// The report's directory, when written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl WeekRecord {
    pub fn written(week: String, dir: String) -> Self {
        Self {
            week: Some(week),
            status: "written",
            dir: Some(dir),
            error: None,
        }
    }
    pub fn failed(week: Option<String>, error: String) -> Self {
        Self {
            week,
            status: "failed",
            dir: None,
            error: Some(error),
        }
    }
}

/// `backfill`: snapshot files imported (`gpurent backfill FILES`).
#[derive(Debug, Clone, Serialize)]
pub struct BackfillRecord {
    pub files: usize,
    /// Offers stored.
    pub stored: usize,
    /// Files that failed.
    pub failed: usize,
}

/// `backfill`: dated catalogue versions fetched (`gpurent backfill --from --to`).
#[derive(Debug, Clone, Serialize)]
pub struct BackfillVersionsRecord {
    pub days: usize,
    /// Offers stored.
    pub stored: usize,
    /// Days without a published version.
    pub missing: usize,
    /// Days that failed.
    pub failed: usize,
}

/// A record as written: pretty JSON, keys sorted, with `"kind": R::KIND` added.
pub fn to_json<R: RunRecord>(record: &R) -> Vec<u8> {
    // Through a `Value`, whose map keeps keys sorted: the order records have always had.
    let mut v = serde_json::to_value(record).expect("a run record serialises");
    v.as_object_mut()
        .expect("every RunRecord is a struct, so a JSON object")
        .insert("kind".into(), R::KIND.into());
    serde_json::to_vec_pretty(&v).expect("JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A record is written exactly as the `json!` literal it replaced.
    fn check<R: RunRecord>(record: &R, expected: serde_json::Value) {
        let written = String::from_utf8(to_json(record)).unwrap();
        let expected = serde_json::to_string_pretty(&expected).unwrap();
        assert_eq!(written, expected);
    }

    #[test]
    fn records_as_before() {
        check(
            &IngestFailedRecord {
                observed_at: "2026-10-26T00:00:00+00:00".into(),
                error: "feeds: no such directory".into(),
                failed: 1,
            },
            json!({"kind": "ingest", "observed_at": "2026-10-26T00:00:00+00:00", "error": "feeds: no such directory", "failed": 1}),
        );
        check(
            &ReportRecord {
                at: "2026-11-02T00:30:00+00:00".into(),
                last_complete_week: "2026-W44".into(),
                weeks: vec![
                    WeekRecord::failed(None, "reading the store".into()),
                    WeekRecord::written("2026-W44".into(), "reports/2026-W44".into()),
                    WeekRecord::failed(Some("2026-W43".into()), "no offers".into()),
                ],
                failed: 2,
            },
            json!({
                "kind": "report",
                "at": "2026-11-02T00:30:00+00:00",
                "last_complete_week": "2026-W44",
                "weeks": [
                    {"status": "failed", "error": "reading the store"},
                    {"week": "2026-W44", "status": "written", "dir": "reports/2026-W44"},
                    {"week": "2026-W43", "status": "failed", "error": "no offers"},
                ],
                "failed": 2,
            }),
        );
        check(
            &BackfillRecord {
                files: 3,
                stored: 120,
                failed: 1,
            },
            json!({"kind": "backfill", "files": 3, "stored": 120, "failed": 1}),
        );
        check(
            &BackfillVersionsRecord {
                days: 7,
                stored: 900,
                missing: 2,
                failed: 0,
            },
            json!({"kind": "backfill", "days": 7, "stored": 900, "missing": 2, "failed": 0}),
        );
    }

    #[test]
    fn ingest_record_as_before() {
        let feeds = vec![
            FeedRecord {
                feed: "a".into(),
                line: "a: ok".into(),
                status: "stored",
                counts: Some(FeedCounts {
                    read: 5,
                    stored: 3,
                    fx_rates: 0,
                    rejected: [("unknown_gpu".to_string(), 2)].into_iter().collect(),
                    not_modified: false,
                }),
            },
            FeedRecord {
                feed: "b".into(),
                line: "b: FAILED: x".into(),
                status: "failed",
                counts: None,
            },
        ];
        let mut rec = IngestRecord {
            observed_at: "2026-10-26T00:00:00+00:00".into(),
            feeds,
            failed: 1,
            fx_healed_runs: 0,
            fx_healed_offers: 0,
            hour_index: None,
        };
        let mut expected = json!({
            "kind": "ingest",
            "observed_at": "2026-10-26T00:00:00+00:00",
            "feeds": [
                {"feed": "a", "line": "a: ok", "status": "stored", "read": 5, "stored": 3, "fx_rates": 0, "rejected": {"unknown_gpu": 2}},
                {"feed": "b", "line": "b: FAILED: x", "status": "failed"},
            ],
            "failed": 1,
            "fx_healed_runs": 0,
            "fx_healed_offers": 0,
        });
        check(&rec, expected.clone());
        rec.hour_index = Some(493_680);
        expected["hour_index"] = 493_680.into();
        check(&rec, expected);
    }
}
