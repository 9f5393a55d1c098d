//! The head written into, and read back from, WAL checkpoints.
//!
//! A checkpoint holds every series as the head has it — full chunks as they are, the open
//! chunk's bytes, late samples — so a restart loads compressed chunks instead of decoding
//! and re-encoding every logged sample; only the segments after the checkpoint are replayed
//! sample by sample. The head writes one after each head compaction and whenever the log
//! has grown by `--wal-checkpoint-size` (default [`CHECKPOINT_MIN_WAL`]) or half the last checkpoint's size since the last
//! one (whichever is larger), so replay work stays a fraction of the head while the extra
//! writes stay at most about twice the log's.
//!
//! Consistency without stopping ingestion: the log is switched to a new segment first
//! (under the log lock, so every commit is wholly before or after), then each series is
//! copied under its own lock. A commit that lands between the two is both in the copy and
//! in the new segment; replaying it again is a no-op (same time, same value).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{BlockChunk, Head, MemSeries, OpenReport, SeriesChunks, fetch_max_i64, fetch_min_i64};
use crate::tsdb::chunk::{ChunkEncoder, ChunkError, ChunkIter};
use crate::tsdb::wal::record::{self, SeriesState};
use crate::tsdb::wal::{self, WalError, checkpoint::CheckpointStats};
use crate::tsdb::{Point, SeriesRef};

/// Default log growth below which no size-triggered checkpoint is written.
pub const CHECKPOINT_MIN_WAL: u64 = 32 << 20;
/// Series states are written in records of about this size.
const STATE_RECORD_BYTES: usize = 1 << 20;

impl SeriesChunks {
    /// Appends this series' state to `out`; returns its sample count.
    fn encode_state(&self, r: SeriesRef, s: &MemSeries, out: &mut Vec<u8>) -> u64 {
        let sealed: Vec<(i64, i64, &[u8])> = self.sealed.iter().map(|c| (c.min_t, c.max_t, &c.data[..])).collect();
        let late: Vec<(i64, f64)> = self.ooo.iter().map(|p| (p.t, p.v)).collect();
        let labels: Vec<(&str, &str)> = s.labels.pairs().collect();
        record::encode_state(out, r, labels.iter().copied(), &sealed, self.open.bytes_if_any(), &late);
        self.sample_count()
    }

    fn sample_count(&self) -> u64 {
        let in_chunks: u64 =
            self.sealed.iter().map(|c| ChunkIter::new(&c.data).map_or(0, |it| it.num_samples() as u64)).sum();
        in_chunks + self.open.len() as u64 + self.ooo.len() as u64
    }

    /// Rebuilds a series from its checkpointed state, without what lies before `min_valid`.
    fn restore(st: &mut SeriesState, min_valid: i64) -> Result<SeriesChunks, ChunkError> {
        let open = if st.open.is_empty() { ChunkEncoder::new() } else { ChunkEncoder::resume(&st.open)? };
        let sealed: Vec<BlockChunk> = std::mem::take(&mut st.sealed)
            .into_iter()
            .map(|c| BlockChunk { min_t: c.min_t, max_t: c.max_t, data: c.data })
            .collect();
        let last = match open.last() {
            Some(l) => Some(l),
            None => match sealed.last() {
                Some(c) => ChunkIter::new(&c.data)?.last(),
                None => None,
            },
        };
        let ooo = st.late.iter().map(|&(t, v)| Point { t, v }).collect();
        let mut c =
            SeriesChunks { sealed, open, last: last.map(|(t, v)| (t, v.to_bits())), ooo, ..SeriesChunks::default() };
        c.truncate_before(min_valid);
        Ok(c)
    }

    /// Oldest and newest sample time, `None` when empty.
    fn time_range(&self) -> Option<(i64, i64)> {
        let lo = [
            self.sealed.first().map(|c| c.min_t),
            (!self.open.is_empty()).then(|| self.open.min_time()),
            self.ooo.first().map(|p| p.t),
        ];
        let hi = [self.sealed.last().map(|c| c.max_t), self.open.last().map(|l| l.0), self.ooo.last().map(|p| p.t)];
        Some((lo.into_iter().flatten().min()?, hi.into_iter().flatten().max()?))
    }
}

impl ChunkEncoder {
    /// The bytes of a non-empty chunk; nothing for an empty one.
    fn bytes_if_any(&self) -> &[u8] {
        if self.is_empty() { &[] } else { self.bytes() }
    }
}

impl Head {
    /// Loads series states from a checkpoint (replay).
    pub(super) fn restore_states(&self, states: Vec<SeriesState>, min_valid: i64, report: &mut OpenReport) {
        let mut idx = self.index.write();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for mut st in states {
            let r = st.series_ref;
            if idx.get(r).is_none() {
                let labels = std::mem::take(&mut st.labels);
                idx.insert(r, labels.stable_hash(), labels);
                report.series += 1;
            }
            let restored = match SeriesChunks::restore(&mut st, min_valid) {
                Ok(c) => c,
                Err(e) => {
                    // CRC-checked data we wrote ourselves: only a bug gets here. Keep the rest.
                    tracing::error!(series = r, error = %e, "checkpointed series could not be restored; its head data is lost");
                    report.bad_series += 1;
                    continue;
                }
            };
            if let Some((a, b)) = restored.time_range() {
                lo = lo.min(a);
                hi = hi.max(b);
            }
            report.samples += restored.sample_count();
            let s = idx.get(r).expect("inserted above");
            *s.chunks.lock() = restored;
        }
        if lo <= hi {
            fetch_min_i64(&self.min_time, lo);
            fetch_max_i64(&self.max_time, hi);
        }
    }

    /// Whether the log has grown enough since the last checkpoint to write a new one.
    pub fn checkpoint_due(&self) -> bool {
        let since =
            self.wal_written.load(Ordering::Relaxed).saturating_sub(self.checkpoint_mark.load(Ordering::Relaxed));
        let min = self.checkpoint_min_wal.load(Ordering::Relaxed);
        self.wal_dir.is_some() && since >= min.max(self.checkpoint_bytes.load(Ordering::Relaxed) / 2)
    }

    /// Sets the log growth that makes a checkpoint due (0 is taken as 1 byte).
    pub fn set_checkpoint_size(&self, bytes: u64) {
        self.checkpoint_min_wal.store(bytes.max(1), Ordering::Relaxed);
    }

    /// Signalled (once per due checkpoint) when [`Self::checkpoint_due`] becomes true.
    pub fn checkpoint_wanted(&self) -> &tokio::sync::Notify {
        &self.checkpoint_notify
    }

    /// Called after each commit: asks for a checkpoint once it is due.
    pub(super) fn request_checkpoint_if_due(&self) {
        if self.checkpoint_due() && !self.checkpoint_requested.swap(true, Ordering::Relaxed) {
            self.checkpoint_notify.notify_one();
        }
    }

    /// Starts a new WAL segment and replaces every older segment and the previous
    /// checkpoint by a checkpoint holding the head as it is now. `None` without a log.
    pub fn checkpoint_wal(&self) -> Result<Option<CheckpointStats>, WalError> {
        let Some(dir) = self.wal_dir.as_ref() else { return Ok(None) };
        let _one_at_a_time = self.checkpointing.lock();
        let started = Instant::now();
        let upto = {
            let mut w = self.wal.lock();
            let Some(w) = w.as_mut() else { return Ok(None) };
            let next = w.next_segment()?;
            let written = self.wal_base + w.total_written();
            self.wal_written.store(written, Ordering::Relaxed);
            self.checkpoint_mark.store(written, Ordering::Relaxed);
            next - 1
        };
        let series: Vec<(SeriesRef, Arc<MemSeries>)> = {
            let idx = self.index.read();
            idx.series.iter().enumerate().filter_map(|(r, s)| Some((r as SeriesRef, s.clone()?))).collect()
        };
        let result = wal::checkpoint::write(dir, upto, |out| {
            let mut payload = Vec::with_capacity(STATE_RECORD_BYTES + (64 << 10));
            let (mut written, mut samples) = (0, 0);
            for (r, s) in &series {
                let c = s.chunks.lock();
                if c.removed {
                    continue; // collected since the list was taken
                }
                samples += c.encode_state(*r, s, &mut payload);
                written += 1;
                drop(c);
                if payload.len() >= STATE_RECORD_BYTES {
                    out.log_states(&payload)?;
                    out.flush()?;
                    payload.clear();
                }
            }
            out.log_states(&payload)?;
            out.flush()?;
            Ok((written, samples))
        });
        self.checkpoint_requested.store(false, Ordering::Relaxed);
        let stats = result.inspect_err(|_| {
            self.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
        })?;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_bytes.store(stats.bytes, Ordering::Relaxed);
        tracing::info!(
            upto = stats.upto,
            series = stats.series,
            samples = stats.samples,
            bytes = stats.bytes,
            removed_segments = stats.segments_removed,
            duration_ms = started.elapsed().as_millis() as u64,
            "WAL checkpoint written"
        );
        Ok(Some(stats))
    }
}
