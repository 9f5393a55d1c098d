//! Sends alerts to the external Alertmanagers of `alerting.alertmanagers` (static
//! targets), the way Prometheus's notifier does: `POST <scheme>://<host><path_prefix>/api/v2/alerts`
//! with a JSON array, in batches of up to 256, to every Alertmanager; `alert_relabel_configs`
//! applied first. The queue is bounded (10,000 alerts): when it is full the oldest alerts
//! are dropped and counted. A failed batch is retried twice with a short backoff before
//! it is counted as dropped; the rule evaluator's resend keeps firing alerts flowing anyway.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Map, Value as Json, json};

use super::{Alert, AlertSink};
use crate::api::time::format_rfc3339;
use crate::config::{AlertingConfig, HttpClientConfig};
use crate::metrics::Metrics;
use crate::relabel::CompiledRelabel;

/// Alerts waiting at most (Prometheus's `--alertmanager.notification-queue-capacity`).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Alerts per request (Prometheus 3.4+ default).
pub const BATCH_SIZE: usize = 256;
const ATTEMPTS: usize = 3;

/// One Alertmanager to post to.
#[derive(Clone)]
struct Endpoint {
    url: String,
    client: reqwest::Client,
    http: HttpClientConfig,
    timeout: Duration,
    relabel: Vec<Arc<CompiledRelabel>>,
}

#[derive(Default)]
struct Settings {
    endpoints: Vec<Endpoint>,
    relabel: Vec<Arc<CompiledRelabel>>,
}

/// The queue and the Alertmanagers it feeds.
pub struct Forwarder {
    queue: Mutex<VecDeque<Alert>>,
    wake: tokio::sync::Notify,
    settings: Mutex<Arc<Settings>>,
    metrics: Arc<Metrics>,
}

/// The JSON body Alertmanager's API v2 takes.
pub fn alerts_json(alerts: &[Alert]) -> Json {
    Json::Array(
        alerts
            .iter()
            .map(|a| {
                let labels: Map<String, Json> =
                    a.labels.iter().map(|l| (l.name.clone(), Json::String(l.value.clone()))).collect();
                let annotations: Map<String, Json> =
                    a.annotations.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect();
                json!({
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": format_rfc3339(a.starts_at_ms),
                    "endsAt": format_rfc3339(a.ends_at_ms),
                    "generatorURL": a.generator_url,
                })
            })
            .collect(),
    )
}

fn relabel(alerts: &[Alert], rules: &[Arc<CompiledRelabel>]) -> Vec<Alert> {
    if rules.is_empty() {
        return alerts.to_vec();
    }
    alerts
        .iter()
        .filter_map(|a| crate::relabel::process_labels(rules, &a.labels).map(|labels| Alert { labels, ..a.clone() }))
        .collect()
}

impl Forwarder {
    /// A forwarder with no Alertmanagers yet; `run` must be spawned for it to send.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Forwarder {
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            settings: Mutex::new(Arc::new(Settings::default())),
            metrics,
        })
    }

    /// Applies `alerting` from the configuration; an invalid entry is an error and the
    /// previous settings stay.
    pub fn apply(&self, cfg: Option<&AlertingConfig>) -> Result<usize, String> {
        let mut settings = Settings::default();
        if let Some(cfg) = cfg {
            settings.relabel = cfg.alert_relabel_configs.iter().map(|r| r.compiled.clone()).collect();
            for am in &cfg.alertmanagers {
                if am.api_version.as_deref().is_some_and(|v| v != "v2") {
                    return Err(format!("alertmanager api_version {:?} is not supported (only v2)", am.api_version));
                }
                let http = am.http_client();
                let client = crate::scrape::http::client(&http)?;
                let scheme = am.scheme.clone().unwrap_or_else(|| "http".into());
                let prefix = am.path_prefix.clone().unwrap_or_default();
                let prefix = prefix.trim_end_matches('/');
                let relabel: Vec<Arc<CompiledRelabel>> =
                    am.alert_relabel_configs.iter().map(|r| r.compiled.clone()).collect();
                for sc in &am.static_configs {
                    for target in &sc.targets {
                        settings.endpoints.push(Endpoint {
                            url: format!("{scheme}://{target}{prefix}/api/v2/alerts"),
                            client: client.clone(),
                            http: http.clone(),
                            timeout: am.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10)),
                            relabel: relabel.clone(),
                        });
                    }
                }
                if !am.file_sd_configs.is_empty() {
                    tracing::warn!("alertmanagers file_sd_configs are not read yet; only static_configs are used");
                }
            }
        }
        let n = settings.endpoints.len();
        *self.settings.lock() = Arc::new(settings);
        Ok(n)
    }

    /// The Alertmanager URLs in use (for `/api/v1/alertmanagers`).
    pub fn urls(&self) -> Vec<String> {
        self.settings.lock().endpoints.iter().map(|e| e.url.clone()).collect()
    }

    /// Sends batches as alerts arrive, until the process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            let batch: Vec<Alert> = {
                let mut q = self.queue.lock();
                let n = q.len().min(BATCH_SIZE);
                q.drain(..n).collect()
            };
            self.metrics.set_notification_queue(self.queue.lock().len());
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let settings = self.settings.lock().clone();
            let batch = relabel(&batch, &settings.relabel);
            if batch.is_empty() {
                continue;
            }
            let batch = Arc::new(batch);
            let mut sends = tokio::task::JoinSet::new();
            for e in settings.endpoints.iter().cloned() {
                sends.spawn(self.clone().post(e, batch.clone()));
            }
            while sends.join_next().await.is_some() {}
        }
    }

    async fn post(self: Arc<Self>, e: Endpoint, batch: Arc<Vec<Alert>>) {
        let alerts = relabel(&batch, &e.relabel);
        if alerts.is_empty() {
            return;
        }
        let body = serde_json::to_vec(&alerts_json(&alerts)).unwrap_or_default();
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            let req = e
                .client
                .post(&e.url)
                .timeout(e.timeout)
                .header("Content-Type", "application/json")
                .header("User-Agent", concat!("vigie/", env!("CARGO_PKG_VERSION")))
                .body(body.clone());
            let result = crate::scrape::http::authorize(req, &e.http).send().await;
            let error = match result {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("bad response status {}", r.status())),
                Err(err) => Some(crate::scrape::http::describe(&err, e.timeout)),
            };
            let Some(error) = error else {
                self.metrics.record_notifications(&e.url, alerts.len(), true);
                return;
            };
            if attempt == ATTEMPTS {
                self.metrics.record_notifications(&e.url, alerts.len(), false);
                tracing::error!(alertmanager = %e.url, alerts = alerts.len(), error = %error, "sending alerts failed; dropped");
                self.metrics.record_notifications_dropped(alerts.len());
                return;
            }
            tracing::warn!(alertmanager = %e.url, attempt, error = %error, "sending alerts failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}

impl AlertSink for Forwarder {
    fn send(&self, alerts: Vec<Alert>) {
        if self.settings.lock().endpoints.is_empty() {
            return;
        }
        let mut q = self.queue.lock();
        q.extend(alerts);
        if q.len() > QUEUE_CAPACITY {
            let over = q.len() - QUEUE_CAPACITY;
            q.drain(..over);
            self.metrics.record_notifications_dropped(over);
            tracing::warn!(dropped = over, "alert queue full; oldest alerts dropped");
        }
        self.metrics.set_notification_queue(q.len());
        drop(q);
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn alert(instance: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "Down"), ("instance", instance)]),
            annotations: [("summary".to_string(), "gone".to_string())].into(),
            starts_at_ms: 1_435_781_451_781,
            ends_at_ms: 1_435_781_511_781,
            generator_url: "http://vigie:9090/graph?g0.expr=up&g0.tab=1".into(),
        }
    }

    #[test]
    fn body_has_alertmanagers_v2_shape() {
        let j = alerts_json(&[alert("a")]);
        assert_eq!(
            j,
            json!([{
                "labels": {"alertname": "Down", "instance": "a"},
                "annotations": {"summary": "gone"},
                "startsAt": "2015-07-01T20:10:51.781Z",
                "endsAt": "2015-07-01T20:11:51.781Z",
                "generatorURL": "http://vigie:9090/graph?g0.expr=up&g0.tab=1",
            }])
        );
    }

    #[test]
    fn alert_relabel_configs_rewrite_and_drop() {
        let cfg: crate::config::Config = crate::config::load_str(
            "alerting:\n  alert_relabel_configs:\n    - source_labels: [instance]\n      regex: b\n      action: drop\n\
             \x20   - target_label: team\n      replacement: ops\n",
            "t.yml",
            std::path::Path::new("."),
        )
        .unwrap();
        let rules: Vec<_> =
            cfg.file.alerting.unwrap().alert_relabel_configs.iter().map(|r| r.compiled.clone()).collect();
        let out = relabel(&[alert("a"), alert("b")], &rules);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels.get("team"), Some("ops"));
        assert_eq!(out[0].labels.get("instance"), Some("a"));
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts_them() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let db = crate::tsdb::Db::open(dir.path(), Default::default()).unwrap().0;
        let metrics = Metrics::new(db);
        let f = Forwarder::new(metrics.clone());
        let cfg = crate::config::load_str(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:9']\n",
            "t.yml",
            std::path::Path::new("."),
        )
        .unwrap();
        assert_eq!(f.apply(cfg.file.alerting.as_ref()), Ok(1));
        assert_eq!(f.urls(), vec!["http://127.0.0.1:9/api/v2/alerts"]);
        // Nothing drains the queue (run is not spawned): the newest QUEUE_CAPACITY stay.
        f.send((0..QUEUE_CAPACITY).map(|i| alert(&i.to_string())).collect());
        f.send(vec![alert("newest-1"), alert("newest-2")]);
        let q = f.queue.lock();
        assert_eq!(q.len(), QUEUE_CAPACITY);
        assert_eq!(q.front().unwrap().labels.get("instance"), Some("2"));
        assert_eq!(q.back().unwrap().labels.get("instance"), Some("newest-2"));
        drop(q);
        assert!(metrics.encode().contains("vigie_notifications_dropped_total 2"), "{}", metrics.encode());
    }
}
