//! Phase two of evaluation: an expression at one timestamp, against preloaded data.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};

use super::preload::{self, Loaded, Window};
use super::value::{RangeSeries, Sample, Value};
use super::{EngineOptions, Matrix, QueryError, aggregate, binary, functions};
use crate::model::{Labels, is_stale_nan};
use crate::tsdb::{Point, Querier};

/// Default subquery resolution (Prometheus uses the global evaluation interval, 1 m).
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

pub struct Context {
    loaded: Loaded,
    pub(super) w: Window,
    /// `drop_name` results by the address of the input labels, which each entry keeps
    /// alive (so an address is never reused while cached): a range query drops the same
    /// series' name at every step.
    name_drops: std::cell::RefCell<HashMap<usize, (Labels, Labels)>>,
    /// The steps of the range query being evaluated (start, end, step).
    pub(super) steps: std::cell::Cell<Option<(i64, i64, i64)>>,
    /// Range-function results for every step at once, by the address of the call: computed
    /// series by series (each series' samples stay in cache across its steps), then read
    /// one step at a time.
    pub(super) step_columns: std::cell::RefCell<HashMap<usize, std::rc::Rc<StepColumns>>>,
    deadline: std::time::Instant,
    max_samples: usize,
    /// Samples the selectors read.
    loaded_samples: usize,
}

/// A range function's value per series (name dropped) at each step of the range query.
pub struct StepColumns {
    pub series: Vec<(Labels, Vec<Option<f64>>)>,
}

/// A range vector with the window it was selected over (rate needs the boundaries).
pub struct RangeArg {
    pub series: Vec<RangeSeries>,
    pub start: i64,
    pub end: i64,
}

impl Context {
    pub fn new(expr: &Expr, q: &dyn Querier, opts: &EngineOptions, start: i64, end: i64) -> Result<Self, QueryError> {
        let w = Window {
            query_start: start,
            query_end: end,
            lookback: opts.lookback_delta.as_millis() as i64,
            default_step: DEFAULT_SUBQUERY_STEP_MS,
        };
        let deadline = std::time::Instant::now() + opts.timeout;
        let loaded = preload::preload(expr, q, &w, start, end)?;
        let loaded_samples: usize = loaded.values().flatten().map(|s| s.points.len()).sum();
        if loaded_samples > opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let ctx = Context {
            loaded,
            w,
            name_drops: Default::default(),
            steps: Default::default(),
            step_columns: Default::default(),
            deadline,
            max_samples: opts.max_samples,
            loaded_samples,
        };
        ctx.check_deadline()?;
        Ok(ctx)
    }

    /// Samples the query's selectors read.
    pub fn loaded_samples(&self) -> usize {
        self.loaded_samples
    }

    /// Fails once the query has run past `--query.timeout`.
    pub fn check_deadline(&self) -> Result<(), QueryError> {
        if std::time::Instant::now() >= self.deadline {
            return Err(QueryError::Timeout("query execution"));
        }
        Ok(())
    }

    pub fn eval_instant(&self, expr: &Expr, t: i64) -> Result<Value, QueryError> {
        Ok(match self.eval(expr, t)? {
            Value::Vector(s) => {
                let s: Vec<Sample> = s.into_iter().map(|s| Sample { labels: finish_names(s.labels), v: s.v }).collect();
                check_unique(&s)?;
                Value::Vector(s)
            }
            Value::Matrix(m) => Value::Matrix(
                m.into_iter().map(|s| RangeSeries { labels: finish_names(s.labels), points: s.points }).collect(),
            ),
            other => other,
        })
    }

    pub fn eval_range(&self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<Matrix, QueryError> {
        self.steps.set(Some((start, end, step)));
        let mut by_labels: HashMap<Labels, Vec<Point>> = HashMap::new();
        let mut points = 0usize;
        let mut t = start;
        while t <= end {
            self.check_deadline()?;
            match self.eval(expr, t)? {
                Value::Scalar(v) => by_labels.entry(Labels::empty()).or_default().push(Point { t, v }),
                Value::Vector(samples) => {
                    check_unique(&samples)?;
                    points += samples.len();
                    if self.loaded_samples + points > self.max_samples {
                        return Err(QueryError::TooManySamples("query execution"));
                    }
                    for s in samples {
                        by_labels.entry(s.labels).or_default().push(Point { t, v: s.v });
                    }
                }
                other => {
                    return Err(QueryError::Execution(format!(
                        "invalid expression type {:?} for range query",
                        other.type_name()
                    )));
                }
            }
            t += step;
        }
        let mut out: Matrix = by_labels
            .into_iter()
            .map(|(labels, points)| RangeSeries { labels: finish_names(labels), points })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        if out.windows(2).any(|w| w[0].labels == w[1].labels) {
            return Err(QueryError::Execution("vector cannot contain metrics with the same labelset".into()));
        }
        Ok(out)
    }

    pub fn eval(&self, expr: &Expr, t: i64) -> Result<Value, QueryError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.vector_selector(vs, t))),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.matrix_selector(ms, t).series)),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?.series)),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => {
                    Ok(Value::Vector(v.into_iter().map(|s| Sample { labels: drop_name(&s.labels), v: -s.v }).collect()))
                }
                other => Err(QueryError::Execution(format!("unary minus on {}", other.type_name()))),
            },
            Expr::Binary(b) => binary::eval(self, b, t),
            Expr::Aggregate(a) => aggregate::eval(self, a, t),
            Expr::Call(c) => functions::eval(self, c, t),
            Expr::Extension(_) => Err(QueryError::Execution("extension expressions are not supported".into())),
        }
    }

    /// The evaluation time of a selector after `@` and `offset`.
    fn effective_time(&self, vs: &VectorSelector, t: i64) -> i64 {
        preload::at_ms(&vs.at, &self.w).unwrap_or(t) - preload::offset_ms(&vs.offset)
    }

    pub fn vector_selector(&self, vs: &VectorSelector, t: i64) -> Vec<Sample> {
        self.selected_points(vs, t).into_iter().map(|(labels, p)| Sample { labels, v: p.v }).collect()
    }

    /// The sample each series contributes to an instant selector, with its own timestamp
    /// (what `timestamp()` reports).
    pub fn selected_points(&self, vs: &VectorSelector, t: i64) -> Vec<(Labels, Point)> {
        let ts = self.effective_time(vs, t);
        let Some(series) = self.loaded.get(&preload::key(vs)) else {
            return Vec::new();
        };
        series
            .iter()
            .filter_map(|s| {
                let i = s.points.partition_point(|p| p.t <= ts);
                let p = *s.points.get(i.checked_sub(1)?)?;
                (p.t > ts - self.w.lookback && !is_stale_nan(p.v)).then(|| (s.labels.clone(), p))
            })
            .collect()
    }

    /// Samples in the left-open window `(t - range, t]`, stale markers removed.
    pub fn matrix_selector(&self, ms: &MatrixSelector, t: i64) -> RangeArg {
        let end = self.effective_time(&ms.vs, t);
        let start = end - ms.range.as_millis() as i64;
        let series = self
            .loaded
            .get(&preload::key(&ms.vs))
            .map(|all| {
                all.iter()
                    .filter_map(|s| {
                        let lo = s.points.partition_point(|p| p.t <= start);
                        let hi = s.points.partition_point(|p| p.t <= end);
                        let points: Vec<Point> =
                            s.points[lo..hi.max(lo)].iter().copied().filter(|p| !is_stale_nan(p.v)).collect();
                        (!points.is_empty()).then(|| RangeSeries { labels: s.labels.clone(), points })
                    })
                    .collect()
            })
            .unwrap_or_default();
        RangeArg { series, start, end }
    }

    /// The samples a matrix selector reads, per series, for every step of the query.
    pub fn loaded_for(&self, vs: &VectorSelector) -> &[crate::tsdb::SeriesData] {
        self.loaded.get(&preload::key(vs)).map_or(&[], Vec::as_slice)
    }

    /// The window `(start, end]` of a matrix selector evaluated at `t`.
    pub fn window_bounds(&self, ms: &MatrixSelector, t: i64) -> (i64, i64) {
        let end = self.effective_time(&ms.vs, t);
        (end - ms.range.as_millis() as i64, end)
    }

    /// Calls `f` with each series' samples in the selector's window, borrowed from the
    /// loaded data (copied only when the window holds a stale marker to leave out); series
    /// with no sample there are skipped. The fast path of range functions: no per-step
    /// allocation for the window or the labels.
    pub fn for_each_window(&self, ms: &MatrixSelector, t: i64, mut f: impl FnMut(&Labels, &[Point], i64, i64)) {
        let end = self.effective_time(&ms.vs, t);
        let start = end - ms.range.as_millis() as i64;
        let Some(all) = self.loaded.get(&preload::key(&ms.vs)) else { return };
        let mut scratch: Vec<Point> = Vec::new();
        for s in all {
            let lo = s.points.partition_point(|p| p.t <= start);
            let hi = s.points.partition_point(|p| p.t <= end).max(lo);
            let window = &s.points[lo..hi];
            if window.is_empty() {
                continue;
            }
            if window.iter().any(|p| is_stale_nan(p.v)) {
                scratch.clear();
                scratch.extend(window.iter().copied().filter(|p| !is_stale_nan(p.v)));
                if !scratch.is_empty() {
                    f(&s.labels, &scratch, start, end);
                }
            } else {
                f(&s.labels, window, start, end);
            }
        }
    }

    /// Evaluates the inner expression at each subquery step inside `(t - range, t]`.
    pub fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<RangeArg, QueryError> {
        let end = preload::at_ms(&sq.at, &self.w).unwrap_or(t) - preload::offset_ms(&sq.offset);
        let range = sq.range.as_millis() as i64;
        let step = sq.step.map(|d| d.as_millis() as i64).filter(|s| *s > 0).unwrap_or(self.w.default_step);
        let start = end - range;
        // Steps are aligned to multiples of the resolution, as Prometheus does.
        let mut ts = start.div_euclid(step) * step;
        if ts <= start {
            ts += step;
        }
        let mut by_labels: HashMap<Labels, Vec<Point>> = HashMap::new();
        while ts <= end {
            self.check_deadline()?;
            match self.eval(&sq.expr, ts)? {
                Value::Scalar(v) => by_labels.entry(Labels::empty()).or_default().push(Point { t: ts, v }),
                Value::Vector(samples) => {
                    for s in samples {
                        by_labels.entry(s.labels).or_default().push(Point { t: ts, v: s.v });
                    }
                }
                other => return Err(QueryError::Execution(format!("subquery over {}", other.type_name()))),
            }
            ts += step;
        }
        let mut series: Vec<RangeSeries> =
            by_labels.into_iter().map(|(labels, points)| RangeSeries { labels, points }).collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(RangeArg { series, start, end })
    }

    /// Evaluates an argument that must be a range vector.
    pub fn range_arg(&self, expr: &Expr, t: i64) -> Result<RangeArg, QueryError> {
        match expr {
            Expr::MatrixSelector(ms) => Ok(self.matrix_selector(ms, t)),
            Expr::Subquery(sq) => self.subquery(sq, t),
            Expr::Paren(p) => self.range_arg(&p.expr, t),
            _ => Err(QueryError::Execution("expected a range vector argument".into())),
        }
    }

    pub fn vector_arg(&self, expr: &Expr, t: i64) -> Result<Vec<Sample>, QueryError> {
        match self.eval(expr, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(QueryError::Execution(format!("expected instant vector, got {}", other.type_name()))),
        }
    }

    pub fn scalar_arg(&self, expr: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(expr, t)? {
            Value::Scalar(v) => Ok(v),
            other => Err(QueryError::Execution(format!("expected scalar, got {}", other.type_name()))),
        }
    }
}

/// Labels without `__name__`.
/// Where a metric name waits to be dropped. Prometheus 3 removes `__name__` only at the
/// end of evaluation (delayed name removal, as its test engine runs), so `label_replace`
/// and `label_join` can still read it and two differently named series do not collide in
/// between; until then the name is kept under this label, which no selector, matcher or
/// result ever shows.
pub const DROPPED_NAME: &str = "__vigie_dropped_name__";

/// Marks the metric name for removal at the end of evaluation.
pub fn drop_name(l: &Labels) -> Labels {
    let Some(name) = l.get(crate::model::METRIC_NAME) else { return l.clone() };
    let mut v: Vec<crate::model::Label> = Vec::with_capacity(l.len());
    v.extend(l.iter().filter(|x| x.name != crate::model::METRIC_NAME).cloned());
    let at = v.partition_point(|x| x.name.as_str() < DROPPED_NAME);
    v.insert(at, crate::model::Label { name: DROPPED_NAME.to_string(), value: name.to_string() });
    Labels::from_sorted(v)
}

impl Context {
    /// [`drop_name`], computed once per distinct input label set of the query.
    pub fn drop_name(&self, l: &Labels) -> Labels {
        if l.get(crate::model::METRIC_NAME).is_none() {
            return l.clone();
        }
        let key = l.address();
        if let Some((_, out)) = self.name_drops.borrow().get(&key) {
            return out.clone();
        }
        let out = drop_name(l);
        self.name_drops.borrow_mut().insert(key, (l.clone(), out.clone()));
        out
    }
}

/// The metric name of a sample, also while it waits to be dropped.
pub fn metric_name(l: &Labels) -> &str {
    l.get(crate::model::METRIC_NAME).or_else(|| l.get(DROPPED_NAME)).unwrap_or("")
}

/// The labels as a result shows them: names marked for removal are gone.
pub fn finish_names(l: Labels) -> Labels {
    if l.get(DROPPED_NAME).is_some() { l.without(&[DROPPED_NAME]) } else { l }
}

/// Prometheus rejects vectors where two elements have the same labels (e.g. after a
/// function dropped the metric names).
pub fn check_unique(v: &[Sample]) -> Result<(), QueryError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.labels) {
            return Err(QueryError::Execution("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(())
}
