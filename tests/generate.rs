//! `vigie generate`: the files it writes pass the real `promtool check config`,
//! `promtool check rules` and `amtool check-config`, and say what vigie runs.

mod common;

use std::process::Command;

use common::require;

const OBJECTS: &str = r#"apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: web, namespace: shop}
spec:
  selector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [front, edge]}]
  namespaceSelector: {own: true}
  targetLabels: [team]
  endpoints:
    - port: 9100
      interval: 30s
      relabelings: [{sourceLabels: [__meta_dockerswarm_node_hostname], targetLabel: host}]
      metricRelabelings: [{sourceLabels: [__name__], regex: go_.*, action: drop}]
---
apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {name: laptop}
spec:
  staticTargets: [{targets: ["localhost:9100"]}]
  endpoints: [{}]
---
apiVersion: vigie.dev/v1alpha1
kind: AlertRule
metadata: {name: web, namespace: shop}
spec:
  groups:
    - name: web
      interval: 30s
      rules:
        - record: job:up:sum
          expr: sum by (job) (up)
        - alert: WebDown
          expr: up{job="shop_web"} == 0
          for: 5m
          labels: {severity: page, namespace: elsewhere}
          annotations: {summary: "{{ $labels.instance }} is down"}
---
apiVersion: vigie.dev/v1alpha1
kind: AlertRoute
metadata: {name: oncall, namespace: shop}
spec:
  route:
    receiver: pager
    group_by: [alertname]
    routes: [{receiver: chat, matchers: ['severity="info"']}]
  receivers:
    - name: pager
      webhook_configs: [{url: "http://pager.example:8080/"}]
    - name: chat
      webhook_configs: [{url: "http://chat.example:8080/"}]
  inhibit_rules:
    - {source_matchers: ['severity="page"'], target_matchers: ['severity="info"'], equal: [alertname]}
"#;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn generated_files_pass_promtool_and_amtool() {
    let promtool = require("promtool", "prometheus");
    let amtool = require("amtool", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("monitors");
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::write(objects.join("shop.yaml"), OBJECTS).unwrap();
    let out = dir.path().join("out");
    let (ok, text) = run(Command::new(env!("CARGO_BIN_EXE_vigie")).args([
        "generate",
        "--monitors-dir",
        objects.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--platform",
        "swarm",
    ]));
    assert!(ok, "{text}");

    let (ok, text) = run(Command::new(&promtool).arg("check").arg("config").arg(out.join("prometheus.yml")));
    assert!(ok, "promtool check config: {text}");
    assert!(text.contains("1 rule files found"), "{text}");
    let (ok, text) = run(Command::new(&promtool).arg("check").arg("rules").arg(out.join("rules/shop-web.yml")));
    assert!(ok, "promtool check rules: {text}");
    assert!(text.contains("2 rules found"), "{text}");
    let (ok, text) = run(Command::new(&amtool).arg("check-config").arg(out.join("alertmanager.yml")));
    assert!(ok, "amtool check-config: {text}");
    assert!(text.contains("2 receivers") || text.contains("3 receivers"), "{text}");
    assert!(text.contains("1 inhibit rules"), "{text}");

    let prom = std::fs::read_to_string(out.join("prometheus.yml")).unwrap();
    assert!(prom.contains("job_name: monitor/shop/web/0") && prom.contains("role: tasks"), "{prom}");
    assert!(prom.contains("job_name: monitor/default/laptop/0"), "{prom}");
    let rules = std::fs::read_to_string(out.join("rules/shop-web.yml")).unwrap();
    assert!(!rules.contains("elsewhere"), "the namespace label is the object's: {rules}");
    assert_eq!(rules.matches("namespace: shop").count(), 2, "{rules}");
    let am = std::fs::read_to_string(out.join("alertmanager.yml")).unwrap();
    assert!(am.contains("shop/oncall/pager") && am.contains("namespace="), "{am}");

    // What amtool routes is what vigie's own router routes.
    for labels in
        [["namespace=shop", "severity=info"], ["namespace=shop", "severity=page"], ["namespace=blog", "severity=page"]]
    {
        let am_out = Command::new(&amtool)
            .args(["config", "routes", "test", "--config.file"])
            .arg(out.join("alertmanager.yml"))
            .args(labels)
            .output()
            .unwrap();
        let am_receivers: Vec<String> =
            String::from_utf8_lossy(&am_out.stdout).trim().split(',').map(str::to_string).collect();
        let matchers = labels.map(|l| l.replace('=', "=\"") + "\"").join(",");
        let ours = Command::new(env!("CARGO_BIN_EXE_vigie"))
            .args(["check", "router", "--test", &matchers])
            .arg(out.join("alertmanager.yml"))
            .output()
            .unwrap();
        let ours: Vec<String> = String::from_utf8_lossy(&ours.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["receiver"].as_str().map(str::to_string))
            .collect();
        assert_eq!(ours, am_receivers, "{labels:?}");
    }
}
