//! The database over simulated time: samples carry the clock, `maintain` is called as the
//! run loop would, and every read is compared with a plain in-memory model.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::tsdb::{Appender, Point};

const H: i64 = 3600 * 1000;

type Model = BTreeMap<String, Vec<Point>>;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

/// Appends one sample per series at each step in `[from, to)`, recording them in `model`.
fn fill(db: &Db, model: &mut Model, series: usize, from: i64, to: i64, step: i64) {
    let mut t = from;
    while t < to {
        let mut app = db.head().appender();
        for i in 0..series {
            let r = app.series_ref(&labels(i));
            let v = (t / step) as f64 * (i + 1) as f64;
            app.append(r, t, v);
            model.entry(i.to_string()).or_default().push(Point { t, v });
        }
        let res = app.commit();
        assert_eq!(res.appended, series, "{res:?}");
        t += step;
    }
}

fn read(db: &Db, mint: i64, maxt: i64) -> Model {
    db.select(&[Matcher::equal("__name__", "m")], mint, maxt)
        .into_iter()
        .map(|s| (s.labels.get("i").unwrap().to_string(), s.points))
        .collect()
}

fn window(model: &Model, mint: i64, maxt: i64) -> Model {
    model
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().filter(|p| p.t >= mint && p.t <= maxt).copied().collect::<Vec<_>>()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn opts(retention_h: i64) -> DbOptions {
    DbOptions { retention: Duration::from_millis((retention_h * H) as u64), ..Default::default() }
}

#[test]
fn head_compacts_into_blocks_and_everything_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    {
        let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
        for hour in 0..10 {
            fill(&db, &mut model, 20, hour * H, (hour + 1) * H, 15_000);
            db.maintain((hour + 1) * H).unwrap();
        }
        let blocks = db.blocks();
        // Head keeps at most 3 h; everything before is in 2 h blocks (merged into 6 h ones
        // once a 6 h window is over).
        assert!(!blocks.is_empty());
        let covered = blocks.iter().map(|b| b.meta.max_time).max().unwrap();
        assert!(covered >= 6 * H, "blocks end at {covered}");
        assert!(db.head().time_range().unwrap().0 >= covered);
        assert_eq!(read(&db, 0, 10 * H), model);
        assert_eq!(read(&db, 3 * H - 7, 4 * H + 5), window(&model, 3 * H - 7, 4 * H + 5));
        // The WAL no longer holds the compacted samples.
        let wal = crate::tsdb::wal::segments(&dir.path().join("wal")).unwrap();
        assert!(crate::tsdb::wal::checkpoint::latest(&dir.path().join("wal")).unwrap().is_some(), "{wal:?}");
    }
    let (db, report) = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(report.wal.corruption, None);
    assert_eq!(read(&db, 0, 10 * H), model);
    // Samples older than the newest block are refused as out of bounds.
    let mut app = db.head().appender();
    let r = app.series_ref(&labels(0));
    app.append(r, H, 1.0);
    assert_eq!(app.commit().out_of_bounds, 1);
}

#[test]
fn blocks_merge_by_level_and_retention_deletes_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // The largest block is a tenth of the retention: 6 h here, so 2 h blocks merge into 6 h.
    let (db, _) = Db::open(dir.path(), opts(60)).unwrap();
    let mut model = Model::new();
    for hour in 0..100 {
        fill(&db, &mut model, 3, hour * H, (hour + 1) * H, 60_000);
        db.maintain((hour + 1) * H).unwrap();
    }
    let blocks = db.blocks();
    assert!(blocks.iter().any(|b| b.meta.compaction.level >= 2), "some blocks were merged");
    for w in blocks.windows(2) {
        assert!(w[0].meta.max_time <= w[1].meta.min_time, "blocks do not overlap");
    }
    let newest = 100 * H - 60_000;
    assert!(blocks.iter().all(|b| b.meta.max_time > newest - 60 * H), "expired blocks are gone");
    let oldest = blocks[0].meta.min_time;
    assert!(oldest > 0 && oldest <= newest - 60 * H, "the retained range reaches back 60 h: {oldest}");
    assert_eq!(read(&db, 0, 100 * H), window(&model, oldest, 100 * H));
    // Only live block directories remain on disk.
    let dirs =
        fs::read_dir(dir.path()).unwrap().flatten().filter(|e| is_block_dir(&e.file_name().to_string_lossy())).count();
    assert_eq!(dirs, blocks.len());
    assert!(db.stats().retention_deletions > 0);
}

#[test]
fn size_retention_drops_oldest_blocks_first() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), DbOptions { retention_bytes: 1, ..opts(0) }).unwrap();
    let mut model = Model::new();
    for hour in 0..8 {
        fill(&db, &mut model, 5, hour * H, (hour + 1) * H, 15_000);
        db.maintain((hour + 1) * H).unwrap();
    }
    // With a 1-byte budget every block goes as soon as it exists; the head keeps serving.
    assert!(db.blocks().is_empty());
    assert!(db.stats().retention_deletions > 0);
    let (lo, hi) = db.head().time_range().unwrap();
    assert_eq!(read(&db, 0, 8 * H), window(&model, lo, hi));
}

#[test]
fn restart_in_the_middle_of_a_merge_keeps_data_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let backup = tempfile::tempdir().unwrap();
    {
        let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
        for hour in 0..5 {
            fill(&db, &mut model, 4, hour * H, (hour + 1) * H, 30_000);
            db.maintain((hour + 1) * H).unwrap();
        }
        // Keep copies of the level-1 blocks that the next merge will delete.
        for b in db.blocks() {
            copy_dir(&b.dir, &backup.path().join(b.id()));
        }
        for hour in 5..10 {
            fill(&db, &mut model, 4, hour * H, (hour + 1) * H, 30_000);
            db.maintain((hour + 1) * H).unwrap();
        }
        assert!(db.blocks().iter().any(|b| b.meta.compaction.level == 2));
    }
    // As if the process died after writing the merged block but before deleting its parents,
    // and while writing another block.
    for e in fs::read_dir(backup.path()).unwrap().flatten() {
        copy_dir(&e.path(), &dir.path().join(e.file_name()));
    }
    fs::create_dir_all(dir.path().join("01ABCDEFGHJKMNPQRSTVWXYZ01.tmp")).unwrap();
    fs::write(dir.path().join("01ABCDEFGHJKMNPQRSTVWXYZ01.tmp/chunks"), b"half").unwrap();
    let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(read(&db, 0, 10 * H), model, "no sample lost or doubled");
    assert!(!dir.path().join("01ABCDEFGHJKMNPQRSTVWXYZ01.tmp").exists());
    for e in fs::read_dir(backup.path()).unwrap().flatten() {
        assert!(!dir.path().join(e.file_name()).exists(), "merged parent removed");
    }
}

#[test]
fn a_damaged_block_is_quarantined_and_the_rest_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let victim;
    {
        let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
        for hour in 0..12 {
            fill(&db, &mut model, 4, hour * H, (hour + 1) * H, 30_000);
            db.maintain((hour + 1) * H).unwrap();
        }
        let blocks = db.blocks();
        assert!(blocks.len() >= 2);
        victim = blocks[0].clone();
    }
    let index = victim.dir.join("index");
    let mut data = fs::read(&index).unwrap();
    data[12] ^= 0xff;
    fs::write(&index, &data).unwrap();
    let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(db.stats().quarantined, 1);
    assert!(dir.path().join("quarantine").join(victim.id()).exists());
    let (lo, hi) = (victim.meta.max_time, 12 * H);
    assert_eq!(read(&db, lo, hi), window(&model, lo, hi));
    assert!(read(&db, victim.meta.min_time, victim.meta.max_time - 1).is_empty());

    // A chunk damaged while running is found by the read that touches it.
    let b = db.blocks()[0].clone();
    drop(db);
    let chunks = b.dir.join("chunks");
    let mut data = fs::read(&chunks).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&chunks, &data).unwrap();
    let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
    let _ = read(&db, 0, 12 * H);
    assert_eq!(db.stats().quarantined, 1);
    assert!(db.blocks().iter().all(|x| x.id() != b.id()));
}

#[test]
fn a_snapshot_opens_as_a_database_with_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::open(dir.path(), opts(0)).unwrap();
    let mut model = Model::new();
    for hour in 0..7 {
        fill(&db, &mut model, 3, hour * H, (hour + 1) * H, 60_000);
        db.maintain((hour + 1) * H).unwrap();
    }
    assert!(!db.blocks().is_empty());
    let name = db.snapshot(7 * H, false).unwrap();
    assert!(name.starts_with("19700101T070000Z-"), "{name}");
    let snap = dir.path().join("snapshots").join(&name);
    let (copy, _) = Db::open(&snap, opts(0)).unwrap();
    assert_eq!(read(&copy, i64::MIN, i64::MAX), model);
    let without_head = db.snapshot(7 * H, true).unwrap();
    let (copy, _) = Db::open(&dir.path().join("snapshots").join(without_head), opts(0)).unwrap();
    let covered = db.blocks().iter().map(|b| b.meta.max_time).max().unwrap();
    assert_eq!(read(&copy, i64::MIN, i64::MAX), window(&model, 0, covered - 1));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Advance the clock by this many seconds, writing every series at 10 s steps.
    Write {
        secs: i64,
        series: usize,
    },
    Maintain,
    /// A size-triggered WAL checkpoint (the head as it is, replacing the segments).
    Checkpoint,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (60i64..4 * 3600, 1usize..6).prop_map(|(secs, series)| Op::Write { secs, series }),
        2 => Just(Op::Maintain),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any interleaving of writes, maintenance and restarts reads back as the model.
    #[test]
    fn random_histories_read_back_as_the_model(ops in proptest::collection::vec(op(), 1..14), jitter in 0i64..9_000) {
        let dir = tempfile::tempdir().unwrap();
        let (mut db, _) = Db::open(dir.path(), opts(0)).unwrap();
        let mut model = Model::new();
        let mut now = 0i64;
        for op in ops {
            match op {
                Op::Write { secs, series } => {
                    let to = now + secs * 1000;
                    let mut t = now;
                    while t < to {
                        let mut app = db.head().appender();
                        for i in 0..series {
                            let ts = t + (jitter * i as i64) % 10_000;
                            let r = app.series_ref(&labels(i));
                            let v = ((ts * 7) % 1000) as f64 / 8.0;
                            app.append(r, ts, v);
                            model.entry(i.to_string()).or_default().push(Point { t: ts, v });
                        }
                        app.commit();
                        t += 10_000;
                    }
                    now = t;
                }
                Op::Maintain => { db.maintain(now).unwrap(); }
                Op::Checkpoint => { db.head().checkpoint_wal().unwrap(); }
                Op::Reopen => {
                    drop(db);
                    db = Db::open(dir.path(), opts(0)).unwrap().0;
                }
            }
        }
        db.maintain(now).unwrap();
        prop_assert_eq!(read(&db, i64::MIN, i64::MAX), model);
    }
}
