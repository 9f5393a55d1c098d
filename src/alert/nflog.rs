//! The notification log: what each integration of each receiver last sent for each
//! aggregation group, and the dedup rule that decides from it whether a flush notifies
//! (Alertmanager's `DedupStage.needsUpdate`, ported rule for rule).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// What one integration last sent for one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    pub index: usize,
    pub timestamp_ms: i64,
    pub firing: Vec<u64>,
    pub resolved: Vec<u64>,
    pub expires_at_ms: i64,
}

/// Why a flush notifies (`notification_reason` of newer Alertmanagers).
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &HashSet<u64>,
    resolved: &HashSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> Option<&'static str> {
    let Some(e) = entry else {
        return (!firing.is_empty()).then_some("first notification");
    };
    let had: HashSet<u64> = e.firing.iter().copied().collect();
    if !firing.is_subset(&had) {
        return Some(if had.is_empty() { "first notification" } else { "new alerts added" });
    }
    if firing.is_empty() {
        return (!had.is_empty()).then_some("all alerts resolved");
    }
    if send_resolved {
        let had_resolved: HashSet<u64> = e.resolved.iter().copied().collect();
        if !resolved.is_subset(&had_resolved) {
            return Some("some alerts resolved");
        }
    }
    (e.timestamp_ms < now_ms - repeat_ms).then_some("repeat interval elapsed")
}

fn key(group_key: &str, receiver: &str, integration: &str, index: usize) -> String {
    format!("{group_key}\u{0}{receiver}\u{0}{integration}\u{0}{index}")
}

#[derive(Default)]
pub struct NotificationLog {
    entries: HashMap<String, Entry>,
}

impl NotificationLog {
    pub fn get(&self, group_key: &str, receiver: &str, integration: &str, index: usize) -> Option<&Entry> {
        self.entries.get(&key(group_key, receiver, integration, index))
    }

    pub fn log(&mut self, e: Entry) {
        self.entries.insert(key(&e.group_key, &e.receiver, &e.integration, e.index), e);
    }

    /// Drops expired entries; returns how many.
    pub fn gc(&mut self, now_ms: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at_ms > now_ms);
        before - self.entries.len()
    }

    pub fn snapshot(&self) -> Vec<Entry> {
        let mut v: Vec<Entry> = self.entries.values().cloned().collect();
        v.sort_by(|a, b| (&a.group_key, &a.receiver, a.index).cmp(&(&b.group_key, &b.receiver, b.index)));
        v
    }

    pub fn restore(&mut self, list: Vec<Entry>) {
        for e in list {
            self.log(e);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn set(v: &[u64]) -> HashSet<u64> {
        v.iter().copied().collect()
    }

    fn entry(firing: &[u64], resolved: &[u64], ts: i64) -> Entry {
        Entry {
            group_key: "g".into(),
            receiver: "r".into(),
            integration: "webhook".into(),
            index: 0,
            timestamp_ms: ts,
            firing: firing.to_vec(),
            resolved: resolved.to_vec(),
            expires_at_ms: i64::MAX,
        }
    }

    /// The truth table of the reference (§7.1), verbatim; repeat interval 10m, now = 100m.
    #[test]
    fn dedup_truth_table() {
        let now = 100 * MIN;
        let ri = 10 * MIN;
        type Case<'a> = (Option<Entry>, &'a [u64], &'a [u64], bool, bool);
        let cases: Vec<Case> = vec![
            (None, &[2, 3, 4], &[], false, true),
            (None, &[], &[2, 3, 4], false, false),
            (Some(entry(&[1, 2, 3], &[], now)), &[2, 3, 4], &[], false, true),
            (Some(entry(&[1, 2, 3], &[], 0)), &[1, 2, 3], &[], false, true),
            (Some(entry(&[1, 2, 3], &[], now - 9 * MIN)), &[1, 2, 3], &[], false, false),
            (Some(entry(&[1, 2, 3], &[], now - 11 * MIN)), &[1, 2, 3], &[], false, true),
            (Some(entry(&[], &[1, 2, 3], now - 11 * MIN)), &[], &[3, 4, 5], true, false),
            (Some(entry(&[1, 2], &[3], now - 9 * MIN)), &[1], &[2, 3], false, false),
            (Some(entry(&[1, 2], &[3], now - 9 * MIN)), &[1], &[2, 3], true, true),
            (Some(entry(&[1, 2], &[3], now - 9 * MIN)), &[], &[1, 2, 3], false, true),
            (Some(entry(&[1, 2], &[3], now - 9 * MIN)), &[], &[1, 2, 3], true, true),
        ];
        for (i, (e, firing, resolved, send_resolved, want)) in cases.into_iter().enumerate() {
            let got = needs_update(e.as_ref(), &set(firing), &set(resolved), send_resolved, ri, now);
            assert_eq!(got.is_some(), want, "case {i}: {got:?}");
        }
        let e = entry(&[1], &[], now);
        assert_eq!(needs_update(Some(&e), &set(&[1, 2]), &set(&[]), false, ri, now), Some("new alerts added"));
        assert_eq!(needs_update(Some(&e), &set(&[]), &set(&[1]), false, ri, now), Some("all alerts resolved"));
    }

    #[test]
    fn entries_expire() {
        let mut log = NotificationLog::default();
        let mut e = entry(&[1], &[], 0);
        e.expires_at_ms = 10;
        log.log(e.clone());
        assert_eq!(log.get("g", "r", "webhook", 0), Some(&e));
        assert_eq!(log.get("g", "r", "webhook", 1), None);
        assert_eq!(log.gc(10), 1);
        assert!(log.is_empty());
    }
}
