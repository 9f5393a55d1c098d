//! WAL checkpoints: the head, written out as it is at one point of the log, replacing every
//! segment before that point. The head writes one after each head compaction (so samples
//! now in a block leave the log) and whenever the log since the last one has grown past a
//! threshold (so replay reads compressed chunks instead of decoding every logged sample).
//!
//! A checkpoint is a directory `checkpoint.NNNNNNNN` (NNNNNNNN = the last segment it folds
//! in) holding segments in the normal format. It is written as `….tmp`, fsynced and renamed,
//! so a crash leaves either the old state or the new one; only then are the folded segments
//! and older checkpoints deleted. Replay reads the newest checkpoint, then the segments after
//! its number.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Wal, WalError, io_err, segments};

const PREFIX: &str = "checkpoint.";

/// The newest complete checkpoint in `dir`: its last folded segment and its path.
pub fn latest(dir: &Path) -> Result<Option<(u32, PathBuf)>, WalError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut best: Option<(u32, PathBuf)> = None;
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(n) = name.strip_prefix(PREFIX).and_then(|n| n.parse::<u32>().ok())
            && best.as_ref().is_none_or(|(b, _)| n > *b)
        {
            best = Some((n, e.path()));
        }
    }
    Ok(best)
}

/// What a checkpoint holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointStats {
    pub upto: u32,
    pub series: u64,
    pub samples: u64,
    /// Size of the checkpoint on disk.
    pub bytes: u64,
    pub segments_removed: usize,
}

/// Writes `checkpoint.upto` with the records `fill` logs (it returns the series and sample
/// counts), then deletes every segment ≤ `upto` and the previous checkpoint, which it
/// replaces. `fill` must log everything the head needs of those segments; `upto` must not
/// be the segment being written.
pub fn write(
    dir: &Path,
    upto: u32,
    fill: impl FnOnce(&mut Wal) -> Result<(u64, u64), WalError>,
) -> Result<CheckpointStats, WalError> {
    let tmp = dir.join(format!("{PREFIX}{upto:08}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let previous = latest(dir)?;
    let mut out = Wal::open(&tmp)?;
    let filled = fill(&mut out).and_then(|counts| out.sync().map(|()| counts));
    let bytes = out.total_written();
    drop(out);
    let (series, samples) = match filled {
        Ok(counts) => counts,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let done = dir.join(format!("{PREFIX}{upto:08}"));
    fs::rename(&tmp, &done).map_err(io_err(&done))?;
    sync_dir(dir)?;
    let mut stats = CheckpointStats { upto, series, samples, bytes, segments_removed: 0 };
    for seg in segments(dir)?.into_iter().filter(|n| *n <= upto) {
        let p = dir.join(super::segment_name(seg));
        fs::remove_file(&p).map_err(io_err(&p))?;
        stats.segments_removed += 1;
    }
    if let Some((n, path)) = previous
        && n < upto
    {
        fs::remove_dir_all(&path).map_err(io_err(&path))?;
    }
    Ok(stats)
}

pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

/// Removes checkpoints left half-written by a crash.
pub fn remove_partial(dir: &Path) -> Result<(), WalError> {
    let Ok(rd) = fs::read_dir(dir) else { return Ok(()) };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(PREFIX) && name.ends_with(".tmp") {
            fs::remove_dir_all(e.path()).map_err(io_err(&e.path()))?;
        }
    }
    Ok(())
}
