//! Ingest throughput from payload bytes: a SIMULATED vast.ai search response (the
//! wire format of `src/ingest/adapters/vastai.rs`) of many offers, recorded in a file
//! that a feed file points at, ingested by `gpurent ingest` as a user runs it: read,
//! parse, normalise, store (Parquet, fsync) and archive the raw payload. Then where
//! that time goes: the same payload through ingest's own library calls in this
//! process, phase by phase ([`crate::phases`]), printed after the ingest line:
//!
//! ```text
//! ingest phases (in-process, ...; CPU-s = process user+sys, median of 3):
//!   parser floor  serde_json skipping the payload (IgnoredAny)   CPU-s  offers/CPU-s  (not in the sum)
//!   SHA-256       sha2 over the payload alone                    CPU-s  offers/CPU-s  (within archive)
//!   gzip          stored blocks into a sink                      CPU-s  offers/CPU-s  (within archive)
//!   parser limit  vastai Adapter::parse alone                    CPU-s  offers/CPU-s  (in memory; parse streams)
//!   parse         parse_checked of the recorded file (stream scan) CPU-s  offers/CPU-s  share of the sum
//!   archive       spool::spool_file (SHA-256 + gzip) + write_raw ...
//!   normalise     normalise_chunks -> DataFrames, by chunk       ...
//!   write         RunWriter (Parquet row groups, zstd, fsync)    ...
//!   numbers only  the same rows without their text columns       CPU-s  offers/CPU-s  (not in the sum)
//!   sum of the phases                                            CPU-s  offers/CPU-s  100 %
//!   deflate       later: compact deflates the blob                CPU-s  offers/CPU-s  (not in the sum)
//!   floors: parser floor + SHA-256 + gzip, and the offers/CPU-s they alone allow
//!   whole `gpurent ingest` (child): CPU-s; the phases' share, and the rest
//! ```
//!
//! The rest is what the child does beyond the phases: process start, reading the
//! file, the runtime, tables, the FX frame, the run record, the rollups, exiting.
//!
//! Invariants: the payload is deterministic (seeded fastrand); each run ingests into
//! a fresh store (a stored hour is never ingested twice); offers per CPU-second count
//! the payload's offers over the child's user + system time; each phase's figure is
//! its median over the passes, and the sum is the sum of those medians.

use std::path::Path;

use gpurent::store::Store;
use polars::prelude::*;

use crate::child;
use crate::ops::{median, Config, Side};
use crate::output::thousands;
use crate::phases::{self, Phases};

/// The observation time of every run, child and in-process.
const AT: &str = "2026-12-01T00:00:00Z";

/// What the ingest runs measured.
pub struct Ingest {
    pub offers: usize,
    pub payload_mib: f64,
    pub rows_stored: u64,
    pub side: Side,
    /// The in-process passes, or why they could not run.
    pub phases: Result<Vec<Phases>, String>,
    /// `gpurent ingest` of a [`SMALL`]-offer payload: what any ingest costs (process,
    /// runtime, tables, polars), so the line can say what each offer adds.
    pub fixed: Result<Side, String>,
}

/// Offers in the payload whose ingest measures the fixed cost.
const SMALL: usize = 1_000;

impl Ingest {
    /// The ingest line, then the phases.
    pub fn lines(&self) -> String {
        let mut s = self.line();
        s.push('\n');
        s.push_str(&self.phase_lines());
        s
    }

    /// The one-line summary of the child runs.
    fn line(&self) -> String {
        if let Some(f) = self.side.failure() {
            return format!(
                "ingest (SIMULATED vast.ai payload, {} offers, {:.1} MiB): FAILED, {}: {}",
                self.offers,
                self.payload_mib,
                f.outcome.text(),
                f.stderr_tail
            );
        }
        let ok: Vec<_> = self.side.runs.iter().collect();
        let cpu = median(ok.iter().map(|r| r.cpu_s).collect()).unwrap_or(f64::NAN);
        let wall = self.side.wall_s().unwrap_or(f64::NAN);
        let rss = self.side.rss_mib().unwrap_or(f64::NAN);
        format!(
            "ingest (SIMULATED vast.ai payload, `gpurent ingest` of a recorded file): {} offers, {:.1} MiB of JSON -> {} rows stored; \
             median of {}: {wall:.2} s wall, {cpu:.2} CPU-s (user+sys) = {:.0} offers per CPU-second ({:.1} MiB/CPU-s); \
             peak RSS {rss:.0} MiB = {:.0} bytes per offer{}",
            self.offers,
            self.payload_mib,
            self.rows_stored,
            ok.len(),
            self.offers as f64 / cpu,
            self.payload_mib / cpu,
            rss * 1024.0 * 1024.0 / self.offers as f64,
            self.fixed_part(cpu, rss),
        )
    }

    /// The fixed cost (the [`SMALL`] ingest) and what each offer adds above it.
    fn fixed_part(&self, cpu: f64, rss: f64) -> String {
        let side = match &self.fixed {
            Ok(side) if side.failure().is_none() => side,
            Ok(side) => return format!("; fixed cost: FAILED: {:?}", side.failure()),
            Err(e) => return format!("; fixed cost: FAILED: {e}"),
        };
        let fixed_cpu = median(side.runs.iter().map(|r| r.cpu_s).collect()).unwrap_or(f64::NAN);
        let fixed_rss = side.rss_mib().unwrap_or(f64::NAN);
        let n = (self.offers - SMALL) as f64;
        format!(
            "; a {SMALL}-offer ingest takes {fixed_cpu:.3} CPU-s and {fixed_rss:.0} MiB, so each further offer \
             adds {:.0} bytes of peak RSS ({:.0} offers per CPU-second above that start)",
            (rss - fixed_rss) * 1024.0 * 1024.0 / n,
            n / (cpu - fixed_cpu),
        )
    }

    /// The breakdown: each phase's median CPU-s, offers per CPU-s and share of the
    /// phases' sum, and the sum beside the child's whole-ingest CPU-s.
    fn phase_lines(&self) -> String {
        let all = match &self.phases {
            Ok(all) if !all.is_empty() => all,
            Ok(_) => return "ingest phases: no pass ran".into(),
            Err(e) => return format!("ingest phases: FAILED: {e}"),
        };
        let med = |f: fn(&Phases) -> f64| median(all.iter().map(f).collect()).unwrap_or(f64::NAN);
        let (parse, archive) = (med(|p| p.parse), med(|p| p.archive));
        let (normalise, write) = (med(|p| p.normalise), med(|p| p.write));
        let sum = parse + archive + normalise + write;
        let n = self.offers as f64;
        let rate = |cpu: f64| thousands((n / cpu).round() as u64);
        let row = |label: &str, what: &str, cpu: f64, note: String| {
            format!(
                "  {label:<13} {what:<52} {cpu:>6.3} CPU-s {:>11} offers/CPU-s  {note}",
                rate(cpu)
            )
        };
        let share = |cpu: f64| format!("{:>3.0} % of the sum", 100.0 * cpu / sum);
        let mut out = vec![
            format!(
                "ingest phases (in-process, the same {} offers through ingest's library calls; \
                 CPU-s = process user+sys, median of {}):",
                thousands(self.offers as u64),
                all.len()
            ),
            row(
                "parser floor",
                "serde_json skipping the payload (IgnoredAny)",
                med(|p| p.floor),
                "(not in the sum)".into(),
            ),
            row(
                "SHA-256",
                "sha2 over the payload alone (the blob's name)",
                med(|p| p.sha),
                "(within archive)".into(),
            ),
            row(
                "gzip",
                "stored blocks into a sink (compact deflates later)",
                med(|p| p.gzip),
                "(within archive)".into(),
            ),
            row(
                "parser limit",
                "vastai Adapter::parse alone",
                med(|p| p.adapter),
                "(in memory; parse streams)".into(),
            ),
            row(
                "parse",
                "parse_checked of the recorded file (stream scan)",
                parse,
                share(parse),
            ),
            row(
                "archive",
                "spool::spool_file (SHA-256 + stored gzip) + write_raw",
                archive,
                share(archive),
            ),
            row(
                "normalise",
                "normalise_chunks -> DataFrames, by chunk",
                normalise,
                share(normalise),
            ),
            row(
                "write",
                "RunWriter (Parquet row groups, zstd, fsync)",
                write,
                share(write),
            ),
            row(
                "numbers only",
                "the same rows' numbers alone through a RunWriter",
                med(|p| p.write_numbers),
                format!(
                    "(not in the sum: write minus this, {:.3} CPU-s, is the text columns)",
                    write - med(|p| p.write_numbers)
                ),
            ),
            row("sum", "of the four phases", sum, "100 %".into()),
            row(
                "deflate",
                "later: compact deflates the blob (deflate_blobs)",
                med(|p| p.deflate),
                "(after ingest, not in the sum)".into(),
            ),
            floors_line(med(|p| p.floor) + med(|p| p.sha) + med(|p| p.gzip), n),
        ];
        let ok = self.side.runs.iter().filter(|r| r.ok());
        if let Some(child) = median(ok.map(|r| r.cpu_s).collect()) {
            out.push(format!(
                "  whole `gpurent ingest` (child, above): {child:.3} CPU-s; the phases are {:.0} % of it, \
                 the rest {:.3} CPU-s (process start, reading the file, runtime, tables, FX, run record, rollups, exit)",
                100.0 * sum / child,
                child - sum
            ));
        }
        out.join("\n")
    }
}

/// Ingest an `n`-offer payload `cfg.runs` times, each into a fresh store.
pub fn bench(cfg: &Config, n: usize) -> Result<Ingest, String> {
    let dir = cfg.work.join("ingest");
    let (feeds, bytes) = phases::prepare(&dir, n).map_err(|e| format!("{}: {e}", dir.display()))?;
    let payload_mib = bytes as f64 / (1024.0 * 1024.0);
    let store = dir.join("store");
    let side = runs(cfg, &feeds, &store)?;
    let rows_stored = rows(&store).unwrap_or(0);
    let small = dir.join("small");
    let fixed = phases::prepare(&small, SMALL)
        .map_err(|e| format!("{}: {e}", small.display()))
        .and_then(|(feeds, _)| runs(cfg, &feeds, &small.join("store")));
    Ok(Ingest {
        offers: n,
        payload_mib,
        rows_stored,
        side,
        phases: passes(cfg, &dir, &feeds, rows_stored),
        fixed,
    })
}

/// `cfg.runs` runs of `gpurent ingest` of `feeds`, each into a fresh `store`; stops
/// at the first that fails.
fn runs(cfg: &Config, feeds: &Path, store: &Path) -> Result<Side, String> {
    let mut side = Side::default();
    for _ in 0..cfg.runs {
        if store.exists() {
            std::fs::remove_dir_all(store).map_err(|e| format!("{}: {e}", store.display()))?;
        }
        let mut c = cfg.gpurent();
        c.arg("ingest")
            .arg("--feeds")
            .arg(feeds)
            .arg("--store")
            .arg(store);
        c.args(["--at", AT]);
        side.runs.push(child::run(&mut c, cfg.cap_mib));
        if side.failure().is_some() {
            break;
        }
    }
    Ok(side)
}

/// `cfg.runs` in-process passes over the same feed, each into a fresh store; each
/// must store the rows the child stored.
fn passes(cfg: &Config, dir: &Path, feeds: &Path, rows: u64) -> Result<Vec<Phases>, String> {
    let at = AT.parse().expect("AT is RFC 3339");
    let store = dir.join("phases-store");
    let mut all = Vec::new();
    for _ in 0..cfg.runs {
        if store.exists() {
            std::fs::remove_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
        }
        let p = phases::run(feeds, &store, at)?;
        if p.rows as u64 != rows {
            return Err(format!(
                "{} rows stored in-process, {rows} by `gpurent ingest`",
                p.rows
            ));
        }
        all.push(p);
    }
    Ok(all)
}

/// What the floors alone allow: skipping the payload, hashing it and gzipping it,
/// with normalising and writing free.
fn floors_line(floors: f64, offers: f64) -> String {
    format!(
        "  floors        parser floor + SHA-256 + gzip: {floors:.3} CPU-s, so at most {} offers/CPU-s \
         while every payload is parsed, hashed and gzipped, even if normalise and write took nothing",
        thousands((offers / floors).round() as u64)
    )
}

fn rows(root: &Path) -> Option<u64> {
    let lf = Store::open(root).scan_offers(None, None).ok()??;
    let df = lf.select([len()]).collect().ok()?;
    df.column("len").ok()?.u32().ok()?.get(0).map(u64::from)
}
