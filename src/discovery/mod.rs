//! Discovery: turns configuration and cluster state into [`TargetGroup`]s.
//!
//! Every mechanism (static lists and files now; Kubernetes and Swarm later) is a
//! [`Provider`] that sends the complete current set of its groups whenever it changes. The
//! [`manager`] runs the providers of each scrape job and publishes one merged snapshot per
//! job to the scrape manager, so a provider never needs to know who consumes it.

mod file;
pub mod kubernetes;
pub mod manager;
mod static_sd;
pub mod status;
pub mod swarm;

use std::collections::BTreeMap;

use crate::model::Labels;

pub use file::FileProvider;
pub use manager::{DiscoveryManager, JobTargets};
pub use static_sd::StaticProvider;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";

/// A set of targets that share labels, identified by `source` within its provider
/// (a file path and index, `pod/<ns>/<name>`, …). An update with the same source replaces
/// the previous group; an empty `targets` list removes its targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    pub source: String,
    /// Per-target labels; each holds at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels shared by every target of the group.
    pub labels: Labels,
}

impl TargetGroup {
    /// Builds a group from `host:port` strings and shared labels.
    pub fn from_addresses(source: impl Into<String>, addresses: &[String], labels: &BTreeMap<String, String>) -> Self {
        TargetGroup {
            source: source.into(),
            targets: addresses.iter().map(|a| Labels::from_pairs([(ADDRESS_LABEL, a.as_str())])).collect(),
            labels: Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        }
    }
}

/// Receives full snapshots of a provider's groups.
pub type GroupSender = tokio::sync::mpsc::Sender<Vec<TargetGroup>>;

/// A source of target groups. `run` sends the provider's complete set of groups on every
/// change and returns when the receiver is gone.
pub trait Provider: Send + 'static {
    fn name(&self) -> String;
    fn run(self: Box<Self>, tx: GroupSender) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}
