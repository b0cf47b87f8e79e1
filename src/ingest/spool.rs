//! Spooling a response body to a gzip file while it arrives, so a payload of
//! hundreds of MB (an AWS offer file) never sits in memory whole.
//!
//! The chunks go over a bounded channel to one blocking task that hashes the plain
//! bytes (SHA-256, the name the store keeps a body under), writes them as a gzip
//! file of stored blocks (no deflate work: `compact` deflates the blob it becomes,
//! [`crate::store::deflate`]) in the run's spool folder (in the store's `.tmp/`,
//! emptied when the lock is next taken, so a crash leaves nothing where readers
//! look) and fsyncs it; hashing and the disk never run on the async runtime's worker
//! threads. Memory is the channel's few chunks.
//!
//! [`spill`] writes a body that is already in memory the same way, once it has
//! parsed, so a run does not hold its payloads while it normalises.
//!
//! Invariant: a spooled body is never scrubbed, so a fetch spools only when the
//! feed has no secret (`fetch` keeps a feed with a secret in memory and scrubs it);
//! a spilled body was scrubbed in memory before it was parsed.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::model::{Origin, Page, Spooled};
use crate::store::deflate;

/// Chunks in flight between the response and the file.
const IN_FLIGHT: usize = 8;

/// A new spool file's path in `dir`.
fn spool_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        "body-{}-{}.gz",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// A new spool folder's path under `tmp` (the store's `.tmp/`, emptied when the lock
/// is next taken, so a run that does not finish leaves nothing where readers look):
/// `spool-<what>-<pid>-<random>`. The caller removes it ([`remove_folder`]).
pub fn folder(tmp: &Path, what: &str) -> PathBuf {
    tmp.join(format!(
        "spool-{what}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// Remove a spool folder and what is left in it (bodies not adopted as blobs); one
/// never made is not an error, any other failure is logged.
pub async fn remove_folder(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("removing the spool folder {}: {e}", dir.display());
        }
    }
}

/// A body being written to a spool file.
pub struct SpoolWriter {
    path: PathBuf,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<io::Result<Spooled>>>,
}

impl SpoolWriter {
    /// Start a new spool file in `dir` (created if missing).
    pub fn start(dir: &Path) -> Self {
        let path = spool_path(dir);
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let (d, p) = (dir.to_path_buf(), path.clone());
        let task = tokio::task::spawn_blocking(move || write_spool(&d, p, rx));
        Self {
            path,
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Append a chunk; an `Err` says why the file cannot be written (the caller
    /// then discards the spool).
    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        if let Some(tx) = &self.tx {
            if tx.send(chunk.to_vec()).await.is_ok() {
                return Ok(());
            }
        }
        // The writer stopped: it says why when joined.
        match self.join().await {
            Err(m) => Err(m),
            Ok(_) => Err(format!("spool file {} ended early", self.path.display())),
        }
    }

    /// The complete body: its file (synced), hash and length.
    pub async fn finish(mut self) -> Result<Spooled, String> {
        let done = self.join().await;
        if done.is_err() {
            let _ = tokio::fs::remove_file(&self.path).await;
        }
        done
    }

    /// Give the body up: the writer ends and its file is removed.
    pub async fn discard(mut self) {
        let _ = self.join().await;
        let _ = tokio::fs::remove_file(&self.path).await;
    }

    /// End the channel and wait for the writer (once; later calls say it ended).
    async fn join(&mut self) -> Result<Spooled, String> {
        self.tx = None;
        let Some(task) = self.task.take() else {
            return Err(format!("spool file {} already ended", self.path.display()));
        };
        match task.await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!(
                "cannot spool the body to {}: {e}",
                self.path.display()
            )),
            Err(e) => Err(format!("spooling the body to {}: {e}", self.path.display())),
        }
    }
}

/// The writer's side: hash and gzip every chunk into `path`, then fsync.
fn write_spool(dir: &Path, path: PathBuf, mut rx: mpsc::Receiver<Vec<u8>>) -> io::Result<Spooled> {
    write_gz(dir, path, |sink| {
        while let Some(chunk) = rx.blocking_recv() {
            sink(&chunk)?;
        }
        Ok(())
    })
}

/// What takes a body's chunks, in order: [`write_gz`] calls its source once with it;
/// an error from the sink or the source ends the file.
type Sink<'s> = &'s mut dyn FnMut(&[u8]) -> io::Result<()>;

/// Hash (SHA-256 of the plain bytes) and gzip the chunks `feed` gives into a new
/// file at `path` in `dir` (created if missing), then fsync it. The gzip holds stored
/// blocks (`deflate::stored_gz`): `compact` deflates the blob it becomes. On an error, the
/// source's included, the file is removed.
fn write_gz(
    dir: &Path,
    path: PathBuf,
    feed: impl FnOnce(Sink) -> io::Result<()>,
) -> io::Result<Spooled> {
    let written = (|| {
        fs::create_dir_all(dir)?;
        let file = File::create(&path)?;
        let mut gz = deflate::stored_gz(BufWriter::new(file));
        let (mut sha, mut len) = (Sha256::new(), 0u64);
        feed(&mut |chunk| {
            sha.update(chunk);
            len += chunk.len() as u64;
            gz.write_all(chunk)
        })?;
        let file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((hex::encode(sha.finalize()), len))
    })();
    match written {
        Ok((sha256, len)) => Ok(Spooled {
            path,
            sha256,
            len,
            origin: None,
        }),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Why a recorded payload was not spooled: its file could not be read, or the spool
/// file (at the path given) could not be written, e.g. the store's disk is full.
#[derive(Debug, thiserror::Error)]
pub enum SpoolFileError {
    #[error("cannot read the payload: {0}")]
    Read(io::Error),
    #[error("cannot write the spool file {0:?}: {1}")]
    Write(PathBuf, io::Error),
}

/// Spool a recorded payload file: read a chunk at a time, hashed and gzipped into a
/// new spool file in `dir`, as a live body is spooled while it arrives, so the
/// payload is never in memory whole. On an error no spool file is left.
///
/// The spooled body remembers the file, its modification time and the CRC-32 of the
/// bytes spooled (`origin`), so that parsing can read the plain file while it holds
/// those bytes rather than gunzip the spool.
pub fn spool_file(src: &Path, dir: &Path) -> Result<Spooled, SpoolFileError> {
    let mut file = File::open(src).map_err(SpoolFileError::Read)?;
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    let mut read_failed = None;
    let mut crc = crc32fast::Hasher::new();
    // One buffer for the whole file: a fresh 1 MiB chunk each time costs a zeroing
    // and, past malloc's mmap threshold, page faults.
    let feed = |sink: Sink| {
        let mut buf = vec![0; 1 << 20];
        loop {
            match io::Read::read(&mut file, &mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    crc.update(&buf[..n]);
                    sink(&buf[..n])?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let stop = io::Error::new(e.kind(), "reading the payload failed");
                    read_failed = Some(e);
                    return Err(stop);
                }
            }
        }
    };
    let path = spool_path(dir);
    let mut spooled = write_gz(dir, path.clone(), feed).map_err(|e| match read_failed.take() {
        Some(read) => SpoolFileError::Read(read),
        None => SpoolFileError::Write(path, e),
    })?;
    spooled.origin = modified.map(|modified| Origin {
        path: src.to_path_buf(),
        modified,
        crc32: crc.finalize(),
    });
    Ok(spooled)
}

/// In-memory bodies at least this large are spilled after parsing ([`spill`]).
pub const SPILL_BYTES: usize = 4 << 20;

/// Move a parsed page's body (of [`SPILL_BYTES`] or more) out of memory into a
/// spool file in `dir`, as if it had been spooled while it arrived: the run then
/// normalises without holding the payload, and `write_raw` keeps the file as its
/// blob. On an error the body stays in memory (and is archived from there).
pub fn spill(page: &mut Page, dir: &Path) -> Result<(), String> {
    if page.spool.is_some() || page.body.len() < SPILL_BYTES {
        return Ok(());
    }
    let path = spool_path(dir);
    let body = &page.body;
    let feed = |sink: Sink| body.chunks(1 << 20).try_for_each(sink);
    match write_gz(dir, path.clone(), feed) {
        Ok(s) => {
            page.spool = Some(s);
            page.body = Vec::new();
            Ok(())
        }
        Err(e) => Err(format!("cannot spill the body to {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (body size, whether it is spilled).
    #[test]
    fn spill_moves_large_bodies_only() {
        let dir = tempfile::tempdir().unwrap();
        for (len, spilled) in [(0, false), (SPILL_BYTES - 1, false), (SPILL_BYTES, true)] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut page = Page::new("p", body.clone());
            spill(&mut page, dir.path()).unwrap();
            let Some(s) = &page.spool else {
                assert!(!spilled, "{len} bytes: not spilled");
                assert!(page.body == body, "{len} bytes: body kept");
                continue;
            };
            assert!(spilled, "{len} bytes: spilled");
            assert!(page.body.is_empty());
            assert_eq!(s.len, len as u64);
            assert_eq!(s.sha256, hex::encode(Sha256::digest(&body)));
            let mut plain = Vec::new();
            let file = File::open(&s.path).unwrap();
            io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut plain).unwrap();
            assert!(plain == body, "{len} bytes: the file holds the body");
        }
    }

    #[test]
    fn a_failed_spill_keeps_the_body_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, b"x").unwrap();
        let body = vec![7u8; SPILL_BYTES];
        let mut page = Page::new("p", body.clone());
        let e = spill(&mut page, &not_a_dir).unwrap_err();
        assert!(e.contains("cannot spill the body"), "{e}");
        assert!(page.spool.is_none() && page.body == body);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A recorded payload that cannot be spooled says which side failed: its own
    /// file, or the spool file in the store (found by a fault hunt: a full disk was
    /// reported as "cannot read" the payload).
    #[test]
    fn spool_file_tells_reading_from_writing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("payload.json");
        fs::write(&src, b"{}").unwrap();
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, b"x").unwrap();
        match spool_file(&src, &not_a_dir.join("spool")) {
            Err(SpoolFileError::Write(path, _)) => assert!(path.starts_with(&not_a_dir)),
            other => panic!("{other:?}"),
        }
        let missing = dir.path().join("missing.json");
        assert!(matches!(
            spool_file(&missing, dir.path()),
            Err(SpoolFileError::Read(_))
        ));
        let spooled = spool_file(&src, &dir.path().join("spool")).unwrap();
        assert_eq!(spooled.len, 2);
    }
}
