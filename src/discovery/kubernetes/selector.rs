//! Kubernetes label selectors in their string form (`app=web,tier in (a,b),!canary`), as
//! `kubernetes_sd_configs.selectors` carries them. vigie applies them to its shared caches
//! (one watch per kind for every job) instead of opening one more watch per selector, so
//! a job sees only its own objects. Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; the empty one matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector(Vec<Requirement>);

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn set(values: &str) -> Result<Vec<String>, String> {
    let v = values.trim();
    let inner =
        v.strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(|| format!("{v:?}: expected (a,b)"))?;
    Ok(inner.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in split_top(s).into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let r = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set(v)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')) {
                Requirement::Exists(part.into())
            } else {
                return Err(format!("label selector {s:?}: cannot read {part:?}"));
            };
            reqs.push(r);
        }
        Ok(Selector(reqs))
    }

    /// The string form of a LabelSelector (`matchLabels` and `matchExpressions`).
    pub fn from_label_selector(sel: &LabelSelector) -> String {
        let mut parts: Vec<String> = sel.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default().join(",");
            parts.push(match e.operator.as_str() {
                "In" => format!("{} in ({values})", e.key),
                "NotIn" => format!("{} notin ({values})", e.key),
                "DoesNotExist" => format!("!{}", e.key),
                _ => e.key.clone(),
            });
        }
        parts.join(",")
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.contains(x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_match_as_the_api_server_does() {
        let s = Selector::parse("app=web, tier in (front, edge),!canary,team,env!=dev").unwrap();
        assert!(s.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "x")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "back"), ("team", "x")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "x"), ("canary", "")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "edge")]))), "team must exist");
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "x"), ("env", "dev")]))));
        assert!(Selector::parse("").unwrap().matches(None));
        assert!(Selector::parse("x notin (a)").unwrap().matches(None));
        assert!(Selector::parse("a in b").is_err());
    }
}
