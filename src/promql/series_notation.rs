//! Prometheus's series notation, as promtool's `input_series` and PromQL test scripts'
//! `load` blocks write it: `metric{label="value"} 1+2x3 _ stale 5`.
//!
//! Values expand as `a+bxn` (a, a+b, … a+n·b), `axn` (n+1 times a), `_` (no sample),
//! `_xn` (n missing samples) and `stale` (a staleness marker).

use crate::model::Labels;

/// One point of a series line: a value, a stale marker, or nothing at that step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    Value(f64),
    Stale,
    Missing,
}

/// A series line: labels (`None` for a bare scalar result) and its expanded points.
#[derive(Debug, Clone)]
pub struct SeriesLine {
    pub labels: Option<Labels>,
    pub points: Vec<Point>,
    /// The line holds a native histogram (`{{…}}`), which vigie does not store yet.
    pub histogram: bool,
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => {
            if let Some(hex) = s.strip_prefix("0x") {
                return i64::from_str_radix(hex, 16).map(|v| v as f64).map_err(|e| format!("{s:?}: {e}"));
            }
            s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"))
        }
    }
}

/// Expands one points token: `_`, `_xN`, `stale`, `v`, `vxN`, `v+dxN`, `v-dxN`.
fn expand(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if tok == "stale" {
        out.push(Point::Stale);
        return Ok(());
    }
    if tok == "_" {
        out.push(Point::Missing);
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|e| format!("{tok:?}: {e}"))?;
        out.extend(std::iter::repeat_n(Point::Missing, n));
        return Ok(());
    }
    let Some((head, times)) = tok.rsplit_once('x').filter(|(h, t)| !h.is_empty() && t.parse::<usize>().is_ok()) else {
        out.push(Point::Value(number(tok)?));
        return Ok(());
    };
    let n: usize = times.parse().expect("checked above");
    // `a+b` / `a-b`: the operator is the last sign not at the start or after an exponent.
    let bytes = head.as_bytes();
    let op = (1..bytes.len())
        .rev()
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, step) = match op {
        Some(i) => {
            let step = number(&head[i + 1..])?;
            (number(&head[..i])?, if bytes[i] == b'-' { -step } else { step })
        }
        None => (number(head)?, 0.0),
    };
    for k in 0..=n {
        out.push(Point::Value(start + step * k as f64));
    }
    Ok(())
}

/// Splits `metric{a="b", …} rest` into the series part and the rest, honouring quotes.
fn split_series(line: &str) -> (&str, &str) {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'{' {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    (&line[..i], &line[i..])
}

/// Parses `name{l="v", …}` (either part optional) into labels.
fn parse_labels(spec: &str) -> Result<Labels, String> {
    let (name, rest) = match spec.find('{') {
        Some(i) => (&spec[..i], &spec[i + 1..spec.len() - 1]),
        None => (spec, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    let b = rest.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let (lname, after) = if b[i] == b'"' {
            let (s, n) = quoted(&rest[i..])?;
            (s, i + n)
        } else {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.' || b[i] == b':') {
                i += 1;
            }
            (rest[start..i].to_string(), i)
        };
        i = after;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(format!("expected = in {spec:?}"));
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let (value, n) = quoted(&rest[i..])?;
        i += n;
        if !value.is_empty() {
            pairs.push((lname, value));
        }
    }
    Ok(Labels::from_pairs(pairs))
}

/// A double- or single-quoted string with Go escapes at the start of `s`; returns it and
/// the bytes it took.
fn quoted(s: &str) -> Result<(String, usize), String> {
    let q = s.chars().next().ok_or("expected a quoted string")?;
    if q != '"' && q != '\'' {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('x') => {
                    let h: String = (0..2).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let byte = u8::from_str_radix(&h, 16).map_err(|e| e.to_string())?;
                    // Label values in the scripts hold bytes; keep valid UTF-8 as is.
                    out.push(char::from(byte));
                }
                Some(o) => out.push(o),
                None => return Err("unterminated escape".into()),
            },
            c if c == q => return Ok((out, i + 1)),
            c => out.push(c),
        }
    }
    Err(format!("unterminated string {s:?}"))
}

/// Parses a series line (`load` data or an expected result).
pub fn series_line(line: &str) -> Result<SeriesLine, String> {
    let line = line.trim();
    let first = line.split_whitespace().next().unwrap_or("");
    // A bare scalar result: one number and nothing else.
    if !line.contains('{') && line.split_whitespace().count() == 1 && number(first).is_ok() {
        return Ok(SeriesLine { labels: None, points: vec![Point::Value(number(first)?)], histogram: false });
    }
    let (spec, rest) = split_series(line);
    let labels = parse_labels(spec)?;
    let mut points = Vec::new();
    let mut histogram = false;
    let mut rest = rest.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            histogram = true;
            let end = after.find("}}").ok_or("unterminated {{")?;
            points.push(Point::Missing);
            rest = &after[end + 2..];
            // `{{…}}+{{…}}x3`: the increment is a second histogram.
            if let Some(inc) = rest.strip_prefix("+{{").or_else(|| rest.strip_prefix("-{{")) {
                let end = inc.find("}}").ok_or("unterminated {{")?;
                rest = &inc[end + 2..];
            }
            // `…x3`: the repeat count runs to the next space.
            let skip = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest = rest[skip..].trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        expand(&rest[..end], &mut points)?;
        rest = rest[end..].trim_start();
    }
    Ok(SeriesLine { labels: Some(labels), points, histogram })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions() {
        let s = series_line(r#"m{a="x y", b="}"} 1+2x2 _ stale 5x1 -1-1x1 _x2 1e3"#).unwrap();
        let l = s.labels.unwrap();
        assert_eq!((l.get("a"), l.get("b"), l.get("__name__")), (Some("x y"), Some("}"), Some("m")));
        use Point::*;
        let want = vec![
            Value(1.0),
            Value(3.0),
            Value(5.0),
            Missing,
            Stale,
            Value(5.0),
            Value(5.0),
            Value(-1.0),
            Value(-2.0),
            Missing,
            Missing,
            Value(1000.0),
        ];
        assert_eq!(s.points, want);
        assert!(series_line("3").unwrap().labels.is_none());
        assert!(series_line("{} 1 2").unwrap().labels.unwrap().is_empty());
    }
}
