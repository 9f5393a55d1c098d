//! PromQL: parses queries with `promql-parser` and evaluates them over a [`Querier`].
//!
//! Evaluation is in two phases. First every selector's samples are loaded once for the
//! whole query range ([`preload`]), then the expression is evaluated step by step against
//! that in-memory data, so a range query touches storage once per selector, not per step.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod preload;
pub mod series_notation;
mod value;

use std::sync::Arc;
use std::time::Duration;

pub use value::{RangeSeries, Sample, Value, format_exponent, format_value};

use crate::tsdb::Querier;

/// Why a query failed. The API maps `Parse` to `bad_data` (HTTP 400) and the rest to
/// `execution` (HTTP 422), like Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than `--query.timeout`.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query needed more samples in memory than `--query.max-samples`.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
}

/// Settings that shape evaluation.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (5 m by default).
    pub lookback_delta: Duration,
    /// Longest a query may run (`--query.timeout`).
    pub timeout: Duration,
    /// Most samples a query may hold in memory (`--query.max-samples`): the samples its
    /// selectors read plus the points of a range result.
    pub max_samples: usize,
    /// Queries evaluated at once (`--query.max-concurrency`); more wait for a slot, within
    /// their timeout.
    pub max_concurrency: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_concurrency: 20,
        }
    }
}

/// What a query cost, in the shape of Prometheus's `stats` in API responses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Seconds waiting for a slot.
    pub queue_s: f64,
    /// Seconds reading the selectors' samples.
    pub prepare_s: f64,
    /// Seconds evaluating.
    pub eval_s: f64,
    /// Samples the selectors read.
    pub total_samples: u64,
    /// Most samples held at once (read samples plus the result's points).
    pub peak_samples: u64,
}

/// A query engine over one storage.
#[derive(Clone)]
pub struct Engine {
    querier: Arc<dyn Querier>,
    opts: EngineOptions,
    /// Queries running now, bounded by `max_concurrency`.
    running: Arc<(parking_lot::Mutex<usize>, parking_lot::Condvar)>,
}

/// A query's place among the running ones; dropping it lets a waiting query start.
struct Slot(Arc<(parking_lot::Mutex<usize>, parking_lot::Condvar)>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.0.lock() -= 1;
        self.0.1.notify_one();
    }
}

/// The result of a range query: one series per label set, points at each step.
pub type Matrix = Vec<RangeSeries>;

impl Engine {
    pub fn new(querier: Arc<dyn Querier>, opts: EngineOptions) -> Self {
        Engine { querier, opts, running: Default::default() }
    }

    /// Waits for a free slot, at most the query timeout.
    fn slot(&self) -> Result<Slot, QueryError> {
        let deadline = std::time::Instant::now() + self.opts.timeout;
        let (count, freed) = &*self.running;
        let mut n = count.lock();
        while *n >= self.opts.max_concurrency {
            if freed.wait_until(&mut n, deadline).timed_out() {
                return Err(QueryError::Timeout("query queue"));
            }
        }
        *n += 1;
        Ok(Slot(self.running.clone()))
    }

    /// Parses a query; the error text is Prometheus-shaped (`parse error: …`).
    pub fn parse(query: &str) -> Result<promql_parser::parser::Expr, QueryError> {
        promql_parser::parser::parse(query).map_err(|e| QueryError::Parse(format!("parse error: {e}")))
    }

    /// Evaluates `query` at `t` (milliseconds).
    pub fn instant(&self, query: &str, t: i64) -> Result<Value, QueryError> {
        self.instant_with_stats(query, t).map(|(v, _)| v)
    }

    /// Evaluates an already parsed query at `t` (rules parse theirs once).
    pub fn instant_expr(&self, expr: &promql_parser::parser::Expr, t: i64) -> Result<Value, QueryError> {
        self.instant_parsed(expr, t).map(|(v, _)| v)
    }

    /// [`Self::instant`] with what it cost.
    pub fn instant_with_stats(&self, query: &str, t: i64) -> Result<(Value, QueryStats), QueryError> {
        self.instant_parsed(&Self::parse(query)?, t)
    }

    fn instant_parsed(&self, expr: &promql_parser::parser::Expr, t: i64) -> Result<(Value, QueryStats), QueryError> {
        let mut stats = QueryStats::default();
        let started = std::time::Instant::now();
        let _slot = self.slot()?;
        stats.queue_s = started.elapsed().as_secs_f64();
        let prepared = std::time::Instant::now();
        let ctx = eval::Context::new(expr, self.querier.as_ref(), &self.opts, t, t)?;
        stats.prepare_s = prepared.elapsed().as_secs_f64();
        let evaluated = std::time::Instant::now();
        let v = ctx.eval_instant(expr, t)?;
        stats.eval_s = evaluated.elapsed().as_secs_f64();
        stats.total_samples = ctx.loaded_samples() as u64;
        let out = match &v {
            Value::Vector(s) => s.len(),
            Value::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
            _ => 1,
        };
        stats.peak_samples = (ctx.loaded_samples() + out) as u64;
        Ok((v, stats))
    }

    /// Evaluates `query` at every `step` from `start` to `end` (milliseconds, inclusive).
    pub fn range(&self, query: &str, start: i64, end: i64, step: i64) -> Result<Matrix, QueryError> {
        self.range_with_stats(query, start, end, step).map(|(m, _)| m)
    }

    /// [`Self::range`] with what it cost.
    pub fn range_with_stats(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(Matrix, QueryStats), QueryError> {
        let expr = Self::parse(query)?;
        if step <= 0 {
            return Err(QueryError::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::Parse("end timestamp must not be before start time".into()));
        }
        use promql_parser::parser::value::ValueType;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            other => {
                return Err(QueryError::Parse(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(other)
                )));
            }
        }
        let mut stats = QueryStats::default();
        let started = std::time::Instant::now();
        let _slot = self.slot()?;
        stats.queue_s = started.elapsed().as_secs_f64();
        let prepared = std::time::Instant::now();
        let ctx = eval::Context::new(&expr, self.querier.as_ref(), &self.opts, start, end)?;
        stats.prepare_s = prepared.elapsed().as_secs_f64();
        let evaluated = std::time::Instant::now();
        let m = ctx.eval_range(&expr, start, end, step)?;
        stats.eval_s = evaluated.elapsed().as_secs_f64();
        stats.total_samples = ctx.loaded_samples() as u64;
        stats.peak_samples = (ctx.loaded_samples() + m.iter().map(|s| s.points.len()).sum::<usize>()) as u64;
        Ok((m, stats))
    }
}

fn type_name(t: promql_parser::parser::value::ValueType) -> &'static str {
    use promql_parser::parser::value::ValueType;
    match t {
        ValueType::Vector => "vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

#[cfg(test)]
mod tests;

/// Parses a series selector (`match[]` of the series and labels APIs) into storage matchers.
pub fn selector_matchers(selector: &str) -> Result<Vec<crate::tsdb::Matcher>, QueryError> {
    match Engine::parse(selector)? {
        promql_parser::parser::Expr::VectorSelector(vs) => preload::matchers(&vs),
        _ => Err(QueryError::Parse(format!("{selector:?} is not a series selector"))),
    }
}
