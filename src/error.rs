//! Library error types: every error names the feed, file, URL or field it is about.
//!
//! The library uses `thiserror`; only the binary turns these into `anyhow` reports.

use std::path::PathBuf;

/// An error while loading, fetching or parsing one feed. It always names the feed,
/// so one broken feed can be reported without stopping the others.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed file {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("feed {feed}: cannot read {path}: {source}")]
    ReadPayload {
        feed: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("feed {feed}: GET {url}: {message}")]
    Http {
        feed: String,
        url: String,
        message: String,
    },
    #[error("feed {feed}: {url}: HTTP status {status}")]
    Status {
        feed: String,
        url: String,
        status: u16,
    },
    #[error("feed {feed}: {url}: response larger than the {limit_bytes} byte cap")]
    TooLarge {
        feed: String,
        url: String,
        limit_bytes: usize,
    },
    #[error("feed {feed}: {source_name}: malformed payload: {message}")]
    Parse {
        feed: String,
        source_name: String,
        message: String,
    },
    #[error("feed {feed}: {source_name}: the payload format seems to have changed: {message}")]
    FormatChanged {
        feed: String,
        source_name: String,
        message: String,
    },
    #[error("feed {feed}: normalisation failed: {message}")]
    Normalise { feed: String, message: String },
    #[error("feed {feed}: store: {source}")]
    Store { feed: String, source: StoreError },
}

/// An error from the Parquet store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: parquet: {source}")]
    Polars {
        path: PathBuf,
        source: polars::prelude::PolarsError,
    },
    #[error("store {path} is locked by another gpurent process (pid file says: {holder})")]
    Locked { path: PathBuf, holder: String },
    #[error("store {path} is still locked by another gpurent process (pid {holder}) after waiting {waited_s} s; raise --lock-wait or check that process")]
    LockTimeout {
        path: PathBuf,
        holder: String,
        waited_s: u64,
    },
    #[error("{location}: {scheme}:// stores are not supported; give a local directory or s3://bucket/prefix (README, \"The store on S3\")")]
    Remote { location: String, scheme: String },
    #[error("{url}: {source}")]
    Object {
        url: String,
        source: object_store::Error,
    },
    #[error("{url}: the server ignores conditional creates (If-None-Match: *), so two writers could store one hour twice; refusing to write. Use a server that honours them (AWS S3, Ceph RGW, Cloudflare R2)")]
    NoConditionalCreate { url: String },
    #[error("{url}: changed by other writers 10 times in a row; try again")]
    Contended { url: String },
}

/// An error in one of the data tables (GPU registry, regions, instances, units).
#[derive(Debug, thiserror::Error)]
#[error("table {table}: {message}")]
pub struct TableError {
    pub table: String,
    pub message: String,
}

/// An error from analysis, charting or reporting.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("analysis: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("chart {name}: {message}")]
    Chart { name: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// An error from the demo (which runs the whole pipeline).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
}
