//! vigie's own metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Stages record events through [`Metrics`]; the storage's figures are read when
//! `/metrics` is scraped, by a collector, so the hot append path carries no counters.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::tsdb::Db;

type JobLabels = Vec<(String, String)>;

/// Counters and gauges of the running process.
pub struct Metrics {
    registry: Registry,
    scrapes: Family<JobLabels, Counter>,
    scrape_failures: Family<JobLabels, Counter>,
    samples_rejected: Family<JobLabels, Counter>,
    targets: Family<JobLabels, Gauge>,
    reload_ok: Gauge,
    reload_ts: Gauge,
    reloads_total: Counter,
    reload_failures: Counter,
    rw_requests: Family<JobLabels, Counter>,
    rw_samples: Counter,
    rw_rejected: Family<JobLabels, Counter>,
    rule_evals: Family<JobLabels, Counter>,
    rule_eval_failures: Family<JobLabels, Counter>,
    rule_group_duration: Family<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    rule_group_missed: Family<JobLabels, Counter>,
    notifications_sent: Family<JobLabels, Counter>,
    notification_errors: Family<JobLabels, Counter>,
    notifications_dropped: Counter,
    notification_queue: Gauge,
    am_alerts_received: Family<JobLabels, Counter>,
    am_alerts_invalid: Counter,
    am_notifications: Family<JobLabels, Counter>,
    am_notifications_failed: Family<JobLabels, Counter>,
    am_requests: Family<JobLabels, Counter>,
    am_requests_failed: Family<JobLabels, Counter>,
    router_source: RouterSlot,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Figures the router reports when `/metrics` is read, under Alertmanager's names.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouterGauges {
    pub alerts_active: usize,
    pub alerts_suppressed: usize,
    pub silences: [usize; 3],
    pub aggregation_groups: usize,
    pub nflog_entries: usize,
}

/// Where the router's gauges come from (set once the router exists).
pub trait RouterGaugeSource: Send + Sync {
    fn router_gauges(&self) -> RouterGauges;
}

type RouterSlot = Arc<parking_lot::RwLock<Option<std::sync::Weak<dyn RouterGaugeSource>>>>;

struct RouterCollector(RouterSlot);

impl std::fmt::Debug for RouterCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouterCollector")
    }
}

fn labeled_gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, usize)],
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Gauge)?;
    for (v, n) in values {
        let g = ConstGauge::new(*n as i64);
        g.encode(family.encode_family(&vec![(label.to_string(), v.to_string())])?)?;
    }
    Ok(())
}

impl Collector for RouterCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(src) = self.0.read().as_ref().and_then(std::sync::Weak::upgrade) else { return Ok(()) };
        let g = src.router_gauges();
        let e = &mut enc;
        labeled_gauges(
            e,
            "alertmanager_alerts",
            "Alerts the router holds, by state.",
            "state",
            &[("active", g.alerts_active), ("suppressed", g.alerts_suppressed)],
        )?;
        labeled_gauges(
            e,
            "alertmanager_silences",
            "Silences, by state.",
            "state",
            &[("active", g.silences[0]), ("pending", g.silences[1]), ("expired", g.silences[2])],
        )?;
        const_gauge(
            e,
            "alertmanager_dispatcher_aggregation_groups",
            "Aggregation groups.",
            g.aggregation_groups as i64,
        )?;
        const_gauge(e, "alertmanager_nflog_entries", "Entries of the notification log.", g.nflog_entries as i64)?;
        Ok(())
    }
}

struct HeadCollector(Arc<Db>);

impl std::fmt::Debug for HeadCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadCollector")
    }
}

fn const_gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

fn const_counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for HeadCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.head().stats();
        let d = self.0.stats();
        let e = &mut enc;
        const_gauge(e, "vigie_tsdb_blocks_loaded", "Persisted blocks in use.", d.blocks as i64)?;
        const_gauge(e, "vigie_tsdb_storage_blocks_bytes", "Size of the persisted blocks.", d.blocks_bytes as i64)?;
        const_counter(e, "vigie_tsdb_compactions", "Blocks written by head compaction or merging.", d.compactions)?;
        const_counter(e, "vigie_tsdb_compactions_failed", "Compactions that failed.", d.compaction_failures)?;
        const_counter(e, "vigie_tsdb_blocks_quarantined", "Blocks moved to quarantine/ as damaged.", d.quarantined)?;
        const_counter(
            e,
            "vigie_tsdb_retention_deletions",
            "Blocks deleted by time or size retention.",
            d.retention_deletions,
        )?;
        const_counter(
            e,
            "vigie_tsdb_out_of_order_accepted",
            "Late samples accepted in the out-of-order window.",
            s.late_appended,
        )?;
        const_gauge(e, "vigie_tsdb_head_series", "Series in the head block.", s.series as i64)?;
        const_gauge(
            e,
            "vigie_tsdb_head_chunk_bytes",
            "Bytes of compressed chunk data in the head.",
            s.chunk_bytes as i64,
        )?;
        if s.min_time <= s.max_time {
            const_gauge(e, "vigie_tsdb_head_min_time", "Lowest timestamp in the head, in ms.", s.min_time)?;
            const_gauge(e, "vigie_tsdb_head_max_time", "Highest timestamp in the head, in ms.", s.max_time)?;
        }
        const_counter(e, "vigie_tsdb_head_samples_appended", "Samples appended to the head.", s.samples_appended)?;
        const_counter(
            e,
            "vigie_tsdb_out_of_order_samples",
            "Samples rejected as out of order or duplicate.",
            s.out_of_order,
        )?;
        const_counter(e, "vigie_tsdb_wal_write_failures", "Commits whose WAL write failed.", s.wal_failures)?;
        const_counter(
            e,
            "vigie_tsdb_head_series_removed",
            "Series removed from the head after their last sample left it.",
            s.series_removed,
        )?;
        const_counter(e, "vigie_tsdb_checkpoints", "WAL checkpoints written.", s.checkpoints)?;
        const_counter(e, "vigie_tsdb_checkpoint_failures", "WAL checkpoints that failed.", s.checkpoint_failures)?;
        Ok(())
    }
}

impl Metrics {
    pub fn new(db: Arc<Db>) -> Arc<Self> {
        let mut registry = Registry::default();
        let build = Family::<JobLabels, Gauge>::default();
        build.get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())]).set(1);
        registry.register("vigie_build_info", "vigie build information.", build);
        let m = Metrics {
            scrapes: Family::default(),
            scrape_failures: Family::default(),
            samples_rejected: Family::default(),
            targets: Family::default(),
            reload_ok: Gauge::default(),
            reload_ts: Gauge::default(),
            reloads_total: Counter::default(),
            reload_failures: Counter::default(),
            rw_requests: Family::default(),
            rw_samples: Counter::default(),
            rw_rejected: Family::default(),
            rule_evals: Family::default(),
            rule_eval_failures: Family::default(),
            rule_group_duration: Family::default(),
            rule_group_missed: Family::default(),
            notifications_sent: Family::default(),
            notification_errors: Family::default(),
            notifications_dropped: Counter::default(),
            notification_queue: Gauge::default(),
            am_alerts_received: Family::default(),
            am_alerts_invalid: Counter::default(),
            am_notifications: Family::default(),
            am_notifications_failed: Family::default(),
            am_requests: Family::default(),
            am_requests_failed: Family::default(),
            router_source: RouterSlot::default(),
            registry,
        };
        let mut m = m;
        let r = &mut m.registry;
        r.register("vigie_scrapes", "Scrapes performed, by job.", m.scrapes.clone());
        r.register("vigie_scrape_failures", "Failed scrapes, by job.", m.scrape_failures.clone());
        r.register(
            "vigie_scrape_samples_rejected",
            "Scraped samples rejected by storage (out of order, duplicate).",
            m.samples_rejected.clone(),
        );
        r.register("vigie_scrape_targets", "Active targets, by job.", m.targets.clone());
        r.register(
            "vigie_config_last_reload_successful",
            "Whether the last configuration reload succeeded.",
            m.reload_ok.clone(),
        );
        r.register(
            "vigie_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration reload.",
            m.reload_ts.clone(),
        );
        r.register("vigie_config_reloads", "Configuration reload attempts.", m.reloads_total.clone());
        r.register("vigie_config_reload_failures", "Configuration reloads rejected.", m.reload_failures.clone());
        r.register(
            "vigie_remote_write_requests",
            "Remote-write requests received, by HTTP code.",
            m.rw_requests.clone(),
        );
        r.register("vigie_remote_write_samples_appended", "Samples stored from remote write.", m.rw_samples.clone());
        r.register(
            "vigie_remote_write_rejected",
            "Remote-write samples (or series, reason invalid_series) not stored, by reason.",
            m.rw_rejected.clone(),
        );
        r.register("vigie_rule_evaluations", "Rule evaluations, by group.", m.rule_evals.clone());
        r.register(
            "vigie_rule_evaluation_failures",
            "Rule evaluations that failed, by group.",
            m.rule_eval_failures.clone(),
        );
        r.register(
            "vigie_rule_group_last_duration_seconds",
            "How long the last evaluation of each rule group took.",
            m.rule_group_duration.clone(),
        );
        r.register(
            "vigie_rule_group_iterations_missed",
            "Evaluations skipped because the previous one ran past its slot, by group.",
            m.rule_group_missed.clone(),
        );
        r.register(
            "vigie_notifications_sent",
            "Alerts sent to each Alertmanager (including failed attempts).",
            m.notifications_sent.clone(),
        );
        r.register(
            "vigie_notifications_errors",
            "Alerts whose sending to an Alertmanager failed.",
            m.notification_errors.clone(),
        );
        r.register(
            "vigie_notifications_dropped",
            "Alerts dropped before reaching an Alertmanager (queue full or retries used up).",
            m.notifications_dropped.clone(),
        );
        r.register("vigie_notifications_queue_length", "Alerts waiting to be sent.", m.notification_queue.clone());
        // The router's metrics carry Alertmanager's names, so its dashboards and alerts work.
        r.register(
            "alertmanager_alerts_received",
            "Alerts received by the router, by status.",
            m.am_alerts_received.clone(),
        );
        r.register(
            "alertmanager_alerts_invalid",
            "Alerts refused by the router as invalid.",
            m.am_alerts_invalid.clone(),
        );
        r.register(
            "alertmanager_notifications",
            "Notifications attempted, by integration.",
            m.am_notifications.clone(),
        );
        r.register(
            "alertmanager_notifications_failed",
            "Notifications that failed after their retries, by integration.",
            m.am_notifications_failed.clone(),
        );
        r.register(
            "alertmanager_notification_requests",
            "Requests made to integrations (each retry counts).",
            m.am_requests.clone(),
        );
        r.register(
            "alertmanager_notification_requests_failed",
            "Requests to integrations that failed.",
            m.am_requests_failed.clone(),
        );
        r.register_collector(Box::new(RouterCollector(m.router_source.clone())));
        r.register_collector(Box::new(HeadCollector(db)));
        Arc::new(m)
    }

    fn job(job: &str) -> JobLabels {
        vec![("job".to_string(), job.to_string())]
    }

    pub fn record_scrape(&self, job: &str, up: bool, rejected: usize) {
        let l = Self::job(job);
        self.scrapes.get_or_create(&l).inc();
        if !up {
            self.scrape_failures.get_or_create(&l).inc();
        }
        if rejected > 0 {
            self.samples_rejected.get_or_create(&l).inc_by(rejected as u64);
        }
    }

    pub fn set_targets(&self, job: &str, n: usize) {
        self.targets.get_or_create(&Self::job(job)).set(n as i64);
    }

    pub fn record_reload(&self, ok: bool, unix_secs: i64) {
        self.reloads_total.inc();
        self.reload_ok.set(ok as i64);
        if ok {
            self.reload_ts.set(unix_secs);
        } else {
            self.reload_failures.inc();
        }
    }

    /// One remote-write request: its answer code and, when it was decoded, what it stored.
    pub fn record_remote_write(&self, code: u16, report: Option<&crate::api::remote_write::IngestReport>) {
        self.rw_requests.get_or_create(&vec![("code".into(), code.to_string())]).inc();
        let Some(r) = report else { return };
        self.rw_samples.inc_by(r.appended as u64);
        for (reason, n) in [
            ("out_of_order", r.out_of_order),
            ("duplicate", r.duplicates),
            ("out_of_bounds", r.out_of_bounds),
            ("too_new", r.too_new),
            ("invalid_series", r.invalid_series),
            ("histogram", r.histograms_dropped),
            ("exemplar", r.exemplars_dropped),
        ] {
            if n > 0 {
                self.rw_rejected.get_or_create(&vec![("reason".into(), reason.into())]).inc_by(n as u64);
            }
        }
    }

    /// One evaluation of a rule group: how long it took and how many of its rules failed.
    pub fn record_rule_group(&self, group: &str, rules: usize, failed: usize, seconds: f64) {
        let l = vec![("rule_group".to_string(), group.to_string())];
        self.rule_evals.get_or_create(&l).inc_by(rules as u64);
        if failed > 0 {
            self.rule_eval_failures.get_or_create(&l).inc_by(failed as u64);
        }
        self.rule_group_duration.get_or_create(&l).set(seconds);
    }

    pub fn record_rule_group_missed(&self, group: &str, missed: u64) {
        self.rule_group_missed.get_or_create(&vec![("rule_group".to_string(), group.to_string())]).inc_by(missed);
    }

    /// A batch of `n` alerts posted to `alertmanager` (`ok` if it answered 2xx).
    pub fn record_notifications(&self, alertmanager: &str, n: usize, ok: bool) {
        let l = vec![("alertmanager".to_string(), alertmanager.to_string())];
        self.notifications_sent.get_or_create(&l).inc_by(n as u64);
        if !ok {
            self.notification_errors.get_or_create(&l).inc_by(n as u64);
        }
    }

    pub fn record_notifications_dropped(&self, n: usize) {
        self.notifications_dropped.inc_by(n as u64);
    }

    pub fn set_notification_queue(&self, n: usize) {
        self.notification_queue.set(n as i64);
    }

    /// Makes `/metrics` report the router's gauges.
    pub fn set_router_source(&self, src: std::sync::Weak<dyn RouterGaugeSource>) {
        *self.router_source.write() = Some(src);
    }

    pub fn record_router_alert_received(&self, firing: bool) {
        let status = if firing { "firing" } else { "resolved" };
        self.am_alerts_received.get_or_create(&vec![("status".into(), status.into())]).inc();
    }

    pub fn record_router_alerts_invalid(&self, n: usize) {
        self.am_alerts_invalid.inc_by(n as u64);
    }

    /// One notification through `integration` that took `attempts` requests.
    pub fn record_router_notification(&self, integration: &str, attempts: usize, ok: bool) {
        let l = vec![("integration".to_string(), integration.to_string())];
        self.am_notifications.get_or_create(&l).inc();
        self.am_requests.get_or_create(&l).inc_by(attempts as u64);
        let failed_requests = if ok { attempts.saturating_sub(1) } else { attempts };
        if failed_requests > 0 {
            self.am_requests_failed.get_or_create(&l).inc_by(failed_requests as u64);
        }
        if !ok {
            self.am_notifications_failed.get_or_create(&l).inc();
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
