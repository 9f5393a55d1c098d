//! Rules: recording and alerting rules from Prometheus rule files, evaluated on each
//! group's schedule over the query engine, with their results written back to storage
//! and their alerts handed to the alert sinks.
//!
//! [`file`] reads and validates rule files, [`group`] evaluates one group, [`alerting`]
//! is the alert state machine, [`template`] expands labels and annotations, [`manager`]
//! schedules groups and swaps them on reload, and [`unittest`] runs promtool's rule
//! unit-test files.

pub mod alerting;
pub mod file;
pub mod group;
pub mod manager;
pub mod template;
pub mod unittest;

use std::path::{Path, PathBuf};

pub use file::{GroupDef, GroupDefaults, RuleDef, RuleFileError, RuleKind};
pub use group::{Group, Health};
pub use manager::{RuleManager, RuleOptions};

/// Expands `rule_files` patterns (globs) into files, sorted within each pattern. A pattern
/// without glob characters must name an existing file.
pub fn expand_patterns(patterns: &[PathBuf]) -> Result<Vec<PathBuf>, RuleFileError> {
    let mut out = Vec::new();
    for p in patterns {
        let text = p.display().to_string();
        if !text.contains(['*', '?', '[']) {
            out.push(p.clone());
            continue;
        }
        let paths = glob::glob(&text).map_err(|e| RuleFileError::Invalid {
            file: text.clone(),
            line: 0,
            column: e.pos as u64,
            message: format!("invalid rule file pattern: {}", e.msg),
        })?;
        let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// One rule file as loaded for `vigie run`: its groups, or why it could not be read.
pub type LoadedFile = (String, Result<Vec<GroupDef>, RuleFileError>);

/// Reads every rule file the patterns name, each on its own: a file that cannot be read
/// does not keep the others from loading.
pub fn load_each(patterns: &[PathBuf], defaults: &GroupDefaults) -> Result<Vec<LoadedFile>, RuleFileError> {
    Ok(expand_patterns(patterns)?
        .into_iter()
        .map(|f| (f.display().to_string(), file::load_file(&f, defaults)))
        .collect())
}

/// Reads and validates every rule file the patterns name; the first error wins.
pub fn load_rule_files(patterns: &[PathBuf], defaults: &GroupDefaults) -> Result<Vec<GroupDef>, RuleFileError> {
    let mut groups = Vec::new();
    for f in expand_patterns(patterns)? {
        groups.extend(file::load_file(Path::new(&f), defaults)?);
    }
    Ok(groups)
}
