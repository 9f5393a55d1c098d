//! The `prometheus.io/*` pod annotation convention as an opt-in job
//! (`--kubernetes-annotations`), with the relabeling of the community Helm chart
//! (prometheus-community/helm-charts `charts/prometheus`, job `kubernetes-pods`):
//! `prometheus.io/scrape: "true"` selects a pod, `port`, `path`, `scheme` and `param_<n>`
//! say how, pods in Pending/Succeeded/Failed/Completed are left out, and targets get the
//! pod's labels plus `namespace`, `pod` and `node`. `scrape_slow: "true"` moves a pod to
//! `kubernetes-pods-slow` (5 m interval, 30 s timeout). Pure: builds configuration only.

use crate::config::{PromDuration, RelabelRule, ScrapeConfig};
use crate::relabel::RelabelConfig;

const A: &str = "__meta_kubernetes_pod_annotation_prometheus_io_";

/// The jobs' names.
pub const JOB: &str = "kubernetes-pods";
pub const SLOW_JOB: &str = "kubernetes-pods-slow";

fn rule(action: &str, sources: &[&str], regex: &str, target: Option<&str>, replacement: Option<&str>) -> RelabelRule {
    RelabelRule::try_from(RelabelConfig {
        source_labels: (!sources.is_empty()).then(|| sources.iter().map(|s| s.to_string()).collect()),
        regex: Some(Some(regex.to_string())),
        target_label: target.map(str::to_string),
        replacement: replacement.map(str::to_string),
        action: Some(action.to_string()),
        ..Default::default()
    })
    .expect("the convention's rules are valid")
}

fn job(name: &str, slow: bool) -> ScrapeConfig {
    let scrape = format!("{A}scrape");
    let slow_label = format!("{A}scrape_slow");
    let mut rules = vec![rule("keep", &[&scrape], "true", None, None)];
    rules.push(rule(if slow { "keep" } else { "drop" }, &[&slow_label], "true", None, None));
    rules.extend([
        rule("replace", &[&format!("{A}scheme")], "(https?)", Some("__scheme__"), Some("$1")),
        rule("replace", &[&format!("{A}path")], "(.+)", Some("__metrics_path__"), Some("$1")),
        rule(
            "replace",
            &[&format!("{A}port"), "__meta_kubernetes_pod_ip"],
            r"(\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})",
            Some("__address__"),
            Some("[$2]:$1"),
        ),
        rule(
            "replace",
            &[&format!("{A}port"), "__meta_kubernetes_pod_ip"],
            r"(\d+);((([0-9]+?)(\.|$)){4})",
            Some("__address__"),
            Some("$2:$1"),
        ),
        rule("labelmap", &[], &format!("{A}param_(.+)"), None, Some("__param_$1")),
        rule("labelmap", &[], "__meta_kubernetes_pod_label_(.+)", None, Some("$1")),
        rule("replace", &["__meta_kubernetes_namespace"], "(.*)", Some("namespace"), Some("$1")),
        rule("replace", &["__meta_kubernetes_pod_name"], "(.*)", Some("pod"), Some("$1")),
        rule("drop", &["__meta_kubernetes_pod_phase"], "Pending|Succeeded|Failed|Completed", None, None),
        rule("replace", &["__meta_kubernetes_pod_node_name"], "(.*)", Some("node"), Some("$1")),
    ]);
    ScrapeConfig {
        job_name: name.to_string(),
        honor_labels: Some(true),
        scrape_interval: slow.then(|| PromDuration::from_secs(300)),
        scrape_timeout: slow.then(|| PromDuration::from_secs(30)),
        kubernetes_sd_configs: vec![crate::config::KubernetesSdConfig { role: "pod".into(), ..Default::default() }],
        relabel_configs: rules,
        ..Default::default()
    }
}

/// The two jobs of the convention.
pub fn jobs() -> Vec<ScrapeConfig> {
    vec![job(JOB, false), job(SLOW_JOB, true)]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use k8s_openapi::api::core::v1::Pod;

    use super::*;
    use crate::scrape::target::build_targets;

    #[test]
    fn annotated_pods_are_scraped_on_their_annotated_port() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/objects/20-pods.json");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir).unwrap()).unwrap();
        let pods: Vec<Pod> =
            v["items"].as_array().unwrap().iter().map(|p| serde_json::from_value(p.clone()).unwrap()).collect();
        let groups: Vec<_> = pods.iter().map(super::super::meta::pod_group).collect();
        let cfg = crate::config::load_str("", "<test>", Path::new(".")).unwrap();
        let job = cfg.check_job(&jobs()[0]).unwrap();
        let (active, _) = build_targets(&job, &groups);
        let mut instances: Vec<String> =
            active.iter().map(|t| t.labels.get("instance").unwrap_or_default().to_string()).collect();
        instances.sort();
        // Every container port of a pod becomes the annotated one, and the copies collapse.
        assert_eq!(instances, ["10.244.1.10:9100", "10.244.1.12:9100", "10.244.2.11:9100", "[fd00:10:244:2::1a]:8080"]);
        let web = active.iter().find(|t| t.labels.get("instance") == Some("10.244.1.10:9100")).unwrap();
        assert_eq!(web.labels.get("namespace"), Some("shop"));
        assert_eq!(web.labels.get("pod"), Some("web-6d8f7b9c4-x7k2p"));
        assert!(web.labels.get("node").is_some_and(|n| !n.is_empty()));
        assert!(
            web.labels.get("app").is_some() || web.labels.iter().any(|l| l.name.starts_with("app")),
            "pod labels mapped"
        );
        assert!(job.honor_labels);
        let slow = cfg.check_job(&jobs()[1]).unwrap();
        assert_eq!(build_targets(&slow, &groups).0.len(), 0, "no pod asks for the slow job");
    }
}
