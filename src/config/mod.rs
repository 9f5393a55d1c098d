//! Configuration: vigie.yml (Prometheus's format) parsed, validated and compiled into one
//! desired state that the scrape manager, the rule engine and the API read.
//!
//! Loading never half-applies: [`load_file`] either returns a complete [`Config`] or a
//! [`ConfigError`] that names the file, line and column; the caller keeps the last good
//! config running on error.

mod bytes;
mod duration;
mod model;
mod relabel_rule;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use bytes::parse_byte_size;
pub use duration::PromDuration;
pub use model::*;
pub use relabel_rule::RelabelRule;

use crate::model::Labels;
use crate::relabel::CompiledRelabel;

/// Why a configuration was rejected. `Display` is `file:line:col: message` when the
/// position is known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Parse { file: String, line: u64, column: u64, message: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// Global settings after defaults are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
}

/// One scrape job, defaults applied and relabel rules compiled.
#[derive(Clone, Debug)]
pub struct ScrapeJob {
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
    pub enable_compression: bool,
    pub http: HttpClientConfig,
    pub static_configs: Vec<StaticConfig>,
    /// `file_sd_configs` with paths resolved against the config file's directory.
    pub file_sd_configs: Vec<FileSdConfig>,
    pub dockerswarm_sd_configs: Vec<DockerSwarmSdConfig>,
    /// `kubernetes_sd_configs`, checked.
    pub kubernetes_sd: Vec<crate::discovery::kubernetes::watch::KubeSelection>,
    /// The zero-config Swarm job (`--discovery swarm`), added by vigie, not read from a file.
    pub swarm_auto: Option<crate::discovery::swarm::watch::SwarmAutoSettings>,
    /// Every running Swarm task, event-driven (a `Monitor`'s job), instead of polling
    /// `dockerswarm_sd_configs`.
    pub swarm_tasks: Option<crate::discovery::swarm::watch::SwarmAutoSettings>,
    pub relabel: Vec<Arc<CompiledRelabel>>,
    pub metric_relabel: Vec<Arc<CompiledRelabel>>,
    /// The entry as written, to tell whether a reload changed this job.
    pub source: ScrapeConfig,
}

impl PartialEq for ScrapeJob {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is derived from the source entry and the global defaults.
        self.source == other.source && self.interval == other.interval && self.timeout == other.timeout
    }
}

/// The complete, validated desired state read from vigie.yml.
#[derive(Clone, Debug)]
pub struct Config {
    /// The text as loaded (served by `/api/v1/status/config`).
    pub yaml: String,
    pub file: ConfigFile,
    pub global: Global,
    pub scrape_jobs: Vec<Arc<ScrapeJob>>,
    /// `rule_files` globs, resolved against the config file's directory.
    pub rule_files: Vec<PathBuf>,
}

const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// The configuration used when no `--config` is given: vigie scrapes itself.
pub fn default_yaml(self_address: &str) -> String {
    format!(
        "# vigie's embedded default: scrape vigie itself.\n\
         global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\
         scrape_configs:\n  - job_name: vigie\n    static_configs:\n      - targets: [\"{self_address}\"]\n"
    )
}

impl Config {
    /// Adds the zero-config Swarm job `swarm` (unless the file already has a job of that
    /// name): the global interval and timeout, targets from labelled services.
    pub fn add_swarm_job(&mut self, settings: &crate::discovery::swarm::watch::SwarmAutoSettings) {
        if self.scrape_jobs.iter().any(|j| j.name == SWARM_JOB) {
            tracing::warn!("a scrape job named {SWARM_JOB:?} exists; the zero-config Swarm job is not added");
            return;
        }
        let sc = ScrapeConfig { job_name: SWARM_JOB.into(), ..Default::default() };
        match compile_job(&sc, &self.file.global, &self.global, Path::new(".")) {
            Ok(mut job) => {
                job.swarm_auto = Some(settings.clone());
                self.scrape_jobs.push(Arc::new(job));
            }
            Err(e) => tracing::error!(error = %e, "the zero-config Swarm job could not be built"),
        }
    }
}

impl Config {
    /// Checks a scrape job (a `Monitor`'s) against this configuration's defaults.
    pub fn check_job(&self, sc: &ScrapeConfig) -> Result<ScrapeJob, String> {
        compile_job(sc, &self.file.global, &self.global, Path::new("."))
    }

    /// Adds the jobs of `Monitor`s. With Swarm discovery on, their `dockerswarm_sd_configs`
    /// (what `vigie generate` writes for Prometheus) become the shared event-driven watch.
    pub fn add_monitor_jobs(
        &mut self,
        configs: Vec<ScrapeConfig>,
        swarm: Option<&crate::discovery::swarm::watch::SwarmAutoSettings>,
    ) {
        for sc in configs {
            if self.scrape_jobs.iter().any(|j| j.name == sc.job_name) {
                tracing::warn!(job = %sc.job_name, "vigie.yml has a job of this name; the Monitor's is not added");
                continue;
            }
            match self.check_job(&sc) {
                Ok(mut job) => {
                    if let Some(s) = swarm
                        && !job.dockerswarm_sd_configs.is_empty()
                    {
                        job.dockerswarm_sd_configs.clear();
                        job.swarm_tasks = Some(s.clone());
                    }
                    self.scrape_jobs.push(Arc::new(job));
                }
                Err(e) => tracing::error!(job = %sc.job_name, error = %e, "a Monitor's job could not be built"),
            }
        }
    }
}

/// The job the zero-config Swarm targets belong to (each target sets its own `job`).
pub const SWARM_JOB: &str = "swarm";

/// Reads and compiles a configuration file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, &file, &base)
}

/// Compiles configuration text; `file` names it in errors, `base_dir` resolves relative paths.
pub fn load_str(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let parsed: ConfigFile = if text.trim().is_empty() {
        ConfigFile::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| parse_error(file, &e))?
    };
    let invalid = |message: String| ConfigError::Invalid { file: file.to_string(), message };

    let g = &parsed.global;
    let scrape_interval = g.scrape_interval.map(|d| d.0).unwrap_or(DEFAULT_SCRAPE_INTERVAL);
    let scrape_timeout = match g.scrape_timeout {
        Some(t) => t.0,
        None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
    };
    if scrape_timeout > scrape_interval {
        return Err(invalid(format!(
            "global scrape timeout greater than scrape interval ({} > {})",
            PromDuration(scrape_timeout),
            PromDuration(scrape_interval)
        )));
    }
    for name in g.external_labels.keys() {
        if name.is_empty() {
            return Err(invalid("external label name must not be empty".into()));
        }
    }
    let global = Global {
        scrape_interval,
        scrape_timeout,
        evaluation_interval: g.evaluation_interval.map(|d| d.0).unwrap_or(DEFAULT_EVALUATION_INTERVAL),
        external_labels: Labels::from_pairs(g.external_labels.iter().map(|(k, v)| (k.clone(), v.clone()))),
    };

    let mut seen = HashSet::new();
    let mut scrape_jobs = Vec::with_capacity(parsed.scrape_configs.len());
    for sc in &parsed.scrape_configs {
        if sc.job_name.is_empty() {
            return Err(invalid("job_name is empty".into()));
        }
        if !seen.insert(sc.job_name.clone()) {
            return Err(invalid(format!("found multiple scrape configs with job name {:?}", sc.job_name)));
        }
        scrape_jobs.push(Arc::new(compile_job(sc, &parsed.global, &global, base_dir).map_err(invalid)?));
    }
    for rw in &parsed.remote_write {
        if !(rw.url.starts_with("http://") || rw.url.starts_with("https://")) {
            return Err(invalid(format!("remote_write url {:?} must be http or https", rw.url)));
        }
    }
    let rule_files = parsed.rule_files.iter().map(|f| base_dir.join(f)).collect();
    Ok(Config { yaml: text.to_string(), file: parsed, global, scrape_jobs, rule_files })
}

fn compile_job(
    sc: &ScrapeConfig,
    raw_global: &GlobalConfig,
    global: &Global,
    base_dir: &Path,
) -> Result<ScrapeJob, String> {
    let job = &sc.job_name;
    let interval = sc.scrape_interval.map(|d| d.0).unwrap_or(global.scrape_interval);
    if interval.is_zero() {
        return Err(format!("scrape interval for job {job:?} must be greater than zero"));
    }
    let timeout = match sc.scrape_timeout {
        Some(t) => t.0,
        None => global.scrape_timeout.min(interval),
    };
    if timeout > interval {
        return Err(format!("scrape timeout greater than scrape interval for scrape config with job name {job:?}"));
    }
    let scheme = sc.scheme.clone().unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err(format!("invalid scheme {scheme:?} for job {job:?}: must be http or https"));
    }
    let metrics_path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
    for sc_static in &sc.static_configs {
        for t in &sc_static.targets {
            if t.contains('/') {
                return Err(format!("{t:?} is not a valid hostname (job {job:?})"));
            }
        }
    }
    let file_sd_configs = sc
        .file_sd_configs
        .iter()
        .map(|f| FileSdConfig {
            files: f.files.iter().map(|p| base_dir.join(p).display().to_string()).collect(),
            refresh_interval: f.refresh_interval,
        })
        .collect();
    for (i, d) in sc.dockerswarm_sd_configs.iter().enumerate() {
        crate::discovery::swarm::Role::parse(&d.role)
            .map_err(|e| format!("dockerswarm_sd_configs[{i}] of job {job:?}: {e}"))?;
        if !(d.host.starts_with("unix://")
            || d.host.starts_with("http://")
            || d.host.starts_with("https://")
            || d.host.starts_with("tcp://"))
        {
            return Err(format!(
                "dockerswarm_sd_configs[{i}] of job {job:?}: host {:?} must be unix://, tcp://, http:// or https://",
                d.host
            ));
        }
    }
    let mut kubernetes_sd = Vec::new();
    for (i, k) in sc.kubernetes_sd_configs.iter().enumerate() {
        let at = format!("kubernetes_sd_configs[{i}] of job {job:?}");
        let role = crate::discovery::kubernetes::watch::KubeRole::parse(&k.role).map_err(|e| format!("{at}: {e}"))?;
        if k.api_server.is_some() || k.kubeconfig_file.is_some() {
            return Err(format!(
                "{at}: api_server and kubeconfig_file are not supported: vigie watches the cluster it runs in \
                 (or the one of KUBECONFIG)"
            ));
        }
        if k.attach_metadata.is_some() {
            return Err(format!("{at}: attach_metadata is not supported yet"));
        }
        use crate::discovery::kubernetes::watch::KubeRole;
        let mut selectors = Vec::new();
        for (j, s) in k.selectors.iter().enumerate() {
            let sel_role = KubeRole::parse(&s.role).map_err(|e| format!("{at}: selectors[{j}]: {e}"))?;
            let allowed = match role {
                KubeRole::EndpointSlice => {
                    matches!(sel_role, KubeRole::Pod | KubeRole::Service | KubeRole::EndpointSlice)
                }
                r => sel_role == r,
            };
            if !allowed {
                return Err(format!("{at}: selectors[{j}]: role {} is not allowed for role {}", s.role, k.role));
            }
            if selectors.iter().any(|(r, _)| *r == sel_role) {
                return Err(format!("{at}: selectors[{j}]: role {} appears twice", s.role));
            }
            if s.field.is_some() {
                return Err(format!("{at}: selectors[{j}]: field selectors are not supported yet"));
            }
            let parsed = crate::discovery::kubernetes::selector::Selector::parse(s.label.as_deref().unwrap_or(""))
                .map_err(|e| format!("{at}: selectors[{j}]: {e}"))?;
            selectors.push((sel_role, parsed));
        }
        let mut namespaces = k.namespaces.as_ref().map(|n| n.names.clone()).unwrap_or_default();
        if k.namespaces.as_ref().and_then(|n| n.own_namespace) == Some(true) {
            let own = std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{at}: own_namespace: {e}"))?;
            namespaces.push(own);
        }
        kubernetes_sd.push(crate::discovery::kubernetes::watch::KubeSelection { role, namespaces, selectors });
    }
    let body_size_limit = match sc.body_size_limit.as_ref().or(raw_global.body_size_limit.as_ref()) {
        Some(s) => parse_byte_size(s).map_err(|e| format!("body_size_limit of job {job:?}: {e}"))?,
        None => 0,
    };
    Ok(ScrapeJob {
        name: job.clone(),
        interval,
        timeout,
        metrics_path,
        scheme,
        params: sc.params.clone(),
        honor_labels: sc.honor_labels.unwrap_or(false),
        honor_timestamps: sc.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: sc.track_timestamps_staleness.unwrap_or(false),
        sample_limit: sc.sample_limit.or(raw_global.sample_limit).unwrap_or(0),
        label_limit: sc.label_limit.or(raw_global.label_limit).unwrap_or(0),
        label_name_length_limit: sc.label_name_length_limit.or(raw_global.label_name_length_limit).unwrap_or(0),
        label_value_length_limit: sc.label_value_length_limit.or(raw_global.label_value_length_limit).unwrap_or(0),
        body_size_limit,
        enable_compression: sc.enable_compression.unwrap_or(true),
        http: sc.http_client(),
        static_configs: sc.static_configs.clone(),
        file_sd_configs,
        dockerswarm_sd_configs: sc.dockerswarm_sd_configs.clone(),
        kubernetes_sd,
        swarm_auto: None,
        swarm_tasks: None,
        relabel: sc.relabel_configs.iter().map(|r| r.compiled.clone()).collect(),
        metric_relabel: sc.metric_relabel_configs.iter().map(|r| r.compiled.clone()).collect(),
        source: sc.clone(),
    })
}

/// A YAML error as (line, column, message); the message loses its trailing
/// " at line L, column C" since the position goes in front instead.
pub fn yaml_error_parts(e: &serde_saphyr::Error) -> (u64, u64, String) {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let text = e.without_snippet().to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    (line, column, message)
}

fn parse_error(file: &str, e: &serde_saphyr::Error) -> ConfigError {
    let (line, column, message) = yaml_error_parts(e);
    ConfigError::Parse { file: file.to_string(), line, column, message }
}

#[cfg(test)]
mod tests;
