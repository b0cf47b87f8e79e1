//! An AWS offer file is spooled, not held in memory: fetched over HTTP into a gzip
//! file in the store's `.tmp/`, parsed as a stream and adopted as its blob. It
//! stores what the same bytes store from a recorded file (spooled from the file; the
//! stream parse equals the in-memory parse by the adapter's unit tests), its blob is
//! the body gzipped under the body's SHA-256, a body
//! over the cap or cut off fails that feed only and leaves no file, and renormalise
//! rebuilds the same rows. `GPURENT_STREAM_RSS=1` adds a ~200 MB offer file whose
//! ingest and renormalise must each stay far below that in peak RSS. A vast.ai payload,
//! also read as a stream, stores the same rows served or recorded, and one the stream
//! scan gives up on is parsed whole as before.

use std::io::{Read, Write};
use std::path::Path;

use polars::prelude::*;
use sha2::{Digest, Sha256};

use super::{at, blobs};
use crate::common::{gpurent, sample, tempdir};
use crate::faults::{assert_fails_alone, vast_body, vast_feed, Fault};
use crate::faults::{check_store, fault_server, feeds, glob_read, ingest_env, line, raw_blob};

/// A URL that is not a `.../current/<region>/index.json`, so no region index is asked.
const MIRROR: &str = "/mirror/us-east-1/index.json";

/// The recorded EC2 offer file with `extra` products that are not GPU boxes (each
/// with an on-demand term, which the parser must skip), inserted before the sample's.
fn offer_file(extra: usize) -> Vec<u8> {
    let mut out = Vec::new();
    write_offer_file(extra, &mut out).unwrap();
    out
}

/// [`offer_file`] written to `out` as it is made (the large one never sits in the
/// test's memory).
fn write_offer_file(extra: usize, out: &mut impl Write) -> std::io::Result<()> {
    let text = String::from_utf8(sample("aws_offer.sample.json")).unwrap();
    let open_of = |key: &str| {
        let at = text.find(key).unwrap();
        at + text[at..].find('{').unwrap() + 1
    };
    let (products, terms) = (open_of("\"products\""), open_of("\"OnDemand\""));
    assert!(products < terms, "the sample lists products first");
    out.write_all(&text.as_bytes()[..products])?;
    for i in 0..extra {
        let sku = format!("NONGPU{i:09}");
        write!(
            out,
            r#""{sku}":{{"sku":"{sku}","productFamily":"Compute Instance","attributes":{{"servicecode":"AmazonEC2","location":"US East (N. Virginia)","instanceType":"m5.{i}xlarge","vcpu":"4","memory":"16 GiB","operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used","regionCode":"us-east-1"}}}},"#
        )?;
    }
    out.write_all(&text.as_bytes()[products..terms])?;
    for i in 0..extra {
        let sku = format!("NONGPU{i:09}");
        write!(
            out,
            r#""{sku}":{{"{sku}.JRTCKXETXF":{{"offerTermCode":"JRTCKXETXF","sku":"{sku}","effectiveDate":"2024-10-01T00:00:00Z","priceDimensions":{{"{sku}.JRTCKXETXF.6YS6EN2CT7":{{"rateCode":"{sku}.JRTCKXETXF.6YS6EN2CT7","description":"$0.096 per On Demand Linux m5 Instance Hour","beginRange":"0","endRange":"Inf","unit":"Hrs","pricePerUnit":{{"USD":"0.0960000000"}},"appliesTo":[]}}}},"termAttributes":{{}}}}}},"#
        )?;
    }
    out.write_all(&text.as_bytes()[terms..])
}

/// An `aws_offer` feed file for `url` with `extra` keys (a 5 s timeout unless they
/// set one).
fn aws_feed(url: &str, extra: &str) -> String {
    let timeout = if extra.contains("timeout_s") {
        ""
    } else {
        "timeout_s = 5\n"
    };
    format!("format = \"aws_offer\"\nurl = \"{url}\"\nprovider = \"aws\"\n{timeout}retries = 1\nretry_base_ms = 10\n{extra}")
}

/// The blob at `blob` is `body` gzipped, named by the body's SHA-256 (`what` says
/// which case failed).
pub(super) fn assert_blob_of(blob: &Path, body: &[u8], what: &str) {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(blob).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    assert!(plain == body, "{what}: the blob holds the body");
    let sha = hex::encode(Sha256::digest(body));
    assert_eq!(
        blob.file_name().unwrap().to_string_lossy(),
        format!("{sha}.gz"),
        "{what}"
    );
}

/// Files under `dir`, recursively.
pub(super) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Nothing of a spooled body is left: no spool folder or file in `.tmp/`, no blob,
/// no raw hour, no failed payload (a payload that failed to arrive is not kept).
fn assert_nothing_kept(store: &Path) {
    let tmp = files_under(&store.join(".tmp"));
    assert!(tmp.is_empty(), "left in .tmp: {tmp:?}");
    for kind in ["raw", "failed"] {
        let left = files_under(&store.join(kind));
        assert!(left.is_empty(), "left in {kind}: {left:?}");
    }
}

fn frame(store: &Path, kind: &str) -> DataFrame {
    sorted_by_id(glob_read(store, kind).unwrap_or_default())
}

fn sorted_by_id(df: DataFrame) -> DataFrame {
    if df.height() == 0 {
        return df;
    }
    let by: Vec<&str> = ["offer_id", "price_class", "reason"]
        .into_iter()
        .filter(|c| df.column(c).is_ok())
        .collect();
    df.lazy().sort(by, Default::default()).collect().unwrap()
}

/// Spooled over HTTP, the offer file stores exactly what the same bytes store from a
/// recorded file (spooled from the file: the format reads streams); the blob is those
/// bytes gzipped, named by their SHA-256; nothing is left in `.tmp/`; renormalise
/// rebuilds the same rows.
#[test]
fn a_spooled_offer_file_stores_what_the_whole_payload_stores() {
    for extra in [0, 20_000] {
        let body = offer_file(extra);
        let b = body.clone();
        let srv = fault_server(move |_| Fault::json(b.clone()));
        let tmp = tempdir();
        let live = feeds(
            &tmp.path().join("live"),
            &[("aws", aws_feed(&srv.url(MIRROR), ""))],
        );
        std::fs::write(tmp.path().join("offer.json"), &body).unwrap();
        let recorded = feeds(
            &tmp.path().join("recorded"),
            &[(
                "aws",
                aws_feed(&tmp.path().join("offer.json").display().to_string(), ""),
            )],
        );
        let (spooled, whole) = (tmp.path().join("spooled"), tmp.path().join("whole"));
        for (f, store) in [(&live, &spooled), (&recorded, &whole)] {
            let (code, out, err) = ingest_env(f, store, &at(10), &[]);
            assert_eq!(code, 0, "{out}{err}");
            assert!(
                line(&out, "aws").starts_with("aws: ok, 5 offers read"),
                "{out}"
            );
        }
        check_store(&spooled);
        for kind in ["offers", "rejects"] {
            assert_eq!(
                frame(&spooled, kind),
                frame(&whole, kind),
                "{kind}, extra {extra}"
            );
        }
        assert!(frame(&spooled, "offers").height() > 0);

        let blob = raw_blob(&spooled, "date=2024-10-07/aws__20241007T10");
        assert_blob_of(&blob, &body, &format!("extra {extra}"));
        assert_eq!(blobs(&spooled).len(), 1);
        assert!(files_under(&spooled.join(".tmp")).is_empty());

        let offers = frame(&spooled, "offers");
        let (code, out, err) = gpurent(&["renormalise", "--store", spooled.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(
            frame(&spooled, "offers"),
            offers,
            "renormalised, extra {extra}"
        );
    }
}

/// An unchanged version (here: an `ETag` answered 304) parses the kept blob as a
/// stream and names the same blob for the new hour; no blob is added.
#[test]
fn a_spooled_offer_file_not_modified_reads_its_blob() {
    let body = offer_file(100);
    let b = body.clone();
    let srv = fault_server(move |r| {
        if r.header("If-None-Match") == Some("\"o1\"") {
            return Fault::status(304, &[("ETag", "\"o1\"")]);
        }
        match Fault::json(b.clone()) {
            Fault::Reply {
                status,
                mut headers,
                body,
            } => {
                headers.push(("ETag".into(), "\"o1\"".into()));
                Fault::Reply {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    });
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("aws", aws_feed(&srv.url(MIRROR), ""))]);
    let store = tmp.path().join("store");
    for h in [10, 11] {
        let (code, out, err) = ingest_env(&f, &store, &at(h), &[]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (_, out, _) = ingest_env(&f, &store, &at(12), &[]);
    assert!(line(&out, "aws").contains("not modified"), "{out}");
    assert_eq!(blobs(&store).len(), 1);
    assert!(blobs(&store)[0].is_file());
    let offers = check_store(&store);
    assert_eq!(offers.height(), 3 * 4);
    assert!(files_under(&store.join(".tmp")).is_empty());
}

/// A body over the cap (declared, or found while reading a gzip-encoded response)
/// and a body cut off (retried, then given up) fail that feed only, with the usual
/// message; no file of theirs is left anywhere, and the other feed is stored.
#[test]
fn an_offer_file_too_large_or_cut_off_fails_alone_and_leaves_nothing() {
    let body = offer_file(2_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &body).unwrap();
    let gzipped = gz.finish().unwrap();
    let (b, g) = (body.clone(), gzipped);
    let srv = fault_server(move |r| match r.path.as_str() {
        "/big/us-east-1/index.json" => Fault::json(b.clone()),
        "/bomb/us-east-1/index.json" => Fault::Reply {
            status: 200,
            headers: vec![("Content-Encoding".into(), "gzip".into())],
            body: g.clone(),
        },
        "/cut/us-east-1/index.json" => Fault::Truncate {
            body: b.clone(),
            keep: b.len() / 2,
        },
        _ => Fault::json(vast_body(3)),
    });
    let cap = format!("max_bytes = {}\n", body.len() / 3);
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[
            ("big", aws_feed(&srv.url("/big/us-east-1/index.json"), &cap)),
            (
                "bomb",
                aws_feed(&srv.url("/bomb/us-east-1/index.json"), &cap),
            ),
            ("cut", aws_feed(&srv.url("/cut/us-east-1/index.json"), "")),
            ("good", vast_feed(&srv.url("/good"), "")),
        ],
    );
    let store = tmp.path().join("store");
    let (code, out, err) = ingest_env(&f, &store, &at(10), &[]);
    assert_eq!(code, 1, "{out}{err}");
    let limit = body.len() / 3;
    let failed = [
        ("big", format!("larger than the {limit} byte cap")),
        ("bomb", format!("larger than the {limit} byte cap")),
        (
            "cut",
            format!("body ended early after {} bytes", body.len() / 2),
        ),
    ];
    assert_fails_alone(&out, &failed, "ok, 3 offers read, 3 stored");
    let offers = check_store(&store);
    assert_eq!(offers.height(), 3);
    assert!(blobs(&store).len() == 1, "only the good feed's blob");
    let tmp_files = files_under(&store.join(".tmp"));
    assert!(tmp_files.is_empty(), "left in .tmp: {tmp_files:?}");
    let raw: Vec<_> = files_under(&store.join("raw"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("good__"))
        .filter(|p| !p.starts_with(store.join("raw/blobs")))
        .collect();
    assert!(raw.is_empty(), "{raw:?}");
    assert!(files_under(&store.join("failed")).is_empty());

    // Alone, each failing feed leaves nothing at all.
    for feed in ["big", "bomb", "cut"] {
        let one = tmp.path().join(feed);
        let text = std::fs::read_to_string(f.join(format!("{feed}.toml"))).unwrap();
        let fd = feeds(&one, &[(feed, text)]);
        let store = one.join("store");
        let (code, out, err) = ingest_env(&fd, &store, &at(11), &[]);
        assert_eq!(code, 1, "{out}{err}");
        assert_nothing_kept(&store);
    }
}

/// Peak RSS of `gpurent ingest` of a ~200 MB offer file of mostly non-GPU products,
/// of `gpurent renormalise` of the store it makes (which parses the kept blob as a
/// stream and stores the same rows), and of `gpurent backfill` of the file (which
/// spools it as the ingest does and stores the same rows) stays far below the
/// file's size. Behind `GPURENT_STREAM_RSS=1` (CI sets it: it writes, serves and
/// parses 200 MB; `GPURENT_STREAM_RSS_PRODUCTS` sets the number of products); it
/// measures no time. The file is written and served from disk, never held by the
/// test. A child's peak RSS is its own `VmHWM` after its exec, sampled every 5 ms
/// ([`child::run`]): `wait4` would count this test process's RSS at the spawn,
/// which in a full run holds other tests' data (it read 270 MiB for a 47 MiB ingest).
#[test]
fn a_large_offer_file_is_ingested_in_bounded_memory() {
    if std::env::var("GPURENT_STREAM_RSS").as_deref() != Ok("1") {
        eprintln!("skipped: set GPURENT_STREAM_RSS=1 to ingest a ~200 MB offer file");
        return;
    }
    let extra: usize = std::env::var("GPURENT_STREAM_RSS_PRODUCTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250_000);
    let tmp = tempdir();
    let file = tmp.path().join("offer.json");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    write_offer_file(extra, &mut w).unwrap();
    w.into_inner().unwrap().sync_all().unwrap();
    let size = std::fs::metadata(&file).unwrap().len() as usize;
    let url = serve_file(file);
    let f = feeds(tmp.path(), &[("aws", aws_feed(&url, "timeout_s = 600\n"))]);
    let store = tmp.path().join("store");
    let (f, s) = (f.to_str().unwrap(), store.to_str().unwrap());
    let ingest = ["ingest", "--feeds", f, "--store", s, "--at", &at(10)];
    let (out, ingest_rss) = gpurent_rss(&ingest);
    assert!(
        line(&out, "aws").starts_with("aws: ok, 5 offers read"),
        "{out}"
    );
    let offers = frame(&store, "offers");
    let (out, renormalise_rss) = gpurent_rss(&["renormalise", "--store", s]);
    assert!(
        out.contains("1 runs rebuilt, 4 offers stored, 0 failed"),
        "{out}"
    );
    assert_eq!(frame(&store, "offers"), offers, "renormalised");
    let backfilled = tmp.path().join("backfilled");
    let (b, file) = (backfilled.to_str().unwrap(), tmp.path().join("offer.json"));
    let backfill = [
        "backfill",
        "--format",
        "aws_offer",
        "--provider",
        "aws",
        "--store",
        b,
        "--at",
        "2024-10-07",
        file.to_str().unwrap(),
    ];
    let (out, backfill_rss) = gpurent_rss(&backfill);
    assert!(out.contains("1 files, 4 offers stored, 0 failed"), "{out}");
    let rows = |s: &Path| frame(s, "offers").drop_many(["feed", "observed_at"]);
    assert_eq!(rows(&backfilled), rows(&store), "backfilled");
    for (what, peak_rss) in [
        ("ingest", ingest_rss),
        ("renormalise", renormalise_rss),
        ("backfill", backfill_rss),
    ] {
        eprintln!(
            "offer file {} MiB, peak RSS of the {what} {} MiB",
            size >> 20,
            peak_rss >> 20
        );
        assert!(
            peak_rss < size / 2,
            "{what}: peak RSS {peak_rss} bytes for a {size} byte offer file"
        );
    }
}

/// A loopback server that answers every request with the file at `path`, copied
/// from disk (`fault_server` holds its bodies in memory); the URL of its offer file.
fn serve_file(path: std::path::PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && sock.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let mut file = std::fs::File::open(&path).unwrap();
            let len = file.metadata().unwrap().len();
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )
            .and_then(|()| std::io::copy(&mut file, &mut sock).map(|_| ()));
        }
    });
    format!("http://{addr}{MIRROR}")
}
/// The benchmark's child runner: a child's peak RSS read as its own `VmHWM` after
/// its exec (`wait4`'s `ru_maxrss` would count this test process's RSS at the spawn).
#[allow(dead_code)]
#[path = "../../../benches/scale/child.rs"]
mod child;

/// Run `gpurent <args>`, which must succeed; its stdout and peak RSS in bytes.
fn gpurent_rss(args: &[&str]) -> (String, usize) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"));
    cmd.args(args);
    let run = child::run(&mut cmd, 16 << 10);
    assert!(
        run.ok(),
        "gpurent {args:?}: {}\n{}{}",
        run.outcome.text(),
        run.stdout,
        run.stderr_tail
    );
    (run.stdout, (run.peak_rss_mib * 1048576.0) as usize)
}

/// `failed/` in `store` keeps one payload page, gzipped: `body`, whole (`what` says
/// which case failed).
fn assert_failed_payload(store: &Path, body: &[u8], what: &str) {
    let kept: Vec<_> = files_under(&store.join("failed"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "gz"))
        .collect();
    assert_eq!(kept.len(), 1, "{what}: {kept:?}");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&kept[0]).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    assert!(plain == body, "{what}: failed/ keeps the payload whole");
}

/// A spooled offer file that does not parse fails its feed with the parse error and
/// is kept in full under `failed/` (its gzip file copied), not under `raw/`.
#[test]
fn a_spooled_offer_file_that_does_not_parse_is_kept_in_failed() {
    let body = br#"{"formatVersion":"v1.0","products": [1, 2]}"#.to_vec();
    let b = body.clone();
    let srv = fault_server(move |_| Fault::json(b.clone()));
    let tmp = tempdir();
    let f = feeds(tmp.path(), &[("aws", aws_feed(&srv.url(MIRROR), ""))]);
    let store = tmp.path().join("store");
    let (code, out, err) = ingest_env(&f, &store, &at(10), &[]);
    assert_eq!(code, 1, "{out}{err}");
    let l = line(&out, "aws");
    assert!(
        l.contains("FAILED") && l.contains("invalid JSON") && l.contains("payload kept in"),
        "{l}"
    );
    assert_failed_payload(&store, &body, "aws");
    assert!(files_under(&store.join("raw")).is_empty());
    assert!(files_under(&store.join(".tmp")).is_empty());
}

/// vast.ai reads streams too: served over HTTP or recorded, its payload is spooled and
/// scanned a window at a time. Both store the same rows, the blob is the body gzipped
/// under its SHA-256, and nothing is left in `.tmp/`. A payload the stream scan gives
/// up on (a field listed twice in one offer) is read whole and parsed as before: that
/// offer alone is a counted `bad_record`.
#[test]
fn a_vast_payload_is_spooled_and_scanned_as_a_stream() {
    let good = vast_body(3_000);
    let mut twice = good.clone();
    let first = twice.iter().position(|b| *b == b'{').unwrap() + 1;
    let first = first + twice[first..].iter().position(|b| *b == b'{').unwrap() + 1;
    twice.splice(first..first, b"\"num_gpus\": 2, ".iter().copied());
    for (body, stored, rejected) in [(&good, 3_000, ""), (&twice, 2_999, " (bad_record 1)")] {
        let b = body.clone();
        let srv = fault_server(move |_| Fault::json(b.clone()));
        let tmp = tempdir();
        std::fs::write(tmp.path().join("vast.json"), body).unwrap();
        let recorded = tmp.path().join("vast.json").display().to_string();
        let (live, file) = (tmp.path().join("live"), tmp.path().join("file"));
        for (dir, url) in [(&live, srv.url("/search")), (&file, recorded)] {
            let f = feeds(dir, &[("vast", vast_feed(&url, ""))]);
            let store = dir.join("store");
            let (code, out, err) = ingest_env(&f, &store, &at(10), &[]);
            assert_eq!(code, 0, "{out}{err}");
            let expected = format!(
                "vast: ok, 3000 offers read, {stored} stored, {} rejected{rejected}",
                3_000 - stored
            );
            assert!(line(&out, "vast").starts_with(&expected), "{out}");
            check_store(&store);
            let blob = raw_blob(&store, "date=2024-10-07/vast__20241007T10");
            assert_blob_of(&blob, body, &url);
            assert!(files_under(&store.join(".tmp")).is_empty(), "{url}");
        }
        for kind in ["offers", "rejects"] {
            let (a, b) = (
                frame(&live.join("store"), kind),
                frame(&file.join("store"), kind),
            );
            assert_eq!(a, b, "{kind}");
        }
    }
}

/// A back-fill reads a recorded vast.ai payload as an ingest of the same file does:
/// spooled, scanned as a stream and adopted as its blob (the body gzipped under its
/// SHA-256), storing the same rows, with nothing left in `.tmp/`. A recorded payload
/// that does not parse is kept whole under `failed/`, and leaves `.tmp/` empty too.
#[test]
fn a_backfilled_vast_payload_is_spooled_as_an_ingested_one() {
    let body = vast_body(3_000);
    let broken = b"{\"offers\": [{\"id\": 1, ".to_vec();
    let tmp = tempdir();
    let day = tmp.path().join("snaps/2024-10-07");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("a-broken.json"), &broken).unwrap();
    std::fs::write(day.join("b-vast.json"), &body).unwrap();
    let store = tmp.path().join("store");
    let (code, out, err) = gpurent(&[
        "backfill",
        "--format",
        "vastai",
        "--provider",
        "vastai",
        "--store",
        store.to_str().unwrap(),
        tmp.path().join("snaps").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "one file failed\n{out}{err}");
    assert!(
        out.contains("backfill: 2 files, 3000 offers stored, 1 failed"),
        "{out}"
    );
    check_store(&store);
    let blob = raw_blob(
        &store,
        "date=2024-10-07/backfill-vastai-vastai__20241007T00",
    );
    assert_blob_of(&blob, &body, "backfill");
    assert_failed_payload(&store, &broken, "backfill");
    assert!(files_under(&store.join(".tmp")).is_empty());

    // The same file ingested: the same rows, but for the feed's name.
    let file = day.join("b-vast.json").display().to_string();
    let f = feeds(
        &tmp.path().join("ingest"),
        &[("vast", vast_feed(&file, "provider = \"vastai\"\n"))],
    );
    let ingested = tmp.path().join("ingest/store");
    let (code, out, err) = ingest_env(&f, &ingested, &at(0), &[]);
    assert_eq!(code, 0, "{out}{err}");
    let rows = |s: &Path| frame(s, "offers").drop("feed").unwrap();
    assert_eq!(rows(&store), rows(&ingested));
}
