//! The last error of each discovery mechanism, for `/api/v1/targets` and the UI: a Docker
//! socket that is missing or a daemon that is not a manager shows up next to the targets,
//! not only in the log. Providers record failures and clear them on success.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

/// One failing discovery mechanism.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryError {
    /// The mechanism (`swarm:unix:///var/run/docker.sock`, `dockerswarm:tasks:…`).
    pub provider: String,
    pub error: String,
    /// Since when it fails (Unix milliseconds).
    pub since_ms: i64,
}

static ERRORS: LazyLock<Mutex<BTreeMap<String, DiscoveryError>>> = LazyLock::new(Default::default);

/// Records that `provider` failed with `error` (the first failure's time is kept).
pub fn failed(provider: &str, error: &str) {
    let mut errors = ERRORS.lock();
    let since_ms = errors.get(provider).map(|e| e.since_ms).unwrap_or_else(crate::scrape::scrape_loop::now_ms);
    errors.insert(
        provider.to_string(),
        DiscoveryError { provider: provider.to_string(), error: error.to_string(), since_ms },
    );
}

/// Records that `provider` works (again).
pub fn ok(provider: &str) {
    ERRORS.lock().remove(provider);
}

/// Every mechanism failing now.
pub fn errors() -> Vec<DiscoveryError> {
    ERRORS.lock().values().cloned().collect()
}
