//! WAL checkpoints: once the head has written its oldest samples into a block, the segments
//! holding them are replaced by one checkpoint that keeps only what the head still needs —
//! the definitions of live series and samples at or after the cut.
//!
//! A checkpoint is a directory `checkpoint.NNNNNNNN` (NNNNNNNN = the last segment it folds
//! in) holding segments in the normal format. It is written as `….tmp`, fsynced and renamed,
//! so a crash leaves either the old state or the new one; only then are the folded segments
//! and older checkpoints deleted. Replay reads the newest checkpoint, then the segments after
//! its number.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Record, ReplayStats, Wal, WalError, io_err, replay, segments};
use crate::tsdb::SeriesRef;

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

/// What a checkpoint kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointStats {
    pub upto: u32,
    pub series: u64,
    pub samples: u64,
    pub segments_removed: usize,
}

/// Folds the previous checkpoint and every segment ≤ `upto` into `checkpoint.upto`, keeping
/// series for which `keep` holds and their samples at or after `min_t`; then deletes what
/// it folded in. `upto` must not be the segment being written.
pub fn create(
    dir: &Path,
    upto: u32,
    keep: impl Fn(SeriesRef) -> bool,
    min_t: i64,
) -> Result<CheckpointStats, WalError> {
    let mut stats = CheckpointStats { upto, ..Default::default() };
    let tmp = dir.join(format!("{PREFIX}{upto:08}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let mut out = Wal::open(&tmp)?;
    let mut failed: Option<WalError> = None;
    let mut write = |rec: Record, out: &mut Wal| {
        let r = match rec {
            Record::Series(series) => {
                let kept: Vec<_> = series.iter().filter(|(r, _)| keep(*r)).map(|(r, l)| (*r, l)).collect();
                stats.series += kept.len() as u64;
                out.log_series(&kept)
            }
            Record::Samples(samples) => {
                let kept: Vec<_> = samples.into_iter().filter(|(r, t, _)| *t >= min_t && keep(*r)).collect();
                stats.samples += kept.len() as u64;
                out.log_samples(&kept)
            }
        };
        if let Err(e) = r.and_then(|()| out.flush()) {
            failed.get_or_insert(e);
        }
    };
    let previous = latest(dir)?;
    if let Some((_, path)) = &previous {
        replay(path, 0, |rec| write(rec, &mut out))?;
    }
    let from = previous.as_ref().map_or(0, |(n, _)| n + 1);
    let folded: Vec<u32> = segments(dir)?.into_iter().filter(|n| *n >= from && *n <= upto).collect();
    for &seg in &folded {
        replay_one(dir, seg, |rec| write(rec, &mut out))?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    out.sync()?;
    drop(out);
    let done = dir.join(format!("{PREFIX}{upto:08}"));
    fs::rename(&tmp, &done).map_err(io_err(&done))?;
    sync_dir(dir)?;
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

/// Replays exactly one segment (a checkpoint folds segments one by one).
fn replay_one(dir: &Path, seg: u32, apply: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    super::replay_segments(dir, &[seg], apply)
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
