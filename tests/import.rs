//! End to end: `vigie import openmetrics` backfills a file that the real `promtool tsdb
//! create-blocks-from openmetrics` also accepts, and `vigie run` then serves every sample.

mod common;

use std::process::Command;

use common::*;

#[test]
fn imported_file_is_served_and_promtool_accepts_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.om");
    let mut text = String::from("# HELP job_x A counter.\n# TYPE job_x counter\n");
    let base = 1_796_000_000i64;
    for i in 0..1000 {
        for s in 0..20 {
            text.push_str(&format!("job_x_total{{shard=\"{s}\"}} {} {}.{:03}\n", i * s, base + i * 30, s * 7));
        }
    }
    text.push_str("# EOF\n");
    std::fs::write(&file, text).unwrap();
    promtool_backfill(&file, &dir.path().join("prom"));
    let (stdout, stderr) = vigie_import(&file, &dir.path().join("data"));
    assert!(stdout.contains("imported 20000 samples of 20 series"), "{stdout}");
    assert!(stderr.contains("100%"), "progress is shown");

    let v = Vigie::start(dir.path(), &["--discovery", "none"]);
    let q = format!("sum(count_over_time(job_x_total[1d] @ {}))", base + 1000 * 30);
    assert_eq!(v.query(&q)["data"]["result"][0]["value"][1], "20000");
    let q = format!("job_x_total{{shard=\"3\"}} @ {}", base + 999 * 30 + 1);
    assert_eq!(v.query(&q)["data"]["result"][0]["value"][1], "2997");

    // A sample without a timestamp fails the import with its line and writes nothing.
    std::fs::write(&file, "m 1 10\nm 2\n# EOF\n").unwrap();
    let empty = dir.path().join("empty");
    let out = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["import", "openmetrics"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: sample has no timestamp"));
}
