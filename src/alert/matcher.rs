//! Label matchers as Alertmanager writes them (`name="value"`, `=~`, `!=`, `!~`): one parser
//! shared by routes, inhibit rules, silences and API filters, so a matcher means the same
//! thing everywhere. Regexes are RE2 and fully anchored; a missing label matches as the
//! empty string.

use std::fmt;

use regex::Regex;

use crate::model::Labels;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }

    /// `isEqual` of the API: true for `=` and `=~`.
    pub fn is_equal(self) -> bool {
        matches!(self, MatchOp::Equal | MatchOp::Regex)
    }

    pub fn from_flags(is_regex: bool, is_equal: bool) -> MatchOp {
        match (is_regex, is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatcherError {
    #[error("bad matcher format: {0}")]
    Format(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("invalid regular expression {value:?}: {message}")]
    Regex { value: String, message: String },
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Matcher, MatcherError> {
        let value = value.into();
        let regex = if op.is_regex() {
            // Alertmanager anchors as `^(?:re)$`: unlike Prometheus 3, `.` stops at a newline.
            let re = crate::model::compile_go_regex_unanchored(&format!("^(?:{value})$"))
                .map_err(|e| MatcherError::Regex { value: value.clone(), message: e.to_string() })?;
            Some(re)
        } else {
            None
        };
        Ok(Matcher { name: name.into(), op, value, regex })
    }

    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get_or_empty(&self.name))
    }

    /// Order of Alertmanager's `Matchers.Less`: name, then value, then operator.
    pub fn sort_key(&self) -> (&str, &str, MatchOp) {
        (&self.name, &self.value, self.op)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), escape(&self.value))
    }
}

/// OpenMetrics escaping: backslash, line feed and double quote.
fn escape(s: &str) -> String {
    s.replace('\\', r"\\").replace('\n', r"\n").replace('"', "\\\"")
}

/// All matchers must match.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `{a="b",c=~"d"}`: the form route keys and logs use.
pub fn format_set(matchers: &[Matcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", inner.join(","))
}

/// Parses a comma-separated list with optional braces and a tolerated trailing comma:
/// `{foo = "bar", dings != "bums", }`, `foo=bar,dings!=bums`. Commas inside double quotes
/// do not separate.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let (mut inside_quotes, mut escaped) = (false, false);
    let mut token = String::new();
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            '"' => {
                if !escaped {
                    inside_quotes = !inside_quotes;
                } else {
                    escaped = false;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    if !token.trim().is_empty() {
        tokens.push(token.trim().to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// One matcher: a label name, an operator, and a value that may be double-quoted, with
/// `\"`, `\n` and `\\` escapes (a lone backslash stays literal).
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let t = s.trim();
    let name_end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(t.len());
    let name = &t[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(MatcherError::Format(s.to_string()));
    }
    let rest = t[name_end..].trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else {
        return Err(MatcherError::Format(s.to_string()));
    };
    let raw_full = rest.trim();
    let (raw, mut expect_quote) = match raw_full.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_full, false),
    };
    let mut value = String::new();
    let mut escaped = false;
    let last = raw.len().saturating_sub(1);
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if i < last => escaped = true,
            '"' => {
                if !expect_quote || i + c.len_utf8() < raw.len() {
                    return Err(MatcherError::UnescapedQuote(raw_full.to_string()));
                }
                expect_quote = false;
            }
            _ => value.push(c),
        }
    }
    if expect_quote {
        return Err(MatcherError::UnescapedQuote(raw_full.to_string()));
    }
    Matcher::new(name, op, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn parses_the_accepted_forms() {
        let ms = parse_matchers(r#"{foo = "bar", dings != "bums", }"#).unwrap();
        assert_eq!(format_set(&ms), r#"{foo="bar",dings!="bums"}"#);
        let ms = parse_matchers("foo=bar,dings!=bums").unwrap();
        assert_eq!(format_set(&ms), r#"{foo="bar",dings!="bums"}"#);
        let ms = parse_matchers(r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#).unwrap();
        assert_eq!(ms[0].value, r#"She said: "Hi, ladies! That's gender-neutral…""#);
        let ms = parse_matchers(r#"statuscode=~"5..""#).unwrap();
        assert_eq!(ms[0].op, MatchOp::Regex);
        assert!(ms[0].matches(&l(&[("statuscode", "503")])));
        assert!(!ms[0].matches(&l(&[("statuscode", "5030")])));
        let ms = parse_matchers("severity=~crit.*").unwrap();
        assert!(ms[0].matches(&l(&[("severity", "critical")])));
        assert_eq!(parse_matcher(r#"a="x\y""#).unwrap().value, r"x\y");
        assert_eq!(parse_matcher(r#"a="x\ny""#).unwrap().value, "x\ny");
        assert_eq!(parse_matcher("a=").unwrap().value, "");
    }

    #[test]
    fn rejects_bad_matchers_with_alertmanagers_messages() {
        assert_eq!(parse_matcher("foo").unwrap_err().to_string(), "bad matcher format: foo");
        assert_eq!(parse_matcher("1a=b").unwrap_err().to_string(), "bad matcher format: 1a=b");
        assert_eq!(
            parse_matcher(r#"a="b"c""#).unwrap_err().to_string(),
            r#"matcher value contains unescaped double quote: "b"c""#
        );
        assert!(matches!(parse_matcher(r#"a="b"#).unwrap_err(), MatcherError::UnescapedQuote(_)));
        assert!(matches!(parse_matcher("a=~(").unwrap_err(), MatcherError::Regex { .. }));
    }

    #[test]
    fn missing_labels_match_as_empty() {
        let m = parse_matcher(r#"foo!~"x.+""#).unwrap();
        assert!(m.matches(&l(&[("bar", "1")])));
        let m = parse_matcher(r#"foo="""#).unwrap();
        assert!(m.matches(&l(&[("bar", "1")])));
        assert!(!m.matches(&l(&[("foo", "1")])));
    }

    #[test]
    fn prints_with_openmetrics_escapes() {
        let m = Matcher::new("a", MatchOp::NotRegex, "x\"\\\n").unwrap();
        assert_eq!(m.to_string(), r#"a!~"x\"\\\n""#);
        assert_eq!(parse_matcher(&m.to_string()).unwrap(), m);
    }
}
