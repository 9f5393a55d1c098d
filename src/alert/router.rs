//! The running router: alerts come in (API v2 posts and vigie's own rules), are stored
//! and grouped; one task sleeps until the next group is due and starts its flush. A flush
//! drops inhibited, silenced and time-muted alerts, then each integration of the receiver
//! checks the notification log, sends (with retries until the flush deadline) and logs
//! what it sent. Silences are on disk before their POST is answered; the notification log
//! and the alerts are written by a background task shortly after they change.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::config::{Integration, RouterConfig};
use super::dispatch::{Dispatcher, Flush};
use super::inhibit::Inhibitor;
use super::matcher::{Matcher, matches_all};
use super::nflog::{self, NotificationLog};
use super::notify::{self, NotifyData};
use super::persist::{PersistError, StateDir};
use super::silence::{Silence, SilenceError, Silences};
use super::store::{AlertStore, StoredAlert, alert_hash, ingest, validate};
use super::{Alert, AlertSink};
use crate::metrics::Metrics;

/// Dispatcher maintenance (empty groups, expired silences and log entries).
const MAINTENANCE: Duration = Duration::from_secs(30);
/// Resolved alerts are kept this long after their end (Alertmanager's `--alerts.gc-interval`).
const RESOLVED_RETENTION_MS: i64 = 30 * 60_000;
/// Snapshots of the alerts are written at most this often (the first at once); senders
/// refresh alerts anyway, and the notification log, written promptly, prevents duplicates.
const ALERTS_SNAPSHOT_EVERY: Duration = Duration::from_secs(10);

const SILENCES_FILE: &str = "silences.json";
const NFLOG_FILE: &str = "nflog.json";
const ALERTS_FILE: &str = "alerts.json";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The configuration and its HTTP clients, swapped as one so a flush never mixes an old
/// route with a new receiver list.
pub struct Runtime {
    pub config: Arc<RouterConfig>,
    clients: HashMap<String, Vec<reqwest::Client>>,
}

/// A configuration checked and ready to swap in (`Router::commit`).
pub struct PreparedConfig(Arc<Runtime>);

struct State {
    runtime: Arc<Runtime>,
    store: AlertStore,
    dispatcher: Dispatcher,
    inhibitor: Inhibitor,
    silences: Silences,
    nflog: NotificationLog,
    alerts_dirty: bool,
    nflog_dirty: bool,
}

/// An alert with its live status, as `GET /api/v2/alerts` shows it.
#[derive(Clone, Debug)]
pub struct AlertView {
    pub alert: StoredAlert,
    pub receivers: Vec<String>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

impl AlertView {
    pub fn suppressed(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

/// One aggregation group for `GET /api/v2/alerts/groups`.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub labels: crate::model::Labels,
    pub receiver: String,
    pub alerts: Vec<AlertView>,
}

pub struct Router {
    state: Mutex<State>,
    wake: Notify,
    persist_wanted: Notify,
    persist_lock: Mutex<()>,
    dir: Option<StateDir>,
    external_url: String,
    metrics: Arc<Metrics>,
    started_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("receiver {receiver:?}: {message}")]
    Client { receiver: String, message: String },
}

/// How long groups rebuilt from the saved alerts wait before their first flush, so that
/// senders can refresh alerts whose `endsAt` passed while vigie was down (a flush at once
/// would announce them resolved and page again on the next resend).
pub struct OpenOptions<'a> {
    pub data_dir: Option<&'a Path>,
    pub external_url: &'a str,
    pub restore_hold: Duration,
}

impl Router {
    /// Starts from the snapshots in `data_dir` (none in memory-only mode).
    pub fn open(
        config: RouterConfig,
        opts: OpenOptions<'_>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Router>, RouterError> {
        let dir = opts.data_dir.map(StateDir::new);
        let now = now_ms();
        let mut store = AlertStore::default();
        let mut silences = Silences::default();
        let mut nflog = NotificationLog::default();
        if let Some(dir) = &dir {
            if let Some(list) = dir.read::<Vec<Silence>>(SILENCES_FILE)? {
                let bad = silences.restore(list);
                if bad > 0 {
                    tracing::warn!(bad, "silences in the snapshot no longer valid were skipped");
                }
            }
            // The log and the alerts only prevent duplicates; a damaged one is reported and
            // started from empty. Silences are the user's data: a damaged file stops the start.
            match dir.read::<Vec<nflog::Entry>>(NFLOG_FILE) {
                Ok(list) => nflog.restore(list.unwrap_or_default()),
                Err(e) => tracing::error!(error = %e, "notification log not restored; starting with an empty one"),
            }
            match dir.read::<Vec<StoredAlert>>(ALERTS_FILE) {
                Ok(list) => list.unwrap_or_default().into_iter().for_each(|a| store.restore(a)),
                Err(e) => tracing::error!(error = %e, "alerts not restored; senders will post them again"),
            }
            tracing::info!(
                silences = silences.snapshot().len(),
                nflog_entries = nflog.len(),
                alerts = store.len(),
                "router state restored"
            );
        }
        let tree = Arc::new(config.tree.clone());
        let mut dispatcher = Dispatcher::new(tree);
        for a in store.iter() {
            dispatcher.insert(a, now);
        }
        dispatcher.defer_all_until(now + opts.restore_hold.as_millis() as i64);
        let inhibitor = Inhibitor::new(&config.inhibit_rules, store.iter());
        let clients = build_clients(&config)?;
        Ok(Arc::new(Router {
            state: Mutex::new(State {
                runtime: Arc::new(Runtime { config: Arc::new(config), clients }),
                store,
                dispatcher,
                inhibitor,
                silences,
                nflog,
                alerts_dirty: false,
                nflog_dirty: false,
            }),
            wake: Notify::new(),
            persist_wanted: Notify::new(),
            persist_lock: Mutex::new(()),
            dir,
            external_url: opts.external_url.trim_end_matches('/').to_string(),
            metrics,
            started_ms: now,
        }))
    }

    pub fn config(&self) -> Arc<RouterConfig> {
        self.state.lock().runtime.config.clone()
    }

    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Checks a configuration and builds its clients, without applying it.
    pub fn prepare(&self, config: RouterConfig) -> Result<PreparedConfig, RouterError> {
        let clients = build_clients(&config)?;
        Ok(PreparedConfig(Arc::new(Runtime { config: Arc::new(config), clients })))
    }

    /// Swaps in a prepared configuration; groups whose route and labels survive keep their
    /// timers.
    pub fn commit(&self, p: PreparedConfig) {
        let now = now_ms();
        {
            let mut s = self.state.lock();
            let State { store, dispatcher, inhibitor, runtime, .. } = &mut *s;
            dispatcher.reload(Arc::new(p.0.config.tree.clone()), store.iter(), now);
            *inhibitor = Inhibitor::new(&p.0.config.inhibit_rules, store.iter());
            *runtime = p.0;
        }
        self.wake.notify_one();
        tracing::info!("router configuration applied");
    }

    pub fn apply(&self, config: RouterConfig) -> Result<(), RouterError> {
        let p = self.prepare(config)?;
        self.commit(p);
        Ok(())
    }

    /// Stores posted alerts. Invalid ones are refused with their reasons (joined with "; ")
    /// while the valid ones of the same post are kept, as Alertmanager does.
    pub fn post_alerts(&self, alerts: Vec<Alert>) -> Result<(), String> {
        let now = now_ms();
        let mut errors = Vec::new();
        let mut accepted = 0usize;
        {
            let mut s = self.state.lock();
            let resolve_timeout = s.runtime.config.resolve_timeout_ms;
            for a in alerts {
                let a = ingest_checked(a, now, resolve_timeout);
                let a = match a {
                    Ok(a) => a,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let firing = !a.resolved_at(now);
                self.metrics.record_router_alert_received(firing);
                let stored = s.store.put(a, now);
                s.inhibitor.observe(&stored);
                s.dispatcher.insert(&stored, now);
                accepted += 1;
            }
            if accepted > 0 {
                s.alerts_dirty = true;
            }
        }
        if accepted > 0 {
            self.wake.notify_one();
            self.persist_wanted.notify_one();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            self.metrics.record_router_alerts_invalid(errors.len());
            Err(errors.join("; "))
        }
    }

    /// The alerts not yet resolved that `keep` accepts, by fingerprint, with live silence and
    /// inhibition status.
    pub fn alerts(&self, keep: impl Fn(&StoredAlert) -> bool) -> Vec<AlertView> {
        let now = now_ms();
        let s = self.state.lock();
        let tree = &s.runtime.config.tree;
        let mut out: Vec<AlertView> = s
            .store
            .iter()
            .filter(|a| !a.resolved_at(now) && keep(a))
            .map(|a| view(&s, a, receivers_of(tree, &a.labels), now))
            .collect();
        out.sort_by_key(|v| v.alert.fingerprint);
        out
    }

    /// The aggregation groups and their unresolved alerts.
    pub fn groups(&self) -> Vec<GroupView> {
        let now = now_ms();
        let s = self.state.lock();
        let tree = s.dispatcher.tree().clone();
        let mut out: Vec<GroupView> = s
            .dispatcher
            .groups()
            .map(|(_, g)| {
                let mut alerts: Vec<&StoredAlert> = g.alerts.values().filter(|a| !a.resolved_at(now)).collect();
                alerts.sort_by(|a, b| super::dispatch::alert_order(&a.labels, &b.labels));
                let receiver = tree.nodes[g.route].receiver.clone();
                GroupView {
                    labels: g.labels.clone(),
                    receiver,
                    alerts: alerts.into_iter().map(|a| view(&s, a, receivers_of(&tree, &a.labels), now)).collect(),
                }
            })
            .filter(|g| !g.alerts.is_empty())
            .collect();
        out.sort_by(|a, b| {
            super::dispatch::label_set_before(&a.labels, &b.labels).then_with(|| a.receiver.cmp(&b.receiver))
        });
        out
    }

    /// Creates or updates a silence; it is on disk when this returns `Ok`. When it cannot be
    /// written the change is undone and the error returned.
    pub fn set_silence(&self, sil: Silence) -> Result<String, SilenceError> {
        self.change_silences(|s, now| s.set(sil, now))
    }

    pub fn expire_silence(&self, id: &str) -> Result<(), SilenceError> {
        self.change_silences(|s, now| s.expire(id, now))
    }

    fn change_silences<T>(
        &self,
        f: impl FnOnce(&mut Silences, i64) -> Result<T, SilenceError>,
    ) -> Result<T, SilenceError> {
        let _p = self.persist_lock.lock();
        let (out, before, snapshot) = {
            let mut st = self.state.lock();
            let before = st.silences.clone();
            let out = f(&mut st.silences, now_ms())?;
            (out, before, st.silences.snapshot())
        };
        if let Some(dir) = &self.dir
            && let Err(e) = dir.write(SILENCES_FILE, &snapshot)
        {
            tracing::error!(error = %e, "silences could not be saved; the change is undone");
            self.state.lock().silences = before;
            return Err(SilenceError::Persist(e.to_string()));
        }
        Ok(out)
    }

    pub fn silences(&self) -> Vec<Silence> {
        let now = now_ms();
        self.state.lock().silences.list(now).into_iter().cloned().collect()
    }

    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.state.lock().silences.get(id).cloned()
    }

    /// Runs the dispatcher until the process ends.
    pub async fn run(self: Arc<Self>) {
        tokio::spawn(self.clone().persist_loop());
        let mut next_maintenance = tokio::time::Instant::now() + MAINTENANCE;
        loop {
            let now = now_ms();
            let (flushes, runtime, next) = {
                let mut s = self.state.lock();
                let f = s.dispatcher.take_due(now);
                (f, s.runtime.clone(), s.dispatcher.next_due())
            };
            for f in flushes {
                tokio::spawn(self.clone().flush(f, runtime.clone()));
            }
            if tokio::time::Instant::now() >= next_maintenance {
                self.maintain();
                next_maintenance = tokio::time::Instant::now() + MAINTENANCE;
            }
            let until_next = next.map(|t| Duration::from_millis((t - now_ms()).max(0) as u64)).unwrap_or(MAINTENANCE);
            let wake_at = (tokio::time::Instant::now() + until_next).min(next_maintenance);
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    fn maintain(&self) {
        let now = now_ms();
        let mut s = self.state.lock();
        let groups = s.dispatcher.collect_empty();
        let gone: Vec<u64> =
            s.store.iter().filter(|a| a.ends_at_ms + RESOLVED_RETENTION_MS <= now).map(|a| a.fingerprint).collect();
        if !gone.is_empty() {
            s.store.gc(now - RESOLVED_RETENTION_MS);
            for fp in &gone {
                s.inhibitor.forget(*fp);
            }
            s.alerts_dirty = true;
        }
        let silences = s.silences.gc(now);
        if s.nflog.gc(now) > 0 {
            s.nflog_dirty = true;
        }
        if groups + gone.len() + silences > 0 {
            tracing::debug!(groups, alerts = gone.len(), silences, "router maintenance");
        }
        drop(s);
        self.persist_wanted.notify_one();
    }

    async fn persist_loop(self: Arc<Self>) {
        let mut last_alerts = tokio::time::Instant::now() - ALERTS_SNAPSHOT_EVERY;
        loop {
            tokio::select! {
                () = self.persist_wanted.notified() => {}
                () = tokio::time::sleep(ALERTS_SNAPSHOT_EVERY) => {}
            }
            let with_alerts = last_alerts.elapsed() >= ALERTS_SNAPSHOT_EVERY;
            if with_alerts {
                last_alerts = tokio::time::Instant::now();
            }
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.persist_dirty(with_alerts)).await;
            // Changes arriving meanwhile are written together.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes the notification log and alerts if they changed; also used at shutdown.
    pub fn persist_dirty(&self, with_alerts: bool) {
        let Some(dir) = &self.dir else { return };
        let _p = self.persist_lock.lock();
        let (nflog, alerts) = {
            let mut s = self.state.lock();
            let nflog = std::mem::take(&mut s.nflog_dirty).then(|| s.nflog.snapshot());
            let alerts = (with_alerts && std::mem::take(&mut s.alerts_dirty))
                .then(|| s.store.iter().cloned().collect::<Vec<_>>());
            (nflog, alerts)
        };
        if let Some(n) = nflog
            && let Err(e) = dir.write(NFLOG_FILE, &n)
        {
            tracing::error!(error = %e, "notification log could not be saved");
            self.state.lock().nflog_dirty = true;
        }
        if let Some(a) = alerts
            && let Err(e) = dir.write(ALERTS_FILE, &a)
        {
            tracing::error!(error = %e, "alerts could not be saved");
            self.state.lock().alerts_dirty = true;
        }
    }

    async fn flush(self: Arc<Self>, f: Flush, rt: Arc<Runtime>) {
        let ok = self.notify_flush(&f, &rt).await;
        let now = now_ms();
        self.state.lock().dispatcher.flush_done(&f, ok, now);
        self.wake.notify_one();
    }

    /// The flush pipeline; `true` when every integration that had to notify succeeded.
    async fn notify_flush(self: &Arc<Self>, f: &Flush, rt: &Arc<Runtime>) -> bool {
        let cfg = &rt.config;
        let in_interval = |name: &String| cfg.time_intervals.get(name).is_some_and(|ti| ti.contains(f.now_ms));
        if f.node.mute_time_intervals.iter().any(in_interval) {
            tracing::debug!(group = %f.group_key, "notifications not sent, route is within mute time");
            return true;
        }
        if !f.node.active_time_intervals.is_empty() && !f.node.active_time_intervals.iter().any(in_interval) {
            tracing::debug!(group = %f.group_key, "notifications not sent, route is not within active time");
            return true;
        }
        let alerts: Vec<StoredAlert> = {
            let now = now_ms();
            let s = self.state.lock();
            f.alerts
                .iter()
                .filter(|a| {
                    s.inhibitor.inhibited_by(&a.labels, now).is_none() && s.silences.muting(&a.labels, now).is_empty()
                })
                .cloned()
                .collect()
        };
        if alerts.is_empty() {
            return true;
        }
        let Some(receiver) = cfg.receivers.get(&f.node.receiver) else { return true };
        let clients = rt.clients.get(&receiver.name).cloned().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(f.node.group_interval_ms.max(10_000) as u64);
        let mut jobs = tokio::task::JoinSet::new();
        for (i, integ) in receiver.integrations.iter().enumerate() {
            let Some(client) = clients.get(i).cloned() else { continue };
            let job = IntegrationJob {
                runtime: rt.clone(),
                integration: integ.clone(),
                client,
                receiver: receiver.name.clone(),
                external_url: self.external_url.clone(),
                deadline,
            };
            let alerts = alerts.clone();
            let f = f.clone();
            let router = self.clone();
            jobs.spawn(async move { router.notify_integration(job, &f, &alerts).await });
        }
        let mut ok = true;
        while let Some(r) = jobs.join_next().await {
            ok &= r.unwrap_or(false);
        }
        ok
    }
}

struct IntegrationJob {
    runtime: Arc<Runtime>,
    integration: Integration,
    client: reqwest::Client,
    receiver: String,
    external_url: String,
    deadline: tokio::time::Instant,
}

impl Router {
    async fn notify_integration(&self, job: IntegrationJob, f: &Flush, alerts: &[StoredAlert]) -> bool {
        let now = now_ms();
        let integ = &job.integration;
        let is_resolved = |a: &StoredAlert| a.ends_at_ms != 0 && a.resolved_at(now);
        let firing: HashSet<u64> = alerts.iter().filter(|a| !is_resolved(a)).map(|a| alert_hash(&a.labels)).collect();
        let resolved: HashSet<u64> = alerts.iter().filter(|a| is_resolved(a)).map(|a| alert_hash(&a.labels)).collect();
        let reason = {
            let s = self.state.lock();
            let entry = s.nflog.get(&f.group_key, &job.receiver, integ.name(), integ.index);
            nflog::needs_update(entry, &firing, &resolved, integ.send_resolved, f.node.repeat_interval_ms, now)
        };
        let Some(reason) = reason else { return true };
        let sent: Vec<StoredAlert> = if integ.send_resolved {
            alerts.to_vec()
        } else {
            alerts.iter().filter(|a| !is_resolved(a)).cloned().collect()
        };
        if !sent.is_empty() {
            let max = integ.max_alerts();
            let data = NotifyData::new(
                &job.receiver,
                &f.group_key,
                &f.group_labels,
                &sent,
                max,
                now,
                &job.external_url,
                reason,
            );
            let cfg = &job.runtime.config;
            let cx = notify::Context { client: &job.client, templates: &cfg.templates, globals: &cfg.globals };
            let (attempts, result) = notify::send_with_retry(integ, &cx, &data, job.deadline).await;
            self.metrics.record_router_notification(integ.name(), attempts, result.is_ok());
            if let Err(e) = result {
                tracing::error!(
                    receiver = %job.receiver, integration = integ.name(), group = %f.group_key, attempts,
                    error = %e, "notify failed"
                );
                return false;
            }
            tracing::debug!(
                receiver = %job.receiver, integration = integ.name(), group = %f.group_key, alerts = sent.len(), reason,
                late_ms = f.now_ms - f.due_ms, took_ms = now_ms() - f.now_ms, "notified"
            );
        }
        let done = now_ms();
        let mut s = self.state.lock();
        s.nflog.log(nflog::Entry {
            group_key: f.group_key.clone(),
            receiver: job.receiver.clone(),
            integration: integ.name().to_string(),
            index: integ.index,
            timestamp_ms: done,
            firing: firing.into_iter().collect(),
            resolved: resolved.into_iter().collect(),
            expires_at_ms: done + (2 * f.node.repeat_interval_ms).min(super::silence::RETENTION_MS),
        });
        s.nflog_dirty = true;
        drop(s);
        self.persist_wanted.notify_one();
        true
    }
}

/// Every receiver the alert reaches (one per matched route, in walk order).
fn receivers_of(tree: &super::route::RouteTree, labels: &crate::model::Labels) -> Vec<String> {
    tree.matches(labels).into_iter().map(|i| tree.nodes[i].receiver.clone()).collect()
}

fn view(s: &State, a: &StoredAlert, receivers: Vec<String>, now: i64) -> AlertView {
    AlertView {
        alert: a.clone(),
        receivers,
        silenced_by: s.silences.muting(&a.labels, now),
        inhibited_by: s
            .inhibitor
            .inhibited_by(&a.labels, now)
            .map(|fp| vec![super::store::format_fingerprint(fp)])
            .unwrap_or_default(),
    }
}

/// Alertmanager fills in the missing times first and then validates, so a future
/// `startsAt` without `endsAt` past `now + resolve_timeout` is refused.
fn ingest_checked(a: Alert, now: i64, resolve_timeout: i64) -> Result<StoredAlert, String> {
    validate(&a)?;
    let stored = ingest(a, now, resolve_timeout);
    if stored.ends_at_ms < stored.starts_at_ms {
        return Err("start time must be before end time".into());
    }
    Ok(stored)
}

fn build_clients(config: &RouterConfig) -> Result<HashMap<String, Vec<reqwest::Client>>, RouterError> {
    let mut out = HashMap::new();
    for r in config.receivers.values() {
        let mut v = Vec::new();
        for i in &r.integrations {
            let c = crate::scrape::http::client(&i.http())
                .map_err(|message| RouterError::Client { receiver: r.name.clone(), message })?;
            v.push(c);
        }
        out.insert(r.name.clone(), v);
    }
    Ok(out)
}

/// `filter` matchers of the API: all must match the alert's labels.
pub fn alert_matches(v: &AlertView, filter: &[Matcher]) -> bool {
    matches_all(filter, &v.alert.labels)
}

impl crate::metrics::RouterGaugeSource for Router {
    fn router_gauges(&self) -> crate::metrics::RouterGauges {
        let now = now_ms();
        let s = self.state.lock();
        let mut g = crate::metrics::RouterGauges {
            silences: s.silences.count_by_state(now),
            aggregation_groups: s.dispatcher.len(),
            nflog_entries: s.nflog.len(),
            ..Default::default()
        };
        for a in s.store.iter().filter(|a| !a.resolved_at(now)) {
            let suppressed =
                s.inhibitor.inhibited_by(&a.labels, now).is_some() || !s.silences.muting(&a.labels, now).is_empty();
            if suppressed {
                g.alerts_suppressed += 1;
            } else {
                g.alerts_active += 1;
            }
        }
        g
    }
}

impl AlertSink for Router {
    fn send(&self, alerts: Vec<Alert>) {
        if let Err(e) = self.post_alerts(alerts) {
            tracing::warn!(error = %e, "alerts from the rules refused by the router");
        }
    }
}
