//! The default `feeds/` directory: every feed file loads, and every format's recorded
//! sample in `feeds/samples/` replays through the same ingest path (with the ECB
//! sample, so non-USD prices convert), storing offers.

use std::path::Path;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_feed_loads_and_its_sample_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (feeds, broken) = gpurent::ingest::feed::load_dir(&root.join("feeds")).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let formats: std::collections::BTreeSet<String> =
        feeds.iter().map(|f| f.config.format.clone()).collect();
    let all: std::collections::BTreeSet<String> = gpurent::ingest::adapters::names()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(formats, all, "feeds/ has a live definition of every format");

    let tmp = tempdir();
    let replay = tmp.path().join("feeds");
    std::fs::create_dir_all(&replay).unwrap();
    let samples: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("feeds/samples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    for f in &feeds {
        let stem = f
            .config
            .path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let sample = samples
            .iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{stem}.sample"))
            })
            .unwrap_or_else(|| panic!("no sample for feeds/{stem}.toml"));
        // The same feed file, pointed at its recorded sample, enabled, and without a key
        // variable (a recorded replay needs none).
        let mut table: toml::Table = toml::from_str(&f.config.text).unwrap();
        table.insert(
            "url".into(),
            toml::Value::String(sample.display().to_string()),
        );
        table.insert("enabled".into(), toml::Value::Boolean(true));
        table.remove("auth_env");
        std::fs::write(
            replay.join(format!("{stem}.toml")),
            toml::to_string(&table).unwrap(),
        )
        .unwrap();
    }
    let (feeds, broken) = gpurent::ingest::feed::load_dir(&replay).unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let client = gpurent::ingest::fetch::client();
    let store = gpurent::store::Store::open(tmp.path().join("store"));
    let report = gpurent::ingest::run(
        feeds,
        broken,
        &store,
        &client,
        AT.parse().unwrap(),
        gpurent::tables::Tables::embedded(),
    )
    .await;
    for o in &report.outcomes {
        match &o.status {
            gpurent::ingest::Status::Stored {
                stored, fx_rates, ..
            } => {
                assert!(*stored > 0 || *fx_rates > 0, "{}", o.line())
            }
            _ => panic!("{}", o.line()),
        }
    }
    let offers = read_all(&tmp.path().join("store/offers")).unwrap();
    let providers: std::collections::BTreeSet<String> =
        str_col(&offers, "provider").into_iter().collect();
    assert!(providers.len() >= 12, "{providers:?}");
}
