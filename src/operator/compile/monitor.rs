//! `Monitor` → scrape jobs in Prometheus's configuration model: one job per endpoint,
//! named `monitor/<namespace>/<name>/<index>`, whose relabel rules do the selection (as
//! prometheus-operator compiles a PodMonitor), so vigie and `vigie generate`'s
//! prometheus.yml select the same targets with the same labels. Pure: no I/O.
//!
//! On Swarm the input is the tasks role (`__meta_dockerswarm_*`); the stack namespace
//! (`com.docker.stack.namespace`) stands where Kubernetes has the namespace, and a
//! selector matches the labels of the service or of its containers (the service's win).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Platform, SecretFiles};
use crate::config::{PromDuration, RelabelRule, ScrapeConfig, StaticConfig};
use crate::discovery::swarm::meta::sanitize;
use crate::operator::crd::{Endpoint, Monitor, RelabelConfig};
use crate::relabel::RelabelConfig as PromRelabel;

const S: &str = "__meta_dockerswarm_";
const STACK: &str = "__meta_dockerswarm_service_label_com_docker_stack_namespace";

/// The object's namespace, `default` when it has none (as kubectl).
pub fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into())
}

fn rule(r: PromRelabel, at: &str) -> Result<RelabelRule, String> {
    RelabelRule::try_from(r).map_err(|e| format!("{at}: {e}"))
}

fn replace(sources: &[&str], regex: &str, target: &str, replacement: &str) -> PromRelabel {
    PromRelabel {
        source_labels: Some(sources.iter().map(|s| s.to_string()).collect()),
        regex: Some(Some(regex.to_string())),
        target_label: Some(target.to_string()),
        replacement: Some(replacement.to_string()),
        action: Some("replace".into()),
        ..Default::default()
    }
}

fn filter(action: &str, sources: &[&str], regex: &str) -> PromRelabel {
    PromRelabel {
        source_labels: Some(sources.iter().map(|s| s.to_string()).collect()),
        regex: Some(Some(regex.to_string())),
        action: Some(action.into()),
        ..Default::default()
    }
}

fn alternatives(values: &[String]) -> String {
    values.iter().map(|v| regex::escape(v)).collect::<Vec<_>>().join("|")
}

/// `__tmp_<key>` ← the workload's label `key`: the service's if set, else the container's.
fn workload_label(key: &str, out: &mut Vec<PromRelabel>) -> String {
    let k = sanitize(key);
    let tmp = format!("__tmp_{k}");
    out.push(replace(&[&format!("{S}container_label_{k}")], "(.*)", &tmp, "$1"));
    out.push(replace(&[&format!("{S}service_label_{k}")], "(.+)", &tmp, "$1"));
    tmp
}

/// As the API server: `In`/`NotIn` need values, `Exists`/`DoesNotExist` take none.
fn check_values(i: usize, operator: &str, values: &[String]) -> Result<(), String> {
    match operator {
        "In" | "NotIn" if values.is_empty() => {
            Err(format!("selector.matchExpressions[{i}]: {operator} needs at least one value"))
        }
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            Err(format!("selector.matchExpressions[{i}]: {operator} takes no values"))
        }
        _ => Ok(()),
    }
}

fn selector_rules(sel: &LabelSelector, out: &mut Vec<PromRelabel>) -> Result<(), String> {
    for (k, v) in sel.match_labels.iter().flatten() {
        let tmp = workload_label(k, out);
        out.push(filter("keep", &[&tmp], &regex::escape(v)));
    }
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let tmp = workload_label(&e.key, out);
        let values = e.values.clone().unwrap_or_default();
        check_values(i, &e.operator, &values)?;
        match e.operator.as_str() {
            "In" => out.push(filter("keep", &[&tmp], &format!("({})", alternatives(&values)))),
            "NotIn" => out.push(filter("drop", &[&tmp], &format!("({})", alternatives(&values)))),
            "Exists" => out.push(filter("keep", &[&tmp], ".+")),
            "DoesNotExist" => out.push(filter("drop", &[&tmp], ".+")),
            other => {
                return Err(format!(
                    "selector.matchExpressions[{i}]: operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                ));
            }
        }
    }
    Ok(())
}

/// The selection and labelling rules for Swarm tasks.
fn swarm_rules(m: &Monitor, ep: &Endpoint, ns: &str) -> Result<Vec<PromRelabel>, String> {
    let spec = &m.spec;
    // What vigie's own watch already leaves out, spelt out for a generated prometheus.yml:
    // tasks that should not run, host-mode port targets (no network), the ingress network.
    let mut out = vec![
        filter("keep", &[&format!("{S}task_desired_state")], "running"),
        filter("keep", &[&format!("{S}network_id")], ".+"),
        filter("drop", &[&format!("{S}network_ingress")], "true"),
    ];
    if let Some(nsel) = &spec.namespace_selector {
        if nsel.own {
            out.push(filter("keep", &[STACK], &regex::escape(ns)));
        } else if !nsel.match_names.is_empty() {
            out.push(filter("keep", &[STACK], &format!("({})", alternatives(&nsel.match_names))));
        }
        if nsel.selector.is_some() {
            return Err("namespaceSelector.selector: stacks have no labels on Swarm; use matchNames".into());
        }
    }
    if let Some(sel) = &spec.selector {
        selector_rules(sel, &mut out)?;
    }
    match &ep.port {
        Some(IntOrString::Int(n)) => {
            if !(1..=65535).contains(n) {
                return Err(format!("port {n} is not between 1 and 65535"));
            }
            out.push(replace(&["__address__"], r"(.+):\d+", "__address__", &format!("$1:{n}")));
        }
        Some(IntOrString::String(name)) if name.parse::<u16>().is_ok_and(|n| n > 0) => {
            out.push(replace(&["__address__"], r"(.+):\d+", "__address__", &format!("$1:{name}")));
        }
        Some(IntOrString::String(name)) => {
            // Swarm ports have no names of their own: `vigie.port.<name>` gives one.
            let tmp = workload_label(&format!("vigie.port.{name}"), &mut out);
            out.push(filter("keep", &[&tmp], r"\d+"));
            out.push(replace(&["__address__", &tmp], r"(.+):\d+;(\d+)", "__address__", "$1:$2"));
        }
        None => {
            let prom = workload_label("prometheus.io/port", &mut out);
            let vigie = workload_label("vigie.port", &mut out);
            for tmp in [prom, vigie] {
                out.push(replace(&["__address__", &tmp], r"(.+):\d+;(\d+)", "__address__", "$1:$2"));
            }
        }
    }
    for (label, source) in [
        ("namespace", STACK.to_string()),
        ("swarm_stack", STACK.to_string()),
        ("swarm_service", format!("{S}service_name")),
        ("swarm_node", format!("{S}node_hostname")),
        ("swarm_task_slot", format!("{S}task_slot")),
        ("job", format!("{S}service_name")),
    ] {
        out.push(replace(&[&source], "(.+)", label, "$1"));
    }
    if let Some(l) = &spec.job_label {
        let tmp = workload_label(l, &mut out);
        out.push(replace(&[&tmp], "(.+)", "job", "$1"));
    }
    for l in &spec.target_labels {
        out.push(replace(&[&format!("{S}service_label_{}", sanitize(l))], "(.+)", &sanitize(l), "$1"));
    }
    for l in &spec.pod_target_labels {
        out.push(replace(&[&format!("{S}container_label_{}", sanitize(l))], "(.+)", &sanitize(l), "$1"));
    }
    if let Some(p) = &ep.port {
        let p = match p {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        out.push(PromRelabel {
            target_label: Some("endpoint".into()),
            replacement: Some(p),
            action: Some("replace".into()),
            ..Default::default()
        });
    }
    Ok(out)
}

const K: &str = "__meta_kubernetes_";

/// Keeps (or drops) targets by the labels of `res` (`pod`, `service`), with the
/// `labelpresent` labels telling an empty value from a missing label.
fn kube_selector_rules(sel: &LabelSelector, res: &str, out: &mut Vec<PromRelabel>) -> Result<(), String> {
    let names = |k: &str| {
        let k = sanitize(k);
        (format!("{K}{res}_label_{k}"), format!("{K}{res}_labelpresent_{k}"))
    };
    for (k, v) in sel.match_labels.iter().flatten() {
        let (l, p) = names(k);
        out.push(filter("keep", &[&l, &p], &format!("({});true", regex::escape(v))));
    }
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let (l, p) = names(&e.key);
        let values = e.values.clone().unwrap_or_default();
        check_values(i, &e.operator, &values)?;
        match e.operator.as_str() {
            "In" => out.push(filter("keep", &[&l, &p], &format!("({});true", alternatives(&values)))),
            "NotIn" => out.push(filter("drop", &[&l, &p], &format!("({});true", alternatives(&values)))),
            "Exists" => out.push(filter("keep", &[&p], "true")),
            "DoesNotExist" => out.push(filter("drop", &[&p], "true")),
            other => {
                return Err(format!(
                    "selector.matchExpressions[{i}]: operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                ));
            }
        }
    }
    Ok(())
}

fn port_string(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// The selection and labelling rules for pods (role `pod`, as a PodMonitor) or Services
/// (role `endpointslice`, as a ServiceMonitor).
fn kube_rules(m: &Monitor, ep: &Endpoint, ns: &str, name: &str) -> Result<Vec<PromRelabel>, String> {
    let spec = &m.spec;
    let pods = spec.targets == crate::operator::crd::MonitorTargets::Pods;
    let mut out = vec![replace(&["job"], "(.*)", "__tmp_prometheus_job_name", "$1")];
    let running = filter("drop", &[&format!("{K}pod_phase")], "(Failed|Succeeded)");
    if pods {
        out.push(running.clone());
    }
    if let Some(sel) = &spec.selector {
        kube_selector_rules(sel, if pods { "pod" } else { "service" }, &mut out)?;
    }
    let number = |p: &IntOrString| match p {
        IntOrString::Int(n) => Some(n.to_string()),
        IntOrString::String(s) => s.parse::<u16>().ok().map(|n| n.to_string()),
    };
    if let Some(p) = &ep.port {
        let (by_name, by_number) = if pods {
            (format!("{K}pod_container_port_name"), format!("{K}pod_container_port_number"))
        } else {
            (format!("{K}endpointslice_port_name"), format!("{K}endpointslice_port"))
        };
        match number(p) {
            Some(n) => out.push(filter("keep", &[&by_number], &n)),
            None => out.push(filter("keep", &[&by_name], &regex::escape(&port_string(p)))),
        }
    }
    if !pods {
        let kind_name =
            [&format!("{K}endpointslice_address_target_kind"), &format!("{K}endpointslice_address_target_name")];
        let kind_name: Vec<&str> = kind_name.iter().map(|s| s.as_str()).collect();
        out.push(replace(&kind_name, "Node;(.*)", "node", "$1"));
        out.push(replace(&kind_name, "Pod;(.*)", "pod", "$1"));
        out.push(replace(&[&format!("{K}namespace")], "(.*)", "namespace", "$1"));
        out.push(replace(&[&format!("{K}service_name")], "(.*)", "service", "$1"));
    } else {
        out.push(replace(&[&format!("{K}namespace")], "(.*)", "namespace", "$1"));
    }
    out.push(replace(&[&format!("{K}pod_name")], "(.*)", "pod", "$1"));
    out.push(replace(&[&format!("{K}pod_container_name")], "(.*)", "container", "$1"));
    if !pods {
        out.push(running);
        for l in &spec.target_labels {
            out.push(replace(&[&format!("{K}service_label_{}", sanitize(l))], "(.+)", &sanitize(l), "$1"));
        }
    }
    for l in &spec.pod_target_labels {
        out.push(replace(&[&format!("{K}pod_label_{}", sanitize(l))], "(.+)", &sanitize(l), "$1"));
    }
    if pods {
        out.push(PromRelabel {
            target_label: Some("job".into()),
            replacement: Some(format!("{ns}/{name}")),
            action: Some("replace".into()),
            ..Default::default()
        });
    } else {
        out.push(replace(&[&format!("{K}service_name")], "(.*)", "job", "$1"));
    }
    if let Some(l) = &spec.job_label {
        let res = if pods { "pod" } else { "service" };
        out.push(replace(&[&format!("{K}{res}_label_{}", sanitize(l))], "(.+)", "job", "$1"));
    }
    if let Some(p) = &ep.port
        && (!pods || number(p).is_none())
    {
        out.push(PromRelabel {
            target_label: Some("endpoint".into()),
            replacement: Some(port_string(p)),
            action: Some("replace".into()),
            ..Default::default()
        });
    }
    Ok(out)
}

/// The namespaces a Kubernetes Monitor watches (empty: all).
fn kube_namespaces(m: &Monitor, ns: &str) -> Result<Vec<String>, String> {
    match &m.spec.namespace_selector {
        None => Ok(Vec::new()),
        Some(n) if n.selector.is_some() => {
            Err("namespaceSelector.selector: selecting namespaces by label is not supported yet; use matchNames".into())
        }
        Some(n) if n.own => Ok(vec![ns.to_string()]),
        Some(n) => Ok(n.match_names.clone()),
    }
}

fn user_rule(r: &RelabelConfig) -> PromRelabel {
    PromRelabel {
        source_labels: (!r.source_labels.is_empty()).then(|| r.source_labels.clone()),
        separator: r.separator.clone(),
        regex: r.regex.clone().map(Some),
        modulus: r.modulus,
        target_label: r.target_label.clone(),
        replacement: r.replacement.clone(),
        action: r.action.as_ref().map(|a| a.to_lowercase()),
    }
}

fn duration(v: &Option<String>, at: &str) -> Result<Option<PromDuration>, String> {
    v.as_deref().map(PromDuration::parse).transpose().map_err(|e| format!("{at}: {e}"))
}

/// The scrape jobs of one Monitor, or why it cannot be applied (the first error, with the
/// path of the offending field).
pub fn scrape_configs(m: &Monitor, platform: &Platform, secrets: &SecretFiles) -> Result<Vec<ScrapeConfig>, String> {
    let ns = namespace_of(&m.metadata);
    let name = m.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err("metadata.name: required".into());
    }
    if m.spec.endpoints.is_empty() {
        return Err("spec.endpoints: at least one endpoint is required".into());
    }
    let mut out = Vec::new();
    for (i, ep) in m.spec.endpoints.iter().enumerate() {
        let at = format!("spec.endpoints[{i}]");
        let mut sc = ScrapeConfig { job_name: format!("monitor/{ns}/{name}/{i}"), ..Default::default() };
        sc.metrics_path = ep.path.clone();
        sc.scheme = ep.scheme.clone();
        sc.params = ep.params.clone();
        sc.scrape_interval = duration(&ep.interval, &format!("{at}.interval"))?;
        sc.scrape_timeout = duration(&ep.scrape_timeout, &format!("{at}.scrapeTimeout"))?;
        if let (Some(i), Some(t)) = (sc.scrape_interval, sc.scrape_timeout)
            && t.0 > i.0
        {
            return Err(format!("{at}.scrapeTimeout: {t} is longer than the interval {i}"));
        }
        sc.honor_labels = ep.honor_labels.then_some(true);
        sc.honor_timestamps = ep.honor_timestamps;
        sc.sample_limit = m.spec.sample_limit;
        sc.label_limit = m.spec.label_limit;
        if let Some(b) = &ep.basic_auth {
            sc.basic_auth = Some(crate::config::BasicAuth {
                username_file: Some(
                    secrets.checked_path(&ns, &b.username).map_err(|e| format!("{at}.basicAuth: {e}"))?,
                ),
                password_file: Some(
                    secrets.checked_path(&ns, &b.password).map_err(|e| format!("{at}.basicAuth: {e}"))?,
                ),
                ..Default::default()
            });
        }
        if let Some(t) = &ep.bearer_token_secret {
            sc.authorization = Some(crate::config::Authorization {
                credentials_file: Some(
                    secrets.checked_path(&ns, t).map_err(|e| format!("{at}.bearerTokenSecret: {e}"))?,
                ),
                ..Default::default()
            });
        }
        if let Some(t) = &ep.tls_config {
            sc.tls_config = Some(crate::config::TlsConfig {
                ca_file: t
                    .ca
                    .as_ref()
                    .map(|s| secrets.checked_path(&ns, s))
                    .transpose()
                    .map_err(|e| format!("{at}.tlsConfig: {e}"))?,
                cert_file: t
                    .cert
                    .as_ref()
                    .map(|s| secrets.checked_path(&ns, s))
                    .transpose()
                    .map_err(|e| format!("{at}.tlsConfig: {e}"))?,
                key_file: t
                    .key_secret
                    .as_ref()
                    .map(|s| secrets.checked_path(&ns, s))
                    .transpose()
                    .map_err(|e| format!("{at}.tlsConfig: {e}"))?,
                server_name: t.server_name.clone(),
                insecure_skip_verify: t.insecure_skip_verify.then_some(true),
                ..Default::default()
            });
        }
        let mut rules = Vec::new();
        if !m.spec.static_targets.is_empty() {
            sc.static_configs = m
                .spec
                .static_targets
                .iter()
                .map(|st| {
                    let mut labels = st.labels.clone();
                    labels.entry("job".into()).or_insert_with(|| name.clone());
                    StaticConfig { targets: st.targets.clone(), labels }
                })
                .collect();
        } else {
            match platform {
                Platform::Swarm { host } => {
                    sc.dockerswarm_sd_configs = vec![crate::config::DockerSwarmSdConfig {
                        host: host.clone(),
                        role: "tasks".into(),
                        ..Default::default()
                    }];
                    rules = swarm_rules(m, ep, &ns).map_err(|e| format!("{at}: {e}"))?;
                }
                Platform::Kubernetes => {
                    let names = kube_namespaces(m, &ns)?;
                    // The selector also goes to discovery, so the job is handed only its own
                    // objects (the relabel rules still select exactly, as for Prometheus).
                    let pods = m.spec.targets == crate::operator::crd::MonitorTargets::Pods;
                    let selectors = m
                        .spec
                        .selector
                        .as_ref()
                        .map(crate::discovery::kubernetes::selector::Selector::from_label_selector)
                        .filter(|s| !s.is_empty())
                        .map(|label| crate::config::KubernetesSelector {
                            role: if pods { "pod" } else { "service" }.into(),
                            label: Some(label),
                            field: None,
                        })
                        .into_iter()
                        .collect();
                    sc.kubernetes_sd_configs = vec![crate::config::KubernetesSdConfig {
                        selectors,
                        role: if m.spec.targets == crate::operator::crd::MonitorTargets::Pods {
                            "pod"
                        } else {
                            "endpointslice"
                        }
                        .into(),
                        namespaces: (!names.is_empty())
                            .then_some(crate::config::KubernetesNamespaces { names, own_namespace: None }),
                        ..Default::default()
                    }];
                    rules = kube_rules(m, ep, &ns, &name).map_err(|e| format!("{at}: {e}"))?;
                }
                Platform::Files => {
                    return Err("spec.selector: no cluster discovery runs here (--discovery files); \
                                give spec.staticTargets, or run vigie on Swarm"
                        .into());
                }
            }
        }
        let mut compiled = Vec::new();
        for (j, r) in rules.into_iter().enumerate() {
            compiled.push(rule(r, &format!("{at}: generated rule {j}"))?);
        }
        for (j, r) in ep.relabelings.iter().enumerate() {
            compiled.push(rule(user_rule(r), &format!("{at}.relabelings[{j}]"))?);
        }
        // After the user's rules, so none of them can move a target to another namespace.
        let enforce = match (&platform, m.spec.static_targets.is_empty()) {
            (Platform::Swarm { .. }, true) => Some(STACK.to_string()),
            (Platform::Kubernetes, true) => Some(format!("{K}namespace")),
            _ => None,
        };
        if let Some(source) = enforce {
            compiled.push(rule(replace(&[&source], "(.*)", "namespace", "$1"), &format!("{at}: namespace rule"))?);
        }
        sc.relabel_configs = compiled;
        sc.metric_relabel_configs = ep
            .metric_relabelings
            .iter()
            .enumerate()
            .map(|(j, r)| rule(user_rule(r), &format!("{at}.metricRelabelings[{j}]")))
            .collect::<Result<_, _>>()?;
        out.push(sc);
    }
    Ok(out)
}
