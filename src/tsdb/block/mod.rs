//! Immutable on-disk blocks: every sample of a time range `[min_time, max_time)`, written
//! once by [`writer::write_block`] (from the head, or by compacting smaller blocks) and read
//! through memory maps.
//!
//! A block is a directory named by its id with `meta.json` (range, counts, compaction
//! lineage), `chunks` (each series' samples as column [`segment`]s, packed into compressed
//! [`frame`]s with a CRC32C each) and `index` (symbol table, series with their segment
//! references, postings per label pair, checksummed as a whole). Opening checks the index
//! checksum; a frame is checked when read. A block that fails either is reported as
//! [`BlockError::Corrupt`] so the database can quarantine it.

pub mod frame;
pub mod segment;
pub mod writer;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use frame::FrameCache;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::encode_chunks;
use super::encoding::{DecodeError, Decoder};
use super::index::{intersect, merge_union};
use super::{BlockChunk, MatchKind, Matcher, Point, SeriesData};
use crate::model::{Label, Labels};

/// Format 2: frames of column segments. Format 1 (one XOR chunk per record) was never
/// released and is not read.
pub const CHUNKS_MAGIC: [u8; 8] = *b"VGCK\x02\0\0\0";
pub const INDEX_MAGIC: [u8; 8] = *b"VGIX\x01\0\0\0";
const TOC_LEN: usize = 6 * 8 + 4;

/// Where a segment of a series lies: `(min_t, max_t, segment ref)` (see [`frame::segment_ref`]).
pub(crate) type ChunkMeta = (i64, i64, u64);

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("block {block}: corrupt {file}: {reason}")]
    Corrupt { block: String, file: &'static str, reason: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlockError + '_ {
    move |source| BlockError::Io { path: path.to_path_buf(), source }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    /// Size of the block's files.
    #[serde(default)]
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds.
    pub sources: Vec<String>,
    /// Ids of the blocks merged into this one (deleted once it is written).
    #[serde(default)]
    pub parents: Vec<String>,
}

/// `meta.json`, in Prometheus's field names where they mean the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: Compaction,
    pub version: u32,
}

impl BlockMeta {
    pub fn new(ulid: String, min_time: i64, max_time: i64) -> Self {
        BlockMeta {
            compaction: Compaction { level: 1, sources: vec![ulid.clone()], parents: vec![] },
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            version: 1,
        }
    }
}

/// A sortable, unique block id: 48 bits of milliseconds then 80 bits from a hash of the
/// time, process and a counter, in Crockford base32 (the ULID layout).
pub fn new_ulid(now_ms: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = [now_ms as u64, std::process::id() as u64, n, std::time::Instant::now().elapsed().as_nanos() as u64];
    let bytes: Vec<u8> = seed.iter().flat_map(|v| v.to_le_bytes()).collect();
    let rand = xxhash_rust::xxh3::xxh3_128(&bytes) & ((1u128 << 80) - 1);
    let v: u128 = ((now_ms as u128 & ((1 << 48) - 1)) << 80) | rand;
    (0..26).rev().map(|i| ALPHABET[((v >> (i * 5)) & 31) as usize] as char).collect()
}

/// An open block.
pub struct Block {
    pub dir: PathBuf,
    pub meta: BlockMeta,
    index: Mmap,
    chunks: Mmap,
    symbols: Vec<Box<str>>,
    /// name symbol → (value symbol, postings offset), sorted by value.
    postings: HashMap<u32, Vec<(u32, u64)>>,
    series_table: usize,
    num_series: usize,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("dir", &self.dir).field("meta", &self.meta).finish()
    }
}

fn map(path: &Path) -> Result<Mmap, BlockError> {
    let f = File::open(path).map_err(io_err(path))?;
    // SAFETY: block files are immutable once renamed into place; vigie never writes them
    // again, and deletes a block only after no reader holds it (it is dropped with its Arc).
    unsafe { Mmap::map(&f) }.map_err(io_err(path))
}

impl Block {
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let id = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let corrupt = |file: &'static str, reason: String| BlockError::Corrupt { block: id.clone(), file, reason };
        let meta_path = dir.join("meta.json");
        let meta_raw = std::fs::read(&meta_path).map_err(io_err(&meta_path))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_raw).map_err(|e| corrupt("meta.json", e.to_string()))?;
        let index = map(&dir.join("index"))?;
        let chunks = map(&dir.join("chunks"))?;
        match chunks.get(..8) {
            Some(m) if m == CHUNKS_MAGIC => {}
            Some(m) if m[..4] == CHUNKS_MAGIC[..4] => {
                return Err(corrupt(
                    "chunks",
                    format!("format {} is not supported (this vigie reads {})", m[4], CHUNKS_MAGIC[4]),
                ));
            }
            _ => return Err(corrupt("chunks", "bad magic number".into())),
        }
        if index.len() < 8 + TOC_LEN || index[..8] != INDEX_MAGIC {
            return Err(corrupt("index", "bad magic number or too short".into()));
        }
        let body = &index[..index.len() - 4];
        let want = u32::from_le_bytes(index[index.len() - 4..].try_into().expect("4 bytes"));
        if crc32c::crc32c(body) != want {
            return Err(corrupt("index", "checksum mismatch".into()));
        }
        let parsed = parse_index(&index).map_err(|e| corrupt("index", e.0))?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            symbols: parsed.symbols,
            postings: parsed.postings,
            series_table: parsed.series_table,
            num_series: parsed.num_series,
            index,
            chunks,
        })
    }

    pub fn id(&self) -> &str {
        &self.meta.ulid
    }

    fn corrupt(&self, file: &'static str, reason: String) -> BlockError {
        BlockError::Corrupt { block: self.meta.ulid.clone(), file, reason }
    }

    fn symbol(&self, i: u64) -> Result<&str, DecodeError> {
        self.symbols.get(i as usize).map(|s| &**s).ok_or_else(|| DecodeError(format!("unknown symbol {i}")))
    }

    fn sym_of(&self, s: &str) -> Option<u32> {
        self.symbols.binary_search_by(|x| (**x).cmp(s)).ok().map(|i| i as u32)
    }

    fn postings_at(&self, off: u64) -> Result<Vec<u64>, DecodeError> {
        let mut d = Decoder::at(&self.index, off as usize);
        let n = d.uvarint()? as usize;
        let mut out = Vec::with_capacity(n.min(self.num_series));
        let mut id = 0;
        for _ in 0..n {
            id += d.uvarint()?;
            out.push(id);
        }
        Ok(out)
    }

    /// Series ids that can match (as the head's `Postings::candidates`); `None`: all.
    fn candidates(&self, matchers: &[Matcher]) -> Result<Option<Vec<u64>>, DecodeError> {
        let mut lists: Vec<Vec<u64>> = Vec::new();
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = self.sym_of(&m.name).and_then(|n| self.postings.get(&n)) else {
                return Ok(Some(Vec::new()));
            };
            let list = match &m.kind {
                MatchKind::Equal(v) => match self.sym_of(v).and_then(|s| values.binary_search_by_key(&s, |e| e.0).ok())
                {
                    Some(i) => self.postings_at(values[i].1)?,
                    None => Vec::new(),
                },
                _ => {
                    let mut parts = Vec::new();
                    for (v, off) in values {
                        if m.matches(self.symbol(*v as u64)?) {
                            parts.push(self.postings_at(*off)?);
                        }
                    }
                    merge_union(&parts.iter().collect::<Vec<_>>())
                }
            };
            if list.is_empty() {
                return Ok(Some(Vec::new()));
            }
            lists.push(list);
        }
        if lists.is_empty() {
            return Ok(None);
        }
        lists.sort_by_key(Vec::len);
        let mut acc = lists.swap_remove(0);
        for l in &lists {
            acc = intersect(&acc, l);
        }
        Ok(Some(acc))
    }

    /// The labels and chunk metas `(min_t, max_t, ref)` of series `id`.
    fn series(&self, id: u64) -> Result<(Labels, Vec<ChunkMeta>), DecodeError> {
        let mut t = Decoder::at(&self.index, self.series_table + id as usize * 8);
        let off = t.u64_le()?;
        let mut d = Decoder::at(&self.index, off as usize);
        let n = d.uvarint()? as usize;
        let mut labels = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = self.symbol(d.uvarint()?)?.to_string();
            let value = self.symbol(d.uvarint()?)?.to_string();
            labels.push(Label { name, value });
        }
        let k = d.uvarint()? as usize;
        let mut chunks = Vec::with_capacity(k.min(1 << 16));
        let (mut prev_max, mut prev_ref) = (0i64, 0u64);
        for i in 0..k {
            let d_min = d.varint()?;
            let min_t = if i == 0 { d_min } else { prev_max + d_min };
            let max_t = min_t + d.uvarint()? as i64;
            let r = if i == 0 { d.uvarint()? } else { prev_ref + d.uvarint()? };
            chunks.push((min_t, max_t, r));
            prev_max = max_t;
            prev_ref = r;
        }
        Ok((Labels::from_sorted(labels), chunks))
    }

    /// Appends the samples of the segment at `r` to `out`, its frame checksum verified.
    fn read_samples(&self, r: u64, cache: &mut FrameCache, out: &mut Vec<Point>) -> Result<(), BlockError> {
        let (off, pos) = frame::split_ref(r);
        let bad = |e: DecodeError| self.corrupt("chunks", format!("segment {off}:{pos}: {e}"));
        frame::segment_at(cache.get(&self.chunks, off).map_err(bad)?, pos, out).map_err(bad)
    }

    fn for_each_series(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(Labels, Vec<ChunkMeta>) -> Result<(), BlockError>,
    ) -> Result<(), BlockError> {
        let idx_err = |e: DecodeError| self.corrupt("index", e.0);
        let ids = match self.candidates(matchers).map_err(idx_err)? {
            Some(ids) => ids,
            None => (0..self.num_series as u64).collect(),
        };
        for id in ids {
            let (labels, chunks) = self.series(id).map_err(idx_err)?;
            if matchers.iter().all(|m| m.matches(labels.get_or_empty(&m.name))) {
                f(labels, chunks)?;
            }
        }
        Ok(())
    }

    /// Series matching `matchers` with their samples in `[mint, maxt]`, sorted by labels.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesData>, BlockError> {
        let mut out = Vec::new();
        if maxt < self.meta.min_time || mint >= self.meta.max_time {
            return Ok(out);
        }
        let mut cache = FrameCache::default();
        let mut buf = Vec::new();
        self.for_each_series(matchers, |labels, chunks| {
            let mut points = Vec::new();
            for (lo, hi, r) in chunks {
                if hi < mint || lo > maxt {
                    continue;
                }
                buf.clear();
                self.read_samples(r, &mut cache, &mut buf)?;
                points.extend(buf.iter().filter(|p| p.t >= mint && p.t <= maxt));
            }
            if !points.is_empty() {
                out.push(SeriesData { labels, points });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every series with all its samples as head-style chunks (compaction).
    pub fn all_chunks(&self) -> Result<Vec<(Labels, Vec<BlockChunk>)>, BlockError> {
        let mut out = Vec::with_capacity(self.num_series);
        let mut cache = FrameCache::default();
        let mut points = Vec::new();
        self.for_each_series(&[], |labels, chunks| {
            points.clear();
            for (_, _, r) in chunks {
                self.read_samples(r, &mut cache, &mut points)?;
            }
            out.push((labels, encode_chunks(&points)));
            Ok(())
        })?;
        Ok(out)
    }

    /// Label names present in the block (sorted).
    pub fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.postings.keys().filter_map(|n| self.symbols.get(*n as usize)).map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// Values of label `name` (sorted).
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let Some(values) = self.sym_of(name).and_then(|n| self.postings.get(&n)) else { return Vec::new() };
        values.iter().filter_map(|(v, _)| self.symbols.get(*v as usize)).map(|s| s.to_string()).collect()
    }

    /// Checks every frame's checksum and decodes every segment.
    pub fn verify_chunks(&self) -> Result<(), BlockError> {
        let mut cache = FrameCache::default();
        let mut buf = Vec::new();
        self.for_each_series(&[], |_, chunks| {
            for (_, _, r) in chunks {
                buf.clear();
                self.read_samples(r, &mut cache, &mut buf)?;
            }
            Ok(())
        })
    }
}

struct ParsedIndex {
    symbols: Vec<Box<str>>,
    postings: HashMap<u32, Vec<(u32, u64)>>,
    series_table: usize,
    num_series: usize,
}

fn parse_index(index: &[u8]) -> Result<ParsedIndex, DecodeError> {
    let mut toc = Decoder::at(index, index.len() - TOC_LEN);
    let symbols_off = toc.u64_le()? as usize;
    let _series_off = toc.u64_le()?;
    let series_table = toc.u64_le()? as usize;
    let _postings_off = toc.u64_le()?;
    let table_off = toc.u64_le()? as usize;
    let num_series = toc.u64_le()? as usize;
    if series_table + num_series * 8 > index.len() {
        return Err(DecodeError("series table out of bounds".into()));
    }
    let mut d = Decoder::at(index, symbols_off);
    let n = d.uvarint()? as usize;
    let mut symbols = Vec::with_capacity(n.min(index.len()));
    for _ in 0..n {
        symbols.push(Box::from(d.str()?));
    }
    let mut d = Decoder::at(index, table_off);
    let n = d.uvarint()? as usize;
    let mut postings: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for _ in 0..n {
        let name = d.uvarint()? as u32;
        let value = d.uvarint()? as u32;
        let off = d.uvarint()?;
        if name as usize >= symbols.len() || value as usize >= symbols.len() || off as usize >= index.len() {
            return Err(d.err("postings entry out of bounds"));
        }
        postings.entry(name).or_default().push((value, off));
    }
    Ok(ParsedIndex { symbols, postings, series_table, num_series })
}

#[cfg(test)]
mod tests;
