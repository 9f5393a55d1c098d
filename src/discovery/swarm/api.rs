//! The Docker Engine API over its Unix socket (or TCP): version negotiation and the list
//! calls discovery makes. vigie's HTTP client speaks to the socket directly; the models
//! are in [`super::model`], including the task network attachments that discovery needs.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::Role;
use super::model::{Network, Node, Service, Snapshot, Task};

/// The oldest API vigie speaks (Docker 20.10).
pub const MIN_API: (u32, u32) = (1, 41);

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("no Docker socket at {0}: mount /var/run/docker.sock into vigie's container, or start dockerd")]
    NoSocket(String),
    #[error("permission denied on {0}: run vigie as root or in the docker group")]
    PermissionDenied(String),
    #[error(
        "this Docker node is not a swarm manager: run vigie on a manager node (deploy.placement.constraints: [node.role == manager])"
    )]
    NotManager,
    #[error("Docker API {0} is too old: vigie needs 1.41 (Docker 20.10) or newer")]
    TooOld(String),
    #[error("Docker API {what}: {message}")]
    Api { what: String, message: String },
}

#[derive(Clone, Debug)]
pub struct DockerApi {
    client: reqwest::Client,
    /// `http://docker` for a socket, else the daemon's URL.
    root: String,
    /// `/v1.41` once negotiated; empty before.
    version: String,
    socket: Option<String>,
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl DockerApi {
    /// `host` is `unix:///path` or `http(s)://host:port`, as in `dockerswarm_sd_configs`.
    pub fn new(host: &str, timeout: Duration) -> Result<DockerApi, DockerError> {
        let builder = reqwest::Client::builder().timeout(timeout);
        let err = |e: reqwest::Error| DockerError::Api { what: "client".into(), message: e.to_string() };
        if let Some(path) = host.strip_prefix("unix://") {
            let client = builder.unix_socket(path).build().map_err(err)?;
            let root = "http://docker".into();
            return Ok(DockerApi { client, root, version: String::new(), socket: Some(path.to_string()) });
        }
        if host.starts_with("http://") || host.starts_with("https://") || host.starts_with("tcp://") {
            let root = host.replacen("tcp://", "http://", 1).trim_end_matches('/').to_string();
            let client = builder.no_proxy().build().map_err(err)?;
            return Ok(DockerApi { client, root, version: String::new(), socket: None });
        }
        Err(DockerError::Api { what: "host".into(), message: format!("{host:?}: expected unix:// or http(s)://") })
    }

    /// Asks the daemon for its API version and speaks the lower of it and what this
    /// build was written against, refusing daemons older than [`MIN_API`].
    pub async fn negotiate(&mut self) -> Result<String, DockerError> {
        #[derive(serde::Deserialize)]
        struct Version {
            #[serde(rename = "ApiVersion")]
            api_version: String,
        }
        let v: Version = self.get_json("/version").await?;
        let got = parse_version(&v.api_version).ok_or_else(|| DockerError::TooOld(v.api_version.clone()))?;
        if got < MIN_API {
            return Err(DockerError::TooOld(v.api_version));
        }
        // 1.43 is the newest whose objects this build was checked against; newer daemons
        // serve it too.
        let (major, minor) = got.min((1, 43));
        self.version = format!("/v{major}.{minor}");
        Ok(v.api_version)
    }

    fn describe(&self, e: reqwest::Error) -> DockerError {
        if let Some(path) = &self.socket {
            let text = format!("{e:?}");
            if text.contains("PermissionDenied") || text.contains("permission denied") {
                return DockerError::PermissionDenied(path.clone());
            }
            if text.contains("NotFound") || text.contains("No such file") || text.contains("ConnectionRefused") {
                return DockerError::NoSocket(path.clone());
            }
        }
        DockerError::Api { what: "request".into(), message: e.without_url().to_string() }
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, DockerError> {
        let url = format!("{}{}{path}", self.root, self.version);
        let resp = self.client.get(url).send().await.map_err(|e| self.describe(e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.describe(e))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            if text.contains("not a swarm manager") {
                return Err(DockerError::NotManager);
            }
            return Err(DockerError::Api { what: path.into(), message: format!("{status}: {}", text.trim()) });
        }
        serde_json::from_slice(&body)
            .map_err(|e| DockerError::Api { what: path.into(), message: format!("decoding: {e}") })
    }

    /// What `role` needs, with `filters` (Docker's JSON form) applied to the role's own
    /// list only, as Prometheus does.
    pub async fn snapshot_for(&self, role: Role, filters: Option<&str>) -> Result<Snapshot, DockerError> {
        let q = |base: &str| match filters {
            Some(f) => {
                let enc: String = form_urlencoded::byte_serialize(f.as_bytes()).collect();
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}filters={enc}")
            }
            None => base.to_string(),
        };
        let mut snap = Snapshot::default();
        match role {
            Role::Services => {
                snap.services = self.get_json(&q("/services?status=true")).await?;
                snap.networks = self.get_json("/networks").await?;
            }
            Role::Tasks => {
                snap.tasks = self.get_json(&q("/tasks")).await?;
                snap.services = self.get_json("/services").await?;
                snap.nodes = self.get_json("/nodes").await?;
                snap.networks = self.get_json("/networks").await?;
            }
            Role::Nodes => snap.nodes = self.get_json(&q("/nodes")).await?,
        }
        Ok(snap)
    }

    /// Fails with [`DockerError::NotManager`] unless this daemon is a swarm manager.
    pub async fn check_manager(&self) -> Result<(), DockerError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct SwarmInfo {
            local_node_state: String,
            control_available: bool,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Info {
            #[serde(default)]
            swarm: SwarmInfo,
        }
        let info: Info = self.get_json("/info").await?;
        if info.swarm.local_node_state != "active" || !info.swarm.control_available {
            return Err(DockerError::NotManager);
        }
        Ok(())
    }

    /// The networks (names and ids) a container is attached to.
    pub async fn container_networks(&self, id: &str) -> Result<Vec<String>, DockerError> {
        #[derive(serde::Deserialize)]
        struct Endpoint {
            #[serde(rename = "NetworkID", default)]
            network_id: String,
        }
        #[derive(serde::Deserialize)]
        struct Settings {
            #[serde(rename = "Networks", default)]
            networks: std::collections::BTreeMap<String, Endpoint>,
        }
        #[derive(serde::Deserialize)]
        struct Container {
            #[serde(rename = "NetworkSettings")]
            network_settings: Settings,
        }
        let c: Container = self.get_json(&format!("/containers/{id}/json")).await?;
        Ok(c.network_settings.networks.into_iter().flat_map(|(name, e)| [name, e.network_id]).collect())
    }

    /// Follows `/events` for swarm object and container changes, sending a poke per event,
    /// until the stream ends or `tx` closes.
    pub async fn events(&self, tx: &tokio::sync::mpsc::Sender<()>) -> Result<(), DockerError> {
        let filters = r#"{"type":["service","node","network","container"]}"#;
        let enc: String = form_urlencoded::byte_serialize(filters.as_bytes()).collect();
        // No overall timeout: the stream stays open.
        let url = format!("{}{}/events?filters={enc}", self.root, self.version);
        let mut resp = self
            .client
            .get(url)
            .timeout(Duration::from_secs(365 * 24 * 3600))
            .send()
            .await
            .map_err(|e| self.describe(e))?;
        if !resp.status().is_success() {
            return Err(DockerError::Api { what: "/events".into(), message: resp.status().to_string() });
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.describe(e))? {
            for _ in chunk.iter().filter(|b| **b == b'\n') {
                if tx.try_send(()).is_err() && tx.is_closed() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Services, tasks, nodes and networks, read one after the other.
    pub async fn snapshot(&self) -> Result<Snapshot, DockerError> {
        let services: Vec<Service> = self.get_json("/services?status=true").await?;
        let tasks: Vec<Task> = self.get_json("/tasks").await?;
        let nodes: Vec<Node> = self.get_json("/nodes").await?;
        let networks: Vec<Network> = self.get_json("/networks").await?;
        Ok(Snapshot { services, tasks, nodes, networks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert!(parse_version("1.9").unwrap() < parse_version("1.41").unwrap());
        assert_eq!(parse_version("x"), None);
    }
}
