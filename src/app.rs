//! Wiring of `vigie run`: builds every stage, connects them, serves the API, and handles
//! reloads and shutdown. `main.rs` only turns the command line into [`RunOptions`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::alert::AlertSink;
use crate::alert::forward::Forwarder;
use crate::alert::router::Router;
use crate::api::{self, AppState, ReloadFn};
use crate::config::{self, Config};
use crate::discovery::DiscoveryManager;
use crate::discovery::swarm::watch::SwarmAutoSettings;
use crate::metrics::Metrics;
use crate::operator::compile::{Platform, SecretFiles};
use crate::operator::{Context, Desired, MonitorSet, ObjectReport};
use crate::promql::{Engine, EngineOptions};
use crate::rules::{GroupDefaults, RuleManager, RuleOptions};
use crate::scrape::ScrapeManager;
use crate::scrape::scrape_loop::now_ms;
use crate::tsdb::{Db, DbOptions};

/// Settings of `vigie run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: Option<PathBuf>,
    pub router_config: Option<PathBuf>,
    pub monitors_dir: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub listen: String,
    pub discovery: String,
    /// The Docker API Swarm discovery talks to (`unix:///var/run/docker.sock`).
    pub swarm_host: String,
    /// `--swarm-network`: networks to reach tasks on (default: vigie's own).
    pub swarm_networks: Vec<String>,
    /// How often Swarm discovery lists everything again besides events.
    pub swarm_relist: Duration,
    /// The `prometheus.io/*` pod annotation jobs (Kubernetes).
    pub kubernetes_annotations: bool,
    pub retention: Duration,
    /// Bytes the blocks may take; 0 is no limit.
    pub retention_size: u64,
    pub out_of_order_window: Duration,
    /// Log growth that triggers a WAL checkpoint.
    pub wal_checkpoint_size: u64,
    pub lookback_delta: Duration,
    pub query_timeout: Duration,
    pub query_max_samples: usize,
    pub query_max_concurrency: usize,
    /// The URL vigie is reached at (alerts' generator links, templates' `externalURL`);
    /// `None`: `http://<listen address>`.
    pub external_url: Option<String>,
    pub resend_delay: Duration,
    pub for_outage_tolerance: Duration,
    pub for_grace_period: Duration,
    /// Every flag as given, for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("discovery: {0} (modes: auto, kubernetes, swarm, files, none)")]
    Discovery(String),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("alerting: {0}")]
    Alerting(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::tsdb::DbError),
    #[error("{0}")]
    RouterConfig(#[from] crate::alert::config::RouterConfigError),
    #[error("router: {0}")]
    Router(#[from] crate::alert::router::RouterError),
}

fn load_router(
    path: &Option<PathBuf>,
) -> Result<crate::alert::config::RouterConfig, crate::alert::config::RouterConfigError> {
    match path {
        Some(p) => crate::alert::config::load_file(p),
        None => Ok(crate::alert::config::RouterConfig::default_config()),
    }
}

/// Where vigie scrapes itself in the embedded default config.
fn self_address(addr: &SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("localhost:{}", addr.port()) } else { addr.to_string() }
}

fn load(path: &Option<PathBuf>, default_yaml: &str) -> Result<Config, config::ConfigError> {
    match path {
        Some(p) => config::load_file(p),
        None => config::load_str(default_yaml, "<embedded default>", std::path::Path::new(".")),
    }
}

/// Applies configuration files to the running stages.
struct Reloader {
    path: Option<PathBuf>,
    router_path: Option<PathBuf>,
    router: Arc<Router>,
    default_yaml: String,
    discovery: Mutex<DiscoveryManager>,
    config_tx: watch::Sender<Arc<Config>>,
    metrics: Arc<Metrics>,
    rules: Arc<RuleManager>,
    forwarder: Arc<Forwarder>,
    rule_opts: RuleOptions,
    /// The zero-config Swarm job's settings when Swarm discovery is on.
    swarm: Option<SwarmAutoSettings>,
    monitors_dir: Option<PathBuf>,
    /// Monitor/AlertRule/AlertRoute objects from the Kubernetes API, when watched.
    kube_objects: Option<crate::operator::kube::ObjectStores>,
    /// Where selected workloads come from.
    platform: Platform,
    /// Whether the `prometheus.io/*` pod annotation jobs run.
    kubernetes_annotations: bool,
    /// On Kubernetes: the referenced Secret keys, written under the data directory.
    kube_secrets: Mutex<Option<SecretFiles>>,
    /// The objects of the last applied load.
    monitors: Mutex<MonitorSet>,
    monitor_reports: Arc<RwLock<Vec<ObjectReport>>>,
    /// One reload at a time: two that start from the same last good objects must not
    /// commit out of order.
    reloading: Mutex<()>,
}

/// Everything one reload applies, read and checked.
struct Loaded {
    cfg: Config,
    router: crate::alert::config::RouterConfig,
    rules: Vec<(String, Vec<crate::rules::GroupDef>)>,
    monitors: MonitorSet,
}

fn group_defaults(cfg: &Config) -> GroupDefaults {
    GroupDefaults {
        interval: cfg.global.evaluation_interval,
        query_offset: cfg.file.global.rule_query_offset.map(|d| d.0).unwrap_or_default(),
    }
}

/// Docker secrets (or files) that Secret references of the objects resolve to.
fn secret_files() -> SecretFiles {
    let mut s = SecretFiles::default();
    if let Ok(entries) = std::fs::read_dir(&s.dir) {
        s.directories = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
    }
    s
}

impl Reloader {
    fn load(&self) -> Result<Config, config::ConfigError> {
        let mut cfg = load(&self.path, &self.default_yaml)?;
        if let Some(s) = &self.swarm {
            cfg.add_swarm_job(s);
        }
        if self.kubernetes_annotations && self.platform == Platform::Kubernetes {
            cfg.add_monitor_jobs(crate::discovery::kubernetes::annotations::jobs(), None);
        }
        Ok(cfg)
    }

    /// Applies a loaded configuration; the Alertmanager settings are checked first so a
    /// bad entry rejects the whole reload.
    fn apply(&self, cfg: Config, extra_rules: Vec<(String, Vec<crate::rules::GroupDef>)>) -> Result<(), String> {
        self.forwarder.apply(cfg.file.alerting.as_ref())?;
        self.discovery.lock().apply(&cfg.scrape_jobs);
        let defaults = group_defaults(&cfg);
        match crate::rules::load_each(&cfg.rule_files, &defaults) {
            Ok(mut files) => {
                files.extend(extra_rules.into_iter().map(|(name, groups)| (name, Ok(groups))));
                let opts =
                    RuleOptions { external_labels: cfg.global.external_labels.clone(), ..self.rule_opts.clone() };
                self.rules.update(files, opts);
            }
            Err(e) => tracing::error!(error = %e, "rule_files rejected; the previous rule groups keep running"),
        }
        self.config_tx.send_replace(Arc::new(cfg));
        Ok(())
    }

    /// Reads vigie.yml, the router configuration and the monitors directory, and compiles
    /// them into one state; nothing is applied yet.
    fn load_all(&self) -> Result<Loaded, String> {
        let mut cfg = self.load().map_err(|e| e.to_string())?;
        let (base, router_file, router_dir) = match &self.router_path {
            Some(p) => (
                crate::alert::config::read_file(p).map_err(|e| e.to_string())?,
                p.display().to_string(),
                p.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")),
            ),
            None => (crate::alert::config::default_file(), "<default>".to_string(), PathBuf::from(".")),
        };
        let (monitors, desired) = match (&self.monitors_dir, &self.kube_objects) {
            (None, None) => (MonitorSet::default(), Desired::default()),
            (dir, kube) => {
                let mut docs = match dir {
                    Some(dir) => crate::operator::files::read_dir(dir).map_err(|e| e.to_string())?,
                    None => Vec::new(),
                };
                if let Some(k) = kube {
                    docs.extend(k.documents());
                }
                let check = |sc: &crate::config::ScrapeConfig| cfg.check_job(sc).map(|_| ());
                let ctx = Context {
                    platform: self.platform.clone(),
                    secrets: match (&self.platform, self.kube_secrets.lock().clone()) {
                        (_, Some(s)) => s,
                        // Until the first read of the cluster's Secrets, none are usable.
                        (Platform::Kubernetes, None) => {
                            SecretFiles { namespaced: Some(Default::default()), ..SecretFiles::default() }
                        }
                        _ => secret_files(),
                    },
                    rule_defaults: group_defaults(&cfg),
                    router_base: &base,
                    router_dir: &router_dir,
                    check_job: &check,
                };
                self.monitors.lock().load(docs, &ctx)
            }
        };
        cfg.add_monitor_jobs(desired.scrape_configs, self.swarm.as_ref());
        let grafts: Vec<_> = desired.grafts.iter().collect();
        let merged = crate::operator::compile::alert_route::grafted(&base, &grafts);
        let router =
            crate::alert::config::compile_file(merged, &router_file, &router_dir).map_err(|e| e.to_string())?;
        Ok(Loaded { cfg, router, rules: desired.rule_files, monitors })
    }

    /// Both files are read and checked before either is applied, so a bad one rejects the
    /// whole reload and everything keeps running as it was.
    fn reload(&self) -> Result<(), String> {
        let _one_at_a_time = self.reloading.lock();
        let result = self.load_all().and_then(|l| {
            let jobs = l.cfg.scrape_jobs.len();
            // Prepared first, committed last: a vigie.yml rejected by `apply` leaves the
            // router as it was.
            let prepared = self.router.prepare(l.router).map_err(|e| e.to_string())?;
            self.apply(l.cfg, l.rules)?;
            self.router.commit(prepared);
            *self.monitor_reports.write() = l.monitors.reports.clone();
            *self.monitors.lock() = l.monitors;
            Ok(jobs)
        });
        match result {
            Ok(jobs) => {
                tracing::info!(jobs, "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.record_reload(false, now_ms() / 1000);
                tracing::error!(error = %e, "configuration rejected; the previous one keeps running");
                Err(e)
            }
        }
        .inspect(|()| self.metrics.record_reload(true, now_ms() / 1000))
    }
}

/// Runs vigie until SIGINT/SIGTERM.
pub async fn run(opts: RunOptions) -> Result<(), AppError> {
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| AppError::Listen { addr: opts.listen.clone(), source })?;
    let local = listener.local_addr().map_err(AppError::Serve)?;
    let in_cluster = std::path::Path::new(SERVICE_ACCOUNT_TOKEN).exists();
    let (swarm, kubernetes) = match opts.discovery.as_str() {
        "swarm" => (Some(swarm_settings(&opts)), false),
        "kubernetes" => (None, true),
        "auto" if in_cluster => (None, true),
        "auto" => {
            let s = swarm_settings(&opts);
            (swarm_manager_answers(&s.host).await.then_some(s), false)
        }
        "files" | "none" => (None, false),
        other => return Err(AppError::Discovery(other.to_string())),
    };
    let platform = match (&swarm, kubernetes) {
        (Some(s), _) => Platform::Swarm { host: s.host.clone() },
        (None, true) => Platform::Kubernetes,
        _ => Platform::Files,
    };
    let kube_client = if kubernetes {
        match crate::discovery::kubernetes::client().await {
            Ok(c) => Some(c),
            Err(e) => return Err(AppError::Discovery(format!("kubernetes: cannot build a client: {e}"))),
        }
    } else {
        None
    };
    let kube_objects = match &kube_client {
        Some(c) => Some(crate::operator::kube::ObjectStores::start(c).await),
        None => None,
    };
    if kubernetes {
        tracing::info!("Kubernetes mode: Monitor, AlertRule and AlertRoute objects are watched in every namespace");
    }
    if let Some(s) = &swarm {
        tracing::info!(host = %s.host, networks = ?s.networks, "Swarm discovery on: services labelled vigie.scrape=true are scraped");
    }
    let router_config = load_router(&opts.router_config)?;

    let db_opts = DbOptions {
        retention: opts.retention,
        retention_bytes: opts.retention_size,
        out_of_order_window: opts.out_of_order_window,
        wal_checkpoint_size: opts.wal_checkpoint_size,
    };
    let (db, report) = Db::open(&opts.data_dir, db_opts)?;
    tracing::info!(
        dir = %opts.data_dir.display(),
        blocks = db.blocks().len(),
        checkpoint = ?report.wal.checkpoint,
        segments = report.wal.segments,
        series = report.series,
        samples = report.samples,
        unknown_refs = report.unknown_refs,
        corrupt = report.wal.corruption.is_some(),
        duration_ms = report.duration_ms,
        "WAL replayed"
    );
    let head = db.head().clone();
    let metrics = Metrics::new(db.clone());
    let (discovery, groups_rx) = DiscoveryManager::new();
    let default_yaml = config::default_yaml(&self_address(&local));
    let mut initial = load(&opts.config, &default_yaml)?;
    if let Some(s) = &swarm {
        initial.add_swarm_job(s);
    }
    let (config_tx, config_rx) = watch::channel(Arc::new(initial.clone()));
    let engine = Engine::new(
        db.clone(),
        EngineOptions {
            lookback_delta: opts.lookback_delta,
            timeout: opts.query_timeout,
            max_samples: opts.query_max_samples,
            max_concurrency: opts.query_max_concurrency,
        },
    );
    let forwarder = Forwarder::new(metrics.clone());
    tokio::spawn(forwarder.clone().run());
    let external_url = opts.external_url.clone().unwrap_or_else(|| format!("http://{}", self_address(&local)));
    let router_opts = crate::alert::router::OpenOptions {
        data_dir: Some(&opts.data_dir),
        external_url: &external_url,
        // Prometheus (and vigie's rules) resend firing alerts within this delay.
        restore_hold: opts.resend_delay,
    };
    let router = Router::open(router_config, router_opts, metrics.clone())?;
    tokio::spawn(router.clone().run());
    let gauge_source: Arc<dyn crate::metrics::RouterGaugeSource> = router.clone();
    metrics.set_router_source(Arc::downgrade(&gauge_source));
    let sinks: Vec<Arc<dyn AlertSink>> = vec![forwarder.clone(), router.clone()];
    let rules = RuleManager::new(db.clone(), engine.clone(), metrics.clone(), sinks);
    let monitor_reports: Arc<RwLock<Vec<ObjectReport>>> = Arc::default();
    let reloader = Arc::new(Reloader {
        path: opts.config.clone(),
        router_path: opts.router_config.clone(),
        router: router.clone(),
        default_yaml,
        discovery: Mutex::new(discovery),
        config_tx,
        metrics: metrics.clone(),
        rules: rules.clone(),
        forwarder: forwarder.clone(),
        swarm,
        monitors_dir: opts.monitors_dir.clone(),
        kube_objects: kube_objects.clone(),
        platform,
        kube_secrets: Mutex::new(None),
        kubernetes_annotations: opts.kubernetes_annotations,
        monitors: Mutex::new(MonitorSet::default()),
        monitor_reports: monitor_reports.clone(),
        reloading: Mutex::new(()),
        rule_opts: RuleOptions {
            external_labels: initial.global.external_labels.clone(),
            external_url: external_url.trim_end_matches('/').to_string(),
            resend_delay: opts.resend_delay,
            outage_tolerance: opts.for_outage_tolerance,
            grace_period: opts.for_grace_period,
        },
    });
    reloader.apply(initial.clone(), Vec::new()).map_err(AppError::Alerting)?;
    metrics.record_reload(true, now_ms() / 1000);
    if let Some(dir) = &opts.monitors_dir {
        // Taken first, so an edit made during the first load is seen.
        let signature = dir_signature(dir);
        // Objects are applied one by one: a bad one is reported, not fatal.
        let _ = reloader.reload();
        spawn_monitors_watch(reloader.clone(), dir.clone(), signature);
    }

    let seed = initial.global.external_labels.stable_hash();
    let scrape = ScrapeManager::new(head.clone(), metrics.clone(), seed);
    let targets = scrape.view();
    if let (Some(client), Some(objects)) = (kube_client, kube_objects) {
        let secrets_dir = opts.data_dir.join("secrets");
        spawn_kube_objects(reloader.clone(), objects, client, monitor_reports.clone(), targets.clone(), secrets_dir);
    }
    tokio::spawn(scrape.run(config_rx.clone(), groups_rx));

    let reload_fn: ReloadFn = {
        let r = reloader.clone();
        Arc::new(move || r.reload())
    };
    let state = Arc::new(AppState {
        engine,
        rules: rules.clone(),
        forwarder,
        router: router.clone(),
        db: db.clone(),
        targets,
        config: config_rx,
        reload: reload_fn,
        flags: opts.flags.clone(),
        metrics,
        ready: AtomicBool::new(false),
        started_ms: now_ms(),
        monitors: monitor_reports,
    });

    spawn_sighup(reloader.clone());
    spawn_maintenance(db.clone());

    tracing::info!(listen = %local, config = ?opts.config, jobs = initial.scrape_jobs.len(), "vigie started");
    state.ready.store(true, Ordering::Release);
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(AppError::Serve)?;
    rules.stop();
    router.persist_dirty(true);
    db.close()?;
    tracing::info!("vigie stopped");
    Ok(())
}

fn swarm_settings(opts: &RunOptions) -> SwarmAutoSettings {
    SwarmAutoSettings {
        host: opts.swarm_host.clone(),
        networks: opts.swarm_networks.clone(),
        relist: opts.swarm_relist,
    }
}

/// `--discovery auto`: Swarm when the Docker socket answers and this node is a manager.
async fn swarm_manager_answers(host: &str) -> bool {
    let probe = async {
        let mut api = crate::discovery::swarm::api::DockerApi::new(host, Duration::from_secs(2)).ok()?;
        api.negotiate().await.ok()?;
        api.check_manager().await.ok()
    };
    tokio::time::timeout(Duration::from_secs(3), probe).await.ok().flatten().is_some()
}

/// The files of the monitors directory with their modification time and size.
fn dir_signature(dir: &std::path::Path) -> DirSignature {
    let mut files = crate::operator::files::list(dir).unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            (f, modified, meta.map(|m| m.len()).unwrap_or(0))
        })
        .collect()
}

type DirSignature = Vec<(PathBuf, Option<std::time::SystemTime>, u64)>;

/// Reloads when a file of the monitors directory is added, changed or removed, once the
/// directory has stayed the same for one more poll (an editor that truncates before it
/// writes must not make the objects vanish for a moment).
fn spawn_monitors_watch(reloader: Arc<Reloader>, dir: PathBuf, mut applied: DirSignature) {
    tokio::spawn(async move {
        let mut previous = applied.clone();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let d = dir.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || dir_signature(&d)).await else { continue };
            let settled = now == previous;
            previous = now.clone();
            if settled && now != applied {
                applied = now;
                tracing::info!(dir = %dir.display(), "monitors directory changed");
                let r = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || r.reload()).await;
            }
        }
    });
}

/// The path of the service-account token a pod gets: its presence means in-cluster.
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Reloads when vigie's objects change in the cluster, and writes their status (also when
/// only the health of their targets changed).
fn spawn_kube_objects(
    reloader: Arc<Reloader>,
    objects: crate::operator::kube::ObjectStores,
    client: kube::Client,
    reports: Arc<RwLock<Vec<ObjectReport>>>,
    targets: crate::scrape::TargetsView,
    secrets_dir: PathBuf,
) {
    let writer = crate::operator::kube::StatusWriter::new(client.clone());
    let reloaded = Arc::new(tokio::sync::Notify::new());
    // Status is written on its own task, so a round of writes never delays a reload.
    {
        let (objects, reloaded) = (objects.clone(), reloaded.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = reloaded.notified() => {}
                }
                let counts: crate::operator::kube::TargetCounts = targets
                    .read()
                    .iter()
                    .map(|(job, pool)| {
                        let up = pool.active.iter().filter(|t| t.health.read().up == Some(true)).count() as u64;
                        (job.clone(), (pool.active.len() as u64, up))
                    })
                    .collect();
                let current = reports.read().clone();
                writer.write(&objects, &current, &counts).await;
            }
        });
    }
    let mut changes = objects.changes.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            let changed = tokio::select! {
                r = changes.changed() => {
                    if r.is_err() { return }
                    changes.borrow_and_update();
                    true
                }
                _ = tick.tick() => false,
            };
            // Referenced Secrets are read again on every object change and once a minute.
            let wanted = crate::operator::kube::referenced_secrets(&objects);
            let (available, rotated) = crate::operator::kube::sync_secrets(&client, &wanted, &secrets_dir).await;
            let files = SecretFiles { dir: secrets_dir.clone(), directories: Vec::new(), namespaced: Some(available) };
            let reload = {
                let mut current = reloader.kube_secrets.lock();
                let different = current.as_ref().and_then(|c| c.namespaced.as_ref()) != files.namespaced.as_ref();
                *current = Some(files);
                changed || rotated || different
            };
            if reload {
                let rl = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || rl.reload()).await;
                reloaded.notify_one();
            }
        }
    });
}

fn spawn_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || r.reload()).await;
        }
    });
}

/// Compaction and retention every minute, and a WAL checkpoint whenever the head asks for
/// one, off the async threads.
fn spawn_maintenance(db: Arc<Db>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let db = db.clone();
            tokio::select! {
                _ = tick.tick() => {
                    // Errors are logged and counted inside; the next tick retries.
                    let _ = tokio::task::spawn_blocking(move || db.maintain(now_ms())).await;
                }
                () = db.head().checkpoint_wanted().notified() => {
                    let head = db.head().clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(e) = head.checkpoint_wal() {
                            tracing::error!(error = %e, "WAL checkpoint failed; the log keeps every segment until the next one");
                        }
                    })
                    .await;
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
