//! Runs the discovery providers of every scrape job and publishes their merged groups.
//!
//! The output is a `watch` channel holding the current groups of every job; a consumer that
//! falls behind just sees the newest snapshot, which is exactly what a scrape manager wants.
//! On reload only the jobs whose discovery settings changed have their providers restarted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::swarm::watch::SwarmAutoSettings;
use super::{FileProvider, Provider, StaticProvider, TargetGroup};
use crate::config::{DockerSwarmSdConfig, FileSdConfig, ScrapeJob, StaticConfig};

/// The current target groups of every job.
pub type JobTargets = Arc<BTreeMap<String, Vec<TargetGroup>>>;

#[derive(Default)]
struct JobState {
    generation: u64,
    /// Latest groups of each provider, in provider order.
    providers: Vec<Vec<TargetGroup>>,
}

struct RunningJob {
    discovery: Discovery,
    tasks: Vec<JoinHandle<()>>,
}

/// Owns the provider tasks.
pub struct DiscoveryManager {
    state: Arc<Mutex<HashMap<String, JobState>>>,
    out: Arc<watch::Sender<JobTargets>>,
    running: HashMap<String, RunningJob>,
    next_generation: u64,
}

type Discovery = (
    Vec<StaticConfig>,
    Vec<FileSdConfig>,
    Vec<DockerSwarmSdConfig>,
    Option<SwarmAutoSettings>,
    Option<SwarmAutoSettings>,
    Vec<super::kubernetes::watch::KubeSelection>,
);

fn discovery_of(j: &ScrapeJob) -> Discovery {
    (
        j.static_configs.clone(),
        j.file_sd_configs.clone(),
        j.dockerswarm_sd_configs.clone(),
        j.swarm_auto.clone(),
        j.swarm_tasks.clone(),
        j.kubernetes_sd.clone(),
    )
}

impl DiscoveryManager {
    pub fn new() -> (Self, watch::Receiver<JobTargets>) {
        let (tx, rx) = watch::channel(JobTargets::default());
        let mgr =
            DiscoveryManager { state: Arc::default(), out: Arc::new(tx), running: HashMap::new(), next_generation: 1 };
        (mgr, rx)
    }

    /// Starts, restarts or stops providers so that they match `jobs`.
    pub fn apply(&mut self, jobs: &[Arc<ScrapeJob>]) {
        let wanted: HashMap<&str, &Arc<ScrapeJob>> = jobs.iter().map(|j| (j.name.as_str(), j)).collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, run)| wanted.get(name.as_str()).is_none_or(|j| run.discovery != discovery_of(j)))
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            if let Some(run) = self.running.remove(&name) {
                run.tasks.iter().for_each(JoinHandle::abort);
            }
            self.state.lock().remove(&name);
        }
        for job in jobs {
            if self.running.contains_key(&job.name) {
                continue;
            }
            let mut providers: Vec<Box<dyn Provider>> = Vec::new();
            if !job.static_configs.is_empty() {
                providers.push(Box::new(StaticProvider::new(&job.name, &job.static_configs)));
            }
            for f in &job.file_sd_configs {
                providers.push(Box::new(FileProvider::new(f)));
            }
            for d in &job.dockerswarm_sd_configs {
                providers.push(Box::new(super::swarm::SwarmSdProvider::new(d)));
            }
            if let Some(s) = &job.swarm_auto {
                providers.push(Box::new(super::swarm::watch::SwarmAutoProvider::new(s)));
            }
            if let Some(s) = &job.swarm_tasks {
                providers.push(Box::new(super::swarm::watch::SwarmTasksProvider::new(s)));
            }
            for selection in &job.kubernetes_sd {
                providers.push(Box::new(super::kubernetes::watch::KubeProvider { selection: selection.clone() }));
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            self.state
                .lock()
                .insert(job.name.clone(), JobState { generation, providers: vec![Vec::new(); providers.len()] });
            let tasks = providers
                .into_iter()
                .enumerate()
                .map(|(idx, p)| self.spawn_provider(job.name.clone(), generation, idx, p))
                .collect();
            self.running.insert(job.name.clone(), RunningJob { discovery: discovery_of(job), tasks });
        }
        self.publish();
    }

    fn spawn_provider(&self, job: String, generation: u64, idx: usize, provider: Box<dyn Provider>) -> JoinHandle<()> {
        let (tx, mut rx) = mpsc::channel::<Vec<TargetGroup>>(1);
        let state = self.state.clone();
        let out = self.out.clone();
        tracing::debug!(job = %job, provider = %provider.name(), "discovery: starting provider");
        tokio::spawn(async move {
            let run = provider.run(tx);
            let forward = async {
                while let Some(groups) = rx.recv().await {
                    {
                        let mut st = state.lock();
                        match st.get_mut(&job) {
                            Some(js) if js.generation == generation => js.providers[idx] = groups,
                            _ => return,
                        }
                    }
                    publish(&state, &out);
                }
            };
            tokio::join!(run, forward);
        })
    }

    fn publish(&self) {
        publish(&self.state, &self.out);
    }
}

impl Drop for DiscoveryManager {
    fn drop(&mut self) {
        for run in self.running.values() {
            run.tasks.iter().for_each(JoinHandle::abort);
        }
    }
}

fn publish(state: &Mutex<HashMap<String, JobState>>, out: &watch::Sender<JobTargets>) {
    let snapshot: BTreeMap<String, Vec<TargetGroup>> =
        state.lock().iter().map(|(job, js)| (job.clone(), js.providers.iter().flatten().cloned().collect())).collect();
    out.send_replace(Arc::new(snapshot));
}
