//! `--monitors-dir`: Monitor, AlertRule and AlertRoute objects read as YAML (or JSON)
//! files, one or more documents per file, with the same schema as the CRDs. On a Swarm
//! they are Docker configs mounted into vigie's container.
//!
//! Each document is checked on its own against the CRD's schema (an unknown field is an
//! error, as a typo would otherwise be silently ignored) and typed; its errors carry the
//! file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube::CustomResourceExt;

use super::crd::prometheus_operator::{PodMonitor, PrometheusRule, ServiceMonitor};
use super::crd::{API_VERSION, AlertRoute, AlertRule, Monitor};

/// prometheus-operator's `apiVersion`.
pub const PO_API_VERSION: &str = "monitoring.coreos.com/v1";

/// One of vigie's objects.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // a few per file; boxing buys nothing
pub enum Object {
    Monitor(Monitor),
    AlertRule(AlertRule),
    AlertRoute(AlertRoute),
    /// prometheus-operator's, read natively.
    ServiceMonitor(ServiceMonitor),
    PodMonitor(PodMonitor),
    PrometheusRule(PrometheusRule),
}

/// Kind, namespace and name: what identifies an object across reloads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ObjectKey {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One document of a file: the object, or why it is not one.
#[derive(Clone, Debug)]
pub struct Document {
    pub file: String,
    /// Line of the document's first line (1-based).
    pub line: u64,
    /// Known when the document named its kind and name, even if the rest is invalid.
    pub key: Option<ObjectKey>,
    pub parsed: Result<Object, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
}

/// Every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively, sorted), as
/// documents. A file that cannot be read is one document with its error.
pub fn read_dir(dir: &Path) -> Result<Vec<Document>, FilesError> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|source| FilesError::Dir { dir: dir.display().to_string(), source })?;
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        docs.extend(read_file(&f));
    }
    Ok(docs)
}

/// The object files under `dir`.
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    Ok(files)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        // Kubernetes/Docker mounts keep the real files in `..data`-style hidden dirs.
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json") {
            out.push(path);
        }
    }
    Ok(())
}

/// The documents of one file.
pub fn read_file(path: &Path) -> Vec<Document> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_text(&text, &file),
        Err(e) => vec![Document { file, line: 1, key: None, parsed: Err(e.to_string()) }],
    }
}

/// Splits YAML text at `---` lines: (first line number, text).
fn split_documents(text: &str) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut start = 1u64;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push((start, std::mem::take(&mut current)));
            start = i as u64 + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.retain(|(_, d)| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    docs
}

/// The documents of a YAML text; `file` names it in errors.
pub fn parse_text(text: &str, file: &str) -> Vec<Document> {
    split_documents(text)
        .into_iter()
        .map(|(line, doc)| {
            let (key, parsed) = parse_document(&doc, line);
            Document { file: file.to_string(), line, key, parsed }
        })
        .collect()
}

fn str_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(|v| v.as_str())
}

/// The line (in the file) where `key:` first appears in the document, else its first line.
fn line_of(doc: &str, first_line: u64, key: &str) -> u64 {
    let want = format!("{key}:");
    doc.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&want) || t.starts_with(&format!("\"{key}\":"))
        })
        .map(|i| first_line + i as u64)
        .unwrap_or(first_line)
}

fn parse_document(doc: &str, first_line: u64) -> (Option<ObjectKey>, Result<Object, String>) {
    let value: serde_json::Value = match serde_saphyr::from_str(doc) {
        Ok(v) => v,
        Err(e) => {
            let (line, column, message) = crate::config::yaml_error_parts(&e);
            let line = if line > 0 { first_line + line - 1 } else { first_line };
            return (None, Err(format!("{line}:{column}: {message}")));
        }
    };
    let kind = str_at(&value, &["kind"]).unwrap_or_default().to_string();
    let name = str_at(&value, &["metadata", "name"]).unwrap_or_default().to_string();
    let namespace = str_at(&value, &["metadata", "namespace"]).filter(|n| !n.is_empty()).unwrap_or("default");
    let key = (!kind.is_empty() && !name.is_empty()).then(|| ObjectKey {
        kind: kind.clone(),
        namespace: namespace.to_string(),
        name: name.clone(),
    });
    let at = |line: u64, message: String| Err(format!("{line}: {message}"));
    let api_version = str_at(&value, &["apiVersion"]).unwrap_or_default();
    if api_version == PO_API_VERSION && name.is_empty() {
        return (key, at(first_line, "metadata.name: required".into()));
    }
    if api_version == PO_API_VERSION {
        let typed = match kind.as_str() {
            "ServiceMonitor" => serde_json::from_value(value).map(Object::ServiceMonitor),
            "PodMonitor" => serde_json::from_value(value).map(Object::PodMonitor),
            "PrometheusRule" => serde_json::from_value(value).map(Object::PrometheusRule),
            other => {
                let line = line_of(doc, first_line, "kind");
                return (key, at(line, format!("kind {other:?} of {PO_API_VERSION} is not read by vigie")));
            }
        };
        return (key, typed.map_err(|e| format!("{first_line}: {kind} {name}: {e}")));
    }
    if api_version != API_VERSION {
        return (
            key,
            at(line_of(doc, first_line, "apiVersion"), format!("apiVersion {api_version:?} is not {API_VERSION:?}")),
        );
    }
    if name.is_empty() {
        return (key, at(first_line, "metadata.name: required".into()));
    }
    let crd = match kind.as_str() {
        "Monitor" => Monitor::crd(),
        "AlertRule" => AlertRule::crd(),
        "AlertRoute" => AlertRoute::crd(),
        other => {
            return (
                key,
                at(line_of(doc, first_line, "kind"), format!("kind {other:?} is not Monitor, AlertRule or AlertRoute")),
            );
        }
    };
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    if let Some(spec_schema) = schema.get("properties").and_then(|p| p.get("spec"))
        && let Some(spec) = value.get("spec")
        && let Err((path, field)) = unknown_fields(spec, spec_schema, "spec")
    {
        return (key, at(line_of(doc, first_line, &field), format!("{path}: unknown field {field:?}")));
    }
    let typed = match kind.as_str() {
        "Monitor" => serde_json::from_value(value).map(Object::Monitor),
        "AlertRule" => serde_json::from_value(value).map(Object::AlertRule),
        _ => serde_json::from_value(value).map(Object::AlertRoute),
    };
    (key, typed.map_err(|e| format!("{first_line}: {kind} {name}: {e}")))
}

/// The first field of `v` that `schema` does not know: (path, field).
fn unknown_fields(v: &serde_json::Value, schema: &serde_json::Value, path: &str) -> Result<(), (String, String)> {
    if schema.get("x-kubernetes-preserve-unknown-fields").and_then(|b| b.as_bool()) == Some(true) {
        return Ok(());
    }
    match v {
        serde_json::Value::Object(map) => {
            let props = schema.get("properties").and_then(|p| p.as_object());
            let extra = schema.get("additionalProperties");
            for (k, child) in map {
                let child_schema = match (props.and_then(|p| p.get(k)), extra) {
                    (Some(s), _) => s,
                    (None, Some(s)) if s.is_object() => s,
                    (None, Some(serde_json::Value::Bool(true))) => continue,
                    (None, _) if props.is_none() => continue,
                    (None, _) => return Err((path.to_string(), k.clone())),
                };
                unknown_fields(child, child_schema, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        serde_json::Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else { return Ok(()) };
            for (i, item) in items.iter().enumerate() {
                unknown_fields(item, item_schema, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// How many documents of each kind parsed (for a log line).
pub fn counts(docs: &[Document]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in docs {
        if let Some(k) = &d.key {
            *m.entry(k.kind.clone()).or_default() += 1;
        }
    }
    m
}
