//! `vigie test rules`: promtool's rule unit-test files (`rule_files`, `evaluation_interval`,
//! `group_eval_order`, `tests` with `input_series`, `alert_rule_test`, `promql_expr_test`,
//! `external_labels`, `external_url`), run against an in-memory head with the same
//! evaluator `vigie run` uses, and reported in promtool's words.
//!
//! As promtool: time starts at the Unix epoch, every group is evaluated at each
//! `evaluation_interval` up to the latest `eval_time`, an alert test compares the alerts
//! firing at the last evaluation at or before its `eval_time`, and a rule evaluation error
//! stops the test group. Difference: input samples are all loaded before the first
//! evaluation (promtool loads them up to each evaluation time), which only matters to a
//! query that reads ahead with a negative offset or `@`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::PromDuration;
use crate::model::{Labels, stale_nan};
use crate::promql::series_notation::{Point, series_line};
use crate::promql::{Engine, EngineOptions, Value};
use crate::tsdb::{Appender, Head};

use super::alerting::AlertState;
use super::file::GroupDefaults;
use super::group::{EvalEnv, Group};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<PromDuration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    fuzzy_compare: bool,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<PromDuration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    name: Option<String>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: PromDuration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    #[serde(default)]
    eval_time: PromDuration,
    #[serde(default)]
    exp_samples: Vec<ExpectedSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
    histogram: Option<String>,
}

/// Runs every test of one file; returns the failure messages (empty: success).
pub fn run_file(path: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let file: TestFile = match serde_saphyr::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let (line, col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            return vec![format!("{}:{line}:{col}: {}", path.display(), e.without_snippet())];
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let patterns: Vec<PathBuf> = file.rule_files.iter().filter(|f| !f.is_empty()).map(|f| base.join(f)).collect();
    let rule_files = match super::expand_patterns(&patterns) {
        Ok(f) => f,
        Err(e) => return vec![e.to_string()],
    };
    let eval_interval =
        file.evaluation_interval.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60));
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.as_str(), i).is_some() {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
    }
    let mut errors = Vec::new();
    for tg in &file.tests {
        let interval = tg.interval.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(eval_interval);
        errors.extend(run_group(tg, interval, eval_interval, &order, file.fuzzy_compare, &rule_files));
    }
    errors
}

fn go_duration(ms: i64) -> String {
    // Go's time.Duration String for whole milliseconds: 0s, 1.5s, 1m0s, 1h2m3s.
    if ms == 0 {
        return "0s".into();
    }
    let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    let h = ms / 3_600_000;
    let m = ms / 60_000 % 60;
    let s = ms % 60_000;
    let secs = if s % 1000 == 0 { format!("{}s", s / 1000) } else { format!("{}s", s as f64 / 1000.0) };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{sign}{m}m{secs}")
    } else if s < 1000 {
        format!("{sign}{ms}ms")
    } else {
        format!("{sign}{secs}")
    }
}

/// Prometheus's `labels.Labels.String()`: `{__name__="up", job="a"}`.
fn go_labels(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|l| format!("{}={:?}", l.name, l.value)).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`, as promtool prints sample values.
fn go_float_e(v: f64) -> String {
    crate::promql::format_exponent(v, true)
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().collect::<Vec<_>>().join(&format!("\n{prefix}"))
}

type AlertPair = (Labels, Labels);

fn alerts_string(v: &[AlertPair]) -> String {
    if v.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (l, a)) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\n{i}:"));
        s.push_str(&indent(&format!("\nLabels:{}\nAnnotations:{}", go_labels(l), go_labels(a)), "  "));
    }
    s.push_str("\n]");
    s
}

fn floats_equal(a: f64, b: f64, fuzzy: bool) -> bool {
    if a == b {
        return true;
    }
    fuzzy && (a.next_down() == b || a.next_up() == b)
}

fn run_group(
    tg: &TestGroup,
    interval: Duration,
    eval_interval: Duration,
    order: &BTreeMap<&str, usize>,
    fuzzy: bool,
    rule_files: &[PathBuf],
) -> Vec<String> {
    let head = Head::new();
    let step = interval.as_millis() as i64;
    let mut app = head.appender();
    for s in &tg.input_series {
        let line = match series_line(&format!("{} {}", s.series, s.values)) {
            Ok(l) => l,
            Err(e) => return vec![format!("    series {:?}: {e}", s.series)],
        };
        let Some(labels) = line.labels else { return vec![format!("    series {:?}: no labels", s.series)] };
        if line.histogram {
            return vec![format!("    series {:?}: native histograms are not supported by vigie yet", s.series)];
        }
        let r = app.series_ref(&labels);
        for (k, p) in line.points.iter().enumerate() {
            let t = k as i64 * step;
            match p {
                Point::Value(v) => app.append(r, t, *v),
                Point::Stale => app.append(r, t, stale_nan()),
                Point::Missing => {}
            }
        }
    }
    app.commit();

    let defaults = GroupDefaults { interval, query_offset: Duration::ZERO };
    let defs = match super::load_rule_files(rule_files, &defaults) {
        Ok(d) => d,
        Err(e) => return vec![e.to_string()],
    };
    let invalid: Vec<String> = defs.iter().flat_map(|d| d.errors().map(str::to_string)).collect();
    if !invalid.is_empty() {
        return invalid;
    }
    let mut groups: Vec<Group> = defs.into_iter().map(|d| Group::new(d, true)).collect();
    groups.sort_by_key(|g| order.get(g.def.name.as_str()).copied().unwrap_or(0));

    let engine = Engine::new(head.clone(), EngineOptions::default());
    let external = Labels::from_pairs(tg.external_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let env = EvalEnv {
        engine: &engine,
        external_labels: &external,
        external_url: &tg.external_url,
        resend_delay: Duration::from_secs(60),
    };
    let test_name = tg.name.as_ref().map(|n| format!("    name: {n},\n")).unwrap_or_default();

    let mut errors = Vec::new();
    for t in &tg.alert_rule_test {
        if t.alertname.is_empty() {
            let within = tg.name.as_ref().map(|n| format!(" (in TestGroup {n})")).unwrap_or_default();
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{within}",
                t.eval_time
            )];
        }
    }
    let mut alert_times: Vec<i64> = tg.alert_rule_test.iter().map(|t| t.eval_time.0.as_millis() as i64).collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let max_t = tg
        .alert_rule_test
        .iter()
        .map(|t| t.eval_time.0)
        .chain(tg.promql_expr_test.iter().map(|t| t.eval_time.0))
        .max()
        .unwrap_or_default()
        .as_millis() as i64;
    let eval_step = eval_interval.as_millis() as i64;
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= max_t {
        let mut eval_errors = Vec::new();
        for g in groups.iter_mut() {
            g.eval(&env, &head, ts);
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    eval_errors.push(format!("    rule: {}, time: {}, err: {e}", r.def.name, go_duration(ts)));
                }
            }
        }
        if !eval_errors.is_empty() {
            errors.extend(eval_errors);
            return errors;
        }
        while next_alert < alert_times.len()
            && ts <= alert_times[next_alert]
            && alert_times[next_alert] < ts + eval_step
        {
            let at = alert_times[next_alert];
            for t in tg.alert_rule_test.iter().filter(|t| t.eval_time.0.as_millis() as i64 == at) {
                let mut got: Vec<AlertPair> = Vec::new();
                for g in &groups {
                    for r in g.rules.iter().filter(|r| r.def.name == t.alertname) {
                        let Some(state) = &r.alerts else { continue };
                        for a in state.active.values().filter(|a| a.state == AlertState::Firing) {
                            let ann = Labels::from_pairs(a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                            got.push((a.labels.clone(), ann));
                        }
                    }
                }
                let mut exp: Vec<AlertPair> = t
                    .exp_alerts
                    .iter()
                    .map(|e| {
                        let mut l = e.exp_labels.clone();
                        l.insert("alertname".into(), t.alertname.clone());
                        (
                            Labels::from_pairs(l.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                            Labels::from_pairs(e.exp_annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                        )
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    errors.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        t.alertname,
                        t.eval_time,
                        indent(&alerts_string(&exp), "            "),
                        indent(&alerts_string(&got), "            ")
                    ));
                }
            }
            next_alert += 1;
        }
        ts += eval_step;
    }

    'tests: for t in &tg.promql_expr_test {
        let at = t.eval_time.0.as_millis() as i64;
        let got = match engine.instant(&t.expr, at) {
            Ok(Value::Vector(v)) => v.into_iter().map(|s| (s.labels, s.v)).collect::<Vec<_>>(),
            Ok(Value::Scalar(v)) => vec![(Labels::empty(), v)],
            Ok(_) => {
                errors.push(format!(
                    "    expr: {:?}, time: {}, err: rule result is not a vector or scalar",
                    t.expr, t.eval_time
                ));
                continue;
            }
            Err(e) => {
                errors.push(format!("    expr: {:?}, time: {}, err: {e}", t.expr, t.eval_time));
                continue;
            }
        };
        let mut exp = Vec::with_capacity(t.exp_samples.len());
        for s in &t.exp_samples {
            if s.histogram.as_deref().is_some_and(|h| !h.is_empty()) {
                errors.push(format!(
                    "    expr: {:?}, time: {}, err: labels {:?}: native histograms are not supported by vigie yet",
                    t.expr, t.eval_time, s.labels
                ));
                continue 'tests;
            }
            match parse_metric(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errors.push(format!(
                        "    expr: {:?}, time: {}, err: labels {:?}: {e}",
                        t.expr, t.eval_time, s.labels
                    ));
                    continue 'tests;
                }
            }
        }
        let mut got = got;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same =
            got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && floats_equal(g.1, e.1, fuzzy));
        if !same {
            let show = |v: &[(Labels, f64)]| {
                if v.is_empty() {
                    "nil".to_string()
                } else {
                    v.iter().map(|(l, x)| format!("{} {}", go_labels(l), go_float_e(*x))).collect::<Vec<_>>().join(", ")
                }
            };
            errors.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                t.expr,
                t.eval_time,
                show(&exp),
                show(&got)
            ));
        }
    }
    errors
}

/// Prometheus's `parser.ParseMetric`: `name{a="b"}`, `{a="b"}` or a bare name.
fn parse_metric(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() {
        return Ok(Labels::empty());
    }
    let line = series_line(s.trim())?;
    let labels = line.labels.ok_or_else(|| format!("{s:?} is not a series"))?;
    if !line.points.is_empty() {
        return Err(format!("unexpected values after {s:?}"));
    }
    Ok(labels)
}

/// `vigie test rules FILE…`: runs each file, prints promtool's report, and returns
/// whether every test passed.
pub fn run_files(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        let errors = run_file(f);
        if errors.is_empty() {
            println!("  SUCCESS");
        } else {
            ok = false;
            eprintln!("  FAILED:");
            for e in errors {
                eprintln!("{e}");
                println!();
            }
        }
        println!();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(90_500), "1m30.5s");
        assert_eq!(go_duration(3_723_000), "1h2m3s");
        assert_eq!(go_float_e(1.0), "1E+00");
        assert_eq!(go_float_e(1234.5), "1.2345E+03");
        assert_eq!(go_float_e(0.001), "1E-03");
        assert_eq!(go_labels(&Labels::from_pairs([("__name__", "up"), ("job", "a")])), "{__name__=\"up\", job=\"a\"}");
    }

    #[test]
    fn parse_metric_forms() {
        assert_eq!(parse_metric("up{job=\"a\"}").unwrap(), Labels::from_pairs([("__name__", "up"), ("job", "a")]));
        assert_eq!(parse_metric("{job=\"a\"}").unwrap(), Labels::from_pairs([("job", "a")]));
        assert!(parse_metric("").unwrap().is_empty());
    }
}
