//! The fault suite: a misbehaving HTTP server on 127.0.0.1 (refuses, hangs, drips,
//! truncates, gzip-bombs, echoes secrets, redirects off loopback, changes the schema,
//! answers 429/5xx) against the real `gpurent` binary, plus crash safety (kill -9 at
//! seeded random moments) and a fault soak of the daemon on a simulated clock.
//!
//! Every case checks the exit code, a message that names the feed and the cause, what
//! was stored (no duplicate keys), that an independent reader (polars' own glob scan
//! of `<store>/offers/*/*.parquet`, hidden files included, as DuckDB would) reads the
//! store, and that no secret appears in stdout, stderr or any file of the store
//! (Parquet decoded, raw pages gunzipped).

mod crash;
mod soak;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polars::prelude::*;

use crate::common::{gpurent, tempdir};

pub const AT: &str = "2024-10-07T12:00:00Z";

/// What the fault server does with one request.
#[derive(Clone)]
pub enum Fault {
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request, never answer (the socket stays open for a minute).
    Hang,
    /// Announce the whole body, send it `chunk` bytes every `every_ms`.
    Drip {
        body: Vec<u8>,
        chunk: usize,
        every_ms: u64,
    },
    /// Announce the whole body, send `keep` bytes, close.
    Truncate { body: Vec<u8>, keep: usize },
}

impl Fault {
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Fault::Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Self {
        Fault::Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }
}

/// A request as the route sees it: path and headers.
pub struct Req {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Route = Arc<dyn Fn(&Req) -> Fault + Send + Sync>;

/// A loopback server whose answers a route function decides; one thread per connection.
pub struct FaultServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<String>>>,
}

impl FaultServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

pub fn fault_server(route: impl Fn(&Req) -> Fault + Send + Sync + 'static) -> FaultServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let (route, h): (Route, _) = (Arc::new(route), Arc::clone(&hits));
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let (route, h) = (Arc::clone(&route), Arc::clone(&h));
            std::thread::spawn(move || serve(sock, &route, &h));
        }
    });
    FaultServer { addr, hits }
}

fn read_head(sock: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Req {
        path: target.split('?').next().unwrap_or("").to_string(),
        headers,
    })
}

fn serve(mut sock: TcpStream, route: &Route, hits: &Mutex<Vec<String>>) {
    let Some(req) = read_head(&mut sock) else {
        return;
    };
    hits.lock().unwrap().push(req.path.clone());
    let head = |status: u16, headers: &[(String, String)], len: usize| {
        let mut h = format!("HTTP/1.1 {status} X\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h + &format!("Content-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let json = vec![("Content-Type".to_string(), "application/json".to_string())];
    let _ = match route(&req) {
        Fault::Reply {
            status,
            headers,
            body,
        } => sock
            .write_all(head(status, &headers, body.len()).as_bytes())
            .and_then(|()| sock.write_all(&body)),
        Fault::Hang => {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        Fault::Drip {
            body,
            chunk,
            every_ms,
        } => (|| {
            sock.write_all(head(200, &json, body.len()).as_bytes())?;
            for c in body.chunks(chunk) {
                sock.write_all(c)?;
                std::thread::sleep(Duration::from_millis(every_ms));
            }
            Ok(())
        })(),
        Fault::Truncate { body, keep } => sock
            .write_all(head(200, &json, body.len()).as_bytes())
            .and_then(|()| sock.write_all(&body[..keep])),
    };
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// A vast.ai payload of `n` one-GPU H100 SXM offers in Texas (ids 1..=n, on demand).
pub fn vast_body(n: usize) -> Vec<u8> {
    let offers: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"id": {i}, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": {:.2}, "geolocation": "Texas, US"}}"#,
                2.0 + i as f64 / 100.0
            )
        })
        .collect();
    format!("{{\"offers\": [{}]}}", offers.join(",\n")).into_bytes()
}

/// Write `<dir>/feeds/<name>.toml` files; returns the feeds directory.
pub fn feeds(dir: &Path, files: &[(&str, String)]) -> PathBuf {
    let f = dir.join("feeds");
    std::fs::create_dir_all(&f).unwrap();
    for (name, text) in files {
        std::fs::write(f.join(format!("{name}.toml")), text).unwrap();
    }
    f
}

pub fn vast_feed(url: &str, extra: &str) -> String {
    format!("format = \"vastai\"\nurl = \"{url}\"\ntimeout_s = 1\nretries = 0\nretry_base_ms = 10\n{extra}")
}

/// `gpurent ingest` at `at` with extra environment; (exit code, stdout, stderr).
pub fn ingest_env(
    feeds: &Path,
    store: &Path,
    at: &str,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
        .args(["ingest", "--feeds"])
        .arg(feeds)
        .arg("--store")
        .arg(store)
        .args(["--at", at])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn ingest(feeds: &Path, store: &Path) -> (i32, String, String) {
    ingest_env(feeds, store, AT, &[])
}

/// Read `<store>/<kind>/*/*.parquet` with polars' glob, hidden files included (what
/// DuckDB's `read_parquet` would see). None when the tree has no partition yet.
pub fn glob_read(store: &Path, kind: &str) -> Option<DataFrame> {
    let base = store.join(kind);
    let has_files = std::fs::read_dir(&base).ok()?.flatten().any(|d| {
        std::fs::read_dir(d.path())
            .map(|mut r| {
                r.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet")))
            })
            .unwrap_or(false)
    });
    if !has_files {
        return None;
    }
    let glob = format!("{}/*/*.parquet", base.display());
    let args = ScanArgsParquet {
        allow_missing_columns: true,
        hive_options: HiveOptions::new_disabled(),
        ..Default::default()
    };
    let df = LazyFrame::scan_parquet(PlRefPath::new(glob.as_str()), args)
        .and_then(|lf| lf.collect())
        .unwrap_or_else(|e| panic!("an independent reader cannot read {glob}: {e}"));
    Some(df)
}

/// The stored offers (independent glob read) after checking: no duplicate (feed,
/// offer_id, observed_at, price_class), no hidden or temporary file in any partition,
/// and rejects readable too. Returns the offers (empty frame when none).
pub fn check_store(store: &Path) -> DataFrame {
    for kind in ["offers", "rejects"] {
        for d in std::fs::read_dir(store.join(kind))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(d.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                assert!(
                    !name.starts_with('.'),
                    "stray file {} in a partition",
                    f.path().display()
                );
            }
        }
    }
    let _ = glob_read(store, "rejects");
    let Some(offers) = glob_read(store, "offers") else {
        return DataFrame::empty();
    };
    let keys = offers
        .select(["feed", "offer_id", "observed_at", "price_class"])
        .unwrap();
    let mut seen = HashSet::new();
    for i in 0..keys.height() {
        let row: Vec<String> = keys
            .columns()
            .iter()
            .map(|c| c.get(i).unwrap().to_string())
            .collect();
        assert!(seen.insert(row.clone()), "duplicate stored key {row:?}");
    }
    offers
}

/// Every text in the store: files as bytes, `.gz` decompressed, Parquet decoded to
/// its string cells.
pub fn store_texts(store: &Path) -> Vec<(PathBuf, String)> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(store, &mut files);
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let text = match p.extension().and_then(|x| x.to_str()) {
                Some("gz") => {
                    let mut s = Vec::new();
                    flate2::read::GzDecoder::new(bytes.as_slice())
                        .read_to_end(&mut s)
                        .unwrap();
                    String::from_utf8_lossy(&s).into_owned()
                }
                Some("parquet") => {
                    let df = ParquetReader::new(std::fs::File::open(&p).unwrap())
                        .finish()
                        .unwrap();
                    format!("{df:?}")
                        + &df
                            .columns()
                            .iter()
                            .filter_map(|c| c.str().ok())
                            .flat_map(|s| {
                                s.iter().flatten().map(str::to_string).collect::<Vec<_>>()
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                }
                _ => String::from_utf8_lossy(&bytes).into_owned(),
            };
            (p, text)
        })
        .collect()
}

pub fn assert_no_secret(secret: &str, outputs: &[&str], store: &Path) {
    for o in outputs {
        assert!(!o.contains(secret), "secret in output: {o}");
    }
    for (p, text) in store_texts(store) {
        assert!(!text.contains(secret), "secret in {}", p.display());
    }
}

/// The run's lines in `out`: each feed of `failed` FAILED, naming itself and its
/// cause, and the line of feed `good` holds `good`.
pub fn assert_fails_alone<S: AsRef<str>>(out: &str, failed: &[(&str, S)], good: &str) {
    for (feed, cause) in failed {
        let l = line(out, feed);
        assert!(
            l.contains("FAILED")
                && l.contains(&format!("feed {feed}"))
                && l.contains(cause.as_ref()),
            "{feed}: {l}"
        );
    }
    assert!(line(out, "good").contains(good), "{out}");
}

pub fn line<'a>(stdout: &'a str, feed: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{feed}: ")))
        .unwrap_or_else(|| panic!("no line for {feed} in {stdout}"))
}

/// A temporary directory on tmpfs when there is one: crash trials (kill -9, not power
/// loss) and the soak are about faults, not about fsync latency on a busy disk.
pub fn fast_tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempdir())
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn refused_hung_dripped_truncated_bombed() {
    let body = vast_body(40);
    let big = vec![b' '; 8 << 20];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&big).unwrap();
    let bomb = gz.finish().unwrap();
    let b = body.clone();
    let srv = fault_server(move |r| match r.path.as_str() {
        "/hang" => Fault::Hang,
        "/drip" => Fault::Drip {
            body: b.clone(),
            chunk: 200,
            every_ms: 300,
        },
        "/trunc" => Fault::Truncate {
            body: b.clone(),
            keep: 800,
        },
        "/bomb" => Fault::Reply {
            status: 200,
            headers: vec![("Content-Encoding".into(), "gzip".into())],
            body: bomb.clone(),
        },
        _ => Fault::json(b.clone()),
    });
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[
            (
                "refused",
                vast_feed(&format!("http://127.0.0.1:{}/x", closed_port()), ""),
            ),
            ("hang", vast_feed(&srv.url("/hang"), "")),
            ("drip", vast_feed(&srv.url("/drip"), "")),
            ("trunc", vast_feed(&srv.url("/trunc"), "")),
            (
                "bomb",
                vast_feed(&srv.url("/bomb"), "max_bytes = 1000000\n"),
            ),
            ("good", vast_feed(&srv.url("/good"), "")),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 1, "{out}\n{err}");
    let failed = [
        ("refused", "Connection refused"),
        ("hang", "timed out after 1 s waiting for a response"),
        ("drip", "timed out after 1 s while reading the body"),
        ("trunc", "body ended early after 800 bytes"),
        ("bomb", "larger than the 1000000 byte cap"),
    ];
    assert_fails_alone(&out, &failed, "ok, 40 offers read, 40 stored");
    let offers = check_store(&store);
    assert_eq!(offers.height(), 40);
    // Failed fetches leave nothing in raw/ or failed/ (there was no payload).
    let raw: Vec<_> = std::fs::read_dir(store.join("raw/date=2024-10-07"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(raw.len(), 1, "{raw:?}");
}

#[test]
fn truncated_then_good_payload_survives_renormalise() {
    // Defect 1: the first attempt gets a truncated JSON body that still ends cleanly
    // (the server announces exactly what it sends), the re-run a good one.
    let good = vast_body(16);
    let bad = good[..good.len() / 2].to_vec();
    let calls = Arc::new(Mutex::new(0));
    let c = Arc::clone(&calls);
    let srv = fault_server(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        Fault::json(if *n == 1 { bad.clone() } else { good.clone() })
    });
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url("/v"), ""))]);
    let store = tmp.path().join("store");
    let (code, out, _) = ingest(&f, &store);
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "vast").contains("malformed payload"), "{out}");
    assert!(
        !store.join("raw").exists(),
        "a payload that failed must not enter raw/"
    );
    let failed: Vec<_> = std::fs::read_dir(store.join("failed/date=2024-10-07"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "the failed payload is kept apart for diagnosis"
    );
    let (code, out, _) = ingest(&f, &store);
    assert_eq!(code, 0, "{out}");
    assert_eq!(check_store(&store).height(), 16);
    // The kept raw page is exactly the good payload.
    let blob = raw_blob(&store, "date=2024-10-07/vast__20241007T12");
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(std::fs::read(blob).unwrap().as_slice())
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, vast_body(16));
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 runs rebuilt, 16 offers stored, 0 failed"),
        "{out}"
    );
    assert_eq!(check_store(&store).height(), 16);
}

/// The blob holding the first page of the raw run `<date folder>/<feed>__<hour>`, as
/// the run's `.json` names it.
pub fn raw_blob(store: &Path, run: &str) -> PathBuf {
    let meta = std::fs::read(store.join("raw").join(format!("{run}.json"))).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    let sha = meta["blobs"][0]["sha256"].as_str().unwrap().to_string();
    store.join(format!("raw/blobs/{}/{sha}.gz", &sha[..2]))
}

/// A vast.ai server whose every answer holds one offer more than the one before (5,
/// 6, 7, … offers), so each hour has a blob of its own; and the feeds folder under
/// `dir` with feed `vast` reading it.
pub fn growing_vast(dir: &Path) -> (FaultServer, PathBuf) {
    let served = Mutex::new(4);
    let srv = fault_server(move |_| {
        let mut n = served.lock().unwrap();
        *n += 1;
        Fault::json(vast_body(*n))
    });
    let f = feeds(dir, &[("vast", vast_feed(&srv.url("/v"), ""))]);
    (srv, f)
}

#[test]
fn renormalise_keeps_hours_it_cannot_rebuild() {
    // Each hour's payload differs (5, 6, 7, 8 offers), so each hour has a blob of its own.
    let tmp = tempdir();
    let (_srv, f) = growing_vast(tmp.path());
    let store = tmp.path().join("store");
    for h in 10..=13 {
        assert_eq!(
            ingest_env(&f, &store, &format!("2024-10-07T{h}:00:00Z"), &[]).0,
            0
        );
    }
    // Hour 10's blob is not gzip, hour 11's record is gone, hour 13's blob is gzip
    // whose content no longer matches its name.
    let run = |h: u32| format!("date=2024-10-07/vast__20241007T{h}");
    let (not_gzip, other) = (raw_blob(&store, &run(10)), raw_blob(&store, &run(13)));
    std::fs::write(&not_gzip, b"this is not gzip data").unwrap();
    std::fs::remove_file(store.join("raw").join(run(11) + ".json")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vast_body(3)).unwrap();
    std::fs::write(&other, gz.finish().unwrap()).unwrap();
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "1 runs rebuilt, 7 offers stored, 2 failed; 3 runs kept unchanged (19 offers)"
        ),
        "{out}"
    );
    for (hour, blob, why) in [(10, &not_gzip, "invalid gzip"), (13, &other, "damaged")] {
        let at = format!("FAILED: vast 2024-10-07 {hour}:00:00 UTC: ");
        let l = out.lines().find(|l| l.starts_with(&at)).unwrap_or_default();
        assert!(
            l.contains(&blob.display().to_string())
                && l.contains(why)
                && l.contains("stored offers are kept"),
            "{l}"
        );
    }
    assert_eq!(check_store(&store).height(), 26);
}

#[test]
fn schema_drift_fails_the_feed() {
    // Defect 2: valid JSON whose fields were renamed.
    let drifted: Vec<String> = (1..=8)
        .map(|i| {
            format!(r#"{{"id": {i}, "gpuName": "H100 SXM", "gpuCount": 1, "pricePerHour": 2.5}}"#)
        })
        .collect();
    let drifted = format!("{{\"offers\": [{}]}}", drifted.join(","));
    let srv = fault_server(move |r| match r.path.as_str() {
        "/drift" => Fault::json(drifted.clone()),
        _ => Fault::json(vast_body(3)),
    });
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[
            ("drift", vast_feed(&srv.url("/drift"), "")),
            ("good", vast_feed(&srv.url("/good"), "")),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 1, "{out}{err}");
    let l = line(&out, "drift");
    assert!(
        l.contains("FAILED: feed drift") && l.contains("format seems to have changed"),
        "{l}"
    );
    assert!(
        l.contains("8 of 8 records malformed") && l.contains("missing fields: gpu_name)"),
        "{l}"
    );
    assert!(line(&out, "good").contains("3 stored"));
    let offers = check_store(&store);
    assert_eq!(offers.height(), 3, "nothing of the drifted feed is stored");
    assert!(store
        .join("failed/date=2024-10-07/drift__20241007T12__001/page-000.gz")
        .is_file());
    assert!(!store
        .join("raw/date=2024-10-07/drift__20241007T12.json")
        .exists());
    // The failed hour is not marked as stored: a re-run retries it.
    let (_, out, _) = ingest(&f, &store);
    assert!(line(&out, "drift").contains("FAILED"), "{out}");
}

#[test]
fn bad_numbers_and_duplicates_are_per_record() {
    // Defect 3: one `1e999` among 12 good records; defect 4: an id listed twice.
    let mut good: Vec<String> = String::from_utf8(vast_body(12))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let last = good.len() - 1;
    good[last] = good[last].trim_end_matches("]}").to_string() + ",";
    let body = format!(
        "{}\n{}\n{}]}}",
        good.join("\n"),
        r#"{"id": 99, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 1e999, "geolocation": "Texas, US"},"#,
        r#"{"id": 3, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 9.99, "geolocation": "Texas, US"}"#
    );
    serde_json::from_str::<serde_json::Value>(&body).unwrap_err(); // serde_json alone refuses 1e999
    let srv = fault_server(move |_| Fault::json(body.clone()));
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url("/v"), ""))]);
    let store = tmp.path().join("store");
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 0, "{out}{err}");
    let l = line(&out, "vast");
    assert!(
        l.contains("14 offers read, 12 stored, 2 rejected (bad_record 1, duplicate_offer 1)"),
        "{l}"
    );
    let offers = check_store(&store);
    let id3 = crate::common::rows_where(&offers, &[("offer_id", "3")]);
    assert_eq!(
        crate::common::f64_col(&id3, "usd_per_gpu_hour"),
        vec![2.03],
        "the first listing is kept"
    );
    let rejects = glob_read(&store, "rejects").unwrap();
    let details = crate::common::str_col(&rejects, "detail").join("\n");
    assert!(
        details.contains("1e999") && details.contains("listed more than once"),
        "{details}"
    );
}

#[test]
fn echoed_secret_is_scrubbed_everywhere() {
    // Defect 6: a lambda server that echoes the Authorization header into its body.
    const KEY: &str = "sk-live-7f3a9c1e5b2d4680";
    let srv = fault_server(|r| {
        let auth = r.header("authorization").unwrap_or("").to_string();
        match r.path.as_str() {
            "/lambda" => Fault::json(format!(
                r#"{{"echo": "{auth}", "data": {{
                  "gpu_1x_h100": {{"instance_type": {{"name": "gpu_1x_h100", "description": "1x H100 (80 GB SXM5)", "gpu_description": "H100 (80 GB SXM5)", "price_cents_per_hour": 249, "specs": {{"gpus": 1}}}}, "regions_with_capacity_available": [{{"name": "us-east-1"}}]}},
                  "{auth}": {{"instance_type": {{"name": "{auth}", "gpu_description": "{auth}", "price_cents_per_hour": 100, "specs": {{"gpus": 1}}}}}},
                  "gpu_bad": {{"instance_type": {{"description": "{auth}"}}}}
                }}}}"#
            )),
            _ => Fault::json(format!("{{\"broken\": \"{auth}\"")),
        }
    });
    let tmp = tempdir();
    let lambda = |path: &str| {
        format!(
            "format = \"lambda\"\nurl = \"{}\"\nauth_env = \"FAULT_KEY\"\nretries = 0\n",
            srv.url(path)
        )
    };
    let f = feeds(
        tmp.path(),
        &[
            ("lambda", lambda("/lambda")),
            ("lambdabroken", lambda("/broken")),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest_env(
        &f,
        &store,
        AT,
        &[("FAULT_KEY", KEY), ("GPURENT_LOG", "debug")],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(line(&out, "lambda").contains("1 stored"), "{out}");
    assert!(line(&out, "lambdabroken").contains("FAILED"), "{out}");
    assert!(
        store.join("failed").is_dir()
            && store.join("raw").is_dir()
            && store.join("rejects").is_dir()
    );
    let runs = std::fs::read_dir(store.join("runs")).unwrap().count();
    assert_eq!(runs, 1);
    assert_no_secret(KEY, &[&out, &err], &store);
    // The scrubbed marker is there instead.
    let raw = store_texts(&store.join("raw"))
        .into_iter()
        .map(|t| t.1)
        .collect::<String>();
    assert!(raw.contains("Bearer [redacted]"), "{raw}");
}

#[test]
fn off_loopback_http_is_refused_before_any_request() {
    // Defect 5: redirects, next-page links and feed URLs off loopback over plain http.
    let srv = fault_server(|r| match r.path.as_str() {
        "/redirect" => Fault::status(302, &[("Location", "http://192.0.2.1:9/x")]),
        "/azure" => {
            Fault::json(r#"{"Items": [], "NextPageLink": "http://127.0.0.1@192.0.2.1:9/next"}"#)
        }
        _ => Fault::json(vast_body(2)),
    });
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[
            ("userinfo", vast_feed("http://127.0.0.1@192.0.2.1:9/x", "")),
            (
                "dnsname",
                vast_feed("http://127.0.0.1.example.invalid/x", ""),
            ),
            ("redirect", vast_feed(&srv.url("/redirect"), "")),
            (
                "azure",
                format!(
                    "format = \"azure_retail\"\nurl = \"{}\"\nretries = 0\n",
                    srv.url("/azure")
                ),
            ),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        line(&out, "userinfo").contains("user name or password"),
        "{out}"
    );
    assert!(line(&out, "dnsname").contains("must use https"), "{out}");
    let l = line(&out, "redirect");
    assert!(
        l.contains("redirect refused") && l.contains("must use https"),
        "{l}"
    );
    let l = line(&out, "azure");
    assert!(
        l.contains("next page refused") && l.contains("user name or password"),
        "{l}"
    );
    // The server saw the redirecting request and the first azure page, nothing else.
    let mut hits = srv.hits();
    hits.sort();
    assert_eq!(hits, vec!["/azure", "/redirect"]);
    check_store(&store);
}

#[test]
fn retries_say_why_and_then_succeed() {
    let calls = Arc::new(Mutex::new(0));
    let c = Arc::clone(&calls);
    let srv = fault_server(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        match *n {
            1 => Fault::status(429, &[("Retry-After", "0")]),
            2 => Fault::status(503, &[]),
            _ => Fault::json(vast_body(4)),
        }
    });
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[(
            "vast",
            vast_feed(&srv.url("/v"), "").replace("retries = 0", "retries = 2"),
        )],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("HTTP status 429")
            && err.contains("HTTP status 503")
            && err.contains("retrying"),
        "{err}"
    );
    assert_eq!(check_store(&store).height(), 4);
    // A refused connection's retry warning names the cause too.
    let f2 = feeds(
        &tmp.path().join("b"),
        &[(
            "gone",
            vast_feed(&format!("http://127.0.0.1:{}/x", closed_port()), "")
                .replace("retries = 0", "retries = 1"),
        )],
    );
    let (code, out, err) = ingest(&f2, &tmp.path().join("store2"));
    assert_eq!(code, 1);
    assert!(
        err.contains("Connection refused") && err.contains("retrying"),
        "{err}"
    );
    assert!(
        line(&out, "gone").contains("gave up after 2 attempts"),
        "{out}"
    );
}

#[test]
fn empty_feeds_dir_is_an_error() {
    let tmp = tempdir();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("README.md"), "not a feed").unwrap();
    let (code, out, err) = ingest(&empty, &tmp.path().join("store"));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no feeds") && err.contains("empty"), "{err}");
}

#[test]
fn second_writer_waits_for_the_lock() {
    let srv = fault_server(|_| Fault::json(vast_body(3)));
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url("/v"), ""))]);
    let store_dir = tmp.path().join("store");
    let store = gpurent::store::Store::open(&store_dir);
    let held = store.lock().unwrap();
    let args = |wait: &str| {
        vec![
            "ingest".to_string(),
            "--feeds".into(),
            f.display().to_string(),
            "--store".into(),
            store_dir.display().to_string(),
            "--at".into(),
            AT.into(),
            "--lock-wait".into(),
            wait.into(),
        ]
    };
    let a = args("1");
    let (code, out, err) = gpurent(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("still locked")
            && err.contains("after waiting 1 s")
            && err.contains("--lock-wait"),
        "{err}"
    );
    // A writer that waits long enough gets the lock when the first one lets go.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let a = args("60");
    let (code, out, err) = gpurent(&a.iter().map(String::as_str).collect::<Vec<_>>());
    release.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("waiting up to 60 s"), "{err}");
    assert_eq!(check_store(&store_dir).height(), 3);
}

#[test]
fn closed_stdout_does_not_panic() {
    let srv = fault_server(|_| Fault::json(vast_body(30)));
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url("/v"), ""))]);
    let store = tmp.path().join("store");
    for h in 0..3 {
        assert_eq!(
            ingest_env(&f, &store, &format!("2024-10-0{}T12:00:00Z", 5 + h), &[]).0,
            0
        );
    }
    let s = store.to_str().unwrap();
    for args in [
        vec!["prices", "--store", s],
        vec![
            "history",
            "--store",
            s,
            "--model",
            "H100-SXM-80GB",
            "--every",
            "1h",
        ],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away at once, as `| head` does
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// (reason, count) of a store's rejects, and every reject's detail.
fn reject_reasons(store: &Path) -> (BTreeMap<String, usize>, Vec<(String, String)>) {
    let df = glob_read(store, "rejects").expect("rejects stored");
    let reasons = crate::common::str_col(&df, "reason");
    let details = crate::common::str_col(&df, "detail");
    let mut counts = BTreeMap::new();
    for r in &reasons {
        *counts.entry(r.clone()).or_default() += 1;
    }
    (counts, reasons.into_iter().zip(details).collect())
}

#[test]
fn every_reject_reason_is_produced_and_explained() {
    let tmp = tempdir();
    let dir = tmp.path();
    std::fs::write(
        dir.join("usd.csv"),
        "id,gpu,gpus,price,instance,mem\n\
         ok,H100 SXM,1,2.5,,80\n\
         unk,Mystery GPU 9000,1,2.5,,\n\
         tpu,TPU v5e,1,2.5,,\n\
         nocount,H100 SXM,,2.5,,\n\
         zero,H100 SXM,0,2.5,,\n\
         free,H100 SXM,1,0,,\n\
         inf,H100 SXM,1,1e999,,\n\
         noprice,H100 SXM,1,,,\n\
         badnum,H100 SXM,two,2.5,,\n\
         nanmem,H100 SXM,1,2.5,,NaN\n\
         it,,,2.5,mystery.type.8x,\n\
         ok,H100 SXM,1,2.6,,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("cny.csv"),
        "id,gpu,gpus,price\ncn1,H100 SXM,1,20\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ecb.xml"),
        crate::common::fixture("eurofxref-daily.xml"),
    )
    .unwrap();
    let csv = |file: &str, currency: &str| {
        format!(
            "format = \"generic_csv\"\nurl = \"{}\"\nprovider = \"testcloud\"\ncurrency = \"{currency}\"\nprice_unit = \"gpu-hour\"\nprice_class = \"on_demand\"\n[columns]\noffer_id = \"id\"\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price\"\n{}",
            dir.join(file).display(),
            if file == "usd.csv" { "instance_type = \"instance\"\nmemory_gb = \"mem\"\n" } else { "" }
        )
    };
    // USD reasons, and CNY with no ECB rate at all.
    let f = feeds(
        &dir.join("a"),
        &[
            ("usd", csv("usd.csv", "USD")),
            ("cny", csv("cny.csv", "CNY")),
        ],
    );
    let store = dir.join("store-a");
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 0, "{out}{err}");
    let (counts, details) = reject_reasons(&store);
    let want: BTreeMap<String, usize> = [
        ("unknown_gpu_name", 1),
        ("not_a_gpu", 1),
        ("missing_gpu_count", 1),
        ("bad_gpu_count", 1),
        ("bad_number", 1),
        ("non_positive_price", 2),
        ("missing_price", 1),
        ("bad_field", 1),
        ("unknown_instance_type", 1),
        ("duplicate_offer", 1),
        ("missing_fx_rate", 1),
    ]
    .into_iter()
    .map(|(r, n)| (r.to_string(), n))
    .collect();
    assert_eq!(counts, want);
    for (r, d) in &details {
        assert!(!d.trim().is_empty(), "reject {r} has no detail");
    }
    let detail = |reason: &str| -> Vec<&str> {
        details
            .iter()
            .filter(|(r, _)| r == reason)
            .map(|(_, d)| d.as_str())
            .collect()
    };
    assert_eq!(
        detail("bad_gpu_count"),
        ["GPU count 0.0 is not a positive finite number"]
    );
    assert_eq!(
        detail("bad_number"),
        ["gpu_memory_gb NaN is not a finite number of zero or more"]
    );
    let prices = detail("non_positive_price").join(" | ");
    assert!(
        prices.contains("price 0.0 USD per gpu-hour is not a positive finite number")
            && prices.contains("inf"),
        "{prices}"
    );
    assert!(detail("missing_fx_rate")[0].contains("no ECB rate for CNY"));
    // FX staleness: the ECB fixture's rates are of Friday 2024-10-04; three days later
    // they convert, sixteen days later (limit 7) they are too old.
    let f = feeds(
        &dir.join("b"),
        &[
            ("cny", csv("cny.csv", "CNY")),
            (
                "ecb",
                format!(
                    "format = \"ecb_fx\"\nurl = \"{}\"\n",
                    dir.join("ecb.xml").display()
                ),
            ),
        ],
    );
    let store = dir.join("store-b");
    let (code, out, _) = ingest_env(&f, &store, "2024-10-07T12:00:00Z", &[]);
    assert_eq!(code, 0);
    assert!(line(&out, "cny").contains("1 stored, 0 rejected"), "{out}");
    let (code, out, _) = ingest_env(&f, &store, "2024-10-20T12:00:00Z", &[]);
    assert_eq!(code, 0);
    assert!(
        line(&out, "cny").contains("0 stored, 1 rejected (missing_fx_rate 1)"),
        "{out}"
    );
    let (_, details) = reject_reasons(&store);
    assert!(details[0].1.contains("within 7 days"), "{details:?}");
}

#[test]
fn unknown_unit_is_rejected_with_a_detail() {
    // Feed files refuse unknown units when read; an adapter could still emit one.
    use gpurent::model::{Basis, PriceUnit, RawOffer};
    let mut o = RawOffer::new("testcloud", "x1", "H100 SXM");
    o.gpu_count = Some(1.0);
    o.price = Some(2.0);
    o.price_unit = PriceUnit::new("unit", Basis::Gpu, "fortnight");
    let ctx = gpurent::normalise::Context::new("t", AT.parse().unwrap());
    let fx = gpurent::normalise::fx_frame(&[]).unwrap();
    let b = gpurent::normalise::normalise(
        vec![o].into(),
        &[],
        &ctx,
        gpurent::tables::Tables::embedded(),
        &fx,
    )
    .unwrap();
    assert_eq!(b.reject_counts(), vec![("unknown_unit".to_string(), 1)]);
    assert_eq!(
        crate::common::str_col(&b.rejects, "detail"),
        ["unit gpu-fortnight is not in tables/units.toml"]
    );
}

#[test]
fn huge_numbers_are_per_record_in_other_json_adapters() {
    // The fix is in the shared JSON decoding, so lambda (a typed map of entries) gets
    // it too: the `1e999` entry is one bad_record, the other entry an offer.
    let feed = gpurent::ingest::feed::parse_feed(
        Path::new("/feeds/l.toml"),
        "format = 'lambda'\nurl = 'l.json'",
    )
    .unwrap();
    let body = r#"{"data": {
      "gpu_1x_h100": {"instance_type": {"name": "gpu_1x_h100", "gpu_description": "H100 (80 GB SXM5)", "price_cents_per_hour": 249, "specs": {"gpus": 1}}},
      "gpu_8x_h100": {"instance_type": {"name": "gpu_8x_h100", "gpu_description": "H100 (80 GB SXM5)", "price_cents_per_hour": 1e999, "specs": {"gpus": 8}}}
    }}"#;
    let ctx = gpurent::ingest::adapters::ParseCtx {
        feed: "l",
        provider: "lambda",
    };
    let page = gpurent::ingest::adapters::Page {
        label: String::new(),
        body: body.as_bytes().to_vec(),
        spool: None,
    };
    let p = feed.adapter.parse(&page, &ctx).unwrap();
    assert_eq!(p.offers.len(), 1);
    assert_eq!(p.rejects.len(), 1);
    assert_eq!(p.rejects[0].reason, "bad_record");
    assert!(p.rejects[0].detail.contains("1e999"), "{:?}", p.rejects[0]);
}

#[test]
fn response_caps_are_per_format() {
    let cap = |format: &str, extra: &str| {
        gpurent::ingest::feed::parse_feed(
            Path::new("/feeds/x.toml"),
            &format!("format = '{format}'\nurl = 'x'\n{extra}"),
        )
        .unwrap()
        .config
        .max_bytes
    };
    assert_eq!(cap("vastai", ""), 64 << 20);
    assert_eq!(cap("ecb_fx", ""), 1 << 20);
    assert_eq!(cap("lambda", ""), 4 << 20);
    assert_eq!(cap("vastai", "max_bytes = 5000"), 5000);
    assert!(gpurent::ingest::adapters::MAX_BYTES
        .iter()
        .all(|(_, b)| *b <= 1 << 30));
}

#[test]
fn stray_temp_and_orphan_rejects_files_are_cleaned_under_the_lock() {
    let srv = fault_server(|_| Fault::json(vast_body(3)));
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url("/v"), ""))]);
    let store = tmp.path().join("store");
    assert_eq!(ingest_env(&f, &store, "2024-10-07T11:00:00Z", &[]).0, 0);
    // What a crashed older writer left: a partial temp file inside a partition, and a
    // rejects file for an hour whose offers file was never written.
    let part = store.join("offers/date=2024-10-07");
    std::fs::write(
        part.join(".tmp-1-2-vast__20241007T12.parquet"),
        b"PAR1 partial",
    )
    .unwrap();
    let rejects = store.join("rejects/date=2024-10-07");
    std::fs::create_dir_all(&rejects).unwrap();
    let donor = store.join("offers/date=2024-10-07/vast__20241007T11.parquet");
    std::fs::copy(&donor, rejects.join("vast__20241007T13.parquet")).unwrap();
    let own = |s: &Path| {
        gpurent::store::Store::open(s)
            .scan_rejects(None, None)
            .unwrap()
            .map_or(0, |lf| lf.collect().unwrap().height())
    };
    assert_eq!(
        own(&store),
        0,
        "gpurent's readers skip a rejects file without offers"
    );
    assert_eq!(ingest_env(&f, &store, "2024-10-07T12:00:00Z", &[]).0, 0);
    assert!(!part.join(".tmp-1-2-vast__20241007T12.parquet").exists());
    assert!(!rejects.join("vast__20241007T13.parquet").exists());
    assert_eq!(check_store(&store).height(), 6);
    assert!(std::fs::read_dir(store.join(".tmp")).map_or(true, |mut r| r.next().is_none()));
}

/// A run whose commit fails (here its rejects file cannot be put in place) is not
/// stored, so it keeps no raw hour either: `renormalise` must not rebuild an hour
/// that ingest reported as failed (found by a fault hunt: a full disk at the offers
/// rename left the raw hour, and renormalise later stored all its offers).
#[test]
fn a_run_that_fails_at_its_commit_leaves_no_raw_hour() {
    let tmp = tempdir();
    let store = tmp.path().join("store");
    // Made while the server answers, after the lock's clean-up: where the run's
    // rejects file would go, a directory, so its rename fails.
    let blocker = store.join("rejects/date=2024-10-07/vast__20241007T12.parquet");
    let b = blocker.clone();
    let srv = fault_server(move |_| {
        std::fs::create_dir_all(&b).unwrap();
        Fault::json(
            br#"{"offers": [
            {"id": 1, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 2.5, "geolocation": "Texas, US"},
            {"id": 2, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": -1, "geolocation": "Texas, US"}]}"#
                .to_vec(),
        )
    });
    std::fs::write(tmp.path().join("w.json"), vast_body(3)).unwrap();
    let wide = tmp.path().join("w.json").display().to_string();
    let f = feeds(
        tmp.path(),
        &[
            ("vast", vast_feed(&srv.url("/v"), "")),
            ("wide", vast_feed(&wide, "")),
        ],
    );
    let (code, out, err) = ingest(&f, &store);
    assert_eq!(code, 1, "{out}{err}");
    assert!(line(&out, "vast").contains("FAILED"), "{out}");
    assert!(
        line(&out, "wide").contains("3 stored"),
        "the other feed: {out}"
    );
    let raw = store.join("raw/date=2024-10-07");
    assert!(!raw.join("vast__20241007T12.json").exists(), "no raw hour");
    assert!(raw.join("wide__20241007T12.json").exists());

    std::fs::remove_dir(&blocker).unwrap();
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 runs rebuilt, 3 offers stored"), "{out}");
    assert_eq!(
        check_store(&store).height(),
        3,
        "only the stored run's offers"
    );

    // The failed run kept its payload before its commit failed; no hour names that
    // blob, and compact removes it (and only it).
    let blobs = || {
        let (mut n, dirs) = (0, std::fs::read_dir(store.join("raw/blobs")).unwrap());
        for d in dirs {
            n += std::fs::read_dir(d.unwrap().path()).unwrap().count();
        }
        n
    };
    assert_eq!(blobs(), 2);
    let (code, out, err) = gpurent(&["compact", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("; 1 no hour names removed ("), "{out}");
    assert_eq!(blobs(), 1);
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 runs rebuilt, 3 offers stored"), "{out}");
}

/// A key the server echoes escaped (JSON's `\/`, as PHP writes it, or
/// percent-encoded) is scrubbed too: from the archived body, from what an adapter
/// decoded into an error (kept in `failed/`) and into reject details (found by a
/// fault hunt: `failed/.../meta.json` held the key in clear).
#[test]
fn escaped_echo_of_the_secret_is_scrubbed() {
    const KEY: &str = "sk/live+7f3a/9c1e=5b2d";
    let srv = fault_server(|r| {
        let auth = r.header("authorization").unwrap_or("").to_string();
        let json = auth.replace('/', "\\/");
        let pct: String = auth
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        match r.path.as_str() {
            "/lambda" => Fault::json(format!(
                r#"{{"echo": "{json} {pct}", "data": {{
                  "gpu_1x_h100": {{"instance_type": {{"name": "gpu_1x_h100", "description": "1x H100 (80 GB SXM5)", "gpu_description": "H100 (80 GB SXM5)", "price_cents_per_hour": 249, "specs": {{"gpus": 1}}}}, "regions_with_capacity_available": [{{"name": "us-east-1"}}]}},
                  "x": {{"instance_type": {{"name": "{json}", "gpu_description": "{json} {pct}", "price_cents_per_hour": 100, "specs": {{"gpus": 1}}}}}}
                }}}}"#
            )),
            _ => Fault::json(format!(
                r#"{{"code": "AuthorizeFailed", "msg": "invalid token {json}"}}"#
            )),
        }
    });
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[
            (
                "lambda",
                format!(
                    "format = \"lambda\"\nurl = \"{}\"\nauth_env = \"FAULT_KEY\"\nretries = 0\n",
                    srv.url("/lambda")
                ),
            ),
            (
                "autodl",
                format!(
                    "format = \"autodl\"\nurl = \"{}\"\nauth_env = \"FAULT_KEY\"\nretries = 0\npages = 1\npage_size = 10\n",
                    srv.url("/autodl")
                ),
            ),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest_env(&f, &store, AT, &[("FAULT_KEY", KEY)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(line(&out, "lambda").contains("1 stored"), "{out}");
    assert!(
        line(&out, "autodl").contains("invalid token [redacted]"),
        "{out}"
    );
    assert!(store.join("failed").is_dir() && store.join("rejects").is_dir());
    assert_no_secret(KEY, &[&out, &err], &store);
}

/// A redirect that leaves the feed's server is not followed when the request
/// carries the feed's key: reqwest drops `Authorization` on such a redirect but not
/// a key header such as Shadeform's `X-API-KEY`, which the other host would get
/// (found by a fault hunt). A feed without a key still follows it.
#[test]
fn a_keyed_request_never_follows_a_redirect_to_another_server() {
    const KEY: &str = "shade-key-5b2d7f3a9c1e";
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let other = fault_server(move |r| {
        s.lock()
            .unwrap()
            .push(r.header("x-api-key").unwrap_or("").to_string());
        Fault::json(vast_body(2))
    });
    // The same loopback address by another name and port: another origin.
    let elsewhere = other.url("/x").replace("127.0.0.1", "localhost");
    let srv = fault_server(move |_| Fault::status(302, &[("Location", elsewhere.as_str())]));
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[
            (
                "shade",
                format!(
                    "format = \"shadeform\"\nurl = \"{}\"\nauth_env = \"FAULT_KEY\"\nretries = 0\n",
                    srv.url("/types")
                ),
            ),
            ("vast", vast_feed(&srv.url("/v"), "")),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest_env(&f, &store, AT, &[("FAULT_KEY", KEY)]);
    assert_eq!(code, 1, "{out}{err}");
    let shade = line(&out, "shade");
    assert!(
        shade.contains("redirect refused") && shade.contains("key"),
        "{out}"
    );
    assert!(
        line(&out, "vast").contains("2 stored"),
        "keyless: followed: {out}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [""],
        "only the keyless request got there"
    );
    assert_no_secret(KEY, &[&out, &err], &store);
}

/// A truncated offers file makes every reader fail with an error naming that file,
/// where polars' own error names none (found by a fault hunt); `compact` names it
/// too, leaves that day as it was and exits 1 (a failed input, not a failed run).
#[test]
fn a_truncated_parquet_file_is_named_by_every_reader() {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("v.json"), vast_body(3)).unwrap();
    let url = tmp.path().join("v.json").display().to_string();
    let f = feeds(tmp.path(), &[("vast", vast_feed(&url, ""))]);
    let store = tmp.path().join("store");
    for at in ["2024-10-07T12:00:00Z", "2024-10-07T13:00:00Z"] {
        assert_eq!(ingest_env(&f, &store, at, &[]).0, 0);
    }
    let bad = store.join("offers/date=2024-10-07/vast__20241007T13.parquet");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() - 20]).unwrap();
    // An ingest a week later refreshes the rollups: its warning names the file.
    let (code, out, err) = ingest_env(&f, &store, "2024-10-15T12:00:00Z", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("rollups not updated") && err.contains(&bad.display().to_string()),
        "{err}"
    );
    let s = store.to_str().unwrap();
    for args in [
        vec!["prices", "--store", s],
        vec!["history", "--store", s, "--model", "H100-SXM-80GB"],
        vec!["report", "--store", s, "--week", "2024-W41", "--out"],
        vec!["compact", "--store", s, "--before", "2024-10-08"],
    ] {
        let mut args = args;
        let out_dir = tmp.path().join("reports");
        if args.last() == Some(&"--out") {
            args.push(out_dir.to_str().unwrap());
        }
        let (code, out, err) = gpurent(&args);
        let want = if args[0] == "compact" { 1 } else { 2 };
        assert_eq!(code, want, "{args:?}: {out}{err}");
        assert!(err.contains(&bad.display().to_string()), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&bad).unwrap(), bytes[..bytes.len() - 20]);
}
