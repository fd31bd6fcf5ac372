//! Atomic file output: write to a temporary sibling, then rename over the target, so a crash
//! or Ctrl-C never leaves a truncated file where a complete one was expected.

use crate::error::{DataError, Result};
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; nothing appears at the target path until [`AtomicFile::commit`].
/// Dropping it without committing removes the temporary file.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    writer: Option<Sink>,
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(GzEncoder<BufWriter<File>>),
}

impl AtomicFile {
    /// Creates the temporary file (and missing parent directories); a target ending in `.gz`
    /// is gzip-compressed.
    pub fn create(target: impl AsRef<Path>) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let buf = BufWriter::with_capacity(1 << 16, file);
        let writer = if name.ends_with(".gz") {
            Sink::Gz(GzEncoder::new(buf, flate2::Compression::default()))
        } else {
            Sink::Plain(buf)
        };
        Ok(AtomicFile {
            target,
            tmp,
            writer: Some(writer),
        })
    }

    /// Flushes, syncs and renames the temporary file onto the target.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("writer present until commit");
        let buf = match writer {
            Sink::Plain(b) => b,
            Sink::Gz(g) => g.finish().map_err(|e| DataError::io(&self.tmp, e))?,
        };
        let file = buf
            .into_inner()
            .map_err(|e| DataError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| DataError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.target).map_err(|e| DataError::io(&self.target, e))?;
        Ok(())
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.writer.as_mut().expect("not committed") {
            Sink::Plain(w) => w.write(buf),
            Sink::Gz(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.writer.as_mut().expect("not committed") {
            Sink::Plain(w) => w.flush(),
            Sink::Gz(w) => w.flush(),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a whole file atomically through `body`; the I/O error names the target.
pub fn write_atomic(
    target: impl AsRef<Path>,
    body: impl FnOnce(&mut AtomicFile) -> std::io::Result<()>,
) -> Result<()> {
    let mut f = AtomicFile::create(target.as_ref())?;
    body(&mut f).map_err(|e| DataError::io(target.as_ref(), e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.txt");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
            assert!(!target.exists());
        }
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            0
        );
        write_atomic(&target, |w| w.write_all(b"done")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "done");
    }

    #[test]
    fn failed_rewrite_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("keep.txt");
        write_atomic(&target, |w| w.write_all(b"v1")).unwrap();
        let err = write_atomic(&target, |w| {
            w.write_all(b"v2-half")?;
            Err(std::io::Error::other("interrupted"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1");
    }

    #[test]
    fn gz_target_is_compressed_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.jsonl.gz");
        write_atomic(&target, |w| w.write_all(b"a\nb\n")).unwrap();
        let lines: Vec<_> = crate::lines::Lines::open(&target)
            .unwrap()
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(lines, vec!["a", "b"]);
    }
}
