//! The price methodology on synthetic list prices, one property per test: offers in
//! force (life spans), provider balance and the matched index (METHODOLOGY.md).
//! Snapshots are USD per GPU-hour CSV price lists imported through the real
//! backfill path, one feed file per provider.

use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use gpurent::analysis::inforce::{InForce, HOUR_MS};
use gpurent::analysis::{self, StatRow};

use gpurent::store::Store;
use gpurent::tables::Providers;
use gpurent::week::IsoWeek;

use crate::common::*;

/// One snapshot of a provider's price list: (offer id, price in USD per GPU-hour),
/// every offer one H100 SXM in `country`.
async fn snapshot(
    dir: &Path,
    store: &Store,
    provider: &str,
    country: &str,
    at: DateTime<Utc>,
    offers: &[(&str, f64)],
) {
    let offers: Vec<(&str, &str, f64)> =
        offers.iter().map(|(id, p)| (*id, "H100 SXM", *p)).collect();
    list_snapshot(dir, store, provider, country, at, &offers).await;
}

fn at(date: &str, hour: u32) -> DateTime<Utc> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(hour, 0, 0)
        .unwrap()
        .and_utc()
}

fn day(date: &str) -> NaiveDate {
    NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()
}

/// The US H100 cell of dates `from..=to`, if any offer was in force.
fn us_h100(store: &Store, from: &str, to: &str) -> Option<StatRow> {
    analysis::stats(store, day(from), day(to), &Default::default())
        .unwrap()
        .into_iter()
        .find(|r| r.gpu_model == "H100-SXM-80GB" && r.bloc == "US")
}

/// Two providers: `a` with three offers at 2.0, `b` with one at 3.0, constant all day;
/// `a` scraped every hour or once.
async fn two_providers(hourly: bool) -> (tempfile::TempDir, Store) {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let hours = if hourly { 0..24 } else { 0..1 };
    for h in hours {
        let offers = [("a1", 2.0), ("a2", 2.0), ("a3", 2.0)];
        snapshot(
            tmp.path(),
            &store,
            "list-a",
            "US",
            at("2024-03-05", h),
            &offers,
        )
        .await;
    }
    snapshot(
        tmp.path(),
        &store,
        "list-b",
        "US",
        at("2024-03-05", 0),
        &[("b1", 3.0)],
    )
    .await;
    (tmp, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_feed_weighs_as_much_as_a_daily_one() {
    let (_t1, hourly) = two_providers(true).await;
    let (_t2, daily) = two_providers(false).await;
    let h = us_h100(&hourly, "2024-03-05", "2024-03-05").unwrap();
    let d = us_h100(&daily, "2024-03-05", "2024-03-05").unwrap();
    assert_eq!(
        h.observations,
        24 * 3 + 1,
        "every hourly observation is stored"
    );
    assert_eq!((h.offers, d.offers), (4, 4), "each offer counts once");
    assert_eq!(h.provider_median, d.provider_median);
    assert_eq!((h.median, h.p25, h.p75), (d.median, d.p25, d.p75));
    // Each provider counts once: the median of the provider medians 2.0 and 3.0.
    assert_eq!(h.provider_median, (2.0 + 3.0) / 2.0);
    assert_eq!(h.provider_names, vec!["list-a", "list-b"]);
}

/// Four weeks of weekly snapshots (Mondays 06:00) of two US list prices and one
/// Chinese one; `a` rises 10% in the fourth week; `skip` leaves out one snapshot.
async fn four_weeks(skip: Option<(&str, usize)>) -> (tempfile::TempDir, Store) {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    for w in 0..4usize {
        let t = at("2024-04-01", 6) + Duration::days(7 * w as i64);
        let a = if w == 3 { 2.2 } else { 2.0 };
        for (provider, country, price) in [
            ("list-a", "US", a),
            ("list-b", "US", 3.0),
            ("list-c", "CN", 1.5),
        ] {
            if skip != Some((provider, w)) {
                snapshot(
                    tmp.path(),
                    &store,
                    provider,
                    country,
                    t,
                    &[("x", price), ("y", price)],
                )
                .await;
            }
        }
    }
    (tmp, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_snapshot_moves_neither_headline_nor_index() {
    let (_t1, full) = four_weeks(None).await;
    let (_t2, gap) = four_weeks(Some(("list-b", 2))).await;
    let week = IsoWeek::parse("2024-W17").unwrap();
    let a = analysis::analyse_week(&full, week).unwrap();
    let b = analysis::analyse_week(&gap, week).unwrap();
    let head = |x: &analysis::WeekAnalysis, w: &str| {
        x.long_view
            .iter()
            .filter(|p| p.monday == IsoWeek::parse(w).unwrap().monday() && p.bloc == "US")
            .map(|p| (p.providers, p.median))
            .collect::<Vec<_>>()
    };
    for w in ["2024-W14", "2024-W15", "2024-W16", "2024-W17"] {
        assert_eq!(head(&a, w), head(&b, w), "{w}");
        assert_eq!(head(&b, w)[0].0, 2, "{w}: both US providers in force");
    }
    let idx = |x: &analysis::WeekAnalysis| {
        x.index
            .iter()
            .map(|p| {
                (
                    p.bloc.clone(),
                    p.week.clone(),
                    (p.index * 1e9).round() / 1e9,
                    p.cells_matched,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(idx(&a), idx(&b));
    let rise = (100.0 * (2.2f64 / 2.0).sqrt() * 1e9).round() / 1e9;
    let us: Vec<f64> = idx(&b)
        .into_iter()
        .filter(|p| p.0 == "US")
        .map(|p| p.2)
        .collect();
    assert_eq!(
        us,
        vec![100.0, 100.0, 100.0, rise],
        "Jevons over the two matched US cells"
    );
    // The week's headline cell is the same with and without the missed snapshot.
    let cell = |x: &analysis::WeekAnalysis| {
        x.rows
            .iter()
            .find(|r| r.bloc == "US")
            .unwrap()
            .provider_median
    };
    assert_eq!(cell(&a), cell(&b));
    let b16 = analysis::analyse_week(&gap, IsoWeek::parse("2024-W16").unwrap()).unwrap();
    let us16 = b16.rows.iter().find(|r| r.bloc == "US").unwrap();
    assert_eq!(
        us16.provider_names,
        vec!["list-a", "list-b"],
        "b's W15 price still stands"
    );
    assert!(b16
        .ratios
        .iter()
        .any(|r| r.segment == "all" && r.cn_providers == vec!["list-c"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_scraped_once_stands_for_its_validity_and_no_longer() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let t0 = at("2024-01-01", 0);
    snapshot(tmp.path(), &store, "list-a", "US", t0, &[("x", 2.0)]).await;
    snapshot(tmp.path(), &store, "vastai", "US", t0, &[("v", 1.0)]).await;
    let p = Providers::embedded();
    let inf = InForce::load(
        &store,
        day("2024-01-01"),
        day("2024-03-31"),
        &Default::default(),
    )
    .unwrap();
    let standing = |provider: &str, hours_after: f64| {
        let from = t0.timestamp_millis() + (hours_after * HOUR_MS as f64) as i64;
        inf.standing(from, from + HOUR_MS)
            .iter()
            .filter(|s| s.key.provider == provider)
            .count()
    };
    for (provider, valid) in [
        ("list-a", p.valid_hours("list-a")),
        ("vastai", p.valid_hours("vastai")),
    ] {
        assert!(valid > 1.0, "{provider}");
        assert_eq!(standing(provider, 0.0), 1, "{provider} at its observation");
        assert_eq!(
            standing(provider, valid - 1.0),
            1,
            "{provider} in its last valid hour"
        );
        assert_eq!(
            standing(provider, valid),
            0,
            "{provider} after {valid} hours"
        );
    }
    // The list price stands through the following days as a whole-day statistic too.
    let last_day = (t0 + Duration::hours(p.valid_hours("list-a") as i64 - 1)).date_naive();
    let s = last_day.to_string();
    assert_eq!(us_h100(&store, &s, &s).unwrap().offers, 1);
    let after = (last_day + Duration::days(1)).to_string();
    assert!(us_h100(&store, &after, &after).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_missing_from_the_next_snapshot_has_ended() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    snapshot(
        tmp.path(),
        &store,
        "list-a",
        "US",
        at("2024-05-06", 0),
        &[("x", 2.0), ("y", 4.0)],
    )
    .await;
    snapshot(
        tmp.path(),
        &store,
        "list-a",
        "US",
        at("2024-05-08", 0),
        &[("x", 2.0)],
    )
    .await;
    let d7 = us_h100(&store, "2024-05-07", "2024-05-07").unwrap();
    assert_eq!((d7.offers, d7.provider_median), (2, 3.0));
    let d9 = us_h100(&store, "2024-05-09", "2024-05-09").unwrap();
    assert_eq!(
        (d9.offers, d9.provider_median),
        (1, 2.0),
        "y ended at the next snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_without_china_data_says_so_first() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let offers = [("x", 2.0)];
    snapshot(
        tmp.path(),
        &store,
        "list-a",
        "US",
        at("2024-05-06", 0),
        &offers,
    )
    .await;
    let a = analysis::analyse_week(&store, IsoWeek::parse("2024-W19").unwrap()).unwrap();
    let heads = gpurent::report::headlines(&a);
    assert!(
        heads[0].starts_with("No CN data this week") && heads[0].contains("2024-W19"),
        "{heads:?}"
    );
    assert!(
        !heads.iter().any(|h| h.starts_with("No US data")),
        "{heads:?}"
    );
    assert!(a.ratios.is_empty() && a.provider_pairs.is_empty());
}

/// A list price observed in one week stands in the next, which observes nothing: that
/// week's figures and charts name the feed of the offers in force, not an empty list
/// of the feeds observed in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_standing_list_prices_names_their_feeds() {
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let t0 = at("2024-05-10", 0);
    snapshot(
        tmp.path(),
        &store,
        "list-a",
        "US",
        t0,
        &[("x", 2.0), ("y", 2.5)],
    )
    .await;
    snapshot(tmp.path(), &store, "list-b", "CN", t0, &[("z", 1.5)]).await;
    let a = analysis::analyse_week(&store, IsoWeek::parse("2024-W20").unwrap()).unwrap();
    assert!(a.coverage.feeds.is_empty(), "{:?}", a.coverage.feeds);
    let in_force: Vec<(&str, u32)> = a
        .coverage
        .in_force_feeds
        .iter()
        .map(|(f, n)| (f.as_str(), *n))
        .collect();
    assert_eq!(in_force, [("backfill-list-a", 2), ("backfill-list-b", 1)]);
    let charts = gpurent::report::charts(&a);
    assert!(!charts.is_empty());
    for (name, c) in &charts {
        let caption = match c {
            gpurent::report::chart::Chart::Line(l) => &l.caption,
            gpurent::report::chart::Chart::Bar(b) => &b.caption,
        };
        assert!(
            caption.starts_with("Sources: gpurent feeds backfill-list-a, backfill-list-b"),
            "{name}: {caption}"
        );
    }
    // Weeks later nothing stands; a chart of the history still drawn says so.
    let later = analysis::analyse_week(&store, IsoWeek::parse("2024-W40").unwrap()).unwrap();
    assert!(later.coverage.in_force_feeds.is_empty());
    let charts = gpurent::report::charts(&later);
    assert!(!charts.is_empty(), "the long view is drawn");
    for (name, c) in &charts {
        let caption = match c {
            gpurent::report::chart::Chart::Line(l) => &l.caption,
            gpurent::report::chart::Chart::Bar(b) => &b.caption,
        };
        assert!(
            caption.starts_with(
                "Sources: no offer in force this week; earlier points, the feeds of their weeks."
            ),
            "{name}: {caption}"
        );
    }
}
