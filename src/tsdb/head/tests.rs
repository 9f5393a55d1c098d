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

fn everything(head: &Head) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let re = Matcher::regex("__name__", ".+", false).unwrap();
    let mut out: Vec<(Labels, Vec<(i64, u64)>)> = head
        .select(&[re], i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| (s.labels, s.points.iter().map(|p| (p.t, p.v.to_bits())).collect()))
        .collect();
    out.sort();
    out
}

#[test]
fn checkpoint_holds_the_head_and_replaces_the_segments_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let (head, _) = Head::open(dir.path(), Duration::from_secs(600), i64::MIN).unwrap();
        let mut app = head.appender();
        let a = app.series_ref(&l(&[("__name__", "x"), ("i", "1")]));
        let b = app.series_ref(&l(&[("__name__", "y")]));
        // 250 samples: two sealed chunks and an open one; a stale marker and a late sample.
        for i in 0..250 {
            app.append(a, 1_000_000 + i * 1000, (i % 17) as f64 * 0.25);
        }
        app.append(b, 1_000_000, crate::model::stale_nan());
        app.append(b, 1_100_000, 2.0);
        app.commit();
        let mut app = head.appender();
        app.append(b, 1_050_000, 1.5); // late, inside the window
        assert_eq!(app.commit().late, 1);
        let cp = head.checkpoint_wal().unwrap().unwrap();
        assert_eq!((cp.series, cp.samples), (2, 253));
        assert!(cp.segments_removed >= 1);
        assert!(wal::segments(dir.path()).unwrap().iter().all(|s| *s > cp.upto));
        // After the checkpoint: more samples of an old series (the open chunk continues),
        // a new series, and a repeat of a checkpointed sample (a no-op on replay too).
        let mut app = head.appender();
        for i in 250..300 {
            app.append(a, 1_000_000 + i * 1000, i as f64);
        }
        let c = app.series_ref(&l(&[("__name__", "z")]));
        app.append(c, 7, 7.0);
        app.append(b, 1_100_000, 2.0);
        app.commit();
        before = everything(&head);
        // Dropped without close(): a crash.
    }
    let (head, report) = Head::open(dir.path(), Duration::from_secs(600), i64::MIN).unwrap();
    assert!(report.wal.checkpoint.is_some());
    assert_eq!((report.series, report.samples, report.bad_series, report.unknown_refs), (3, 304, 0, 0));
    assert_eq!(everything(&head), before);
    assert_eq!(before[0].1.len(), 300);
    // The restored open chunk keeps growing where it left off; refs continue after the old ones.
    let r = head.get_or_create(&l(&[("__name__", "w")]));
    assert_eq!(r, 3);
    let mut app = head.appender();
    app.append(0, 1_300_000, 1.0);
    assert_eq!(app.commit().appended, 1);
    // A second checkpoint replaces the first; a third start reads only it.
    let cp = head.checkpoint_wal().unwrap().unwrap();
    drop(head);
    let (head, report) = Head::open(dir.path(), Duration::from_secs(600), i64::MIN).unwrap();
    assert_eq!(report.wal.checkpoint, Some(cp.upto));
    // Only the (empty) segment started by the checkpoint follows it.
    assert_eq!((report.wal.segments, report.wal.bytes, report.wal.checkpoint_bytes), (1, cp.bytes, cp.bytes));
    assert_eq!(everything(&head)[0].1.len(), 301);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("checkpoint."))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn checkpoints_taken_while_commits_run_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged;
    {
        let (head, _) = Head::open(dir.path(), Duration::ZERO, i64::MIN).unwrap();
        // The writer waits for a checkpoint every 100 rounds, so checkpoints overlap the
        // commits however the two threads are scheduled.
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = {
            let head = head.clone();
            let taken = taken.clone();
            std::thread::spawn(move || {
                for round in 0..400i64 {
                    if round % 100 == 50 {
                        let want = round as usize / 100 + 1;
                        while taken.load(std::sync::atomic::Ordering::SeqCst) < want {
                            std::thread::yield_now();
                        }
                    }
                    let mut app = head.appender();
                    for i in 0..(5 + round as usize / 40) {
                        let r = app.series_ref(&l(&[("__name__", "m"), ("i", &i.to_string())]));
                        app.append(r, round * 15_000 + i as i64, (round * i as i64) as f64);
                    }
                    assert_eq!(app.commit().wal_error, None);
                }
            })
        };
        while !writer.is_finished() {
            head.checkpoint_wal().unwrap();
            taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        writer.join().unwrap();
        assert!(taken.load(std::sync::atomic::Ordering::SeqCst) >= 4);
        acknowledged = everything(&head);
    }
    let (head, report) = Head::open(dir.path(), Duration::ZERO, i64::MIN).unwrap();
    assert_eq!((report.bad_series, report.unknown_refs), (0, 0));
    assert_eq!(everything(&head), acknowledged);
    let total: usize = acknowledged.iter().map(|s| s.1.len()).sum();
    assert_eq!(total, (0..400).map(|r| 5 + r / 40).sum::<usize>());
}

/// A checkpoint can hold series copied after later commits, so the head's newest time at
/// replay may be ahead of what a logged commit saw: its late samples must still come back.
#[test]
fn replay_after_a_checkpoint_keeps_late_samples_the_commit_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let x = l(&[("__name__", "x")]);
    let y = l(&[("__name__", "y")]);
    let mut chunk = ChunkEncoder::new();
    chunk.append(50_000, 1.0);
    wal::checkpoint::write(dir.path(), 0, |out| {
        let mut payload = Vec::new();
        fn pairs(ls: &Labels) -> Vec<(&str, &str)> {
            ls.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect()
        }
        wal::record::encode_state(&mut payload, 0, pairs(&x).into_iter(), &[], chunk.bytes(), &[]);
        let mut far = ChunkEncoder::new();
        far.append(10_000_000, 2.0);
        wal::record::encode_state(&mut payload, 1, pairs(&y).into_iter(), &[], far.bytes(), &[]);
        out.log_states(&payload)?;
        out.flush()?;
        Ok((2, 2))
    })
    .unwrap();
    {
        // The log continues in the segment after the checkpoint's.
        std::fs::write(dir.path().join(wal::segment_name(0)), b"").unwrap();
        let mut w = Wal::open(dir.path()).unwrap();
        assert_eq!(w.current_segment(), 1);
        w.log_samples(&[(0, 60_000, 3.0), (0, 55_000, 2.5)]).unwrap();
        w.sync().unwrap();
    }
    let (head, report) = Head::open(dir.path(), Duration::from_secs(60), i64::MIN).unwrap();
    assert_eq!((report.series, report.samples), (2, 4));
    let got: Vec<(i64, f64)> = all(&head, "x")[0].points.iter().map(|p| (p.t, p.v)).collect();
    assert_eq!(got, vec![(50_000, 1.0), (55_000, 2.5), (60_000, 3.0)]);
}

#[test]
fn series_left_without_samples_are_removed_and_stay_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (head, _) = Head::open(dir.path(), Duration::ZERO, i64::MIN).unwrap();
    let old = l(&[("__name__", "m"), ("pod", "gone")]);
    let live = l(&[("__name__", "m"), ("pod", "here")]);
    let mut app = head.appender();
    let (a, b) = (app.series_ref(&old), app.series_ref(&live));
    app.append(a, 1000, 1.0);
    app.append(b, 1000, 1.0);
    app.append(b, CHUNK_RANGE_MS + 1000, 2.0);
    app.commit();
    let generation = head.series_generation();
    assert_eq!(head.truncate_before(CHUNK_RANGE_MS), 1);
    assert_ne!(head.series_generation(), generation);
    assert_eq!((head.stats().series, head.stats().series_removed), (1, 1));
    assert_eq!(all(&head, "m").len(), 1);
    assert_eq!(head.label_values("pod", &[], i64::MIN, i64::MAX), vec!["here".to_string()]);
    // A commit through the old ref is refused, not silently lost; the labels get a new ref.
    let mut app = head.appender();
    app.append(a, CHUNK_RANGE_MS + 2000, 3.0);
    assert_eq!(app.commit().unknown, 1);
    let again = head.get_or_create(&old);
    assert!(again > b);
    assert_eq!(head.get_or_create(&live), b);
    // The checkpoint after truncation no longer carries the removed series.
    head.checkpoint_wal().unwrap();
    drop(head);
    let (head, report) = Head::open(dir.path(), Duration::ZERO, i64::MIN).unwrap();
    assert_eq!(report.unknown_refs, 0);
    let pods: Vec<String> = all(&head, "m").iter().map(|s| s.labels.get("pod").unwrap().to_string()).collect();
    assert_eq!(pods, vec!["here".to_string()]);
}

/// Every read sees whole commits: each commit writes one sample to every series, so all
/// series of a read (and of both selects of one `select_many`) end at the same time.
#[test]
fn reads_never_see_part_of_a_commit() {
    let head = Head::new();
    let series: Vec<Labels> =
        (0..200).map(|i| l(&[("__name__", "m"), ("i", &i.to_string()), ("odd", &(i % 2).to_string())])).collect();
    let refs: Vec<SeriesRef> = series.iter().map(|s| head.get_or_create(s)).collect();
    // The writer commits until the reader has checked enough reads taken while it wrote,
    // however the two threads get scheduled.
    let enough = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (head, enough) = (head.clone(), enough.clone());
        std::thread::spawn(move || {
            let mut round = 0i64;
            while !enough.load(Ordering::Relaxed) && round < 100_000 {
                round += 1;
                let mut app = head.appender();
                for r in &refs {
                    app.append(*r, round * 1000, round as f64);
                }
                app.commit();
            }
            round
        })
    };
    let ends = |got: &[SeriesData]| -> Vec<i64> {
        let mut e: Vec<i64> = got.iter().map(|s| s.points.last().unwrap().t).collect();
        e.dedup();
        e
    };
    let mut reads = 0;
    while reads < 200 && !writer.is_finished() {
        // The last few seconds only, so a read stays cheap however long the writer runs:
        // the newest commit a read can see ends at or after the head's newest time read
        // before it, less one commit (the newest time is raised after the commit is seen).
        let Some((_, newest)) = head.time_range() else { continue };
        let requests = vec![
            SelectRequest::all(vec![Matcher::equal("odd", "0")], newest - 5_000, i64::MAX),
            SelectRequest::all(vec![Matcher::equal("odd", "1")], newest - 5_000, i64::MAX),
        ];
        let got = head.select_many(&requests);
        let (even, odd) = (ends(&got[0]), ends(&got[1]));
        assert_eq!(even.len(), 1, "a read saw part of a commit: {even:?}");
        assert_eq!(even, odd, "two selects of one read saw different commits");
        assert_eq!(got[0].len() + got[1].len(), 200);
        reads += 1;
    }
    enough.store(true, Ordering::Relaxed);
    let last = writer.join().unwrap();
    assert_eq!(reads, 200, "reads checked while the writer ran ({last} commits)");
    // Nothing is held back once the writes are done.
    assert_eq!(ends(&head.select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)), vec![last * 1000]);
}

#[test]
fn latest_only_reads_match_the_last_point_of_a_full_read() {
    let head = Head::new();
    head.set_out_of_order_window(Duration::from_secs(3600));
    let mut app = head.appender();
    let a = app.series_ref(&l(&[("__name__", "x"), ("s", "a")]));
    let b = app.series_ref(&l(&[("__name__", "x"), ("s", "b")]));
    // Several chunks for `a`; `b` has a gap, so some windows fall between its chunks.
    for i in 0..600i64 {
        app.append(a, i * 15_000, i as f64);
        if !(200..400).contains(&i) {
            app.append(b, i * 15_000, -(i as f64));
        }
    }
    app.commit();
    let mut app = head.appender();
    app.append(a, 100 * 15_000 + 7, 0.5); // a late sample inside a's data
    app.commit();
    let m = vec![Matcher::equal("__name__", "x")];
    for (mint, maxt) in
        [(0, 9_000_000), (1_499_000, 1_500_010), (3_100_000, 5_000_000), (4_000_000, 4_100_000), (0, 10)]
    {
        let full = head.select_many(&[SelectRequest::all(m.clone(), mint, maxt)]).remove(0);
        let latest = head
            .select_many(&[SelectRequest { latest_only: true, ..SelectRequest::all(m.clone(), mint, maxt) }])
            .remove(0);
        let want: Vec<(Labels, Point)> = full.iter().map(|s| (s.labels.clone(), *s.points.last().unwrap())).collect();
        let got: Vec<(Labels, Point)> = latest
            .iter()
            .map(|s| {
                assert_eq!(s.points.len(), 1);
                (s.labels.clone(), s.points[0])
            })
            .collect();
        assert_eq!(got, want, "window [{mint}, {maxt}]");
    }
}
