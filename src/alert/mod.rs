//! Alerts after the rule evaluator: the [`Alert`] type, the [`forward`] sender that posts
//! them to external Alertmanagers, and vigie's own router with Alertmanager's semantics:
//! [`config`] (router.yml) → [`route`] tree → [`store`] → [`dispatch`] (aggregation
//! groups and timers) → at flush time [`inhibit`], [`timeinterval`], [`silence`] → per
//! integration the [`nflog`] dedup rule → [`notify`] (receivers).

pub mod config;
pub mod dispatch;
pub mod explain;
pub mod forward;
pub mod inhibit;
pub mod matcher;
pub mod nflog;
pub mod notify;
pub mod persist;
pub mod route;
pub mod router;
pub mod silence;
pub mod store;
pub mod timeinterval;

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
