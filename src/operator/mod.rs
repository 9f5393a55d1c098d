//! The operator side of vigie: its custom resources ([`crd`]), how they compile into the
//! desired state ([`compile`]), and where they come from — `--monitors-dir` files
//! ([`files`]) now, the Kubernetes API later. [`MonitorSet`] keeps the last good version
//! of every object, so an object that turns invalid is reported and keeps running as it
//! was, and never blocks the others.

pub mod compile;
pub mod crd;
pub mod files;
pub mod generate;
pub mod kube;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use compile::alert_route::Graft;
use compile::{Platform, SecretFiles};
use files::{Document, Object, ObjectKey};

use crate::alert::config::RouterConfigFile;
use crate::config::ScrapeConfig;
use crate::operator::crd::GroupStatus;
use crate::rules::{GroupDef, GroupDefaults};

/// What vigie says about one object (the `status` a Kubernetes object would get).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    #[serde(flatten)]
    pub key: ObjectKey,
    pub file: String,
    pub line: u64,
    /// The current version is valid and applied.
    pub accepted: bool,
    /// Why it is not (with its position); the last good version keeps running if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An earlier version is still applied in place of an invalid one.
    pub running_last_good: bool,
    /// Monitor: its scrape jobs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// AlertRule: each group's validity.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupStatus>,
}

/// The desired state the objects compile to.
#[derive(Default)]
pub struct Desired {
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Rule groups per AlertRule, named `alertrule/<ns>/<name>`.
    pub rule_files: Vec<(String, Vec<GroupDef>)>,
    /// AlertRoute subtrees, in name order.
    pub grafts: Vec<Graft>,
}

/// What objects compile against.
pub struct Context<'a> {
    pub platform: Platform,
    pub secrets: SecretFiles,
    pub rule_defaults: GroupDefaults,
    pub router_base: &'a RouterConfigFile,
    pub router_dir: &'a Path,
    /// Checks a scrape job against the main configuration (intervals, limits).
    pub check_job: &'a dyn Fn(&ScrapeConfig) -> Result<(), String>,
}

/// The objects of the last successful load, by key, with where they were read.
#[derive(Clone, Default)]
pub struct MonitorSet {
    pub(crate) good: BTreeMap<ObjectKey, (Object, String, u64)>,
    pub reports: Vec<ObjectReport>,
}

#[allow(clippy::large_enum_variant)] // one per object, moved once
enum Compiled {
    Monitor(Vec<ScrapeConfig>),
    Rules(String, Vec<GroupDef>, Vec<GroupStatus>),
    Route(Graft),
}

/// A ServiceMonitor or PodMonitor, compiled as the `Monitor` it means, with the
/// operator's job names.
fn po_monitor(m: &crd::Monitor, prefix: &str, ctx: &Context) -> (Result<Compiled, String>, Vec<GroupStatus>) {
    let r = compile::monitor::scrape_configs(m, &ctx.platform, &ctx.secrets).and_then(|mut scs| {
        for sc in &mut scs {
            sc.job_name = compile::prometheus_operator::job_prefix(&sc.job_name, prefix);
            (ctx.check_job)(sc)?;
        }
        Ok(Compiled::Monitor(scs))
    });
    (r, Vec::new())
}

fn compile_object(obj: &Object, ctx: &Context) -> (Result<Compiled, String>, Vec<GroupStatus>) {
    match obj {
        Object::Monitor(m) => {
            let r = compile::monitor::scrape_configs(m, &ctx.platform, &ctx.secrets).and_then(|scs| {
                for sc in &scs {
                    (ctx.check_job)(sc)?;
                }
                Ok(Compiled::Monitor(scs))
            });
            (r, Vec::new())
        }
        Object::AlertRule(r) => {
            let (groups, statuses) = compile::alert_rule::rule_groups(r, &ctx.rule_defaults);
            let name = compile::alert_rule::source_name(r);
            (groups.map(|g| Compiled::Rules(name, g, statuses.clone())), statuses)
        }
        Object::ServiceMonitor(s) => {
            po_monitor(&compile::prometheus_operator::service_monitor(s), "serviceMonitor", ctx)
        }
        Object::PodMonitor(p) => po_monitor(&compile::prometheus_operator::pod_monitor(p), "podMonitor", ctx),
        Object::PrometheusRule(r) => {
            let r = compile::prometheus_operator::prometheus_rule(r);
            let (groups, statuses) =
                compile::alert_rule::rule_groups_as(&r, &ctx.rule_defaults, "prometheusrule", false);
            let name = compile::alert_rule::source_name_as(&r, "prometheusrule");
            (groups.map(|g| Compiled::Rules(name, g, statuses.clone())), statuses)
        }
        Object::AlertRoute(r) => {
            let g = compile::alert_route::graft_of(r).and_then(|g| {
                compile::alert_route::check(ctx.router_base, &g, ctx.router_dir)?;
                Ok(Compiled::Route(g))
            });
            (g, Vec::new())
        }
    }
}

impl MonitorSet {
    /// Compiles the documents of a new load. An invalid object keeps its last good version
    /// (if it had one); a file that does not parse at all keeps every object it held.
    pub fn load(&self, docs: Vec<Document>, ctx: &Context) -> (MonitorSet, Desired) {
        let mut next = MonitorSet::default();
        let mut desired = Desired::default();
        let mut seen: HashMap<ObjectKey, (String, u64)> = HashMap::new();
        let mut compiled: BTreeMap<ObjectKey, Compiled> = BTreeMap::new();
        let broken_files: Vec<String> =
            docs.iter().filter(|d| d.key.is_none() && d.parsed.is_err()).map(|d| d.file.clone()).collect();
        // Objects of files that do not parse at all stay as they were.
        for (key, (obj, file, line)) in &self.good {
            if broken_files.contains(file) && !docs.iter().any(|d| d.key.as_ref() == Some(key)) {
                let (r, groups) = compile_object(obj, ctx);
                if let Ok(c) = r {
                    compiled.insert(key.clone(), c);
                    next.good.insert(key.clone(), (obj.clone(), file.clone(), *line));
                    next.reports.push(ObjectReport {
                        key: key.clone(),
                        file: file.clone(),
                        line: *line,
                        accepted: false,
                        error: Some(format!("{file} no longer parses; the version read before keeps running")),
                        running_last_good: true,
                        jobs: Vec::new(),
                        groups,
                    });
                }
            }
        }
        for d in docs {
            let Some(key) = d.key.clone() else {
                let e = d.parsed.as_ref().err().cloned().unwrap_or_default();
                tracing::error!(file = %d.file, error = %e, "monitors-dir: a document could not be read");
                // Reported under its place in the file, since it has no name to go by.
                let key = ObjectKey {
                    kind: "Document".into(),
                    namespace: String::new(),
                    name: format!("{}:{}", d.file, d.line),
                };
                next.reports.push(report(&key, &d, Err(format!("{}:{e}", d.file)), false, Vec::new()));
                continue;
            };
            if let Some((f, l)) = seen.get(&key) {
                next.reports.push(report(
                    &key,
                    &d,
                    Err(format!("{key} is also defined at {f}:{l}; this one is ignored")),
                    false,
                    Vec::new(),
                ));
                continue;
            }
            seen.insert(key.clone(), (d.file.clone(), d.line));
            // Parse errors start with their line; compile errors get the document's.
            let (outcome, failed_groups) = match d.parsed.clone() {
                Ok(obj) => {
                    let (r, groups) = compile_object(&obj, ctx);
                    let at = if d.file.is_empty() { String::new() } else { format!("{}: ", d.line) };
                    (r.map(|c| (obj, c)).map_err(|e| format!("{at}{e}")), groups)
                }
                Err(e) => (Err(e), Vec::new()),
            };
            match outcome {
                Ok((obj, c)) => {
                    let groups = match &c {
                        Compiled::Rules(_, _, s) => s.clone(),
                        _ => Vec::new(),
                    };
                    let jobs = match &c {
                        Compiled::Monitor(scs) => scs.iter().map(|s| s.job_name.clone()).collect(),
                        _ => Vec::new(),
                    };
                    next.good.insert(key.clone(), (obj, d.file.clone(), d.line));
                    compiled.insert(key.clone(), c);
                    let mut r = report(&key, &d, Ok(()), false, groups);
                    r.jobs = jobs;
                    next.reports.push(r);
                }
                Err(e) => {
                    let (message, groups) = (e, failed_groups);
                    // Objects from the API server have no file; their errors need no position.
                    let message = if d.file.is_empty() { message } else { format!("{}:{}", d.file, message) };
                    tracing::error!(object = %key, error = %message, "monitors-dir: object rejected");
                    let mut kept = false;
                    if let Some((obj, file, line)) = self.good.get(&key)
                        && let (Ok(c), _) = compile_object(obj, ctx)
                    {
                        next.good.insert(key.clone(), (obj.clone(), file.clone(), *line));
                        compiled.insert(key.clone(), c);
                        kept = true;
                    }
                    next.reports.push(report(&key, &d, Err(message), kept, groups));
                }
            }
        }
        for c in compiled.into_values() {
            match c {
                Compiled::Monitor(scs) => desired.scrape_configs.extend(scs),
                Compiled::Rules(name, groups, _) => desired.rule_files.push((name, groups)),
                Compiled::Route(g) => desired.grafts.push(g),
            }
        }
        next.reports.sort_by(|a, b| a.key.cmp(&b.key));
        (next, desired)
    }
}

fn report(key: &ObjectKey, d: &Document, r: Result<(), String>, kept: bool, groups: Vec<GroupStatus>) -> ObjectReport {
    ObjectReport {
        key: key.clone(),
        file: d.file.clone(),
        line: d.line,
        accepted: r.is_ok(),
        error: r.err(),
        running_last_good: kept,
        jobs: Vec::new(),
        groups,
    }
}

#[cfg(test)]
mod tests;
