//! Phase one of evaluation: load every selector's samples once for the whole query.
//!
//! The AST is walked with the window of evaluation times each node will see (subqueries
//! widen it, offsets and `@` move it); each selector's series are fetched for the union of
//! its windows and kept under the selector's address in the AST.

use std::collections::HashMap;

use promql_parser::label::MatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::QueryError;
use crate::model::METRIC_NAME;
use crate::tsdb::{Matcher, Querier, SelectRequest, SeriesData};

/// Series loaded per selector, keyed by the selector's address.
pub type Loaded = HashMap<usize, Vec<SeriesData>>;

/// The key of a selector in [`Loaded`].
pub fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

pub struct Window {
    /// Query start and end, for `@ start()` / `@ end()`.
    pub query_start: i64,
    pub query_end: i64,
    pub lookback: i64,
    /// Subquery resolution when none is given.
    pub default_step: i64,
}

pub fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

pub fn at_ms(at: &Option<AtModifier>, w: &Window) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(w.query_start),
        Some(AtModifier::End) => Some(w.query_end),
        Some(AtModifier::At(t)) => Some(match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }),
    }
}

/// The storage matchers of a selector (the metric name becomes a `__name__` matcher).
pub fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::Execution("\"or\" inside label matchers is not supported yet".into()));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name
        && !vs.matchers.matchers.iter().any(|m| m.name == METRIC_NAME)
    {
        out.push(Matcher::equal(METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        out.push(match &m.op {
            MatchOp::Equal => Matcher::equal(m.name.clone(), m.value.clone()),
            MatchOp::NotEqual => Matcher::not_equal(m.name.clone(), m.value.clone()),
            MatchOp::Re(_) => {
                Matcher::regex(m.name.clone(), &m.value, false).map_err(|e| QueryError::Parse(e.to_string()))?
            }
            MatchOp::NotRe(_) => {
                Matcher::regex(m.name.clone(), &m.value, true).map_err(|e| QueryError::Parse(e.to_string()))?
            }
        });
    }
    Ok(out)
}

/// Loads the data of every selector in `expr` for evaluation times in `[start, end]`.
pub fn preload(expr: &Expr, q: &dyn Querier, w: &Window, start: i64, end: i64) -> Result<Loaded, QueryError> {
    let mut ranges: HashMap<usize, Range<'_>> = HashMap::new();
    collect(expr, w, start, end, &mut ranges);
    let mut keys = Vec::with_capacity(ranges.len());
    let mut requests = Vec::with_capacity(ranges.len());
    for (k, r) in ranges {
        keys.push(k);
        requests.push(SelectRequest {
            matchers: matchers(r.vs)?,
            mint: r.mint,
            maxt: r.maxt,
            latest_only: r.latest_only,
        });
    }
    // One read for all selectors: they see the same commits.
    Ok(keys.into_iter().zip(q.select_many(&requests)).collect())
}

/// The samples one selector needs.
struct Range<'a> {
    vs: &'a VectorSelector,
    mint: i64,
    maxt: i64,
    /// Only read as an instant selector at a single time: its newest sample is enough.
    latest_only: bool,
}

fn note<'a>(ranges: &mut HashMap<usize, Range<'a>>, vs: &'a VectorSelector, mint: i64, maxt: i64, latest_only: bool) {
    let e = ranges.entry(key(vs)).or_insert(Range { vs, mint, maxt, latest_only });
    e.mint = e.mint.min(mint);
    e.maxt = e.maxt.max(maxt);
    e.latest_only &= latest_only;
}

fn collect<'a>(expr: &'a Expr, w: &Window, start: i64, end: i64, ranges: &mut HashMap<usize, Range<'a>>) {
    match expr {
        Expr::VectorSelector(vs) => {
            let (lo, hi) = shifted(&vs.at, &vs.offset, w, start, end);
            note(ranges, vs, lo - w.lookback, hi, lo == hi);
        }
        Expr::MatrixSelector(ms) => {
            let (lo, hi) = shifted(&ms.vs.at, &ms.vs.offset, w, start, end);
            note(ranges, &ms.vs, lo - ms.range.as_millis() as i64, hi, false);
        }
        Expr::Subquery(sq) => {
            let (lo, hi) = shifted(&sq.at, &sq.offset, w, start, end);
            collect(&sq.expr, w, lo - sq.range.as_millis() as i64, hi, ranges);
        }
        Expr::Aggregate(a) => {
            collect(&a.expr, w, start, end, ranges);
            if let Some(p) = &a.param {
                collect(p, w, start, end, ranges);
            }
        }
        Expr::Unary(u) => collect(&u.expr, w, start, end, ranges),
        Expr::Binary(b) => {
            collect(&b.lhs, w, start, end, ranges);
            collect(&b.rhs, w, start, end, ranges);
        }
        Expr::Paren(p) => collect(&p.expr, w, start, end, ranges),
        Expr::Call(c) => {
            for a in &c.args.args {
                collect(a, w, start, end, ranges);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn shifted(at: &Option<AtModifier>, offset: &Option<Offset>, w: &Window, start: i64, end: i64) -> (i64, i64) {
    let off = offset_ms(offset);
    match at_ms(at, w) {
        Some(t) => (t - off, t - off),
        None => (start - off, end - off),
    }
}
