//! Alertmanager's API v2 on vigie's listener: alerts in and out, groups, silences,
//! receivers and status, in the shapes amtool and Prometheus expect (go-openapi times with
//! three fraction digits, error bodies as JSON strings).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::time::{format_rfc3339, parse_rfc3339};
use crate::alert::Alert;
use crate::alert::matcher::{Matcher, parse_matcher};
use crate::alert::router::{AlertView, alert_matches};
use crate::alert::silence::{Silence, SilenceError, SilenceMatcher};
use crate::alert::store::format_fingerprint;
use crate::model::Labels;

type St = State<Arc<AppState>>;

/// The Alertmanager release whose API vigie speaks (amtool compares major.minor).
pub const API_VERSION: &str = "0.25.0";

fn bad_request(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(Value::String(msg.into()))).into_response()
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn flag(pairs: &[(String, String)], name: &str) -> Result<bool, String> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(true),
        Some((_, v)) => v.parse::<bool>().map_err(|_| format!("{name} in query must be of type boolean: {v:?}")),
    }
}

fn filters(pairs: &[(String, String)]) -> Result<Vec<Matcher>, String> {
    pairs.iter().filter(|(k, _)| k == "filter").map(|(_, v)| parse_matcher(v).map_err(|e| e.to_string())).collect()
}

/// A go-openapi `strfmt.DateTime`, or unset (`0001-01-01…`, what amtool sends) as 0.
fn parse_api_time(s: Option<&str>) -> Result<i64, String> {
    match s {
        None | Some("") => Ok(0),
        Some(s) if s.starts_with("0001-01-01T00:00:00") => Ok(0),
        Some(s) => parse_rfc3339(s).ok_or_else(|| format!("parsing time {s:?} as RFC 3339 failed")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: String,
}

pub async fn post_alerts(State(s): St, body: Bytes) -> Response {
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("parsing alerts: {e}")),
    };
    let mut alerts = Vec::with_capacity(posted.len());
    for p in posted {
        let Some(labels) = p.labels else { return bad_request("labels in body is required") };
        let starts = match parse_api_time(p.starts_at.as_deref()) {
            Ok(t) => t,
            Err(e) => return bad_request(e),
        };
        let ends = match parse_api_time(p.ends_at.as_deref()) {
            Ok(t) => t,
            Err(e) => return bad_request(e),
        };
        alerts.push(Alert {
            labels: Labels::from_pairs(labels),
            annotations: p.annotations,
            starts_at_ms: starts,
            ends_at_ms: ends,
            generator_url: p.generator_url,
        });
    }
    match s.router.post_alerts(alerts) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => bad_request(e),
    }
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(l.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect())
}

fn alert_json(v: &AlertView) -> Value {
    let a = &v.alert;
    let mut o = json!({
        "annotations": a.annotations,
        "endsAt": format_rfc3339(a.ends_at_ms),
        "fingerprint": format_fingerprint(a.fingerprint),
        "receivers": v.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": format_rfc3339(a.starts_at_ms),
        "status": {
            "inhibitedBy": v.inhibited_by,
            "silencedBy": v.silenced_by,
            "state": if v.suppressed() { "suppressed" } else { "active" },
        },
        "updatedAt": format_rfc3339(a.updated_at_ms),
        "labels": labels_json(&a.labels),
    });
    if !a.generator_url.is_empty() {
        o["generatorURL"] = Value::String(a.generator_url.clone());
    }
    o
}

/// The `active`/`silenced`/`inhibited`/`filter`/`receiver` selection shared by alerts and groups.
struct AlertSelection {
    active: bool,
    silenced: bool,
    inhibited: bool,
    filter: Vec<Matcher>,
    receiver: Option<regex::Regex>,
}

impl AlertSelection {
    fn from_query(uri: &Uri) -> Result<AlertSelection, String> {
        let q = query_pairs(uri);
        let receiver = match q.iter().find(|(k, _)| k == "receiver") {
            None => None,
            Some((_, r)) => Some(
                crate::model::compile_go_regex_unanchored(&format!("^(?:{r})$"))
                    .map_err(|e| format!("failed to parse receiver param: {e}"))?,
            ),
        };
        Ok(AlertSelection {
            active: flag(&q, "active")?,
            silenced: flag(&q, "silenced")?,
            inhibited: flag(&q, "inhibited")?,
            filter: filters(&q)?,
            receiver,
        })
    }

    fn keeps(&self, v: &AlertView) -> bool {
        if let Some(re) = &self.receiver
            && !v.receivers.iter().any(|r| re.is_match(r))
        {
            return false;
        }
        if !self.active && !v.suppressed() {
            return false;
        }
        if !self.silenced && !v.silenced_by.is_empty() {
            return false;
        }
        if !self.inhibited && !v.inhibited_by.is_empty() {
            return false;
        }
        alert_matches(v, &self.filter)
    }
}

pub async fn get_alerts(State(s): St, uri: Uri) -> Response {
    let sel = match AlertSelection::from_query(&uri) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    // The label filter first, so the per-alert status is computed only for what is shown.
    let alerts = s.router.alerts(|a| crate::alert::matcher::matches_all(&sel.filter, &a.labels));
    let out: Vec<Value> = alerts.iter().filter(|v| sel.keeps(v)).map(alert_json).collect();
    axum::Json(out).into_response()
}

pub async fn get_groups(State(s): St, uri: Uri) -> Response {
    let sel = match AlertSelection::from_query(&uri) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let out: Vec<Value> = s
        .router
        .groups()
        .into_iter()
        .filter(|g| sel.receiver.as_ref().is_none_or(|re| re.is_match(&g.receiver)))
        .filter_map(|g| {
            let alerts: Vec<Value> = g.alerts.iter().filter(|v| sel.keeps(v)).map(alert_json).collect();
            (!alerts.is_empty())
                .then(|| json!({"alerts": alerts, "labels": labels_json(&g.labels), "receiver": {"name": g.receiver}}))
        })
        .collect();
    axum::Json(out).into_response()
}

fn silence_json(sil: &Silence, now: i64) -> Value {
    json!({
        "id": sil.id,
        "status": {"state": sil.state(now).as_str()},
        "updatedAt": format_rfc3339(sil.updated_at_ms),
        "comment": sil.comment,
        "createdBy": sil.created_by,
        "endsAt": format_rfc3339(sil.ends_at_ms),
        "matchers": sil.matchers,
        "startsAt": format_rfc3339(sil.starts_at_ms),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub async fn get_silences(State(s): St, uri: Uri) -> Response {
    let q = query_pairs(&uri);
    let filter = match filters(&q) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let now = now_ms();
    // A filter keeps the silences having an identical matcher, not those matching labels.
    let keep = |sil: &Silence| filter.iter().all(|f| sil.matchers.contains(&SilenceMatcher::from_matcher(f)));
    let out: Vec<Value> = s.router.silences().iter().filter(|x| keep(x)).map(|x| silence_json(x, now)).collect();
    axum::Json(out).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: String,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

pub async fn post_silence(State(s): St, body: Bytes) -> Response {
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("parsing silence: {e}")),
    };
    let (starts, ends) = match (parse_api_time(Some(&p.starts_at)), parse_api_time(Some(&p.ends_at))) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    if starts >= ends {
        return bad_request("Failed to create silence: start time must be before end time");
    }
    if ends < now_ms() {
        return bad_request("Failed to create silence: end time can't be in the past");
    }
    let mut sil = Silence::new(p.matchers, starts, ends, &p.created_by, &p.comment);
    sil.id = p.id;
    let router = s.router.clone();
    match tokio::task::spawn_blocking(move || router.set_silence(sil)).await {
        Ok(Ok(id)) => axum::Json(json!({"silenceID": id})).into_response(),
        Ok(Err(SilenceError::NotFound)) => {
            (StatusCode::NOT_FOUND, axum::Json(Value::String("silence not found".into()))).into_response()
        }
        Ok(Err(e @ SilenceError::Persist(_))) => {
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(Value::String(e.to_string()))).into_response()
        }
        Ok(Err(e)) => bad_request(e.to_string()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(Value::String(e.to_string()))).into_response(),
    }
}

pub async fn get_silence(State(s): St, Path(id): Path<String>) -> Response {
    match s.router.silence(&id) {
        Some(sil) => axum::Json(silence_json(&sil, now_ms())).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn delete_silence(State(s): St, Path(id): Path<String>) -> Response {
    let router = s.router.clone();
    match tokio::task::spawn_blocking(move || router.expire_silence(&id)).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(SilenceError::NotFound)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(Value::String(e.to_string()))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(Value::String(e.to_string()))).into_response(),
    }
}

pub async fn status(State(s): St) -> Response {
    let cfg = s.router.config();
    axum::Json(json!({
        "cluster": {"peers": [], "status": "disabled"},
        "config": {"original": cfg.original},
        "uptime": format_rfc3339(s.router.started_ms()),
        "versionInfo": {
            "branch": "vigie",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "none (vigie is written in Rust)",
            "revision": concat!("vigie-", env!("CARGO_PKG_VERSION")),
            "version": API_VERSION,
        },
    }))
    .into_response()
}

pub async fn receivers(State(s): St) -> Response {
    let out: Vec<Value> = s.router.config().receiver_names().into_iter().map(|n| json!({"name": n})).collect();
    axum::Json(out).into_response()
}

/// `GET /api/v1/router/test?labels=a="1",b="2"`: the routes a label set reaches (vigie's
/// own endpoint; amtool's `config routes test` works from `/api/v2/status` instead).
pub async fn route_test(State(s): St, uri: Uri) -> Response {
    let q = query_pairs(&uri);
    let Some((_, text)) = q.iter().find(|(k, _)| k == "labels") else {
        return bad_request("missing parameter \"labels\"");
    };
    let labels = match crate::alert::matcher::parse_matchers(text) {
        Ok(ms) => Labels::from_pairs(ms.into_iter().map(|m| (m.name, m.value))),
        Err(e) => return bad_request(e.to_string()),
    };
    let cfg = s.router.config();
    let routes = crate::alert::explain::explain(&cfg.tree, &labels);
    axum::Json(json!({"status": "success", "data": routes})).into_response()
}
