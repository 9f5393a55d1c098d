//! The head: recent samples of every series in compressed chunks, the postings index, and
//! (when opened on a directory) the write-ahead log that makes them durable.
//!
//! Each series keeps sealed chunks plus one open [`ChunkEncoder`]; a chunk is cut at
//! [`chunk::TARGET_SAMPLES`] samples, at a size cap, or where it would cross a
//! [`CHUNK_RANGE_MS`] boundary, so later block cuts never split a chunk. Commits are
//! serialised by the WAL lock: the samples are validated and applied, the accepted ones are
//! logged, and the commit returns only once the log has them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::chunk::{self, ChunkEncoder, ChunkIter};
use super::index::Postings;
use super::wal::{self, Record, ReplayStats, Wal, WalError};
use super::{Appender, CommitResult, Matcher, Point, Querier, SelectRequest, SeriesData, SeriesRef};
use crate::model::{Labels, PackedLabels, is_stale_nan};

/// Chunks never span a multiple of this (the smallest block range, 2 h).
pub const CHUNK_RANGE_MS: i64 = 2 * 3600 * 1000;
/// Bytes after which a chunk is cut even below the target sample count.
const CHUNK_MAX_BYTES: usize = 1024;

#[derive(Default)]
pub(super) struct SeriesChunks {
    /// Full chunks: immutable, shared with readers and the block writer without copying.
    sealed: Vec<BlockChunk>,
    open: ChunkEncoder,
    /// Time and value bits of the newest sample (duplicate detection).
    last: Option<(i64, u64)>,
    /// Samples accepted inside the out-of-order window, sorted by time; merged with the
    /// chunks when read. Empty (no allocation) for almost every series.
    ooo: Vec<Point>,
    /// Garbage-collected: no longer in the index; a commit still holding it must not write.
    removed: bool,
    /// Isolation: the newest commit that appended here, and this series' newest time before
    /// it; older such pairs still needed by a running read. See [`Head::begin_read`].
    tx_seq: u64,
    tx_before: i64,
    tx_older: Vec<(u64, i64)>,
}

/// What a sample does to a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Append,
    /// Same timestamp, same value: silently ignored.
    Repeat,
    /// Older than the newest sample but inside the out-of-order window.
    Late,
    OutOfOrder,
    Duplicate,
}

fn same_value(a: u64, b: f64) -> bool {
    a == b.to_bits() || (is_stale_nan(b) && is_stale_nan(f64::from_bits(a)))
}

impl SeriesChunks {
    /// `ooo_floor` is the oldest time a late sample may have (`i64::MAX`: no window).
    fn verdict(&self, t: i64, v: f64, ooo_floor: i64) -> Verdict {
        match self.last {
            Some((lt, _)) if t < lt => {
                // A sample already stored (a resent batch) is a no-op, not an error.
                match self.stored_value(t) {
                    Some(bits) if same_value(bits, v) => return Verdict::Repeat,
                    Some(_) => return Verdict::Duplicate,
                    None => {}
                }
                if t < ooo_floor {
                    return Verdict::OutOfOrder;
                }
                let late = &self.ooo;
                match late.binary_search_by_key(&t, |p| p.t) {
                    Ok(i) if same_value(late[i].v.to_bits(), v) => Verdict::Repeat,
                    Ok(_) => Verdict::Duplicate,
                    Err(_) => Verdict::Late,
                }
            }
            Some((lt, lv)) if t == lt => {
                if same_value(lv, v) {
                    Verdict::Repeat
                } else {
                    Verdict::Duplicate
                }
            }
            _ => Verdict::Append,
        }
    }

    /// The value bits stored in the chunks at exactly `t` (slow path: decodes one chunk).
    fn stored_value(&self, t: i64) -> Option<u64> {
        let chunk: &[u8] = if !self.open.is_empty() && t >= self.open.min_time() {
            self.open.bytes()
        } else {
            let i = self.sealed.partition_point(|c| c.max_t < t);
            match self.sealed.get(i) {
                Some(c) if c.min_t <= t => &c.data,
                _ => return None,
            }
        };
        ChunkIter::new(chunk).ok()?.take_while(|(ct, _)| *ct <= t).find(|(ct, _)| *ct == t).map(|(_, v)| v.to_bits())
    }

    fn apply(&mut self, verdict: Verdict, t: i64, v: f64) {
        match verdict {
            Verdict::Append => self.push(t, v),
            Verdict::Late => {
                let late = &mut self.ooo;
                let i = late.partition_point(|p| p.t < t);
                late.insert(i, Point { t, v });
            }
            _ => {}
        }
    }

    /// Appends a sample newer than every stored one.
    pub(super) fn push(&mut self, t: i64, v: f64) {
        let open = &self.open;
        let crosses = !open.is_empty() && t.div_euclid(CHUNK_RANGE_MS) != open.min_time().div_euclid(CHUNK_RANGE_MS);
        if !open.is_empty() && (open.len() >= chunk::TARGET_SAMPLES || open.size() >= CHUNK_MAX_BYTES || crosses) {
            let full = std::mem::take(&mut self.open);
            self.sealed.push(BlockChunk::sealed(&full));
        }
        self.open.append(t, v);
        self.last = Some((t, v.to_bits()));
    }

    /// Records that commit `seq` is about to append here (once per commit). Pairs of
    /// commits at or below `low`, the oldest running read's view, are no longer needed.
    fn note_commit(&mut self, seq: u64, low: u64) {
        if self.tx_seq == seq {
            return;
        }
        if self.tx_seq > low {
            self.tx_older.push((self.tx_seq, self.tx_before));
        }
        if !self.tx_older.is_empty() {
            self.tx_older.retain(|(s, _)| *s > low);
            if self.tx_older.is_empty() {
                self.tx_older = Vec::new();
            }
        }
        self.tx_seq = seq;
        self.tx_before = self.last.map_or(i64::MIN, |(t, _)| t);
    }

    /// The newest time a read that sees commits up to `view` may return from this series:
    /// what the series held before the first later commit appended to it.
    fn visible_until(&self, view: u64) -> i64 {
        self.tx_older
            .iter()
            .copied()
            .chain(std::iter::once((self.tx_seq, self.tx_before)))
            .find(|(s, _)| *s > view)
            .map_or(i64::MAX, |(_, before)| before)
    }

    /// Time of the newest sample in the chunks.
    pub(super) fn last_time(&self) -> Option<i64> {
        self.last.map(|(t, _)| t)
    }

    /// The chunks wholly inside `[mint, maxt)` (for an aligned 2 h range: all its samples
    /// but the late ones).
    pub(super) fn chunks_within(&self, mint: i64, maxt: i64) -> Vec<BlockChunk> {
        let mut chunks: Vec<BlockChunk> =
            self.sealed.iter().filter(|k| k.min_t >= mint && k.max_t < maxt).cloned().collect();
        if !self.open.is_empty() && self.open.min_time() >= mint && self.open.max_time() < maxt {
            chunks.push(BlockChunk::sealed(&self.open));
        }
        chunks
    }

    /// No samples at all (after truncation: a series to collect).
    fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.open.is_empty() && self.ooo.is_empty()
    }

    fn bytes(&self) -> usize {
        let late = self.ooo.len() * std::mem::size_of::<Point>();
        self.sealed.iter().map(|c| c.data.len()).sum::<usize>() + self.open.size() + late
    }

    /// The chunks overlapping `[mint, maxt]` (the open one copied) and the late samples in it.
    fn snapshot(&self, mint: i64, maxt: i64) -> Snapshot {
        let mut chunks: Vec<Arc<[u8]>> =
            self.sealed.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt).map(|c| c.data.clone()).collect();
        if !self.open.is_empty() && self.open.max_time() >= mint && self.open.min_time() <= maxt {
            chunks.push(self.open.bytes().into());
        }
        let late = self.ooo.iter().filter(|p| p.t >= mint && p.t <= maxt).copied().collect();
        Snapshot { chunks, late }
    }

    /// Drops whole chunks that end before `min_t`, and late samples before it.
    fn truncate_before(&mut self, min_t: i64) {
        self.sealed.retain(|c| c.max_t >= min_t);
        if !self.open.is_empty() && self.open.max_time() < min_t {
            self.open = ChunkEncoder::new();
        }
        self.ooo.retain(|p| p.t >= min_t);
        if self.ooo.is_empty() {
            self.ooo = Vec::new();
        }
    }
}

/// A chunk handed to the block writer.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockChunk {
    pub min_t: i64,
    pub max_t: i64,
    pub data: Arc<[u8]>,
}

impl BlockChunk {
    /// A copy of an encoder's chunk.
    fn sealed(c: &ChunkEncoder) -> Self {
        BlockChunk { min_t: c.min_time(), max_t: c.max_time(), data: c.bytes().into() }
    }
}

/// Encodes time-sorted points into chunks cut as the head cuts them.
pub fn encode_chunks(points: &[Point]) -> Vec<BlockChunk> {
    let mut c = SeriesChunks::default();
    for p in points {
        c.push(p.t, p.v);
    }
    let mut out = c.sealed;
    if !c.open.is_empty() {
        out.push(BlockChunk::sealed(&c.open));
    }
    out
}

/// What a reader copies out of a series under its lock.
struct Snapshot {
    chunks: Vec<Arc<[u8]>>,
    late: Vec<Point>,
}

struct MemSeries {
    labels: PackedLabels,
    chunks: Mutex<SeriesChunks>,
}

fn decode_window(snap: &Snapshot, mint: i64, maxt: i64) -> Vec<Point> {
    let mut out = Vec::new();
    for c in &snap.chunks {
        // Chunks of the head are written by this process; a decoding failure would be a bug,
        // and the samples decoded up to it are still right.
        if let Ok(it) = ChunkIter::new(c) {
            out.extend(it.filter(|(t, _)| *t >= mint && *t <= maxt).map(|(t, v)| Point { t, v }));
        }
    }
    if snap.late.is_empty() { out } else { merge_points(&out, &snap.late) }
}

/// The newest sample in `[mint, maxt]`, decoding chunks from the newest back only until
/// one has a sample in the window (in-order chunks do not overlap in time).
fn decode_latest(snap: &Snapshot, mint: i64, maxt: i64) -> Vec<Point> {
    if !snap.late.is_empty() {
        let mut all = decode_window(snap, mint, maxt);
        return all.pop().into_iter().collect();
    }
    for c in snap.chunks.iter().rev() {
        if let Ok(it) = ChunkIter::new(c) {
            let newest = it.filter(|(t, _)| *t >= mint && *t <= maxt).last();
            if let Some((t, v)) = newest {
                return vec![Point { t, v }];
            }
        }
    }
    Vec::new()
}

/// Merges two time-sorted runs; on equal timestamps the first run wins.
pub(super) fn merge_points(a: &[Point], b: &[Point]) -> Vec<Point> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].t.cmp(&b[j].t) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[derive(Default)]
struct Index {
    /// Indexed by ref; refs are dense and never reused.
    series: Vec<Option<Arc<MemSeries>>>,
    by_hash: HashMap<u64, Vec<SeriesRef>>,
    postings: Postings,
}

impl Index {
    fn get(&self, r: SeriesRef) -> Option<&Arc<MemSeries>> {
        self.series.get(r as usize).and_then(Option::as_ref)
    }

    fn find(&self, hash: u64, eq: impl Fn(&PackedLabels) -> bool) -> Option<SeriesRef> {
        self.by_hash.get(&hash)?.iter().copied().find(|r| self.get(*r).is_some_and(|s| eq(&s.labels)))
    }

    fn insert(&mut self, r: SeriesRef, hash: u64, labels: Labels) {
        let i = r as usize;
        if self.series.len() <= i {
            self.series.resize(i + 1, None);
        }
        self.postings.add(r, &labels);
        let labels = PackedLabels::from(&labels);
        self.series[i] = Some(Arc::new(MemSeries { labels, chunks: Mutex::new(SeriesChunks::default()) }));
        self.by_hash.entry(hash).or_default().push(r);
    }

    /// Takes series out of the index (refs are not reused).
    fn remove(&mut self, refs: &[SeriesRef]) {
        let gone: Vec<Arc<MemSeries>> =
            refs.iter().filter_map(|&r| self.series.get_mut(r as usize).and_then(Option::take)).collect();
        for (r, s) in refs.iter().zip(&gone) {
            let hash = crate::model::stable_hash_pairs(s.labels.pairs());
            if let Some(list) = self.by_hash.get_mut(&hash) {
                list.retain(|x| x != r);
                if list.is_empty() {
                    self.by_hash.remove(&hash);
                }
            }
        }
        self.postings.remove(refs.iter().copied().zip(gone.iter().map(|s| s.labels.pairs())));
    }
}

/// Counters the head keeps about itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeadStats {
    pub series: u64,
    pub samples_appended: u64,
    pub out_of_order: u64,
    /// Samples accepted inside the out-of-order window.
    pub late_appended: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub chunk_bytes: u64,
    pub wal_failures: u64,
    /// Series garbage-collected after losing their last sample.
    pub series_removed: u64,
    pub checkpoints: u64,
    pub checkpoint_failures: u64,
}

/// The head's cardinality, as Prometheus's `/api/v1/status/tsdb` reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cardinality {
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Bytes of label values per label name (value length × series).
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// What opening a head on a directory found in its WAL.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OpenReport {
    pub wal: ReplayStats,
    pub series: u64,
    pub samples: u64,
    /// Samples in the WAL for refs no series record defined (should be 0).
    pub unknown_refs: u64,
    /// Checkpointed series whose chunks could not be restored (should be 0).
    pub bad_series: u64,
    pub duration_ms: u64,
}

/// The in-memory series store, optionally logged. Cheap to share: wrap it in an `Arc`.
pub struct Head {
    index: RwLock<Index>,
    /// Held for a whole commit: keeps the log in the order samples were applied.
    wal: Mutex<Option<Wal>>,
    samples_appended: AtomicU64,
    out_of_order: AtomicU64,
    late_appended: AtomicU64,
    wal_failures: AtomicU64,
    min_time: AtomicU64,
    max_time: AtomicU64,
    /// Width of the out-of-order window in ms; 0 rejects every late sample.
    ooo_window_ms: AtomicI64,
    /// Samples older than this belong to persisted blocks and are refused (out of bounds).
    min_valid_time: AtomicI64,
    wal_dir: Option<std::path::PathBuf>,
    /// One checkpoint at a time.
    checkpointing: Mutex<()>,
    /// Log bytes replayed after the checkpoint at open: they count towards the next one.
    wal_base: u64,
    /// Log bytes since open (plus `wal_base`), as of the last commit.
    wal_written: AtomicU64,
    /// `wal_written` when the last checkpoint switched segments.
    checkpoint_mark: AtomicU64,
    /// Size of the last checkpoint.
    checkpoint_bytes: AtomicU64,
    checkpoint_min_wal: AtomicU64,
    checkpoint_requested: std::sync::atomic::AtomicBool,
    checkpoint_notify: tokio::sync::Notify,
    /// Bumped whenever series are garbage-collected: refs cached before may be gone.
    generation: AtomicU64,
    series_removed: AtomicU64,
    /// The last commit whose samples are all applied (and logged): what new reads see.
    commit_seq: AtomicU64,
    /// Views of running reads (commit seq → number of reads).
    readers: Mutex<std::collections::BTreeMap<u64, usize>>,
    checkpoints: AtomicU64,
    checkpoint_failures: AtomicU64,
}

impl Head {
    /// A head without a log (tests, rule unit tests).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::empty(None))
    }

    fn empty(wal: Option<Wal>) -> Self {
        Head {
            index: RwLock::new(Index::default()),
            wal: Mutex::new(wal),
            samples_appended: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            late_appended: AtomicU64::new(0),
            wal_failures: AtomicU64::new(0),
            min_time: AtomicU64::new(i64::MAX as u64),
            max_time: AtomicU64::new(i64::MIN as u64),
            ooo_window_ms: AtomicI64::new(0),
            min_valid_time: AtomicI64::new(i64::MIN),
            wal_dir: None,
            checkpointing: Mutex::new(()),
            wal_base: 0,
            wal_written: AtomicU64::new(0),
            checkpoint_mark: AtomicU64::new(0),
            checkpoint_bytes: AtomicU64::new(0),
            checkpoint_min_wal: AtomicU64::new(persist::CHECKPOINT_MIN_WAL),
            checkpoint_requested: std::sync::atomic::AtomicBool::new(false),
            checkpoint_notify: tokio::sync::Notify::new(),
            generation: AtomicU64::new(0),
            series_removed: AtomicU64::new(0),
            commit_seq: AtomicU64::new(0),
            readers: Mutex::new(std::collections::BTreeMap::new()),
            checkpoints: AtomicU64::new(0),
            checkpoint_failures: AtomicU64::new(0),
        }
    }

    /// Refuses samples before `t` from now on (they are in blocks).
    pub fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::Relaxed);
    }

    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Relaxed)
    }

    /// Lowest and highest sample time in the head, `None` when empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (lo, hi) = (self.min_time.load(Ordering::Relaxed) as i64, self.max_time.load(Ordering::Relaxed) as i64);
        (lo <= hi).then_some((lo, hi))
    }

    /// Accepts samples up to `window` older than the newest sample of the head.
    pub fn set_out_of_order_window(&self, window: std::time::Duration) {
        self.ooo_window_ms.store(window.as_millis().min(i64::MAX as u128) as i64, Ordering::Relaxed);
    }

    /// The oldest timestamp a late sample may have now.
    fn ooo_floor(&self) -> i64 {
        let w = self.ooo_window_ms.load(Ordering::Relaxed);
        if w <= 0 {
            return i64::MAX;
        }
        (self.max_time.load(Ordering::Relaxed) as i64).saturating_sub(w)
    }

    /// Opens the head on `wal_dir`: replays the log (repairing a damaged tail) and starts
    /// writing a new segment.
    /// `min_valid_time` is the end of the newest block: older logged samples are skipped.
    pub fn open(
        wal_dir: &Path,
        ooo_window: std::time::Duration,
        min_valid_time: i64,
    ) -> Result<(Arc<Self>, OpenReport), WalError> {
        let started = Instant::now();
        let mut head = Self::empty(None);
        head.wal_dir = Some(wal_dir.to_path_buf());
        head.set_out_of_order_window(ooo_window);
        head.set_min_valid_time(min_valid_time);
        let mut report = OpenReport::default();
        let mut states_report = OpenReport::default();
        let wal_stats = wal::replay_all(wal_dir, |rec| match rec {
            Record::State(states) => head.restore_states(states, min_valid_time, &mut states_report),
            Record::Series(series) => {
                let mut idx = head.index.write();
                for (r, labels) in series {
                    let hash = labels.stable_hash();
                    if idx.get(r).is_none() {
                        idx.insert(r, hash, labels);
                        report.series += 1;
                    }
                }
            }
            Record::Samples(samples) => {
                let idx = head.index.read();
                let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0u64);
                // Every logged sample was accepted once, so no out-of-order floor applies: the
                // head's newest time here may be ahead of what the commit saw (a checkpoint
                // holds series copied after later commits).
                let floor = i64::MIN;
                for (r, t, v) in samples {
                    if t < min_valid_time {
                        continue;
                    }
                    let Some(s) = idx.get(r) else {
                        report.unknown_refs += 1;
                        continue;
                    };
                    let mut c = s.chunks.lock();
                    let verdict = c.verdict(t, v, floor);
                    if matches!(verdict, Verdict::Append | Verdict::Late) {
                        c.apply(verdict, t, v);
                        n += 1;
                        lo = lo.min(t);
                        hi = hi.max(t);
                    }
                }
                report.samples += n;
                if n > 0 {
                    fetch_min_i64(&head.min_time, lo);
                    fetch_max_i64(&head.max_time, hi);
                }
            }
        })?;
        report.series += states_report.series;
        report.samples += states_report.samples;
        report.bad_series = states_report.bad_series;
        head.wal_base = wal_stats.bytes - wal_stats.checkpoint_bytes;
        head.wal_written.store(head.wal_base, Ordering::Relaxed);
        head.checkpoint_bytes.store(wal_stats.checkpoint_bytes, Ordering::Relaxed);
        report.wal = wal_stats;
        *head.wal.lock() = Some(Wal::open(wal_dir)?);
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok((Arc::new(head), report))
    }

    pub fn appender(self: &Arc<Self>) -> HeadAppender {
        HeadAppender { head: self.clone(), pending: Vec::new() }
    }

    /// Resolves or creates the series for `labels`.
    pub fn get_or_create(&self, labels: &Labels) -> SeriesRef {
        let pairs = || labels.iter().map(|l| (l.name.as_str(), l.value.as_str()));
        self.resolve(labels.stable_hash(), |l| l.eq_pairs(pairs()), || labels.clone())
    }

    /// Resolves or creates the series for `pairs`, sorted by name, unique, with no empty
    /// values; allocates only when the series is new.
    pub fn get_or_create_pairs(&self, pairs: &[(&str, &str)]) -> SeriesRef {
        let hash = crate::model::stable_hash_pairs(pairs.iter().copied());
        self.resolve(hash, |l| l.eq_pairs(pairs.iter().copied()), || Labels::from_pairs(pairs.iter().copied()))
    }

    fn resolve(&self, hash: u64, eq: impl Fn(&PackedLabels) -> bool, make: impl FnOnce() -> Labels) -> SeriesRef {
        if let Some(r) = self.index.read().find(hash, &eq) {
            return r;
        }
        let mut idx = self.index.write();
        if let Some(r) = idx.find(hash, &eq) {
            return r;
        }
        let labels = make();
        let r = idx.series.len() as SeriesRef;
        // Logged while the index lock is held, so the definition precedes any sample of it in
        // the log. (Lock order: index, then WAL; commits take the WAL lock without the index.)
        if let Some(w) = self.wal.lock().as_mut()
            && let Err(e) = w.log_series(&[(r, &labels)])
        {
            self.wal_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "writing a series to the WAL failed");
        }
        idx.insert(r, hash, labels);
        r
    }

    pub fn stats(&self) -> HeadStats {
        let (series, chunk_bytes) = {
            let idx = self.index.read();
            let live: Vec<&Arc<MemSeries>> = idx.series.iter().flatten().collect();
            (live.len() as u64, live.iter().map(|s| s.chunks.lock().bytes() as u64).sum())
        };
        HeadStats {
            series,
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            late_appended: self.late_appended.load(Ordering::Relaxed),
            min_time: self.min_time.load(Ordering::Relaxed) as i64,
            max_time: self.max_time.load(Ordering::Relaxed) as i64,
            chunk_bytes,
            wal_failures: self.wal_failures.load(Ordering::Relaxed),
            series_removed: self.series_removed.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            checkpoint_failures: self.checkpoint_failures.load(Ordering::Relaxed),
        }
    }

    /// Cardinality figures for `/api/v1/status/tsdb`, each list the `limit` largest.
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        let idx = self.index.read();
        let mut by_metric = Vec::new();
        let mut values_by_name: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut by_pair = Vec::new();
        let mut pairs = 0u64;
        for (n, v, count) in idx.postings.pair_counts() {
            pairs += 1;
            if n == crate::model::METRIC_NAME {
                by_metric.push((v.to_string(), count as u64));
            }
            let e = values_by_name.entry(n).or_default();
            e.0 += 1;
            e.1 += (v.len() * count) as u64;
            by_pair.push((format!("{n}={v}"), count as u64));
        }
        let chunks = idx.series.iter().flatten().map(|s| {
            let c = s.chunks.lock();
            c.sealed.len() as u64 + u64::from(!c.open.is_empty())
        });
        let chunk_count = chunks.sum();
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let values_count = values_by_name.iter().map(|(n, (c, _))| (n.to_string(), *c)).collect();
        let memory = values_by_name.iter().map(|(n, (_, b))| (n.to_string(), *b)).collect();
        Cardinality {
            num_label_pairs: pairs,
            chunk_count,
            series_count_by_metric_name: top(by_metric),
            label_value_count_by_label_name: top(values_count),
            memory_in_bytes_by_label_name: top(memory),
            series_count_by_label_value_pair: top(by_pair),
        }
    }

    /// Drops whole chunks older than `min_t` (they are in a block, or past retention) and
    /// removes the series left without any sample; returns how many were removed.
    ///
    /// A removed series' ref is not reused. An appender that cached it (a scrape cache)
    /// sees [`Self::series_generation`] change and resolves its series again; a commit that
    /// raced the removal counts the sample as `unknown` rather than losing it silently.
    pub fn truncate_before(&self, min_t: i64) -> usize {
        let series: Vec<(SeriesRef, Arc<MemSeries>)> = {
            let idx = self.index.read();
            idx.series.iter().enumerate().filter_map(|(r, s)| Some((r as SeriesRef, s.clone()?))).collect()
        };
        let mut empty = Vec::new();
        for (r, s) in &series {
            let mut c = s.chunks.lock();
            c.truncate_before(min_t);
            if c.is_empty() {
                empty.push(*r);
            }
        }
        drop(series);
        self.min_time.fetch_max(min_t as u64, Ordering::Relaxed);
        if empty.is_empty() {
            return 0;
        }
        let mut idx = self.index.write();
        // A sample may have arrived since; only series still empty go, marked under their lock.
        empty.retain(|&r| {
            idx.get(r).is_some_and(|s| {
                let mut c = s.chunks.lock();
                c.removed = c.is_empty();
                c.removed
            })
        });
        idx.remove(&empty);
        drop(idx);
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.series_removed.fetch_add(empty.len() as u64, Ordering::Relaxed);
        tracing::info!(removed = empty.len(), before = min_t, "head series without samples removed");
        empty.len()
    }

    /// Starts a read that sees every commit finished now and nothing of later ones, in
    /// every series it touches (isolation as Prometheus's head has it: a query never sees
    /// half a scrape). Samples accepted as late (out-of-order window) are the exception:
    /// they are visible once applied.
    pub fn begin_read(&self) -> ReadView<'_> {
        let mut readers = self.readers.lock();
        let seq = self.commit_seq.load(Ordering::Acquire);
        *readers.entry(seq).or_insert(0) += 1;
        ReadView { head: self, seq }
    }

    /// Changes whenever series are removed from the head.
    pub fn series_generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Refuses samples before `t` from now on and waits for commits that may still have
    /// accepted such samples (they hold the WAL lock): after this, data before `t` is fixed.
    pub fn seal_before(&self, t: i64) {
        self.set_min_valid_time(t);
        drop(self.wal.lock());
    }

    /// Every series with data in `[mint, maxt)`, sorted by labels, with its chunks there: the
    /// content of a block. Chunks never cross a [`CHUNK_RANGE_MS`] boundary, so for an
    /// aligned range whole chunks are taken; late samples are merged in by re-encoding.
    pub fn block_data(&self, mint: i64, maxt: i64) -> Vec<(Labels, Vec<BlockChunk>)> {
        let series: Vec<Arc<MemSeries>> = self.index.read().series.iter().flatten().cloned().collect();
        let mut out = Vec::new();
        for s in series {
            let c = s.chunks.lock();
            let mut chunks = c.chunks_within(mint, maxt);
            let late: Vec<Point> = c.ooo.iter().filter(|p| p.t >= mint && p.t < maxt).copied().collect();
            drop(c);
            if !late.is_empty() {
                let snap = Snapshot { chunks: chunks.iter().map(|k| k.data.clone()).collect(), late };
                chunks = encode_chunks(&decode_window(&snap, mint, maxt - 1));
            }
            if !chunks.is_empty() {
                out.push((s.labels.unpack(), chunks));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Flushes and fsyncs the log (clean shutdown).
    pub fn close(&self) -> Result<(), WalError> {
        match self.wal.lock().as_mut() {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let idx = self.index.read();
        let filter = |s: &MemSeries| matchers.iter().all(|m| m.matches(s.labels.get_or_empty(&m.name)));
        match idx.postings.candidates(matchers) {
            Some(refs) => {
                // The postings answered every matcher that needs the label set; only those
                // that also match an absent label are checked one by one.
                let rest: Vec<&Matcher> = matchers.iter().filter(|m| m.matches_empty()).collect();
                let check = |s: &MemSeries| rest.iter().all(|m| m.matches(s.labels.get_or_empty(&m.name)));
                refs.into_iter().filter_map(|r| idx.get(r)).filter(|s| check(s)).cloned().collect()
            }
            None => idx.series.iter().flatten().filter(|s| filter(s)).cloned().collect(),
        }
    }

    fn commit_points(&self, pending: Vec<(SeriesRef, i64, f64)>) -> CommitResult {
        let mut res = CommitResult::default();
        if pending.is_empty() {
            return res;
        }
        let series: Vec<Option<Arc<MemSeries>>> = {
            let idx = self.index.read();
            pending.iter().map(|(r, _, _)| idx.get(*r).cloned()).collect()
        };
        let mut wal = self.wal.lock();
        let seq = self.commit_seq.load(Ordering::Relaxed) + 1;
        let low = self.readers.lock().keys().next().copied().unwrap_or(seq - 1).min(seq - 1);
        let floor = self.ooo_floor();
        let min_valid = self.min_valid_time();
        let mut accepted: Vec<(SeriesRef, i64, f64)> =
            Vec::with_capacity(if wal.is_some() { pending.len() } else { 0 });
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (s, (r, t, v)) in series.iter().zip(pending) {
            let Some(s) = s else {
                res.unknown += 1;
                continue;
            };
            if t < min_valid {
                res.out_of_bounds += 1;
                continue;
            }
            let mut c = s.chunks.lock();
            if c.removed {
                res.unknown += 1;
                continue;
            }
            let verdict = c.verdict(t, v, floor);
            match verdict {
                Verdict::Append | Verdict::Late => {
                    if verdict == Verdict::Append {
                        c.note_commit(seq, low);
                    }
                    c.apply(verdict, t, v);
                    drop(c);
                    if verdict == Verdict::Late {
                        res.late += 1;
                    }
                    if wal.is_some() {
                        accepted.push((r, t, v));
                    }
                    res.appended += 1;
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
                Verdict::Repeat => {}
                Verdict::OutOfOrder => res.out_of_order += 1,
                Verdict::Duplicate => res.duplicates += 1,
            }
        }
        if let Some(w) = wal.as_mut()
            && let Err(e) = w.log_samples(&accepted).and_then(|()| w.flush())
        {
            self.wal_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, samples = accepted.len(), "writing samples to the WAL failed");
            res.wal_error = Some(e.to_string());
        }
        if let Some(w) = wal.as_ref() {
            self.wal_written.store(self.wal_base + w.total_written(), Ordering::Relaxed);
        }
        self.commit_seq.store(seq, Ordering::Release);
        drop(wal);
        self.request_checkpoint_if_due();
        self.samples_appended.fetch_add(res.appended as u64, Ordering::Relaxed);
        self.out_of_order.fetch_add((res.out_of_order + res.duplicates + res.out_of_bounds) as u64, Ordering::Relaxed);
        self.late_appended.fetch_add(res.late as u64, Ordering::Relaxed);
        if res.appended > 0 {
            fetch_min_i64(&self.min_time, lo);
            fetch_max_i64(&self.max_time, hi);
        }
        res
    }
}

fn fetch_min_i64(a: &AtomicU64, v: i64) {
    let mut cur = a.load(Ordering::Relaxed);
    while v < cur as i64 {
        match a.compare_exchange_weak(cur, v as u64, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
}

fn fetch_max_i64(a: &AtomicU64, v: i64) {
    let mut cur = a.load(Ordering::Relaxed);
    while v > cur as i64 {
        match a.compare_exchange_weak(cur, v as u64, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
}

/// A running read's view of the head: the commits it sees. Dropping it ends the read.
pub struct ReadView<'a> {
    head: &'a Head,
    seq: u64,
}

impl ReadView<'_> {
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        self.select_window(matchers, mint, maxt, false)
    }

    /// [`Self::select`], or with `latest_only` just each series' newest sample in the window.
    pub fn select_window(&self, matchers: &[Matcher], mint: i64, maxt: i64, latest_only: bool) -> Vec<SeriesData> {
        let mut out: Vec<SeriesData> = self
            .head
            .matching(matchers)
            .into_iter()
            .filter_map(|s| {
                let (chunks, maxt) = {
                    let c = s.chunks.lock();
                    let maxt = maxt.min(c.visible_until(self.seq));
                    (c.snapshot(mint, maxt), maxt)
                };
                let points =
                    if latest_only { decode_latest(&chunks, mint, maxt) } else { decode_window(&chunks, mint, maxt) };
                (!points.is_empty()).then(|| SeriesData { labels: s.labels.unpack(), points })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl Drop for ReadView<'_> {
    fn drop(&mut self) {
        let mut readers = self.head.readers.lock();
        if let Some(n) = readers.get_mut(&self.seq) {
            *n -= 1;
            if *n == 0 {
                readers.remove(&self.seq);
            }
        }
    }
}

impl Querier for Head {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        self.begin_read().select(matchers, mint, maxt)
    }

    fn select_many(&self, requests: &[SelectRequest]) -> Vec<Vec<SeriesData>> {
        let view = self.begin_read();
        requests.iter().map(|r| view.select_window(&r.matchers, r.mint, r.maxt, r.latest_only)).collect()
    }

    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let mut out: Vec<Labels> = self
            .matching(matchers)
            .into_iter()
            .filter(|s| {
                let chunks = s.chunks.lock().snapshot(mint, maxt);
                !decode_window(&chunks, mint, maxt).is_empty()
            })
            .map(|s| s.labels.unpack())
            .collect();
        out.sort();
        out
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        if matchers.is_empty() {
            let idx = self.index.read();
            let mut v: Vec<String> = idx.postings.label_names().cloned().collect();
            v.sort();
            return v;
        }
        let set: BTreeSet<String> = self
            .series(matchers, mint, maxt)
            .iter()
            .flat_map(|l| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
            .collect();
        set.into_iter().collect()
    }

    fn label_values(&self, name: &str, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        if matchers.is_empty() {
            let idx = self.index.read();
            let mut v: Vec<String> = idx.postings.label_values(name).cloned().collect();
            v.sort();
            return v;
        }
        let set: BTreeSet<String> =
            self.series(matchers, mint, maxt).iter().filter_map(|l| l.get(name).map(str::to_string)).collect();
        set.into_iter().collect()
    }
}

/// A batch of writes to the head, applied by `commit`.
pub struct HeadAppender {
    head: Arc<Head>,
    pending: Vec<(SeriesRef, i64, f64)>,
}

impl Appender for HeadAppender {
    fn series_ref(&mut self, labels: &Labels) -> SeriesRef {
        self.head.get_or_create(labels)
    }

    fn append(&mut self, series: SeriesRef, t: i64, v: f64) {
        self.pending.push((series, t, v));
    }

    fn series_generation(&self) -> u64 {
        self.head.series_generation()
    }

    fn commit(self) -> CommitResult {
        self.head.commit_points(self.pending)
    }

    fn rollback(self) {}
}

mod persist;
pub use persist::CHECKPOINT_MIN_WAL;
#[cfg(test)]
mod tests;
