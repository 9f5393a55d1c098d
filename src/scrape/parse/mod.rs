//! The exposition-format parser: Prometheus text 0.0.4 (and 1.0's quoted names) and
//! OpenMetrics 1.0 text, zero-copy over the scraped bytes.
//!
//! [`Parser::next`] validates each line fully (so a malformed page fails at the right
//! line) but allocates nothing: a [`Sample`] borrows its name and label block from the
//! input, and [`Sample::series`] is the exact byte span of the series so the scraper can
//! use it as a cache key and skip label handling on every later scrape.

mod lex;

use std::borrow::Cow;

pub use lex::LabelIter;

#[cfg(test)]
mod tests;

/// The wire format of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    PrometheusText,
    OpenMetrics,
}

impl Format {
    /// The format announced by a `Content-Type` header, if it is one vigie reads.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "application/openmetrics-text" => Some(Format::OpenMetrics),
            "text/plain" => Some(Format::PrometheusText),
            _ => None,
        }
    }
}

/// `# TYPE` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

/// One line of meaning.
#[derive(Debug)]
pub enum Entry<'a> {
    Help { name: &'a str, help: Cow<'a, str> },
    Type { name: &'a str, kind: MetricType },
    Unit { name: &'a str, unit: &'a str },
    Comment,
    Sample(Sample<'a>),
}

/// A sample line.
#[derive(Debug)]
pub struct Sample<'a> {
    /// The bytes of the metric name and label block, as written.
    pub series: &'a [u8],
    pub name: &'a str,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    labels_raw: &'a str,
}

impl<'a> Sample<'a> {
    /// The labels, values unescaped (borrowed when they hold no escapes).
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter::new(self.labels_raw)
    }
}

/// A malformed page: 1-based line and column, and what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}:{column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Iterates the entries of one page.
pub struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    done: bool,
    label_names: Vec<&'a str>,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Self {
        Parser { input, pos: 0, line: 0, format, done: false, label_names: Vec::new() }
    }

    /// Bytes consumed so far (progress of a long import).
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The 1-based line of the entry last returned.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The next entry; `Ok(None)` at the end of the page.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.pos >= self.input.len() {
                self.done = true;
                if self.format == Format::OpenMetrics {
                    return Err(ParseError { line: self.line.max(1), column: 1, message: "expected # EOF".into() });
                }
                return Ok(None);
            }
            let start = self.pos;
            let end = self.input[start..].iter().position(|&b| b == b'\n').map(|i| start + i);
            let line_end = end.unwrap_or(self.input.len());
            self.pos = end.map(|e| e + 1).unwrap_or(self.input.len());
            self.line += 1;
            let line = std::str::from_utf8(&self.input[start..line_end]).map_err(|e| ParseError {
                line: self.line,
                column: e.valid_up_to() + 1,
                message: "invalid UTF-8".into(),
            })?;
            let entry = lex::line(self, line).map_err(|(column, message)| ParseError {
                line: self.line,
                column: column + 1,
                message,
            })?;
            match entry {
                Some(e) => return Ok(Some(e)),
                None => continue,
            }
        }
    }
}

/// A sample with owned strings (tests, import).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// Parses a whole page into owned samples.
pub fn parse_all(input: &[u8], format: Format) -> Result<Vec<OwnedSample>, ParseError> {
    let mut p = Parser::new(input, format);
    let mut out = Vec::new();
    while let Some(e) = p.next()? {
        if let Entry::Sample(s) = e {
            out.push(OwnedSample {
                name: s.name.to_string(),
                labels: s.labels().map(|(n, v)| (n.into_owned(), v.into_owned())).collect(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            });
        }
    }
    Ok(out)
}
