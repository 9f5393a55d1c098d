//! Aggregation operators: `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`, with `by` / `without`.

use std::collections::HashMap;

use promql_parser::parser::token::{self, TokenId};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::QueryError;
use super::eval::Context;
use super::value::{Sample, Value};
use crate::model::{Labels, METRIC_NAME};

/// The output labels of a series' group.
pub fn group_labels(l: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::empty(),
        Some(LabelModifier::Include(names)) => {
            let mut names: Vec<&str> = names.labels.iter().map(String::as_str).collect();
            // `by (__name__)` also groups by a name waiting to be dropped, which stays marked.
            if names.contains(&METRIC_NAME) {
                names.push(super::eval::DROPPED_NAME);
            }
            l.only(&names)
        }
        Some(LabelModifier::Exclude(names)) => {
            let mut names: Vec<&str> = names.labels.iter().map(String::as_str).collect();
            names.extend([METRIC_NAME, super::eval::DROPPED_NAME]);
            l.without(&names)
        }
    }
}

/// The labels [`group_labels`] keeps, as pairs in label order, without building them.
fn grouping_pairs<'a>(l: &'a Labels, modifier: &'a Option<LabelModifier>) -> impl Iterator<Item = (&'a str, &'a str)> {
    let dropped = super::eval::DROPPED_NAME;
    l.iter()
        .filter(move |x| match modifier {
            None => false,
            Some(LabelModifier::Include(names)) => {
                names.labels.iter().any(|n| *n == x.name || (n == METRIC_NAME && x.name == dropped))
            }
            Some(LabelModifier::Exclude(names)) => {
                x.name != METRIC_NAME && x.name != dropped && !names.labels.contains(&x.name)
            }
        })
        .map(|x| (x.name.as_str(), x.value.as_str()))
}

fn grouping_hash(l: &Labels, modifier: &Option<LabelModifier>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in grouping_pairs(l, modifier) {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// Kahan–Babuška summation, as Prometheus 3 uses for `sum` and `avg`.
#[derive(Default, Clone, Copy)]
struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if t.is_infinite() {
            self.c = 0.0;
        } else if self.sum.abs() >= v.abs() {
            self.c += (self.sum - t) + v;
        } else {
            self.c += (v - t) + self.sum;
        }
        self.sum = t;
    }
    fn value(&self) -> f64 {
        self.sum + self.c
    }
}

struct Group {
    labels: Labels,
    count: u64,
    sum: KahanSum,
    value: f64,
    // Welford's running mean and M2 for stddev/stdvar.
    mean: f64,
    m2: f64,
    values: Vec<f64>,
}

pub fn eval(ctx: &Context, a: &AggregateExpr, t: i64) -> Result<Value, QueryError> {
    let op: TokenId = a.op.id();
    let input = ctx.vector_arg(&a.expr, t)?;
    match op {
        token::T_TOPK | token::T_BOTTOMK => {
            let k = param_scalar(ctx, a, t)?;
            return Ok(Value::Vector(top_bottom(input, k, &a.modifier, op == token::T_TOPK)));
        }
        token::T_LIMITK => {
            let k = param_scalar(ctx, a, t)?;
            return Ok(Value::Vector(limit_k(input, k, &a.modifier)));
        }
        token::T_LIMIT_RATIO => {
            let r = param_scalar(ctx, a, t)?;
            if r.is_nan() {
                return Err(QueryError::Execution(format!("Ratio value {r} is NaN")));
            }
            return Ok(Value::Vector(limit_ratio(input, r.clamp(-1.0, 1.0))));
        }
        token::T_COUNT_VALUES => {
            let label = match a.param.as_deref().map(|p| ctx.eval(p, t)).transpose()? {
                Some(Value::String(s)) => s,
                _ => return Err(QueryError::Execution("count_values needs a string parameter".into())),
            };
            return Ok(Value::Vector(count_values(input, &label, &a.modifier)));
        }
        _ => {}
    }
    let q = if op == token::T_QUANTILE { Some(param_scalar(ctx, a, t)?) } else { None };

    // Groups found by a hash of the grouping labels' pairs, compared pair by pair: a
    // sample costs no allocation unless it opens a new group.
    let mut groups: Vec<Group> = Vec::new();
    let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
    for s in input {
        let hash = grouping_hash(&s.labels, &a.modifier);
        let slot = by_hash.entry(hash).or_default();
        let found = slot.iter().copied().find(|&i| {
            grouping_pairs(&s.labels, &a.modifier)
                .eq(groups[i].labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
        });
        let i = match found {
            Some(i) => i,
            None => {
                groups.push(Group {
                    labels: group_labels(&s.labels, &a.modifier),
                    count: 0,
                    sum: KahanSum::default(),
                    value: s.v,
                    mean: 0.0,
                    m2: 0.0,
                    values: Vec::new(),
                });
                slot.push(groups.len() - 1);
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.count += 1;
        g.sum.add(s.v);
        match op {
            token::T_MIN if g.value > s.v || g.value.is_nan() => g.value = s.v,
            token::T_MAX if g.value < s.v || g.value.is_nan() => g.value = s.v,
            token::T_STDDEV | token::T_STDVAR => {
                let delta = s.v - g.mean;
                g.mean += delta / g.count as f64;
                g.m2 += delta * (s.v - g.mean);
            }
            token::T_QUANTILE => g.values.push(s.v),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let v = match op {
            token::T_SUM => g.sum.value(),
            token::T_AVG => g.sum.value() / g.count as f64,
            token::T_COUNT => g.count as f64,
            token::T_GROUP => 1.0,
            token::T_MIN | token::T_MAX => g.value,
            token::T_STDVAR => g.m2 / g.count as f64,
            token::T_STDDEV => (g.m2 / g.count as f64).sqrt(),
            token::T_QUANTILE => quantile(q.unwrap_or(f64::NAN), g.values),
            _ => {
                return Err(QueryError::Execution(format!("aggregation {} is not supported yet", a.op)));
            }
        };
        out.push(Sample { labels: g.labels, v });
    }
    Ok(Value::Vector(out))
}

fn param_scalar(ctx: &Context, a: &AggregateExpr, t: i64) -> Result<f64, QueryError> {
    match &a.param {
        Some(p) => ctx.scalar_arg(p, t),
        None => Err(QueryError::Execution(format!("{} needs a parameter", a.op))),
    }
}

/// `quantile(φ, …)`: linear interpolation between the closest ranks, as Prometheus.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0) as usize;
    let upper = (lower + 1).min(values.len() - 1);
    let weight = rank - rank.floor();
    values[lower] * (1.0 - weight) + values[upper] * weight
}

fn top_bottom(input: Vec<Sample>, k: f64, modifier: &Option<LabelModifier>, top: bool) -> Vec<Sample> {
    if k < 1.0 || k.is_nan() {
        return Vec::new();
    }
    let k = if k > i64::MAX as f64 { usize::MAX } else { k as usize };
    let mut groups: HashMap<Labels, Vec<Sample>> = HashMap::new();
    let mut order = Vec::new();
    for s in input {
        let key = group_labels(&s.labels, modifier);
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(s);
    }
    let mut out = Vec::new();
    for key in order {
        let mut g = groups.remove(&key).unwrap_or_default();
        // NaN sorts last in both directions.
        g.sort_by(|a, b| {
            let (x, y) = (a.v, b.v);
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if top => y.total_cmp(&x),
                _ => x.total_cmp(&y),
            }
        });
        g.truncate(k);
        out.extend(g);
    }
    out
}

/// `limitk`: the first `k` series of each group, in input order.
fn limit_k(input: Vec<Sample>, k: f64, modifier: &Option<LabelModifier>) -> Vec<Sample> {
    if k < 1.0 || k.is_nan() {
        return Vec::new();
    }
    let k = if k > i64::MAX as f64 { usize::MAX } else { k as usize };
    let mut taken: HashMap<u64, Vec<(Labels, usize)>> = HashMap::new();
    let mut out = Vec::new();
    for s in input {
        let key = group_labels(&s.labels, modifier);
        let slot = taken.entry(grouping_hash(&s.labels, modifier)).or_default();
        let n = match slot.iter_mut().find(|(l, _)| *l == key) {
            Some((_, n)) => n,
            None => {
                slot.push((key, 0));
                &mut slot.last_mut().expect("pushed").1
            }
        };
        if *n < k {
            *n += 1;
            out.push(s);
        }
    }
    out
}

/// `limit_ratio`: a deterministic sample of series by the hash of their labels (the name
/// included, also while it waits to be dropped), as Prometheus's `HashRatioSampler`: with
/// `r ≥ 0` the series whose offset hash/2⁶⁴ is below `r`, with `r < 0` those at or above
/// `1 + r`, so `limit_ratio(r, v)` and `limit_ratio(r - 1, v)` split `v` in two.
fn limit_ratio(input: Vec<Sample>, r: f64) -> Vec<Sample> {
    if r == 0.0 {
        return Vec::new();
    }
    input
        .into_iter()
        .filter(|s| {
            let name = super::eval::metric_name(&s.labels);
            let mut pairs: Vec<(&str, &str)> = s
                .labels
                .iter()
                .filter(|l| l.name != METRIC_NAME && l.name != super::eval::DROPPED_NAME)
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            if !name.is_empty() {
                pairs.push((METRIC_NAME, name));
            }
            pairs.sort();
            let offset = crate::model::stable_hash_pairs(pairs) as f64 / u64::MAX as f64;
            (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r)
        })
        .collect()
}

fn count_values(input: Vec<Sample>, label: &str, modifier: &Option<LabelModifier>) -> Vec<Sample> {
    let mut counts: HashMap<Labels, f64> = HashMap::new();
    let mut order = Vec::new();
    for s in input {
        let mut lb = group_labels(&s.labels, modifier).builder();
        lb.set(label, super::functions::format_value(s.v));
        let key = lb.into_labels();
        *counts.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            0.0
        }) += 1.0;
    }
    order.into_iter().map(|l| Sample { v: counts[&l], labels: l }).collect()
}
