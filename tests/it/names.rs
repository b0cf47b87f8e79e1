//! The GPU name table: every raw name in `tests/data/gpu_names.csv` (all providers'
//! naming styles) resolves to its expected canonical id, and China variants, form
//! factors and memory sizes never merge.

use gpurent::tables::Tables;

#[derive(serde::Deserialize)]
struct Case {
    style: String,
    raw_name: String,
    memory_gb: Option<f64>,
    expected: String,
}

fn check(t: &Tables, raw: &str, memory_gb: Option<f64>, expected: &str) -> Result<(), String> {
    let got = t.gpus.resolve(raw, memory_gb);
    let got = got.as_deref().unwrap_or("UNRESOLVED");
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "{raw:?} (memory {memory_gb:?}): got {got}, expected {expected}"
        ))
    }
}

#[test]
fn every_naming_style_resolves_as_expected() {
    let t = Tables::embedded();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gpu_names.csv");
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let cases: Vec<Case> = rdr.deserialize().map(|r| r.unwrap()).collect();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let styles: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.style.as_str()).collect();
    assert!(styles.len() >= 10, "styles: {styles:?}");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(t, &c.raw_name, c.memory_gb, &c.expected)
                .err()
                .map(|e| format!("[{}] {e}", c.style))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} names wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn china_variants_and_forms_never_merge() {
    let t = Tables::embedded();
    for m in t.gpus.models() {
        for alias in m.aliases.iter().chain(std::iter::once(&m.id)) {
            let got = t
                .gpus
                .resolve(alias, None)
                .unwrap_or_else(|| panic!("alias {alias:?} of {} unresolved", m.id));
            assert_eq!(got, m.id, "alias {alias:?} of {} resolves to {got}", m.id);
        }
    }
    // Pairs that the US aggregators merge and gpurent must not.
    for (a, b) in [
        ("H800", "H100"),
        ("NVIDIA H800 80GB HBM3", "NVIDIA H100 80GB HBM3"),
        ("H20", "H100"),
        ("A800 SXM4 80GB", "A100 SXM4 80GB"),
        ("RTX 4090D", "RTX 4090"),
        ("L20", "L40S"),
        ("H100 SXM", "H100 PCIe"),
        ("A100 SXM4 80GB", "A100 PCIe 80GB"),
    ] {
        let (ra, rb) = (t.gpus.resolve(a, Some(80.0)), t.gpus.resolve(b, Some(80.0)));
        assert!(
            ra.is_some() && rb.is_some(),
            "{a:?} -> {ra:?}, {b:?} -> {rb:?}"
        );
        assert_ne!(ra, rb, "{a:?} and {b:?} must stay apart");
    }
    let china: Vec<&str> = t
        .gpus
        .models()
        .iter()
        .filter(|m| m.china_variant)
        .map(|m| m.family.as_str())
        .collect();
    for fam in ["H800", "H20", "A800", "L20", "RTX4090D"] {
        assert!(
            china.contains(&fam),
            "{fam} is flagged as a China-market variant"
        );
    }
}

#[test]
fn memory_narrows_a_family_within_seven_percent() {
    let t = Tables::embedded();
    for (raw, mem, expected) in [
        ("A100 SXM4", Some(79.6), "A100-SXM-80GB"),
        ("A100 SXM4", Some(40.0), "A100-SXM-40GB"),
        ("A100 SXM4", Some(60.0), "A100-SXM"),
        ("A100 SXM4", None, "A100-SXM"),
        ("A100-80GB", None, "A100-80GB"),
    ] {
        check(t, raw, mem, expected).unwrap();
    }
}

#[test]
fn provider_scoped_names() {
    let t = Tables::embedded();
    // On GCP a bare A100/H100 is an SXM part; elsewhere the same name stays coarse.
    for (provider, raw, mem, expected) in [
        ("gcp", "A100", Some(40.0), "A100-SXM-40GB"),
        ("gcp", "A100-80GB", Some(80.0), "A100-SXM-80GB"),
        ("gcp", "H100", Some(80.0), "H100-SXM-80GB"),
        ("aws", "H100", Some(80.0), "H100-80GB"),
        ("runpod", "A100-80GB", None, "A100-80GB"),
    ] {
        assert_eq!(
            t.gpus.resolve_for(provider, raw, mem).as_deref(),
            Some(expected),
            "{provider} {raw}"
        );
    }
}
