#!/usr/bin/env python3
"""What Prometheus v2.42.0's kubernetes_sd_configs discovers from a set of objects.

A line-by-line transliteration of prometheus/prometheus v2.42.0
discovery/kubernetes/{pod,endpoints,endpointslice,service,node}.go (build* functions, with
namespaces omitted, no selectors and no attach_metadata), followed by what
scrape.PopulateLabels does to the discovered labels: it merges group and target labels (the
target's win) and, because labels.NewBuilder marks empty-valued labels as deleted, drops every
label whose value is empty. The result is what /api/v1/targets shows as `discoveredLabels`,
minus the labels that come from the scrape config (job, __scheme__, __metrics_path__,
__scrape_interval__, __scrape_timeout__).

It exists because Debian's Prometheus is built without Kubernetes SD (see README.md); oracle.py
checks it against a live engine. Standard library only.

    python3 prometheus_model.py http://127.0.0.1:PORT   # prints {role: [label sets]} as JSON
"""

import json
import re
import sys
import urllib.request

PREFIX = "__meta_kubernetes_"
NS = PREFIX + "namespace"


def sanitize(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def join_host_port(host, port):
    # Go's net.JoinHostPort: brackets when the host contains a colon
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def key(o):
    md = o["metadata"]
    return (md.get("namespace", ""), md["name"])


# --- pod.go ---

def pod_labels(pod):
    md, spec, st = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    ls = {
        PREFIX + "pod_name": md["name"],
        PREFIX + "pod_ip": st.get("podIP", ""),
        PREFIX + "pod_ready": pod_ready(pod),
        PREFIX + "pod_phase": st.get("phase", ""),
        PREFIX + "pod_node_name": spec.get("nodeName", ""),
        PREFIX + "pod_host_ip": st.get("hostIP", ""),
        PREFIX + "pod_uid": md.get("uid", ""),
    }
    for ref in md.get("ownerReferences", []) or []:
        if ref.get("controller"):
            if ref.get("kind"):
                ls[PREFIX + "pod_controller_kind"] = ref["kind"]
            if ref.get("name"):
                ls[PREFIX + "pod_controller_name"] = ref["name"]
            break
    for k, v in (md.get("labels") or {}).items():
        ln = sanitize(k)
        ls[PREFIX + "pod_label_" + ln] = v
        ls[PREFIX + "pod_labelpresent_" + ln] = "true"
    for k, v in (md.get("annotations") or {}).items():
        ln = sanitize(k)
        ls[PREFIX + "pod_annotation_" + ln] = v
        ls[PREFIX + "pod_annotationpresent_" + ln] = "true"
    return ls


def pod_ready(pod):
    for c in pod.get("status", {}).get("conditions", []) or []:
        if c.get("type") == "Ready":
            return c.get("status", "").lower()
    return "unknown"


def container_id(statuses, name):
    for s in statuses or []:
        if s.get("name") == name:
            return s.get("containerID", "")
    return ""


def build_pod(pod):
    st = pod.get("status", {})
    ip = st.get("podIP", "")
    if not ip:
        return None
    labels = pod_labels(pod)
    labels[NS] = pod["metadata"].get("namespace", "")
    spec = pod.get("spec", {})
    containers = list(spec.get("containers") or [])
    n_main = len(containers)
    containers += list(spec.get("initContainers") or [])
    targets = []
    for i, c in enumerate(containers):
        is_init = i >= n_main
        cid = container_id(st.get("initContainerStatuses") if is_init else st.get("containerStatuses"), c["name"])
        if not c.get("ports"):
            targets.append({
                "__address__": ip,
                PREFIX + "pod_container_name": c["name"],
                PREFIX + "pod_container_id": cid,
                PREFIX + "pod_container_image": c.get("image", ""),
                PREFIX + "pod_container_init": "true" if is_init else "false",
            })
            continue
        for p in c["ports"]:
            port = str(p["containerPort"])
            targets.append({
                "__address__": join_host_port(ip, port),
                PREFIX + "pod_container_name": c["name"],
                PREFIX + "pod_container_id": cid,
                PREFIX + "pod_container_image": c.get("image", ""),
                PREFIX + "pod_container_port_number": port,
                PREFIX + "pod_container_port_name": p.get("name", ""),
                PREFIX + "pod_container_port_protocol": p.get("protocol", ""),
                PREFIX + "pod_container_init": "true" if is_init else "false",
            })
    return labels, targets


# --- service.go ---

def service_labels(svc):
    md = svc["metadata"]
    ls = {PREFIX + "service_name": md["name"], NS: md.get("namespace", "")}
    for k, v in (md.get("labels") or {}).items():
        ln = sanitize(k)
        ls[PREFIX + "service_label_" + ln] = v
        ls[PREFIX + "service_labelpresent_" + ln] = "true"
    for k, v in (md.get("annotations") or {}).items():
        ln = sanitize(k)
        ls[PREFIX + "service_annotation_" + ln] = v
        ls[PREFIX + "service_annotationpresent_" + ln] = "true"
    return ls


def build_service(svc):
    labels = service_labels(svc)
    md, spec = svc["metadata"], svc.get("spec", {})
    targets = []
    for p in spec.get("ports") or []:
        t = {
            "__address__": join_host_port(f"{md['name']}.{md.get('namespace', '')}.svc", str(p["port"])),
            PREFIX + "service_port_name": p.get("name", ""),
            PREFIX + "service_port_number": str(p["port"]),
            PREFIX + "service_port_protocol": p.get("protocol", ""),
            PREFIX + "service_type": spec.get("type", ""),
        }
        if spec.get("type") == "ExternalName":
            t[PREFIX + "service_external_name"] = spec.get("externalName", "")
        else:
            t[PREFIX + "service_cluster_ip"] = spec.get("clusterIP", "")
        if spec.get("type") == "LoadBalancer":
            t[PREFIX + "service_loadbalancer_ip"] = spec.get("loadBalancerIP", "")
        targets.append(t)
    return labels, targets


# --- endpoints.go ---

def resolve_pod(ref, pods):
    if not ref or ref.get("kind") != "Pod":
        return None
    return pods.get((ref.get("namespace", ""), ref.get("name", "")))


def build_endpoints(eps, services, pods):
    md = eps["metadata"]
    labels = {NS: md.get("namespace", ""), PREFIX + "endpoints_name": md["name"]}
    svc = services.get(key(eps))
    if svc is not None:
        labels.update(service_labels(svc))
    for k, v in (md.get("labels") or {}).items():
        ln = sanitize(k)
        labels[PREFIX + "endpoints_label_" + ln] = v
        labels[PREFIX + "endpoints_labelpresent_" + ln] = "true"
    targets = []
    seen = {}  # pod key -> [pod, service ports], in first-seen order

    def add(addr, port, ready):
        t = {
            "__address__": join_host_port(addr["ip"], str(port["port"])),
            PREFIX + "endpoint_port_name": port.get("name", ""),
            PREFIX + "endpoint_port_protocol": port.get("protocol", ""),
            PREFIX + "endpoint_ready": ready,
        }
        ref = addr.get("targetRef")
        if ref is not None:
            t[PREFIX + "endpoint_address_target_kind"] = ref.get("kind", "")
            t[PREFIX + "endpoint_address_target_name"] = ref.get("name", "")
        if addr.get("nodeName") is not None:
            t[PREFIX + "endpoint_node_name"] = addr["nodeName"]
        if addr.get("hostname"):
            t[PREFIX + "endpoint_hostname"] = addr["hostname"]
        pod = resolve_pod(ref, pods)
        if pod is None:
            targets.append(t)
            return
        entry = seen.setdefault(key(pod), [pod, []])
        t.update(pod_labels(pod))
        for c in pod.get("spec", {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if port["port"] == cp["containerPort"]:
                    t[PREFIX + "pod_container_name"] = c["name"]
                    t[PREFIX + "pod_container_image"] = c.get("image", "")
                    t[PREFIX + "pod_container_port_name"] = cp.get("name", "")
                    t[PREFIX + "pod_container_port_number"] = str(port["port"])
                    t[PREFIX + "pod_container_port_protocol"] = port.get("protocol", "")
                    break
        entry[1].append(port)
        targets.append(t)

    for ss in eps.get("subsets") or []:
        for port in ss.get("ports") or []:
            for addr in ss.get("addresses") or []:
                add(addr, port, "true")
            for addr in ss.get("notReadyAddresses") or []:
                add(addr, port, "false")
    for pod, sports in seen.values():
        for c in pod.get("spec", {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if any(cp["containerPort"] == sp["port"] for sp in sports):
                    continue
                port = str(cp["containerPort"])
                t = {
                    "__address__": join_host_port(pod["status"].get("podIP", ""), port),
                    PREFIX + "pod_container_name": c["name"],
                    PREFIX + "pod_container_image": c.get("image", ""),
                    PREFIX + "pod_container_port_name": cp.get("name", ""),
                    PREFIX + "pod_container_port_number": port,
                    PREFIX + "pod_container_port_protocol": cp.get("protocol", ""),
                }
                t.update(pod_labels(pod))
                targets.append(t)
    return labels, targets


# --- endpointslice.go (discovery.k8s.io/v1 adaptor) ---

def build_endpointslice(eps, services, pods):
    md = eps["metadata"]
    labels = {NS: md.get("namespace", ""), PREFIX + "endpointslice_name": md["name"],
              PREFIX + "endpointslice_address_type": eps.get("addressType", "")}
    sname = (md.get("labels") or {}).get("kubernetes.io/service-name")
    if sname is not None:
        svc = services.get((md.get("namespace", ""), sname))
        if svc is not None:
            labels.update(service_labels(svc))
    targets = []
    seen = {}

    def add(addr, ep, port):
        a = addr
        if port.get("port") is not None:
            a = join_host_port(addr, str(port["port"]))
        t = {"__address__": a}
        if port.get("name") is not None:
            t[PREFIX + "endpointslice_port_name"] = port["name"]
        if port.get("protocol") is not None:
            t[PREFIX + "endpointslice_port_protocol"] = port["protocol"]
        if port.get("port") is not None:
            t[PREFIX + "endpointslice_port"] = str(port["port"])
        if port.get("appProtocol") is not None:
            t[PREFIX + "endpointslice_port_app_protocol"] = port["appProtocol"]
        conds = ep.get("conditions") or {}
        for f in ("ready", "serving", "terminating"):
            if conds.get(f) is not None:
                t[PREFIX + "endpointslice_endpoint_conditions_" + f] = "true" if conds[f] else "false"
        if ep.get("hostname") is not None:
            t[PREFIX + "endpointslice_endpoint_hostname"] = ep["hostname"]
        ref = ep.get("targetRef")
        if ref is not None:
            t[PREFIX + "endpointslice_address_target_kind"] = ref.get("kind", "")
            t[PREFIX + "endpointslice_address_target_name"] = ref.get("name", "")
        for k, v in (ep.get("deprecatedTopology") or {}).items():
            ln = sanitize(k)
            t[PREFIX + "endpointslice_endpoint_topology_" + ln] = v
            t[PREFIX + "endpointslice_endpoint_topology_present_" + ln] = "true"
        pod = resolve_pod(ref, pods)
        if pod is None:
            targets.append(t)
            return
        entry = seen.setdefault(key(pod), [pod, []])
        t.update(pod_labels(pod))
        for c in pod.get("spec", {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if port.get("port") is None:
                    continue
                if port["port"] == cp["containerPort"]:
                    t[PREFIX + "pod_container_name"] = c["name"]
                    t[PREFIX + "pod_container_image"] = c.get("image", "")
                    t[PREFIX + "pod_container_port_name"] = cp.get("name", "")
                    t[PREFIX + "pod_container_port_number"] = str(port["port"])
                    t[PREFIX + "pod_container_port_protocol"] = cp.get("protocol", "")
                    break
        entry[1].append(port)
        targets.append(t)

    for ep in eps.get("endpoints") or []:
        for port in eps.get("ports") or []:
            for addr in ep.get("addresses") or []:
                add(addr, ep, port)
    for pod, sports in seen.values():
        for c in pod.get("spec", {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if any(sp.get("port") is not None and cp["containerPort"] == sp["port"] for sp in sports):
                    continue
                port = str(cp["containerPort"])
                t = {
                    "__address__": join_host_port(pod["status"].get("podIP", ""), port),
                    PREFIX + "pod_container_name": c["name"],
                    PREFIX + "pod_container_image": c.get("image", ""),
                    PREFIX + "pod_container_port_name": cp.get("name", ""),
                    PREFIX + "pod_container_port_number": port,
                    PREFIX + "pod_container_port_protocol": cp.get("protocol", ""),
                }
                t.update(pod_labels(pod))
                targets.append(t)
    return labels, targets


# --- node.go ---

def build_node(node):
    md, spec = node["metadata"], node.get("spec", {})
    labels = {PREFIX + "node_name": md["name"], PREFIX + "node_provider_id": spec.get("providerID", "")}
    for k, v in (md.get("labels") or {}).items():
        ln = sanitize(k)
        labels[PREFIX + "node_label_" + ln] = v
        labels[PREFIX + "node_labelpresent_" + ln] = "true"
    for k, v in (md.get("annotations") or {}).items():
        ln = sanitize(k)
        labels[PREFIX + "node_annotation_" + ln] = v
        labels[PREFIX + "node_annotationpresent_" + ln] = "true"
    by_type = {}
    for a in node.get("status", {}).get("addresses") or []:
        by_type.setdefault(a["type"], []).append(a["address"])
    addr = None
    for ty in ("InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname"):
        if ty in by_type:
            addr = by_type[ty][0]
            break
    if addr is None:
        return None
    port = (node.get("status", {}).get("daemonEndpoints", {}).get("kubeletEndpoint", {}) or {}).get("Port", 0)
    t = {"__address__": join_host_port(addr, str(port)), "instance": md["name"]}
    for ty, addrs in by_type.items():
        t[sanitize(PREFIX + "node_address_" + ty)] = addrs[0]
    return labels, [t]


# --- scrape/target.go: TargetsFromGroup + PopulateLabels (discovered labels) ---

def flatten(group):
    if group is None:
        return []
    labels, targets = group
    out = []
    for t in targets:
        ls = dict(labels)
        ls.update(t)
        out.append({k: v for k, v in sorted(ls.items()) if v != ""})
    return out


def discover(objects):
    """objects: {"pods": [...], "services": [...], "endpoints": [...], "endpointslices": [...],
    "nodes": [...]} -> {role: sorted list of discovered label sets}."""
    pods = {key(p): p for p in objects["pods"]}
    services = {key(s): s for s in objects["services"]}
    out = {
        "pod": [t for p in objects["pods"] for t in flatten(build_pod(p))],
        "service": [t for s in objects["services"] for t in flatten(build_service(s))],
        "endpoints": [t for e in objects["endpoints"] for t in flatten(build_endpoints(e, services, pods))],
        "endpointslice": [t for e in objects["endpointslices"]
                          for t in flatten(build_endpointslice(e, services, pods))],
        "node": [t for n in objects["nodes"] for t in flatten(build_node(n))],
    }
    return {r: sorted(v, key=lambda d: (d.get("__address__", ""), json.dumps(d, sort_keys=True)))
            for r, v in out.items()}


def fetch_objects(api):
    """LIST the five resources from an API server (cluster-wide, as Prometheus does)."""
    paths = {"pods": "/api/v1/pods", "services": "/api/v1/services", "endpoints": "/api/v1/endpoints",
             "endpointslices": "/apis/discovery.k8s.io/v1/endpointslices", "nodes": "/api/v1/nodes"}
    out = {}
    for name, path in paths.items():
        with urllib.request.urlopen(api + path, timeout=10) as r:
            out[name] = json.load(r)["items"]
    return out


if __name__ == "__main__":
    json.dump(discover(fetch_objects(sys.argv[1].rstrip("/"))), sys.stdout, indent=2, sort_keys=True)
    print()
