//! gpurent: hourly GPU rental prices in China and the United States.
//!
//! See `ARCHITECTURE.md` for the code map and each module's invariants.

pub mod adapters;
pub mod error;
pub mod feed;
pub mod fetch;
pub mod ingest;
pub mod model;
pub mod normalise;
pub mod store;
pub mod tables;
pub mod analysis;
pub mod chart;
pub mod fsutil;
pub mod report;
pub mod demo;
pub mod sim;
