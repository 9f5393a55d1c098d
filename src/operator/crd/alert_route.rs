//! `AlertRoute`: a route subtree with its receivers and inhibit rules, for the alerts of
//! the object's own namespace.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use schemars::generate::SchemaGenerator;
use serde::{Deserialize, Serialize};

fn preserve_object(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn preserve_objects(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// A route subtree, spelt as in alertmanager.yml. vigie grafts it under its root route
/// with a `namespace="<object namespace>"` matcher, so a team routes only its own alerts;
/// receiver names are prefixed with `<namespace>/<name>/` so teams cannot collide.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "vigie.dev",
    version = "v1alpha1",
    kind = "AlertRoute",
    namespaced,
    status = "AlertRouteStatus",
    shortname = "aroute",
    category = "vigie",
    doc = "A route subtree, receivers and inhibit rules for the alerts of one namespace.",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Error","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct AlertRouteSpec {
    /// The subtree's top route (`receiver`, `matchers`, `group_by`, `routes`, …).
    #[schemars(schema_with = "preserve_object")]
    pub route: serde_json::Value,
    /// Receivers the subtree names, as in alertmanager.yml.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "preserve_objects")]
    pub receivers: Vec<serde_json::Value>,
    /// Inhibit rules; both sides are limited to the object's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "preserve_objects")]
    pub inhibit_rules: Vec<serde_json::Value>,
    /// Named time intervals the subtree refers to (prefixed like receivers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "preserve_objects")]
    pub time_intervals: Vec<serde_json::Value>,
}

/// What became of an AlertRoute.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertRouteStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
