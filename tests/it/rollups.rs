//! Per-week rollups (issue 10): a report that reads the weeks before its last four from
//! rollups equals one built by scanning every offer, and a stored rollup equals a
//! recomputation from the offers, after ingest (back-fill of dated snapshots), a
//! late back-fill into an old week, compaction and renormalise.
//! Snapshots are USD per GPU-hour CSV price lists imported through the real backfill
//! path; nine weeks, so that five weeks come from rollups.

use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use gpurent::analysis::{self, query, rollup, Config, WeekAnalysis};
use gpurent::ingest::backfill;
use gpurent::store::Store;
use gpurent::tables::Tables;
use gpurent::week::IsoWeek;
use polars::prelude::{ParquetReader, SerReader};

use crate::common::*;

const WEEKS: i64 = 9;

fn start() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(6, 0, 0)
        .unwrap()
        .and_utc()
}

/// Nine weeks: two US lists (`list-a` twice on its day) and a Chinese one, scraped on
/// different weekdays, prices
/// drifting by week; `list-b` misses week 4; `list-c` adds an A100 from week 3.
async fn nine_weeks(dir: &Path, store: &Store) {
    for w in 0..WEEKS {
        let t = start() + Duration::days(7 * w);
        let f = 1.0 + 0.03 * w as f64;
        let a = [
            ("a1", "H100 SXM", 2.0 * f),
            ("a2", "H100 SXM", 2.1 * f),
            ("a3", "A100 SXM4 80GB", 1.2 * f),
        ];
        // Scraped twice a day: compaction then merges the day's two files.
        list_snapshot(dir, store, "list-a", "US", t, &a).await;
        list_snapshot(dir, store, "list-a", "US", t + Duration::hours(12), &a).await;
        if w != 4 {
            let b = [("b1", "H100 SXM", 3.0), ("b2", "A100 SXM4 80GB", 1.5 / f)];
            list_snapshot(dir, store, "list-b", "US", t + Duration::days(2), &b).await;
        }
        let mut c = vec![("c1", "H100 SXM", 1.5 * f), ("c2", "H100 SXM", 1.6)];
        if w >= 3 {
            c.push(("c3", "A100 SXM4 80GB", 0.9));
        }
        list_snapshot(dir, store, "list-c", "CN", t + Duration::days(4), &c).await;
        // A marketplace (6 h validity) late on Sunday: its listings stand into Monday,
        // and every other week one is 12x the week's median, so the outlier rule must
        // flag it by the median of the week it was observed in.
        let v2 = if w % 2 == 0 { 30.0 } else { 2.6 };
        let v = [("v1", "H100 SXM", 2.5), ("v2", "H100 SXM", v2)];
        list_snapshot(
            dir,
            store,
            "vastai",
            "US",
            t + Duration::hours(6 * 24 + 16),
            &v,
        )
        .await;
    }
}

fn last_week() -> IsoWeek {
    IsoWeek::of(start().date_naive() + Duration::days(7 * (WEEKS - 1)))
}

fn json(a: &WeekAnalysis) -> serde_json::Value {
    serde_json::to_value(a).unwrap()
}

/// The report built from rollups (stored or computed) equals the full scan, and every
/// stored rollup equals a recomputation from the offers.
fn check(store: &Store) -> WeekAnalysis {
    let cfg = Config::default();
    let full = analysis::analyse_week_scanning_all(store, last_week(), &cfg).unwrap();
    let rolled = analysis::analyse_week_with(store, last_week(), &cfg).unwrap();
    assert_eq!(
        json(&rolled),
        json(&full),
        "report from rollups = full scan"
    );
    assert!(full.index.len() as i64 >= 2 * WEEKS - 2, "{:?}", full.index);
    for (label, stored) in rollup::stored(store).unwrap() {
        let week = IsoWeek::parse(&label).unwrap();
        let again = rollup::compute_scanning(store, week, &cfg).unwrap();
        assert_eq!(
            stored, again,
            "stored rollup of {label} = recomputation from whole weeks"
        );
        assert!(
            !stored.medians.is_empty() && !stored.daily.is_empty(),
            "{label}"
        );
        let of_week = |m: &NaiveDate| *m == week.monday();
        let cells: Vec<_> = full.index.iter().filter(|p| of_week(&p.monday)).collect();
        assert!(!cells.is_empty() || stored.cells.is_empty());
        let long: Vec<_> = full
            .long_view
            .iter()
            .filter(|p| of_week(&p.monday))
            .cloned()
            .collect();
        assert_eq!(stored.long, long, "long view of {label} = full scan's");
    }
    full
}

/// With the earlier weeks' rollups stored, `prices` reads only the rows that may
/// stand at the latest observation and the current week's prices: it equals a full
/// scan (no rollups), with a list price from the week before still standing, a
/// marketplace listing that expired earlier that day left out, and this week's 12x
/// listing flagged by this week's median.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_from_what_stands_now_equal_a_full_scan() {
    use query::Cell;
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    nine_weeks(tmp.path(), &store).await;
    // The last week's Monday 06:00; its marketplace snapshot, the latest, is on Sunday
    // at 22:00.
    let monday = start() + Duration::days(7 * (WEEKS - 1));
    let a100 = "A100 SXM4 80GB";
    let d = [("d1", a100, 1.4)];
    list_snapshot(
        tmp.path(),
        &store,
        "list-d",
        "US",
        monday - Duration::days(3),
        &d,
    )
    .await;
    let early = monday + Duration::days(6) + Duration::hours(2);
    list_snapshot(
        tmp.path(),
        &store,
        "vast",
        "US",
        early,
        &[("e1", a100, 1.0)],
    )
    .await;

    let full = query::prices(&store).unwrap();
    rollup::refresh(&store).unwrap();
    let week = IsoWeek::of(monday.date_naive());
    assert!(rollup::stored_medians(&store, week, &Config::default())
        .unwrap()
        .is_some());
    let recent = query::prices(&store).unwrap();
    assert_eq!(recent, full, "prices from what stands now = full scan");

    let row = |provider: &str, model: &str| {
        let (p, m) = (Cell::Text(provider.into()), Cell::Text(model.into()));
        recent.rows.iter().find(|r| r[3] == p && r[0] == m).cloned()
    };
    let d1 = row("list-d", "A100-SXM-80GB").expect("last week's list price stands");
    assert_eq!(d1[5], Cell::Num(Some(1.4)));
    assert_eq!(row("vast", "A100-SXM-80GB"), None, "expired at 08:00");
    let v = row("vastai", "H100-SXM-80GB").expect("the marketplace stands");
    assert_eq!(
        (&v[4], &v[5]),
        (&Cell::Int(1), &Cell::Num(Some(2.5))),
        "30.0 flagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_a_full_scan_through_backfill_compaction_and_renormalise() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    nine_weeks(tmp.path(), &store).await;
    // Before any rollup is stored, the report computes them week by week.
    assert_eq!(store.rollup_count().unwrap(), 0);
    let before = check(&store);
    assert!(
        before.coverage.implausible >= 1,
        "the 12x listing is flagged"
    );
    let prices_scanning = query::prices(&store).unwrap();
    let r = rollup::refresh(&store).unwrap();
    assert_eq!(
        query::prices(&store).unwrap(),
        prices_scanning,
        "prices from recent rows"
    );
    assert_eq!(
        (r.written, r.current),
        (WEEKS as usize - 1, 0),
        "complete weeks only"
    );
    assert_eq!(rollup::stored(&store).unwrap().len(), WEEKS as usize - 1);
    check(&store);
    assert_eq!(
        rollup::refresh(&store).unwrap().written,
        0,
        "nothing changed"
    );

    // A late back-fill into week 1: its rollup and those of the weeks it reaches are
    // stale, so the report must not use them, before or after the refresh.
    let late = start() + Duration::days(7 + 3);
    list_snapshot(
        tmp.path(),
        &store,
        "list-a",
        "US",
        late,
        &[("a1", "H100 SXM", 9.0), ("a2", "H100 SXM", 9.5)],
    )
    .await;
    let after = check(&store);
    assert_ne!(
        json(&after)["index"],
        json(&before)["index"],
        "the late prices move the index"
    );
    let stale = WEEKS as usize - 1 - rollup::stored(&store).unwrap().len();
    assert!(
        stale >= 2,
        "week 1 and the weeks its prices reach are stale ({stale})"
    );
    assert_eq!(rollup::refresh(&store).unwrap().written, stale);
    check(&store);

    // Compaction renames every day's files: rollups are recomputed, figures unchanged.
    // It also merges each feed's raw hour files of a day into one, which renormalise
    // reads below.
    let done = store
        .compact_before(NaiveDate::from_ymd_opt(2100, 1, 1).unwrap(), true)
        .unwrap();
    assert_eq!(done.failures(), 0, "{:?}", done.failure_lines());
    let merged = done.files_before - done.files_after;
    assert!(
        done.raw_hours > done.raw_days && done.raw_days > 0,
        "{done:?}"
    );
    assert!(
        raw_hour_files(&tmp.path().join("store")).is_empty(),
        "every raw hour is in a day file"
    );
    assert!(
        merged >= WEEKS as usize,
        "list-a's days were compacted ({merged})"
    );
    let compacted = check(&store);
    assert_eq!(json(&compacted), json(&after));
    assert_eq!(rollup::refresh(&store).unwrap().written, WEEKS as usize - 1);
    assert_eq!(
        store.rollup_count().unwrap(),
        WEEKS as usize - 1,
        "one file per week"
    );
    check(&store);

    // Renormalise rebuilds every offers file from raw/.
    let _lock = store.lock().unwrap();
    let rn = backfill::renormalise(&store, Tables::embedded()).unwrap();
    assert!(rn.failures.is_empty(), "{:?}", rn.failures);
    rollup::refresh(&store).unwrap();
    let renormalised = check(&store);
    assert_eq!(json(&renormalised), json(&after));
}

/// The raw hour files (`raw/date=…/<feed>__<YYYYMMDDTHH>.json`) under `root`.
fn raw_hour_files(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(root.join("raw")).unwrap().flatten() {
        let dir = d.path();
        if !d.file_name().to_string_lossy().starts_with("date=") {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !name.ends_with("__day.json") {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn a_rollup_survives_parquet() {
    let monday = NaiveDate::from_ymd_opt(2024, 1, 8).unwrap();
    let r = rollup::Rollup {
        cells: vec![(
            monday,
            "list-a|H100-SXM-80GB|on_demand".into(),
            "US".into(),
            2.05,
        )],
        long: vec![analysis::WeeklyPoint {
            monday,
            gpu_model: "H100-SXM-80GB".into(),
            bloc: "US".into(),
            price_class: "on_demand".into(),
            providers: 2,
            offers: 3,
            median: 2.5,
        }],
        daily: vec![analysis::DailyPoint {
            date: monday + Duration::days(2),
            gpu_model: "H100-SXM-80GB".into(),
            bloc: "CN".into(),
            price_class: "on_demand".into(),
            offers: 4,
            providers: 1,
            observations: 9,
            gpus_available: 0.0,
            median: 1.5,
            p25: 1.25,
            p75: 1.75,
        }],
        medians: vec![(monday, "A100-SXM-80GB".into(), 1.2)],
    };
    let back = rollup::from_frame(&rollup::to_frame(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    assert_eq!(
        rollup::from_frame(&rollup::to_frame(&Default::default()).unwrap()).unwrap(),
        rollup::Rollup::default()
    );
}

/// A damaged rollup is derived data: the report computes that week from its offers
/// and equals the full scan, where it used to fail until someone deleted the file
/// (found by a fault hunt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_rollup_is_computed_again_not_an_error() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    nine_weeks(tmp.path(), &store).await;
    rollup::refresh(&store).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(store.root().join("rollups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).unwrap();
        let damaged = if i % 2 == 0 {
            &bytes[..bytes.len() / 2]
        } else {
            &b"not parquet"[..]
        };
        std::fs::write(f, damaged).unwrap();
    }
    check(&store);
}

/// A list whose rows carry their own dates, ingested live (a feed file read by
/// `gpurent ingest`), is stored as a back-fill of it is: each row under its own day,
/// here one dated the Monday after a Sunday-evening fetch (a list dated in China's
/// local time). It used to be stored under the fetch's day, where a report's
/// rollups and its full scan disagreed (found by a differential hunt: the index read
/// 109.5 through rollups and 107.2 without them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dated_list_ingested_live_is_stored_under_its_rows_days() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    nine_weeks(tmp.path(), &store).await;
    let sunday = start().date_naive() + Duration::days(13);
    let monday = sunday + Duration::days(1);
    let csv = tmp.path().join("dated.csv");
    std::fs::write(
        &csv,
        format!(
            "date,id,gpu,gpus,price\n{sunday},d1,H100 SXM,1,2.30\n{monday},d2,H100 SXM,1,2.40\n"
        ),
    )
    .unwrap();
    let feeds = tmp.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(
        feeds.join("dated.toml"),
        format!(
            "format = \"generic_csv\"\nurl = \"{}\"\nprovider = \"list-d\"\ncurrency = \"USD\"\n\
             price_unit = \"gpu-hour\"\nprice_class = \"on_demand\"\ncountry = \"US\"\n\
             [columns]\ndate = \"date\"\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price\"\noffer_id = \"id\"\n",
            csv.display()
        ),
    )
    .unwrap();
    let root = store.root().to_str().unwrap().to_string();
    // `gpurent ingest` of the list at `hour` on Sunday; its stdout.
    let ingest_at = |hour: &str| {
        let at = format!("{sunday}T{hour}:00:00Z");
        let feeds = feeds.to_str().unwrap();
        let args = ["ingest", "--feeds", feeds, "--store", &root, "--at", &at];
        let (code, out, err) = gpurent(&args);
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    let out = ingest_at("20");
    assert!(out.contains("dated: ok, 2 offers read, 2 stored"), "{out}");
    let file = |day: NaiveDate, hour: &str| {
        let name = format!("date={day}/dated__{}T{hour}.parquet", day.format("%Y%m%d"));
        let path = store.root().join("offers").join(name);
        let f = std::fs::File::open(&path).ok()?;
        Some(ParquetReader::new(f).finish().unwrap().height())
    };
    assert_eq!(
        file(sunday, "20"),
        Some(1),
        "the fetch's day holds its own row"
    );
    assert_eq!(
        file(monday, "00"),
        Some(1),
        "Monday's row is stored under Monday"
    );
    // An hour later the list is fetched again: Sunday's row in the new hour's run,
    // Monday's day is stored already, and the line says so.
    let out = ingest_at("21");
    let line = "dated: ok, 2 offers read, 1 stored, 0 rejected; 1 dated on days stored before";
    assert!(out.contains(line), "{out}");
    assert_eq!(file(sunday, "21"), Some(1));
    let week = IsoWeek::of(monday);
    assert!(
        rollup::stored(&store).unwrap().len() >= 2,
        "ingest stored rollups"
    );
    check(&store);
    let cfg = Config::default();
    let full = analysis::analyse_week_scanning_all(&store, week, &cfg).unwrap();
    let rolled = analysis::analyse_week_with(&store, week, &cfg).unwrap();
    assert_eq!(json(&rolled), json(&full), "{week:?}: rollups = full scan");
}
