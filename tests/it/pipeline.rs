//! The foundation end to end: loopback feeds in the vast.ai, generic CSV (CNY) and
//! ECB formats, `gpurent ingest` for several hours, `gpurent report`, and checks of
//! stored values, summary medians, exit codes and de-duplication.

use std::path::Path;

use gpurent::run::sim::HttpResponse;

use crate::common::*;

/// The vast fixture with every price multiplied by `factor`.
fn vast_scaled(factor: f64) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture("vastai_search.json")).unwrap();
    for o in v["offers"].as_array_mut().unwrap() {
        for k in ["dph_total", "min_bid"] {
            if let Some(p) = o[k].as_f64() {
                o[k] = serde_json::json!(p * factor);
            }
        }
    }
    serde_json::to_vec(&v).unwrap()
}

fn write_feeds(dir: &Path, srv: &TestServer) {
    std::fs::create_dir_all(dir).unwrap();
    let feeds = [
        (
            "vast.toml",
            format!(
                "format = \"vastai\"\nurl = \"{}\"\nretry_base_ms = 10\n",
                srv.url("/vast")
            ),
        ),
        ("cncloud.toml", cn_csv_feed(&srv.url("/cn.csv"))),
        (
            "ecb.toml",
            format!("format = \"ecb_fx\"\nurl = \"{}\"\n", srv.url("/ecb.xml")),
        ),
        (
            "broken.toml",
            format!(
                "format = \"vastai\"\nurl = \"{}\"\nretries = 0\n",
                srv.url("/broken")
            ),
        ),
    ];
    for (name, text) in feeds {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

async fn ingest(feeds: &Path, store: &Path, at: &str) -> (i32, String, String) {
    gpurent_async(&ingest_args(feeds, store, at)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_then_report() {
    let srv = server().await;
    let tmp = tempdir();
    let (feeds, store, reports) = (
        tmp.path().join("feeds"),
        tmp.path().join("store"),
        tmp.path().join("reports"),
    );
    write_feeds(&feeds, &srv);
    serve_fixture(&srv, "/cn.csv", "cn_cloud_prices.csv");
    serve_fixture(&srv, "/ecb.xml", "eurofxref-daily.xml");
    srv.routes.set(
        "/broken",
        HttpResponse::ok("application/json", "{\"offers\": [ {not json"),
    );

    let factors = [1.0, 1.1, 0.9, 1.2];
    for (h, f) in factors.iter().enumerate() {
        srv.routes.set(
            "/vast",
            HttpResponse::ok("application/json", vast_scaled(*f)),
        );
        let (code, out, err) = ingest(&feeds, &store, &format!("2024-10-07T0{h}:15:00Z")).await;
        assert_eq!(
            code, 1,
            "one feed is broken, so exit 1\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert!(
            out.contains("broken: FAILED")
                && out.contains("malformed payload")
                && out.contains("invalid JSON"),
            "{out}"
        );
        assert!(out.contains("vast: ok, 16 offers read, 13 stored, 3 rejected (non_positive_price 1, unknown_gpu_name 2)"), "{out}");
        assert!(
            out.contains("cncloud: ok, 4 offers read, 4 stored, 0 rejected"),
            "{out}"
        );
        assert!(out.contains("ecb: ok"), "{out}");
    }

    let offers = read_all(&store.join("offers")).expect("offers stored");
    assert_eq!(offers.height(), 4 * (13 + 4));
    // vast: 8x H100 SXM in Guangdong at $20.00/h → $2.50 per GPU-hour on demand, bid $12 → $1.50 spot.
    let h0 = "2024-10-07 00:15";
    let check =
        |offer: &str, class: &str, model: &str, bloc: &str, country: &str, count: f64, usd: f64| {
            let r = rows_where(&offers, &[("offer_id", offer), ("price_class", class)]);
            assert_eq!(r.height(), 4, "{offer} {class}: one row per hour");
            assert!(
                r.column("observed_at")
                    .unwrap()
                    .get(0)
                    .unwrap()
                    .to_string()
                    .contains(h0),
                "{offer}: rows sorted by hour, stored at the hour's time"
            );
            let got = f64_col(&r, "usd_per_gpu_hour")[0];
            assert!(
                (got - usd).abs() < 1e-9,
                "{offer} {class}: usd_per_gpu_hour {got} != {usd}"
            );
            assert_eq!(str_col(&r, "gpu_model")[0], model, "{offer}");
            assert_eq!(str_col(&r, "bloc")[0], bloc, "{offer}");
            assert_eq!(str_col(&r, "country")[0], country, "{offer}");
            assert_eq!(f64_col(&r, "gpu_count")[0], count, "{offer}");
        };
    check(
        "9100001",
        "on_demand",
        "H100-SXM-80GB",
        "CN",
        "CN",
        8.0,
        2.5,
    );
    check("9100001", "spot", "H100-SXM-80GB", "CN", "CN", 8.0, 1.5);
    check(
        "9100002",
        "on_demand",
        "H100-SXM-80GB",
        "US",
        "US",
        1.0,
        2.9,
    );
    check(
        "9100006",
        "on_demand",
        "A100-SXM-80GB",
        "OTHER",
        "HK",
        8.0,
        1.1,
    );
    check(
        "9100008",
        "on_demand",
        "RTX4090D-24GB",
        "CN",
        "CN",
        1.0,
        0.28,
    );
    // CNY list price per instance-hour, ECB rates of Friday 2024-10-04 for Monday's observation.
    let usd_per_cny = 1.1029 / 7.7407;
    check(
        "line2",
        "on_demand",
        "A100-SXM-80GB",
        "CN",
        "CN",
        8.0,
        69.0 / 8.0 * usd_per_cny,
    );
    check(
        "line4",
        "on_demand",
        "H20-96GB",
        "CN",
        "CN",
        8.0,
        78.0 / 8.0 * usd_per_cny,
    );
    check(
        "line5",
        "on_demand",
        "RTX4090D-24GB",
        "OTHER",
        "HK",
        1.0,
        2.30 * usd_per_cny,
    );
    let cn = rows_where(&offers, &[("offer_id", "line2")]);
    let ex = f64_col(&cn, "usd_per_gpu_hour_ex_vat")[0];
    assert!((ex - 69.0 / 8.0 * usd_per_cny / 1.06).abs() < 1e-9);
    assert_eq!(
        cn.column("fx_date").unwrap().get(0).unwrap().to_string(),
        "2024-10-04"
    );

    // Rejects are kept with their reason.
    let rejects = read_all(&store.join("rejects")).unwrap();
    let unknown = rows_where(&rejects, &[("reason", "unknown_gpu_name")]);
    assert_eq!(unknown.height(), 8);
    assert!(str_col(&unknown, "detail")[0].contains("Mystery GPU 9000"));
    // Raw payloads are kept.
    assert!(
        std::fs::read_dir(store.join("raw/date=2024-10-07"))
            .unwrap()
            .count()
            >= 12
    );

    // Re-ingesting an hour adds nothing.
    let (code, out, _) = ingest(&feeds, &store, "2024-10-07T00:40:00Z").await;
    assert_eq!(code, 1);
    assert!(
        out.contains("vast: already stored for this hour, nothing added"),
        "{out}"
    );
    assert_eq!(
        read_all(&store.join("offers")).unwrap().height(),
        offers.height()
    );

    // The weekly report, and its medians against an independent computation.
    let (code, out, err) = gpurent_async(&report_args(&store, &reports, "2024-W41")).await;
    assert_eq!(code, 0, "{out}{err}");
    let week = reports.join("2024-W41");
    for f in [
        "index.html",
        "report.md",
        "summary.json",
        "summary.csv",
        "charts/ratio.svg",
        "charts/ratio.png",
        "charts/price-h100-sxm-80gb.svg",
        "charts/price-h100-sxm-80gb.png",
        "charts/week-medians.svg",
    ] {
        assert!(week.join(f).is_file(), "missing {f}");
    }
    assert!(reports
        .join("index.html")
        .read_to_string_contains("2024-W41"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(week.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["week"], "2024-W41");
    assert_eq!(summary["coverage"]["implausible"], 0);
    assert_eq!(summary["coverage"]["fractional"], 0);
    let rows = summary["rows"].as_array().unwrap();
    assert!(rows.len() >= 8);
    for row in rows {
        let sel = rows_where(
            &offers,
            &[
                ("gpu_model", row["gpu_model"].as_str().unwrap()),
                ("bloc", row["bloc"].as_str().unwrap()),
                ("price_class", row["price_class"].as_str().unwrap()),
            ],
        );
        // Each offer in force counts once, at its last observed price (METHODOLOGY.md).
        let latest = latest_prices(&sel);
        let v: Vec<f64> = latest.values().map(|p| p.1).collect();
        assert_eq!(row["offers"].as_u64().unwrap() as usize, v.len(), "{row}");
        assert_eq!(
            row["observations"].as_u64().unwrap() as usize,
            sel.height(),
            "{row}"
        );
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(
            (row["min"].as_f64().unwrap() - min).abs() < 1e-12,
            "min of {row}"
        );
        // scipy.stats.trim_mean(v, 0.1): cut floor(10% of n) values at each end.
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let cut = sorted.len() / 10;
        let kept = &sorted[cut..sorted.len() - cut];
        let trimmed = kept.iter().sum::<f64>() / kept.len() as f64;
        assert!(
            (row["trimmed_mean_10"].as_f64().unwrap() - trimmed).abs() < 1e-9,
            "trimmed mean of {row}"
        );
        assert_eq!(
            row["distinct_offers"].as_u64().unwrap() as usize,
            latest.len(),
            "{row}"
        );
        for (k, q) in [
            ("median", 0.5),
            ("p25", 0.25),
            ("p75", 0.75),
            ("p10", 0.1),
            ("p90", 0.9),
        ] {
            let want = quantile(&v, q);
            let got = row[k].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{k} of {row}: {got} != {want}");
        }
    }
    let ratio = summary["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["gpu_model"] == "H100-SXM-80GB" && r["price_class"] == "on_demand")
        .expect("H100 ratio");
    // Provider-balanced: the median of each provider's median of its latest prices.
    let balanced = |bloc: &str| {
        let sel = rows_where(
            &offers,
            &[
                ("gpu_model", "H100-SXM-80GB"),
                ("bloc", bloc),
                ("price_class", "on_demand"),
            ],
        );
        let mut by: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for (provider, price) in latest_prices(&sel).into_values() {
            by.entry(provider).or_default().push(price);
        }
        let medians: Vec<f64> = by.values().map(|v| quantile(v, 0.5)).collect();
        quantile(&medians, 0.5)
    };
    let (cn, us) = (balanced("CN"), balanced("US"));
    assert!((ratio["cn_median"].as_f64().unwrap() - cn).abs() < 1e-9);
    assert!((ratio["us_median"].as_f64().unwrap() - us).abs() < 1e-9);
    assert!((ratio["cn_us_ratio"].as_f64().unwrap() - cn / us).abs() < 1e-9);
    let html = std::fs::read_to_string(week.join("index.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
    assert!(
        !html.contains("SIMULATED"),
        "real-format fixtures are not labelled simulated"
    );
}

/// Per offer (feed, offer id, class): its provider and the price of its latest
/// observation.
fn latest_prices(
    sel: &polars::prelude::DataFrame,
) -> std::collections::BTreeMap<(String, String, String), (String, f64)> {
    let t = i64_col(sel, "observed_at");
    let (feed, id, class, provider) = (
        str_col(sel, "feed"),
        str_col(sel, "offer_id"),
        str_col(sel, "price_class"),
        str_col(sel, "provider"),
    );
    let price = f64_col(sel, "usd_per_gpu_hour");
    let mut best: std::collections::BTreeMap<(String, String, String), (i64, String, f64)> =
        Default::default();
    for i in 0..sel.height() {
        let key = (feed[i].clone(), id[i].clone(), class[i].clone());
        let e = best
            .entry(key)
            .or_insert((i64::MIN, String::new(), f64::NAN));
        if t[i] >= e.0 {
            *e = (t[i], provider[i].clone(), price[i]);
        }
    }
    best.into_iter().map(|(k, (_, p, v))| (k, (p, v))).collect()
}

trait ContainsExt {
    fn read_to_string_contains(&self, needle: &str) -> bool;
}
impl ContainsExt for std::path::PathBuf {
    fn read_to_string_contains(&self, needle: &str) -> bool {
        std::fs::read_to_string(self)
            .map(|s| s.contains(needle))
            .unwrap_or(false)
    }
}
