//! Backfill: `vigie import openmetrics FILE --data-dir DIR` turns an OpenMetrics text file
//! (every sample with a timestamp, as `promtool tsdb create-blocks-from openmetrics` wants)
//! into 2 h blocks in the data directory, which `vigie run` then loads like any other block
//! (overlaps with existing blocks are merged when read and when compacted).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::block::writer::write_block;
use super::block::{BlockError, BlockMeta, new_ulid};
use super::chunk::ChunkIter;
use super::head::{SeriesChunks, merge_points};
use super::{BlockChunk, CHUNK_RANGE_MS, Point, encode_chunks};
use crate::model::Labels;
use crate::scrape::parse::{Entry, Format, ParseError, Parser};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("line {0}: sample has no timestamp (backfill needs one on every sample)")]
    MissingTimestamp(usize),
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// What an import wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub samples: u64,
    pub series: u64,
    pub blocks: Vec<String>,
    /// Samples with the same series and timestamp as an earlier one (the first is kept).
    pub duplicates: u64,
}

/// One imported series while the file is read: samples in file order are compressed into
/// chunks as they come (the usual case: a file lists a series' samples in time order);
/// samples at or before its newest time are kept aside and merged in per block.
struct ImportSeries {
    labels: Labels,
    chunks: SeriesChunks,
    late: Vec<Point>,
}

impl ImportSeries {
    fn add(&mut self, t: i64, v: f64) {
        match self.chunks.last_time() {
            Some(last) if t <= last => self.late.push(Point { t, v }),
            _ => self.chunks.push(t, v),
        }
    }

    /// The chunks of `[lo, hi)`; the count of duplicate timestamps dropped (first kept).
    fn window(&self, lo: i64, hi: i64) -> (Vec<BlockChunk>, u64) {
        let chunks = self.chunks.chunks_within(lo, hi);
        let a = self.late.partition_point(|p| p.t < lo);
        let b = self.late.partition_point(|p| p.t < hi);
        if a == b {
            return (chunks, 0);
        }
        let mut late = self.late[a..b].to_vec();
        late.dedup_by_key(|p| p.t);
        let mut in_order = Vec::new();
        for c in &chunks {
            // Chunks encoded just above from valid samples: they always decode.
            if let Ok(it) = ChunkIter::new(&c.data) {
                in_order.extend(it.map(|(t, v)| Point { t, v }));
            }
        }
        // In-order samples came first in the file wherever a timestamp repeats.
        let merged = merge_points(&in_order, &late);
        let dropped = (in_order.len() + (b - a) - merged.len()) as u64;
        (encode_chunks(&merged), dropped)
    }
}

/// Imports `input` into blocks under `data_dir`; `progress(bytes_done)` is called as the
/// file is read (about every 1 %). Memory is about the compressed size of the data (plus
/// 16 bytes per sample that comes out of time order within its series).
pub fn import_openmetrics(
    input: &[u8],
    data_dir: &Path,
    now_ms: i64,
    mut progress: impl FnMut(usize),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    // Every series once; found by the text of its name and labels (a file lists a series'
    // samples together, so the previous one is usually it).
    let mut series: Vec<ImportSeries> = Vec::new();
    let mut by_text: HashMap<&[u8], usize> = HashMap::new();
    let mut by_labels: HashMap<Labels, usize> = HashMap::new();
    let mut last: Option<(&[u8], usize)> = None;
    let mut windows = BTreeSet::new();
    let mut last_window = None;
    let mut parser = Parser::new(input, Format::OpenMetrics);
    let step = (input.len() / 100).max(1 << 20);
    let mut next_report = step;
    while let Some(entry) = parser.next()? {
        let Entry::Sample(s) = entry else { continue };
        let t = s.timestamp_ms.ok_or(ImportError::MissingTimestamp(parser.line()))?;
        let id = match last {
            Some((text, id)) if text == s.series => id,
            _ => {
                let id = match by_text.get(s.series) {
                    Some(id) => *id,
                    None => {
                        let mut pairs: Vec<(String, String)> =
                            s.labels().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
                        pairs.push((crate::model::METRIC_NAME.to_string(), s.name.to_string()));
                        let labels = Labels::from_pairs(pairs);
                        let id = *by_labels.entry(labels.clone()).or_insert_with(|| {
                            series.push(ImportSeries { labels, chunks: SeriesChunks::default(), late: Vec::new() });
                            series.len() - 1
                        });
                        by_text.insert(s.series, id);
                        id
                    }
                };
                last = Some((s.series, id));
                id
            }
        };
        series[id].add(t, s.value);
        let w = t.div_euclid(CHUNK_RANGE_MS);
        if last_window != Some(w) {
            windows.insert(w);
            last_window = Some(w);
        }
        report.samples += 1;
        if parser.offset() >= next_report {
            progress(parser.offset());
            next_report += step;
        }
    }
    progress(input.len());
    drop((by_text, by_labels));
    report.series = series.len() as u64;
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    for s in &mut series {
        // Stable: among equal timestamps the first in the file stays first.
        s.late.sort_by_key(|p| p.t);
    }
    for w in windows {
        let (lo, hi) = (w * CHUNK_RANGE_MS, (w + 1) * CHUNK_RANGE_MS);
        let mut data: Vec<(Labels, Vec<BlockChunk>)> = Vec::new();
        for s in &series {
            let (chunks, dropped) = s.window(lo, hi);
            report.duplicates += dropped;
            if !chunks.is_empty() {
                data.push((s.labels.clone(), chunks));
            }
        }
        let (_, meta) = write_block(data_dir, BlockMeta::new(new_ulid(now_ms), lo, hi), &data)?;
        tracing::info!(block = %meta.ulid, min_time = lo, series = meta.stats.num_series, samples = meta.stats.num_samples, "block written");
        report.blocks.push(meta.ulid);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::{Db, DbOptions, Matcher, Querier};

    #[test]
    fn imported_blocks_are_read_by_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("# HELP m A gauge.\n# TYPE m gauge\n");
        // 5 h of samples, 1 min apart, in seconds as OpenMetrics writes them.
        for i in 0..300 {
            text.push_str(&format!("m{{a=\"1\"}} {} {}\n", i, i * 60));
            text.push_str(&format!("m{{a=\"2\"}} {} {}.5\n", i * 2, i * 60));
        }
        text.push_str("# EOF\n");
        let mut calls = 0;
        let r = import_openmetrics(text.as_bytes(), dir.path(), 0, |_| calls += 1).unwrap();
        assert_eq!((r.samples, r.series, r.blocks.len(), r.duplicates), (600, 2, 3, 0));
        assert!(calls >= 1);
        let (db, _) =
            Db::open(dir.path(), DbOptions { retention: std::time::Duration::ZERO, ..Default::default() }).unwrap();
        let got = db.select(&[Matcher::equal("__name__", "m"), Matcher::equal("a", "2")], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].points.len(), 300);
        assert_eq!(got[0].points[299], Point { t: 299 * 60_000 + 500, v: 598.0 });
    }

    #[test]
    fn one_series_written_two_ways_and_interleaved_is_one_series() {
        let dir = tempfile::tempdir().unwrap();
        let text = "# TYPE m gauge\nm{a=\"1\",b=\"2\"} 1 60\nm{c=\"3\"} 5 60\nm{b=\"2\",a=\"1\"} 2 120\n\
                    m{a=\"1\",b=\"2\"} 9 60\nm{c=\"3\"} 6 0\n# EOF\n";
        let r = import_openmetrics(text.as_bytes(), dir.path(), 0, |_| {}).unwrap();
        assert_eq!((r.samples, r.series, r.duplicates), (5, 2, 1));
        let (db, _) =
            Db::open(dir.path(), DbOptions { retention: std::time::Duration::ZERO, ..Default::default() }).unwrap();
        let got = db.select(&[Matcher::equal("a", "1")], i64::MIN, i64::MAX);
        assert_eq!(got[0].points, vec![Point { t: 60_000, v: 1.0 }, Point { t: 120_000, v: 2.0 }]);
        let got = db.select(&[Matcher::equal("c", "3")], i64::MIN, i64::MAX);
        assert_eq!(got[0].points, vec![Point { t: 0, v: 6.0 }, Point { t: 60_000, v: 5.0 }]);
    }

    #[test]
    fn a_sample_without_timestamp_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = import_openmetrics(b"m 1 10\nm 2\n# EOF\n", dir.path(), 0, |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "line 2: sample has no timestamp (backfill needs one on every sample)");
        let e = import_openmetrics(b"m{ 1 10\n# EOF\n", dir.path(), 0, |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written on error");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

        /// Samples in any order, with repeated timestamps, read back as the first sample of
        /// each timestamp in file order, sorted.
        #[test]
        fn any_order_reads_back_as_first_per_timestamp(
            samples in proptest::collection::vec((0u8..3, 0i64..30_000, 0u16..5), 1..400),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut text = String::from("# TYPE m gauge\n");
            let mut model: std::collections::BTreeMap<u8, std::collections::BTreeMap<i64, f64>> = Default::default();
            for &(s, t_s, v) in &samples {
                // Seconds with a fraction: spans several 2 h windows (up to ~8 h).
                let t = t_s * 1000 + (v as i64) * 10;
                text.push_str(&format!("m{{s=\"{s}\"}} {v} {}.{:03}\n", t / 1000, t % 1000));
                model.entry(s).or_default().entry(t).or_insert(v as f64);
            }
            text.push_str("# EOF\n");
            let r = import_openmetrics(text.as_bytes(), dir.path(), 0, |_| {}).unwrap();
            let kept: usize = model.values().map(|m| m.len()).sum();
            proptest::prop_assert_eq!(r.samples as usize, samples.len());
            proptest::prop_assert_eq!(r.duplicates as usize, samples.len() - kept);
            let (db, _) = Db::open(dir.path(), DbOptions { retention: std::time::Duration::ZERO, ..Default::default() })
                .unwrap();
            for (s, want) in &model {
                let got = db.select(&[Matcher::equal("s", s.to_string())], i64::MIN, i64::MAX);
                let got: Vec<(i64, f64)> = got[0].points.iter().map(|p| (p.t, p.v)).collect();
                let want: Vec<(i64, f64)> = want.iter().map(|(t, v)| (*t, *v)).collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
