use std::sync::Arc;

use super::*;
use crate::model::{Labels, stale_nan};
use crate::tsdb::{Appender, Head};

/// A head with `series` (selector-style labels) sampled every 15 s from t=0 with `f(i)`.
fn head_with(series: &[(&str, &dyn Fn(usize) -> f64)], n: usize) -> Arc<Head> {
    let head = Head::new();
    let mut app = head.appender();
    for (spec, f) in series {
        let labels = parse_series(spec);
        let r = app.series_ref(&labels);
        for i in 0..n {
            app.append(r, i as i64 * 15_000, f(i));
        }
    }
    app.commit();
    head
}

fn parse_series(spec: &str) -> Labels {
    let (name, rest) = spec.split_once('{').unwrap_or((spec, "}"));
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    for kv in rest.trim_end_matches('}').split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap();
        pairs.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
    }
    Labels::from_pairs(pairs)
}

fn engine(head: Arc<Head>) -> Engine {
    Engine::new(head, EngineOptions::default())
}

fn vector(e: &Engine, q: &str, t_s: i64) -> Vec<(String, f64)> {
    match e.instant(q, t_s * 1000).unwrap_or_else(|err| panic!("{q}: {err}")) {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: expected vector, got {other:?}"),
    }
}

fn scalar(e: &Engine, q: &str, t_s: i64) -> f64 {
    match e.instant(q, t_s * 1000).unwrap() {
        Value::Scalar(v) => v,
        other => panic!("{q}: expected scalar, got {other:?}"),
    }
}

fn counters() -> Arc<Head> {
    head_with(
        &[
            ("http_requests_total{job=\"api\",instance=\"a\"}", &|i| i as f64 * 15.0),
            ("http_requests_total{job=\"api\",instance=\"b\"}", &|i| i as f64 * 30.0),
            ("http_requests_total{job=\"db\",instance=\"c\"}", &|i| i as f64 * 3.0),
            ("up{job=\"api\",instance=\"a\"}", &|_| 1.0),
            ("up{job=\"api\",instance=\"b\"}", &|_| 0.0),
            ("up{job=\"db\",instance=\"c\"}", &|_| 1.0),
        ],
        41,
    )
}

#[test]
fn selectors_with_all_matcher_types() {
    let e = engine(counters());
    assert_eq!(vector(&e, "up{job=\"api\"}", 600).len(), 2);
    assert_eq!(vector(&e, "up{job!=\"api\"}", 600).len(), 1);
    assert_eq!(vector(&e, "up{instance=~\"a|c\"}", 600).len(), 2);
    assert_eq!(vector(&e, "up{instance!~\"a|c\"}", 600), vec![("up{instance=\"b\", job=\"api\"}".to_string(), 0.0)]);
    assert_eq!(vector(&e, "{__name__=~\"up|http_requests_total\", instance=\"a\"}", 600).len(), 2);
    // Regexes are anchored.
    assert!(vector(&e, "up{instance=~\"\"}", 600).is_empty());
}

#[test]
fn lookback_and_staleness() {
    let head = head_with(&[("g", &|_| 7.0)], 3); // samples at 0, 15, 30 s
    let e = engine(head.clone());
    assert_eq!(vector(&e, "g", 30 + 299).len(), 1, "within 5 m lookback");
    assert!(vector(&e, "g", 30 + 300).is_empty(), "lookback window is left-open");
    let mut app = head.appender();
    let r = app.series_ref(&parse_series("g"));
    app.append(r, 45_000, stale_nan());
    app.commit();
    assert_eq!(vector(&e, "g", 44).len(), 1);
    assert!(vector(&e, "g", 45).is_empty(), "stale marker ends the series");
    assert!(vector(&e, "g", 100).is_empty());
}

#[test]
fn offset_and_at() {
    let e = engine(head_with(&[("c", &|i| i as f64)], 41));
    assert_eq!(vector(&e, "c", 600)[0].1, 40.0);
    assert_eq!(vector(&e, "c offset 1m", 600)[0].1, 36.0);
    assert_eq!(vector(&e, "c offset -1m", 300)[0].1, 24.0);
    assert_eq!(vector(&e, "c @ 150", 600)[0].1, 10.0);
}

#[test]
fn rate_increase_irate_extrapolate_like_prometheus() {
    let e = engine(counters());
    // 1 per second, sampled every 15 s: the window (540 s, 600 s] holds 4 samples.
    // (45 s sampled + 15 s to the window start) / 45 s × 45 / 60 s, in Prometheus's order
    // of float operations.
    let r = vector(&e, "rate(http_requests_total{instance=\"a\"}[1m])", 600);
    assert_eq!(r[0].0, "{instance=\"a\", job=\"api\"}");
    assert_eq!(r[0].1, 45.0 * ((45.0 + 15.0) / 45.0 / 60.0));
    let inc = vector(&e, "increase(http_requests_total{instance=\"a\"}[1m])", 600);
    assert_eq!(inc[0].1, 45.0 * ((45.0 + 15.0) / 45.0));
    let ir = vector(&e, "irate(http_requests_total{instance=\"b\"}[1m])", 600);
    assert_eq!(ir[0].1, 2.0);
    // Extrapolation stops at the counter's zero point: first sample 0 at t=0.
    let early = vector(&e, "increase(http_requests_total{instance=\"a\"}[1m])", 30);
    assert_eq!(early[0].1, 30.0);
}

#[test]
fn rate_handles_counter_resets() {
    let e = engine(head_with(&[("c", &|i| if i < 3 { i as f64 * 10.0 } else { (i - 3) as f64 * 10.0 })], 6));
    // samples 0,10,20,0,10,20 at 0..75 s; window (15, 75]: 20,0,10,20 → 20 over 45 s,
    // extrapolated by 15 s to the window start.
    let inc = vector(&e, "increase(c[1m])", 75);
    let expected = 20.0 * 60.0 / 45.0;
    assert!((inc[0].1 - expected).abs() < 1e-9, "{inc:?} vs {expected}");
}

#[test]
fn aggregations_by_and_without() {
    let e = engine(counters());
    assert_eq!(
        vector(&e, "sum by (job) (up)", 600),
        vec![("{job=\"api\"}".to_string(), 1.0), ("{job=\"db\"}".to_string(), 1.0)]
    );
    assert_eq!(vector(&e, "count without (instance) (up)", 600)[0], ("{job=\"api\"}".to_string(), 2.0));
    assert_eq!(vector(&e, "avg(up)", 600)[0].1, 2.0 / 3.0);
    assert_eq!(vector(&e, "min(http_requests_total)", 600)[0].1, 120.0);
    assert_eq!(vector(&e, "max by (job) (http_requests_total)", 600)[0].1, 1200.0);
    assert!((vector(&e, "sum(rate(http_requests_total[1m]))", 600)[0].1 - 3.2).abs() < 1e-12);
    assert_eq!(
        vector(&e, "topk(1, http_requests_total)", 600)[0].0,
        "http_requests_total{instance=\"b\", job=\"api\"}"
    );
}

#[test]
fn arithmetic_and_comparison() {
    let e = engine(counters());
    assert_eq!(scalar(&e, "1 + 2 * 3", 0), 7.0);
    assert_eq!(scalar(&e, "2 ^ 3 ^ 2", 0), 512.0, "power is right-associative");
    assert_eq!(vector(&e, "up == 1", 600).len(), 2);
    assert_eq!(vector(&e, "up == 1", 600)[0].0, "up{instance=\"a\", job=\"api\"}", "comparison keeps the name");
    assert_eq!(vector(&e, "up == bool 1", 600)[1], ("{instance=\"b\", job=\"api\"}".to_string(), 0.0));
    assert_eq!(vector(&e, "up * 10", 600)[0], ("{instance=\"a\", job=\"api\"}".to_string(), 10.0));
    assert_eq!(vector(&e, "1 < up", 600).len(), 0);
    assert_eq!(vector(&e, "0 < up", 600)[0].1, 1.0, "scalar on the left keeps the vector value");
    assert_eq!(vector(&e, "-up", 600).len(), 3);
}

#[test]
fn vector_matching() {
    let e = engine(counters());
    let v = vector(&e, "http_requests_total / up", 600);
    assert_eq!(v.len(), 3);
    assert!(v[1].1.is_infinite());
    let on = vector(&e, "http_requests_total{instance=\"a\"} + on(job) up{instance=\"a\"}", 600);
    assert_eq!(on, vec![("{job=\"api\"}".to_string(), 601.0)]);
    let gl = vector(&e, "http_requests_total * on(job) group_left() sum by (job) (up)", 600);
    assert_eq!(gl.len(), 3);
    let err = e.instant("http_requests_total + on(job) up", 600_000).unwrap_err().to_string();
    assert!(err.contains("many-to-many matching not allowed"), "{err}");
    assert_eq!(vector(&e, "up and http_requests_total > 1000", 600).len(), 1);
    assert_eq!(vector(&e, "up unless up == 0", 600).len(), 2);
    assert_eq!(vector(&e, "up{job=\"db\"} or http_requests_total", 600).len(), 3);
}

#[test]
fn range_query_returns_matrix() {
    let e = engine(counters());
    let m = e.range("sum(up)", 0, 600_000, 60_000).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 11);
    assert!(m[0].points.iter().all(|p| p.v == 2.0));
    let m = e.range("rate(http_requests_total[1m])", 300_000, 600_000, 30_000).unwrap();
    assert_eq!(m.len(), 3);
    assert!(e.range("up[5m]", 0, 1, 1).is_err());
}

#[test]
fn errors_are_prometheus_shaped() {
    let e = engine(counters());
    assert!(matches!(e.instant("sum(", 0), Err(QueryError::Parse(m)) if m.starts_with("parse error")));
    let dup = e.instant("rate({__name__=~\"http_requests_total|up\", instance=\"a\"}[1m])", 600_000).unwrap_err();
    assert_eq!(dup.to_string(), "vector cannot contain metrics with the same labelset");
}

#[test]
fn subquery() {
    let e = engine(counters());
    let v = vector(&e, "max_over_time(rate(http_requests_total{instance=\"a\"}[1m])[5m:1m])", 600);
    assert!((v[0].1 - 1.0).abs() < 1e-12, "{v:?}");
}

#[test]
fn label_replace_like_prometheus() {
    let e = engine(counters());
    let v = vector(&e, "label_replace(up{instance=\"a\"}, \"host\", \"h-$1\", \"instance\", \"(.*)\")", 600);
    assert_eq!(v[0].0, "up{host=\"h-a\", instance=\"a\", job=\"api\"}");
    // No match leaves the sample unchanged; an empty replacement deletes the label.
    let v = vector(&e, "label_replace(up{instance=\"a\"}, \"job\", \"\", \"instance\", \"a\")", 600);
    assert_eq!(v[0].0, "up{instance=\"a\"}");
    let v = vector(&e, "label_replace(up{instance=\"a\"}, \"x\", \"y\", \"instance\", \"zzz\")", 600);
    assert_eq!(v[0].0, "up{instance=\"a\", job=\"api\"}");
}

#[test]
fn queries_over_their_sample_budget_or_time_fail_cleanly() {
    let head = head_with(&[("m{a=\"1\"}", &|i| i as f64), ("m{a=\"2\"}", &|i| i as f64)], 100);
    let small = EngineOptions { max_samples: 150, ..EngineOptions::default() };
    let engine = Engine::new(head.clone(), small);
    // 200 samples read: over the budget before evaluation starts.
    let e = engine.instant("sum(count_over_time(m[1h]))", 99 * 15_000).unwrap_err();
    assert_eq!(e.to_string(), "query processing would load too many samples into memory in query execution");
    assert!(matches!(e, QueryError::TooManySamples(_)));
    // 90 read (the window and its lookback), then 2 series x 40 steps of result pass 150.
    let e = engine.range("m", 60 * 15_000, 99 * 15_000, 15_000);
    assert!(matches!(e, Err(QueryError::TooManySamples(_))), "{e:?}");
    assert!(engine.instant("m", 99 * 15_000).is_ok());
    let hurried = Engine::new(head, EngineOptions { timeout: std::time::Duration::ZERO, ..EngineOptions::default() });
    let e = hurried.range("rate(m[5m])", 0, 99 * 15_000, 15_000).unwrap_err();
    assert_eq!(e.to_string(), "query timed out in query execution");
}

#[test]
fn queries_wait_for_a_slot_within_their_timeout() {
    let head = head_with(&[("m", &|i| i as f64)], 10);
    let none =
        EngineOptions { max_concurrency: 0, timeout: std::time::Duration::from_millis(20), ..Default::default() };
    let e = Engine::new(head.clone(), none).instant("m", 0).unwrap_err();
    assert_eq!(e.to_string(), "query timed out in query queue");
    // One slot: queries from several threads all finish, one after another.
    let one = Engine::new(head, EngineOptions { max_concurrency: 1, ..Default::default() });
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let e = one.clone();
            std::thread::spawn(move || e.range("sum(m)", 0, 135_000, 15_000).map(|m| m.len()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), 1);
    }
}

#[test]
fn limitk_and_limit_ratio() {
    let specs: Vec<String> = (0..40).map(|i| format!("m{{a=\"{}\",b=\"{i}\"}}", i % 2)).collect();
    let series: Vec<(&str, &dyn Fn(usize) -> f64)> =
        specs.iter().map(|s| (s.as_str(), &(|i: usize| i as f64) as &dyn Fn(usize) -> f64)).collect();
    let e = engine(head_with(&series, 5));
    let by_a = vector(&e, "limitk by (a) (3, m)", 60);
    assert_eq!(by_a.len(), 6);
    assert_eq!(by_a.iter().filter(|(l, _)| l.contains("a=\"0\"")).count(), 3);
    assert!(vector(&e, "limitk(0, m)", 60).is_empty());
    let half: Vec<String> = vector(&e, "limit_ratio(0.5, m)", 60).into_iter().map(|s| s.0).collect();
    let rest: Vec<String> = vector(&e, "limit_ratio(-0.5, m)", 60).into_iter().map(|s| s.0).collect();
    // The two halves split the input: disjoint, and together everything.
    assert!(half.iter().all(|l| !rest.contains(l)));
    assert_eq!(half.len() + rest.len(), 40);
    assert!(!half.is_empty() && !rest.is_empty());
    assert_eq!(vector(&e, "limit_ratio(1, m)", 60).len(), 40);
    assert!(e.instant("limit_ratio(NaN, m)", 60_000).is_err());
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Random instant-vector expressions built from the whole grammar: every function,
    /// aggregation and operator family over a few series (some with NaN and stale markers).
    fn vector_expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("m".to_string()),
            Just("m{a=\"1\"}".to_string()),
            Just("n".to_string()),
            Just("nope".to_string()),
            Just("vector(time())".to_string()),
            Just("m offset 1m".to_string()),
            Just("m @ 300".to_string()),
        ];
        leaf.prop_recursive(4, 32, 3, |inner| {
            let range = prop_oneof![
                inner.clone().prop_map(|v| format!("({v})[2m:30s]")),
                Just("m[5m]".to_string()),
                Just("n[1m]".to_string()),
            ];
            let scalar = prop_oneof![Just("0.5".to_string()), Just("-1".to_string()), Just("NaN".to_string())];
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec![
                        "abs",
                        "ceil",
                        "ln",
                        "sqrt",
                        "sort",
                        "absent",
                        "timestamp",
                        "exp",
                        "sgn",
                        "minute",
                        "atanh",
                        "deg"
                    ])
                )
                    .prop_map(|(v, f)| format!("{f}({v})")),
                (
                    range.clone(),
                    prop::sample::select(vec![
                        "rate",
                        "increase",
                        "delta",
                        "irate",
                        "idelta",
                        "deriv",
                        "changes",
                        "resets",
                        "sum_over_time",
                        "avg_over_time",
                        "stddev_over_time",
                        "mad_over_time",
                        "last_over_time",
                        "absent_over_time",
                        "ts_of_max_over_time"
                    ])
                )
                    .prop_map(|(r, f)| format!("{f}({r})")),
                (scalar.clone(), range.clone()).prop_map(|(s, r)| format!("quantile_over_time({s}, {r})")),
                range.clone().prop_map(|r| format!("predict_linear({r}, 60)")),
                range.prop_map(|r| format!("double_exponential_smoothing({r}, 0.5, 0.5)")),
                (
                    prop::sample::select(vec!["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]),
                    inner.clone(),
                    prop::sample::select(vec!["", " by (a)", " without (a)", " by (__name__)"])
                )
                    .prop_map(|(op, v, m)| format!("{op}{m} ({v})")),
                (prop::sample::select(vec!["topk", "bottomk", "quantile"]), scalar.clone(), inner.clone())
                    .prop_map(|(op, s, v)| format!("{op}({s}, {v})")),
                inner.clone().prop_map(|v| format!("count_values(\"x\", {v})")),
                (
                    inner.clone(),
                    prop::sample::select(vec![
                        "+", "-", "*", "/", "%", "^", "==", "!=", ">", "< bool", "and", "or", "unless", "atan2"
                    ]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) * on (a) group_left (b) ({b})")),
                (inner.clone(), scalar.clone()).prop_map(|(v, s)| format!("({v}) > {s}")),
                inner.clone().prop_map(|v| format!("label_replace({v}, \"__name__\", \"$1\", \"a\", \"(.*)\")")),
                inner.clone().prop_map(|v| format!("label_join({v}, \"x\", \"-\", \"a\", \"__name__\")")),
                (scalar.clone(), inner.clone()).prop_map(|(s, v)| format!("histogram_quantile({s}, {v})")),
                inner.clone().prop_map(|v| format!("clamp({v}, 0, 10)")),
                inner.clone().prop_map(|v| format!("sort_by_label_desc({v}, \"a\")")),
                inner.prop_map(|v| format!("round({v}, 0.3)")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the expression, evaluation returns a value or an error, never a panic.
        #[test]
        fn random_expressions_never_panic(q in vector_expr()) {
            let head = head_with(
                &[
                    ("m{a=\"1\"}", &|i| i as f64),
                    ("m{a=\"2\",b=\"x\"}", &|i| if i % 7 == 3 { f64::NAN } else { (i * i) as f64 }),
                    ("n{a=\"1\",le=\"0.5\"}", &|i| if i == 20 { stale_nan() } else { (i % 5) as f64 }),
                    ("n{a=\"1\",le=\"+Inf\"}", &|i| (i % 9) as f64),
                ],
                40,
            );
            let engine = Engine::new(head, EngineOptions::default());
            if Engine::parse(&q).is_ok() {
                for t in [0, 290_000, 600_000] {
                    let _ = engine.instant(&q, t);
                }
                let _ = engine.range(&q, 0, 600_000, 45_000);
            }
        }
    }

    /// The generator mostly makes valid queries (otherwise the test above proves little).
    #[test]
    fn generated_expressions_mostly_parse() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = vector_expr();
        let parsed =
            (0..200).filter(|_| Engine::parse(&strategy.new_tree(&mut runner).unwrap().current()).is_ok()).count();
        assert!(parsed >= 150, "only {parsed} of 200 generated expressions parse");
    }
}
