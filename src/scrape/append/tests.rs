use std::sync::Arc;

use super::*;
use crate::config::{ScrapeJob, load_str};
use crate::model::is_stale_nan;
use crate::tsdb::{Head, Matcher, Querier};

fn job(extra: &str) -> Arc<ScrapeJob> {
    let yaml = format!("scrape_configs:\n  - job_name: node\n{extra}");
    load_str(&yaml, "t.yml", std::path::Path::new(".")).unwrap().scrape_jobs[0].clone()
}

fn target() -> Labels {
    Labels::from_pairs([("job", "node"), ("instance", "h:9100")])
}

fn scrape(
    head: &Arc<Head>,
    cache: &mut ScrapeCache,
    job: &ScrapeJob,
    body: &str,
    t: i64,
) -> Result<PageStats, AppendError> {
    let tl = target();
    let settings = PageSettings { job, target_labels: &tl };
    let mut app = head.appender();
    let r = cache.append_page(&mut app, &settings, body.as_bytes(), Format::PrometheusText, t);
    if r.is_ok() {
        app.commit();
    } else {
        app.rollback();
    }
    r
}

fn all(head: &Head, name: &str) -> Vec<crate::tsdb::SeriesData> {
    head.select(&[Matcher::equal("__name__", name)], i64::MIN, i64::MAX)
}

const PAGE: &str = "# TYPE a counter\na{x=\"1\"} 1\na{x=\"2\"} 2\nb 3\n";

#[test]
fn appends_with_target_labels() {
    let head = Head::new();
    let mut cache = ScrapeCache::default();
    let j = job("");
    let st = scrape(&head, &mut cache, &j, PAGE, 1000).unwrap();
    assert_eq!(st, PageStats { scraped: 3, post_relabel: 3, series_added: 3 });
    let a = all(&head, "a");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].labels.get("instance"), Some("h:9100"));
    assert_eq!(a[0].labels.get("job"), Some("node"));
    // Second scrape hits the cache: no series added.
    let st = scrape(&head, &mut cache, &j, PAGE, 2000).unwrap();
    assert_eq!(st.series_added, 0);
    assert_eq!(all(&head, "b")[0].points.len(), 2);
}

#[test]
fn clashing_labels_are_exported_unless_honored() {
    let head = Head::new();
    let page = "m{job=\"other\",exported_job=\"x\"} 1\n";
    scrape(&head, &mut ScrapeCache::default(), &job(""), page, 1000).unwrap();
    let l = &all(&head, "m")[0].labels;
    assert_eq!(l.get("job"), Some("node"));
    // The clashing scraped `job` moves to the first free exported_ name.
    assert_eq!(l.get("exported_job"), Some("x"));
    assert_eq!(l.get("exported_exported_job"), Some("other"));

    let head = Head::new();
    scrape(&head, &mut ScrapeCache::default(), &job("    honor_labels: true\n"), page, 1000).unwrap();
    let l = &all(&head, "m")[0].labels;
    assert_eq!(l.get("job"), Some("other"));
    assert_eq!(l.get("instance"), Some("h:9100"));
}

#[test]
fn vanished_series_get_stale_markers() {
    let head = Head::new();
    let mut cache = ScrapeCache::default();
    let j = job("");
    scrape(&head, &mut cache, &j, PAGE, 1000).unwrap();
    scrape(&head, &mut cache, &j, "a{x=\"1\"} 5\n", 2000).unwrap();
    let a = all(&head, "a");
    let x2 = a.iter().find(|s| s.labels.get("x") == Some("2")).unwrap();
    assert_eq!(x2.points.len(), 2);
    assert!(is_stale_nan(x2.points[1].v));
    assert_eq!(x2.points[1].t, 2000);
    assert!(is_stale_nan(all(&head, "b")[0].points[1].v));
}

#[test]
fn failed_scrape_marks_everything_stale() {
    let head = Head::new();
    let mut cache = ScrapeCache::default();
    let j = job("");
    scrape(&head, &mut cache, &j, PAGE, 1000).unwrap();
    let mut app = head.appender();
    cache.mark_all_stale(&mut app, 2000);
    app.commit();
    for s in all(&head, "a").iter().chain(all(&head, "b").iter()) {
        assert!(is_stale_nan(s.points.last().unwrap().v), "{}", s.labels);
    }
}

#[test]
fn sample_limit_fails_the_scrape() {
    let head = Head::new();
    let e = scrape(&head, &mut ScrapeCache::default(), &job("    sample_limit: 2\n"), PAGE, 1000).unwrap_err();
    assert_eq!(e, AppendError::SampleLimit);
    assert_eq!(e.to_string(), "sample limit exceeded");
    assert!(all(&head, "a").is_empty(), "nothing of a failed scrape is stored");
}

#[test]
fn label_limit_fails_the_scrape() {
    let head = Head::new();
    let e = scrape(&head, &mut ScrapeCache::default(), &job("    label_limit: 3\n"), PAGE, 1000).unwrap_err();
    assert!(e.to_string().starts_with("label_limit exceeded (metric: a, number of labels: 4, limit: 3)"), "{e}");
}

#[test]
fn metric_relabeling_drops_and_counts() {
    let head = Head::new();
    let j =
        job("    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: a\n        action: drop\n");
    let st = scrape(&head, &mut ScrapeCache::default(), &j, PAGE, 1000).unwrap();
    assert_eq!((st.scraped, st.post_relabel), (3, 1));
    assert!(all(&head, "a").is_empty());
}

#[test]
fn explicit_timestamps_are_honored_and_not_staled() {
    let head = Head::new();
    let mut cache = ScrapeCache::default();
    let j = job("");
    scrape(&head, &mut cache, &j, "t 1 500\n", 1000).unwrap();
    assert_eq!(all(&head, "t")[0].points[0].t, 500);
    scrape(&head, &mut cache, &j, "", 2000).unwrap();
    assert_eq!(all(&head, "t")[0].points.len(), 1, "no stale marker for a timestamped series");

    let head = Head::new();
    scrape(&head, &mut ScrapeCache::default(), &job("    honor_timestamps: false\n"), "t 1 500\n", 1000).unwrap();
    assert_eq!(all(&head, "t")[0].points[0].t, 1000);
}

#[test]
fn malformed_page_names_the_line() {
    let head = Head::new();
    let e = scrape(&head, &mut ScrapeCache::default(), &job(""), "ok 1\nbad{ 2\n", 1000).unwrap_err();
    match e {
        AppendError::Parse(m) => assert!(m.contains("line 2"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(all(&head, "ok").is_empty());
}

#[test]
fn series_removed_from_the_head_are_resolved_again() {
    let head = Head::new();
    let mut cache = ScrapeCache::default();
    let j = job("");
    scrape(&head, &mut cache, &j, "a 1\n", 1000).unwrap();
    // The head drops everything before 5 s and with it the series: the cached ref is gone.
    assert_eq!(head.truncate_before(5000), 1);
    let st = scrape(&head, &mut cache, &j, "a 2\n", 10_000).unwrap();
    assert_eq!(st.series_added, 1);
    let a = all(&head, "a");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].points, vec![crate::tsdb::Point { t: 10_000, v: 2.0 }]);
}
