//! `--monitors-dir` end to end on the real binary: a Monitor's targets are scraped, an
//! AlertRule's alert reaches the AlertRoute's receiver (and only its namespace's), edits
//! apply without a restart, and a broken object is reported in its status while its last
//! good version keeps running.

mod common;

use std::time::Duration;

use common::{Capture, MetricsTarget, Vigie, eventually};
use serde_json::Value;

fn monitor(port: u16, env: &str) -> String {
    format!(
        r#"apiVersion: vigie.dev/v1alpha1
kind: Monitor
metadata: {{name: web, namespace: shop}}
spec:
  staticTargets:
    - targets: ["127.0.0.1:{port}"]
      labels: {{env: {env}}}
  endpoints:
    - interval: 1s
      metricRelabelings:
        - {{sourceLabels: [__name__], regex: app_ignored, action: drop}}
"#
    )
}

const RULES: &str = r#"apiVersion: vigie.dev/v1alpha1
kind: AlertRule
metadata: {name: alerts, namespace: shop}
spec:
  groups:
    - name: shop
      interval: 1s
      rules:
        - alert: AppUp
          expr: app_up{job="web"} == 1
          labels: {severity: page}
          annotations: {summary: "the app answers"}
"#;

fn route(team: u16) -> String {
    format!(
        r#"apiVersion: vigie.dev/v1alpha1
kind: AlertRoute
metadata: {{name: oncall, namespace: shop}}
spec:
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 1s
  receivers:
    - name: team
      webhook_configs: [{{url: "http://127.0.0.1:{team}/hook"}}]
"#
    )
}

fn monitors(v: &Vigie) -> Vec<Value> {
    let body: Value = serde_json::from_str(&v.get("/api/v1/status/monitors").body).unwrap();
    body["data"].as_array().cloned().unwrap_or_default()
}

fn target(v: &Vigie, pool: &str) -> Option<Value> {
    let body: Value = serde_json::from_str(&v.get("/api/v1/targets").body).ok()?;
    body["data"]["activeTargets"].as_array()?.iter().find(|t| t["scrapePool"] == pool).cloned()
}

#[test]
fn objects_from_files_scrape_evaluate_route_and_survive_bad_edits() {
    let dir = tempfile::tempdir().unwrap();
    let app = MetricsTarget::start("app_up 1\napp_ignored 3\n");
    let team = Capture::start();
    let fallback = Capture::start();
    let objects = dir.path().join("monitors");
    std::fs::create_dir_all(objects.join("shop")).unwrap();
    std::fs::write(objects.join("monitor.yaml"), monitor(app.port, "dev")).unwrap();
    std::fs::write(objects.join("shop/rules.yml"), RULES).unwrap();
    std::fs::write(objects.join("shop/route.yaml"), route(team.port)).unwrap();
    let router = dir.path().join("router.yml");
    std::fs::write(
        &router,
        format!(
            "route:\n  receiver: fallback\n  group_wait: 1s\nreceivers:\n  - name: fallback\n    webhook_configs: [{{url: \"http://127.0.0.1:{}/hook\"}}]\n",
            fallback.port
        ),
    )
    .unwrap();
    let v = Vigie::start(
        dir.path(),
        &["--monitors-dir", objects.to_str().unwrap(), "--router-config", router.to_str().unwrap()],
    );

    let reports = monitors(&v);
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports.iter().all(|r| r["accepted"] == true), "{reports:?}");

    let t = eventually(Duration::from_secs(10), "the Monitor's target is up", || {
        target(&v, "monitor/shop/web/0").filter(|t| t["health"] == "up")
    });
    assert_eq!(t["labels"]["job"], "web");
    assert_eq!(t["labels"]["env"], "dev");
    assert_eq!(t["labels"]["instance"], format!("127.0.0.1:{}", app.port));
    let ignored = v.query("app_ignored");
    assert_eq!(ignored["data"]["result"].as_array().unwrap().len(), 0, "metricRelabelings apply");

    let body = eventually(Duration::from_secs(20), "the team's receiver gets the alert", || {
        team.bodies().into_iter().find(|b| b.contains("AppUp"))
    });
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["receiver"], "shop/oncall/team");
    assert_eq!(payload["alerts"][0]["labels"]["namespace"], "shop");
    assert_eq!(payload["alerts"][0]["labels"]["severity"], "page");
    assert!(fallback.bodies().is_empty(), "the grafted route took the alert: {:?}", fallback.bodies());

    // A broken rule: reported with the rule and the parser's message, the last good
    // version keeps evaluating.
    std::fs::write(objects.join("shop/rules.yml"), RULES.replace("== 1", "== (1")).unwrap();
    let r = eventually(Duration::from_secs(10), "the AlertRule's error in its status", || {
        monitors(&v).into_iter().find(|r| r["kind"] == "AlertRule" && r["accepted"] == false)
    });
    let e = r["error"].as_str().unwrap();
    assert!(e.contains("shop/rules.yml:1:"), "{e}");
    assert!(e.contains("group \"shop\", rule 1, \"AppUp\": could not parse expression"), "{e}");
    assert_eq!(r["runningLastGood"], true);
    let rules: Value = serde_json::from_str(&v.get("/api/v1/rules").body).unwrap();
    let groups = rules["data"]["groups"].as_array().unwrap();
    assert!(
        groups.iter().any(|g| g["file"] == "alertrule/shop/alerts" && g["rules"][0]["health"] == "ok"),
        "{groups:?}"
    );

    let check = std::process::Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["check", "monitors", objects.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("AlertRule shop/alerts") && stderr.contains("could not parse expression"), "{stderr}");

    // An edit applies without a restart.
    std::fs::write(objects.join("monitor.yaml"), monitor(app.port, "prod")).unwrap();
    eventually(Duration::from_secs(10), "the edited Monitor's label", || {
        target(&v, "monitor/shop/web/0").filter(|t| t["labels"]["env"] == "prod")
    });
    // Removing the file removes the job.
    std::fs::remove_file(objects.join("monitor.yaml")).unwrap();
    eventually(Duration::from_secs(10), "the removed Monitor's job gone", || {
        target(&v, "monitor/shop/web/0").is_none().then_some(())
    });

    std::fs::write(objects.join("shop/rules.yml"), RULES).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["check", "monitors", objects.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stderr));
}
