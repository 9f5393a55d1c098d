//! The zero-config Swarm provider (`--discovery swarm`): lists the swarm, builds
//! [`super::auto`] targets, and lists again whenever the Docker events stream reports a
//! service, node, network or container change (a few times over the next seconds, since
//! tasks on other nodes change without cluster-wide events), and every 30 s regardless.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use super::api::{DockerApi, DockerError};
use super::auto::{self, Reach};
use crate::discovery::{GroupSender, Provider};

/// Settings of the zero-config mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmAutoSettings {
    pub host: String,
    /// Networks to reach tasks on; empty: the ones vigie's own container is attached to,
    /// or any non-ingress network when vigie does not run in a container.
    pub networks: Vec<String>,
    pub relist: Duration,
}

pub struct SwarmAutoProvider {
    settings: SwarmAutoSettings,
}

impl SwarmAutoProvider {
    pub fn new(settings: &SwarmAutoSettings) -> SwarmAutoProvider {
        SwarmAutoProvider { settings: settings.clone() }
    }
}

/// Relists after an event: soon, then again while tasks settle.
const AFTER_EVENT: [Duration; 3] = [Duration::from_millis(150), Duration::from_secs(1), Duration::from_secs(3)];

async fn own_networks(api: &DockerApi) -> Vec<String> {
    let Ok(hostname) = std::fs::read_to_string("/etc/hostname") else { return Vec::new() };
    api.container_networks(hostname.trim()).await.unwrap_or_default()
}

/// Reads the events stream until it ends, poking `tx` for every event.
async fn follow_events(api: DockerApi, tx: mpsc::Sender<()>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match api.events(&tx).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "docker events stream failed");
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
    }
}

impl Provider for SwarmAutoProvider {
    fn name(&self) -> String {
        format!("swarm:{}", self.settings.host)
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut backoff = Duration::from_secs(1);
            let api = loop {
                let connected = async {
                    let mut api = DockerApi::new(&self.settings.host, Duration::from_secs(30))?;
                    let version = api.negotiate().await?;
                    api.check_manager().await?;
                    Ok::<_, DockerError>((api, version))
                }
                .await;
                match connected {
                    Ok((api, version)) => {
                        tracing::info!(host = %self.settings.host, version, "swarm discovery connected");
                        break api;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, retry_in_s = backoff.as_secs(), "swarm discovery cannot start");
                        tokio::select! {
                            _ = tx.closed() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            };
            let reach = if self.settings.networks.is_empty() {
                Reach { networks: own_networks(&api).await }
            } else {
                Reach { networks: self.settings.networks.clone() }
            };
            tracing::info!(networks = ?reach.networks, "swarm discovery scrapes tasks on these networks (empty: any non-ingress)");
            let (poke_tx, mut poke_rx) = mpsc::channel::<()>(64);
            let events = tokio::spawn(follow_events(api.clone(), poke_tx));
            let mut pending: Vec<tokio::time::Instant> = Vec::new();
            let mut next_full = tokio::time::Instant::now();
            let mut warned: std::collections::HashSet<String> = Default::default();
            loop {
                let now = tokio::time::Instant::now();
                let due = next_full <= now || pending.iter().any(|t| *t <= now);
                if due {
                    pending.retain(|t| *t > now);
                    next_full = now + self.settings.relist;
                    match api.snapshot().await {
                        Ok(snap) => {
                            let (groups, unreachable) = auto::targets(&snap, &reach);
                            for u in unreachable {
                                if warned.insert(u.task.clone()) {
                                    tracing::warn!(service = %u.service, task = %u.task, "a labelled task shares no network with vigie; attach the service to vigie's network");
                                }
                            }
                            if tx.send(groups).await.is_err() {
                                events.abort();
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "swarm relist failed; keeping the last targets"),
                    }
                }
                let wake = pending.iter().copied().chain([next_full]).min().unwrap_or(next_full);
                tokio::select! {
                    _ = tx.closed() => { events.abort(); return; }
                    _ = tokio::time::sleep_until(wake) => {}
                    Some(()) = poke_rx.recv() => {
                        let now = tokio::time::Instant::now();
                        pending.retain(|t| *t > now + Duration::from_millis(50));
                        pending.extend(AFTER_EVENT.iter().map(|d| now + *d));
                    }
                }
            }
        })
    }
}
