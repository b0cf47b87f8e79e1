//! Raw payloads as the binary keeps them: each distinct page once, by content hash;
//! a conditional GET whose 304 ingests the last payload again; AWS's region index,
//! whose unchanged version does the same without downloading the offer file, and
//! whose unusable index or failed versioned file falls back to the feed URL; a lost
//! kept blob, fetched again rather than asked about; and a store written before
//! blobs (each hour's own `page-NNN.gz`) that keeps working.

mod spill;
mod stream;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::common::{gpurent, sample, tempdir};
use crate::faults::{
    check_store, fault_server, feeds, growing_vast, ingest_env, line, raw_blob, vast_body,
    vast_feed, Fault, FaultServer,
};

/// Every blob file under `<store>/raw/blobs`.
fn blobs(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(store.join("raw/blobs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        out.extend(
            std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    out
}

/// The stored offers without the observation time, sorted: what two hours that saw
/// the same payload must share.
fn offers_of_hour(offers: &DataFrame, hour: u32) -> DataFrame {
    let t = col("observed_at").dt().hour().cast(DataType::UInt32);
    offers
        .clone()
        .lazy()
        .filter(t.eq(lit(hour)))
        .drop(cols(["observed_at"]))
        .sort(["offer_id", "price_class"], Default::default())
        .collect()
        .unwrap()
}

fn sorted(offers: DataFrame) -> DataFrame {
    offers
        .lazy()
        .sort(
            ["observed_at", "offer_id", "price_class"],
            Default::default(),
        )
        .collect()
        .unwrap()
}

fn at(h: u32) -> String {
    format!("2024-10-07T{h:02}:00:00Z")
}

/// The ingest run record of the hour `h` (the only record written at that hour).
fn run_record(store: &Path, h: u32) -> serde_json::Value {
    let dir = std::fs::read_dir(store.join("runs")).unwrap();
    let path = dir
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.contains("ingest") && {
                let text = std::fs::read_to_string(p).unwrap();
                text.contains(&format!(
                    "\"observed_at\": \"2024-10-07T{h:02}:00:00+00:00\""
                ))
            }
        })
        .unwrap_or_else(|| panic!("no ingest record for hour {h}"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A server that names its payload's version by `header` (`ETag` or `Last-Modified`)
/// and answers 304 to a request whose `condition` header names that version; the
/// version and body it serves can be changed. Records each request's condition.
struct Versioned {
    url: String,
    served: Arc<Mutex<(String, Vec<u8>)>>,
    asked: Arc<Mutex<Vec<Option<String>>>>,
}

/// A JSON body answered with `header: value` (an `ETag` or `Last-Modified`).
fn tagged(body: Vec<u8>, header: &str, value: &str) -> Fault {
    match Fault::json(body) {
        Fault::Reply {
            status,
            mut headers,
            body,
        } => {
            headers.push((header.to_string(), value.to_string()));
            Fault::Reply {
                status,
                headers,
                body,
            }
        }
        _ => unreachable!(),
    }
}

fn versioned(header: &'static str, condition: &'static str, version: &str) -> Versioned {
    let served = Arc::new(Mutex::new((version.to_string(), vast_body(5))));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (s, a) = (Arc::clone(&served), Arc::clone(&asked));
    let srv = fault_server(move |r| {
        let (version, body) = s.lock().unwrap().clone();
        let cond = r.header(condition).map(str::to_string);
        a.lock().unwrap().push(cond.clone());
        if cond.as_deref() == Some(version.as_str()) {
            return Fault::status(304, &[(header, &version)]);
        }
        tagged(body, header, &version)
    });
    Versioned {
        url: srv.url("/v"),
        served,
        asked,
    }
}

/// A 304 to the conditional request stores the last payload again under the new
/// hour, as an ordinary stored run marked `not_modified`, with one blob for both
/// hours; renormalise rebuilds both equal. A changed payload is fetched whole.
#[test]
fn not_modified_ingests_the_last_payload_again() {
    for (header, condition, v1, v2) in [
        ("ETag", "If-None-Match", "\"v1\"", "\"v2\""),
        (
            "Last-Modified",
            "If-Modified-Since",
            "Mon, 07 Oct 2024 09:00:00 GMT",
            "Mon, 07 Oct 2024 11:30:00 GMT",
        ),
    ] {
        let srv = versioned(header, condition, v1);
        let tmp = tempdir();
        let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url, ""))]);
        let store = tmp.path().join("store");
        let (code, first, _) = ingest_env(&f, &store, &at(10), &[]);
        assert_eq!(code, 0, "{first}");
        let (code, second, err) = ingest_env(&f, &store, &at(11), &[]);
        assert_eq!(code, 0, "{second}{err}");
        assert_eq!(
            *srv.asked.lock().unwrap(),
            [None, Some(v1.to_string())],
            "{header}"
        );
        assert!(
            line(&second, "vast").contains(
                "ok (not modified: last payload ingested again), 5 offers read, 5 stored"
            ),
            "{second}"
        );
        let record = &run_record(&store, 11)["feeds"][0];
        assert_eq!(
            (record["status"].as_str(), record["not_modified"].as_bool()),
            (Some("stored"), Some(true))
        );
        assert_eq!(run_record(&store, 10)["feeds"][0].get("not_modified"), None);
        assert_eq!(blobs(&store).len(), 1, "{header}: one blob for both hours");

        let offers = check_store(&store);
        assert_eq!(offers.height(), 10);
        assert_eq!(offers_of_hour(&offers, 10), offers_of_hour(&offers, 11));
        let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("2 runs rebuilt, 10 offers stored, 0 failed"),
            "{out}"
        );
        assert_eq!(sorted(check_store(&store)), sorted(offers), "{header}");

        // The server's payload changes: the conditional request gets it whole.
        *srv.served.lock().unwrap() = (v2.to_string(), vast_body(7));
        let (code, third, _) = ingest_env(&f, &store, &at(12), &[]);
        assert_eq!(code, 0, "{third}");
        assert!(
            line(&third, "vast").contains("ok, 7 offers read, 7 stored"),
            "{third}"
        );
        assert_eq!(srv.asked.lock().unwrap()[2].as_deref(), Some(v1));
        assert_eq!(blobs(&store).len(), 2);
    }
}

/// The feed URL of the us-east-1 EC2 offer file, its region index, and the path of
/// its version `v` (`YYYYMMDDhhmmss`), as AWS lays them out.
const AWS_CURRENT: &str = "/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json";
const AWS_INDEX: &str = "/offers/v1.0/aws/AmazonEC2/current/region_index.json";

fn aws_version(v: &str, region: &str) -> String {
    format!("/offers/v1.0/aws/AmazonEC2/{v}/{region}/index.json")
}

/// A region index in AWS's wire format naming these regions' version paths.
fn region_index(regions: &[(&str, &str)]) -> Fault {
    let entries: Vec<String> = regions
        .iter()
        .map(|(code, path)| {
            format!(r#""{code}":{{"regionCode":"{code}","currentVersionUrl":"{path}"}}"#)
        })
        .collect();
    Fault::json(format!(
        r#"{{"formatVersion":"v1.0","disclaimer":"This pricing list is for informational purposes only.","publicationDate":"2024-10-01T00:00:00Z","regions":{{{}}}}}"#,
        entries.join(",")
    ))
}

/// The recorded EC2 offer file as version `v`, its p5.48xlarge price set to `price`.
fn aws_offer_file(v: &str, price: &str) -> Fault {
    let text = String::from_utf8(sample("aws_offer.sample.json")).unwrap();
    let text = text
        .replace(
            "\"version\": \"20241001000000\"",
            &format!("\"version\": \"{v}\""),
        )
        .replace("98.3200000000", price);
    Fault::json(text)
}

/// The feed URL's `ETag`; a request naming it is answered 304.
const AWS_ETAG: &str = "\"current-1\"";

/// What each path of a test server answers.
type Routes = Arc<Mutex<HashMap<String, Fault>>>;

/// An AWS price list server on 127.0.0.1: each path answers what the returned map
/// holds for it (404 otherwise), and the feed URL answers 304 to `AWS_ETAG`; the
/// server counts requests per path (`hits`).
fn aws_server() -> (FaultServer, Routes) {
    let routes = Arc::new(Mutex::new(HashMap::<String, Fault>::new()));
    let r = Arc::clone(&routes);
    let srv = fault_server(move |req| {
        if req.path == AWS_CURRENT && req.header("If-None-Match") == Some(AWS_ETAG) {
            return Fault::status(304, &[("ETag", AWS_ETAG)]);
        }
        let routes = r.lock().unwrap();
        routes
            .get(&req.path)
            .cloned()
            .unwrap_or_else(|| Fault::status(404, &[]))
    });
    (srv, routes)
}

fn aws_feed(srv: &FaultServer) -> String {
    format!(
        "format = \"aws_offer\"\nurl = \"{}\"\nprovider = \"aws\"\ntimeout_s = 5\nretries = 1\nretry_base_ms = 10\n",
        srv.url(AWS_CURRENT)
    )
}

/// The raw hour file of feed `aws` at hour `h`.
fn aws_raw_hour(store: &Path, h: u32) -> serde_json::Value {
    let path = store.join(format!("raw/date=2024-10-07/aws__20241007T{h:02}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn hits_of(srv: &FaultServer, path: &str) -> usize {
    srv.hits().iter().filter(|p| *p == path).count()
}

const AWS_LINE: &str = "5 offers read, 4 stored, 1 rejected (unknown_instance_type 1)";

/// The region index first: a new version's offer file is fetched and the version
/// kept with it; the same version again downloads nothing more and stores the last
/// payload again as `not_modified`, with the same rows; a newer version is fetched.
#[test]
fn aws_offer_downloads_a_version_once() {
    let (srv, routes) = aws_server();
    let (v1, v2) = (
        aws_version("20241001000000", "us-east-1"),
        aws_version("20241101000000", "us-east-1"),
    );
    let west = aws_version("20241001000000", "us-west-2");
    {
        let mut r = routes.lock().unwrap();
        r.insert(
            AWS_INDEX.into(),
            region_index(&[("us-west-2", &west), ("us-east-1", &v1)]),
        );
        r.insert(v1.clone(), v1_file());
        r.insert(
            v2.clone(),
            aws_offer_file("20241101000000", "90.0000000000"),
        );
    }
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("aws", aws_feed(&srv))]);
    let store = tmp.path().join("store");

    let (code, out, err) = ingest_env(&f, &store, &at(10), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(line(&out, "aws"), format!("aws: ok, {AWS_LINE}"));
    assert_eq!(srv.hits(), [AWS_INDEX, v1.as_str()]);
    assert_eq!(
        aws_raw_hour(&store, 10)["version"].as_str(),
        Some(v1.as_str())
    );

    let (code, out, err) = ingest_env(&f, &store, &at(11), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        line(&out, "aws"),
        format!("aws: ok (not modified: last payload ingested again), {AWS_LINE}")
    );
    assert_eq!(
        srv.hits(),
        [AWS_INDEX, v1.as_str(), AWS_INDEX],
        "no second download"
    );
    let hour = aws_raw_hour(&store, 11);
    assert_eq!(
        (hour["version"].as_str(), hour["not_modified"].as_bool()),
        (Some(v1.as_str()), Some(true))
    );
    assert_eq!(run_record(&store, 11)["feeds"][0]["not_modified"], true);
    assert_eq!(blobs(&store).len(), 1);
    let offers = check_store(&store);
    assert_eq!(offers.height(), 8);
    assert_eq!(offers_of_hour(&offers, 10), offers_of_hour(&offers, 11));

    routes.lock().unwrap().insert(
        AWS_INDEX.into(),
        region_index(&[("us-east-1", &v2), ("us-west-2", &west)]),
    );
    let (code, out, err) = ingest_env(&f, &store, &at(12), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(line(&out, "aws"), format!("aws: ok, {AWS_LINE}"));
    assert_eq!((hits_of(&srv, &v2), hits_of(&srv, &v1)), (1, 1));
    assert_eq!(
        hits_of(&srv, AWS_CURRENT),
        0,
        "the feed URL itself is never asked"
    );
    assert_eq!(
        aws_raw_hour(&store, 12)["version"].as_str(),
        Some(v2.as_str())
    );
    assert_eq!(blobs(&store).len(), 2);
    let offers = check_store(&store);
    assert_ne!(offers_of_hour(&offers, 12), offers_of_hour(&offers, 10));
}

/// Hours 10 and 11 of feed `aws` fetched from its feed URL instead of the way the
/// index says (the second hour conditionally: a 304 stores the last payload again):
/// each line reads `ok…, AWS_LINE; {note}` with `why` in it and ends with `end`, the
/// run record keeps the line, the log says `log`, and no version is kept.
fn check_detour_hours(f: &Path, store: &Path, why: &str, (note, end): (&str, &str), log: &str) {
    for (h, reused) in [
        (10, ""),
        (11, " (not modified: last payload ingested again)"),
    ] {
        let (code, out, err) = ingest_env(f, store, &at(h), &[]);
        assert_eq!(code, 0, "{why}: {out}{err}");
        let got = line(&out, "aws");
        let start = format!("aws: ok{reused}, {AWS_LINE}; {note}");
        assert!(
            got.starts_with(&start) && got.contains(why) && got.ends_with(end),
            "{why}: {got}"
        );
        assert_eq!(run_record(store, h)["feeds"][0]["line"], got);
        assert!(err.contains(log), "{why}: {err}");
        assert_eq!(aws_raw_hour(store, h).get("version"), None, "{why}");
    }
}

/// A region index that fails (500), lacks the region or is not JSON loses no run:
/// the feed URL is fetched as without an index (conditionally the next hour), the
/// line says why, and no version is kept; once the index works, it is followed.
#[test]
fn aws_offer_without_a_usable_index_fetches_the_feed_url() {
    let v1 = aws_version("20241001000000", "us-east-1");
    let west = aws_version("20241001000000", "us-west-2");
    for (index, why, index_hits) in [
        (
            Fault::status(500, &[]),
            "HTTP status 500 (gave up after 2 attempts)",
            2,
        ),
        (
            region_index(&[("us-west-2", &west)]),
            "names no region \"us-east-1\"",
            1,
        ),
        (
            Fault::json("<html>Service Unavailable</html>"),
            "invalid JSON",
            1,
        ),
    ] {
        let (srv, routes) = aws_case(index, v1_file(), None);
        let tmp = tempdir();
        let f = feeds(tmp.path(), &[("aws", aws_feed(&srv))]);
        let store = tmp.path().join("store");
        let line_parts = ("version index not used (", "; fetched the feed URL");
        check_detour_hours(&f, &store, why, line_parts, "version index not used");
        assert_eq!(hits_of(&srv, AWS_CURRENT), 2, "{why}");
        assert_eq!(hits_of(&srv, AWS_INDEX), 2 * index_hits, "{why}");
        assert_eq!(hits_of(&srv, &v1), 0, "{why}");
        assert_eq!(check_store(&store).height(), 8, "{why}");

        routes
            .lock()
            .unwrap()
            .insert(AWS_INDEX.into(), region_index(&[("us-east-1", &v1)]));
        let (code, out, err) = ingest_env(&f, &store, &at(12), &[]);
        assert_eq!(code, 0, "{why}: {out}{err}");
        assert_eq!(line(&out, "aws"), format!("aws: ok, {AWS_LINE}"), "{why}");
        assert_eq!(hits_of(&srv, &v1), 1, "{why}");
        assert_eq!(
            aws_raw_hour(&store, 12)["version"].as_str(),
            Some(v1.as_str())
        );
    }
}

/// Version `v1` (20241001000000) of us-east-1's offer file, as recorded.
fn v1_file() -> Fault {
    aws_offer_file("20241001000000", "98.3200000000")
}

/// An AWS server (`aws_server`) whose region index answers `index`, whose version
/// `v1` of us-east-1 answers `versioned` and whose feed URL answers `current`
/// (`None`: the recorded offer file under `AWS_ETAG`).
fn aws_case(index: Fault, versioned: Fault, current: Option<Fault>) -> (FaultServer, Routes) {
    let (srv, routes) = aws_server();
    {
        let mut r = routes.lock().unwrap();
        r.insert(AWS_INDEX.into(), index);
        r.insert(aws_version("20241001000000", "us-east-1"), versioned);
        let current =
            current.unwrap_or_else(|| tagged(sample("aws_offer.sample.json"), "ETag", AWS_ETAG));
        r.insert(AWS_CURRENT.into(), current);
    }
    (srv, routes)
}

/// An `aws_case` whose region index names version `v1` of us-east-1; `/vast` serves
/// 3 vast.ai offers. The feeds `aws` and `vast` in a new temporary folder.
fn fallback_case(versioned: Fault, current: Option<Fault>) -> (FaultServer, tempfile::TempDir) {
    let v1 = aws_version("20241001000000", "us-east-1");
    let index = region_index(&[("us-east-1", &v1)]);
    let (srv, routes) = aws_case(index, versioned, current);
    routes
        .lock()
        .unwrap()
        .insert("/vast".into(), Fault::json(vast_body(3)));
    let tmp = tempdir();
    let vast = vast_feed(&srv.url("/vast"), "");
    feeds(tmp.path(), &[("aws", aws_feed(&srv)), ("vast", vast)]);
    (srv, tmp)
}

/// A versioned offer file answered 500, or cut off, after its retries.
fn broken_versions() -> [(Fault, &'static str); 2] {
    let body = sample("aws_offer.sample.json");
    let keep = body.len() / 2;
    [
        (
            Fault::status(500, &[]),
            "HTTP status 500 (gave up after 2 attempts)",
        ),
        (Fault::Truncate { body, keep }, "body ended early after"),
    ]
}

/// A versioned offer file that fails loses no run: the feed URL is fetched as for
/// an unusable index (conditionally the next hour, whose 304 stores the last
/// payload again), the rows are those of the versioned file, the line and the log
/// say why, and no version is kept.
#[test]
fn aws_offer_whose_versioned_file_fails_fetches_the_feed_url() {
    let v1 = aws_version("20241001000000", "us-east-1");
    let reference = {
        let (_srv, tmp) = fallback_case(v1_file(), None);
        let store = tmp.path().join("store");
        let (code, out, err) = ingest_env(&tmp.path().join("feeds"), &store, &at(10), &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(line(&out, "aws"), format!("aws: ok, {AWS_LINE}"));
        offers_of_hour(&check_store(&store), 10)
    };
    assert_eq!(reference.height(), 4 + 3, "aws and vast offers");
    for (versioned, why) in broken_versions() {
        let (srv, tmp) = fallback_case(versioned, None);
        let (f, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
        let note = format!("versioned file not fetched (GET {}: ", srv.url(&v1));
        let log = "versioned file not fetched, fetching the feed URL";
        check_detour_hours(&f, &store, why, (&note, "); fetched the feed URL"), log);
        assert_eq!(hits_of(&srv, &v1), 4, "{why}: two attempts an hour");
        assert_eq!(hits_of(&srv, AWS_CURRENT), 2, "{why}");
        let offers = check_store(&store);
        assert_eq!(offers_of_hour(&offers, 10), offers_of_hour(&offers, 11));
        assert_eq!(offers_of_hour(&offers, 10), reference, "{why}");
    }
}

/// When the feed URL fetched instead of a failed versioned file fails too, the feed
/// fails with both errors, each naming its URL; the other feeds of the run are
/// stored as ever.
#[test]
fn aws_offer_fails_when_the_versioned_file_and_the_feed_url_fail() {
    let v1 = aws_version("20241001000000", "us-east-1");
    let [(five_hundred, why_500), (cut_off, why_cut)] = broken_versions();
    for (versioned, why, current, then) in [
        (
            five_hundred,
            why_500,
            Fault::status(404, &[]),
            "{url}: HTTP status 404",
        ),
        (
            cut_off,
            why_cut,
            Fault::status(503, &[]),
            "GET {url}: HTTP status 503 (gave up after 2 attempts)",
        ),
    ] {
        let (srv, tmp) = fallback_case(versioned, Some(current));
        let (f, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
        let (code, out, err) = ingest_env(&f, &store, &at(10), &[]);
        assert_eq!(code, 1, "{why}: {out}{err}");
        let got = line(&out, "aws");
        let (first, second) = got
            .split_once("; the feed URL fetched instead failed too: ")
            .unwrap_or_else(|| panic!("{why}: {got}"));
        assert!(
            first.starts_with(&format!("aws: FAILED: feed aws: GET {}: ", srv.url(&v1)))
                && first.contains(why),
            "{why}: {got}"
        );
        assert_eq!(
            second,
            then.replace("{url}", &srv.url(AWS_CURRENT)),
            "{why}"
        );
        assert_eq!(
            line(&out, "vast"),
            "vast: ok, 3 offers read, 3 stored, 0 rejected"
        );
        assert!(err.contains("versioned file not fetched"), "{why}: {err}");
        let offers = check_store(&store);
        let feeds = offers.column("feed").unwrap().str().unwrap();
        assert!(feeds.iter().all(|f| f == Some("vast")), "{why}");
        assert_eq!(offers.height(), 3, "{why}");
    }
}

/// Ways a kept blob is lost, and what the error then says: deleted, or replaced by
/// another body (its content no longer hashes to its name).
const LOST_BLOBS: [(&str, &str); 2] = [
    ("deleted", "No such file or directory"),
    ("damaged", "damaged: its content hashes to"),
];

fn lose_blob(blob: &Path, how: &str) {
    match how {
        "deleted" => std::fs::remove_file(blob).unwrap(),
        _ => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
            gz.write_all(b"{\"offers\": []}").unwrap();
            std::fs::write(blob, gz.finish().unwrap()).unwrap();
        }
    }
}

/// True when the blob is gzip whose body hashes to the blob's name.
fn intact(blob: &Path) -> bool {
    let mut body = Vec::new();
    let read = std::fs::File::open(blob)
        .and_then(|f| flate2::read::GzDecoder::new(f).read_to_end(&mut body));
    let name = format!("{}.gz", hex::encode(Sha256::digest(&body)));
    read.is_ok() && blob.file_name().unwrap().to_string_lossy() == name
}

/// The line of a feed whose kept payload was lost: `ok` and `counts`, then the note
/// naming the blob and why.
fn assert_refetched(got: &str, feed: &str, counts: &str, blob: &Path, why: &str) {
    let start = format!(
        "{feed}: ok, {counts}; last payload cannot be read ({}: ",
        blob.display()
    );
    assert!(
        got.starts_with(&start) && got.contains(why) && got.ends_with("); fetched in full"),
        "{why}: {got}"
    );
}

/// An unchanged version whose kept blob was deleted or damaged downloads the
/// versioned file again: the line and the log say why, the rows are those of the
/// hour before, the blob is whole again, and the next hour reads it without a
/// download.
#[test]
fn aws_offer_whose_blob_is_lost_downloads_its_version_again() {
    let v1 = aws_version("20241001000000", "us-east-1");
    for (how, why) in LOST_BLOBS {
        let (srv, tmp) = fallback_case(v1_file(), None);
        let (f, store) = (tmp.path().join("feeds"), tmp.path().join("store"));
        assert_eq!(ingest_env(&f, &store, &at(10), &[]).0, 0);
        let blob = raw_blob(&store, "date=2024-10-07/aws__20241007T10");
        lose_blob(&blob, how);
        assert!(!intact(&blob), "{how}");

        let (code, out, err) = ingest_env(&f, &store, &at(11), &[]);
        assert_eq!(code, 0, "{how}: {out}{err}");
        assert_refetched(line(&out, "aws"), "aws", AWS_LINE, &blob, why);
        assert!(
            err.contains("last payload cannot be read, fetching in full"),
            "{how}: {err}"
        );
        assert_eq!(hits_of(&srv, &v1), 2, "{how}: downloaded again");
        let hour = aws_raw_hour(&store, 11);
        assert_eq!(
            (hour["version"].as_str(), hour.get("not_modified")),
            (Some(v1.as_str()), None),
            "{how}"
        );
        assert!(intact(&blob), "{how}: the blob is written again");
        let offers = check_store(&store);
        assert_eq!(offers_of_hour(&offers, 10), offers_of_hour(&offers, 11));

        let (code, out, err) = ingest_env(&f, &store, &at(12), &[]);
        assert_eq!(code, 0, "{how}: {out}{err}");
        assert_eq!(
            line(&out, "aws"),
            format!("aws: ok (not modified: last payload ingested again), {AWS_LINE}")
        );
        assert_eq!(hits_of(&srv, &v1), 2, "{how}: no third download");
    }
}

/// A kept payload that cannot be read is not asked about (a 304 would leave nothing
/// to store): the feed is fetched unconditionally, the line says why, and the blob
/// is whole again.
#[test]
fn a_lost_blob_is_not_asked_about() {
    for (how, why) in LOST_BLOBS {
        let srv = versioned("ETag", "If-None-Match", "\"v1\"");
        let tmp = tempdir();
        let f = feeds(tmp.path(), &[("vast", vast_feed(&srv.url, ""))]);
        let store = tmp.path().join("store");
        assert_eq!(ingest_env(&f, &store, &at(10), &[]).0, 0);
        let blob = raw_blob(&store, "date=2024-10-07/vast__20241007T10");
        lose_blob(&blob, how);

        let (code, out, err) = ingest_env(&f, &store, &at(11), &[]);
        assert_eq!(code, 0, "{how}: {out}{err}");
        let counts = "5 offers read, 5 stored, 0 rejected";
        assert_refetched(line(&out, "vast"), "vast", counts, &blob, why);
        assert_eq!(*srv.asked.lock().unwrap(), [None, None], "{how}");
        assert!(intact(&blob), "{how}");
        assert_eq!(check_store(&store).height(), 10, "{how}");
    }
}

/// A store written before blobs (each hour a folder with `feed.toml`, `meta.json` and
/// `page-NNN.gz`; no `raw/blobs`) renormalises to the same offers, takes new hours in
/// the new layout beside the old ones, and renormalises both.
#[test]
fn a_store_written_before_blobs_keeps_working() {
    let tmp = tempdir();
    let (_srv, f) = growing_vast(tmp.path());
    let store = tmp.path().join("store");
    for h in [10, 11] {
        assert_eq!(ingest_env(&f, &store, &at(h), &[]).0, 0);
    }
    for h in [10, 11] {
        to_old_layout(&store, &format!("date=2024-10-07/vast__20241007T{h}"));
    }
    std::fs::remove_dir_all(store.join("raw/blobs")).unwrap();
    let offers = sorted(check_store(&store));
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 runs rebuilt, 11 offers stored, 0 failed"),
        "{out}"
    );
    assert_eq!(sorted(check_store(&store)), offers);

    assert_eq!(ingest_env(&f, &store, &at(12), &[]).0, 0);
    assert_eq!(blobs(&store).len(), 1);
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("3 runs rebuilt, 18 offers stored, 0 failed"),
        "{out}"
    );
}

/// Rewrite a raw run as the previous version wrote it: a folder with `feed.toml`,
/// `meta.json` (no `blobs`) and the blob copied in as `page-000.gz`.
fn to_old_layout(store: &Path, run: &str) {
    let (dir, record) = (
        store.join("raw").join(run),
        store.join("raw").join(format!("{run}.json")),
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(raw_blob(store, run), dir.join("page-000.gz")).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let meta = meta.as_object_mut().unwrap();
    let feed = meta.remove("feed_toml").unwrap();
    std::fs::write(dir.join("feed.toml"), feed.as_str().unwrap()).unwrap();
    meta.remove("blobs");
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(record).unwrap();
}

/// A minimal S3 endpoint on 127.0.0.1 that keeps the keys it was sent: `PUT` with
/// `If-None-Match: *` is refused (412) for a key it has, every listing is empty and
/// every `GET` misses (so a pull downloads nothing). Records each created key in order.
fn recording_s3() -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let c = Arc::clone(&created);
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                match sock.read(&mut byte) {
                    Ok(1) => buf.push(byte[0]),
                    _ => break,
                }
            }
            let raw_head = String::from_utf8_lossy(&buf).into_owned();
            let head = raw_head.to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = sock.read_exact(&mut body);
            let target = raw_head.split(' ').nth(1).unwrap_or("").to_string();
            let key = decode(target.split('?').next().unwrap_or(""));
            let status = match head.split(' ').next().unwrap_or("") {
                "put" => {
                    let mut c = c.lock().unwrap();
                    if head.contains("if-none-match: *") && c.contains(&key) {
                        "412 Precondition Failed"
                    } else {
                        c.push(key);
                        "200 OK"
                    }
                }
                "get" if target.contains("list-type=2") => "200 OK",
                "delete" => "204 No Content",
                _ => "404 Not Found",
            };
            let xml = if target.contains("list-type=2") {
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>"
            } else {
                ""
            };
            let _ = write!(
                sock,
                "HTTP/1.1 {status}\r\nETag: \"e\"\r\nLast-Modified: Mon, 07 Oct 2024 12:00:00 GMT\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
        }
    });
    (format!("http://{addr}"), created)
}

/// `%XX` escapes decoded (object keys hold `=`).
fn decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap());
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Pushed to a bucket, a payload's blob is created before the raw hour that names it,
/// and that before the hour's offers; a second hour of the same payload creates no
/// second blob.
#[test]
fn blobs_reach_the_bucket_before_the_hours_that_name_them() {
    let (endpoint, created) = recording_s3();
    let tmp = tempdir();
    let payload = tmp.path().join("vast.json");
    std::fs::write(&payload, vast_body(4)).unwrap();
    let f = feeds(
        tmp.path(),
        &[(
            "vast",
            format!("format = \"vastai\"\nurl = \"{}\"\n", payload.display()),
        )],
    );
    for h in [10, 11] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
            .args([
                "ingest",
                "--feeds",
                f.to_str().unwrap(),
                "--store",
                "s3://b/p",
                "--at",
                &at(h),
            ])
            .envs([
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
                ("AWS_SECRET_ACCESS_KEY", "test-secret"),
                ("AWS_REGION", "us-east-1"),
            ])
            .env("GPURENT_CACHE_DIR", tmp.path().join("cache"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text}");
    }
    let created = created.lock().unwrap().clone();
    let first = |what: &str, h: u32| {
        created
            .iter()
            .position(|k| {
                k.contains(what) && (what == "raw/blobs/" || k.contains(&format!("T{h}")))
            })
            .unwrap_or_else(|| panic!("no {what} for hour {h} in {created:#?}"))
    };
    let blobs: Vec<&String> = created
        .iter()
        .filter(|k| k.contains("/raw/blobs/"))
        .collect();
    assert_eq!(blobs.len(), 1, "{created:#?}");
    assert!(
        first("raw/blobs/", 10) < first("/raw/date=", 10),
        "{created:#?}"
    );
    for h in [10, 11] {
        assert!(
            first("/raw/date=", h) < first("/offers/", h),
            "{created:#?}"
        );
    }
}
