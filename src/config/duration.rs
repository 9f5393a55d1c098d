//! Prometheus duration strings (`1y2w3d4h5m6s7ms`, or `0`), as used across vigie.yml.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A duration written the Prometheus way. Units: `y` (365d), `w`, `d`, `h`, `m`, `s`, `ms`,
/// each at most once and in that order, e.g. `1h30m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct PromDuration(pub Duration);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

impl PromDuration {
    pub fn from_secs(s: u64) -> Self {
        PromDuration(Duration::from_secs(s))
    }

    pub fn as_millis(&self) -> i64 {
        self.0.as_millis() as i64
    }

    /// Parses a Prometheus duration string.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        if s.is_empty() {
            return Err("empty duration string".into());
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        let mut last_unit: Option<usize> = None;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(format!("not a valid duration string: {s:?}"));
            }
            let n: u64 = s[start..i].parse().map_err(|_| format!("not a valid duration string: {s:?}"))?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit = &s[ustart..i];
            let idx = UNITS
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
            if last_unit.is_some_and(|l| idx <= l) {
                return Err(format!("not a valid duration string: {s:?}"));
            }
            last_unit = Some(idx);
            total = n
                .checked_mul(UNITS[idx].1)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| "duration out of range".to_string())?;
        }
        Ok(PromDuration(Duration::from_millis(total)))
    }
}

impl TryFrom<String> for PromDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PromDuration::parse(&s)
    }
}

impl From<PromDuration> for String {
    fn from(d: PromDuration) -> String {
        d.to_string()
    }
}

impl fmt::Display for PromDuration {
    /// Formats like Prometheus's `model.Duration.String()`: largest units first, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS {
            // Prometheus only prints years and weeks when they divide the duration exactly.
            if (unit == "y" || unit == "w") && !ms.is_multiple_of(size) {
                continue;
            }
            if ms >= size {
                write!(f, "{}{}", ms / size, unit)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        for (s, ms, back) in [
            ("15s", 15_000, "15s"),
            ("1m", 60_000, "1m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90m", 5_400_000, "1h30m"),
            ("2d", 172_800_000, "2d"),
            ("1w", 604_800_000, "1w"),
            ("100ms", 100, "100ms"),
            ("0", 0, "0s"),
            ("1y", 31_536_000_000, "1y"),
        ] {
            let d = PromDuration::parse(s).unwrap();
            assert_eq!(d.as_millis(), ms, "{s}");
            assert_eq!(d.to_string(), back, "{s}");
        }
    }

    #[test]
    fn rejects_bad_strings() {
        for s in ["", "1", "s", "1x", "1m1h", "1s1s", "-1s", "1.5s"] {
            assert!(PromDuration::parse(s).is_err(), "{s}");
        }
    }
}
