//! Remote-write ingestion rate, vigie against Prometheus 2.42 (`--web.enable-remote-write-receiver`)
//! on the same pre-encoded requests: 100k series, 2,000 samples per request (one per series, as
//! Prometheus's sender batches), rounds 15 s apart in sample time, two keep-alive connections.
//!
//! Run: `cargo build --release && cargo bench --bench remote_write [-- --series 100000 --rounds 10]`
//! Reports samples/s for the first round (series creation) and the later rounds, and the ratio.
//!
//! With `--replay-rounds N` (e.g. 480: 2 h at 15 s) it then measures restart instead: each
//! server is fed N rounds (generated on the fly), killed with SIGKILL, and restarted on the
//! same data directory; the time from spawn to `/-/ready` answering 200 is its WAL replay.
//! `--only vigie` skips Prometheus; `--keep` leaves the data directories behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use vigie::api::prompb::{Label, Sample, TimeSeries, WriteRequest};

const PER_REQUEST: usize = 2000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn label(n: &str, v: &str) -> Label {
    Label { name: Bytes::copy_from_slice(n.as_bytes()), value: Bytes::copy_from_slice(v.as_bytes()) }
}

/// node_exporter-like series: 50 metric names × instances × a `cpu`/`mode`-style label.
fn requests(series: usize, round: usize, base: i64) -> Vec<Vec<u8>> {
    (0..series)
        .collect::<Vec<_>>()
        .chunks(PER_REQUEST)
        .map(|ids| {
            let timeseries = ids
                .iter()
                .map(|&i| {
                    let (metric, rest) = (i % 50, i / 50);
                    TimeSeries {
                        labels: vec![
                            label("__name__", &format!("node_metric_{metric}_total")),
                            label("cpu", &(rest % 8).to_string()),
                            label("instance", &format!("host-{}.example.org:9100", rest / 8)),
                            label("job", "node"),
                        ],
                        samples: vec![Sample {
                            timestamp: base + round as i64 * 15_000 + (i % 7) as i64,
                            value: (round * (i % 13)) as f64,
                        }],
                        exemplars: vec![],
                        histograms: vec![],
                    }
                })
                .collect();
            snap::raw::Encoder::new()
                .compress_vec(&WriteRequest { timeseries, metadata: vec![] }.encode_to_vec())
                .unwrap()
        })
        .collect()
}

fn post(conn: &mut BufReader<TcpStream>, port: u16, body: &[u8]) -> u16 {
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a second small write would wait for a delayed ACK (Nagle).
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    conn.get_mut().write_all(&req).unwrap();
    let mut status = 0;
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        if line.starts_with("HTTP/") {
            status = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        } else if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        } else if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).unwrap();
    assert!(status / 100 == 2, "HTTP {status}: {}", String::from_utf8_lossy(&body));
    status
}

/// Sends `reqs` over two connections; returns the elapsed time.
fn send_all(port: u16, reqs: &Arc<Vec<Vec<u8>>>) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (reqs, next) = (reqs.clone(), next.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut conn = BufReader::new(stream);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = reqs.get(i) else { break };
                    post(&mut conn, port, r);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    started.elapsed()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server on {port} not ready");
}

fn run(name: &str, mut cmd: Command, port: u16, rounds: &[Arc<Vec<Vec<u8>>>], samples_per_round: usize) -> (f64, f64) {
    let server = Server(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect(name));
    wait_ready(port);
    let first = send_all(port, &rounds[0]);
    let mut later = Duration::ZERO;
    for r in &rounds[1..] {
        later += send_all(port, r);
    }
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", server.0.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
        .unwrap_or(0);
    let first_rate = samples_per_round as f64 / first.as_secs_f64();
    let later_rate = (samples_per_round * (rounds.len() - 1)) as f64 / later.as_secs_f64();
    println!(
        "{name:>10}: first round {first_rate:>10.0} samples/s (series created), later rounds {later_rate:>10.0} samples/s, RSS {} MB = {:.0} B/series",
        rss_kb >> 10,
        rss_kb as f64 * 1024.0 / samples_per_round as f64
    );
    (first_rate, later_rate)
}

/// Feeds `rounds` rounds, kills the server, restarts it and times the way back to ready.
fn replay(name: &str, mk: impl Fn() -> Command, port: u16, series: usize, rounds: usize, base: i64) -> Duration {
    let server = Server(mk().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect(name));
    wait_ready(port);
    let fed = Instant::now();
    for r in 0..rounds {
        send_all(port, &Arc::new(requests(series, r, base)));
        if r % 60 == 59 {
            println!("{name:>10}: fed {} rounds ({:.0} s)", r + 1, fed.elapsed().as_secs_f64());
        }
    }
    drop(server); // SIGKILL: nothing is flushed beyond what each request already wrote
    let started = Instant::now();
    let _again = Server(mk().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect(name));
    wait_ready(port);
    let took = started.elapsed();
    println!("{name:>10}: restart to ready with {series} series x {rounds} samples: {:.2} s", took.as_secs_f64());
    took
}

fn main() {
    let series = arg("--series", 100_000);
    let replay_rounds = arg("--replay-rounds", 0);
    if replay_rounds > 0 {
        return replay_main(series, replay_rounds);
    }
    let rounds_n = arg("--rounds", 10).max(2);
    let base = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    let rounds: Vec<Arc<Vec<Vec<u8>>>> = (0..rounds_n).map(|r| Arc::new(requests(series, r, base))).collect();
    let bytes: usize = rounds.iter().flat_map(|r| r.iter().map(Vec::len)).sum();
    println!("{series} series, {rounds_n} rounds, {PER_REQUEST} samples/request, {} MB compressed", bytes >> 20);
    let tmp = tempfile::tempdir().unwrap();
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("target"));

    let vport = free_port();
    let mut vigie = Command::new(target.join("release/vigie"));
    vigie
        .args(["run", "--discovery", "none", "--listen", &format!("127.0.0.1:{vport}"), "--data-dir"])
        .arg(tmp.path().join("vigie"));
    let (_, v) = run("vigie", vigie, vport, &rounds, series);

    let pport = free_port();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(&cfg, "global: {scrape_interval: 1h}\n").unwrap();
    let mut prom = Command::new("prometheus");
    prom.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tmp.path().join("prom").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .arg("--web.enable-remote-write-receiver");
    let (_, p) = run("prometheus", prom, pport, &rounds, series);
    println!("ratio vigie/prometheus (later rounds): {:.2}x (target: >= 1M samples/s for vigie)", v / p);
}

fn replay_main(series: usize, rounds: usize) {
    let base = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 - rounds as i64 * 15_000;
    let tmp = tempfile::tempdir().unwrap();
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    if std::env::args().any(|a| a == "--keep") {
        println!("data kept in {}", tmp.path().display());
    }
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("target"));
    let vport = free_port();
    let vdir = tmp.path().join("vigie");
    let vigie = || {
        let mut c = Command::new(target.join("release/vigie"));
        c.args(["run", "--discovery", "none", "--listen", &format!("127.0.0.1:{vport}"), "--data-dir"]).arg(&vdir);
        c
    };
    if only.as_deref() == Some("vigie") {
        replay("vigie", vigie, vport, series, rounds, base);
        return keep(tmp);
    }
    let v = replay("vigie", vigie, vport, series, rounds, base);
    let pport = free_port();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(&cfg, "global: {scrape_interval: 1h}\n").unwrap();
    let pdir = tmp.path().join("prom");
    let prom = || {
        let mut c = Command::new("prometheus");
        c.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", pdir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .arg("--web.enable-remote-write-receiver");
        c
    };
    let p = replay("prometheus", prom, pport, series, rounds, base);
    println!("ratio vigie/prometheus restart time: {:.2}x (target: <= 0.5)", v.as_secs_f64() / p.as_secs_f64());
    keep(tmp);
}

/// `--keep` leaves the data directories for inspection.
fn keep(tmp: tempfile::TempDir) {
    if std::env::args().any(|a| a == "--keep") {
        let _ = tmp.keep();
    }
}
