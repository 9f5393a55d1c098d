//! One rule group at run time: evaluates its rules in order at a timestamp, stores
//! recording results and `ALERTS` series (committed rule by rule, so a recording rule
//! feeds a later rule of the same tick), writes staleness markers for series a rule no
//! longer produces, and keeps each rule's health for the API.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alert::Alert;
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, stale_nan};
use crate::promql::{Engine, Sample, Value};
use crate::tsdb::{Appender, Head, Matcher, Querier};

use super::alerting::{AlertRule, AlertingState, TemplateEnv};
use super::file::{GroupDef, RuleDef, RuleKind};
use super::template::QueryFn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule with what its evaluations left behind.
pub struct RuleRuntime {
    pub def: RuleDef,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
    /// Alert states, for alerting rules.
    pub alerts: Option<AlertingState>,
    /// Series this rule wrote at its last successful evaluation.
    previous: HashSet<Labels>,
    /// Why a reload's new version of this rule was refused: the previous version keeps
    /// running and the API reports the error.
    pub rejected: Option<String>,
}

/// What an evaluation reads besides the storage.
pub struct EvalEnv<'a> {
    pub engine: &'a Engine,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub resend_delay: Duration,
}

/// A group with its rules' state.
pub struct Group {
    pub def: GroupDef,
    pub rules: Vec<RuleRuntime>,
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
    /// Replaced or removed by a reload: an evaluation that was already due does nothing.
    pub retired: bool,
}

/// Runs a rule's query: an instant vector (a scalar becomes one sample without labels).
fn query(engine: &Engine, expr: &promql_parser::parser::Expr, t: i64) -> Result<Vec<Sample>, String> {
    match engine.instant_expr(expr, t).map_err(|e| e.to_string())? {
        Value::Vector(v) => Ok(v),
        Value::Scalar(v) => Ok(vec![Sample { labels: Labels::empty(), v }]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

/// Prometheus's `EngineQueryFunc` for templates' `query`.
pub fn template_query(engine: Engine, t: i64) -> QueryFn {
    Arc::new(move |q: &str| {
        let expr = Engine::parse(q).map_err(|e| e.to_string())?;
        query(&engine, &expr, t)
    })
}

impl Group {
    /// A new group; `restored` says whether alert state needs no restoring (a group added
    /// by a reload) or waits for [`Group::restore_for_state`] (at startup).
    pub fn new(def: GroupDef, restored: bool) -> Self {
        let rules = def
            .rules
            .iter()
            .map(|r| RuleRuntime {
                def: r.clone(),
                health: Health::Unknown,
                last_error: None,
                last_eval_ms: None,
                eval_seconds: 0.0,
                alerts: r.is_alert().then(|| AlertingState::new(restored)),
                previous: HashSet::new(),
                rejected: None,
            })
            .collect();
        Group { def, rules, last_eval_ms: None, eval_seconds: 0.0, retired: false }
    }

    /// Carries rule state over from the group this one replaces (a reload): a rule that
    /// is unchanged keeps its alerts and health.
    pub fn take_state_from(&mut self, old: &mut Group) {
        old.retired = true;
        self.last_eval_ms = old.last_eval_ms;
        self.eval_seconds = old.eval_seconds;
        let mut taken = vec![false; old.rules.len()];
        for r in self.rules.iter_mut() {
            // An invalid new version of a rule that was valid: the old one keeps running.
            if let Some(error) = r.def.error.clone() {
                let valid_old = old.rules.iter().enumerate().position(|(i, o)| {
                    !taken[i]
                        && o.def.error.is_none()
                        && o.def.name == r.def.name
                        && o.def.is_alert() == r.def.is_alert()
                });
                if let Some(i) = valid_old {
                    r.def = old.rules[i].def.clone();
                    r.rejected = Some(error);
                }
            }
            let found = old.rules.iter().enumerate().position(|(i, o)| !taken[i] && o.def.same_as(&r.def));
            if let Some(i) = found {
                taken[i] = true;
                let o = &mut old.rules[i];
                r.health = o.health;
                r.last_error = o.last_error.take();
                r.last_eval_ms = o.last_eval_ms;
                r.eval_seconds = o.eval_seconds;
                r.alerts = o.alerts.take();
                // A group replaced by a reload does not restore again (as Prometheus's
                // CopyState, which copies the alerts but not the flag).
                if let Some(a) = r.alerts.as_mut() {
                    a.restored = true;
                }
                r.previous = std::mem::take(&mut o.previous);
            }
        }
    }

    /// Every series this group wrote at its last evaluation (a removed group marks them stale).
    pub fn written_series(&self) -> Vec<Labels> {
        self.rules.iter().flat_map(|r| r.previous.iter().cloned()).collect()
    }

    /// Evaluates every rule at `ts` (ms) and returns the alerts to send.
    pub fn eval(&mut self, env: &EvalEnv<'_>, head: &Arc<Head>, ts: i64) -> Vec<Alert> {
        let started = Instant::now();
        let offset = self.def.query_offset.as_millis() as i64;
        let at = ts - offset;
        let mut to_send = Vec::new();
        for rule in self.rules.iter_mut() {
            let rule_started = Instant::now();
            let Some(q) = rule.def.query.clone() else {
                rule.health = Health::Err;
                rule.last_error = rule.def.error.clone();
                continue;
            };
            let result = query(env.engine, &q, at).and_then(|samples| match &rule.def.kind {
                RuleKind::Record => record(&rule.def, samples, self.def.limit),
                RuleKind::Alert { hold, keep_firing_for, annotations } => {
                    let Some(state) = rule.alerts.as_mut() else {
                        return Err("alert state was handed over to a reloaded group".to_string());
                    };
                    let tenv = TemplateEnv {
                        external_labels: env.external_labels,
                        external_url: env.external_url,
                        // Templates' `query` runs at the evaluation time, not shifted by the offset.
                        query: Some(template_query(env.engine.clone(), ts)),
                    };
                    let spec = AlertRule {
                        name: &rule.def.name,
                        hold: *hold,
                        keep_firing_for: *keep_firing_for,
                        labels: &rule.def.labels,
                        annotations,
                    };
                    state.eval(&spec, samples, ts, &tenv, self.def.limit)
                }
            });
            rule.last_eval_ms = Some(ts);
            let evaluated = result.is_ok();
            match result {
                Ok(samples) => {
                    rule.health = if rule.rejected.is_some() { Health::Err } else { Health::Ok };
                    rule.last_error = rule.rejected.clone();
                    let mut app = head.appender();
                    let mut current = HashSet::with_capacity(samples.len());
                    for s in samples {
                        let r = app.series_ref(&s.labels);
                        app.append(r, at, s.v);
                        current.insert(s.labels);
                    }
                    for gone in rule.previous.difference(&current) {
                        let r = app.series_ref(gone);
                        app.append(r, at, stale_nan());
                    }
                    let res = app.commit();
                    if res.out_of_order + res.duplicates + res.out_of_bounds > 0 {
                        tracing::warn!(
                            group = %self.def.name, rule = %rule.def.name,
                            out_of_order = res.out_of_order, duplicates = res.duplicates, out_of_bounds = res.out_of_bounds,
                            "rule evaluation results were not all stored"
                        );
                    }
                    rule.previous = current;
                }
                Err(e) => {
                    tracing::warn!(group = %self.def.name, rule = %rule.def.name, error = %e, "evaluating rule failed");
                    rule.health = Health::Err;
                    rule.last_error = Some(e);
                }
            }
            // A rule whose query failed sends nothing: its alerts age out by `endsAt`.
            if let Some(state) = rule.alerts.as_mut().filter(|_| evaluated) {
                to_send.extend(state.to_send(
                    ts,
                    env.resend_delay,
                    self.def.interval,
                    env.external_url,
                    &rule.def.expr,
                ));
            }
            rule.eval_seconds = rule_started.elapsed().as_secs_f64();
        }
        self.last_eval_ms = Some(ts);
        self.eval_seconds = started.elapsed().as_secs_f64();
        to_send
    }

    /// Restores alerts' `for` progress from `ALERTS_FOR_STATE` written before a restart,
    /// as Prometheus does after the second evaluation.
    pub fn restore_for_state(&mut self, querier: &dyn Querier, now: i64, outage_tolerance: Duration, grace: Duration) {
        for rule in self.rules.iter_mut() {
            let (Some(state), RuleKind::Alert { hold, .. }) = (rule.alerts.as_mut(), &rule.def.kind) else { continue };
            if state.restored {
                continue;
            }
            if *hold < grace {
                state.restored = true;
                continue;
            }
            let matchers =
                [Matcher::equal(METRIC_NAME, "ALERTS_FOR_STATE"), Matcher::equal("alertname", rule.def.name.as_str())];
            let mint = now - outage_tolerance.as_millis() as i64;
            let mut last: HashMap<Labels, (i64, f64)> = HashMap::new();
            for s in querier.select(&matchers, mint, now) {
                let mut lb = LabelsBuilder::from(&s.labels);
                lb.del(METRIC_NAME);
                if let Some(p) = s.points.last() {
                    last.insert(lb.into_labels(), (p.t, p.v));
                }
            }
            let before: Vec<(Labels, i64)> = state.active.iter().map(|(l, a)| (l.clone(), a.active_at)).collect();
            state.restore(&last, *hold, grace, now);
            let restored = before.iter().filter(|(l, t)| state.active[l].active_at != *t).count();
            if restored > 0 {
                tracing::info!(group = %self.def.name, alert = %rule.def.name, alerts = restored, "'for' state restored");
            }
        }
    }
}

/// A recording rule's output: the rule's name and labels on every sample.
fn record(rule: &RuleDef, samples: Vec<Sample>, limit: usize) -> Result<Vec<Sample>, String> {
    let mut seen = HashSet::with_capacity(samples.len());
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let mut lb = LabelsBuilder::from(&s.labels);
        lb.set(METRIC_NAME, rule.name.as_str());
        for (k, v) in &rule.labels {
            lb.set(k.as_str(), v.as_str());
        }
        let labels = lb.into_labels();
        if !seen.insert(labels.clone()) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        out.push(Sample { labels, v: s.v });
    }
    if limit > 0 && out.len() > limit {
        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
    }
    Ok(out)
}
