//! Delivery: the notification data of one flush for one integration (Alertmanager's
//! template data: receiver, status, alerts, group/common labels and annotations), and the
//! integrations that send it, each retried with backoff until the flush's deadline.

pub mod chat;
pub mod email;
mod http_post;
pub mod incident;
pub mod template;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::config::{Integration, IntegrationKind};
use super::store::{StoredAlert, format_fingerprint};
use crate::model::Labels;

/// One alert as notifications show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
    #[serde(skip)]
    pub starts_at_ms: i64,
    /// 0 while firing.
    #[serde(skip)]
    pub ends_at_ms: i64,
}

/// What an integration renders: Alertmanager's `template.Data`.
#[derive(Clone, Debug)]
pub struct NotifyData {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<NotifyAlert>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    pub group_key: String,
    pub truncated: usize,
    pub reason: &'static str,
}

fn map(labels: &Labels) -> BTreeMap<String, String> {
    labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect()
}

impl NotifyData {
    /// Builds the data for `alerts` (already filtered, sorted, at most `max_alerts` of them
    /// when `max_alerts > 0`; the rest are counted as truncated).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        receiver: &str,
        group_key: &str,
        group_labels: &Labels,
        alerts: &[StoredAlert],
        max_alerts: usize,
        now_ms: i64,
        external_url: &str,
        reason: &'static str,
    ) -> NotifyData {
        let keep = if max_alerts > 0 { alerts.len().min(max_alerts) } else { alerts.len() };
        let kept = &alerts[..keep];
        let alerts_out: Vec<NotifyAlert> = kept
            .iter()
            .map(|a| {
                let resolved = a.ends_at_ms != 0 && a.resolved_at(now_ms);
                NotifyAlert {
                    status: if resolved { "resolved" } else { "firing" },
                    labels: map(&a.labels),
                    annotations: a.annotations.clone(),
                    starts_at: format_go_time(a.starts_at_ms),
                    ends_at: if resolved { format_go_time(a.ends_at_ms) } else { "0001-01-01T00:00:00Z".into() },
                    generator_url: a.generator_url.clone(),
                    fingerprint: format_fingerprint(a.fingerprint),
                    starts_at_ms: a.starts_at_ms,
                    ends_at_ms: if resolved { a.ends_at_ms } else { 0 },
                }
            })
            .collect();
        let status = if alerts_out.iter().any(|a| a.status == "firing") { "firing" } else { "resolved" };
        let mut common_labels = alerts_out.first().map(|a| a.labels.clone()).unwrap_or_default();
        let mut common_annotations = alerts_out.first().map(|a| a.annotations.clone()).unwrap_or_default();
        for a in alerts_out.iter().skip(1) {
            common_labels.retain(|k, v| a.labels.get(k) == Some(v));
            common_annotations.retain(|k, v| a.annotations.get(k) == Some(v));
        }
        NotifyData {
            receiver: quote_meta(receiver),
            status,
            alerts: alerts_out,
            group_labels: map(group_labels),
            common_labels,
            common_annotations,
            external_url: external_url.to_string(),
            group_key: group_key.to_string(),
            truncated: alerts.len() - keep,
            reason,
        }
    }
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to receiver names.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `time.Time` JSON form in UTC: RFC 3339 with the fraction's trailing zeros trimmed.
pub fn format_go_time(ms: i64) -> String {
    let full = crate::api::time::format_rfc3339(ms);
    // "....:SS.mmmZ" → trim zeros of the fraction, and the dot if nothing is left.
    let (head, frac) = full.trim_end_matches('Z').rsplit_once('.').unwrap_or((&full, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{head}Z") } else { format!("{head}.{frac}Z") }
}

/// Go's `json.Encoder` output: HTML-safe escapes and a trailing newline.
pub fn go_json<T: Serialize>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub message: String,
    /// Worth another attempt in the same flush (5xx, transport errors, timeouts).
    pub retry: bool,
}

/// What an integration needs besides its own settings.
pub struct Context<'a> {
    pub client: &'a reqwest::Client,
    pub templates: &'a template::Templates,
    pub globals: &'a super::config::Globals,
}

/// Sends `data` through `integration`, once.
pub async fn send_once(integration: &Integration, cx: &Context<'_>, data: &NotifyData) -> Result<(), NotifyError> {
    let (c, t, g) = (cx.client, cx.templates, cx.globals);
    match &integration.kind {
        IntegrationKind::Webhook(w) => webhook::send(w, c, data).await,
        IntegrationKind::Slack(s) => chat::send_slack(s, c, t, data).await,
        IntegrationKind::MsTeams(s) => chat::send_msteams(s, c, t, data).await,
        IntegrationKind::Discord(s) => chat::send_discord(s, c, t, data).await,
        IntegrationKind::Telegram(s) => chat::send_telegram(s, c, t, data, &g.telegram_api_url).await,
        IntegrationKind::PagerDuty(s) => incident::send_pagerduty(s, c, t, data, &g.pagerduty_url).await,
        IntegrationKind::Opsgenie(s) => {
            incident::send_opsgenie(s, c, t, data, (&g.opsgenie_api_url, g.opsgenie_api_key.as_deref())).await
        }
        IntegrationKind::Email(e) => email::send_email(e, t, data).await,
    }
}

/// Retries `send_once` with exponential backoff (0.5 s doubling, at most 10 s apart) until
/// it succeeds, fails for good, or `deadline` passes. Returns the attempts made.
pub async fn send_with_retry(
    integration: &Integration,
    cx: &Context<'_>,
    data: &NotifyData,
    deadline: tokio::time::Instant,
) -> (usize, Result<(), NotifyError>) {
    let mut delay = Duration::from_millis(500);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt = tokio::time::timeout_at(deadline, send_once(integration, cx, data)).await;
        let err = match attempt {
            Ok(Ok(())) => return (attempts, Ok(())),
            Ok(Err(e)) if !e.retry => return (attempts, Err(e)),
            Ok(Err(e)) => e,
            Err(_) => NotifyError { message: "context deadline exceeded".into(), retry: false },
        };
        if tokio::time::Instant::now() + delay >= deadline {
            return (attempts, Err(err));
        }
        tracing::warn!(attempts, error = %err.message, "notify attempt failed, will retry");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::store::fingerprint;

    fn alert(pairs: &[(&str, &str)], ann: &[(&str, &str)], ends: i64) -> StoredAlert {
        let labels = Labels::from_pairs(pairs.iter().copied());
        StoredAlert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: ann.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            starts_at_ms: 1_700_000_000_123,
            ends_at_ms: ends,
            generator_url: String::new(),
            updated_at_ms: 0,
            timeout: false,
        }
    }

    #[test]
    fn common_labels_over_the_truncated_list_and_go_quirks() {
        let alerts = [
            alert(&[("alertname", "A"), ("i", "1")], &[("d", "x")], 0),
            alert(&[("alertname", "A"), ("i", "2")], &[("d", "x")], 1_700_000_001_000),
            alert(&[("alertname", "B"), ("i", "3")], &[("d", "y")], 0),
        ];
        let d =
            NotifyData::new("ops.team+1", "{}:{}", &Labels::empty(), &alerts, 2, 1_700_000_002_000, "http://x", "r");
        assert_eq!(d.receiver, r"ops\.team\+1");
        assert_eq!(d.truncated, 1);
        assert_eq!(d.common_labels.get("alertname").map(String::as_str), Some("A"));
        assert_eq!(d.common_annotations.get("d").map(String::as_str), Some("x"));
        assert_eq!(d.status, "firing");
        assert_eq!(d.alerts[0].ends_at, "0001-01-01T00:00:00Z");
        assert_eq!(d.alerts[1].status, "resolved");
        assert_eq!(d.alerts[1].ends_at, "2023-11-14T22:13:21Z");
        assert_eq!(d.alerts[0].starts_at, "2023-11-14T22:13:20.123Z");
        assert_eq!(format_go_time(1_700_000_000_100), "2023-11-14T22:13:20.1Z");
        assert_eq!(go_json(&"<a&b>"), "\"\\u003ca\\u0026b\\u003e\"\n");
    }
}
