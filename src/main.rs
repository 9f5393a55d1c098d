//! The `vigie` command line: parses flags and hands over to the library.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vigie",
    version,
    about = "Discovery, scraping, storage, PromQL, rules and alert routing in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // built once at startup; size does not matter
enum Command {
    /// Run vigie (the default).
    Run(RunArgs),
    /// Backfill historical data into blocks, like promtool tsdb create-blocks-from.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Validate files; exits 1 with file:line:col messages.
    Check {
        #[command(subcommand)]
        what: CheckWhat,
    },
    /// Print the CustomResourceDefinitions of Monitor, AlertRule and AlertRoute.
    Crds,
    /// Write prometheus.yml, rules/*.yml and alertmanager.yml equivalent to a monitors dir.
    Generate {
        #[arg(long = "monitors-dir")]
        monitors_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Where the selected workloads run: swarm or kubernetes.
        #[arg(long, default_value = "kubernetes")]
        platform: String,
        /// The router configuration the AlertRoutes are grafted onto.
        #[arg(long = "router-config")]
        router_config: Option<PathBuf>,
        /// The Docker API Prometheus reads (swarm).
        #[arg(long = "swarm-host", default_value = "unix:///var/run/docker.sock")]
        swarm_host: String,
    },
    /// Run unit tests.
    Test {
        #[command(subcommand)]
        what: TestWhat,
    },
}

#[derive(Subcommand, Debug)]
enum TestWhat {
    /// Rule unit tests in promtool's file format.
    Rules { files: Vec<PathBuf> },
}

#[derive(Subcommand, Debug)]
enum ImportWhat {
    /// An OpenMetrics text file with a timestamp on every sample.
    Openmetrics {
        file: PathBuf,
        #[arg(long = "data-dir", env = "VIGIE_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

fn import(what: ImportWhat) -> anyhow::Result<()> {
    let ImportWhat::Openmetrics { file, data_dir } = what;
    let opened = std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // SAFETY: the map is only read. Another process changing the file during the import
    // would give wrong samples (or SIGBUS if it truncates it); backfill files are static.
    // Mapping instead of reading spares copying a file that may be gigabytes.
    let input = unsafe { memmap2::Mmap::map(&opened) }.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    std::fs::create_dir_all(&data_dir)?;
    let started = std::time::Instant::now();
    let total = input.len().max(1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let report = vigie::tsdb::import::import_openmetrics(&input, &data_dir, now, |done| {
        let mb = done as f64 / (1 << 20) as f64;
        let rate = mb / started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\rimport: {:>3}% ({mb:.0} of {:.0} MB, {rate:.0} MB/s)",
            done * 100 / total,
            total as f64 / (1 << 20) as f64
        );
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    eprintln!();
    println!(
        "imported {} samples of {} series into {} blocks in {} ({} duplicate timestamps skipped) in {:.1}s",
        report.samples,
        report.series,
        report.blocks.len(),
        data_dir.display(),
        report.duplicates,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Subcommand, Debug)]
enum CheckWhat {
    /// A vigie.yml (Prometheus configuration format).
    Config { files: Vec<PathBuf> },
    /// Prometheus rule files.
    Rules { files: Vec<PathBuf> },
    /// Monitor/AlertRule/AlertRoute files or directories (as `--monitors-dir` reads them).
    Monitors { files: Vec<PathBuf> },
    /// Router configurations (Alertmanager format); with `--test`, where a label set goes.
    Router {
        files: Vec<PathBuf>,
        /// Labels to route, as matchers: `--test 'alertname="X",severity="page"'`.
        #[arg(long)]
        test: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Prometheus-format configuration file; without it vigie scrapes itself.
    #[arg(long, env = "VIGIE_CONFIG")]
    config: Option<PathBuf>,
    /// Alertmanager-format routing configuration.
    #[arg(long = "router-config", env = "VIGIE_ROUTER_CONFIG")]
    router_config: Option<PathBuf>,
    /// Directory of Monitor/AlertRule/AlertRoute YAML files.
    #[arg(long = "monitors-dir", env = "VIGIE_MONITORS_DIR")]
    monitors_dir: Option<PathBuf>,
    /// Where data is kept.
    #[arg(long = "data-dir", env = "VIGIE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Address of the HTTP listener (API, UI, metrics).
    #[arg(long, env = "VIGIE_LISTEN", default_value = "0.0.0.0:9090")]
    listen: String,
    /// Where targets come from: auto, kubernetes, swarm, files or none.
    #[arg(long, env = "VIGIE_DISCOVERY", default_value = "auto")]
    discovery: String,
    /// The Docker API for Swarm discovery.
    #[arg(long = "swarm-host", env = "VIGIE_SWARM_HOST", default_value = "unix:///var/run/docker.sock")]
    swarm_host: String,
    /// A network to scrape Swarm tasks on (repeatable; default: the ones vigie is attached to).
    #[arg(long = "swarm-network", env = "VIGIE_SWARM_NETWORK", value_delimiter = ',')]
    swarm_network: Vec<String>,
    /// How often Swarm discovery lists everything again, besides following events.
    #[arg(long = "swarm-relist-interval", env = "VIGIE_SWARM_RELIST_INTERVAL", default_value = "30s")]
    swarm_relist_interval: String,
    /// On Kubernetes, also scrape pods annotated `prometheus.io/scrape: "true"` (jobs
    /// kubernetes-pods and kubernetes-pods-slow).
    #[arg(long = "kubernetes-annotations", env = "VIGIE_KUBERNETES_ANNOTATIONS")]
    kubernetes_annotations: bool,
    /// How long samples are kept.
    #[arg(long, env = "VIGIE_RETENTION", default_value = "15d")]
    retention: String,
    /// Largest size the stored blocks may take (e.g. 50GB; 0: no limit); oldest go first.
    #[arg(long = "retention-size", env = "VIGIE_RETENTION_SIZE", default_value = "0")]
    retention_size: String,
    /// How much older than the newest sample a sample may be and still be stored (0: none).
    #[arg(long = "out-of-order-window", env = "VIGIE_OUT_OF_ORDER_WINDOW", default_value = "0")]
    out_of_order_window: String,
    /// Log growth after which the head is written into a WAL checkpoint (at least half the
    /// last checkpoint's size): bounds the log a restart decodes sample by sample.
    #[arg(long = "wal-checkpoint-size", env = "VIGIE_WAL_CHECKPOINT_SIZE", default_value = "32MiB")]
    wal_checkpoint_size: String,
    /// Longest a query may run before it is aborted.
    #[arg(long = "query.timeout", env = "VIGIE_QUERY_TIMEOUT", default_value = "2m")]
    query_timeout: String,
    /// Most samples a query may hold in memory; a query needing more fails with an error.
    #[arg(long = "query.max-samples", env = "VIGIE_QUERY_MAX_SAMPLES", default_value = "50000000")]
    query_max_samples: usize,
    /// Most queries evaluated at once; more wait for a slot within their timeout.
    #[arg(long = "query.max-concurrency", env = "VIGIE_QUERY_MAX_CONCURRENCY", default_value = "20")]
    query_max_concurrency: usize,
    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", env = "VIGIE_QUERY_LOOKBACK_DELTA", default_value = "5m")]
    lookback_delta: String,
    /// The URL vigie is reached at (alert links, templates); default http://<listen address>.
    #[arg(long = "web.external-url", env = "VIGIE_WEB_EXTERNAL_URL")]
    external_url: Option<String>,
    /// Least time between two sends of the same firing alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", env = "VIGIE_RULES_ALERT_RESEND_DELAY", default_value = "1m")]
    resend_delay: String,
    /// Longest outage after which an alert's `for` progress is still restored.
    #[arg(
        long = "rules.alert.for-outage-tolerance",
        env = "VIGIE_RULES_ALERT_FOR_OUTAGE_TOLERANCE",
        default_value = "1h"
    )]
    for_outage_tolerance: String,
    /// Least time an alert with a long `for` waits after a restart before firing.
    #[arg(long = "rules.alert.for-grace-period", env = "VIGIE_RULES_ALERT_FOR_GRACE_PERIOD", default_value = "10m")]
    for_grace_period: String,
}

fn duration(flag: &str, s: &str) -> anyhow::Result<std::time::Duration> {
    vigie::config::PromDuration::parse(s).map(|d| d.0).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let flags: BTreeMap<String, String> = [
        ("config", args.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("router-config", args.router_config.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("monitors-dir", args.monitors_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("data-dir", args.data_dir.display().to_string()),
        ("listen", args.listen.clone()),
        ("discovery", args.discovery.clone()),
        ("swarm-host", args.swarm_host.clone()),
        ("swarm-network", args.swarm_network.join(",")),
        ("swarm-relist-interval", args.swarm_relist_interval.clone()),
        ("kubernetes-annotations", args.kubernetes_annotations.to_string()),
        ("retention", args.retention.clone()),
        ("retention-size", args.retention_size.clone()),
        ("out-of-order-window", args.out_of_order_window.clone()),
        ("wal-checkpoint-size", args.wal_checkpoint_size.clone()),
        ("query.lookback-delta", args.lookback_delta.clone()),
        ("query.timeout", args.query_timeout.clone()),
        ("query.max-samples", args.query_max_samples.to_string()),
        ("query.max-concurrency", args.query_max_concurrency.to_string()),
        ("web.external-url", args.external_url.clone().unwrap_or_default()),
        ("rules.alert.resend-delay", args.resend_delay.clone()),
        ("rules.alert.for-outage-tolerance", args.for_outage_tolerance.clone()),
        ("rules.alert.for-grace-period", args.for_grace_period.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let opts = vigie::app::RunOptions {
        retention: duration("retention", &args.retention)?,
        lookback_delta: duration("query.lookback-delta", &args.lookback_delta)?,
        query_timeout: duration("query.timeout", &args.query_timeout)?,
        query_max_samples: args.query_max_samples,
        query_max_concurrency: args.query_max_concurrency,
        resend_delay: duration("rules.alert.resend-delay", &args.resend_delay)?,
        for_outage_tolerance: duration("rules.alert.for-outage-tolerance", &args.for_outage_tolerance)?,
        for_grace_period: duration("rules.alert.for-grace-period", &args.for_grace_period)?,
        external_url: args.external_url,
        retention_size: vigie::config::parse_byte_size(&args.retention_size)
            .map_err(|e| anyhow::anyhow!("--retention-size: {e}"))?,
        out_of_order_window: duration("out-of-order-window", &args.out_of_order_window)?,
        wal_checkpoint_size: vigie::config::parse_byte_size(&args.wal_checkpoint_size)
            .map_err(|e| anyhow::anyhow!("--wal-checkpoint-size: {e}"))?,
        config: args.config,
        router_config: args.router_config,
        monitors_dir: args.monitors_dir,
        data_dir: args.data_dir,
        listen: args.listen,
        discovery: args.discovery,
        swarm_host: args.swarm_host,
        swarm_networks: args.swarm_network,
        swarm_relist: vigie::config::PromDuration::parse(&args.swarm_relist_interval)
            .map_err(|e| anyhow::anyhow!("--swarm-relist-interval: {e}"))?
            .0,
        kubernetes_annotations: args.kubernetes_annotations,
        flags,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(vigie::app::run(opts))?;
    Ok(())
}

/// `vigie check rules`: like `promtool check rules`, every error of every file, exit 1 if any.
fn check_rules(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match vigie::rules::file::load_file(f, &vigie::rules::GroupDefaults::default()) {
            Ok(groups) => {
                let errors: Vec<&str> = groups.iter().flat_map(|g| g.errors()).collect();
                if errors.is_empty() {
                    let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                    println!("  SUCCESS: {n} rules found");
                } else {
                    failed = true;
                    eprintln!("  FAILED:");
                    for e in errors {
                        eprintln!("{e}");
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("  FAILED:\n{e}");
            }
        }
        println!();
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn generate(
    dir: &std::path::Path,
    out: &std::path::Path,
    platform: &str,
    router: Option<&std::path::Path>,
    swarm_host: &str,
) -> ExitCode {
    use vigie::operator::{Context, MonitorSet, compile::Platform, files};
    let platform = match platform {
        "swarm" => Platform::Swarm { host: swarm_host.to_string() },
        "kubernetes" => Platform::Kubernetes,
        other => {
            eprintln!("--platform {other:?}: swarm or kubernetes");
            return ExitCode::from(2);
        }
    };
    let docs = match files::read_dir(dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let base = match router {
        Some(p) => match vigie::alert::config::read_file(p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        },
        None => vigie::alert::config::default_file(),
    };
    let check = |_: &vigie::config::ScrapeConfig| Ok(());
    let router_dir = router.and_then(|p| p.parent()).unwrap_or(std::path::Path::new("."));
    let ctx = Context {
        platform,
        secrets: Default::default(),
        rule_defaults: Default::default(),
        router_base: &base,
        router_dir,
        check_job: &check,
    };
    let (set, desired) = MonitorSet::default().load(docs, &ctx);
    let mut failed = false;
    for r in set.reports.iter().filter(|r| r.error.is_some()) {
        eprintln!("{} ({}): left out", r.error.as_deref().unwrap_or_default(), r.key);
        failed = true;
    }
    let written = match vigie::operator::generate::files(&set, &desired, &base) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for (path, text) in written {
        let p = out.join(&path);
        if let Some(parent) = p.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            eprintln!("{}: {e}", parent.display());
            return ExitCode::from(1);
        }
        if let Err(e) = std::fs::write(&p, text) {
            eprintln!("{}: {e}", p.display());
            return ExitCode::from(1);
        }
        println!("wrote {}", p.display());
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// `vigie check monitors`: every object's outcome, as `--monitors-dir` would load it.
fn check_monitors(paths: &[PathBuf]) -> ExitCode {
    use vigie::operator::{Context, MonitorSet, compile::Platform, files};
    let mut docs = Vec::new();
    for p in paths {
        if p.is_dir() {
            match files::read_dir(p) {
                Ok(d) => docs.extend(d),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            }
        } else {
            docs.extend(files::read_file(p));
        }
    }
    let base = vigie::alert::config::default_file();
    let check = |_: &vigie::config::ScrapeConfig| Ok(());
    let ctx = Context {
        // Selectors are checked as on Swarm; `staticTargets` work everywhere.
        platform: Platform::Swarm { host: "unix:///var/run/docker.sock".into() },
        secrets: Default::default(),
        rule_defaults: Default::default(),
        router_base: &base,
        router_dir: std::path::Path::new("."),
        check_job: &check,
    };
    let (set, _) = MonitorSet::default().load(docs, &ctx);
    let mut failed = false;
    for r in &set.reports {
        match &r.error {
            None => println!("{}:{}: {}: SUCCESS", r.file, r.line, r.key),
            Some(e) => {
                eprintln!("{e} ({})", r.key);
                failed = true;
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// `vigie check router`: every file's errors, timer warnings, and with `--test` the routes
/// a label set reaches (as JSON lines).
fn check_router(files: &[PathBuf], test: Option<&str>) -> ExitCode {
    let labels = match test.map(vigie::alert::matcher::parse_matchers).transpose() {
        Ok(ms) => ms.map(|ms| vigie::model::Labels::from_pairs(ms.into_iter().map(|m| (m.name, m.value)))),
        Err(e) => {
            eprintln!("--test: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = false;
    for f in files {
        match vigie::alert::config::load_file(f) {
            Ok(cfg) => {
                println!(
                    "{}: SUCCESS: {} routes, {} receivers",
                    f.display(),
                    cfg.tree.nodes.len(),
                    cfg.receivers.len()
                );
                for w in vigie::alert::explain::timer_warnings(&cfg.tree) {
                    println!("  warning: {w}");
                }
                if let Some(l) = &labels {
                    for m in vigie::alert::explain::explain(&cfg.tree, l) {
                        println!("{}", serde_json::to_string(&m).unwrap_or_default());
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn check(what: CheckWhat) -> ExitCode {
    let files = match what {
        CheckWhat::Config { files } => files,
        CheckWhat::Rules { files } => return check_rules(&files),
        CheckWhat::Monitors { files } => return check_monitors(&files),
        CheckWhat::Router { files, test } => return check_router(&files, test.as_deref()),
    };
    let mut failed = false;
    for f in &files {
        match vigie::config::load_file(f) {
            Ok(cfg) => {
                // As promtool: the rule files the config names are checked too.
                let rule_files = match vigie::rules::expand_patterns(&cfg.rule_files) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                        continue;
                    }
                };
                println!(
                    "{}: SUCCESS: {} scrape jobs, {} rule files found",
                    f.display(),
                    cfg.scrape_jobs.len(),
                    rule_files.len()
                );
                if !rule_files.is_empty() && check_rules(&rule_files) != ExitCode::SUCCESS {
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Check { what }) => return check(what),
        Some(Command::Generate { monitors_dir, out, platform, router_config, swarm_host }) => {
            return generate(&monitors_dir, &out, &platform, router_config.as_deref(), &swarm_host);
        }
        Some(Command::Crds) => {
            print!("{}", vigie::operator::crd::crds_yaml());
            return ExitCode::SUCCESS;
        }
        Some(Command::Test { what: TestWhat::Rules { files } }) => {
            return if vigie::rules::unittest::run_files(&files) { ExitCode::SUCCESS } else { ExitCode::from(1) };
        }
        Some(Command::Import { what }) => import(what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vigie: {e:#}");
            ExitCode::from(1)
        }
    }
}
