//! Writes one block directory from series sorted by labels (`docs/storage-format.md`,
//! "Blocks"): `chunks`, then `index`, then `meta.json`, each fsynced, all inside `ID.tmp`,
//! renamed to `ID` at the end so a crash never leaves a half block that looks whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::frame::FrameBuilder;
use super::{BlockError, BlockMeta, CHUNKS_MAGIC, ChunkMeta, INDEX_MAGIC, io_err, segment};
use crate::model::Labels;
use crate::tsdb::chunk::ChunkIter;
use crate::tsdb::encoding::{put_str, put_uvarint, put_varint};
use crate::tsdb::{BlockChunk, Point};

/// Writes the block `meta.id` under `parent` and returns its directory.
pub fn write_block(
    parent: &Path,
    mut meta: BlockMeta,
    series: &[(Labels, Vec<BlockChunk>)],
) -> Result<(PathBuf, BlockMeta), BlockError> {
    debug_assert!(series.windows(2).all(|w| w[0].0 < w[1].0), "series must be sorted");
    let tmp = parent.join(format!("{}.tmp", meta.ulid));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;

    // chunks: magic, then frames of series segments (`frame.rs`); a segment's ref says where.
    let chunks_path = tmp.join("chunks");
    let mut cw = BufWriter::with_capacity(1 << 20, File::create(&chunks_path).map_err(io_err(&chunks_path))?);
    cw.write_all(&CHUNKS_MAGIC).map_err(io_err(&chunks_path))?;
    let mut frames = FrameBuilder::new(CHUNKS_MAGIC.len() as u64);
    let mut metas: Vec<Vec<ChunkMeta>> = Vec::with_capacity(series.len());
    let mut points = Vec::new();
    for (labels, chunks) in series {
        points.clear();
        for c in chunks {
            let it = ChunkIter::new(&c.data).map_err(|e| BlockError::Corrupt {
                block: meta.ulid.clone(),
                file: "chunks",
                reason: format!("input chunk of {labels}: {e}"),
            })?;
            points.extend(it.map(|(t, v)| Point { t, v }));
        }
        let mut m = Vec::with_capacity(points.len().div_ceil(segment::MAX_SAMPLES));
        for seg in points.chunks(segment::MAX_SAMPLES) {
            m.push((seg[0].t, seg[seg.len() - 1].t, frames.push(seg)));
            meta.stats.num_chunks += 1;
            meta.stats.num_samples += seg.len() as u64;
            if let Some(f) = frames.take(false) {
                cw.write_all(&f).map_err(io_err(&chunks_path))?;
            }
        }
        metas.push(m);
    }
    if let Some(f) = frames.take(true) {
        cw.write_all(&f).map_err(io_err(&chunks_path))?;
    }
    let chunks_file = cw.into_inner().map_err(|e| io_err(&chunks_path)(e.into_error()))?;
    chunks_file.sync_all().map_err(io_err(&chunks_path))?;
    let chunks_len = chunks_file.metadata().map_err(io_err(&chunks_path))?.len();
    meta.stats.num_series = series.len() as u64;

    let index = encode_index(series, &metas);
    let index_path = tmp.join("index");
    write_synced(&index_path, &index)?;
    meta.stats.bytes = chunks_len + index.len() as u64;
    let meta_path = tmp.join("meta.json");
    let json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    write_synced(&meta_path, &json)?;
    sync_dir(&tmp)?;
    let done = parent.join(&meta.ulid);
    fs::rename(&tmp, &done).map_err(io_err(&done))?;
    sync_dir(parent)?;
    Ok((done, meta))
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), BlockError> {
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

/// The index file: symbols, series, series offsets, postings, postings table, TOC, CRC.
fn encode_index(series: &[(Labels, Vec<BlockChunk>)], metas: &[Vec<ChunkMeta>]) -> Vec<u8> {
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for (labels, _) in series {
        for l in labels {
            symbols.insert(&l.name);
            symbols.insert(&l.value);
        }
    }
    let sym_id: BTreeMap<&str, u64> = symbols.iter().enumerate().map(|(i, s)| (*s, i as u64)).collect();
    let mut out = Vec::with_capacity(series.len() * 64);
    out.extend_from_slice(&INDEX_MAGIC);

    let symbols_off = out.len() as u64;
    put_uvarint(&mut out, symbols.len() as u64);
    for s in &symbols {
        put_str(&mut out, s);
    }

    let series_off = out.len() as u64;
    let mut series_offsets = Vec::with_capacity(series.len());
    let mut postings: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    for (id, ((labels, _), chunks)) in series.iter().zip(metas).enumerate() {
        series_offsets.push(out.len() as u64);
        put_uvarint(&mut out, labels.len() as u64);
        for l in labels {
            let (n, v) = (sym_id[l.name.as_str()], sym_id[l.value.as_str()]);
            put_uvarint(&mut out, n);
            put_uvarint(&mut out, v);
            postings.entry((n, v)).or_default().push(id as u64);
        }
        put_uvarint(&mut out, chunks.len() as u64);
        let (mut prev_max, mut prev_ref) = (0i64, 0u64);
        for (i, &(min_t, max_t, r)) in chunks.iter().enumerate() {
            put_varint(&mut out, if i == 0 { min_t } else { min_t - prev_max });
            put_uvarint(&mut out, (max_t - min_t) as u64);
            put_uvarint(&mut out, if i == 0 { r } else { r - prev_ref });
            prev_max = max_t;
            prev_ref = r;
        }
    }

    let series_table_off = out.len() as u64;
    for o in &series_offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }

    let postings_off = out.len() as u64;
    let mut table = Vec::with_capacity(postings.len());
    for (key, ids) in &postings {
        table.push((*key, out.len() as u64));
        put_uvarint(&mut out, ids.len() as u64);
        let mut prev = 0;
        for id in ids {
            put_uvarint(&mut out, id - prev);
            prev = *id;
        }
    }

    let postings_table_off = out.len() as u64;
    put_uvarint(&mut out, table.len() as u64);
    for ((n, v), off) in table {
        put_uvarint(&mut out, n);
        put_uvarint(&mut out, v);
        put_uvarint(&mut out, off);
    }

    for o in [symbols_off, series_off, series_table_off, postings_off, postings_table_off, series.len() as u64] {
        out.extend_from_slice(&o.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}
