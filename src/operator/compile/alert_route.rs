//! `AlertRoute`s → one route tree. Each object's subtree is grafted under the root route,
//! before the root's own children, with a `namespace="<object namespace>"` matcher and
//! `continue: true` (as prometheus-operator grafts an AlertmanagerConfig), so a team
//! only ever receives alerts of its namespace and the routes after it still see them.
//! Receiver and time-interval names get the prefix `<namespace>/<name>/`; inhibit rules
//! get the namespace matcher on both sides. Pure: no I/O.

use std::path::Path;

use crate::alert::config::{InhibitRuleFile, ReceiverFile, RouteFile, RouterConfig, RouterConfigFile};
use crate::alert::timeinterval::NamedTimeInterval;
use crate::operator::crd::AlertRoute;

use super::monitor::namespace_of;

fn prefixed(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
}

fn rename_route(r: &mut RouteFile, prefix: &str) {
    if let Some(rcv) = &mut r.receiver {
        *rcv = prefixed(prefix, rcv);
    }
    for t in r.mute_time_intervals.iter_mut().chain(r.active_time_intervals.iter_mut()) {
        *t = prefixed(prefix, t);
    }
    for child in &mut r.routes {
        rename_route(child, prefix);
    }
}

/// The first `*_file` key (or `templates`) under `v`: an AlertRoute may not make vigie
/// read files (`url_file`, `password_file`, `credentials_file`, …) that belong to others.
fn file_reference(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => m.iter().find_map(|(k, child)| {
            let here = format!("{path}.{k}");
            if k.ends_with("_file") || k.ends_with("_files") { Some(here) } else { file_reference(child, &here) }
        }),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, child)| file_reference(child, &format!("{path}[{i}]")))
        }
        _ => None,
    }
}

fn field<T: serde::de::DeserializeOwned>(v: &serde_json::Value, at: &str) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("{at}: {e}"))
}

/// One AlertRoute as pieces to graft: (top route, receivers, inhibit rules, time intervals).
pub struct Graft {
    pub route: RouteFile,
    pub receivers: Vec<ReceiverFile>,
    pub inhibit_rules: Vec<InhibitRuleFile>,
    pub time_intervals: Vec<NamedTimeInterval>,
}

/// Reads an AlertRoute's spec and applies the namespace rules.
pub fn graft_of(r: &AlertRoute) -> Result<Graft, String> {
    let ns = namespace_of(&r.metadata);
    let name = r.metadata.name.clone().unwrap_or_default();
    let prefix = format!("{ns}/{name}/");
    let namespace_matcher = format!("namespace={}", serde_json::Value::String(ns.clone()));
    let mut route: RouteFile = field(&r.spec.route, "spec.route")?;
    if route.receiver.is_none() {
        return Err("spec.route.receiver: required (the subtree's alerts must go somewhere)".into());
    }
    rename_route(&mut route, &prefix);
    route.matchers.insert(0, namespace_matcher.clone());
    route.continue_matching = true;
    let mut receivers = Vec::new();
    for (i, v) in r.spec.receivers.iter().enumerate() {
        if let Some(path) = file_reference(v, &format!("spec.receivers[{i}]")) {
            return Err(format!("{path}: an AlertRoute cannot refer to files; put the value in the object"));
        }
        let mut rcv: ReceiverFile = field(v, &format!("spec.receivers[{i}]"))?;
        rcv.name = prefixed(&prefix, &rcv.name);
        receivers.push(rcv);
    }
    let mut inhibit_rules = Vec::new();
    for (i, v) in r.spec.inhibit_rules.iter().enumerate() {
        let mut rule: InhibitRuleFile = field(v, &format!("spec.inhibit_rules[{i}]"))?;
        rule.source_matchers.push(namespace_matcher.clone());
        rule.target_matchers.push(namespace_matcher.clone());
        inhibit_rules.push(rule);
    }
    let mut time_intervals = Vec::new();
    for (i, v) in r.spec.time_intervals.iter().enumerate() {
        let mut ti: NamedTimeInterval = field(v, &format!("spec.time_intervals[{i}]"))?;
        ti.name = prefixed(&prefix, &ti.name);
        time_intervals.push(ti);
    }
    Ok(Graft { route, receivers, inhibit_rules, time_intervals })
}

/// `base` with the grafts added (in the order given, before the root's own children).
pub fn grafted(base: &RouterConfigFile, grafts: &[&Graft]) -> RouterConfigFile {
    let mut f = base.clone();
    let root = f.route.get_or_insert_with(RouteFile::default);
    let own = std::mem::take(&mut root.routes);
    root.routes = grafts.iter().map(|g| g.route.clone()).chain(own).collect();
    for g in grafts {
        f.receivers.extend(g.receivers.iter().cloned());
        f.inhibit_rules.extend(g.inhibit_rules.iter().cloned().map(Some));
        f.time_intervals.extend(g.time_intervals.iter().cloned());
    }
    f
}

/// Whether `graft` compiles on top of `base` alone (its own errors, not another team's).
pub fn check(base: &RouterConfigFile, graft: &Graft, base_dir: &Path) -> Result<RouterConfig, String> {
    let f = grafted(base, &[graft]);
    crate::alert::config::compile_file(f, "AlertRoute", base_dir).map_err(|e| match e {
        crate::alert::config::RouterConfigError::Invalid { message, .. } => message,
        other => other.to_string(),
    })
}
