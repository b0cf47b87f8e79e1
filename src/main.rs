//! The `gpurent` command: thin glue over the library. Errors become `anyhow` reports
//! here and nowhere else. Exit status: 0 success, 1 some feeds failed (the others
//! were stored), 2 a fatal error or a usage error, 3 a query (`prices`, `history`)
//! matched no rows (the reason is on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use gpurent::analysis;
use gpurent::ingest::{self, backfill, feed, fetch};
use gpurent::report::alerts;
use gpurent::run::demo;
use gpurent::store::records::{BackfillRecord, BackfillVersionsRecord};
use gpurent::store::remote::{self, Remote};
use gpurent::store::{Location, Store, StoreLock};
use gpurent::week::IsoWeek;
use gpurent::{report, tables::Tables};

#[derive(Parser)]
#[command(
    name = "gpurent",
    version,
    about = "GPU rental prices, China vs US: ingest, history, charts, weekly report"
)]
struct Cli {
    /// Read the tables (gpus.toml, regions.toml, instances.csv, units.toml) from DIR
    /// instead of the copy built into the binary; also GPURENT_TABLES.
    #[arg(long, global = true, value_name = "DIR")]
    tables: Option<PathBuf>,
    /// Alert rules (TOML, see alerts.toml), evaluated after `ingest` and with
    /// `report`; also GPURENT_ALERTS. Without it no alert is evaluated.
    #[arg(long, global = true, value_name = "FILE")]
    alerts: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
    /// Seconds a writer (ingest, backfill, compact, renormalise) waits for another
    /// writer's store lock before it gives up (exit 2).
    #[arg(long, global = true, default_value_t = gpurent::store::DEFAULT_LOCK_WAIT_S)]
    lock_wait: u64,
}

/// Exit status of a query that matched no rows.
const NO_ROWS: u8 = 3;

#[derive(Clone, Copy, ValueEnum)]
enum Bloc {
    #[value(name = "CN")]
    Cn,
    #[value(name = "US")]
    Us,
    #[value(name = "OTHER")]
    Other,
}

#[derive(Clone, Copy, ValueEnum)]
enum Class {
    #[value(name = "on_demand", alias = "on-demand")]
    OnDemand,
    Spot,
    Reserved,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Every {
    #[value(name = "1h")]
    Hour,
    #[value(name = "1d")]
    Day,
    #[value(name = "1w")]
    Week,
}

impl Format {
    fn query(self) -> gpurent::analysis::query::Format {
        match self {
            Format::Table => gpurent::analysis::query::Format::Table,
            Format::Csv => gpurent::analysis::query::Format::Csv,
            Format::Json => gpurent::analysis::query::Format::Json,
        }
    }
}

/// An observation time: RFC 3339, or a date (`2023-06-17`, meaning 00:00 UTC), in
/// one of `week::OBSERVATION_YEARS`.
fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        })
        .map_err(|_| {
            format!(
                "{s:?} is neither a date (2023-06-17) nor an RFC 3339 time (2023-06-17T10:00:00Z)"
            )
        })?;
    observation_date(t.date_naive()).map(|_| t)
}

/// A date that may be an observation's (`week::OBSERVATION_YEARS`), else why not.
fn observation_date(d: chrono::NaiveDate) -> Result<chrono::NaiveDate, String> {
    if gpurent::week::plausible(d) {
        Ok(d)
    } else {
        Err(gpurent::week::implausible_why(d))
    }
}

/// A backfill's `--from`/`--to`: a date (`2024-10-07`) in one of
/// `week::OBSERVATION_YEARS`, as each day's version is observed at its midnight.
fn parse_version_day(s: &str) -> Result<chrono::NaiveDate, String> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (2024-10-07)"))?;
    observation_date(d)
}

/// `--store`: a local directory or `s3://bucket/prefix`; other URLs are refused.
fn store_location(s: &str) -> Result<Location, gpurent::error::StoreError> {
    gpurent::store::parse_location(s)
}

/// `--segment`: the segments the tables define (clap lists them on a mistake).
fn segment_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(gpurent::tables::SEGMENTS)
}

fn adapter_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(gpurent::ingest::adapters::names())
}

#[derive(Subcommand)]
enum Command {
    /// Fetch every enabled feed once, normalise and append to the store.
    Ingest {
        #[arg(long, default_value = "feeds")]
        feeds: PathBuf,
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
        /// Observation time: RFC 3339 or a date (00:00 UTC); default: now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
    },
    /// Write the weekly report of one ISO week (default: the last complete week).
    Report(ReportArgs),
    /// Import dated snapshot files (a `YYYY-MM-DD` in the path gives the date).
    Backfill(BackfillArgs),
    /// List provider x model x class x day cells where two sources' median prices
    /// (USD per GPU-hour) differ by more than the tolerance.
    Crosscheck {
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
        /// Largest accepted relative difference, e.g. 0.05 for 5%.
        #[arg(long, default_value_t = 0.05)]
        tolerance: f64,
        /// First observation date, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last observation date, YYYY-MM-DD (UTC).
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
    },
    /// Merge each feed's hourly files into one file per day for every date before
    /// --before, so a long history is a few large files, not many small ones.
    ///
    /// On a local store it also merges each feed's raw hour files of those dates into
    /// one day file, sorts older day files by model, removes raw payloads no stored
    /// hour names, and deflates the raw payloads ingest kept uncompressed. It changes
    /// no stored row and no payload an hour names. The daemon runs it once a day.
    Compact {
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
        /// First date NOT to compact, YYYY-MM-DD (UTC); default: today, so every day
        /// up to yesterday is compacted.
        #[arg(long)]
        before: Option<chrono::NaiveDate>,
    },
    /// Rebuild the normalised offers from the kept raw payloads (after the tables change).
    Renormalise {
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
    },
    /// List raw GPU names and instance types that did not resolve, most frequent first.
    Unknown {
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
    },
    /// Run on a schedule until SIGTERM or Ctrl-C: ingest at the top of each hour (per
    /// feed `interval_hours`), the previous week's report every Monday 00:30 UTC, and
    /// at start the report of every complete week that has offers but no report.
    Daemon {
        #[arg(long, default_value = "feeds")]
        feeds: PathBuf,
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// The latest price in force per provider, model, bloc and class (USD per
    /// GPU-hour), with its observation time and age at the store's latest observation.
    Prices {
        #[arg(long, default_value = "data", value_parser = store_location)]
        store: Location,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One model's median, p25, p75 (USD per GPU-hour) and offers per period.
    History(HistoryArgs),
    /// The embedded default: simulated providers on 127.0.0.1, four weeks of hourly
    /// ingests over HTTP, then the weekly reports. No network, no keys.
    Demo {
        #[arg(long, default_value = "demo-simulated")]
        out: PathBuf,
        /// Also push the demo's store to this `s3://bucket/prefix` and report its last
        /// week again from the bucket (AWS_* variables; README, "The store on S3").
        #[arg(long, value_parser = store_location)]
        store: Option<Location>,
    },
}

#[derive(clap::Args)]
struct ReportArgs {
    #[arg(long, default_value = "data", value_parser = store_location)]
    store: Location,
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// ISO week, e.g. 2024-W07.
    #[arg(long)]
    week: Option<String>,
    /// Prices under this multiple of their model's weekly median are implausible.
    #[arg(long, default_value_t = analysis::IMPLAUSIBLE_LOW)]
    implausible_low: f64,
    /// Prices over this multiple of their model's weekly median are implausible.
    #[arg(long, default_value_t = analysis::IMPLAUSIBLE_HIGH)]
    implausible_high: f64,
    /// Cells with fewer offer observations are marked thin.
    #[arg(long, default_value_t = analysis::THIN_CELL)]
    thin: u32,
}

#[derive(clap::Args)]
struct BackfillArgs {
    /// The adapter, e.g. skypilot_csv.
    #[arg(long, required_unless_present = "feed", value_parser = adapter_names())]
    format: Option<String>,
    /// A feed file whose keys describe the files (its url is replaced by each file).
    #[arg(long)]
    feed: Option<PathBuf>,
    /// Provider (default: the feed file's, else the folder above the dated one).
    #[arg(long)]
    provider: Option<String>,
    #[arg(long, default_value = "data", value_parser = store_location)]
    store: Location,
    /// Observation time for files whose path holds no date: a date (2023-06-17,
    /// 00:00 UTC) or an RFC 3339 time.
    #[arg(long, value_parser = parse_at)]
    at: Option<DateTime<Utc>>,
    /// With --format gpuhunt_catalog: the first day whose version YYYYMMDD to fetch.
    #[arg(long, requires = "to", value_parser = parse_version_day)]
    from: Option<chrono::NaiveDate>,
    /// The last day whose version to fetch.
    #[arg(long, requires = "from", value_parser = parse_version_day)]
    to: Option<chrono::NaiveDate>,
    /// With --from/--to: the catalogue base URL.
    #[arg(long, default_value = gpurent::ingest::adapters::gpuhunt_catalog::DEFAULT_URL)]
    url: String,
    #[arg(required_unless_present = "from")]
    paths: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct HistoryArgs {
    #[arg(long, default_value = "data", value_parser = store_location)]
    store: Location,
    /// GPU model: a canonical id or any alias, in any case (e.g. H100-SXM-80GB,
    /// "h100 sxm"); resolved through the GPU tables.
    #[arg(long)]
    model: String,
    /// Bloc (default: all).
    #[arg(long, value_enum, ignore_case = true)]
    bloc: Option<Bloc>,
    /// ISO country code, e.g. HK (default: all).
    #[arg(long)]
    country: Option<String>,
    /// Price class (default: all).
    #[arg(long, value_enum)]
    class: Option<Class>,
    /// Period of a row (1w: ISO weeks).
    #[arg(long, value_enum, default_value = "1d")]
    every: Every,
    /// First observation date, YYYY-MM-DD (UTC).
    #[arg(long)]
    from: Option<chrono::NaiveDate>,
    /// Last observation date, YYYY-MM-DD (UTC).
    #[arg(long)]
    to: Option<chrono::NaiveDate>,
    /// One provider only, e.g. aws.
    #[arg(long)]
    provider: Option<String>,
    /// One segment of tables/providers.toml only (`unknown`: providers it does not list).
    #[arg(long, value_parser = segment_names())]
    segment: Option<String>,
    /// A row per provider (adds a provider column).
    #[arg(long)]
    by_provider: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn main() -> ExitCode {
    gpurent::process::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GPURENT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("gpurent: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each cause once: the library's errors often
/// show their source in their own text too, and `{:#}` would repeat it.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// A model as typed, resolved to its canonical id through the GPU tables.
fn resolve_model(tables: &Tables, input: &str) -> anyhow::Result<String> {
    match tables.gpus.find_model(input) {
        Ok(id) => {
            if id != input {
                eprintln!("gpurent: --model {input}: using {id}");
            }
            Ok(id)
        }
        Err(close) if close.is_empty() => anyhow::bail!(
            "--model {input}: no GPU model or alias of that name in the tables (see `gpurent prices` for the models in the store)"
        ),
        Err(close) => anyhow::bail!(
            "--model {input}: not one model; did you mean one of: {}",
            close.join(", ")
        ),
    }
}

/// Why a history query matched nothing: the model absent, or the filters too narrow.
fn why_no_rows(
    store: &Store,
    q: &gpurent::analysis::query::HistoryQuery,
) -> anyhow::Result<String> {
    let models = gpurent::analysis::query::models(store)?;
    if models.is_empty() {
        return Ok(format!("no offers in store {}", store.root().display()));
    }
    if !models.contains(&q.model) {
        return Ok(format!(
            "no offers of {} in the store (models in the store: {})",
            q.model,
            models.join(", ")
        ));
    }
    let dates = store.offer_dates()?;
    let held = format!(
        "the store holds offers from {} to {}",
        dates.first().map(|d| d.to_string()).unwrap_or_default(),
        dates.last().map(|d| d.to_string()).unwrap_or_default()
    );
    let filters = gpurent::analysis::query::given_filters(store, q)?;
    if filters.is_empty() {
        return Ok(format!(
            "no offers of {} for one or more whole GPUs (history leaves out fractional GPUs; {held})",
            q.model
        ));
    }
    let all: Vec<&str> = filters.iter().map(|f| f.label.as_str()).collect();
    let empty: Vec<&str> = filters
        .iter()
        .filter(|f| f.matches_nothing)
        .map(|f| f.label.as_str())
        .collect();
    let which = match (all.len(), empty.len()) {
        (1, _) => String::new(),
        (_, 0) => "; each filter alone matches some, but not all together".to_string(),
        (_, 1) => format!("; {} alone matches none of them", empty[0]),
        _ => format!("; {} each alone match none of them", empty.join(", ")),
    };
    Ok(format!(
        "no offers of {} match {}{which} ({held})",
        q.model,
        all.join(" ")
    ))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Take the store's writer lock, waiting up to `--lock-wait` seconds for another writer.
fn lock(store: &Store, wait_s: u64) -> anyhow::Result<gpurent::store::StoreLock> {
    Ok(store.lock_wait(std::time::Duration::from_secs(wait_s), |pid| {
        eprintln!(
            "gpurent: store {} is locked by another writer (pid {pid}); waiting up to {wait_s} s (--lock-wait)",
            store.root().display()
        )
    })?)
}

/// An `s3://` store's bucket and the local cache gpurent works on.
fn s3_cache(bucket: &str, prefix: &str) -> anyhow::Result<(Store, Remote)> {
    let remote = Remote::open(bucket, prefix)?;
    Ok((Store::open(remote::cache_dir(bucket, prefix)), remote))
}

/// Bring the cache up to date with the bucket.
fn pull(rt: &tokio::runtime::Runtime, cache: &Store, remote: &Remote) -> anyhow::Result<()> {
    let t = rt.block_on(remote.pull(cache))?;
    eprintln!(
        "gpurent: {}: {} objects pulled into the cache {}",
        remote.url(),
        t.copied,
        cache.root().display()
    );
    Ok(())
}

/// A store to read: a local directory (that exists), or an `s3://` store's cache
/// after a pull.
fn reader(loc: Location) -> anyhow::Result<Store> {
    Ok(reader_of(loc, &runtime()?)?.0)
}

/// [`reader`], with the bucket of an `s3://` store (pulled on `rt`).
fn reader_of(
    loc: Location,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<(Store, Option<Remote>)> {
    match loc {
        Location::Local(p) => Ok((Store::open_existing(p)?, None)),
        Location::S3 { bucket, prefix } => {
            let (cache, remote) = s3_cache(&bucket, &prefix)?;
            pull(rt, &cache, &remote)?;
            Ok((cache, Some(remote)))
        }
    }
}

/// A store to write, locked. For an `s3://` store: the cache, after checking that the
/// server honours conditional creates and pulling (on the command's runtime `rt`);
/// push with [`finish_write`] (or [`push`]) when done.
fn writer(
    loc: Location,
    wait: u64,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<(Store, StoreLock, Option<Remote>)> {
    match loc {
        Location::Local(p) => {
            let store = Store::open(p);
            let held = lock(&store, wait)?;
            Ok((store, held, None))
        }
        Location::S3 { bucket, prefix } => {
            let (cache, remote) = s3_cache(&bucket, &prefix)?;
            let held = lock(&cache, wait)?;
            rt.block_on(remote.probe())?;
            pull(rt, &cache, &remote)?;
            Ok((cache, held, Some(remote)))
        }
    }
}

/// After a write: store the rollups of the complete weeks it changed, then upload to
/// the bucket what the cache holds and has not seen there.
fn finish_write(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    remote: Option<&Remote>,
) -> anyhow::Result<()> {
    refresh_rollups(store);
    push(rt, store, remote)
}

/// Upload to the bucket (if any) what the cache holds and has not seen there.
fn push(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    remote: Option<&Remote>,
) -> anyhow::Result<()> {
    let Some(remote) = remote else {
        return Ok(());
    };
    let t = rt.block_on(remote.push(store))?;
    eprintln!(
        "gpurent: {}: {} objects pushed, {} already stored by another writer",
        remote.url(),
        t.copied,
        t.already_there
    );
    Ok(())
}

/// Rollups are derived data: failing to store them is a warning, never a failed write
/// (the report computes a missing one).
fn refresh_rollups(store: &Store) {
    match analysis::rollup::refresh(store) {
        Ok(r) => tracing::info!(
            "rollups: {} weeks written, {} current",
            r.written,
            r.current
        ),
        Err(e) => tracing::warn!("rollups not updated: {e}"),
    }
}

/// `renormalise` (it rewrites stored files) and `daemon` work on a local store only.
fn local_only(loc: Location, command: &str) -> anyhow::Result<PathBuf> {
    match loc {
        Location::Local(p) => Ok(p),
        Location::S3 { bucket, prefix } => anyhow::bail!(
            "{command} works on a local store only, not s3://{bucket}/{prefix} (README, \"The store on S3\")"
        ),
    }
}

/// Print to stdout; a closed pipe (`| head`) ends the output quietly instead of a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The backfill progress bar: one line per file or version.
fn progress_line(o: &backfill::FileOutcome, i: usize, n: usize) {
    let done = i * 30 / n.max(1);
    let bar = format!("[{}{}] {i}/{n}", "#".repeat(done), "-".repeat(30 - done));
    let what = match (&o.error, o.counts) {
        (Some(e), _) => format!("FAILED: {e}"),
        _ if o.missing => "no such version, skipped".into(),
        (None, Some((s, r, fx))) => {
            format!(
                "{s} offers stored, {r} rejected{}{}",
                if o.rejected.is_empty() {
                    String::new()
                } else {
                    let parts: Vec<String> =
                        o.rejected.iter().map(|(r, k)| format!("{r} {k}")).collect();
                    format!(" ({})", parts.join(", "))
                },
                if fx > 0 {
                    format!(", {fx} FX rates")
                } else {
                    String::new()
                }
            ) + &healed_note(&o.healed)
        }
        (None, None) => "already imported, nothing added".into(),
    };
    eprintln!("{bar} {}: {what}", o.path.display());
}

/// ", N earlier runs healed (M offers)" when new FX rates healed stored runs.
fn healed_note(h: &backfill::Healed) -> String {
    let mut s = String::new();
    if h.runs > 0 {
        s = format!(
            ", {} earlier runs re-normalised with these rates ({} offers recovered)",
            h.runs, h.offers
        );
    }
    if h.compacted > 0 {
        s.push_str(&format!(
            ", {} compacted runs still wait for them (run `gpurent renormalise`)",
            h.compacted
        ));
    }
    s
}

/// Unknown providers and regions a backfill rejected, loudly, after the bar.
fn print_unplaced(outcomes: &[backfill::FileOutcome]) {
    for reason in ["unknown_provider", "unknown_region"] {
        let n: usize = outcomes
            .iter()
            .flat_map(|o| o.rejected.iter())
            .filter(|r| r.0 == reason)
            .map(|r| r.1)
            .sum();
        if n > 0 {
            println!("backfill: WARNING: {n} offers rejected as {reason} (not stored as bloc OTHER); `gpurent unknown` lists them");
        }
    }
}

/// `backfill --format gpuhunt_catalog --from --to`: one catalogue version per day.
fn backfill_versions(
    rt: &tokio::runtime::Runtime,
    spec: &backfill::VersionSpec,
    store: &Store,
    tables: &Tables,
) -> anyhow::Result<u8> {
    anyhow::ensure!(
        spec.format == "gpuhunt_catalog",
        "--from/--to fetch dated catalogue versions: use them with --format gpuhunt_catalog"
    );
    let outcomes = rt.block_on(backfill::backfill_versions(
        spec,
        store,
        tables,
        &fetch::client(),
        progress_line,
    ))?;
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let missing = outcomes.iter().filter(|o| o.missing).count();
    let stored: usize = outcomes.iter().filter_map(|o| o.counts).map(|c| c.0).sum();
    print_unplaced(&outcomes);
    println!(
        "backfill: {} days, {stored} offers stored, {missing} versions missing, {failed} failed",
        outcomes.len()
    );
    let rec = BackfillVersionsRecord {
        days: outcomes.len(),
        stored,
        missing,
        failed,
    };
    store.write_run_record(Utc::now(), &rec)?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// The tables: from `--tables DIR` or GPURENT_TABLES when given, else embedded.
fn load_tables(dir: Option<PathBuf>) -> anyhow::Result<&'static Tables> {
    match dir.or_else(|| std::env::var_os("GPURENT_TABLES").map(PathBuf::from)) {
        // Loaded once per process and kept for its lifetime, like the embedded copy.
        Some(dir) => Ok(Box::leak(Box::new(Tables::load_dir(&dir)?))),
        None => Ok(Tables::embedded()),
    }
}

/// The alert rules from `--alerts FILE` or GPURENT_ALERTS, if given.
fn load_alerts(file: Option<PathBuf>) -> anyhow::Result<Option<alerts::Config>> {
    match file.or_else(|| std::env::var_os("GPURENT_ALERTS").map(PathBuf::from)) {
        Some(f) => Ok(Some(alerts::Config::load(&f)?)),
        None => Ok(None),
    }
}

/// Evaluate the alert rules for `week`, record and deliver the new firings (on an
/// `s3://` store, those this machine claims first; the records then pushed), print them.
fn run_alerts(
    rt: &tokio::runtime::Runtime,
    cfg: &alerts::Config,
    store: &Store,
    remote: Option<&Remote>,
    week: IsoWeek,
    now: DateTime<Utc>,
    analysed: Option<analysis::WeekAnalysis>,
) -> anyhow::Result<()> {
    let done = rt.block_on(alerts::run(store, cfg, week, now, analysed, remote))?;
    for f in done.firings.iter().chain(&done.redelivered) {
        println!("alert {}: {} [{}]", f.rule, f.message, f.delivery);
    }
    let t = done.pushed;
    if let (Some(remote), true) = (remote, t.copied + t.already_there > 0) {
        eprintln!(
            "gpurent: {}: {} alert records pushed, {} already stored by another writer",
            remote.url(),
            t.copied,
            t.already_there
        );
    }
    Ok(())
}

/// What every subcommand may use besides its own arguments.
struct Ctx {
    /// `--lock-wait`, seconds.
    wait: u64,
    tables: &'static Tables,
    alerts: Option<alerts::Config>,
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let ctx = Ctx {
        wait: cli.lock_wait,
        tables: load_tables(cli.tables)?,
        alerts: load_alerts(cli.alerts)?,
    };
    match cli.command {
        Command::Ingest { feeds, store, at } => cmd_ingest(ctx, feeds, store, at),
        Command::Report(args) => cmd_report(ctx, args),
        Command::Backfill(args) => cmd_backfill(ctx, args),
        Command::Crosscheck {
            store,
            tolerance,
            from,
            to,
        } => cmd_crosscheck(store, tolerance, from, to),
        Command::Compact { store, before } => cmd_compact(ctx, store, before),
        Command::Renormalise { store } => cmd_renormalise(ctx, store),
        Command::Unknown { store } => cmd_unknown(store),
        Command::Daemon {
            feeds,
            store,
            reports,
        } => cmd_daemon(ctx, feeds, store, reports),
        Command::Prices { store, format } => cmd_prices(store, format),
        Command::History(args) => cmd_history(ctx, args),
        Command::Demo { out, store } => cmd_demo(out, store),
    }
}

/// `gpurent ingest`.
fn cmd_ingest(
    ctx: Ctx,
    feeds: PathBuf,
    store: Location,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<u8> {
    let at = at.unwrap_or_else(Utc::now);
    let (feeds, broken) = feed::load_dir(&feeds)?;
    let rt = runtime()?;
    let (store, _lock, remote) = writer(store, ctx.wait, &rt)?;
    let report = rt.block_on(async {
        let client = fetch::client();
        ingest::run(feeds, broken, &store, &client, at, ctx.tables).await
    });
    for o in &report.outcomes {
        emit(&format!("{}\n", o.line()));
    }
    if report.healed.runs > 0 {
        println!(
            "fx: {} earlier runs re-normalised with the new rates, {} offers recovered",
            report.healed.runs, report.healed.offers
        );
    }
    store.write_run_record(Utc::now(), &report.record(at))?;
    // Alerts before the push, on the cache as it stands after this hour; on a bucket
    // each firing is claimed there before its delivery and its record pushed after
    // it, by `alerts::run`. The rollups first, as the analysis reads them.
    refresh_rollups(&store);
    let alerted = match &ctx.alerts {
        Some(cfg) => run_alerts(
            &rt,
            cfg,
            &store,
            remote.as_ref(),
            IsoWeek::of(at.date_naive()),
            at,
            None,
        ),
        None => Ok(()),
    };
    push(&rt, &store, remote.as_ref())?;
    alerted?;
    Ok(report.exit_code() as u8)
}

/// `gpurent report`.
fn cmd_report(ctx: Ctx, args: ReportArgs) -> anyhow::Result<u8> {
    let ReportArgs {
        store,
        out,
        week,
        implausible_low,
        implausible_high,
        thin,
    } = args;
    anyhow::ensure!(
        implausible_low > 0.0 && implausible_high > implausible_low,
        "--implausible-low must be positive and below --implausible-high"
    );
    let cfg = analysis::Config {
        implausible_low,
        implausible_high,
        thin_cell: thin,
    };
    let rt = runtime()?;
    let (store, remote) = reader_of(store, &rt)?;
    let week = match week {
        Some(w) => IsoWeek::parse(&w)?,
        None => analysis::default_week(&store)?
            .with_context(|| format!("no offers in store {}", store.root().display()))?,
    };
    // One analysis serves the alert rules and the report.
    let a = analysis::analyse_week_with(&store, week, &cfg)?;
    if let Some(rules) = &ctx.alerts {
        // Before the report is written, so this week's firings appear in it.
        run_alerts(
            &rt,
            rules,
            &store,
            remote.as_ref(),
            week,
            Utc::now(),
            Some(a.clone()),
        )?;
    }
    let dir = report::write_analysed(&store, &out, &a, Utc::now())?;
    println!("{}", dir.join("index.html").display());
    Ok(0)
}

/// `gpurent backfill`.
fn cmd_backfill(ctx: Ctx, args: BackfillArgs) -> anyhow::Result<u8> {
    let BackfillArgs {
        format,
        feed,
        provider,
        store,
        at,
        from,
        to,
        url,
        paths,
    } = args;
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        anyhow::bail!("{} does not exist", missing.display());
    }
    let rt = runtime()?;
    let (store, _lock, remote) = writer(store, ctx.wait, &rt)?;
    if let (Some(from), Some(to)) = (from, to) {
        let spec = backfill::VersionSpec {
            format: format.unwrap_or_default(),
            url,
            from,
            to,
        };
        let code = backfill_versions(&rt, &spec, &store, ctx.tables)?;
        finish_write(&rt, &store, remote.as_ref())?;
        return Ok(code);
    }
    let spec = backfill::Spec {
        format,
        feed_file: feed,
        provider,
        at,
    };
    let outcomes = rt.block_on(backfill::backfill(
        &spec,
        &paths,
        &store,
        ctx.tables,
        progress_line,
    ))?;
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let stored: usize = outcomes.iter().filter_map(|o| o.counts).map(|c| c.0).sum();
    print_unplaced(&outcomes);
    println!(
        "backfill: {} files, {stored} offers stored, {failed} failed",
        outcomes.len()
    );
    let rec = BackfillRecord {
        files: outcomes.len(),
        stored,
        failed,
    };
    store.write_run_record(Utc::now(), &rec)?;
    finish_write(&rt, &store, remote.as_ref())?;
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `gpurent crosscheck`.
fn cmd_crosscheck(
    store: Location,
    tolerance: f64,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> anyhow::Result<u8> {
    anyhow::ensure!(tolerance >= 0.0, "--tolerance must not be negative");
    let rows = gpurent::analysis::peers::crosscheck(&reader(store)?, from, to, tolerance)?;
    println!("{}", gpurent::analysis::peers::Disagreement::header());
    for r in &rows {
        println!("{}", r.line());
    }
    eprintln!(
        "crosscheck: {} cells where sources differ by more than {:.1}%",
        rows.len(),
        tolerance * 100.0
    );
    Ok(0)
}

/// `gpurent compact`.
fn cmd_compact(ctx: Ctx, store: Location, before: Option<chrono::NaiveDate>) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let (store, _lock, remote) = writer(store, ctx.wait, &rt)?;
    let before = before.unwrap_or_else(|| Utc::now().date_naive());
    let done = store.compact_before(before, remote.is_none())?;
    for line in done.lines() {
        println!("compact: {line}");
    }
    for line in done.failure_lines() {
        eprintln!("gpurent: compact: {line}");
    }
    finish_write(&rt, &store, remote.as_ref())?;
    if let Some(r) = &remote {
        let n = rt.block_on(r.delete_covered())?;
        eprintln!(
            "gpurent: {}: {n} hourly objects deleted, their hours now in day objects",
            r.url()
        );
    }
    Ok(u8::from(done.failures() > 0))
}

/// `gpurent renormalise`.
fn cmd_renormalise(ctx: Ctx, store: Location) -> anyhow::Result<u8> {
    let store = Store::open(local_only(store, "renormalise")?);
    let _lock = lock(&store, ctx.wait)?;
    let r = backfill::renormalise(&store, ctx.tables)?;
    refresh_rollups(&store);
    for f in &r.failures {
        emit(&format!("FAILED: {f}\n"));
    }
    emit(&format!(
            "renormalise: {} runs rebuilt, {} offers stored, {} failed; {} runs kept unchanged ({} offers)\n",
            r.rebuilt,
            r.stored,
            r.failures.len(),
            r.kept_runs,
            r.kept_offers
        ));
    Ok(if r.failures.is_empty() { 0 } else { 1 })
}

/// `gpurent unknown`.
fn cmd_unknown(store: Location) -> anyhow::Result<u8> {
    use std::io::Write as _;
    let names = analysis::unknown_names(&reader(store)?)?;
    let mut out = std::io::stdout().lock();
    // A closed pipe (e.g. `| head`) ends the listing quietly, as in ripgrep.
    let _ = (|| -> std::io::Result<()> {
        writeln!(
            out,
            "{:>8}  {:<22}  {:<24}  name",
            "count", "reason", "feed"
        )?;
        for n in &names {
            writeln!(
                out,
                "{:>8}  {:<22}  {:<24}  {}",
                n.count, n.reason, n.feed, n.name
            )?;
        }
        Ok(())
    })();
    Ok(0)
}

/// `gpurent daemon`.
fn cmd_daemon(ctx: Ctx, feeds: PathBuf, store: Location, reports: PathBuf) -> anyhow::Result<u8> {
    let store = local_only(store, "daemon")?;
    use gpurent::run::schedule;
    let rt = runtime()?;
    // A clean stop is success; failed feeds are in the log and the run records.
    let _stats = rt.block_on(async {
        let shutdown = schedule::shutdown_on_signals();
        let daemon = schedule::Daemon {
            feeds,
            store: Store::open(store),
            reports,
            client: fetch::client(),
            tables: ctx.tables,
            log: std::sync::Arc::new(|line: &str| emit(&format!("{line}\n"))),
            alerts: ctx.alerts,
        };
        schedule::run(&daemon, &schedule::RealClock, shutdown).await
    })?;
    Ok(0)
}

/// `gpurent prices`.
fn cmd_prices(store: Location, format: Format) -> anyhow::Result<u8> {
    let table = gpurent::analysis::query::prices(&reader(store)?)?;
    if table.rows.is_empty() {
        eprintln!("gpurent: no offers in the store");
        return Ok(NO_ROWS);
    }
    emit(&table.render(format.query()));
    Ok(0)
}

/// `gpurent history`.
fn cmd_history(ctx: Ctx, args: HistoryArgs) -> anyhow::Result<u8> {
    let HistoryArgs {
        store,
        model,
        bloc,
        country,
        class,
        every,
        from,
        to,
        provider,
        segment,
        by_provider,
        format,
    } = args;
    if let (Some(f), Some(t)) = (from, to) {
        anyhow::ensure!(f <= t, "--from {f} is later than --to {t}");
    }
    let model = resolve_model(ctx.tables, &model)?;
    let store = reader(store)?;
    let q = gpurent::analysis::query::HistoryQuery {
        provider,
        segment,
        by_provider,
        model,
        bloc: bloc.map(|b| b.to_possible_value().expect("named").get_name().to_string()),
        country,
        class: class.map(|c| c.to_possible_value().expect("named").get_name().to_string()),
        every: match every {
            Every::Hour => gpurent::analysis::query::Every::Hour,
            Every::Day => gpurent::analysis::query::Every::Day,
            Every::Week => gpurent::analysis::query::Every::Week,
        },
        from,
        to,
    };
    let table = gpurent::analysis::query::history(&store, &q)?;
    if table.rows.is_empty() {
        eprintln!("gpurent: {}", why_no_rows(&store, &q)?);
        return Ok(NO_ROWS);
    }
    emit(&table.render(format.query()));
    Ok(0)
}

/// `gpurent demo`.
fn cmd_demo(out: PathBuf, store: Option<Location>) -> anyhow::Result<u8> {
    let remote = match store {
        None => None,
        Some(Location::Local(_)) => {
            anyhow::bail!("demo writes its store under --out; --store takes s3://bucket/prefix")
        }
        Some(Location::S3 { bucket, prefix }) => Some(Remote::open(&bucket, &prefix)?),
    };
    let started = std::time::Instant::now();
    let rt = runtime()?;
    if let Some(r) = &remote {
        rt.block_on(r.probe())?;
    }
    let now = Utc::now();
    let progress = |line: &str| eprintln!("{line}");
    let res = rt.block_on(demo::run(&out, now, Some(&progress)))?;
    for w in &res.weeks {
        println!("{}", w.join("index.html").display());
    }
    println!(
            "demo: SIMULATED data; {} hourly ingests, {} with a failed feed; store {}; reports {}; wall time {:.1} s",
            demo::HOURS,
            res.failed_runs,
            res.store.display(),
            res.reports.join("index.html").display(),
            started.elapsed().as_secs_f64()
        );
    if let Some(r) = &remote {
        demo_through_bucket(&rt, r, &out, &res, now)?;
    }
    Ok(if res.failed_runs > 0 { 1 } else { 0 })
}

/// `demo --store s3://...`: push the demo's store, read it back through a fresh cache,
/// and write its last week's report again; its rows must equal the local report's.
fn demo_through_bucket(
    rt: &tokio::runtime::Runtime,
    remote: &Remote,
    out: &std::path::Path,
    res: &demo::DemoResult,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    let pushed = rt.block_on(remote.push(&Store::open(&res.store)))?;
    let push_s = t.elapsed().as_secs_f64();
    let last = res.weeks.last().context("the demo wrote no week")?;
    let name = last.file_name().unwrap_or_default().to_string_lossy();
    let week = IsoWeek::parse(&name)?;
    let t = std::time::Instant::now();
    let cache = Store::open(out.join("s3-cache"));
    rt.block_on(remote.pull(&cache))?;
    let dir = report::write_week(&cache, &out.join("reports-from-s3"), week, now)?;
    let read_s = t.elapsed().as_secs_f64();
    let rows = |d: &std::path::Path| -> anyhow::Result<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("summary.json"))?)?;
        Ok(v["rows"].clone())
    };
    anyhow::ensure!(
        rows(&dir)? == rows(last)?,
        "{}: the report read back from the bucket differs from the local one",
        remote.url()
    );
    println!(
        "demo: {} objects pushed to {} in {push_s:.1} s; {} pulled and reported from the bucket in {read_s:.1} s, rows equal to the local report's",
        pushed.copied,
        remote.url(),
        week.label()
    );
    Ok(())
}
