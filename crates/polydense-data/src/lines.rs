//! Streaming line input with transparent gzip, exact line numbers and UTF-8 checks, shared
//! by every text format so that all of them report bad input the same way.

use crate::error::{DataError, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Opens a file for reading, decompressing it when it starts with the gzip magic bytes
/// (so `corpus.jsonl.gz` and a mis-named gzip file both work).
pub fn open(path: impl AsRef<Path>) -> Result<Box<dyn BufRead + Send>> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| DataError::io(path, e))?;
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Iterates the lines of a text file as `(line_number, line)`, 1-based, without the line
/// terminator. A byte sequence that is not UTF-8 is an error naming the line and column.
pub struct Lines {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: usize,
}

impl Lines {
    /// Opens `path` (gzip or plain) for line-by-line reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let reader = open(&path)?;
        Ok(Lines {
            path,
            reader,
            buf: Vec::new(),
            line: 0,
        })
    }

    /// The file being read, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads lines until the end, failing with [`DataError`] on the first non-UTF-8 line or
    /// when the file has no non-blank line at all.
    pub fn non_empty(self) -> NonEmptyLines {
        NonEmptyLines {
            inner: self,
            seen: false,
        }
    }
}

impl Iterator for Lines {
    type Item = Result<(usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                match std::str::from_utf8(&self.buf) {
                    Ok(s) => Some(Ok((self.line, s.to_owned()))),
                    Err(e) => Some(Err(DataError::invalid(
                        &self.path,
                        format!(
                            "byte {} is not valid UTF-8 (0x{:02x})",
                            e.valid_up_to() + 1,
                            self.buf[e.valid_up_to()]
                        ),
                    )
                    .at_line(self.line)
                    .hint("re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`"))),
                }
            }
            Err(e) => Some(Err(DataError::io(&self.path, e))),
        }
    }
}

/// [`Lines`] without blank lines, that fails at the end if the file held no content.
pub struct NonEmptyLines {
    inner: Lines,
    seen: bool,
}

impl Iterator for NonEmptyLines {
    type Item = Result<(usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.inner.next() {
                Some(Ok((_, l))) if l.trim().is_empty() => continue,
                Some(item) => {
                    self.seen = true;
                    return Some(item);
                }
                None if !self.seen => {
                    self.seen = true;
                    return Some(Err(DataError::invalid(
                        &self.inner.path,
                        "the file is empty",
                    )
                    .hint("check the path, or that the step that writes it finished")));
                }
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn numbers_lines_and_strips_crlf() {
        let f = tmp(b"a\r\nb\n\nc");
        let got: Vec<_> = Lines::open(f.path()).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(
            got,
            vec![
                (1, "a".into()),
                (2, "b".into()),
                (3, "".into()),
                (4, "c".into())
            ]
        );
    }

    #[test]
    fn reads_gzip_transparently() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"x\ny\n").unwrap();
        let f = tmp(&enc.finish().unwrap());
        let got: Vec<_> = Lines::open(f.path())
            .unwrap()
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(got, vec!["x", "y"]);
    }

    #[test]
    fn non_utf8_names_line_and_byte() {
        let f = tmp(b"ok\nbad \xff here\n");
        let err = Lines::open(f.path())
            .unwrap()
            .find_map(|r| r.err())
            .unwrap();
        let inv = err.as_invalid().unwrap();
        assert_eq!(inv.line, Some(2));
        assert!(inv.message.contains("byte 5"), "{}", inv.message);
    }

    #[test]
    fn empty_file_is_an_error() {
        let f = tmp(b"\n  \n");
        let err = Lines::open(f.path())
            .unwrap()
            .non_empty()
            .find_map(|r| r.err())
            .unwrap();
        assert!(err.to_string().contains("empty"));
    }
}
