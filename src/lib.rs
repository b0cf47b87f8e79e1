//! gpurent: hourly GPU rental prices in China and the United States.
//!
//! The modules follow the data flow, and imports only point down it:
//! `ingest` (feed files, fetch, adapters, backfill) → `normalise` → `store` →
//! `analysis` (statistics, in-force offers, queries) → `report` (charts, pages),
//! with `run` (daemon, demo, simulated servers) on top and `model`, `error`,
//! `tables`, `week`, `process` at the bottom. See `ARCHITECTURE.md` for the code map
//! and each module's invariants.

pub mod analysis;
pub mod error;
pub mod ingest;
pub mod model;
pub mod normalise;
pub mod offers;
pub mod process;
pub mod report;
pub mod run;
pub mod store;
pub mod tables;
pub mod week;
