//! Frames of the `chunks` file (format 2): consecutive series segments ([`super::segment`])
//! gathered until about [`FRAME_TARGET`] bytes and compressed together with raw DEFLATE, so
//! the compressor sees the repetition across neighbouring series (which share label
//! prefixes, scrape grids and often values) as well as within one.
//!
//! On disk a frame is `raw_len uvarint | packed_len uvarint | deflate bytes | crc32c u32`
//! (the checksum over the compressed bytes). A segment's reference is
//! `frame_offset << 24 | position in the uncompressed frame`.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::segment::{self, SharedTimes};
use crate::tsdb::Point;
use crate::tsdb::encoding::{DecodeError, Decoder, put_uvarint};

/// Uncompressed bytes gathered before a frame is closed.
pub const FRAME_TARGET: usize = 128 * 1024;
const POS_BITS: u32 = 24;

/// Where a segment lives.
pub fn segment_ref(frame_offset: u64, pos: usize) -> u64 {
    (frame_offset << POS_BITS) | pos as u64
}

pub fn split_ref(r: u64) -> (u64, usize) {
    (r >> POS_BITS, (r & ((1 << POS_BITS) - 1)) as usize)
}

/// Builds frames from segments; the caller writes each finished frame at `offset`.
pub struct FrameBuilder {
    raw: Vec<u8>,
    shared: SharedTimes,
    /// File offset the frame being built will be written at.
    offset: u64,
}

impl FrameBuilder {
    pub fn new(offset: u64) -> Self {
        FrameBuilder { raw: Vec::with_capacity(FRAME_TARGET * 2), shared: SharedTimes::default(), offset }
    }

    /// Encodes a segment into the current frame and returns its reference.
    pub fn push(&mut self, points: &[Point]) -> u64 {
        let r = segment_ref(self.offset, self.raw.len());
        segment::encode(points, &mut self.raw, &mut self.shared);
        r
    }

    /// The encoded frame once it is big enough (or `force`d, for the last one).
    pub fn take(&mut self, force: bool) -> Option<Vec<u8>> {
        if self.raw.is_empty() || (!force && self.raw.len() < FRAME_TARGET) {
            return None;
        }
        let packed = deflate(&self.raw);
        let mut out = Vec::with_capacity(packed.len() + 16);
        put_uvarint(&mut out, self.raw.len() as u64);
        put_uvarint(&mut out, packed.len() as u64);
        out.extend_from_slice(&packed);
        out.extend_from_slice(&crc32c::crc32c(&packed).to_le_bytes());
        self.offset += out.len() as u64;
        self.raw.clear();
        self.shared.clear();
        Some(out)
    }
}

fn deflate(raw: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    loop {
        let before = c.total_in() as usize;
        match c.compress_vec(&raw[before..], &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return out,
            Ok(_) => out.reserve(out.capacity().max(4096)),
            Err(e) => unreachable!("deflate into a growing buffer cannot fail: {e}"),
        }
    }
}

/// Reads and inflates the frame at `offset` of `file`, checking its checksum and size.
pub fn read(file: &[u8], offset: u64) -> Result<Vec<u8>, DecodeError> {
    let mut d = Decoder::at(file, offset as usize);
    let raw_len = d.uvarint()? as usize;
    let packed_len = d.uvarint()? as usize;
    if raw_len > 1 << POS_BITS {
        return Err(d.err("frame too large"));
    }
    let packed = d.bytes(packed_len)?;
    let crc = u32::from_le_bytes(d.bytes(4)?.try_into().expect("4 bytes"));
    if crc32c::crc32c(packed) != crc {
        return Err(DecodeError(format!("frame at {offset}: checksum mismatch")));
    }
    let mut raw = Vec::with_capacity(raw_len);
    let mut z = Decompress::new(false);
    match z.decompress_vec(packed, &mut raw, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) if raw.len() == raw_len => Ok(raw),
        Ok(_) => Err(DecodeError(format!("frame at {offset}: inflates to a different size than recorded"))),
        Err(e) => Err(DecodeError(format!("frame at {offset}: {e}"))),
    }
}

/// Decodes the segment at `pos` of an inflated frame.
pub fn segment_at(frame: &[u8], pos: usize, out: &mut Vec<Point>) -> Result<(), DecodeError> {
    segment::decode(frame, pos, out).map(|_| ())
}

/// The last frame read, so neighbouring series in one frame inflate it once.
#[derive(Default)]
pub struct FrameCache {
    frame: Option<(u64, Vec<u8>)>,
}

impl FrameCache {
    pub fn get<'a>(&'a mut self, file: &[u8], offset: u64) -> Result<&'a [u8], DecodeError> {
        if self.frame.as_ref().is_none_or(|(o, _)| *o != offset) {
            self.frame = Some((offset, read(file, offset)?));
        }
        Ok(&self.frame.as_ref().expect("just filled").1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_hold_segments_and_catch_damage() {
        let mut file = b"HEADER..".to_vec();
        let mut b = FrameBuilder::new(file.len() as u64);
        let mut refs = Vec::new();
        for s in 0..400 {
            let pts: Vec<Point> = (0..480).map(|i| Point { t: i * 15_000, v: (s * i) as f64 }).collect();
            refs.push((b.push(&pts), pts));
            if let Some(f) = b.take(false) {
                file.extend_from_slice(&f);
            }
        }
        file.extend_from_slice(&b.take(true).unwrap());
        assert!(b.take(true).is_none());
        let mut cache = FrameCache::default();
        let frames: std::collections::BTreeSet<u64> = refs.iter().map(|(r, _)| split_ref(*r).0).collect();
        assert!(frames.len() > 1, "several frames");
        for (r, pts) in &refs {
            let (off, pos) = split_ref(*r);
            let mut got = Vec::new();
            segment_at(cache.get(&file, off).unwrap(), pos, &mut got).unwrap();
            assert_eq!(&got, pts);
        }
        let last = *frames.iter().last().unwrap() as usize;
        file[last + 10] ^= 0x40;
        let err = read(&file, last as u64).unwrap_err();
        assert!(err.0.contains("checksum mismatch"), "{err}");
    }
}
