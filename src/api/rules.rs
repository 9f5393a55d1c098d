//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers` in Prometheus's shapes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use super::AppState;
use super::params::Params;
use super::response::{ApiError, success};
use super::time::format_rfc3339;
use crate::model::Labels;
use crate::rules::alerting::{ActiveAlert, AlertState};
use crate::rules::{Group, RuleKind};

type St = State<Arc<AppState>>;

fn labels_json(l: &Labels) -> Json {
    Json::Object(l.iter().map(|l| (l.name.clone(), Json::String(l.value.clone()))).collect())
}

fn pairs_json<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Json {
    Json::Object(pairs.map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect::<Map<_, _>>())
}

/// Alert values as Prometheus writes them: Go's `'e'` format.
fn value_e(v: f64) -> String {
    crate::promql::format_exponent(v, false)
}

fn alert_json(a: &ActiveAlert) -> Json {
    let mut o = json!({
        "labels": labels_json(&a.labels),
        "annotations": pairs_json(a.annotations.iter()),
        "state": a.state.as_str(),
        "activeAt": format_rfc3339(a.active_at),
        "value": value_e(a.value),
    });
    if let Some(k) = a.keep_firing_since {
        o["keepFiringSince"] = json!(format_rfc3339(k));
    }
    o
}

fn time_or_zero(ms: Option<i64>) -> String {
    ms.map(format_rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

struct Filter<'a> {
    kind: Option<&'a str>,
    names: Vec<&'a str>,
    groups: Vec<&'a str>,
    files: Vec<&'a str>,
    exclude_alerts: bool,
}

fn group_json(g: &Group, f: &Filter<'_>) -> Option<Json> {
    if !f.groups.is_empty() && !f.groups.contains(&g.def.name.as_str()) {
        return None;
    }
    if !f.files.is_empty() && !f.files.contains(&g.def.file.as_str()) {
        return None;
    }
    let mut rules = Vec::new();
    for r in &g.rules {
        if !f.names.is_empty() && !f.names.contains(&r.def.name.as_str()) {
            continue;
        }
        let query = r.def.query.as_ref().map(|q| q.to_string()).unwrap_or_else(|| r.def.expr.clone());
        let labels = Labels::from_pairs(r.def.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut o = json!({
            "name": r.def.name,
            "query": query,
            "labels": labels_json(&labels),
            "health": r.health.as_str(),
            "lastError": r.last_error.clone().unwrap_or_default(),
            "evaluationTime": r.eval_seconds,
            "lastEvaluation": time_or_zero(r.last_eval_ms),
        });
        match &r.def.kind {
            RuleKind::Record => {
                if f.kind == Some("alert") {
                    continue;
                }
                o["type"] = json!("recording");
            }
            RuleKind::Alert { hold, keep_firing_for, annotations } => {
                if f.kind == Some("record") {
                    continue;
                }
                let mut alerts: Vec<&ActiveAlert> = r
                    .alerts
                    .as_ref()
                    .map(|s| s.active.values().filter(|a| a.state != AlertState::Inactive).collect())
                    .unwrap_or_default();
                alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
                let state = alerts.iter().map(|a| a.state).max().unwrap_or(AlertState::Inactive);
                o["type"] = json!("alerting");
                o["state"] = json!(state.as_str());
                o["duration"] = json!(hold.as_secs_f64());
                o["keepFiringFor"] = json!(keep_firing_for.as_secs_f64());
                o["annotations"] = pairs_json(annotations.iter().map(|(k, v)| (k, v)));
                if !f.exclude_alerts {
                    o["alerts"] = Json::Array(alerts.into_iter().map(alert_json).collect());
                }
            }
        }
        rules.push(o);
    }
    if rules.is_empty() && (!f.names.is_empty() || f.kind.is_some()) {
        return None;
    }
    Some(json!({
        "name": g.def.name,
        "file": g.def.file,
        "rules": rules,
        "interval": g.def.interval.as_secs_f64(),
        "limit": g.def.limit,
        "evaluationTime": g.eval_seconds,
        "lastEvaluation": time_or_zero(g.last_eval_ms),
    }))
}

pub async fn rules(State(s): St, uri: Uri) -> Response {
    let p = Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &[]);
    let kind = match p.get("type") {
        None | Some("") => None,
        Some(k @ ("alert" | "record")) => Some(k),
        Some(other) => {
            return ApiError::BadData(format!("invalid query parameter type='{other}'")).into_response();
        }
    };
    let f = Filter {
        kind,
        names: p.all("rule_name[]"),
        groups: p.all("rule_group[]"),
        files: p.all("file[]"),
        exclude_alerts: p.get("exclude_alerts") == Some("true"),
    };
    let groups: Vec<Json> = s.rules.groups().iter().filter_map(|g| group_json(&g.lock(), &f)).collect();
    success(json!({"groups": groups}))
}

pub async fn alerts(State(s): St) -> Response {
    let mut out = Vec::new();
    for g in s.rules.groups() {
        let g = g.lock();
        for r in &g.rules {
            let Some(state) = &r.alerts else { continue };
            let mut v: Vec<&ActiveAlert> = state.active.values().filter(|a| a.state != AlertState::Inactive).collect();
            v.sort_by(|a, b| a.labels.cmp(&b.labels));
            out.extend(v.into_iter().map(alert_json));
        }
    }
    success(json!({"alerts": out}))
}

pub async fn alertmanagers(State(s): St) -> Response {
    let active: Vec<Json> = s.forwarder.urls().into_iter().map(|u| json!({"url": u})).collect();
    success(json!({"activeAlertmanagers": active, "droppedAlertmanagers": []}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_print_like_go_e_format() {
        assert_eq!(super::value_e(1.0), "1e+00");
        assert_eq!(super::value_e(0.25), "2.5e-01");
        assert_eq!(super::value_e(12345.0), "1.2345e+04");
    }
}
