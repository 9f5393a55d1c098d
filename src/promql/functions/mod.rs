//! PromQL functions. Range functions receive the series of their range argument with the
//! window boundaries; the rate family extrapolates exactly as Prometheus 3's
//! `extrapolatedRate` (`promql/functions.go`). Window statistics are in [`over_time`], the
//! date functions in [`calendar`].

mod calendar;
mod histogram;
mod over_time;

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr, VectorSelector};

use super::QueryError;
use super::eval::{Context, RangeArg, check_unique, drop_name};
use super::value::{Sample, Value};
use crate::model::Labels;
use crate::tsdb::Point;

pub use super::value::format_value;

pub fn eval(ctx: &Context, call: &Call, t: i64) -> Result<Value, QueryError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|b| b.as_ref()).collect();
    let out = match name {
        "rate" => range_fn(ctx, Some(call), &args, t, |r, s, e| extrapolated(r, s, e, true, true))?,
        "increase" => range_fn(ctx, Some(call), &args, t, |r, s, e| extrapolated(r, s, e, true, false))?,
        "delta" => range_fn(ctx, Some(call), &args, t, |r, s, e| extrapolated(r, s, e, false, false))?,
        "irate" => range_fn(ctx, Some(call), &args, t, |r, _, _| instant_delta(r, true))?,
        "idelta" => range_fn(ctx, Some(call), &args, t, |r, _, _| instant_delta(r, false))?,
        "sum_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::sum(r))?,
        "count_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| Some(r.len() as f64))?,
        "avg_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::avg(r))?,
        "ts_of_min_over_time" => {
            range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::ts_of(r, |v, best| v <= best))?
        }
        "ts_of_max_over_time" => {
            range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::ts_of(r, |v, best| v >= best))?
        }
        "ts_of_last_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| r.last().map(|p| p.t as f64 / 1000.0))?,
        "double_exponential_smoothing" => {
            let (sf, tf) = (ctx.scalar_arg(args[1], t)?, ctx.scalar_arg(args[2], t)?);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(QueryError::Execution(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")));
            }
            range_fn(ctx, None, &args[..1], t, |r, _, _| over_time::double_exponential_smoothing(r, sf, tf))?
        }
        "timestamp" => timestamp(ctx, args[0], t)?,
        "sort" | "sort_desc" => {
            let mut v = ctx.vector_arg(args[0], t)?;
            // NaN last either way, as Prometheus.
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if name == "sort" => a.v.total_cmp(&b.v),
                _ => b.v.total_cmp(&a.v),
            });
            return Ok(Value::Vector(v));
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ctx.vector_arg(args[0], t)?;
            let names = args[1..].iter().map(|a| string_arg(ctx, a, t)).collect::<Result<Vec<_>, _>>()?;
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get_or_empty(n), b.labels.get_or_empty(n));
                    if x != y {
                        let o = natural_cmp(x, y);
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc { o.reverse() } else { o }
            });
            return Ok(Value::Vector(v));
        }
        "label_join" => label_join(ctx, &args, t)?,
        "histogram_quantile" => {
            let q = ctx.scalar_arg(args[0], t)?;
            let groups = histogram::classic_groups(ctx.vector_arg(args[1], t)?);
            groups.into_iter().map(|(labels, b)| Sample { labels, v: histogram::bucket_quantile(q, b) }).collect()
        }
        "histogram_fraction" => {
            let (lower, upper) = (ctx.scalar_arg(args[0], t)?, ctx.scalar_arg(args[1], t)?);
            let groups = histogram::classic_groups(ctx.vector_arg(args[2], t)?);
            groups
                .into_iter()
                .map(|(labels, b)| Sample { labels, v: histogram::bucket_fraction(lower, upper, b) })
                .collect()
        }
        "min_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| fold_nan_aware(r, |a, b| b < a))?,
        "max_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| fold_nan_aware(r, |a, b| b > a))?,
        "last_over_time" => return keep_name_range(ctx, &args, t, |r| r.last().map(|p| p.v)),
        "present_over_time" => range_fn(ctx, Some(call), &args, t, |_, _, _| Some(1.0))?,
        "stdvar_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::variance(r))?,
        "stddev_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::variance(r).map(f64::sqrt))?,
        "mad_over_time" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::mad(r))?,
        "quantile_over_time" => {
            let phi = ctx.scalar_arg(args[0], t)?;
            range_fn(ctx, None, &args[1..], t, |r, _, _| over_time::quantile(phi, r.iter().map(|p| p.v).collect()))?
        }
        "changes" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::changes(r))?,
        "resets" => range_fn(ctx, Some(call), &args, t, |r, _, _| over_time::resets(r))?,
        "deriv" => range_fn(ctx, Some(call), &args, t, |r, _, _| {
            r.first().and_then(|f| over_time::linear_regression(r, f.t)).map(|(slope, _)| slope)
        })?,
        "predict_linear" => {
            let ahead = ctx.scalar_arg(args[1], t)?;
            // The intercept is at the evaluation time, not at the window's end (`@`).
            range_fn(ctx, None, &args[..1], t, |r, _, _| {
                over_time::linear_regression(r, t).map(|(slope, intercept)| slope * ahead + intercept)
            })?
        }
        "absent" => {
            let present = !ctx.vector_arg(args[0], t)?.is_empty();
            return Ok(Value::Vector(absent(present, args[0])));
        }
        "absent_over_time" => {
            let present = ctx.range_arg(args[0], t)?.series.iter().any(|s| !s.points.is_empty());
            return Ok(Value::Vector(absent(present, args[0])));
        }
        "minute" | "hour" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "month" | "year" => {
            let v = match args.first() {
                Some(a) => ctx.vector_arg(a, t)?,
                None => vec![Sample { labels: Labels::empty(), v: t as f64 / 1000.0 }],
            };
            v.into_iter()
                .map(|s| Sample { labels: drop_name(&s.labels), v: calendar::part(name, s.v).unwrap_or(f64::NAN) })
                .collect()
        }
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "vector" => {
            let v = ctx.scalar_arg(args[0], t)?;
            return Ok(Value::Vector(vec![Sample { labels: Labels::empty(), v }]));
        }
        "scalar" => {
            let v = ctx.vector_arg(args[0], t)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "abs" => math(ctx, &args, t, f64::abs)?,
        "ceil" => math(ctx, &args, t, f64::ceil)?,
        "floor" => math(ctx, &args, t, f64::floor)?,
        "exp" => math(ctx, &args, t, f64::exp)?,
        "sqrt" => math(ctx, &args, t, f64::sqrt)?,
        "ln" => math(ctx, &args, t, f64::ln)?,
        "log2" => math(ctx, &args, t, f64::log2)?,
        "log10" => math(ctx, &args, t, f64::log10)?,
        "sgn" => math(ctx, &args, t, |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        })?,
        "sin" => math(ctx, &args, t, f64::sin)?,
        "cos" => math(ctx, &args, t, f64::cos)?,
        "tan" => math(ctx, &args, t, f64::tan)?,
        "asin" => math(ctx, &args, t, f64::asin)?,
        "acos" => math(ctx, &args, t, f64::acos)?,
        "atan" => math(ctx, &args, t, f64::atan)?,
        "sinh" => math(ctx, &args, t, f64::sinh)?,
        "cosh" => math(ctx, &args, t, f64::cosh)?,
        "tanh" => math(ctx, &args, t, f64::tanh)?,
        "asinh" => math(ctx, &args, t, f64::asinh)?,
        "acosh" => math(ctx, &args, t, f64::acosh)?,
        "atanh" => math(ctx, &args, t, f64::atanh)?,
        "deg" => math(ctx, &args, t, |v| v * 180.0 / std::f64::consts::PI)?,
        "rad" => math(ctx, &args, t, |v| v * std::f64::consts::PI / 180.0)?,
        "round" => {
            let to_nearest = match args.get(1) {
                Some(a) => ctx.scalar_arg(a, t)?,
                None => 1.0,
            };
            // As Prometheus: multiply by the inverse, so 0.1 rounds to exact tenths.
            let inverse = 1.0 / to_nearest;
            math(ctx, &args, t, |v| (v * inverse + 0.5).floor() / inverse)?
        }
        "clamp" => {
            let (lo, hi) = (ctx.scalar_arg(args[1], t)?, ctx.scalar_arg(args[2], t)?);
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            math(ctx, &args, t, |v| lo.max(hi.min(v)))?
        }
        "clamp_min" => {
            let lo = ctx.scalar_arg(args[1], t)?;
            math(ctx, &args, t, |v| lo.max(v))?
        }
        "clamp_max" => {
            let hi = ctx.scalar_arg(args[1], t)?;
            math(ctx, &args, t, |v| hi.min(v))?
        }
        "label_replace" => label_replace(ctx, &args, t)?,
        other => return Err(QueryError::Execution(format!("function {other:?} is not supported yet"))),
    };
    // Names are only marked for removal until the end, so every other function keeps its
    // input's distinct label sets; these rewrite labels and can make two series one.
    if matches!(name, "label_replace" | "label_join" | "histogram_quantile" | "histogram_fraction") {
        check_unique(&out)?;
    }
    Ok(Value::Vector(out))
}

/// A range function over its range argument. `call` is given when the value depends on
/// nothing but the window (no other argument): then, inside a range query, the values of
/// every step are computed at once, series by series.
fn range_fn(
    ctx: &Context,
    call: Option<&Call>,
    args: &[&Expr],
    t: i64,
    f: impl Fn(&[Point], i64, i64) -> Option<f64>,
) -> Result<Vec<Sample>, QueryError> {
    let mut arg = args[0];
    while let Expr::Paren(p) = arg {
        arg = &p.expr;
    }
    if let (Some(call), Some((first, last, step)), Expr::MatrixSelector(ms)) = (call, ctx.steps.get(), arg)
        && t >= first
        && t <= last
        && (t - first) % step == 0
    {
        let key = call as *const Call as usize;
        let cached = ctx.step_columns.borrow().get(&key).cloned();
        let columns = match cached {
            Some(c) => c,
            None => {
                let c = std::rc::Rc::new(step_columns(ctx, ms, (first, last, step), &f)?);
                ctx.step_columns.borrow_mut().insert(key, c.clone());
                c
            }
        };
        let k = ((t - first) / step) as usize;
        return Ok(columns
            .series
            .iter()
            .filter_map(|(labels, values)| values[k].map(|v| Sample { labels: labels.clone(), v }))
            .collect());
    }
    if let Expr::MatrixSelector(ms) = arg {
        let mut out = Vec::new();
        ctx.for_each_window(ms, t, |labels, points, start, end| {
            if let Some(v) = f(points, start, end) {
                out.push(Sample { labels: ctx.drop_name(labels), v });
            }
        });
        return Ok(out);
    }
    let RangeArg { series, start, end } = ctx.range_arg(args[0], t)?;
    Ok(series
        .into_iter()
        .filter_map(|s| f(&s.points, start, end).map(|v| Sample { labels: ctx.drop_name(&s.labels), v }))
        .collect())
}

/// `f` over the window of every step, series by series, as [`Context::for_each_window`]
/// would give them one step at a time.
fn step_columns(
    ctx: &Context,
    ms: &promql_parser::parser::MatrixSelector,
    (first, last, step): (i64, i64, i64),
    f: &impl Fn(&[Point], i64, i64) -> Option<f64>,
) -> Result<super::eval::StepColumns, QueryError> {
    let n = ((last - first) / step + 1) as usize;
    let mut series = Vec::new();
    let mut scratch: Vec<Point> = Vec::new();
    for (i, s) in ctx.loaded_for(&ms.vs).iter().enumerate() {
        if i % 1024 == 1023 {
            ctx.check_deadline()?;
        }
        let mut values: Vec<Option<f64>> = vec![None; n];
        let mut any = false;
        for (k, value) in values.iter_mut().enumerate() {
            let (start, end) = ctx.window_bounds(ms, first + k as i64 * step);
            let lo = s.points.partition_point(|p| p.t <= start);
            let hi = s.points.partition_point(|p| p.t <= end).max(lo);
            let mut window = &s.points[lo..hi];
            if window.iter().any(|p| crate::model::is_stale_nan(p.v)) {
                scratch.clear();
                scratch.extend(window.iter().copied().filter(|p| !crate::model::is_stale_nan(p.v)));
                window = &scratch;
            }
            if !window.is_empty() {
                *value = f(window, start, end);
                any |= value.is_some();
            }
        }
        if any {
            series.push((ctx.drop_name(&s.labels), values));
        }
    }
    Ok(super::eval::StepColumns { series })
}

fn keep_name_range(
    ctx: &Context,
    args: &[&Expr],
    t: i64,
    f: impl Fn(&[Point]) -> Option<f64>,
) -> Result<Value, QueryError> {
    let RangeArg { series, .. } = ctx.range_arg(args[0], t)?;
    Ok(Value::Vector(series.into_iter().filter_map(|s| f(&s.points).map(|v| Sample { labels: s.labels, v })).collect()))
}

fn math(ctx: &Context, args: &[&Expr], t: i64, f: impl Fn(f64) -> f64) -> Result<Vec<Sample>, QueryError> {
    Ok(ctx
        .vector_arg(args[0], t)?
        .into_iter()
        .map(|s| Sample { labels: ctx.drop_name(&s.labels), v: f(s.v) })
        .collect())
}

/// `absent(…)` / `absent_over_time(…)`: one sample of value 1 when nothing is present,
/// labelled with the argument selector's equality matchers (a label matched twice is
/// left out, as Prometheus does).
fn absent(present: bool, arg: &Expr) -> Vec<Sample> {
    if present {
        return Vec::new();
    }
    fn selector(e: &Expr) -> Option<&VectorSelector> {
        match e {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        }
    }
    // In matcher order: the first equality on a name sets it; any other matcher on that
    // name removes it for good (Prometheus's historic rule).
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    if let Some(vs) = selector(arg) {
        for m in vs.matchers.matchers.iter().filter(|m| m.name != crate::model::METRIC_NAME) {
            if matches!(m.op, MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
                pairs.push((m.name.clone(), m.value.clone()));
                seen.push(&m.name);
            } else {
                pairs.retain(|(n, _)| *n != m.name);
            }
        }
    }
    pairs.retain(|(_, v)| !v.is_empty());
    vec![Sample { labels: Labels::from_pairs(pairs), v: 1.0 }]
}

/// `timestamp(v)`: the time of each selected sample for a selector, the evaluation time
/// for anything computed.
fn timestamp(ctx: &Context, arg: &Expr, t: i64) -> Result<Vec<Sample>, QueryError> {
    let mut e = arg;
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    Ok(match e {
        Expr::VectorSelector(vs) => ctx
            .selected_points(vs, t)
            .into_iter()
            .map(|(labels, p)| Sample { labels: drop_name(&labels), v: p.t as f64 / 1000.0 })
            .collect(),
        _ => ctx
            .vector_arg(arg, t)?
            .into_iter()
            .map(|s| Sample { labels: drop_name(&s.labels), v: t as f64 / 1000.0 })
            .collect(),
    })
}

/// Natural order: runs of digits compare as numbers, everything else byte by byte.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let x = std::str::from_utf8(&a[si..i]).unwrap_or("").trim_start_matches('0');
            let y = std::str::from_utf8(&b[sj..j]).unwrap_or("").trim_start_matches('0');
            match x.len().cmp(&y.len()).then_with(|| x.cmp(y)) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        match a[i].cmp(&b[j]) {
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
            o => return o,
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// A label's value for `label_replace` / `label_join`: `__name__` is readable while it
/// waits to be dropped.
fn label_value<'a>(l: &'a Labels, name: &str) -> &'a str {
    if name == crate::model::METRIC_NAME { super::eval::metric_name(l) } else { l.get_or_empty(name) }
}

/// Sets (or, with an empty value, removes) a label; setting `__name__` keeps the name.
fn set_label(l: &Labels, name: &str, value: String) -> Labels {
    let mut lb = l.builder();
    lb.set(name.to_string(), value);
    if name == crate::model::METRIC_NAME {
        lb.set(super::eval::DROPPED_NAME, "");
    }
    lb.into_labels()
}

/// `label_join(v, dst, separator, src…)`: the source values joined into `dst`.
fn label_join(ctx: &Context, args: &[&Expr], t: i64) -> Result<Vec<Sample>, QueryError> {
    let v = ctx.vector_arg(args[0], t)?;
    let dst = string_arg(ctx, args[1], t)?;
    let sep = string_arg(ctx, args[2], t)?;
    let srcs = args[3..].iter().map(|a| string_arg(ctx, a, t)).collect::<Result<Vec<_>, _>>()?;
    if dst.is_empty() {
        return Err(QueryError::Execution(format!("invalid destination label name in label_join(): {dst}")));
    }
    Ok(v.into_iter()
        .map(|s| {
            let joined = srcs.iter().map(|n| label_value(&s.labels, n)).collect::<Vec<_>>().join(&sep);
            Sample { labels: set_label(&s.labels, &dst, joined), v: s.v }
        })
        .collect())
}

fn fold_nan_aware(r: &[Point], better: impl Fn(f64, f64) -> bool) -> Option<f64> {
    let mut it = r.iter().map(|p| p.v);
    let mut acc = it.next()?;
    for v in it {
        if better(acc, v) || acc.is_nan() {
            acc = v;
        }
    }
    Some(acc)
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards the
/// window's edges when the samples stop short of them (Prometheus 3 semantics).
pub fn extrapolated(
    points: &[Point],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let secs = |ms: i64| ms as f64 / 1000.0;
    let sampled = secs(last.t - first.t);
    let mut to_start = secs(first.t - range_start);
    let mut to_end = secs(range_end - last.t);
    let avg_between = sampled / (points.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    // A counter cannot go below zero: do not extrapolate past the point where it would be
    // 0 (applied after the half-interval cap, as Prometheus 3.5 does).
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= secs(range_end - range_start);
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples only.
pub fn instant_delta(points: &[Point], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let prev = points[points.len() - 2];
    let mut v = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    if is_rate {
        let dt = (last.t - prev.t) as f64 / 1000.0;
        if dt == 0.0 {
            return None;
        }
        v /= dt;
    }
    Some(v)
}

fn string_arg(ctx: &Context, e: &Expr, t: i64) -> Result<String, QueryError> {
    match ctx.eval(e, t)? {
        Value::String(s) => Ok(s),
        other => Err(QueryError::Execution(format!("expected string, got {}", other.type_name()))),
    }
}

/// `label_replace(v, dst, replacement, src, regex)`: as relabeling's `replace`, per sample.
fn label_replace(ctx: &Context, args: &[&Expr], t: i64) -> Result<Vec<Sample>, QueryError> {
    let v = ctx.vector_arg(args[0], t)?;
    let dst = string_arg(ctx, args[1], t)?;
    let repl = string_arg(ctx, args[2], t)?;
    let src = string_arg(ctx, args[3], t)?;
    let pattern = string_arg(ctx, args[4], t)?;
    let re = crate::model::compile_go_regex(&pattern)
        .map_err(|e| QueryError::Execution(format!("invalid regular expression in label_replace(): {pattern}: {e}")))?;
    if dst.is_empty() {
        return Err(QueryError::Execution(format!("invalid destination label name in label_replace(): {dst}")));
    }
    Ok(v.into_iter()
        .map(|s| {
            let Some(caps) = re.captures(label_value(&s.labels, &src)) else { return s };
            let mut value = String::new();
            caps.expand(&repl, &mut value);
            Sample { labels: set_label(&s.labels, &dst, value), v: s.v }
        })
        .collect())
}
