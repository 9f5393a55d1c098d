use super::writer::write_block;
use super::*;
use crate::tsdb::encode_chunks;

fn pts(n: i64, step: i64, f: impl Fn(i64) -> f64) -> Vec<Point> {
    (0..n).map(|i| Point { t: i * step, v: f(i) }).collect()
}

fn sample_series() -> Vec<(Labels, Vec<BlockChunk>)> {
    let mut v: Vec<(Labels, Vec<BlockChunk>)> = (0..20)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__", if i % 2 == 0 { "a" } else { "b" }),
                ("i", &i.to_string()),
                ("job", "j"),
            ]);
            (labels, encode_chunks(&pts(500, 15_000, |k| (k * i) as f64)))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn written_block_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let series = sample_series();
    let (path, meta) = write_block(dir.path(), BlockMeta::new(new_ulid(1), 0, 500 * 15_000), &series).unwrap();
    assert_eq!((meta.stats.num_series, meta.stats.num_samples), (20, 20 * 500));
    let b = Block::open(&path).unwrap();
    assert_eq!(b.meta, meta);
    b.verify_chunks().unwrap();
    let got = b.select(&[Matcher::equal("__name__", "a")], 0, i64::MAX).unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|s| s.points.len() == 500));
    let i3 = b.select(&[Matcher::equal("i", "3")], 30_000, 60_000).unwrap();
    assert_eq!(
        i3[0].points,
        vec![Point { t: 30_000, v: 6.0 }, Point { t: 45_000, v: 9.0 }, Point { t: 60_000, v: 12.0 }]
    );
    let re = b.select(&[Matcher::regex("i", "1.", false).unwrap(), Matcher::not_equal("__name__", "b")], 0, 0).unwrap();
    assert_eq!(
        re.iter().map(|s| s.labels.get("i").unwrap().to_string()).collect::<Vec<_>>(),
        ["10", "12", "14", "16", "18"]
    );
    assert!(b.select(&[Matcher::equal("nope", "x")], 0, i64::MAX).unwrap().is_empty());
    assert_eq!(b.select(&[Matcher::equal("nope", "")], 0, 0).unwrap().len(), 20);
    assert_eq!(b.label_names(), ["__name__", "i", "job"]);
    assert_eq!(b.label_values("__name__"), ["a", "b"]);
    let all = b.all_chunks().unwrap();
    assert_eq!(all, series);
}

#[test]
fn damage_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_block(dir.path(), BlockMeta::new(new_ulid(2), 0, 10_000_000), &sample_series()).unwrap();
    // A flipped byte in a chunk is found when that chunk is read.
    let chunks = path.join("chunks");
    let mut data = std::fs::read(&chunks).unwrap();
    data[100] ^= 0x01;
    std::fs::write(&chunks, &data).unwrap();
    let b = Block::open(&path).unwrap();
    assert!(matches!(b.verify_chunks(), Err(BlockError::Corrupt { file: "chunks", .. })));
    drop(b);
    // A flipped byte in the index fails the open.
    let index = path.join("index");
    let mut data = std::fs::read(&index).unwrap();
    data[20] ^= 0x01;
    std::fs::write(&index, &data).unwrap();
    let e = Block::open(&path).unwrap_err();
    assert!(e.to_string().contains("corrupt index: checksum mismatch"), "{e}");
}

#[test]
fn ulids_sort_by_time_and_are_unique() {
    let a = new_ulid(1_700_000_000_000);
    let b = new_ulid(1_700_000_000_000);
    let c = new_ulid(1_700_000_000_001);
    assert_eq!(a.len(), 26);
    assert_ne!(a, b);
    assert!(a[..10] == b[..10] && b < c);
}
