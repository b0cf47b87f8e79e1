//! Marketplace and JSON feed formats end to end (`runpod`, `lambda`, `shadeform`,
//! `autodl`, `ppio`, `generic_json`): each recorded sample in `feeds/samples/` is
//! served from 127.0.0.1, a feed file points at it, the library's own ingest runs
//! (`feed::load_dir`, `fetch::client`, `ingest::run`), and specific stored offers are
//! read back from the Parquet store. CNY feeds run with an ECB feed in the same run
//! (real rates of Friday 2024-10-04, observed Monday 2024-10-07).

use std::path::Path;

use gpurent::run::sim::HttpResponse;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_graphql_post() {
    let srv = server().await;
    std::env::set_var("GPURENT_TEST_RUNPOD_KEY", "rp-test-key-31337");
    let extra = "auth_env = \"GPURENT_TEST_RUNPOD_KEY\"\nretries = 0\n";
    let feed = sample_feed(&srv, "runpod", "/graphql", "runpod.sample.json", extra);
    let (offers, lines) = ingest_ok(&[("runpod", feed)]).await;
    // 4 GPU types offered: H100 SXM 2 tiers × 2 classes, H100 NVL secure × 2, A100 secure × 2
    // + community on demand without a price, RTX 4090 2 × 2; "unknown" has both clouds off.
    assert_eq!(
        line(&lines, "runpod"),
        "runpod: ok, 13 offers read, 12 stored, 1 rejected (missing_price 1)"
    );
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("NVIDIA H100 80GB HBM3:secure", "on_demand", 2.99, "H100-SXM-80GB", 1.0, "", "OTHER"),
        ("NVIDIA H100 80GB HBM3:secure", "spot", 1.75, "H100-SXM-80GB", 1.0, "", "OTHER"),
        ("NVIDIA H100 80GB HBM3:community", "on_demand", 2.69, "H100-SXM-80GB", 1.0, "", "OTHER"),
        ("NVIDIA H100 80GB HBM3:community", "spot", 1.45, "H100-SXM-80GB", 1.0, "", "OTHER"),
        ("NVIDIA H100 NVL:secure", "on_demand", 2.79, "H100-NVL-94GB", 1.0, "", "OTHER"),
        ("NVIDIA A100 80GB PCIe:secure", "spot", 0.82, "A100-PCIE-80GB", 1.0, "", "OTHER"),
        ("NVIDIA GeForce RTX 4090:community", "on_demand", 0.34, "RTX4090-24GB", 1.0, "", "OTHER"),
    ];
    check_offers(&offers, wants);
    assert_eq!(
        rows_where(&offers, &[("offer_id", "NVIDIA H100 NVL:community")]).height(),
        0,
        "community cloud off"
    );
    // The live request: one POST with the GraphQL query as JSON and the key as a Bearer header.
    let reqs = srv.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path()), ("POST", "/graphql"));
    assert!(
        !r.target.contains("rp-test-key"),
        "the key is not in the URL"
    );
    assert_eq!(r.header("authorization"), Some("Bearer rp-test-key-31337"));
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON body");
    let query = body["query"].as_str().expect("query string");
    for field in [
        "gpuTypes",
        "securePrice",
        "communityPrice",
        "secureSpotPrice",
        "communitySpotPrice",
        "memoryInGb",
    ] {
        assert!(query.contains(field), "query lacks {field}: {query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_instance_types() {
    let srv = server().await;
    let path = "/api/v1/instance-types";
    let feed = sample_feed(&srv, "lambda", path, "lambda.sample.json", "");
    let (offers, lines) = ingest_ok(&[("lambda", feed)]).await;
    assert_eq!(
        line(&lines, "lambda"),
        "lambda: ok, 6 offers read, 6 stored, 0 rejected"
    );
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("gpu_8x_h100_sxm5@us-west-1", "on_demand", 23.92 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("gpu_8x_h100_sxm5@us-south-2", "on_demand", 23.92 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("gpu_8x_a100_80gb_sxm4@us-east-1", "on_demand", 14.32 / 8.0, "A100-SXM-80GB", 8.0, "US", "US"),
        ("gpu_1x_h100_pcie@europe-central-1", "on_demand", 2.49, "H100-PCIE-80GB", 1.0, "DE", "OTHER"),
        ("gpu_1x_gh200@us-east-3", "on_demand", 1.49, "GH200-96GB", 1.0, "US", "US"),
        ("gpu_1x_a10", "on_demand", 0.75, "A10-24GB", 1.0, "", "OTHER"),
    ];
    check_offers(&offers, wants);
    let a10 = rows_where(&offers, &[("offer_id", "gpu_1x_a10")]);
    assert_eq!(
        f64_col(&a10, "gpus_available"),
        vec![0.0],
        "no capacity anywhere"
    );
    let h100 = rows_where(&offers, &[("offer_id", "gpu_8x_h100_sxm5@us-west-1")]);
    assert_eq!(f64_col(&h100, "gpus_available"), vec![8.0]);
    assert_eq!(str_col(&h100, "price_unit"), vec!["cents/instance-hour"]);
    assert_eq!(
        f64_col(&h100, "price"),
        vec![2392.0],
        "the published price is kept as published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadeform_keeps_clouds_apart() {
    let srv = server().await;
    let path = "/v1/instances/types";
    let feed = sample_feed(&srv, "shadeform", path, "shadeform.sample.json", "");
    let (offers, lines) = ingest_ok(&[("shadeform", feed)]).await;
    assert_eq!(
        line(&lines, "shadeform"),
        "shadeform: ok, 6 offers read, 6 stored, 0 rejected"
    );
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("lambdalabs:gpu_8x_h100_sxm5@us-west-1", "on_demand", 23.92 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("aws:p5.48xlarge@us-east-1", "on_demand", 98.28 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("hyperstack:n3-RTX-A6000x1@canada-1", "on_demand", 0.50, "RTXA6000-48GB", 1.0, "CA", "OTHER"),
        ("hyperstack:n3-RTX-A6000x1@norway-1", "on_demand", 0.50, "RTXA6000-48GB", 1.0, "NO", "OTHER"),
        ("datacrunch:8A100.176V@FIN-01", "on_demand", 14.16 / 8.0, "A100-SXM-80GB", 8.0, "FI", "OTHER"),
    ];
    check_offers(&offers, wants);
    let providers = |offer: &str| str_col(&rows_where(&offers, &[("offer_id", offer)]), "provider");
    assert_eq!(
        providers("lambdalabs:gpu_8x_h100_sxm5@us-west-1"),
        vec!["shadeform:lambdalabs"]
    );
    assert_eq!(
        providers("aws:p5.48xlarge@us-east-1"),
        vec!["shadeform:aws"]
    );
    assert_eq!(
        providers("hyperstack:n3-RTX-A6000x1@canada-1"),
        vec!["shadeform:hyperstack"]
    );
    let sold_out = rows_where(
        &offers,
        &[("offer_id", "lambdalabs:gpu_8x_h100_sxm5@us-south-2")],
    );
    assert_eq!(f64_col(&sold_out, "gpus_available"), vec![0.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autodl_pages_in_cny() {
    let srv = server().await;
    let empty = r#"{"code":"Success","msg":"","data":{"list":[],"page_index":2,"max_page":1}}"#;
    srv.routes.script(
        "/api/v1/user/machine/list",
        vec![
            sample_ok("autodl.sample.json"),
            HttpResponse::ok("application/json", empty),
        ],
    );
    std::env::set_var("GPURENT_TEST_AUTODL_TOKEN", "adl-token-42");
    let feed = format!(
        "format = \"autodl\"\nurl = \"{}\"\nauth_env = \"GPURENT_TEST_AUTODL_TOKEN\"\npages = 3\npage_size = 50\n",
        srv.url("/api/v1/user/machine/list")
    );
    let (offers, lines) = ingest_ok(&[ecb_feed(&srv), ("autodl", feed)]).await;
    assert_eq!(
        line(&lines, "autodl"),
        "autodl: ok, 5 offers read, 4 stored, 1 rejected (unknown_gpu_name 1)"
    );
    // payg_price is 1/1000 CNY per GPU-hour: USD = price × 0.001 / 1 GPU × USD per CNY.
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("3a5e9c01b2", "on_demand", 1980.0 * 0.001 * USD_PER_CNY, "RTX4090-24GB", 1.0, "CN", "CN"),
        ("77f0d1e2c3", "on_demand", 1880.0 * 0.001 * USD_PER_CNY, "RTX4090D-24GB", 1.0, "CN", "CN"),
        ("c41b7a9e05", "on_demand", 7980.0 * 0.001 * USD_PER_CNY, "H20-96GB", 1.0, "CN", "CN"),
    ];
    check_offers(&offers, wants);
    let m = rows_where(&offers, &[("offer_id", "3a5e9c01b2")]);
    assert_eq!(f64_col(&m, "gpus_available"), vec![3.0], "idle GPUs");
    assert_eq!(
        m.column("fx_date").unwrap().get(0).unwrap().to_string(),
        "2024-10-04"
    );
    // Three POSTs, one per page, each naming its page in the body, with the raw token.
    let reqs: Vec<_> = srv
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path() == "/api/v1/user/machine/list")
        .cloned()
        .collect();
    assert_eq!(reqs.len(), 3);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("authorization"), Some("adl-token-42"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["page_index"].as_u64(), Some(i as u64 + 1));
        assert_eq!(body["page_size"].as_u64(), Some(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ppio_products_in_cny() {
    let srv = server().await;
    let path = "/gpu-instance/openapi/v1/products";
    let feed = sample_feed(
        &srv,
        "ppio",
        path,
        "ppio.sample.json",
        "currency = \"CNY\"\n",
    );
    let (offers, lines) = ingest_ok(&[ecb_feed(&srv), ("ppio", feed)]).await;
    assert_eq!(
        line(&lines, "ppio"),
        "ppio: ok, 5 offers read, 5 stored, 0 rejected"
    );
    // price is 1/100000 CNY per GPU-hour: USD = price × 0.00001 / 1 GPU × USD per CNY.
    let usd = |p: f64| p * 0.00001 * USD_PER_CNY;
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("6f3c2a10-rtx4090-24g@CN-East", "on_demand", usd(179000.0), "RTX4090-24GB", 1.0, "CN", "CN"),
        ("6f3c2a10-rtx4090-24g@CN-South", "on_demand", usd(179000.0), "RTX4090-24GB", 1.0, "CN", "CN"),
        ("8a1d4e22-h800-80g@CN-North", "on_demand", usd(1490000.0), "H800-SXM-80GB", 1.0, "CN", "CN"),
        ("b72e9f31-h100-80g@US-West", "on_demand", usd(1650000.0), "H100-SXM-80GB", 1.0, "US", "US"),
        ("b72e9f31-h100-80g@US-West", "spot", usd(990000.0), "H100-SXM-80GB", 1.0, "US", "US"),
    ];
    check_offers(&offers, wants);
    let h800 = rows_where(&offers, &[("offer_id", "8a1d4e22-h800-80g@CN-North")]);
    assert_eq!(
        f64_col(&h800, "gpus_available"),
        vec![0.0],
        "availableDeploy false"
    );
    assert_eq!(str_col(&h800, "currency"), vec!["CNY"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_json_needs_only_a_feed_file() {
    let srv = server().await;
    srv.routes
        .set("/prices.json", sample_ok("generic_json.sample.json"));
    // The repository's example feed file, pointed at the loopback server and enabled.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/generic_json.toml"),
    )
    .unwrap();
    assert!(
        example.contains("url = \"samples/generic_json.sample.json\"")
            && example.contains("enabled = false")
    );
    let feed = example
        .replace(
            "url = \"samples/generic_json.sample.json\"",
            &format!("url = \"{}\"", srv.url("/prices.json")),
        )
        .replace("enabled = false", "enabled = true");
    let (offers, lines) = ingest_ok(&[("examplecloud", feed)]).await;
    assert_eq!(
        line(&lines, "examplecloud"),
        "examplecloud: ok, 3 offers read, 2 stored, 1 rejected (bad_field 1)"
    );
    #[rustfmt::skip]
    let wants: &[Want] = &[
        ("gx-h100-8", "on_demand", 21.52 / 8.0, "H100-SXM-80GB", 8.0, "US", "US"),
        ("gx-l40s-1", "on_demand", 1.04, "L40S-48GB", 1.0, "SE", "OTHER"),
    ];
    check_offers(&offers, wants);
    let h = rows_where(&offers, &[("offer_id", "gx-h100-8")]);
    assert_eq!(str_col(&h, "provider"), vec!["examplecloud"]);
    assert_eq!(str_col(&h, "region"), vec!["us-east"]);
    assert_eq!(
        h.column("sample").unwrap().bool().unwrap().get(0),
        Some(true),
        "`sample = true` labels the data"
    );
}

#[test]
fn default_feed_files_load() {
    let mine = [
        "runpod",
        "lambda",
        "shadeform",
        "autodl",
        "ppio",
        "generic_json",
    ];
    for (name, c) in mine.into_iter().zip(repo_feeds(&mine)) {
        assert_eq!(c.format, name);
        if name == "generic_json" {
            assert!(
                !c.enabled && c.sample,
                "the example reads a sample and is disabled"
            );
        } else {
            assert!(
                matches!(c.source, gpurent::ingest::feed::Source::Http(ref u) if u.starts_with("https://")),
                "{name}: live URL"
            );
            assert!(
                c.auth_env
                    .as_deref()
                    .is_some_and(|v| v.starts_with("GPURENT_")),
                "{name}: keyed feed"
            );
        }
    }
}
