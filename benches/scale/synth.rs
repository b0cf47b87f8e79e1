//! A SIMULATED store of a given size, written directly as compacted day files (not
//! through hourly ingest), so that a year of history takes seconds to build.
//!
//! The mix: six list-price providers (CN: aliyun, tencent, autodl in CNY; US: aws,
//! lambda, runpod in USD; validity 1080 h in `tables/providers.toml`) with a fixed
//! catalogue whose prices move every 8 weeks, and a vast.ai-like marketplace
//! (`vastai`, validity 6 h) whose hosts in CN, US and HK come and go (an offer lives
//! about 48 h and misses 5 % of the hours), with a few fractional-GPU offers and
//! implausible prices. 30 % of each hour's rows are list prices, 70 % marketplace.
//!
//! Invariants: deterministic (fastrand seeded per offer and hour, never by the clock);
//! the columns and types are the stored offers schema (`normalise::offer_schema`,
//! checked on every file); one file per feed and day, named
//! `<feed>__<YYYYMMDD>-ffffff.parquet` (all 24 hours held); every row has
//! `sample = true`: it is SIMULATED data.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Duration, NaiveDate, Weekday};
use gpurent::model::FxRate;
use gpurent::normalise::offer_schema;
use gpurent::store::{write_day_offers, Store};
use gpurent::tables::Tables;
use gpurent::week::IsoWeek;

use crate::columns::{Cols, Row};

/// Bump when the generated data or files change, so that a kept store is written
/// again (3: day files carry the row-order footer key, so `gpurent compact`, run once
/// for the rollups, has nothing to re-sort).
const GENERATOR: u32 = 3;
const SEED: u64 = 0x6770_7572_656e_7431;
const HOUR_MS: i64 = 3_600_000;

/// A store size: weeks of history ending with ISO week 2026-W48, and rows an hour.
#[derive(Debug, Clone)]
pub struct Scale {
    pub label: String,
    pub weeks: i64,
    pub per_hour: usize,
}

impl Scale {
    /// `4w`, `26w`, `1y` (52 weeks), optionally `<n>k` offers an hour (default 2,000):
    /// `1y20k` is 52 weeks at 20,000 an hour.
    pub fn parse(s: &str) -> Option<Scale> {
        let i = s.find(['w', 'y'])?;
        let n: i64 = s[..i].parse().ok().filter(|n| *n > 0)?;
        let weeks = if &s[i..=i] == "y" { n * 52 } else { n };
        let rest = &s[i + 1..];
        let per_hour = match rest.strip_suffix('k') {
            None if rest.is_empty() => 2_000,
            Some(k) => k.parse::<usize>().ok().filter(|k| *k > 0)? * 1_000,
            None => return None,
        };
        Some(Scale {
            label: s.to_string(),
            weeks,
            per_hour,
        })
    }

    /// The last (reported) week: 2026-W48, Monday 2026-11-23.
    pub fn last_week(&self) -> IsoWeek {
        IsoWeek::of(NaiveDate::from_isoywd_opt(2026, 48, Weekday::Mon).expect("valid"))
    }

    pub fn first_day(&self) -> NaiveDate {
        self.last_week().monday() - Duration::weeks(self.weeks - 1)
    }
}

/// A written (or kept) store.
#[derive(Debug, Clone)]
pub struct Written {
    pub root: PathBuf,
    pub rows: u64,
    pub offers_mib: f64,
    /// Seconds it took to write (when kept, the time of the run that wrote it).
    pub write_s: f64,
    pub kept: bool,
}

struct Model {
    id: &'static str,
    raw: &'static str,
    usd: f64,
    /// Share of marketplace offers, in parts of 100.
    weight: u32,
}

const MODELS: &[Model] = &[
    m("H100-SXM-80GB", "H100 SXM", 2.40, 15),
    m("A100-SXM-80GB", "A100 SXM4", 1.30, 15),
    m("RTX4090-24GB", "RTX 4090", 0.40, 30),
    m("L40S-48GB", "L40S", 0.85, 10),
    m("H20-96GB", "H20", 1.10, 8),
    m("H800-SXM-80GB", "H800", 1.80, 7),
    m("A800-SXM-80GB", "A800 SXM4", 1.00, 5),
    m("RTX4090D-24GB", "RTX 4090D", 0.30, 10),
];

const fn m(id: &'static str, raw: &'static str, usd: f64, weight: u32) -> Model {
    Model {
        id,
        raw,
        usd,
        weight,
    }
}

/// A provider with its own price list.
struct ListProvider {
    name: &'static str,
    country: &'static str,
    currency: &'static str,
    unit: &'static str,
    vat: f64,
    regions: &'static [&'static str],
    models: &'static [usize],
    classes: &'static [&'static str],
    premium: f64,
}

const OD: &[&str] = &["on_demand"];
const OD_SPOT: &[&str] = &["on_demand", "spot"];
const LIST: &[ListProvider] = &[
    lp(
        "aliyun",
        "CN",
        "CNY",
        "instance-hour",
        0.06,
        &["cn-beijing", "cn-shanghai", "cn-hangzhou"],
        &[4, 5, 6, 3, 7],
        OD_SPOT,
        1.25,
    ),
    lp(
        "autodl",
        "CN",
        "CNY",
        "gpu-hour",
        0.0,
        &["cn-north", "cn-east"],
        &[2, 7, 6, 5, 4, 3],
        OD,
        0.90,
    ),
    lp(
        "aws",
        "US",
        "USD",
        "instance-hour",
        0.0,
        &["us-east-1", "us-west-2"],
        &[0, 1, 3],
        OD_SPOT,
        1.60,
    ),
    lp(
        "lambda",
        "US",
        "USD",
        "gpu-hour",
        0.0,
        &["us-east-1", "us-west-1"],
        &[0, 1],
        OD,
        1.05,
    ),
    lp(
        "runpod",
        "US",
        "USD",
        "gpu-hour",
        0.0,
        &["US-TX-3", "US-GA-1"],
        &[0, 1, 2, 3],
        OD_SPOT,
        0.95,
    ),
    lp(
        "tencent",
        "CN",
        "CNY",
        "instance-hour",
        0.06,
        &["ap-guangzhou", "ap-shanghai"],
        &[4, 5, 6, 7],
        OD_SPOT,
        1.20,
    ),
];

#[allow(clippy::too_many_arguments)]
const fn lp(
    name: &'static str,
    country: &'static str,
    currency: &'static str,
    unit: &'static str,
    vat: f64,
    regions: &'static [&'static str],
    models: &'static [usize],
    classes: &'static [&'static str],
    premium: f64,
) -> ListProvider {
    ListProvider {
        name,
        country,
        currency,
        unit,
        vat,
        regions,
        models,
        classes,
        premium,
    }
}

/// Marketplace host locations (vast.ai `geolocation`): country, bloc, text.
const PLACES: &[(&str, &str, &str)] = &[
    ("CN", "CN", "Guangdong, CN"),
    ("CN", "CN", "Zhejiang, CN"),
    ("CN", "CN", "Sichuan, CN"),
    ("US", "US", "Texas, US"),
    ("US", "US", "California, US"),
    ("US", "US", "Virginia, US"),
    ("HK", "OTHER", "Hong Kong, HK"),
];

fn rng(parts: &[u64]) -> fastrand::Rng {
    let seed = parts.iter().fold(SEED, |acc, p| {
        (acc ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(29)
    });
    fastrand::Rng::with_seed(seed)
}

/// USD per CNY on a day (SIMULATED ECB cross rate), and the rate's date: the day
/// itself, or the Friday before a weekend.
fn usd_per_cny(day: NaiveDate) -> (NaiveDate, f64) {
    use chrono::Datelike;
    let back = match day.weekday() {
        Weekday::Sat => 1,
        Weekday::Sun => 2,
        _ => 0,
    };
    let d = day - Duration::days(back);
    let n = gpurent::week::epoch_days(d) as u64;
    (d, 0.1390 + 0.0001 * (n % 23) as f64)
}

fn epoch_days(d: NaiveDate) -> i32 {
    gpurent::week::epoch_days(d)
}

/// One list-price offer of a provider's catalogue.
struct ListOffer {
    offer_id: String,
    instance_type: String,
    region: &'static str,
    model: usize,
    count: f64,
    class: &'static str,
    variant: usize,
}

/// A provider's catalogue of `n` rows an hour: regions x models x sizes x classes,
/// repeated as numbered variants until there are `n`.
fn catalogue(p: &ListProvider, n: usize) -> Vec<ListOffer> {
    let (r, ms, c) = (p.regions.len(), p.models.len(), p.classes.len());
    (0..n)
        .map(|k| {
            let region = p.regions[k % r];
            let model = p.models[(k / r) % ms];
            let count = [8.0, 1.0, 4.0][(k / (r * ms)) % 3];
            let class = p.classes[(k / (r * ms * 3)) % c];
            let variant = k / (r * ms * 3 * c);
            let instance_type = format!(
                "gpu.{}.{}x.v{variant}",
                MODELS[model].id.to_ascii_lowercase(),
                count
            );
            ListOffer {
                offer_id: format!("{region}/{instance_type}"),
                instance_type,
                region,
                model,
                count,
                class,
                variant,
            }
        })
        .collect()
}

/// The published price (currency per unit) of a list offer in an 8-week price epoch.
fn list_price(pi: usize, p: &ListProvider, o: &ListOffer, epoch: i64) -> f64 {
    let drift = 0.94 + 0.12 * rng(&[pi as u64, o.model as u64, epoch as u64]).f64();
    let class = if o.class == "spot" { 0.5 } else { 1.0 };
    let usd =
        MODELS[o.model].usd * p.premium * (1.0 + 0.03 * (o.variant % 4) as f64) * class * drift;
    let per_unit = if p.unit == "instance-hour" {
        usd * o.count
    } else {
        usd
    };
    if p.currency == "CNY" {
        (per_unit / 0.14 * 100.0).round() / 100.0
    } else {
        (per_unit * 10_000.0).round() / 10_000.0
    }
}

/// One hour of a list provider's catalogue.
fn list_hour<'a>(cols: &mut Cols<'a>, pi: usize, cat: &'a [ListOffer], t_ms: i64, day: NaiveDate) {
    let p = &LIST[pi];
    let epoch = (t_ms / HOUR_MS) / (24 * 7 * 8);
    let (fx_day, cny) = usd_per_cny(day);
    let (fx_date, fx) = if p.currency == "CNY" {
        (epoch_days(fx_day), cny)
    } else {
        (epoch_days(day), 1.0)
    };
    for o in cat {
        let price = list_price(pi, p, o, epoch);
        let per_gpu = if p.unit == "instance-hour" {
            price / o.count
        } else {
            price
        };
        let model = &MODELS[o.model];
        cols.push(Row {
            t_ms,
            feed: p.name,
            provider: p.name,
            offer_id: o.offer_id.clone(),
            instance_type: Some(o.instance_type.as_str()),
            region: o.region,
            country: p.country,
            bloc: p.country,
            name_raw: model.raw,
            model: model.id,
            china: china_variant(o.model),
            count: o.count,
            avail: None,
            class: o.class,
            price,
            currency: p.currency,
            unit: p.unit,
            fx_date,
            fx,
            vat: p.vat,
            usd: per_gpu * fx,
        });
    }
}

/// `china_variant` of `MODELS[i]`, from the GPU tables (looked up once).
fn china_variant(i: usize) -> bool {
    static FLAGS: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        MODELS
            .iter()
            .map(|m| {
                Tables::embedded()
                    .gpus
                    .model(m.id)
                    .is_some_and(|g| g.china_variant)
            })
            .collect()
    })[i]
}

/// A marketplace offer's lasting attributes, from its id.
struct Host {
    model: usize,
    place: usize,
    count: f64,
    usd: f64,
    has_bid: bool,
}

fn host(id: u64) -> Host {
    let mut r = rng(&[0x7661_7374, id]);
    let mut pick = r.u32(..100);
    let model = MODELS
        .iter()
        .position(|m| {
            let hit = pick < m.weight;
            pick = pick.saturating_sub(m.weight);
            hit
        })
        .unwrap_or(0);
    let place = if china_variant(model) {
        if r.f64() < 0.9 {
            r.usize(0..3)
        } else {
            6
        }
    } else {
        [0, 1, 2, 3, 3, 4, 4, 5, 5, 6][r.usize(..10)]
    };
    let count = if r.f64() < 0.01 {
        0.5
    } else {
        [1.0, 1.0, 2.0, 4.0, 8.0][r.usize(..5)]
    };
    let bloc_level = if PLACES[place].1 == "CN" { 0.85 } else { 1.0 };
    let outlier = match r.u32(..1000) {
        0 => 30.0,
        1 => 0.02,
        _ => 1.0,
    };
    Host {
        model,
        place,
        count,
        usd: MODELS[model].usd * (0.8 + 0.4 * r.f64()) * bloc_level * outlier,
        has_bid: r.f64() < 0.6,
    }
}

/// One hour of the marketplace: `rows` rows from the offers listed in hour `g` (hours
/// since the epoch). Offers enter at a steady rate and live about 48 hours.
fn market_hour(cols: &mut Cols<'_>, rows: usize, g: i64, day: NaiveDate) {
    let window = (rows as f64 / 1.6 * 1.1).ceil() as u64;
    let mut id = g as u64 * window.div_ceil(48);
    let start = cols.rows();
    while cols.rows() - start < rows {
        id += 1;
        let mut hr = rng(&[id, g as u64]);
        if hr.f64() < 0.05 {
            continue; // not listed this hour
        }
        let h = host(id);
        let dph = ((h.usd * h.count * (0.98 + 0.04 * hr.f64())) * 10_000.0).round() / 10_000.0;
        let mut row = market_row(&h, id, g * HOUR_MS, day, "on_demand", dph);
        cols.push(row.clone());
        if h.has_bid && cols.rows() - start < rows {
            let bid = (dph * 0.55 * 10_000.0).round() / 10_000.0;
            row.class = "spot";
            row.price = bid;
            row.usd = bid / h.count;
            cols.push(row);
        }
    }
}

fn market_row(
    h: &Host,
    id: u64,
    t_ms: i64,
    day: NaiveDate,
    class: &'static str,
    price: f64,
) -> Row<'static> {
    let model = &MODELS[h.model];
    let (country, bloc, geo) = PLACES[h.place];
    Row {
        t_ms,
        feed: "vastai",
        provider: "vastai",
        offer_id: id.to_string(),
        instance_type: None,
        region: geo,
        country,
        bloc,
        name_raw: model.raw,
        model: model.id,
        china: china_variant(h.model),
        count: h.count,
        avail: Some(h.count),
        class,
        price,
        currency: "USD",
        unit: "instance-hour",
        fx_date: epoch_days(day),
        fx: 1.0,
        vat: 0.0,
        usd: price / h.count,
    }
}

/// Rows an hour: each list provider's share, then the marketplace's.
fn split(per_hour: usize) -> (usize, usize) {
    let each = per_hour * 3 / 10 / LIST.len();
    (each, per_hour - each * LIST.len())
}

/// Write one day: a file per feed. Returns rows written.
fn write_day(
    store: &Store,
    cats: &[Vec<ListOffer>],
    market: usize,
    day: NaiveDate,
) -> Result<u64, String> {
    let t0 = day
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis();
    let mut rows = 0;
    for feed in 0..=LIST.len() {
        let mut cols = Cols::default();
        for h in 0..24 {
            let t = t0 + h * HOUR_MS;
            match cats.get(feed) {
                Some(cat) => list_hour(&mut cols, feed, cat, t, day),
                None => market_hour(&mut cols, market, t / HOUR_MS, day),
            }
        }
        let name = LIST.get(feed).map_or("vastai", |p| p.name);
        let df = cols
            .into_frame()
            .map_err(|e| format!("{name} {day}: {e}"))?;
        if df.schema() != &offer_schema() {
            return Err(format!(
                "{name} {day}: not the stored offers schema: {:?}",
                df.schema()
            ));
        }
        rows += df.height() as u64;
        let path = store.root().join(format!(
            "offers/date={day}/{name}__{}-ffffff.parquet",
            day.format("%Y%m%d")
        ));
        write_day_offers(&store.tmp_dir(), &path, &df).map_err(|e| e.to_string())?;
    }
    Ok(rows)
}

/// Write every day of `scale`, on `WRITERS` threads (day d on thread d mod WRITERS;
/// each day's data depend on the day only). Returns rows written.
fn write_days(
    store: &Store,
    scale: &Scale,
    cats: &[Vec<ListOffer>],
    market: usize,
) -> Result<u64, String> {
    let writers: i64 = std::env::var("GPURENT_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .max(1);
    let days = scale.weeks * 7;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..writers)
            .map(|k| {
                s.spawn(move || {
                    (k..days).step_by(writers as usize).try_fold(0, |rows, d| {
                        Ok::<u64, String>(
                            rows + write_day(
                                store,
                                cats,
                                market,
                                scale.first_day() + Duration::days(d),
                            )?,
                        )
                    })
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| "a writer thread panicked".to_string())?
            })
            .sum()
    })
}

/// The SIMULATED ECB rates behind the CNY rows (`fx/ecb.parquet`).
fn write_fx(store: &Store, scale: &Scale) -> Result<(), String> {
    let mut rates = Vec::new();
    for d in 0..scale.weeks * 7 {
        let (date, usd_per_cny) = usd_per_cny(scale.first_day() + Duration::days(d));
        if date != scale.first_day() + Duration::days(d) {
            continue;
        }
        for (currency, units_per_eur) in [("USD", 1.08), ("CNY", 1.08 / usd_per_cny)] {
            rates.push(FxRate {
                date,
                currency: currency.into(),
                units_per_eur,
            });
        }
    }
    store
        .merge_fx(&rates)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What a kept store was written with (`bench-scale.json` in its root).
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Marker {
    generator: u32,
    weeks: i64,
    per_hour: usize,
    rows: u64,
    write_s: f64,
    simulated: bool,
}

/// The store of `scale` under `dir`: kept from an earlier run with the same generator
/// and size unless `rewrite`, else written anew.
pub fn ensure(dir: &Path, scale: &Scale, rewrite: bool) -> Result<Written, String> {
    let root = dir.join(&scale.label);
    let marker_path = root.join("bench-scale.json");
    let kept = std::fs::read(&marker_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
        .filter(|m| {
            m.generator == GENERATOR && m.weeks == scale.weeks && m.per_hour == scale.per_hour
        });
    if let (Some(m), false) = (&kept, rewrite) {
        return Ok(written(root, m.rows, m.write_s, true));
    }
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    let store = Store::open(&root);
    let start = Instant::now();
    let (each, market) = split(scale.per_hour);
    let cats: Vec<Vec<ListOffer>> = LIST.iter().map(|p| catalogue(p, each)).collect();
    let rows = write_days(&store, scale, &cats, market)?;
    write_fx(&store, scale)?;
    let write_s = start.elapsed().as_secs_f64();
    let marker = Marker {
        generator: GENERATOR,
        weeks: scale.weeks,
        per_hour: scale.per_hour,
        rows,
        write_s,
        simulated: true,
    };
    std::fs::write(
        &marker_path,
        serde_json::to_vec_pretty(&marker).expect("serialises"),
    )
    .map_err(|e| format!("{}: {e}", marker_path.display()))?;
    Ok(written(root, rows, write_s, false))
}

fn written(root: PathBuf, rows: u64, write_s: f64, kept: bool) -> Written {
    Written {
        offers_mib: dir_bytes(&root.join("offers")) as f64 / (1024.0 * 1024.0),
        root,
        rows,
        write_s,
        kept,
    }
}

/// Bytes of the files under `p`.
pub fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}
