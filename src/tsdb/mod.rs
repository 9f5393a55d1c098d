//! Storage: where scraped samples go and where PromQL reads them.
//!
//! Two narrow interfaces separate the stages: scrapers write through an [`Appender`]
//! (buffered, applied on `commit`, so a failed scrape leaves nothing behind) and the query
//! engine reads through a [`Querier`]. The [`Head`] keeps recent samples in compressed
//! chunks ([`chunk`]) with a label index, and logs every commit to the write-ahead log
//! ([`wal`]) before acknowledging it.

pub mod block;
pub mod chunk;
mod db;
mod encoding;
mod head;
pub mod import;
mod index;
mod matcher;
pub mod wal;

pub use db::{Db, DbError, DbOptions, DbStats, MaintenanceReport};
pub use head::{BlockChunk, CHUNK_RANGE_MS, Cardinality, Head, HeadAppender, HeadStats, OpenReport, encode_chunks};
pub use matcher::{MatchKind, Matcher, MatcherError};

use crate::model::Labels;

/// Identifies a series inside one [`Head`]; stable for the life of the process.
pub type SeriesRef = u64;

/// One sample: a millisecond timestamp and a float value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// A series with the samples a query asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// Why a sample was not stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("unknown series ref {0}")]
    UnknownRef(SeriesRef),
}

/// Buffered writes. Nothing is visible to queries before `commit`.
pub trait Appender {
    /// Resolves (creating if needed) the series for `labels`.
    fn series_ref(&mut self, labels: &Labels) -> SeriesRef;
    /// Queues a sample for a series obtained from `series_ref`.
    fn append(&mut self, series: SeriesRef, t: i64, v: f64);
    /// Applies the queued samples; returns how many were rejected and why (first error).
    fn commit(self) -> CommitResult;
    /// Drops the queued samples.
    fn rollback(self);
    /// Changes when refs handed out before may no longer be valid (series were removed):
    /// whoever caches refs resolves them again.
    fn series_generation(&self) -> u64 {
        0
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitResult {
    pub appended: usize,
    pub out_of_order: usize,
    pub duplicates: usize,
    /// Samples older than the head's lower bound (their time is already in a block).
    pub out_of_bounds: usize,
    /// Accepted samples that were older than their series' newest (out-of-order window).
    pub late: usize,
    /// Samples for refs the head does not know.
    pub unknown: usize,
    /// The log could not be written: the samples are in memory but not durable.
    pub wal_error: Option<String>,
}

/// One selector's read in a [`Querier::select_many`].
#[derive(Clone, Debug)]
pub struct SelectRequest {
    pub matchers: Vec<Matcher>,
    pub mint: i64,
    pub maxt: i64,
    /// Only the newest sample of each series in the window is wanted (an instant selector
    /// evaluated at one time: most alerting rules), so older chunks need not be decoded.
    pub latest_only: bool,
}

impl SelectRequest {
    /// A request for every sample in `[mint, maxt]`.
    pub fn all(matchers: Vec<Matcher>, mint: i64, maxt: i64) -> Self {
        SelectRequest { matchers, mint, maxt, latest_only: false }
    }
}

/// Keeps only the newest point of each series (what a `latest_only` read returns).
pub fn keep_latest(series: &mut [SeriesData]) {
    for s in series {
        if s.points.len() > 1 {
            let last = *s.points.last().expect("len > 1");
            s.points = vec![last];
        }
    }
}

/// Read access for the query engine and the API.
pub trait Querier: Send + Sync {
    /// Series matching all `matchers` with their samples in `[mint, maxt]` (inclusive);
    /// series without samples in the range are left out.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData>;
    /// Several selects that see the same data: no commit is visible to one and not to
    /// another (one query's selectors).
    fn select_many(&self, requests: &[SelectRequest]) -> Vec<Vec<SeriesData>> {
        requests
            .iter()
            .map(|r| {
                let mut s = self.select(&r.matchers, r.mint, r.maxt);
                if r.latest_only {
                    keep_latest(&mut s);
                }
                s
            })
            .collect()
    }
    /// Label sets of the series matching `matchers` that have samples in `[mint, maxt]`.
    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels>;
    /// Label names in use (restricted to series matching `matchers` when given), sorted.
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String>;
    /// Values of label `name` (restricted by `matchers` when given), sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String>;
}
