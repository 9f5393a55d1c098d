//! Differential test of the alert router against the real Alertmanager 0.25: every
//! scenario in `tests/router/*.yml` runs against Alertmanager and against vigie
//! (`--router-config`, same config text) at the same moments, each with its own webhook
//! capture server, and the notifications both send are compared after normalisation.
//!
//! Scenario file (one behaviour each; the first `# ` line describes it):
//!
//! ```yaml
//! config: |          # Alertmanager config; webhook urls are written http://HOOK/<path>
//! expect_none: [p]   # optional: paths that must get no notification (all others need one)
//! vigie_differs:     # optional: a deviation vigie makes on purpose (documented in its code/docs)
//!   why: <reason>
//!   moves: [{path: p, groupKey: k, from: 3, to: 4}]   # that notification comes at `to` on vigie
//! steps:             # in order; `at` = seconds from the scenario start
//!   - {at: 0, post: [{labels: {..}, annotations: {..}, starts: -20, ends: 3}]}
//!   - {at: 2, silence: {id: s1, matchers: [..], starts: 0, ends: 100, comment: c, createdBy: t}}
//!   - {at: 4, expire_silence: s1}
//!   - {at: 5, reload: "<new config>"}
//!   - {at: 8, end: true}   # stop collecting
//! ```
//!
//! `starts`/`ends` are seconds relative to the scenario start, sent as RFC 3339 with
//! milliseconds; the same request body goes to both servers, Alertmanager first, back to
//! back.
//!
//! Normalised notification (what is compared):
//! `{path, receiver, status, groupKey, groupLabels, commonLabels, commonAnnotations,
//! truncatedAlerts, alerts: [{status, labels, annotations, fingerprint, startsAt?, endsAt?}], at}` where
//! `path` is the request path without its leading `/`; `externalURL`, `version` and
//! `generatorURL` are dropped (`fingerprint` is kept: it depends on the labels only); `startsAt` is kept only for alerts whose label
//! set the scenario posted with `starts`, `endsAt` only for those posted with `ends` and
//! for firing alerts (always `0001-01-01T00:00:00Z`): other times come from each server's
//! clock. `at` is the arrival time in seconds from the scenario start; two arrivals within
//! ±0.4 s are the same flush tick (scenarios keep ≥ 0.4 s between any step and any flush).
//! Notifications are ordered by (path, groupKey, arrival); the alert order inside a
//! notification is compared as sent. vigie is compared with Alertmanager's list after the
//! scenario's `vigie_differs` moves (timing only: the content must still be identical).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{Map, Value, json};

/// Two arrival times closer than this are the same flush tick.
const TICK_TOLERANCE: f64 = 0.4;

/// A step this late (the machine is overloaded) is reported with a failure.
const LATE: Duration = Duration::from_millis(150);

macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        const SCENARIOS: &[&str] = &[$(stringify!($name)),+];
        $(
            #[test]
            fn $name() {
                run_scenario(stringify!($name));
            }
        )+
    };
}

scenarios!(
    alert_order_common,
    continue_nested,
    explicit_times,
    group_by_all,
    group_by_missing,
    inhibit_equal,
    legacy_match,
    matchers_regex_negative,
    max_alerts,
    receiver_quotemeta,
    reload_group_by,
    reload_unchanged,
    repeat_interval,
    send_resolved,
    silence_add_expire,
    time_intervals,
);

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("router")
}

#[test]
fn every_scenario_file_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".yml")).map(str::to_string))
        .collect();
    files.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "tests/router/*.yml and the scenarios! list in this file must name the same scenarios");
}

// ---------------------------------------------------------------------------------------
// Webhook capture server

/// One received request: arrival instant, request path, body.
type Record = (Instant, String, String);

/// A webhook receiver on a free loopback port that answers 200 and records every request
/// with its arrival instant. Each connection gets its own thread, so simultaneous flushes
/// are not serialised (nor delayed by a full accept backlog).
struct Hook {
    port: u16,
    got: Arc<Mutex<Vec<Record>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Hook { port, got }
    }

    fn snapshot(&self) -> Vec<Record> {
        self.got.lock().unwrap().clone()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a chunked message, or `None` while it is incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let i = find(b, b"\r\n")?;
        let line = std::str::from_utf8(&b[..i]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        b = &b[i + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Reads one request, records it, answers 200 and closes the connection.
fn serve(mut s: TcpStream, got: &Mutex<Vec<Record>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut read_more = |s: &mut TcpStream, buf: &mut Vec<u8>| -> bool {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    };
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !read_more(&mut s, &mut buf) {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let lower = head.to_ascii_lowercase();
    let chunked = lower.contains("transfer-encoding: chunked");
    let len: usize =
        lower.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let body = loop {
        if chunked {
            if let Some(b) = dechunk(&buf[head_end..]) {
                break b;
            }
        } else if buf.len() >= head_end + len {
            break buf[head_end..head_end + len].to_vec();
        }
        if !read_more(&mut s, &mut buf) {
            return;
        }
    };
    let arrived = Instant::now();
    got.lock().unwrap().push((arrived, path, String::from_utf8_lossy(&body).to_string()));
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = s.flush();
}

// ---------------------------------------------------------------------------------------
// Scenarios

struct Scenario {
    name: String,
    description: String,
    config: String,
    steps: Vec<Value>,
    expect_none: BTreeSet<String>,
    differs: Option<Deviation>,
}

/// A documented, deliberate difference: these Alertmanager notifications arrive at another
/// tick on vigie.
struct Deviation {
    why: String,
    moves: Vec<Move>,
}

struct Move {
    path: String,
    group_key: String,
    from: f64,
    to: f64,
}

fn load(name: &str) -> Scenario {
    let path = scenario_dir().join(format!("{name}.yml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let description =
        text.lines().find_map(|l| l.strip_prefix("# ")).map(str::to_string).unwrap_or_else(|| name.to_string());
    let config = v["config"].as_str().unwrap_or_else(|| panic!("{name}: `config` must be a string")).to_string();
    let steps = v["steps"].as_array().unwrap_or_else(|| panic!("{name}: `steps` must be a list")).clone();
    let expect_none = v
        .get("expect_none")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    p.as_str().unwrap_or_else(|| panic!("{name}: expect_none lists paths")).trim_start_matches('/')
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let differs = v.get("vigie_differs").map(|d| {
        let why = d["why"].as_str().unwrap_or_else(|| panic!("{name}: vigie_differs needs `why`")).to_string();
        let moves = d["moves"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: vigie_differs needs `moves`"))
            .iter()
            .map(|m| {
                let text = |k: &str| {
                    m[k].as_str().unwrap_or_else(|| panic!("{name}: vigie_differs move needs `{k}`")).to_string()
                };
                let secs = |k: &str| {
                    m[k].as_f64().unwrap_or_else(|| panic!("{name}: vigie_differs move needs `{k}` (seconds)"))
                };
                Move { path: text("path"), group_key: text("groupKey"), from: secs("from"), to: secs("to") }
            })
            .collect();
        Deviation { why, moves }
    });
    Scenario { name: name.to_string(), description, config, steps, expect_none, differs }
}

/// The webhook paths a config text sends to (`http://HOOK/<path>`).
fn hook_paths(config: &str) -> BTreeSet<String> {
    config
        .split("http://HOOK/")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'))
                .collect::<String>()
        })
        .collect()
}

fn with_hook(config: &str, port: u16) -> String {
    config.replace("http://HOOK/", &format!("http://127.0.0.1:{port}/"))
}

/// Label or annotation map with every value as a string (YAML scalars may be numbers).
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn label_key(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap()
}

/// `2026-12-03T15:04:05.123Z` for Unix milliseconds.
fn rfc3339_ms(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil_from_days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// One server under test: its API port, the config file it reloads, its capture server
/// and the silence ids it returned (by the scenario's `id:` names).
struct Side {
    name: &'static str,
    port: u16,
    config_path: PathBuf,
    hook: Hook,
    silences: BTreeMap<String, String>,
}

impl Side {
    fn request(&self, scenario: &str, method: &str, path: &str, body: Option<&str>) -> Resp {
        let r = http(method, self.port, path, body.map(|b| ("application/json", b)))
            .unwrap_or_else(|e| panic!("scenario {scenario}: {} {method} {path}: {e}", self.name));
        assert!(
            r.status == 200,
            "scenario {scenario}: {} answered {method} {path} with {}: {}\nrequest body: {}",
            self.name,
            r.status,
            r.body,
            body.unwrap_or("")
        );
        r
    }
}

/// Alert label sets the scenario gave explicit times for.
#[derive(Default)]
struct Explicit {
    starts: BTreeSet<String>,
    ends: BTreeSet<String>,
}

fn run_step(sc: &Scenario, i: usize, st: &Value, sides: &mut [Side], wall0_ms: i64, explicit: &mut Explicit) {
    let name = sc.name.as_str();
    let rel = |v: &Value, what: &str| -> String {
        let secs = v.as_f64().unwrap_or_else(|| panic!("{name}: step {i}: `{what}` must be seconds"));
        rfc3339_ms(wall0_ms + (secs * 1000.0).round() as i64)
    };
    if let Some(cfg) = st.get("reload") {
        let cfg = cfg.as_str().unwrap_or_else(|| panic!("{name}: step {i}: `reload` must be a config text"));
        for s in sides.iter() {
            std::fs::write(&s.config_path, with_hook(cfg, s.hook.port)).unwrap();
            s.request(name, "POST", "/-/reload", None);
        }
    }
    if let Some(sil) = st.get("silence") {
        let body = json!({
            "matchers": sil["matchers"],
            "startsAt": rel(sil.get("starts").unwrap_or(&Value::from(0)), "starts"),
            "endsAt": rel(&sil["ends"], "ends"),
            "comment": sil.get("comment").and_then(Value::as_str).unwrap_or("differential test"),
            "createdBy": sil.get("createdBy").and_then(Value::as_str).unwrap_or("router_differential"),
        })
        .to_string();
        for s in sides.iter_mut() {
            let r = s.request(name, "POST", "/api/v2/silences", Some(&body));
            let id = serde_json::from_str::<Value>(&r.body)
                .ok()
                .and_then(|j| j["silenceID"].as_str().map(str::to_string))
                .unwrap_or_else(|| panic!("scenario {name}: {} returned no silenceID: {}", s.name, r.body));
            if let Some(key) = sil.get("id").and_then(Value::as_str) {
                s.silences.insert(key.to_string(), id);
            }
        }
    }
    if let Some(key) = st.get("expire_silence") {
        let key = key.as_str().unwrap_or_else(|| panic!("{name}: step {i}: `expire_silence` names a silence id"));
        for s in sides.iter() {
            let id = s.silences.get(key).unwrap_or_else(|| panic!("{name}: step {i}: no silence `{key}`"));
            s.request(name, "DELETE", &format!("/api/v2/silence/{id}"), None);
        }
    }
    if let Some(alerts) = st.get("post") {
        let alerts = alerts.as_array().unwrap_or_else(|| panic!("{name}: step {i}: `post` must be a list"));
        let mut list = Vec::new();
        for a in alerts {
            let labels = string_map(&a["labels"]);
            let key = label_key(&labels);
            let mut o = Map::new();
            o.insert("labels".into(), json!(labels));
            if a.get("annotations").is_some() {
                o.insert("annotations".into(), json!(string_map(&a["annotations"])));
            }
            if let Some(v) = a.get("starts") {
                o.insert("startsAt".into(), Value::String(rel(v, "starts")));
                explicit.starts.insert(key.clone());
            }
            if let Some(v) = a.get("ends") {
                o.insert("endsAt".into(), Value::String(rel(v, "ends")));
                explicit.ends.insert(key.clone());
            }
            list.push(Value::Object(o));
        }
        let body = Value::Array(list).to_string();
        for s in sides.iter() {
            s.request(name, "POST", "/api/v2/alerts", Some(&body));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Normalisation and comparison

fn norm_alert(a: &Value, explicit: &Explicit) -> Value {
    let key = label_key(&string_map(&a["labels"]));
    let mut o = Map::new();
    o.insert("status".into(), a["status"].clone());
    o.insert("labels".into(), a["labels"].clone());
    o.insert("annotations".into(), a["annotations"].clone());
    // A function of the labels alone (FNV-1a of the sorted pairs), so it must match.
    o.insert("fingerprint".into(), a["fingerprint"].clone());
    if explicit.starts.contains(&key) {
        o.insert("startsAt".into(), a["startsAt"].clone());
    }
    if explicit.ends.contains(&key) || a["status"] == "firing" {
        o.insert("endsAt".into(), a["endsAt"].clone());
    }
    Value::Object(o)
}

fn sort_notifications(list: &mut [Value]) {
    list.sort_by(|a, b| {
        let ka = (a["path"].as_str().unwrap_or(""), a["groupKey"].as_str().unwrap_or(""));
        let kb = (b["path"].as_str().unwrap_or(""), b["groupKey"].as_str().unwrap_or(""));
        ka.cmp(&kb).then(at(a).total_cmp(&at(b)))
    });
}

/// Alertmanager's list with the scenario's deliberate deviations applied: what vigie must send.
fn expected_from(name: &str, am: &[Value], differs: Option<&Deviation>) -> Vec<Value> {
    let mut out = am.to_vec();
    for m in differs.map(|d| d.moves.as_slice()).unwrap_or_default() {
        let hits: Vec<usize> = (0..out.len())
            .filter(|&i| {
                out[i]["path"] == m.path.as_str()
                    && out[i]["groupKey"] == m.group_key.as_str()
                    && (at(&out[i]) - m.from).abs() <= TICK_TOLERANCE
            })
            .collect();
        assert!(
            hits.len() == 1,
            "scenario {name} is broken (not vigie): vigie_differs moves {} {} from {}s, but Alertmanager sent {} \
             such notifications:\n{}",
            m.path,
            m.group_key,
            m.from,
            hits.len(),
            pretty(am)
        );
        let moved = ((at(&out[hits[0]]) + m.to - m.from) * 100.0).round() / 100.0;
        out[hits[0]]["at"] = json!(moved);
    }
    sort_notifications(&mut out);
    out
}

fn normalise(records: &[Record], start: Instant, explicit: &Explicit) -> Vec<Value> {
    let mut out: Vec<Value> = records
        .iter()
        .map(|(t, path, body)| {
            let at = (t.saturating_duration_since(start).as_secs_f64() * 100.0).round() / 100.0;
            let path = path.trim_start_matches('/').to_string();
            let j: Value = match serde_json::from_str(body) {
                Ok(j) => j,
                Err(e) => return json!({"path": path, "at": at, "unparsable body": body, "error": e.to_string()}),
            };
            let alerts: Vec<Value> =
                j["alerts"].as_array().map(|a| a.iter().map(|a| norm_alert(a, explicit)).collect()).unwrap_or_default();
            json!({
                "path": path,
                "receiver": j["receiver"],
                "status": j["status"],
                "groupKey": j["groupKey"],
                "groupLabels": j["groupLabels"],
                "commonLabels": j["commonLabels"],
                "commonAnnotations": j["commonAnnotations"],
                "truncatedAlerts": j["truncatedAlerts"],
                "alerts": alerts,
                "at": at,
            })
        })
        .collect();
    sort_notifications(&mut out);
    out
}

fn at(v: &Value) -> f64 {
    v["at"].as_f64().unwrap_or(f64::NAN)
}

fn brief(v: &Value) -> String {
    format!("{} {} at {}s", v["path"], v["groupKey"], v["at"])
}

/// The first difference between the two normalised lists, in words.
fn first_difference(am: &[Value], vigie: &[Value]) -> Option<String> {
    for i in 0..am.len().max(vigie.len()) {
        match (am.get(i), vigie.get(i)) {
            (Some(x), Some(y)) => {
                let keys: Vec<&String> = x
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .chain(y.as_object().into_iter().flat_map(|o| o.keys()))
                    .filter(|k| k.as_str() != "at" && x.get(k.as_str()) != y.get(k.as_str()))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !keys.is_empty() {
                    let fields: Vec<String> = keys
                        .iter()
                        .map(|k| {
                            format!("  {k}:\n    alertmanager {}\n    vigie        {}", x[k.as_str()], y[k.as_str()])
                        })
                        .collect();
                    return Some(format!(
                        "notification #{i} differs: alertmanager {} / vigie {}\n{}",
                        brief(x),
                        brief(y),
                        fields.join("\n")
                    ));
                }
                let delta = (at(x) - at(y)).abs();
                if delta.is_nan() || delta > TICK_TOLERANCE {
                    return Some(format!(
                        "notification #{i} ({}) arrived at {}s on alertmanager but at {}s on vigie (tolerance ±{TICK_TOLERANCE}s)",
                        brief(x),
                        x["at"],
                        y["at"]
                    ));
                }
            }
            (Some(x), None) => return Some(format!("vigie lacks notification #{i}: {}", brief(x))),
            (None, Some(y)) => return Some(format!("vigie sent an extra notification #{i}: {}", brief(y))),
            (None, None) => unreachable!(),
        }
    }
    None
}

fn pretty(list: &[Value]) -> String {
    serde_json::to_string_pretty(list).unwrap()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn run_scenario(name: &str) {
    let sc = load(name);
    let dir = tempfile::tempdir().unwrap();
    let am_hook = Hook::start();
    let vigie_hook = Hook::start();
    // `alertmanager` writes its config to DIR/alertmanager.yml, the file reloads rewrite.
    let (am_proc, am_port) = alertmanager(dir.path(), &with_hook(&sc.config, am_hook.port));
    let router_cfg = dir.path().join("router.yml");
    std::fs::write(&router_cfg, with_hook(&sc.config, vigie_hook.port)).unwrap();
    let vigie = Vigie::start(dir.path(), &["--router-config", router_cfg.to_str().unwrap()]);
    let mut sides = [
        Side {
            name: "alertmanager",
            port: am_port,
            config_path: dir.path().join("alertmanager.yml"),
            hook: am_hook,
            silences: BTreeMap::new(),
        },
        Side { name: "vigie", port: vigie.port, config_path: router_cfg, hook: vigie_hook, silences: BTreeMap::new() },
    ];

    let mut explicit = Explicit::default();
    let mut late = Vec::new();
    let start = Instant::now();
    let wall0_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    for (i, st) in sc.steps.iter().enumerate() {
        let at = st["at"].as_f64().unwrap_or_else(|| panic!("{name}: step {i} needs `at` (seconds)"));
        let due = start + Duration::from_secs_f64(at);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > LATE {
            late.push(format!("step {i} (at {at}s) ran {:.3}s late", (now - due).as_secs_f64()));
        }
        run_step(&sc, i, st, &mut sides, wall0_ms, &mut explicit);
        if st.get("end").and_then(Value::as_bool) == Some(true) {
            break;
        }
    }
    let am = normalise(&sides[0].hook.snapshot(), start, &explicit);
    let vg = normalise(&sides[1].hook.snapshot(), start, &explicit);

    // The scenario itself must not be vacuous: Alertmanager notifies every path it names,
    // except those the scenario expects to stay silent.
    let mut paths = hook_paths(&sc.config);
    for st in &sc.steps {
        if let Some(cfg) = st.get("reload").and_then(Value::as_str) {
            paths.extend(hook_paths(cfg));
        }
    }
    let unknown: Vec<&String> = sc.expect_none.difference(&paths).collect();
    assert!(unknown.is_empty(), "scenario {name}: expect_none names paths no webhook uses: {unknown:?}");
    let am_paths: BTreeSet<String> = am.iter().filter_map(|n| n["path"].as_str().map(str::to_string)).collect();
    let silent: Vec<&String> =
        paths.iter().filter(|p| !sc.expect_none.contains(*p) && !am_paths.contains(*p)).collect();
    let noisy: Vec<&String> = sc.expect_none.intersection(&am_paths).collect();
    assert!(
        silent.is_empty() && noisy.is_empty(),
        "scenario {name} is broken (not vigie): Alertmanager sent nothing to {silent:?} and something to the \
         expect_none paths {noisy:?}\n{}\nalertmanager log:\n{}",
        pretty(&am),
        tail(&am_proc.log_text(), 30)
    );

    let expected = expected_from(name, &am, sc.differs.as_ref());
    if let Some(diff) = first_difference(&expected, &vg) {
        panic!(
            "router scenario `{name}` ({}):\n{diff}\n{}--- alertmanager ({} notifications{})\n{}\n--- vigie ({} notifications)\n{}\n--- vigie log (tail)\n{}",
            sc.description,
            if late.is_empty() { String::new() } else { format!("(the harness ran late: {})\n", late.join("; ")) },
            expected.len(),
            match &sc.differs {
                Some(d) => format!(", `at` moved by vigie_differs: {}", d.why),
                None => String::new(),
            },
            pretty(&expected),
            vg.len(),
            pretty(&vg),
            tail(&vigie.proc.log_text(), 40)
        );
    }
}
