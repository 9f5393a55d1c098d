//! Aggregation groups and their timers, as a state machine driven by explicit times so it
//! can be tested without a clock. A group is born with its first alert and flushes after
//! `group_wait` (at once when that alert started longer than `group_wait` ago), then every
//! `group_interval`; the timer is re-armed when a flush starts, flushes of one group never
//! overlap, and a successful flush forgets the resolved alerts it reported.
//!
//! Unlike Alertmanager, a reload keeps the timers of every group whose route and labels
//! are unchanged, so a reload neither flushes early nor postpones a flush.

use std::collections::HashMap;
use std::sync::Arc;

use super::route::{RouteNode, RouteTree};
use super::store::StoredAlert;
use crate::model::Labels;

/// Identifies a group across reloads: the route's id and the group labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupId {
    pub route_id: String,
    pub labels: Labels,
}

#[derive(Clone, Debug)]
pub struct AggrGroup {
    pub route: usize,
    pub labels: Labels,
    pub key: String,
    pub alerts: HashMap<u64, StoredAlert>,
    pub next_flush_ms: i64,
    pub has_flushed: bool,
    pub flushing: bool,
    /// When the group became empty (collected at the next maintenance pass).
    pub empty_since_ms: Option<i64>,
}

/// What one flush works on: the group's alerts at the flush time, firing ones with their
/// `endsAt` cleared, in Alertmanager's order.
#[derive(Clone, Debug)]
pub struct Flush {
    pub id: GroupId,
    /// The route as it was when the flush started (a reload may swap the tree meanwhile).
    pub node: RouteNode,
    pub group_key: String,
    pub group_labels: Labels,
    pub now_ms: i64,
    /// When the flush was due (`now_ms` is later when the dispatcher was busy).
    pub due_ms: i64,
    pub alerts: Vec<StoredAlert>,
}

pub struct Dispatcher {
    tree: Arc<RouteTree>,
    groups: HashMap<GroupId, AggrGroup>,
}

impl Dispatcher {
    pub fn new(tree: Arc<RouteTree>) -> Dispatcher {
        Dispatcher { tree, groups: HashMap::new() }
    }

    pub fn tree(&self) -> &Arc<RouteTree> {
        &self.tree
    }

    /// Routes an alert (its newest stored state) into every group it belongs to.
    pub fn insert(&mut self, alert: &StoredAlert, now_ms: i64) {
        for route in self.tree.matches(&alert.labels) {
            self.insert_into(route, alert, now_ms);
        }
    }

    fn insert_into(&mut self, route: usize, alert: &StoredAlert, now_ms: i64) {
        let node = &self.tree.nodes[route];
        let labels = self.tree.group_labels(route, &alert.labels);
        let id = GroupId { route_id: node.id.clone(), labels: labels.clone() };
        let group = self.groups.entry(id).or_insert_with(|| AggrGroup {
            route,
            key: self.tree.group_key(route, &labels),
            labels,
            alerts: HashMap::new(),
            next_flush_ms: now_ms + node.group_wait_ms,
            has_flushed: false,
            flushing: false,
            empty_since_ms: None,
        });
        group.alerts.insert(alert.fingerprint, alert.clone());
        group.empty_since_ms = None;
        if !group.has_flushed && alert.starts_at_ms + node.group_wait_ms < now_ms {
            group.next_flush_ms = group.next_flush_ms.min(now_ms);
        }
    }

    /// Holds every group's next flush until at least `t_ms`.
    pub fn defer_all_until(&mut self, t_ms: i64) {
        for g in self.groups.values_mut() {
            g.next_flush_ms = g.next_flush_ms.max(t_ms);
        }
    }

    /// The earliest time a group not already flushing is due.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.values().filter(|g| !g.flushing && !g.alerts.is_empty()).map(|g| g.next_flush_ms).min()
    }

    /// Starts every flush due at `now_ms`: re-arms the timers and marks the groups busy.
    pub fn take_due(&mut self, now_ms: i64) -> Vec<Flush> {
        let mut out = Vec::new();
        for (id, g) in &mut self.groups {
            if g.flushing || g.next_flush_ms > now_ms {
                continue;
            }
            let interval = self.tree.nodes[g.route].group_interval_ms;
            let due_ms = g.next_flush_ms;
            g.next_flush_ms = now_ms + interval;
            g.has_flushed = true;
            if g.alerts.is_empty() {
                continue;
            }
            g.flushing = true;
            let mut alerts: Vec<StoredAlert> = g
                .alerts
                .values()
                .cloned()
                .map(|mut a| {
                    if !a.resolved_at(now_ms) {
                        a.ends_at_ms = 0;
                    }
                    a
                })
                .collect();
            alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
            out.push(Flush {
                id: id.clone(),
                node: self.tree.nodes[g.route].clone(),
                group_key: g.key.clone(),
                group_labels: g.labels.clone(),
                now_ms,
                due_ms,
                alerts,
            });
        }
        out
    }

    /// Ends a flush. After a successful one, resolved alerts that did not change meanwhile
    /// leave the group.
    pub fn flush_done(&mut self, flush: &Flush, ok: bool, now_ms: i64) {
        let Some(g) = self.groups.get_mut(&flush.id) else { return };
        g.flushing = false;
        if ok {
            for a in &flush.alerts {
                if a.ends_at_ms != 0
                    && a.resolved_at(flush.now_ms)
                    && let Some(cur) = g.alerts.get(&a.fingerprint)
                    && cur.updated_at_ms == a.updated_at_ms
                {
                    g.alerts.remove(&a.fingerprint);
                }
            }
        }
        if g.alerts.is_empty() && g.empty_since_ms.is_none() {
            g.empty_since_ms = Some(now_ms);
        }
    }

    /// Drops groups left empty (Alertmanager's dispatcher maintenance, every 30 s).
    pub fn collect_empty(&mut self) -> usize {
        let before = self.groups.len();
        self.groups.retain(|_, g| g.flushing || !g.alerts.is_empty());
        before - self.groups.len()
    }

    /// Swaps the route tree: groups are rebuilt from the stored alerts; a group whose route
    /// id and labels survive keeps its timer and flush history.
    pub fn reload<'a>(&mut self, tree: Arc<RouteTree>, alerts: impl Iterator<Item = &'a StoredAlert>, now_ms: i64) {
        let old = std::mem::take(&mut self.groups);
        self.tree = tree;
        for a in alerts {
            for route in self.tree.matches(&a.labels) {
                let labels = self.tree.group_labels(route, &a.labels);
                let id = GroupId { route_id: self.tree.nodes[route].id.clone(), labels };
                // A resolved alert already reported and dropped by its group stays dropped.
                if let Some(prev) = old.get(&id)
                    && a.resolved_at(now_ms)
                    && !prev.alerts.contains_key(&a.fingerprint)
                {
                    continue;
                }
                if !self.groups.contains_key(&id)
                    && let Some(prev) = old.get(&id)
                {
                    let mut carried = prev.clone();
                    carried.route = route;
                    carried.key = self.tree.group_key(route, &id.labels);
                    carried.alerts.clear();
                    self.groups.insert(id.clone(), carried);
                }
                self.insert_into(route, a, now_ms);
            }
        }
    }

    pub fn groups(&self) -> impl Iterator<Item = (&GroupId, &AggrGroup)> {
        self.groups.iter()
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// `types.AlertSlice.Less`: by `job`, then `instance` (alerts with the label first), then
/// fewer labels first, then the first differing label name or value.
pub fn alert_order(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for name in ["job", "instance"] {
        match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            _ => {}
        }
    }
    label_set_before(a, b)
}

/// `model.LabelSet.Before`.
pub fn label_set_before(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    for (x, y) in a.iter().zip(b.iter()) {
        if x.name != y.name {
            // The smaller name is on one side only; the side lacking it sorts first.
            return y.name.cmp(&x.name);
        }
        if x.value != y.value {
            return x.value.cmp(&y.value);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::alert::config::load_str;
    use crate::alert::store::{AlertStore, ingest};

    fn tree(yaml: &str) -> Arc<RouteTree> {
        Arc::new(load_str(yaml, "t.yml", Path::new(".")).unwrap().tree)
    }

    fn alert(pairs: &[(&str, &str)], starts: i64, ends: i64, now: i64) -> StoredAlert {
        ingest(
            crate::alert::Alert {
                labels: Labels::from_pairs(pairs.iter().copied()),
                annotations: Default::default(),
                starts_at_ms: starts,
                ends_at_ms: ends,
                generator_url: String::new(),
            },
            now,
            300_000,
        )
    }

    fn names(f: &Flush) -> Vec<String> {
        f.alerts.iter().map(|a| a.labels.get_or_empty("alertname").to_string()).collect()
    }

    /// Alertmanager's `TestAggrGroup` timeline (reference §16.2, case 15), on explicit times.
    #[test]
    fn group_wait_then_group_interval_and_resolved_alerts_leave() {
        let t = tree(
            "route: {receiver: r, group_by: [x], group_wait: 1s, group_interval: 300ms}\nreceivers: [{name: r}]\n",
        );
        let mut d = Dispatcher::new(t);
        d.insert(&alert(&[("alertname", "a1"), ("x", "1")], 0, 0, 0), 0);
        assert_eq!(d.next_due(), Some(1000));
        assert!(d.take_due(999).is_empty());
        let f = d.take_due(1000);
        assert_eq!((f.len(), names(&f[0])), (1, vec!["a1".to_string()]));
        assert_eq!(f[0].group_key, "{}:{x=\"1\"}");
        assert_eq!(f[0].alerts[0].ends_at_ms, 0, "firing alerts have no endsAt");
        // Busy until done: the next tick waits for it.
        assert_eq!(d.next_due(), None);
        d.flush_done(&f[0], true, 1010);
        assert_eq!(d.next_due(), Some(1300));
        d.insert(&alert(&[("alertname", "a3"), ("x", "1")], 1100, 0, 1100), 1100);
        let f = d.take_due(1300);
        assert_eq!(names(&f[0]), ["a1", "a3"]);
        d.flush_done(&f[0], true, 1310);
        // Resolve a1: reported once, then gone.
        d.insert(&alert(&[("alertname", "a1"), ("x", "1")], 0, 1400, 1400), 1400);
        let f = d.take_due(1600);
        assert_eq!(names(&f[0]), ["a1", "a3"]);
        assert_eq!(f[0].alerts[0].ends_at_ms, 1400);
        d.flush_done(&f[0], true, 1610);
        let f = d.take_due(1900);
        assert_eq!(names(&f[0]), ["a3"]);
        d.flush_done(&f[0], false, 1910);
        d.insert(&alert(&[("alertname", "a3"), ("x", "1")], 1100, 2000, 2000), 2000);
        let f = d.take_due(2200);
        d.flush_done(&f[0], true, 2210);
        assert_eq!(d.collect_empty(), 1);
        assert!(d.is_empty());
    }

    #[test]
    fn old_alerts_flush_at_once_and_a_failed_flush_keeps_resolved_alerts() {
        let t = tree("route: {receiver: r, group_wait: 10s, group_interval: 1m}\nreceivers: [{name: r}]\n");
        let mut d = Dispatcher::new(t);
        d.insert(&alert(&[("alertname", "a")], 1000, 0, 30_000), 30_000);
        assert_eq!(d.next_due(), Some(30_000));
        let f = d.take_due(30_000);
        d.flush_done(&f[0], true, 30_001);
        d.insert(&alert(&[("alertname", "a")], 1000, 40_000, 40_000), 40_000);
        let f = d.take_due(90_000);
        assert_eq!(f[0].alerts[0].ends_at_ms, 40_000);
        d.flush_done(&f[0], false, 90_001);
        let f = d.take_due(150_000);
        assert_eq!(f[0].alerts.len(), 1, "still there after a failed notify");
    }

    #[test]
    fn a_changed_alert_is_not_dropped_by_the_flush_that_saw_it_resolved() {
        let t = tree("route: {receiver: r, group_wait: 1s, group_interval: 1s}\nreceivers: [{name: r}]\n");
        let mut store = AlertStore::default();
        let mut d = Dispatcher::new(t);
        let a = store.put(alert(&[("alertname", "a")], 0, 500, 100), 100);
        d.insert(&a, 100);
        let f = d.take_due(1100);
        let again = store.put(alert(&[("alertname", "a")], 1150, 0, 1150), 1150);
        d.insert(&again, 1150);
        d.flush_done(&f[0], true, 1200);
        assert_eq!(d.take_due(2100)[0].alerts.len(), 1);
    }

    #[test]
    fn reload_keeps_timers_of_unchanged_groups() {
        let yaml =
            "route: {receiver: r, group_by: [alertname], group_wait: 1s, group_interval: 6s}\nreceivers: [{name: r}]\n";
        let mut store = AlertStore::default();
        let mut d = Dispatcher::new(tree(yaml));
        let a = store.put(alert(&[("alertname", "t1")], 1000, 0, 1000), 1000);
        d.insert(&a, 1000);
        let f = d.take_due(2000);
        d.flush_done(&f[0], true, 2010);
        d.reload(tree(yaml), store.iter(), 3000);
        assert_eq!(d.next_due(), Some(8000), "the timer survives the reload");
        let changed =
            "route: {receiver: r, group_by: [x], group_wait: 1s, group_interval: 6s}\nreceivers: [{name: r}]\n";
        d.reload(tree(changed), store.iter(), 3000);
        assert_eq!(d.next_due(), Some(3000), "a new group of old alerts flushes at once");
    }

    #[test]
    fn alert_order_is_alertmanagers() {
        let l = |p: &[(&str, &str)]| Labels::from_pairs(p.iter().copied());
        let mut v = [
            l(&[("a", "1"), ("b", "2")]),
            l(&[("job", "z")]),
            l(&[("instance", "i"), ("job", "a")]),
            l(&[("job", "a")]),
            l(&[("c", "1")]),
            l(&[("a", "1"), ("c", "0")]),
        ];
        v.sort_by(alert_order);
        let printed: Vec<String> = v.iter().map(crate::alert::route::format_label_set).collect();
        assert_eq!(
            printed,
            [
                "{instance=\"i\", job=\"a\"}",
                "{job=\"a\"}",
                "{job=\"z\"}",
                "{c=\"1\"}",
                "{a=\"1\", c=\"0\"}",
                "{a=\"1\", b=\"2\"}"
            ]
        );
    }
}
