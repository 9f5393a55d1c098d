//! prometheus-operator's `ServiceMonitor`, `PodMonitor` and `PrometheusRule`
//! (`monitoring.coreos.com/v1`), read natively when those CRDs exist: the fields that
//! change targets and rules, as its documentation defines them. Fields vigie does not
//! implement are kept out of the types, so they are ignored as the API server prunes
//! unknown fields; vigie never writes these objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::alert_rule::RuleGroup;
use super::monitor::RelabelConfig;

/// `namespaceSelector`: `any`, or `matchNames`; empty means the object's own namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoNamespaceSelector {
    #[serde(default)]
    pub any: bool,
    #[serde(default)]
    pub match_names: Vec<String>,
}

/// One `endpoints[]` entry of a ServiceMonitor or `podMetricsEndpoints[]` of a PodMonitor.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoEndpoint {
    /// ServiceMonitor: the Service port name; PodMonitor: the container port name.
    #[serde(default)]
    pub port: Option<String>,
    /// PodMonitor: the container port number.
    #[serde(default)]
    pub port_number: Option<i32>,
    #[serde(default)]
    pub target_port: Option<IntOrString>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub scrape_timeout: Option<String>,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default)]
    pub honor_timestamps: Option<bool>,
    #[serde(default)]
    pub filter_running: Option<bool>,
    #[serde(default)]
    pub relabelings: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabelings: Vec<RelabelConfig>,
}

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(group = "monitoring.coreos.com", version = "v1", kind = "ServiceMonitor", namespaced, schema = "disabled")]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default)]
    pub namespace_selector: PoNamespaceSelector,
    #[serde(default)]
    pub endpoints: Vec<PoEndpoint>,
    #[serde(default)]
    pub job_label: Option<String>,
    #[serde(default)]
    pub target_labels: Vec<String>,
    #[serde(default)]
    pub pod_target_labels: Vec<String>,
    #[serde(default)]
    pub sample_limit: Option<u64>,
    #[serde(default)]
    pub label_limit: Option<u64>,
}

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(group = "monitoring.coreos.com", version = "v1", kind = "PodMonitor", namespaced, schema = "disabled")]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default)]
    pub namespace_selector: PoNamespaceSelector,
    #[serde(default)]
    pub pod_metrics_endpoints: Vec<PoEndpoint>,
    #[serde(default)]
    pub job_label: Option<String>,
    #[serde(default)]
    pub pod_target_labels: Vec<String>,
    #[serde(default)]
    pub sample_limit: Option<u64>,
    #[serde(default)]
    pub label_limit: Option<u64>,
}

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(group = "monitoring.coreos.com", version = "v1", kind = "PrometheusRule", namespaced, schema = "disabled")]
pub struct PrometheusRuleSpec {
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}
