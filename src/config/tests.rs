use std::path::Path;

use super::*;

fn load(yaml: &str) -> Result<Config, ConfigError> {
    load_str(yaml, "vigie.yml", Path::new("/etc/vigie"))
}

#[test]
fn empty_config_has_prometheus_defaults() {
    let c = load("").unwrap();
    assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    assert!(c.scrape_jobs.is_empty());
}

#[test]
fn job_defaults_follow_global() {
    let c = load(concat!(
        "global:\n  scrape_interval: 15s\n  external_labels:\n    cluster: eu1\n",
        "scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 5s\n    scheme: https\n    metrics_path: /m\n",
        "rule_files: [rules/*.yml]\n"
    ))
    .unwrap();
    let a = &c.scrape_jobs[0];
    assert_eq!((a.interval, a.timeout), (Duration::from_secs(15), Duration::from_secs(10)));
    assert_eq!((a.scheme.as_str(), a.metrics_path.as_str()), ("http", "/metrics"));
    assert!(a.honor_timestamps && !a.honor_labels);
    let b = &c.scrape_jobs[1];
    // A job without scrape_timeout uses min(global timeout, job interval).
    assert_eq!((b.interval, b.timeout), (Duration::from_secs(5), Duration::from_secs(5)));
    assert_eq!(b.scheme, "https");
    assert_eq!(c.global.external_labels.get("cluster"), Some("eu1"));
    assert_eq!(c.rule_files, vec![Path::new("/etc/vigie/rules/*.yml").to_path_buf()]);
}

#[test]
fn unknown_key_is_an_error_with_position() {
    let e = load("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n")
        .unwrap_err();
    match &e {
        ConfigError::Parse { line, column, message, .. } => {
            assert_eq!((*line, *column), (5, 5), "{e}");
            assert!(message.contains("scrape_intervall"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("vigie.yml:5:5: "), "{e}");
}

#[test]
fn bad_duration_names_its_position() {
    let e = load("global:\n  scrape_interval: 15 seconds\n").unwrap_err();
    assert!(e.to_string().starts_with("vigie.yml:2:20: "), "{e}");
    assert!(e.to_string().contains("not a valid duration string"), "{e}");
}

#[test]
fn invalid_relabel_rule_names_its_position() {
    let e = load(concat!(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n",
        "      - source_labels: [a]\n        target_label: b\n",
        "      - action: bogus\n"
    ))
    .unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("vigie.yml:6:"), "{s}");
    assert!(s.contains("unknown relabel action"), "{s}");
}

#[test]
fn semantic_errors() {
    for (yaml, want) in [
        ("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "multiple scrape configs with job name \"a\""),
        (
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
            "scrape timeout greater than scrape interval",
        ),
        (
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
            "global scrape timeout greater than scrape interval",
        ),
        ("scrape_configs:\n  - job_name: a\n    scheme: ftp\n", "invalid scheme"),
        (
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['a/b']\n",
            "is not a valid hostname",
        ),
        ("remote_write:\n  - url: ftp://x\n", "must be http or https"),
    ] {
        let e = load(yaml).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}: {e}");
    }
}

#[test]
fn remote_write_and_alerting_are_parsed() {
    let c = load(concat!(
        "remote_write:\n  - url: http://vm:8428/api/v1/write\n    queue_config:\n      max_samples_per_send: 500\n",
        "    write_relabel_configs:\n      - action: drop\n        source_labels: [__name__]\n        regex: go_.*\n",
        "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['am:9093']\n"
    ))
    .unwrap();
    assert_eq!(c.file.remote_write[0].queue_config.as_ref().unwrap().max_samples_per_send, Some(500));
    assert_eq!(c.file.alerting.as_ref().unwrap().alertmanagers[0].static_configs[0].targets, vec!["am:9093"]);
}

#[test]
fn http_client_fields_are_inline_and_checked() {
    let c = load("scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password: p\n    tls_config:\n      insecure_skip_verify: true\n").unwrap();
    assert_eq!(c.scrape_jobs[0].http.basic_auth.as_ref().unwrap().username.as_deref(), Some("u"));
    assert!(load("scrape_configs:\n  - job_name: a\n    basic_auth:\n      user: u\n").is_err());
}

#[test]
fn default_config_scrapes_itself() {
    let c = load_str(&default_yaml("localhost:9090"), "default", Path::new(".")).unwrap();
    assert_eq!(c.scrape_jobs[0].name, "vigie");
    assert_eq!(c.scrape_jobs[0].static_configs[0].targets, vec!["localhost:9090"]);
}
