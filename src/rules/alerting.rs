//! The alert state machine of one alerting rule: pending → firing → inactive with `for`
//! and `keep_firing_for`, the `ALERTS` / `ALERTS_FOR_STATE` samples, when an alert needs
//! (re)sending, and `for` restoration after a restart — as Prometheus's `rules/alerting.go`.
//!
//! Pure logic: the caller passes the expression's result and the time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::alert::Alert;
use crate::model::{Labels, LabelsBuilder, METRIC_NAME};
use crate::promql::Sample;

use super::template::{self, TemplateData};

/// Resolved alerts are still sent this long so a restarted Alertmanager learns of them.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl ActiveAlert {
    /// Prometheus's `needsSending`: never while pending; at once when resolved since the
    /// last send; else when the resend delay has passed (strictly).
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        self.last_sent_at.is_none_or(|l| l + resend_delay_ms < ts)
    }
}

/// Everything a template may read besides the sample.
pub struct TemplateEnv<'a> {
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub query: Option<template::QueryFn>,
}

/// A rule's label and annotation templates, parsed once.
struct RuleTemplates {
    cell: template::EvalCell,
    labels: Vec<(String, template::Compiled)>,
    annotations: Vec<(String, template::Compiled)>,
}

/// The state of one alerting rule across evaluations.
pub struct AlertingState {
    pub active: HashMap<Labels, ActiveAlert>,
    /// `ALERTS` series are written only once `for` state was restored (or there was
    /// nothing to restore).
    pub restored: bool,
    /// Parsed at the first evaluation that has results (the rule's templates never change
    /// for one state: a changed rule gets a new one).
    templates: Option<RuleTemplates>,
}

/// The rule settings the state machine needs.
pub struct AlertRule<'a> {
    pub name: &'a str,
    pub hold: Duration,
    pub keep_firing_for: Duration,
    pub labels: &'a [(String, String)],
    pub annotations: &'a [(String, String)],
}

impl AlertingState {
    pub fn new(restored: bool) -> Self {
        AlertingState { active: HashMap::new(), restored, templates: None }
    }

    /// Feeds one evaluation's result at `ts` (the rule's query ran at `ts - offset`);
    /// returns the `ALERTS` and `ALERTS_FOR_STATE` samples to store at `ts - offset`.
    pub fn eval(
        &mut self,
        rule: &AlertRule<'_>,
        result: Vec<Sample>,
        ts: i64,
        env: &TemplateEnv<'_>,
        limit: usize,
    ) -> Result<Vec<Sample>, String> {
        let mut current: HashMap<Labels, ActiveAlert> = HashMap::with_capacity(result.len());
        if !result.is_empty() && self.templates.is_none() {
            let cell = template::EvalCell::default();
            let name = format!("__alert_{}", rule.name);
            let compile = |pairs: &[(String, String)]| -> Vec<(String, template::Compiled)> {
                pairs.iter().map(|(k, v)| (k.clone(), template::Compiled::new(&name, v, &cell))).collect()
            };
            let (labels, annotations) = (compile(rule.labels), compile(rule.annotations));
            self.templates = Some(RuleTemplates { cell, labels, annotations });
        }
        if let Some(t) = &self.templates {
            *t.cell.write() = template::Evaluation {
                time_ms: ts,
                query: env.query.clone(),
                external_url: env.external_url.to_string(),
            };
        }
        let empty = Labels::empty();
        let eval_data = TemplateData {
            labels: &empty,
            external_labels: env.external_labels,
            external_url: env.external_url,
            value: 0.0,
            time_ms: ts,
            query: None,
        };
        let no_templates = (Vec::new(), Vec::new());
        let (label_tmpls, annotation_tmpls) =
            self.templates.as_ref().map_or((&no_templates.0, &no_templates.1), |t| (&t.labels, &t.annotations));
        for s in result {
            let data = TemplateData { labels: &s.labels, value: s.v, ..eval_data.clone() };
            let expand = |t: &template::Compiled| {
                t.render(&data).unwrap_or_else(|e| {
                    tracing::warn!(alert = rule.name, error = %e, "expanding alert template failed");
                    format!("<error expanding template: {e}>")
                })
            };
            let mut lb = LabelsBuilder::from(&s.labels);
            lb.del(METRIC_NAME);
            for (k, t) in label_tmpls {
                lb.set(k.as_str(), expand(t));
            }
            lb.set("alertname", rule.name);
            let annotations: BTreeMap<String, String> =
                annotation_tmpls.iter().map(|(k, t)| (k.clone(), expand(t))).collect();
            let labels = lb.into_labels();
            if current.contains_key(&labels) {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
            current.insert(
                labels.clone(),
                ActiveAlert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value: s.v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }
        let seen: HashSet<Labels> = current.keys().cloned().collect();
        for (labels, a) in current {
            match self.active.get_mut(&labels) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(labels, a);
                }
            }
        }

        let hold = rule.hold.as_millis() as i64;
        let keep_for = rule.keep_firing_for.as_millis() as i64;
        let mut out = Vec::new();
        let mut active_pending = 0usize;
        let mut remove = Vec::new();
        for (labels, a) in self.active.iter_mut() {
            if !seen.contains(labels) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    remove.push(labels.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push(Sample { labels: alerts_labels(rule.name, a, true), v: 1.0 });
                out.push(Sample { labels: alerts_labels(rule.name, a, false), v: (a.active_at / 1000) as f64 });
            }
        }
        for l in remove {
            self.active.remove(&l);
        }
        if limit > 0 && active_pending > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_pending} alerts"));
        }
        Ok(out)
    }

    /// The alerts to send after an evaluation at `ts`, marking them sent. `endsAt` of a
    /// firing alert is `ts + 4 × max(interval, resend delay)`, as Prometheus.
    pub fn to_send(
        &mut self,
        ts: i64,
        resend_delay: Duration,
        interval: Duration,
        external_url: &str,
        expr: &str,
    ) -> Vec<Alert> {
        let resend = resend_delay.as_millis() as i64;
        let delta = resend.max(interval.as_millis() as i64);
        let url = format!("{}{}", external_url.trim_end_matches('/'), template::table_link(expr));
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(ts, resend) {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * delta;
            out.push(Alert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at_ms: a.fired_at.unwrap_or(a.active_at),
                ends_at_ms: a.resolved_at.unwrap_or(a.valid_until),
                generator_url: url.clone(),
            });
        }
        out
    }

    /// Restores `for` progress from the last `ALERTS_FOR_STATE` samples seen before the
    /// restart: `series` maps alert labels (without `__name__`) to (time of the last
    /// sample, its value = activeAt in seconds). `now` is the restore time.
    pub fn restore(&mut self, series: &HashMap<Labels, (i64, f64)>, hold: Duration, grace: Duration, now: i64) {
        let hold_ms = hold.as_millis() as i64;
        let grace_ms = grace.as_millis() as i64;
        for a in self.active.values_mut() {
            let Some(&(down_at, v)) = series.get(&a.labels) else { continue };
            if crate::model::is_stale_nan(v) || v.is_nan() {
                continue;
            }
            let down_at = down_at / 1000 * 1000;
            let mut restored = v as i64 * 1000;
            let remaining = hold_ms - (down_at - restored);
            if remaining <= 0 {
                // It was firing: the next evaluation makes it firing again.
            } else if remaining < grace_ms {
                restored = now + grace_ms - hold_ms;
            } else {
                restored += now - down_at;
            }
            a.active_at = restored;
        }
        self.restored = true;
    }
}

/// `ALERTS{alertname, alertstate, <labels>}` (state) or `ALERTS_FOR_STATE{alertname, <labels>}`.
fn alerts_labels(name: &str, a: &ActiveAlert, with_state: bool) -> Labels {
    let mut lb = LabelsBuilder::from(&a.labels);
    lb.set(METRIC_NAME, if with_state { "ALERTS" } else { "ALERTS_FOR_STATE" });
    lb.set("alertname", name);
    if with_state {
        lb.set("alertstate", a.state.as_str());
    }
    lb.into_labels()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule<'a>(hold: u64, keep: u64, labels: &'a [(String, String)]) -> AlertRule<'a> {
        AlertRule {
            name: "HighLoad",
            hold: Duration::from_secs(hold),
            keep_firing_for: Duration::from_secs(keep),
            labels,
            annotations: &[],
        }
    }

    fn env() -> TemplateEnv<'static> {
        static EMPTY: std::sync::LazyLock<Labels> = std::sync::LazyLock::new(Labels::empty);
        TemplateEnv { external_labels: &EMPTY, external_url: "http://vigie:9090", query: None }
    }

    fn sample(v: f64) -> Vec<Sample> {
        vec![Sample { labels: Labels::from_pairs([("__name__", "load"), ("instance", "a")]), v }]
    }

    fn state_of(s: &AlertingState) -> Option<AlertState> {
        s.active.values().next().map(|a| a.state)
    }

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut s = AlertingState::new(true);
        let r = rule(60, 0, &[]);
        let out = s.eval(&r, sample(5.0), 0, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Pending));
        let alerts = out.iter().find(|x| x.labels.get("__name__") == Some("ALERTS")).unwrap();
        assert_eq!(alerts.labels.get("alertstate"), Some("pending"));
        assert_eq!(alerts.labels.get("alertname"), Some("HighLoad"));
        assert!(alerts.labels.get("__name__").is_some() && alerts.labels.get("instance") == Some("a"));
        assert!(s.to_send(0, Duration::from_secs(60), Duration::from_secs(15), "", "load > 1").is_empty());
        s.eval(&r, sample(5.0), 30_000, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Pending));
        s.eval(&r, sample(5.0), 60_000, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Firing));
        let sent = s.to_send(60_000, Duration::from_secs(60), Duration::from_secs(15), "http://v", "load > 1");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].starts_at_ms, 60_000);
        assert_eq!(sent[0].ends_at_ms, 60_000 + 4 * 60_000);
        assert_eq!(sent[0].generator_url, "http://v/graph?g0.expr=load+%3E+1&g0.tab=1");
        // Not resent before the resend delay has passed (strictly).
        s.eval(&r, sample(5.0), 120_000, &env(), 0).unwrap();
        assert!(s.to_send(120_000, Duration::from_secs(60), Duration::from_secs(15), "", "e").is_empty());
        s.eval(&r, sample(5.0), 135_000, &env(), 0).unwrap();
        assert_eq!(s.to_send(135_000, Duration::from_secs(60), Duration::from_secs(15), "", "e").len(), 1);
        // Condition gone: resolved, sent at once, kept for the retention, then dropped.
        let out = s.eval(&r, vec![], 150_000, &env(), 0).unwrap();
        assert!(out.is_empty(), "no ALERTS series for inactive alerts");
        assert_eq!(state_of(&s), Some(AlertState::Inactive));
        let sent = s.to_send(150_000, Duration::from_secs(60), Duration::from_secs(15), "", "e");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ends_at_ms, 150_000);
        s.eval(&r, vec![], 150_000 + RESOLVED_RETENTION_MS + 1, &env(), 0).unwrap();
        assert!(s.active.is_empty());
    }

    #[test]
    fn pending_alert_that_clears_is_forgotten() {
        let mut s = AlertingState::new(true);
        let r = rule(60, 0, &[]);
        s.eval(&r, sample(5.0), 0, &env(), 0).unwrap();
        s.eval(&r, vec![], 15_000, &env(), 0).unwrap();
        assert!(s.active.is_empty());
        // Coming back restarts `for`.
        s.eval(&r, sample(5.0), 30_000, &env(), 0).unwrap();
        assert_eq!(s.active.values().next().unwrap().active_at, 30_000);
    }

    #[test]
    fn keep_firing_for_holds_then_resolves() {
        let mut s = AlertingState::new(true);
        let r = rule(0, 20, &[]);
        s.eval(&r, sample(1.0), 0, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Firing), "for: 0 fires at once");
        s.eval(&r, vec![], 5_000, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Firing));
        s.eval(&r, vec![], 20_000, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Firing), "15 s since the condition stopped < 20 s");
        s.eval(&r, vec![], 25_000, &env(), 0).unwrap();
        assert_eq!(state_of(&s), Some(AlertState::Inactive));
    }

    #[test]
    fn templated_labels_make_identity_and_duplicates_fail() {
        let labels = vec![("severity".to_string(), "{{ if gt $value 10.0 }}page{{ else }}ticket{{ end }}".to_string())];
        let mut s = AlertingState::new(true);
        let r = rule(0, 0, &labels);
        s.eval(&r, sample(50.0), 0, &env(), 0).unwrap();
        assert_eq!(s.active.values().next().unwrap().labels.get("severity"), Some("page"));
        let dup = vec![
            Sample { labels: Labels::from_pairs([("__name__", "a"), ("instance", "x")]), v: 1.0 },
            Sample { labels: Labels::from_pairs([("__name__", "b"), ("instance", "x")]), v: 1.0 },
        ];
        let err = s.eval(&r, dup, 15_000, &env(), 0).unwrap_err();
        assert!(err.contains("same labelset after applying alert labels"), "{err}");
    }

    #[test]
    fn limit_clears_the_rule() {
        let mut s = AlertingState::new(true);
        let r = rule(0, 0, &[]);
        let two = vec![
            Sample { labels: Labels::from_pairs([("instance", "x")]), v: 1.0 },
            Sample { labels: Labels::from_pairs([("instance", "y")]), v: 1.0 },
        ];
        let err = s.eval(&r, two, 0, &env(), 1).unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
        assert!(s.active.is_empty());
    }

    #[test]
    fn for_state_restore_keeps_progress() {
        // Active since t=0, down at 300 s (5 of 10 minutes pending), back at 400 s: the
        // 5 minutes already spent count, the outage does not.
        let mut s = AlertingState::new(false);
        let r = rule(600, 0, &[]);
        let out = s.eval(&r, sample(1.0), 400_000, &env(), 0).unwrap();
        assert!(out.is_empty(), "no ALERTS until restored");
        let labels = s.active.keys().next().unwrap().clone();
        let series = HashMap::from([(labels.clone(), (300_000, 0.0))]);
        s.restore(&series, Duration::from_secs(600), Duration::from_secs(60), 400_000);
        assert_eq!(s.active[&labels].active_at, 100_000);
        s.eval(&r, sample(1.0), 699_000, &env(), 0).unwrap();
        assert_eq!(s.active[&labels].state, AlertState::Pending);
        s.eval(&r, sample(1.0), 700_000, &env(), 0).unwrap();
        assert_eq!(s.active[&labels].state, AlertState::Firing);
    }

    #[test]
    fn for_state_restore_with_little_left_waits_the_grace_period() {
        let mut s = AlertingState::new(false);
        let r = rule(600, 0, &[]);
        s.eval(&r, sample(1.0), 1_000_000, &env(), 0).unwrap();
        let labels = s.active.keys().next().unwrap().clone();
        // 590 s pending when it went down: 10 s left < 60 s grace.
        let series = HashMap::from([(labels.clone(), (590_000, 0.0))]);
        s.restore(&series, Duration::from_secs(600), Duration::from_secs(60), 1_000_000);
        assert_eq!(s.active[&labels].active_at, 1_000_000 + 60_000 - 600_000);
    }
}
