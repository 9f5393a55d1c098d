//! Range functions beyond the rate family: statistics over a window (`stddev_over_time`,
//! `quantile_over_time`, `mad_over_time`), `changes`, `resets`, and the linear regression
//! behind `deriv` and `predict_linear` (Prometheus's `linearRegression`, time in seconds
//! relative to an intercept time).

use crate::tsdb::Point;

/// One step of Kahan–Neumaier summation (Prometheus's `kahanSumInc`): the new sum and
/// compensation.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `sum_over_time`, compensated.
pub fn sum(r: &[Point]) -> Option<f64> {
    if r.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in r {
        (sum, c) = kahan_inc(p.v, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// `avg_over_time` as Prometheus 3.5: a compensated direct mean while the sum stays finite,
/// an incremental mean from where it would overflow.
pub fn avg(r: &[Point]) -> Option<f64> {
    let first = r.first()?;
    let (mut sum, mut c, mut mean) = (first.v, 0.0, 0.0);
    let mut incremental = false;
    let mut count = 1.0;
    for p in &r[1..] {
        count += 1.0;
        if !incremental {
            let (s, nc) = kahan_inc(p.v, sum, c);
            if !s.is_infinite() {
                (sum, c) = (s, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    Some(if incremental { mean + c } else { sum / count + c / count })
}

/// Holt–Winters double exponential smoothing with smoothing factor `sf` and trend factor
/// `tf` (both already checked to be in (0, 1)).
pub fn double_exponential_smoothing(r: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if r.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, r[0].v);
    let mut b = r[1].v - r[0].v;
    for (i, p) in r.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

/// The time (seconds) of the sample `better` picks over the window; ties go to the later.
pub fn ts_of(r: &[Point], better: impl Fn(f64, f64) -> bool) -> Option<f64> {
    let first = r.first()?;
    let (mut best, mut at) = (first.v, first.t);
    for p in r {
        if better(p.v, best) || best.is_nan() {
            (best, at) = (p.v, p.t);
        }
    }
    Some(at as f64 / 1000.0)
}

/// Population variance (Welford's method, as Prometheus accumulates it).
pub fn variance(r: &[Point]) -> Option<f64> {
    if r.is_empty() {
        return None;
    }
    let (mut mean, mut m2) = (0.0f64, 0.0f64);
    for (i, p) in r.iter().enumerate() {
        let delta = p.v - mean;
        mean += delta / (i + 1) as f64;
        m2 += delta * (p.v - mean);
    }
    Some(m2 / r.len() as f64)
}

/// The φ-quantile of `values` (the aggregation's rule); `None` when there are none.
pub fn quantile(phi: f64, values: Vec<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| super::super::aggregate::quantile(phi, values))
}

/// Median absolute deviation from the median.
pub fn mad(r: &[Point]) -> Option<f64> {
    let values: Vec<f64> = r.iter().map(|p| p.v).collect();
    let median = quantile(0.5, values.clone())?;
    quantile(0.5, values.iter().map(|v| (v - median).abs()).collect())
}

/// How often the value changed (NaN to NaN is no change).
pub fn changes(r: &[Point]) -> Option<f64> {
    let first = r.first()?;
    let mut prev = first.v;
    let mut n = 0;
    for p in &r[1..] {
        if !(p.v == prev || (p.v.is_nan() && prev.is_nan())) {
            n += 1;
        }
        prev = p.v;
    }
    Some(n as f64)
}

/// How often the value dropped (a counter reset).
pub fn resets(r: &[Point]) -> Option<f64> {
    let first = r.first()?;
    let mut prev = first.v;
    let mut n = 0;
    for p in &r[1..] {
        if p.v < prev {
            n += 1;
        }
        prev = p.v;
    }
    Some(n as f64)
}

/// Least-squares slope (per second) and the intercept at `intercept_ms`.
pub fn linear_regression(r: &[Point], intercept_ms: i64) -> Option<(f64, f64)> {
    if r.len() < 2 {
        return None;
    }
    let (mut n, mut sum_x, mut sum_y, mut sum_xy, mut sum_x2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let const_y = r.iter().all(|p| p.v == r[0].v);
    for p in r {
        let x = (p.t - intercept_ms) as f64 / 1000.0;
        n += 1.0;
        sum_x += x;
        sum_y += p.v;
        sum_xy += x * p.v;
        sum_x2 += x * x;
    }
    if const_y && r[0].v.is_finite() {
        return Some((0.0, r[0].v));
    }
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    Some((slope, sum_y / n - slope * sum_x / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[f64]) -> Vec<Point> {
        v.iter().enumerate().map(|(i, &v)| Point { t: i as i64 * 60_000, v }).collect()
    }

    #[test]
    fn statistics() {
        assert_eq!(variance(&pts(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])), Some(4.0));
        assert_eq!(quantile(0.5, vec![3.0, 1.0, 2.0, 4.0]), Some(2.5));
        assert_eq!(quantile(1.5, vec![1.0]), Some(f64::INFINITY));
        assert_eq!(quantile(0.5, vec![]), None);
        assert_eq!(mad(&pts(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0])), Some(1.0));
        assert_eq!(changes(&pts(&[1.0, 1.0, 2.0, f64::NAN, f64::NAN, 2.0])), Some(3.0));
        assert_eq!(resets(&pts(&[1.0, 5.0, 2.0, 3.0, 0.0])), Some(2.0));
        let (slope, intercept) = linear_regression(&pts(&[0.0, 60.0, 120.0]), 0).unwrap();
        assert!((slope - 1.0).abs() < 1e-12 && intercept.abs() < 1e-9, "{slope} {intercept}");
    }
}
