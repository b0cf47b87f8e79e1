//! The store on S3-compatible object storage (`--store s3://bucket/prefix`), against a
//! real server: Ceph's RADOS Gateway on 127.0.0.1, started by `scripts/s3-server.sh`
//! (its credentials in `/var/tmp/gpurent-s3/env`, or the file `GPURENT_S3_ENV` names).
//! Without it these tests print SKIPPED, unless `GPURENT_REQUIRE_S3=1` (CI), which
//! turns the skip into a failure. The probe test needs no server: it brings its own
//! loopback server that overwrites regardless of `If-None-Match`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::common::*;

/// The server's variables (`AWS_*`, `GPURENT_S3_BUCKET`), or None to skip.
fn s3_env() -> Option<BTreeMap<String, String>> {
    let file = std::env::var_os("GPURENT_S3_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/gpurent-s3/env"));
    let text = std::fs::read_to_string(&file).ok();
    let env: Option<BTreeMap<String, String>> = text.map(|t| {
        t.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    });
    if env.is_none() {
        missing_part(
            "GPURENT_REQUIRE_S3",
            &format!(
                "no S3 server ({}; scripts/s3-server.sh start)",
                file.display()
            ),
        );
    }
    env
}

/// Run the binary with the server's variables and a cache of its own.
fn gpurent_s3(
    env: &BTreeMap<String, String>,
    cache: &Path,
    args: &[&str],
) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
        .args(args)
        .envs(env)
        .env("GPURENT_CACHE_DIR", cache)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A prefix no other test (or run) uses, so every test starts from an empty bucket.
fn fresh_prefix() -> String {
    format!("t-{:016x}", fastrand::u64(..))
}

fn url(env: &BTreeMap<String, String>, prefix: &str) -> String {
    format!("s3://{}/{prefix}", env["GPURENT_S3_BUCKET"])
}

/// The store directory inside a cache that holds one bucket prefix.
fn cached(cache: &Path) -> PathBuf {
    let bucket = std::fs::read_dir(cache.join("s3"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    std::fs::read_dir(bucket.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// Offer rows per (feed, observed_at) of the bucket, as a fresh reader pulls it.
fn bucket_rows(
    env: &BTreeMap<String, String>,
    reader: &Path,
    s3: &str,
) -> BTreeMap<(String, i64), usize> {
    let (code, out, err) = gpurent_s3(env, reader, &["prices", "--store", s3]);
    assert_eq!(code, 0, "{out}{err}");
    rows_per_run(&cached(reader))
}

/// Offer rows per (feed, observed_at) in a store directory.
/// Read as gpurent's readers read (an hour a day file holds is read from it only).
fn rows_per_run(root: &Path) -> BTreeMap<(String, i64), usize> {
    let df = gpurent::store::Store::open(root)
        .scan_offers(None, None)
        .unwrap()
        .unwrap()
        .collect()
        .unwrap();
    let feeds = str_col(&df, "feed");
    let at = df
        .column("observed_at")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    let at = at.i64().unwrap();
    let mut out = BTreeMap::new();
    for (i, f) in feeds.into_iter().enumerate() {
        *out.entry((f, at.get(i).unwrap())).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_report_through_a_bucket_equal_a_local_store() {
    let Some(env) = s3_env() else { return };
    let srv = server().await;
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    fixture_feeds(&srv, &feeds);
    let prefix = fresh_prefix();
    let s3 = url(&env, &prefix);
    let local = tmp.path().join("local");
    let feeds_s = feeds.to_str().unwrap();
    for at in [
        "2024-10-07T00:00:00Z",
        "2024-10-07T01:00:00Z",
        "2024-10-08T03:00:00Z",
    ] {
        let (code, out, err) = gpurent_s3(
            &env,
            &tmp.path().join("cache-a"),
            &["ingest", "--feeds", feeds_s, "--store", &s3, "--at", at],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(err.contains("objects pushed"), "{err}");
        assert!(
            !err.contains(&env["AWS_SECRET_ACCESS_KEY"]),
            "the secret reached stderr"
        );
        ingest_cli(&feeds, &local, at);
    }
    // A second machine: a fresh cache reads the bucket and reports the same week.
    let week = ["--week", "2024-W41"];
    let (code, out, err) = gpurent_s3(
        &env,
        &tmp.path().join("cache-b"),
        &[
            &[
                "report",
                "--store",
                &s3,
                "--out",
                tmp.path().join("rep-s3").to_str().unwrap(),
            ][..],
            &week,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = gpurent(
        &[
            &[
                "report",
                "--store",
                local.to_str().unwrap(),
                "--out",
                tmp.path().join("rep-local").to_str().unwrap(),
            ][..],
            &week,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let rows = |d: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(tmp.path().join(d).join("2024-W41/summary.json")).unwrap(),
        )
        .unwrap();
        v["rows"].clone()
    };
    assert_eq!(rows("rep-s3"), rows("rep-local"));
    assert!(!rows("rep-local").as_array().unwrap().is_empty());
    duckdb_reads_the_bucket(&env, &s3, &local);
    let cache_b = tmp
        .path()
        .join("cache-b/s3")
        .join(&env["GPURENT_S3_BUCKET"])
        .join(&prefix);
    assert_eq!(rows_per_run(&cache_b), rows_per_run(&local));
}

/// DuckDB (1.5.5 with the httpfs wheel from PyPI, `scripts/engines.sh`) reads the
/// bucket over S3 and sees per date the rows and USD sums of the local store.
fn duckdb_reads_the_bucket(env: &BTreeMap<String, String>, s3: &str, local: &Path) {
    let python = PathBuf::from("/var/tmp/gpurent-duckdb-s3/bin/python");
    let Some(python) = crate::engines::python_at(python, "DuckDB over S3") else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/engines-read.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([s3, "duckdb-s3"])
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains(&env["AWS_SECRET_ACCESS_KEY"]));
    let line = stdout.lines().find(|l| l.starts_with('{')).unwrap();
    crate::engines::check_engine(line, &crate::engines::own_reading(local));
}

/// Two writers on two machines (two caches), at once: the same hours and different
/// ones. Every hour is stored once: no duplicate rows, no lost hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_store_each_hour_once() {
    let Some(env) = s3_env() else { return };
    let srv = server().await;
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    fixture_feeds(&srv, &feeds);
    let s3 = url(&env, &fresh_prefix());
    let hours_a = [
        "2024-10-07T00:00:00Z",
        "2024-10-07T01:00:00Z",
        "2024-10-07T02:00:00Z",
    ];
    let hours_b = [
        "2024-10-07T01:00:00Z",
        "2024-10-07T02:00:00Z",
        "2024-10-07T03:00:00Z",
    ];
    let writer = |name: &'static str, hours: [&'static str; 3]| {
        let (env, s3, feeds) = (env.clone(), s3.clone(), feeds.clone());
        let cache = tmp.path().join(name);
        std::thread::spawn(move || {
            for at in hours {
                let (code, out, err) = gpurent_s3(
                    &env,
                    &cache,
                    &[
                        "ingest",
                        "--feeds",
                        feeds.to_str().unwrap(),
                        "--store",
                        &s3,
                        "--at",
                        at,
                    ],
                );
                assert_eq!(code, 0, "{name} {at}: {out}{err}");
            }
        })
    };
    let (a, b) = (writer("cache-a", hours_a), writer("cache-b", hours_b));
    a.join().unwrap();
    b.join().unwrap();
    let local = tmp.path().join("local");
    for at in [
        "2024-10-07T00:00:00Z",
        "2024-10-07T01:00:00Z",
        "2024-10-07T02:00:00Z",
        "2024-10-07T03:00:00Z",
    ] {
        ingest_cli(&feeds, &local, at);
    }
    let pulled = bucket_rows(&env, &tmp.path().join("cache-r"), &s3);
    assert_eq!(pulled, rows_per_run(&local));
}

/// A server that accepts every request, `If-None-Match: *` or not, as Garage does.
async fn overwriting_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = buf.len() - head_end;
                while body < len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body += n,
                    }
                }
                let status = if head.starts_with("delete") {
                    "204 No Content"
                } else {
                    "200 OK"
                };
                let resp = format!("HTTP/1.1 {status}\r\nETag: \"e\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Against a server that ignores conditional creates, a writer refuses to run (exit 2,
/// a message saying why) and stores nothing; the keys never reach the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_refuse_a_server_that_ignores_conditional_creates() {
    let endpoint = overwriting_server().await;
    let tmp = tempdir();
    let feeds = file_feed(tmp.path(), 10);
    let secret = "not-a-real-secret-9f8e7d";
    let env: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cache = tmp.path().join("cache");
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        gpurent_s3(
            &env,
            &cache,
            &[
                "ingest",
                "--feeds",
                feeds.to_str().unwrap(),
                "--store",
                "s3://b/p",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("ignores conditional creates"), "{err}");
    assert!(!out.contains(secret) && !err.contains(secret));
    let mut files = Vec::new();
    walk(&tmp.path().join("cache"), &mut files);
    assert!(
        !files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
}

/// A vast.ai payload of `n` offers, as a file feed (no HTTP server needed).
fn file_feed(dir: &Path, n: usize) -> PathBuf {
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let offers: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"id": {i}, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": {:.3}, "min_bid": 1.1, "geolocation": "Texas, US"}}"#,
                2.0 + (i % 100) as f64 / 100.0
            )
        })
        .collect();
    let payload = dir.join("vast.json");
    std::fs::write(
        &payload,
        format!("{{\"offers\": [{}]}}", offers.join(",\n")),
    )
    .unwrap();
    std::fs::write(
        feeds.join("vast.toml"),
        format!("format = \"vastai\"\nurl = \"{}\"\n", payload.display()),
    )
    .unwrap();
    feeds
}

/// `kill -9` at seeded random moments of an ingest to the bucket: a fresh reader then
/// sees each hour whole or not at all (never a partial object), and a re-run with the
/// killed writer's cache completes every hour.
#[test]
fn kill_9_mid_push_leaves_no_partial_object() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds = file_feed(tmp.path(), 20_000);
    let feeds = feeds.to_str().unwrap();
    let s3 = url(&env, &fresh_prefix());
    let cache = tmp.path().join("cache-w");
    let hours: Vec<String> = (0..6)
        .map(|h| format!("2024-10-07T{h:02}:00:00Z"))
        .collect();
    let args = |at: &str| -> Vec<String> {
        ["ingest", "--feeds", feeds, "--store", &s3, "--at", at]
            .map(String::from)
            .to_vec()
    };
    // One ingest, timed, gives the window to kill in and the reference hour.
    let start = std::time::Instant::now();
    let (code, out, err) = gpurent_s3(
        &env,
        &cache,
        &args(&hours[0])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let span = start.elapsed();
    let first = cached(&cache);
    let whole = *rows_per_run(&first).values().next().unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    for (i, at) in hours.iter().enumerate().skip(1) {
        let delay = span.mul_f64(rng.f64());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
            .args(args(at))
            .envs(&env)
            .env("GPURENT_CACHE_DIR", &cache)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        // A reader on another machine: every stored hour is whole.
        let reader = tmp.path().join(format!("cache-r{i}"));
        for ((feed, t), n) in bucket_rows(&env, &reader, &s3) {
            assert_eq!(
                n, whole,
                "trial {i} ({delay:?}): {feed} at {t} has {n} rows"
            );
        }
    }
    // Re-run every hour with the writer's cache: all six stored, once.
    for at in &hours {
        let (code, out, err) = gpurent_s3(
            &env,
            &cache,
            &args(at).iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let runs = bucket_rows(&env, &tmp.path().join("cache-final"), &s3);
    assert_eq!(runs.len(), 6, "{runs:?}");
    assert!(runs.values().all(|n| *n == whole), "{runs:?}");
}

/// Ingest hours 00.. of 2024-10-07 into the bucket (through `writer`'s cache) and into
/// a local store; the local store's rows per run.
fn ingest_both(
    env: &BTreeMap<String, String>,
    writer: &Path,
    feeds: &Path,
    s3: &str,
    local: &Path,
    hours: u32,
) -> BTreeMap<(String, i64), usize> {
    for h in 0..hours {
        let at = format!("2024-10-07T{h:02}:00:00Z");
        let feeds_s = feeds.to_str().unwrap();
        let args = ["ingest", "--feeds", feeds_s, "--store", s3, "--at", &at];
        let (code, out, err) = gpurent_s3(env, writer, &args);
        assert_eq!(code, 0, "{out}{err}");
        ingest_cli(feeds, local, &at);
    }
    rows_per_run(local)
}

/// `compact` on a bucket while a reader loops: the reader's rows per hour are right at
/// every moment (before, between the day object's creation and the hourly objects'
/// deletion, after), with a fresh cache and with one it keeps; afterwards the bucket's
/// partition holds the day objects only.
#[test]
fn compaction_while_a_reader_loops_keeps_totals_right() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds = file_feed(tmp.path(), 3_000);
    let s3 = url(&env, &fresh_prefix());
    let writer = tmp.path().join("cache-w");
    let local = tmp.path().join("local");
    let reference = ingest_both(&env, &writer, &feeds, &s3, &local, 8);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (env, s3, done, dir) = (
            env.clone(),
            s3.clone(),
            done.clone(),
            tmp.path().to_path_buf(),
        );
        let reference = reference.clone();
        std::thread::spawn(move || {
            let (mut reads, mut during) = (0, 0);
            loop {
                let running = !done.load(std::sync::atomic::Ordering::SeqCst);
                if !running && reads >= 3 {
                    break;
                }
                during += usize::from(running);
                // Every other read from a fresh cache, the others from a kept one.
                let cache = match reads % 2 {
                    0 => dir.join(format!("cache-fresh-{reads}")),
                    _ => dir.join("cache-kept"),
                };
                assert_eq!(bucket_rows(&env, &cache, &s3), reference, "read {reads}");
                reads += 1;
            }
            during
        })
    };
    let (code, out, err) = gpurent_s3(
        &env,
        &writer,
        &["compact", "--store", &s3, "--before", "2024-10-08"],
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("hourly objects deleted"), "{err}");
    let reads = reader.join().unwrap();
    eprintln!("compaction on the bucket: {reads} reads started while it ran, each total right");
    // Afterwards a fresh reader pulls day objects only.
    let last = tmp.path().join("cache-after");
    assert_eq!(bucket_rows(&env, &last, &s3), reference);
    let part = cached(&last).join("offers/date=2024-10-07");
    let names: Vec<String> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["vast__20241007-0000ff.parquet"],
        "{reads} reads during compaction"
    );
}

/// The moment in between, held still: the day objects pushed, the hourly objects not
/// yet deleted. A reader then counts every hour once, from a fresh cache and from one
/// that holds the hourly files; after the deletion the partition has the day only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_half_way_through_compaction_reads_right() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds = file_feed(tmp.path(), 1_000);
    let prefix = fresh_prefix();
    let s3 = url(&env, &prefix);
    let (writer, local) = (tmp.path().join("cache-w"), tmp.path().join("local"));
    let kept = tmp.path().join("cache-kept");
    let env2 = env.clone();
    let (reference, before) = tokio::task::spawn_blocking({
        let (feeds, s3, writer, local, kept) = (
            feeds.clone(),
            s3.clone(),
            writer.clone(),
            local.clone(),
            kept.clone(),
        );
        move || {
            let reference = ingest_both(&env2, &writer, &feeds, &s3, &local, 4);
            (reference, bucket_rows(&env2, &kept, &s3))
        }
    })
    .await
    .unwrap();
    assert_eq!(before, reference);
    let remote =
        gpurent::store::remote::Remote::open_with(&env["GPURENT_S3_BUCKET"], &prefix, env.clone())
            .unwrap();
    let cache = gpurent::store::Store::open(cached(&writer));
    let date = chrono::NaiveDate::from_ymd_opt(2024, 10, 7).unwrap();
    assert_eq!(cache.compact(date).unwrap(), (4, 1));
    let pushed = remote.push(&cache).await.unwrap();
    assert_eq!(pushed.copied, 1, "the day object");
    let read = |cache: PathBuf| {
        let (env, s3) = (env.clone(), s3.clone());
        tokio::task::spawn_blocking(move || bucket_rows(&env, &cache, &s3))
    };
    assert_eq!(read(tmp.path().join("cache-mid")).await.unwrap(), reference);
    assert_eq!(read(kept.clone()).await.unwrap(), reference);
    assert_eq!(remote.delete_covered().await.unwrap(), 4);
    assert_eq!(read(kept.clone()).await.unwrap(), reference);
    // A cache that still holds the hourly files pushes nothing back: the deleted
    // objects stay deleted.
    let kept_store = gpurent::store::Store::open(cached(&kept));
    let again = remote.push(&kept_store).await.unwrap();
    assert_eq!((again.copied, again.already_there), (0, 0));
    let last = tmp.path().join("cache-after");
    assert_eq!(read(last.clone()).await.unwrap(), reference);
    let names: Vec<String> = std::fs::read_dir(cached(&last).join("offers/date=2024-10-07"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["vast__20241007-00000f.parquet"]);
}

/// Every object key under `prefix` in the bucket, relative to it, as the test itself
/// lists them (with the server's variables, not through gpurent).
fn bucket_keys(env: &BTreeMap<String, String>, prefix: &str) -> BTreeSet<String> {
    use futures::TryStreamExt as _;
    use object_store::ObjectStore as _;
    let mut builder = object_store::aws::AmazonS3Builder::new();
    for (k, v) in env.iter().filter(|(k, _)| k.starts_with("AWS_")) {
        if let Ok(key) = k.to_ascii_lowercase().parse() {
            builder = builder.with_config(key, v);
        }
    }
    let os = builder
        .with_bucket_name(&env["GPURENT_S3_BUCKET"])
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listed = os.list(Some(&object_store::path::Path::from(prefix)));
    let metas: Vec<_> = rt.block_on(listed.try_collect()).unwrap();
    metas
        .iter()
        .map(|m| m.location.as_ref()[prefix.len() + 1..].to_string())
        .collect()
}

/// How many offers or rejects keys hold each (partition, feed, hour): an hourly name
/// holds its hour, a compacted day's name the hours of its mask.
fn hours_held(keys: &BTreeSet<String>) -> BTreeMap<(String, String, u32), usize> {
    let mut out = BTreeMap::new();
    for key in keys
        .iter()
        .filter(|k| k.starts_with("offers/") || k.starts_with("rejects/"))
    {
        let (dir, name) = key.rsplit_once('/').unwrap();
        let (feed, rest) = name
            .strip_suffix(".parquet")
            .unwrap()
            .split_once("__")
            .unwrap();
        let mask = match rest.split_once('T') {
            Some((_, hour)) => 1u32 << hour.parse::<u32>().unwrap(),
            None => u32::from_str_radix(rest.split_once('-').unwrap().1, 16).unwrap(),
        };
        for h in (0..24).filter(|h| mask & (1 << h) != 0) {
            *out.entry((dir.to_string(), feed.to_string(), h))
                .or_default() += 1;
        }
    }
    out
}

/// Every file of a cache that a push uploads (keys relative to the store): not hidden
/// (`.known`, `.lock`, `.tmp/`) and not in `rollups/`, the cache's own.
fn pushable_files(root: &Path) -> BTreeSet<String> {
    fn walk_all(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let (p, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
            if name.starts_with('.') || p == root.join("rollups") {
                continue;
            }
            if p.is_dir() {
                walk_all(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy();
                out.insert(rel.replace('\\', "/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk_all(root, root, &mut out);
    out
}

/// Alert firings live in the bucket: one fired through one cache fires again neither
/// through a second machine's report nor through its ingest, and the record in the
/// bucket is the one written after delivery. (Found by a fault hunt: `alerts/` was
/// neither pulled nor pushed, so every fresh cache fired, and POSTed, it again.)
#[test]
fn an_alert_fired_through_one_cache_never_fires_through_another() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let feed = "format = \"vastai\"\nurl = \"v.json\"\n";
    std::fs::write(feeds.join("vastai.toml"), feed).unwrap();
    let rules = tmp.path().join("alerts.toml");
    let rule = "[[rule]]\nname = \"new\"\nkind = \"first_in_china\"\n";
    std::fs::write(&rules, rule).unwrap();
    let prefix = fresh_prefix();
    let s3 = url(&env, &prefix);
    let run = |cache: &str, args: &[&str]| -> String {
        let alerts = ["--alerts", rules.to_str().unwrap()];
        let cache = tmp.path().join(cache);
        let (code, out, err) = gpurent_s3(&env, &cache, &[&alerts[..], args].concat());
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    let feeds_s = feeds.to_str().unwrap();
    let ingest = |cache: &str, at: &str| {
        run(
            cache,
            &["ingest", "--feeds", feeds_s, "--store", &s3, "--at", at],
        )
    };
    let offer = |id: u32, gpu: &str, dph: f64| {
        format!(
            r#"{{"id": {id}, "gpu_name": "{gpu}", "num_gpus": 1, "dph_total": {dph}, "geolocation": "Zhejiang, CN"}}"#
        )
    };
    let payload = |offers: &[String]| format!("{{\"offers\": [{}]}}", offers.join(","));
    std::fs::write(feeds.join("v.json"), payload(&[offer(1, "H100 SXM", 2.0)])).unwrap();
    let out = ingest("cache-a", "2024-10-07T12:00:00Z");
    assert!(
        !out.contains("alert "),
        "nothing to compare with yet: {out}"
    );
    let week42 = [offer(1, "H100 SXM", 2.0), offer(2, "B200", 6.0)];
    std::fs::write(feeds.join("v.json"), payload(&week42)).unwrap();
    let out = ingest("cache-a", "2024-10-14T12:00:00Z");
    assert_eq!(
        out.matches("alert ").count(),
        1,
        "B200 is new in China: {out}"
    );
    // A second machine reports the week, a third ingests the next hour: no firing.
    let reports = tmp.path().join("reports");
    let report = ["report", "--store", &s3, "--out", reports.to_str().unwrap()];
    let out = run("cache-b", &[&report[..], &["--week", "2024-W42"]].concat());
    assert!(
        !out.contains("alert "),
        "fired again by a report through another cache: {out}"
    );
    let md = std::fs::read_to_string(reports.join("2024-W42/report.md")).unwrap();
    assert!(md.contains("B200-SXM-180GB offered in China"), "{md}");
    let out = ingest("cache-c", "2024-10-14T13:00:00Z");
    assert!(
        !out.contains("alert "),
        "fired again by an ingest through another cache: {out}"
    );
    // The bucket holds the record as updated after delivery, never `pending`.
    let keys = bucket_keys(&env, &prefix);
    let records: Vec<&String> = keys.iter().filter(|k| k.starts_with("alerts/")).collect();
    assert_eq!(records.len(), 1, "{keys:#?}");
    let fresh = tmp.path().join("cache-d");
    bucket_rows(&env, &fresh, &s3);
    let rec = std::fs::read_to_string(cached(&fresh).join(records[0])).unwrap();
    assert!(rec.contains("\"delivery\": \"no webhook\""), "{rec}");
}

/// A writer killed after creating an hourly object but before remembering it (in
/// `.known`), whose hour another machine's `compact` then moved into a day object and
/// deleted: its next push must not create the hourly object again, or the bucket
/// holds that hour twice (and engines globbing `offers/*/*.parquet` count it twice).
#[test]
fn a_compacted_hour_is_not_pushed_back_by_a_cache_that_forgot_it() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds = file_feed(tmp.path(), 100);
    let prefix = fresh_prefix();
    let s3 = url(&env, &prefix);
    let (writer, local) = (tmp.path().join("cache-w"), tmp.path().join("local"));
    ingest_both(&env, &writer, &feeds, &s3, &local, 2);
    // The kill: the keys of hour 00 never reached the writer's `.known`.
    let known = cached(&writer).join(".known");
    let text = std::fs::read_to_string(&known).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.contains("20241007T00"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(kept.len() < text.len(), "{text}");
    std::fs::write(&known, kept).unwrap();
    let compact = ["compact", "--store", &s3, "--before", "2024-10-08"];
    let (code, out, err) = gpurent_s3(&env, &tmp.path().join("cache-c"), &compact);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(" 2 hourly objects deleted"), "{err}");
    // The writer's next run pushes.
    let at = "2024-10-07T02:00:00Z";
    let args = [
        "ingest",
        "--feeds",
        feeds.to_str().unwrap(),
        "--store",
        &s3,
        "--at",
        at,
    ];
    let (code, out, err) = gpurent_s3(&env, &writer, &args);
    assert_eq!(code, 0, "{out}{err}");
    ingest_cli(&feeds, &local, at);
    let keys = bucket_keys(&env, &prefix);
    let twice: Vec<_> = hours_held(&keys)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "hours held twice in the bucket: {twice:?}\n{keys:#?}"
    );
    let reader = tmp.path().join("cache-r");
    assert_eq!(bucket_rows(&env, &reader, &s3), rows_per_run(&local));
}

/// A loopback server that answers one request with `body`, only once the test says
/// so: the request is announced on the first channel, the answer waits for the second.
fn gated_server(
    body: Vec<u8>,
) -> (
    String,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/vast", listener.local_addr().unwrap());
    let (asked_tx, asked) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && sock.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        asked_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let len = body.len();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(&body).unwrap();
    });
    (url, asked, go)
}

/// Two machines store the same hour of the same feed from different payloads, at
/// once: B pulls and fetches, then A stores the hour in the bucket, then B stores and
/// pushes, losing the race. B's cache then holds the bucket's files byte for byte, so
/// both read alike. (It used to keep its own file under the winner's name, and its
/// reports differed from the bucket's for good: a pull never replaces a file.) B's
/// payload has a reject and A's none: B's rejects object is not created beside A's
/// offers, and B's cache drops its rejects file (it used to create the object, since
/// rejects are pushed before the offers that tell a writer it lost).
#[test]
fn the_loser_of_a_race_reads_the_winners_hour() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds_a = file_feed(&tmp.path().join("a"), 10);
    file_feed(&tmp.path().join("b"), 25);
    // B's payload has one offer of a GPU no table knows (a reject); A's has none.
    let b_payload = std::fs::read_to_string(tmp.path().join("b/vast.json")).unwrap();
    let b_payload = b_payload.replacen("H100 SXM", "Mystery GPU 9000", 1);
    let (feed_url, asked, go) = gated_server(b_payload.into_bytes());
    let feeds_b = tmp.path().join("feeds-b");
    std::fs::create_dir_all(&feeds_b).unwrap();
    let feed = format!("format = \"vastai\"\nurl = \"{feed_url}\"\n");
    std::fs::write(feeds_b.join("vast.toml"), feed).unwrap();
    let s3 = url(&env, &fresh_prefix());
    let ingest = |cache: &str, feeds: &Path| {
        let feeds = feeds.to_str().unwrap();
        let args = [
            "ingest",
            "--feeds",
            feeds,
            "--store",
            &s3,
            "--at",
            "2024-10-07T05:00:00Z",
        ];
        gpurent_s3(&env, &tmp.path().join(cache), &args)
    };
    std::thread::scope(|scope| {
        let b = scope.spawn(|| ingest("cache-b", &feeds_b));
        asked.recv().unwrap();
        let (code, out, err) = ingest("cache-a", &feeds_a);
        assert_eq!(code, 0, "A: {out}{err}");
        go.send(()).unwrap();
        let (code, out, err) = b.join().unwrap();
        assert_eq!(code, 0, "B: {out}{err}");
        assert!(
            !err.contains(", 0 already stored"),
            "B lost the race: {err}"
        );
    });
    let reader = tmp.path().join("cache-r");
    bucket_rows(&env, &reader, &s3);
    let file = "offers/date=2024-10-07/vast__20241007T05.parquet";
    let bucket = std::fs::read(cached(&reader).join(file)).unwrap();
    let loser = std::fs::read(cached(&tmp.path().join("cache-b")).join(file)).unwrap();
    assert!(
        bucket == loser,
        "the loser's cache holds its own {file} ({} bytes), not the bucket's ({} bytes)",
        loser.len(),
        bucket.len()
    );
    // A had no rejects for the hour, so neither the bucket nor the loser holds any.
    let rejects = "rejects/date=2024-10-07/vast__20241007T05.parquet";
    assert!(
        !cached(&reader).join(rejects).exists(),
        "the bucket holds B's rejects"
    );
    let b_rejects = cached(&tmp.path().join("cache-b")).join(rejects);
    assert!(!b_rejects.exists(), "the loser keeps its rejects");
    // Nor the winner's raw hour, whose blobs it lacks (its next conditional fetch
    // said "last payload cannot be read").
    let raw = "raw/date=2024-10-07/vast__20241007T05.json";
    let b_raw = cached(&tmp.path().join("cache-b")).join(raw);
    assert!(
        !b_raw.exists(),
        "the loser holds a raw hour naming blobs it lacks"
    );
    let prices = |cache: &str| {
        let args = ["prices", "--store", &s3];
        let (code, out, err) = gpurent_s3(&env, &tmp.path().join(cache), &args);
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    assert_eq!(prices("cache-b"), prices("cache-a"));
    assert_eq!(prices("cache-b"), prices("cache-r"));
}

/// One writer, one ingest into an empty prefix: each file is offered once, so none is
/// "already stored by another writer", and the objects pushed are the cache's files.
/// (The `raw` walk used to go through `raw/blobs` again, uploading every blob's bytes
/// a second time only to be refused.) Its blobs are deflated before they leave.
#[test]
fn a_lone_writer_pushes_each_file_once() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let feeds = file_feed(tmp.path(), 100);
    let prefix = fresh_prefix();
    let s3 = url(&env, &prefix);
    let cache = tmp.path().join("cache-w");
    let feeds = feeds.to_str().unwrap();
    let args = ["ingest", "--feeds", feeds, "--store", &s3, "--at", AT];
    let (code, out, err) = gpurent_s3(&env, &cache, &args);
    assert_eq!(code, 0, "{out}{err}");
    let line = err.lines().find(|l| l.contains("objects pushed")).unwrap();
    let counts: Vec<usize> = line
        .rsplit(": ")
        .next()
        .unwrap()
        .split(' ')
        .filter_map(|w| w.trim_end_matches(',').parse().ok())
        .collect();
    let files = pushable_files(&cached(&cache));
    assert_eq!(counts, [files.len(), 0], "{line}\n{files:#?}");
    assert_eq!(bucket_keys(&env, &prefix), files);
    // Ingest wrote the blob as stored blocks; the push deflated it before upload.
    let blobs: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with("raw/blobs/"))
        .collect();
    assert!(!blobs.is_empty(), "{files:#?}");
    for b in blobs {
        let path = cached(&cache).join(b);
        assert!(
            !gpurent::store::deflate::is_stored(&path).unwrap(),
            "{b} pushed stored"
        );
    }
}

/// The bucket of `env` at `prefix`, as the library opens it.
fn remote(env: &BTreeMap<String, String>, prefix: &str) -> gpurent::store::remote::Remote {
    let vars = env.iter().map(|(k, v)| (k.clone(), v.clone()));
    gpurent::store::remote::Remote::open_with(&env["GPURENT_S3_BUCKET"], prefix, vars).unwrap()
}

/// Two machines that pulled the same bucket evaluate the same new firing at once
/// (neither has seen the other's record): only the one whose claim in the bucket is
/// created first POSTs it, the other says it did not, and the bucket's record is the
/// winner's, delivered. Re-evaluating on either fires nothing. (Before claims, both
/// delivered: each cache saw the firing as new.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_racing_on_one_firing_deliver_it_once() {
    use gpurent::report::alerts;
    use gpurent::run::sim::HttpResponse;
    use gpurent::store::Store;
    let Some(env) = s3_env() else { return };
    let srv = server().await;
    srv.routes
        .set("/hook", HttpResponse::ok("text/plain", "ok"));
    let tmp = tempdir();
    let prefix = fresh_prefix();
    // A feed failing since 10:00 in the bucket's run records.
    let seed = Store::open(tmp.path().join("seed"));
    std::fs::create_dir_all(seed.root().join("runs")).unwrap();
    for h in 10..14 {
        let run = serde_json::json!({
            "observed_at": format!("2024-10-07T{h}:00:00Z"),
            "feeds": [{"feed": "down", "status": "failed"}],
        });
        let name = format!("runs/20241007T{h}0000000-ingest.json");
        std::fs::write(seed.root().join(name), run.to_string()).unwrap();
    }
    remote(&env, &prefix).push(&seed).await.unwrap();
    let text = format!(
        "[webhook]\nurl = \"{}\"\nretries = 0\n\n[[rule]]\nname = \"down-2h\"\nkind = \"feed_failed\"\nhours = 2\n",
        srv.url("/hook")
    );
    let cfg = alerts::Config::parse(Path::new("alerts.toml"), &text).unwrap();
    let (a, b) = (
        Store::open(tmp.path().join("cache-a")),
        Store::open(tmp.path().join("cache-b")),
    );
    let (ra, rb) = (remote(&env, &prefix), remote(&env, &prefix));
    ra.pull(&a).await.unwrap();
    rb.pull(&b).await.unwrap();
    let week = gpurent::week::IsoWeek::parse("2024-W41").unwrap();
    let now: chrono::DateTime<chrono::Utc> = "2024-10-07T14:00:00Z".parse().unwrap();
    let (da, db) = tokio::join!(
        alerts::run(&a, &cfg, week, now, None, Some(&ra)),
        alerts::run(&b, &cfg, week, now, None, Some(&rb)),
    );
    let (da, db) = (da.unwrap(), db.unwrap());
    let posts = || {
        let requests = srv.requests.lock().unwrap();
        requests.iter().filter(|r| r.path() == "/hook").count()
    };
    assert_eq!(posts(), 1, "{da:?}\n{db:?}");
    let mut outcomes: Vec<String> = [&da, &db]
        .iter()
        .flat_map(|d| d.firings.iter().map(|f| f.delivery.clone()))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["delivered (attempts: 1)", alerts::CLAIMED_ELSEWHERE],
        "one delivers, the other says it did not"
    );
    let listed = (env.clone(), prefix.clone());
    let keys = tokio::task::spawn_blocking(move || bucket_keys(&listed.0, &listed.1))
        .await
        .unwrap();
    let records: Vec<&String> = keys.iter().filter(|k| k.starts_with("alerts/")).collect();
    assert_eq!(records.len(), 1, "{keys:#?}");
    let fresh = Store::open(tmp.path().join("cache-c"));
    remote(&env, &prefix).pull(&fresh).await.unwrap();
    let rec = std::fs::read_to_string(fresh.root().join(records[0])).unwrap();
    assert!(
        rec.contains("\"delivery\": \"delivered (attempts: 1)\""),
        "{rec}"
    );
    // Again on both, and on the fresh cache: nothing new, nothing POSTed.
    for (store, r) in [(&a, &ra), (&b, &rb)] {
        let again = alerts::run(store, &cfg, week, now, None, Some(r)).await;
        assert!(again.unwrap().firings.is_empty());
    }
    let r = remote(&env, &prefix);
    let again = alerts::run(&fresh, &cfg, week, now, None, Some(&r)).await;
    assert!(again.unwrap().firings.is_empty());
    assert_eq!(posts(), 1);
}

/// A writer that loses an hour to another writer (both fetched the same feed and hour,
/// a payload of other bytes, before either pushed) leaves no blob in the bucket that
/// no hour names: a push uploads only the blobs of hours the bucket does not hold
/// yet. (Before, the loser's blob was created first and stayed, named by nothing.)
#[test]
fn a_writer_that_loses_an_hour_leaves_no_orphan_blob() {
    let Some(env) = s3_env() else { return };
    let tmp = tempdir();
    let prefix = fresh_prefix();
    let s3 = url(&env, &prefix);
    let at = "2024-10-07T05:00:00Z";
    let feeds = file_feed(&tmp.path().join("a"), 3);
    let args = [
        "ingest",
        "--feeds",
        feeds.to_str().unwrap(),
        "--store",
        &s3,
        "--at",
        at,
    ];
    let (code, out, err) = gpurent_s3(&env, &tmp.path().join("cache-a"), &args);
    assert_eq!(code, 0, "{out}{err}");
    // Machine b stored the same hour from other bytes before a pushed, then pushes.
    let (local, feeds) = (
        tmp.path().join("b/store"),
        file_feed(&tmp.path().join("b"), 4),
    );
    ingest_cli(&feeds, &local, at);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let b = gpurent::store::Store::open(&local);
    let pushed = rt.block_on(remote(&env, &prefix).push(&b)).unwrap();
    assert!(pushed.already_there > 0, "b lost the hour: {pushed:?}");
    let keys = bucket_keys(&env, &prefix);
    let blobs: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.starts_with("raw/blobs/"))
        .cloned()
        .collect();
    let hours: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("raw/date=") && k.ends_with(".json"))
        .collect();
    assert_eq!(hours.len(), 1, "{keys:#?}");
    let hour = hour_json(&env, &prefix, hours[0]);
    let named: BTreeSet<String> = hour["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let sha = b["sha256"].as_str().unwrap();
            format!("raw/blobs/{}/{sha}.gz", &sha[..2])
        })
        .collect();
    assert_eq!(
        blobs, named,
        "every blob in the bucket is named by its hour"
    );
}

/// One object's JSON, read straight from the bucket.
fn hour_json(env: &BTreeMap<String, String>, prefix: &str, rel: &str) -> serde_json::Value {
    use object_store::ObjectStoreExt as _;
    let mut builder = object_store::aws::AmazonS3Builder::new();
    for (k, v) in env.iter().filter(|(k, _)| k.starts_with("AWS_")) {
        if let Ok(key) = k.to_ascii_lowercase().parse() {
            builder = builder.with_config(key, v);
        }
    }
    let os = builder
        .with_bucket_name(&env["GPURENT_S3_BUCKET"])
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = object_store::path::Path::from(format!("{prefix}/{rel}"));
    let bytes = rt.block_on(async { os.get(&key).await.unwrap().bytes().await.unwrap() });
    serde_json::from_slice(&bytes).unwrap()
}
