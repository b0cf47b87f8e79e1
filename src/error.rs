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
    /// A version index's versioned file failed (`first`), and so did the feed URL
    /// fetched instead (`then`); each message without the feed's name.
    #[error("feed {feed}: {first}; the feed URL fetched instead failed too: {then}")]
    Fallback {
        feed: String,
        first: String,
        then: String,
    },
    #[error("feed {feed}: {source_name}: malformed payload: {error}")]
    Parse {
        feed: String,
        source_name: String,
        error: AdapterError,
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

/// A live URL refused by `ingest::urlpolicy`. `shown` is the URL without its query
/// (which can carry a key); only an unparseable URL is quoted as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UrlError {
    #[error("{raw:?} is not a valid URL: {error}")]
    Invalid { raw: String, error: url::ParseError },
    #[error(
        "{shown:?} carries a user name or password before the host; put credentials in auth_env"
    )]
    UserInfo { shown: String },
    #[error(
        "{shown:?} must use https (plain http is allowed only for 127.0.0.0/8, ::1 and localhost)"
    )]
    PlainHttp { shown: String },
    #[error("{shown:?}: unsupported scheme {scheme:?} (use https)")]
    Scheme { shown: String, scheme: String },
}

/// An error from an adapter (`ingest::adapters`): one of its own keys, the credentials
/// of a signed API, a request it cannot build, or a whole payload it cannot read. A bad
/// record is a reject, not an error. Each variant prints the text the adapters always
/// printed; none holds a secret (credential errors carry only static wording).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// One key of the adapter's own has a bad value.
    #[error("key `{key}`: {message}")]
    Key { key: String, message: String },
    /// The keys as a whole: serde's message for an unknown, missing or mistyped key
    /// (it names the key), or a rule over several keys or a key's length or range.
    #[error("{0}")]
    Keys(String),
    /// A signed API without a secret.
    #[error("{cloud} requests must be signed: set `auth_env` to a variable holding {form}")]
    NoCredentials {
        cloud: &'static str,
        form: &'static str,
    },
    /// A secret not in the `ID:SECRET` form `form` names; the value is never kept.
    #[error("the variable named by `auth_env` must hold {form}")]
    BadCredentials { form: &'static str },
    /// An endpoint the URL policy refuses.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A request cannot be built from the endpoint (a query, no plain host).
    #[error("{0}")]
    Endpoint(String),
    /// A page label is not of the form the adapter's requests give (`form`).
    #[error("page label {label:?} is not {form}; a recorded replay is a directory of files named that way")]
    Label { label: String, form: &'static str },
    /// The payload is not JSON (of the expected type); `hint` says what was expected.
    #[error("invalid JSON: {error}{hint}")]
    Json {
        error: serde_json::Error,
        hint: &'static str,
    },
    /// A CSV header that cannot be read.
    #[error("invalid CSV header: {error}")]
    CsvHeader { error: csv::Error },
    /// A CSV line that cannot be read (1-based, the header being line 1 or its row).
    #[error("line {line}: {error}")]
    CsvLine { line: usize, error: csv::Error },
    /// A column the adapter needs, and what is wrong with it.
    #[error("column {column:?} {problem}")]
    Column { column: String, problem: String },
    /// A value that is not what the adapter reads (`value` as printed).
    #[error("{value} is not {expected}")]
    Value {
        value: String,
        expected: &'static str,
    },
    /// The API answered with an error instead of data.
    #[error("{0}")]
    Api(String),
    /// The payload has another shape than the adapter reads.
    #[error("{0}")]
    Payload(String),
    /// An error at a place in the payload (a line, a column, a file in an archive).
    #[error("{at}: {error}")]
    At {
        at: String,
        error: Box<AdapterError>,
    },
}

impl AdapterError {
    /// This error at `at` ("line 3", "column date").
    pub fn at(self, at: impl Into<String>) -> Self {
        Self::At {
            at: at.into(),
            error: Box::new(self),
        }
    }
    /// A bad value of key `key`.
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            message: message.into(),
        }
    }
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
    /// A raw payload blob whose content no longer hashes to its name.
    #[error("{path}: damaged: its content hashes to {found}, not to the name it is kept under")]
    BlobDamaged { path: PathBuf, found: String },
    /// A raw hour's `meta.json` that does not parse.
    #[error("{path}: {source}")]
    RawMeta {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A raw hour's `meta.json` naming a blob by something other than a SHA-256 in hex.
    #[error("{path}: {reference:?} is not a blob's SHA-256")]
    BlobRef { path: PathBuf, reference: String },
    /// A store to read that is not a directory (a typo, a file): never an empty store.
    #[error("store {path}: {why}")]
    NotAStore { path: PathBuf, why: String },
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
    /// A scan failed and these stored files are damaged (polars' error names none).
    #[error("damaged Parquet file(s) in the store: {}; {source}", .files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "))]
    Damaged {
        files: Vec<PathBuf>,
        source: Box<ReportError>,
    },
}

/// Why an SVG chart could not be rendered to PNG.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The SVG does not parse (with the bundled font).
    #[error(transparent)]
    Svg(#[from] resvg::usvg::Error),
    #[error("zero-sized chart")]
    ZeroSize,
    /// The PNG encoder's message.
    #[error("{0}")]
    Encode(String),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(e: AdapterError, expected: &str) {
        assert_eq!(e.to_string(), expected);
    }

    /// The texts the adapters printed when their errors were strings.
    #[test]
    fn adapter_errors_print_as_before() {
        check(
            AdapterError::key("price_unit", "\"Day\" must be Hour, Week, Month or Year"),
            "key `price_unit`: \"Day\" must be Hour, Week, Month or Year",
        );
        check(
            AdapterError::NoCredentials {
                cloud: "Tencent Cloud",
                form: "SECRET_ID:SECRET_KEY",
            },
            "Tencent Cloud requests must be signed: set `auth_env` to a variable holding SECRET_ID:SECRET_KEY",
        );
        check(
            AdapterError::BadCredentials { form: "ID:KEY" },
            "the variable named by `auth_env` must hold ID:KEY",
        );
        let error = serde_json::from_str::<u8>("x").unwrap_err();
        let text = error.to_string();
        check(
            AdapterError::Json { error, hint: "" },
            &format!("invalid JSON: {text}"),
        );
        check(
            AdapterError::Column {
                column: "TermType".into(),
                problem: "is not in the header (row 2)".into(),
            },
            "column \"TermType\" is not in the header (row 2)",
        );
        check(
            AdapterError::Value {
                value: "\"abc\"".into(),
                expected: "a number",
            }
            .at("line 3: column \"price\""),
            "line 3: column \"price\": \"abc\" is not a number",
        );
    }
}
