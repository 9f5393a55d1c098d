//! Turning one scraped page into stored samples: parse, merge target labels, metric
//! relabeling, limits, staleness markers. Pure logic over an [`Appender`], so it is tested
//! without HTTP.
//!
//! The [`ScrapeCache`] maps the exact bytes of a series as the target wrote it to the
//! series it became, so a steady-state scrape does no label parsing or relabeling at all.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_128;

use super::parse::{Entry, Format, Parser};
use crate::config::ScrapeJob;
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, stale_nan};
use crate::relabel;
use crate::tsdb::{Appender, SeriesRef};

/// Why a page was not stored. The scrape counts as failed (`up` 0).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AppendError {
    #[error("{0}")]
    Parse(String),
    #[error("sample limit exceeded")]
    SampleLimit,
    #[error("label_limit exceeded (metric: {metric}, number of labels: {count}, limit: {limit})")]
    LabelLimit { metric: String, count: usize, limit: u64 },
    #[error("label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {len}, limit: {limit})")]
    LabelNameLength { metric: String, name: String, len: usize, limit: u64 },
    #[error(
        "label_value_length_limit exceeded (metric: {metric}, label name: {name}, value: {value:?}, length: {len}, limit: {limit})"
    )]
    LabelValueLength { metric: String, name: String, value: String, len: usize, limit: u64 },
}

/// What a series as written by the target became.
#[derive(Clone, Copy)]
enum CacheEntry {
    Series(SeriesRef),
    /// Metric relabeling dropped it.
    Dropped,
}

/// The cache key: xxh3-128 of the series bytes as the target wrote them. Keying by the
/// hash keeps lookups off the heap (the bytes would be a cold cache miss per sample); two
/// series colliding has probability about n²/2¹²⁹, far below any hardware error rate.
type SeriesKey = u128;

/// Per-target memory across scrapes.
#[derive(Default)]
pub struct ScrapeCache {
    entries: HashMap<SeriesKey, CacheEntry, BuildHasherDefault<KeyHasher>>,
    /// The last successful page in order: a target usually writes the same series in the
    /// same order, so sample `i` is checked against entry `i` first, sequentially in memory.
    last_page: Vec<(SeriesKey, CacheEntry)>,
    /// Series written by the previous successful scrape, in page order (for staleness markers).
    previous: Vec<SeriesRef>,
    /// The storage's series generation the cached refs belong to.
    generation: u64,
}

/// The key is already a hash: use its low bits as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Counts for the synthetic `scrape_*` series.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageStats {
    pub scraped: u64,
    pub post_relabel: u64,
    pub series_added: u64,
}

/// How a page is turned into samples.
pub struct PageSettings<'a> {
    pub job: &'a ScrapeJob,
    pub target_labels: &'a Labels,
}

impl ScrapeCache {
    /// Appends one page at timestamp `t`. On error `app` holds part of the page: the caller
    /// rolls it back and calls [`Self::mark_all_stale`] on a fresh appender.
    pub fn append_page(
        &mut self,
        app: &mut impl Appender,
        s: &PageSettings,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> Result<PageStats, AppendError> {
        let job = s.job;
        let generation = app.series_generation();
        if generation != self.generation {
            // Series were removed from storage: cached refs may be gone.
            self.entries.clear();
            self.last_page.clear();
            self.generation = generation;
        }
        let mut stats = PageStats::default();
        let mut current: Vec<SeriesRef> = Vec::with_capacity(self.previous.len());
        let mut page: Vec<(SeriesKey, CacheEntry)> = Vec::with_capacity(self.last_page.len());
        let mut parser = Parser::new(body, format);
        loop {
            let entry = match parser.next() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(AppendError::Parse(e.to_string())),
            };
            let Entry::Sample(sample) = entry else { continue };
            stats.scraped += 1;
            let ts = match sample.timestamp_ms {
                Some(ts) if job.honor_timestamps => Some(ts),
                _ => None,
            };
            let key = xxh3_128(sample.series);
            let cached = match self.last_page.get(page.len()) {
                Some((k, e)) if *k == key => Some(*e),
                _ => self.entries.get(&key).copied(),
            };
            let entry = match cached {
                Some(e) => e,
                None => {
                    let mut lb = LabelsBuilder::new();
                    lb.set(METRIC_NAME, sample.name);
                    for (n, v) in sample.labels() {
                        lb.set(n.into_owned(), v.into_owned());
                    }
                    merge_target_labels(&mut lb, s.target_labels, job.honor_labels);
                    let e = if relabel::process(&job.metric_relabel, &mut lb) {
                        let labels = lb.into_labels();
                        check_label_limits(job, &labels)?;
                        stats.series_added += 1;
                        CacheEntry::Series(app.series_ref(&labels))
                    } else {
                        CacheEntry::Dropped
                    };
                    self.entries.insert(key, e);
                    e
                }
            };
            page.push((key, entry));
            let CacheEntry::Series(r) = entry else { continue };
            stats.post_relabel += 1;
            if job.sample_limit > 0 && stats.post_relabel > job.sample_limit {
                return Err(AppendError::SampleLimit);
            }
            // Series with their own timestamps are not tracked for staleness (Prometheus default).
            if ts.is_none() || job.track_timestamps_staleness {
                current.push(r);
            }
            app.append(r, ts.unwrap_or(t), sample.value);
        }
        // A page usually lists the same series in the same order as last time: then
        // nothing went away and no set needs building.
        if current != self.previous {
            let now: HashSet<SeriesRef> = current.iter().copied().collect();
            for gone in self.previous.iter().filter(|r| !now.contains(r)) {
                app.append(*gone, t, stale_nan());
            }
        }
        self.previous = current;
        if self.entries.len() > page.len() * 2 + 16 {
            // Forget series the target no longer writes.
            self.entries = page.iter().copied().collect();
        }
        self.last_page = page;
        Ok(stats)
    }

    /// Writes stale markers for every series of the last successful scrape (failed scrape
    /// or target removal).
    pub fn mark_all_stale(&mut self, app: &mut impl Appender, t: i64) {
        for r in self.previous.drain(..) {
            app.append(r, t, stale_nan());
        }
    }
}

/// Adds the target's labels to a scraped series (`mutateSampleLabels`): with
/// `honor_labels` the scraped labels win; otherwise target labels win and clashing scraped
/// labels are renamed `exported_<name>` (repeatedly, if that exists too).
pub fn merge_target_labels(lb: &mut LabelsBuilder, target: &Labels, honor_labels: bool) {
    if honor_labels {
        for l in target {
            lb.set_if_absent(&l.name, l.value.clone());
        }
        return;
    }
    for l in target {
        if let Some(existing) = lb.get(&l.name).map(str::to_string) {
            let mut name = format!("exported_{}", l.name);
            while lb.get(&name).is_some() {
                name = format!("exported_{name}");
            }
            lb.set(name, existing);
        }
        lb.set(l.name.clone(), l.value.clone());
    }
}

fn check_label_limits(job: &ScrapeJob, labels: &Labels) -> Result<(), AppendError> {
    let metric = || labels.metric_name().unwrap_or("").to_string();
    if job.label_limit > 0 && labels.len() as u64 > job.label_limit {
        return Err(AppendError::LabelLimit { metric: metric(), count: labels.len(), limit: job.label_limit });
    }
    for l in labels {
        if job.label_name_length_limit > 0 && l.name.len() as u64 > job.label_name_length_limit {
            return Err(AppendError::LabelNameLength {
                metric: metric(),
                name: l.name.clone(),
                len: l.name.len(),
                limit: job.label_name_length_limit,
            });
        }
        if job.label_value_length_limit > 0 && l.value.len() as u64 > job.label_value_length_limit {
            return Err(AppendError::LabelValueLength {
                metric: metric(),
                name: l.name.clone(),
                value: l.value.clone(),
                len: l.value.len(),
                limit: job.label_value_length_limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
