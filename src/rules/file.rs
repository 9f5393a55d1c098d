//! Rule files as written (Prometheus's rule-file format) and their validation into
//! [`GroupDef`]s the evaluator runs.
//!
//! Every error names the file, the line and column of the offending node, the group and
//! the rule, like `promtool check rules`; a PromQL error adds its own position inside the
//! expression.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::PromDuration;
use crate::model::{Labels, METRIC_NAME};

/// Why a rule file was rejected. `Display` is `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid { file: String, line: u64, column: u64, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileSpec {
    #[serde(default)]
    groups: Vec<Spanned<GroupSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    name: Option<Spanned<String>>,
    interval: Option<PromDuration>,
    query_offset: Option<PromDuration>,
    #[serde(default)]
    limit: u64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<Spanned<RuleSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    record: Option<Spanned<String>>,
    alert: Option<Spanned<String>>,
    expr: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<PromDuration>,
    keep_firing_for: Option<PromDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// What a rule produces.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    /// A recording rule: its result is stored under the rule's name.
    Record,
    /// An alerting rule.
    Alert {
        hold: Duration,
        keep_firing_for: Duration,
        /// Annotation templates, by name.
        annotations: Vec<(String, String)>,
    },
}

/// One validated rule.
#[derive(Clone, Debug)]
pub struct RuleDef {
    /// The recorded metric name or the alert name.
    pub name: String,
    /// The expression as written.
    pub expr: String,
    /// The parsed expression, evaluated at each tick (`None` when the rule is invalid).
    pub query: Option<Arc<promql_parser::parser::Expr>>,
    /// Label templates (group labels first, the rule's own override them).
    pub labels: Vec<(String, String)>,
    pub kind: RuleKind,
    /// Why the rule is invalid (`file:line:col: …`); an invalid rule is not evaluated.
    pub error: Option<String>,
}

impl RuleDef {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alert { .. })
    }

    /// Whether `other` is the same rule (state carries over a reload when it is).
    pub fn same_as(&self, other: &RuleDef) -> bool {
        self.name == other.name
            && self.expr == other.expr
            && self.labels == other.labels
            && self.kind == other.kind
            && self.error == other.error
    }
}

/// One validated rule group.
#[derive(Clone, Debug)]
pub struct GroupDef {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub query_offset: Duration,
    /// Most series (recording) or alerts (alerting) a rule may produce; 0: no limit.
    pub limit: usize,
    pub rules: Vec<RuleDef>,
}

impl GroupDef {
    /// The errors of the group's invalid rules.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(|r| r.error.as_deref())
    }
}

/// Defaults a group takes from the main configuration.
#[derive(Clone, Debug)]
pub struct GroupDefaults {
    pub interval: Duration,
    pub query_offset: Duration,
}

impl Default for GroupDefaults {
    fn default() -> Self {
        GroupDefaults { interval: Duration::from_secs(60), query_offset: Duration::ZERO }
    }
}

/// Reads and validates one rule file.
pub fn load_file(path: &Path, defaults: &GroupDefaults) -> Result<Vec<GroupDef>, RuleFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RuleFileError::Read { file: file.clone(), source })?;
    parse(&text, &file, defaults)
}

/// Validates rule-file text; `file` names it in errors and in the groups.
pub fn parse(text: &str, file: &str, defaults: &GroupDefaults) -> Result<Vec<GroupDef>, RuleFileError> {
    let spec: RuleFileSpec = if text.trim().is_empty() {
        RuleFileSpec::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let (line, column, message) = crate::config::yaml_error_parts(&e);
            RuleFileError::Invalid { file: file.to_string(), line, column, message }
        })?
    };
    let mut seen = HashSet::new();
    let mut groups = Vec::with_capacity(spec.groups.len());
    for g in spec.groups {
        let at = |loc: &serde_saphyr::Location, message: String| RuleFileError::Invalid {
            file: file.to_string(),
            line: loc.line(),
            column: loc.column(),
            message,
        };
        let gloc = g.referenced;
        let g = g.value;
        let name = g.name.as_ref().map(|n| n.value.clone()).unwrap_or_default();
        if name.is_empty() {
            return Err(at(&gloc, "Groupname must not be empty".into()));
        }
        if !seen.insert(name.clone()) {
            let loc = g.name.as_ref().map_or(gloc, |n| n.referenced);
            return Err(at(&loc, format!("groupname: {name:?} is repeated in the same file")));
        }
        let interval = g.interval.map(|d| d.0).unwrap_or(defaults.interval);
        if interval.is_zero() {
            return Err(at(&gloc, format!("group {name:?}: interval must be greater than zero")));
        }
        for l in g.labels.keys() {
            check_label_name(l).map_err(|m| at(&gloc, format!("group {name:?}: {m}")))?;
        }
        let mut rules = Vec::with_capacity(g.rules.len());
        for (i, r) in g.rules.into_iter().enumerate() {
            let rloc = r.referenced;
            let r = r.value;
            let rule_name = r.record.as_ref().or(r.alert.as_ref()).map(|s| s.value.clone()).unwrap_or_default();
            let is_alert = r.alert.is_some();
            let expr = r.expr.as_ref().map(|e| e.value.trim().to_string()).unwrap_or_default();
            // A bad rule does not take its group or file down: it is kept with its error,
            // shown by the API and `check rules`, and not evaluated.
            let def = validate_rule(r, &g.labels).unwrap_or_else(|(loc, m)| {
                let e = at(&loc.unwrap_or(rloc), format!("group {name:?}, rule {}, {rule_name:?}: {m}", i + 1));
                RuleDef {
                    name: rule_name.clone(),
                    expr,
                    query: None,
                    labels: Vec::new(),
                    kind: if is_alert {
                        RuleKind::Alert {
                            hold: Duration::ZERO,
                            keep_firing_for: Duration::ZERO,
                            annotations: Vec::new(),
                        }
                    } else {
                        RuleKind::Record
                    },
                    error: Some(e.to_string()),
                }
            });
            rules.push(def);
        }
        groups.push(GroupDef {
            file: file.to_string(),
            name,
            interval,
            query_offset: g.query_offset.map(|d| d.0).unwrap_or(defaults.query_offset),
            limit: g.limit as usize,
            rules,
        });
    }
    Ok(groups)
}

type RuleError = (Option<serde_saphyr::Location>, String);

fn validate_rule(r: RuleSpec, group_labels: &BTreeMap<String, String>) -> Result<RuleDef, RuleError> {
    let expr_loc = r.expr.as_ref().map(|e| e.referenced);
    let (name, is_alert) = match (&r.record, &r.alert) {
        (Some(_), Some(a)) => {
            return Err((Some(a.referenced), "only one of 'record' and 'alert' must be set".into()));
        }
        (None, None) => return Err((None, "one of 'record' or 'alert' must be set".into())),
        (Some(rec), None) => {
            if rec.value.is_empty() {
                return Err((Some(rec.referenced), "field 'record' must be set in rule".into()));
            }
            if !is_metric_name(&rec.value) {
                return Err((Some(rec.referenced), format!("invalid recording rule name: {}", rec.value)));
            }
            (rec.value.clone(), false)
        }
        (None, Some(a)) => {
            if a.value.is_empty() {
                return Err((Some(a.referenced), "field 'alert' must be set in rule".into()));
            }
            if a.value.contains(['{', '}']) {
                return Err((Some(a.referenced), format!("invalid alert name: {}", a.value)));
            }
            (a.value.clone(), true)
        }
    };
    let expr = r.expr.as_ref().map(|e| e.value.trim().to_string()).unwrap_or_default();
    if expr.is_empty() {
        return Err((expr_loc, "field 'expr' must be set in rule".into()));
    }
    let query = promql_parser::parser::parse(&expr)
        .map_err(|e| (expr_loc, format!("could not parse expression: {}", promql_error(&e))))?;
    if !is_alert {
        if r.for_.is_some_and(|d| !d.0.is_zero()) {
            return Err((None, "invalid field 'for' in recording rule".into()));
        }
        if r.keep_firing_for.is_some_and(|d| !d.0.is_zero()) {
            return Err((None, "invalid field 'keep_firing_for' in recording rule".into()));
        }
        if !r.annotations.is_empty() {
            return Err((None, "invalid field 'annotations' in recording rule".into()));
        }
    }
    let mut labels: BTreeMap<String, String> = group_labels.clone();
    for (k, v) in &r.labels {
        check_label_name(k).map_err(|m| (None, m))?;
        if k == METRIC_NAME {
            return Err((None, "invalid label name: __name__".into()));
        }
        labels.insert(k.clone(), v.clone());
    }
    for k in r.annotations.keys() {
        check_label_name(k).map_err(|m| {
            (None, format!("invalid annotation name: {}", m.trim_start_matches("invalid label name: ")))
        })?;
    }
    if is_alert {
        let kinds = labels.iter().map(|kv| ("label", kv)).chain(r.annotations.iter().map(|kv| ("annotation", kv)));
        for (kind, (k, v)) in kinds {
            super::template::check(v).map_err(|e| (None, format!("{kind} {k:?}: template: {e}")))?;
        }
    }
    let kind = if is_alert {
        RuleKind::Alert {
            hold: r.for_.map(|d| d.0).unwrap_or_default(),
            keep_firing_for: r.keep_firing_for.map(|d| d.0).unwrap_or_default(),
            annotations: r.annotations.into_iter().collect(),
        }
    } else {
        RuleKind::Record
    };
    Ok(RuleDef { name, expr, query: Some(Arc::new(query)), labels: labels.into_iter().collect(), kind, error: None })
}

/// A PromQL parser message in Prometheus's words. The parser gives no position inside
/// the expression, so the error carries the expression's own position in the file.
fn promql_error(message: &str) -> String {
    let message = message.trim();
    if message.contains("parse error") { message.to_string() } else { format!("parse error: {message}") }
}

fn check_label_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['{', '}']) || std::str::from_utf8(name.as_bytes()).is_err() {
        return Err(format!("invalid label name: {name}"));
    }
    Ok(())
}

/// A recording rule's name must be a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
fn is_metric_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// The group's label set (without templates) that the `/api/v1/rules` endpoint shows for a rule.
pub fn static_labels(rule: &RuleDef) -> Labels {
    Labels::from_pairs(rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(text: &str) -> Result<Vec<GroupDef>, RuleFileError> {
        parse(text, "r.yml", &GroupDefaults::default())
    }

    fn rule_error(text: &str) -> String {
        let g = groups(text).unwrap();
        g.iter().flat_map(|g| g.errors()).next().expect("an invalid rule").to_string()
    }

    #[test]
    fn valid_file_with_defaults_and_group_labels() {
        let g = groups(
            "groups:\n  - name: a\n    labels:\n      team: web\n    rules:\n      - alert: Up\n        expr: up == 0\n        for: 5m\n        labels:\n          team: db\n",
        )
        .unwrap();
        assert_eq!(g[0].interval, Duration::from_secs(60));
        let r = &g[0].rules[0];
        assert!(r.error.is_none() && r.is_alert());
        assert_eq!(r.labels, vec![("team".to_string(), "db".to_string())], "the rule's label overrides the group's");
        assert_eq!(
            r.kind,
            RuleKind::Alert { hold: Duration::from_secs(300), keep_firing_for: Duration::ZERO, annotations: vec![] }
        );
    }

    #[test]
    fn structural_errors_fail_the_file_with_a_position() {
        let e = groups("groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n").unwrap_err().to_string();
        assert_eq!(e, "r.yml:4:11: groupname: \"a\" is repeated in the same file");
        let e = groups("groups:\n  - name: a\n    bogus: 1\n").unwrap_err().to_string();
        assert!(e.starts_with("r.yml:3:5: unknown field `bogus`"), "{e}");
    }

    #[test]
    fn rule_errors_name_group_rule_and_position() {
        let e = rule_error("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: rate(up[5m]\n");
        assert!(
            e.starts_with("r.yml:5:15: group \"g\", rule 1, \"x\": could not parse expression: parse error"),
            "{e}"
        );
        let e = rule_error("groups:\n  - name: g\n    rules:\n      - record: x\n        alert: y\n        expr: up\n");
        assert!(e.ends_with("only one of 'record' and 'alert' must be set"), "{e}");
        let e = rule_error("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: up\n        for: 1m\n");
        assert!(e.ends_with("invalid field 'for' in recording rule"), "{e}");
        let e = rule_error("groups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: up\n");
        assert!(e.ends_with("invalid recording rule name: bad name"), "{e}");
        let e = rule_error(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          s: '{{ .Unclosed'\n",
        );
        assert!(e.contains("annotation \"s\": template:"), "{e}");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        /// Pieces of rule files, valid and not, glued at random.
        fn rule_file() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("groups:\n".to_string()),
                Just("  - name: g\n".to_string()),
                Just("    interval: 30s\n".to_string()),
                Just("    interval: -1\n".to_string()),
                Just("    limit: 3\n".to_string()),
                Just("    rules:\n".to_string()),
                Just("      - record: a:b\n".to_string()),
                Just("      - alert: A\n".to_string()),
                Just("        expr: sum by (x) (rate(m[5m]))\n".to_string()),
                Just("        expr: sum(\n".to_string()),
                Just("        for: 5m\n".to_string()),
                Just("        labels: {s: '{{ $value }}'}\n".to_string()),
                Just("        annotations: {d: '{{ if }}'}\n".to_string()),
                Just("\t\"'{[&*!%\n".to_string()),
                "[ -~]{0,12}\n",
            ];
            prop::collection::vec(piece, 0..14).prop_map(|v| v.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Any text gives groups or a positioned error, never a panic; every invalid
            /// rule carries its error.
            #[test]
            fn random_rule_files_never_panic(text in rule_file()) {
                match parse(&text, "f.yml", &GroupDefaults::default()) {
                    Ok(groups) => {
                        for r in groups.iter().flat_map(|g| &g.rules) {
                            prop_assert_eq!(r.query.is_none(), r.error.is_some());
                            if let Some(e) = &r.error {
                                prop_assert!(e.starts_with("f.yml:"), "{}", e);
                            }
                        }
                    }
                    Err(e) => prop_assert!(e.to_string().starts_with("f.yml:"), "{}", e),
                }
            }

            /// Template expansion returns text or an error for any input.
            #[test]
            fn random_templates_never_panic(text in "[ -~]{0,40}", value in any::<f64>()) {
                let labels = Labels::from_pairs([("instance", "a:1")]);
                let data = super::super::super::template::TemplateData {
                    labels: &labels,
                    external_labels: &labels,
                    external_url: "http://x",
                    value,
                    time_ms: 0,
                    query: None,
                };
                let _ = super::super::super::template::expand("t", &format!("{{{{{text}}}}}"), &data);
                let _ = super::super::super::template::expand("t", &text, &data);
            }
        }
    }
}
