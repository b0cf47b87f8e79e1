//! A large in-memory payload (here a vast.ai search response over 4 MiB) is spilled
//! to the run's spool folder once it parses, so it is not held while the run
//! normalises: the blob it becomes is the body gzipped under the body's SHA-256,
//! nothing is left in `.tmp/`, and renormalise (which reads the blob back into
//! memory, and parses it once for both hours) rebuilds exactly the stored rows,
//! each hour's observation time included. A second hour with the same body keeps
//! the one blob.

use super::stream::{assert_blob_of, files_under};
use super::{at, blobs, sorted};
use crate::common::{gpurent, tempdir};
use crate::faults::{assert_no_secret, check_store, fault_server, feeds, glob_read};
use crate::faults::{ingest_env, line, raw_blob};
use crate::faults::{vast_body, vast_feed, Fault};

#[test]
fn a_large_payload_is_spilled_and_kept_as_its_blob() {
    let n = 60_000;
    let body = vast_body(n);
    assert!(
        body.len() > 4 << 20,
        "the payload must be over the spill size"
    );
    let b = body.clone();
    let srv = fault_server(move |_| Fault::json(b.clone()));
    let tmp = tempdir();
    let f = feeds(
        tmp.path(),
        &[("vastai", vast_feed(&srv.url("/search"), ""))],
    );
    let store = tmp.path().join("store");
    for h in [10, 11] {
        let (code, out, err) = ingest_env(&f, &store, &at(h), &[]);
        assert_eq!(code, 0, "{out}{err}");
        let expected = format!("vastai: ok, {n} offers read, {n} stored, 0 rejected");
        assert!(line(&out, "vastai").starts_with(&expected), "{out}");
    }
    check_store(&store);
    let left = files_under(&store.join(".tmp"));
    assert!(left.is_empty(), "left in .tmp: {left:?}");

    let blob = raw_blob(&store, "date=2024-10-07/vastai__20241007T10");
    assert_eq!(
        raw_blob(&store, "date=2024-10-07/vastai__20241007T11"),
        blob
    );
    assert_eq!(blobs(&store), vec![blob.clone()]);
    assert_blob_of(&blob, &body, "spilled");

    let offers = sorted(glob_read(&store, "offers").unwrap());
    assert_eq!(offers.height(), 2 * n);
    let (code, out, err) = gpurent(&["renormalise", "--store", store.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(sorted(glob_read(&store, "offers").unwrap()), offers);
}

/// A spilled body is the scrubbed one: a secret the server echoes in a large payload
/// reaches no file of the store (the blob included) and no output.
#[test]
fn a_spilled_body_holds_no_secret() {
    let secret = "sk-spill-7f3a9c1e55d2";
    let body = String::from_utf8(vast_body(60_000)).unwrap().replacen(
        "\"geolocation\"",
        &format!("\"note\": \"key {secret}\", \"geolocation\""),
        1,
    );
    let srv = fault_server(move |_| Fault::json(body.clone().into_bytes()));
    let tmp = tempdir();
    let extra = "auth_env = \"GPURENT_SPILL_TEST_KEY\"\n";
    let f = feeds(
        tmp.path(),
        &[("vastai", vast_feed(&srv.url("/search"), extra))],
    );
    let store = tmp.path().join("store");
    let env = [("GPURENT_SPILL_TEST_KEY", secret)];
    let (code, out, err) = ingest_env(&f, &store, &at(10), &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        line(&out, "vastai").starts_with("vastai: ok, 60000 offers read"),
        "{out}"
    );
    assert_eq!(blobs(&store).len(), 1);
    assert_no_secret(secret, &[&out, &err], &store);
}
