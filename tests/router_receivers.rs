//! vigie's receivers against real servers started by the test: email to a real SMTP
//! server (Python's aiosmtpd, from the venv `.ci/run` makes), and Slack, PagerDuty,
//! Opsgenie, Teams, Discord and Telegram payloads captured by a local HTTP server and
//! checked field by field against the APIs' documented shapes. The expected texts are
//! Alertmanager's default templates' output, written out by hand here.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;

#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// An HTTP server recording path, headers and body of every request; answers 200 `{}`.
fn recorder() -> (u16, Arc<Mutex<Vec<Hit>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let shared = hits.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = Vec::new();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(": ") {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.parse().unwrap_or(0);
                    }
                    headers.push((k.to_ascii_lowercase(), v.to_string()));
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            shared.lock().unwrap().push(Hit { path, headers, body: String::from_utf8_lossy(&body).to_string() });
            let mut s = r.into_inner();
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    (port, hits)
}

fn python() -> String {
    let venv =
        std::env::var("VIGIE_VENV").unwrap_or_else(|_| format!("{}/.cache/vigie/venv", std::env::var("HOME").unwrap()));
    let py = format!("{venv}/bin/python");
    let ok = Command::new(&py).args(["-c", "import aiosmtpd"]).status().map(|s| s.success()).unwrap_or(false);
    assert!(
        ok,
        "{py} with aiosmtpd is needed: python3 -m venv {venv} && {venv}/bin/pip install aiosmtpd (.ci/run does)"
    );
    py
}

fn sha256_hex(s: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

fn by_path(hits: &Arc<Mutex<Vec<Hit>>>, prefix: &str) -> Vec<Hit> {
    hits.lock().unwrap().iter().filter(|h| h.path.starts_with(prefix)).cloned().collect()
}

fn json(h: &Hit) -> Value {
    serde_json::from_str(&h.body).unwrap_or_else(|e| panic!("{}: {e}: {}", h.path, h.body))
}

fn maildir_messages(dir: &std::path::Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir.join("new")) else { return Vec::new() };
    rd.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect()
}

#[test]
fn every_integration_delivers_to_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let (http_port, hits) = recorder();
    let smtp_port = free_port();
    let maildir = dir.path().join("mail");
    let _smtp = Proc::spawn(
        "smtpd",
        Command::new(python()).args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{smtp_port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
            maildir.to_str().unwrap(),
        ]),
        dir.path(),
    );
    eventually(Duration::from_secs(15), "smtp server", || std::net::TcpStream::connect(("127.0.0.1", smtp_port)).ok());

    let base = format!("http://127.0.0.1:{http_port}");
    let cfg = format!(
        "global:
  resolve_timeout: 1m
  smtp_smarthost: '127.0.0.1:{smtp_port}'
  smtp_from: 'vigie@example.org'
  smtp_require_tls: false
  slack_api_url: '{base}/slack'
  opsgenie_api_url: '{base}/opsgenie/'
  opsgenie_api_key: 'og-key'
route:
  receiver: all
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: all
    slack_configs: [{{channel: '#ops'}}]
    pagerduty_configs: [{{routing_key: 'pd-key', url: '{base}/pagerduty'}}]
    opsgenie_configs: [{{}}]
    msteams_configs: [{{webhook_url: '{base}/teams'}}]
    discord_configs: [{{webhook_url: '{base}/discord'}}]
    telegram_configs: [{{api_url: '{base}/telegram', bot_token: 'tok', chat_id: 42}}]
    email_configs: [{{to: 'ops@example.org'}}]
"
    );
    let path = dir.path().join("router.yml");
    std::fs::write(&path, cfg).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_vigie")).args(["check", "router"]).arg(&path).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let v = Vigie::start(dir.path(), &["--router-config", path.to_str().unwrap()]);

    let alert = r#"[{"labels":{"alertname":"DiskFull","team":"db","severity":"page"},"annotations":{"summary":"disk <full>","description":"90% used"},"startsAt":"2026-01-01T00:00:00Z"}]"#;
    let r = http("POST", v.port, "/api/v2/alerts", Some(("application/json", alert))).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(Duration::from_secs(20), "all six HTTP integrations and the email", || {
        let paths = ["/slack", "/pagerduty", "/opsgenie", "/teams", "/discord", "/telegram"];
        (paths.iter().all(|p| !by_path(&hits, p).is_empty()) && !maildir_messages(&maildir).is_empty()).then_some(())
    });
    // Alertmanager's subject: status and count, group label values, then the other common
    // label values in SortedPairs order.
    let subject = "[FIRING:1] DiskFull (page db)";

    let slack = json(&by_path(&hits, "/slack")[0]);
    assert_eq!(slack["channel"], "#ops");
    assert_eq!(slack["username"], "Alertmanager");
    let att = &slack["attachments"][0];
    assert_eq!(att["title"], subject);
    assert_eq!(att["color"], "danger");
    assert_eq!(att["fallback"], format!("{subject} | {}/#/alerts?receiver=all", v.url()));
    assert_eq!(att["mrkdwn_in"], serde_json::json!(["fallback", "pretext", "text"]));

    let pd = json(&by_path(&hits, "/pagerduty")[0]);
    assert_eq!(pd["routing_key"], "pd-key");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], sha256_hex("{}:{alertname=\"DiskFull\"}"));
    assert_eq!(pd["payload"]["summary"], subject);
    assert_eq!(pd["payload"]["severity"], "error");
    assert_eq!(pd["payload"]["source"], pd["client"]);
    assert_eq!(pd["payload"]["custom_details"]["num_firing"], "1");
    assert_eq!(pd["client"], "Alertmanager");

    let og = &by_path(&hits, "/opsgenie")[0];
    assert_eq!(og.path, "/opsgenie/v2/alerts");
    assert!(og.headers.contains(&("authorization".into(), "GenieKey og-key".into())), "{:?}", og.headers);
    let ogj = json(og);
    assert_eq!(ogj["message"], subject);
    assert_eq!(ogj["alias"], sha256_hex("{}:{alertname=\"DiskFull\"}"));
    assert_eq!(ogj["details"]["team"], "db");

    let teams = json(&by_path(&hits, "/teams")[0]);
    assert_eq!((teams["@type"].as_str(), teams["type"].as_str()), (None, Some("MessageCard")));
    assert_eq!(teams["title"], subject);
    assert_eq!(teams["themeColor"], "8C1A1A");

    let discord = json(&by_path(&hits, "/discord")[0]);
    assert_eq!(discord["embeds"][0]["title"], subject);
    assert_eq!(discord["embeds"][0]["color"], 0x992D22);

    let tg = &by_path(&hits, "/telegram")[0];
    assert_eq!(tg.path, "/telegram/bottok/sendMessage");
    let tgj = json(tg);
    assert_eq!((tgj["chat_id"].as_i64(), tgj["parse_mode"].as_str()), (Some(42), Some("HTML")));
    assert!(tgj["text"].as_str().unwrap().contains("DiskFull"), "{tgj}");

    let mail = &maildir_messages(&maildir)[0];
    assert!(mail.contains(&format!("Subject: {subject}")), "{mail}");
    assert!(mail.contains("To: ops@example.org"), "{mail}");
    assert!(mail.contains("From: vigie@example.org"), "{mail}");
    assert!(mail.contains("text/html"), "{mail}");

    // Resolved: PagerDuty resolves and Opsgenie closes (send_resolved defaults to true);
    // Slack and email stay quiet (false by default).
    let resolved = r#"[{"labels":{"alertname":"DiskFull","team":"db","severity":"page"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:10:00Z"}]"#;
    http("POST", v.port, "/api/v2/alerts", Some(("application/json", resolved))).unwrap();
    eventually(Duration::from_secs(20), "resolve notices", || {
        (by_path(&hits, "/pagerduty").len() == 2 && by_path(&hits, "/opsgenie").len() == 2).then_some(())
    });
    assert_eq!(json(&by_path(&hits, "/pagerduty")[1])["event_action"], "resolve");
    assert_eq!(
        by_path(&hits, "/opsgenie")[1].path,
        format!("/opsgenie/v2/alerts/{}/close?identifierType=alias", sha256_hex("{}:{alertname=\"DiskFull\"}"))
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(by_path(&hits, "/slack").len(), 1);
    assert_eq!(maildir_messages(&maildir).len(), 1);
    assert_eq!(json(by_path(&hits, "/teams").last().unwrap())["themeColor"], "2DC72D");
}
