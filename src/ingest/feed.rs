//! Feed files: one TOML file per feed in a feeds directory.
//!
//! Common keys are read here; every other key belongs to the adapter named by
//! `format`, which rejects keys it does not know. Errors name the file and the key.
//! Invariant: secrets are never stored in a feed file, only the *name* of the
//! environment variable that holds them (`auth_env`).

use std::path::{Path, PathBuf};

use crate::error::FeedError;
use crate::ingest::adapters::{self, Adapter};
use crate::ingest::urlpolicy;

/// Where a feed's payload comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A live `http(s)://` URL.
    Http(String),
    /// A recorded payload on disk, read through the same parsing path.
    File(PathBuf),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Http(u) => u.clone(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// The keys every feed file may have.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// The feed's name: the file stem.
    pub name: String,
    /// The feed file itself.
    pub path: PathBuf,
    pub format: String,
    pub source: Source,
    pub enabled: bool,
    pub provider: String,
    pub auth_env: Option<String>,
    pub timeout_s: u64,
    /// Attempts after the first on timeouts, 429 and 5xx.
    pub retries: u32,
    /// First backoff delay; doubles each retry, with jitter.
    pub retry_base_ms: u64,
    /// Largest response body accepted, in bytes.
    pub max_bytes: usize,
    /// Share of VAT included in the published price (e.g. 0.06); 0 when prices are net.
    pub price_includes_vat: f64,
    /// Hours between ingests of this feed in the daemon.
    pub interval_hours: u32,
    /// True when the payload is a labelled sample or simulation, not a live source.
    pub sample: bool,
    /// The feed republishes a peer's data (key `peer`; default: the adapter's, true
    /// for `gpuhunt_catalog`). Peer rows are stored with `peer = true` and give way
    /// to gpurent's own feeds in the statistics (`analysis::inforce`, per period) and
    /// in `history` (`analysis::peers::prefer_own_sources`, per day).
    pub peer: bool,
    /// Offers whose provider or region tables/regions.toml does not know are rejected
    /// (`unknown_provider`, `unknown_region`) instead of being stored as bloc OTHER.
    /// Key `check_places`; backfill sets it.
    pub check_places: bool,
    /// The feed file's text, kept beside raw payloads for re-normalisation.
    pub text: String,
}

/// A feed file with its adapter built.
pub struct Feed {
    pub config: FeedConfig,
    pub adapter: Box<dyn Adapter>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("config", &self.config)
            .finish()
    }
}

fn cfg_err(path: &Path, message: impl Into<String>) -> FeedError {
    FeedError::Config {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn take_str(table: &mut toml::Table, key: &str, path: &Path) -> Result<Option<String>, FeedError> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(cfg_err(
            path,
            format!("key `{key}` must be a string, found {}", v.type_str()),
        )),
    }
}

fn take_bool(table: &mut toml::Table, key: &str, path: &Path) -> Result<Option<bool>, FeedError> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::Boolean(b)) => Ok(Some(b)),
        Some(v) => Err(cfg_err(
            path,
            format!("key `{key}` must be true or false, found {}", v.type_str()),
        )),
    }
}

fn take_num(table: &mut toml::Table, key: &str, path: &Path) -> Result<Option<f64>, FeedError> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::Integer(i)) => Ok(Some(i as f64)),
        Some(toml::Value::Float(f)) => Ok(Some(f)),
        Some(v) => Err(cfg_err(
            path,
            format!("key `{key}` must be a number, found {}", v.type_str()),
        )),
    }
}

fn take_uint(
    table: &mut toml::Table,
    key: &str,
    path: &Path,
    max: f64,
) -> Result<Option<f64>, FeedError> {
    match take_num(table, key, path)? {
        Some(n) if n.fract() != 0.0 || n < 1.0 || n > max => Err(cfg_err(
            path,
            format!("key `{key}` must be a whole number from 1 to {max}, found {n}"),
        )),
        other => Ok(other),
    }
}

/// Read and validate one feed file, building its adapter.
pub fn load_feed(path: &Path) -> Result<Feed, FeedError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| cfg_err(path, format!("cannot read: {e}")))?;
    parse_feed(path, &text)
}

/// Parse a feed file's text (the path names it in errors and anchors relative URLs).
pub fn parse_feed(path: &Path, text: &str) -> Result<Feed, FeedError> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| cfg_err(path, format!("invalid TOML: {e}")))?;
    let name = feed_name(path)?;
    let format = take_str(&mut table, "format", path)?
        .ok_or_else(|| cfg_err(path, "missing key `format`"))?;
    let url =
        take_str(&mut table, "url", path)?.ok_or_else(|| cfg_err(path, "missing key `url`"))?;
    if url.trim().is_empty() {
        // An empty path would be the feeds folder itself, read as a payload.
        return Err(cfg_err(
            path,
            "key `url` is empty: give an https:// URL or a file path",
        ));
    }
    let source = source_of(path, url)?;
    let enabled = take_bool(&mut table, "enabled", path)?.unwrap_or(true);
    let provider = take_str(&mut table, "provider", path)?.unwrap_or_else(|| format.clone());
    if provider.trim().is_empty() {
        return Err(cfg_err(
            path,
            "key `provider` is empty: name the provider (e.g. aws), or leave the key out to use the format's",
        ));
    }
    let auth_env = auth_env(&mut table, path)?;
    let timeout_s = take_uint(&mut table, "timeout_s", path, 3600.0)?.unwrap_or(30.0) as u64;
    let retries = retries(&mut table, path)?;
    let retry_base_ms =
        take_uint(&mut table, "retry_base_ms", path, 60_000.0)?.unwrap_or(500.0) as u64;
    let max_bytes = take_uint(&mut table, "max_bytes", path, 4e9)?
        .map(|n| n as usize)
        .unwrap_or_else(|| adapters::max_bytes(&format));
    let price_includes_vat = take_num(&mut table, "price_includes_vat", path)?.unwrap_or(0.0);
    if !(0.0..1.0).contains(&price_includes_vat) {
        return Err(cfg_err(path, format!("key `price_includes_vat` must be a rate from 0 to below 1 (e.g. 0.06), found {price_includes_vat}")));
    }
    let interval_hours =
        take_uint(&mut table, "interval_hours", path, 24.0 * 366.0)?.unwrap_or(1.0) as u32;
    let sample = take_bool(&mut table, "sample", path)?.unwrap_or(false);
    let peer = take_bool(&mut table, "peer", path)?;
    let check_places = take_bool(&mut table, "check_places", path)?.unwrap_or(false);
    let mut config = FeedConfig {
        name,
        path: path.to_path_buf(),
        format: format.clone(),
        source,
        enabled,
        provider,
        auth_env,
        timeout_s,
        retries,
        retry_base_ms,
        max_bytes,
        price_includes_vat,
        interval_hours,
        sample,
        peer: false,
        check_places,
        text: text.to_string(),
    };
    let builder = adapters::builder(&format).ok_or_else(|| {
        cfg_err(
            path,
            format!(
                "key `format`: unknown adapter {format:?} (known: {})",
                adapters::names().join(", ")
            ),
        )
    })?;
    let adapter = builder(table).map_err(|e| cfg_err(path, e.to_string()))?;
    config.peer = peer.unwrap_or_else(|| adapter.peer_by_default());
    Ok(Feed { config, adapter })
}

/// The feed's name: its file name without `.toml`, of letters, digits, `-_.` only,
/// and not starting with `.`: the store names the feed's files after it, and a file
/// whose name starts with a dot is hidden (every reader skips it), so a `.hid.toml`
/// feed's offers would be stored but never seen, and `..toml`, `...toml` would name
/// the folders `.` and `..`.
fn feed_name(path: &Path) -> Result<String, FeedError> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| cfg_err(path, "file name is not UTF-8"))?
        .to_string();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(cfg_err(
            path,
            "feed file names may use only letters, digits, `-`, `_` and `.`",
        ));
    }
    if name.starts_with('.') {
        return Err(cfg_err(
            path,
            format!("feed name {name:?} starts with `.`: the store would name hidden files after it, which readers skip, so its offers would never be seen; rename the file"),
        ));
    }
    Ok(name)
}

/// `url`: an http(s) URL the URL policy allows, or a file path (relative to the feed
/// file's folder); any other scheme is an error.
fn source_of(path: &Path, url: String) -> Result<Source, FeedError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        urlpolicy::check(&url).map_err(|m| cfg_err(path, format!("key `url`: {m}")))?;
        return Ok(Source::Http(url));
    }
    if url.contains("://") {
        return Err(cfg_err(
            path,
            format!("key `url`: unsupported scheme in {url:?} (use http(s):// or a file path)"),
        ));
    }
    let p = PathBuf::from(&url);
    Ok(Source::File(if p.is_absolute() {
        p
    } else {
        path.parent().unwrap_or(Path::new(".")).join(p)
    }))
}

/// `auth_env`: the name of the environment variable holding the feed's key.
fn auth_env(table: &mut toml::Table, path: &Path) -> Result<Option<String>, FeedError> {
    let var = take_str(table, "auth_env", path)?;
    let valid = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if var.as_deref().is_some_and(|v| !valid(v)) {
        return Err(cfg_err(
            path,
            "key `auth_env` must name an environment variable (letters, digits, `_`)",
        ));
    }
    Ok(var)
}

/// `retries`: a whole number from 0 to 10, default 3.
fn retries(table: &mut toml::Table, path: &Path) -> Result<u32, FeedError> {
    match take_num(table, "retries", path)? {
        Some(n) if n.fract() != 0.0 || !(0.0..=10.0).contains(&n) => Err(cfg_err(
            path,
            format!("key `retries` must be a whole number from 0 to 10, found {n}"),
        )),
        Some(n) => Ok(n as u32),
        None => Ok(3),
    }
}

/// A feed file that could not be loaded, kept so the run can report it.
#[derive(Debug)]
pub struct BrokenFeed {
    pub name: String,
    pub error: FeedError,
}

/// Load every `*.toml` in a directory, sorted by name. Broken files do not stop the
/// others; a directory with no `*.toml` at all is an error (a wrong `--feeds` path
/// must not look like a successful run).
pub fn load_dir(dir: &Path) -> Result<(Vec<Feed>, Vec<BrokenFeed>), FeedError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| cfg_err(dir, format!("cannot read feeds directory: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    if paths.is_empty() {
        return Err(cfg_err(
            dir,
            "no feeds: the directory holds no feed files (*.toml)",
        ));
    }
    paths.sort();
    let mut feeds = Vec::new();
    let mut broken = Vec::new();
    for p in paths {
        match load_feed(&p) {
            Ok(f) => feeds.push(f),
            Err(error) => broken.push(BrokenFeed {
                name: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                error,
            }),
        }
    }
    Ok((feeds, broken))
}

/// Test support for adapters: build a feed of `format` from `url` plus `keys` and
/// check it loads, or fails with an error containing `expected_err`.
#[cfg(test)]
pub(crate) fn check_feed_keys(format: &str, url: &str, keys: &str, expected_err: Option<&str>) {
    let r = parse_feed(
        Path::new("/feeds/check.toml"),
        &format!("format = '{format}'\nurl = '{url}'\n{keys}"),
    );
    match (r, expected_err) {
        (Ok(_), None) => {}
        (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{keys}: {e}"),
        (Ok(_), Some(want)) => panic!("{keys}: expected an error containing {want:?}"),
        (Err(e), None) => panic!("{keys}: {e}"),
    }
}

/// Test support for adapters whose feeds name an `endpoint`: with the keys `ok`, the
/// feed loads, with an `endpoint` template too; a plain-http endpoint fails with
/// "must use https" and an unknown key with its name.
#[cfg(test)]
pub(crate) fn check_endpoint_keys(format: &str, url: &str, ok: &str, endpoint: &str) {
    check_feed_keys(format, url, ok, None);
    let with = |more: &str| format!("{ok}{more}");
    check_feed_keys(
        format,
        url,
        &with(&format!("endpoint = '{endpoint}'")),
        None,
    );
    let http = with("endpoint = 'http://example.com/'");
    check_feed_keys(format, url, &http, Some("must use https"));
    check_feed_keys(format, url, &with("bogus = 1"), Some("bogus"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, expected: &str) {
        let e = parse_feed(Path::new("/feeds/x.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(expected),
            "error {e:?} should contain {expected:?}"
        );
        assert!(
            e.contains("/feeds/x.toml"),
            "error {e:?} should name the file"
        );
    }

    #[test]
    fn bad_feed_files_name_file_and_key() {
        check_err("url = 'a.json'", "missing key `format`");
        check_err("format = 'vastai'", "missing key `url`");
        check_err("format = 'vastai'\nurl = ''", "key `url` is empty");
        check_err("format = 'vastai'\nurl = '  '", "key `url` is empty");
        check_err(
            "format = 'vastai'\nurl = 'a.json'\nprovider = ''",
            "key `provider` is empty",
        );
        check_err("format = 'nope'\nurl = 'a.json'", "unknown adapter");
        check_err("format = 'vastai'\nurl = 'a.json'\nbogus = 1", "bogus");
        check_err(
            "format = 'vastai'\nurl = 'a.json'\nenabled = 'yes'",
            "key `enabled`",
        );
        check_err(
            "format = 'vastai'\nurl = 'http://example.com/x'",
            "must use https",
        );
        check_err(
            "format = 'vastai'\nurl = 'ftp://example.com/x'",
            "unsupported scheme",
        );
        check_err(
            "format = 'vastai'\nurl = 'a.json'\ntimeout_s = 0",
            "key `timeout_s`",
        );
        check_err(
            "format = 'vastai'\nurl = 'a.json'\nprice_includes_vat = 6",
            "price_includes_vat",
        );
        check_err(
            "format = 'vastai'\nurl = 'a.json'\nauth_env = 'A B'",
            "auth_env",
        );
    }

    /// A feed file's path → its feed name, or an error containing the text.
    fn check_name(path: &str, expected: Result<&str, &str>) {
        let got = feed_name(Path::new(path)).map_err(|e| e.to_string());
        match (&got, expected) {
            (Ok(n), Ok(want)) => assert_eq!(n, want, "{path}"),
            (Err(e), Err(want)) => {
                assert!(e.contains(want) && e.contains(path), "{path}: {e}")
            }
            _ => panic!("{path}: {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn feed_names_are_visible_file_names() {
        let hidden = Err("starts with `.`: the store would name hidden files");
        check_name("/feeds/vastai.toml", Ok("vastai"));
        check_name("/feeds/aws.us-east-1.toml", Ok("aws.us-east-1"));
        check_name("/feeds/a_b-c.toml", Ok("a_b-c"));
        check_name("/feeds/.hid.toml", hidden);
        check_name("/feeds/..toml", hidden);
        check_name("/feeds/...toml", hidden);
        check_name("/feeds/a b.toml", Err("only letters, digits"));
    }

    #[test]
    fn relative_paths_and_loopback() {
        let f = parse_feed(
            Path::new("/feeds/v.toml"),
            "format = 'vastai'\nurl = 'samples/v.json'",
        )
        .unwrap();
        assert_eq!(
            f.config.source,
            Source::File(PathBuf::from("/feeds/samples/v.json"))
        );
        assert_eq!(f.config.provider, "vastai");
        for ok in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://[::1]:9/x",
            "https://a.b/c",
        ] {
            assert!(urlpolicy::check(ok).is_ok(), "{ok}");
        }
        assert!(urlpolicy::check("http://10.0.0.1/x").is_err());
    }
}
