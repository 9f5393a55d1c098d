//! Writes one block directory from series sorted by labels (`docs/storage-format.md`,
//! "Blocks"): `chunks`, then `index`, then `meta.json`, each fsynced, all inside `ID.tmp`,
//! renamed to `ID` at the end so a crash never leaves a half block that looks whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{BlockError, BlockMeta, CHUNKS_MAGIC, INDEX_MAGIC, io_err};
use crate::model::Labels;
use crate::tsdb::BlockChunk;
use crate::tsdb::chunk::ChunkIter;
use crate::tsdb::encoding::{put_str, put_uvarint, put_varint};

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

    // chunks: magic, then per chunk `uvarint len | bytes | crc32c`; a chunk's ref is its offset.
    let chunks_path = tmp.join("chunks");
    let mut cw = BufWriter::with_capacity(1 << 20, File::create(&chunks_path).map_err(io_err(&chunks_path))?);
    let mut offset = 0u64;
    let put = |buf: &[u8], cw: &mut BufWriter<File>, offset: &mut u64| -> Result<(), BlockError> {
        cw.write_all(buf).map_err(io_err(&chunks_path))?;
        *offset += buf.len() as u64;
        Ok(())
    };
    put(&CHUNKS_MAGIC, &mut cw, &mut offset)?;
    let mut refs: Vec<Vec<u64>> = Vec::with_capacity(series.len());
    let mut head = Vec::with_capacity(16);
    for (_, chunks) in series {
        let mut r = Vec::with_capacity(chunks.len());
        for c in chunks {
            r.push(offset);
            head.clear();
            put_uvarint(&mut head, c.data.len() as u64);
            put(&head, &mut cw, &mut offset)?;
            put(&c.data, &mut cw, &mut offset)?;
            put(&crc32c::crc32c(&c.data).to_le_bytes(), &mut cw, &mut offset)?;
            meta.stats.num_chunks += 1;
            meta.stats.num_samples += ChunkIter::new(&c.data).map(|i| i.num_samples() as u64).unwrap_or(0);
        }
        refs.push(r);
    }
    let chunks_file = cw.into_inner().map_err(|e| io_err(&chunks_path)(e.into_error()))?;
    chunks_file.sync_all().map_err(io_err(&chunks_path))?;
    meta.stats.num_series = series.len() as u64;

    let index = encode_index(series, &refs);
    let index_path = tmp.join("index");
    write_synced(&index_path, &index)?;
    meta.stats.bytes = offset + index.len() as u64;
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
fn encode_index(series: &[(Labels, Vec<BlockChunk>)], refs: &[Vec<u64>]) -> Vec<u8> {
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
    for (id, ((labels, chunks), refs)) in series.iter().zip(refs).enumerate() {
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
        for (i, (c, r)) in chunks.iter().zip(refs).enumerate() {
            put_varint(&mut out, if i == 0 { c.min_t } else { c.min_t - prev_max });
            put_uvarint(&mut out, (c.max_t - c.min_t) as u64);
            put_uvarint(&mut out, if i == 0 { *r } else { r - prev_ref });
            prev_max = c.max_t;
            prev_ref = *r;
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
