//! End to end: the real vigie binary scrapes a real prometheus-node-exporter, and the real
//! `promtool` queries vigie's Prometheus API.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn promtool(args: &[&str]) -> String {
    let bin = require("promtool", "prometheus");
    let out = Command::new(bin).args(args).output().expect("running promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Sample lines of a text exposition whose metric name starts with `prefix`.
fn count_exposed(page: &str, prefix: &str) -> usize {
    page.lines().filter(|l| !l.starts_with('#') && l.starts_with(prefix)).count()
}

#[test]
fn scrapes_node_exporter_and_answers_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let (_ne, ne_port) = node_exporter(dir.path(), "node_exporter");
    let cfg = dir.path().join("vigie.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
        ),
    )
    .unwrap();
    let v = Vigie::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let url = v.url();

    let up = eventually(Duration::from_secs(30), "up{job=\"node\"} == 1 via promtool", || {
        let out = promtool(&["query", "instant", &url, "up{job=\"node\"}"]);
        out.contains("=> 1 @").then_some(out)
    });
    assert!(up.contains(&format!("instance=\"127.0.0.1:{ne_port}\"")), "{up}");
    assert!(up.contains("job=\"node\""), "{up}");
    let eq = promtool(&["query", "instant", &url, "up{job=\"node\"} == 1"]);
    assert!(eq.contains("=> 1 @"), "{eq}");

    // The number of node_* series equals what node_exporter itself exposes. The exporter's
    // page can change between two reads (e.g. a scrape-duration series per collector), so
    // compare a few times until a read and a scrape agree.
    let (exposed, stored) = eventually(Duration::from_secs(30), "node_* series count to match", || {
        let page = get(ne_port, "/metrics").body;
        let exposed = count_exposed(&page, "node_");
        let out = promtool(&["query", "instant", &url, "count({__name__=~\"node_.+\", job=\"node\"})"]);
        let stored: usize = out.split("=> ").nth(1)?.split_whitespace().next()?.parse().ok()?;
        (exposed == stored && exposed > 100).then_some((exposed, stored))
    });
    assert_eq!(exposed, stored);

    // A range query over the last seconds: every point of up is 1.
    std::thread::sleep(Duration::from_secs(3));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let out = promtool(&[
        "query",
        "range",
        &format!("--start={}", now - 3),
        &format!("--end={now}"),
        "--step=1s",
        &url,
        "up{job=\"node\"}",
    ]);
    let points: Vec<&str> = out.lines().filter(|l| l.contains(" @[")).collect();
    assert!(points.len() >= 3, "{out}");
    assert!(points.iter().all(|l| l.trim_start().starts_with("1 @[")), "{out}");

    // A rate over node_exporter's CPU counter gives one series per CPU and mode.
    let rate = promtool(&["query", "instant", &url, "sum by (mode) (rate(node_cpu_seconds_total{job=\"node\"}[5s]))"]);
    assert!(rate.contains("mode=\"idle\""), "{rate}");
}
