//! `static_configs`: fixed target lists from the configuration file.

use std::future::Future;
use std::pin::Pin;

use super::{GroupSender, Provider, TargetGroup};
use crate::config::StaticConfig;

/// Sends its groups once and then waits until the consumer goes away.
pub struct StaticProvider {
    groups: Vec<TargetGroup>,
}

impl StaticProvider {
    pub fn new(job: &str, configs: &[StaticConfig]) -> Self {
        let groups = configs
            .iter()
            .enumerate()
            .map(|(i, c)| TargetGroup::from_addresses(format!("{job}/static/{i}"), &c.targets, &c.labels))
            .collect();
        StaticProvider { groups }
    }
}

impl Provider for StaticProvider {
    fn name(&self) -> String {
        "static".into()
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            if tx.send(self.groups).await.is_ok() {
                tx.closed().await;
            }
        })
    }
}
