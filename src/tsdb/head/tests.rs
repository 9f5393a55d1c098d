use std::time::Duration;

use super::*;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn all(head: &Head, name: &str) -> Vec<SeriesData> {
    head.select(&[Matcher::equal("__name__", name)], i64::MIN, i64::MAX)
}

#[test]
fn append_commit_select() {
    let head = Head::new();
    let mut app = head.appender();
    let a = app.series_ref(&l(&[("__name__", "up"), ("job", "a")]));
    let b = app.series_ref(&l(&[("__name__", "up"), ("job", "b")]));
    app.append(a, 1000, 1.0);
    app.append(b, 1000, 0.0);
    assert!(head.select(&[Matcher::equal("__name__", "up")], 0, 2000).is_empty(), "invisible before commit");
    assert_eq!(app.commit().appended, 2);
    let got = head.select(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "b")], 0, 2000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].points, vec![Point { t: 1000, v: 0.0 }]);
    let re = Matcher::regex("job", "a|b", false).unwrap();
    assert_eq!(head.select(&[re], 0, 2000).len(), 2);
    let absent = Matcher::equal("zone", "");
    assert_eq!(head.select(&[Matcher::equal("__name__", "up"), absent], 0, 2000).len(), 2);
}

#[test]
fn rejects_out_of_order_and_duplicates() {
    let head = Head::new();
    let mut app = head.appender();
    let a = app.series_ref(&l(&[("__name__", "x")]));
    app.append(a, 2000, 1.0);
    app.append(a, 1000, 1.0);
    app.append(a, 2000, 2.0);
    app.append(a, 2000, 1.0);
    app.append(99, 3000, 1.0);
    let res = app.commit();
    assert_eq!((res.appended, res.out_of_order, res.duplicates, res.unknown), (1, 1, 1, 1));
}

#[test]
fn rollback_discards() {
    let head = Head::new();
    let mut app = head.appender();
    let a = app.series_ref(&l(&[("__name__", "x")]));
    app.append(a, 1, 1.0);
    app.rollback();
    assert!(head.select(&[Matcher::equal("__name__", "x")], 0, 10).is_empty());
}

#[test]
fn chunks_are_cut_and_windows_read_across_them() {
    let head = Head::new();
    let mut app = head.appender();
    let a = app.series_ref(&l(&[("__name__", "x")]));
    // 1000 samples every 15 s: several chunks, and the 2 h boundary at 7,200,000 ms.
    for i in 0..1000i64 {
        app.append(a, i * 15_000, i as f64);
    }
    app.commit();
    {
        let idx = head.index.read();
        let c = idx.get(a).unwrap().chunks.lock();
        assert!(c.sealed.len() >= 8, "{} sealed chunks", c.sealed.len());
        assert!(c.sealed.iter().all(|ch| ch.min_t.div_euclid(CHUNK_RANGE_MS) == ch.max_t.div_euclid(CHUNK_RANGE_MS)));
    }
    let got = head.select(&[Matcher::equal("__name__", "x")], 1_795_000, 1_830_000);
    let ts: Vec<i64> = got[0].points.iter().map(|p| p.t).collect();
    assert_eq!(ts, vec![1_800_000, 1_815_000, 1_830_000]);
    assert_eq!(all(&head, "x")[0].points.len(), 1000);
    let s = head.stats();
    assert!(s.chunk_bytes < 1000 * 4, "{} bytes for 1000 integer samples", s.chunk_bytes);
    head.truncate_before(7_200_000);
    let left = all(&head, "x")[0].points.clone();
    assert!(left[0].t <= 7_200_000 && left.last().unwrap().t == 999 * 15_000);
}

#[test]
fn wal_replay_restores_committed_samples() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (head, report) = Head::open(dir.path(), Duration::ZERO, i64::MIN).unwrap();
        assert_eq!(report.series, 0);
        let mut app = head.appender();
        let a = app.series_ref(&l(&[("__name__", "x"), ("i", "1")]));
        let b = app.series_ref(&l(&[("__name__", "y")]));
        for i in 0..300 {
            app.append(a, i * 1000, i as f64);
        }
        app.append(b, 5, crate::model::stale_nan());
        app.commit();
        // Never committed: must not come back.
        let mut app = head.appender();
        let c = app.series_ref(&l(&[("__name__", "z")]));
        app.append(c, 1, 1.0);
        app.rollback();
        // Dropped without close(): like a crash after the commit returned.
    }
    let (head, report) = Head::open(dir.path(), Duration::ZERO, i64::MIN).unwrap();
    assert_eq!((report.series, report.samples, report.unknown_refs), (2, 301, 0));
    assert_eq!(report.wal.corruption, None);
    let x = all(&head, "x");
    assert_eq!(x[0].points.len(), 300);
    assert_eq!(x[0].points[299], Point { t: 299_000, v: 299.0 });
    assert!(crate::model::is_stale_nan(all(&head, "y")[0].points[0].v));
    assert!(all(&head, "z").is_empty());
    // `z`'s series record was buffered but never flushed by a commit, so it is
    // gone and new series continue after the replayed refs.
    let r = head.get_or_create(&l(&[("__name__", "w")]));
    assert_eq!(r, 2);
    assert_eq!(head.get_or_create(&l(&[("__name__", "x"), ("i", "1")])), 0);
}

#[test]
fn late_samples_inside_the_window_are_merged_and_survive_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (head, _) = Head::open(dir.path(), Duration::from_secs(60), i64::MIN).unwrap();
        let mut app = head.appender();
        let a = app.series_ref(&l(&[("__name__", "x")]));
        app.append(a, 100_000, 1.0);
        app.append(a, 120_000, 3.0);
        let r = app.commit();
        assert_eq!((r.appended, r.late), (2, 0));
        let mut app = head.appender();
        app.append(a, 110_000, 2.0); // late, inside the window
        app.append(a, 110_000, 2.0); // repeat of a late sample: no-op
        app.append(a, 115_000, 9.0);
        app.append(a, 115_000, 8.0); // duplicate of a late sample
        app.append(a, 59_000, 0.5); // older than newest - 60s
        app.append(a, 120_000, 4.0); // duplicate of the newest
        let r = app.commit();
        assert_eq!((r.appended, r.late, r.out_of_order, r.duplicates), (2, 2, 1, 2));
        let got: Vec<(i64, f64)> = all(&head, "x")[0].points.iter().map(|p| (p.t, p.v)).collect();
        assert_eq!(got, vec![(100_000, 1.0), (110_000, 2.0), (115_000, 9.0), (120_000, 3.0)]);
        // A window read sees only its late samples.
        let w = head.select(&[Matcher::equal("__name__", "x")], 105_000, 112_000);
        assert_eq!(w[0].points, vec![Point { t: 110_000, v: 2.0 }]);
        assert_eq!(head.stats().late_appended, 2);
    }
    let (head, report) = Head::open(dir.path(), Duration::from_secs(60), i64::MIN).unwrap();
    assert_eq!(report.samples, 4);
    assert_eq!(all(&head, "x")[0].points.len(), 4);
}

#[test]
fn without_a_window_late_samples_are_rejected() {
    let head = Head::new();
    let mut app = head.appender();
    let a = app.series_ref(&l(&[("__name__", "x")]));
    app.append(a, 2000, 1.0);
    app.append(a, 1000, 1.0);
    let r = app.commit();
    assert_eq!((r.appended, r.late, r.out_of_order), (1, 0, 1));
}

#[test]
fn merge_keeps_order_and_prefers_the_first_run() {
    let p = |t, v| Point { t, v };
    let merged = merge_points(&[p(1, 1.0), p(3, 3.0), p(5, 5.0)], &[p(0, 0.0), p(3, 9.0), p(6, 6.0)]);
    assert_eq!(merged, vec![p(0, 0.0), p(1, 1.0), p(3, 3.0), p(5, 5.0), p(6, 6.0)]);
}

#[test]
fn cardinality_ranks_metrics_and_pairs() {
    let head = Head::new();
    let mut app = head.appender();
    for i in 0..5 {
        let r = app.series_ref(&l(&[("__name__", "big"), ("pod", &format!("p{i}"))]));
        app.append(r, 1, 1.0);
    }
    let r = app.series_ref(&l(&[("__name__", "small"), ("pod", "p0")]));
    app.append(r, 1, 1.0);
    app.commit();
    let c = head.cardinality(2);
    assert_eq!(c.series_count_by_metric_name, vec![("big".to_string(), 5), ("small".to_string(), 1)]);
    assert_eq!(c.label_value_count_by_label_name, vec![("pod".to_string(), 5), ("__name__".to_string(), 2)]);
    assert_eq!(c.series_count_by_label_value_pair, vec![("__name__=big".to_string(), 5), ("pod=p0".to_string(), 2)]);
    // pod: 6 series × 2 bytes; __name__: 5 × 3 + 1 × 5.
    assert_eq!(c.memory_in_bytes_by_label_name, vec![("__name__".to_string(), 20), ("pod".to_string(), 12)]);
    assert_eq!((c.num_label_pairs, c.chunk_count), (7, 6));
}
