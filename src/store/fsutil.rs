//! Small filesystem helpers: atomic writes and a crash-safe directory swap.
//!
//! Invariants: a file written here is either complete at its final name or absent.
//! [`write_atomic`] puts its temporary file beside the target (name starting with
//! `.tmp-`); [`write_atomic_via`] puts it in a given directory on the same filesystem
//! (the store's `.tmp/`), so no glob over the target's directory can ever see it.
//! [`swap_dirs`] replaces whole directories so that a crash at any point leaves either
//! every old directory or, after [`recover_swaps`], every new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// An I/O error with the path it happened at.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".tmp-{}-{}-{name}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

pub fn sync_dir(dir: &Path) {
    // Best effort: make the rename durable. Not every filesystem allows it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Write bytes to `path` atomically: temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    write_atomic_via(dir, path, bytes)
}

/// [`write_atomic`] with the temporary file in `tmp_dir` (same filesystem as `path`).
pub fn write_atomic_via(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::create_dir_all(tmp_dir).map_err(io(tmp_dir))?;
    let tmp = tmp_dir.join(
        tmp_name(path)
            .file_name()
            .expect("temporary names have a file name"),
    );
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    sync_dir(dir);
    Ok(())
}

/// The file in a swap job that commits it: it lists the live directories, one a line.
const READY: &str = "ready";

/// Replace each live directory `targets[i].0` by the freshly built `targets[i].1`.
/// `job` is a new directory on the same filesystem (e.g. `<store>/.tmp/swap-x`) and
/// each built directory must already be inside it. Writing `job/ready` is the commit
/// point: before it a crash keeps every old directory (the job is deleted at the next
/// start), after it [`recover_swaps`] finishes the swap.
pub fn swap_dirs(job: &Path, targets: &[(PathBuf, PathBuf)]) -> Result<(), StoreError> {
    let mut list = String::new();
    for (i, (live, new)) in targets.iter().enumerate() {
        let slot = job.join(format!("new-{i}"));
        if new != &slot {
            if new.exists() {
                fs::rename(new, &slot).map_err(io(new))?;
            } else {
                fs::create_dir_all(&slot).map_err(io(&slot))?;
            }
        }
        list.push_str(&live.to_string_lossy());
        list.push('\n');
    }
    write_atomic(&job.join(READY), list.as_bytes())?;
    finish_swap(job)
}

/// Finish a committed swap job, or delete an uncommitted one.
fn finish_swap(job: &Path) -> Result<(), StoreError> {
    let Ok(list) = fs::read_to_string(job.join(READY)) else {
        return fs::remove_dir_all(job).map_err(io(job));
    };
    for (i, live) in list.lines().enumerate() {
        let (live, new, old) = (
            PathBuf::from(live),
            job.join(format!("new-{i}")),
            job.join(format!("old-{i}")),
        );
        if !new.exists() {
            continue; // already swapped in
        }
        if live.exists() && !old.exists() {
            fs::rename(&live, &old).map_err(io(&live))?;
        }
        if let Some(parent) = live.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::rename(&new, &live).map_err(io(&live))?;
        if let Some(parent) = live.parent() {
            sync_dir(parent);
        }
    }
    fs::remove_dir_all(job).map_err(io(job))
}

/// At start, under the writer lock: finish or drop every swap job in `tmp_dir`
/// (directories named `swap-*`), then delete everything else there.
pub fn recover_swaps(tmp_dir: &Path) -> Result<(), StoreError> {
    let Ok(rd) = fs::read_dir(tmp_dir) else {
        return Ok(());
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let is_job = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("swap-"));
        if is_job && p.is_dir() {
            finish_swap(&p)?;
        } else if p.is_dir() {
            fs::remove_dir_all(&p).map_err(io(&p))?;
        } else {
            fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    Ok(())
}
