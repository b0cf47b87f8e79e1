//! Shared helpers: a loopback server with routes, temp dirs, reading the store back
//! with polars independently of gpurent's own analysis code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gpurent::run::sim::{self, HttpRequest, HttpResponse};
use polars::prelude::*;

/// A route table the test can change while the server runs.
#[derive(Clone, Default)]
pub struct Routes(pub Arc<Mutex<HashMap<String, Vec<HttpResponse>>>>);

impl Routes {
    /// Serve `resp` at `path` (replacing earlier responses).
    pub fn set(&self, path: &str, resp: HttpResponse) {
        self.0.lock().unwrap().insert(path.to_string(), vec![resp]);
    }
    /// Serve these responses in order, the last one from then on.
    pub fn script(&self, path: &str, resps: Vec<HttpResponse>) {
        self.0.lock().unwrap().insert(path.to_string(), resps);
    }
}

pub struct TestServer {
    pub server: sim::Server,
    pub routes: Routes,
    pub hits: Arc<Mutex<Vec<String>>>,
    /// Every request received, in full (method, target, headers, body).
    pub requests: Arc<Mutex<Vec<HttpRequest>>>,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

pub async fn server() -> TestServer {
    let routes = Routes::default();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (r, h, rq) = (routes.clone(), Arc::clone(&hits), Arc::clone(&requests));
    let handler: sim::Handler = Arc::new(move |req: &HttpRequest| {
        h.lock().unwrap().push(req.target.clone());
        rq.lock().unwrap().push(req.clone());
        let mut map = r.0.lock().unwrap();
        match map.get_mut(req.path()) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) if !list.is_empty() => list[0].clone(),
            _ => HttpResponse::status(404),
        }
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = sim::serve(handler, rx).await.expect("bind 127.0.0.1:0");
    TestServer {
        server,
        routes,
        hits,
        requests,
        _stop: tx,
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Every parquet file under `dir`, read eagerly with polars and stacked.
pub fn read_all(dir: &Path) -> Option<DataFrame> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut out: Option<DataFrame> = None;
    for f in files {
        let df = ParquetReader::new(std::fs::File::open(&f).unwrap())
            .finish()
            .unwrap();
        match &mut out {
            None => out = Some(df),
            Some(o) => {
                o.vstack_mut_owned(df).unwrap();
            }
        }
    }
    out
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
}

/// numpy's default (linear) quantile, computed independently.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The rows of a frame where `col == value` for string columns.
pub fn rows_where(df: &DataFrame, conds: &[(&str, &str)]) -> DataFrame {
    let mut mask = BooleanChunked::full("m".into(), true, df.height());
    for (c, v) in conds {
        let m = df.column(c).unwrap().str().unwrap().equal(*v);
        mask = &mask & &m;
    }
    df.filter(&mask).unwrap()
}

pub fn f64_col(df: &DataFrame, c: &str) -> Vec<f64> {
    df.column(c)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

/// A time (or integer) column as i64 values: a time as milliseconds since the epoch.
pub fn i64_col(df: &DataFrame, c: &str) -> Vec<i64> {
    df.column(c)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

pub fn str_col(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect()
}

/// Run the gpurent binary; returns (exit code, stdout, stderr).
pub fn gpurent(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpurent"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`gpurent`] off the async runtime, so that a loopback server of the test keeps
/// serving while the binary runs.
pub async fn gpurent_async(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        gpurent(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

/// The arguments of `gpurent ingest --feeds --store --at`.
pub fn ingest_args<'a>(feeds: &'a Path, store: &'a Path, at: &'a str) -> [&'a str; 7] {
    let (feeds, store) = (feeds.to_str().unwrap(), store.to_str().unwrap());
    ["ingest", "--feeds", feeds, "--store", store, "--at", at]
}

/// The arguments of `gpurent report --store --out --week`.
pub fn report_args<'a>(store: &'a Path, out: &'a Path, week: &'a str) -> [&'a str; 7] {
    let (store, out) = (store.to_str().unwrap(), out.to_str().unwrap());
    ["report", "--store", store, "--out", out, "--week", week]
}

/// `gpurent ingest --feeds --store --at` as a user runs it; it must exit 0.
pub fn ingest_cli(feeds: &Path, store: &Path, at: &str) {
    let (code, out, err) = gpurent(&ingest_args(feeds, store, at));
    assert_eq!(code, 0, "{out}{err}");
}

/// Observation time of the feed tests: Monday 2024-10-07, so the ECB fixture's Friday
/// 2024-10-04 rates apply.
pub const AT: &str = "2024-10-07T12:00:00Z";
/// USD per CNY from the ECB fixture: (USD per EUR) / (CNY per EUR).
pub const USD_PER_CNY: f64 = 1.1029 / 7.7407;

/// A recorded sample payload from `feeds/samples/`.
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("feeds/samples")
            .join(name),
    )
    .unwrap()
}

/// The content type a recorded payload is served with, by its file name.
fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("csv") => "text/csv",
        Some("xml") => "application/xml",
        _ => "application/json",
    }
}

/// A 200 answer with the recorded sample `name` from `feeds/samples/`.
pub fn sample_ok(name: &str) -> HttpResponse {
    HttpResponse::ok(content_type(name), sample(name))
}

/// Serve the test fixture `name` (from `tests/fixtures/`) at `path`.
pub fn serve_fixture(srv: &TestServer, path: &str, name: &str) {
    srv.routes
        .set(path, HttpResponse::ok(content_type(name), fixture(name)));
}

/// Serve the recorded sample `name` at `path`; a feed file of `format` reading it,
/// `extra` (whole lines) appended.
pub fn sample_feed(srv: &TestServer, format: &str, path: &str, name: &str, extra: &str) -> String {
    srv.routes.set(path, sample_ok(name));
    format!(
        "format = \"{format}\"\nurl = \"{}\"\n{extra}",
        srv.url(path)
    )
}

/// Write the feed files and run one ingest through the library at [`AT`]. Returns the
/// report, its outcome lines and the stored offers (None when nothing was stored).
pub async fn run_feeds(
    feeds: &[(&str, String)],
) -> (gpurent::ingest::RunReport, Vec<String>, Option<DataFrame>) {
    let tmp = tempdir();
    let dir = tmp.path().join("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in feeds {
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
    let (feeds, broken) = gpurent::ingest::feed::load_dir(&dir).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let store = gpurent::store::Store::open(tmp.path().join("store"));
    let client = gpurent::ingest::fetch::client();
    let at: chrono::DateTime<chrono::Utc> = AT.parse().unwrap();
    let report = gpurent::ingest::run(
        feeds,
        broken,
        &store,
        &client,
        at,
        gpurent::tables::Tables::embedded(),
    )
    .await;
    let lines: Vec<String> = report.outcomes.iter().map(|o| o.line()).collect();
    let offers = read_all(&tmp.path().join("store/offers"));
    (report, lines, offers)
}

/// One ingest that must succeed for every feed: the stored offers and the lines.
pub async fn ingest_ok(feeds: &[(&str, String)]) -> (DataFrame, Vec<String>) {
    let (report, lines, offers) = run_feeds(feeds).await;
    assert_eq!(report.exit_code(), 0, "{lines:#?}");
    (offers.expect("offers stored"), lines)
}

pub fn ecb_feed(srv: &TestServer) -> (&'static str, String) {
    serve_fixture(srv, "/ecb.xml", "eurofxref-daily.xml");
    (
        "ecb",
        format!("format = \"ecb_fx\"\nurl = \"{}\"\n", srv.url("/ecb.xml")),
    )
}

/// (offer_id, price_class, usd_per_gpu_hour, gpu_model, gpu_count, country, bloc).
pub type Want<'a> = (&'a str, &'a str, f64, &'a str, f64, &'a str, &'a str);

pub fn check_offers(offers: &DataFrame, wants: &[Want]) {
    for (offer, class, usd, model, count, country, bloc) in wants {
        let r = rows_where(offers, &[("offer_id", offer), ("price_class", class)]);
        assert_eq!(r.height(), 1, "{offer} {class}: one stored row");
        let got = f64_col(&r, "usd_per_gpu_hour")[0];
        assert!(
            (got - usd).abs() < 1e-9,
            "{offer} {class}: usd_per_gpu_hour {got} != {usd}"
        );
        assert_eq!(
            str_col(&r, "gpu_model")[0],
            *model,
            "{offer} {class}: gpu_model"
        );
        assert_eq!(
            f64_col(&r, "gpu_count")[0],
            *count,
            "{offer} {class}: gpu_count"
        );
        assert_eq!(
            str_col(&r, "country")[0],
            *country,
            "{offer} {class}: country"
        );
        assert_eq!(str_col(&r, "bloc")[0], *bloc, "{offer} {class}: bloc");
    }
}

pub fn line<'a>(lines: &'a [String], feed: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{feed}: ")))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no line for {feed} in {lines:#?}"))
}

/// The repository's feed files `feeds/{name}.toml` for `names`, in that order: none
/// of them is broken, and each is there.
pub fn repo_feeds(names: &[&str]) -> Vec<gpurent::ingest::feed::FeedConfig> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds");
    let (feeds, broken) = gpurent::ingest::feed::load_dir(&dir).unwrap();
    let bad: Vec<String> = broken
        .iter()
        .filter(|b| names.contains(&b.name.as_str()))
        .map(|b| b.error.to_string())
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let find = |name: &&str| {
        let f = feeds.iter().find(|f| f.config.name == *name);
        f.unwrap_or_else(|| panic!("feeds/{name}.toml"))
            .config
            .clone()
    };
    names.iter().map(find).collect()
}

/// Serve the three fixture feeds from `srv` (vast.ai offers, a CNY price list as
/// provider aliyun with 6% VAT, the ECB rates) and write their feed files into `dir`.
pub fn fixture_feeds(srv: &TestServer, dir: &Path) {
    serve_fixture(srv, "/vast", "vastai_search.json");
    serve_fixture(srv, "/ecb.xml", "eurofxref-daily.xml");
    serve_fixture(srv, "/cn.csv", "cn_cloud_prices.csv");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("vast.toml"),
        format!("format = \"vastai\"\nurl = \"{}\"\n", srv.url("/vast")),
    )
    .unwrap();
    std::fs::write(
        dir.join("ecb.toml"),
        format!("format = \"ecb_fx\"\nurl = \"{}\"\n", srv.url("/ecb.xml")),
    )
    .unwrap();
    std::fs::write(dir.join("cncloud.toml"), cn_csv_feed(&srv.url("/cn.csv"))).unwrap();
}

/// The feed file of the CNY price list fixture at `url`: provider aliyun, prices per
/// instance-hour on demand with 6% VAT.
pub fn cn_csv_feed(url: &str) -> String {
    format!("format = \"generic_csv\"\nurl = \"{url}\"\nprovider = \"aliyun\"\ncurrency = \"CNY\"\nprice_unit = \"instance-hour\"\nprice_class = \"on_demand\"\nprice_includes_vat = 0.06\n[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price_cny_per_hour\"\nregion = \"region\"\ninstance_type = \"instance_type\"\n")
}

/// The fixture feeds ([`fixture_feeds`]) served from a new server, their feed files
/// in `<tmp>/feeds`, ingested once at each of `times` into the store `<tmp>/store`:
/// (server, tmp, feeds folder, store).
pub async fn fixture_store(
    times: &[chrono::DateTime<chrono::Utc>],
) -> (
    TestServer,
    tempfile::TempDir,
    PathBuf,
    gpurent::store::Store,
) {
    let srv = server().await;
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    fixture_feeds(&srv, &feeds);
    let store = gpurent::store::Store::open(tmp.path().join("store"));
    ingest_times(&feeds, &store, times).await;
    (srv, tmp, feeds, store)
}

/// Ingest every feed in `feeds` once at each of `times`; every run must succeed.
pub async fn ingest_times(
    feeds: &Path,
    store: &gpurent::store::Store,
    times: &[chrono::DateTime<chrono::Utc>],
) {
    let client = gpurent::ingest::fetch::client();
    for at in times {
        let (f, b) = gpurent::ingest::feed::load_dir(feeds).unwrap();
        let r = gpurent::ingest::run(
            f,
            b,
            store,
            &client,
            *at,
            gpurent::tables::Tables::embedded(),
        )
        .await;
        assert_eq!(r.exit_code(), 0, "{:?}", r.outcomes);
    }
}

/// Report a skipped test where the user sees it: libtest captures `println!` of passing
/// tests, so write to the process's stderr directly, with a count of skips so far.
pub fn report_skip(why: &str) {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SKIPPED: AtomicUsize = AtomicUsize::new(0);
    let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = writeln!(std::io::stderr(), "SKIPPED ({n} so far): {why}");
}

/// A real part a test needs is missing (`what`, with how to get it): a failure when
/// `require` (e.g. `GPURENT_REQUIRE_S3`, set by `.ci/run`) is 1, else a visible skip.
pub fn missing_part(require: &str, what: &str) {
    if std::env::var(require).as_deref() == Ok("1") {
        panic!("{what}, and {require}=1");
    }
    report_skip(&format!("{what} ({require}=1 makes this a failure)"));
}

/// `../shared/data` (the real public data), or None after [`missing_part`].
pub fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    missing_part(
        "GPURENT_REQUIRE_SHARED",
        &format!("{} not found (real-data test)", dir.display()),
    );
    None
}

/// One snapshot of `provider`'s price list, imported through the real backfill path:
/// a `generic_csv` feed of on-demand USD per GPU-hour prices in `country`, offers as
/// (offer id, GPU name, USD per GPU-hour), one GPU each, observed at `at`.
pub async fn list_snapshot(
    dir: &Path,
    store: &gpurent::store::Store,
    provider: &str,
    country: &str,
    at: chrono::DateTime<chrono::Utc>,
    offers: &[(&str, &str, f64)],
) {
    let feed = dir.join(format!("{provider}.toml"));
    std::fs::write(
        &feed,
        format!(
            "format = \"generic_csv\"\nurl = \"list.csv\"\nprovider = \"{provider}\"\ncurrency = \"USD\"\nprice_unit = \"gpu-hour\"\nprice_class = \"on_demand\"\ncountry = \"{country}\"\n[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price\"\noffer_id = \"id\"\n"
        ),
    )
    .unwrap();
    let mut csv = String::from("id,gpu,gpus,price\n");
    for (id, gpu, price) in offers {
        csv.push_str(&format!("{id},{gpu},1,{price}\n"));
    }
    let file = dir.join(format!("{provider}-{}.csv", at.timestamp()));
    std::fs::write(&file, csv).unwrap();
    let spec = gpurent::ingest::backfill::Spec {
        format: None,
        feed_file: Some(feed),
        provider: None,
        at: Some(at),
    };
    let out = gpurent::ingest::backfill::backfill(
        &spec,
        &[file],
        store,
        gpurent::tables::Tables::embedded(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    assert!(out.iter().all(|o| o.error.is_none()), "{out:?}");
}

/// A store back-filled from a dated USD list (lambda, US, H100 SXM rows on 2024-01-01
/// and 2024-01-08) with `--at 2024-02-01T00:00:00Z`, so that its newest date holds
/// only the empty run that marks the file imported; the store's path.
pub fn dated_backfill_with_a_later_empty_run(dir: &Path) -> PathBuf {
    let csv = dir.join("dated.csv");
    std::fs::write(
        &csv,
        "date,id,gpu,gpus,price\n2024-01-01,d1,H100 SXM,1,2.30\n2024-01-08,d1,H100 SXM,1,2.40\n",
    )
    .unwrap();
    let feed = dir.join("dated.toml");
    std::fs::write(
        &feed,
        "format = \"generic_csv\"\nurl = \"x.csv\"\nprovider = \"lambda\"\ncurrency = \"USD\"\n\
         price_unit = \"gpu-hour\"\nprice_class = \"on_demand\"\ncountry = \"US\"\n\
         [columns]\ndate = \"date\"\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price\"\noffer_id = \"id\"\n",
    )
    .unwrap();
    let store = dir.join("store");
    let (f, c, s) = (
        feed.to_str().unwrap(),
        csv.to_str().unwrap(),
        store.to_str().unwrap(),
    );
    let args = [
        "backfill",
        "--feed",
        f,
        "--at",
        "2024-02-01T00:00:00Z",
        "--store",
        s,
        c,
    ];
    let (code, out, err) = gpurent(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        store.join("offers/date=2024-02-01").is_dir(),
        "the empty run's date"
    );
    store
}
