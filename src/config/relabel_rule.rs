//! A relabel rule as it appears in vigie.yml: checked and compiled while the file is
//! parsed, so an invalid rule is reported with its line and column.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::relabel::{CompiledRelabel, NameValidation, RelabelConfig};

/// The rule as written plus its compiled form.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "RelabelConfig", into = "RelabelConfig")]
pub struct RelabelRule {
    pub source: RelabelConfig,
    pub compiled: Arc<CompiledRelabel>,
}

impl TryFrom<RelabelConfig> for RelabelRule {
    type Error = String;
    fn try_from(source: RelabelConfig) -> Result<Self, String> {
        let compiled = CompiledRelabel::compile(&source, NameValidation::Utf8).map_err(|e| e.to_string())?;
        Ok(RelabelRule { source, compiled: Arc::new(compiled) })
    }
}

impl From<RelabelRule> for RelabelConfig {
    fn from(r: RelabelRule) -> Self {
        r.source
    }
}

impl PartialEq for RelabelRule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
