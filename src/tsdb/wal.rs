//! Write-ahead log: every series definition and sample batch the head accepts is written
//! here before the commit returns, so a restart (or a `SIGKILL`) loses nothing that was
//! acknowledged.
//!
//! The log is a directory of numbered segment files (`00000000`, `00000001`, …), each at
//! most [`SEGMENT_SIZE`] bytes. A segment is a sequence of records framed as
//! `type <u8> | len <u32 LE> | crc32c <u32 LE> | payload`, the checksum covering the type
//! byte and the payload; bit 7 of the type marks a snappy-compressed payload. Records never
//! span segments. Replay stops at the first frame that is torn or fails its checksum,
//! truncates the segment there, deletes later segments and reports it: a damaged tail
//! costs the samples after it, never a crash loop.

pub mod checkpoint;
pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use record::Record;

use crate::model::Labels;
use crate::tsdb::SeriesRef;

/// Largest segment file before a new one is started.
pub const SEGMENT_SIZE: u64 = 128 << 20;
const HEADER: usize = 9;
const SNAPPY: u8 = 0x80;
/// Payloads below this are written uncompressed.
const COMPRESS_MIN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid WAL record: {0}")]
    Record(String),
}

impl From<crate::tsdb::encoding::DecodeError> for WalError {
    fn from(e: crate::tsdb::encoding::DecodeError) -> Self {
        WalError::Record(e.0)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_path_buf(), source }
}

pub fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

/// Segment numbers present in `dir`, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.len() == 8
            && let Ok(n) = name.parse::<u32>()
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Appends records to the newest segment.
pub struct Wal {
    dir: PathBuf,
    segment: u32,
    file: File,
    written: u64,
    /// Bytes written over every segment since this log was opened.
    total: u64,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl Wal {
    /// Opens the log for writing in a new segment after the existing ones (replay first).
    pub fn open(dir: &Path) -> Result<Wal, WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let next = segments(dir)?.last().map(|n| n + 1).unwrap_or(0);
        let path = dir.join(segment_name(next));
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment: next,
            file,
            written: 0,
            total: 0,
            buf: Vec::with_capacity(64 << 10),
            scratch: Vec::new(),
            encoder: snap::raw::Encoder::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment being written.
    pub fn current_segment(&self) -> u32 {
        self.segment
    }

    /// Queues series definitions (written with the next [`Self::flush`]).
    pub fn log_series(&mut self, series: &[(SeriesRef, &Labels)]) -> Result<(), WalError> {
        let mut payload = std::mem::take(&mut self.scratch);
        payload.clear();
        record::encode_series(&mut payload, series);
        let r = self.frame(record::SERIES, &payload);
        self.scratch = payload;
        r
    }

    /// Bytes handed to the kernel since the log was opened, over all segments.
    pub fn total_written(&self) -> u64 {
        self.total
    }

    /// Queues series states encoded with [`record::encode_state`] (checkpoints only).
    pub fn log_states(&mut self, payload: &[u8]) -> Result<(), WalError> {
        if payload.is_empty() {
            return Ok(());
        }
        self.frame(record::SERIES_STATE, payload)
    }

    /// Queues a sample batch (written with the next [`Self::flush`]).
    pub fn log_samples(&mut self, samples: &[(SeriesRef, i64, f64)]) -> Result<(), WalError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut payload = std::mem::take(&mut self.scratch);
        payload.clear();
        record::encode_samples(&mut payload, samples);
        let r = self.frame(record::SAMPLES, &payload);
        self.scratch = payload;
        r
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> Result<(), WalError> {
        let compressed;
        let (kind, body) = if payload.len() >= COMPRESS_MIN {
            compressed = self.encoder.compress_vec(payload).map_err(|e| WalError::Record(e.to_string()))?;
            if compressed.len() < payload.len() { (kind | SNAPPY, &compressed[..]) } else { (kind, payload) }
        } else {
            (kind, payload)
        };
        let size = (HEADER + body.len()) as u64;
        if self.written > 0 && self.written + self.buf.len() as u64 + size > SEGMENT_SIZE {
            self.flush()?;
            self.next_segment()?;
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind]), body);
        self.buf.push(kind);
        self.buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf.extend_from_slice(body);
        Ok(())
    }

    /// Hands the queued records to the kernel. After this returns they survive a crash of
    /// the process (not of the machine: segments are fsynced when closed).
    pub fn flush(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(segment_name(self.segment));
        if let Err(e) = self.file.write_all(&self.buf) {
            // Keep the file at a frame boundary so the next write does not follow a torn frame.
            let _ = self.file.set_len(self.written);
            self.buf.clear();
            return Err(io_err(&path)(e));
        }
        self.written += self.buf.len() as u64;
        self.total += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Closes the current segment and starts the next one; returns the new segment number.
    pub fn next_segment(&mut self) -> Result<u32, WalError> {
        self.flush()?;
        let old = self.dir.join(segment_name(self.segment));
        self.file.sync_data().map_err(io_err(&old))?;
        self.segment += 1;
        let path = self.dir.join(segment_name(self.segment));
        self.file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        self.written = 0;
        Ok(self.segment)
    }

    /// Flushes and fsyncs (shutdown).
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.flush()?;
        let path = self.dir.join(segment_name(self.segment));
        self.file.sync_data().map_err(io_err(&path))
    }
}

/// What a replay found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplayStats {
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
    /// Bytes of that checkpoint (included in `bytes`).
    pub checkpoint_bytes: u64,
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Where replay stopped early and why (the log was truncated there).
    pub corruption: Option<Corruption>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Corruption {
    pub segment: u32,
    pub offset: u64,
    pub reason: String,
    /// Later segments that were deleted.
    pub dropped_segments: usize,
}

/// Reads every record of segments ≥ `from` in order, calling `apply` for each. A damaged
/// frame ends the replay: its segment is truncated at the frame, later segments are
/// deleted, and the damage is returned in the stats (and logged).
pub fn replay(dir: &Path, from: u32, apply: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    let all: Vec<u32> = segments(dir)?.into_iter().filter(|n| *n >= from).collect();
    replay_segments(dir, &all, apply)
}

/// Replays the newest checkpoint, then the segments after it: the whole log of a head.
pub fn replay_all(dir: &Path, mut apply: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    checkpoint::remove_partial(dir)?;
    let mut stats = ReplayStats::default();
    let mut from = 0;
    if let Some((n, path)) = checkpoint::latest(dir)? {
        let cp = replay(&path, 0, &mut apply)?;
        tracing::info!(checkpoint = n, records = cp.records, "WAL checkpoint replayed");
        stats.checkpoint = Some(n);
        stats.records += cp.records;
        stats.bytes += cp.bytes;
        stats.checkpoint_bytes = cp.bytes;
        from = n + 1;
    }
    let rest = replay(dir, from, apply)?;
    stats.segments = rest.segments;
    stats.records += rest.records;
    stats.bytes += rest.bytes;
    stats.corruption = rest.corruption;
    Ok(stats)
}

fn replay_segments(dir: &Path, all: &[u32], mut apply: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    let mut stats = ReplayStats::default();
    let started = Instant::now();
    let mut decoder = snap::raw::Decoder::new();
    let mut scratch = Vec::new();
    for (i, &seg) in all.iter().enumerate() {
        let path = dir.join(segment_name(seg));
        let data = map_segment(&path)?;
        stats.segments += 1;
        let mut pos = 0usize;
        let mut bad: Option<String> = None;
        while pos < data.len() {
            match read_frame(&data[pos..], &mut decoder, &mut scratch) {
                Ok((len, kind, payload)) => match record::decode(kind, payload) {
                    Ok(rec) => {
                        apply(rec);
                        stats.records += 1;
                        pos += len;
                    }
                    Err(e) => {
                        bad = Some(e.to_string());
                        break;
                    }
                },
                Err(reason) => {
                    bad = Some(reason);
                    break;
                }
            }
        }
        stats.bytes += pos as u64;
        drop(data);
        if let Some(reason) = bad {
            let f = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
            f.set_len(pos as u64).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
            let later = &all[i + 1..];
            for n in later {
                let p = dir.join(segment_name(*n));
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
            tracing::error!(
                segment = seg,
                offset = pos,
                reason = %reason,
                dropped_segments = later.len(),
                "WAL is damaged: truncated it at the first bad record; later samples are lost"
            );
            stats.corruption =
                Some(Corruption { segment: seg, offset: pos as u64, reason, dropped_segments: later.len() });
            break;
        }
        tracing::info!(
            segment = seg,
            progress = format!("{}/{}", i + 1, all.len()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "WAL segment replayed"
        );
    }
    Ok(stats)
}

/// The bytes of a segment, mapped rather than read: replay touches each byte once, and a
/// mapping costs no allocation or zeroing of a segment-sized buffer.
fn map_segment(path: &Path) -> Result<SegmentBytes, WalError> {
    let f = File::open(path).map_err(io_err(path))?;
    if f.metadata().map_err(io_err(path))?.len() == 0 {
        return Ok(SegmentBytes::Empty);
    }
    // SAFETY: replay runs before this process opens the log for writing, and segments
    // before the newest are never written again; the mapping is dropped before a damaged
    // segment is truncated.
    unsafe { memmap2::Mmap::map(&f) }.map(SegmentBytes::Mapped).map_err(io_err(path))
}

enum SegmentBytes {
    Empty,
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for SegmentBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SegmentBytes::Empty => &[],
            SegmentBytes::Mapped(m) => m,
        }
    }
}

/// Parses one frame: returns its total length, record type and payload (decompressed into
/// `scratch` when it was compressed).
fn read_frame<'a>(
    data: &'a [u8],
    decoder: &mut snap::raw::Decoder,
    scratch: &'a mut Vec<u8>,
) -> Result<(usize, u8, &'a [u8]), String> {
    if data.len() < HEADER {
        return Err(format!("torn record header ({} bytes)", data.len()));
    }
    let kind = data[0];
    let len = u32::from_le_bytes(data[1..5].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(data[5..9].try_into().expect("4 bytes"));
    let Some(body) = data.get(HEADER..HEADER + len) else {
        return Err(format!("torn record: {len} bytes announced, {} present", data.len() - HEADER));
    };
    if crc32c::crc32c_append(crc32c::crc32c(&[kind]), body) != crc {
        return Err("checksum mismatch".into());
    }
    let payload: &[u8] = if kind & SNAPPY != 0 {
        let n = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
        scratch.resize(n, 0);
        let n = decoder.decompress(body, scratch).map_err(|e| format!("snappy: {e}"))?;
        &scratch[..n]
    } else {
        body
    };
    Ok((HEADER + len, kind & !SNAPPY, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(dir: &Path) -> (Vec<Record>, ReplayStats) {
        let mut recs = Vec::new();
        let stats = replay(dir, 0, |r| recs.push(r)).unwrap();
        (recs, stats)
    }

    fn write_some(dir: &Path, batches: usize) {
        let mut w = Wal::open(dir).unwrap();
        let l = Labels::from_pairs([("__name__", "m"), ("i", "1")]);
        w.log_series(&[(1, &l)]).unwrap();
        for b in 0..batches {
            let samples: Vec<(SeriesRef, i64, f64)> = (0..50).map(|i| (1, (b * 50 + i) as i64, i as f64)).collect();
            w.log_samples(&samples).unwrap();
            w.flush().unwrap();
        }
    }

    #[test]
    fn records_survive_reopen_in_new_segments() {
        let d = tempfile::tempdir().unwrap();
        write_some(d.path(), 3);
        write_some(d.path(), 2);
        assert_eq!(segments(d.path()).unwrap(), vec![0, 1]);
        let (recs, stats) = collect(d.path());
        assert_eq!(stats.corruption, None);
        assert_eq!(recs.len(), 2 + 5);
        let samples: usize = recs.iter().map(|r| if let Record::Samples(s) = r { s.len() } else { 0 }).sum();
        assert_eq!(samples, 250);
    }

    #[test]
    fn torn_tail_is_truncated_and_reported() {
        let d = tempfile::tempdir().unwrap();
        write_some(d.path(), 4);
        let seg = d.path().join(segment_name(0));
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 5).unwrap();
        let (recs, stats) = collect(d.path());
        assert_eq!(recs.len(), 4, "series + 3 whole sample batches");
        let c = stats.corruption.unwrap();
        assert!(c.reason.contains("torn"), "{}", c.reason);
        // The repair is durable: a second replay is clean and finds the same records.
        let (again, stats) = collect(d.path());
        assert_eq!((again.len(), stats.corruption), (4, None));
    }

    #[test]
    fn corrupt_middle_drops_the_rest() {
        let d = tempfile::tempdir().unwrap();
        write_some(d.path(), 4);
        write_some(d.path(), 4);
        let seg = d.path().join(segment_name(0));
        let mut data = fs::read(&seg).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        fs::write(&seg, &data).unwrap();
        let (recs, stats) = collect(d.path());
        let c = stats.corruption.unwrap();
        assert_eq!((c.segment, c.dropped_segments), (0, 1));
        assert!(recs.len() < 5);
        assert_eq!(segments(d.path()).unwrap(), vec![0]);
        // Writing continues after the repaired log.
        write_some(d.path(), 1);
        let (more, stats) = collect(d.path());
        assert_eq!((more.len(), stats.corruption), (recs.len() + 2, None));
    }
}
