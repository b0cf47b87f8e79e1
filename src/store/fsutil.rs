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

/// Remove what a crashed [`write_atomic`] left in `dir` (not recursive): `.tmp-<pid>-…`
/// entries of a process that is gone. A folder outside the store (the reports) has no
/// lock whose clean-up would remove them, so its writer calls this first. Where
/// `/proc` cannot tell (not Linux), an entry older than an hour counts as left over.
pub fn remove_stale_tmp(dir: &Path) -> Result<(), StoreError> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(".tmp-").and_then(|r| r.split('-').next());
        let Some(pid) = pid.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue; // not a name `write_atomic` gives
        };
        if !writer_gone(pid, &e.path()) {
            continue;
        }
        let p = e.path();
        let res = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        res.map_err(io(&p))?;
    }
    Ok(())
}

/// Whether the process `pid` that made `path` has ended.
fn writer_gone(pid: &str, path: &Path) -> bool {
    if pid == std::process::id().to_string() {
        return false;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid).exists();
    }
    let age = fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed());
    age.is_ok_and(|a| a.is_ok_and(|a| a.as_secs() > 3600))
}

/// The file in a swap job that commits it: a header line ([`STORE_RELATIVE`]), then
/// the live directories, one a line, relative to the store (the job's grandparent).
const READY: &str = "ready";

/// The first line of a `ready` file whose paths are relative to the store. A path as
/// the writer was given it (`--store data`) means something else to a writer started
/// in another directory, or in a container that mounts the store elsewhere; resolved
/// there, a swap would move the new directories out of the store and delete the old
/// ones with the job. A `ready` file without this line (an older writer's) is
/// followed only where its paths are absolute.
const STORE_RELATIVE: &str = "# paths relative to the store";

/// The store a swap job belongs to: `job` is `<store>/.tmp/<name>`.
fn job_store(job: &Path) -> Result<&Path, StoreError> {
    job.parent().and_then(Path::parent).ok_or_else(|| {
        let e = std::io::Error::other("a swap job must be inside <store>/.tmp/");
        io(job)(e)
    })
}

/// Replace each live directory `targets[i].0` by the freshly built `targets[i].1`.
/// `job` is a new directory on the same filesystem (e.g. `<store>/.tmp/swap-x`) and
/// each built directory must already be inside it. Writing `job/ready` is the commit
/// point: before it a crash keeps every old directory (the job is deleted at the next
/// start), after it [`recover_swaps`] finishes the swap.
pub fn swap_dirs(job: &Path, targets: &[(PathBuf, PathBuf)]) -> Result<(), StoreError> {
    commit_swap(job, targets)?;
    finish_swap(job)
}

/// Move the built directories into the job's slots and write `ready`, naming each
/// live directory relative to the store.
fn commit_swap(job: &Path, targets: &[(PathBuf, PathBuf)]) -> Result<(), StoreError> {
    let store = job_store(job)?;
    let mut list = format!("{STORE_RELATIVE}\n");
    for (i, (live, new)) in targets.iter().enumerate() {
        let slot = job.join(format!("new-{i}"));
        if new != &slot {
            if new.exists() {
                fs::rename(new, &slot).map_err(io(new))?;
            } else {
                fs::create_dir_all(&slot).map_err(io(&slot))?;
            }
        }
        let rel = live.strip_prefix(store).map_err(|_| {
            io(live)(std::io::Error::other(
                "a swapped directory must be inside the store",
            ))
        })?;
        list.push_str(&rel.to_string_lossy());
        list.push('\n');
    }
    write_atomic(&job.join(READY), list.as_bytes())
}

/// The live directories a committed job names, resolved against its store.
fn ready_dirs(job: &Path, list: &str) -> Result<Vec<PathBuf>, StoreError> {
    let store = job_store(job)?;
    let mut lines = list.lines().peekable();
    let relative = lines.next_if(|l| *l == STORE_RELATIVE).is_some();
    lines
        .map(|l| match Path::new(l) {
            p if relative && p.is_relative() => Ok(store.join(p)),
            p if !relative && p.is_absolute() => Ok(p.to_path_buf()),
            _ => Err(io(&job.join(READY))(std::io::Error::other(format!(
                "cannot tell where {l:?} is: an older writer named it relative to its own \
                 working directory; finish or remove this swap job by hand"
            )))),
        })
        .collect()
}

/// Finish a committed swap job, or delete an uncommitted one.
fn finish_swap(job: &Path) -> Result<(), StoreError> {
    let Ok(list) = fs::read_to_string(job.join(READY)) else {
        return fs::remove_dir_all(job).map_err(io(job));
    };
    for (i, live) in ready_dirs(job, &list)?.into_iter().enumerate() {
        let (new, old) = (job.join(format!("new-{i}")), job.join(format!("old-{i}")));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A job committed by a writer that reached the store by one path (here through
    /// a symlink, as `--store data` from one working directory, or a container's
    /// mount) is finished by a writer that reaches it by another: the new directory
    /// lands in the store and nothing is written where the first path pointed.
    #[test]
    fn a_committed_swap_finishes_inside_the_store_whatever_path_reached_it() {
        let dir = tempfile::tempdir().unwrap();
        let (real, alias) = (dir.path().join("real"), dir.path().join("alias"));
        let day = |store: &Path| store.join("offers").join("date=2024-10-07");
        fs::create_dir_all(day(&real)).unwrap();
        fs::write(day(&real).join("old.parquet"), b"old").unwrap();
        std::os::unix::fs::symlink(&real, &alias).unwrap();

        let job = alias.join(".tmp").join("swap-compact");
        fs::create_dir_all(job.join("stage")).unwrap();
        fs::write(job.join("stage").join("new.parquet"), b"new").unwrap();
        commit_swap(&job, &[(day(&alias), job.join("stage"))]).unwrap();
        let ready = fs::read_to_string(job.join(READY)).unwrap();
        assert_eq!(ready, format!("{STORE_RELATIVE}\noffers/date=2024-10-07\n"));

        fs::remove_file(&alias).unwrap(); // that path means nothing to the next writer
        recover_swaps(&real.join(".tmp")).unwrap();
        let names: Vec<_> = fs::read_dir(day(&real))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["new.parquet"]);
        assert!(
            !alias.exists(),
            "nothing was written where the old path pointed"
        );
        assert_eq!(fs::read_dir(real.join(".tmp")).unwrap().count(), 0);
    }

    /// An older writer's `ready` (no header): absolute paths are followed, a relative
    /// one is refused and the job left for a person, never resolved against the
    /// working directory.
    #[test]
    fn an_older_ready_file_is_followed_only_where_its_paths_are_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let job = store.join(".tmp").join("swap-renormalise");
        fs::create_dir_all(job.join("new-0")).unwrap();
        let live = store.join("offers");
        fs::write(job.join(READY), format!("{}\n", live.display())).unwrap();
        recover_swaps(&store.join(".tmp")).unwrap();
        assert!(live.is_dir() && !job.exists());

        fs::create_dir_all(job.join("new-0")).unwrap();
        fs::write(job.join(READY), "data/rejects\n").unwrap();
        let e = recover_swaps(&store.join(".tmp")).unwrap_err().to_string();
        assert!(e.contains("by hand") && e.contains("ready"), "{e}");
        assert!(job.join("new-0").is_dir(), "the job is kept");
    }

    /// `.tmp-` files of a process that is gone are removed; the running process's
    /// own, and every other file, are kept.
    #[test]
    fn stale_temporary_files_of_ended_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        // Above any Linux pid_max (2^22): no such process.
        let names = [
            ".tmp-999999999-17-index.html".to_string(),
            format!(".tmp-{me}-18-report.md"),
            "index.html".to_string(),
            ".tmpx".to_string(),
            ".tmp-notes.txt".to_string(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        remove_stale_tmp(dir.path()).unwrap();
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [names[1].as_str(), ".tmp-notes.txt", ".tmpx", "index.html"]
        );
    }
}
