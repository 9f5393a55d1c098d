//! Differential PromQL test: the same backfilled data in vigie and in the real Prometheus
//! 2.42 (Debian), the same queries through both HTTP APIs, results equal within 1e-9
//! relative. Only queries whose semantics did not change between 2.x and 3.x are asked:
//! sample times carry a millisecond jitter so no sample sits exactly on a window edge
//! (left-closed in 2.x, left-open in 3.x), and counters start far from zero (3.5 applies
//! the zero cutoff after the half-interval cap, 2.x before). Subqueries whose first step
//! falls on the window's start differ for the same reason, so only one whose result does
//! not depend on that step is asked.

mod common;

use std::fmt::Write as _;

use common::*;
use serde_json::Value;

const STEP_S: i64 = 15;
const POINTS: i64 = 480; // 2 h

/// OpenMetrics text both importers accept: counters, gauges and a classic histogram.
fn data(base: i64) -> String {
    let mut t = String::new();
    let ts = |i: i64, s: i64| format!("{}.{:03}", base + i * STEP_S, 100 + (s * 37) % 800);
    t.push_str("# TYPE http_requests counter\n");
    for (s, (job, inst, code)) in
        [("api", "a", "200"), ("api", "a", "500"), ("api", "b", "200"), ("web", "a", "200"), ("web", "c", "404")]
            .iter()
            .enumerate()
    {
        let s = s as i64;
        let mut v = 1000.0 + s as f64 * 500.0;
        for i in 0..POINTS {
            // A reset every 150 points on one series; otherwise a varying increase.
            if s == 1 && i % 150 == 149 {
                v = (i % 7) as f64;
            } else {
                v += ((i * (s + 3)) % 11) as f64 + 0.5;
            }
            let _ = writeln!(
                t,
                "http_requests_total{{job=\"{job}\",instance=\"{inst}\",code=\"{code}\"}} {v} {}",
                ts(i, s)
            );
        }
    }
    t.push_str("# TYPE temperature gauge\n");
    for (s, room) in ["kitchen", "hall", "attic", "cellar"].iter().enumerate() {
        let s = s as i64;
        for i in 0..POINTS {
            let v =
                15.0 + s as f64 * 2.5 + ((i as f64) / 20.0 + s as f64).sin() * 4.0 + ((i * 13 + s) % 5) as f64 * 0.1;
            let _ = writeln!(t, "temperature{{room=\"{room}\",job=\"sensors\"}} {v} {}", ts(i, s + 10));
        }
    }
    t.push_str("# TYPE latency_seconds histogram\n");
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    for (s, job) in ["api", "web"].iter().enumerate() {
        let s = s as i64;
        let mut counts = [0f64; 6];
        let (mut sum, mut count) = (0.0, 0.0);
        let mut lines: Vec<Vec<String>> = vec![Vec::new(); 8];
        for i in 0..POINTS {
            let obs = 3 + (i * (s + 1)) % 5;
            for k in 0..obs {
                let x = (((i * 7 + k * 3 + s) % 97) as f64) / 80.0;
                for (b, bound) in bounds.iter().enumerate() {
                    if *bound == "+Inf" || x <= bound.parse::<f64>().unwrap() {
                        counts[b] += 1.0;
                    }
                }
                sum += x;
                count += 1.0;
            }
            let at = ts(i, s + 20);
            for (b, bound) in bounds.iter().enumerate() {
                lines[b].push(format!("latency_seconds_bucket{{job=\"{job}\",le=\"{bound}\"}} {} {at}", counts[b]));
            }
            lines[6].push(format!("latency_seconds_sum{{job=\"{job}\"}} {sum} {at}"));
            lines[7].push(format!("latency_seconds_count{{job=\"{job}\"}} {count} {at}"));
        }
        for l in lines.iter().flatten() {
            t.push_str(l);
            t.push('\n');
        }
    }
    t.push_str("# EOF\n");
    t
}

/// Queries whose meaning is the same in Prometheus 2.42 and 3.5.
const QUERIES: &[&str] = &[
    "http_requests_total",
    "http_requests_total offset 10m",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[5m]))",
    "avg by (code) (http_requests_total)",
    "max(temperature)",
    "min by (job) (temperature)",
    "count(temperature > 16)",
    "stddev(temperature)",
    "stdvar by (job) (temperature)",
    "quantile(0.75, temperature)",
    "topk(2, temperature)",
    "bottomk(1, rate(http_requests_total[5m]))",
    "count_values(\"code\", http_requests_total > 0)",
    "group by (job) (http_requests_total)",
    "delta(temperature[10m])",
    "idelta(temperature[10m])",
    "deriv(temperature[15m])",
    "predict_linear(temperature[30m], 3600)",
    "avg_over_time(temperature[10m])",
    "sum_over_time(temperature[10m])",
    "min_over_time(temperature[10m])",
    "max_over_time(temperature[10m])",
    "count_over_time(temperature[10m])",
    "last_over_time(temperature[10m])",
    "present_over_time(temperature[10m])",
    "quantile_over_time(0.9, temperature[30m])",
    "stddev_over_time(temperature[30m])",
    "stdvar_over_time(temperature[30m])",
    "changes(temperature[30m])",
    "resets(http_requests_total[1h])",
    "histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(latency_seconds_bucket[10m]))",
    "rate(latency_seconds_sum[5m]) / rate(latency_seconds_count[5m])",
    "rate(http_requests_total[5m]) / on (job, instance) group_left sum by (job, instance) (rate(http_requests_total[5m]))",
    "http_requests_total / ignoring (code) group_left sum without (code) (http_requests_total)",
    "temperature > 16",
    "temperature > bool 16",
    "2 * temperature - 1",
    "temperature % 3 ^ 2",
    "-temperature",
    "http_requests_total{code=\"200\"} and on (job) http_requests_total{code!=\"200\"}",
    "http_requests_total{job=\"api\"} or temperature",
    "http_requests_total unless on (instance) http_requests_total{code=\"500\"}",
    "abs(delta(temperature[10m]))",
    "clamp(temperature, 16, 20)",
    "clamp_min(temperature, 17)",
    "clamp_max(temperature, 17)",
    "round(temperature, 0.5)",
    "ceil(temperature)",
    "floor(temperature)",
    "sqrt(temperature)",
    "exp(temperature / 10)",
    "ln(temperature)",
    "log2(temperature)",
    "log10(temperature)",
    "sgn(delta(temperature[5m]))",
    "label_replace(temperature, \"where\", \"in-$1\", \"room\", \"(.*)\")",
    "label_join(http_requests_total, \"id\", \"/\", \"job\", \"instance\", \"code\")",
    "timestamp(temperature)",
    "hour(timestamp(temperature))",
    "day_of_week()",
    "time()",
    "vector(1)",
    "scalar(sum(temperature))",
    "absent(nonexistent{job=\"x\"})",
    "absent(temperature)",
    "absent_over_time(temperature[5m])",
    "sort(temperature)",
    "sort_desc(temperature)",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "temperature @ end()",
    "rate(http_requests_total[5m] @ start())",
    "sum(http_requests_total) by (job) > 2000",
    "{__name__=~\"temp.*\", room!~\"a.*\"}",
];

fn get_json(port: u16, path: &str) -> Value {
    let r = get(port, path);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

fn num(v: &Value) -> f64 {
    match v.as_str().unwrap() {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A result as (labels as JSON, [(t, value)]) per series, sorted by labels.
type Series = Vec<(String, Vec<(f64, f64)>)>;

/// The result of any type in one shape.
fn normalise(resp: &Value) -> Result<Series, String> {
    if resp["status"] != "success" {
        return Err(format!("{}: {}", resp["errorType"], resp["error"]));
    }
    let data = &resp["data"];
    let pair = |p: &Value| (p[0].as_f64().unwrap(), num(&p[1]));
    let mut out: Series = match data["resultType"].as_str().unwrap() {
        "scalar" | "string" => vec![(String::new(), vec![pair(&data["result"])])],
        _ => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::to_string(&s["metric"]).unwrap();
                let points = match s.get("values") {
                    Some(vs) => vs.as_array().unwrap().iter().map(pair).collect(),
                    None => vec![pair(&s["value"])],
                };
                (labels, points)
            })
            .collect(),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn compare(what: &str, v: &Value, p: &Value) -> Option<String> {
    let (v, p) = match (normalise(v), normalise(p)) {
        (Ok(v), Ok(p)) => (v, p),
        (Err(v), Err(p)) => return Some(format!("{what}: both failed\n  vigie: {v}\n  prometheus: {p}")),
        (v, p) => return Some(format!("{what}\n  vigie: {v:?}\n  prometheus: {p:?}")),
    };
    let same = v.len() == p.len()
        && v.iter().zip(&p).all(|(a, b)| {
            a.0 == b.0 && a.1.len() == b.1.len() && a.1.iter().zip(&b.1).all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
        });
    (!same).then(|| format!("{what}\n  vigie: {v:?}\n  prometheus: {p:?}"))
}

#[test]
fn queries_agree_with_prometheus_on_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Two hours that ended an hour ago, aligned to a minute.
    let base = (now - 3 * 3600) / 60 * 60;
    let file = dir.path().join("data.om");
    std::fs::write(&file, data(base)).unwrap();

    promtool_backfill(&file, &dir.path().join("prom"));
    vigie_import(&file, &dir.path().join("data"));

    let vigie = Vigie::start(dir.path(), &["--discovery", "none"]);
    let (_prom, pport) = prometheus(dir.path(), "global: {scrape_interval: 1h}\n");

    // Instant queries at three times inside the data, range queries over 40 minutes of it.
    let times = [base + 3600, base + 5400 + 7, base + POINTS * STEP_S - 60];
    let (start, end) = (base + 1800, base + 4200);
    let mut differences = Vec::new();
    let mut compared = 0;
    for q in QUERIES {
        for t in times {
            let path = format!("/api/v1/query?query={}&time={t}", urlencode(q));
            let what = format!("instant {q} @ {t}");
            if let Some(d) = compare(&what, &get_json(vigie.port, &path), &get_json(pport, &path)) {
                differences.push(d);
            }
            compared += 1;
        }
        let path = format!("/api/v1/query_range?query={}&start={start}&end={end}&step=60", urlencode(q));
        if let Some(d) = compare(&format!("range {q}"), &get_json(vigie.port, &path), &get_json(pport, &path)) {
            differences.push(d);
        }
        compared += 1;
    }
    assert!(differences.is_empty(), "{} of {compared} results differ:\n{}", differences.len(), differences.join("\n"));
    // The data is there at all (a comparison of two empty results proves nothing).
    let got = get_json(pport, &format!("/api/v1/query?query=count(http_requests_total)&time={}", times[0]));
    assert_eq!(got["data"]["result"][0]["value"][1], "5");
}
