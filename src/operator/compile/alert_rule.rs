//! `AlertRule` → rule groups. The groups are validated by the rule-file reader itself
//! (the same messages as `vigie check rules`), and every group gets the label
//! `namespace=<object namespace>`, so the alerts of a team reach that team's
//! `AlertRoute`. Pure: no I/O.

use crate::operator::crd::{AlertRule, GroupStatus};
use crate::rules::{GroupDef, GroupDefaults};

use super::monitor::namespace_of;

/// The name an object's groups carry where a rule file name would be (`/api/v1/rules`).
pub fn source_name(r: &AlertRule) -> String {
    source_name_as(r, "alertrule")
}

/// As [`source_name`], for a PrometheusRule (`prometheusrule/<ns>/<name>`).
pub fn source_name_as(r: &AlertRule, kind: &str) -> String {
    format!("{kind}/{}/{}", namespace_of(&r.metadata), r.metadata.name.clone().unwrap_or_default())
}

/// The groups in rule-file form, with the namespace label on every rule (a rule's own
/// labels win over its group's, and group labels need Prometheus 3).
pub fn rule_file_yaml(r: &AlertRule, ns: &str) -> String {
    groups_yaml(r, Some(ns))
}

/// The groups in rule-file form, as written.
pub fn rule_file_yaml_plain(r: &AlertRule) -> String {
    groups_yaml(r, None)
}

fn groups_yaml(r: &AlertRule, namespace: Option<&str>) -> String {
    let groups: Vec<serde_json::Value> = r
        .spec
        .groups
        .iter()
        .map(|g| {
            let mut v = serde_json::to_value(g).unwrap_or_default();
            if let Some(rules) = v["rules"].as_array_mut() {
                for rule in rules {
                    if let Some(ns) = namespace {
                        rule["labels"]["namespace"] = serde_json::Value::String(ns.to_string());
                    }
                    // Numbers are expressions too (`expr: 1`).
                    if let Some(n) = rule["expr"].as_i64() {
                        rule["expr"] = serde_json::Value::String(n.to_string());
                    }
                }
            }
            v
        })
        .collect();
    serde_saphyr::to_string(&serde_json::json!({ "groups": groups })).unwrap_or_default()
}

/// Drops the `file:line:col: ` of an error found in the generated text: the lines are
/// not the user's.
fn without_position(e: &str, file: &str) -> String {
    match e.strip_prefix(file).and_then(|rest| rest.strip_prefix(':')) {
        Some(rest) => rest.splitn(3, ':').nth(2).unwrap_or(rest).trim().to_string(),
        None => e.to_string(),
    }
}

/// The validated groups of one AlertRule, with a status line per group; `Err` when any
/// group or rule is invalid (the message names the first).
pub fn rule_groups(r: &AlertRule, defaults: &GroupDefaults) -> (Result<Vec<GroupDef>, String>, Vec<GroupStatus>) {
    rule_groups_as(r, defaults, "alertrule", true)
}

/// As [`rule_groups`], named `<kind>/<ns>/<name>`, with or without the namespace label.
pub fn rule_groups_as(
    r: &AlertRule,
    defaults: &GroupDefaults,
    kind: &str,
    enforce_namespace: bool,
) -> (Result<Vec<GroupDef>, String>, Vec<GroupStatus>) {
    let ns = namespace_of(&r.metadata);
    let file = source_name_as(r, kind);
    if r.spec.groups.is_empty() {
        return (Err("spec.groups: at least one group is required".into()), Vec::new());
    }
    let text = if enforce_namespace { rule_file_yaml(r, &ns) } else { rule_file_yaml_plain(r) };
    let mut groups = match crate::rules::file::parse(&text, &file, defaults) {
        Ok(g) => g,
        Err(e) => {
            let message = match &e {
                crate::rules::RuleFileError::Invalid { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let statuses = r
                .spec
                .groups
                .iter()
                .map(|g| GroupStatus { name: g.name.clone(), valid: false, error: Some(message.clone()) })
                .collect();
            return (Err(format!("spec.groups: {message}")), statuses);
        }
    };
    let mut first_error = None;
    let mut statuses = Vec::new();
    for g in &mut groups {
        for rule in &mut g.rules {
            if let Some(e) = &rule.error {
                rule.error = Some(without_position(e, &file));
            }
            // A rule's own labels override its group's: enforce the namespace last, so no
            // rule can raise alerts for another namespace.
            if enforce_namespace {
                rule.labels.retain(|(k, _)| k != "namespace");
                rule.labels.push(("namespace".to_string(), ns.clone()));
            }
        }
        let error = g.errors().next().map(str::to_string);
        if first_error.is_none() {
            first_error = error.clone();
        }
        statuses.push(GroupStatus { name: g.name.clone(), valid: error.is_none(), error });
    }
    match first_error {
        Some(e) => (Err(format!("spec.groups: {e}")), statuses),
        None => (Ok(groups), statuses),
    }
}
