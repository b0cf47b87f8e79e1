//! The timed operations: `gpurent report`, `history` and `prices` as child processes
//! of the built binary, each beside the same figures computed by DuckDB
//! (`scripts/bench-duckdb.py`) on the same files, runs alternating between the two.
//!
//! Invariants: every figure is a median over the runs that succeeded; a gpurent run
//! that fails (an exit status, a signal, the RSS cap) is recorded and not repeated;
//! the environment variables that would change what gpurent computes (alert rules,
//! another tables directory) are removed from the children.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::child::{self, Run};
use crate::compare;
use crate::synth::{Scale, Written};

/// What every measurement needs.
pub struct Config {
    pub bin: PathBuf,
    /// The engines venv's Python, when it has DuckDB.
    pub python: Option<PathBuf>,
    pub runs: usize,
    pub cap_mib: u64,
    /// Stores, reports and payloads.
    pub work: PathBuf,
    /// The model `history` is asked for.
    pub model: String,
}

impl Config {
    /// The binary with the environment of a plain user run.
    pub fn gpurent(&self) -> Command {
        let mut c = Command::new(&self.bin);
        for k in [
            "GPURENT_ALERTS",
            "GPURENT_TABLES",
            "GPURENT_LOG",
            "POLARS_VERBOSE",
        ] {
            c.env_remove(k);
        }
        c
    }

    fn duckdb(&self, store: &Path, args: &[&str]) -> Option<Command> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-duckdb.py");
        let mut c = Command::new(self.python.as_ref()?);
        c.arg(script).arg(store).args(args);
        Some(c)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Report,
    History,
    Prices,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Report, Op::History, Op::Prices];

    pub fn name(self, cfg: &Config, week: &str) -> String {
        match self {
            Op::Report => format!("report --week {week}"),
            Op::History => format!("history --model {}", cfg.model),
            Op::Prices => "prices".into(),
        }
    }
}

/// The runs of one side, and what they say.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub runs: Vec<Run>,
}

impl Side {
    fn ok_runs(&self) -> Vec<&Run> {
        self.runs.iter().filter(|r| r.ok()).collect()
    }

    /// Median wall seconds over the runs that succeeded.
    pub fn wall_s(&self) -> Option<f64> {
        median(self.ok_runs().iter().map(|r| r.wall_s).collect())
    }

    /// Median peak RSS (MiB) over the runs that succeeded.
    pub fn rss_mib(&self) -> Option<f64> {
        median(self.ok_runs().iter().map(|r| r.peak_rss_mib).collect())
    }

    pub fn failure(&self) -> Option<&Run> {
        self.runs.iter().find(|r| !r.ok())
    }

    fn last_ok(&self) -> Option<&Run> {
        self.runs.iter().rev().find(|r| r.ok())
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// One row of the table.
pub struct Measured {
    pub scale: Scale,
    pub store: Written,
    pub op: String,
    pub gpurent: Side,
    pub duckdb: Option<Side>,
    pub agree: String,
}

/// Run `op` on `store`, alternating gpurent and DuckDB, and compare their figures.
pub fn bench(cfg: &Config, scale: &Scale, store: &Written, op: Op) -> Measured {
    let week = scale.last_week().label();
    let out = cfg.work.join("reports").join(&scale.label);
    let (mut gp, mut duck) = (
        Side::default(),
        cfg.python.as_ref().map(|_| Side::default()),
    );
    for _ in 0..cfg.runs {
        if gp.failure().is_none() {
            let mut c = gpurent_cmd(cfg, &store.root, op, &week, &out);
            gp.runs.push(child::run(&mut c, cfg.cap_mib));
        }
        if let Some(d) = duck.as_mut().filter(|d| d.failure().is_none()) {
            let args = duck_args(cfg, op, &week);
            let mut c = cfg.duckdb(&store.root, &args).expect("python is set");
            d.runs.push(child::run(&mut c, cfg.cap_mib));
        }
    }
    let agree = agreement(op, &gp, duck.as_ref(), &out.join(&week));
    Measured {
        scale: scale.clone(),
        store: store.clone(),
        op: op.name(cfg, &week),
        gpurent: gp,
        duckdb: duck,
        agree,
    }
}

fn gpurent_cmd(cfg: &Config, store: &Path, op: Op, week: &str, out: &Path) -> Command {
    let mut c = cfg.gpurent();
    c.arg(match op {
        Op::Report => "report",
        Op::History => "history",
        Op::Prices => "prices",
    });
    c.arg("--store").arg(store);
    match op {
        Op::Report => c.arg("--out").arg(out).args(["--week", week]),
        Op::History => c.args(["--model", cfg.model.as_str(), "--format", "json"]),
        Op::Prices => c.args(["--format", "json"]),
    };
    c
}

fn duck_args<'a>(cfg: &'a Config, op: Op, week: &'a str) -> Vec<&'a str> {
    match op {
        Op::Report => vec!["report", week],
        Op::History => vec!["history", cfg.model.as_str()],
        Op::Prices => vec!["prices"],
    }
}

/// Whether the two sides' figures agree, in words for the table.
fn agreement(op: Op, gp: &Side, duck: Option<&Side>, week_dir: &Path) -> String {
    let (Some(g), Some(d)) = (gp.last_ok(), duck.and_then(Side::last_ok)) else {
        return "not compared (a side has no successful run)".into();
    };
    let res = match op {
        Op::Report => std::fs::read(week_dir.join("summary.json"))
            .map_err(|e| format!("summary.json: {e}"))
            .and_then(|b| compare::report(&b, &d.stdout)),
        Op::History => compare::history(&g.stdout, &d.stdout),
        Op::Prices => compare::prices(&g.stdout, &d.stdout),
    };
    res.unwrap_or_else(|e| format!("NO: {e}"))
}
