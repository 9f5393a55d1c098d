//! Reads Prometheus's PromQL test scripts (`../shared/conformance/promqltest/FORMAT.md`):
//! `load`, `clear` and `eval` commands with their expected results, in both the current
//! `expect …` syntax and the deprecated `eval_fail` / `eval_ordered` / `eval_warn` /
//! `eval_info` forms.

pub use vigie::promql::series_notation::{Point, SeriesLine, series_line};

#[derive(Debug, Clone)]
pub enum Fail {
    Any,
    Message(String),
    Regex(String),
}

#[derive(Debug, Clone)]
pub enum Timing {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Clone)]
pub struct Eval {
    pub line: usize,
    pub timing: Timing,
    pub query: String,
    pub fail: Option<Fail>,
    pub ordered: bool,
    /// Expects a warn or info annotation (vigie has none yet: not checked).
    pub annotation: bool,
    pub expected: Vec<SeriesLine>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Load { interval: i64, series: Vec<SeriesLine>, nhcb: bool },
    Clear,
    Eval(Eval),
}

/// Milliseconds of a Prometheus duration (`1m`, `1h30m`, `0`) or a plain number of seconds.
pub fn duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0).round() as i64);
    }
    vigie::config::PromDuration::parse(s).map(|d| d.0.as_millis() as i64).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let body = |i: &mut usize| -> Vec<(usize, &str)> {
        let mut v = Vec::new();
        while *i < lines.len() {
            let l = lines[*i];
            let t = l.trim();
            let command = ["load", "clear", "eval"].iter().any(|c| l.starts_with(c));
            if t.is_empty() || command {
                break;
            }
            if !t.starts_with('#') {
                v.push((*i + 1, t));
            }
            *i += 1;
        }
        v
    };
    while i < lines.len() {
        let line = lines[i].trim();
        let n = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |e: String| format!("line {n}: {e}");
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match word {
            "clear" => out.push(Command::Clear),
            "load" | "load_with_nhcb" => {
                let interval = duration_ms(rest.trim()).map_err(err)?;
                let series =
                    body(&mut i).into_iter().map(|(_, l)| series_line(l)).collect::<Result<_, _>>().map_err(err)?;
                out.push(Command::Load { interval, series, nhcb: word == "load_with_nhcb" });
            }
            "eval" | "eval_fail" | "eval_ordered" | "eval_warn" | "eval_info" => {
                let (timing, query) = if let Some(r) = rest.strip_prefix("instant at ") {
                    let (t, q) = r.trim().split_once(char::is_whitespace).ok_or_else(|| err("no query".into()))?;
                    (Timing::Instant(duration_ms(t).map_err(err)?), q.trim().to_string())
                } else if let Some(r) = rest.strip_prefix("range from ") {
                    let words: Vec<&str> = r.splitn(6, char::is_whitespace).collect();
                    if words.len() < 6 || words[1] != "to" || words[3] != "step" {
                        return Err(err(format!("bad range eval {rest:?}")));
                    }
                    let timing = Timing::Range {
                        start: duration_ms(words[0]).map_err(err)?,
                        end: duration_ms(words[2]).map_err(err)?,
                        step: duration_ms(words[4]).map_err(err)?,
                    };
                    (timing, words[5].trim().to_string())
                } else {
                    return Err(err(format!("bad eval {rest:?}")));
                };
                let mut e = Eval {
                    line: n,
                    timing,
                    query,
                    fail: (word == "eval_fail").then_some(Fail::Any),
                    ordered: word == "eval_ordered",
                    annotation: word == "eval_warn" || word == "eval_info",
                    expected: Vec::new(),
                };
                for (ln, l) in body(&mut i) {
                    let unq = |s: &str| s.trim().trim_matches('"').to_string();
                    if let Some(m) = l.strip_prefix("expected_fail_message ") {
                        e.fail = Some(Fail::Message(m.trim().to_string()));
                    } else if let Some(m) = l.strip_prefix("expected_fail_regexp ") {
                        e.fail = Some(Fail::Regex(m.trim().to_string()));
                    } else if let Some(x) = l.strip_prefix("expect ") {
                        let x = x.trim();
                        if let Some(m) = x.strip_prefix("fail msg:") {
                            e.fail = Some(Fail::Message(unq(m)));
                        } else if let Some(m) = x.strip_prefix("fail regex:") {
                            e.fail = Some(Fail::Regex(unq(m)));
                        } else if x == "fail" {
                            e.fail = Some(Fail::Any);
                        } else if x == "ordered" {
                            e.ordered = true;
                        } else if x.starts_with("warn") || x.starts_with("info") {
                            e.annotation = true;
                        } else if x != "no_warn" && x != "no_info" {
                            return Err(format!("line {ln}: unknown expectation {x:?}"));
                        }
                    } else {
                        e.expected.push(series_line(l).map_err(|m| format!("line {ln}: {m}"))?);
                    }
                }
                out.push(Command::Eval(e));
            }
            other => return Err(err(format!("unknown command {other:?}"))),
        }
    }
    Ok(out)
}
