//! Re-normalisation from kept raw payloads and the unknown-names listing.

use gpurent::run::sim::HttpResponse;
use gpurent::store::Store;
use polars::prelude::{DataFrame, ParquetReader, SerReader};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renormalise_rebuilds_the_same_offers_and_unknown_lists_names() {
    let times: Vec<_> = (0..2)
        .map(|h| format!("2024-10-07T0{h}:00:00Z").parse().unwrap())
        .collect();
    let (_srv, tmp, _, store) = fixture_store(&times).await;
    let before = read_all(&tmp.path().join("store/offers")).unwrap();
    let rejects_before = read_all(&tmp.path().join("store/rejects")).unwrap();

    // Lose the normalised trees (as after a table change); the raw payloads remain.
    std::fs::remove_dir_all(tmp.path().join("store/offers")).unwrap();
    let r = gpurent::ingest::backfill::renormalise(&store, gpurent::tables::Tables::embedded())
        .unwrap();
    let (runs, stored, failures) = (r.rebuilt, r.stored, r.failures);
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        runs, 4,
        "two hours of two price feeds (the ECB feed has no offers)"
    );
    assert_eq!(stored, before.height());
    let after = read_all(&tmp.path().join("store/offers")).unwrap();
    assert!(after.equals_missing(&before), "rebuilt offers differ");
    assert!(read_all(&tmp.path().join("store/rejects"))
        .unwrap()
        .equals_missing(&rejects_before));
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("store"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".renormalise") || n.starts_with(".old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // History of one model in one country: the Hong Kong A100 host, per day.
    let q = gpurent::analysis::query::HistoryQuery {
        model: "A100-SXM-80GB".into(),
        bloc: None,
        country: Some("hk".into()),
        class: Some("on_demand".into()),
        every: gpurent::analysis::query::Every::Day,
        from: None,
        to: None,
        provider: None,
        segment: None,
        by_provider: false,
    };
    let csv = gpurent::analysis::query::history(&store, &q)
        .unwrap()
        .render(gpurent::analysis::query::Format::Csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with("2024-10-07,A100-SXM-80GB,OTHER,on_demand,2,1.1000"),
        "{csv}"
    );
    let unknown = gpurent::analysis::unknown_names(&store).unwrap();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(
        (
            unknown[0].name.as_str(),
            unknown[0].count,
            unknown[0].feed.as_str()
        ),
        ("Mystery GPU 9000", 4, "vast")
    );
}

/// The index on a hand-checked store: every offer 10% dearer in week 2 and the CN
/// offers 20% cheaper again in week 3 gives CN 100, 110, 88 and US 100, 110, 110.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_index_arithmetic_on_a_small_store() {
    let srv = server().await;
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(
        feeds.join("vast.toml"),
        format!("format = \"vastai\"\nurl = \"{}\"\n", srv.url("/vast")),
    )
    .unwrap();
    let store = Store::open(tmp.path().join("store"));
    let client = gpurent::ingest::fetch::client();
    let base: serde_json::Value = serde_json::from_slice(&fixture("vastai_search.json")).unwrap();
    for (week, (cn, us)) in [(1.0, 1.0), (1.1, 1.1), (0.88, 1.1)].iter().enumerate() {
        let mut v = base.clone();
        for o in v["offers"].as_array_mut().unwrap() {
            let f = if o["geolocation"].as_str().unwrap().ends_with("CN") {
                cn
            } else {
                us
            };
            for k in ["dph_total", "min_bid"] {
                if let Some(p) = o[k].as_f64() {
                    o[k] = serde_json::json!(p * f);
                }
            }
        }
        srv.routes.set(
            "/vast",
            HttpResponse::ok("application/json", serde_json::to_vec(&v).unwrap()),
        );
        let (f, b) = gpurent::ingest::feed::load_dir(&feeds).unwrap();
        let at = chrono::NaiveDate::from_ymd_opt(2024, 10, 7 + 7 * week as u32)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        gpurent::ingest::run(
            f,
            b,
            &store,
            &client,
            at,
            gpurent::tables::Tables::embedded(),
        )
        .await;
    }
    let a =
        gpurent::analysis::analyse_week(&store, gpurent::week::IsoWeek::parse("2024-W43").unwrap())
            .unwrap();
    let got: Vec<(String, String, f64)> = a
        .index
        .iter()
        .map(|p| {
            (
                p.bloc.clone(),
                p.week.clone(),
                (p.index * 1e9).round() / 1e9,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("CN".into(), "2024-W41".into(), 100.0),
            ("CN".into(), "2024-W42".into(), 110.0),
            ("CN".into(), "2024-W43".into(), 88.0),
            ("US".into(), "2024-W41".into(), 100.0),
            ("US".into(), "2024-W42".into(), 110.0),
            ("US".into(), "2024-W43".into(), 110.0),
        ]
    );
    let h = gpurent::report::index_headline(&a).unwrap();
    assert!(h.contains("CN 88.0 (-20.0% on the week"), "{h}");
    assert!(h.contains("US 110.0 (+0.0% on the week"), "{h}");
}

/// Compaction merges a day's hourly files per feed, keeps every row, and still stops
/// a re-ingest of a compacted hour from adding rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_rows_and_deduplication() {
    let times: Vec<_> = (0..3)
        .map(|h| format!("2024-10-07T0{h}:00:00Z").parse().unwrap())
        .collect();
    let (_srv, tmp, feeds, store) = fixture_store(&times).await;
    let part = tmp.path().join("store/offers/date=2024-10-07");
    let count = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            .count()
    };
    assert_eq!(count(&part), 6, "two price feeds x three hours");
    let before = read_all(&tmp.path().join("store/offers")).unwrap();
    let stats_before = gpurent::analysis::stats(
        &store,
        times[0].date_naive(),
        times[0].date_naive(),
        &Default::default(),
    )
    .unwrap();

    let hourly = hourly_frames(&tmp.path().join("store"));
    let (b, a) = store.compact(times[0].date_naive()).unwrap();
    assert_eq!(
        (b, a),
        (6 + 3, 2 + 1),
        "offers 6 -> 2, rejects (vast only) 3 -> 1"
    );
    // Each hour copied out of its compacted day (as renormalise carries a run over)
    // is its hourly file again, rows in their stored order, though a day's offers are
    // sorted by model.
    let copy = gpurent::store::Store::open(tmp.path().join("copy"));
    for (feed, at) in store.stored_runs().unwrap() {
        store.copy_run(&copy, &feed, at).unwrap();
    }
    assert_eq!(hourly_frames(copy.root()).len(), hourly.len());
    for (name, df) in &hourly {
        let back = hourly_frames(copy.root()).remove(name).unwrap();
        assert!(back.equals_missing(df), "{name}");
    }
    assert_eq!(count(&part), 2);
    // Only Parquet files in the partition, so Spark and Trino read it as it is, and
    // each day file's name holds the hours it merged (0, 1, 2: mask 000007).
    let mut names: Vec<String> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with("__20241007-000007.parquet")),
        "{names:?}"
    );
    let after = read_all(&tmp.path().join("store/offers")).unwrap();
    assert_eq!(after.height(), before.height());
    // The day files hold the stored columns only: no `date` taken from the folder
    // name, which Spark refuses as a duplicate of the partition column.
    let schema = gpurent::normalise::offer_schema();
    assert_eq!(
        after
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>(),
        schema.iter_names().map(|n| n.as_str()).collect::<Vec<_>>()
    );
    let stats_after = gpurent::analysis::stats(
        &store,
        times[0].date_naive(),
        times[0].date_naive(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(stats_before, stats_after);

    // A compacted hour is still stored: re-ingesting it adds nothing.
    let client = gpurent::ingest::fetch::client();
    let (f, b) = gpurent::ingest::feed::load_dir(&feeds).unwrap();
    let r = gpurent::ingest::run(
        f,
        b,
        &store,
        &client,
        times[1],
        gpurent::tables::Tables::embedded(),
    )
    .await;
    assert!(
        r.outcomes
            .iter()
            .filter(|o| o.feed != "ecb")
            .all(|o| o.status == gpurent::ingest::Status::AlreadyStored),
        "{:?}",
        r.outcomes
    );
    assert_eq!(
        read_all(&tmp.path().join("store/offers")).unwrap().height(),
        before.height()
    );
    // A later hour of the same day lands beside the day file and is merged next time.
    ingest_times(&feeds, &store, &["2024-10-07T05:00:00Z".parse().unwrap()]).await;
    assert_eq!(count(&part), 4);
    store.compact(times[0].date_naive()).unwrap();
    assert_eq!(count(&part), 2);
    assert!(std::fs::read_dir(&part).unwrap().all(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("-000027.parquet")));
    assert_eq!(
        read_all(&tmp.path().join("store/offers")).unwrap().height(),
        before.height() / 3 * 4
    );
}

/// A day file compacted before day files were sorted by model (time-sorted, no
/// footer key) is rewritten once by `resort_days`: the same rows, sorted by model then
/// time, marked in its footer, under its name; a marked file is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_day_files_are_sorted_by_model_once() {
    use polars::prelude::{ParquetWriter, SortMultipleOptions};
    let times: Vec<_> = (0..3)
        .map(|h| format!("2024-10-07T0{h}:00:00Z").parse().unwrap())
        .collect();
    let (_srv, tmp, _feeds, store) = fixture_store(&times).await;
    let date = times[0].date_naive();
    store.compact(date).unwrap();
    let rewritten = |s: &Store| {
        let r = s.resort_days(date).unwrap();
        (
            r.rewritten,
            r.failed.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(rewritten(&store), (0, vec![]), "compact sorts and marks");
    let part = tmp.path().join("store/offers/date=2024-10-07");
    let files: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let sorted_by = |df: &DataFrame, by: &[&str]| {
        df.sort(
            by.to_vec(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .unwrap()
    };
    let marked = |path: &std::path::Path| {
        let mut r = ParquetReader::new(std::fs::File::open(path).unwrap());
        let kv = r.get_metadata().unwrap().key_value_metadata().clone();
        kv.unwrap_or_default()
            .iter()
            .any(|k| k.key == gpurent::store::ROW_ORDER_KEY)
    };
    // Put each day file back as compaction wrote it before: sorted by time only.
    let mut olds = Vec::new();
    for path in &files {
        assert!(marked(path), "{path:?}");
        let df = ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap();
        let mut old = sorted_by(&df, &["observed_at"]);
        ParquetWriter::new(std::fs::File::create(path).unwrap())
            .finish(&mut old)
            .unwrap();
        assert!(!marked(path));
        olds.push(old);
    }
    assert!(
        olds.iter()
            .any(|old| !old.equals_missing(&sorted_by(old, &["gpu_model", "observed_at"]))),
        "some day file holds more than one model out of model order"
    );
    let stats = |s: &Store| gpurent::analysis::stats(s, date, date, &Default::default());
    let before = stats(&store).unwrap();

    assert_eq!(rewritten(&store), (files.len(), vec![]));
    for (path, old) in files.iter().zip(&olds) {
        assert!(marked(path), "{path:?}");
        let back = ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap();
        let want = sorted_by(old, &["gpu_model", "observed_at"]);
        assert!(back.equals_missing(&want), "{path:?}");
    }
    assert_eq!(stats(&store).unwrap(), before);
    assert_eq!(rewritten(&store), (0, vec![]), "each file once");
    let mut names: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut want = files.clone();
    want.sort();
    assert_eq!(names, want, "the same names, nothing beside them");

    // A damaged day file is named and left as it is; the other is still re-sorted.
    for (path, old) in files.iter().zip(&olds) {
        ParquetWriter::new(std::fs::File::create(path).unwrap())
            .finish(&mut old.clone())
            .unwrap();
    }
    std::fs::write(&files[0], b"not parquet").unwrap();
    let (n, failed) = rewritten(&store);
    assert_eq!(n, files.len() - 1);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let name = files[0].file_name().unwrap().to_string_lossy();
    assert!(failed[0].contains(name.as_ref()), "{failed:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), b"not parquet");
    assert!(files[1..].iter().all(|p| marked(p)));
}

/// A run that crashed after its rejects file but before its offers file is not taken
/// as stored: the next run for that hour redoes it whole, without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_hour_is_redone_not_kept() {
    let at: chrono::DateTime<chrono::Utc> = "2024-10-07T03:00:00Z".parse().unwrap();
    let (_srv, tmp, feeds, store) = fixture_store(&[at]).await;
    let offers = read_all(&tmp.path().join("store/offers")).unwrap().height();
    let rejects = read_all(&tmp.path().join("store/rejects"))
        .unwrap()
        .height();
    // Simulate the crash: the vast offers file of that hour is gone, its rejects remain.
    let part = tmp.path().join("store/offers/date=2024-10-07");
    std::fs::remove_file(part.join("vast__20241007T03.parquet")).unwrap();
    assert!(!store.has_run("vast", at));
    ingest_times(&feeds, &store, &[at]).await;
    assert_eq!(
        read_all(&tmp.path().join("store/offers")).unwrap().height(),
        offers
    );
    assert_eq!(
        read_all(&tmp.path().join("store/rejects"))
            .unwrap()
            .height(),
        rejects
    );
    assert!(store.has_run("vast", at) && store.has_run("cncloud", at));
}

/// Every hourly offers and rejects file of a store's date 2024-10-07, by its path
/// under the store.
fn hourly_frames(root: &std::path::Path) -> std::collections::BTreeMap<String, DataFrame> {
    let mut out = std::collections::BTreeMap::new();
    for kind in ["offers", "rejects"] {
        let dir = root.join(kind).join("date=2024-10-07");
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains('T') && name.ends_with(".parquet") {
                let f = std::fs::File::open(e.path()).unwrap();
                out.insert(
                    format!("{kind}/{name}"),
                    ParquetReader::new(f).finish().unwrap(),
                );
            }
        }
    }
    out
}
