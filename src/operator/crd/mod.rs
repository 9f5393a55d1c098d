//! The custom resources of group `vigie.dev`, version `v1alpha1`: [`Monitor`] (what to
//! scrape), [`AlertRule`] (rule groups) and [`AlertRoute`] (a route subtree with its
//! receivers). The same types are read from the Kubernetes API and, as YAML files, from
//! `--monitors-dir` on Swarm and on a laptop; `vigie crds` prints their definitions.
//!
//! Fields follow prometheus-operator's names where it has one (`relabelings`,
//! `metricRelabelings`, `honorLabels`, …) so its users read them without a manual; rule
//! groups and routes keep the spelling of Prometheus's and Alertmanager's files, so they
//! can be pasted from those.

mod alert_route;
mod alert_rule;
mod common;
mod monitor;
pub mod prometheus_operator;

pub use alert_route::{AlertRoute, AlertRouteSpec, AlertRouteStatus};
pub use alert_rule::{AlertRule, AlertRuleSpec, AlertRuleStatus, GroupStatus, RuleGroup, RuleSpec};
pub use common::{ObjectStatus, SecretKeySelector, condition};
pub use monitor::{
    BasicAuth, Endpoint, Monitor, MonitorSpec, MonitorStatus, MonitorTargets, NamespaceSelector, RelabelConfig,
    StaticTargets, TlsConfig,
};

use kube::CustomResourceExt;

/// The API group of vigie's resources.
pub const GROUP: &str = "vigie.dev";
/// Their version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in objects.
pub const API_VERSION: &str = "vigie.dev/v1alpha1";

/// The three CustomResourceDefinitions as one multi-document YAML text (`vigie crds`).
pub fn crds_yaml() -> String {
    let crds = [Monitor::crd(), AlertRule::crd(), AlertRoute::crd()];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).expect("a CRD serialises to YAML"));
    }
    out
}
