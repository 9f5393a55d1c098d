//! The Kubernetes watch hub: one reflector per kind (pods, services, endpointslices,
//! nodes), shared by every job that discovers from the cluster, as Prometheus's informers
//! are. Any change to a cached object bumps a generation after a short debounce; each
//! job's provider then rebuilds its groups from the caches. Managed fields are stripped
//! before caching (they are a third of a pod's size and vigie never reads them).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::meta;
use crate::discovery::{GroupSender, Provider, TargetGroup, status};

/// The cluster's caches.
#[derive(Clone)]
pub struct KubeCaches {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
}

/// How long changes are gathered before the jobs rebuild: a rollout touching many pods
/// becomes one rebuild, and a single change still applies well within a second.
const DEBOUNCE: Duration = Duration::from_millis(100);

type Hub = (KubeCaches, watch::Receiver<u64>);

static HUB: LazyLock<Mutex<Option<Hub>>> = LazyLock::new(Default::default);

/// A reflector on every object of kind `K`, managed fields stripped, that bumps `changed`
/// when the cache changes. With `spec_changes_only`, an update that leaves the object's
/// `generation` alone (a status write, an annotation) does not count: vigie's own status
/// writes must not come back as reasons to recompile its objects.
pub fn watch_kind<K>(
    client: &Client,
    changed: Arc<watch::Sender<u64>>,
    name: String,
    spec_changes_only: bool,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(reflector::reflector(writer, stream));
        let mut generations: HashMap<String, Option<i64>> = HashMap::new();
        let bump = || changed.send_modify(|g| *g += 1);
        while let Some(ev) = events.next().await {
            match &ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) if spec_changes_only => {
                    let uid = o.meta().uid.clone().unwrap_or_default();
                    let generation = o.meta().generation;
                    let new = generations.insert(uid, generation) != Some(generation);
                    // During a (re)list, InitDone counts once for all of them.
                    if new && matches!(ev, Ok(watcher::Event::Apply(_))) {
                        status::ok(&name);
                        bump();
                    }
                }
                Ok(watcher::Event::Delete(o)) => {
                    generations.remove(&o.meta().uid.clone().unwrap_or_default());
                    bump();
                }
                Ok(watcher::Event::InitDone) | Ok(watcher::Event::Apply(_)) => {
                    status::ok(&name);
                    bump();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(watch = %name, error = %e, "kubernetes watch failed; retrying with backoff");
                    status::failed(&name, &e.to_string());
                }
            }
        }
    });
    reader
}

/// The caches and their change generations, started on first use.
pub fn hub(client: &Client) -> Hub {
    let mut hub = HUB.lock();
    if let Some(h) = hub.as_ref() {
        return h.clone();
    }
    let (raw_tx, raw_rx) = watch::channel(0u64);
    let raw_tx = Arc::new(raw_tx);
    let caches = KubeCaches {
        pods: watch_kind::<Pod>(client, raw_tx.clone(), "kubernetes:pods".into(), false),
        services: watch_kind::<Service>(client, raw_tx.clone(), "kubernetes:services".into(), false),
        slices: watch_kind::<EndpointSlice>(client, raw_tx.clone(), "kubernetes:endpointslices".into(), false),
        nodes: watch_kind::<Node>(client, raw_tx, "kubernetes:nodes".into(), false),
    };
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(debounce(raw_rx, tx));
    let h = (caches, rx);
    *hub = Some(h.clone());
    h
}

async fn debounce(mut raw: watch::Receiver<u64>, out: watch::Sender<u64>) {
    while raw.changed().await.is_ok() {
        tokio::time::sleep(DEBOUNCE).await;
        let g = *raw.borrow_and_update();
        out.send_replace(g);
    }
}

/// A `kubernetes_sd_configs`-style role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KubeRole {
    Pod,
    EndpointSlice,
    Service,
    Node,
}

impl KubeRole {
    pub fn parse(s: &str) -> Result<KubeRole, String> {
        match s {
            "pod" => Ok(KubeRole::Pod),
            "endpointslice" => Ok(KubeRole::EndpointSlice),
            "service" => Ok(KubeRole::Service),
            "node" => Ok(KubeRole::Node),
            other => Err(format!("role {other:?} is not supported (pod, endpointslice, service, node)")),
        }
    }
}

/// What one job discovers: a role, its namespaces (empty: all) and label selectors per
/// role (as `kubernetes_sd_configs.selectors`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KubeSelection {
    pub role: KubeRole,
    pub namespaces: Vec<String>,
    pub selectors: Vec<(KubeRole, super::selector::Selector)>,
}

/// Every group of the selection in the caches. Selectors apply as the API server would
/// apply them to the job's own watches: objects they reject are not there at all (a pod a
/// pod selector rejects gives an endpoint no pod labels).
pub fn groups(c: &KubeCaches, sel: &KubeSelection) -> Vec<TargetGroup> {
    let namespaces = &sel.namespaces;
    let in_ns = |ns: Option<&String>| namespaces.is_empty() || ns.is_some_and(|n| namespaces.contains(n));
    let selected = |role: KubeRole, labels: Option<&BTreeMap<String, String>>| {
        sel.selectors.iter().filter(|(r, _)| *r == role).all(|(_, s)| s.matches(labels))
    };
    match sel.role {
        KubeRole::Pod => c
            .pods
            .state()
            .iter()
            .filter(|p| in_ns(p.metadata.namespace.as_ref()) && selected(KubeRole::Pod, p.metadata.labels.as_ref()))
            .map(|p| meta::pod_group(p))
            .collect(),
        KubeRole::Service => c
            .services
            .state()
            .iter()
            .filter(|s| in_ns(s.metadata.namespace.as_ref()) && selected(KubeRole::Service, s.metadata.labels.as_ref()))
            .map(|s| meta::service_group(s))
            .collect(),
        KubeRole::Node => c
            .nodes
            .state()
            .iter()
            .filter(|n| selected(KubeRole::Node, n.metadata.labels.as_ref()))
            .filter_map(|n| meta::node_group(n))
            .collect(),
        KubeRole::EndpointSlice => {
            let pods = c.pods.state();
            let services = c.services.state();

            let pods: HashMap<(&str, &str), &Pod> = pods
                .iter()
                .filter(|p| selected(KubeRole::Pod, p.metadata.labels.as_ref()))
                .map(|p| {
                    (
                        (p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or("")),
                        p.as_ref(),
                    )
                })
                .collect();
            let services: HashMap<(&str, &str), &Service> = services
                .iter()
                .filter(|s| selected(KubeRole::Service, s.metadata.labels.as_ref()))
                .map(|s| {
                    (
                        (s.metadata.namespace.as_deref().unwrap_or(""), s.metadata.name.as_deref().unwrap_or("")),
                        s.as_ref(),
                    )
                })
                .collect();
            let has_service_selector = sel.selectors.iter().any(|(r, _)| *r == KubeRole::Service);
            c.slices
                .state()
                .iter()
                .filter(|s| {
                    in_ns(s.metadata.namespace.as_ref())
                        && selected(KubeRole::EndpointSlice, s.metadata.labels.as_ref())
                })
                .filter(|s| {
                    // With a Service selector, a slice of a Service it rejects is not watched.
                    !has_service_selector || {
                        let ns = s.metadata.namespace.as_deref().unwrap_or("");
                        let svc = s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name"));
                        svc.is_some_and(|n| services.contains_key(&(ns, n.as_str())))
                    }
                })
                .map(|s| {
                    meta::endpointslice_group(
                        s,
                        |ns, name| pods.get(&(ns, name)).copied(),
                        |ns, name| services.get(&(ns, name)).copied(),
                    )
                })
                .collect()
        }
    }
}

/// One role of the cluster as a job's discovery.
pub struct KubeProvider {
    pub selection: KubeSelection,
}

impl Provider for KubeProvider {
    fn name(&self) -> String {
        format!("kubernetes:{:?}", self.selection.role).to_lowercase()
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut backoff = Duration::from_secs(1);
            let client = loop {
                match super::client().await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::error!(error = %e, retry_in_s = backoff.as_secs(), "kubernetes discovery cannot start");
                        status::failed(&self.name(), &e.to_string());
                        tokio::select! {
                            _ = tx.closed() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            };
            status::ok(&self.name());
            let (caches, mut changes) = hub(&client);
            loop {
                changes.borrow_and_update();
                if tx.send(groups(&caches, &self.selection)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    r = changes.changed() => if r.is_err() { return },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    //! The pod cache against a scripted API server (kube's `tower-test` mock): initial list,
    //! a bookmark, an addition, a 410 Gone, and the relist that follows.
    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    fn pod(name: &str, rv: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": rv, "uid": name,
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 9100}]}]},
            "status": {"podIP": "10.0.0.1", "phase": "Running"}
        })
    }

    fn list(rv: &str, items: Vec<serde_json::Value>) -> String {
        serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items})
            .to_string()
    }

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    async fn answer(handle: &mut Handle, body: String) -> http::Uri {
        let (req, send) = handle.next_request().await.expect("a request");
        send.send_response(Response::builder().status(200).body(Body::from(body.into_bytes())).unwrap());
        req.uri().clone()
    }

    async fn names_become(store: &Store<Pod>, want: &[&str]) {
        for _ in 0..200 {
            let mut names: Vec<String> = store.state().iter().map(|p| p.metadata.name.clone().unwrap()).collect();
            names.sort();
            if names == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the cache never held {want:?}: {:?}",
            store.state().iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn the_cache_follows_watch_events_and_relists_after_410_gone() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(mock, "default");
        let (tx, mut generations) = watch::channel(0u64);
        let store = watch_kind::<Pod>(&client, Arc::new(tx), "kubernetes:pods".into(), false);

        let uri = answer(&mut handle, list("1", vec![pod("web-1", "1")])).await;
        assert_eq!(uri.path(), "/api/v1/pods");
        assert!(!uri.query().unwrap_or_default().contains("watch=true"), "a list first: {uri}");
        names_become(&store, &["web-1"]).await;
        assert!(store.state()[0].metadata.managed_fields.is_none(), "managed fields are not cached");
        assert!(generations.has_changed().unwrap());
        generations.borrow_and_update();

        let events = [
            serde_json::json!({"type": "BOOKMARK", "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"resourceVersion": "5"}}}),
            serde_json::json!({"type": "ADDED", "object": pod("web-2", "6")}),
            serde_json::json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "too old resource version: 1 (7)", "reason": "Expired", "code": 410}}),
        ];
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        let uri = answer(&mut handle, body).await;
        let query = uri.query().unwrap_or_default().to_string();
        assert!(query.contains("watch=true") && query.contains("resourceVersion=1"), "{query}");
        assert!(query.contains("allowWatchBookmarks=true"), "{query}");
        names_become(&store, &["web-1", "web-2"]).await;
        assert!(generations.has_changed().unwrap(), "an addition bumps the generation");

        // After the 410 the watcher lists again; web-1 went away meanwhile.
        let uri = loop {
            let uri = answer(&mut handle, list("10", vec![pod("web-2", "6")])).await;
            if !uri.query().unwrap_or_default().contains("watch=true") {
                break uri;
            }
        };
        assert_eq!(uri.path(), "/api/v1/pods");
        names_become(&store, &["web-2"]).await;
    }
}
