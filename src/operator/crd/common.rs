//! Pieces shared by the three resources: Secret references and status conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret in the object's own namespace. On Swarm and in files mode the Secret
/// is a Docker secret (or any file) under the secrets directory: `<dir>/<name>` when that
/// is a file, `<dir>/<name>/<key>` when it is a directory.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// The Secret's name.
    pub name: String,
    /// The key inside the Secret.
    pub key: String,
}

/// What an object's status says about it, in the same words whether it is a Kubernetes
/// object or a file: accepted (valid and applied) or not, and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectStatus {
    pub accepted: bool,
    /// A CamelCase reason (`Accepted`, `InvalidSpec`, `InvalidRule`, …).
    pub reason: String,
    pub message: String,
}

/// A status condition as Kubernetes wants it (every field set).
pub fn condition(type_: &str, ok: bool, reason: &str, message: &str, generation: Option<i64>) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: Time(jiff::Timestamp::now()),
    }
}
