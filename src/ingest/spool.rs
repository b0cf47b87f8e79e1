//! Spooling a response body to a gzip file while it arrives, so a payload of
//! hundreds of MB (an AWS offer file) never sits in memory whole.
//!
//! The chunks go over a bounded channel to one blocking task that hashes the plain
//! bytes (SHA-256, the name the store keeps a body under), gzips them into a file
//! in the run's spool folder (in the store's `.tmp/`, emptied when the lock is next
//! taken, so a crash leaves nothing where readers look) and fsyncs it; gzip and the
//! disk never run on the async runtime's worker threads. Memory is the channel's
//! few chunks and the encoder's window.
//!
//! Invariant: a spooled body is never scrubbed, so a fetch spools only when the
//! feed has no secret (`fetch` keeps a feed with a secret in memory and scrubs it).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::model::Spooled;

/// Chunks in flight between the response and the file.
const IN_FLIGHT: usize = 8;

/// A body being written to a spool file.
pub struct SpoolWriter {
    path: PathBuf,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<io::Result<Spooled>>>,
}

impl SpoolWriter {
    /// Start a new spool file in `dir` (created if missing).
    pub fn start(dir: &Path) -> Self {
        let path = dir.join(format!(
            "body-{}-{}.gz",
            std::process::id(),
            fastrand::u64(..)
        ));
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
    fs::create_dir_all(dir)?;
    let file = File::create(&path)?;
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let (mut sha, mut len) = (Sha256::new(), 0u64);
    while let Some(chunk) = rx.blocking_recv() {
        sha.update(&chunk);
        len += chunk.len() as u64;
        gz.write_all(&chunk)?;
    }
    let file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Spooled {
        path,
        sha256: hex::encode(sha.finalize()),
        len,
    })
}
