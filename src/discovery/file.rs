//! `file_sd_configs`: target groups read from YAML or JSON files, re-read when they change.
//!
//! Prometheus watches with inotify plus a `refresh_interval` re-read; vigie polls the files'
//! modification times every second (cheap, and works on every filesystem and in containers)
//! and also re-reads everything each `refresh_interval`. A file that fails to parse is
//! reported and its previous groups stay in place.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::{GroupSender, Provider, TargetGroup};
use crate::config::FileSdConfig;

const POLL_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// The label naming the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Parse(String, String),
    #[error("{file}: {target:?} is not a valid hostname")]
    BadTarget { file: String, target: String },
}

/// Watches the files (and globs) of one `file_sd_configs` entry.
pub struct FileProvider {
    patterns: Vec<String>,
    refresh: Duration,
}

impl FileProvider {
    pub fn new(cfg: &FileSdConfig) -> Self {
        FileProvider {
            patterns: cfg.files.clone(),
            refresh: cfg.refresh_interval.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(DEFAULT_REFRESH),
        }
    }
}

/// Parses one target file's content into groups.
pub fn parse_file(path: &str, content: &str) -> Result<Vec<TargetGroup>, FileSdError> {
    let groups: Vec<FileGroup> = if path.ends_with(".json") {
        serde_json::from_str(content).map_err(|e| FileSdError::Parse(path.into(), e.to_string()))?
    } else if content.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str(content).map_err(|e| FileSdError::Parse(path.into(), e.without_snippet().to_string()))?
    };
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        if let Some(bad) = g.targets.iter().find(|t| t.contains('/')) {
            return Err(FileSdError::BadTarget { file: path.into(), target: bad.clone() });
        }
        let mut tg = TargetGroup::from_addresses(format!("{path}:{i}"), &g.targets, &g.labels);
        let mut lb = tg.labels.builder();
        lb.set(FILEPATH_LABEL, path);
        tg.labels = lb.into_labels();
        out.push(tg);
    }
    Ok(out)
}

/// Expands a pattern whose last path element may hold `*` and `?` wildcards.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard_match(name, n)))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

struct FileState {
    modified: Option<(SystemTime, u64)>,
    groups: Vec<TargetGroup>,
}

impl FileProvider {
    /// One pass over the files; returns whether anything changed.
    fn scan(&self, state: &mut HashMap<PathBuf, FileState>, force: bool) -> bool {
        let mut changed = false;
        let mut present = Vec::new();
        for pattern in &self.patterns {
            for path in expand(pattern) {
                present.push(path.clone());
                let meta = std::fs::metadata(&path).ok();
                let stamp = meta.as_ref().and_then(|m| Some((m.modified().ok()?, m.len())));
                let entry = state.entry(path.clone()).or_insert(FileState { modified: None, groups: Vec::new() });
                if !force && stamp.is_some() && entry.modified == stamp {
                    continue;
                }
                let name = path.display().to_string();
                let result = std::fs::read_to_string(&path)
                    .map_err(|e| FileSdError::Read(name.clone(), e))
                    .and_then(|text| parse_file(&name, &text));
                entry.modified = stamp;
                match result {
                    Ok(groups) => {
                        if groups != entry.groups {
                            tracing::info!(file = %name, groups = groups.len(), "file_sd: loaded target file");
                            entry.groups = groups;
                            changed = true;
                        }
                    }
                    Err(FileSdError::Read(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        if !entry.groups.is_empty() {
                            entry.groups.clear();
                            changed = true;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "file_sd: keeping the previous targets of this file"),
                }
            }
        }
        let before = state.len();
        state.retain(|p, _| present.contains(p));
        changed || state.len() != before
    }
}

impl Provider for FileProvider {
    fn name(&self) -> String {
        format!("file:{}", self.patterns.join(","))
    }

    fn run(self: Box<Self>, tx: GroupSender) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut state: HashMap<PathBuf, FileState> = HashMap::new();
            let mut last_full = Instant::now();
            self.scan(&mut state, true);
            loop {
                let mut all: Vec<(&PathBuf, &FileState)> = state.iter().collect();
                all.sort_by_key(|(p, _)| *p);
                let groups: Vec<TargetGroup> = all.into_iter().flat_map(|(_, s)| s.groups.clone()).collect();
                if tx.send(groups).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    }
                    let force = last_full.elapsed() >= self.refresh;
                    if force {
                        last_full = Instant::now();
                    }
                    if self.scan(&mut state, force) {
                        break;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_and_json_groups() {
        let y = "- targets: ['a:1', 'b:2']\n  labels:\n    env: prod\n";
        let g = parse_file("t.yml", y).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].targets.len(), 2);
        assert_eq!(g[0].labels.get("env"), Some("prod"));
        assert_eq!(g[0].labels.get(FILEPATH_LABEL), Some("t.yml"));
        assert_eq!(g[0].source, "t.yml:0");

        let j = r#"[{"targets": ["c:3"], "labels": {"x": "y"}}, {"targets": []}]"#;
        let g = parse_file("t.json", j).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets[0].get("__address__"), Some("c:3"));
    }

    #[test]
    fn rejects_bad_files() {
        assert!(parse_file("t.yml", "- targets: ['a/b']\n").is_err());
        assert!(parse_file("t.yml", "- target: ['a']\n").is_err());
        assert!(parse_file("t.json", "{").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.json", "a.json"));
        assert!(!wildcard_match("*.json", "a.yml"));
        assert!(wildcard_match("t?.yml", "t1.yml"));
    }
}
