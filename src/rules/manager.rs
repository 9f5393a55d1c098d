//! Runs the rule groups of the current configuration, each on its own schedule, and
//! swaps them on reload: an unchanged group keeps running untouched, a changed one takes
//! over the state of its unchanged rules, a removed one marks its series stale.
//!
//! Slots are Prometheus's: a group evaluates at `interval` multiples shifted by a hash of
//! its file and name, so groups spread over the interval and keep their slot across
//! restarts. At startup, `for` state is restored after the second evaluation (by then
//! recording rules the alerts read have caught up), as Prometheus does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::alert::{Alert, AlertSink};
use crate::metrics::Metrics;
use crate::model::{Labels, stable_hash_pairs, stale_nan};
use crate::promql::Engine;
use crate::scrape::scrape_loop::now_ms;
use crate::tsdb::{Appender, Db};

use super::file::GroupDef;
use super::group::{EvalEnv, Group, Health};

/// Settings of rule evaluation (`--rules.*`, `--web.external-url`, external labels).
#[derive(Clone, Debug)]
pub struct RuleOptions {
    pub external_labels: Labels,
    pub external_url: String,
    pub resend_delay: Duration,
    pub outage_tolerance: Duration,
    pub grace_period: Duration,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            external_labels: Labels::empty(),
            external_url: String::new(),
            resend_delay: Duration::from_secs(60),
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(600),
        }
    }
}

struct Running {
    group: Arc<Mutex<Group>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The rule groups in evaluation.
pub struct RuleManager {
    db: Arc<Db>,
    engine: Engine,
    metrics: Arc<Metrics>,
    sinks: Vec<Arc<dyn AlertSink>>,
    opts: Mutex<Arc<RuleOptions>>,
    /// Keyed by (file, group name), in file order.
    groups: Mutex<BTreeMap<(String, String), Running>>,
    started: Mutex<bool>,
}

/// The first evaluation slot of a group at or before `now_ns`, as Prometheus's
/// `EvalTimestamp`: multiples of the interval shifted by a hash of file and name.
pub fn eval_slot_ns(file: &str, name: &str, interval: Duration, now_ns: i128) -> i128 {
    let interval = interval.as_nanos().max(1) as i128;
    let offset = (stable_hash_pairs([("file", file), ("name", name)]) as u128 % interval as u128) as i128;
    let adjusted = now_ns - offset;
    adjusted - adjusted.rem_euclid(interval) + offset
}

fn now_ns() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// Alerts with the external labels added where they lack them (the alert's own value wins).
fn with_external_labels(mut alerts: Vec<Alert>, external: &Labels) -> Vec<Alert> {
    if external.is_empty() {
        return alerts;
    }
    for a in alerts.iter_mut() {
        let mut lb = a.labels.builder();
        for l in external {
            lb.set_if_absent(&l.name, l.value.as_str());
        }
        a.labels = lb.into_labels();
    }
    alerts
}

impl RuleManager {
    pub fn new(db: Arc<Db>, engine: Engine, metrics: Arc<Metrics>, sinks: Vec<Arc<dyn AlertSink>>) -> Arc<Self> {
        Arc::new(RuleManager {
            db,
            engine,
            metrics,
            sinks,
            opts: Mutex::new(Arc::new(RuleOptions::default())),
            groups: Mutex::new(BTreeMap::new()),
            started: Mutex::new(false),
        })
    }

    /// The groups in file and name order, for the API.
    pub fn groups(&self) -> Vec<Arc<Mutex<Group>>> {
        self.groups.lock().values().map(|r| r.group.clone()).collect()
    }

    /// Applies newly loaded rule files and options; the groups of a file that could not
    /// be read keep running as they were. Must run inside the tokio runtime.
    pub fn update(self: &Arc<Self>, files: Vec<super::LoadedFile>, opts: RuleOptions) {
        *self.opts.lock() = Arc::new(opts);
        // Groups of the first update wait for `for` restoration; later ones start fresh.
        let restore = {
            let mut started = self.started.lock();
            !std::mem::replace(&mut *started, true)
        };
        let mut groups = self.groups.lock();
        let mut old = std::mem::take(&mut *groups);
        let mut defs = Vec::new();
        for (file, result) in files {
            match result {
                Ok(g) => defs.extend(g),
                Err(e) => {
                    tracing::error!(file = %file, error = %e, "rule file rejected; its previous groups keep running");
                    let keep: Vec<_> = old.keys().filter(|(f, _)| *f == file).cloned().collect();
                    for k in keep {
                        let running = old.remove(&k).expect("key just listed");
                        groups.insert(k, running);
                    }
                }
            }
        }
        for def in defs {
            for e in def.errors() {
                tracing::error!(error = %e, "invalid rule; it is not evaluated, the rest of its group is");
            }
            let key = (def.file.clone(), def.name.clone());
            if let Some(running) = old.remove(&key) {
                let unchanged = {
                    let g = running.group.lock();
                    same_group(&g.def, &def)
                };
                if unchanged {
                    groups.insert(key, running);
                    continue;
                }
                let _ = running.stop.send(true);
                let mut group = Group::new(def, true);
                group.take_state_from(&mut running.group.lock());
                groups.insert(key, self.start(group, false));
            } else {
                groups.insert(key, self.start(Group::new(def, !restore), restore));
            }
        }
        for (_, running) in old {
            let _ = running.stop.send(true);
            let series = {
                let mut g = running.group.lock();
                g.retired = true;
                g.written_series()
            };
            if !series.is_empty() {
                let mut app = self.db.head().appender();
                let t = now_ms();
                for l in &series {
                    let r = app.series_ref(l);
                    app.append(r, t, stale_nan());
                }
                app.commit();
            }
        }
        tracing::info!(groups = groups.len(), "rule groups applied");
    }

    fn start(self: &Arc<Self>, group: Group, restore: bool) -> Running {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let group = Arc::new(Mutex::new(group));
        tokio::spawn(self.clone().run_group(group.clone(), stop_rx, restore));
        Running { group, stop }
    }

    async fn run_group(
        self: Arc<Self>,
        group: Arc<Mutex<Group>>,
        mut stop: tokio::sync::watch::Receiver<bool>,
        restore: bool,
    ) {
        let (file, name, interval) = {
            let g = group.lock();
            (g.def.file.clone(), g.def.name.clone(), g.def.interval)
        };
        let interval_ns = interval.as_nanos() as i128;
        let mut slot = eval_slot_ns(&file, &name, interval, now_ns()) + interval_ns;
        let mut evaluations = 0u64;
        loop {
            let wait = (slot - now_ns()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_nanos(wait)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let ts = (slot / 1_000_000) as i64;
            let this = self.clone();
            let g = group.clone();
            let restore_now = restore && evaluations == 1;
            let _ = tokio::task::spawn_blocking(move || this.eval_group(&g, ts, restore_now)).await;
            evaluations += 1;
            // Skip slots that passed while evaluating, as Prometheus counts them missed.
            let now = now_ns();
            let missed = ((now - slot) / interval_ns - 1).max(0);
            if missed > 0 {
                self.metrics.record_rule_group_missed(&name, missed as u64);
            }
            slot += (missed + 1) * interval_ns;
        }
    }

    fn eval_group(&self, group: &Mutex<Group>, ts: i64, restore: bool) {
        let opts = self.opts.lock().clone();
        let mut g = group.lock();
        if g.retired {
            return;
        }
        let env = EvalEnv {
            engine: &self.engine,
            external_labels: &opts.external_labels,
            external_url: &opts.external_url,
            resend_delay: opts.resend_delay,
        };
        let alerts = g.eval(&env, self.db.head(), ts);
        if restore {
            g.restore_for_state(self.db.as_ref(), now_ms(), opts.outage_tolerance, opts.grace_period);
        }
        let failed = g.rules.iter().filter(|r| r.health == Health::Err).count();
        self.metrics.record_rule_group(&g.def.name, g.rules.len(), failed, g.eval_seconds);
        drop(g);
        if !alerts.is_empty() {
            let alerts = with_external_labels(alerts, &opts.external_labels);
            for sink in &self.sinks {
                sink.send(alerts.clone());
            }
        }
    }

    /// Stops every group (shutdown).
    pub fn stop(&self) {
        for (_, r) in std::mem::take(&mut *self.groups.lock()) {
            let _ = r.stop.send(true);
        }
    }
}

fn same_group(a: &GroupDef, b: &GroupDef) -> bool {
    a.interval == b.interval
        && a.query_offset == b.query_offset
        && a.limit == b.limit
        && a.rules.len() == b.rules.len()
        && a.rules.iter().zip(&b.rules).all(|(x, y)| x.same_as(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Vec<crate::rules::LoadedFile> {
        let defaults = crate::rules::GroupDefaults { interval: Duration::from_secs(3600), ..Default::default() };
        vec![("r.yml".to_string(), crate::rules::file::parse(text, "r.yml", &defaults))]
    }

    #[tokio::test]
    async fn reload_keeps_unchanged_groups_and_rule_state() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Default::default()).unwrap().0;
        let engine = Engine::new(db.clone(), Default::default());
        let m = RuleManager::new(db.clone(), engine, Metrics::new(db.clone()), Vec::new());
        let v1 = "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: vector(1)\n  - name: b\n    rules:\n      - record: r\n        expr: vector(2)\n";
        m.update(file(v1), RuleOptions::default());
        let before = m.groups();
        assert_eq!(before.len(), 2);
        // Give group a some alert state by evaluating it once by hand.
        m.eval_group(&before[0], 1_000_000, false);
        assert_eq!(before[0].lock().rules[0].alerts.as_ref().unwrap().active.len(), 1);

        m.update(file(v1), RuleOptions::default());
        let same = m.groups();
        assert!(
            Arc::ptr_eq(&before[0], &same[0]) && Arc::ptr_eq(&before[1], &same[1]),
            "unchanged groups keep running"
        );

        // Group a gains a rule: replaced, and its unchanged alert keeps its state.
        let v2 = v1.replace("expr: vector(1)\n", "expr: vector(1)\n      - record: extra\n        expr: vector(3)\n");
        m.update(file(&v2), RuleOptions::default());
        let after = m.groups();
        assert!(!Arc::ptr_eq(&before[0], &after[0]));
        assert!(Arc::ptr_eq(&before[1], &after[1]));
        let g = after[0].lock();
        assert_eq!(g.rules.len(), 2);
        assert_eq!(g.rules[0].alerts.as_ref().unwrap().active.len(), 1, "the alert's state carried over");
        drop(g);

        // A file that no longer parses keeps its groups; removing the group drops it.
        m.update(file("groups: [ nope"), RuleOptions::default());
        assert_eq!(m.groups().len(), 2);
        m.update(
            file(&v2.replace("  - name: b\n    rules:\n      - record: r\n        expr: vector(2)\n", "")),
            RuleOptions::default(),
        );
        assert_eq!(m.groups().len(), 1);
        m.stop();
    }

    #[test]
    fn slots_are_aligned_and_stable() {
        let i = Duration::from_secs(15);
        let a = eval_slot_ns("rules.yml", "g", i, 1_000_000_000_000_000_000);
        let b = eval_slot_ns("rules.yml", "g", i, 1_000_000_000_000_000_000 + 14_000_000_000);
        assert!(a <= 1_000_000_000_000_000_000);
        assert!(1_000_000_000_000_000_000 - a < i.as_nanos() as i128);
        assert!(b == a || b == a + i.as_nanos() as i128);
        // The shift comes from the group's identity: another group lands elsewhere.
        let c = eval_slot_ns("rules.yml", "other", i, 1_000_000_000_000_000_000);
        assert_ne!(a.rem_euclid(i.as_nanos() as i128), c.rem_euclid(i.as_nanos() as i128));
    }
}
