//! The objects from the Kubernetes API: reflectors on Monitor, AlertRule and AlertRoute
//! (all namespaces), turned into the same [`Document`]s the files give, and each object's
//! outcome written back to its `status` with server-side apply.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::ObjectReport;
use super::crd::prometheus_operator::{PodMonitor, PrometheusRule, ServiceMonitor};
use super::crd::{API_VERSION, AlertRoute, AlertRule, Monitor, condition};
use super::files::{Document, Object, ObjectKey};

/// The caches of vigie's objects and a generation bumped (debounced) on every change.
#[derive(Clone)]
pub struct ObjectStores {
    pub monitors: Store<Monitor>,
    pub rules: Store<AlertRule>,
    pub routes: Store<AlertRoute>,
    /// prometheus-operator's objects, when its CRDs are installed.
    pub operator: Option<(Store<ServiceMonitor>, Store<PodMonitor>, Store<PrometheusRule>)>,
    pub changes: watch::Receiver<u64>,
}

/// A watch of one of the objects' kinds; only changes of their spec count.
fn watch_kind<K>(client: &Client, changed: Arc<watch::Sender<u64>>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned + Send + Sync + 'static,
{
    let name = format!("kubernetes:{}", K::kind(&()).to_lowercase());
    crate::discovery::kubernetes::watch::watch_kind(client, changed, name, true)
}

impl ObjectStores {
    /// Starts the watches; prometheus-operator's kinds only when the API serves them.
    pub async fn start(client: &Client) -> ObjectStores {
        let (raw_tx, mut raw_rx) = watch::channel(0u64);
        let raw_tx = Arc::new(raw_tx);
        let monitors = watch_kind::<Monitor>(client, raw_tx.clone());
        let rules = watch_kind::<AlertRule>(client, raw_tx.clone());
        let routes = watch_kind::<AlertRoute>(client, raw_tx.clone());
        let operator = match client.list_api_group_resources(super::files::PO_API_VERSION).await {
            Ok(_) => {
                tracing::info!(
                    "prometheus-operator's CRDs found: ServiceMonitor, PodMonitor and PrometheusRule are read too"
                );
                Some((
                    watch_kind::<ServiceMonitor>(client, raw_tx.clone()),
                    watch_kind::<PodMonitor>(client, raw_tx.clone()),
                    watch_kind::<PrometheusRule>(client, raw_tx),
                ))
            }
            Err(e) => {
                tracing::debug!(error = %e, "no prometheus-operator CRDs");
                None
            }
        };
        let (tx, changes) = watch::channel(0u64);
        tokio::spawn(async move {
            while raw_rx.changed().await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let g = *raw_rx.borrow_and_update();
                tx.send_replace(g);
            }
        });
        ObjectStores { monitors, rules, routes, operator, changes }
    }

    /// Every cached object as a document (no file, no line).
    pub fn documents(&self) -> Vec<Document> {
        let key = |kind: &str, m: &kube::api::ObjectMeta| ObjectKey {
            kind: kind.to_string(),
            namespace: m.namespace.clone().unwrap_or_else(|| "default".into()),
            name: m.name.clone().unwrap_or_default(),
        };
        let mut docs = Vec::new();
        let doc =
            |key: ObjectKey, obj: Object| Document { file: String::new(), line: 0, key: Some(key), parsed: Ok(obj) };
        for m in self.monitors.state() {
            docs.push(doc(key("Monitor", &m.metadata), Object::Monitor(m.as_ref().clone())));
        }
        for r in self.rules.state() {
            docs.push(doc(key("AlertRule", &r.metadata), Object::AlertRule(r.as_ref().clone())));
        }
        for r in self.routes.state() {
            docs.push(doc(key("AlertRoute", &r.metadata), Object::AlertRoute(r.as_ref().clone())));
        }
        if let Some((sm, pm, pr)) = &self.operator {
            for o in sm.state() {
                docs.push(doc(key("ServiceMonitor", &o.metadata), Object::ServiceMonitor(o.as_ref().clone())));
            }
            for o in pm.state() {
                docs.push(doc(key("PodMonitor", &o.metadata), Object::PodMonitor(o.as_ref().clone())));
            }
            for o in pr.state() {
                docs.push(doc(key("PrometheusRule", &o.metadata), Object::PrometheusRule(o.as_ref().clone())));
            }
        }
        docs.sort_by(|a, b| a.key.cmp(&b.key));
        docs
    }

    fn generation(&self, key: &ObjectKey) -> Option<i64> {
        let find = |m: &kube::api::ObjectMeta| {
            m.name.as_deref() == Some(&key.name) && m.namespace.as_deref().unwrap_or("default") == key.namespace
        };
        match key.kind.as_str() {
            "Monitor" => self.monitors.state().iter().find(|o| find(&o.metadata)).and_then(|o| o.metadata.generation),
            "AlertRule" => self.rules.state().iter().find(|o| find(&o.metadata)).and_then(|o| o.metadata.generation),
            _ => self.routes.state().iter().find(|o| find(&o.metadata)).and_then(|o| o.metadata.generation),
        }
    }
}

/// Target counts of a Monitor's jobs: (selected, up).
pub type TargetCounts = HashMap<String, (u64, u64)>;

/// The `status` an object should have.
fn status_of(r: &ObjectReport, generation: Option<i64>, targets: &TargetCounts) -> serde_json::Value {
    let (reason, message) = match &r.error {
        None => ("Accepted", String::new()),
        Some(e) if r.running_last_good => ("InvalidSpecLastGoodKept", e.clone()),
        Some(e) => ("InvalidSpec", e.clone()),
    };
    let mut conditions = vec![condition("Accepted", r.accepted, reason, &message, generation)];
    let mut status = serde_json::json!({ "observedGeneration": generation });
    if r.key.kind == "Monitor" {
        let (selected, up) =
            r.jobs.iter().filter_map(|j| targets.get(j)).fold((0, 0), |(s, u), (js, ju)| (s + js, u + ju));
        status["targetsSelected"] = selected.into();
        status["targetsUp"] = up.into();
        let ready = r.accepted && selected > 0 && up == selected;
        let why = if selected == 0 {
            "NoTargets"
        } else if ready {
            "TargetsUp"
        } else {
            "TargetsDown"
        };
        conditions.push(condition("Ready", ready, why, &format!("{up} of {selected} targets up"), generation));
        if let Some(e) = &r.error {
            status["lastError"] = e.clone().into();
        }
    }
    if r.key.kind == "AlertRule" {
        status["groups"] = serde_json::to_value(&r.groups).unwrap_or_default();
    }
    status["conditions"] = serde_json::to_value(&conditions).unwrap_or_default();
    status
}

/// Writes changed statuses; remembers what it wrote so unchanged objects cost nothing.
pub struct StatusWriter {
    client: Client,
    written: Mutex<HashMap<ObjectKey, serde_json::Value>>,
}

/// A status without its timestamps, to tell whether anything changed.
fn comparable(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(cs) = v["conditions"].as_array_mut() {
        for c in cs {
            c.as_object_mut().map(|o| o.remove("lastTransitionTime"));
        }
    }
    v
}

impl StatusWriter {
    pub fn new(client: Client) -> StatusWriter {
        StatusWriter { client, written: Mutex::new(HashMap::new()) }
    }

    pub async fn write(&self, stores: &ObjectStores, reports: &[ObjectReport], targets: &TargetCounts) {
        // vigie writes the status of its own kinds only.
        for r in reports.iter().filter(|r| matches!(r.key.kind.as_str(), "Monitor" | "AlertRule" | "AlertRoute")) {
            let generation = stores.generation(&r.key);
            let status = status_of(r, generation, targets);
            if self.written.lock().get(&r.key).map(comparable) == Some(comparable(&status)) {
                continue;
            }
            let body = serde_json::json!({ "apiVersion": API_VERSION, "kind": r.key.kind, "status": status });
            let params = PatchParams::apply("vigie").force();
            let ns = &r.key.namespace;
            let result = match r.key.kind.as_str() {
                "Monitor" => Api::<Monitor>::namespaced(self.client.clone(), ns)
                    .patch_status(&r.key.name, &params, &Patch::Apply(&body))
                    .await
                    .map(|o| o.name_any()),
                "AlertRule" => Api::<AlertRule>::namespaced(self.client.clone(), ns)
                    .patch_status(&r.key.name, &params, &Patch::Apply(&body))
                    .await
                    .map(|o| o.name_any()),
                _ => Api::<AlertRoute>::namespaced(self.client.clone(), ns)
                    .patch_status(&r.key.name, &params, &Patch::Apply(&body))
                    .await
                    .map(|o| o.name_any()),
            };
            match result {
                Ok(_) => {
                    tracing::debug!(object = %r.key, accepted = r.accepted, "status written");
                    self.written.lock().insert(r.key.clone(), status);
                }
                Err(e) => {
                    tracing::warn!(object = %r.key, error = %e, "status write failed; retried on the next change")
                }
            }
        }
    }
}

/// The Secret keys the Monitors reference: (namespace, name, key).
pub fn referenced_secrets(stores: &ObjectStores) -> std::collections::BTreeSet<(String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for m in stores.monitors.state() {
        let ns = m.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        for ep in &m.spec.endpoints {
            let tls = ep.tls_config.as_ref();
            let refs = ep
                .basic_auth
                .iter()
                .flat_map(|b| [&b.username, &b.password])
                .chain(ep.bearer_token_secret.iter())
                .chain(tls.and_then(|t| t.ca.as_ref()))
                .chain(tls.and_then(|t| t.cert.as_ref()))
                .chain(tls.and_then(|t| t.key_secret.as_ref()));
            for r in refs {
                out.insert((ns.clone(), r.name.clone(), r.key.clone()));
            }
        }
    }
    out
}

/// Reads the referenced Secrets (one GET each; vigie never lists or watches Secrets) and
/// writes each referenced key to `<dir>/<namespace>/<name>/<key>` (mode 0600). Returns the
/// keys it could write and whether any file changed.
pub async fn sync_secrets(
    client: &Client,
    wanted: &std::collections::BTreeSet<(String, String, String)>,
    dir: &std::path::Path,
) -> (std::collections::HashSet<(String, String, String)>, bool) {
    use k8s_openapi::api::core::v1::Secret;
    let mut available = std::collections::HashSet::new();
    let mut changed = false;
    let mut fetched: HashMap<(String, String), Option<Secret>> = HashMap::new();
    for (ns, name, key) in wanted {
        let secret = match fetched.get(&(ns.clone(), name.clone())) {
            Some(s) => s.clone(),
            None => {
                let got = Api::<Secret>::namespaced(client.clone(), ns).get(name).await;
                if let Err(e) = &got {
                    tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "a Secret a Monitor references cannot be read");
                }
                let s = got.ok();
                fetched.insert((ns.clone(), name.clone()), s.clone());
                s
            }
        };
        let Some(value) = secret.and_then(|s| s.data).and_then(|d| d.get(key).cloned()) else { continue };
        let path = dir.join(ns).join(name).join(key);
        if std::fs::read(&path).ok().as_deref() != Some(value.0.as_slice()) {
            let written = (|| {
                std::fs::create_dir_all(path.parent().expect("a key has a parent"))?;
                std::fs::write(&path, &value.0)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok::<_, std::io::Error>(())
            })();
            if let Err(e) = written {
                tracing::error!(path = %path.display(), error = %e, "cannot write a Secret's key");
                continue;
            }
            changed = true;
        }
        available.insert((ns.clone(), name.clone(), key.clone()));
    }
    (available, changed)
}

#[cfg(test)]
mod tests {
    //! The status writes as the API server sees them, through kube's `tower-test` mock: the
    //! exact request, and no request when nothing changed.
    use std::time::Duration;

    use http::{Request, Response};
    use kube::client::Body;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;

    use super::*;

    fn report(accepted: bool, error: Option<&str>) -> ObjectReport {
        ObjectReport {
            key: ObjectKey { kind: "Monitor".into(), namespace: "shop".into(), name: "web".into() },
            file: String::new(),
            line: 0,
            accepted,
            error: error.map(str::to_string),
            running_last_good: error.is_some(),
            jobs: vec!["monitor/shop/web/0".into()],
            groups: Vec::new(),
        }
    }

    fn stores() -> ObjectStores {
        let mut w: Writer<Monitor> = Default::default();
        let mut m = Monitor::new("web", Default::default());
        m.metadata.namespace = Some("shop".into());
        m.metadata.generation = Some(3);
        w.apply_watcher_event(&watcher::Event::Apply(m));
        let (_, changes) = watch::channel(0);
        ObjectStores {
            monitors: w.as_reader(),
            rules: Writer::<AlertRule>::default().as_reader(),
            routes: Writer::<AlertRoute>::default().as_reader(),
            operator: None,
            changes,
        }
    }

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    async fn next(handle: &mut Handle, code: u16) -> (Request<Body>, serde_json::Value) {
        let (req, send) = handle.next_request().await.expect("a request");
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let reply = if code == 200 {
            serde_json::json!({"apiVersion": API_VERSION, "kind": "Monitor", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"endpoints": []}})
        } else {
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "boom", "reason": "InternalError", "code": code})
        };
        send.send_response(Response::builder().status(code).body(Body::from(reply.to_string().into_bytes())).unwrap());
        (Request::from_parts(parts, Body::empty()), json)
    }

    #[tokio::test]
    async fn status_is_applied_once_per_change_and_retried_after_a_failure() {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let writer = Arc::new(StatusWriter::new(Client::new(mock, "default")));
        let stores = stores();
        let counts: TargetCounts = [("monitor/shop/web/0".to_string(), (2, 1))].into_iter().collect();

        let (w, s, c) = (writer.clone(), stores.clone(), counts.clone());
        let task = tokio::spawn(async move { w.write(&s, &[report(true, None)], &c).await });
        let (req, body) = next(&mut handle, 200).await;
        task.await.unwrap();
        assert_eq!(req.method(), "PATCH");
        assert_eq!(req.uri().path(), "/apis/vigie.dev/v1alpha1/namespaces/shop/monitors/web/status");
        let query = req.uri().query().unwrap_or_default();
        assert!(query.contains("fieldManager=vigie") && query.contains("force=true"), "{query}");
        assert_eq!(req.headers()["content-type"], "application/apply-patch+yaml");
        assert_eq!(body["apiVersion"], API_VERSION);
        assert_eq!(body["kind"], "Monitor");
        let status = &body["status"];
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["targetsSelected"], 2);
        assert_eq!(status["targetsUp"], 1);
        let cond = |t: &str| status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == t).cloned().unwrap();
        assert_eq!(cond("Accepted")["status"], "True");
        assert_eq!(cond("Ready")["status"], "False");
        assert_eq!(cond("Ready")["reason"], "TargetsDown");
        assert_eq!(cond("Ready")["message"], "1 of 2 targets up");
        assert!(cond("Ready")["lastTransitionTime"].is_string());

        // Nothing changed: no request at all.
        tokio::time::timeout(Duration::from_secs(1), writer.write(&stores, &[report(true, None)], &counts))
            .await
            .expect("no request is made for an unchanged status");

        // A new error: written; the API fails it, so the next round writes it again.
        let bad = [report(false, Some("spec.endpoints[0].interval: not a duration"))];
        let (w, s, c, b) = (writer.clone(), stores.clone(), counts.clone(), bad.clone());
        let task = tokio::spawn(async move { w.write(&s, &b, &c).await });
        let (_, body) = next(&mut handle, 500).await;
        task.await.unwrap();
        assert_eq!(body["status"]["lastError"], "spec.endpoints[0].interval: not a duration");
        let accepted = body["status"]["conditions"][0].clone();
        assert_eq!(
            (accepted["status"].as_str(), accepted["reason"].as_str()),
            (Some("False"), Some("InvalidSpecLastGoodKept"))
        );
        let (w, s, c) = (writer.clone(), stores.clone(), counts.clone());
        let task = tokio::spawn(async move { w.write(&s, &bad, &c).await });
        let (_, again) = next(&mut handle, 200).await;
        task.await.unwrap();
        assert_eq!(again["status"]["lastError"], body["status"]["lastError"]);
    }
}
