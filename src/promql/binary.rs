//! Binary operators: arithmetic, comparison (with `bool`), and the set operators, with
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`).

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::{self, TokenId};
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::QueryError;
use super::eval::{Context, DROPPED_NAME, drop_name};
use super::value::{Sample, Value};
use crate::model::{Labels, METRIC_NAME};

pub fn eval(ctx: &Context, b: &BinaryExpr, t: i64) -> Result<Value, QueryError> {
    let op = b.op.id();
    let return_bool = b.return_bool();
    let lhs = ctx.eval(&b.lhs, t)?;
    let rhs = ctx.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = elem_binop(op, l, r)?;
            Ok(Value::Scalar(if is_comparison(op) { if keep { 1.0 } else { 0.0 } } else { v }))
        }
        (Value::Vector(v), Value::Scalar(s)) => vector_scalar(op, v, s, false, return_bool).map(Value::Vector),
        (Value::Scalar(s), Value::Vector(v)) => vector_scalar(op, v, s, true, return_bool).map(Value::Vector),
        (Value::Vector(l), Value::Vector(r)) => {
            let m = b.modifier.as_ref();
            match op {
                token::T_LAND => Ok(Value::Vector(and_unless(l, r, m, true))),
                token::T_LUNLESS => Ok(Value::Vector(and_unless(l, r, m, false))),
                token::T_LOR => Ok(Value::Vector(or(l, r, m))),
                _ => vector_vector(op, l, r, m, return_bool).map(Value::Vector),
            }
        }
        (l, r) => Err(QueryError::Execution(format!(
            "binary operator {} not defined between {} and {}",
            b.op,
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, token::T_EQLC | token::T_NEQ | token::T_GTR | token::T_LSS | token::T_GTE | token::T_LTE)
}

/// Arithmetic operators drop the metric name; comparisons keep it (unless `bool`).
fn drops_name(op: TokenId) -> bool {
    matches!(
        op,
        token::T_ADD | token::T_SUB | token::T_MUL | token::T_DIV | token::T_POW | token::T_MOD | token::T_ATAN2
    )
}

/// Applies `op`; for comparisons returns the left value and whether the comparison held.
fn elem_binop(op: TokenId, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        token::T_ADD => (l + r, true),
        token::T_SUB => (l - r, true),
        token::T_MUL => (l * r, true),
        token::T_DIV => (l / r, true),
        token::T_POW => (l.powf(r), true),
        token::T_MOD => (l % r, true),
        token::T_ATAN2 => (l.atan2(r), true),
        token::T_EQLC => (l, l == r),
        token::T_NEQ => (l, l != r),
        token::T_GTR => (l, l > r),
        token::T_LSS => (l, l < r),
        token::T_GTE => (l, l >= r),
        token::T_LTE => (l, l <= r),
        _ => return Err(QueryError::Execution(format!("operator {op} not allowed here"))),
    })
}

fn vector_scalar(
    op: TokenId,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let mut out = Vec::with_capacity(v.len());
    for mut e in v {
        let (l, r) = if swap { (s, e.v) } else { (e.v, s) };
        let (mut value, mut keep) = elem_binop(op, l, r)?;
        // A comparison always returns the vector element's value, even when it is on the right.
        if is_comparison(op) && swap {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            e.v = value;
            if drops_name(op) || return_bool {
                e.labels = drop_name(&e.labels);
            }
            out.push(e);
        }
    }
    Ok(out)
}

/// The labels two sides are matched on.
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(names)) => {
            let names: Vec<&str> = names.labels.iter().map(String::as_str).collect();
            l.only(&names)
        }
        Some(LabelModifier::Exclude(names)) => {
            let mut names: Vec<&str> = names.labels.iter().map(String::as_str).collect();
            names.extend([METRIC_NAME, DROPPED_NAME]);
            l.without(&names)
        }
        None => l.without(&[METRIC_NAME, DROPPED_NAME]),
    }
}

fn matching(m: Option<&BinModifier>) -> Option<&LabelModifier> {
    m.and_then(|m| m.matching.as_ref())
}

fn and_unless(l: Vec<Sample>, r: Vec<Sample>, m: Option<&BinModifier>, and: bool) -> Vec<Sample> {
    let on = matching(m);
    let right: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, on)).collect();
    l.into_iter().filter(|s| right.contains(&signature(&s.labels, on)) == and).collect()
}

fn or(l: Vec<Sample>, r: Vec<Sample>, m: Option<&BinModifier>) -> Vec<Sample> {
    let on = matching(m);
    let left: HashSet<Labels> = l.iter().map(|s| signature(&s.labels, on)).collect();
    let mut out = l;
    out.extend(r.into_iter().filter(|s| !left.contains(&signature(&s.labels, on))));
    out
}

fn vector_vector(
    op: TokenId,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: Option<&BinModifier>,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let card = m.map(|m| m.card.clone()).unwrap_or(VectorMatchCardinality::OneToOne);
    let on = matching(m);
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };

    let mut one_side: HashMap<Labels, Sample> = HashMap::with_capacity(one.len());
    for s in one {
        let sig = signature(&s.labels, on);
        if let Some(prev) = one_side.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                prev.labels, s.labels
            )));
        }
        one_side.insert(sig, s);
    }

    let mut matched_one_to_one: HashSet<Labels> = HashSet::new();
    let mut matched_many: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for s in many {
        let sig = signature(&s.labels, on);
        let Some(o) = one_side.get(&sig) else { continue };
        let (vl, vr) = if swapped { (o.v, s.v) } else { (s.v, o.v) };
        let (mut value, mut keep) = elem_binop(op, vl, vr)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        let metric = result_labels(&s.labels, &o.labels, op, return_bool, on, &card);
        match card {
            VectorMatchCardinality::OneToOne => {
                if !matched_one_to_one.insert(sig) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
            }
            _ => {
                if !matched_many.entry(sig).or_default().insert(metric.clone()) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches".into(),
                    ));
                }
            }
        }
        out.push(Sample { labels: metric, v: value });
    }
    Ok(out)
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    op: TokenId,
    return_bool: bool,
    on: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
) -> Labels {
    let marked;
    let mut lb = if drops_name(op) || return_bool {
        marked = drop_name(many);
        marked.builder()
    } else {
        many.builder()
    };
    match card {
        VectorMatchCardinality::OneToOne => match on {
            Some(LabelModifier::Include(names)) => lb.retain(|n| names.labels.iter().any(|k| k == n)),
            Some(LabelModifier::Exclude(names)) => {
                for n in &names.labels {
                    lb.del(n);
                }
            }
            None => {}
        },
        VectorMatchCardinality::ManyToOne(extra) | VectorMatchCardinality::OneToMany(extra) => {
            for n in &extra.labels {
                match one.get(n) {
                    Some(v) => lb.set(n.clone(), v),
                    None => lb.del(n),
                }
            }
        }
        VectorMatchCardinality::ManyToMany => {}
    }
    lb.into_labels()
}
