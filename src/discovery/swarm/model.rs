//! The parts of the Docker Engine API's swarm objects that discovery reads (services,
//! tasks, nodes, networks), as the daemon sends them. Unknown fields are ignored and
//! missing ones default, so any API version from 1.41 on decodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Docker sends `null` for some empty lists and maps.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortConfig {
    pub name: String,
    pub protocol: String,
    pub target_port: u32,
    pub published_port: u32,
    pub publish_mode: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSpec {
    pub image: String,
    pub hostname: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskTemplate {
    pub container_spec: ContainerSpec,
}

/// Exactly one key is set: `Replicated`, `Global`, `ReplicatedJob` or `GlobalJob`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceMode {
    pub replicated: Option<serde_json::Value>,
    pub global: Option<serde_json::Value>,
    pub replicated_job: Option<serde_json::Value>,
    pub global_job: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    pub task_template: TaskTemplate,
    pub mode: ServiceMode,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VirtualIp {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    pub addr: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortConfig>,
    #[serde(rename = "VirtualIPs")]
    #[serde(deserialize_with = "nullable")]
    pub virtual_ips: Vec<VirtualIp>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateStatus {
    pub state: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    pub spec: ServiceSpec,
    pub endpoint: Endpoint,
    pub update_status: Option<UpdateStatus>,
}

impl Service {
    /// `replicated` or `global`; empty for jobs (as Prometheus reports them).
    pub fn mode(&self) -> &'static str {
        if self.spec.mode.global.is_some() {
            "global"
        } else if self.spec.mode.replicated.is_some() {
            "replicated"
        } else {
            ""
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerStatus {
    #[serde(rename = "ContainerID")]
    pub container_id: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortStatus {
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskStatus {
    pub state: String,
    pub container_status: Option<ContainerStatus>,
    pub port_status: PortStatus,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSpec {
    pub container_spec: Option<ContainerSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkRef {
    #[serde(rename = "ID")]
    pub id: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAttachment {
    pub network: NetworkRef,
    #[serde(deserialize_with = "nullable")]
    pub addresses: Vec<String>,
}

/// A task. `NetworksAttachments` is what Docker's own Go types call it (and what many
/// client libraries' models lack).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub slot: i64,
    pub desired_state: String,
    pub status: TaskStatus,
    pub spec: TaskSpec,
    #[serde(deserialize_with = "nullable")]
    pub networks_attachments: Vec<NetworkAttachment>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeSpec {
    pub role: String,
    pub availability: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Platform {
    pub architecture: String,
    #[serde(rename = "OS")]
    pub os: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Engine {
    pub engine_version: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDescription {
    pub hostname: String,
    pub platform: Platform,
    pub engine: Engine,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeStatus {
    pub state: String,
    pub addr: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ManagerStatus {
    pub leader: bool,
    pub reachability: String,
    pub addr: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub spec: NodeSpec,
    pub description: NodeDescription,
    pub status: NodeStatus,
    pub manager_status: Option<ManagerStatus>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    #[serde(rename = "Id")]
    pub id: String,
    pub name: String,
    pub scope: String,
    pub internal: bool,
    pub ingress: bool,
    pub labels: Option<BTreeMap<String, String>>,
}

/// Everything one discovery pass reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    pub nodes: Vec<Node>,
    pub networks: Vec<Network>,
}
