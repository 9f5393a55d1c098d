//! prometheus-operator's objects, compiled with its documented semantics by mapping them
//! onto vigie's: a ServiceMonitor is a `Monitor` of Services, a PodMonitor a `Monitor` of
//! pods, a PrometheusRule an `AlertRule` — with the operator's job names
//! (`serviceMonitor/<ns>/<name>/<i>`, `podMonitor/<ns>/<name>/<i>`), its namespace default
//! (the object's own namespace), and no `namespace` label forced onto the alerts of a
//! PrometheusRule (cluster-wide rules route on the `namespace` of their series). Pure.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::operator::crd::prometheus_operator::{
    PoEndpoint, PoNamespaceSelector, PodMonitor, PrometheusRule, ServiceMonitor,
};
use crate::operator::crd::{
    AlertRule, AlertRuleSpec, Endpoint, Monitor, MonitorSpec, MonitorTargets, NamespaceSelector,
};

fn namespaces(n: &PoNamespaceSelector) -> Option<NamespaceSelector> {
    if n.any {
        None
    } else if !n.match_names.is_empty() {
        Some(NamespaceSelector { match_names: n.match_names.clone(), ..Default::default() })
    } else {
        Some(NamespaceSelector { own: true, ..Default::default() })
    }
}

fn endpoint(e: &PoEndpoint, pods: bool) -> Endpoint {
    let port = match (&e.port, e.port_number, &e.target_port) {
        (Some(name), _, _) => Some(IntOrString::String(name.clone())),
        (None, Some(n), _) if pods => Some(IntOrString::Int(n)),
        (None, _, Some(t)) => Some(t.clone()),
        _ => None,
    };
    Endpoint {
        port,
        path: e.path.clone(),
        scheme: e.scheme.clone(),
        interval: e.interval.clone(),
        scrape_timeout: e.scrape_timeout.clone(),
        params: e.params.clone(),
        honor_labels: e.honor_labels,
        honor_timestamps: e.honor_timestamps,
        relabelings: e.relabelings.clone(),
        metric_relabelings: e.metric_relabelings.clone(),
        ..Default::default()
    }
}

/// The `Monitor` a ServiceMonitor means (its jobs renamed by [`job_prefix`]).
pub fn service_monitor(s: &ServiceMonitor) -> Monitor {
    let spec = &s.spec;
    Monitor {
        metadata: s.metadata.clone(),
        spec: MonitorSpec {
            targets: MonitorTargets::Services,
            selector: Some(spec.selector.clone()),
            namespace_selector: namespaces(&spec.namespace_selector),
            endpoints: spec.endpoints.iter().map(|e| endpoint(e, false)).collect(),
            job_label: spec.job_label.clone(),
            target_labels: spec.target_labels.clone(),
            pod_target_labels: spec.pod_target_labels.clone(),
            sample_limit: spec.sample_limit,
            label_limit: spec.label_limit,
            static_targets: Vec::new(),
        },
        status: None,
    }
}

/// The `Monitor` a PodMonitor means.
pub fn pod_monitor(p: &PodMonitor) -> Monitor {
    let spec = &p.spec;
    Monitor {
        metadata: p.metadata.clone(),
        spec: MonitorSpec {
            targets: MonitorTargets::Pods,
            selector: Some(spec.selector.clone()),
            namespace_selector: namespaces(&spec.namespace_selector),
            endpoints: spec.pod_metrics_endpoints.iter().map(|e| endpoint(e, true)).collect(),
            job_label: spec.job_label.clone(),
            target_labels: Vec::new(),
            pod_target_labels: spec.pod_target_labels.clone(),
            sample_limit: spec.sample_limit,
            label_limit: spec.label_limit,
            static_targets: Vec::new(),
        },
        status: None,
    }
}

/// The `AlertRule` a PrometheusRule means (compiled without the namespace label).
pub fn prometheus_rule(r: &PrometheusRule) -> AlertRule {
    AlertRule { metadata: r.metadata.clone(), spec: AlertRuleSpec { groups: r.spec.groups.clone() }, status: None }
}

/// Renames `monitor/<ns>/<name>/<i>` jobs to the operator's `<prefix>/<ns>/<name>/<i>`.
pub fn job_prefix(job: &str, prefix: &str) -> String {
    match job.strip_prefix("monitor/") {
        Some(rest) => format!("{prefix}/{rest}"),
        None => job.to_string(),
    }
}
