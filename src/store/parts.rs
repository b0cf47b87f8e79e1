//! `RunWriter`: one feed run's offers and rejects written chunk by chunk, each file
//! streamed as Parquet row groups to a temporary file in `.tmp/` and put in place
//! by `commit`.
//!
//! Invariants: nothing is at a final name before `commit`; `commit` renames the
//! rejects file first (only when it has rows) and the offers file last (always, with
//! the schema even when empty), as `Store::append` does, so the offers file marks the
//! run complete; a writer dropped before `commit`, or a failed `commit`, leaves no
//! file behind. Memory is one chunk's frames and a write buffer, not the run's rows.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;

use super::fsutil::{io, sync_dir, tmp_name};
use super::pl;
use crate::error::StoreError;

/// A file written through a shared buffer, so the Parquet writer can own one handle
/// and [`Part::finish`] flush (checking for errors) and fsync through the other.
#[derive(Clone)]
struct Shared(Arc<Mutex<BufWriter<File>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("a writer never panics holding it")
            .write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .expect("a writer never panics holding it")
            .flush()
    }
}

/// One Parquet file being written in `.tmp/`, bound for `dest`.
struct Part {
    tmp: PathBuf,
    dest: PathBuf,
    file: Shared,
    writer: BatchedWriter<Shared>,
}

impl Part {
    fn create(tmp_dir: &Path, dest: &Path, schema: &Schema) -> Result<Self, StoreError> {
        fs::create_dir_all(tmp_dir).map_err(io(tmp_dir))?;
        let name = tmp_name(dest);
        let tmp = tmp_dir.join(name.file_name().expect("temporary names have a file name"));
        let f = File::create(&tmp).map_err(io(&tmp))?;
        let file = Shared(Arc::new(Mutex::new(BufWriter::with_capacity(1 << 20, f))));
        let writer = ParquetWriter::new(file.clone())
            .with_compression(ParquetCompression::Zstd(None))
            .batched(schema);
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(pl(dest)(e));
            }
        };
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
            file,
            writer,
        })
    }

    fn write(&mut self, df: &mut DataFrame) -> Result<(), StoreError> {
        df.rechunk_mut();
        self.writer.write_batch(df).map_err(pl(&self.dest))
    }

    /// Footer written, buffer flushed and the file fsynced, still in `.tmp/`.
    fn finish(&self) -> Result<(), StoreError> {
        self.writer.finish().map_err(pl(&self.dest))?;
        let mut f = self
            .file
            .0
            .lock()
            .expect("a writer never panics holding it");
        f.flush().map_err(io(&self.tmp))?;
        f.get_ref().sync_all().map_err(io(&self.tmp))
    }

    fn put_in_place(&self) -> Result<(), StoreError> {
        let dir = self.dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::rename(&self.tmp, &self.dest).map_err(io(&self.dest))?;
        sync_dir(dir);
        Ok(())
    }
}

/// One feed run's offers and rejects, written a chunk at a time (see the module's
/// header). Made by `Store::run_writer`.
pub struct RunWriter {
    tmp_dir: PathBuf,
    offers_dest: PathBuf,
    rejects_dest: PathBuf,
    offers: Option<Part>,
    rejects: Option<Part>,
    /// The offers' schema, from the first chunk, for a run whose offers are all empty.
    offers_schema: Option<SchemaRef>,
}

impl RunWriter {
    pub(super) fn new(tmp_dir: PathBuf, offers_dest: PathBuf, rejects_dest: PathBuf) -> Self {
        Self {
            tmp_dir,
            offers_dest,
            rejects_dest,
            offers: None,
            rejects: None,
            offers_schema: None,
        }
    }

    /// Add one chunk's offers and rejects (either may be empty).
    pub fn write(
        &mut self,
        offers: &mut DataFrame,
        rejects: &mut DataFrame,
    ) -> Result<(), StoreError> {
        self.offers_schema
            .get_or_insert_with(|| offers.schema().clone());
        Self::add(&self.tmp_dir, &self.offers_dest, &mut self.offers, offers)?;
        Self::add(
            &self.tmp_dir,
            &self.rejects_dest,
            &mut self.rejects,
            rejects,
        )
    }

    fn add(
        tmp_dir: &Path,
        dest: &Path,
        part: &mut Option<Part>,
        df: &mut DataFrame,
    ) -> Result<(), StoreError> {
        if df.height() == 0 {
            return Ok(());
        }
        let part = match part {
            Some(p) => p,
            None => part.insert(Part::create(tmp_dir, dest, df.schema())?),
        };
        part.write(df)
    }

    /// Finish both files and put them in place: rejects (if any rows), then offers.
    pub fn commit(mut self) -> Result<(), StoreError> {
        if self.offers.is_none() {
            let schema = self
                .offers_schema
                .take()
                .ok_or_else(|| StoreError::Polars {
                    path: self.offers_dest.clone(),
                    source: PolarsError::NoData("no chunk was written".into()),
                })?;
            let mut empty = DataFrame::empty_with_schema(&schema);
            let part = Part::create(&self.tmp_dir, &self.offers_dest, &schema)?;
            self.offers.insert(part).write(&mut empty)?;
        }
        for part in [&self.rejects, &self.offers].into_iter().flatten() {
            part.finish()?;
        }
        for part in [self.rejects.take(), self.offers.take()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = part.put_in_place() {
                // The other file, if still in `.tmp/`, goes when `self` drops.
                let _ = fs::remove_file(&part.tmp);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for RunWriter {
    fn drop(&mut self) {
        for part in [self.rejects.take(), self.offers.take()]
            .into_iter()
            .flatten()
        {
            drop(part.writer);
            let _ = fs::remove_file(&part.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;
    use chrono::{TimeZone, Utc};

    fn frame(ids: &[&str]) -> DataFrame {
        df!("offer_id" => ids, "price" => ids.iter().map(|i| i.len() as f64).collect::<Vec<_>>())
            .unwrap()
    }

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    /// Files in `dir` and below, relative, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    let p = e.path();
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    /// Chunks written then committed read back as their concatenation, rejects and
    /// offers at their final names and nothing left in `.tmp/`; a run with no rejects
    /// has no rejects file, and a run with no offers still has an offers file with
    /// the schema.
    #[test]
    fn chunks_committed_read_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let at = Utc.with_ymd_and_hms(2026, 6, 1, 3, 0, 0).unwrap();
        let mut w = store.run_writer("vast", at).unwrap();
        w.write(&mut frame(&["a", "bb"]), &mut frame(&[])).unwrap();
        w.write(&mut frame(&[]), &mut frame(&["x"])).unwrap();
        w.write(&mut frame(&["ccc"]), &mut frame(&["yy"])).unwrap();
        w.commit().unwrap();
        let offers = read(&store.file("offers", "vast", at));
        assert!(offers.equals(&frame(&["a", "bb", "ccc"])), "{offers:?}");
        let rejects = read(&store.file("rejects", "vast", at));
        assert!(rejects.equals(&frame(&["x", "yy"])), "{rejects:?}");
        assert!(store.run_writer("vast", at).is_none(), "the hour is stored");

        let at = at + chrono::Duration::hours(1);
        let mut w = store.run_writer("vast", at).unwrap();
        w.write(&mut frame(&[]), &mut frame(&[])).unwrap();
        w.commit().unwrap();
        let offers = read(&store.file("offers", "vast", at));
        assert_eq!((offers.height(), offers.schema()), (0, frame(&[]).schema()));
        assert!(!store.file("rejects", "vast", at).exists());
        assert_eq!(
            files(tmp.path()),
            [
                "offers/date=2026-06-01/vast__20260601T03.parquet",
                "offers/date=2026-06-01/vast__20260601T04.parquet",
                "rejects/date=2026-06-01/vast__20260601T03.parquet",
            ]
        );
    }

    /// A writer dropped before its commit leaves no file, in `.tmp/` or elsewhere.
    #[test]
    fn a_writer_dropped_uncommitted_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let at = Utc.with_ymd_and_hms(2026, 6, 1, 3, 0, 0).unwrap();
        let mut w = store.run_writer("vast", at).unwrap();
        w.write(&mut frame(&["a"]), &mut frame(&["x"])).unwrap();
        assert_eq!(
            files(&store.tmp_dir()).len(),
            2,
            "both files are being written"
        );
        drop(w);
        assert_eq!(files(tmp.path()), Vec::<String>::new());
        assert!(!store.has_run("vast", at));
    }
}
