//! `Monitor`: which pods, services or Swarm tasks to scrape, and how.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::SecretKeySelector;

/// Which objects a Monitor's selector picks.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum MonitorTargets {
    /// Pods (on Swarm: the running tasks of the selected services), scraped on their
    /// container ports.
    #[default]
    Pods,
    /// The endpoints of the selected Services (on Swarm: as `Pods`).
    Services,
}

/// The namespaces a Monitor looks in. Unset: every namespace vigie may read (on Swarm,
/// every stack).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Only the Monitor's own namespace (stack).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own: bool,
    /// These namespaces (stacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_names: Vec<String>,
    /// Namespaces with these labels (Kubernetes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// A relabeling step, as `relabel_configs` in Prometheus (camelCase names).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep,
    /// lowercase or uppercase (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Spelt out case by case: `(?i)` is Go and Rust regex syntax but not JSON Schema's.
    #[schemars(regex(
        pattern = r"^([Rr]eplace|[Kk]eep|[Dd]rop|[Kk]eep[Ee]qual|[Dd]rop[Ee]qual|[Hh]ash[Mm]od|[Ll]abel[Mm]ap|[Ll]abel[Dd]rop|[Ll]abel[Kk]eep|[Ll]ower[Cc]ase|[Uu]pper[Cc]ase)$"
    ))]
    pub action: Option<String>,
}

/// TLS settings of the scrape; key material comes from Secrets.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// HTTP basic authentication from a Secret.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    pub username: SecretKeySelector,
    pub password: SecretKeySelector,
}

/// One way of scraping the selected objects; each endpoint is its own scrape job.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The container port (pods, tasks) or Service port (services), by name or number.
    /// Unset: the port the workload's `vigie.port` / `prometheus.io/port` label names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// HTTP path (default `/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(http|https)$"))]
    pub scheme: Option<String>,
    /// Scrape interval (Prometheus duration, e.g. `30s`); default: the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$"))]
    pub interval: Option<String>,
    /// Scrape timeout; at most the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$"))]
    pub scrape_timeout: Option<String>,
    /// URL parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub honor_labels: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_timestamps: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A bearer token from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<SecretKeySelector>,
    /// Applied to targets after vigie's own selection rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<RelabelConfig>,
    /// Applied to scraped samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
}

/// Fixed addresses to scrape instead of selected objects (a laptop, an external host).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StaticTargets {
    /// `host:port` strings.
    pub targets: Vec<String>,
    /// Labels given to these targets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What to scrape: the objects the selector picks (or fixed addresses), on each of the
/// endpoints.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "vigie.dev",
    version = "v1alpha1",
    kind = "Monitor",
    namespaced,
    status = "MonitorStatus",
    shortname = "mon",
    category = "vigie",
    doc = "Which pods, services or Swarm tasks vigie scrapes, and how.",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Selected","type":"integer","jsonPath":".status.targetsSelected"}"#,
    printcolumn = r#"{"name":"Up","type":"integer","jsonPath":".status.targetsUp"}"#,
    printcolumn = r#"{"name":"Error","type":"string","jsonPath":".status.lastError","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSpec {
    /// Pods (default) or Services.
    #[serde(default)]
    pub targets: MonitorTargets,
    /// Labels of the pods, Services or Swarm services to scrape; empty selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Where to look; unset: every namespace (stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    /// Fixed addresses instead of selected objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_targets: Vec<StaticTargets>,
    /// How to scrape; at least one.
    #[schemars(length(min = 1))]
    pub endpoints: Vec<Endpoint>,
    /// A label of the workload whose value becomes `job` (default: the Service or Swarm
    /// service name, or `<namespace>/<monitor>` for pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
    /// Labels of the Service (Swarm service) copied onto the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_labels: Vec<String>,
    /// Labels of the pod (Swarm container) copied onto the targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_target_labels: Vec<String>,
    /// Most samples one scrape may return (0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    /// Most labels a sample may have (0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
}

/// What became of a Monitor.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (the spec is valid and applied) and `Ready` (targets are up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets_selected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets_up: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
