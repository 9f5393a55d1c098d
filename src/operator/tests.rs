//! Objects from YAML text through compilation to targets, rule groups and route trees.

use super::compile::Platform;
use super::files::{Object, parse_text};
use super::*;
use crate::model::Labels;
use crate::scrape::target::{Built, build_target};

fn base_router() -> RouterConfigFile {
    crate::alert::config::parse_str(
        "route:\n  receiver: default\n  routes:\n    - receiver: default\n      matchers: ['severity=\"info\"']\nreceivers:\n  - name: default\n",
        "base",
    )
    .unwrap()
}

fn load(set: &MonitorSet, text: &str, platform: Platform) -> (MonitorSet, Desired) {
    let base = base_router();
    let cfg = crate::config::load_str("", "<test>", Path::new(".")).unwrap();
    let check = |sc: &ScrapeConfig| cfg.check_job(sc).map(|_| ());
    let ctx = Context {
        platform,
        secrets: Default::default(),
        rule_defaults: Default::default(),
        router_base: &base,
        router_dir: Path::new("."),
        check_job: &check,
    };
    set.load(parse_text(text, "objects.yaml"), &ctx)
}

fn swarm() -> Platform {
    Platform::Swarm { host: "unix:///var/run/docker.sock".into() }
}

const MONITOR: &str = r#"
apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: web, namespace: shop}
spec:
  selector:
    matchLabels: {app: web}
    matchExpressions:
      - {key: tier, operator: NotIn, values: [batch]}
  namespaceSelector: {own: true}
  targetLabels: [team]
  endpoints:
    - port: 9100
      interval: 5s
      relabelings:
        - {sourceLabels: [__meta_dockerswarm_node_hostname], targetLabel: host}
"#;

/// A task target as the Swarm tasks provider gives it.
fn task(stack: &str, service_labels: &[(&str, &str)], container_labels: &[(&str, &str)]) -> Labels {
    let mut pairs: Vec<(String, String)> = vec![
        ("__address__".into(), "10.0.1.5:80".into()),
        ("__meta_dockerswarm_task_desired_state".into(), "running".into()),
        ("__meta_dockerswarm_task_slot".into(), "2".into()),
        ("__meta_dockerswarm_service_name".into(), format!("{stack}_web")),
        ("__meta_dockerswarm_node_hostname".into(), "worker-1".into()),
        ("__meta_dockerswarm_network_id".into(), "net1".into()),
        ("__meta_dockerswarm_network_ingress".into(), "false".into()),
        ("__meta_dockerswarm_service_label_com_docker_stack_namespace".into(), stack.into()),
    ];
    for (k, v) in service_labels {
        pairs.push((format!("__meta_dockerswarm_service_label_{k}"), v.to_string()));
    }
    for (k, v) in container_labels {
        pairs.push((format!("__meta_dockerswarm_container_label_{k}"), v.to_string()));
    }
    Labels::from_pairs(pairs)
}

fn built(desired: &Desired, target: &Labels) -> Option<Vec<(String, String)>> {
    let cfg = crate::config::load_str("", "<test>", Path::new(".")).unwrap();
    let job = cfg.check_job(&desired.scrape_configs[0]).unwrap();
    match build_target(&job, target, &Labels::empty()) {
        Built::Active(t) => Some(t.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect()),
        Built::Dropped(_) => None,
    }
}

#[test]
fn a_swarm_monitor_selects_tasks_and_labels_them_like_the_zero_config_job() {
    let (set, desired) = load(&MonitorSet::default(), MONITOR, swarm());
    assert!(set.reports[0].accepted, "{:?}", set.reports[0].error);
    assert_eq!(set.reports[0].jobs, vec!["monitor/shop/web/0"]);
    let sc = &desired.scrape_configs[0];
    assert_eq!(sc.job_name, "monitor/shop/web/0");
    assert_eq!(sc.dockerswarm_sd_configs[0].role, "tasks");

    let labels = built(&desired, &task("shop", &[("app", "web"), ("team", "payments")], &[])).expect("selected");
    let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("instance"), Some("10.0.1.5:9100"));
    assert_eq!(get("job"), Some("shop_web"));
    assert_eq!(get("namespace"), Some("shop"));
    assert_eq!(get("swarm_stack"), Some("shop"));
    assert_eq!(get("swarm_service"), Some("shop_web"));
    assert_eq!(get("swarm_node"), Some("worker-1"));
    assert_eq!(get("swarm_task_slot"), Some("2"));
    assert_eq!(get("team"), Some("payments"));
    assert_eq!(get("endpoint"), Some("9100"));
    assert_eq!(get("host"), Some("worker-1"), "user relabelings run after vigie's own");
    assert!(labels.iter().all(|(n, _)| !n.starts_with("__")));

    // A container label selects too, but the service's label wins over it.
    assert!(built(&desired, &task("shop", &[], &[("app", "web")])).is_some());
    assert!(built(&desired, &task("shop", &[("app", "db")], &[("app", "web")])).is_none());
    // Other stacks, other apps and excluded tiers are not selected.
    assert!(built(&desired, &task("blog", &[("app", "web")], &[])).is_none());
    assert!(built(&desired, &task("shop", &[("app", "api")], &[])).is_none());
    assert!(built(&desired, &task("shop", &[("app", "web"), ("tier", "batch")], &[])).is_none());
}

#[test]
fn a_named_port_comes_from_the_vigie_port_label_and_no_port_from_vigie_port() {
    let named = MONITOR.replace("port: 9100", "port: admin");
    let (_, desired) = load(&MonitorSet::default(), &named, swarm());
    let t = task("shop", &[("app", "web"), ("vigie_port_admin", "9101")], &[]);
    let labels = built(&desired, &t).expect("selected");
    assert!(labels.contains(&("instance".into(), "10.0.1.5:9101".into())), "{labels:?}");
    assert!(built(&desired, &task("shop", &[("app", "web")], &[])).is_none(), "no such port: not a target");

    let unset = MONITOR.replace("    - port: 9100\n", "    - path: /m\n");
    let (_, desired) = load(&MonitorSet::default(), &unset, swarm());
    let t = task("shop", &[("app", "web"), ("vigie_port", "8080")], &[]);
    let labels = built(&desired, &t).expect("selected");
    assert!(labels.contains(&("instance".into(), "10.0.1.5:8080".into())), "{labels:?}");
}

#[test]
fn static_targets_work_without_a_cluster_and_selectors_need_one() {
    let text = r#"
apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: laptop}
spec:
  staticTargets: [{targets: ["localhost:9100"], labels: {env: dev}}]
  endpoints: [{path: /metrics}]
---
apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: needs-cluster}
spec:
  selector: {matchLabels: {app: x}}
  endpoints: [{port: 80}]
"#;
    let (set, desired) = load(&MonitorSet::default(), text, Platform::Files);
    assert_eq!(desired.scrape_configs.len(), 1);
    let sc = &desired.scrape_configs[0];
    assert_eq!(sc.job_name, "monitor/default/laptop/0");
    assert_eq!(sc.static_configs[0].labels.get("job").map(String::as_str), Some("laptop"));
    let bad = set.reports.iter().find(|r| r.key.name == "needs-cluster").unwrap();
    assert!(!bad.accepted);
    assert!(bad.error.as_deref().unwrap().contains("no cluster discovery"), "{:?}", bad.error);
}

#[test]
fn unknown_fields_and_bad_values_are_errors_with_their_line() {
    let text = "apiVersion: vigie.dev/v1alpha1\nkind: Monitor\nmetadata: {name: typo}\nspec:\n  endpoints:\n    - port: 80\n      intervall: 5s\n";
    let (set, desired) = load(&MonitorSet::default(), text, swarm());
    assert!(desired.scrape_configs.is_empty());
    let e = set.reports[0].error.clone().unwrap();
    assert_eq!(e, "objects.yaml:7: spec.endpoints[0]: unknown field \"intervall\"");

    let text = "apiVersion: vigie.dev/v1alpha1\nkind: Monitor\nmetadata: {name: re}\nspec:\n  endpoints:\n    - port: 80\n      relabelings: [{sourceLabels: [a], regex: '(', targetLabel: b}]\n";
    let (set, _) = load(&MonitorSet::default(), text, swarm());
    let e = set.reports[0].error.clone().unwrap();
    assert!(e.starts_with("objects.yaml:") && e.contains("spec.endpoints[0].relabelings[0]"), "{e}");

    let text = "apiVersion: vigie.dev/v1alpha1\nkind: Monitor\nmetadata: {name: x}\nspec: [\n";
    let (set, _) = load(&MonitorSet::default(), text, swarm());
    assert_eq!(set.reports.len(), 1, "a document that does not parse is reported by its place");
    assert_eq!(set.reports[0].key.kind, "Document");
    assert!(set.reports[0].error.as_deref().unwrap().starts_with("objects.yaml:4:"), "{:?}", set.reports[0].error);
}

#[test]
fn an_object_that_turns_invalid_keeps_its_last_good_version_and_blocks_no_other() {
    let two = format!(
        "{MONITOR}---\napiVersion: vigie.dev/v1alpha1\nkind: Monitor\nmetadata: {{name: api, namespace: shop}}\nspec:\n  endpoints: [{{port: 8080}}]\n"
    );
    let (set, desired) = load(&MonitorSet::default(), &two, swarm());
    assert_eq!(desired.scrape_configs.len(), 2);
    let broken = two.replace("interval: 5s", "interval: soon");
    let (set2, desired2) = load(&set, &broken, swarm());
    assert_eq!(desired2.scrape_configs.len(), 2, "the broken one runs as before");
    let web = set2.reports.iter().find(|r| r.key.name == "web").unwrap();
    assert!(!web.accepted && web.running_last_good);
    assert!(web.error.as_deref().unwrap().contains("spec.endpoints[0].interval"), "{:?}", web.error);
    let web_sc = desired2.scrape_configs.iter().find(|s| s.job_name == "monitor/shop/web/0").unwrap();
    assert_eq!(web_sc.scrape_interval.map(|d| d.to_string()).as_deref(), Some("5s"));
    assert!(set2.reports.iter().find(|r| r.key.name == "api").unwrap().accepted);
    // Gone from the files: gone.
    let (set3, desired3) = load(&set2, MONITOR, swarm());
    assert_eq!(desired3.scrape_configs.len(), 1);
    assert_eq!(set3.reports.len(), 1);
}

const RULE: &str = r#"
apiVersion: vigie.dev/v1alpha1
kind: AlertRule
metadata: {name: shop-alerts, namespace: shop}
spec:
  groups:
    - name: shop
      interval: 10s
      rules:
        - alert: Down
          expr: up == 0
          for: 1m
          labels: {severity: page}
        - record: job:up:sum
          expr: sum by (job) (up)
"#;

#[test]
fn alert_rules_become_groups_with_the_namespace_label() {
    let (set, desired) = load(&MonitorSet::default(), RULE, swarm());
    assert!(set.reports[0].accepted, "{:?}", set.reports[0].error);
    let (name, groups) = &desired.rule_files[0];
    assert_eq!(name, "alertrule/shop/shop-alerts");
    assert_eq!(groups[0].interval, std::time::Duration::from_secs(10));
    for rule in &groups[0].rules {
        assert!(rule.labels.contains(&("namespace".into(), "shop".into())), "{:?}", rule.labels);
    }
    assert!(groups[0].rules[0].labels.contains(&("severity".into(), "page".into())));

    let broken = RULE.replace("sum by (job) (up)", "sum by (job) (up");
    let (set2, desired2) = load(&set, &broken, swarm());
    let r = &set2.reports[0];
    assert!(!r.accepted && r.running_last_good);
    let e = r.error.as_deref().unwrap();
    assert!(e.contains("group \"shop\", rule 2, \"job:up:sum\": could not parse expression"), "{e}");
    assert!(!e.contains("alertrule/shop"), "no positions of generated text: {e}");
    assert_eq!(r.groups.len(), 1);
    assert!(!r.groups[0].valid);
    assert!(desired2.rule_files[0].1[0].rules.iter().all(|r| r.error.is_none()), "last good groups run");
}

const ROUTE: &str = r#"
apiVersion: vigie.dev/v1alpha1
kind: AlertRoute
metadata: {name: oncall, namespace: shop}
spec:
  route:
    receiver: pager
    group_by: [alertname]
    routes:
      - receiver: chat
        matchers: ['severity="info"']
  receivers:
    - name: pager
      webhook_configs: [{url: "http://127.0.0.1:1/pager"}]
    - name: chat
      webhook_configs: [{url: "http://127.0.0.1:1/chat"}]
  inhibit_rules:
    - source_matchers: ['severity="page"']
      target_matchers: ['severity="info"']
      equal: [alertname]
"#;

#[test]
fn alert_routes_are_grafted_under_the_root_for_their_namespace_only() {
    let (set, desired) = load(&MonitorSet::default(), ROUTE, swarm());
    assert!(set.reports[0].accepted, "{:?}", set.reports[0].error);
    let grafts: Vec<_> = desired.grafts.iter().collect();
    let merged = compile::alert_route::grafted(&base_router(), &grafts);
    let root = merged.route.as_ref().unwrap();
    assert_eq!(root.routes.len(), 2, "the graft comes before the root's own child");
    assert_eq!(root.routes[0].receiver.as_deref(), Some("shop/oncall/pager"));
    assert_eq!(root.routes[0].matchers[0], "namespace=\"shop\"");
    assert!(root.routes[0].continue_matching);
    assert_eq!(root.routes[0].routes[0].receiver.as_deref(), Some("shop/oncall/chat"));
    let inhibit = merged.inhibit_rules[0].as_ref().unwrap();
    assert!(inhibit.source_matchers.contains(&"namespace=\"shop\"".to_string()));
    assert!(inhibit.target_matchers.contains(&"namespace=\"shop\"".to_string()));

    let cfg = crate::alert::config::compile_file(merged, "merged", Path::new(".")).unwrap();
    let reached = |labels: &[(&str, &str)]| -> Vec<String> {
        let l = Labels::from_pairs(labels.iter().copied());
        cfg.tree.matches(&l).into_iter().map(|n| cfg.tree.nodes[n].receiver.clone()).collect()
    };
    // A matching child stands for the root (Alertmanager); `continue` lets the routes after
    // the graft see the alert too.
    assert_eq!(reached(&[("namespace", "shop"), ("severity", "page")]), vec!["shop/oncall/pager"]);
    assert_eq!(reached(&[("namespace", "shop"), ("severity", "info")]), vec!["shop/oncall/chat", "default"]);
    assert_eq!(reached(&[("namespace", "blog"), ("severity", "page")]), vec!["default"]);

    let broken = ROUTE.replace("receiver: chat", "receiver: nobody");
    let (set2, desired2) = load(&set, &broken, swarm());
    let r = &set2.reports[0];
    assert!(!r.accepted && r.running_last_good, "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("shop/oncall/nobody"), "{:?}", r.error);
    assert_eq!(desired2.grafts.len(), 1);
}

#[test]
fn a_name_defined_twice_is_reported_and_the_first_one_counts() {
    let (set, desired) = load(&MonitorSet::default(), &format!("{RULE}---{RULE}"), swarm());
    assert_eq!(desired.rule_files.len(), 1);
    assert_eq!(set.reports.len(), 2);
    assert!(
        set.reports.iter().any(|r| r.error.as_deref().is_some_and(|e| e.contains("also defined at objects.yaml:")))
    );
    assert!(matches!(parse_text(RULE, "f")[0].parsed, Ok(Object::AlertRule(_))));
}

#[test]
fn the_crds_in_the_repository_are_the_generated_ones() {
    let want = crd::crds_yaml();
    for path in ["crds/vigie.dev.yaml", "charts/vigie/crds/vigie.dev.yaml"] {
        let have = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        assert!(have == want, "{path} is stale: run `vigie crds > {path}`");
    }
}

#[test]
fn no_object_can_reach_into_another_namespace_or_read_other_files() {
    // A rule's own `namespace` label does not win over the object's namespace.
    let sneaky = RULE.replace("labels: {severity: page}", "labels: {severity: page, namespace: payments}");
    let (_, desired) = load(&MonitorSet::default(), &sneaky, swarm());
    for rule in &desired.rule_files[0].1[0].rules {
        let ns: Vec<_> = rule.labels.iter().filter(|(k, _)| k == "namespace").collect();
        assert_eq!(ns, vec![&("namespace".to_string(), "shop".to_string())]);
    }
    // User relabelings cannot move a target to another namespace.
    let moved = MONITOR.replace(
        "        - {sourceLabels: [__meta_dockerswarm_node_hostname], targetLabel: host}",
        "        - {targetLabel: namespace, replacement: payments}",
    );
    let (_, desired) = load(&MonitorSet::default(), &moved, swarm());
    let labels = built(&desired, &task("shop", &[("app", "web")], &[])).unwrap();
    assert!(labels.contains(&("namespace".into(), "shop".into())), "{labels:?}");
    // Secret references stay inside the secrets directory.
    let escape = MONITOR
        .replace("      interval: 5s\n", "      interval: 5s\n      bearerTokenSecret: {name: .., key: token}\n");
    let (set, _) = load(&MonitorSet::default(), &escape, swarm());
    assert!(
        set.reports[0].error.as_deref().unwrap().contains("bearerTokenSecret: secret name \"..\""),
        "{:?}",
        set.reports[0].error
    );
    // An AlertRoute may not name files.
    let file = ROUTE.replace(
        "webhook_configs: [{url: \"http://127.0.0.1:1/pager\"}]",
        "webhook_configs: [{url_file: /etc/shadow}]",
    );
    let (set, _) = load(&MonitorSet::default(), &file, swarm());
    let e = set.reports[0].error.as_deref().unwrap();
    assert!(e.contains("spec.receivers[0].webhook_configs[0].url_file: an AlertRoute cannot refer to files"), "{e}");
    // Selector expressions are checked as the API server checks them.
    let empty_in = MONITOR.replace("values: [batch]", "values: []");
    let (set, _) = load(&MonitorSet::default(), &empty_in, swarm());
    assert!(
        set.reports[0].error.as_deref().unwrap().contains("NotIn needs at least one value"),
        "{:?}",
        set.reports[0].error
    );
}

fn pod(json: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json).unwrap()
}

#[test]
fn a_kubernetes_monitor_selects_pods_like_a_pod_monitor() {
    let text = r#"
apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  podTargetLabels: [team]
  endpoints: [{port: metrics}]
"#;
    let (set, desired) = load(&MonitorSet::default(), text, Platform::Kubernetes);
    assert!(set.reports[0].accepted, "{:?}", set.reports[0].error);
    let sc = &desired.scrape_configs[0];
    assert_eq!(sc.kubernetes_sd_configs[0].role, "pod");
    let p = pod(serde_json::json!({
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "labels": {"app": "web", "team": "pay"}},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "app", "image": "web:1", "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}, {"name": "http", "containerPort": 8080}]}
        ]},
        "status": {"phase": "Running", "podIP": "10.1.0.7", "conditions": [{"type": "Ready", "status": "True"}]}
    }));
    let group = crate::discovery::kubernetes::meta::pod_group(&p);
    assert_eq!(group.targets.len(), 2);
    let cfg = crate::config::load_str("", "<test>", Path::new(".")).unwrap();
    let job = cfg.check_job(sc).unwrap();
    let active: Vec<_> = group
        .targets
        .iter()
        .filter_map(|t| match build_target(&job, t, &group.labels) {
            Built::Active(t) => Some(t),
            Built::Dropped(_) => None,
        })
        .collect();
    assert_eq!(active.len(), 1, "only the `metrics` port");
    let l: Vec<(String, String)> = active[0].labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
    for want in [
        ("instance", "10.1.0.7:9100"),
        ("job", "shop/web"),
        ("namespace", "shop"),
        ("pod", "web-1"),
        ("container", "app"),
        ("endpoint", "metrics"),
        ("team", "pay"),
    ] {
        assert!(l.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {l:?}");
    }
    // Another app's pod is not selected.
    let other = pod(serde_json::json!({
        "metadata": {"name": "db-1", "namespace": "shop", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "db", "ports": [{"name": "metrics", "containerPort": 9100}]}]},
        "status": {"phase": "Running", "podIP": "10.1.0.8"}
    }));
    let g = crate::discovery::kubernetes::meta::pod_group(&other);
    assert!(g.targets.iter().all(|t| matches!(build_target(&job, t, &g.labels), Built::Dropped(_))));
}
