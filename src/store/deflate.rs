//! Raw payload blobs are compressed after ingest, not during it.
//!
//! Ingest writes a blob (`raw/blobs/<2 hex>/<sha256>.gz`) as a gzip file of stored
//! deflate blocks: a valid gzip that every reader of blobs reads unchanged, costing
//! the CRC-32 and framing only, where deflating it was a fifth of ingest's CPU. Its
//! header comment is [`STORED_MARK`]. `gpurent compact` on a local store, and a push
//! to a bucket before it uploads a blob, replace each marked blob by the same content
//! deflated at flate2's fast level (what ingest used to write), without the mark.
//!
//! Invariants: a blob's name and content never change, only its encoding; a blob
//! is deflated only if its content still hashes to its name (else it is left as it
//! is and the error names it), through a temporary file in `.tmp/` (fsync, rename
//! over the blob), so a reader sees the stored or the deflated file, whole, and a
//! crash leaves the stored one; deflating twice does nothing the second time.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::store::fsutil::{self, io};
use crate::store::{raw, Store};

/// The gzip header comment of a blob written at ingest with stored blocks.
pub const STORED_MARK: &str = "gpurent: stored blocks, deflated by compact";

/// A gzip encoder for a blob as ingest writes it: stored blocks, marked.
pub fn stored_gz<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .comment(STORED_MARK)
        .write(w, flate2::Compression::none())
}

/// True when the gzip file at `path` carries [`STORED_MARK`] (read from its header
/// alone: ID, method, flags with a comment and no extra field or name, the comment).
pub fn is_stored(path: &Path) -> io::Result<bool> {
    let want = 10 + STORED_MARK.len() + 1;
    let mut head = Vec::with_capacity(want);
    File::open(path)?.take(want as u64).read_to_end(&mut head)?;
    Ok(head.len() == want
        && head[..3] == [0x1f, 0x8b, 8]
        && head[3] & 0x1c == 0x10
        && &head[10..want - 1] == STORED_MARK.as_bytes()
        && head[want - 1] == 0)
}

/// What [`Store::deflate_blobs`] did: blobs deflated, their bytes before and after,
/// and the blobs left as they were, each with its error.
#[derive(Debug, Default)]
pub struct Deflated {
    pub blobs: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub failed: Vec<StoreError>,
}

impl Store {
    /// Deflate every marked blob of the store (see the module's header).
    pub fn deflate_blobs(&self) -> Result<Deflated, StoreError> {
        let mut d = Deflated::default();
        for path in blob_files(&self.blobs_dir())? {
            match self.deflate_blob(&path) {
                Ok(Some((before, after))) => {
                    d.blobs += 1;
                    d.bytes_before += before;
                    d.bytes_after += after;
                }
                Ok(None) => {}
                Err(e) => d.failed.push(e),
            }
        }
        Ok(d)
    }

    /// Deflate the blob at `path` if it is marked; its size before and after, or
    /// None when it was deflated already.
    pub fn deflate_blob(&self, path: &Path) -> Result<Option<(u64, u64)>, StoreError> {
        if !is_stored(path).map_err(io(path))? {
            return Ok(None);
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".gz"))
            .unwrap_or_default();
        let before = fs::metadata(path).map_err(io(path))?.len();
        let tmp_dir = self.tmp_dir();
        fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
        let tmp = tmp_dir.join(format!(
            "blob-{}-{}.gz",
            std::process::id(),
            fastrand::u64(..)
        ));
        let (found, after) = match deflate_into(path, &tmp) {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io(path)(e));
            }
        };
        if let Err(e) = raw::check(path, name, found) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(path)(e)
        })?;
        fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")));
        Ok(Some((before, after)))
    }
}

/// Gunzip `src` into `dst` deflated at the fast level, hashing the content; the
/// content's SHA-256 and `dst`'s length, `dst` synced.
fn deflate_into(src: &Path, dst: &Path) -> io::Result<(String, u64)> {
    let mut plain = flate2::read::GzDecoder::new(BufReader::new(File::open(src)?));
    let out = BufWriter::with_capacity(1 << 20, File::create(dst)?);
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let (mut sha, mut buf) = (Sha256::new(), vec![0; 1 << 20]);
    loop {
        let n = match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        gz.write_all(&buf[..n])?;
    }
    let file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((hex::encode(sha.finalize()), file.metadata()?.len()))
}

/// The `.gz` files of `blobs/<2 hex>/`, sorted; none when the folder is missing.
pub(super) fn blob_files(blobs: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = Vec::new();
    for dir in sorted_entries(blobs)? {
        if dir.is_dir() {
            files.extend(
                sorted_entries(&dir)?
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "gz")),
            );
        }
    }
    Ok(files)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut v = rd
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Page;

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut v = Vec::new();
        flate2::read::GzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut v)
            .unwrap();
        v
    }

    fn blob(store: &Store, body: &[u8]) -> PathBuf {
        let page = Page::new("p", body.to_vec());
        store.put_pages(std::slice::from_ref(&page)).unwrap();
        raw::blob_path(&store.blobs_dir(), &raw::content_hash(body))
    }

    #[test]
    fn compact_deflates_a_stored_blob_once_and_keeps_its_content() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let body = br#"{"offers":[{"gpu_name":"RTX 4090","dph_total":0.4}]}"#.repeat(2000);
        let path = blob(&store, &body);
        let stored = fs::metadata(&path).unwrap().len();
        assert!(is_stored(&path).unwrap());
        assert!(stored > body.len() as u64, "stored blocks: {stored} bytes");
        assert_eq!(gunzip(&path), body);

        let d = store.deflate_blobs().unwrap();
        assert_eq!((d.blobs, d.failed.len()), (1, 0));
        let after = fs::metadata(&path).unwrap().len();
        assert_eq!((d.bytes_before, d.bytes_after), (stored, after));
        assert!(after * 10 < stored, "{after} bytes deflated of {stored}");
        assert!(!is_stored(&path).unwrap());
        assert_eq!(gunzip(&path), body);
        assert_eq!(store.deflate_blobs().unwrap().blobs, 0);
        let left: Vec<_> = fs::read_dir(store.tmp_dir()).unwrap().collect();
        assert!(left.is_empty(), "nothing left in .tmp/: {left:?}");
    }

    #[test]
    fn a_damaged_stored_blob_is_named_and_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let path = blob(&store, b"one body");
        let good = blob(&store, b"another body");
        // The first blob's file now holds other content under its name.
        let mut gz = stored_gz(Vec::new());
        gz.write_all(b"changed").unwrap();
        let damaged = gz.finish().unwrap();
        fs::write(&path, &damaged).unwrap();

        let d = store.deflate_blobs().unwrap();
        assert_eq!(d.blobs, 1, "the intact blob is deflated");
        assert!(!is_stored(&good).unwrap());
        assert_eq!(d.failed.len(), 1);
        let msg = d.failed[0].to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(fs::read(&path).unwrap(), damaged);
    }

    #[test]
    fn only_the_mark_makes_a_blob_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let check = |bytes: Vec<u8>, expected: bool| {
            let p = tmp.path().join("b.gz");
            fs::write(&p, bytes).unwrap();
            assert_eq!(is_stored(&p).unwrap(), expected);
        };
        let gz = |mut e: flate2::write::GzEncoder<Vec<u8>>| {
            e.write_all(b"x").unwrap();
            e.finish().unwrap()
        };
        check(gz(stored_gz(Vec::new())), true);
        check(
            gz(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            )),
            false,
        );
        check(
            gz(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::none(),
            )),
            false,
        );
        check(
            gz(flate2::GzBuilder::new()
                .comment("other")
                .write(Vec::new(), Default::default())),
            false,
        );
        check(Vec::new(), false);
    }
}
