//! Alerts for market watchers: rules in a TOML file (`alerts.toml`), evaluated after
//! each ingest and with each report; every firing is recorded once under
//! `<store>/alerts/<key>.json` and POSTed to a webhook (JSON, or Slack's `{"text"}`).
//!
//! Rule kinds: `ratio_crosses` (a model's weekly CN/US ratio of on-demand medians
//! crosses `threshold` between two weeks), `ratio_moves` (it moves more than
//! `percent` on the week), `first_in_china` (a model offered in China for the first
//! time), `provider_price_moves` (a provider's weekly median of a model moves more
//! than `percent`), `feed_failed` (a feed's ingests have failed for `hours`).
//!
//! Invariants: a firing's key (rule, subject, and the week or the outage's first
//! failure) is stable, so re-evaluating never fires it twice; the record is written
//! atomically before delivery and then updated with the delivery outcome; the webhook
//! URL (it often holds a token) never reaches a record, a log or an error. On an
//! `s3://` store a new firing is delivered only by the machine whose claim of it in
//! the bucket (a conditional create) succeeds, so two machines evaluating it at once
//! deliver it once; the other records it as [`CLAIMED_ELSEWHERE`] and never pushes
//! that record. A machine that dies between its claim and its POST leaves the firing
//! undelivered: at most once, never twice. On a local store, a firing whose delivery
//! failed (a receiver down for longer than the retries) is POSTed again at each later
//! evaluation for `redeliver_hours` after it fired ([`redeliver`]): at least once
//! while the receiver comes back within that time (twice if a POST reached it but
//! its answer did not reach us).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::analysis::{self, ProviderRow, WeekAnalysis};
use crate::error::{ReportError, StoreError};
use crate::store::fsutil::write_atomic;
use crate::store::remote::{Remote, Transfer};
use crate::store::Store;
use crate::week::IsoWeek;

/// An alert error: a bad rules file, or the store/analysis beneath.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("alerts: {0}")]
    Polars(#[from] PolarsError),
}

/// Why a webhook POST failed after its last attempt. It never holds the URL, which
/// often carries a token.
#[derive(Debug, thiserror::Error)]
#[error("{last} after {attempts} attempts")]
pub struct DeliveryError {
    pub last: PostFailure,
    pub attempts: u32,
}

/// How one POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostFailure {
    /// The server answered with a status other than 2xx.
    #[error("HTTP {0}")]
    Status(u16),
    /// The request failed (reqwest's message, without the URL).
    #[error("{0}")]
    Send(String),
}

/// Where firings are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// Send Slack's `{"text": ...}` body instead of the firing record.
    #[serde(default)]
    pub slack: bool,
    /// Extra attempts after a failed POST (default 3), with doubling delays.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before the first retry, in milliseconds (default 500).
    #[serde(default = "default_delay")]
    pub retry_delay_ms: u64,
    /// How long one POST may take, in seconds (default 20): a hook that never answers
    /// must not hold an ingest (and its store lock) or the daemon's shutdown for ever.
    #[serde(default = "default_post_timeout")]
    pub timeout_s: u64,
    /// A firing whose delivery failed is POSTed again at each later evaluation for
    /// this many hours after it fired (default 24; 0: never). Local stores only.
    #[serde(default = "default_redeliver_hours")]
    pub redeliver_hours: u32,
}

fn default_redeliver_hours() -> u32 {
    24
}

fn default_post_timeout() -> u64 {
    20
}

fn default_retries() -> u32 {
    3
}

fn default_delay() -> u64 {
    500
}

/// The kinds of rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    RatioCrosses,
    RatioMoves,
    FirstInChina,
    ProviderPriceMoves,
    FeedFailed,
}

/// One rule; which optional keys it needs depends on its kind (checked at load).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub kind: Kind,
    /// Canonical model id (ratio and provider rules; all models when absent).
    pub model: Option<String>,
    /// `first_in_china`: only these models (all when empty).
    #[serde(default)]
    pub models: Vec<String>,
    pub provider: Option<String>,
    pub feed: Option<String>,
    /// `ratio_crosses`: the CN/US ratio to watch.
    pub threshold: Option<f64>,
    /// `ratio_moves`, `provider_price_moves`: the move on the week, in percent.
    pub percent: Option<f64>,
    /// `feed_failed`: hours of failure.
    pub hours: Option<f64>,
}

/// A rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub webhook: Option<Webhook>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

impl Config {
    /// Parse and check a rules file's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, AlertError> {
        let err = |message: String| AlertError::Config {
            path: path.to_path_buf(),
            message,
        };
        let cfg: Config = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut names = BTreeSet::new();
        for r in &cfg.rules {
            if !names.insert(r.name.as_str()) {
                return Err(err(format!("rule {:?} is defined twice", r.name)));
            }
            let need = match r.kind {
                Kind::RatioCrosses => r.threshold.map(|_| ()).ok_or("threshold"),
                Kind::RatioMoves | Kind::ProviderPriceMoves => {
                    r.percent.map(|_| ()).ok_or("percent")
                }
                Kind::FeedFailed => r.hours.map(|_| ()).ok_or("hours"),
                Kind::FirstInChina => Ok(()),
            };
            if let Err(field) = need {
                return Err(err(format!("rule {:?}: `{field}` is required", r.name)));
            }
        }
        Ok(cfg)
    }

    /// Read and check a rules file.
    pub fn load(path: &Path) -> Result<Self, AlertError> {
        let text = std::fs::read_to_string(path).map_err(|e| AlertError::Config {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }
}

/// One firing of one rule, as recorded in `<store>/alerts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    pub key: String,
    pub rule: String,
    pub kind: Kind,
    /// The model, provider/model or feed the rule fired on.
    pub subject: String,
    /// The ISO week it concerns (the outage's week for `feed_failed`).
    pub week: String,
    pub fired_at: String,
    pub message: String,
    /// The numbers behind it, with their unit in the name.
    pub numbers: BTreeMap<String, f64>,
    /// `pending`, `delivered` (with attempts), `failed: ...`, or `no webhook`.
    pub delivery: String,
}

fn firing(rule: &Rule, subject: String, week: &str, at: DateTime<Utc>, message: String) -> Firing {
    let key_tail = match rule.kind {
        Kind::FirstInChina => subject.clone(),
        _ => format!("{subject}/{week}"),
    };
    Firing {
        key: format!("{}/{key_tail}", rule.name),
        rule: rule.name.clone(),
        kind: rule.kind,
        subject,
        week: week.to_string(),
        fired_at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        message,
        numbers: BTreeMap::new(),
        delivery: "pending".into(),
    }
}

fn prev_median(a: &WeekAnalysis, model: &str, bloc: &str) -> f64 {
    a.prev_rows
        .iter()
        .find(|r| r.gpu_model == model && r.bloc == bloc && r.price_class == "on_demand")
        .map_or(f64::NAN, |r| r.median)
}

fn wants(filter: &Option<String>, value: &str) -> bool {
    filter.as_deref().is_none_or(|f| f == value)
}

/// Ratio rules over this week's on-demand ratios against last week's.
fn ratio_firings(rule: &Rule, a: &WeekAnalysis, now: DateTime<Utc>) -> Vec<Firing> {
    let mut out = Vec::new();
    for r in a.ratios.iter().filter(|r| r.price_class == "on_demand") {
        if !wants(&rule.model, &r.gpu_model) {
            continue;
        }
        let prev = prev_median(a, &r.cn_model, "CN") / prev_median(a, &r.us_model, "US");
        let cur = r.cn_us_ratio;
        if !prev.is_finite() || !cur.is_finite() {
            continue;
        }
        let prev_week = IsoWeek::of(a.from - chrono::Duration::days(7)).label();
        let message = match (rule.kind, rule.threshold, rule.percent) {
            (Kind::RatioCrosses, Some(t), _) if (prev < t) != (cur < t) => format!(
                "{}: CN/US ratio of on-demand medians crossed {t}: {prev:.3} in {prev_week}, {cur:.3} in {}",
                r.gpu_model, a.week
            ),
            (Kind::RatioMoves, _, Some(p)) if ((cur / prev - 1.0) * 100.0).abs() > p => format!(
                "{}: CN/US ratio of on-demand medians moved {:+.1}% on the week (more than {p}%): {prev:.3} in {prev_week}, {cur:.3} in {}",
                r.gpu_model,
                (cur / prev - 1.0) * 100.0,
                a.week
            ),
            _ => continue,
        };
        let mut f = firing(rule, r.gpu_model.clone(), &a.week, now, message);
        f.numbers.insert("ratio_prev_week".into(), prev);
        f.numbers.insert("ratio".into(), cur);
        f.numbers
            .insert("cn_median_usd_per_gpu_hour".into(), r.cn_median);
        f.numbers
            .insert("us_median_usd_per_gpu_hour".into(), r.us_median);
        out.push(f);
    }
    out
}

/// Models with an offer in China before `before` (any class).
fn china_models_before(
    store: &Store,
    before: chrono::NaiveDate,
) -> Result<BTreeSet<String>, AlertError> {
    let Some(lf) = store.scan_offers(None, Some(before - chrono::Duration::days(1)))? else {
        return Ok(BTreeSet::new());
    };
    let df = lf
        .filter(col("bloc").eq(lit("CN")))
        .select([col("gpu_model")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect_with_engine(Engine::Streaming)?
        .unwrap_single();
    Ok(analysis::strs(&df, "gpu_model")?.into_iter().collect())
}

fn first_in_china(
    rule: &Rule,
    store: &Store,
    a: &WeekAnalysis,
    now: DateTime<Utc>,
) -> Result<Vec<Firing>, AlertError> {
    let seen = china_models_before(store, a.from)?;
    if seen.is_empty() {
        // No China history yet (a new store): every model would be "first".
        return Ok(Vec::new());
    }
    let mut new: BTreeMap<&str, (u32, f64)> = BTreeMap::new();
    for r in a
        .rows
        .iter()
        .filter(|r| r.bloc == "CN" && !seen.contains(&r.gpu_model))
    {
        if rule.models.is_empty() || rule.models.contains(&r.gpu_model) {
            let e = new.entry(&r.gpu_model).or_insert((0, f64::NAN));
            e.0 += r.offers;
            if r.price_class == "on_demand" {
                e.1 = r.median;
            }
        }
    }
    Ok(new
        .into_iter()
        .map(|(model, (offers, median))| {
            let message = format!(
                "{model} offered in China for the first time in {}: {offers} offer observations{}",
                a.week,
                if median.is_finite() {
                    format!(", on-demand median ${median:.2} per GPU-hour")
                } else {
                    String::new()
                }
            );
            let mut f = firing(rule, model.to_string(), &a.week, now, message);
            f.numbers.insert("offers".into(), f64::from(offers));
            if median.is_finite() {
                f.numbers.insert("median_usd_per_gpu_hour".into(), median);
            }
            f
        })
        .collect())
}

fn provider_moves(rule: &Rule, a: &WeekAnalysis, now: DateTime<Utc>) -> Vec<Firing> {
    let prev = &a.prev_providers;
    let limit = rule.percent.unwrap_or(f64::INFINITY);
    let mut out = Vec::new();
    // On-demand rows only, this week's and last week's alike (found by a fault hunt:
    // last week's on-demand median was compared with this week's spot median).
    let on_demand = |r: &&ProviderRow| r.price_class == "on_demand";
    for p in a.providers.iter().filter(on_demand) {
        if !wants(&rule.provider, &p.provider) || !wants(&rule.model, &p.gpu_model) {
            continue;
        }
        let same = |q: &&ProviderRow| {
            q.provider == p.provider && q.gpu_model == p.gpu_model && q.bloc == p.bloc
        };
        let Some(q) = prev.iter().filter(on_demand).find(same) else {
            continue;
        };
        let change = (p.median / q.median - 1.0) * 100.0;
        if change.is_nan() || change.abs() <= limit {
            continue;
        }
        let subject = format!("{}/{}/{}", p.provider, p.gpu_model, p.bloc);
        let message = format!(
            "{} {} ({}): on-demand median moved {change:+.1}% on the week (more than {limit}%): ${:.2} to ${:.2} per GPU-hour in {}",
            p.provider, p.gpu_model, p.bloc, q.median, p.median, a.week
        );
        let mut f = firing(rule, subject, &a.week, now, message);
        f.numbers
            .insert("median_prev_week_usd_per_gpu_hour".into(), q.median);
        f.numbers.insert("median_usd_per_gpu_hour".into(), p.median);
        f.numbers.insert("change_percent".into(), change);
        out.push(f);
    }
    out
}

/// Each feed's ingest outcomes from the run records: (observed_at, failed).
fn feed_history(store: &Store) -> BTreeMap<String, Vec<(DateTime<Utc>, bool)>> {
    let mut out: BTreeMap<String, Vec<(DateTime<Utc>, bool)>> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(store.root().join("runs")) else {
        return out;
    };
    for e in rd.flatten() {
        let path = e.path();
        let read = std::fs::read(&path).map_err(|e| e.to_string());
        let v = read.and_then(|b| {
            serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
        });
        let v = match v {
            Ok(v) => v,
            Err(e) => {
                // Counted as no run: say so, as the feed_failed rule then sees less.
                tracing::warn!("run record {} not read: {e}", path.display());
                continue;
            }
        };
        let at = v["observed_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        let (Some(at), Some(feeds)) = (at, v["feeds"].as_array()) else {
            continue;
        };
        for f in feeds {
            let (Some(name), Some(status)) = (f["feed"].as_str(), f["status"].as_str()) else {
                continue;
            };
            if status != "skipped" {
                out.entry(name.to_string())
                    .or_default()
                    .push((at.with_timezone(&Utc), status == "failed"));
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn feed_failures(rule: &Rule, store: &Store, now: DateTime<Utc>) -> Vec<Firing> {
    let hours = rule.hours.unwrap_or(f64::INFINITY);
    let mut out = Vec::new();
    for (feed, runs) in feed_history(store) {
        if !wants(&rule.feed, &feed) {
            continue;
        }
        // The current streak: failures after the last success.
        let streak: Vec<DateTime<Utc>> =
            runs.iter().rev().take_while(|r| r.1).map(|r| r.0).collect();
        let (Some(first), Some(last)) = (streak.last(), streak.first()) else {
            continue;
        };
        let failed_h = (now - *first).num_seconds() as f64 / 3600.0;
        if failed_h < hours {
            continue;
        }
        let week = IsoWeek::of(first.date_naive()).label();
        let message = format!(
            "feed {feed} has failed for {failed_h:.1} hours (at least {hours}): {} failed runs since {}, the last at {}",
            streak.len(),
            first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let mut f = firing(rule, feed.clone(), &week, now, message);
        f.key = format!("{}/{feed}/{}", rule.name, first.format("%Y%m%dT%H%M%SZ"));
        f.numbers.insert("failed_hours".into(), failed_h);
        f.numbers.insert("failed_runs".into(), streak.len() as f64);
        out.push(f);
    }
    out
}

/// Every rule's firings for `week` as of `now` (not yet de-duplicated), sorted by key.
/// `analysed` is the week's analysis when the caller has it already (the report does);
/// otherwise it is computed here, and only when a price rule needs it.
pub fn evaluate(
    store: &Store,
    cfg: &Config,
    week: IsoWeek,
    now: DateTime<Utc>,
    analysed: Option<WeekAnalysis>,
) -> Result<Vec<Firing>, AlertError> {
    let needs_prices = cfg.rules.iter().any(|r| r.kind != Kind::FeedFailed);
    let a = match analysed {
        _ if !needs_prices => None,
        Some(a) => Some(a),
        None => Some(analysis::analyse_week(store, week)?),
    }
    .filter(|a| !a.rows.is_empty());
    let mut out = Vec::new();
    for rule in &cfg.rules {
        match (rule.kind, &a) {
            (Kind::RatioCrosses | Kind::RatioMoves, Some(a)) => {
                out.extend(ratio_firings(rule, a, now))
            }
            (Kind::FirstInChina, Some(a)) => out.extend(first_in_china(rule, store, a, now)?),
            (Kind::ProviderPriceMoves, Some(a)) => out.extend(provider_moves(rule, a, now)),
            (Kind::FeedFailed, _) => out.extend(feed_failures(rule, store, now)),
            _ => {}
        }
    }
    out.sort_by(|x, y| x.key.cmp(&y.key));
    Ok(out)
}

fn record_path(store: &Store, key: &str) -> PathBuf {
    store.root().join(record_rel(key))
}

/// A firing's record relative to the store (`alerts/<key, sanitised>.json`), which is
/// also its object key under an `s3://` store's prefix.
fn record_rel(key: &str) -> String {
    let file: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("alerts/{file}.json")
}

fn write_record(store: &Store, f: &Firing) -> Result<(), AlertError> {
    let text = serde_json::to_vec_pretty(f).expect("firing serialises");
    Ok(write_atomic(&record_path(store, &f.key), &text)?)
}

/// Record the firings not recorded before; returns those (the new ones).
pub fn record_new(store: &Store, firings: Vec<Firing>) -> Result<Vec<Firing>, AlertError> {
    let mut new = Vec::new();
    for f in firings {
        if !record_path(store, &f.key).exists() {
            write_record(store, &f)?;
            new.push(f);
        }
    }
    Ok(new)
}

/// The body POSTed for a firing.
pub fn webhook_body(hook: &Webhook, f: &Firing) -> serde_json::Value {
    if hook.slack {
        serde_json::json!({ "text": format!("gpurent alert: {}", f.message) })
    } else {
        serde_json::to_value(f).expect("firing serialises")
    }
}

/// The client for webhooks: redirects are not followed (reqwest would turn a 302's
/// POST into a GET without the body and count it delivered), so a redirect is a
/// failed attempt.
fn webhook_client() -> reqwest::Client {
    crate::process::install_tls();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gpurent/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client configuration is static")
}

/// POST one firing, retrying with doubling delays; the attempts it took, or why not.
async fn post(hook: &Webhook, f: &Firing) -> Result<u32, DeliveryError> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(webhook_client);
    let body = serde_json::to_vec(&webhook_body(hook, f)).expect("JSON serialises");
    let mut last = PostFailure::Send(String::new());
    for attempt in 0..=hook.retries {
        if attempt > 0 {
            let ms = hook
                .retry_delay_ms
                .saturating_mul(1 << (attempt - 1).min(10));
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let res = client
            .post(&hook.url)
            .timeout(Duration::from_secs(hook.timeout_s))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return Ok(attempt + 1),
            Ok(r) => last = PostFailure::Status(r.status().as_u16()),
            // Without the URL: a webhook URL often carries a token.
            Err(e) if e.is_timeout() => {
                last = PostFailure::Send(format!("no answer within {} s", hook.timeout_s))
            }
            Err(e) => last = PostFailure::Send(e.without_url().to_string()),
        }
    }
    Err(DeliveryError {
        last,
        attempts: hook.retries + 1,
    })
}

/// Deliver new firings to the webhook (if any) and record the outcome in each record.
pub async fn deliver(
    store: &Store,
    cfg: &Config,
    firings: &mut [Firing],
) -> Result<(), AlertError> {
    for f in firings.iter_mut() {
        f.delivery = match &cfg.webhook {
            None => "no webhook".into(),
            Some(h) => match post(h, f).await {
                Ok(n) => format!("delivered (attempts: {n})"),
                Err(e) => format!("failed: {e}"),
            },
        };
        write_record(store, f)?;
    }
    Ok(())
}

/// The recorded firings whose delivery failed and that fired less than
/// `redeliver_hours` before `now`, oldest key first, POSTed again, once each (no
/// retries): the first that fails again ends the pass, as the receiver is still
/// down, so a dead or hanging hook costs one POST per evaluation, not one per
/// firing. Each record POSTed says its new outcome (still `failed: ...` if it failed,
/// so a later evaluation tries again). Returns those POSTed.
pub async fn redeliver(
    store: &Store,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<Firing>, AlertError> {
    let Some(hook) = cfg.webhook.as_ref().filter(|h| h.redeliver_hours > 0) else {
        return Ok(Vec::new());
    };
    let once = Webhook {
        retries: 0,
        ..hook.clone()
    };
    let since = now - chrono::Duration::hours(i64::from(hook.redeliver_hours));
    let due = recorded(store)
        .into_iter()
        .filter(|f| f.delivery.starts_with("failed"))
        .filter(|f| DateTime::parse_from_rfc3339(&f.fired_at).is_ok_and(|t| t >= since));
    let mut out = Vec::new();
    for mut f in due {
        let res = post(&once, &f).await;
        f.delivery = match &res {
            Ok(_) => "delivered (again, after a failed delivery)".into(),
            Err(e) => format!(
                "failed: {}; POSTed again at {}",
                e.last,
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        };
        write_record(store, &f)?;
        out.push(f);
        if res.is_err() {
            break;
        }
    }
    Ok(out)
}

/// What [`run`] did.
#[derive(Debug, Default)]
pub struct Alerted {
    /// The new firings, sorted by key, each with its delivery outcome (or
    /// [`CLAIMED_ELSEWHERE`] where another machine delivers it).
    pub firings: Vec<Firing>,
    /// Earlier firings whose delivery had failed, POSTed again ([`redeliver`]; a
    /// local store only).
    pub redelivered: Vec<Firing>,
    /// The records pushed to the bucket (an `s3://` store only).
    pub pushed: Transfer,
}

/// The delivery of a firing another machine claimed first: not delivered here.
pub const CLAIMED_ELSEWHERE: &str = "not delivered here: another machine claimed it";

/// Of the new firings (recorded in `store`, not yet delivered), those this machine
/// claimed in the bucket (it delivers them), and those another machine claimed first
/// (it delivers them: never this one; their records are the bucket's). On an error
/// the firings not yet claimed lose their records (a later run evaluates them again)
/// and the error is returned beside those claimed, which must still be delivered.
async fn claim(
    store: &Store,
    remote: &Remote,
    firings: Vec<Firing>,
) -> Result<(Vec<Firing>, Vec<Firing>, Option<AlertError>), AlertError> {
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    let mut rest = firings.into_iter();
    while let Some(mut f) = rest.next() {
        let rel = record_rel(&f.key);
        let body = serde_json::to_vec_pretty(&f).expect("firing serialises");
        let failed = match remote.claim(&rel, body).await {
            Ok(true) => {
                mine.push(f);
                continue;
            }
            Ok(false) => {
                f.delivery = CLAIMED_ELSEWHERE.into();
                let adopted = match write_record(store, &f) {
                    Ok(()) => remote
                        .defer(store, &rel)
                        .await
                        .map(|_| ())
                        .map_err(AlertError::from),
                    Err(e) => Err(e),
                };
                theirs.push(f);
                match adopted {
                    Ok(()) => continue,
                    Err(e) => e,
                }
            }
            Err(e) => {
                forget(store, &f)?;
                e.into()
            }
        };
        for f in rest {
            forget(store, &f)?;
        }
        return Ok((mine, theirs, Some(failed)));
    }
    Ok((mine, theirs, None))
}

/// Remove the record of a firing neither delivered nor claimed, so that a later run
/// evaluates it again rather than push it undelivered.
fn forget(store: &Store, f: &Firing) -> Result<(), AlertError> {
    let path = record_path(store, &f.key);
    Ok(std::fs::remove_file(&path).map_err(crate::store::fsutil::io(&path))?)
}

/// Evaluate, record the new firings and deliver them; returns the new firings.
/// `analysed`: the week's analysis, when the caller has it (see [`evaluate`]).
/// On an `s3://` store (`remote`), a firing is delivered only by the machine whose
/// conditional create of its claim succeeds, so two machines that evaluate a firing
/// at once deliver it once; the records are then pushed, so the bucket holds each
/// firing with its outcome before this returns.
pub async fn run(
    store: &Store,
    cfg: &Config,
    week: IsoWeek,
    now: DateTime<Utc>,
    analysed: Option<WeekAnalysis>,
    remote: Option<&Remote>,
) -> Result<Alerted, AlertError> {
    let all = {
        let (store, cfg) = (store.clone(), cfg.clone());
        tokio::task::spawn_blocking(move || {
            evaluate(&store, &cfg, week, now, analysed).and_then(|f| record_new(&store, f))
        })
        .await
        .map_err(|e| AlertError::Config {
            path: PathBuf::from("alerts"),
            message: format!("evaluation task failed: {e}"),
        })??
    };
    let Some(remote) = remote else {
        // Earlier failures first: this run's new ones are not POSTed twice in a run.
        let redelivered = redeliver(store, cfg, now).await?;
        let mut firings = all;
        deliver(store, cfg, &mut firings).await?;
        return Ok(Alerted {
            firings,
            redelivered,
            pushed: Transfer::default(),
        });
    };
    let (mut firings, theirs, failed) = claim(store, remote, all).await?;
    deliver(store, cfg, &mut firings).await?;
    let pushed = remote.push_kinds(store, &["alerts"]).await?;
    if let Some(e) = failed {
        return Err(e);
    }
    firings.extend(theirs);
    firings.sort_by(|x, y| x.key.cmp(&y.key));
    Ok(Alerted {
        firings,
        redelivered: Vec::new(),
        pushed,
    })
}

/// Every readable firing record of the store, sorted by key.
fn recorded(store: &Store) -> Vec<Firing> {
    let mut out: Vec<Firing> = std::fs::read_dir(store.root().join("alerts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Firing>(&b).ok())
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The recorded firings of one ISO week, sorted by key (for the report).
pub fn for_week(store: &Store, week: &str) -> Vec<Firing> {
    let mut out = recorded(store);
    out.retain(|f| f.week == week);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<usize, &str>) {
        let got = Config::parse(Path::new("alerts.toml"), text).map(|c| c.rules.len());
        match (got, expected) {
            (Ok(n), Ok(m)) => assert_eq!(n, m, "{text}"),
            (Err(e), Err(m)) => assert!(e.to_string().contains(m), "{e} lacks {m}"),
            (got, _) => panic!("{text}: got {got:?}"),
        }
    }

    #[test]
    fn rules_files_are_checked() {
        check("", Ok(0));
        check(
            "[[rule]]\nname = \"a\"\nkind = \"ratio_moves\"\npercent = 5\n",
            Ok(1),
        );
        check(
            "[[rule]]\nname = \"a\"\nkind = \"ratio_moves\"\n",
            Err("rule \"a\": `percent` is required"),
        );
        check(
            "[[rule]]\nname = \"a\"\nkind = \"ratio_crosses\"\n",
            Err("`threshold` is required"),
        );
        check(
            "[[rule]]\nname = \"a\"\nkind = \"feed_failed\"\n",
            Err("`hours` is required"),
        );
        check(
            "[[rule]]\nname = \"a\"\nkind = \"nope\"\n",
            Err("alerts.toml: "),
        );
        check(
            "[[rule]]\nname = \"a\"\nkind = \"first_in_china\"\ncolour = 1\n",
            Err("unknown field `colour`"),
        );
        check("[[rule]]\nname = \"a\"\nkind = \"first_in_china\"\n[[rule]]\nname = \"a\"\nkind = \"first_in_china\"\n", Err("defined twice"));
        // The example the README points to, every key of it.
        check(include_str!("../../alerts.toml"), Ok(5));
    }
}
