//! The router's alert store: every alert it has been told about, by fingerprint, with
//! Alertmanager's ingestion rules (a missing `startsAt` is now, a missing `endsAt` is now +
//! `resolve_timeout`) and its merge rule (an update overlapping the stored activity range
//! merges into it, otherwise it replaces it: a re-fire).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Alert;
use crate::model::Labels;

/// FNV-1a 64 over `name 0xFF value 0xFF` of the sorted labels (`model.LabelSet.Fingerprint`).
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 0xcbf29ce484222325;
    const PRIME: u64 = 0x100000001b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(PRIME);
        }
    };
    if labels.is_empty() {
        return OFFSET;
    }
    for l in labels.iter() {
        eat(l.name.as_bytes());
        eat(&[0xff]);
        eat(l.value.as_bytes());
        eat(&[0xff]);
    }
    h
}

/// xxhash64 over the same bytes: the alert hash of the notification log (`notify.hashAlert`).
pub fn alert_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for l in labels.iter() {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

pub fn format_fingerprint(fp: u64) -> String {
    format!("{fp:016x}")
}

/// An alert as the router holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    #[serde(with = "labels_map")]
    pub labels: Labels,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: String,
    pub updated_at_ms: i64,
    /// `endsAt` came from `resolve_timeout`, not from the sender.
    pub timeout: bool,
    #[serde(skip)]
    pub fingerprint: u64,
}

impl StoredAlert {
    pub fn resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }
}

mod labels_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::Labels;

    pub fn serialize<S: Serializer>(l: &Labels, s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&str, &str> = l.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

/// Why a posted alert was refused (the API answers 400 with these words).
pub fn validate(a: &Alert) -> Result<(), String> {
    if a.labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    for l in a.labels.iter() {
        if !crate::model::is_utf8_label_name(&l.name) {
            return Err(format!("invalid label set: invalid name {:?}", l.name));
        }
    }
    for name in a.annotations.keys() {
        if !crate::model::is_utf8_label_name(name) {
            return Err(format!("invalid annotations: invalid name {name:?}"));
        }
    }
    if a.ends_at_ms != 0 && a.starts_at_ms != 0 && a.ends_at_ms < a.starts_at_ms {
        return Err("start time must be before end time".into());
    }
    Ok(())
}

/// Fills in the times Alertmanager fills in; 0 means unset. Empty label values are dropped
/// first, as Alertmanager does.
pub fn ingest(a: Alert, now_ms: i64, resolve_timeout_ms: i64) -> StoredAlert {
    let labels = if a.labels.iter().any(|l| l.value.is_empty()) {
        let kept: Vec<(String, String)> =
            a.labels.iter().filter(|l| !l.value.is_empty()).map(|l| (l.name.clone(), l.value.clone())).collect();
        Labels::from_pairs(kept)
    } else {
        a.labels
    };
    let starts_at_ms = match (a.starts_at_ms, a.ends_at_ms) {
        (0, 0) => now_ms,
        (0, e) => e,
        (s, _) => s,
    };
    let (ends_at_ms, timeout) =
        if a.ends_at_ms == 0 { (now_ms + resolve_timeout_ms, true) } else { (a.ends_at_ms, false) };
    let fingerprint = fingerprint(&labels);
    StoredAlert {
        labels,
        annotations: a.annotations,
        starts_at_ms,
        ends_at_ms,
        generator_url: a.generator_url,
        updated_at_ms: now_ms,
        timeout,
        fingerprint,
    }
}

/// `types.Alert.Merge`: `new` is the newer update.
fn merge(old: &StoredAlert, new: StoredAlert, now_ms: i64) -> StoredAlert {
    if new.updated_at_ms < old.updated_at_ms {
        return merge(&new, old.clone(), now_ms);
    }
    let mut res = new.clone();
    if old.starts_at_ms < new.starts_at_ms {
        res.starts_at_ms = old.starts_at_ms;
    }
    if new.resolved_at(now_ms) {
        if old.resolved_at(now_ms) && old.ends_at_ms > new.ends_at_ms {
            res.ends_at_ms = old.ends_at_ms;
        }
    } else if old.ends_at_ms > new.ends_at_ms && !old.timeout {
        res.ends_at_ms = old.ends_at_ms;
    }
    res
}

#[derive(Default)]
pub struct AlertStore {
    alerts: HashMap<u64, StoredAlert>,
}

impl AlertStore {
    /// Stores an ingested alert and returns what is now held for its fingerprint.
    pub fn put(&mut self, alert: StoredAlert, now_ms: i64) -> StoredAlert {
        let merged = match self.alerts.get(&alert.fingerprint) {
            Some(old)
                if (alert.ends_at_ms > old.starts_at_ms && alert.ends_at_ms < old.ends_at_ms)
                    || (alert.starts_at_ms > old.starts_at_ms && alert.starts_at_ms < old.ends_at_ms) =>
            {
                merge(old, alert, now_ms)
            }
            _ => alert,
        };
        self.alerts.insert(merged.fingerprint, merged.clone());
        merged
    }

    /// Restores a snapshot entry as it was.
    pub fn restore(&mut self, mut alert: StoredAlert) {
        alert.fingerprint = fingerprint(&alert.labels);
        self.alerts.insert(alert.fingerprint, alert);
    }

    pub fn get(&self, fp: u64) -> Option<&StoredAlert> {
        self.alerts.get(&fp)
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredAlert> {
        self.alerts.values()
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Drops alerts resolved before `now_ms`; returns how many.
    pub fn gc(&mut self, now_ms: i64) -> usize {
        let before = self.alerts.len();
        self.alerts.retain(|_, a| !a.resolved_at(now_ms));
        before - self.alerts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(start: i64, end: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Default::default(),
            starts_at_ms: start,
            ends_at_ms: end,
            generator_url: String::new(),
        }
    }

    #[test]
    fn fingerprints_match_prometheus_common() {
        // model.LabelSet{}.Fingerprint() and a value computed with prometheus/common.
        assert_eq!(fingerprint(&Labels::empty()), 0xcbf29ce484222325);
        // FNV-1a 64 of "alertname\xffHighCPU\xff"; the differential router test checks the
        // webhook fingerprints against Alertmanager's own.
        let fp = fingerprint(&Labels::from_pairs([("alertname", "HighCPU")]));
        assert_eq!(format_fingerprint(fp), "b5160f6bd9249a48");
    }

    #[test]
    fn ingestion_fills_times_like_alertmanager() {
        let a = ingest(alert(0, 0), 1000, 300_000);
        assert_eq!((a.starts_at_ms, a.ends_at_ms, a.timeout), (1000, 301_000, true));
        // Only endsAt: startsAt becomes endsAt (Alertmanager's quirk).
        let a = ingest(alert(0, 5000), 1000, 300_000);
        assert_eq!((a.starts_at_ms, a.ends_at_ms, a.timeout), (5000, 5000, false));
        let mut with_empty = alert(1, 0);
        with_empty.labels = Labels::from_pairs([("alertname", "A"), ("x", "")]);
        assert_eq!(ingest(with_empty, 1000, 1).labels, Labels::from_pairs([("alertname", "A")]));
        assert_eq!(validate(&alert(5, 4)).unwrap_err(), "start time must be before end time");
        let mut none = alert(0, 0);
        none.labels = Labels::empty();
        assert_eq!(validate(&none).unwrap_err(), "at least one label pair required");
    }

    #[test]
    fn overlapping_updates_merge_and_refires_replace() {
        let mut s = AlertStore::default();
        s.put(ingest(alert(1000, 0), 1000, 10_000), 1000);
        // A refresh without endsAt overlaps: the earliest start stays, the end moves on.
        let got = s.put(ingest(alert(1500, 0), 2000, 10_000), 2000);
        assert_eq!((got.starts_at_ms, got.ends_at_ms), (1000, 12_000));
        // Resolved explicitly inside the range.
        let got = s.put(ingest(alert(1000, 3000), 3000, 10_000), 3000);
        assert_eq!((got.starts_at_ms, got.ends_at_ms, got.timeout), (1000, 3000, false));
        // Posted again after it ended: no overlap, a new alert.
        let got = s.put(ingest(alert(20_000, 0), 20_000, 10_000), 20_000);
        assert_eq!((got.starts_at_ms, got.ends_at_ms), (20_000, 30_000));
        assert_eq!(s.gc(40_000), 1);
    }
}
