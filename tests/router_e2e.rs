//! vigie's router against real clients: the Debian `amtool` (alerts, silences, routes),
//! Prometheus 2.42 sending its alerts to vigie as to an Alertmanager, and a SIGKILL in the
//! middle, after which silences and the notification log are back and nothing is sent
//! twice.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const ROUTER: &str = "route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['team=\"db\"']
      receiver: db
      continue: true
    - matchers: ['severity=~\"page|critical\"']
      receiver: pager
receivers:
  - name: hook
    webhook_configs: [{url: 'http://127.0.0.1:HOOK/hook'}]
  - name: db
    webhook_configs: [{url: 'http://127.0.0.1:HOOK/db'}]
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:HOOK/pager'}]
";

fn amtool(port: u16, args: &[&str]) -> (bool, String, String) {
    let bin = require("amtool", "prometheus-alertmanager");
    let out = Command::new(bin)
        .arg(format!("--alertmanager.url=http://127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("running amtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(port: u16, args: &[&str]) -> String {
    let (success, stdout, stderr) = amtool(port, args);
    assert!(success, "amtool {args:?} failed: {stderr}");
    assert!(!stderr.contains("versions differ") && !stderr.contains("are different"), "{stderr}");
    stdout
}

fn notifications(c: &Capture) -> Vec<Value> {
    c.bodies().iter().filter_map(|b| serde_json::from_str(b).ok()).collect()
}

/// With a 1 s resend delay, groups rebuilt after a restart wait 1 s before flushing.
fn start(dir: &std::path::Path, hook: &Capture) -> Vigie {
    let cfg = dir.join("router.yml");
    std::fs::write(&cfg, ROUTER.replace("HOOK", &hook.port.to_string())).unwrap();
    Vigie::start_named(dir, "vigie", &["--router-config", cfg.to_str().unwrap(), "--rules.alert.resend-delay=1s"])
}

#[test]
fn amtool_drives_alerts_silences_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Capture::start();
    let v = start(dir.path(), &hook);
    let p = v.port;

    ok(p, &["alert", "add", "alertname=DiskFull", "team=db", "severity=page", "--annotation=summary=disk"]);
    ok(p, &["alert", "add", "alertname=Other", "team=web"]);
    let listed = ok(p, &["alert", "query"]);
    assert!(listed.contains("DiskFull") && listed.contains("Other"), "{listed}");
    let filtered = ok(p, &["alert", "query", "alertname=DiskFull"]);
    assert!(filtered.contains("DiskFull") && !filtered.contains("Other"), "{filtered}");
    let by_receiver = ok(p, &["alert", "query", "-r", "db"]);
    assert!(by_receiver.contains("DiskFull") && !by_receiver.contains("Other"), "{by_receiver}");

    // DiskFull reaches db (continue) and pager; Other the root's hook.
    let bodies = eventually(Duration::from_secs(10), "three notifications", || {
        let n = notifications(&hook);
        (n.len() >= 3).then_some(n)
    });
    let mut receivers: Vec<&str> = bodies.iter().map(|b| b["receiver"].as_str().unwrap()).collect();
    receivers.sort();
    assert_eq!(receivers, ["db", "hook", "pager"]);

    // Silences: add, query, update, expire.
    let id =
        ok(p, &["silence", "add", "alertname=Other", "-c", "maintenance", "-a", "me", "-d", "1h"]).trim().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let q = ok(p, &["silence", "query"]);
    assert!(q.contains(&id) && q.contains("maintenance"), "{q}");
    let silenced = ok(p, &["alert", "query", "-s", "alertname=Other"]);
    assert!(silenced.contains("suppressed"), "{silenced}");
    let active_only = ok(p, &["alert", "query"]);
    assert!(!active_only.contains("Other"), "{active_only}");
    assert_eq!(metric(&v, "alertmanager_silences{state=\"active\"}"), 1.0);
    assert_eq!(metric(&v, "alertmanager_alerts{state=\"suppressed\"}"), 1.0);
    assert_eq!(metric(&v, "alertmanager_alerts{state=\"active\"}"), 1.0);
    // amtool 0.25 prints a pointer for `update --quiet`, so the id is read back instead.
    ok(p, &["silence", "update", &id, "-c", "longer", "-d", "2h"]);
    let q = ok(p, &["silence", "query", "-q"]);
    assert_eq!(q.trim(), id, "changing only the comment and end keeps the id");
    assert!(ok(p, &["silence", "query"]).contains("longer"));
    ok(p, &["silence", "expire", &id]);
    let q = ok(p, &["silence", "query", "-q"]);
    assert!(q.trim().is_empty(), "{q}");
    let expired = ok(p, &["silence", "query", "--expired", "-q"]);
    assert_eq!(expired.trim(), id);
    let (success, _, stderr) = amtool(p, &["silence", "expire", "00000000-0000-0000-0000-000000000000"]);
    assert!(!success, "{stderr}");

    // Routes, from the effective configuration in /api/v2/status.
    let tree = ok(p, &["config", "routes", "show"]);
    assert!(tree.contains("receiver: db") && tree.contains("receiver: pager"), "{tree}");
    let test = ok(p, &["config", "routes", "test", "team=db", "severity=critical"]);
    assert_eq!(test.trim(), "db,pager");
    ok(p, &["config", "routes", "test", "--verify.receivers=hook", "team=web"]);
    let (success, _, _) = amtool(p, &["config", "routes", "test", "--verify.receivers=hook", "team=db"]);
    assert!(!success, "a wrong receiver must fail the verification");

    // vigie's own route test.
    let r = v.get("/api/v1/router/test?labels=team%3D%22db%22,severity%3D%22page%22");
    let j: Value = serde_json::from_str(&r.body).unwrap();
    let got: Vec<&str> = j["data"].as_array().unwrap().iter().map(|m| m["receiver"].as_str().unwrap()).collect();
    assert_eq!(got, ["db", "pager"]);

    // A broken router.yml is refused by /-/reload with its field, and the old tree stays.
    let cfg = dir.path().join("router.yml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good.replace("receiver: pager", "receiver: nobody")).unwrap();
    let r = http("POST", p, "/-/reload", None).unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.contains("route.routes[1].receiver: undefined receiver \"nobody\" used in route"), "{}", r.body);
    assert_eq!(ok(p, &["config", "routes", "test", "severity=page"]).trim(), "pager");
    std::fs::write(&cfg, good.replace("receiver: pager", "receiver: hook")).unwrap();
    assert_eq!(http("POST", p, "/-/reload", None).unwrap().status, 200);
    assert_eq!(ok(p, &["config", "routes", "test", "severity=page"]).trim(), "hook");

    // Bad input is refused with Alertmanager's words.
    let r = http("POST", p, "/api/v2/alerts", Some(("application/json", r#"[{"labels":{}}]"#))).unwrap();
    assert_eq!((r.status, r.body.trim()), (400, "\"at least one label pair required\""));
    let bad_silence = r#"{"matchers":[{"name":"a","value":"","isRegex":false,"isEqual":true}],"startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-02T00:00:00Z","createdBy":"t","comment":"c"}"#;
    let r = http("POST", p, "/api/v2/silences", Some(("application/json", bad_silence))).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("at least one matcher must not match the empty string"), "{}", r.body);
}

#[test]
fn silences_and_the_notification_log_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Capture::start();
    let mut v = start(dir.path(), &hook);
    let p = v.port;
    ok(p, &["alert", "add", "alertname=Persist", "--end", "2099-01-01T00:00:00Z"]);
    eventually(Duration::from_secs(10), "first notification", || (notifications(&hook).len() == 1).then_some(()));
    let id = ok(p, &["silence", "add", "alertname=Muted", "-c", "keep me", "-d", "1h"]).trim().to_string();
    // The log entry is written shortly after the send.
    eventually(Duration::from_secs(5), "nflog snapshot", || {
        std::fs::read_to_string(dir.path().join("data/router/nflog.json")).ok().filter(|s| s.contains("Persist"))
    });
    v.proc.signal("KILL");
    let _ = v.proc.child.wait();

    let v = start(dir.path(), &hook);
    let q = ok(v.port, &["silence", "query", "-q"]);
    assert_eq!(q.trim(), id, "the silence is back");
    // The restored alert is regrouped and flushed at once; the log says it was sent.
    let listed = ok(v.port, &["alert", "query"]);
    assert!(listed.contains("Persist"), "{listed}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(notifications(&hook).len(), 1, "no second notification after the restart");
    // Posting it again (as Prometheus would) changes nothing either.
    ok(v.port, &["alert", "add", "alertname=Persist", "--end", "2099-01-01T00:00:00Z"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(notifications(&hook).len(), 1);
}

#[test]
fn prometheus_sends_its_alerts_to_vigie() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Capture::start();
    let v = start(dir.path(), &hook);
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {team: db}\n        annotations: {summary: 'from prometheus'}\n",
    )
    .unwrap();
    // Prometheus drops the first send while its Alertmanager discovery has not synced (5 s):
    // a short resend delay brings the alert soon after.
    let (_prom, _) = prometheus_with_args(
        dir.path(),
        &format!(
            "global: {{evaluation_interval: 1s}}\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n",
            dir.path().join("rules.yml").display(),
            v.port
        ),
        &["--rules.alert.resend-delay=1s"],
    );
    let got = eventually(Duration::from_secs(30), "Prometheus's alert notified by vigie", || {
        notifications(&hook).into_iter().find(|n| n["groupLabels"]["alertname"] == "AlwaysFiring")
    });
    assert_eq!(got["receiver"], "db");
    assert_eq!(got["alerts"][0]["annotations"]["summary"], "from prometheus");
    assert!(got["alerts"][0]["generatorURL"].as_str().unwrap().contains("/graph?g0.expr=vector%281%29"), "{got}");
}

/// A receiver answering `codes` in turn (then 200) and counting requests.
fn scripted_receiver(codes: Vec<u16>) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length: ") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let code = codes.get(n).copied().unwrap_or(200);
            let _ = r
                .into_inner()
                .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
    });
    (port, count)
}

fn metric(v: &Vigie, line_start: &str) -> f64 {
    let text = v.get("/metrics").body;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn failed_deliveries_are_retried_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 503 twice then 200: delivered by the third attempt of the same flush. 400: final.
    let (flaky, flaky_hits) = scripted_receiver(vec![503, 503]);
    let (refusing, refusing_hits) = scripted_receiver(vec![400; 100]);
    let cfg = dir.path().join("router.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: flaky\n  group_wait: 1s\n  group_interval: 1m\n  routes:\n    - matchers: ['to=\"refusing\"']\n      receiver: refusing\n\
             receivers:\n  - name: flaky\n    webhook_configs: [{{url: 'http://127.0.0.1:{flaky}/'}}]\n\
             \x20 - name: refusing\n    webhook_configs: [{{url: 'http://127.0.0.1:{refusing}/'}}]\n"
        ),
    )
    .unwrap();
    let v = Vigie::start(dir.path(), &["--router-config", cfg.to_str().unwrap()]);
    ok(v.port, &["alert", "add", "alertname=A"]);
    ok(v.port, &["alert", "add", "alertname=B", "to=refusing"]);
    eventually(Duration::from_secs(15), "the flaky receiver's third request", || {
        (flaky_hits.load(std::sync::atomic::Ordering::SeqCst) >= 3).then_some(())
    });
    eventually(Duration::from_secs(15), "the refused notification counted", || {
        (metric(&v, "alertmanager_notifications_failed_total{integration=\"webhook\"}") == 1.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(flaky_hits.load(std::sync::atomic::Ordering::SeqCst), 3, "no request after the success");
    assert_eq!(refusing_hits.load(std::sync::atomic::Ordering::SeqCst), 1, "a 4xx is not retried");
    assert_eq!(metric(&v, "alertmanager_notifications_total{integration=\"webhook\"}"), 2.0);
    assert_eq!(metric(&v, "alertmanager_notification_requests_total{integration=\"webhook\"}"), 4.0);
    assert_eq!(metric(&v, "alertmanager_notification_requests_failed_total{integration=\"webhook\"}"), 3.0);
}

fn rfc3339_in(secs: i64) -> String {
    let out =
        Command::new("date").args(["-u", "-d", &format!("{secs:+} seconds"), "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn post_alert(port: u16, name: &str, ends: &str) {
    let body = format!(r#"[{{"labels":{{"alertname":"{name}"}},"startsAt":"{}","endsAt":"{ends}"}}]"#, rfc3339_in(-60));
    let r = http("POST", port, "/api/v2/alerts", Some(("application/json", &body))).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// An alert whose `endsAt` passes while vigie is down is not announced resolved at start:
/// rebuilt groups wait for the sender's resend, which refreshes it.
#[test]
fn an_outage_does_not_resolve_and_repage_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Capture::start();
    let cfg = dir.path().join("router.yml");
    std::fs::write(&cfg, ROUTER.replace("HOOK", &hook.port.to_string())).unwrap();
    let args = ["--router-config", cfg.to_str().unwrap(), "--rules.alert.resend-delay=4s"];
    let mut v = Vigie::start_named(dir.path(), "vigie", &args);
    post_alert(v.port, "Outage", &rfc3339_in(3));
    eventually(Duration::from_secs(10), "first notification", || (notifications(&hook).len() == 1).then_some(()));
    eventually(Duration::from_secs(5), "nflog snapshot", || {
        std::fs::read_to_string(dir.path().join("data/router/nflog.json")).ok().filter(|s| s.contains("Outage"))
    });
    v.proc.signal("KILL");
    let _ = v.proc.child.wait();
    std::thread::sleep(Duration::from_secs(5));
    let v = Vigie::start_named(dir.path(), "vigie2", &args);
    post_alert(v.port, "Outage", &rfc3339_in(60));
    std::thread::sleep(Duration::from_secs(6));
    let n = notifications(&hook);
    assert_eq!(n.len(), 1, "neither a resolved notice nor a new page: {n:?}");
}
