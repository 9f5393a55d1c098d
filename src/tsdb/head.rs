//! The in-memory head: series with their samples, and the postings index.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::index::Postings;
use super::{Appender, CommitResult, Matcher, Point, Querier, SeriesData, SeriesRef};
use crate::model::{Labels, is_stale_nan};

struct MemSeries {
    labels: Labels,
    points: Mutex<Vec<Point>>,
}

#[derive(Default)]
struct Index {
    series: Vec<Arc<MemSeries>>,
    by_hash: HashMap<u64, Vec<SeriesRef>>,
    postings: Postings,
}

/// Counters the head keeps about itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeadStats {
    pub series: u64,
    pub samples_appended: u64,
    pub out_of_order: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// The in-memory series store. Cheap to share: wrap it in an `Arc`.
#[derive(Default)]
pub struct Head {
    index: RwLock<Index>,
    samples_appended: AtomicU64,
    out_of_order: AtomicU64,
    min_time: AtomicU64,
    max_time: AtomicU64,
}

impl Head {
    pub fn new() -> Arc<Self> {
        let h = Head::default();
        h.min_time.store(i64::MAX as u64, Ordering::Relaxed);
        h.max_time.store(i64::MIN as u64, Ordering::Relaxed);
        Arc::new(h)
    }

    pub fn appender(self: &Arc<Self>) -> HeadAppender {
        HeadAppender { head: self.clone(), pending: Vec::new() }
    }

    /// Resolves or creates the series for `labels`.
    pub fn get_or_create(&self, labels: &Labels) -> SeriesRef {
        let hash = labels.stable_hash();
        {
            let idx = self.index.read();
            if let Some(r) = find(&idx, hash, labels) {
                return r;
            }
        }
        let mut idx = self.index.write();
        if let Some(r) = find(&idx, hash, labels) {
            return r;
        }
        let r = idx.series.len() as SeriesRef;
        idx.series.push(Arc::new(MemSeries { labels: labels.clone(), points: Mutex::new(Vec::new()) }));
        idx.by_hash.entry(hash).or_default().push(r);
        idx.postings.add(r, labels);
        r
    }

    pub fn stats(&self) -> HeadStats {
        HeadStats {
            series: self.index.read().series.len() as u64,
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            min_time: self.min_time.load(Ordering::Relaxed) as i64,
            max_time: self.max_time.load(Ordering::Relaxed) as i64,
        }
    }

    /// Drops samples older than `min_t` (retention).
    pub fn truncate_before(&self, min_t: i64) {
        let series: Vec<Arc<MemSeries>> = self.index.read().series.clone();
        for s in series {
            let mut p = s.points.lock();
            let cut = p.partition_point(|pt| pt.t < min_t);
            if cut > 0 {
                p.drain(..cut);
            }
        }
        self.min_time.fetch_max(min_t as u64, Ordering::Relaxed);
    }

    fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let idx = self.index.read();
        let filter = |s: &MemSeries| matchers.iter().all(|m| m.matches(s.labels.get_or_empty(&m.name)));
        match idx.postings.candidates(matchers) {
            Some(refs) => refs.into_iter().map(|r| &idx.series[r as usize]).filter(|s| filter(s)).cloned().collect(),
            None => idx.series.iter().filter(|s| filter(s)).cloned().collect(),
        }
    }

    fn commit_points(&self, pending: Vec<(SeriesRef, i64, f64)>) -> CommitResult {
        let mut res = CommitResult::default();
        if pending.is_empty() {
            return res;
        }
        let series: Vec<Arc<MemSeries>> = {
            let idx = self.index.read();
            pending.iter().map(|(r, _, _)| idx.series[*r as usize].clone()).collect()
        };
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (s, (_, t, v)) in series.iter().zip(pending) {
            let mut p = s.points.lock();
            if let Some(last) = p.last() {
                if t < last.t {
                    res.out_of_order += 1;
                    continue;
                }
                if t == last.t {
                    // Same timestamp and same value is a harmless repeat; a new value is an error.
                    if last.v.to_bits() != v.to_bits() && !(is_stale_nan(v) && is_stale_nan(last.v)) {
                        res.duplicates += 1;
                    }
                    continue;
                }
            }
            p.push(Point { t, v });
            res.appended += 1;
            lo = lo.min(t);
            hi = hi.max(t);
        }
        self.samples_appended.fetch_add(res.appended as u64, Ordering::Relaxed);
        self.out_of_order.fetch_add((res.out_of_order + res.duplicates) as u64, Ordering::Relaxed);
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

fn find(idx: &Index, hash: u64, labels: &Labels) -> Option<SeriesRef> {
    idx.by_hash.get(&hash)?.iter().copied().find(|r| idx.series[*r as usize].labels == *labels)
}

fn points_in(points: &[Point], mint: i64, maxt: i64) -> &[Point] {
    let lo = points.partition_point(|p| p.t < mint);
    let hi = points.partition_point(|p| p.t <= maxt);
    &points[lo..hi.max(lo)]
}

impl Querier for Head {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        let mut out: Vec<SeriesData> = self
            .matching(matchers)
            .into_iter()
            .filter_map(|s| {
                let pts = s.points.lock();
                let window = points_in(&pts, mint, maxt);
                (!window.is_empty()).then(|| SeriesData { labels: s.labels.clone(), points: window.to_vec() })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let mut out: Vec<Labels> = self
            .matching(matchers)
            .into_iter()
            .filter(|s| !points_in(&s.points.lock(), mint, maxt).is_empty())
            .map(|s| s.labels.clone())
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

    fn commit(self) -> CommitResult {
        self.head.commit_points(self.pending)
    }

    fn rollback(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn append_commit_select() {
        let head = Head::new();
        let mut app = head.appender();
        let a = app.series_ref(&l(&[("__name__", "up"), ("job", "a")]));
        let b = app.series_ref(&l(&[("__name__", "up"), ("job", "b")]));
        app.append(a, 1000, 1.0);
        app.append(b, 1000, 0.0);
        assert!(head.select(&[Matcher::equal("__name__", "up")], 0, 2000).is_empty(), "invisible before commit");
        assert_eq!(app.commit().appended, 2);
        let got = head.select(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "b")], 0, 2000);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].points, vec![Point { t: 1000, v: 0.0 }]);
        let re = Matcher::regex("job", "a|b", false).unwrap();
        assert_eq!(head.select(&[re], 0, 2000).len(), 2);
        let absent = Matcher::equal("zone", "");
        assert_eq!(head.select(&[Matcher::equal("__name__", "up"), absent], 0, 2000).len(), 2);
    }

    #[test]
    fn rejects_out_of_order_and_duplicates() {
        let head = Head::new();
        let mut app = head.appender();
        let a = app.series_ref(&l(&[("__name__", "x")]));
        app.append(a, 2000, 1.0);
        app.append(a, 1000, 1.0);
        app.append(a, 2000, 2.0);
        app.append(a, 2000, 1.0);
        let res = app.commit();
        assert_eq!((res.appended, res.out_of_order, res.duplicates), (1, 1, 1));
    }

    #[test]
    fn rollback_discards() {
        let head = Head::new();
        let mut app = head.appender();
        let a = app.series_ref(&l(&[("__name__", "x")]));
        app.append(a, 1, 1.0);
        app.rollback();
        assert!(head.select(&[Matcher::equal("__name__", "x")], 0, 10).is_empty());
    }
}
