//! Target building: discovered labels → relabeling → the final target, exactly as
//! Prometheus's `PopulateLabels` (`scrape/target.go`). Pure logic, no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::{PromDuration, ScrapeJob};
use crate::discovery::{ADDRESS_LABEL, TargetGroup};
use crate::model::{Labels, LabelsBuilder};
use crate::relabel;

pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";
pub const META_PREFIX: &str = "__meta_";
pub const INSTANCE_LABEL: &str = "instance";
pub const JOB_LABEL: &str = "job";

/// The health of a target as the API reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetHealth {
    /// `None` until the first scrape finishes.
    pub up: Option<bool>,
    pub last_error: String,
    /// Wall-clock time of the last scrape start, in ms since the epoch.
    pub last_scrape_ms: i64,
    pub last_duration: Duration,
    pub last_samples: u64,
}

/// A target ready to scrape.
#[derive(Debug)]
pub struct Target {
    pub job: String,
    /// Labels before relabeling (what discovery produced plus the job defaults).
    pub discovered: Labels,
    /// Labels attached to every series of this target (no `__` labels).
    pub labels: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Identity within the job: final labels and URL.
    pub hash: u64,
    pub health: RwLock<TargetHealth>,
}

/// A target that relabeling dropped or that could not be built.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTarget {
    pub discovered: Labels,
    /// Why it was not kept: `None` when relabeling dropped it.
    pub error: Option<String>,
}

/// The outcome for one discovered target.
#[derive(Debug)]
pub enum Built {
    Active(Target),
    Dropped(DroppedTarget),
}

/// Builds every target of the job's groups. Targets with the same final labels and URL
/// are kept once.
pub fn build_targets(job: &ScrapeJob, groups: &[TargetGroup]) -> (Vec<Arc<Target>>, Vec<DroppedTarget>) {
    let mut active: BTreeMap<u64, Arc<Target>> = BTreeMap::new();
    let mut dropped = Vec::new();
    for g in groups {
        for t in &g.targets {
            match build_target(job, t, &g.labels) {
                Built::Active(t) => {
                    active.entry(t.hash).or_insert_with(|| Arc::new(t));
                }
                Built::Dropped(d) => dropped.push(d),
            }
        }
    }
    (active.into_values().collect(), dropped)
}

/// Builds one target from its own labels and its group's labels.
pub fn build_target(job: &ScrapeJob, target_labels: &Labels, group_labels: &Labels) -> Built {
    let mut lb = LabelsBuilder::from(target_labels);
    for l in group_labels {
        lb.set_if_absent(&l.name, l.value.clone());
    }
    let defaults: [(&str, String); 5] = [
        (JOB_LABEL, job.name.clone()),
        (SCHEME_LABEL, job.scheme.clone()),
        (METRICS_PATH_LABEL, job.metrics_path.clone()),
        (SCRAPE_INTERVAL_LABEL, PromDuration(job.interval).to_string()),
        (SCRAPE_TIMEOUT_LABEL, PromDuration(job.timeout).to_string()),
    ];
    for (name, value) in defaults {
        if lb.get_or_empty(name).is_empty() {
            lb.set(name, value);
        }
    }
    for (name, values) in &job.params {
        let label = format!("{PARAM_PREFIX}{name}");
        if let Some(first) = values.first()
            && lb.get_or_empty(&label).is_empty()
        {
            lb.set(label, first.clone());
        }
    }
    let discovered = lb.labels();
    let fail = |e: String| Built::Dropped(DroppedTarget { discovered: discovered.clone(), error: Some(e) });

    if !relabel::process(&job.relabel, &mut lb) {
        return Built::Dropped(DroppedTarget { discovered, error: None });
    }
    let address = lb.get_or_empty(ADDRESS_LABEL).to_string();
    if address.is_empty() {
        return fail("no address".into());
    }
    if address.contains('/') {
        return fail(format!("{address:?} is not a valid hostname"));
    }
    let interval = match PromDuration::parse(lb.get_or_empty(SCRAPE_INTERVAL_LABEL)) {
        Ok(d) if !d.0.is_zero() => d.0,
        Ok(_) => return fail("scrape interval cannot be 0".into()),
        Err(e) => return fail(format!("error parsing scrape interval: {e}")),
    };
    let timeout = match PromDuration::parse(lb.get_or_empty(SCRAPE_TIMEOUT_LABEL)) {
        Ok(d) if !d.0.is_zero() => d.0,
        Ok(_) => return fail("scrape timeout cannot be 0".into()),
        Err(e) => return fail(format!("error parsing scrape timeout: {e}")),
    };
    if timeout > interval {
        return fail(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            PromDuration(timeout).to_string(),
            PromDuration(interval).to_string()
        ));
    }
    lb.retain(|name| !name.starts_with(META_PREFIX));
    if lb.get_or_empty(INSTANCE_LABEL).is_empty() {
        lb.set(INSTANCE_LABEL, address.clone());
    }
    let url = target_url(job, &lb, &address);
    let mut final_labels = lb.clone();
    final_labels.retain(|name| !name.starts_with("__"));
    let labels = final_labels.into_labels();
    let hash = {
        let mut h = xxhash_rust::xxh64::Xxh64::new(labels.stable_hash());
        h.update(url.as_bytes());
        h.digest()
    };
    Built::Active(Target {
        job: job.name.clone(),
        discovered,
        labels,
        url,
        interval,
        timeout,
        hash,
        health: RwLock::new(TargetHealth::default()),
    })
}

/// `scheme://address/path?params`, where `__param_<name>` labels replace the first value
/// of each parameter.
fn target_url(job: &ScrapeJob, lb: &LabelsBuilder, address: &str) -> String {
    let mut params: BTreeMap<String, Vec<String>> = job.params.clone();
    for (name, value) in lb.iter() {
        if let Some(p) = name.strip_prefix(PARAM_PREFIX) {
            let vals = params.entry(p.to_string()).or_default();
            if vals.is_empty() {
                vals.push(value.to_string());
            } else {
                vals[0] = value.to_string();
            }
        }
    }
    let mut url = format!("{}://{}{}", lb.get_or_empty(SCHEME_LABEL), address, lb.get_or_empty(METRICS_PATH_LABEL));
    let mut first = !url.contains('?');
    for (name, values) in &params {
        for v in values {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(&query_escape(name));
            url.push('=');
            url.push_str(&query_escape(v));
        }
    }
    url
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn job(yaml: &str) -> Arc<ScrapeJob> {
        let cfg = load_str(yaml, "test.yml", std::path::Path::new(".")).unwrap();
        cfg.scrape_jobs[0].clone()
    }

    fn lbls(p: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(p.iter().copied())
    }

    #[test]
    fn defaults_instance_and_drops_meta() {
        let j = job("scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n");
        let t = match build_target(&j, &lbls(&[("__address__", "h:9100"), ("__meta_x", "y")]), &lbls(&[("env", "p")])) {
            Built::Active(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(t.labels, lbls(&[("instance", "h:9100"), ("job", "node"), ("env", "p")]));
        assert_eq!(t.url, "http://h:9100/metrics");
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert_eq!(t.discovered.get("__meta_x"), Some("y"));
        assert_eq!(t.discovered.get("__scrape_interval__"), Some("15s"));
    }

    #[test]
    fn params_and_relabel_to_url() {
        let j = job(concat!(
            "scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params:\n      module: [http_2xx]\n",
            "    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n",
            "      - target_label: __address__\n        replacement: bb:9115\n"
        ));
        let t = match build_target(&j, &lbls(&[("__address__", "example.com")]), &Labels::empty()) {
            Built::Active(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(t.url, "http://bb:9115/probe?module=http_2xx&target=example.com");
        assert_eq!(t.labels.get("instance"), Some("bb:9115"));
    }

    #[test]
    fn dropped_and_errors() {
        let j = job(
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - action: drop\n        source_labels: [env]\n        regex: dev\n",
        );
        assert!(matches!(
            build_target(&j, &lbls(&[("__address__", "a:1"), ("env", "dev")]), &Labels::empty()),
            Built::Dropped(DroppedTarget { error: None, .. })
        ));
        let j = job(
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - target_label: __address__\n        replacement: ''\n        regex: '.*'\n        source_labels: [nothing]\n",
        );
        match build_target(&j, &lbls(&[("__address__", "a:1")]), &Labels::empty()) {
            Built::Dropped(DroppedTarget { error: Some(e), .. }) => assert_eq!(e, "no address"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dedups_identical_targets() {
        let j = job("scrape_configs:\n  - job_name: x\n");
        let g = TargetGroup {
            source: "s".into(),
            targets: vec![lbls(&[("__address__", "a:1")]), lbls(&[("__address__", "a:1")])],
            labels: Labels::empty(),
        };
        let (active, dropped) = build_targets(&j, &[g]);
        assert_eq!((active.len(), dropped.len()), (1, 0));
    }
}
