//! Docker Swarm discovery. [`api`] reads the Engine API over the Docker socket, [`model`]
//! holds the objects it returns, [`meta`] turns one snapshot into targets with
//! Prometheus's `__meta_dockerswarm_*` labels. [`SwarmSdProvider`] is
//! `dockerswarm_sd_configs` in vigie.yml: it relists every `refresh_interval` (60 s by
//! default, as Prometheus), retrying with backoff while the daemon is unreachable.

pub mod api;
pub mod auto;
pub mod meta;
pub mod model;
pub mod watch;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use meta::Role;

use super::{GroupSender, Provider, TargetGroup};
use crate::config::DockerSwarmSdConfig;

const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_PORT: u16 = 80;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct SwarmSdProvider {
    cfg: DockerSwarmSdConfig,
}

impl SwarmSdProvider {
    pub fn new(cfg: &DockerSwarmSdConfig) -> SwarmSdProvider {
        SwarmSdProvider { cfg: cfg.clone() }
    }

    /// Docker's `filters` query value: `{"name": ["v1", "v2"]}`.
    fn filters(&self) -> Option<String> {
        if self.cfg.filters.is_empty() {
            return None;
        }
        let mut m = serde_json::Map::new();
        for f in &self.cfg.filters {
            m.insert(f.name.clone(), serde_json::json!(f.values));
        }
        Some(serde_json::Value::Object(m).to_string())
    }
}

impl Provider for SwarmSdProvider {
    fn name(&self) -> String {
        format!("dockerswarm:{}:{}", self.cfg.role, self.cfg.host)
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            // The role was checked when the configuration loaded.
            let role = Role::parse(&self.cfg.role).unwrap_or(Role::Tasks);
            let refresh = self.cfg.refresh_interval.map(|d| d.0).unwrap_or(DEFAULT_REFRESH);
            let port = self.cfg.port.unwrap_or(DEFAULT_PORT);
            let filters = self.filters();
            let mut api: Option<api::DockerApi> = None;
            let mut backoff = Duration::from_secs(1);
            loop {
                let result = async {
                    if api.is_none() {
                        let mut a = api::DockerApi::new(&self.cfg.host, Duration::from_secs(30))?;
                        let version = a.negotiate().await?;
                        tracing::info!(host = %self.cfg.host, version, "docker swarm discovery connected");
                        api = Some(a);
                    }
                    let a = api.as_ref().expect("connected above");
                    a.snapshot_for(role, filters.as_deref()).await
                }
                .await;
                let wait = match result {
                    Ok(snap) => {
                        super::status::ok(&self.name());
                        backoff = Duration::from_secs(1);
                        let targets = meta::targets(role, &snap, port);
                        let group = TargetGroup { source: "DockerSwarm".into(), targets, labels: Default::default() };
                        if tx.send(vec![group]).await.is_err() {
                            return;
                        }
                        refresh
                    }
                    Err(e) => {
                        // Keep the last targets; try again soon.
                        tracing::warn!(host = %self.cfg.host, error = %e, retry_in_s = backoff.as_secs(), "docker swarm discovery failed");
                        super::status::failed(&self.name(), &e.to_string());
                        api = None;
                        let w = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        w.min(refresh)
                    }
                };
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}
