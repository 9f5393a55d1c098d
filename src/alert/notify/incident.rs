//! Incident integrations: PagerDuty Events API v2 (trigger/resolve with the group key's
//! SHA-256 as dedup key) and Opsgenie (create, or close by alias when resolved).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::chat::{render, truncate};
use super::http_post::{Request, post};
use super::template::Templates;
use super::{NotifyData, NotifyError, go_json};
use crate::config::HttpClientConfig;

fn yes() -> bool {
    true
}

/// Alertmanager's `notify.Key.Hash`: hex SHA-256 of the group key.
pub fn group_key_hash(group_key: &str) -> String {
    let d = Sha256::digest(group_key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyLink {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyImage {
    #[serde(default)]
    pub src: String,
    #[serde(default)]
    pub alt: String,
    #[serde(default)]
    pub href: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "pd_client")]
    pub client: String,
    #[serde(default = "pd_client_url")]
    pub client_url: String,
    #[serde(default = "pd_description")]
    pub description: String,
    #[serde(default = "pd_details")]
    pub details: BTreeMap<String, String>,
    #[serde(default = "pd_severity")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub class: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PagerDutyImage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<PagerDutyLink>,
}

fn pd_client() -> String {
    r#"{{ template "pagerduty.default.client" . }}"#.into()
}
fn pd_client_url() -> String {
    r#"{{ template "pagerduty.default.clientURL" . }}"#.into()
}
fn pd_description() -> String {
    r#"{{ template "pagerduty.default.description" .}}"#.into()
}
fn pd_severity() -> String {
    "error".into()
}
fn pd_details() -> BTreeMap<String, String> {
    [
        ("firing", r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#),
        ("resolved", r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub async fn send_pagerduty(
    c: &PagerDutyConfig,
    client: &reqwest::Client,
    t: &Templates,
    data: &NotifyData,
    default_url: &str,
) -> Result<(), NotifyError> {
    let r = |text: &str| render(t, text, data, "pagerduty");
    let routing_key = match (&c.routing_key, &c.routing_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|s| s.trim().to_string())
            .map_err(|e| NotifyError { message: format!("pagerduty: reading routing_key_file: {e}"), retry: false })?,
        (None, None) => return Err(NotifyError { message: "pagerduty: no routing_key".into(), retry: false }),
    };
    let mut details = serde_json::Map::new();
    for (k, v) in &c.details {
        details.insert(k.clone(), Value::String(r(v)?));
    }
    let client_name = r(&c.client)?;
    let source = match &c.source {
        Some(s) => r(s)?,
        None => client_name.clone(),
    };
    let mut payload = serde_json::Map::new();
    payload.insert("summary".into(), Value::String(truncate(r(&c.description)?, 1024)));
    payload.insert("source".into(), Value::String(source));
    payload.insert("severity".into(), Value::String(r(&c.severity)?));
    for (k, v) in [("class", &c.class), ("component", &c.component), ("group", &c.group)] {
        let v = r(v)?;
        if !v.is_empty() {
            payload.insert(k.into(), Value::String(v));
        }
    }
    if !details.is_empty() {
        payload.insert("custom_details".into(), Value::Object(details));
    }
    let mut msg = serde_json::Map::new();
    msg.insert("routing_key".into(), Value::String(r(&routing_key)?));
    msg.insert("dedup_key".into(), Value::String(group_key_hash(&data.group_key)));
    let action = if data.status == "firing" { "trigger" } else { "resolve" };
    msg.insert("event_action".into(), Value::String(action.into()));
    msg.insert("payload".into(), Value::Object(payload));
    let (cl, url) = (client_name, r(&c.client_url)?);
    if !cl.is_empty() {
        msg.insert("client".into(), Value::String(cl));
    }
    if !url.is_empty() {
        msg.insert("client_url".into(), Value::String(url));
    }
    let mut images = Vec::new();
    for i in &c.images {
        let src = r(&i.src)?;
        if !src.is_empty() {
            images.push(json!({"src": src, "alt": r(&i.alt)?, "href": r(&i.href)?}));
        }
    }
    if !images.is_empty() {
        msg.insert("images".into(), Value::Array(images));
    }
    let mut links = Vec::new();
    for l in &c.links {
        let href = r(&l.href)?;
        if !href.is_empty() {
            links.push(json!({"href": href, "text": r(&l.text)?}));
        }
    }
    if !links.is_empty() {
        msg.insert("links".into(), Value::Array(links));
    }
    let http = c.http_config.clone().unwrap_or_default();
    let url = c.url.as_deref().unwrap_or(default_url);
    let req = Request {
        integration: "pagerduty",
        url,
        content_type: "application/json",
        body: go_json(&Value::Object(msg)),
        headers: Vec::new(),
        http: &http,
        timeout: None,
    };
    post(client, req).await.map(|_| ())
}

// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieResponder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default = "og_message")]
    pub message: String,
    #[serde(default = "og_description")]
    pub description: String,
    #[serde(default = "og_source")]
    pub source: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<OpsgenieResponder>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actions: String,
}

fn og_message() -> String {
    r#"{{ template "opsgenie.default.message" . }}"#.into()
}
fn og_description() -> String {
    r#"{{ template "opsgenie.default.description" . }}"#.into()
}
fn og_source() -> String {
    r#"{{ template "opsgenie.default.source" . }}"#.into()
}

pub async fn send_opsgenie(
    c: &OpsgenieConfig,
    client: &reqwest::Client,
    t: &Templates,
    data: &NotifyData,
    global: (&str, Option<&str>),
) -> Result<(), NotifyError> {
    let r = |text: &str| render(t, text, data, "opsgenie");
    let key = match (&c.api_key, &c.api_key_file, global.1) {
        (Some(k), _, _) => k.clone(),
        (None, Some(f), _) => std::fs::read_to_string(f)
            .map(|s| s.trim().to_string())
            .map_err(|e| NotifyError { message: format!("opsgenie: reading api_key_file: {e}"), retry: false })?,
        (None, None, Some(k)) => k.to_string(),
        (None, None, None) => return Err(NotifyError { message: "opsgenie: no api_key".into(), retry: false }),
    };
    let base = c.api_url.as_deref().unwrap_or(global.0);
    let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
    let alias = group_key_hash(&data.group_key);
    let (url, body) = if data.status == "resolved" {
        (format!("{base}v2/alerts/{alias}/close?identifierType=alias"), json!({"source": r(&c.source)?}))
    } else {
        let mut details = serde_json::Map::new();
        for (k, v) in &data.common_labels {
            details.insert(k.clone(), Value::String(v.clone()));
        }
        for (k, v) in &c.details {
            details.insert(k.clone(), Value::String(r(v)?));
        }
        let tags: Vec<String> =
            r(&c.tags)?.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        let mut m = serde_json::Map::new();
        m.insert("alias".into(), Value::String(alias));
        m.insert("message".into(), Value::String(truncate(r(&c.message)?, 130)));
        m.insert("description".into(), Value::String(r(&c.description)?));
        m.insert("details".into(), Value::Object(details));
        m.insert("source".into(), Value::String(r(&c.source)?));
        if !c.responders.is_empty() {
            m.insert("responders".into(), serde_json::to_value(&c.responders).unwrap_or(Value::Null));
        }
        if !tags.is_empty() {
            m.insert("tags".into(), json!(tags));
        }
        for (k, v) in [("note", &c.note), ("priority", &c.priority), ("entity", &c.entity)] {
            let v = r(v)?;
            if !v.is_empty() {
                m.insert(k.into(), Value::String(v));
            }
        }
        (format!("{base}v2/alerts"), Value::Object(m))
    };
    let http = c.http_config.clone().unwrap_or_default();
    let req = Request {
        integration: "opsgenie",
        url: &url,
        content_type: "application/json",
        body: go_json(&body),
        headers: vec![("Authorization", format!("GenieKey {key}"))],
        http: &http,
        timeout: None,
    };
    post(client, req).await.map(|_| ())
}
