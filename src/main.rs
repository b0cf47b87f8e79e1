//! The `gpurent` command: thin glue over the library. Errors become `anyhow` reports
//! here and nowhere else. Exit status: 0 success, 1 some feeds failed (the others
//! were stored), 2 a fatal error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use gpurent::analysis;
use gpurent::ingest::{self, backfill, feed, fetch};
use gpurent::run::demo;
use gpurent::week::IsoWeek;
use gpurent::{report, store::Store, tables::Tables};

#[derive(Parser)]
#[command(
    name = "gpurent",
    version,
    about = "GPU rental prices, China vs US: ingest, history, charts, weekly report"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Seconds a writer (ingest, backfill, compact, renormalise) waits for another
    /// writer's store lock before it gives up (exit 2).
    #[arg(long, global = true, default_value_t = gpurent::store::DEFAULT_LOCK_WAIT_S)]
    lock_wait: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch every enabled feed once, normalise and append to the store.
    Ingest {
        #[arg(long, default_value = "feeds")]
        feeds: PathBuf,
        #[arg(long, default_value = "data")]
        store: PathBuf,
        /// Observation time (RFC 3339); default: now.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Write the weekly report of one ISO week (default: the last complete week).
    Report {
        #[arg(long, default_value = "data")]
        store: PathBuf,
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
    },
    /// Import dated snapshot files (a `YYYY-MM-DD` in the path gives the date).
    Backfill {
        /// The adapter, e.g. skypilot_csv.
        #[arg(long, required_unless_present = "feed")]
        format: Option<String>,
        /// A feed file whose keys describe the files (its url is replaced by each file).
        #[arg(long)]
        feed: Option<PathBuf>,
        /// Provider (default: the feed file's, else the folder above the dated one).
        #[arg(long)]
        provider: Option<String>,
        #[arg(long, default_value = "data")]
        store: PathBuf,
        /// Observation time for files whose path holds no date (RFC 3339).
        #[arg(long)]
        at: Option<DateTime<Utc>>,
        /// With --format gpuhunt_catalog: the first day whose version YYYYMMDD to fetch.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// The last day whose version to fetch.
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        /// With --from/--to: the catalogue base URL.
        #[arg(long, default_value = gpurent::ingest::adapters::gpuhunt_catalog::DEFAULT_URL)]
        url: String,
        #[arg(required_unless_present = "from")]
        paths: Vec<PathBuf>,
    },
    /// List provider x model x class x day cells where two sources' median prices
    /// (USD per GPU-hour) differ by more than the tolerance.
    Crosscheck {
        #[arg(long, default_value = "data")]
        store: PathBuf,
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
    /// Merge each feed's hourly files into one file per day for dates before --before
    /// (default: yesterday), so a long history is a few large files, not many small ones.
    Compact {
        #[arg(long, default_value = "data")]
        store: PathBuf,
        /// First date NOT to compact, YYYY-MM-DD (UTC); default: today.
        #[arg(long)]
        before: Option<chrono::NaiveDate>,
    },
    /// Rebuild the normalised offers from the kept raw payloads (after the tables change).
    Renormalise {
        #[arg(long, default_value = "data")]
        store: PathBuf,
    },
    /// List raw GPU names and instance types that did not resolve, most frequent first.
    Unknown {
        #[arg(long, default_value = "data")]
        store: PathBuf,
    },
    /// Run on a schedule until SIGTERM or Ctrl-C: ingest at the top of each hour (per
    /// feed `interval_hours`), the previous week's report every Monday 00:30 UTC, and
    /// at start the report of every complete week that has offers but no report.
    Daemon {
        #[arg(long, default_value = "feeds")]
        feeds: PathBuf,
        #[arg(long, default_value = "data")]
        store: PathBuf,
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// The latest price in force per provider, model, bloc and class (USD per
    /// GPU-hour), with its observation time and age at the store's latest observation.
    Prices {
        #[arg(long, default_value = "data")]
        store: PathBuf,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: gpurent::analysis::query::Format,
    },
    /// One model's median, p25, p75 (USD per GPU-hour) and offers per period.
    History {
        #[arg(long, default_value = "data")]
        store: PathBuf,
        /// Canonical model id, e.g. H100-SXM-80GB (see `gpurent prices`).
        #[arg(long)]
        model: String,
        /// CN, US or OTHER (default: all).
        #[arg(long)]
        bloc: Option<String>,
        /// ISO country code, e.g. HK (default: all).
        #[arg(long)]
        country: Option<String>,
        /// on_demand, spot or reserved (default: all).
        #[arg(long)]
        class: Option<String>,
        /// 1h, 1d or 1w (ISO weeks).
        #[arg(long, default_value = "1d")]
        every: gpurent::analysis::query::Every,
        /// First observation date, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last observation date, YYYY-MM-DD (UTC).
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// One provider only, e.g. aws.
        #[arg(long)]
        provider: Option<String>,
        /// One segment only: hyperscaler, gpu_cloud, marketplace or unknown.
        #[arg(long)]
        segment: Option<String>,
        /// A row per provider (adds a provider column).
        #[arg(long)]
        by_provider: bool,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: gpurent::analysis::query::Format,
    },
    /// The embedded default: simulated providers on 127.0.0.1, four weeks of hourly
    /// ingests over HTTP, then the weekly reports. No network, no keys.
    Demo {
        #[arg(long, default_value = "demo-simulated")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
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
            eprintln!("gpurent: error: {e:#}");
            ExitCode::from(2)
        }
    }
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
fn backfill_versions(spec: &backfill::VersionSpec, store: &Store) -> anyhow::Result<u8> {
    anyhow::ensure!(
        spec.format == "gpuhunt_catalog",
        "--from/--to fetch dated catalogue versions: use them with --format gpuhunt_catalog"
    );
    let rt = runtime()?;
    let outcomes = rt.block_on(backfill::backfill_versions(
        spec,
        store,
        Tables::embedded(),
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
    store.write_run_record(Utc::now(), "backfill", &serde_json::json!({"kind": "backfill", "days": outcomes.len(), "stored": stored, "missing": missing, "failed": failed}))?;
    Ok(if failed > 0 { 1 } else { 0 })
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let wait = cli.lock_wait;
    match cli.command {
        Command::Ingest { feeds, store, at } => {
            let at = at.unwrap_or_else(Utc::now);
            let (feeds, broken) = feed::load_dir(&feeds)?;
            let store = Store::open(store);
            let _lock = lock(&store, wait)?;
            let rt = runtime()?;
            let report = rt.block_on(async {
                let client = fetch::client();
                ingest::run(feeds, broken, &store, &client, at, Tables::embedded()).await
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
            store.write_run_record(Utc::now(), "ingest", &report.to_json(at))?;
            Ok(report.exit_code() as u8)
        }
        Command::Report {
            store,
            out,
            week,
            implausible_low,
            implausible_high,
            thin,
        } => {
            anyhow::ensure!(
                implausible_low > 0.0 && implausible_high > implausible_low,
                "--implausible-low must be positive and below --implausible-high"
            );
            let cfg = analysis::Config {
                implausible_low,
                implausible_high,
                thin_cell: thin,
            };
            let store = Store::open(store);
            let week = match week {
                Some(w) => IsoWeek::parse(&w)?,
                None => analysis::default_week(&store)?
                    .with_context(|| format!("no offers in store {}", store.root().display()))?,
            };
            let dir = report::write_week_with(&store, &out, week, Utc::now(), &cfg)?;
            println!("{}", dir.join("index.html").display());
            Ok(0)
        }
        Command::Backfill {
            format,
            feed,
            provider,
            store,
            at,
            from,
            to,
            url,
            paths,
        } => {
            let store = Store::open(store);
            let _lock = lock(&store, wait)?;
            if let (Some(from), Some(to)) = (from, to) {
                let spec = backfill::VersionSpec {
                    format: format.unwrap_or_default(),
                    url,
                    from,
                    to,
                };
                return backfill_versions(&spec, &store);
            }
            let spec = backfill::Spec {
                format,
                feed_file: feed,
                provider,
                at,
            };
            let rt = runtime()?;
            let outcomes = rt.block_on(backfill::backfill(
                &spec,
                &paths,
                &store,
                Tables::embedded(),
                progress_line,
            ))?;
            let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
            let stored: usize = outcomes.iter().filter_map(|o| o.counts).map(|c| c.0).sum();
            print_unplaced(&outcomes);
            println!(
                "backfill: {} files, {stored} offers stored, {failed} failed",
                outcomes.len()
            );
            store.write_run_record(Utc::now(), "backfill", &serde_json::json!({"kind": "backfill", "files": outcomes.len(), "stored": stored, "failed": failed}))?;
            Ok(if failed > 0 { 1 } else { 0 })
        }
        Command::Crosscheck {
            store,
            tolerance,
            from,
            to,
        } => {
            anyhow::ensure!(tolerance >= 0.0, "--tolerance must not be negative");
            let rows =
                gpurent::analysis::peers::crosscheck(&Store::open(store), from, to, tolerance)?;
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
        Command::Compact { store, before } => {
            let store = Store::open(store);
            let _lock = lock(&store, wait)?;
            let before = before.unwrap_or_else(|| Utc::now().date_naive());
            let (mut files_before, mut files_after, mut days) = (0, 0, 0);
            for date in store.offer_dates()?.into_iter().filter(|d| *d < before) {
                let (b, a) = store.compact(date)?;
                if a < b {
                    days += 1;
                }
                files_before += b;
                files_after += a;
            }
            println!(
                "compact: {days} days compacted, {files_before} files before, {files_after} after"
            );
            Ok(0)
        }
        Command::Renormalise { store } => {
            let store = Store::open(store);
            let _lock = lock(&store, wait)?;
            let r = backfill::renormalise(&store, Tables::embedded())?;
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
        Command::Unknown { store } => {
            use std::io::Write as _;
            let names = analysis::unknown_names(&Store::open(store))?;
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
        Command::Daemon {
            feeds,
            store,
            reports,
        } => {
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
                    tables: Tables::embedded(),
                    log: std::sync::Arc::new(|line: &str| emit(&format!("{line}\n"))),
                };
                schedule::run(&daemon, &schedule::RealClock, shutdown).await
            })?;
            Ok(0)
        }
        Command::Prices { store, format } => {
            let table = gpurent::analysis::query::prices(&Store::open(store))?;
            if table.rows.is_empty() {
                eprintln!("gpurent: no offers in the store");
            }
            emit(&table.render(format));
            Ok(0)
        }
        Command::History {
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
        } => {
            let store = Store::open(store);
            let q = gpurent::analysis::query::HistoryQuery {
                provider,
                segment,
                by_provider,
                model,
                bloc,
                country,
                class,
                every,
                from,
                to,
            };
            let table = gpurent::analysis::query::history(&store, &q)?;
            if table.rows.is_empty() {
                let models = gpurent::analysis::query::models(&store)?;
                eprintln!(
                    "gpurent: no offers of {} match (models in the store: {})",
                    q.model,
                    models.join(", ")
                );
            }
            emit(&table.render(format));
            Ok(0)
        }
        Command::Demo { out } => {
            let started = std::time::Instant::now();
            let rt = runtime()?;
            let res = rt.block_on(demo::run(&out, Utc::now(), true))?;
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
            Ok(if res.failed_runs > 0 { 1 } else { 0 })
        }
    }
}
