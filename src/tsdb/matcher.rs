//! Label matchers (`=`, `!=`, `=~`, `!~`) as the storage evaluates them.

use regex::Regex;

use crate::model::compile_go_regex;

#[derive(Clone, Debug)]
pub enum MatchKind {
    Equal(String),
    NotEqual(String),
    Regex(Regex),
    NotRegex(Regex),
}

/// One matcher on one label. A missing label reads as `""`, so `foo=""` selects series
/// without `foo` and `foo=~".*"` selects every series.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub kind: MatchKind,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {message}")]
pub struct MatcherError {
    pub pattern: String,
    pub message: String,
}

impl Matcher {
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), kind: MatchKind::Equal(value.into()) }
    }

    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), kind: MatchKind::NotEqual(value.into()) }
    }

    /// A fully anchored regex matcher with Go RE2 semantics.
    pub fn regex(name: impl Into<String>, pattern: &str, negate: bool) -> Result<Self, MatcherError> {
        let re =
            compile_go_regex(pattern).map_err(|e| MatcherError { pattern: pattern.into(), message: e.to_string() })?;
        let kind = if negate { MatchKind::NotRegex(re) } else { MatchKind::Regex(re) };
        Ok(Matcher { name: name.into(), kind })
    }

    pub fn matches(&self, value: &str) -> bool {
        match &self.kind {
            MatchKind::Equal(v) => v == value,
            MatchKind::NotEqual(v) => v != value,
            MatchKind::Regex(r) => r.is_match(value),
            MatchKind::NotRegex(r) => !r.is_match(value),
        }
    }

    /// Whether the matcher accepts a series that lacks the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}
