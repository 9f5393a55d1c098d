//! The scrape manager: one pool per job, one loop per target, kept in step with the
//! configuration and the discovered groups.
//!
//! On every change it rebuilds the job's targets and diffs them by identity (final labels
//! and URL): new targets start, vanished ones stop with staleness markers, unchanged ones
//! keep running. A job whose settings changed restarts its loops quietly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::scrape_loop::{self, LoopContext, Stop};
use super::target::{DroppedTarget, Target, build_targets};
use crate::config::{Config, ScrapeJob};
use crate::discovery::JobTargets;
use crate::metrics::Metrics;
use crate::tsdb::Head;

/// What the API shows of one job.
#[derive(Clone, Debug, Default)]
pub struct PoolView {
    pub job: String,
    pub active: Vec<Arc<Target>>,
    pub dropped: Vec<DroppedTarget>,
}

/// A read-only view of all pools, shared with the API.
pub type TargetsView = Arc<RwLock<BTreeMap<String, PoolView>>>;

struct RunningLoop {
    target: Arc<Target>,
    stop: oneshot::Sender<Stop>,
    task: JoinHandle<()>,
}

struct Pool {
    job: Arc<ScrapeJob>,
    client: reqwest::Client,
    loops: HashMap<u64, RunningLoop>,
}

pub struct ScrapeManager {
    head: Arc<Head>,
    metrics: Arc<Metrics>,
    seed: u64,
    pools: HashMap<String, Pool>,
    view: TargetsView,
}

impl ScrapeManager {
    pub fn new(head: Arc<Head>, metrics: Arc<Metrics>, seed: u64) -> Self {
        ScrapeManager { head, metrics, seed, pools: HashMap::new(), view: Arc::default() }
    }

    pub fn view(&self) -> TargetsView {
        self.view.clone()
    }

    /// Follows config and discovery updates until both channels close.
    pub async fn run(mut self, mut config: watch::Receiver<Arc<Config>>, mut targets: watch::Receiver<JobTargets>) {
        loop {
            let cfg = config.borrow_and_update().clone();
            let groups = targets.borrow_and_update().clone();
            self.sync(&cfg, &groups);
            tokio::select! {
                r = config.changed() => if r.is_err() { break },
                r = targets.changed() => if r.is_err() { break },
            }
        }
        self.stop_all();
    }

    /// Brings pools and loops in line with `cfg` and `groups`.
    pub fn sync(&mut self, cfg: &Config, groups: &JobTargets) {
        let jobs: HashMap<&str, &Arc<ScrapeJob>> = cfg.scrape_jobs.iter().map(|j| (j.name.as_str(), j)).collect();
        let gone: Vec<String> = self.pools.keys().filter(|k| !jobs.contains_key(k.as_str())).cloned().collect();
        for name in gone {
            if let Some(pool) = self.pools.remove(&name) {
                for (_, l) in pool.loops {
                    let _ = l.stop.send(Stop::Removed);
                }
            }
        }
        let mut view = BTreeMap::new();
        for job in &cfg.scrape_jobs {
            let (targets, dropped) = build_targets(job, groups.get(&job.name).map(Vec::as_slice).unwrap_or(&[]));
            let pool = match self.pools.remove(&job.name) {
                Some(p) if *p.job == **job => p,
                old => {
                    let client = match super::http::client(&job.http) {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(job = %job.name, error = %e, "cannot build HTTP client; job not scraped");
                            continue;
                        }
                    };
                    let mut p = Pool { job: job.clone(), client, loops: HashMap::new() };
                    if let Some(old) = old {
                        // Settings changed: restart every loop, keeping vanished targets' staleness.
                        let keep: std::collections::HashSet<u64> = targets.iter().map(|t| t.hash).collect();
                        for (h, l) in old.loops {
                            let _ = l.stop.send(if keep.contains(&h) { Stop::Quiet } else { Stop::Removed });
                        }
                        tracing::info!(job = %job.name, "scrape pool reloaded");
                    }
                    p.loops.clear();
                    p
                }
            };
            let mut pool = pool;
            let wanted: HashMap<u64, Arc<Target>> = targets.iter().map(|t| (t.hash, t.clone())).collect();
            let vanished: Vec<u64> = pool.loops.keys().filter(|h| !wanted.contains_key(h)).copied().collect();
            for h in vanished {
                if let Some(l) = pool.loops.remove(&h) {
                    tracing::debug!(job = %job.name, target = %l.target.url, "target removed");
                    let _ = l.stop.send(Stop::Removed);
                }
            }
            for (h, t) in wanted {
                if pool.loops.contains_key(&h) {
                    continue;
                }
                let (stop_tx, stop_rx) = oneshot::channel();
                let ctx = LoopContext {
                    job: job.clone(),
                    target: t.clone(),
                    client: pool.client.clone(),
                    head: self.head.clone(),
                    seed: self.seed,
                    metrics: self.metrics.clone(),
                };
                let task = tokio::spawn(scrape_loop::run(ctx, stop_rx));
                pool.loops.insert(h, RunningLoop { target: t, stop: stop_tx, task });
            }
            let mut active: Vec<Arc<Target>> = pool.loops.values().map(|l| l.target.clone()).collect();
            active.sort_by(|a, b| a.labels.cmp(&b.labels));
            self.metrics.set_targets(&job.name, active.len());
            view.insert(job.name.clone(), PoolView { job: job.name.clone(), active, dropped });
            self.pools.insert(job.name.clone(), pool);
        }
        *self.view.write() = view;
    }

    fn stop_all(&mut self) {
        for (_, pool) in self.pools.drain() {
            for (_, l) in pool.loops {
                let _ = l.stop.send(Stop::Quiet);
                l.task.abort();
            }
        }
    }
}
