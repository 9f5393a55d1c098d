//! `vigie test rules` against the real `promtool test rules` on the same files: every
//! file under `tests/rules/pass/` succeeds on both, every file under `tests/rules/wrong/`
//! (a copy with one wrong expectation) fails on both with exit code 1 and the same
//! failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::require;

fn test_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_test.yml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no *_test.yml under {}", dir.display());
    v
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(program: &Path, args: &[&str], file: &Path) -> Outcome {
    // Run from the file's directory with a relative name, so both print the same path.
    let out = Command::new(program)
        .args(args)
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn vigie(file: &Path) -> Outcome {
    run(Path::new(env!("CARGO_BIN_EXE_vigie")), &["test", "rules"], file)
}

fn promtool(file: &Path) -> Outcome {
    run(&require("promtool", "prometheus"), &["test", "rules"], file)
}

#[test]
fn passing_files_pass_on_both() {
    for f in test_files("pass") {
        let p = promtool(&f);
        assert_eq!(p.code, Some(0), "promtool on {}: {}{}", f.display(), p.stdout, p.stderr);
        let v = vigie(&f);
        assert_eq!(v.code, Some(0), "vigie on {}: {}{}", f.display(), v.stdout, v.stderr);
        assert!(v.stdout.contains("  SUCCESS"), "{}", v.stdout);
    }
}

#[test]
fn wrong_expectations_fail_on_both_with_the_same_report() {
    for f in test_files("wrong") {
        let p = promtool(&f);
        assert_eq!(p.code, Some(1), "promtool on {}: {}{}", f.display(), p.stdout, p.stderr);
        let v = vigie(&f);
        assert_eq!(v.code, Some(1), "vigie on {}: {}{}", f.display(), v.stdout, v.stderr);
        assert!(v.stderr.contains("  FAILED:"), "{}", v.stderr);
        assert_eq!(v.stderr, p.stderr, "failure report of {}", f.display());
    }
}
