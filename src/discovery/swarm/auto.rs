//! Zero-config Swarm targets: services (or their containers) labelled `vigie.scrape=true`
//! (or `prometheus.io/scrape=true`) are scraped on the network vigie shares with them,
//! at the container port they name, with the labels users expect (`job`, `instance`,
//! `swarm_service`, `swarm_stack`, `swarm_node`, `swarm_task_slot`) and every
//! `__meta_dockerswarm_*` label of the task for relabeling. Pure: no I/O.
//!
//! The label contract (service `deploy.labels` first, then the task's container labels):
//! `vigie.port` (or `prometheus.io/port`), `vigie.port.<name>` for more ports,
//! `vigie.path` / `prometheus.io/path`, `vigie.scheme` / `prometheus.io/scheme`,
//! `vigie.interval`, `vigie.job` (default: the service name), `vigie.params.<name>`.

use std::collections::{BTreeMap, HashMap};

use super::meta::{self, PREFIX, Role};
use super::model::{Service, Snapshot, Task};
use crate::discovery::TargetGroup;
use crate::model::Labels;

/// Which networks vigie can reach tasks on (ids or names); empty means any non-ingress one.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    pub networks: Vec<String>,
}

/// A selected task that shares no network with vigie (its address would not answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Unreachable {
    pub service: String,
    pub task: String,
}

fn label<'a>(service: &'a Service, task: &'a Task, keys: &[&str]) -> Option<&'a str> {
    let container = task.spec.container_spec.as_ref().map(|c| &c.labels);
    for k in keys {
        if let Some(v) = service.spec.labels.get(*k) {
            return Some(v);
        }
        if let Some(v) = container.and_then(|c| c.get(*k)) {
            return Some(v);
        }
    }
    None
}

fn wants_scrape(service: &Service, task: &Task) -> bool {
    label(service, task, &["vigie.scrape", "prometheus.io/scrape"]).is_some_and(|v| v == "true")
}

/// The ports to scrape: (name, container port); the unnamed one has an empty name.
fn ports(service: &Service, task: &Task) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(p) = label(service, task, &["vigie.port", "prometheus.io/port"]) {
        out.push((String::new(), p.to_string()));
    }
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    let container = task.spec.container_spec.as_ref().map(|c| c.labels.clone()).unwrap_or_default();
    for (k, v) in container.iter().chain(service.spec.labels.iter()) {
        if let Some(name) = k.strip_prefix("vigie.port.") {
            named.insert(name.to_string(), v.clone());
        }
    }
    out.extend(named);
    out
}

/// A running task vigie can reach: its service, its IP on the chosen network and its
/// `__meta_dockerswarm_*` labels as the tasks role gives them for that network.
struct Reachable<'a> {
    task: &'a Task,
    service: &'a Service,
    ip: String,
    meta: BTreeMap<String, String>,
}

/// Every running task with a known service, split into those vigie reaches and those it
/// cannot (no shared network).
fn reachable<'a>(
    snap: &'a Snapshot,
    reach: &Reach,
    wanted: impl Fn(&Service, &Task) -> bool,
) -> (Vec<Reachable<'a>>, Vec<Unreachable>) {
    let services: HashMap<&str, &Service> = snap.services.iter().map(|s| (s.id.as_str(), s)).collect();
    let ingress: Vec<&str> = snap.networks.iter().filter(|n| n.ingress).map(|n| n.id.as_str()).collect();
    let names: HashMap<&str, &str> = snap.networks.iter().map(|n| (n.id.as_str(), n.name.as_str())).collect();
    // The task's own meta labels, without an address (one task per group).
    let one_task = |t: &Task| Snapshot {
        services: snap.services.clone(),
        // Without host-mode ports, so the only target comes from the chosen attachment.
        tasks: vec![Task {
            networks_attachments: Vec::new(),
            status: super::model::TaskStatus { port_status: Default::default(), ..t.status.clone() },
            ..t.clone()
        }],
        nodes: snap.nodes.clone(),
        networks: snap.networks.clone(),
    };
    let mut out = Vec::new();
    let mut unreachable = Vec::new();
    for t in &snap.tasks {
        if t.desired_state != "running" {
            continue;
        }
        let Some(s) = services.get(t.service_id.as_str()) else { continue };
        if !wanted(s, t) {
            continue;
        }
        let chosen = t.networks_attachments.iter().find(|a| {
            let id = a.network.id.as_str();
            if reach.networks.is_empty() {
                !ingress.contains(&id)
            } else {
                reach.networks.iter().any(|n| n == id || names.get(id).is_some_and(|name| name == n))
            }
        });
        let Some(ip) = chosen.and_then(|a| a.addresses.first()).and_then(|c| c.split('/').next()) else {
            unreachable.push(Unreachable { service: s.spec.name.clone(), task: t.id.clone() });
            continue;
        };
        let mut meta = BTreeMap::new();
        if let Some(first) =
            meta::targets(Role::Tasks, &with_attachment(one_task(t), chosen.cloned()), 0).into_iter().next()
        {
            for l in first.iter().filter(|l| l.name.starts_with(PREFIX)) {
                meta.insert(l.name.clone(), l.value.clone());
            }
        }
        out.push(Reachable { task: t, service: s, ip: ip.to_string(), meta });
    }
    (out, unreachable)
}

fn join(ip: &str, port: &str) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// One target per running task vigie reaches, on the port its `vigie.port` (or
/// `prometheus.io/port`) label names, else 80, with the tasks role's meta labels: the
/// input of a `Monitor`'s selection rules.
pub fn running_tasks(snap: &Snapshot, reach: &Reach) -> Vec<TargetGroup> {
    let (tasks, _) = reachable(snap, reach, |_, _| true);
    tasks
        .into_iter()
        .map(|r| {
            let port = label(r.service, r.task, &["vigie.port", "prometheus.io/port"])
                .filter(|p| p.parse::<u16>().is_ok())
                .unwrap_or("80");
            let mut m = r.meta;
            m.insert(crate::discovery::ADDRESS_LABEL.into(), join(&r.ip, port));
            TargetGroup {
                source: format!("swarm/task/{}", r.task.id),
                targets: vec![Labels::from_pairs(m)],
                labels: Labels::empty(),
            }
        })
        .collect()
}

/// Targets for every running task of every labelled service, and the tasks vigie cannot
/// reach (for a warning).
pub fn targets(snap: &Snapshot, reach: &Reach) -> (Vec<TargetGroup>, Vec<Unreachable>) {
    let nodes: HashMap<&str, &str> =
        snap.nodes.iter().map(|n| (n.id.as_str(), n.description.hostname.as_str())).collect();
    let (tasks, unreachable) = reachable(snap, reach, wants_scrape);
    let mut groups = Vec::new();
    for Reachable { task: t, service: s, ip, meta } in tasks {
        let mut common = meta;
        let job = label(s, t, &["vigie.job"]).unwrap_or(&s.spec.name).to_string();
        common.insert("job".into(), job);
        common.insert("swarm_service".into(), s.spec.name.clone());
        if let Some(stack) = s.spec.labels.get("com.docker.stack.namespace") {
            common.insert("swarm_stack".into(), stack.clone());
        }
        if let Some(node) = nodes.get(t.node_id.as_str()) {
            common.insert("swarm_node".into(), node.to_string());
        }
        common.insert("swarm_task_slot".into(), t.slot.to_string());
        if let Some(p) = label(s, t, &["vigie.path", "prometheus.io/path"]) {
            common.insert(crate::scrape::target::METRICS_PATH_LABEL.into(), p.to_string());
        }
        if let Some(p) = label(s, t, &["vigie.scheme", "prometheus.io/scheme"]) {
            common.insert(crate::scrape::target::SCHEME_LABEL.into(), p.to_string());
        }
        if let Some(p) = label(s, t, &["vigie.interval"]) {
            common.insert(crate::scrape::target::SCRAPE_INTERVAL_LABEL.into(), p.to_string());
            // A timeout may not exceed the interval: shorter intervals bring the timeout down.
            if let Ok(d) = crate::config::PromDuration::parse(p)
                && d.0 < std::time::Duration::from_secs(10)
            {
                common.insert("__scrape_timeout__".into(), p.to_string());
            }
        }
        for (k, v) in s.spec.labels.iter() {
            if let Some(name) = k.strip_prefix("vigie.params.") {
                common.insert(format!("{}{name}", crate::scrape::target::PARAM_PREFIX), v.clone());
            }
        }
        let mut targets = Vec::new();
        for (name, port) in ports(s, t) {
            let mut m = common.clone();
            m.insert(crate::discovery::ADDRESS_LABEL.into(), join(&ip, &port));
            if !name.is_empty() {
                m.insert("port_name".into(), name);
            }
            targets.push(Labels::from_pairs(m));
        }
        groups.push(TargetGroup { source: format!("swarm/task/{}", t.id), targets, labels: Labels::empty() });
    }
    (groups, unreachable)
}

fn with_attachment(mut snap: Snapshot, a: Option<super::model::NetworkAttachment>) -> Snapshot {
    if let (Some(t), Some(a)) = (snap.tasks.first_mut(), a) {
        t.networks_attachments = vec![a];
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::swarm::model::*;

    fn service(id: &str, name: &str, labels: &[(&str, &str)]) -> Service {
        let mut s = Service { id: id.into(), ..Default::default() };
        s.spec.name = name.into();
        s.spec.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.spec.mode.replicated = Some(serde_json::json!({"Replicas": 1}));
        s
    }

    fn task(
        id: &str,
        service: &str,
        desired: &str,
        slot: i64,
        nets: &[(&str, &str)],
        container: &[(&str, &str)],
    ) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            node_id: "node1".into(),
            slot,
            desired_state: desired.into(),
            status: TaskStatus { state: desired.into(), ..Default::default() },
            spec: TaskSpec {
                container_spec: Some(ContainerSpec {
                    labels: container.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    ..Default::default()
                }),
            },
            networks_attachments: nets
                .iter()
                .map(|(net, addr)| NetworkAttachment {
                    network: NetworkRef { id: net.to_string() },
                    addresses: vec![addr.to_string()],
                })
                .collect(),
        }
    }

    fn snapshot() -> Snapshot {
        let mut node = Node { id: "node1".into(), ..Default::default() };
        node.description.hostname = "worker-1".into();
        node.status.addr = "192.168.0.10".into();
        let net = |id: &str, name: &str, ingress: bool| Network {
            id: id.into(),
            name: name.into(),
            scope: "swarm".into(),
            ingress,
            ..Default::default()
        };
        Snapshot {
            services: vec![
                service(
                    "s1",
                    "shop_web",
                    &[
                        ("vigie.scrape", "true"),
                        ("vigie.port", "9100"),
                        ("vigie.port.admin", "9101"),
                        ("vigie.path", "/m"),
                        ("vigie.interval", "5s"),
                        ("vigie.params.module", "http"),
                        ("com.docker.stack.namespace", "shop"),
                    ],
                ),
                service("s2", "db", &[]),
                service("s3", "plain", &[]),
                service("s4", "hidden", &[("vigie.scrape", "true"), ("vigie.port", "1")]),
            ],
            tasks: vec![
                task("t1", "s1", "running", 1, &[("ing", "10.0.0.5/24"), ("mon", "10.0.1.5/24")], &[]),
                task("t2", "s1", "shutdown", 1, &[("mon", "10.0.1.4/24")], &[]),
                task(
                    "t3",
                    "s2",
                    "running",
                    1,
                    &[("mon", "10.0.1.9/24")],
                    &[("prometheus.io/scrape", "true"), ("prometheus.io/port", "9200"), ("vigie.job", "database")],
                ),
                task("t4", "s3", "running", 1, &[("mon", "10.0.1.10/24")], &[]),
                task("t5", "s4", "running", 1, &[("other", "10.0.9.1/24")], &[]),
            ],
            nodes: vec![node],
            networks: vec![net("ing", "ingress", true), net("mon", "vigie-mon", false), net("other", "private", false)],
        }
    }

    fn find<'a>(groups: &'a [TargetGroup], source: &str) -> &'a TargetGroup {
        groups.iter().find(|g| g.source == source).unwrap_or_else(|| panic!("no group {source}: {groups:?}"))
    }

    #[test]
    fn labelled_running_tasks_on_vigies_network() {
        let (groups, unreachable) = targets(&snapshot(), &Reach { networks: vec!["vigie-mon".into()] });
        let sources: Vec<&str> = groups.iter().map(|g| g.source.as_str()).collect();
        assert_eq!(
            sources,
            ["swarm/task/t1", "swarm/task/t3"],
            "shutdown, unlabelled and unreachable tasks are left out"
        );
        assert_eq!(unreachable, vec![Unreachable { service: "hidden".into(), task: "t5".into() }]);
        let web = find(&groups, "swarm/task/t1");
        assert_eq!(web.targets.len(), 2);
        let main = &web.targets[0];
        for (k, v) in [
            ("__address__", "10.0.1.5:9100"),
            ("job", "shop_web"),
            ("swarm_service", "shop_web"),
            ("swarm_stack", "shop"),
            ("swarm_node", "worker-1"),
            ("swarm_task_slot", "1"),
            ("__metrics_path__", "/m"),
            ("__scrape_interval__", "5s"),
            ("__scrape_timeout__", "5s"),
            ("__param_module", "http"),
            ("__meta_dockerswarm_task_id", "t1"),
            ("__meta_dockerswarm_network_name", "vigie-mon"),
            ("__meta_dockerswarm_node_hostname", "worker-1"),
            ("__meta_dockerswarm_service_label_com_docker_stack_namespace", "shop"),
        ] {
            assert_eq!(main.get(k), Some(v), "{k} in {main:?}");
        }
        assert_eq!(web.targets[1].get("__address__"), Some("10.0.1.5:9101"));
        assert_eq!(web.targets[1].get("port_name"), Some("admin"));
        let db = &find(&groups, "swarm/task/t3").targets[0];
        assert_eq!((db.get("__address__"), db.get("job")), (Some("10.0.1.9:9200"), Some("database")));
        assert_eq!(db.get("swarm_stack"), None);
    }

    /// On the recorded daemon state (tests/swarm): `web` (vigie.* labels, 2 running tasks
    /// on vigie-mon, vigie-apps and ingress) and `db` (prometheus.io labels, one running
    /// task and one shut down) are found; agent, plain, job and the failing ones are not.
    #[test]
    fn recorded_swarm() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/swarm/fixtures");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let snap = Snapshot {
            services: serde_json::from_str(&read("services.json")).unwrap(),
            tasks: serde_json::from_str(&read("tasks.json")).unwrap(),
            nodes: serde_json::from_str(&read("nodes.json")).unwrap(),
            networks: serde_json::from_str(&read("networks.json")).unwrap(),
        };
        let (groups, unreachable) = targets(&snap, &Reach { networks: vec!["vigie-mon".into()] });
        assert!(unreachable.is_empty(), "{unreachable:?}");
        let mut got: Vec<(String, String, String)> = groups
            .iter()
            .flat_map(|g| g.targets.iter())
            .map(|t| {
                let g = |k: &str| t.get(k).unwrap_or("").to_string();
                (g("job"), g("__address__"), g("swarm_stack"))
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("db".to_string(), "10.0.1.10:9200".to_string(), String::new()),
                ("web".into(), "10.0.1.3:9100".into(), "shop".into()),
                ("web".into(), "10.0.1.4:9100".into(), "shop".into()),
            ]
        );
    }

    #[test]
    fn without_a_known_network_any_non_ingress_one_is_used() {
        let (groups, unreachable) = targets(&snapshot(), &Reach::default());
        assert!(unreachable.is_empty());
        assert_eq!(find(&groups, "swarm/task/t1").targets[0].get("__address__"), Some("10.0.1.5:9100"));
        assert_eq!(find(&groups, "swarm/task/t5").targets[0].get("__address__"), Some("10.0.9.1:1"));
    }
}
