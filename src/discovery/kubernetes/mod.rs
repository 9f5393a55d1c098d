//! Kubernetes discovery: [`meta`] turns pods, EndpointSlices, Services and nodes into
//! targets with Prometheus's `__meta_kubernetes_*` labels; [`watch`] keeps one shared
//! reflector per kind and rebuilds each job's groups when the caches change.
//!
//! The cluster connection is kube's default: the in-cluster service account, else
//! `KUBECONFIG` / `~/.kube/config`.

pub mod annotations;
pub mod meta;
pub mod selector;
pub mod watch;

use kube::Client;
use tokio::sync::OnceCell;

static CLIENT: OnceCell<Client> = OnceCell::const_new();

/// The shared client, created on first use.
pub async fn client() -> Result<Client, kube::Error> {
    CLIENT.get_or_try_init(Client::try_default).await.cloned()
}
