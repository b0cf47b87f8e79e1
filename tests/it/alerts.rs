//! Alerts end to end: the binary ingests two weeks with `--alerts`, each rule kind
//! fires once to a real webhook on 127.0.0.1, and re-evaluating (more ingests, the
//! report) fires nothing again; the firings appear in the report; the Slack body
//! and the retries are checked against the same receiver.

use std::path::{Path, PathBuf};

use gpurent::report::alerts::{self, Kind};
use gpurent::run::sim::HttpResponse;
use gpurent::store::Store;

use crate::common::*;

fn vast(offers: &[(u32, &str, u32, f64, &str)]) -> String {
    let list: Vec<serde_json::Value> = offers
        .iter()
        .map(|(id, gpu, n, dph, geo)| {
            serde_json::json!({"id": id, "gpu_name": gpu, "num_gpus": n, "dph_total": dph, "geolocation": geo})
        })
        .collect();
    serde_json::json!({ "offers": list }).to_string()
}

fn ingest(feeds: &Path, store: &Path, rules: &Path, at: &str) -> (i32, String, String) {
    let alerts = ["--alerts", rules.to_str().unwrap()];
    gpurent(&[&alerts[..], &ingest_args(feeds, store, at)].concat())
}

fn rules(hook: &str, slack: bool) -> String {
    format!(
        r#"[webhook]
url = "{hook}"
slack = {slack}
retries = 2
retry_delay_ms = 10

[[rule]]
name = "h100-crosses-0.7"
kind = "ratio_crosses"
model = "H100-SXM-80GB"
threshold = 0.7

[[rule]]
name = "ratio-moves-10"
kind = "ratio_moves"
percent = 10

[[rule]]
name = "new-in-china"
kind = "first_in_china"

[[rule]]
name = "provider-moves-15"
kind = "provider_price_moves"
percent = 15

[[rule]]
name = "feed-down-2h"
kind = "feed_failed"
hours = 2
"#
    )
}

fn records(store: &Path) -> Vec<alerts::Firing> {
    let mut out: Vec<alerts::Firing> = std::fs::read_dir(store.join("alerts"))
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn posts(srv: &TestServer) -> Vec<serde_json::Value> {
    srv.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "POST" && r.path() == "/hook")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Week 41: H100 SXM at $2.00 in China and $2.50 in the US (ratio 0.8). Week 42:
/// $1.50 in China (ratio 0.6, −25%), a B200 listed in China, and a feed that fails.
fn two_weeks(root: &Path, rules_file: &Path) -> (PathBuf, PathBuf) {
    let (feeds, store) = (root.join("feeds"), root.join("store"));
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(
        feeds.join("vast.toml"),
        "format = \"vastai\"\nurl = \"vast.json\"\n",
    )
    .unwrap();
    std::fs::write(
        feeds.join("vast.json"),
        vast(&[
            (1, "H100 SXM", 8, 16.0, "Beijing, CN"),
            (2, "H100 SXM", 1, 2.5, "Texas, US"),
        ]),
    )
    .unwrap();
    let (code, out, err) = ingest(&feeds, &store, rules_file, "2024-10-07T10:00:00Z");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("alert "),
        "nothing to compare with yet: {out}"
    );
    std::fs::write(
        feeds.join("vast.json"),
        vast(&[
            (1, "H100 SXM", 8, 12.0, "Beijing, CN"),
            (2, "H100 SXM", 1, 2.5, "Texas, US"),
            (3, "B200", 8, 40.0, "Shanghai, CN"),
        ]),
    )
    .unwrap();
    std::fs::write(
        feeds.join("down.toml"),
        "format = \"vastai\"\nurl = \"missing.json\"\n",
    )
    .unwrap();
    (feeds, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_kind_fires_once_to_the_webhook() {
    let srv = server().await;
    srv.routes
        .set("/hook", HttpResponse::ok("text/plain", "ok"));
    let tmp = tempdir();
    let rules_file = tmp.path().join("alerts.toml");
    std::fs::write(&rules_file, rules(&srv.url("/hook"), false)).unwrap();
    let root = tmp.path().to_path_buf();
    let rf = rules_file.clone();
    let (feeds, store) = tokio::task::spawn_blocking(move || two_weeks(&root, &rf))
        .await
        .unwrap();
    // A run record that cannot be read is passed over, and said (it used to be
    // skipped silently; the outage rule then sees fewer runs).
    let garbage = store.join("runs/garbage-ingest.json");
    std::fs::write(&garbage, "not json").unwrap();
    // Four hourly ingests in week 42: the feed `down` fails in each.
    let mut outs = Vec::new();
    for hour in 10..14 {
        let (f, s, r) = (feeds.clone(), store.clone(), rules_file.clone());
        let at = format!("2024-10-14T{hour}:00:00Z");
        let (code, out, err) = tokio::task::spawn_blocking(move || ingest(&f, &s, &r, &at))
            .await
            .unwrap();
        assert_eq!(code, 1, "feed `down` failed: {out}{err}");
        let said = format!("run record {} not read", garbage.display());
        assert!(err.contains(&said), "{err}");
        outs.push(out);
    }
    let recs = records(&store);
    let kinds: Vec<Kind> = recs.iter().map(|r| r.kind).collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            Kind::RatioCrosses,
            Kind::RatioMoves,
            Kind::FirstInChina,
            Kind::ProviderPriceMoves,
            Kind::FeedFailed
        ],
        "each kind once: {recs:#?}"
    );
    // The ratio and price rules fired with the first ingest of week 42, the outage
    // rule once the feed had failed for 2 hours (12:00), and nothing after.
    assert_eq!(outs[0].matches("alert ").count(), 4, "{}", outs[0]);
    assert_eq!(outs[1].matches("alert ").count(), 0, "{}", outs[1]);
    assert!(
        outs[2].contains("alert feed-down-2h: feed down has failed for 2.0 hours"),
        "{}",
        outs[2]
    );
    assert_eq!(outs[3].matches("alert ").count(), 0, "{}", outs[3]);
    let bodies = posts(&srv);
    assert_eq!(bodies.len(), 5, "one POST per firing: {bodies:#?}");
    assert!(
        recs.iter().all(|r| r.delivery == "delivered (attempts: 1)"),
        "{recs:#?}"
    );
    let hook = srv.url("/hook");
    let text = serde_json::to_string(&recs).unwrap();
    assert!(!text.contains(&hook), "the webhook URL is never recorded");
    insta::assert_snapshot!(
        "alert_records",
        serde_json::to_string_pretty(&recs).unwrap()
    );

    // The report re-evaluates (nothing new) and shows the week's firings.
    let (alerts, out) = (
        ["--alerts", rules_file.to_str().unwrap()],
        tmp.path().join("reports"),
    );
    let report = report_args(&store, &out, "2024-W42");
    let (code, stdout, err) = gpurent_async(&[&alerts[..], &report].concat()).await;
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(!stdout.contains("alert "), "{stdout}");
    assert_eq!(posts(&srv).len(), 5, "no firing delivered twice");
    let md = std::fs::read_to_string(tmp.path().join("reports/2024-W42/report.md")).unwrap();
    assert!(md.contains("## Alerts"), "{md}");
    for r in &recs {
        assert!(md.contains(&r.message), "{} not in the report", r.message);
    }
    // The messages carry the numbers.
    let msg = |k: Kind| recs.iter().find(|r| r.kind == k).unwrap().message.clone();
    assert_eq!(
        msg(Kind::RatioCrosses),
        "H100-SXM-80GB: CN/US ratio of on-demand medians crossed 0.7: 0.800 in 2024-W41, 0.600 in 2024-W42"
    );
    assert!(msg(Kind::FirstInChina)
        .starts_with("B200-SXM-180GB offered in China for the first time in 2024-W42"));
    assert!(msg(Kind::ProviderPriceMoves).contains("moved -25.0% on the week"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bodies_and_retries() {
    let srv = server().await;
    srv.routes.script(
        "/hook",
        vec![
            HttpResponse::status(503),
            HttpResponse::status(500),
            HttpResponse::ok("text/plain", "ok"),
        ],
    );
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let cfg = alerts::Config::parse(Path::new("t.toml"), &rules(&srv.url("/hook"), true)).unwrap();
    let mut f = vec![alerts::Firing {
        key: "new-in-china/B200-SXM-180GB".into(),
        rule: "new-in-china".into(),
        kind: Kind::FirstInChina,
        subject: "B200-SXM-180GB".into(),
        week: "2024-W42".into(),
        fired_at: "2024-10-14T10:00:00Z".into(),
        message: "B200-SXM-180GB offered in China for the first time".into(),
        numbers: Default::default(),
        delivery: "pending".into(),
    }];
    alerts::deliver(&store, &cfg, &mut f).await.unwrap();
    assert_eq!(f[0].delivery, "delivered (attempts: 3)");
    let bodies = posts(&srv);
    assert_eq!(bodies.len(), 3, "two retries");
    assert_eq!(
        bodies[2],
        serde_json::json!({"text": "gpurent alert: B200-SXM-180GB offered in China for the first time"})
    );
    // A receiver that never accepts: the failure is recorded, without the URL.
    srv.routes.set("/hook", HttpResponse::status(500));
    alerts::deliver(&store, &cfg, &mut f).await.unwrap();
    assert_eq!(f[0].delivery, "failed: HTTP 500 after 3 attempts");
    let rec = std::fs::read_to_string(
        tmp.path()
            .join("store/alerts/new-in-china_B200-SXM-180GB.json"),
    )
    .unwrap();
    assert!(
        rec.contains("failed: HTTP 500 after 3 attempts") && !rec.contains("127.0.0.1"),
        "{rec}"
    );
}

fn firing(key: &str, fired_at: &str) -> alerts::Firing {
    alerts::Firing {
        key: format!("new-in-china/{key}"),
        rule: "new-in-china".into(),
        kind: Kind::FirstInChina,
        subject: key.into(),
        week: "2024-W42".into(),
        fired_at: fired_at.into(),
        message: format!("{key} offered in China for the first time"),
        numbers: Default::default(),
        delivery: "pending".into(),
    }
}

/// A receiver down for longer than the retries: the failed firings are POSTed again
/// at later evaluations, once each, oldest key first, while they are younger than
/// `redeliver_hours`; the first that fails again ends the pass; a delivered or an
/// older one is never POSTed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_posted_again_while_it_is_recent() {
    let srv = server().await;
    srv.routes.set("/hook", HttpResponse::status(503));
    let tmp = tempdir();
    let store = Store::open(tmp.path().join("store"));
    let cfg = alerts::Config::parse(Path::new("t.toml"), &rules(&srv.url("/hook"), true)).unwrap();
    let mut fs = vec![
        firing("A", "2024-10-13T00:00:00Z"),
        firing("B", "2024-10-14T08:00:00Z"),
        firing("C", "2024-10-14T09:00:00Z"),
    ];
    alerts::deliver(&store, &cfg, &mut fs).await.unwrap();
    assert!(fs
        .iter()
        .all(|f| f.delivery.starts_with("failed: HTTP 503")));
    let before = posts(&srv).len();
    let now: chrono::DateTime<chrono::Utc> = "2024-10-14T10:00:00Z".parse().unwrap();

    // Still down: B is POSTed once, fails, and ends the pass; A is 34 h old.
    let again = alerts::redeliver(&store, &cfg, now).await.unwrap();
    let keys: Vec<&str> = again.iter().map(|f| f.subject.as_str()).collect();
    assert_eq!(keys, ["B"]);
    assert_eq!(posts(&srv).len(), before + 1);
    assert_eq!(
        again[0].delivery,
        "failed: HTTP 503; POSTed again at 2024-10-14T10:00:00Z"
    );

    // Back up: B and C are delivered, their records say so; A stays failed.
    srv.routes
        .set("/hook", HttpResponse::ok("text/plain", "ok"));
    let again = alerts::redeliver(&store, &cfg, now).await.unwrap();
    let keys: Vec<&str> = again.iter().map(|f| f.subject.as_str()).collect();
    assert_eq!(keys, ["B", "C"]);
    let recs = records(tmp.path().join("store").as_path());
    let outcome: Vec<(&str, &str)> = recs
        .iter()
        .map(|f| (f.subject.as_str(), f.delivery.as_str()))
        .collect();
    assert_eq!(outcome[0], ("A", "failed: HTTP 503 after 3 attempts"));
    for (_, d) in &outcome[1..] {
        assert_eq!(*d, "delivered (again, after a failed delivery)");
    }
    let bodies = posts(&srv);
    assert_eq!(bodies.len(), before + 3);
    assert_eq!(
        bodies[before + 2],
        serde_json::json!({"text": "gpurent alert: C offered in China for the first time"})
    );

    // Nothing is left to POST; `redeliver_hours = 0` turns it off.
    assert!(alerts::redeliver(&store, &cfg, now)
        .await
        .unwrap()
        .is_empty());
    let off = rules(&srv.url("/hook"), true).replace(
        "retry_delay_ms = 10",
        "retry_delay_ms = 10\nredeliver_hours = 0",
    );
    let off = alerts::Config::parse(Path::new("t.toml"), &off).unwrap();
    let late: chrono::DateTime<chrono::Utc> = "2024-10-13T01:00:00Z".parse().unwrap();
    assert!(alerts::redeliver(&store, &off, late)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(posts(&srv).len(), before + 3);
}

/// `provider_price_moves` compares on-demand medians only: the same payload two weeks
/// running (on-demand 3.00, spot 1.80, both unchanged) fires nothing. It used to
/// compare last week's on-demand median with this week's spot one (-40 %; found by a
/// fault hunt).
#[test]
fn provider_moves_compare_on_demand_with_on_demand() {
    let tmp = tempdir();
    let feeds = tmp.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let body = r#"{"offers": [
        {"id": 1, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 3.0, "min_bid": 1.8, "geolocation": "Texas, US"},
        {"id": 2, "gpu_name": "H100 SXM", "num_gpus": 1, "dph_total": 3.0, "min_bid": 1.8, "geolocation": "Texas, US"}]}"#;
    std::fs::write(feeds.join("v.json"), body).unwrap();
    std::fs::write(
        feeds.join("vastai.toml"),
        "format = \"vastai\"\nurl = \"v.json\"\n",
    )
    .unwrap();
    let rules = tmp.path().join("alerts.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"prov\"\nkind = \"provider_price_moves\"\npercent = 15\n",
    )
    .unwrap();
    let store = tmp.path().join("store");
    for at in ["2024-10-07T12:00:00Z", "2024-10-14T12:00:00Z"] {
        let (code, out, err) = ingest(&feeds, &store, &rules, at);
        assert_eq!(code, 0, "{out}{err}");
        assert!(!out.contains("alert "), "{at}: {out}");
    }
    let fired = std::fs::read_dir(store.join("alerts")).map_or(0, |d| d.count());
    assert_eq!(fired, 0, "no firing recorded");
}

/// A hook that never answers is given up after `timeout_s` per attempt, and one that
/// redirects is a failed attempt: both are recorded as failed, and the ingest ends
/// (found by a fault hunt: the POST waited for ever, holding the store lock; a 302
/// became a GET without the firing, recorded as delivered).
#[test]
fn a_hanging_or_redirecting_hook_is_a_failed_delivery() {
    use crate::faults::{fault_server, Fault};
    let srv = fault_server(|r| match r.path.as_str() {
        "/hang" => Fault::Hang,
        "/ok" => Fault::json(b"{}".to_vec()),
        _ => Fault::status(302, &[("Location", "/ok")]),
    });
    for (path, why) in [("/hang", "no answer within 1 s"), ("/redirect", "HTTP 302")] {
        let tmp = tempdir();
        let feeds = tmp.path().join("feeds");
        std::fs::create_dir_all(&feeds).unwrap();
        let first = vast(&[(1, "H100 SXM", 1, 2.0, "Zhejiang, CN")]);
        std::fs::write(feeds.join("v.json"), first).unwrap();
        let feed = "format = \"vastai\"\nurl = \"v.json\"\n";
        std::fs::write(feeds.join("vastai.toml"), feed).unwrap();
        let rules = tmp.path().join("alerts.toml");
        let text = format!(
            "[webhook]\nurl = \"{}\"\nretries = 1\nretry_delay_ms = 10\ntimeout_s = 1\n\n\
             [[rule]]\nname = \"new\"\nkind = \"first_in_china\"\n",
            srv.url(path)
        );
        std::fs::write(&rules, text).unwrap();
        let store = tmp.path().join("store");
        assert_eq!(ingest_args_run(&feeds, &store, "2024-10-07T12:00:00Z"), 0);
        let body = vast(&[
            (1, "H100 SXM", 1, 2.0, "Zhejiang, CN"),
            (2, "B200", 1, 6.0, "Zhejiang, CN"),
        ]);
        std::fs::write(feeds.join("v.json"), body).unwrap();
        let started = std::time::Instant::now();
        let (code, out, err) = ingest(&feeds, &store, &rules, "2024-10-14T12:00:00Z");
        assert_eq!(code, 0, "{out}{err}");
        assert!(started.elapsed().as_secs() < 30, "{path}: the ingest ended");
        let recs = records(&store);
        assert_eq!(recs.len(), 1, "{recs:#?}");
        assert!(
            recs[0].delivery.starts_with("failed:") && recs[0].delivery.contains(why),
            "{path}: {}",
            recs[0].delivery
        );
        // The receiver is back an hour later: the next ingest POSTs it again.
        let text = std::fs::read_to_string(&rules).unwrap();
        std::fs::write(&rules, text.replace(&srv.url(path), &srv.url("/ok"))).unwrap();
        let (code, out, err) = ingest(&feeds, &store, &rules, "2024-10-14T13:00:00Z");
        assert_eq!(code, 0, "{out}{err}");
        let again = "[delivered (again, after a failed delivery)]";
        assert!(out.contains("alert new: ") && out.contains(again), "{out}");
        assert_eq!(records(&store)[0].delivery, &again[1..again.len() - 1]);
    }
}

/// `gpurent ingest` without alert rules; its exit code.
fn ingest_args_run(feeds: &Path, store: &Path, at: &str) -> i32 {
    gpurent(&ingest_args(feeds, store, at)).0
}
