//! Shared data types that flow between stages: label sets and samples.
//!
//! Every stage (discovery, scrape, tsdb, promql, rules, alert) speaks in these types, so
//! they live outside any one stage.

pub mod civil;
mod labels;
mod packed_labels;
mod regex;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME, stable_hash_pairs};
pub use packed_labels::{PackedLabels, Pairs};
pub use regex::{compile_go_regex, compile_go_regex_unanchored};

/// The bit pattern Prometheus uses for a staleness marker: a NaN distinct from the normal NaN.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness-marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (compared by bits, never equal to an ordinary NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Whether `name` is a valid label name under the legacy scheme (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a valid label name under Prometheus 3's UTF-8 scheme (any non-empty string).
pub fn is_utf8_label_name(name: &str) -> bool {
    !name.is_empty()
}
