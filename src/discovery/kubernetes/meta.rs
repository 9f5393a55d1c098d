//! Targets with Prometheus's `__meta_kubernetes_*` labels for the roles `pod`,
//! `endpointslice`, `service` and `node`, built from Kubernetes objects exactly as
//! `kubernetes_sd_configs` builds them (prometheus/prometheus `discovery/kubernetes/
//! {pod,endpointslice,service,node}.go`), so relabeling written for Prometheus works
//! unchanged. Pure: no I/O; the caller supplies the pod and Service lookups.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, ContainerPort, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::discovery::swarm::meta::sanitize;
use crate::discovery::{ADDRESS_LABEL, TargetGroup};
use crate::model::Labels;

pub const PREFIX: &str = "__meta_kubernetes_";

type LabelMap = BTreeMap<String, String>;

fn put(m: &mut LabelMap, k: &str, v: impl Into<String>) {
    m.insert(format!("{PREFIX}{k}"), v.into());
}

/// `<res>_label_<k>`, `<res>_labelpresent_<k>`, and the same for annotations.
fn object_labels(m: &mut LabelMap, res: &str, meta: &ObjectMeta) {
    for (k, v) in meta.labels.iter().flatten() {
        let k = sanitize(k);
        put(m, &format!("{res}_label_{k}"), v.clone());
        put(m, &format!("{res}_labelpresent_{k}"), "true");
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let k = sanitize(k);
        put(m, &format!("{res}_annotation_{k}"), v.clone());
        put(m, &format!("{res}_annotationpresent_{k}"), "true");
    }
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

fn group(source: String, targets: Vec<LabelMap>, labels: LabelMap) -> TargetGroup {
    TargetGroup {
        source,
        targets: targets.into_iter().map(Labels::from_pairs).collect(),
        labels: Labels::from_pairs(labels),
    }
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// `pod_ip`, `pod_name`, readiness, phase, node, host IP, UID, controller and the pod's
/// labels and annotations (`podLabels`).
pub fn pod_labels(pod: &Pod) -> LabelMap {
    let mut m = LabelMap::new();
    let status = pod.status.as_ref();
    put(&mut m, "pod_name", name_of(&pod.metadata));
    put(&mut m, "pod_ip", status.and_then(|s| s.pod_ip.clone()).unwrap_or_default());
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".into());
    put(&mut m, "pod_ready", ready);
    put(&mut m, "pod_phase", status.and_then(|s| s.phase.clone()).unwrap_or_default());
    put(&mut m, "pod_node_name", pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default());
    put(&mut m, "pod_host_ip", status.and_then(|s| s.host_ip.clone()).unwrap_or_default());
    put(&mut m, "pod_uid", pod.metadata.uid.clone().unwrap_or_default());
    if let Some(c) = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true)) {
        if !c.kind.is_empty() {
            put(&mut m, "pod_controller_kind", c.kind.clone());
        }
        if !c.name.is_empty() {
            put(&mut m, "pod_controller_name", c.name.clone());
        }
    }
    object_labels(&mut m, "pod", &pod.metadata);
    m
}

/// `spec.containers` then `spec.initContainers`, with whether each is an init container.
fn containers(pod: &Pod) -> Vec<(&Container, bool)> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    spec.containers.iter().map(|c| (c, false)).chain(spec.init_containers.iter().flatten().map(|c| (c, true))).collect()
}

fn port_labels(m: &mut LabelMap, c: &Container, p: &ContainerPort, init: bool) {
    put(m, "pod_container_name", c.name.clone());
    put(m, "pod_container_image", c.image.clone().unwrap_or_default());
    put(m, "pod_container_port_name", p.name.clone().unwrap_or_default());
    put(m, "pod_container_port_number", p.container_port.to_string());
    put(m, "pod_container_port_protocol", p.protocol.clone().unwrap_or_default());
    put(m, "pod_container_init", init.to_string());
}

fn container_id(pod: &Pod, name: &str, init: bool) -> String {
    let status = pod.status.as_ref();
    let statuses = if init {
        status.and_then(|s| s.init_container_statuses.as_ref())
    } else {
        status.and_then(|s| s.container_statuses.as_ref())
    };
    statuses.into_iter().flatten().find(|s| s.name == name).and_then(|s| s.container_id.clone()).unwrap_or_default()
}

/// Role `pod`: one target per declared container port (init containers included), one
/// port-less target per container without ports; none while the pod has no IP.
pub fn pod_group(pod: &Pod) -> TargetGroup {
    let source = format!("pod/{}/{}", namespace_of(&pod.metadata), name_of(&pod.metadata));
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    if ip.is_empty() {
        return group(source, Vec::new(), LabelMap::new());
    }
    let mut labels = pod_labels(pod);
    put(&mut labels, "namespace", namespace_of(&pod.metadata));
    let mut targets = Vec::new();
    for (c, init) in containers(pod) {
        let id = container_id(pod, &c.name, init);
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut t = LabelMap::new();
            t.insert(ADDRESS_LABEL.into(), ip.clone());
            put(&mut t, "pod_container_name", c.name.clone());
            put(&mut t, "pod_container_id", id.clone());
            put(&mut t, "pod_container_image", c.image.clone().unwrap_or_default());
            put(&mut t, "pod_container_init", init.to_string());
            targets.push(t);
            continue;
        }
        for p in ports {
            let mut t = LabelMap::new();
            t.insert(ADDRESS_LABEL.into(), join_host_port(&ip, p.container_port));
            port_labels(&mut t, c, p, init);
            put(&mut t, "pod_container_id", id.clone());
            targets.push(t);
        }
    }
    group(source, targets, labels)
}

/// Role `endpointslice`: one target per endpoint address and slice port, with the pod's
/// labels when the endpoint points at a known pod, plus a target for every container port
/// of those pods that no slice port covers.
pub fn endpointslice_group<'a>(
    slice: &EndpointSlice,
    pod: impl Fn(&str, &str) -> Option<&'a Pod>,
    service: impl Fn(&str, &str) -> Option<&'a Service>,
) -> TargetGroup {
    let ns = namespace_of(&slice.metadata);
    let source = format!("endpointslice/{ns}/{}", name_of(&slice.metadata));
    let mut labels = LabelMap::new();
    put(&mut labels, "namespace", ns);
    put(&mut labels, "endpointslice_name", name_of(&slice.metadata));
    put(&mut labels, "endpointslice_address_type", slice.address_type.clone());
    object_labels(&mut labels, "endpointslice", &slice.metadata);
    if let Some(svc_name) = slice.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name"))
        && let Some(svc) = service(ns, svc_name)
    {
        put(&mut labels, "service_name", name_of(&svc.metadata));
        object_labels(&mut labels, "service", &svc.metadata);
    }
    let mut targets = Vec::new();
    // Pods seen through an endpoint, with the slice ports that already gave them a target.
    let mut seen: Vec<(&'a Pod, Vec<i32>)> = Vec::new();
    let mut seen_index: HashMap<(String, String), usize> = HashMap::new();
    let ports = slice.ports.as_deref().unwrap_or_default();
    for ep in slice.endpoints.iter().flatten() {
        for port in ports {
            for addr in &ep.addresses {
                let mut t = LabelMap::new();
                let address = match port.port {
                    Some(p) => join_host_port(addr, p),
                    None => addr.to_string(),
                };
                t.insert(ADDRESS_LABEL.into(), address);
                if let Some(n) = &port.name {
                    put(&mut t, "endpointslice_port_name", n.clone());
                }
                if let Some(p) = &port.protocol {
                    put(&mut t, "endpointslice_port_protocol", p.clone());
                }
                if let Some(p) = port.port {
                    put(&mut t, "endpointslice_port", p.to_string());
                }
                if let Some(p) = &port.app_protocol {
                    put(&mut t, "endpointslice_port_app_protocol", p.clone());
                }
                if let Some(c) = &ep.conditions {
                    for (k, v) in [("ready", c.ready), ("serving", c.serving), ("terminating", c.terminating)] {
                        if let Some(v) = v {
                            put(&mut t, &format!("endpointslice_endpoint_conditions_{k}"), v.to_string());
                        }
                    }
                }
                if let Some(h) = &ep.hostname {
                    put(&mut t, "endpointslice_endpoint_hostname", h.clone());
                }
                if let Some(r) = &ep.target_ref {
                    put(&mut t, "endpointslice_address_target_kind", r.kind.clone().unwrap_or_default());
                    put(&mut t, "endpointslice_address_target_name", r.name.clone().unwrap_or_default());
                }
                if let Some(n) = &ep.node_name {
                    put(&mut t, "endpointslice_endpoint_node_name", n.clone());
                }
                if let Some(z) = &ep.zone {
                    put(&mut t, "endpointslice_endpoint_zone", z.clone());
                }
                for (k, v) in ep.deprecated_topology.iter().flatten() {
                    let k = sanitize(k);
                    put(&mut t, &format!("endpointslice_endpoint_topology_{k}"), v.clone());
                    put(&mut t, &format!("endpointslice_endpoint_topology_present_{k}"), "true");
                }
                let p = ep
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| pod(r.namespace.as_deref().unwrap_or(ns), r.name.as_deref().unwrap_or_default()));
                let Some(p) = p else {
                    targets.push(t);
                    continue;
                };
                let key = (namespace_of(&p.metadata).to_string(), name_of(&p.metadata).to_string());
                let idx = *seen_index.entry(key).or_insert_with(|| {
                    seen.push((p, Vec::new()));
                    seen.len() - 1
                });
                t.extend(pod_labels(p));
                if let Some(number) = port.port {
                    // As Prometheus: the last container declaring the port wins.
                    for (c, init) in containers(p) {
                        if let Some(cp) = c.ports.iter().flatten().find(|cp| cp.container_port == number) {
                            port_labels(&mut t, c, cp, init);
                        }
                    }
                    seen[idx].1.push(number);
                }
                targets.push(t);
            }
        }
    }
    for (p, covered) in &seen {
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
        for (c, init) in containers(p) {
            for cp in c.ports.iter().flatten() {
                if covered.contains(&cp.container_port) {
                    continue;
                }
                let mut t = pod_labels(p);
                t.insert(ADDRESS_LABEL.into(), join_host_port(&ip, cp.container_port));
                port_labels(&mut t, c, cp, init);
                targets.push(t);
            }
        }
    }
    group(source, targets, labels)
}

/// Role `service`: one target per Service port at `<name>.<namespace>.svc:<port>`.
pub fn service_group(svc: &Service) -> TargetGroup {
    let ns = namespace_of(&svc.metadata);
    let name = name_of(&svc.metadata);
    let mut labels = LabelMap::new();
    put(&mut labels, "namespace", ns);
    put(&mut labels, "service_name", name);
    object_labels(&mut labels, "service", &svc.metadata);
    let spec = svc.spec.clone().unwrap_or_default();
    let kind = spec.type_.clone().unwrap_or_default();
    let mut targets = Vec::new();
    for p in spec.ports.iter().flatten() {
        let mut t = LabelMap::new();
        t.insert(ADDRESS_LABEL.into(), join_host_port(&format!("{name}.{ns}.svc"), p.port));
        put(&mut t, "service_port_name", p.name.clone().unwrap_or_default());
        put(&mut t, "service_port_number", p.port.to_string());
        put(&mut t, "service_port_protocol", p.protocol.clone().unwrap_or_default());
        put(&mut t, "service_type", kind.clone());
        if kind == "ExternalName" {
            put(&mut t, "service_external_name", spec.external_name.clone().unwrap_or_default());
        } else {
            put(&mut t, "service_cluster_ip", spec.cluster_ip.clone().unwrap_or_default());
        }
        if kind == "LoadBalancer" {
            put(&mut t, "service_loadbalancer_ip", spec.load_balancer_ip.clone().unwrap_or_default());
        }
        targets.push(t);
    }
    group(format!("svc/{ns}/{name}"), targets, labels)
}

/// The order in which node address types are preferred for `__address__`.
const NODE_ADDRESS_ORDER: [&str; 6] =
    ["InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname"];

/// Role `node`: the kubelet of each node, `instance` set to the node name; no group for a
/// node without addresses.
pub fn node_group(node: &Node) -> Option<TargetGroup> {
    let name = name_of(&node.metadata);
    let status = node.status.clone().unwrap_or_default();
    let addresses = status.addresses.unwrap_or_default();
    let address = NODE_ADDRESS_ORDER
        .iter()
        .find_map(|kind| addresses.iter().find(|a| a.type_ == *kind).map(|a| a.address.clone()))?;
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|k| k.port).unwrap_or(0);
    let mut labels = LabelMap::new();
    put(&mut labels, "node_name", name);
    put(&mut labels, "node_provider_id", node.spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap_or_default());
    object_labels(&mut labels, "node", &node.metadata);
    for a in &addresses {
        labels.entry(format!("{PREFIX}node_address_{}", a.type_)).or_insert_with(|| a.address.clone());
    }
    let mut t = LabelMap::new();
    t.insert(ADDRESS_LABEL.into(), join_host_port(&address, port));
    t.insert("instance".into(), name.to_string());
    Some(group(format!("node/{name}"), vec![t], labels))
}

#[cfg(test)]
mod tests {
    //! Targets from the recorded objects in `tests/kubernetes/objects`, against the label
    //! sets of `tests/kubernetes/expected_<role>.json` (Prometheus 2.42's rules, see the
    //! README there). Labels Prometheus added after 2.42 are left out of the comparison.
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn items<T: serde::de::DeserializeOwned>(file: &str, kind: &str) -> Vec<T> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/objects");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == kind)
            .map(|i| serde_json::from_value(i.clone()).unwrap())
            .collect()
    }

    /// Newer than 2.42: the slices' own labels (2.48), endpoint node and zone (2.52), the
    /// init flag on endpoint roles (3.0).
    fn newer_than_oracle(role: &str, name: &str) -> bool {
        let n = name.trim_start_matches(PREFIX);
        role == "endpointslice"
            && (n.starts_with("endpointslice_label")
                || n.starts_with("endpointslice_annotation")
                || n == "endpointslice_endpoint_node_name"
                || n == "endpointslice_endpoint_zone"
                || n == "pod_container_init")
    }

    fn flatten(role: &str, groups: &[TargetGroup]) -> BTreeSet<Vec<(String, String)>> {
        let mut out = BTreeSet::new();
        for g in groups {
            for t in &g.targets {
                let mut m: BTreeMap<String, String> = BTreeMap::new();
                for l in g.labels.iter().chain(t.iter()) {
                    m.insert(l.name.clone(), l.value.clone());
                }
                // Init containers' ports became endpointslice targets in 3.0.
                let init = format!("{PREFIX}pod_container_init");
                if role == "endpointslice" && m.get(&init).is_some_and(|v| v == "true") {
                    continue;
                }
                // An empty value is no label (Prometheus drops them before showing them).
                m.retain(|k, v| !v.is_empty() && !newer_than_oracle(role, k));
                out.insert(m.into_iter().collect());
            }
        }
        out
    }

    fn expected(role: &str) -> BTreeSet<Vec<(String, String)>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/kubernetes/expected_{role}.json"));
        let v: Vec<BTreeMap<String, String>> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v.into_iter().map(|m| m.into_iter().filter(|(_, v)| !v.is_empty()).collect()).collect()
    }

    fn assert_same(role: &str, have: BTreeSet<Vec<(String, String)>>) {
        let want = expected(role);
        let missing: Vec<_> = want.difference(&have).collect();
        let extra: Vec<_> = have.difference(&want).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{role}: missing {missing:#?}\nextra {extra:#?}");
    }

    #[test]
    fn pod_role_matches_prometheus() {
        let pods: Vec<Pod> = items("20-pods.json", "Pod");
        assert_same("pod", flatten("pod", &pods.iter().map(pod_group).collect::<Vec<_>>()));
    }

    #[test]
    fn endpointslice_role_matches_prometheus() {
        let pods: Vec<Pod> = items("20-pods.json", "Pod");
        let services: Vec<Service> = items("30-services.json", "Service");
        let slices: Vec<EndpointSlice> = items("50-endpointslices.json", "EndpointSlice");
        let key = |m: &ObjectMeta, ns: &str, name: &str| namespace_of(m) == ns && name_of(m) == name;
        let groups: Vec<TargetGroup> = slices
            .iter()
            .map(|s| {
                endpointslice_group(
                    s,
                    |ns, n| pods.iter().find(|p| key(&p.metadata, ns, n)),
                    |ns, n| services.iter().find(|v| key(&v.metadata, ns, n)),
                )
            })
            .collect();
        assert_same("endpointslice", flatten("endpointslice", &groups));
    }

    #[test]
    fn service_role_matches_prometheus() {
        let services: Vec<Service> = items("30-services.json", "Service");
        assert_same("service", flatten("service", &services.iter().map(service_group).collect::<Vec<_>>()));
    }

    #[test]
    fn node_role_matches_prometheus() {
        let nodes: Vec<Node> = items("10-nodes.json", "Node");
        assert_same("node", flatten("node", &nodes.iter().filter_map(node_group).collect::<Vec<_>>()));
    }
}
