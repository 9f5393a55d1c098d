//! Line-level scanning for [`super::Parser`]. Errors are `(column, message)`, 0-based.

use std::borrow::Cow;

use super::{Entry, Format, MetricType, Parser, Sample};

type LexResult<T> = Result<T, (usize, String)>;

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Scans one line (without its `\n`).
pub(super) fn line<'a>(p: &mut Parser<'a>, line: &'a str) -> LexResult<Option<Entry<'a>>> {
    let om = p.format == Format::OpenMetrics;
    let b = line.as_bytes();
    if b.is_empty() || (!om && b.iter().all(|&c| is_blank(c))) {
        if om {
            return Err((0, "unexpected empty line".into()));
        }
        return Ok(None);
    }
    if b[0] == b'#' {
        return comment(p, line);
    }
    let start = if om { 0 } else { b.iter().position(|&c| !is_blank(c)).unwrap_or(0) };
    sample(p, line, start).map(|s| Some(Entry::Sample(s)))
}

fn comment<'a>(p: &mut Parser<'a>, line: &'a str) -> LexResult<Option<Entry<'a>>> {
    let om = p.format == Format::OpenMetrics;
    if om && line == "# EOF" {
        p.done = true;
        if p.pos < p.input.len() {
            return Err((0, "unexpected data after # EOF".into()));
        }
        return Ok(None);
    }
    let rest = &line[1..];
    let rest_trim = if om { rest.strip_prefix(' ').unwrap_or(rest) } else { rest.trim_start_matches([' ', '\t']) };
    let (kw, after) = match rest_trim.find([' ', '\t']) {
        Some(i) => (&rest_trim[..i], &rest_trim[i + 1..]),
        None => (rest_trim, ""),
    };
    let kind = match kw {
        "HELP" | "TYPE" => kw,
        "UNIT" if om => kw,
        _ if om => return Err((0, format!("invalid comment line {line:?}"))),
        _ => return Ok(Some(Entry::Comment)),
    };
    let after = if om { after } else { after.trim_start_matches([' ', '\t']) };
    let name_end = after.find([' ', '\t']).unwrap_or(after.len());
    let name = &after[..name_end];
    let col = line.len() - after.len();
    if name.is_empty() || !is_name_start(name.as_bytes()[0]) || !name.bytes().all(is_name_char) {
        return Err((col, format!("invalid metric name in comment: {name:?}")));
    }
    let value = after.get(name_end + 1..).unwrap_or("");
    let value = if om { value } else { value.trim_start_matches([' ', '\t']) };
    Ok(Some(match kind {
        "HELP" => Entry::Help { name, help: unescape(value, false) },
        "UNIT" => Entry::Unit { name, unit: value },
        _ => {
            let k = match value.trim_end() {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "summary" => MetricType::Summary,
                "untyped" if !om => MetricType::Unknown,
                "unknown" if om => MetricType::Unknown,
                "gaugehistogram" if om => MetricType::GaugeHistogram,
                "info" if om => MetricType::Info,
                "stateset" if om => MetricType::StateSet,
                other => return Err((col + name_end + 1, format!("invalid metric type {other:?}"))),
            };
            Entry::Type { name, kind: k }
        }
    }))
}

/// Reads a quoted string starting at `b[i] == '"'`; returns the index after the closing quote.
fn quoted(b: &[u8], i: usize) -> LexResult<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => {
                match b.get(j + 1) {
                    Some(b'\\' | b'"' | b'n') => {}
                    _ => return Err((j, "invalid escape sequence".into())),
                }
                j += 2;
            }
            b'"' => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err((i, "unterminated quoted string".into()))
}

fn name_at(b: &[u8], i: usize) -> usize {
    let mut j = i;
    if j < b.len() && is_name_start(b[j]) {
        j += 1;
        while j < b.len() && is_name_char(b[j]) {
            j += 1;
        }
    }
    j
}

fn skip_blank(b: &[u8], mut i: usize, om: bool) -> usize {
    if !om {
        while i < b.len() && is_blank(b[i]) {
            i += 1;
        }
    }
    i
}

fn sample<'a>(p: &mut Parser<'a>, line: &'a str, start: usize) -> LexResult<Sample<'a>> {
    let om = p.format == Format::OpenMetrics;
    let b = line.as_bytes();
    let mut name: &'a str = "";
    let mut i = start;
    if b[i] != b'{' {
        let e = name_at(b, i);
        if e == i {
            return Err((i, format!("invalid metric name, unexpected {:?}", b[i] as char)));
        }
        name = &line[i..e];
        i = e;
        if !om {
            let j = skip_blank(b, i, om);
            if j < b.len() && b[j] == b'{' {
                i = j;
            }
        }
    }
    let mut labels_raw: &'a str = "";
    p.label_names.clear();
    if i < b.len() && b[i] == b'{' {
        let open = i;
        i += 1;
        let mut first = true;
        loop {
            i = skip_blank(b, i, om);
            if i >= b.len() {
                return Err((i, "unexpected end of line in label set".into()));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            if !first {
                return Err((i, "expected ',' or '}' in label set".into()));
            }
            // A label name, or (text 1.0) a quoted metric name / label name.
            let (lname, after): (&'a str, usize) = if b[i] == b'"' {
                let e = quoted(b, i)?;
                (&line[i + 1..e - 1], e)
            } else {
                let e = name_at(b, i);
                if e == i {
                    return Err((i, format!("invalid label name, unexpected {:?}", b[i] as char)));
                }
                (&line[i..e], e)
            };
            i = skip_blank(b, after, om);
            if i < b.len() && (b[i] == b',' || b[i] == b'}') && b[open + 1..].starts_with(b"\"") && name.is_empty() {
                // `{"metric.name", ...}`: the quoted metric name.
                name = lname;
            } else {
                if i >= b.len() || b[i] != b'=' {
                    return Err((i, format!("expected '=' after label name {lname:?}")));
                }
                i = skip_blank(b, i + 1, om);
                if i >= b.len() || b[i] != b'"' {
                    return Err((i, "expected quoted label value".into()));
                }
                i = quoted(b, i)?;
                if p.label_names.contains(&lname) {
                    return Err((i, format!("duplicate label name {lname:?}")));
                }
                p.label_names.push(lname);
            }
            i = skip_blank(b, i, om);
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else {
                first = false;
            }
        }
        labels_raw = &line[open + 1..i - 1];
        if name.is_empty() {
            return Err((open, "metric name missing".into()));
        }
    }
    let series = &b[start..i];
    if i >= b.len() || !is_blank(b[i]) || (om && b[i] != b' ') {
        return Err((i, "expected a space before the value".into()));
    }
    i = if om { i + 1 } else { skip_blank(b, i, false) };
    let vend = b[i..].iter().position(|&c| is_blank(c)).map(|k| i + k).unwrap_or(b.len());
    let value = parse_float(&line[i..vend]).ok_or_else(|| (i, format!("invalid value {:?}", &line[i..vend])))?;
    i = vend;
    let mut timestamp_ms = None;
    let rest = &line[i..];
    let rest_t = if om { rest.strip_prefix(' ').unwrap_or(rest) } else { rest.trim_start_matches([' ', '\t']) };
    let tcol = line.len() - rest_t.len();
    if !rest_t.is_empty() && !rest_t.starts_with('#') {
        let tend = rest_t.find([' ', '\t']).unwrap_or(rest_t.len());
        let ts = &rest_t[..tend];
        timestamp_ms = Some(if om {
            let f: f64 = ts.parse().map_err(|_| (tcol, format!("invalid timestamp {ts:?}")))?;
            if !f.is_finite() {
                return Err((tcol, format!("invalid timestamp {ts:?}")));
            }
            (f * 1000.0).round() as i64
        } else {
            ts.parse::<i64>().map_err(|_| (tcol, format!("invalid timestamp {ts:?}")))?
        });
        let after = rest_t[tend..].trim_start_matches([' ', '\t']);
        if !(after.is_empty() || om && after.starts_with('#')) {
            return Err((line.len() - after.len(), format!("unexpected {after:?} after the sample")));
        }
        if om && after.starts_with('#') {
            exemplar(after).map_err(|(c, m)| (line.len() - after.len() + c, m))?;
        }
    } else if rest_t.starts_with('#') {
        if !om {
            return Err((tcol, "unexpected '#' after the value".into()));
        }
        exemplar(rest_t).map_err(|(c, m)| (tcol + c, m))?;
    }
    Ok(Sample { series, name, value, timestamp_ms, labels_raw })
}

/// Checks ` # {labels} value [timestamp]` loosely; exemplars are not stored.
fn exemplar(s: &str) -> LexResult<()> {
    let b = s.as_bytes();
    if !s.starts_with("# {") {
        return Err((0, "invalid exemplar".into()));
    }
    let mut i = 3;
    while i < b.len() && b[i] != b'}' {
        if b[i] == b'"' {
            i = quoted(b, i)?;
        } else {
            i += 1;
        }
    }
    if i >= b.len() {
        return Err((i, "unterminated exemplar label set".into()));
    }
    let mut parts = s[i + 1..].split_whitespace();
    match parts.next().and_then(parse_float) {
        Some(_) => Ok(()),
        None => Err((i + 1, "invalid exemplar value".into())),
    }
}

/// Go's `ParseFloat` forms that matter here: decimal, exponent, `NaN`, `±Inf`.
pub fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Undoes `\\`, `\n` and (in label values) `\"`.
pub fn unescape(s: &str, quotes: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Walks an already validated label block.
pub struct LabelIter<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> LabelIter<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        LabelIter { s, i: 0 }
    }
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        loop {
            while self.i < b.len() && (is_blank(b[self.i]) || b[self.i] == b',') {
                self.i += 1;
            }
            if self.i >= b.len() {
                return None;
            }
            let (name, after) = if b[self.i] == b'"' {
                let e = quoted(b, self.i).ok()?;
                (unescape(&self.s[self.i + 1..e - 1], true), e)
            } else {
                let e = name_at(b, self.i);
                (Cow::Borrowed(&self.s[self.i..e]), e)
            };
            let mut j = after;
            while j < b.len() && is_blank(b[j]) {
                j += 1;
            }
            if j >= b.len() || b[j] != b'=' {
                // The quoted metric name of `{"name", ...}`: not a label.
                self.i = j;
                continue;
            }
            j += 1;
            while j < b.len() && is_blank(b[j]) {
                j += 1;
            }
            let e = quoted(b, j).ok()?;
            self.i = e;
            return Some((name, unescape(&self.s[j + 1..e - 1], true)));
        }
    }
}
