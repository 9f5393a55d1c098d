//! Shared helpers for the end-to-end tests: free loopback ports, child processes that are
//! killed when dropped, a minimal HTTP client, and polling with a deadline.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Finds an external program the test needs, or fails with the install hint.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("{program} not found: install the Debian package {package} (.ci/run does)");
}

/// A child process killed on drop, with its stderr kept in a file for failure messages.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(f).spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child, name: name.into(), log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (e.g. "HUP") with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(st.success());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
}

pub fn http(method: &str, port: u16, path: &str, body: Option<(&str, &str)>) -> std::io::Result<Resp> {
    let (ct, b) = body.unwrap_or(("text/plain", ""));
    http_bytes(method, port, path, &[("Content-Type", ct)], b.as_bytes())
}

/// An HTTP/1.1 request with a binary body and extra headers.
pub fn http_bytes(method: &str, port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    s.write_all(&out)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_string() };
    Ok(Resp { status, body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get(port: u16, path: &str) -> Resp {
    http("GET", port, path, None).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running vigie on a free loopback port.
pub struct Vigie {
    pub proc: Proc,
    pub port: u16,
}

impl Vigie {
    pub fn start(dir: &Path, args: &[&str]) -> Vigie {
        Self::start_named(dir, "vigie", args)
    }

    /// Like `start`, with the log in `NAME.log` (for restarts on the same data dir).
    pub fn start_named(dir: &Path, name: &str, args: &[&str]) -> Vigie {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
        cmd.arg("run").arg("--listen").arg(&listen).arg("--data-dir").arg(dir.join("data")).args(args);
        // A Docker swarm on the test machine must not add targets to tests that do not ask.
        if !args.iter().any(|a| a.starts_with("--discovery")) {
            cmd.arg("--discovery=files");
        }
        cmd.env("RUST_LOG", "info,vigie=debug");
        let proc = Proc::spawn(name, &mut cmd, dir);
        let v = Vigie { proc, port };
        let p = v.port;
        eventually(Duration::from_secs(20), "vigie /-/ready", || {
            http("GET", p, "/-/ready", None).ok().filter(|r| r.status == 200)
        });
        v
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn get(&self, path: &str) -> Resp {
        get(self.port, path)
    }

    /// Runs an instant query through the API and returns the JSON response.
    pub fn query(&self, q: &str) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", urlencode(q));
        serde_json::from_str(&self.get(&path).body).unwrap()
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Starts the Debian Prometheus with `config` (YAML) on a free loopback port, its TSDB in
/// `dir/prom`, and waits until it is ready.
pub fn prometheus(dir: &Path, config: &str) -> (Proc, u16) {
    prometheus_with_args(dir, config, &[])
}

/// `prometheus` with extra command-line flags.
pub fn prometheus_with_args(dir: &Path, config: &str, args: &[&str]) -> (Proc, u16) {
    let bin = require("prometheus", "prometheus");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let port = free_port();
    let p = Proc::spawn(
        "prometheus",
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args),
        dir,
    );
    eventually(Duration::from_secs(30), "prometheus /-/ready", || {
        http("GET", port, "/-/ready", None).ok().filter(|r| r.status == 200)
    });
    (p, port)
}

/// Backfills an OpenMetrics file with the real `promtool tsdb create-blocks-from
/// openmetrics` into `out`; panics with promtool's error.
pub fn promtool_backfill(file: &Path, out: &Path) {
    let promtool = require("promtool", "prometheus");
    let r =
        Command::new(promtool).args(["tsdb", "create-blocks-from", "openmetrics"]).arg(file).arg(out).output().unwrap();
    assert!(r.status.success(), "promtool: {}", String::from_utf8_lossy(&r.stderr));
}

/// `vigie import openmetrics FILE --data-dir DIR`; returns its stdout and stderr.
pub fn vigie_import(file: &Path, data_dir: &Path) -> (String, String) {
    let r = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["import", "openmetrics"])
        .arg(file)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&r.stdout).to_string(), String::from_utf8_lossy(&r.stderr).to_string());
    assert!(r.status.success(), "vigie import: {err}");
    (out, err)
}

/// Starts the Debian prometheus-node-exporter on a free loopback port.
pub fn node_exporter(dir: &Path, name: &str) -> (Proc, u16) {
    let bin = require("prometheus-node-exporter", "prometheus-node-exporter");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let p = Proc::spawn(name, &mut cmd, dir);
    eventually(Duration::from_secs(20), "node_exporter /metrics", || {
        http("GET", port, "/metrics", None).ok().filter(|r| r.status == 200)
    });
    (p, port)
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body) from a stream.
fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..].to_vec()))
}

/// A scrape target on a free loopback port serving `body()` as its metrics page; the
/// test changes the page through the shared string.
pub struct MetricsTarget {
    pub port: u16,
    pub page: std::sync::Arc<std::sync::Mutex<String>>,
}

impl MetricsTarget {
    pub fn start(initial: &str) -> MetricsTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let page = std::sync::Arc::new(std::sync::Mutex::new(initial.to_string()));
        let shared = page.clone();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                if read_request(&mut s).is_none() {
                    continue;
                }
                let body = shared.lock().unwrap().clone();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes());
            }
        });
        MetricsTarget { port, page }
    }

    pub fn set(&self, page: &str) {
        *self.page.lock().unwrap() = page.to_string();
    }
}

/// An HTTP receiver on a free loopback port that answers 200 and keeps every request body
/// (a webhook receiver, or a stand-in Alertmanager).
pub struct Capture {
    pub port: u16,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Capture {
    pub fn start() -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = bodies.clone();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                if let Some((_, body)) = read_request(&mut s) {
                    shared.lock().unwrap().push(String::from_utf8_lossy(&body).to_string());
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Capture { port, bodies }
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Starts the Debian Alertmanager (`prometheus-alertmanager`) with `config` on a free
/// loopback port, clustering off, and waits until it is ready.
pub fn alertmanager(dir: &Path, config: &str) -> (Proc, u16) {
    let bin = require("prometheus-alertmanager", "prometheus-alertmanager");
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, config).unwrap();
    let port = free_port();
    let p = Proc::spawn(
        "alertmanager",
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
        dir,
    );
    eventually(Duration::from_secs(30), "alertmanager /-/ready", || {
        http("GET", port, "/-/ready", None).ok().filter(|r| r.status == 200)
    });
    (p, port)
}
