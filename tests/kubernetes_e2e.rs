//! `vigie run --discovery kubernetes` against the fake API server of `tests/kubernetes`
//! (list/watch with resourceVersions, status subresources), whose pods point at loopback
//! metric servers: the Monitor's pods are scraped, a new pod and a Monitor edit are picked
//! up from the watch, and each object's outcome is written to its status.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MetricsTarget, Proc, Vigie, eventually, http_bytes};
use serde_json::{Value, json};

struct FakeApi {
    _proc: Proc,
    port: u16,
}

fn start_fake(dir: &Path, objects: &Path) -> FakeApi {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/fake_apiserver.py");
    let log = std::fs::File::create(dir.join("fake-apiserver.log")).unwrap();
    let mut child = Command::new("python3")
        .arg(script)
        .arg("0")
        .arg("--objects")
        .arg(objects)
        .arg("--prometheus-operator-crds")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("python3 runs the fake API server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("LISTENING ").and_then(|p| p.parse().ok()).expect("LISTENING <port>");
    FakeApi { _proc: Proc { child, name: "fake-apiserver".into(), log: dir.join("fake-apiserver.log") }, port }
}

impl FakeApi {
    fn call(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Value {
        let b = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let r = http_bytes(method, self.port, path, &[("Content-Type", content_type)], &b).unwrap();
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
        serde_json::from_str(&r.body).unwrap_or(Value::Null)
    }
    fn get(&self, path: &str) -> Value {
        self.call("GET", path, "application/json", &Value::Null)
    }
    fn create(&self, path: &str, obj: Value) -> Value {
        self.call("POST", path, "application/json", &obj)
    }
    fn merge(&self, path: &str, patch: Value) -> Value {
        self.call("PATCH", path, "application/merge-patch+json", &patch)
    }
}

/// A metrics page that answers only with `Authorization: Bearer <token>`.
fn start_auth_target(token: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            let ok = head.contains(&format!("authorization: bearer {token}"));
            let resp = if ok {
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nsecret 1\n"
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    port
}

fn pod(name: &str, app: &str, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app, "team": "payments"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:1",
            "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn targets(v: &Vigie, pool: &str) -> Vec<Value> {
    let body: Value = serde_json::from_str(&v.get("/api/v1/targets").body).unwrap_or_default();
    body["data"]["activeTargets"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["scrapePool"] == pool).cloned().collect())
        .unwrap_or_default()
}

fn requests(api: &FakeApi) -> Vec<Value> {
    let r = api.get("/_fake/requests");
    r.as_array().or_else(|| r["requests"].as_array()).cloned().unwrap_or_default()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

#[test]
fn monitors_in_the_cluster_are_scraped_followed_and_get_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/objects/00-namespaces.json");
    std::fs::copy(fixtures, objects.join("00-namespaces.json")).unwrap();
    let web1 = MetricsTarget::start("app_up 1\n");
    let db = MetricsTarget::start("app_up 1\n");
    let web2 = MetricsTarget::start("app_up 1\n");
    let auth_port = start_auth_target("s3cret");
    let annotated = MetricsTarget::start("app_up 1\n");
    let mut anno = pod("anno-1", "anno", 1);
    anno["metadata"]["annotations"] = json!({"prometheus.io/scrape": "true", "prometheus.io/port": annotated.port.to_string(), "prometheus.io/path": "/metrics"});
    let items = json!({"apiVersion": "v1", "kind": "List", "items": [
        pod("web-1", "web", web1.port),
        pod("db-1", "db", db.port),
        pod("auth-1", "auth", auth_port),
        anno,
        // "s3cret", base64 as in a Secret's data.
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "shop"},
         "data": {"token": "czNjcmV0"}},
        {"apiVersion": "vigie.dev/v1alpha1", "kind": "Monitor",
         "metadata": {"name": "auth", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "auth"}},
                  "endpoints": [{"port": "metrics", "interval": "1s", "bearerTokenSecret": {"name": "token", "key": "token"}}]}},
        {"apiVersion": "vigie.dev/v1alpha1", "kind": "Monitor",
         "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "endpoints": [{"port": "metrics", "interval": "1s"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
         "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "db"}}, "podMetricsEndpoints": [{"port": "metrics", "interval": "1s"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
         "metadata": {"name": "po-rules", "namespace": "shop"},
         "spec": {"groups": [{"name": "po", "interval": "1s", "partial_response_strategy": "warn",
                              "rules": [{"record": "shop:app_up:sum", "expr": "sum(app_up)"}]}]}},
        {"apiVersion": "vigie.dev/v1alpha1", "kind": "AlertRule",
         "metadata": {"name": "rules", "namespace": "shop"},
         "spec": {"groups": [{"name": "shop", "interval": "1s", "rules": [{"alert": "Up", "expr": "app_up == 1"}]}]}}
    ]});
    std::fs::write(objects.join("10-objects.json"), items.to_string()).unwrap();
    let api = start_fake(dir.path(), &objects);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"http://127.0.0.1:{}\"}}}}]\n\
             users: [{{name: fake, user: {{}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n\
             current-context: fake\n",
            api.port
        ),
    )
    .unwrap();
    // SAFETY: set before any thread of this test reads the environment; the child inherits it.
    unsafe { std::env::set_var("KUBECONFIG", &kubeconfig) };
    let v = Vigie::start(dir.path(), &["--discovery", "kubernetes", "--kubernetes-annotations"]);
    let pool = "monitor/shop/web/0";

    let up = eventually(Duration::from_secs(20), "the selected pod scraped", || {
        targets(&v, pool).into_iter().find(|t| t["health"] == "up")
    });
    let l = &up["labels"];
    assert_eq!(l["instance"], format!("127.0.0.1:{}", web1.port));
    assert_eq!(l["namespace"], "shop");
    assert_eq!(l["pod"], "web-1");
    assert_eq!(l["container"], "app");
    assert_eq!(l["job"], "shop/web");
    assert_eq!(l["endpoint"], "metrics");
    assert_eq!(targets(&v, pool).len(), 1, "the db pod is not selected");

    // prometheus-operator's objects are read natively, with its job names and labels.
    let db_target = eventually(Duration::from_secs(20), "the PodMonitor's pod scraped", || {
        targets(&v, "podMonitor/shop/db/0").into_iter().find(|t| t["health"] == "up")
    });
    assert_eq!(db_target["labels"]["job"], "shop/db");
    assert_eq!(db_target["labels"]["pod"], "db-1");
    let rules: Value = serde_json::from_str(&v.get("/api/v1/rules").body).unwrap();
    assert!(
        rules["data"]["groups"].as_array().unwrap().iter().any(|g| g["file"] == "prometheusrule/shop/po-rules"),
        "{rules}"
    );
    let po_status = api.get("/apis/monitoring.coreos.com/v1/namespaces/shop/podmonitors/db");
    assert!(po_status["status"].is_null(), "vigie does not write prometheus-operator's objects: {po_status}");

    // The prometheus.io annotation job (opt-in): the annotated pod on its annotated port.
    // The convention's jobs use the global interval (15 s in the embedded default).
    let a = eventually(Duration::from_secs(45), "the annotated pod scraped", || {
        targets(&v, "kubernetes-pods").into_iter().find(|t| t["health"] == "up")
    });
    assert_eq!(a["labels"]["instance"], format!("127.0.0.1:{}", annotated.port));
    assert_eq!(a["labels"]["pod"], "anno-1");
    assert_eq!(targets(&v, "kubernetes-pods").len(), 1, "only annotated pods");

    // A Secret a Monitor references: read with one GET, never listed or watched.
    eventually(Duration::from_secs(20), "the target behind a bearer token scraped", || {
        targets(&v, "monitor/shop/auth/0").into_iter().find(|t| t["health"] == "up")
    });
    let log = requests(&api);
    assert!(log.iter().any(|r| r["method"] == "GET" && r["path"] == "/api/v1/namespaces/shop/secrets/token"));
    assert!(
        !log.iter()
            .any(|r| r["path"] == "/api/v1/secrets"
                || r["watch"] == true && r["path"].as_str().unwrap().contains("secrets")),
        "no list or watch of Secrets"
    );

    // A new pod: found through the watch.
    let start = Instant::now();
    // As a kubelet would: with its status (a plain create drops it).
    api.create("/_fake/objects", pod("web-2", "web", web2.port));
    eventually(Duration::from_secs(20), "the new pod scraped", || {
        targets(&v, pool).into_iter().find(|t| t["labels"]["pod"] == "web-2" && t["health"] == "up")
    });
    let new_pod = start.elapsed();

    // A Monitor edit: applied without a restart.
    let start = Instant::now();
    api.merge("/apis/vigie.dev/v1alpha1/namespaces/shop/monitors/web", json!({"spec": {"podTargetLabels": ["team"]}}));
    eventually(Duration::from_secs(20), "the edited Monitor's label", || {
        let t = targets(&v, pool);
        (t.len() == 2 && t.iter().all(|t| t["labels"]["team"] == "payments")).then_some(())
    });
    let edit = start.elapsed();

    // The watches expire (410 Gone, history compacted): vigie lists again and follows on.
    let before = requests(&api).last().and_then(|r| r["seq"].as_u64()).unwrap_or(0);
    api.call("POST", "/_fake/compact", "application/json", &Value::Null);
    api.call("POST", "/_fake/close-watches?expire=1", "application/json", &Value::Null);
    let web3 = MetricsTarget::start("app_up 1\n");
    api.create("/_fake/objects", pod("web-3", "web", web3.port));
    eventually(Duration::from_secs(30), "a pod created after the 410 scraped", || {
        targets(&v, pool).into_iter().find(|t| t["labels"]["pod"] == "web-3" && t["health"] == "up")
    });
    let relisted = requests(&api).iter().any(|r| {
        r["seq"].as_u64() > Some(before) && r["path"] == "/api/v1/pods" && r["method"] == "GET" && r["watch"] != true
    });
    assert!(relisted, "a LIST of pods after the 410");
    api.call(
        "DELETE",
        "/_fake/objects",
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "shop", "name": "web-3"}}),
    );
    eventually(Duration::from_secs(20), "the deleted pod gone", || {
        targets(&v, pool).iter().all(|t| t["labels"]["pod"] != "web-3").then_some(())
    });

    // Status: accepted, with its targets.
    let mon = eventually(Duration::from_secs(20), "the Monitor's status", || {
        let m = api.get("/apis/vigie.dev/v1alpha1/namespaces/shop/monitors/web");
        // Written on changes and every 5 s: wait for the state after web-3 left.
        let settled = m["status"]["targetsUp"] == 2 && m["status"]["targetsSelected"] == 2;
        (settled && condition(&m, "Ready").is_some_and(|c| c["status"] == "True")).then_some(m)
    });
    assert_eq!(condition(&mon, "Accepted").unwrap()["status"], "True");
    assert_eq!(condition(&mon, "Ready").unwrap()["status"], "True");
    assert_eq!(mon["status"]["targetsSelected"], 2);
    assert_eq!(mon["status"]["observedGeneration"], mon["metadata"]["generation"]);

    // A broken rule: its status says why, and the last good version keeps evaluating.
    api.merge(
        "/apis/vigie.dev/v1alpha1/namespaces/shop/alertrules/rules",
        json!({"spec": {"groups": [{"name": "shop", "interval": "1s", "rules": [{"alert": "Up", "expr": "app_up == (1"}]}]}}),
    );
    let rule = eventually(Duration::from_secs(20), "the AlertRule's error in its status", || {
        let r = api.get("/apis/vigie.dev/v1alpha1/namespaces/shop/alertrules/rules");
        condition(&r, "Accepted").filter(|c| c["status"] == "False").cloned()
    });
    let message = rule["message"].as_str().unwrap();
    assert!(message.contains("group \"shop\", rule 1, \"Up\": could not parse expression"), "{message}");
    assert_eq!(rule["reason"], "InvalidSpecLastGoodKept");
    let alert = eventually(Duration::from_secs(20), "the last good rule still firing", || {
        let alerts: Value = serde_json::from_str(&v.get("/api/v1/alerts").body).ok()?;
        alerts["data"]["alerts"].as_array()?.iter().find(|a| a["labels"]["alertname"] == "Up").cloned()
    });
    assert_eq!(alert["labels"]["namespace"], "shop");
    // Status writes are server-side applies by vigie.
    let log = requests(&api);
    let applies: Vec<&Value> = log
        .iter()
        .filter(|r| r["method"] == "PATCH" && r["path"].as_str().is_some_and(|p| p.ends_with("/status")))
        .collect();
    assert!(!applies.is_empty());
    assert!(
        applies.iter().all(|r| r["contentType"].as_str().unwrap_or_default().starts_with("application/apply-patch")),
        "{applies:?}"
    );
    eprintln!("kubernetes e2e: new pod scraped after {new_pod:?}, Monitor edit applied after {edit:?}");
}
