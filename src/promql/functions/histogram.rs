//! `histogram_quantile` and `histogram_fraction` over classic histograms: `_bucket` series
//! grouped by their labels without `le`, as Prometheus 3.5's `BucketQuantile` and
//! `BucketFraction` (`promql/quantile.go`): buckets sorted by upper bound, equal bounds
//! merged, counts forced monotonic (ignoring differences within 1e-12 relative), and a
//! `+Inf` bucket required.

use std::collections::BTreeMap;

use super::super::eval::drop_name;
use super::super::value::Sample;
use crate::model::Labels;

/// Relative difference under which two bucket counts are taken as equal.
const SMALL_DELTA: f64 = 1e-12;

/// Series grouped into histograms by their labels without `le` (the name included, so two
/// histograms differing only by name stay apart and then collide as Prometheus reports),
/// with (upper bound, count) pairs; the result labels have the name marked for removal.
/// Series without a parseable `le` are left out.
pub fn classic_groups(v: Vec<Sample>) -> Vec<(Labels, Vec<(f64, f64)>)> {
    let mut out: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for s in v {
        let Ok(le) = s.labels.get_or_empty("le").parse::<f64>() else { continue };
        let mut lb = s.labels.builder();
        lb.set("le", "");
        out.entry(lb.into_labels()).or_default().push((le, s.v));
    }
    out.into_iter().map(|(l, b)| (drop_name(&l), b)).collect()
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if (a.is_nan() && b.is_nan()) || a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Sorts by bound and merges equal bounds; `None` without a `+Inf` bucket.
fn prepare(buckets: &mut Vec<(f64, f64)>) -> Option<()> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last()?.0 != f64::INFINITY {
        return None;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(le, count) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += count,
            _ => merged.push((le, count)),
        }
    }
    *buckets = merged;
    Some(())
}

fn force_monotonic(buckets: &mut [(f64, f64)]) {
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA) || curr < prev {
            b.1 = prev;
            continue;
        }
        prev = curr;
    }
}

pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if prepare(&mut buckets).is_none() {
        return f64::NAN;
    }
    force_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|x| x.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

pub fn bucket_fraction(lower: f64, upper: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if prepare(&mut buckets).is_none() {
        return f64::NAN;
    }
    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(upper_bound, b_count)) in buckets.iter().enumerate() {
        let lower_bound = if i > 0 { buckets[i - 1].0 } else { f64::NEG_INFINITY };
        let interpolate = |v: f64| rank + (b_count - rank) * (v - lower_bound) / (upper_bound - lower_bound);
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b_count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let b = vec![(0.1, 10.0), (0.5, 30.0), (f64::INFINITY, 40.0), (1.0, 40.0)];
        assert!(close(bucket_quantile(0.5, b.clone()), 0.3)); // rank 20: halfway through (0.1, 0.5]
        assert!(close(bucket_quantile(0.99, b.clone()), 0.98));
        assert_eq!(bucket_quantile(1.0, b.clone()), 1.0); // the top rank: the highest finite bound
        assert!(bucket_quantile(0.5, vec![(1.0, 3.0)]).is_nan()); // no +Inf bucket
        assert_eq!(bucket_quantile(-1.0, b.clone()), f64::NEG_INFINITY);
        // A count below its predecessor is forced up to it.
        assert_eq!(bucket_quantile(0.5, vec![(1.0, 5.0), (2.0, 4.0), (f64::INFINITY, 10.0)]), 1.0);
        assert_eq!(bucket_fraction(0.1, 0.5, b.clone()), 0.5);
        assert_eq!(bucket_fraction(0.5, 0.1, b), 0.0);
    }
}
