//! The HTTP surface: Prometheus API v1, Alertmanager API v2, health and reload endpoints,
//! `/metrics`, and the web pages, all on one listener.

mod alertmanager;
mod params;
pub mod prompb;
pub mod remote_write;
mod response;
mod rules;
pub mod time;
mod v1;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::promql::Engine;
use crate::scrape::TargetsView;
use crate::tsdb::Db;

/// Applies a new configuration from disk; `Err` carries the reason it was rejected.
pub type ReloadFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Everything the handlers read.
pub struct AppState {
    pub engine: Engine,
    pub rules: Arc<crate::rules::RuleManager>,
    pub forwarder: Arc<crate::alert::forward::Forwarder>,
    pub router: Arc<crate::alert::router::Router>,
    pub db: Arc<Db>,
    pub targets: TargetsView,
    pub config: watch::Receiver<Arc<Config>>,
    pub reload: ReloadFn,
    pub flags: BTreeMap<String, String>,
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
    pub started_ms: i64,
    /// What became of each `--monitors-dir` object.
    pub monitors: Arc<parking_lot::RwLock<Vec<crate::operator::ObjectReport>>>,
}

/// The router serving every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/query", get(v1::query).post(v1::query))
        .route("/api/v1/query_range", get(v1::query_range).post(v1::query_range))
        .route("/api/v1/series", get(v1::series).post(v1::series))
        .route("/api/v1/labels", get(v1::labels).post(v1::labels))
        .route("/api/v1/label/{name}/values", get(v1::label_values))
        .route(
            "/api/v1/write",
            post(remote_write::write).layer(axum::extract::DefaultBodyLimit::max(remote_write::MAX_COMPRESSED_BYTES)),
        )
        .route("/api/v1/targets", get(v1::targets))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/alertmanagers", get(rules::alertmanagers))
        .route("/api/v2/alerts", get(alertmanager::get_alerts).post(alertmanager::post_alerts))
        .route("/api/v2/alerts/groups", get(alertmanager::get_groups))
        .route("/api/v2/silences", get(alertmanager::get_silences).post(alertmanager::post_silence))
        .route("/api/v2/silence/{id}", get(alertmanager::get_silence).delete(alertmanager::delete_silence))
        .route("/api/v2/status", get(alertmanager::status))
        .route("/api/v2/receivers", get(alertmanager::receivers))
        .route("/api/v1/router/test", get(alertmanager::route_test))
        .route("/api/v1/status/buildinfo", get(v1::buildinfo))
        .route("/api/v1/status/config", get(v1::status_config))
        .route("/api/v1/status/flags", get(v1::flags))
        .route("/api/v1/status/runtimeinfo", get(v1::runtimeinfo))
        .route("/api/v1/status/tsdb", get(v1::status_tsdb))
        .route("/api/v1/status/monitors", get(v1::status_monitors))
        .route("/api/v1/admin/tsdb/snapshot", post(v1::snapshot).put(v1::snapshot))
        .route("/metrics", get(v1::self_metrics))
        .route("/-/healthy", get(v1::healthy).head(v1::healthy))
        .route("/-/ready", get(v1::ready).head(v1::ready))
        .route("/-/reload", post(v1::reload).put(v1::reload))
        .route("/", get(crate::ui::home))
        .fallback(v1::not_found)
        .with_state(state)
}
