//! Relabeling (Prometheus 3.5 `model/relabel`): rules that rewrite or drop label sets.
//! Used for target relabeling before a scrape, metric relabeling on every scraped series,
//! and later write and alert relabeling. Pure logic, no I/O.

use std::sync::Arc;

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::model::{Labels, LabelsBuilder, compile_go_regex, is_legacy_label_name, is_utf8_label_name};

/// A rule as written in YAML. Unset fields keep Prometheus's defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// `Some(None)` is an explicit `regex: null` (matches only the empty string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn parse(s: &str) -> Result<Self, RelabelError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return Err(RelabelError::UnknownAction(s.to_string())),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// Which label names are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameValidation {
    /// Prometheus 3 default: any non-empty UTF-8 string.
    Utf8,
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    Legacy,
}

/// Why a rule was rejected; messages follow Prometheus's.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RelabelError {
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTarget(&'static str),
    #[error("{0:?} is invalid 'target_label' for {1} action")]
    InvalidTarget(String, &'static str),
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("{0} action requires only 'source_labels' and 'target_label', and no other fields")]
    OnlySourceAndTarget(&'static str),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(&'static str),
    #[error("{0:?} is invalid 'replacement' for labelmap action")]
    InvalidLabelmapReplacement(String),
    #[error("{0:?} is not a valid label name")]
    InvalidSourceLabel(String),
    #[error("invalid regex {0:?}: {1}")]
    Regex(String, String),
}

/// A validated rule, ready to apply.
#[derive(Debug)]
pub struct CompiledRelabel {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    /// The regex is the default `(.*)`.
    default_regex: bool,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
    validation: NameValidation,
}

fn valid_name(v: NameValidation, n: &str) -> bool {
    match v {
        NameValidation::Utf8 => is_utf8_label_name(n),
        NameValidation::Legacy => is_legacy_label_name(n),
    }
}

/// A `$`-template is valid when expanding every reference to a valid name still gives one.
fn valid_template(v: NameValidation, t: &str) -> bool {
    let stripped = Regex::new(r"\$(\{[^}]*\}|[A-Za-z0-9_]+|\$)").expect("static regex").replace_all(t, "x");
    valid_name(v, &stripped)
}

impl CompiledRelabel {
    pub fn compile(c: &RelabelConfig, validation: NameValidation) -> Result<Self, RelabelError> {
        let action = Action::parse(c.action.as_deref().unwrap_or("replace"))?;
        let name = action.name();
        let pattern = match &c.regex {
            None => "(.*)".to_string(),
            Some(None) => String::new(),
            Some(Some(p)) => p.clone(),
        };
        let regex = compile_go_regex(&pattern).map_err(|e| RelabelError::Regex(pattern.clone(), e.to_string()))?;
        let target = c.target_label.clone().unwrap_or_default();
        let replacement = c.replacement.clone().unwrap_or_else(|| "$1".into());
        for s in c.source_labels.iter().flatten() {
            if !valid_name(validation, s) {
                return Err(RelabelError::InvalidSourceLabel(s.clone()));
            }
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(RelabelError::MissingTarget(name));
        }
        let target_ok = if action == Action::Replace && target.contains('$') {
            valid_template(validation, &target)
        } else {
            valid_name(validation, &target)
        };
        if needs_target && !target_ok {
            return Err(RelabelError::InvalidTarget(target, name));
        }
        match action {
            Action::HashMod if c.modulus.unwrap_or(0) == 0 => return Err(RelabelError::ZeroModulus),
            Action::Lowercase | Action::Uppercase if c.replacement.as_deref().is_some_and(|r| r != "$1") => {
                return Err(RelabelError::OnlySourceAndTarget(name));
            }
            Action::KeepEqual | Action::DropEqual
                if c.regex.is_some() || c.modulus.is_some() || c.separator.is_some() || c.replacement.is_some() =>
            {
                return Err(RelabelError::OnlySourceAndTarget(name));
            }
            Action::LabelDrop | Action::LabelKeep
                if c.source_labels.as_ref().is_some_and(|s| !s.is_empty())
                    || !target.is_empty()
                    || c.modulus.is_some()
                    || c.separator.is_some()
                    || c.replacement.is_some() =>
            {
                return Err(RelabelError::OnlyRegex(name));
            }
            Action::LabelMap if !valid_template(validation, &replacement) => {
                return Err(RelabelError::InvalidLabelmapReplacement(replacement));
            }
            _ => {}
        }
        Ok(CompiledRelabel {
            source_labels: c.source_labels.clone().unwrap_or_default(),
            separator: c.separator.clone().unwrap_or_else(|| ";".into()),
            default_regex: pattern == "(.*)",
            regex,
            modulus: c.modulus.unwrap_or(0),
            target_label: target,
            replacement,
            action,
            validation,
        })
    }

    fn joined(&self, lb: &LabelsBuilder) -> String {
        let mut v = String::new();
        for (i, s) in self.source_labels.iter().enumerate() {
            if i > 0 {
                v.push_str(&self.separator);
            }
            v.push_str(lb.get_or_empty(s));
        }
        v
    }

    /// Applies the rule; `false` means the label set is dropped.
    pub fn apply(&self, lb: &mut LabelsBuilder) -> bool {
        match self.action {
            Action::Replace => {
                let v = self.joined(lb);
                if self.default_regex
                    && v.is_empty()
                    && !self.target_label.contains('$')
                    && !self.replacement.contains('$')
                {
                    lb.set(self.target_label.clone(), self.replacement.clone());
                    return true;
                }
                let Some(caps) = self.regex.captures(&v) else { return true };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !valid_name(self.validation, &target) {
                    return true;
                }
                let mut value = String::new();
                caps.expand(&self.replacement, &mut value);
                lb.set(target, value);
            }
            Action::Keep => return self.regex.is_match(&self.joined(lb)),
            Action::Drop => return !self.regex.is_match(&self.joined(lb)),
            Action::KeepEqual => return self.joined(lb) == lb.get_or_empty(&self.target_label),
            Action::DropEqual => return self.joined(lb) != lb.get_or_empty(&self.target_label),
            Action::HashMod => {
                let digest = Md5::digest(self.joined(lb).as_bytes());
                let mut b = [0u8; 8];
                b.copy_from_slice(&digest[8..16]);
                lb.set(self.target_label.clone(), (u64::from_be_bytes(b) % self.modulus).to_string());
            }
            Action::LabelMap => {
                let snapshot: Vec<(String, String)> = lb.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                for (name, value) in snapshot {
                    if self.regex.is_match(&name) {
                        let new = self.regex.replace_all(&name, self.replacement.as_str()).into_owned();
                        lb.set(new, value);
                    }
                }
            }
            Action::LabelDrop => lb.retain(|n| !self.regex.is_match(n)),
            Action::LabelKeep => lb.retain(|n| self.regex.is_match(n)),
            Action::Lowercase => lb.set(self.target_label.clone(), self.joined(lb).to_lowercase()),
            Action::Uppercase => lb.set(self.target_label.clone(), self.joined(lb).to_uppercase()),
        }
        true
    }
}

/// Applies `rules` in order; stops at the first drop. Returns whether the set is kept.
pub fn process(rules: &[Arc<CompiledRelabel>], lb: &mut LabelsBuilder) -> bool {
    rules.iter().all(|r| r.apply(lb))
}

/// [`process`] on an immutable label set.
pub fn process_labels(rules: &[Arc<CompiledRelabel>], labels: &Labels) -> Option<Labels> {
    let mut lb = labels.builder();
    process(rules, &mut lb).then(|| lb.into_labels())
}

#[cfg(test)]
mod tests;
