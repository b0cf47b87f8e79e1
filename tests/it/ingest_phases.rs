//! The scale bench's in-process ingest phases (`benches/scale/phases.rs`, included
//! here as the bench includes it) measure the real path: on the same payload, large
//! enough to be spilled, they store what `gpurent ingest` stores, row for row (offers
//! and rejects) and byte for byte under `raw/` (the blob and the hour's `.json`).

#[path = "../../benches/scale/phases.rs"]
mod phases;

use std::path::{Path, PathBuf};

use crate::common::{ingest_cli, read_all, tempdir, AT};

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_phases_store_what_gpurent_ingest_stores() {
    let tmp = tempdir();
    let n = 12_000;
    let (feeds, bytes) = phases::prepare(tmp.path(), n).unwrap();
    assert!(bytes >= 4 << 20, "{bytes} bytes: too small to be spilled");
    let (cli, inproc) = (tmp.path().join("cli"), tmp.path().join("phases"));
    ingest_cli(&feeds, &cli, AT);
    let p = phases::run(&feeds, &inproc, AT.parse().unwrap()).unwrap();
    let times = [
        p.floor,
        p.adapter,
        p.parse,
        p.archive,
        p.normalise,
        p.write,
        p.deflate,
    ];
    assert!(times.iter().all(|t| *t >= 0.0), "{p:?}");

    let offers = read_all(&cli.join("offers")).expect("offers stored");
    assert!(
        offers.height() > n / 2,
        "{} of {n} offers stored",
        offers.height()
    );
    assert_eq!(p.rows, offers.height());
    for kind in ["offers", "rejects"] {
        match (read_all(&cli.join(kind)), read_all(&inproc.join(kind))) {
            (Some(a), Some(b)) => assert!(a.equals_missing(&b), "{kind}:\n{a}\n{b}"),
            (None, None) => {}
            (a, b) => panic!("{kind}: `gpurent ingest` {a:?}, the phases {b:?}"),
        }
    }
    // The phases end with compact's deflate of the blob; so does the CLI's store here.
    let d = gpurent::store::Store::open(&cli).deflate_blobs().unwrap();
    assert_eq!((d.blobs, d.failed.len()), (1, 0), "{d:?}");
    let raw = files(&cli.join("raw"));
    assert!(raw.iter().any(|f| f.starts_with("blobs")), "{raw:?}");
    assert_eq!(raw, files(&inproc.join("raw")));
    for f in &raw {
        let read = |root: &Path| std::fs::read(root.join("raw").join(f)).unwrap();
        assert!(read(&cli) == read(&inproc), "raw/{} differs", f.display());
    }
}
