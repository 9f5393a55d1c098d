//! The database: the head plus the persisted blocks of one data directory, and the
//! maintenance that moves data between them — head compaction into 2 h blocks, merging of
//! blocks into larger ones, retention by time and size, quarantine of damaged blocks.
//!
//! Layout of the data directory: `wal/` (the head's log and checkpoints), one directory
//! per block named by its id, `*.tmp` for a block being written (removed on start), and
//! `quarantine/` for blocks that failed their checks. Maintenance takes an explicit time so
//! tests drive it over simulated days; `vigie run` calls [`Db::maintain`] every minute.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::block::writer::write_block;
use super::block::{Block, BlockError, BlockMeta, new_ulid};
use super::head::ReadView;
use super::head::merge_points;
use super::wal::WalError;
use super::{BlockChunk, CHUNK_RANGE_MS, Head, Matcher, OpenReport, Querier, SelectRequest, SeriesData, encode_chunks};
use crate::model::Labels;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io { path: path.to_path_buf(), source }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Blocks whose end is this far behind the newest data are deleted (0: keep).
    pub retention: Duration,
    /// Blocks (oldest first) are deleted while blocks plus WAL exceed this (0: no limit).
    pub retention_bytes: u64,
    pub out_of_order_window: Duration,
    /// Log growth after which the head is checkpointed (at least half the last checkpoint).
    pub wal_checkpoint_size: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            retention: Duration::from_secs(15 * 24 * 3600),
            retention_bytes: 0,
            out_of_order_window: Duration::ZERO,
            wal_checkpoint_size: super::head::CHECKPOINT_MIN_WAL,
        }
    }
}

/// What [`Db::maintain`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub head_blocks: Vec<String>,
    pub merged_blocks: Vec<String>,
    pub deleted_blocks: Vec<String>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DbStats {
    pub blocks: u64,
    pub blocks_bytes: u64,
    pub compactions: u64,
    pub compaction_failures: u64,
    pub quarantined: u64,
    pub retention_deletions: u64,
}

pub struct Db {
    dir: PathBuf,
    head: Arc<Head>,
    /// Sorted by min time. Replaced as a whole: a query clones the list and reads a fixed set.
    blocks: RwLock<Vec<Arc<Block>>>,
    opts: DbOptions,
    maintenance: Mutex<()>,
    compactions: AtomicU64,
    compaction_failures: AtomicU64,
    quarantined: AtomicU64,
    retention_deletions: AtomicU64,
}

/// Block ranges of each compaction level: 2 h, then ×3 (6 h, 18 h, 54 h, …) up to 31 d.
fn block_ranges(retention: Duration) -> Vec<i64> {
    let limit = if retention.is_zero() {
        31 * 24 * 3600 * 1000
    } else {
        (retention.as_millis() as i64 / 10).clamp(CHUNK_RANGE_MS, 31 * 24 * 3600 * 1000)
    };
    let mut out = vec![CHUNK_RANGE_MS];
    while out.last().unwrap() * 3 <= limit {
        out.push(out.last().unwrap() * 3);
    }
    out
}

fn is_block_dir(name: &str) -> bool {
    name.len() == 26 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Db {
    pub fn open(dir: &Path, opts: DbOptions) -> Result<(Arc<Db>, OpenReport), DbError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let quarantined = AtomicU64::new(0);
        let mut blocks = Vec::new();
        let mut entries: Vec<PathBuf> = fs::read_dir(dir).map_err(io_err(dir))?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if name.ends_with(".tmp") {
                tracing::info!(dir = %p.display(), "removing a block left half-written");
                fs::remove_dir_all(&p).map_err(io_err(&p))?;
            } else if is_block_dir(&name) && p.is_dir() {
                match Block::open(&p) {
                    Ok(b) => blocks.push(Arc::new(b)),
                    Err(e) => quarantine_dir(dir, &p, &e, &quarantined),
                }
            }
        }
        // A merge that crashed after writing its result but before deleting its parents.
        let parents: std::collections::HashSet<String> =
            blocks.iter().flat_map(|b| b.meta.compaction.parents.clone()).collect();
        let (stale, mut blocks): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|b| parents.contains(b.id()));
        for b in stale {
            tracing::info!(block = b.id(), "removing a block already merged into another");
            fs::remove_dir_all(&b.dir).map_err(io_err(&b.dir))?;
        }
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        let min_valid = blocks.iter().map(|b| b.meta.max_time).max().unwrap_or(i64::MIN);
        let (head, report) = Head::open(&dir.join("wal"), opts.out_of_order_window, min_valid)?;
        head.set_checkpoint_size(opts.wal_checkpoint_size);
        let mut db = Db::empty(dir, opts, head);
        db.blocks = RwLock::new(blocks);
        db.quarantined = quarantined;
        tracing::info!(blocks = db.blocks.read().len(), "blocks loaded");
        Ok((Arc::new(db), report))
    }

    fn empty(dir: &Path, opts: DbOptions, head: Arc<Head>) -> Db {
        Db {
            dir: dir.to_path_buf(),
            head,
            blocks: RwLock::new(Vec::new()),
            opts,
            maintenance: Mutex::new(()),
            compactions: AtomicU64::new(0),
            compaction_failures: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            retention_deletions: AtomicU64::new(0),
        }
    }

    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    pub fn stats(&self) -> DbStats {
        let blocks = self.blocks.read();
        DbStats {
            blocks: blocks.len() as u64,
            blocks_bytes: blocks.iter().map(|b| b.meta.stats.bytes).sum(),
            compactions: self.compactions.load(Ordering::Relaxed),
            compaction_failures: self.compaction_failures.load(Ordering::Relaxed),
            quarantined: self.quarantined.load(Ordering::Relaxed),
            retention_deletions: self.retention_deletions.load(Ordering::Relaxed),
        }
    }

    /// Takes a block that failed a read out of service.
    fn quarantine(&self, id: &str, e: &BlockError) {
        let removed = {
            let mut blocks = self.blocks.write();
            let i = blocks.iter().position(|b| b.id() == id);
            i.map(|i| blocks.remove(i))
        };
        if let Some(b) = removed {
            quarantine_dir(&self.dir, &b.dir, e, &self.quarantined);
        }
    }

    /// Head compaction, block merging and retention, as due at `now_ms`.
    pub fn maintain(&self, now_ms: i64) -> Result<MaintenanceReport, DbError> {
        let _guard = self.maintenance.lock();
        let mut report = MaintenanceReport::default();
        let started = Instant::now();
        let r = self.compact_head(now_ms, &mut report).and_then(|()| self.merge_blocks(now_ms, &mut report));
        if let Err(e) = &r {
            self.compaction_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "compaction failed; will retry");
        }
        self.apply_retention(&mut report)?;
        if report != MaintenanceReport::default() {
            tracing::info!(
                head_blocks = report.head_blocks.len(),
                merged = report.merged_blocks.len(),
                deleted = report.deleted_blocks.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "storage maintenance"
            );
        }
        r.map(|()| report)
    }

    /// Moves the oldest 2 h of the head into a block while the head spans more than 3 h.
    fn compact_head(&self, now_ms: i64, report: &mut MaintenanceReport) -> Result<(), DbError> {
        loop {
            let Some((lo, hi)) = self.head.time_range() else { return Ok(()) };
            let lo = lo.max(self.head.min_valid_time());
            if hi - lo <= CHUNK_RANGE_MS / 2 * 3 {
                return Ok(());
            }
            let mint = lo.div_euclid(CHUNK_RANGE_MS) * CHUNK_RANGE_MS;
            let maxt = mint + CHUNK_RANGE_MS;
            let started = Instant::now();
            self.head.seal_before(maxt);
            let data = self.head.block_data(mint, maxt);
            if !data.is_empty() {
                let meta = BlockMeta::new(new_ulid(now_ms), mint, maxt);
                let (path, meta) = write_block(&self.dir, meta, &data)?;
                let block = Arc::new(Block::open(&path)?);
                self.add_block(block);
                self.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    block = %meta.ulid, min_time = mint, max_time = maxt, series = meta.stats.num_series,
                    samples = meta.stats.num_samples, bytes = meta.stats.bytes,
                    duration_ms = started.elapsed().as_millis() as u64, "head compacted into a block"
                );
                report.head_blocks.push(meta.ulid);
            }
            self.head.truncate_before(maxt);
            self.head.checkpoint_wal()?;
        }
    }

    fn add_block(&self, b: Arc<Block>) {
        let mut blocks = self.blocks.write();
        blocks.push(b);
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    }

    /// Merges the blocks of each finished window of the next level into one block.
    fn merge_blocks(&self, now_ms: i64, report: &mut MaintenanceReport) -> Result<(), DbError> {
        let ranges = block_ranges(self.opts.retention);
        for range in ranges.iter().skip(1) {
            loop {
                let blocks = self.blocks();
                let fence = self.head.min_valid_time();
                let mut windows: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
                for b in &blocks {
                    let w = b.meta.min_time.div_euclid(*range);
                    if (b.meta.max_time - 1).div_euclid(*range) == w && b.meta.max_time - b.meta.min_time < *range {
                        windows.entry(w).or_default().push(b.clone());
                    }
                }
                // A window is merged once it is over: no later head block can still fall in it.
                let Some(group) =
                    windows.into_iter().find(|(w, g)| g.len() > 1 && (w + 1) * range <= fence).map(|x| x.1)
                else {
                    break;
                };
                let id = self.merge(&group, now_ms)?;
                report.merged_blocks.push(id);
            }
        }
        Ok(())
    }

    fn merge(&self, group: &[Arc<Block>], now_ms: i64) -> Result<String, DbError> {
        let started = Instant::now();
        let mut all: BTreeMap<Labels, Vec<BlockChunk>> = BTreeMap::new();
        let mut overlapping = false;
        for b in group {
            for (labels, chunks) in b.all_chunks()? {
                let e = all.entry(labels).or_default();
                overlapping |= e.last().zip(chunks.first()).is_some_and(|(l, f)| f.min_t <= l.max_t);
                e.extend(chunks);
            }
        }
        let data: Vec<(Labels, Vec<BlockChunk>)> = if overlapping {
            all.into_iter().map(|(l, c)| (l, rechunk(c))).collect()
        } else {
            all.into_iter().collect()
        };
        let mint = group.iter().map(|b| b.meta.min_time).min().unwrap_or(0);
        let maxt = group.iter().map(|b| b.meta.max_time).max().unwrap_or(0);
        let mut meta = BlockMeta::new(new_ulid(now_ms), mint, maxt);
        meta.compaction.level = group.iter().map(|b| b.meta.compaction.level).max().unwrap_or(1) + 1;
        meta.compaction.sources = group.iter().flat_map(|b| b.meta.compaction.sources.clone()).collect();
        meta.compaction.sources.sort();
        meta.compaction.parents = group.iter().map(|b| b.id().to_string()).collect();
        let (path, meta) = write_block(&self.dir, meta, &data)?;
        let merged = Arc::new(Block::open(&path)?);
        {
            let mut blocks = self.blocks.write();
            blocks.retain(|b| !meta.compaction.parents.iter().any(|p| p == b.id()));
            blocks.push(merged);
            blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        }
        for b in group {
            fs::remove_dir_all(&b.dir).map_err(io_err(&b.dir))?;
        }
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            block = %meta.ulid, level = meta.compaction.level, parents = group.len(),
            series = meta.stats.num_series, bytes = meta.stats.bytes,
            duration_ms = started.elapsed().as_millis() as u64, "blocks merged"
        );
        Ok(meta.ulid)
    }

    /// Deletes whole blocks past the time retention (relative to the newest data, as
    /// Prometheus) and, oldest first, while over the size limit.
    fn apply_retention(&self, report: &mut MaintenanceReport) -> Result<(), DbError> {
        let blocks = self.blocks();
        let newest = blocks.iter().map(|b| b.meta.max_time).chain(self.head.time_range().map(|r| r.1)).max();
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if let Some(newest) = newest
            && !self.opts.retention.is_zero()
        {
            let cutoff = newest - self.opts.retention.as_millis() as i64;
            doomed.extend(blocks.iter().filter(|b| b.meta.max_time <= cutoff).cloned());
        }
        if self.opts.retention_bytes > 0 {
            let mut total: u64 = dir_size(&self.dir.join("wal"))
                + blocks
                    .iter()
                    .filter(|b| !doomed.iter().any(|d| d.id() == b.id()))
                    .map(|b| b.meta.stats.bytes)
                    .sum::<u64>();
            for b in &blocks {
                if total <= self.opts.retention_bytes {
                    break;
                }
                if !doomed.iter().any(|d| d.id() == b.id()) {
                    total -= b.meta.stats.bytes;
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.blocks.write().retain(|b| !doomed.iter().any(|d| d.id() == b.id()));
        for b in doomed {
            fs::remove_dir_all(&b.dir).map_err(io_err(&b.dir))?;
            self.retention_deletions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                block = b.id(),
                min_time = b.meta.min_time,
                max_time = b.meta.max_time,
                "block deleted by retention"
            );
            report.deleted_blocks.push(b.id().to_string());
        }
        Ok(())
    }

    /// Writes a consistent copy of the database to `snapshots/NAME/` — hard links to the
    /// blocks, and unless `skip_head` the head's samples as one more block — and returns NAME.
    pub fn snapshot(&self, now_ms: i64, skip_head: bool) -> Result<String, DbError> {
        let _guard = self.maintenance.lock(); // no block is merged or deleted meanwhile
        // Prometheus's naming: `20171210T211224Z-<random>`.
        let stamp: String =
            crate::api::time::format_rfc3339(now_ms)[..19].chars().filter(char::is_ascii_alphanumeric).collect();
        let name = format!("{stamp}Z-{}", new_ulid(now_ms)[16..].to_ascii_lowercase());
        let target = self.dir.join("snapshots").join(&name);
        fs::create_dir_all(&target).map_err(io_err(&target))?;
        for b in self.blocks() {
            let to = target.join(b.id());
            fs::create_dir_all(&to).map_err(io_err(&to))?;
            for f in ["meta.json", "index", "chunks"] {
                let (src, dst) = (b.dir.join(f), to.join(f));
                fs::hard_link(&src, &dst).or_else(|_| fs::copy(&src, &dst).map(|_| ())).map_err(io_err(&dst))?;
            }
        }
        if !skip_head && let Some((lo, hi)) = self.head.time_range() {
            let lo = lo.max(self.head.min_valid_time());
            let data = self.head.block_data(lo, hi + 1);
            if !data.is_empty() {
                write_block(&target, BlockMeta::new(new_ulid(now_ms), lo, hi + 1), &data)?;
            }
        }
        tracing::info!(snapshot = %target.display(), "snapshot written");
        Ok(name)
    }

    pub fn close(&self) -> Result<(), DbError> {
        Ok(self.head.close()?)
    }

    /// Every source that may hold samples in `[mint, maxt]`, merged per series.
    ///
    /// The head is read before the block list is taken: head compaction adds a block
    /// before it drops those samples from the head, so a read in between sees them twice
    /// (merged as one) rather than not at all.
    fn select_all(
        &self,
        view: &ReadView,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        latest_only: bool,
    ) -> Vec<SeriesData> {
        let head = view.select_window(matchers, mint, maxt, latest_only);
        let blocks: Vec<Arc<Block>> =
            self.blocks().into_iter().filter(|b| b.meta.max_time > mint && b.meta.min_time <= maxt).collect();
        if blocks.is_empty() {
            return head;
        }
        let mut merged: BTreeMap<Labels, Vec<super::Point>> = BTreeMap::new();
        let mut add = |s: SeriesData| match merged.get_mut(&s.labels) {
            Some(p) => *p = merge_points(p, &s.points),
            None => {
                merged.insert(s.labels, s.points);
            }
        };
        for b in &blocks {
            match b.select(matchers, mint, maxt) {
                Ok(series) => series.into_iter().for_each(&mut add),
                Err(e) => self.quarantine(b.id(), &e),
            }
        }
        head.into_iter().for_each(add);
        let mut out: Vec<SeriesData> =
            merged.into_iter().map(|(labels, points)| SeriesData { labels, points }).collect();
        if latest_only {
            super::keep_latest(&mut out);
        }
        out
    }
}

/// Moves a damaged block to `quarantine/` (kept for inspection, never read again).
fn quarantine_dir(data_dir: &Path, p: &Path, e: &BlockError, count: &AtomicU64) {
    let q = data_dir.join("quarantine");
    let target = q.join(p.file_name().unwrap_or_default());
    let moved = fs::create_dir_all(&q).and_then(|()| fs::rename(p, &target));
    count.fetch_add(1, Ordering::Relaxed);
    match moved {
        Ok(()) => tracing::error!(block = %p.display(), error = %e, moved_to = %target.display(), "block quarantined"),
        Err(me) => {
            tracing::error!(block = %p.display(), error = %e, move_error = %me, "block unreadable; could not move it")
        }
    }
}

/// Re-encodes chunks that overlap in time (merged out-of-order or backfilled data).
fn rechunk(chunks: Vec<BlockChunk>) -> Vec<BlockChunk> {
    let mut points = Vec::new();
    for c in &chunks {
        let Ok(it) = super::chunk::ChunkIter::new(&c.data) else { continue };
        let run: Vec<super::Point> = it.map(|(t, v)| super::Point { t, v }).collect();
        points = merge_points(&points, &run);
    }
    encode_chunks(&points)
}

impl Querier for Db {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        self.select_all(&self.head.begin_read(), matchers, mint, maxt, false)
    }

    fn select_many(&self, requests: &[SelectRequest]) -> Vec<Vec<SeriesData>> {
        let view = self.head.begin_read();
        requests.iter().map(|r| self.select_all(&view, &r.matchers, r.mint, r.maxt, r.latest_only)).collect()
    }

    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        self.select(matchers, mint, maxt).into_iter().map(|s| s.labels).collect()
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        self.label_union(self.head.label_names(matchers, mint, maxt), matchers, mint, maxt, Block::label_names, |l| {
            l.iter().map(|l| l.name.clone()).collect()
        })
    }

    fn label_values(&self, name: &str, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        self.label_union(
            self.head.label_values(name, matchers, mint, maxt),
            matchers,
            mint,
            maxt,
            |b| b.label_values(name),
            |l| l.get(name).map(str::to_string).into_iter().collect(),
        )
    }
}

impl Db {
    /// The head's answer plus each overlapping block's: from the block's index when there are
    /// no matchers, else from the labels of its matching series.
    fn label_union(
        &self,
        head: Vec<String>,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        from_index: impl Fn(&Block) -> Vec<String>,
        from_labels: impl Fn(&Labels) -> Vec<String>,
    ) -> Vec<String> {
        let mut set: std::collections::BTreeSet<String> = head.into_iter().collect();
        for b in self.blocks().iter().filter(|b| b.meta.max_time > mint && b.meta.min_time <= maxt) {
            if matchers.is_empty() {
                set.extend(from_index(b));
            } else if let Ok(series) = b.select(matchers, mint, maxt) {
                set.extend(series.iter().flat_map(|s| from_labels(&s.labels)));
            }
        }
        set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
