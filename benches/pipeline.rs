//! Benchmarks (run with `cargo bench --bench pipeline`): wall times of the report
//! path on the demo's four weeks of simulated history, and of the streaming weekly
//! queries on a larger synthetic store. Everything here is SIMULATED data.
//!
//! Sizes can be changed with GPURENT_BENCH_HOURS and GPURENT_BENCH_OFFERS.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use gpurent::analysis;
use gpurent::model::{Offers, PriceClass, PriceUnit, RawOffer};
use gpurent::normalise::{self, Context};
use gpurent::store::Store;
use gpurent::tables::Tables;
use gpurent::week::IsoWeek;

fn median_ms(mut f: impl FnMut(), runs: usize) -> (f64, f64) {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[runs / 2])
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn dir_mib(p: &std::path::Path) -> f64 {
    fn walk(p: &std::path::Path) -> u64 {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() {
                            walk(&p)
                        } else {
                            e.metadata().map(|m| m.len()).unwrap_or(0)
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(p) as f64 / (1024.0 * 1024.0)
}

const MODELS: &[(&str, f64)] = &[
    ("H100 SXM", 2.4),
    ("A100 SXM4 80GB", 1.3),
    ("RTX 4090", 0.42),
    ("L40S", 0.86),
    ("RTX 4090D", 0.3),
    ("H20", 1.2),
    ("H800", 1.9),
    ("A800 SXM4 80GB", 1.0),
];

fn main() {
    let env = |k: &str, d: i64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // 1. The demo's four weeks of hourly history, then one week's report.
    let s = Instant::now();
    let res = rt
        .block_on(gpurent::run::demo::run(
            &tmp.path().join("demo"),
            Utc::now(),
            None,
        ))
        .unwrap();
    println!(
        "bench demo (SIMULATED): 672 hourly ingests over loopback HTTP + 4 reports: {:.1} s wall",
        s.elapsed().as_secs_f64()
    );
    let store = Store::open(&res.store);
    let week = IsoWeek::parse("2026-W47").unwrap();
    let out = tmp.path().join("reports");
    let (min, med) = median_ms(
        || {
            gpurent::report::write_week(&store, &out, week, Utc::now()).unwrap();
        },
        5,
    );
    println!("bench report 2026-W47 from 4 weeks of demo history: min {min:.0} ms, median {med:.0} ms (5 runs)");

    // 2. A larger synthetic store through the real normalise + append path.
    let hours = env("GPURENT_BENCH_HOURS", 24 * 28);
    let per_hour = env("GPURENT_BENCH_OFFERS", 4000) as usize;
    let big = Store::open(tmp.path().join("big"));
    let start = Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap();
    let fx = normalise::fx_frame(&[]).unwrap();
    let s = Instant::now();
    let mut rows = 0usize;
    for h in 0..hours {
        let at = start + Duration::hours(h);
        let offers: Offers = (0..per_hour)
            .map(|i| {
                let (name, level) = MODELS[i % MODELS.len()];
                let mut o = RawOffer::new("bench", format!("o{i}"), name);
                o.country = Some(if i % 2 == 0 { "CN" } else { "US" }.into());
                o.gpu_count = Some([1.0, 2.0, 4.0, 8.0][i / MODELS.len() % 4]);
                o.price_unit = PriceUnit::instance_hour();
                let wobble =
                    1.0 + 0.2 * (((i * 7919 + h as usize * 104_729) % 1000) as f64 / 1000.0 - 0.5);
                o.price = Some(level * o.gpu_count.unwrap() * wobble);
                o.price_class = if i % 5 == 0 {
                    PriceClass::Spot
                } else {
                    PriceClass::OnDemand
                };
                o
            })
            .collect();
        let ctx = Context {
            feed: "bench",
            observed_at: at,
            vat_rate: 0.0,
            sample: true,
            peer: false,
            check_places: false,
        };
        let mut b = normalise::normalise(offers, &[], &ctx, Tables::embedded(), &fx).unwrap();
        rows += b.offers.height();
        big.append("bench", at, &mut b.offers, &mut b.rejects)
            .unwrap();
    }
    let secs = s.elapsed().as_secs_f64();
    println!(
        "bench ingest path (SIMULATED): {rows} rows in {hours} hourly files, {:.1} MiB of Parquet, {secs:.1} s ({:.0} rows/s normalise+write)",
        dir_mib(&big.root().join("offers")),
        rows as f64 / secs
    );
    let cfg = analysis::Config::default();
    let w = IsoWeek::of(start.date_naive() + Duration::days(21));
    let week_rows = rows as f64 * 7.0 * 24.0 / hours as f64;
    let (min, med) = median_ms(
        || {
            analysis::stats(&big, w.monday(), w.sunday(), &cfg).unwrap();
        },
        5,
    );
    println!("bench weekly stats over ~{week_rows:.0} rows: min {min:.0} ms, median {med:.0} ms ({:.1} M rows/s)", week_rows / med / 1000.0);
    let (min, med) = median_ms(
        || {
            analysis::analyse_week(&big, w).unwrap();
        },
        3,
    );
    println!("bench full week analysis (stats, previous week, 4-week daily series, index over all weeks, coverage): min {min:.0} ms, median {med:.0} ms");
    let s = Instant::now();
    for d in big.offer_dates().unwrap() {
        big.compact(d).unwrap();
    }
    println!(
        "bench compact {hours} hourly files into daily ones: {:.1} s",
        s.elapsed().as_secs_f64()
    );
    let (min, med) = median_ms(
        || {
            analysis::analyse_week(&big, w).unwrap();
        },
        3,
    );
    println!("bench full week analysis after compaction: min {min:.0} ms, median {med:.0} ms");
    println!("bench peak RSS of this process: {:.0} MiB", peak_rss_mib());
}
