//! Golden tests: chart SVG and report text are deterministic (bundled font, fixed
//! formats, injected clock), so they are snapshot-tested with insta; PNGs are decoded
//! and checked not to be blank.

use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use gpurent::report::chart::{self, BarChart, BarGroup, Chart, Line, LineChart, PALETTE};
use gpurent::store::Store;

use crate::common::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn line_chart() -> Chart {
    Chart::Line(LineChart {
        title: "H100-SXM-80GB on-demand, CN vs US (test data)".into(),
        caption: "Test data. Bands: p25 to p75.".into(),
        y_label: "USD per GPU-hour".into(),
        lines: vec![
            Line {
                label: "CN median".into(),
                color: PALETTE[0],
                points: vec![
                    (d("2024-10-07"), 1.9),
                    (d("2024-10-08"), 1.85),
                    (d("2024-10-10"), 1.8),
                ],
                band: vec![
                    (d("2024-10-07"), 1.7, 2.0),
                    (d("2024-10-08"), 1.7, 1.95),
                    (d("2024-10-10"), 1.6, 1.9),
                ],
            },
            Line {
                label: "US median".into(),
                color: PALETTE[1],
                points: vec![
                    (d("2024-10-07"), 2.5),
                    (d("2024-10-08"), 2.45),
                    (d("2024-10-09"), 2.4),
                    (d("2024-10-10"), 2.41),
                ],
                band: Vec::new(),
            },
        ],
        reference: None,
        y_from_zero: true,
        step_days: 1,
    })
}

fn bar_chart() -> Chart {
    Chart::Bar(BarChart {
        title: "On-demand median per model (test data)".into(),
        caption: "Test data. Whiskers: p25 to p75.".into(),
        y_label: "USD per GPU-hour".into(),
        series: vec![("CN".into(), PALETTE[0]), ("US".into(), PALETTE[1])],
        groups: vec![
            BarGroup {
                label: "H100-SXM-80GB".into(),
                bars: vec![(0, 1.85, 1.7, 2.0), (1, 2.45, 2.3, 2.6)],
            },
            BarGroup {
                label: "RTX4090D-24GB".into(),
                bars: vec![(0, 0.28, 0.25, 0.3)],
            },
        ],
    })
}

fn not_blank(path: &Path) {
    let img = image::open(path).unwrap().to_rgb8();
    let distinct: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        distinct.len() > 10,
        "{} looks blank ({} colours)",
        path.display(),
        distinct.len()
    );
    let (w, h) = img.dimensions();
    assert_eq!((w, h), (chart::WIDTH, chart::HEIGHT));
}

#[test]
fn chart_svgs_are_stable_and_pngs_not_blank() {
    let tmp = tempdir();
    for (name, c) in [("line", line_chart()), ("bar", bar_chart())] {
        let svg = chart::to_svg(&c, name).unwrap();
        assert_eq!(
            svg,
            chart::to_svg(&c, name).unwrap(),
            "same input, same SVG"
        );
        assert!(svg.contains("USD per GPU-hour"));
        insta::assert_snapshot!(format!("chart_{name}_svg"), svg);
        let png = tmp.path().join(format!("{name}.png"));
        chart::to_png(&c, name, &png).unwrap();
        not_blank(&png);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_text_is_stable() {
    let srv = server().await;
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    fixture_feeds(&srv, &feeds);
    let store = Store::open(tmp.path().join("store"));
    let times: Vec<_> = (0..3)
        .map(|d| Utc.with_ymd_and_hms(2024, 10, 7 + d, 12, 0, 0).unwrap())
        .collect();
    ingest_times(&feeds, &store, &times).await;
    let out = tmp.path().join("reports");
    let week = gpurent::week::IsoWeek::parse("2024-W41").unwrap();
    let generated = Utc.with_ymd_and_hms(2024, 10, 14, 0, 30, 0).unwrap();
    let dir = tokio::task::spawn_blocking({
        let (store, out) = (store.clone(), out.clone());
        move || gpurent::report::write_week(&store, &out, week, generated).unwrap()
    })
    .await
    .unwrap();
    insta::assert_snapshot!(
        "report_md",
        std::fs::read_to_string(dir.join("report.md")).unwrap()
    );
    insta::assert_snapshot!(
        "summary_csv",
        std::fs::read_to_string(dir.join("summary.csv")).unwrap()
    );
    for f in std::fs::read_dir(dir.join("charts")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|x| x == "png") {
            not_blank(&p);
        }
    }
}
