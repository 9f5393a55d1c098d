//! Silences: matchers with a time window that mute the alerts they match. Creation, the
//! in-place update rule, expiry and state (pending → active → expired) follow
//! Alertmanager's `silence` package; the set is kept in the data dir by the router.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::matcher::{MatchOp, Matcher};
use crate::model::Labels;

/// How long an expired silence is kept (`--data.retention`, 120h).
pub const RETENTION_MS: i64 = 120 * 3_600_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("silence invalid: {0}")]
    Invalid(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
    #[error("saving silences: {0}")]
    Persist(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

/// A matcher as the API and the snapshot carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    pub fn compile(&self) -> Result<Matcher, String> {
        if !crate::model::is_utf8_label_name(&self.name) {
            return Err(format!("invalid label name {:?}", self.name));
        }
        Matcher::new(self.name.clone(), MatchOp::from_flags(self.is_regex, self.is_equal), self.value.clone())
            .map_err(|e| e.to_string())
    }

    pub fn from_matcher(m: &Matcher) -> SilenceMatcher {
        SilenceMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.op.is_regex(),
            is_equal: m.op.is_equal(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub created_by: String,
    pub comment: String,
    #[serde(skip)]
    compiled: Vec<Matcher>,
}

impl Silence {
    pub fn new(
        matchers: Vec<SilenceMatcher>,
        starts_at_ms: i64,
        ends_at_ms: i64,
        created_by: &str,
        comment: &str,
    ) -> Self {
        Silence {
            id: String::new(),
            matchers,
            starts_at_ms,
            ends_at_ms,
            updated_at_ms: 0,
            created_by: created_by.into(),
            comment: comment.into(),
            compiled: Vec::new(),
        }
    }

    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms < self.ends_at_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        super::matcher::matches_all(&self.compiled, labels)
    }

    fn validate(&mut self) -> Result<(), SilenceError> {
        let invalid = |m: String| SilenceError::Invalid(m);
        if self.matchers.is_empty() {
            return Err(invalid("at least one matcher required".into()));
        }
        let compiled: Vec<Matcher> = self
            .matchers
            .iter()
            .map(|m| m.compile())
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("invalid label matcher: {e}")))?;
        if compiled.iter().all(|m| m.matches_value("")) {
            return Err(invalid("at least one matcher must not match the empty string".into()));
        }
        if self.starts_at_ms == 0 {
            return Err(invalid("invalid zero start timestamp".into()));
        }
        if self.ends_at_ms == 0 {
            return Err(invalid("invalid zero end timestamp".into()));
        }
        if self.ends_at_ms < self.starts_at_ms {
            return Err(invalid("end time must not be before start time".into()));
        }
        self.compiled = compiled;
        Ok(())
    }
}

#[derive(Clone, Default)]
pub struct Silences {
    by_id: HashMap<String, Silence>,
}

impl Silences {
    /// Creates a silence, or updates the one named by `s.id`. An update that changes the
    /// matchers or moves an active silence's start expires the old silence and creates a
    /// new one with a new id, as Alertmanager does.
    pub fn set(&mut self, mut s: Silence, now_ms: i64) -> Result<String, SilenceError> {
        let prev =
            if s.id.is_empty() { None } else { Some(self.by_id.get(&s.id).ok_or(SilenceError::NotFound)?.clone()) };
        if let Some(prev) = &prev
            && can_update(prev, &s, now_ms)
        {
            s.validate()?;
            s.updated_at_ms = now_ms;
            self.by_id.insert(s.id.clone(), s.clone());
            return Ok(s.id);
        }
        s.id = uuid::Uuid::new_v4().to_string();
        if s.starts_at_ms < now_ms {
            s.starts_at_ms = now_ms;
        }
        s.validate()?;
        if let Some(prev) = prev
            && prev.state(now_ms) != SilenceState::Expired
        {
            self.expire(&prev.id, now_ms)?;
        }
        s.updated_at_ms = now_ms;
        self.by_id.insert(s.id.clone(), s.clone());
        Ok(s.id)
    }

    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        let s = self.by_id.get_mut(id).ok_or(SilenceError::NotFound)?;
        match s.state(now_ms) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => s.ends_at_ms = now_ms,
            SilenceState::Pending => {
                s.starts_at_ms = now_ms;
                s.ends_at_ms = now_ms;
            }
        }
        s.updated_at_ms = now_ms;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// The active silences muting `labels`, by id.
    pub fn muting(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.state(now_ms) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Every silence in Alertmanager's listing order: active by end, pending by start,
    /// then expired, most recently ended first.
    pub fn list(&self, now_ms: i64) -> Vec<&Silence> {
        let mut v: Vec<&Silence> = self.by_id.values().collect();
        v.sort_by(|a, b| {
            let (sa, sb) = (a.state(now_ms), b.state(now_ms));
            sa.cmp(&sb).then_with(|| match sa {
                SilenceState::Active => a.ends_at_ms.cmp(&b.ends_at_ms),
                SilenceState::Pending => a.starts_at_ms.cmp(&b.starts_at_ms),
                SilenceState::Expired => b.ends_at_ms.cmp(&a.ends_at_ms),
            })
        });
        v
    }

    /// Forgets silences expired longer than the retention ago; returns how many.
    pub fn gc(&mut self, now_ms: i64) -> usize {
        let before = self.by_id.len();
        self.by_id.retain(|_, s| s.ends_at_ms + RETENTION_MS > now_ms);
        before - self.by_id.len()
    }

    pub fn snapshot(&self) -> Vec<Silence> {
        let mut v: Vec<Silence> = self.by_id.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Loads a snapshot; entries that no longer validate are skipped and counted.
    pub fn restore(&mut self, list: Vec<Silence>) -> usize {
        let mut bad = 0;
        for mut s in list {
            match s.validate() {
                Ok(()) => {
                    self.by_id.insert(s.id.clone(), s);
                }
                Err(_) => bad += 1,
            }
        }
        bad
    }

    pub fn count_by_state(&self, now_ms: i64) -> [usize; 3] {
        let mut c = [0; 3];
        for s in self.by_id.values() {
            c[s.state(now_ms) as usize] += 1;
        }
        c
    }
}

fn can_update(a: &Silence, b: &Silence, now_ms: i64) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now_ms) {
        SilenceState::Active => b.starts_at_ms == a.starts_at_ms && b.ends_at_ms >= now_ms,
        SilenceState::Pending => b.starts_at_ms >= now_ms,
        SilenceState::Expired => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
        SilenceMatcher { name: name.into(), value: value.into(), is_regex, is_equal }
    }

    #[test]
    fn validation_messages() {
        let mut s = Silences::default();
        let err = s.set(Silence::new(vec![m("a", "", false, true)], 10, 20, "me", "c"), 0).unwrap_err();
        assert_eq!(err.to_string(), "silence invalid: at least one matcher must not match the empty string");
        let err = s.set(Silence::new(vec![], 10, 20, "me", "c"), 0).unwrap_err();
        assert_eq!(err.to_string(), "silence invalid: at least one matcher required");
        let mut with_id = Silence::new(vec![m("a", "b", false, true)], 10, 20, "me", "c");
        with_id.id = "nope".into();
        assert_eq!(s.set(with_id, 0).unwrap_err().to_string(), "silence not found");
    }

    #[test]
    fn states_updates_and_expiry() {
        let mut s = Silences::default();
        let labels = Labels::from_pairs([("alertname", "A")]);
        let id = s.set(Silence::new(vec![m("alertname", "A", false, true)], 100, 200, "me", "c"), 50).unwrap();
        assert_eq!(s.get(&id).unwrap().state(50), SilenceState::Pending);
        assert!(s.muting(&labels, 50).is_empty());
        assert_eq!(s.muting(&labels, 150), vec![id.clone()]);
        // Active, only the end moves: same id.
        let mut upd = s.get(&id).unwrap().clone();
        upd.ends_at_ms = 300;
        assert_eq!(s.set(upd, 150).unwrap(), id);
        assert_eq!(s.get(&id).unwrap().ends_at_ms, 300);
        // New matchers: a new silence, the old one expired.
        let mut changed = s.get(&id).unwrap().clone();
        changed.matchers = vec![m("alertname", "A|B", true, true)];
        let new_id = s.set(changed, 160).unwrap();
        assert_ne!(new_id, id);
        assert_eq!(s.get(&id).unwrap().state(160), SilenceState::Expired);
        assert_eq!(s.get(&new_id).unwrap().state(160), SilenceState::Active);
        assert_eq!(s.muting(&Labels::from_pairs([("alertname", "B")]), 160), vec![new_id.clone()]);
        s.expire(&new_id, 170).unwrap();
        assert_eq!(s.expire(&new_id, 171).unwrap_err(), SilenceError::AlreadyExpired(new_id.clone()));
        assert!(s.muting(&labels, 171).is_empty());
        let order: Vec<&str> = s.list(171).iter().map(|x| x.id.as_str()).collect();
        assert_eq!(order, [new_id.as_str(), id.as_str()]);
        assert_eq!(s.gc(170 + RETENTION_MS + 1), 2);
    }

    #[test]
    fn negative_and_regex_matchers() {
        let mut s = Silences::default();
        let id = s
            .set(
                Silence::new(vec![m("job", "api|db", true, true), m("env", "prod", false, false)], 1, 100, "me", "c"),
                1,
            )
            .unwrap();
        let hit = Labels::from_pairs([("job", "db"), ("env", "dev")]);
        let miss = Labels::from_pairs([("job", "db"), ("env", "prod")]);
        assert_eq!(s.muting(&hit, 5), vec![id]);
        assert!(s.muting(&miss, 5).is_empty());
    }
}
