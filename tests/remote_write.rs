//! End to end: remote write into the real vigie binary — from a real Prometheus 2.42, and
//! from a client that SIGKILLs vigie mid-stream and checks that every acknowledged sample
//! comes back after a restart, also when the WAL tail was damaged.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use prost::Message;
use vigie::api::prompb::{Label, Sample, TimeSeries, WriteRequest};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn label(n: &str, v: &str) -> Label {
    Label { name: Bytes::copy_from_slice(n.as_bytes()), value: Bytes::copy_from_slice(v.as_bytes()) }
}

const SERIES: usize = 50;
const PER_BATCH: i64 = 10;

/// Batch `b`: every series gets `PER_BATCH` samples at `base + b*1000 + i*100`, value `b*PER_BATCH+i`.
fn batch(base: i64, b: i64) -> Vec<u8> {
    let timeseries = (0..SERIES)
        .map(|s| TimeSeries {
            labels: vec![label("__name__", "crash_test"), label("series", &s.to_string())],
            samples: (0..PER_BATCH)
                .map(|i| Sample { timestamp: base + b * 1000 + i * 100, value: (b * PER_BATCH + i) as f64 })
                .collect(),
            exemplars: vec![],
            histograms: vec![],
        })
        .collect();
    let pb = WriteRequest { timeseries, metadata: vec![] }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&pb).unwrap()
}

fn post_write(port: u16, body: &[u8]) -> std::io::Result<Resp> {
    http_bytes(
        "POST",
        port,
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        body,
    )
}

/// Streams batches from a thread until vigie stops answering; returns the number of
/// batches acknowledged with 204 once vigie was killed at `kill_after` acknowledgements.
fn stream_then_kill(v: &mut Vigie, base: i64, kill_after: usize) -> usize {
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let port = v.port;
    let sender = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut b = 0;
            while !stop.load(Ordering::Relaxed) {
                match post_write(port, &batch(base, b)) {
                    Ok(r) if r.status == 204 => {
                        b += 1;
                        acked.store(b as usize, Ordering::SeqCst);
                    }
                    // vigie is gone (no answer, or the connection dropped): not acknowledged.
                    Ok(r) if r.status == 0 => break,
                    Err(_) => break,
                    Ok(r) => panic!("batch {b}: HTTP {} {}", r.status, r.body),
                }
            }
        })
    };
    eventually(Duration::from_secs(60), "batches acknowledged", || {
        (acked.load(Ordering::SeqCst) >= kill_after).then_some(())
    });
    v.proc.signal("KILL");
    let _ = v.proc.child.wait();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    acked.load(Ordering::SeqCst)
}

/// Per-series sample counts of the acknowledged batches `0..n`, read back through PromQL.
fn counts_up_to(v: &Vigie, base: i64, n: usize) -> Vec<u64> {
    let t = (base + n as i64 * 1000 - 50) as f64 / 1000.0;
    let path = format!("/api/v1/query?query={}&time={t:.3}", urlencode("count_over_time(crash_test[15m])"));
    let body: serde_json::Value = serde_json::from_str(&v.get(&path).body).unwrap();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for s in body["data"]["result"].as_array().unwrap() {
        let id: u64 = s["metric"]["series"].as_str().unwrap().parse().unwrap();
        counts.insert(id, s["value"][1].as_str().unwrap().parse().unwrap());
    }
    (0..SERIES as u64).map(|s| counts.get(&s).copied().unwrap_or(0)).collect()
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let base = now_ms() - 10 * 60 * 1000;
    let mut v = Vigie::start_named(dir.path(), "vigie-1", &[]);
    let acked = stream_then_kill(&mut v, base, 40);
    assert!(acked >= 40);

    let v = Vigie::start_named(dir.path(), "vigie-2", &[]);
    let want = acked as u64 * PER_BATCH as u64;
    assert_eq!(counts_up_to(&v, base, acked), vec![want; SERIES], "every acknowledged sample is back");
    let log = v.proc.log_text();
    assert!(log.contains("WAL replayed"), "{log}");
    assert!(!log.contains("WAL is damaged"), "a SIGKILL between writes leaves a clean log: {log}");
}

/// The same with checkpoints every few batches, so the kill can land during one: replay
/// then starts from the newest complete checkpoint and still finds every acknowledged sample.
#[test]
fn acknowledged_samples_survive_sigkill_during_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let base = now_ms() - 10 * 60 * 1000;
    let mut v = Vigie::start_named(dir.path(), "vigie-1", &["--wal-checkpoint-size", "16KiB"]);
    let acked = stream_then_kill(&mut v, base, 60);
    let written = v.proc.log_text().matches("WAL checkpoint written").count();
    assert!(written >= 3, "checkpoints while streaming: {written}");

    let v = Vigie::start_named(dir.path(), "vigie-2", &["--wal-checkpoint-size", "16KiB"]);
    let want = acked as u64 * PER_BATCH as u64;
    assert_eq!(counts_up_to(&v, base, acked), vec![want; SERIES], "every acknowledged sample is back");
    let log = v.proc.log_text();
    assert!(log.contains("WAL checkpoint replayed"), "{log}");
    assert!(!log.contains("WAL is damaged"), "{log}");
}

#[test]
fn damaged_wal_tail_is_truncated_reported_and_then_clean() {
    let dir = tempfile::tempdir().unwrap();
    let base = now_ms() - 10 * 60 * 1000;
    let mut v = Vigie::start_named(dir.path(), "vigie-1", &[]);
    let acked = stream_then_kill(&mut v, base, 30);

    // Flip bytes inside the last segment, three quarters of the way in.
    let wal = dir.path().join("data/wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let last = segs.iter().rev().find(|p| std::fs::metadata(p).unwrap().len() > 0).unwrap().clone();
    let mut data = std::fs::read(&last).unwrap();
    let at = data.len() * 3 / 4;
    for b in &mut data[at..at + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&last, &data).unwrap();

    let v2 = Vigie::start_named(dir.path(), "vigie-2", &[]);
    let log = v2.proc.log_text();
    assert!(log.contains("WAL is damaged"), "the damage is reported: {log}");
    let counts = counts_up_to(&v2, base, acked);
    let kept = counts[0];
    assert!(kept > 0 && kept < acked as u64 * PER_BATCH as u64, "samples before the damage are kept: {counts:?}");
    assert!(counts.iter().all(|c| *c == kept || c.abs_diff(kept) <= PER_BATCH as u64), "{counts:?}");
    // New writes after the repair are durable too, and the next start is clean.
    let t = base + 500_000;
    let body = {
        let ts = TimeSeries {
            labels: vec![label("__name__", "after_repair")],
            samples: vec![Sample { timestamp: t, value: 1.0 }],
            exemplars: vec![],
            histograms: vec![],
        };
        snap::raw::Encoder::new()
            .compress_vec(&WriteRequest { timeseries: vec![ts], metadata: vec![] }.encode_to_vec())
            .unwrap()
    };
    assert_eq!(post_write(v2.port, &body).unwrap().status, 204);
    drop(v2);
    let v3 = Vigie::start_named(dir.path(), "vigie-3", &[]);
    let log = v3.proc.log_text();
    assert!(!log.contains("WAL is damaged"), "repaired once, not every start: {log}");
    let q = v3.query(&format!("count_over_time(after_repair[15m] @ {})", (t + 1) as f64 / 1000.0));
    assert_eq!(q["data"]["result"][0]["value"][1], "1", "{q}");
    assert_eq!(counts_up_to(&v3, base, acked), counts);
}

#[test]
fn bad_requests_get_their_status_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigie::start(dir.path(), &[]);
    let r = post_write(v.port, b"garbage").unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("snappy"), "{}", r.body);
    let r = http_bytes("POST", v.port, "/api/v1/write", &[("Content-Type", "application/json")], b"{}").unwrap();
    assert_eq!(r.status, 415, "{}", r.body);
    // An old sample is refused with a count; the rest of its batch is stored.
    let base = now_ms() - 60_000;
    assert_eq!(post_write(v.port, &batch(base, 5)).unwrap().status, 204);
    let r = post_write(v.port, &batch(base, 3)).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains(&format!("{} samples rejected", SERIES as i64 * PER_BATCH)), "{}", r.body);
    let m = v.get("/metrics").body;
    assert!(m.contains("vigie_remote_write_rejected_total{reason=\"out_of_order\"} 500"), "{m}");
    assert!(m.contains("vigie_remote_write_requests_total{code=\"415\"} 1"), "{m}");
}

#[test]
fn out_of_order_window_accepts_late_samples() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigie::start(dir.path(), &["--out-of-order-window", "10m"]);
    let base = now_ms() - 60_000;
    assert_eq!(post_write(v.port, &batch(base, 5)).unwrap().status, 204);
    assert_eq!(post_write(v.port, &batch(base, 3)).unwrap().status, 204);
    let counts = counts_up_to(&v, base, 6);
    assert_eq!(counts, vec![2 * PER_BATCH as u64; SERIES]);
}

/// A real Prometheus scrapes a node_exporter and remote-writes to vigie; both answer the same
/// instant query with the same series and values.
#[test]
fn prometheus_remote_writes_into_vigie() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigie::start(dir.path(), &["--discovery", "none"]);
    let (_ne, ne_port) = node_exporter(dir.path(), "node_exporter");
    let config = format!(
        "global: {{scrape_interval: 1s}}\n\
             scrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{ne_port}']}}]\n\
             remote_write:\n  - url: http://127.0.0.1:{}/api/v1/write\n    queue_config: {{batch_send_deadline: 1s}}\n",
        v.port
    );
    let (_prom, prom_port) = prometheus(dir.path(), &config);
    let q = "{job=\"node\"}";
    let vector = |port: u16, t: f64| -> BTreeMap<String, String> {
        let path = format!("/api/v1/query?query={}&time={t:.3}", urlencode(q));
        let text = http("GET", port, &path, None).map(|r| r.body).unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .map(|a| a.iter().map(|s| (s["metric"].to_string(), s["value"][1].to_string())).collect())
            .unwrap_or_default()
    };
    // Wait for a few scrapes to exist in Prometheus, then pick a time both must agree on.
    eventually(Duration::from_secs(60), "prometheus has scraped node_exporter", || {
        (vector(prom_port, now_ms() as f64 / 1000.0).len() > 100).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let t = (now_ms() - 1500) as f64 / 1000.0;
    let want = vector(prom_port, t);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = vector(v.port, t);
        if got == want || std::time::Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let missing: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).take(5).collect();
    let extra: Vec<_> = got.iter().filter(|(k, v)| want.get(*k) != Some(v)).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "Prometheus has, vigie lacks: {missing:?}\nvigie has, Prometheus lacks: {extra:?}\n{}",
        v.proc.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(got.len() > 100, "node_exporter has hundreds of series: {}", got.len());
}
