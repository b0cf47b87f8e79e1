//! The embedded default: simulated providers on 127.0.0.1 driven through the real
//! ingest path over HTTP for four weeks of hourly snapshots on a simulated clock,
//! then the weekly reports. Everything it produces is labelled SIMULATED.
//!
//! Providers simulated: a vast.ai-style marketplace with hosts in China and the US
//! (the real `vastai` wire format), a Chinese cloud publishing a CNY price list per
//! instance-hour including 6% VAT (`generic_csv`), and the ECB daily rates XML. The
//! price list and the rates carry an `ETag` and answer 304 when unchanged.
//! Price levels are loosely based on public 2024 figures (e.g. H100 around $2-3 per
//! GPU-hour in the US); they move hour by hour and are not market data.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::ingest;
use crate::ingest::feed;
use crate::report;
use crate::run::sim::{self, HttpRequest, HttpResponse};
use crate::store::Store;
use crate::tables::Tables;
use crate::week::IsoWeek;

/// First simulated hour: Monday 2026-10-26 00:00 UTC; four ISO weeks follow (W44–W47).
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0)
        .single()
        .expect("valid time")
}
pub const HOURS: i64 = 28 * 24;

/// One simulated GPU market: (vast name, gpu_ram MB, USD/GPU-hour in the US, CN level
/// relative to US or None when not offered in CN, US offered?, hosts per bloc).
struct Market {
    name: &'static str,
    ram_mb: f64,
    us_price: f64,
    cn_factor: f64,
    in_us: bool,
    in_cn: bool,
    hosts: u64,
}

const MARKETS: &[Market] = &[
    Market {
        name: "H100 SXM",
        ram_mb: 81559.0,
        us_price: 2.45,
        cn_factor: 0.78,
        in_us: true,
        in_cn: true,
        hosts: 8,
    },
    Market {
        name: "A100 SXM4",
        ram_mb: 81920.0,
        us_price: 1.35,
        cn_factor: 0.72,
        in_us: true,
        in_cn: true,
        hosts: 8,
    },
    Market {
        name: "RTX 4090",
        ram_mb: 24564.0,
        us_price: 0.42,
        cn_factor: 0.74,
        in_us: true,
        in_cn: true,
        hosts: 12,
    },
    Market {
        name: "L40S",
        ram_mb: 46068.0,
        us_price: 0.86,
        cn_factor: 0.85,
        in_us: true,
        in_cn: true,
        hosts: 6,
    },
    Market {
        name: "RTX 4090D",
        ram_mb: 24564.0,
        us_price: 0.42,
        cn_factor: 0.66,
        in_us: false,
        in_cn: true,
        hosts: 8,
    },
    Market {
        name: "H20",
        ram_mb: 97871.0,
        us_price: 2.45,
        cn_factor: 0.48,
        in_us: false,
        in_cn: true,
        hosts: 6,
    },
];

const CN_PLACES: &[&str] = &[
    "Guangdong, CN",
    "Zhejiang, CN",
    "Beijing, CN",
    "Sichuan, CN",
    "Shanghai, CN",
];
const US_PLACES: &[&str] = &[
    "Texas, US",
    "California, US",
    "Virginia, US",
    "Oregon, US",
    "Iowa, US",
];

/// A deterministic uniform number in [0, 1) from a key (splitmix64).
pub fn unit(key: u64) -> f64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn key(parts: &[u64]) -> u64 {
    parts.iter().fold(0xC0FFEE_u64, |acc, p| {
        acc.rotate_left(17) ^ p.wrapping_mul(0x100_0000_01B3)
    })
}

/// The vast.ai search response of hour `h` (hours since [`start`]).
pub fn vast_payload(h: i64) -> String {
    let mut offers = Vec::new();
    let day = h as f64 / 24.0;
    for (mi, m) in MARKETS.iter().enumerate() {
        for (bi, (in_bloc, places)) in [(m.in_cn, CN_PLACES), (m.in_us, US_PLACES)]
            .into_iter()
            .enumerate()
        {
            if !in_bloc {
                continue;
            }
            let level = if bi == 0 {
                // China: slowly cheaper over the month (simulated).
                m.us_price * m.cn_factor * (1.0 - 0.004 * day)
            } else {
                m.us_price * (1.0 - 0.001 * day)
            };
            for host in 0..m.hosts {
                let hk = key(&[mi as u64, bi as u64, host]);
                // A host is offline in about 1 hour in 8.
                if unit(key(&[hk, h as u64, 1])) < 0.125 {
                    continue;
                }
                let host_factor = 0.8 + 0.4 * unit(hk);
                let daily =
                    1.0 + 0.04 * ((h as f64 / 24.0 + unit(hk)) * std::f64::consts::TAU).sin();
                let noise = 1.0 + 0.03 * (unit(key(&[hk, h as u64, 2])) - 0.5);
                let gpus = [1.0, 2.0, 4.0, 8.0][(unit(key(&[hk, 3])) * 4.0) as usize];
                let per_gpu = level * host_factor * daily * noise;
                let dph = (per_gpu * gpus * 1000.0).round() / 1000.0;
                let bid =
                    (dph * (0.55 + 0.1 * unit(key(&[hk, h as u64, 4]))) * 1000.0).round() / 1000.0;
                offers.push(serde_json::json!({
                    "id": 1_000_000 + (mi as u64) * 10_000 + (bi as u64) * 1000 + host,
                    "machine_id": 50_000 + (mi as u64) * 100 + (bi as u64) * 50 + host,
                    "gpu_name": m.name,
                    "num_gpus": gpus,
                    "gpu_ram": m.ram_mb,
                    "dph_total": dph,
                    "min_bid": bid,
                    "geolocation": places[(host as usize) % places.len()],
                    "rentable": true,
                    "reliability2": 0.95 + 0.05 * unit(hk),
                }));
            }
        }
    }
    serde_json::json!({ "offers": offers }).to_string()
}

/// The simulated Chinese cloud's CNY list (per instance-hour, VAT included) at hour `h`.
pub fn cn_cloud_csv(h: i64) -> String {
    let day = (h / 24) as f64;
    let rows: &[(&str, &str, u32, f64)] = &[
        ("sim.gn-a800.8x", "NVIDIA A800 80GB SXM", 8, 74.0),
        ("sim.gn-a100.8x", "NVIDIA A100 80G", 8, 69.0),
        ("sim.gn-h20.8x", "NVIDIA H20", 8, 78.0),
        ("sim.gn-4090d.1x", "GeForce RTX 4090 D", 1, 2.3),
        ("sim.gn-l20.4x", "NVIDIA L20", 4, 15.6),
    ];
    let mut s = String::from("instance_type,gpu,gpus,region,country,price_cny_per_hour\n");
    for (i, (it, gpu, n, base)) in rows.iter().enumerate() {
        for (ri, (region, country)) in [
            ("cn-beijing", "CN"),
            ("cn-shanghai", "CN"),
            ("cn-hongkong", "HK"),
        ]
        .iter()
        .enumerate()
        {
            // List prices change weekly, by up to 2%.
            let wk = (day / 7.0).floor() as u64;
            let f = 1.0 - 0.02 * unit(key(&[i as u64, ri as u64, wk]));
            s.push_str(&format!(
                "{it},{gpu},{n},{region},{country},{:.2}\n",
                base * f
            ));
        }
    }
    s
}

/// The ECB daily XML of the day of hour `h` (the previous Friday on weekends).
pub fn ecb_xml(h: i64) -> String {
    use chrono::Datelike;
    let mut d: NaiveDate = (start() + Duration::hours(h)).date_naive();
    while d.weekday().number_from_monday() > 5 {
        d = d.pred_opt().expect("valid date");
    }
    let n = (d - start().date_naive()).num_days() as f64;
    let usd = 1.08 + 0.01 * (n / 9.0).sin();
    let cny = usd * (7.20 + 0.03 * (n / 11.0).cos());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\">\n<gesmes:subject>Reference rates (SIMULATED)</gesmes:subject>\n<Cube><Cube time=\"{d}\"><Cube currency=\"USD\" rate=\"{usd:.4}\"/><Cube currency=\"CNY\" rate=\"{cny:.4}\"/></Cube></Cube>\n</gesmes:Envelope>\n"
    )
}

/// A list served as real list-price endpoints serve theirs: an `ETag` naming its
/// content, and `304 Not Modified` to a request that holds that version already.
fn versioned(req: &HttpRequest, content_type: &str, body: String) -> HttpResponse {
    let etag = format!("\"{}\"", &crate::store::content_hash(body.as_bytes())[..16]);
    if req.header("if-none-match") == Some(etag.as_str()) {
        return HttpResponse::status(304).with_header("ETag", &etag);
    }
    HttpResponse::ok(content_type, body).with_header("ETag", &etag)
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoResult {
    pub store: PathBuf,
    pub reports: PathBuf,
    pub weeks: Vec<PathBuf>,
    pub failed_runs: usize,
}

/// Run the demo into `out` (`feeds/`, `store/`, `reports/`). `generated_at` stamps reports.
///
/// `progress` receives the user-facing lines: one per simulated day, and the feed
/// lines of every run in which a feed failed. Without it (benches), the failed runs'
/// lines go to `tracing` at warn level and nothing else is said; the library itself
/// never prints.
pub async fn run(
    out: &Path,
    generated_at: DateTime<Utc>,
    progress: Option<&(dyn Fn(&str) + Sync)>,
) -> Result<DemoResult, crate::error::DemoError> {
    let hour = Arc::new(AtomicI64::new(0));
    let h2 = Arc::clone(&hour);
    let handler: sim::Handler = Arc::new(move |req: &HttpRequest| {
        let h = h2.load(Ordering::SeqCst);
        match req.path() {
            "/vast/bundles" => HttpResponse::ok("application/json", vast_payload(h)),
            "/cn-cloud/prices.csv" => versioned(req, "text/csv", cn_cloud_csv(h)),
            "/ecb/eurofxref-daily.xml" => versioned(req, "application/xml", ecb_xml(h)),
            _ => HttpResponse::status(404),
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = sim::serve(handler, stop_rx).await?;

    let feeds_dir = out.join("feeds");
    std::fs::create_dir_all(&feeds_dir)?;
    let files = [
        (
            "sim-vastai.toml",
            format!("# SIMULATED provider served by `gpurent demo`.\nformat = \"vastai\"\nurl = \"{}\"\nprovider = \"sim-vastai\"\nsample = true\n", server.url("/vast/bundles")),
        ),
        (
            "sim-cn-cloud.toml",
            format!("# SIMULATED Chinese cloud price list served by `gpurent demo`.\nformat = \"generic_csv\"\nurl = \"{}\"\nprovider = \"sim-cn-cloud\"\ncurrency = \"CNY\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\nprice_includes_vat = 0.06\nsample = true\n\n[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price_cny_per_hour\"\nregion = \"region\"\ncountry = \"country\"\ninstance_type = \"instance_type\"\n", server.url("/cn-cloud/prices.csv")),
        ),
        (
            "sim-ecb.toml",
            format!("# SIMULATED ECB reference rates served by `gpurent demo`.\nformat = \"ecb_fx\"\nurl = \"{}\"\nsample = true\n", server.url("/ecb/eurofxref-daily.xml")),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(feeds_dir.join(name), text)?;
    }
    let store_dir = out.join("store");
    let store = Store::open(&store_dir);
    let _lock = store.lock()?;
    let client = crate::ingest::fetch::client();
    let tables = Tables::embedded();
    let mut failed_runs = 0;
    for h in 0..HOURS {
        hour.store(h, Ordering::SeqCst);
        let at = start() + Duration::hours(h);
        let (feeds, broken) = feed::load_dir(&feeds_dir)?;
        let report = ingest::run(feeds, broken, &store, &client, at, tables).await;
        if report.failed() > 0 {
            failed_runs += 1;
            for o in &report.outcomes {
                match progress {
                    Some(say) => say(&format!("{at}: {}", o.line())),
                    None => tracing::warn!("{at}: {}", o.line()),
                }
            }
        }
        if let Some(say) = progress.filter(|_| h % 24 == 23) {
            say(&format!(
                "demo: simulated {} ({} of {} hours)",
                at.date_naive(),
                h + 1,
                HOURS
            ));
        }
    }
    let _ = stop_tx.send(true);
    let _ = server.task.await;

    crate::analysis::rollup::refresh(&store)?;
    let reports = out.join("reports");
    let mut weeks = Vec::new();
    for w in 0..4 {
        let week = IsoWeek::of(start().date_naive() + Duration::days(7 * w));
        weeks.push(report::write_week(&store, &reports, week, generated_at)?);
    }
    Ok(DemoResult {
        store: store_dir,
        reports,
        weeks,
        failed_runs,
    })
}
