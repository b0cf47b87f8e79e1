//! Per-week rollups: what the chain-linked index and the long view need of a week,
//! kept in the store so that a weekly report reads its own weeks and these small
//! files instead of every offer ever stored.
//!
//! A week's rollup holds, per ISO week, the index cells (each provider's median per
//! model, bloc and class over the offers in force) and the long-view points (the main
//! models' provider-balanced figures). It is computed exactly as a full scan computes
//! that week: from the offers of dates `scan_start(monday)..=sunday`, which hold every
//! price in force in the week (life spans end at the next snapshot or at expiry, and
//! later snapshots cannot shorten a span inside the week) and whole ISO weeks of
//! observations (the outlier rule's median is per model and week of observation).
//!
//! Invariants: a rollup is used only when its key matches the fingerprint of its
//! inputs (the offers files of those dates, by name, length and modification time;
//! the analysis settings; the provider validity table; [`VERSION`]), so a back-fill,
//! FX healing, compaction or renormalise that touches a week makes its rollup
//! missing, never wrong; a missing rollup is computed in memory (readers never write);
//! writers store rollups for complete weeks only (`refresh`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::analysis::inforce::{ms, scan_start, week_index, InForce, KnownMedians, Snapshots};
use crate::analysis::{
    daily_points, history, strs, u32s, Config, DailyPoint, IndexCell, WeeklyPoint,
};
use crate::error::{ReportError, StoreError};
use crate::store::rollups::FileStamp;
use crate::store::Store;
use crate::tables::{Providers, PROVIDERS_TOML};
use crate::week::{epoch_days, IsoWeek};

/// Bumped whenever what a rollup holds or how it is computed changes.
pub const VERSION: u32 = 1;

/// One week's (or a run of weeks') index cells, long-view points, daily points and
/// outlier-rule medians.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub cells: Vec<IndexCell>,
    pub long: Vec<WeeklyPoint>,
    pub daily: Vec<DailyPoint>,
    /// (Monday, model, median USD per GPU-hour of the model's whole-GPU observations
    /// that week): the outlier rule's reference.
    pub medians: Vec<(NaiveDate, String, f64)>,
}

impl Rollup {
    fn extend(&mut self, other: Rollup) {
        self.cells.extend(other.cells);
        self.long.extend(other.long);
        self.daily.extend(other.daily);
        self.medians.extend(other.medians);
    }

    /// The medians as the outlier rule looks them up.
    pub fn known_medians(&self) -> KnownMedians {
        self.medians
            .iter()
            .map(|(monday, model, m)| ((model.clone(), week_index(ms(*monday))), *m))
            .collect()
    }
}

/// What `refresh` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Weeks whose rollup was computed and stored.
    pub written: usize,
    /// Weeks whose stored rollup was still current.
    pub current: usize,
}

/// The fingerprint of a week's inputs, from the stamps of every offers file.
fn key(stamps: &[FileStamp], week: IsoWeek, cfg: &Config) -> String {
    let from = scan_start(week.monday(), Providers::embedded());
    let mut h = Sha256::new();
    h.update(format!(
        "v{VERSION} {} {} {}\n",
        cfg.implausible_low.to_bits(),
        cfg.implausible_high.to_bits(),
        cfg.thin_cell
    ));
    h.update(PROVIDERS_TOML.as_bytes());
    for s in stamps
        .iter()
        .filter(|s| s.date >= from && s.date <= week.sunday())
    {
        h.update(format!(
            "{} {} {} {}\n",
            s.date, s.name, s.len, s.modified_ns
        ));
    }
    hex::encode(&h.finalize()[..8])
}

/// One week's rollup from an `InForce` holding every offer in force in it.
fn of_week(inf: &InForce, week: IsoWeek, cfg: &Config) -> Rollup {
    let (monday, sunday) = (week.monday(), week.sunday());
    let (cells, long) = history(inf, monday, sunday, cfg);
    let w = week_index(ms(monday));
    let medians = inf
        .medians
        .iter()
        .filter(|((_, wk), _)| *wk == w)
        .map(|((model, _), m)| (monday, model.clone(), *m))
        .collect();
    Rollup {
        cells,
        long,
        daily: daily_points(inf, monday, sunday, cfg),
        medians,
    }
}

/// Compute one week's rollup from its offers: those observed that week, and before
/// it only those that may still stand in it, flagged by the medians of earlier weeks
/// in `known`. `carried` is the week before's [`Computed::snapshots`] when it was
/// computed just before (else the last snapshots are scanned for).
pub fn compute(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
    known: &KnownMedians,
    carried: Option<&Snapshots>,
) -> Result<Computed, ReportError> {
    let (monday, sunday) = (week.monday(), week.sunday());
    let inf = InForce::load_recent(store, monday, sunday, cfg, known, carried)?;
    Ok(Computed {
        rollup: of_week(&inf, week, cfg),
        snapshots: inf.snapshots,
    })
}

/// A computed week: its rollup, and each feed and provider's last snapshot up to its
/// end, which the next week's computation can start from.
pub struct Computed {
    pub rollup: Rollup,
    pub snapshots: Snapshots,
}

/// The same from whole weeks of offers back to the longest validity (the reference
/// `compute` is tested against).
pub fn compute_scanning(store: &Store, week: IsoWeek, cfg: &Config) -> Result<Rollup, ReportError> {
    let inf = InForce::load(store, week.monday(), week.sunday(), cfg)?;
    Ok(of_week(&inf, week, cfg))
}

/// The stored rollup of `week` under `key`, decoded, if there is one. A rollup that
/// cannot be read or decoded counts as missing (the week is computed from the
/// offers, as rollups are derived data), with a warning naming the file: deleting
/// it lets the next writer store it again.
fn read(store: &Store, week: IsoWeek, key: &str) -> Result<Option<Rollup>, ReportError> {
    let decoded = store
        .read_rollup(&week.label(), key)
        .map_err(ReportError::Store)
        .and_then(|df| {
            df.map(|df| from_frame(&df))
                .transpose()
                .map_err(ReportError::from)
        });
    match decoded {
        Ok(r) => Ok(r),
        Err(e) => {
            let path = store.rollup_path(&week.label(), key);
            tracing::warn!(
                "rollup {} not used, the week is computed from its offers: {e}",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Weeks taken in order, oldest first: what each passes on to the next.
struct Chain<'a> {
    store: &'a Store,
    stamps: Vec<FileStamp>,
    cfg: &'a Config,
    /// Outlier medians of the weeks taken so far.
    known: KnownMedians,
    /// The last snapshots up to the end of the week before, when it was computed (or
    /// when nothing is stored before it).
    snapshots: Option<Snapshots>,
}

impl<'a> Chain<'a> {
    /// A chain starting at `first` over the offers files `stamps` (the store's):
    /// with no snapshot before it when nothing is stored before it, else with them
    /// unknown (scanned for).
    fn new(store: &'a Store, cfg: &'a Config, first: IsoWeek, stamps: Vec<FileStamp>) -> Self {
        let empty_before = stamps.first().is_none_or(|s| s.date >= first.monday());
        Self {
            store,
            stamps,
            cfg,
            known: KnownMedians::new(),
            snapshots: empty_before.then(Snapshots::new),
        }
    }

    /// The next week's stored rollup if current, else computed with the medians
    /// and snapshots known so far, with the key to store it under.
    fn next(&mut self, week: IsoWeek) -> Result<(Rollup, Option<String>), ReportError> {
        let k = key(&self.stamps, week, self.cfg);
        let (r, new_key) = match read(self.store, week, &k)? {
            Some(r) => {
                self.snapshots = None;
                (r, None)
            }
            None => {
                let carried = self.snapshots.as_ref();
                let c = compute(self.store, week, self.cfg, &self.known, carried)?;
                self.snapshots = Some(c.snapshots);
                (c.rollup, Some(k))
            }
        };
        self.known.extend(r.known_medians());
        Ok((r, new_key))
    }
}

/// The rollups of weeks `first..=last`, oldest first: read where stored and current,
/// computed in memory where not (nothing is written). `first` must be the store's
/// first week (or earlier), so that every earlier median is known.
pub fn weeks(
    store: &Store,
    first: IsoWeek,
    last: IsoWeek,
    cfg: &Config,
) -> Result<Rollup, ReportError> {
    let mut chain = Chain::new(store, cfg, first, store.offer_stamps()?);
    let mut out = Rollup::default();
    for week in span(first, last) {
        out.extend(chain.next(week)?.0);
    }
    Ok(out)
}

/// Store a current rollup for every complete week of the store (every week before
/// the week of the latest stored date) that lacks one. Writers call this under the
/// lock, after they changed offers.
pub fn refresh(store: &Store) -> Result<Refreshed, ReportError> {
    refresh_in(store).map_err(|e| super::naming_damaged(store, e))
}

fn refresh_in(store: &Store) -> Result<Refreshed, ReportError> {
    let cfg = Config::default();
    let stamps = store.offer_stamps()?;
    let (Some(first), Some(last)) = (stamps.first(), stamps.last()) else {
        return Ok(Refreshed::default());
    };
    let weeks = span(IsoWeek::of(first.date), IsoWeek::of(last.date).prev());
    let current = weeks
        .iter()
        .filter(|w| store.has_rollup(&w.label(), &key(&stamps, **w, &cfg)))
        .count();
    let mut done = Refreshed {
        written: 0,
        current,
    };
    if current == weeks.len() {
        return Ok(done);
    }
    let mut chain = Chain::new(store, &cfg, weeks[0], stamps);
    for week in weeks {
        let (r, new_key) = chain.next(week)?;
        if let Some(k) = new_key {
            let mut df = to_frame(&r).map_err(|e| pl_err(store, &week, e))?;
            store.write_rollup(&week.label(), &k, &mut df)?;
            done.written += 1;
        }
    }
    Ok(done)
}

/// The outlier medians of the weeks whose offers may still stand in `week` (back to
/// the longest validity), from stored rollups only; `None` when one is missing or
/// stale (the caller then scans whole weeks).
pub fn stored_medians(
    store: &Store,
    week: IsoWeek,
    cfg: &Config,
) -> Result<Option<KnownMedians>, ReportError> {
    let stamps = store.offer_stamps()?;
    let Some(first) = stamps.first() else {
        return Ok(Some(KnownMedians::new()));
    };
    let reach = IsoWeek::of(scan_start(week.monday(), Providers::embedded()));
    let mut known = KnownMedians::new();
    for w in span(reach.max(IsoWeek::of(first.date)), week.prev()) {
        match read(store, w, &key(&stamps, w, cfg))? {
            Some(r) => known.extend(r.known_medians()),
            None => return Ok(None),
        }
    }
    Ok(Some(known))
}

/// Weeks `first..=last` (none when `last` is before `first`).
fn span(first: IsoWeek, last: IsoWeek) -> Vec<IsoWeek> {
    let mut out = Vec::new();
    let mut w = last;
    while w >= first {
        out.push(w);
        w = w.prev();
    }
    out.reverse();
    out
}

fn pl_err(store: &Store, week: &IsoWeek, source: PolarsError) -> ReportError {
    ReportError::Store(StoreError::Polars {
        path: store.root().join("rollups").join(week.label()),
        source,
    })
}

/// The rollup as a frame any Parquet reader understands: one row per index cell
/// (`kind = index_cell`), long-view point (`long_view`), daily point (`daily`) or
/// outlier median (`outlier_median`); columns a kind does not use are null.
pub fn to_frame(r: &Rollup) -> PolarsResult<DataFrame> {
    let mut rows: Vec<Row> = r.cells.iter().map(Row::of_cell).collect();
    rows.extend(r.long.iter().map(Row::of_point));
    rows.extend(r.daily.iter().map(Row::of_day));
    rows.extend(r.medians.iter().map(Row::of_median));
    let text = |f: fn(&Row) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    let count = |f: fn(&Row) -> Option<u32>| rows.iter().map(f).collect::<Vec<_>>();
    let num = |f: fn(&Row) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    let date = |name: &str, f: fn(&Row) -> Option<NaiveDate>| {
        let days: Vec<Option<i32>> = rows.iter().map(|r| f(r).map(epoch_days)).collect();
        Series::new(name.into(), days).cast(&DataType::Date)
    };
    df!(
        "monday" => date("monday", |r| Some(r.monday))?,
        "date" => date("date", |r| r.date)?,
        "kind" => text(|r| Some(r.kind)),
        "provider" => text(|r| r.provider.as_deref()),
        "gpu_model" => text(|r| Some(&r.gpu_model)),
        "bloc" => text(|r| r.bloc.as_deref()),
        "price_class" => text(|r| r.price_class.as_deref()),
        "providers" => count(|r| r.providers),
        "offers" => count(|r| r.offers),
        "observations" => count(|r| r.observations),
        "gpus_available" => num(|r| r.gpus_available),
        "median_usd_per_gpu_hour" => num(|r| Some(r.median)),
        "p25_usd_per_gpu_hour" => num(|r| r.p25),
        "p75_usd_per_gpu_hour" => num(|r| r.p75),
    )
}

/// One row of the rollup frame.
#[derive(Default)]
struct Row {
    monday: NaiveDate,
    date: Option<NaiveDate>,
    kind: &'static str,
    provider: Option<String>,
    gpu_model: String,
    bloc: Option<String>,
    price_class: Option<String>,
    providers: Option<u32>,
    offers: Option<u32>,
    observations: Option<u32>,
    gpus_available: Option<f64>,
    median: f64,
    p25: Option<f64>,
    p75: Option<f64>,
}

impl Row {
    fn of_cell(c: &IndexCell) -> Self {
        let mut parts = c.1.splitn(3, '|');
        let mut next = || parts.next().unwrap_or_default().to_string();
        let (provider, gpu_model, price_class) = (next(), next(), next());
        Self {
            monday: c.0,
            kind: "index_cell",
            provider: Some(provider),
            gpu_model,
            bloc: Some(c.2.clone()),
            price_class: Some(price_class),
            median: c.3,
            ..Self::default()
        }
    }

    fn of_point(p: &WeeklyPoint) -> Self {
        Self {
            monday: p.monday,
            kind: "long_view",
            gpu_model: p.gpu_model.clone(),
            bloc: Some(p.bloc.clone()),
            price_class: Some(p.price_class.clone()),
            providers: Some(p.providers),
            offers: Some(p.offers),
            median: p.median,
            ..Self::default()
        }
    }

    fn of_day(d: &DailyPoint) -> Self {
        Self {
            monday: IsoWeek::of(d.date).monday(),
            date: Some(d.date),
            kind: "daily",
            gpu_model: d.gpu_model.clone(),
            bloc: Some(d.bloc.clone()),
            price_class: Some(d.price_class.clone()),
            providers: Some(d.providers),
            offers: Some(d.offers),
            observations: Some(d.observations),
            gpus_available: Some(d.gpus_available),
            median: d.median,
            p25: Some(d.p25),
            p75: Some(d.p75),
            ..Self::default()
        }
    }

    fn of_median(m: &(NaiveDate, String, f64)) -> Self {
        Self {
            monday: m.0,
            kind: "outlier_median",
            gpu_model: m.1.clone(),
            median: m.2,
            ..Self::default()
        }
    }
}

/// A rollup frame's columns, read once.
struct Columns {
    monday: Vec<NaiveDate>,
    date: Vec<NaiveDate>,
    kind: Vec<String>,
    provider: Vec<String>,
    model: Vec<String>,
    bloc: Vec<String>,
    class: Vec<String>,
    providers: Vec<u32>,
    offers: Vec<u32>,
    observations: Vec<u32>,
    gpus_available: Vec<f64>,
    median: Vec<f64>,
    p25: Vec<f64>,
    p75: Vec<f64>,
}

impl Columns {
    fn of(df: &DataFrame) -> PolarsResult<Self> {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        let dates = |n: &str| -> PolarsResult<Vec<NaiveDate>> {
            let days = df.column(n)?.cast(&DataType::Int32)?;
            Ok(days
                .i32()?
                .iter()
                .map(|d| epoch + chrono::Duration::days(d.unwrap_or(0).into()))
                .collect())
        };
        let f64s = |n: &str| -> PolarsResult<Vec<f64>> {
            Ok(df
                .column(n)?
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect())
        };
        Ok(Self {
            monday: dates("monday")?,
            date: dates("date")?,
            kind: strs(df, "kind")?,
            provider: strs(df, "provider")?,
            model: strs(df, "gpu_model")?,
            bloc: strs(df, "bloc")?,
            class: strs(df, "price_class")?,
            providers: u32s(df, "providers")?,
            offers: u32s(df, "offers")?,
            observations: u32s(df, "observations")?,
            gpus_available: f64s("gpus_available")?,
            median: f64s("median_usd_per_gpu_hour")?,
            p25: f64s("p25_usd_per_gpu_hour")?,
            p75: f64s("p75_usd_per_gpu_hour")?,
        })
    }

    fn add_to(&self, i: usize, out: &mut Rollup) {
        let (monday, model) = (self.monday[i], self.model[i].clone());
        let (bloc, class) = (self.bloc[i].clone(), self.class[i].clone());
        match self.kind[i].as_str() {
            "index_cell" => {
                let cell = format!("{}|{}|{}", self.provider[i], model, class);
                out.cells.push((monday, cell, bloc, self.median[i]));
            }
            "long_view" => out.long.push(WeeklyPoint {
                monday,
                gpu_model: model,
                bloc,
                price_class: class,
                providers: self.providers[i],
                offers: self.offers[i],
                median: self.median[i],
            }),
            "daily" => out.daily.push(DailyPoint {
                date: self.date[i],
                gpu_model: model,
                bloc,
                price_class: class,
                offers: self.offers[i],
                providers: self.providers[i],
                observations: self.observations[i],
                gpus_available: self.gpus_available[i],
                median: self.median[i],
                p25: self.p25[i],
                p75: self.p75[i],
            }),
            _ => out.medians.push((monday, model, self.median[i])),
        }
    }
}

/// Read a rollup frame back (the inverse of [`to_frame`]).
pub fn from_frame(df: &DataFrame) -> PolarsResult<Rollup> {
    let c = Columns::of(df)?;
    let mut out = Rollup::default();
    for i in 0..df.height() {
        c.add_to(i, &mut out);
    }
    Ok(out)
}

/// Rollups by week, for tests and tools: every stored week's current rollup.
pub fn stored(store: &Store) -> Result<BTreeMap<String, Rollup>, ReportError> {
    let cfg = Config::default();
    let stamps = store.offer_stamps()?;
    let (Some(first), Some(last)) = (stamps.first(), stamps.last()) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for week in span(IsoWeek::of(first.date), IsoWeek::of(last.date)) {
        if let Some(r) = read(store, week, &key(&stamps, week, &cfg))? {
            out.insert(week.label(), r);
        }
    }
    Ok(out)
}
