//! The `gpurent` command: thin glue over the library. Errors become `anyhow` reports
//! here and nowhere else. Exit status: 0 success, 1 some feeds failed (the others
//! were stored), 2 a fatal error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use gpurent::analysis::{self, IsoWeek};
use gpurent::{demo, feed, fetch, ingest, report, store::Store, tables::Tables};

#[derive(Parser)]
#[command(name = "gpurent", version, about = "GPU rental prices, China vs US: ingest, history, charts, weekly report")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
            tracing_subscriber::EnvFilter::try_from_env("GPURENT_LOG").unwrap_or_else(|_| "warn".into()),
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

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Ingest { feeds, store, at } => {
            let at = at.unwrap_or_else(Utc::now);
            let (feeds, broken) = feed::load_dir(&feeds)?;
            let store = Store::open(store);
            let _lock = store.lock()?;
            let rt = runtime()?;
            let report = rt.block_on(async {
                let client = fetch::client();
                ingest::run(feeds, broken, &store, &client, at, Tables::embedded()).await
            });
            for o in &report.outcomes {
                println!("{}", o.line());
            }
            store.write_run_record(Utc::now(), "ingest", &report.to_json(at))?;
            Ok(report.exit_code() as u8)
        }
        Command::Report { store, out, week } => {
            let store = Store::open(store);
            let week = match week {
                Some(w) => IsoWeek::parse(&w)?,
                None => analysis::default_week(&store)?
                    .with_context(|| format!("no offers in store {}", store.root().display()))?,
            };
            let dir = report::write_week(&store, &out, week, Utc::now())?;
            println!("{}", dir.join("index.html").display());
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
