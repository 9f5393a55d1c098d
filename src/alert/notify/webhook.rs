//! The webhook integration: Alertmanager's version "4" payload, byte for byte in Go's
//! JSON form, POSTed to the configured URL. 2xx is success, 5xx and transport errors are
//! retried, other answers are not.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{NotifyAlert, NotifyData, NotifyError, go_json};
use crate::alert::config::WebhookTarget;

/// The payload, fields in Alertmanager's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    receiver: &'a str,
    status: &'a str,
    alerts: &'a [NotifyAlert],
    #[serde(rename = "notification_reason")]
    notification_reason: &'a str,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<String, String>,
    route_labels: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'a str,
    group_key: &'a str,
    truncated_alerts: usize,
}

pub fn body(data: &NotifyData) -> String {
    go_json(&Payload {
        receiver: &data.receiver,
        status: data.status,
        alerts: &data.alerts,
        notification_reason: data.reason,
        group_labels: &data.group_labels,
        common_labels: &data.common_labels,
        common_annotations: &data.common_annotations,
        route_labels: BTreeMap::new(),
        external_url: &data.external_url,
        version: "4",
        group_key: &data.group_key,
        truncated_alerts: data.truncated,
    })
}

pub async fn send(w: &WebhookTarget, client: &reqwest::Client, data: &NotifyData) -> Result<(), NotifyError> {
    let mut req = client
        .post(&w.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .body(body(data));
    if let Some(t) = w.timeout_ms {
        req = req.timeout(Duration::from_millis(t as u64));
    }
    req = crate::scrape::http::authorize(req, &w.http);
    // The URL can hold a token: errors leave it out, as Alertmanager does.
    let resp =
        req.send().await.map_err(|e| NotifyError { message: format!("webhook: {}", e.without_url()), retry: true })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(256).collect();
    Err(NotifyError {
        message: format!("webhook: unexpected status code {}: {}", status.as_u16(), text.trim()),
        retry: status.is_server_error(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::store::{StoredAlert, fingerprint};
    use crate::model::Labels;

    #[test]
    fn payload_has_alertmanagers_shape_and_order() {
        let labels = Labels::from_pairs([("alertname", "HighCPU"), ("instance", "i1")]);
        let a = StoredAlert {
            fingerprint: fingerprint(&labels),
            labels: labels.clone(),
            annotations: [("summary".to_string(), "cpu <high>".to_string())].into(),
            starts_at_ms: 1_764_000_000_000,
            ends_at_ms: 0,
            generator_url: String::new(),
            updated_at_ms: 0,
            timeout: false,
        };
        let group = Labels::from_pairs([("alertname", "HighCPU")]);
        let d = NotifyData::new(
            "hook",
            "{}:{alertname=\"HighCPU\"}",
            &group,
            &[a],
            0,
            1_764_000_001_000,
            "http://am:9093",
            "first notification",
        );
        let fp = crate::alert::store::format_fingerprint(fingerprint(&labels));
        assert_eq!(
            body(&d),
            format!(
                "{{\"receiver\":\"hook\",\"status\":\"firing\",\"alerts\":[{{\"status\":\"firing\",\"labels\":{{\"alertname\":\"HighCPU\",\"instance\":\"i1\"}},\
                 \"annotations\":{{\"summary\":\"cpu \\u003chigh\\u003e\"}},\"startsAt\":\"2025-11-24T16:00:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\",\
                 \"generatorURL\":\"\",\"fingerprint\":\"{fp}\"}}],\"notification_reason\":\"first notification\",\
                 \"groupLabels\":{{\"alertname\":\"HighCPU\"}},\"commonLabels\":{{\"alertname\":\"HighCPU\",\"instance\":\"i1\"}},\
                 \"commonAnnotations\":{{\"summary\":\"cpu \\u003chigh\\u003e\"}},\"routeLabels\":{{}},\"externalURL\":\"http://am:9093\",\
                 \"version\":\"4\",\"groupKey\":\"{{}}:{{alertname=\\\"HighCPU\\\"}}\",\"truncatedAlerts\":0}}\n"
            )
        );
    }
}
