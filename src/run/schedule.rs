//! The daemon: `gpurent daemon` ingests every feed at the top of each hour and writes
//! the previous ISO week's report every Monday at 00:30 UTC.
//!
//! Schedule:
//! - at start: one ingest at once (observation time = now), then a catch-up of every
//!   report week that has offers in the store but no `<reports>/<week>/summary.json`,
//!   up to the last complete ISO week;
//! - at each top of hour H (hours since the Unix epoch): an ingest of the feeds with
//!   `H % interval_hours == 0` (default interval 1); the others are logged as not due;
//! - every Monday 00:30 UTC: the same catch-up, which then writes the week just ended;
//! - the first ingest run of each UTC date (and the first after a start) then compacts
//!   every earlier date, as `gpurent compact` does, under the same lock.
//!
//! The clock is injected ([`Clock`]): [`RealClock`] sleeps on tokio timers against
//! `Utc::now()`; [`SimClock`] jumps to each wake-up time at once, so tests run days of
//! schedule in seconds. Shutdown is an explicit `watch::Receiver<bool>` (true = stop;
//! a closed channel also stops): it is only looked at between runs, so a run that
//! has started finishes its writes (and its run record) before the daemon returns.
//! Ingest, alerts and reports do their parsing, polars and file writes in
//! `spawn_blocking` tasks; only small file operations (the lock, feed files, run
//! records) happen on the runtime's threads.
//!
//! Invariants:
//! - the store's writer lock ([`Store::lock`]) is held for each run only, never between
//!   runs, so a manual `gpurent ingest` between runs works and two writers never write
//!   the same store at once. A run that finds the store locked retries every
//!   [`LOCK_RETRY_S`] seconds, [`LOCK_RETRIES`] times, then is skipped and recorded;
//! - every run writes one JSON record under `<store>/runs/` (kind `ingest` or `report`)
//!   and logs one line per feed (`Outcome::line()`) or per report week;
//! - no run is ever fatal to the daemon: a broken feed, an unreadable feeds directory
//!   or a failed report is logged, recorded and retried at the next slot;
//! - missed hours are not back-filled (a price cannot be observed in the past); missed
//!   report weeks are.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeZone, Utc};
use tokio::sync::watch;

use crate::analysis;
use crate::error::{FeedError, StoreError};
use crate::ingest::feed;
use crate::ingest::{self, Outcome, Status};
use crate::report;
use crate::store::records::{
    IngestFailedRecord, IngestRecord, ReportRecord, RunRecord, WeekRecord,
};
use crate::store::{Store, StoreLock};
use crate::tables::Tables;
use crate::week::IsoWeek;

/// Seconds between attempts to take a store lock held by another writer.
pub const LOCK_RETRY_S: i64 = 30;
/// Attempts after the first before a run is skipped because the store is locked.
pub const LOCK_RETRIES: u32 = 10;

/// Where the daemon gets the time from and how it waits.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Return once `now() >= t` (at once when `t` is past).
    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// Wall-clock time and tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep_until(&self, t: DateTime<Utc>) {
        // Sleep in slices of at most a minute against the wall clock: the monotonic
        // timer does not count a suspended machine, the wall clock does.
        loop {
            let left = t - Utc::now();
            if left <= Duration::zero() {
                return;
            }
            let slice = left.min(Duration::seconds(60)).to_std().unwrap_or_default();
            tokio::time::sleep(slice).await;
        }
    }
}

/// A simulated clock for tests: `sleep_until` moves the time forward at once.
/// With [`SimClock::stop_at`], asking to sleep past the end sets the time to the end
/// and sends the shutdown signal instead.
#[derive(Debug)]
pub struct SimClock {
    now: Mutex<DateTime<Utc>>,
    stop: Option<(DateTime<Utc>, watch::Sender<bool>)>,
}

impl SimClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
            stop: None,
        }
    }
    /// Send `true` on `shutdown` when the daemon would sleep past `end`.
    pub fn stop_at(mut self, end: DateTime<Utc>, shutdown: watch::Sender<bool>) -> Self {
        self.stop = Some((end, shutdown));
        self
    }
    /// Move the time forward (never back).
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().expect("clock mutex");
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock mutex")
    }
    fn sleep_until(&self, t: DateTime<Utc>) -> impl Future<Output = ()> + Send {
        let past_end = match &self.stop {
            Some((end, tx)) if t > *end => {
                self.advance_to(*end);
                tx.send_replace(true);
                true
            }
            _ => {
                self.advance_to(t);
                false
            }
        };
        async move {
            if past_end {
                std::future::pending::<()>().await;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Hours since the Unix epoch.
pub fn hour_index(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

/// The start of `at`'s hour.
pub fn hour_floor(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1))
        .expect("hour truncation")
}

/// True when a feed with this interval runs at `at`'s hour.
pub fn is_due(interval_hours: u32, at: DateTime<Utc>) -> bool {
    hour_index(at).rem_euclid(interval_hours.max(1) as i64) == 0
}

/// The first Monday 00:30 UTC strictly after `after`.
pub fn next_report_time(after: DateTime<Utc>) -> DateTime<Utc> {
    let monday = IsoWeek::of(after.date_naive()).monday();
    let t = Utc.from_utc_datetime(&monday.and_hms_opt(0, 30, 0).expect("valid time"));
    if t > after {
        t
    } else {
        t + Duration::days(7)
    }
}

/// The last ISO week that has ended by `now`.
pub fn last_complete_week(now: DateTime<Utc>) -> IsoWeek {
    IsoWeek::of(now.date_naive()).prev()
}

/// Weeks with offers in the store, up to the last complete week at `now`, that have no
/// `<reports>/<week>/summary.json` yet; oldest first. A week whose files hold no row
/// (runs that stored nothing) has nothing to report.
pub fn pending_weeks(
    store: &Store,
    reports: &std::path::Path,
    now: DateTime<Utc>,
) -> Result<Vec<IsoWeek>, StoreError> {
    let last = last_complete_week(now);
    // One listing of the partitions for every week (not one per week).
    let weeks = store.groups_holding_offers(|d| {
        let w = IsoWeek::of(d);
        let reported = || reports.join(w.label()).join("summary.json").is_file();
        (w <= last && !reported()).then_some(w)
    })?;
    Ok(weeks.into_iter().collect())
}

/// Receives the daemon's log lines (stdout in the binary, a buffer in tests).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// What the daemon works on.
#[derive(Clone)]
pub struct Daemon {
    pub feeds: PathBuf,
    pub store: Store,
    pub reports: PathBuf,
    pub client: reqwest::Client,
    pub tables: &'static Tables,
    pub log: Log,
    /// Alert rules evaluated after each ingest and before each report (none: `None`).
    pub alerts: Option<crate::report::alerts::Config>,
}

/// Counts of what a daemon did before it stopped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaemonStats {
    pub ingest_runs: u32,
    pub report_runs: u32,
    pub reports_written: u32,
    /// Runs skipped because another writer held the store lock.
    pub locked_runs: u32,
    /// Ingest runs in which some feed failed.
    pub failed_ingests: u32,
    /// The UTC date of the last compaction: each date's first ingest run compacts
    /// every earlier date ([`Daemon::compact`]).
    pub compacted_on: Option<NaiveDate>,
}

enum Locked {
    Held(StoreLock),
    Refused(String),
    Stopped,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Wait until `t`, unless shutdown comes first. True when the time came.
async fn sleep_or_stop<C: Clock>(
    clock: &C,
    t: DateTime<Utc>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if *shutdown.borrow_and_update() {
            return false;
        }
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
            _ = clock.sleep_until(t) => return !*shutdown.borrow(),
        }
    }
}

impl Daemon {
    fn log(&self, clock_time: DateTime<Utc>, line: &str) {
        (self.log)(&format!("{} {line}", stamp(clock_time)));
    }

    fn record<C: Clock, R: RunRecord>(&self, clock: &C, rec: &R) {
        if let Err(e) = self.store.write_run_record(clock.now(), rec) {
            self.log(
                clock.now(),
                &format!("{}: cannot write the run record: {e}", R::KIND),
            );
        }
    }

    async fn lock<C: Clock>(
        &self,
        clock: &C,
        kind: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Locked {
        let mut attempt = 0;
        loop {
            match self.store.lock() {
                Ok(l) => return Locked::Held(l),
                Err(StoreError::Locked { holder, .. }) if attempt < LOCK_RETRIES => {
                    if attempt == 0 {
                        self.log(
                            clock.now(),
                            &format!(
                                "{kind}: store locked by another writer (pid {}), retrying every {LOCK_RETRY_S} s",
                                holder.trim()
                            ),
                        );
                    }
                    attempt += 1;
                    if !sleep_or_stop(
                        clock,
                        clock.now() + Duration::seconds(LOCK_RETRY_S),
                        shutdown,
                    )
                    .await
                    {
                        return Locked::Stopped;
                    }
                }
                Err(e) => return Locked::Refused(e.to_string()),
            }
        }
    }

    /// One ingest run at observation time `at`: the feeds due at `at`'s hour.
    pub async fn ingest_once<C: Clock>(
        &self,
        clock: &C,
        at: DateTime<Utc>,
        shutdown: &mut watch::Receiver<bool>,
        stats: &mut DaemonStats,
    ) {
        let _lock = match self.lock(clock, "ingest", shutdown).await {
            Locked::Held(l) => l,
            Locked::Stopped => return,
            Locked::Refused(e) => {
                stats.locked_runs += 1;
                self.log(clock.now(), &format!("ingest: skipped: {e}"));
                // The record cannot go into a store another writer holds; log only.
                return;
            }
        };
        stats.ingest_runs += 1;
        // A run that waited for the lock into the next hour observes at that time.
        let at = if hour_floor(clock.now()) == hour_floor(at) {
            at
        } else {
            clock.now()
        };
        let (feeds, broken) = match feed::load_dir(&self.feeds) {
            Ok(x) => x,
            Err(e) => {
                stats.failed_ingests += 1;
                self.log(clock.now(), &format!("ingest: FAILED: {e}"));
                let rec = IngestFailedRecord {
                    observed_at: at.to_rfc3339(),
                    error: e.to_string(),
                    failed: 1,
                };
                self.record(clock, &rec);
                return;
            }
        };
        let (due, not_due): (Vec<_>, Vec<_>) = feeds
            .into_iter()
            .partition(|f| is_due(f.config.interval_hours, at));
        let mut run = ingest::run(due, broken, &self.store, &self.client, at, self.tables).await;
        if stats.compacted_on != Some(at.date_naive()) {
            self.compact(clock, at.date_naive()).await;
            stats.compacted_on = Some(at.date_naive());
        }
        self.refresh_rollups(clock).await;
        for f in not_due {
            let i = f.config.interval_hours as i64;
            let next = Utc
                .timestamp_opt((hour_index(at).div_euclid(i) + 1) * i * 3600, 0)
                .single()
                .expect("valid time");
            run.outcomes.push(Outcome {
                feed: f.config.name.clone(),
                status: Status::Skipped(format!(
                    "not due (interval_hours = {i}; next run {})",
                    stamp(next)
                )),
            });
        }
        run.outcomes.sort_by(|a, b| a.feed.cmp(&b.feed));
        for o in &run.outcomes {
            self.log(clock.now(), &format!("ingest {}", o.line()));
        }
        if run.failed() > 0 {
            stats.failed_ingests += 1;
        }
        let rec = IngestRecord {
            hour_index: Some(hour_index(at)),
            ..run.record(at)
        };
        self.record(clock, &rec);
        self.run_alerts(clock, IsoWeek::of(at.date_naive()), at)
            .await;
    }

    /// Compact every date before `today` as `gpurent compact` does (days merged into
    /// day files, older day files sorted by model, raw payloads deflated), before
    /// the rollups are refreshed, so a week's rollup is computed once from its day
    /// files. Logged; a failure is logged and retried the next day, the run stands.
    async fn compact<C: Clock>(&self, clock: &C, today: NaiveDate) {
        let store = self.store.clone();
        let done = tokio::task::spawn_blocking(move || store.compact_before(today, true)).await;
        let lines = match done {
            Ok(Ok(c)) => {
                let ok = c.lines().into_iter().map(|l| format!("compact: {l}"));
                let failed = c.failure_lines().into_iter();
                ok.chain(failed.map(|l| format!("compact: FAILED: {l}")))
                    .collect()
            }
            Ok(Err(e)) => vec![format!("compact: FAILED: {e}")],
            Err(e) => vec![format!("compact: FAILED: {e}")],
        };
        for line in lines {
            self.log(clock.now(), &line);
        }
    }

    /// Store the rollups of the weeks the run completed (derived data: a failure is
    /// logged, the run stands).
    async fn refresh_rollups<C: Clock>(&self, clock: &C) {
        let store = self.store.clone();
        let err = match tokio::task::spawn_blocking(move || analysis::rollup::refresh(&store)).await
        {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.log(clock.now(), &format!("rollups not updated: {err}"));
    }

    /// Evaluate the alert rules (if any) for `week`; log the new firings.
    async fn run_alerts<C: Clock>(&self, clock: &C, week: IsoWeek, now: DateTime<Utc>) {
        let Some(cfg) = &self.alerts else {
            return;
        };
        // The daemon runs on a local store only: no bucket to claim firings in.
        match crate::report::alerts::run(&self.store, cfg, week, now, None, None).await {
            Ok(fired) => {
                for f in fired.firings.into_iter().chain(fired.redelivered) {
                    let line = format!("alert {}: {} [{}]", f.rule, f.message, f.delivery);
                    self.log(clock.now(), &line);
                }
            }
            Err(e) => self.log(clock.now(), &format!("alerts: FAILED: {e}")),
        }
    }

    /// One report run: every pending week (see [`pending_weeks`]), oldest first.
    pub async fn report_once<C: Clock>(
        &self,
        clock: &C,
        shutdown: &mut watch::Receiver<bool>,
        stats: &mut DaemonStats,
    ) {
        let _lock = match self.lock(clock, "report", shutdown).await {
            Locked::Held(l) => l,
            Locked::Stopped => return,
            Locked::Refused(e) => {
                stats.locked_runs += 1;
                self.log(clock.now(), &format!("report: skipped: {e}"));
                return;
            }
        };
        stats.report_runs += 1;
        let now = clock.now();
        let mut weeks_rec = Vec::new();
        let mut failed = 0;
        match pending_weeks(&self.store, &self.reports, now) {
            Err(e) => {
                failed += 1;
                self.log(now, &format!("report: FAILED: reading the store: {e}"));
                weeks_rec.push(WeekRecord::failed(None, e.to_string()));
            }
            Ok(weeks) if weeks.is_empty() => {
                let last = last_complete_week(now).label();
                let line = if has_any_report(&self.reports) {
                    format!("report: nothing to write (every week up to {last} has a report)")
                } else {
                    format!("report: nothing to write (no week up to {last} has offers yet)")
                };
                self.log(now, &line);
            }
            Ok(weeks) => {
                for w in weeks {
                    if *shutdown.borrow() {
                        break;
                    }
                    self.run_alerts(clock, w, now).await;
                    let (store, out) = (self.store.clone(), self.reports.clone());
                    let res = tokio::task::spawn_blocking(move || {
                        report::write_week(&store, &out, w, now)
                    })
                    .await
                    .map_err(|e| format!("report task failed: {e}"))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    match res {
                        Ok(dir) => {
                            stats.reports_written += 1;
                            self.log(
                                clock.now(),
                                &format!(
                                    "report {}: written {}",
                                    w.label(),
                                    dir.join("index.html").display()
                                ),
                            );
                            weeks_rec
                                .push(WeekRecord::written(w.label(), dir.display().to_string()));
                        }
                        Err(e) => {
                            failed += 1;
                            self.log(clock.now(), &format!("report {}: FAILED: {e}", w.label()));
                            weeks_rec.push(WeekRecord::failed(Some(w.label()), e));
                        }
                    }
                }
            }
        }
        let rec = ReportRecord {
            at: now.to_rfc3339(),
            last_complete_week: last_complete_week(now).label(),
            weeks: weeks_rec,
            failed,
        };
        self.record(clock, &rec);
    }
}

/// True when some week under `reports` has a written report (its summary).
fn has_any_report(reports: &std::path::Path) -> bool {
    std::fs::read_dir(reports).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            crate::week::IsoWeek::parse(&e.file_name().to_string_lossy()).is_ok()
                && e.path().join("summary.json").is_file()
        })
    })
}

/// Run the daemon until `shutdown` turns true (or its sender is dropped).
///
/// Fails only at start, when the feeds directory cannot be read; afterwards every
/// problem is logged, recorded and retried at the next slot.
pub async fn run<C: Clock>(
    d: &Daemon,
    clock: &C,
    mut shutdown: watch::Receiver<bool>,
) -> Result<DaemonStats, FeedError> {
    feed::load_dir(&d.feeds)?;
    let mut stats = DaemonStats::default();
    d.log(
        clock.now(),
        &format!(
            "daemon started: feeds {}, store {}, reports {}",
            d.feeds.display(),
            d.store.root().display(),
            d.reports.display()
        ),
    );
    if !*shutdown.borrow() {
        let now = clock.now();
        d.ingest_once(clock, now, &mut shutdown, &mut stats).await;
    }
    if !*shutdown.borrow() {
        d.report_once(clock, &mut shutdown, &mut stats).await;
    }
    let mut next_ingest = hour_floor(clock.now()) + Duration::hours(1);
    let mut next_report = next_report_time(clock.now());
    loop {
        let ingest_next = next_ingest <= next_report;
        let at = if ingest_next {
            next_ingest
        } else {
            next_report
        };
        if !sleep_or_stop(clock, at, &mut shutdown).await {
            break;
        }
        if ingest_next {
            d.ingest_once(clock, at, &mut shutdown, &mut stats).await;
            next_ingest = hour_floor(clock.now()) + Duration::hours(1);
        } else {
            d.report_once(clock, &mut shutdown, &mut stats).await;
            next_report = next_report_time(clock.now());
        }
    }
    d.log(
        clock.now(),
        &format!(
            "daemon stopped: {} ingest runs, {} report runs, {} reports written, {} runs skipped on a locked store",
            stats.ingest_runs, stats.report_runs, stats.reports_written, stats.locked_runs
        ),
    );
    Ok(stats)
}

/// A shutdown channel that turns true on Ctrl-C or SIGTERM. Call inside a runtime.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tx.send_replace(true);
        // Keep the sender alive so receivers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_report_times() {
        let check = |after: &str, expected: &str| {
            assert_eq!(next_report_time(t(after)), t(expected), "after {after}")
        };
        check("2026-10-24T00:00:00Z", "2026-10-26T00:30:00Z"); // Saturday
        check("2026-10-26T00:29:59Z", "2026-10-26T00:30:00Z"); // Monday before
        check("2026-10-26T00:30:00Z", "2026-11-02T00:30:00Z"); // strictly after
        check("2026-10-25T23:59:00Z", "2026-10-26T00:30:00Z"); // Sunday night
        check("2026-12-30T12:00:00Z", "2027-01-04T00:30:00Z"); // across the year
    }

    #[test]
    fn feeds_due_by_interval() {
        let check = |interval: u32, at: &str, expected: bool| {
            assert_eq!(is_due(interval, t(at)), expected, "{interval} at {at}")
        };
        check(1, "2026-10-24T07:00:00Z", true);
        check(6, "2026-10-24T06:00:00Z", true); // epoch hours are UTC-aligned: 6 | 24
        check(6, "2026-10-24T06:59:59Z", true);
        check(6, "2026-10-24T07:00:00Z", false);
        check(24, "2026-10-24T00:00:00Z", true);
        check(24, "2026-10-24T01:00:00Z", false);
    }

    #[test]
    fn last_complete_weeks() {
        let check = |now: &str, expected: &str| {
            assert_eq!(last_complete_week(t(now)).label(), expected, "{now}")
        };
        check("2026-10-24T00:00:00Z", "2026-W42"); // Saturday of W43
        check("2026-10-26T00:30:00Z", "2026-W43"); // Monday of W44
        check("2027-01-04T00:30:00Z", "2026-W53");
    }
}
