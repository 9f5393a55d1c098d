//! Event-driven Swarm discovery (`--discovery swarm`). One [`hub`](subscribe) per Docker
//! host lists the swarm, lists again whenever the Docker events stream reports a service,
//! node, network or container change (a few times over the next seconds, since tasks on
//! other nodes change without cluster-wide events) and every `relist` regardless, and
//! publishes each snapshot to every job that uses it: the zero-config job
//! ([`SwarmAutoProvider`]) and the jobs of `Monitor` objects ([`SwarmTasksProvider`]).
//! However many Monitors there are, the daemon sees one events stream and one relist.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::api::{DockerApi, DockerError};
use super::auto::{self, Reach};
use super::model::Snapshot;
use crate::discovery::{GroupSender, Provider, TargetGroup, status};

/// Settings of event-driven Swarm discovery.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SwarmAutoSettings {
    pub host: String,
    /// Networks to reach tasks on; empty: the ones vigie's own container is attached to,
    /// or any non-ingress network when vigie does not run in a container.
    pub networks: Vec<String>,
    pub relist: Duration,
}

/// What a hub publishes: the newest snapshot and the networks vigie reaches tasks on.
pub struct SwarmView {
    pub snap: Snapshot,
    pub reach: Reach,
}

type ViewTx = watch::Sender<Option<Arc<SwarmView>>>;

static HUBS: LazyLock<Mutex<HashMap<SwarmAutoSettings, ViewTx>>> = LazyLock::new(Default::default);

/// The snapshots of the hub for `settings`, started on first use and stopped when its
/// last subscriber is gone.
pub fn subscribe(settings: &SwarmAutoSettings) -> watch::Receiver<Option<Arc<SwarmView>>> {
    let mut hubs = HUBS.lock();
    if let Some(tx) = hubs.get(settings) {
        return tx.subscribe();
    }
    let (tx, rx) = watch::channel(None);
    hubs.insert(settings.clone(), tx.clone());
    tokio::spawn(run_hub(settings.clone(), tx));
    rx
}

/// Relists after an event: soon, then again while tasks settle.
const AFTER_EVENT: [Duration; 3] = [Duration::from_millis(150), Duration::from_secs(1), Duration::from_secs(3)];

/// While a task that should run is still starting, relist after this delay, doubling up to
/// [`SETTLE_MAX`] (a task stuck pulling its image must not make vigie poll twice a second).
const SETTLE_FIRST: Duration = Duration::from_millis(250);
const SETTLE_MAX: Duration = Duration::from_secs(8);

/// A task on its way to running: no container answers yet, but one will soon.
fn starting(snap: &Snapshot) -> bool {
    snap.tasks.iter().any(|t| {
        t.desired_state == "running"
            && matches!(
                t.status.state.as_str(),
                "new" | "allocated" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting"
            )
    })
}

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

/// Whether the hub may stop: nobody listens, and nobody can start listening meanwhile
/// (the check and the removal happen under the registry lock `subscribe` takes).
fn retire(settings: &SwarmAutoSettings, tx: &ViewTx) -> bool {
    let mut hubs = HUBS.lock();
    if tx.receiver_count() > 0 {
        return false;
    }
    hubs.remove(settings);
    true
}

async fn connect(settings: &SwarmAutoSettings, tx: &ViewTx, name: &str) -> Option<DockerApi> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let connected = async {
            let mut api = DockerApi::new(&settings.host, Duration::from_secs(30))?;
            let version = api.negotiate().await?;
            api.check_manager().await?;
            Ok::<_, DockerError>((api, version))
        }
        .await;
        match connected {
            Ok((api, version)) => {
                tracing::info!(host = %settings.host, version, "swarm discovery connected");
                status::ok(name);
                return Some(api);
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in_s = backoff.as_secs(), "swarm discovery cannot start");
                status::failed(name, &e.to_string());
                tokio::select! {
                    _ = tx.closed() => if retire(settings, tx) { return None },
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Removes a hub that ends without retiring (a panic) from the registry, so the next
/// subscriber starts a new one instead of waiting on a dead channel.
struct Unregister {
    settings: SwarmAutoSettings,
    tx: ViewTx,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        let mut hubs = HUBS.lock();
        if hubs.get(&self.settings).is_some_and(|t| t.same_channel(&self.tx)) {
            hubs.remove(&self.settings);
        }
    }
}

async fn run_hub(settings: SwarmAutoSettings, tx: ViewTx) {
    let _unregister = Unregister { settings: settings.clone(), tx: tx.clone() };
    let name = format!("swarm:{}", settings.host);
    let Some(api) = connect(&settings, &tx, &name).await else { return };
    let reach = if settings.networks.is_empty() {
        Reach { networks: own_networks(&api).await }
    } else {
        Reach { networks: settings.networks.clone() }
    };
    tracing::info!(networks = ?reach.networks, "swarm discovery scrapes tasks on these networks (empty: any non-ingress)");
    let (poke_tx, mut poke_rx) = mpsc::channel::<()>(64);
    let events = tokio::spawn(follow_events(api.clone(), poke_tx));
    let mut pending: Vec<tokio::time::Instant> = Vec::new();
    let mut next_full = tokio::time::Instant::now();
    let mut settle = SETTLE_FIRST;
    loop {
        let now = tokio::time::Instant::now();
        if next_full <= now || pending.iter().any(|t| *t <= now) {
            pending.retain(|t| *t > now);
            next_full = now + settings.relist;
            match api.snapshot().await {
                Ok(snap) => {
                    status::ok(&name);
                    if starting(&snap) {
                        let at = tokio::time::Instant::now() + settle;
                        if !pending.iter().any(|t| *t <= at) {
                            pending.push(at);
                        }
                        settle = (settle * 2).min(SETTLE_MAX);
                    } else {
                        settle = SETTLE_FIRST;
                    }
                    tx.send_replace(Some(Arc::new(SwarmView { snap, reach: reach.clone() })));
                }
                Err(e) => {
                    status::failed(&name, &e.to_string());
                    tracing::warn!(error = %e, "swarm relist failed; keeping the last targets");
                }
            }
        }
        let wake = pending.iter().copied().chain([next_full]).min().unwrap_or(next_full);
        tokio::select! {
            _ = tx.closed() => if retire(&settings, &tx) { events.abort(); return },
            _ = tokio::time::sleep_until(wake) => {}
            Some(()) = poke_rx.recv() => {
                let now = tokio::time::Instant::now();
                pending.retain(|t| *t > now + Duration::from_millis(50));
                pending.extend(AFTER_EVENT.iter().map(|d| now + *d));
                settle = SETTLE_FIRST;
            }
        }
    }
}

/// Sends `build(view)` for every snapshot of the hub until the receiver is gone.
async fn follow(
    settings: SwarmAutoSettings,
    tx: GroupSender,
    mut build: impl FnMut(&SwarmView) -> Vec<TargetGroup> + Send,
) {
    let mut views = subscribe(&settings);
    loop {
        let view = views.borrow_and_update().clone();
        if let Some(view) = view
            && tx.send(build(&view)).await.is_err()
        {
            return;
        }
        tokio::select! {
            _ = tx.closed() => return,
            changed = views.changed() => if changed.is_err() {
                // The hub retired between our subscription and now: start another.
                views = subscribe(&settings);
            },
        }
    }
}

/// The zero-config job: services labelled `vigie.scrape=true`.
pub struct SwarmAutoProvider {
    settings: SwarmAutoSettings,
}

impl SwarmAutoProvider {
    pub fn new(settings: &SwarmAutoSettings) -> SwarmAutoProvider {
        SwarmAutoProvider { settings: settings.clone() }
    }
}

impl Provider for SwarmAutoProvider {
    fn name(&self) -> String {
        format!("swarm:{}", self.settings.host)
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut warned: HashSet<String> = HashSet::new();
        let mut reported: HashSet<String> = HashSet::new();
        Box::pin(follow(self.settings.clone(), tx, move |view| {
            let (groups, unreachable) = auto::targets(&view.snap, &view.reach);
            let mut now: HashSet<String> = HashSet::new();
            for u in unreachable {
                if warned.insert(u.task.clone()) {
                    tracing::warn!(service = %u.service, task = %u.task, "a labelled task shares no network with vigie; attach the service to vigie's network");
                }
                now.insert(u.service);
            }
            // Shown next to the targets (`discoveryErrors`) until the service is reachable.
            for service in &now {
                status::failed(
                    &format!("swarm:unreachable:{service}"),
                    &format!(
                        "service {service:?} is labelled for scraping but shares no network with vigie; attach it to vigie's network"
                    ),
                );
            }
            for gone in reported.difference(&now) {
                status::ok(&format!("swarm:unreachable:{gone}"));
            }
            reported = now;
            groups
        }))
    }
}

/// Every running task reachable from vigie, with the tasks role's meta labels: what a
/// `Monitor`'s relabel rules select from.
pub struct SwarmTasksProvider {
    settings: SwarmAutoSettings,
}

impl SwarmTasksProvider {
    pub fn new(settings: &SwarmAutoSettings) -> SwarmTasksProvider {
        SwarmTasksProvider { settings: settings.clone() }
    }
}

impl Provider for SwarmTasksProvider {
    fn name(&self) -> String {
        format!("swarm-tasks:{}", self.settings.host)
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(follow(self.settings.clone(), tx, |view| auto::running_tasks(&view.snap, &view.reach)))
    }
}
