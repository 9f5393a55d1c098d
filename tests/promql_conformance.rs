//! Prometheus's own PromQL test scripts (`../shared/conformance/promqltest/*.test`, used in
//! place) run against vigie's engine over a real head.
//!
//! Every `eval` is run and its outcome compared with the script's expectation. The evals
//! that pass are listed in `tests/promql_conformance.passing` (`file:line`): the test fails
//! when one of them stops passing (a regression) and when one passes that is not listed (so
//! the list, and the pass rate in it, stay true). `VIGIE_UPDATE_CONFORMANCE=1` rewrites the
//! list. Not checked yet: info/warn annotations (vigie emits none); evals that name a
//! native-histogram series or expect histograms are skipped and counted.

mod promqltest;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use promqltest::script::{self, Command, Eval, Fail, Point, SeriesLine, Timing};
use vigie::model::{Labels, stale_nan};
use vigie::promql::{Engine, EngineOptions, Value};
use vigie::tsdb::{Appender, Head};

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/promqltest")
}

fn passing_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql_conformance.passing")
}

/// Values equal as Prometheus's test compares them: NaN equals NaN, otherwise within a
/// relative 1e-6 (absolute near zero).
fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 1e-6 * a.abs().max(b.abs()) || diff < f64::MIN_POSITIVE * 1e-6
}

/// Appends the float points of `series`; returns the series vigie cannot hold (native
/// histograms; with `nhcb`, the histograms made from classic `_bucket` series).
fn load(head: &Arc<Head>, interval: i64, series: &[SeriesLine], nhcb: bool) -> Vec<Labels> {
    let mut app = head.appender();
    let mut histograms = Vec::new();
    // A series listed twice in one load: the later line's points win, as in Prometheus's
    // test storage.
    let mut merged: Vec<SeriesLine> = Vec::new();
    for s in series {
        match merged.iter_mut().find(|m| m.labels.is_some() && m.labels == s.labels) {
            Some(m) => {
                for (i, p) in s.points.iter().enumerate() {
                    if *p != Point::Missing {
                        if i >= m.points.len() {
                            m.points.resize(i + 1, Point::Missing);
                        }
                        m.points[i] = *p;
                    }
                }
                m.histogram |= s.histogram;
            }
            None => merged.push(s.clone()),
        }
    }
    for s in &merged {
        let Some(labels) = &s.labels else { continue };
        let name = labels.get("__name__").unwrap_or_default();
        if s.histogram {
            histograms.push(labels.clone());
        }
        if nhcb && let Some(base) = name.strip_suffix("_bucket") {
            let mut lb = labels.builder();
            lb.set("__name__", base);
            lb.set("le", "");
            histograms.push(lb.into_labels());
        }
        let r = app.series_ref(labels);
        for (i, p) in s.points.iter().enumerate() {
            let t = i as i64 * interval;
            match p {
                Point::Value(v) => app.append(r, t, *v),
                Point::Stale => app.append(r, t, stale_nan()),
                Point::Missing => {}
            }
        }
    }
    app.commit();
    histograms
}

/// Checks an eval's result against its expectation; `Err` says what differed.
fn check(engine: &Engine, e: &Eval) -> Result<(), String> {
    let result = match e.timing {
        Timing::Instant(t) => engine.instant(&e.query, t).map(|v| (v, None)),
        Timing::Range { start, end, step } => {
            engine.range(&e.query, start, end, step).map(|m| (Value::Matrix(m), Some((start, end, step))))
        }
    };
    match (&e.fail, result) {
        (Some(Fail::Any), Err(_)) => Ok(()),
        (Some(Fail::Message(m)), Err(got)) => {
            (got.to_string() == *m).then_some(()).ok_or_else(|| format!("error {:?}, want {m:?}", got.to_string()))
        }
        (Some(Fail::Regex(re)), Err(got)) => {
            let re = regex::Regex::new(re).map_err(|x| format!("bad regex in script: {x}"))?;
            re.is_match(&got.to_string())
                .then_some(())
                .ok_or_else(|| format!("error {:?} does not match {re}", got.to_string()))
        }
        (Some(_), Ok(_)) => Err("query succeeded, want an error".into()),
        (None, Err(got)) => Err(format!("error: {got}")),
        (None, Ok((value, range))) => compare(e, value, range),
    }
}

fn compare(e: &Eval, value: Value, range: Option<(i64, i64, i64)>) -> Result<(), String> {
    // Actual result as (labels or None for a scalar, values per step or per sample).
    let actual: Vec<(Option<Labels>, Vec<Option<f64>>)> = match value {
        Value::Scalar(v) => vec![(None, vec![Some(v)])],
        Value::String(s) => return Err(format!("string result {s:?} not compared")),
        Value::Vector(v) => v.into_iter().map(|s| (Some(s.labels), vec![Some(s.v)])).collect(),
        Value::Matrix(m) => m
            .into_iter()
            .map(|s| {
                let vals = match range {
                    Some((start, end, step)) => {
                        let n = ((end - start) / step + 1) as usize;
                        let mut v = vec![None; n];
                        for p in &s.points {
                            let i = ((p.t - start) / step) as usize;
                            if i < n {
                                v[i] = Some(p.v);
                            }
                        }
                        v
                    }
                    None => s.points.iter().map(|p| Some(p.v)).collect(),
                };
                (Some(s.labels), vals)
            })
            .collect(),
    };
    let expected: Vec<(Option<Labels>, Vec<Option<f64>>)> = e
        .expected
        .iter()
        .map(|s| {
            let vals = s
                .points
                .iter()
                .map(|p| match p {
                    Point::Value(v) => Some(*v),
                    Point::Stale | Point::Missing => None,
                })
                .collect();
            (s.labels.clone(), vals)
        })
        .collect();
    let same_values = |a: &[Option<f64>], b: &[Option<f64>]| {
        // Trailing steps without a point may be left out of the expectation.
        let n = a.len().max(b.len());
        (0..n).all(|i| match (a.get(i).copied().flatten(), b.get(i).copied().flatten()) {
            (None, None) => true,
            (Some(x), Some(y)) => almost_equal(x, y),
            _ => false,
        })
    };
    if actual.len() != expected.len() {
        return Err(format!("{} series, want {}: got {:?}", actual.len(), expected.len(), labels_of(&actual)));
    }
    if e.ordered {
        for (a, x) in actual.iter().zip(&expected) {
            if a.0 != x.0 || !same_values(&a.1, &x.1) {
                return Err(format!("in order: got {:?} {:?}, want {:?} {:?}", a.0, a.1, x.0, x.1));
            }
        }
        return Ok(());
    }
    let mut by_labels: BTreeMap<Option<Labels>, &Vec<Option<f64>>> = BTreeMap::new();
    for (l, v) in &actual {
        by_labels.insert(l.clone(), v);
    }
    for (l, want) in &expected {
        // A scalar expectation also matches a vector holding one series without labels.
        let got = by_labels.get(l).or_else(|| if l.is_none() { by_labels.values().next() } else { None });
        match got {
            Some(got) if same_values(got, want) => {}
            Some(got) => return Err(format!("{l:?}: got {got:?}, want {want:?}")),
            None => return Err(format!("missing {l:?}; got {:?}", labels_of(&actual))),
        }
    }
    Ok(())
}

fn labels_of(v: &[(Option<Labels>, Vec<Option<f64>>)]) -> Vec<String> {
    v.iter().map(|(l, _)| l.as_ref().map_or("scalar".to_string(), |l| format!("{l:?}"))).collect()
}

/// Whether any selector of `query` selects one of `series`.
fn selects_any(query: &str, series: &[Labels]) -> bool {
    use promql_parser::parser::Expr;
    fn walk(e: &Expr, series: &[Labels]) -> bool {
        let selects = |vs: &promql_parser::parser::VectorSelector| {
            series.iter().any(|l| {
                vs.name.as_ref().is_none_or(|n| l.get("__name__") == Some(n.as_str()))
                    && vs.matchers.matchers.iter().all(|m| {
                        m.is_match(
                            l.get("__name__").filter(|_| m.name == "__name__").or_else(|| l.get(&m.name)).unwrap_or(""),
                        )
                    })
            })
        };
        match e {
            Expr::VectorSelector(vs) => selects(vs),
            Expr::MatrixSelector(ms) => selects(&ms.vs),
            Expr::Aggregate(a) => walk(&a.expr, series) || a.param.as_ref().is_some_and(|p| walk(p, series)),
            Expr::Unary(u) => walk(&u.expr, series),
            Expr::Binary(b) => walk(&b.lhs, series) || walk(&b.rhs, series),
            Expr::Paren(p) => walk(&p.expr, series),
            Expr::Subquery(s) => walk(&s.expr, series),
            Expr::Call(c) => c.args.args.iter().any(|a| walk(a, series)),
            _ => false,
        }
    }
    promql_parser::parser::parse(query).is_ok_and(|e| walk(&e, series))
}

#[derive(Default)]
struct Tally {
    passed: BTreeSet<String>,
    failed: Vec<(String, String, String)>,
    /// Evals that touch native histograms.
    skipped: Vec<String>,
    annotations_unchecked: usize,
}

fn run_file(name: &str, commands: Vec<Command>, tally: &mut Tally) {
    let mut head = Head::new();
    let mut histograms: Vec<Labels> = Vec::new();
    for c in commands {
        match c {
            Command::Clear => {
                head = Head::new();
                histograms.clear();
            }
            Command::Load { interval, series, nhcb } => histograms.extend(load(&head, interval, &series, nhcb)),
            Command::Eval(e) => {
                let id = format!("{name}:{}", e.line);
                // An eval that names a histogram series (or expects histograms) is skipped.
                if selects_any(&e.query, &histograms) || e.expected.iter().any(|s| s.histogram) {
                    tally.skipped.push(id);
                    continue;
                }
                let engine = Engine::new(Arc::clone(&head) as Arc<dyn vigie::tsdb::Querier>, EngineOptions::default());
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| check(&engine, &e)))
                    .unwrap_or_else(|_| Err("panicked".into()));
                match outcome {
                    Ok(()) => {
                        tally.annotations_unchecked += e.annotation as usize;
                        tally.passed.insert(id);
                    }
                    Err(why) => tally.failed.push((id, e.query.clone(), why)),
                }
            }
        }
    }
}

#[test]
fn prometheus_promql_scripts() {
    let dir = scripts_dir();
    if !dir.is_dir() {
        // CI has ../shared beside the checkout: there a missing folder is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing (../shared must sit beside the checkout)",
            dir.display()
        );
        println!("skipping: {} not found (../shared beside the checkout holds the scripts)", dir.display());
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let scripts: Vec<(String, Vec<Command>)> = files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let commands =
                script::parse(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, commands)
        })
        .collect();
    let mut tally = Tally::default();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // engine panics are counted, not printed
    for (name, commands) in scripts {
        run_file(&name, commands, &mut tally);
    }
    std::panic::set_hook(default_hook);
    let total = tally.passed.len() + tally.failed.len();
    let mut per_file: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for id in &tally.passed {
        per_file.entry(id.split(':').next().unwrap()).or_default().0 += 1;
    }
    for (id, _, _) in &tally.failed {
        per_file.entry(id.split(':').next().unwrap()).or_default().1 += 1;
    }
    let mut skipped_per_file: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in &tally.skipped {
        let (f, line) = id.split_once(':').unwrap();
        skipped_per_file.entry(f).or_default().push(line);
        per_file.entry(f).or_default();
    }
    for (f, (p, x)) in &per_file {
        let skipped = skipped_per_file.get(f).map_or(0, Vec::len);
        println!("{f:>28}: {p:>4} pass {x:>4} fail {skipped:>4} skipped");
    }
    for (f, lines) in &skipped_per_file {
        println!("skipped (native histograms) in {f}: lines {}", lines.join(" "));
    }
    println!(
        "PromQL conformance: {} of {total} evals pass ({:.1} %); {} skipped (native histograms); \
         annotations not checked on {} passing evals",
        tally.passed.len(),
        100.0 * tally.passed.len() as f64 / total.max(1) as f64,
        tally.skipped.len(),
        tally.annotations_unchecked
    );
    if std::env::var_os("VIGIE_CONFORMANCE_VERBOSE").is_some() {
        for (id, q, why) in &tally.failed {
            println!("FAIL {id} {q}\n     {why}");
        }
    }
    let listed: BTreeSet<String> = std::fs::read_to_string(passing_file())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if std::env::var_os("VIGIE_UPDATE_CONFORMANCE").is_some() {
        let mut text = String::from("# Evals of ../shared/conformance/promqltest that vigie passes (file:line).\n");
        text.push_str("# Regenerate: VIGIE_UPDATE_CONFORMANCE=1 cargo nextest run --test promql_conformance\n");
        for id in &tally.passed {
            text.push_str(id);
            text.push('\n');
        }
        std::fs::write(passing_file(), text).unwrap();
        return;
    }
    let regressed: Vec<&(String, String, String)> = tally.failed.iter().filter(|f| listed.contains(&f.0)).collect();
    let unlisted: Vec<&String> = tally.passed.iter().filter(|p| !listed.contains(*p)).collect();
    assert!(
        regressed.is_empty(),
        "evals that passed before now fail:\n{}",
        regressed.iter().map(|(id, q, why)| format!("{id} {q}\n    {why}")).collect::<Vec<_>>().join("\n")
    );
    assert!(
        unlisted.is_empty(),
        "evals now pass that tests/promql_conformance.passing does not list (rerun with VIGIE_UPDATE_CONFORMANCE=1): {unlisted:?}"
    );
}

/// The runner itself: wrong values, missing or extra series, wrong order and unexpected
/// success are all failures.
#[test]
fn runner_rejects_wrong_results() {
    let script = "load 1m\n  m{a=\"1\"} 1 2 3\n  m{a=\"2\"} 10 20 30\n";
    let outcome = |eval: &str| {
        let commands = script::parse(&format!("{script}\n{eval}\n")).unwrap();
        let head = Head::new();
        let mut result = None;
        for c in commands {
            match c {
                Command::Load { interval, series, nhcb } => {
                    load(&head, interval, &series, nhcb);
                }
                Command::Eval(e) => {
                    let engine = Engine::new(head.clone() as Arc<dyn vigie::tsdb::Querier>, EngineOptions::default());
                    result = Some(check(&engine, &e));
                }
                Command::Clear => {}
            }
        }
        result.unwrap()
    };
    assert_eq!(outcome("eval instant at 1m m\n  m{a=\"1\"} 2\n  m{a=\"2\"} 20"), Ok(()));
    assert!(outcome("eval instant at 1m m\n  m{a=\"1\"} 2\n  m{a=\"2\"} 21").is_err());
    assert!(outcome("eval instant at 1m m\n  m{a=\"1\"} 2").is_err());
    assert!(outcome("eval instant at 1m m\n  m{a=\"1\"} 2\n  m{a=\"2\"} 20\n  m{a=\"3\"} 1").is_err());
    assert_eq!(outcome("eval range from 0 to 2m step 1m m{a=\"1\"}\n  m{a=\"1\"} 1 2 3"), Ok(()));
    assert!(outcome("eval range from 0 to 2m step 1m m{a=\"1\"}\n  m{a=\"1\"} 1 2 4").is_err());
    assert!(outcome("eval range from 0 to 2m step 1m m{a=\"1\"}\n  m{a=\"1\"} 1 _ 3").is_err());
    assert!(outcome("eval_ordered instant at 1m sort_desc(m)\n  m{a=\"1\"} 2\n  m{a=\"2\"} 20").is_err());
    assert!(outcome("eval_fail instant at 1m m").is_err());
    assert_eq!(outcome("eval instant at 1m scalar(m{a=\"1\"})\n  2"), Ok(()));
    assert!(outcome("eval instant at 1m scalar(m{a=\"1\"})\n  3").is_err());
}
