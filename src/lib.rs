//! gpurent: hourly GPU rental prices in China and the United States.
//!
//! See `ARCHITECTURE.md` for the code map and each module's invariants.

pub mod adapters;
pub mod alerts;
pub mod analysis;
pub mod backfill;
pub mod chart;
pub mod demo;
pub mod error;
pub mod feed;
pub mod fetch;
pub mod fsutil;
pub mod ingest;
pub mod model;
pub mod normalise;
pub mod query;
pub mod report;
pub mod schedule;
pub mod sim;
pub mod store;
pub mod tables;
