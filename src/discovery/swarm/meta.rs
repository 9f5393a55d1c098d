//! Targets with Prometheus's `__meta_dockerswarm_*` labels for the roles `services`,
//! `tasks` and `nodes`, built from one [`Snapshot`] exactly as `dockerswarm_sd_configs`
//! builds them (prometheus/prometheus `discovery/moby/{services,tasks,nodes,network}.go`),
//! so relabeling written for Prometheus works unchanged. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use super::model::{Network, Node, PortConfig, Service, Snapshot};
use crate::model::Labels;

pub const PREFIX: &str = "__meta_dockerswarm_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Services,
    Tasks,
    Nodes,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "services" => Ok(Role::Services),
            "tasks" => Ok(Role::Tasks),
            "nodes" => Ok(Role::Nodes),
            other => Err(format!("invalid role {other:?}, expected tasks, services, or nodes")),
        }
    }
}

/// Prometheus's `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]`
/// becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

type LabelMap = BTreeMap<String, String>;

fn put(m: &mut LabelMap, k: &str, v: impl Into<String>) {
    m.insert(format!("{PREFIX}{k}"), v.into());
}

fn put_labels(m: &mut LabelMap, prefix: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        m.insert(format!("{PREFIX}{prefix}{}", sanitize(k)), v.clone());
    }
}

fn network_labels(networks: &[Network]) -> HashMap<&str, LabelMap> {
    networks
        .iter()
        .map(|n| {
            let mut m = LabelMap::new();
            put(&mut m, "network_id", &n.id);
            put(&mut m, "network_name", &n.name);
            put(&mut m, "network_scope", &n.scope);
            put(&mut m, "network_internal", n.internal.to_string());
            put(&mut m, "network_ingress", n.ingress.to_string());
            if let Some(l) = &n.labels {
                put_labels(&mut m, "network_label_", l);
            }
            (n.id.as_str(), m)
        })
        .collect()
}

/// `host:port`, with brackets for IPv6 (Go's `net.JoinHostPort`).
fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The IP of a CIDR (`10.0.1.5/24` → `10.0.1.5`); `None` if it does not parse.
fn cidr_ip(cidr: &str) -> Option<String> {
    let ip = cidr.split('/').next()?;
    ip.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

fn target(mut m: LabelMap, address: String) -> Labels {
    m.insert(crate::discovery::ADDRESS_LABEL.to_string(), address);
    Labels::from_pairs(m)
}

fn tcp(ports: &[PortConfig]) -> impl Iterator<Item = &PortConfig> {
    ports.iter().filter(|p| p.protocol == "tcp")
}

fn service_mode_labels(s: &Service) -> LabelMap {
    let mut m = LabelMap::new();
    put(&mut m, "service_id", &s.id);
    put(&mut m, "service_name", &s.spec.name);
    put(&mut m, "service_mode", s.mode());
    put_labels(&mut m, "service_label_", &s.spec.labels);
    m
}

fn node_labels(n: &Node) -> LabelMap {
    let mut m = LabelMap::new();
    put(&mut m, "node_id", &n.id);
    put(&mut m, "node_role", &n.spec.role);
    put(&mut m, "node_address", &n.status.addr);
    put(&mut m, "node_availability", &n.spec.availability);
    put(&mut m, "node_hostname", &n.description.hostname);
    put(&mut m, "node_platform_architecture", &n.description.platform.architecture);
    put(&mut m, "node_platform_os", &n.description.platform.os);
    put(&mut m, "node_status", &n.status.state);
    put_labels(&mut m, "node_label_", &n.spec.labels);
    m
}

/// The targets of `role`; `port` is used where a target has no TCP port. Addresses that
/// do not parse are skipped (Prometheus fails the whole refresh instead).
pub fn targets(role: Role, snap: &Snapshot, port: u16) -> Vec<Labels> {
    match role {
        Role::Services => services(snap, port),
        Role::Tasks => tasks(snap, port),
        Role::Nodes => nodes(snap, port),
    }
}

fn services(snap: &Snapshot, port: u16) -> Vec<Labels> {
    let nets = network_labels(&snap.networks);
    let mut out = Vec::new();
    for s in &snap.services {
        let mut common = service_mode_labels(s);
        put(&mut common, "service_task_container_hostname", &s.spec.task_template.container_spec.hostname);
        put(&mut common, "service_task_container_image", &s.spec.task_template.container_spec.image);
        if let Some(u) = &s.update_status {
            put(&mut common, "service_updating_status", &u.state);
        }
        for vip in &s.endpoint.virtual_ips {
            let Some(ip) = cidr_ip(&vip.addr) else { continue };
            let mut base = common.clone();
            if let Some(n) = nets.get(vip.network_id.as_str()) {
                base.extend(n.clone());
            }
            let mut added = false;
            for p in tcp(&s.endpoint.ports) {
                let mut m = base.clone();
                put(&mut m, "service_endpoint_port_name", &p.name);
                put(&mut m, "service_endpoint_port_publish_mode", &p.publish_mode);
                out.push(target(m, join_host_port(&ip, p.published_port)));
                added = true;
            }
            if !added {
                out.push(target(base, join_host_port(&ip, port)));
            }
        }
    }
    out
}

fn tasks(snap: &Snapshot, port: u16) -> Vec<Labels> {
    let nets = network_labels(&snap.networks);
    let services: HashMap<&str, &Service> = snap.services.iter().map(|s| (s.id.as_str(), s)).collect();
    let nodes: HashMap<&str, LabelMap> = snap.nodes.iter().map(|n| (n.id.as_str(), node_labels(n))).collect();
    let mut out = Vec::new();
    for t in &snap.tasks {
        let mut common = LabelMap::new();
        put(&mut common, "task_id", &t.id);
        put(&mut common, "task_desired_state", &t.desired_state);
        put(&mut common, "task_state", &t.status.state);
        put(&mut common, "task_slot", t.slot.to_string());
        if let Some(c) = &t.status.container_status {
            put(&mut common, "task_container_id", &c.container_id);
        }
        if let Some(c) = &t.spec.container_spec {
            put_labels(&mut common, "container_label_", &c.labels);
        }
        let service = services.get(t.service_id.as_str());
        if let Some(s) = service {
            common.extend(service_mode_labels(s));
        }
        if let Some(n) = nodes.get(t.node_id.as_str()) {
            common.extend(n.clone());
        }
        let node_address = common.get(&format!("{PREFIX}node_address")).cloned().unwrap_or_default();
        for p in tcp(&t.status.port_status.ports) {
            let mut m = common.clone();
            put(&mut m, "task_port_publish_mode", &p.publish_mode);
            out.push(target(m, join_host_port(&node_address, p.published_port)));
        }
        let service_ports: &[PortConfig] = service.map(|s| s.endpoint.ports.as_slice()).unwrap_or(&[]);
        for att in &t.networks_attachments {
            for address in &att.addresses {
                let Some(ip) = cidr_ip(address) else { continue };
                let mut base = common.clone();
                if let Some(n) = nets.get(att.network.id.as_str()) {
                    base.extend(n.clone());
                }
                let mut added = false;
                for p in tcp(service_ports) {
                    let mut m = base.clone();
                    put(&mut m, "task_port_publish_mode", &p.publish_mode);
                    out.push(target(m, join_host_port(&ip, p.published_port)));
                    added = true;
                }
                if !added {
                    out.push(target(base, join_host_port(&ip, port)));
                }
            }
        }
    }
    out
}

fn nodes(snap: &Snapshot, port: u16) -> Vec<Labels> {
    snap.nodes
        .iter()
        .map(|n| {
            let mut m = node_labels(n);
            put(&mut m, "node_engine_version", &n.description.engine.engine_version);
            if let Some(ms) = &n.manager_status {
                put(&mut m, "node_manager_leader", ms.leader.to_string());
                put(&mut m, "node_manager_reachability", &ms.reachability);
                put(&mut m, "node_manager_address", &ms.addr);
            }
            target(m, join_host_port(&n.status.addr, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/swarm/fixtures").join(name);
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            services: fixture("services.json"),
            tasks: fixture("tasks.json"),
            nodes: fixture("nodes.json"),
            networks: fixture("networks.json"),
        }
    }

    /// What Prometheus 2.42's `dockerswarm_sd_configs` discovered from the same daemon
    /// state (tests/swarm/README.md), as sorted `__address__` + `__meta_*` maps without
    /// empty values (vigie's label sets cannot hold an empty value; relabeling reads a
    /// missing label as empty, so the two are the same to rules).
    fn expected(role: &str) -> Vec<BTreeMap<String, String>> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/swarm/expected_{role}.json"));
        let v: Vec<BTreeMap<String, String>> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let mut v: Vec<BTreeMap<String, String>> = v
            .into_iter()
            .map(|m| {
                m.into_iter()
                    .filter(|(k, v)| (k == "__address__" || k.starts_with("__meta_")) && !v.is_empty())
                    .collect()
            })
            .collect();
        v.sort();
        v
    }

    /// Equal lists, or a failure naming only the targets that differ.
    fn assert_same(have: &[BTreeMap<String, String>], want: &[BTreeMap<String, String>]) {
        let extra: Vec<_> = have.iter().filter(|t| !want.contains(t)).collect();
        let missing: Vec<_> = want.iter().filter(|t| !have.contains(t)).collect();
        assert!(
            extra.is_empty() && missing.is_empty() && have.len() == want.len(),
            "vigie only: {extra:#?}\nPrometheus only: {missing:#?}\n({} vs {} targets)",
            have.len(),
            want.len()
        );
    }

    fn got(role: Role) -> Vec<BTreeMap<String, String>> {
        let mut v: Vec<BTreeMap<String, String>> = targets(role, &snapshot(), 9999)
            .into_iter()
            .map(|l| l.iter().map(|l| (l.name.clone(), l.value.clone())).collect())
            .collect();
        v.sort();
        // Docker lists a host-mode port once per address family; identical targets are one
        // target to the scrape layer, as in Prometheus's target list.
        v.dedup();
        v
    }

    #[test]
    fn services_role_matches_prometheus() {
        let (want, have) = (expected("services"), got(Role::Services));
        assert!(!want.is_empty());
        assert_same(&have, &want);
    }

    #[test]
    fn tasks_role_matches_prometheus() {
        let (want, have) = (expected("tasks"), got(Role::Tasks));
        assert!(want.len() > 3, "{}", want.len());
        assert_same(&have, &want);
    }

    #[test]
    fn nodes_role_matches_prometheus() {
        let (want, have) = (expected("nodes"), got(Role::Nodes));
        assert!(!want.is_empty());
        assert_same(&have, &want);
    }

    #[test]
    fn sanitizes_like_prometheus() {
        assert_eq!(sanitize("com.docker.stack.namespace"), "com_docker_stack_namespace");
        assert_eq!(sanitize("prometheus.io/port"), "prometheus_io_port");
        assert_eq!(Role::parse("pods").unwrap_err(), "invalid role \"pods\", expected tasks, services, or nodes");
    }
}
