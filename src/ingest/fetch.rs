//! Fetching payloads: live over HTTP (one shared reqwest client) or from a recorded
//! file, so that recorded payloads replay through the same parsing path.
//!
//! HTTP rules: gzip; a per-feed timeout; retries with exponential backoff and jitter
//! on timeouts, connection errors, 429 and 5xx (honouring `Retry-After` in seconds),
//! never on other 4xx; a cap on the response size; paging where the adapter names a
//! next page. Every URL requested (feed URL, adapter request, next-page link, redirect
//! target) passes [`crate::ingest::urlpolicy::check`] first. A one-request feed whose
//! last payload the server named (`ETag`, `Last-Modified`) is asked whether it changed
//! (`If-None-Match`, `If-Modified-Since`); a `304` then answers [`Fetched::NotModified`].
//! A feed whose adapter names a version index (`Adapter::version_index`, AWS's
//! region index) has that small index fetched first, under the same rules: when the
//! version it names is the one kept with the last payload, the answer is
//! [`Fetched::NotModified`] without a request for the payload; otherwise the versioned
//! payload is fetched and the version kept with it. An index that fails or cannot be
//! read never fails the feed: the feed URL is fetched as without one, and the answer's
//! `note` says why. Nor does a versioned payload that fails (an HTTP error after the
//! retries, a body cut off or over the cap): the feed URL is fetched instead, once,
//! and only if that fails too does the feed fail ([`FeedError::Fallback`], naming
//! both).
//!
//! A format whose adapter reads streams (`Adapter::reads_streams`, AWS offer files)
//! has its body spooled, when a spool folder is given and the feed has no secret:
//! written chunk by chunk to a gzip file ([`crate::ingest::spool`]) under the same
//! cap, retries and error wording, so the payload never sits in memory whole.
//!
//! Invariants: the secret is only handed to the adapter to build requests; it is
//! removed ([`scrub`]) from every error message and from every fetched body before
//! anything parses, archives or prints it, so a server that echoes the key cannot
//! leak it (a feed with a secret is never spooled, so its body is scrubbed in
//! memory and a secret never reaches a file unscrubbed). Errors carry the cause from
//! reqwest's source chain ("Connection refused", "timed out after 2 s", "body ended
//! early after 800 bytes"), never the URL's query.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::FeedError;
use crate::ingest::adapters::{Page, Request};
use crate::ingest::feed::{Feed, FeedConfig, Source};
use crate::ingest::spool::{self, SpoolWriter};
use crate::ingest::urlpolicy::{self, shown_url};
use crate::model::Validators;

/// Most pages followed for one feed, so a looping `next` link cannot run forever.
pub const MAX_PAGES: usize = 1000;

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// The HTTP client of a process for requests without a key. Redirects are followed
/// only to URLs that pass the URL policy (a 302 to a plain-http address off loopback
/// is an error).
pub fn client() -> reqwest::Client {
    build_client(false)
}

/// The client for requests that carry a feed's key: as [`client`], and a redirect
/// that leaves the first request's origin (scheme, host, port) is refused, since
/// reqwest drops only its own list of credential headers (`Authorization`,
/// `Cookie`) on such a redirect and would send a key header (`X-API-KEY`,
/// `X-Goog-Api-Key`) to the other host.
fn keyed_client() -> &'static reqwest::Client {
    static KEYED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    KEYED.get_or_init(|| build_client(true))
}

fn build_client(same_origin: bool) -> reqwest::Client {
    crate::process::install_tls();
    let redirects = reqwest::redirect::Policy::custom(move |a| {
        if a.previous().len() >= MAX_REDIRECTS {
            return a.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let first = a.previous().first().map(origin);
        if same_origin && first.is_some_and(|o| o != origin(a.url())) {
            let to = a.url().host_str().unwrap_or("").to_string();
            return a.error(format!(
                "redirect refused: it leaves the feed's server for {to} and the request carries the feed's key"
            ));
        }
        match urlpolicy::check_url(a.url()) {
            Ok(()) => a.follow(),
            Err(m) => a.error(format!("redirect refused: {m}")),
        }
    });
    reqwest::Client::builder()
        .gzip(true)
        .redirect(redirects)
        .user_agent(concat!("gpurent/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client configuration is static")
}

/// A URL's origin: scheme, host and port.
fn origin(u: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    let host = u.host_str().map(str::to_string);
    (u.scheme().to_string(), host, u.port_or_known_default())
}

/// The secret named by a feed's `auth_env`, if it has one and it is set.
pub fn secret(feed: &Feed) -> Option<String> {
    feed.config
        .auth_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok())
        .filter(|s| !s.is_empty())
}

/// What replaces a secret's value wherever it would appear.
pub const REDACTED: &str = "[redacted]";

/// The strings to scrub for a secret: the whole value (at least 4 characters, so a
/// toy value cannot shred every payload) and, for `id:key` pairs, each part of at
/// least 6 characters (a key can be echoed without its id).
fn secret_parts(secret: Option<&str>) -> Vec<&str> {
    let Some(s) = secret.filter(|s| s.len() >= 4) else {
        return Vec::new();
    };
    let mut parts = vec![s];
    parts.extend(s.split(':').filter(|p| p.len() >= 6 && *p != s));
    parts
}

/// Every form in which a server may echo the secret's parts: as sent, JSON-escaped
/// (with and without `\/` for `/`, as PHP's `json_encode` writes it) and
/// percent-encoded (upper- and lower-case hex); longest first, so a longer form is
/// replaced before a shorter one inside it.
fn secret_forms(secret: Option<&str>) -> Vec<String> {
    let mut forms = Vec::new();
    for p in secret_parts(secret) {
        let json = serde_json::to_string(p).expect("a string serialises");
        let json = json[1..json.len() - 1].to_string();
        forms.push(json.replace('/', "\\/"));
        forms.extend([p.to_string(), json, percent(p, true), percent(p, false)]);
    }
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    forms.dedup();
    forms
}

/// `s` percent-encoded: every byte but the URL's unreserved characters as `%XX`.
fn percent(s: &str, upper: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ if upper => format!("%{b:02X}"),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

/// The forms of one secret (`secret_forms`), each with its substring finder, made
/// once for the many texts and bodies of a feed's run.
pub struct Scrubber {
    forms: Vec<(String, memchr::memmem::Finder<'static>)>,
}

impl Scrubber {
    pub fn new(secret: Option<&str>) -> Self {
        let forms = secret_forms(secret)
            .into_iter()
            .map(|f| {
                let finder = memchr::memmem::Finder::new(f.as_bytes()).into_owned();
                (f, finder)
            })
            .collect();
        Self { forms }
    }

    /// `text` with every form replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (form, finder) in &self.forms {
            if finder.find(out.as_bytes()).is_some() {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
        out
    }

    /// A body with every form replaced, in place (bytes, so a non-UTF-8 body is
    /// scrubbed too); one pass per form found, none for a form absent.
    pub fn bytes(&self, body: &mut Vec<u8>) {
        for (form, finder) in &self.forms {
            let mut hits = finder.find_iter(body).peekable();
            if hits.peek().is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(body.len());
            let mut at = 0;
            for hit in hits {
                out.extend_from_slice(&body[at..hit]);
                out.extend_from_slice(REDACTED.as_bytes());
                at = hit + form.len();
            }
            out.extend_from_slice(&body[at..]);
            *body = out;
        }
    }
}

/// `text` with every form of the secret (and of its `id:key` parts) replaced.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    Scrubber::new(secret).text(text)
}

/// Scrub a fetched body in place (bytes, so a non-UTF-8 body is scrubbed too).
pub fn scrub_bytes(body: &mut Vec<u8>, secret: Option<&str>) {
    Scrubber::new(secret).bytes(body)
}

fn redact(message: String, secret: Option<&str>) -> String {
    scrub(&message, secret)
}

/// The causes under a reqwest error, outermost first, without repeats and without
/// the URL (which can carry a query): "client error (Connect): tcp connect error:
/// Connection refused (os error 111)".
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = e.source();
    while let Some(s) = next {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        next = s.source();
    }
    parts.join(": ")
}

/// A send error in words: timeouts say how long, connection errors say why.
fn send_error(e: &reqwest::Error, timeout_s: u64) -> String {
    let chain = cause_chain(e);
    if e.is_timeout() {
        format!("timed out after {timeout_s} s waiting for a response")
    } else if e.is_connect() {
        format!("cannot connect: {chain}")
    } else {
        format!("request failed: {chain}")
    }
}

/// A body error in words, with the (decoded) bytes received so far.
fn body_error(e: &reqwest::Error, timeout_s: u64, received: usize) -> String {
    let chain = cause_chain(e);
    let cut_off = ["end of file", "message length", "connection", "closed"]
        .iter()
        .any(|m| chain.contains(m));
    if e.is_timeout() {
        format!("timed out after {timeout_s} s while reading the body ({received} bytes received)")
    } else if cut_off {
        format!("body ended early after {received} bytes: {chain}")
    } else {
        format!("cannot read the body after {received} bytes: {chain}")
    }
}

/// What a fetch brought. `note` says, when the fetch could not go the planned way
/// (a version index that failed), which way it went and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The payload's pages, with the version the server (or a version index) named
    /// for it (a one-page payload only; empty otherwise).
    Pages {
        pages: Vec<Page>,
        validators: Validators,
        note: Option<String>,
    },
    /// `304 Not Modified` to a conditional request, or a version index naming the
    /// version kept last: the payload asked about is what the server still serves.
    /// Holds the validators the 304 carried, if any (the kept ones for a version).
    NotModified {
        validators: Validators,
        note: Option<String>,
    },
}

impl Fetched {
    /// This answer with `first` put before its note (joined by "; ").
    pub fn noted(mut self, first: Option<String>) -> Self {
        let Some(first) = first else { return self };
        match &mut self {
            Fetched::Pages { note, .. } | Fetched::NotModified { note, .. } => {
                *note = Some(match note.take() {
                    Some(n) => format!("{first}; {n}"),
                    None => first,
                });
            }
        }
        self
    }
}

/// Fetch every page of a feed.
pub async fn fetch(
    client: &reqwest::Client,
    feed: &Feed,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Page>, FeedError> {
    match fetch_if_changed(client, feed, secret, now, None, None).await? {
        Fetched::Pages { pages, .. } => Ok(pages),
        Fetched::NotModified { .. } => {
            unreachable!("a 304 or a known version counts only when a version was given")
        }
    }
}

/// Fetch every page of a feed; with `known` (the version of the payload kept last),
/// ask the server whether it changed (`If-None-Match`, `If-Modified-Since`), or first
/// the adapter's version index whether the version changed. Only a feed fetched with
/// one request and no next page is asked: for a paged payload one page's 304 would
/// not say that the others are unchanged. With `spool` (a folder the caller owns
/// and removes), a format whose adapter reads streams is spooled there when the
/// feed has no secret. The caller gives `known` only for a payload it can read
/// back: an unchanged version or a 304 stands for it.
pub async fn fetch_if_changed(
    client: &reqwest::Client,
    feed: &Feed,
    secret: Option<&str>,
    now: DateTime<Utc>,
    known: Option<&Validators>,
    spool: Option<&Path>,
) -> Result<Fetched, FeedError> {
    let cfg = &feed.config;
    let spool = spool_for(feed, secret, spool);
    let url = match &cfg.source {
        Source::File(path) => return fetch_recorded(&cfg.name, path, secret, spool).await,
        Source::Http(url) => url,
    };
    let cx = Ctx {
        client,
        feed,
        secret,
        spool,
    };
    let detour = match feed.adapter.version_index(url) {
        None => None,
        Some(index) => match fetch_indexed(cx, url, &index, known).await {
            Ok(fetched) => return Ok(fetched),
            Err(d) => Some(d),
        },
    };
    let fetched = fetch_url(cx, url, now, known).await;
    let Some(detour) = detour else {
        return fetched;
    };
    match (fetched, detour.failed) {
        (Ok(f), _) => Ok(f.noted(Some(detour.note))),
        (Err(e), Some(first)) => Err(FeedError::Fallback {
            feed: cfg.name.clone(),
            first,
            then: unprefixed(&cfg.name, &e),
        }),
        (Err(e), None) => Err(e),
    }
}

/// The folder a feed's payload is spooled to: `spool` when the feed's format reads
/// streams and the feed has no secret (a spooled body is never scrubbed), else none.
fn spool_for<'a>(feed: &Feed, secret: Option<&str>, spool: Option<&'a Path>) -> Option<&'a Path> {
    spool.filter(|_| feed.adapter.reads_streams() && secret.is_none())
}

/// A recorded payload as one fetched, scrubbed of the secret; with `spool` (a
/// format that reads streams, no secret) each page is spooled from its file
/// instead of read into memory.
async fn fetch_recorded(
    feed: &str,
    path: &Path,
    secret: Option<&str>,
    spool: Option<&Path>,
) -> Result<Fetched, FeedError> {
    Ok(Fetched::Pages {
        pages: recorded_pages(feed, path, secret, spool).await?,
        validators: Validators::default(),
        note: None,
    })
}

/// The pages of a recorded payload: spooled to `spool` when given, else read into
/// memory and scrubbed of `secret`.
async fn recorded_pages(
    feed: &str,
    path: &Path,
    secret: Option<&str>,
    spool: Option<&Path>,
) -> Result<Vec<Page>, FeedError> {
    if let Some(dir) = spool {
        return spool_recorded(feed, path, dir).await;
    }
    let mut pages = read_recorded(feed, path).await?;
    for p in &mut pages {
        scrub_bytes(&mut p.body, secret);
    }
    Ok(pages)
}

/// A recorded payload of `feed` (a file or a folder of pages, as a fetch of a file
/// source reads it), for a back-fill: a format that reads streams (no secret) is
/// spooled to `spool`, so a payload of hundreds of MB is never in memory whole;
/// any other is read into memory and scrubbed of the feed's secret.
pub async fn recorded_payload(
    feed: &Feed,
    path: &Path,
    spool: &Path,
) -> Result<Vec<Page>, FeedError> {
    let secret = secret(feed);
    let spool = spool_for(feed, secret.as_deref(), Some(spool));
    recorded_pages(&feed.config.name, path, secret.as_deref(), spool).await
}

/// The pages of a recorded payload (as [`read_recorded`] finds them), each spooled
/// to `dir` ([`spool::spool_file`], off the async workers).
async fn spool_recorded(feed: &str, path: &Path, dir: &Path) -> Result<Vec<Page>, FeedError> {
    let mut pages = Vec::new();
    for (label, file) in recorded_files(feed, path).await? {
        let (src, d) = (file.clone(), dir.to_path_buf());
        let spooled = tokio::task::spawn_blocking(move || spool::spool_file(&src, &d))
            .await
            .unwrap_or_else(|e| Err(spool::SpoolFileError::Read(std::io::Error::other(e))))
            .map_err(|e| match e {
                spool::SpoolFileError::Read(source) => FeedError::ReadPayload {
                    feed: feed.to_string(),
                    path: file,
                    source,
                },
                // The store's side (a full disk), not the recorded file.
                spool::SpoolFileError::Write(path, source) => FeedError::Store {
                    feed: feed.to_string(),
                    source: crate::error::StoreError::Io { path, source },
                },
            })?;
        pages.push(Page {
            label,
            body: Vec::new(),
            spool: Some(spooled),
        });
    }
    Ok(pages)
}

/// What every request of one feed's fetch shares: the client, the feed, its secret
/// and the folder a body may be spooled to.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    client: &'a reqwest::Client,
    feed: &'a Feed,
    secret: Option<&'a str>,
    spool: Option<&'a Path>,
}

/// Why a feed with a version index was fetched from its feed URL instead: the
/// note that says so and, when the versioned file failed, its error (without the
/// feed's name).
struct Detour {
    note: String,
    failed: Option<String>,
}

/// The payload by way of the version index: the version it names, then that
/// version's payload; `Err` when either cannot be had, to fall back to the feed URL.
async fn fetch_indexed(
    cx: Ctx<'_>,
    url: &str,
    index: &Request,
    known: Option<&Validators>,
) -> Result<Fetched, Detour> {
    let name = &cx.feed.config.name;
    let (version, req) = current_version(cx, url, index)
        .await
        .map_err(|why| Detour {
            note: fallback_note(name, "version index not used", &why),
            failed: None,
        })?;
    fetch_version(cx, version, req, known).await.map_err(|e| {
        let why = unprefixed(name, &e);
        Detour {
            note: fallback_note(name, "versioned file not fetched", &why),
            failed: Some(why),
        }
    })
}

/// The feed URL's payload, asked conditionally when `known` names a version and
/// the adapter makes one request.
async fn fetch_url(
    cx: Ctx<'_>,
    url: &str,
    now: DateTime<Utc>,
    known: Option<&Validators>,
) -> Result<Fetched, FeedError> {
    let requests = cx
        .feed
        .adapter
        .requests(url, cx.secret, now)
        .map_err(|m| FeedError::Http {
            feed: cx.feed.config.name.clone(),
            url: shown_url(url),
            message: redact(m.to_string(), cx.secret),
        })?;
    let known =
        known.filter(|v| requests.len() == 1 && (v.etag.is_some() || v.last_modified.is_some()));
    fetch_pages(cx, requests, known).await
}

/// Log that the feed URL of `feed` is fetched instead of the way `what` says, and
/// why; the note that says so.
fn fallback_note(feed: &str, what: &str, why: &str) -> String {
    tracing::warn!(feed = %feed, "{what}, fetching the feed URL: {why}");
    format!("{what} ({why}); fetched the feed URL")
}

/// An error's message without the leading `feed <name>: ` its display starts with.
fn unprefixed(feed: &str, e: &FeedError) -> String {
    let m = e.to_string();
    let prefix = format!("feed {feed}: ");
    m.strip_prefix(&prefix).map_or(m.clone(), str::to_string)
}

/// The version the adapter's index (fetched with `index`) names for `url`, and the
/// request for that version's payload; `Err` says why the index cannot be used.
async fn current_version(
    cx: Ctx<'_>,
    url: &str,
    index: &Request,
) -> Result<(String, Request), String> {
    let (feed, secret) = (cx.feed, cx.secret);
    let unspooled = Ctx { spool: None, ..cx };
    let mut body = match fetch_one(unspooled, index, None).await {
        Ok(Response::Body(Body::Memory(body), _)) => body,
        Ok(Response::Body(Body::Spooled(_), _)) => unreachable!("an index is never spooled"),
        Ok(Response::NotModified(_)) => return Err("304 to an unconditional request".into()),
        Err(e) => return Err(unprefixed(&feed.config.name, &e)),
    };
    scrub_bytes(&mut body, secret);
    feed.adapter
        .versioned(url, &body)
        .map_err(|e| redact(format!("{}: {e}", shown_url(&index.url)), secret))
}

/// The payload of `version`: the last one again when that is the version kept with
/// it, else fetched with `req` and kept with its version.
async fn fetch_version(
    cx: Ctx<'_>,
    version: String,
    req: Request,
    known: Option<&Validators>,
) -> Result<Fetched, FeedError> {
    if let Some(k) = known.filter(|k| k.version.as_deref() == Some(version.as_str())) {
        return Ok(Fetched::NotModified {
            validators: k.clone(),
            note: None,
        });
    }
    let mut fetched = fetch_pages(cx, vec![req], None).await?;
    if let Fetched::Pages {
        pages, validators, ..
    } = &mut fetched
    {
        if pages.len() == 1 {
            validators.version = Some(version);
        }
    }
    Ok(fetched)
}

/// Send the requests and follow their next-page links; the first request carries
/// the conditions of `known`, if given. A spooled body has no next page.
async fn fetch_pages(
    cx: Ctx<'_>,
    requests: Vec<Request>,
    mut known: Option<&Validators>,
) -> Result<Fetched, FeedError> {
    let (feed, secret) = (cx.feed, cx.secret);
    let cfg = &feed.config;
    let (mut pages, mut validators) = (Vec::new(), Validators::default());
    for req in requests {
        let mut next = Some(req);
        while let Some(req) = next.take() {
            if pages.len() >= MAX_PAGES {
                return Err(FeedError::Http {
                    feed: cfg.name.clone(),
                    url: shown_url(&req.url),
                    message: format!("more than {MAX_PAGES} pages"),
                });
            }
            let body = fetch_one(cx, &req, known.take()).await?;
            let mut body = match body {
                Response::NotModified(validators) => {
                    return Ok(Fetched::NotModified {
                        validators,
                        note: None,
                    })
                }
                Response::Body(Body::Spooled(s), v) => {
                    validators = v;
                    pages.push(Page {
                        label: req.label.clone(),
                        body: Vec::new(),
                        spool: Some(s),
                    });
                    continue;
                }
                Response::Body(Body::Memory(body), v) => {
                    validators = v;
                    body
                }
            };
            scrub_bytes(&mut body, secret);
            if let Some(link) = feed.adapter.next_page(&req.url, &body) {
                urlpolicy::check(&link).map_err(|m| FeedError::Http {
                    feed: cfg.name.clone(),
                    url: shown_url(&link),
                    message: format!("next page refused: {m}"),
                })?;
                let mut n = Request::get(&link);
                n.headers = req.headers.clone();
                n.label = req.label.clone();
                next = Some(n);
            }
            pages.push(Page::new(req.label.clone(), body));
        }
    }
    if pages.len() != 1 {
        validators = Validators::default();
    }
    Ok(Fetched::Pages {
        pages,
        validators,
        note: None,
    })
}

/// Read a recorded payload: a file is one page with an empty label; a directory holds
/// one page per file (sorted by name), each labelled with its file stem, which stands
/// for the request context a live fetch would have (e.g. `cn-shanghai__ecs.gn7.8x`).
async fn read_recorded(feed: &str, path: &std::path::Path) -> Result<Vec<Page>, FeedError> {
    let mut pages = Vec::new();
    for (label, p) in recorded_files(feed, path).await? {
        let body = tokio::fs::read(&p).await.map_err(read_failed(feed, &p))?;
        pages.push(Page::new(label, body));
    }
    Ok(pages)
}

/// A recorded payload's files with their labels: a file alone (empty label), or a
/// directory's visible files sorted by name, each labelled with its stem.
async fn recorded_files(
    feed: &str,
    path: &std::path::Path,
) -> Result<Vec<(String, std::path::PathBuf)>, FeedError> {
    let err = |p: &std::path::Path| read_failed(feed, p);
    let meta = tokio::fs::metadata(path).await.map_err(err(path))?;
    if !meta.is_dir() {
        return Ok(vec![(String::new(), path.to_path_buf())]);
    }
    let mut files = Vec::new();
    let mut rd = tokio::fs::read_dir(path).await.map_err(err(path))?;
    while let Some(e) = rd.next_entry().await.map_err(err(path))? {
        let p = e.path();
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if p.is_file() && !hidden {
            files.push(p);
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let label = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (label, p)
        })
        .collect())
}

/// A recorded payload's file that cannot be read, as the feed's error.
fn read_failed(feed: &str, p: &std::path::Path) -> impl FnOnce(std::io::Error) -> FeedError {
    let (feed, path) = (feed.to_string(), p.to_path_buf());
    move |source| FeedError::ReadPayload { feed, path, source }
}

/// One request's answer: a body, with the version the server named for it, or 304.
enum Response {
    Body(Body, Validators),
    NotModified(Validators),
}

/// A body read whole into memory, or spooled to a file.
enum Body {
    Memory(Vec<u8>),
    Spooled(crate::model::Spooled),
}

enum Attempt {
    Done(Response),
    Retry {
        wait: Option<Duration>,
        message: String,
    },
    Fail(FeedError),
}

/// One request, retried as the rules say; `known` makes it conditional; with
/// `spool`, a body is spooled to a new file in that folder.
async fn fetch_one(
    cx: Ctx<'_>,
    req: &Request,
    known: Option<&Validators>,
) -> Result<Response, FeedError> {
    let cfg = &cx.feed.config;
    let mut attempt = 0u32;
    loop {
        match attempt_once(cx, req, known).await {
            Attempt::Done(response) => return Ok(response),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { wait, message } => {
                if attempt >= cfg.retries {
                    return Err(FeedError::Http {
                        feed: cfg.name.clone(),
                        url: shown_url(&req.url),
                        message: format!("{message} (gave up after {} attempts)", attempt + 1),
                    });
                }
                let backoff = cfg.retry_base_ms.saturating_mul(1u64 << attempt.min(16));
                let jitter = fastrand::u64(0..=backoff / 2);
                let delay = wait.unwrap_or(Duration::from_millis(backoff + jitter));
                tracing::warn!(feed = %cfg.name, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, "{message}; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// One request: check the URL, send, sort the status, read the body under the cap.
async fn attempt_once(cx: Ctx<'_>, req: &Request, known: Option<&Validators>) -> Attempt {
    let Ctx {
        client,
        feed,
        secret,
        spool,
    } = cx;
    let cfg = &feed.config;
    let fail = |message: String| {
        Attempt::Fail(FeedError::Http {
            feed: cfg.name.clone(),
            url: shown_url(&req.url),
            message,
        })
    };
    if let Err(m) = urlpolicy::check(&req.url) {
        return fail(redact(m.to_string(), secret));
    }
    let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
        return fail(format!("bad method {}", req.method));
    };
    // A request with the key goes through the client that keeps it on its server.
    let client = if secret.is_some() {
        keyed_client()
    } else {
        client
    };
    let mut rb = client
        .request(method, &req.url)
        .timeout(Duration::from_secs(cfg.timeout_s));
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    if let Some(k) = known {
        rb = conditions(rb, k);
    }
    if let Some(b) = &req.body {
        rb = rb.body(b.clone());
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            let message = redact(send_error(&e, cfg.timeout_s), secret);
            let transient = e.is_timeout() || e.is_connect() || e.is_request();
            return if transient {
                Attempt::Retry {
                    wait: None,
                    message,
                }
            } else {
                fail(message)
            };
        }
    };
    let validators = validators_of(&resp, secret);
    if known.is_some() && resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Attempt::Done(Response::NotModified(validators));
    }
    if let Some(stop) = sort_status(&resp, feed, &req.url) {
        return stop;
    }
    match read_capped(resp, cfg, &req.url, secret, spool).await {
        Ok(body) => Attempt::Done(Response::Body(body, validators)),
        Err(stop) => stop,
    }
}

/// Longest `ETag` or `Last-Modified` value kept; a longer one is ignored.
const MAX_VALIDATOR: usize = 512;

/// The `ETag` and `Last-Modified` a response carries, scrubbed of the secret.
fn validators_of(resp: &reqwest::Response, secret: Option<&str>) -> Validators {
    let get = |name| {
        let v = resp.headers().get(name)?.to_str().ok()?.trim();
        (!v.is_empty() && v.len() <= MAX_VALIDATOR).then(|| scrub(v, secret))
    };
    Validators {
        etag: get(reqwest::header::ETAG),
        last_modified: get(reqwest::header::LAST_MODIFIED),
        version: None,
    }
}

/// Ask only for a payload other than the one `known` names.
fn conditions(mut rb: reqwest::RequestBuilder, known: &Validators) -> reqwest::RequestBuilder {
    if let Some(etag) = &known.etag {
        rb = rb.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(date) = &known.last_modified {
        rb = rb.header(reqwest::header::IF_MODIFIED_SINCE, date);
    }
    rb
}

/// A status to retry (429, 5xx, honouring `Retry-After`) or to fail on; `None` to
/// read the body (a success, or a client error the adapter reads as records).
fn sort_status(resp: &reqwest::Response, feed: &Feed, url: &str) -> Option<Attempt> {
    let status = resp.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let wait = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(300)));
        return Some(Attempt::Retry {
            wait,
            message: format!("HTTP status {}", status.as_u16()),
        });
    }
    let error_is_record = status.is_client_error() && feed.adapter.error_bodies_are_records();
    (!status.is_success() && !error_is_record).then(|| {
        Attempt::Fail(FeedError::Status {
            feed: feed.config.name.clone(),
            url: shown_url(url),
            status: status.as_u16(),
        })
    })
}

/// Read the body (into memory, or with `spool` into a new file there), failing as
/// soon as it passes `max_bytes` (declared or received); a slow or cut-off body is
/// transient and retried. A body given up leaves no file.
async fn read_capped(
    mut resp: reqwest::Response,
    cfg: &FeedConfig,
    url: &str,
    secret: Option<&str>,
    spool: Option<&Path>,
) -> Result<Body, Attempt> {
    let fail = |message: String| {
        Attempt::Fail(FeedError::Http {
            feed: cfg.name.clone(),
            url: shown_url(url),
            message,
        })
    };
    let too_large = || {
        Attempt::Fail(FeedError::TooLarge {
            feed: cfg.name.clone(),
            url: shown_url(url),
            limit_bytes: cfg.max_bytes,
        })
    };
    if resp
        .content_length()
        .is_some_and(|n| n as usize > cfg.max_bytes)
    {
        return Err(too_large());
    }
    let mut sink = match spool {
        Some(dir) => Sink::Spool(SpoolWriter::start(dir)),
        None => Sink::Memory(Vec::new()),
    };
    let mut received = 0usize;
    loop {
        let stop = match resp.chunk().await {
            Ok(Some(chunk)) if received + chunk.len() > cfg.max_bytes => too_large(),
            Ok(Some(chunk)) => {
                received += chunk.len();
                match sink.push(&chunk).await {
                    Ok(()) => continue,
                    Err(m) => fail(m),
                }
            }
            Ok(None) => return sink.finish().await.map_err(fail),
            Err(e) => {
                let message = redact(body_error(&e, cfg.timeout_s, received), secret);
                if e.is_timeout() || message.contains("body ended early") {
                    Attempt::Retry {
                        wait: None,
                        message,
                    }
                } else {
                    fail(message)
                }
            }
        };
        sink.discard().await;
        return Err(stop);
    }
}

/// Where a body goes while it is read.
enum Sink {
    Memory(Vec<u8>),
    Spool(SpoolWriter),
}

impl Sink {
    async fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        match self {
            Sink::Memory(body) => {
                body.extend_from_slice(chunk);
                Ok(())
            }
            Sink::Spool(w) => w.push(chunk).await,
        }
    }

    async fn finish(self) -> Result<Body, String> {
        match self {
            Sink::Memory(body) => Ok(Body::Memory(body)),
            Sink::Spool(w) => w.finish().await.map(Body::Spooled),
        }
    }

    async fn discard(self) {
        if let Sink::Spool(w) = self {
            w.discard().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, secret: Option<&str>, expected: &str) {
        assert_eq!(scrub(text, secret), expected, "{text} / {secret:?}");
        let mut bytes = text.as_bytes().to_vec();
        scrub_bytes(&mut bytes, secret);
        assert_eq!(String::from_utf8(bytes).unwrap(), expected, "bytes: {text}");
    }

    #[test]
    fn secrets_are_scrubbed() {
        check(
            "Bearer sk-123456 sk-123456",
            Some("sk-123456"),
            "Bearer [redacted] [redacted]",
        );
        check(
            "id=AKID1234, key=topsecretkey",
            Some("AKID1234:topsecretkey"),
            "id=[redacted], key=[redacted]",
        );
        check(
            "AKID1234:topsecretkey",
            Some("AKID1234:topsecretkey"),
            "[redacted]",
        );
        check("ab:cd abc", Some("ab:cd"), "[redacted] abc");
        // Echoed escaped (found by a fault hunt: a JSON `\/` got past, and the
        // adapter's error then held the decoded key).
        let key = Some("sk/Zq8TopSecret/9xY");
        check(
            r#"{"msg":"invalid sk\/Zq8TopSecret\/9xY"}"#,
            key,
            r#"{"msg":"invalid [redacted]"}"#,
        );
        check("?k=sk%2FZq8TopSecret%2F9xY&x=1", key, "?k=[redacted]&x=1");
        check("?k=sk%2fZq8TopSecret%2f9xY", key, "?k=[redacted]");
        check(r#"a\"b\\cdef"#, Some(r#"a"b\cdef"#), "[redacted]");
        // Back to back and overlapping: leftmost first, no overlap, as `str::replace`.
        check(
            "sk-123456sk-123456.",
            Some("sk-123456"),
            "[redacted][redacted].",
        );
        check("aaaaaaaaa", Some("aaaa"), "[redacted][redacted]a");
        check("no secret here", None, "no secret here");
        check("x marks x", Some("x"), "x marks x");
    }
}
