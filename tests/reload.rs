//! Configuration reloads against the real binary: a broken config is rejected with its
//! error and HTTP 500 while scraping goes on; a good one is applied; SIGHUP works too;
//! file_sd picks up changed target files.

mod common;

use std::time::Duration;

use common::*;

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn scrape_count(v: &Vigie, job: &str) -> Option<u64> {
    let r = v.query(&format!("count_over_time(up{{job=\"{job}\"}}[1h])"));
    r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn broken_config_is_rejected_and_scraping_continues() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigie.yml");
    let port_holder = free_port();
    // Scrape vigie itself: its port is only known after start, so use file_sd for the target.
    let targets = dir.path().join("targets.json");
    write(&targets, "[]");
    write(
        &cfg,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    file_sd_configs:\n      - files: ['targets.json']\n",
    );
    let v = Vigie::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let _ = port_holder;
    write(&targets, &format!("[{{\"targets\": [\"127.0.0.1:{}\"], \"labels\": {{\"team\": \"obs\"}}}}]", v.port));
    eventually(Duration::from_secs(20), "file_sd target to be scraped", || {
        scrape_count(&v, "self").filter(|n| *n >= 2)
    });
    let t = v.get("/api/v1/targets");
    assert!(t.body.contains("\"team\":\"obs\""), "{}", t.body);
    assert!(t.body.contains("\"__meta_filepath\""), "{}", t.body);

    // A broken config: unknown key. Reload answers 500 with the positioned error.
    write(
        &cfg,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    file_sd_configs:\n      - files: ['targets.json']\n    bogus_key: 1\n",
    );
    let r = http("POST", v.port, "/-/reload", None).unwrap();
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.body.contains("vigie.yml:7:5"), "{}", r.body);
    assert!(r.body.contains("bogus_key"), "{}", r.body);
    let before = scrape_count(&v, "self").unwrap();
    eventually(Duration::from_secs(20), "scraping to continue after a rejected reload", || {
        scrape_count(&v, "self").filter(|n| *n >= before + 2)
    });
    let status = v.get("/api/v1/status/config");
    assert!(!status.body.contains("bogus_key"), "the old config stays: {}", status.body);
    let m = v.get("/metrics").body;
    assert!(m.contains("vigie_config_last_reload_successful 0"), "{m}");

    // A good config adds a job; SIGHUP applies it.
    write(
        &cfg,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    file_sd_configs:\n      - files: ['targets.json']\n  - job_name: again\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            v.port
        ),
    );
    v.proc.signal("HUP");
    eventually(Duration::from_secs(20), "new job after SIGHUP", || scrape_count(&v, "again"));
    let r = http("POST", v.port, "/-/reload", None).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(v.get("/metrics").body.contains("vigie_config_last_reload_successful 1"));

    // Removing the file_sd target marks its series stale: up{job="self"} disappears.
    write(&targets, "[]");
    eventually(Duration::from_secs(20), "removed target's series to go stale", || {
        let r = v.query("up{job=\"self\"}");
        r["data"]["result"].as_array().filter(|a| a.is_empty()).map(|_| ())
    });
}

#[test]
fn check_config_reports_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    write(&bad, "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: explode\n");
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_vigie")).args(["check", "config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:4:"), "{err}");
    assert!(err.contains("unknown relabel action \"explode\""), "{err}");

    let good = dir.path().join("good.yml");
    write(&good, "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['localhost:9100']\n");
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_vigie")).args(["check", "config"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn default_config_scrapes_itself_and_api_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigie::start(dir.path(), &[]);
    eventually(Duration::from_secs(40), "self-scrape", || scrape_count(&v, "vigie"));
    let bad = v.get("/api/v1/query?query=sum(");
    assert_eq!(bad.status, 400);
    let j: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(j["status"], "error");
    assert_eq!(j["errorType"], "bad_data");
    assert!(j["error"].as_str().unwrap().contains("parse error"), "{j}");
    let labels: serde_json::Value = serde_json::from_str(&v.get("/api/v1/labels").body).unwrap();
    assert!(labels["data"].as_array().unwrap().iter().any(|l| l == "job"), "{labels}");
    let values: serde_json::Value = serde_json::from_str(&v.get("/api/v1/label/job/values").body).unwrap();
    assert_eq!(values["data"], serde_json::json!(["vigie"]));
    let series: serde_json::Value = serde_json::from_str(&v.get("/api/v1/series?match[]=up").body).unwrap();
    assert_eq!(series["data"][0]["__name__"], "up");
    assert_eq!(v.get("/api/v1/series").status, 400);
    let b: serde_json::Value = serde_json::from_str(&v.get("/api/v1/status/buildinfo").body).unwrap();
    assert_eq!(b["data"]["version"], env!("CARGO_PKG_VERSION"));
    let f: serde_json::Value = serde_json::from_str(&v.get("/api/v1/status/flags").body).unwrap();
    // Vigie::start passes --discovery=files so a Docker swarm on the machine adds no targets.
    assert_eq!(f["data"]["discovery"], "files");
    let t: serde_json::Value = serde_json::from_str(&v.get("/api/v1/status/tsdb?limit=3").body).unwrap();
    let by_name = t["data"]["seriesCountByMetricName"].as_array().unwrap();
    assert!(by_name.len() == 3 && by_name[0]["value"].as_u64() >= by_name[2]["value"].as_u64(), "{t}");
    assert!(t["data"]["headStats"]["numSeries"].as_u64().unwrap() > 3, "{t}");
    assert_eq!(v.get("/api/v1/status/tsdb?limit=x").status, 400);
    let snap = http("POST", v.port, "/api/v1/admin/tsdb/snapshot", None).unwrap();
    let j: serde_json::Value = serde_json::from_str(&snap.body).unwrap();
    let name = j["data"]["name"].as_str().unwrap_or_else(|| panic!("{j}"));
    assert!(dir.path().join("data/snapshots").join(name).is_dir(), "{name}");
    assert_eq!(v.get("/-/healthy").status, 200);
    let home = v.get("/");
    assert!(home.body.contains("<h2>vigie"), "{}", home.body);
    let m = v.get("/metrics").body;
    assert!(m.contains("vigie_tsdb_head_series"), "{m}");
}
