//! Golden tests: chart SVG and report text are deterministic (bundled font, fixed
//! formats, injected clock), so they are snapshot-tested with insta; PNGs are decoded
//! and checked not to be blank; every chart's text, as resvg lays it out, stays on
//! the canvas and never overlaps other text; every data mark and text keeps its WCAG
//! contrast against the white page.

use std::path::Path;

use chrono::{NaiveDate, TimeZone, Utc};
use gpurent::report::chart::{self, BarChart, BarGroup, Chart, Line, LineChart, PALETTE};

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
        highlight: Some((d("2024-10-07"), d("2024-10-10"))),
        integer_y: false,
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
    assert_eq!(w, chart::WIDTH);
    assert!(f64::from(h) >= chart::MIN_BAR_HEIGHT, "{h}");
}

/// No text leaves the canvas, no two texts overlap (resvg's own layout), every data
/// mark and text keeps its WCAG contrast on white (3:1 and 4.5:1), and the SVG is
/// an image with a title.
fn legible(svg: &str, what: &str) {
    let issues = chart::layout_issues(svg).unwrap();
    assert!(issues.is_empty(), "{what}: {issues:#?}");
    let faint = chart::contrast_issues(svg);
    assert!(faint.is_empty(), "{what}: below WCAG contrast: {faint:#?}");
    // A screen reader announces an image and its title.
    let els = chart::contrast::elements(svg).unwrap();
    assert_eq!(els[0].attr("role"), Some("img"), "{what}");
    assert!(els[1].name == "title" && !els[1].text.is_empty(), "{what}");
    let texts = chart::text_boxes(svg).unwrap();
    assert!(texts.len() > 5, "{what}: the text is laid out: {texts:?}");
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
        legible(&svg, name);
        insta::assert_snapshot!(format!("chart_{name}_svg"), svg);
        let png = tmp.path().join(format!("{name}.png"));
        chart::to_png(&c, name, &png).unwrap();
        not_blank(&png);
    }
}

/// Many long labels, many series, a long title and caption, a two-year axis.
fn crowded() -> Vec<(&'static str, Chart)> {
    let names: Vec<String> = (0..26)
        .map(|i| format!("A100-PCIE-40GB-VARIANT-{i:02}"))
        .collect();
    let bar = Chart::Bar(BarChart {
        title: "SIMULATED: On-demand median per model, 2024-W41 (2024-10-07 to 2024-10-13), every model quoted in either bloc this week".into(),
        caption: "Sources: gpurent feeds aliyun, autodl, aws_offer, aws_offer_cn, azure_retail, gcp_billing, lambda, ppio, runpod, shadeform, tencent, vastai. Whiskers: p25 to p75. [SIMULATED DATA, not market prices]".into(),
        y_label: "USD per GPU-hour".into(),
        series: vec![("CN".into(), PALETTE[0]), ("US".into(), PALETTE[1]), ("OTHER".into(), chart::OTHER_BLOC)],
        groups: names
            .iter()
            .enumerate()
            .map(|(i, n)| BarGroup {
                label: n.clone(),
                bars: vec![(0, 1.0 + i as f64 * 0.1, 0.9, 1.3 + i as f64 * 0.1), (1, 2.0, 1.8, 2.2)],
            })
            .collect(),
    });
    let start = d("2023-01-02");
    let lines: Vec<Line> = (0..9)
        .map(|i| Line {
            label: format!("MODEL-{i}-SXM-80GB"),
            color: chart::model_color(i),
            points: (0..105)
                .map(|w| {
                    (
                        start + chrono::Duration::days(7 * w),
                        0.99 + 0.0001 * (w + i as i64) as f64,
                    )
                })
                .collect(),
            band: Vec::new(),
        })
        .collect();
    let long = Chart::Line(LineChart {
        title: "On-demand price index by bloc, weeks 2023-W01 to 2024-W52".into(),
        caption: "Chain-linked over matched models.".into(),
        y_label: "CN median / US median".into(),
        lines,
        reference: Some(chart::Reference {
            value: 1.0,
            name: "parity, CN = US".into(),
        }),
        step_days: 7,
        ..Default::default()
    });
    let counts = Chart::Line(LineChart {
        title: "Offers observed per day by bloc".into(),
        caption: "Test data.".into(),
        y_label: "offer observations per day".into(),
        lines: vec![Line {
            label: "CN offer observations".into(),
            color: PALETTE[0],
            points: (0..28)
                .map(|i| (start + chrono::Duration::days(i), 2.0 + (i % 3) as f64))
                .collect(),
            band: Vec::new(),
        }],
        y_from_zero: true,
        step_days: 1,
        integer_y: true,
        ..Default::default()
    });
    vec![
        ("crowded-bars", bar),
        ("two-years", long),
        ("counts", counts),
    ]
}

fn tick_texts(svg: &str) -> Vec<String> {
    chart::text_boxes(svg)
        .unwrap()
        .into_iter()
        .map(|t| t.0)
        .collect()
}

#[test]
fn crowded_charts_stay_legible() {
    for (name, c) in crowded() {
        let svg = chart::to_svg(&c, name).unwrap();
        legible(&svg, name);
        let png = chart::svg_to_png(&svg).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!(img.width(), chart::WIDTH, "{name}");
    }
    let texts: Vec<Vec<String>> = crowded()
        .iter()
        .map(|(n, c)| tick_texts(&chart::to_svg(c, n).unwrap()))
        .collect();
    // Every bar label is drawn (the chart grows to hold them).
    assert!(texts[0].iter().any(|t| t == "A100-PCIE-40GB-VARIANT-25"));
    // A two-year weekly axis is labelled with years; ratio ticks are distinct.
    assert!(
        texts[1].iter().any(|t| t.starts_with("2024-")),
        "{:?}",
        texts[1]
    );
    assert!(
        texts[1].iter().any(|t| t.starts_with("2023-")),
        "{:?}",
        texts[1]
    );
    let numeric: Vec<&String> = texts[1]
        .iter()
        .filter(|t| t.starts_with("0.9") || t.starts_with("1.0"))
        .collect();
    let distinct: std::collections::BTreeSet<&&String> = numeric.iter().collect();
    assert_eq!(distinct.len(), numeric.len(), "{numeric:?}");
    // Counts are whole numbers.
    assert!(
        texts[2].iter().any(|t| t == "4")
            && !texts[2]
                .iter()
                .any(|t| t.parse::<f64>().is_ok() && t.contains('.')),
        "{:?}",
        texts[2]
    );
    // Nothing to draw: an error, never an empty axis.
    let empty = Chart::Line(LineChart::default());
    assert!(chart::to_svg(&empty, "empty").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_text_is_stable() {
    let times: Vec<_> = (0..3)
        .map(|d| Utc.with_ymd_and_hms(2024, 10, 7 + d, 12, 0, 0).unwrap())
        .collect();
    let (_srv, tmp, _, store) = fixture_store(&times).await;
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
    insta::assert_snapshot!(
        "feed_xml",
        std::fs::read_to_string(out.join("feed.xml")).unwrap()
    );
    insta::assert_snapshot!(
        "reports_index_html",
        std::fs::read_to_string(out.join("index.html")).unwrap()
    );
    let mut charts = 0;
    for f in std::fs::read_dir(dir.join("charts")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|x| x == "png") {
            not_blank(&p);
        }
        if p.extension().is_some_and(|x| x == "svg") {
            legible(
                &std::fs::read_to_string(&p).unwrap(),
                &p.display().to_string(),
            );
            charts += 1;
        }
    }
    assert!(charts >= 4, "{charts} charts");
    // Reference lines are named in the legend: parity on the ratio chart, the first
    // week on the index chart.
    for (name, key) in [
        ("ratio", "parity, CN = US (1)"),
        ("index", "first week (100)"),
    ] {
        let svg = std::fs::read_to_string(dir.join(format!("charts/{name}.svg"))).unwrap();
        let texts = tick_texts(&svg);
        assert!(texts.iter().any(|t| t == key), "{name}: {texts:?}");
    }
}
