//! Rules end to end against the real binary: a scraped value crosses a threshold, the
//! alert goes pending, survives a vigie restart with its `for` progress, fires, reaches a
//! real Alertmanager 0.25 (whose webhook receiver the test captures) and resolves. A bad
//! rule is reported with its position while the other rules keep evaluating.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn parse_rfc3339_ms(s: &str) -> i64 {
    // 2026-12-03T15:04:05.123Z
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 86400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000) + ms
}

fn vigie_alerts(v: &Vigie) -> Vec<Value> {
    let j: Value = serde_json::from_str(&v.get("/api/v1/alerts").body).unwrap();
    j["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

fn high_load(v: &Vigie, state: &str) -> Option<Value> {
    vigie_alerts(v).into_iter().find(|a| a["labels"]["alertname"] == "HighLoad" && a["state"] == state)
}

/// The webhook notifications Alertmanager sent, as JSON.
fn notifications(c: &Capture) -> Vec<Value> {
    c.bodies().iter().filter_map(|b| serde_json::from_str(b).ok()).collect()
}

#[test]
fn alert_fires_through_alertmanager_survives_restart_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Capture::start();
    let (_am, am_port) = alertmanager(
        dir.path(),
        &format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/\n        send_resolved: true\n",
            hook.port
        ),
    );
    let target = MetricsTarget::start("load_value 1\n");
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: load\n    interval: 1s\n    rules:\n      - record: instance:load:max\n        expr: max by (instance) (load_value)\n\
         \x20     - alert: HighLoad\n        expr: instance:load:max > 10\n        for: 12s\n        labels:\n          severity: page\n\
         \x20       annotations:\n          summary: 'load {{ $value }} on {{ $labels.instance }} ({{ $externalLabels.cluster }})'\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigie.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: demo\n\
             rule_files: ['rules.yml']\n\
             scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n",
            target.port
        ),
    )
    .unwrap();
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--rules.alert.resend-delay",
        "1s",
        "--rules.alert.for-grace-period",
        "1s",
        "--web.external-url",
        "http://vigie.example:9090/",
    ];
    let v = Vigie::start_named(dir.path(), "vigie-1", &args);
    eventually(Duration::from_secs(20), "the recording rule to produce a series", || {
        let r = v.query("instance:load:max");
        r["data"]["result"].as_array().filter(|a| !a.is_empty()).map(|_| ())
    });
    assert!(vigie_alerts(&v).is_empty(), "nothing alerts below the threshold");

    target.set("load_value 50\n");
    let pending = eventually(Duration::from_secs(20), "HighLoad pending", || high_load(&v, "pending"));
    let active_at = parse_rfc3339_ms(pending["activeAt"].as_str().unwrap());
    assert_eq!(pending["annotations"]["summary"], format!("load 50 on 127.0.0.1:{} (demo)", target.port));
    // ALERTS is written from the evaluation after `for` state was restored (the second).
    eventually(Duration::from_secs(10), "ALERTS{alertstate=\"pending\"}", || {
        let r = v.query("ALERTS{alertname=\"HighLoad\", alertstate=\"pending\"}");
        (r["data"]["result"].as_array()?.len() == 1).then_some(())
    });
    let rules: Value = serde_json::from_str(&v.get("/api/v1/rules").body).unwrap();
    let g = &rules["data"]["groups"][0];
    assert_eq!(g["name"], "load");
    assert_eq!(g["rules"][0]["type"], "recording");
    assert_eq!(g["rules"][0]["health"], "ok");
    assert_eq!(g["rules"][1]["type"], "alerting");
    assert_eq!(g["rules"][1]["state"], "pending");
    assert_eq!(g["rules"][1]["duration"], 12.0);

    // Restart in the middle of `for` (after a few seconds pending).
    std::thread::sleep(Duration::from_secs(4));
    assert!(high_load(&v, "pending").is_some(), "still pending before the restart");
    drop(v);
    std::thread::sleep(Duration::from_secs(2));
    let restarted_at = now_ms();
    let v = Vigie::start_named(dir.path(), "vigie-2", &args);
    // After the second evaluation the restored activeAt is the old one moved by the
    // outage: earlier than the restart, so the time already pending still counts.
    let restored = eventually(Duration::from_secs(20), "for-state restored", || {
        let a = high_load(&v, "pending").or_else(|| high_load(&v, "firing"))?;
        let t = parse_rfc3339_ms(a["activeAt"].as_str()?);
        (t < restarted_at).then_some(t)
    });
    assert!(restored > active_at, "the outage is not counted as pending ({restored} vs {active_at})");

    let firing = eventually(Duration::from_secs(30), "the webhook to receive the firing alert", || {
        notifications(&hook).into_iter().find(|n| n["status"] == "firing")
    });
    assert_eq!(firing["version"], "4");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "HighLoad");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["labels"]["cluster"], "demo", "external labels are added when sending");
    assert!(alert["generatorURL"].as_str().unwrap().starts_with("http://vigie.example:9090/graph?g0.expr="), "{alert}");
    let starts = parse_rfc3339_ms(alert["startsAt"].as_str().unwrap());
    assert!(starts >= restored + 12_000 - 1_000, "startsAt is when it fired, after `for`: {alert}");
    let r = v.query("ALERTS{alertname=\"HighLoad\", alertstate=\"firing\"}");
    assert_eq!(r["data"]["result"].as_array().unwrap().len(), 1, "{r}");

    target.set("load_value 2\n");
    let resolved = eventually(Duration::from_secs(30), "the webhook to receive the resolved alert", || {
        notifications(&hook).into_iter().find(|n| n["status"] == "resolved")
    });
    assert_eq!(resolved["alerts"][0]["labels"]["alertname"], "HighLoad");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    eventually(Duration::from_secs(10), "ALERTS to go stale", || {
        let r = v.query("ALERTS{alertname=\"HighLoad\"}");
        r["data"]["result"].as_array().filter(|a| a.is_empty()).map(|_| ())
    });
    assert!(high_load(&v, "firing").is_none());
    let m = v.get("/metrics").body;
    assert!(m.contains("vigie_notifications_sent_total{alertmanager=\"http://127.0.0.1:"), "{m}");
}

#[test]
fn bad_rule_is_reported_with_its_position_and_the_rest_keeps_evaluating() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    let good = "groups:\n  - name: good\n    interval: 1s\n    rules:\n      - record: answer\n        expr: vector(42)\n\
                \x20 - name: mixed\n    interval: 1s\n    rules:\n      - record: broken\n        expr: sum(up\n\
                \x20     - record: fine\n        expr: vector(7)\n";
    std::fs::write(&rules, good).unwrap();
    let cfg = dir.path().join("vigie.yml");
    std::fs::write(&cfg, "global:\n  evaluation_interval: 1s\nrule_files: ['rules.yml']\n").unwrap();

    let check =
        std::process::Command::new(env!("CARGO_BIN_EXE_vigie")).args(["check", "rules"]).arg(&rules).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("rules.yml:11:15: group \"mixed\", rule 1, \"broken\": could not parse expression"), "{err}");

    let v = Vigie::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    for (q, want) in [("answer", "42"), ("fine", "7")] {
        eventually(Duration::from_secs(20), "the valid rules to record", || {
            let r = v.query(q);
            (r["data"]["result"][0]["value"][1] == want).then_some(())
        });
    }
    let j: Value = serde_json::from_str(&v.get("/api/v1/rules").body).unwrap();
    let mixed = j["data"]["groups"].as_array().unwrap().iter().find(|g| g["name"] == "mixed").unwrap().clone();
    assert_eq!(mixed["rules"][0]["health"], "err");
    let last_error = mixed["rules"][0]["lastError"].as_str().unwrap();
    assert!(
        last_error.contains("rules.yml:11:15:") && last_error.contains("could not parse expression"),
        "{last_error}"
    );
    assert_eq!(mixed["rules"][1]["health"], "ok");

    // A reload that breaks the good rule keeps its previous version running, and says so.
    std::fs::write(&rules, good.replace("expr: vector(42)", "expr: vector(42")).unwrap();
    let r = http("POST", v.port, "/-/reload", None).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let j: Value = serde_json::from_str(&v.get("/api/v1/rules").body).unwrap();
    let good_group = j["data"]["groups"].as_array().unwrap().iter().find(|g| g["name"] == "good").unwrap().clone();
    let rule = &good_group["rules"][0];
    assert_eq!(rule["query"], "vector(42)", "the previous version keeps running: {rule}");
    let before = rule["lastEvaluation"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), "the previous version to keep evaluating", || {
        let j: Value = serde_json::from_str(&v.get("/api/v1/rules").body).ok()?;
        let g = j["data"]["groups"].as_array()?.iter().find(|g| g["name"] == "good")?.clone();
        let r = &g["rules"][0];
        (r["lastEvaluation"].as_str()? != before && r["health"] == "err").then_some(())
    });
    let j: Value = serde_json::from_str(&v.get("/api/v1/rules").body).unwrap();
    let text = j.to_string();
    assert!(text.contains("rules.yml:6:15:"), "the rejected version's error is shown: {text}");
}
