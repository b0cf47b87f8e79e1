//! Offers in force: the life span of every stored price, and the offers standing in a
//! period (an hour, a day, an ISO week), each counted once.
//!
//! A price observed at `t` in a snapshot of one feed and provider (all the rows of
//! that feed and provider stored at one `observed_at`) stands from `t` until the next
//! snapshot of the same feed and provider, or until it expires after the provider's
//! `valid_hours` (`tables/providers.toml`), whichever comes first. An offer absent
//! from the next snapshot has therefore ended there; a gap longer than the validity
//! stays a gap. In a period each offer (feed, offer id, price class) counts once, at
//! the last price it had in force in the period (the price of its latest observation
//! standing in the period), as a price collector records the price on the shelf.
//!
//! Prices are flagged implausible by one rule used everywhere: below `low` or above
//! `high` times the median of the whole-GPU observations of the same model in the
//! same ISO week of observation.
//!
//! Invariants: no network, no clock; the store is scanned lazily (only the dates
//! needed, reaching back the longest validity) and collected once; the rest is plain
//! arithmetic over the collected spans, so results do not depend on row order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use crate::analysis::{strs, Config};
use crate::error::ReportError;
use crate::store::Store;
use crate::tables::Providers;
use crate::week::IsoWeek;

pub use crate::week::{DAY_MS, FIRST_MONDAY_MS, HOUR_MS, WEEK_MS};

/// What identifies an offer and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferKey {
    pub feed: String,
    pub offer_id: String,
    pub price_class: String,
    pub provider: String,
    pub gpu_model: String,
    pub bloc: String,
    /// From a peer's catalogue (`peer` column): yields to an own feed of the same cell.
    pub peer: bool,
}

/// One stored observation and the time it stands. 48 bytes, not 64: a report at
/// 20,000 offers an hour holds 6.7 M of them (its week and the week before).
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Index into [`InForce::offers`] ([`Span::offer`]).
    pub offer_ix: u32,
    /// Observation time, ms since the epoch.
    pub start: i64,
    /// End of validity (exclusive), ms since the epoch.
    pub end: i64,
    pub v: f64,
    pub v_ex_vat: f64,
    /// GPUs reported available; NaN when not reported ([`Span::gpus_available`]).
    pub available: f64,
    /// A whole-GPU offer at a plausible price.
    pub usable: bool,
    pub fractional: bool,
    pub implausible: bool,
}

impl Span {
    /// Index into [`InForce::offers`].
    pub fn offer(&self) -> usize {
        self.offer_ix as usize
    }

    /// GPUs reported available, if reported (a stored NaN reads as not reported).
    pub fn gpus_available(&self) -> Option<f64> {
        Some(self.available).filter(|a| !a.is_nan())
    }
}

const _: () = assert!(std::mem::size_of::<Span>() == 48);

/// An offer in force in a period, counted once.
#[derive(Debug, Clone)]
pub struct Standing<'a> {
    pub key: &'a OfferKey,
    /// USD per GPU-hour: its last price in force in the period.
    pub v: f64,
    pub v_ex_vat: f64,
    /// Observations of this offer made within the period.
    pub observations: u32,
    /// When its last price in force was observed, ms since the epoch.
    pub observed: i64,
}

/// The spans of every observation from a scan.
#[derive(Debug, Default)]
pub struct InForce {
    pub offers: Vec<OfferKey>,
    pub spans: Vec<Span>,
    /// The latest observation time scanned, ms since the epoch.
    pub latest: Option<i64>,
    /// The outlier-rule medians computed from the scan: (model, week index) to USD
    /// per GPU-hour, for the whole weeks it holds.
    pub medians: BTreeMap<(String, i64), f64>,
    /// The last snapshot of each feed and provider up to the end of the scan (those
    /// older than the scan's start may be missing: they no longer stand).
    pub snapshots: Snapshots,
}

/// A hash map keyed by this process's own strings and numbers: foldhash, fixed
/// seed, several times cheaper than std's SipHash per lookup. Never iterated where
/// the order could reach an output.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// (feed, provider) to the time of its last snapshot, ms since the epoch.
pub type Snapshots = BTreeMap<(String, String), i64>;

/// Offers by key across frames: one allocation per offer, not per row. Keys are
/// found by a hash of the borrowed strings and checked against the stored key.
#[derive(Default)]
struct Interner {
    /// Keys are already hashed: the map only spreads them.
    by_hash: HashMap<u64, Vec<usize>, foldhash::fast::FixedState>,
}

impl Interner {
    fn id(&mut self, offers: &mut Vec<OfferKey>, k: [&str; 6], peer: bool) -> usize {
        use std::hash::BuildHasher;
        let h = foldhash::fast::FixedState::default().hash_one((k, peer));
        let same = |o: &OfferKey| {
            o.peer == peer
                && [
                    &o.feed,
                    &o.offer_id,
                    &o.price_class,
                    &o.provider,
                    &o.gpu_model,
                    &o.bloc,
                ]
                .iter()
                .zip(k)
                .all(|(a, b)| a.as_str() == b)
        };
        let slot = self.by_hash.entry(h).or_default();
        if let Some(&i) = slot.iter().find(|&&i| same(&offers[i])) {
            return i;
        }
        offers.push(OfferKey {
            feed: k[0].into(),
            offer_id: k[1].into(),
            price_class: k[2].into(),
            provider: k[3].into(),
            gpu_model: k[4].into(),
            bloc: k[5].into(),
            peer,
        });
        slot.push(offers.len() - 1);
        offers.len() - 1
    }
}

/// The rows a scan from `from` on needs from before `from`.
struct Recent {
    from: NaiveDate,
    /// Selects the rows kept: all from `from` on, and earlier ones that may stand.
    keep: Expr,
    /// The dates before `from` that hold a kept row (no other earlier file is read).
    days: BTreeSet<NaiveDate>,
}

impl Recent {
    /// Whether the offers of date `d` may hold a kept row.
    fn reads(&self, d: NaiveDate) -> bool {
        d >= self.from || self.days.contains(&d)
    }
}

/// Which rows before `at` (ms; from date `start`) may still stand at `at`: those of
/// each feed and provider's last snapshot before `at` (an earlier snapshot was
/// superseded by it before `at`), and only while its provider's validity lasts. Rows
/// from `at` on are all kept. The last snapshots are scanned for, unless `carried`
/// holds them (the [`InForce::snapshots`] of the week before, computed in order).
fn may_stand(
    store: &Store,
    start: NaiveDate,
    at: i64,
    providers: &Providers,
    carried: Option<&Snapshots>,
) -> Result<Recent, ReportError> {
    let t = || col("observed_at").cast(DataType::Int64);
    let mut keep = t().gt_eq(lit(at));
    let mut days = BTreeSet::new();
    let scanned;
    let lasts = match carried {
        Some(lasts) => lasts,
        None => {
            scanned = last_snapshots(store, start, at)?;
            &scanned
        }
    };
    for ((f, p), &l) in lasts {
        let expired = at - (providers.valid_hours(p) * HOUR_MS as f64) as i64;
        if l <= expired || l >= at {
            continue;
        }
        let snapshot = col("feed")
            .eq(lit(f.clone()))
            .and(col("provider").eq(lit(p.clone())));
        keep = keep.or(snapshot.and(t().gt_eq(lit(l))));
        days.extend(date_of_ms(l));
    }
    let from = date_of(at);
    Ok(Recent { from, keep, days })
}

/// The time of each feed and provider's last snapshot stored in dates from `start`
/// before `before` (ms).
fn last_snapshots(store: &Store, start: NaiveDate, before: i64) -> Result<Snapshots, ReportError> {
    let t = || col("observed_at").cast(DataType::Int64);
    let Some(lf) = store.scan_offers(Some(start), Some(date_of(before)))? else {
        return Ok(Snapshots::new());
    };
    let lasts = lf
        .filter(t().lt(lit(before)))
        .group_by([col("feed"), col("provider")])
        .agg([t().max().alias("last")])
        .collect_with_engine(Engine::Streaming)
        .map(|r| r.unwrap_single())?;
    let (feeds, names) = (strs(&lasts, "feed")?, strs(&lasts, "provider")?);
    let last = lasts.column("last")?.i64()?;
    Ok(feeds
        .into_iter()
        .zip(names)
        .zip(last.iter())
        .filter_map(|(k, l)| Some((k, l?)))
        .collect())
}

/// The UTC date of a time in ms since the epoch (the date its row is stored under).
fn date_of_ms(t: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp_millis(t).map(|d| d.date_naive())
}

/// How far back to scan so that every price still in force at `from` is found: the
/// Monday of the week holding `from` minus the longest validity.
pub fn scan_start(from: NaiveDate, providers: &Providers) -> NaiveDate {
    let back = from - Duration::hours(providers.max_valid_hours().ceil() as i64);
    IsoWeek::of(back).monday()
}

fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .collect())
}

/// Outlier-rule medians known from rollups: (model, ISO week index) to the median of
/// the model's whole-GPU observations in that week, USD per GPU-hour.
pub type KnownMedians = HashMap<(String, i64), f64>;

/// The outlier-rule medians of the ISO week holding `from..=to` (dates of one week),
/// as [`InForce`] computes them from a whole week's spans (each model's whole-GPU
/// observations at a positive price, `quantile` 0.5), read a date at a time and
/// only the model, the price and the fractional flag: memory is the week's prices,
/// not its rows.
pub fn week_medians(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<KnownMedians, ReportError> {
    let mut by: HashMap<String, Vec<f64>> = HashMap::new();
    for d in store
        .offer_dates()?
        .into_iter()
        .filter(|d| (from..=to).contains(d))
    {
        let Some(lf) = store.scan_offers(Some(d), Some(d))? else {
            continue;
        };
        let df = lf
            .select([
                col("gpu_model"),
                col("usd_per_gpu_hour").cast(DataType::Float64),
                col("fractional_gpu"),
            ])
            .collect_with_engine(Engine::Streaming)
            .map(|r| r.unwrap_single())?;
        let models = df.column("gpu_model")?.str()?;
        let prices = f64s(&df, "usd_per_gpu_hour")?;
        let frac = df.column("fractional_gpu")?.bool()?;
        for ((m, v), f) in models.iter().zip(prices).zip(frac.iter()) {
            let v = v.unwrap_or(f64::NAN);
            if f.unwrap_or(false) || !(v.is_finite() && v > 0.0) {
                continue;
            }
            let m = m.unwrap_or("");
            match by.get_mut(m) {
                Some(vs) => vs.push(v),
                None => {
                    by.insert(m.to_string(), vec![v]);
                }
            }
        }
    }
    let week = week_index(ms(from));
    Ok(by
        .into_iter()
        .map(|(m, mut v)| ((m, week), quantile(&mut v, 0.5)))
        .collect())
}

/// The latest observation time stored on `date` (ms since the epoch), if any.
pub fn latest_observation(store: &Store, date: NaiveDate) -> Result<Option<i64>, ReportError> {
    let Some(lf) = store.scan_offers(Some(date), Some(date))? else {
        return Ok(None);
    };
    let df = lf
        .select([col("observed_at").cast(DataType::Int64).max()])
        .collect()?;
    Ok(df.column("observed_at")?.i64()?.get(0))
}

/// The ISO week (counted from 1970-01-05) holding a time in ms since the epoch.
pub fn week_index(t: i64) -> i64 {
    (t - FIRST_MONDAY_MS).div_euclid(WEEK_MS)
}

/// The columns the spans are built from.
fn span_columns(lf: LazyFrame) -> PolarsResult<DataFrame> {
    lf.select([
        col("observed_at").cast(DataType::Int64).alias("t"),
        col("feed"),
        col("offer_id"),
        col("price_class"),
        col("provider"),
        col("gpu_model"),
        col("bloc"),
        col("usd_per_gpu_hour").cast(DataType::Float64),
        col("usd_per_gpu_hour_ex_vat").cast(DataType::Float64),
        col("gpus_available").cast(DataType::Float64),
        col("fractional_gpu"),
        crate::analysis::peers::is_peer(),
    ])
    .collect_with_engine(Engine::Streaming)
    .map(|r| r.unwrap_single())
}

/// Which stored rows [`InForce::build`] reads: those of dates `start..=to`, or with
/// `recent` only those it keeps (and only from the dates that may hold them).
struct Scan {
    start: NaiveDate,
    to: NaiveDate,
    recent: Option<Recent>,
}

impl InForce {
    /// Load the observations of dates `scan_start(from)..=to` (whole ISO weeks).
    pub fn load(
        store: &Store,
        from: NaiveDate,
        to: NaiveDate,
        cfg: &Config,
    ) -> Result<Self, ReportError> {
        let scan = Scan {
            start: scan_start(from, Providers::embedded()),
            to,
            recent: None,
        };
        Self::build(store, scan, cfg, i64::MIN, &KnownMedians::new())
    }

    /// The same offers in force from the Monday `from` on as [`InForce::load`], from
    /// fewer rows: before `from`, only rows that may still stand at `from` (observed
    /// less than their provider's validity before it), flagged by the outlier medians
    /// of their weeks in `known` (from the rollups), which must hold every week before
    /// `from` that had a median.
    pub fn load_recent(
        store: &Store,
        from: NaiveDate,
        to: NaiveDate,
        cfg: &Config,
        known: &KnownMedians,
        carried: Option<&Snapshots>,
    ) -> Result<Self, ReportError> {
        let start = scan_start(from, Providers::embedded());
        let recent = may_stand(store, start, ms(from), Providers::embedded(), carried)?;
        let scan = Scan {
            start,
            to,
            recent: Some(recent),
        };
        Self::build(store, scan, cfg, week_index(ms(from)), known)
    }

    /// The offers that may stand at `at` (ms) only: each feed and provider's last
    /// snapshot before it while still valid, and the rows observed at `at`; every
    /// outlier median they need comes from `known` (their weeks', the current one's
    /// included: [`week_medians`]). In force at `at` these are the offers
    /// [`InForce::load`] finds, from a few snapshots' rows instead of whole weeks.
    pub fn load_at(
        store: &Store,
        at: i64,
        cfg: &Config,
        known: &KnownMedians,
    ) -> Result<Self, ReportError> {
        let start = scan_start(date_of(at), Providers::embedded());
        let recent = may_stand(store, start, at, Providers::embedded(), None)?;
        let scan = Scan {
            start,
            to: date_of(at),
            recent: Some(recent),
        };
        Self::build(store, scan, cfg, i64::MAX, known)
    }

    /// Spans from the rows `scan` selects, read one
    /// date at a time so that only one day's columns are in memory beside the spans.
    fn build(
        store: &Store,
        scan: Scan,
        cfg: &Config,
        full_from: i64,
        known: &KnownMedians,
    ) -> Result<Self, ReportError> {
        let mut out = Self::default();
        let mut ids = Interner::default();
        let dates = store.offer_dates()?;
        let recent = scan.recent.as_ref();
        let wanted =
            |d: &NaiveDate| *d >= scan.start && *d <= scan.to && recent.is_none_or(|r| r.reads(*d));
        for d in dates.into_iter().filter(wanted) {
            let Some(lf) = store.scan_offers(Some(d), Some(d))? else {
                continue;
            };
            let lf = match recent {
                Some(r) => lf.filter(r.keep.clone()),
                None => lf,
            };
            out.add_frame(&span_columns(lf)?, &mut ids)?;
        }
        out.latest = out.spans.iter().map(|s| s.start).max();
        out.set_ends(Providers::embedded());
        out.flag_implausible(cfg, full_from, known);
        Ok(out)
    }

    /// Add one frame's rows as spans (ends and flags are set once all are in).
    fn add_frame(&mut self, df: &DataFrame, ids: &mut Interner) -> PolarsResult<()> {
        let names = [
            "feed",
            "offer_id",
            "price_class",
            "provider",
            "gpu_model",
            "bloc",
        ];
        let cols: Vec<&StringChunked> = names
            .iter()
            .map(|n| df.column(n).and_then(|c| c.str()))
            .collect::<PolarsResult<_>>()?;
        let mut text: Vec<_> = cols.iter().map(|c| c.iter()).collect();
        let mut t = df.column("t")?.i64()?.iter();
        let (v, vx, avail) = (
            f64s(df, "usd_per_gpu_hour")?,
            f64s(df, "usd_per_gpu_hour_ex_vat")?,
            f64s(df, "gpus_available")?,
        );
        let mut frac = df.column("fractional_gpu")?.bool()?.iter();
        let mut peer = df.column("peer")?.bool()?.iter();
        for i in 0..df.height() {
            let k: [&str; 6] = std::array::from_fn(|j| text[j].next().flatten().unwrap_or(""));
            let offer = ids.id(&mut self.offers, k, peer.next().flatten().unwrap_or(false));
            let price = v[i].unwrap_or(f64::NAN);
            let start = t.next().flatten().unwrap_or(0);
            self.spans.push(Span {
                offer_ix: u32::try_from(offer).expect("fewer than 2^32 offers in a scan"),
                start,
                end: start,
                v: price,
                v_ex_vat: vx[i].unwrap_or(price),
                available: avail[i].unwrap_or(f64::NAN),
                usable: false,
                fractional: frac.next().flatten().unwrap_or(false),
                implausible: !(price.is_finite() && price > 0.0),
            });
        }
        Ok(())
    }

    /// Each offer's feed and provider as a number (its snapshot series), and each
    /// number's feed and provider: spans are grouped without hashing strings.
    fn snapshot_groups(&self) -> (Vec<usize>, Vec<(&str, &str)>) {
        let mut ids: FastMap<(&str, &str), usize> = FastMap::default();
        let mut keys = Vec::new();
        let group = (self.offers.iter())
            .map(|k| {
                let key = (k.feed.as_str(), k.provider.as_str());
                *ids.entry(key).or_insert_with(|| {
                    keys.push(key);
                    keys.len() - 1
                })
            })
            .collect();
        (group, keys)
    }

    /// Each span ends at its feed and provider's next snapshot or at expiry; the
    /// last snapshot of each feed and provider is kept in `snapshots`.
    fn set_ends(&mut self, providers: &Providers) {
        let (group, keys) = self.snapshot_groups();
        let mut snaps = vec![Vec::new(); keys.len()];
        for s in &self.spans {
            snaps[group[s.offer()]].push(s.start);
        }
        for times in &mut snaps {
            times.sort_unstable();
            times.dedup();
        }
        let valid: Vec<i64> = (keys.iter())
            .map(|(_, p)| (providers.valid_hours(p) * HOUR_MS as f64) as i64)
            .collect();
        let ends: Vec<i64> = (self.spans.iter())
            .map(|s| {
                let g = group[s.offer()];
                let times = &snaps[g];
                let next = times.partition_point(|&x| x <= s.start);
                let expiry = s.start + valid[g];
                times.get(next).map_or(expiry, |&n| n.min(expiry))
            })
            .collect();
        let lasts = (keys.iter().zip(&snaps))
            .filter_map(|((f, p), times)| Some(((f.to_string(), p.to_string()), *times.last()?)));
        let snapshots = lasts.collect();
        for (s, e) in self.spans.iter_mut().zip(ends) {
            s.end = e;
        }
        self.snapshots = snapshots;
    }

    /// The implausible-price rule: per model and ISO week of observation. Medians of
    /// weeks from `full_from` on come from the spans (whole weeks were loaded), those
    /// of earlier weeks from `known`; the computed ones are kept in `medians`.
    fn flag_implausible(&mut self, cfg: &Config, full_from: i64, known: &KnownMedians) {
        let Self {
            offers,
            spans,
            medians: kept,
            ..
        } = self;
        let week = |s: &Span| week_index(s.start);
        let mut by: FastMap<(&str, i64), Vec<f64>> = FastMap::default();
        for s in spans.iter().filter(|s| !s.fractional && !s.implausible) {
            if week(s) >= full_from {
                by.entry((&offers[s.offer()].gpu_model, week(s)))
                    .or_default()
                    .push(s.v);
            }
        }
        let mut medians: FastMap<(&str, i64), f64> = by
            .into_iter()
            .map(|(k, mut v)| (k, quantile(&mut v, 0.5)))
            .collect();
        *kept = medians
            .iter()
            .map(|((m, w), v)| ((m.to_string(), *w), *v))
            .collect();
        medians.extend(known.iter().map(|((m, w), v)| ((m.as_str(), *w), *v)));
        for s in spans.iter_mut() {
            if let Some(m) = medians.get(&(offers[s.offer()].gpu_model.as_str(), week(s))) {
                s.implausible |= s.v < m * cfg.implausible_low || s.v > m * cfg.implausible_high;
            }
            s.usable = !s.fractional && !s.implausible;
        }
    }

    /// The offers in force in `[from, to)` (ms), each once, sorted by offer key.
    pub fn standing(&self, from: i64, to: i64) -> Vec<Standing<'_>> {
        let rank = self.ranks();
        let mut acc = Acc::new();
        for s in self.spans.iter().filter(|s| s.usable) {
            if s.end.min(to) > s.start.max(from) {
                add(&mut acc, rank[s.offer()], s, from, to);
            }
        }
        self.finish(acc)
    }

    /// The offers in force per ISO week, keyed by Monday, for weeks `from..=to`.
    pub fn weekly(&self, from: NaiveDate, to: NaiveDate) -> BTreeMap<NaiveDate, Vec<Standing<'_>>> {
        self.periods(WEEK_MS, FIRST_MONDAY_MS, from, to)
    }

    /// The offers in force per day for dates `from..=to`.
    pub fn daily(&self, from: NaiveDate, to: NaiveDate) -> BTreeMap<NaiveDate, Vec<Standing<'_>>> {
        self.periods(DAY_MS, 0, from, to)
    }

    /// One pass over the spans, each added to the periods it overlaps.
    fn periods(
        &self,
        len: i64,
        origin: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BTreeMap<NaiveDate, Vec<Standing<'_>>> {
        let first = (ms(from) - origin).div_euclid(len);
        let last = (ms(to) - origin).div_euclid(len);
        let rank = self.ranks();
        let mut acc: BTreeMap<i64, Acc> = BTreeMap::new();
        for s in self.spans.iter().filter(|s| s.usable && s.end > s.start) {
            let a = (s.start - origin).div_euclid(len).max(first);
            let b = (s.end - 1 - origin).div_euclid(len).min(last);
            for p in a..=b {
                let (ps, pe) = (origin + p * len, origin + (p + 1) * len);
                add(acc.entry(p).or_default(), rank[s.offer()], s, ps, pe);
            }
        }
        acc.into_iter()
            .map(|(p, offers)| (date_of(origin + p * len), self.finish(offers)))
            .collect()
    }

    /// Each offer's place in key order (periods list their offers in that order),
    /// so that periods compare integers, not keys.
    fn ranks(&self) -> Vec<(u32, usize)> {
        let mut order: Vec<usize> = (0..self.offers.len()).collect();
        order.sort_by(|&a, &b| self.offers[a].cmp(&self.offers[b]));
        let mut rank = vec![(0, 0); self.offers.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = (r as u32, i);
        }
        rank
    }

    /// The offers of a period, each once; a peer's offer is left out where an own
    /// feed has an offer of the same provider, model and class in force in the
    /// period (one provider, counted once; see METHODOLOGY.md).
    fn finish(&self, acc: Acc) -> Vec<Standing<'_>> {
        let acc = acc.into_iter().map(|((_, i), e)| (&self.offers[i], e));
        let acc: Vec<_> = acc.collect();
        let own: std::collections::HashSet<(&str, &str, &str)> = acc
            .iter()
            .filter(|(k, _)| !k.peer)
            .map(|(k, _)| cell_of(k))
            .collect();
        acc.into_iter()
            .filter(|(key, _)| !(key.peer && own.contains(&cell_of(key))))
            .map(|(key, (observed, v, v_ex_vat, observations))| Standing {
                key,
                v,
                v_ex_vat,
                observations,
                observed,
            })
            .collect()
    }
}

/// Per offer, by (rank in key order, index): (start of its latest span in the
/// period, price, ex-VAT price, observations made in the period).
type Acc = BTreeMap<(u32, usize), (i64, f64, f64, u32)>;

fn add(acc: &mut Acc, offer: (u32, usize), s: &Span, ps: i64, pe: i64) {
    let e = acc
        .entry(offer)
        .or_insert((i64::MIN, f64::NAN, f64::NAN, 0));
    if s.start >= e.0 {
        (e.0, e.1, e.2) = (s.start, s.v, s.v_ex_vat);
    }
    e.3 += u32::from(s.start >= ps && s.start < pe);
}

fn cell_of(k: &OfferKey) -> (&str, &str, &str) {
    (&k.provider, &k.gpu_model, &k.price_class)
}

/// Midnight UTC of a date, ms since the epoch.
pub fn ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis()
}

fn date_of(ms: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(ms.div_euclid(DAY_MS))
}

/// Linear-interpolation quantile (numpy's default) of the values; sorts them.
pub fn quantile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (h - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers of one feed and provider: (offer id, observed at hour, price). Returns
    /// the offer ids and prices in force in hour `[at, at + 1)`.
    fn in_force(provider: &str, obs: &[(&str, i64, f64)], at: i64) -> Vec<(String, f64)> {
        let mut inf = InForce::default();
        for (id, hour, v) in obs {
            let key = OfferKey {
                feed: "f".into(),
                offer_id: id.to_string(),
                price_class: "on_demand".into(),
                provider: provider.into(),
                gpu_model: "M".into(),
                bloc: "US".into(),
                peer: false,
            };
            let offer = inf
                .offers
                .iter()
                .position(|k| *k == key)
                .unwrap_or_else(|| {
                    inf.offers.push(key);
                    inf.offers.len() - 1
                });
            inf.spans.push(Span {
                offer_ix: offer as u32,
                start: hour * HOUR_MS,
                end: hour * HOUR_MS,
                v: *v,
                v_ex_vat: *v,
                available: f64::NAN,
                usable: false,
                fractional: false,
                implausible: false,
            });
        }
        inf.set_ends(Providers::embedded());
        inf.flag_implausible(&Config::default(), i64::MIN, &KnownMedians::new());
        inf.standing(at * HOUR_MS, (at + 1) * HOUR_MS)
            .into_iter()
            .map(|s| (s.key.offer_id.clone(), s.v))
            .collect()
    }

    #[test]
    fn life_spans() {
        let check =
            |provider: &str, obs: &[(&str, i64, f64)], at: i64, expected: &[(&str, f64)]| {
                let want: Vec<(String, f64)> =
                    expected.iter().map(|(i, v)| (i.to_string(), *v)).collect();
                assert_eq!(
                    in_force(provider, obs, at),
                    want,
                    "{provider} {obs:?} at {at}"
                );
            };
        let list = [("a", 0, 2.0), ("b", 0, 3.0), ("a", 48, 2.5)];
        // Before the next snapshot both stand; after it, b (missing) has ended and a
        // has its new price.
        check("aws", &list, 47, &[("a", 2.0), ("b", 3.0)]);
        check("aws", &list, 48, &[("a", 2.5)]);
        // The last snapshot stands for the validity (1080 h for a list price), no longer.
        check("aws", &list, 48 + 1079, &[("a", 2.5)]);
        check("aws", &list, 48 + 1080, &[]);
        // A marketplace listing stands 6 hours: a gap beyond that stays a gap.
        let market = [("h", 0, 1.0), ("h", 10, 1.2)];
        check("vastai", &market, 5, &[("h", 1.0)]);
        check("vastai", &market, 6, &[]);
        check("vastai", &market, 10, &[("h", 1.2)]);
        // An hour covering two observations of one offer counts it once, last price.
        check("vastai", &[("h", 0, 1.0), ("h", 0, 1.0)], 0, &[("h", 1.0)]);
        // The outlier rule: 100x the model's weekly median is left out.
        check(
            "aws",
            &[("a", 0, 1.0), ("b", 0, 1.1), ("c", 0, 150.0)],
            1,
            &[("a", 1.0), ("b", 1.1)],
        );
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        let check = |input: &[f64], p: f64, expected: f64| {
            let got = quantile(&mut input.to_vec(), p);
            assert!(
                (got - expected).abs() < 1e-12 || (got.is_nan() && expected.is_nan()),
                "{input:?} {p}: {got}"
            );
        };
        check(&[], 0.5, f64::NAN);
        check(&[3.0], 0.25, 3.0);
        check(&[4.0, 1.0, 3.0, 2.0], 0.5, 2.5);
        check(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25, 2.0);
        check(&[1.0, 2.0], 0.1, 1.1);
    }
}
