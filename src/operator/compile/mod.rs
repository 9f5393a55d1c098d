//! Compilation of the custom resources into the desired state the stages run: a
//! `Monitor` into scrape jobs, an `AlertRule` into rule groups, `AlertRoute`s into the
//! route tree. Each object compiles on its own, so one bad object is reported and the
//! others still apply. Pure: no I/O.

pub mod alert_route;
pub mod alert_rule;
pub mod monitor;
pub mod prometheus_operator;

use std::path::PathBuf;

use crate::operator::crd::SecretKeySelector;

/// Where the selected workloads come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Swarm tasks, through the Docker API at `host`.
    Swarm { host: String },
    /// The Kubernetes cluster vigie watches.
    Kubernetes,
    /// No cluster: only `staticTargets` can be scraped.
    Files,
}

/// Resolves Secret references to files. Outside Kubernetes: Docker secrets (or any files)
/// under `dir`, `<dir>/<name>/<key>` when `<dir>/<name>` is a directory, else
/// `<dir>/<name>`. On Kubernetes: `<dir>/<namespace>/<name>/<key>`, files the caller wrote
/// from the Secrets the objects reference.
#[derive(Clone, Debug)]
pub struct SecretFiles {
    pub dir: PathBuf,
    /// Secret names that are directories (checked by the caller, which may do I/O).
    pub directories: Vec<String>,
    /// Kubernetes: the (namespace, name, key) the caller could read.
    pub namespaced: Option<std::collections::HashSet<(String, String, String)>>,
}

impl Default for SecretFiles {
    fn default() -> Self {
        SecretFiles { dir: PathBuf::from("/run/secrets"), directories: Vec::new(), namespaced: None }
    }
}

/// A Secret name or key: one path component, so a reference cannot leave the secrets
/// directory.
fn check_component(what: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v != "."
        && v != ".."
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok { Ok(()) } else { Err(format!("{what} {v:?} must be one name of letters, digits, '.', '-' or '_'")) }
}

impl SecretFiles {
    /// The file a reference of an object in `namespace` names, or why it cannot be used.
    pub fn checked_path(&self, namespace: &str, s: &SecretKeySelector) -> Result<String, String> {
        check_component("secret name", &s.name)?;
        check_component("secret key", &s.key)?;
        match &self.namespaced {
            None => Ok(self.path(s)),
            Some(available) => {
                let key = (namespace.to_string(), s.name.clone(), s.key.clone());
                if !available.contains(&key) {
                    return Err(format!("Secret {namespace}/{} has no key {:?} vigie could read", s.name, s.key));
                }
                Ok(self.dir.join(namespace).join(&s.name).join(&s.key).display().to_string())
            }
        }
    }

    pub fn path(&self, s: &SecretKeySelector) -> String {
        let base = self.dir.join(&s.name);
        if self.directories.contains(&s.name) { base.join(&s.key) } else { base }.display().to_string()
    }
}
