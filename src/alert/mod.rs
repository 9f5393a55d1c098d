//! Alerts as they leave the rule evaluator: the [`Alert`] type that vigie's own router
//! (a later stage) and external Alertmanagers receive, and the [`forward`] sender that
//! posts them to Alertmanager's API v2.

pub mod forward;

use std::collections::BTreeMap;

use crate::model::Labels;

/// One alert as Alertmanager's API v2 carries it. Times are Unix milliseconds; an alert
/// is resolved at `t` when `ends_at_ms <= t`.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: String,
}

/// Where the rule evaluator hands its alerts (the forwarder, and vigie's router once it
/// exists). `send` must not block: a sink queues and delivers on its own task.
pub trait AlertSink: Send + Sync {
    fn send(&self, alerts: Vec<Alert>);
}
