//! Inhibition: a firing source alert mutes the target alerts of a rule that share its
//! `equal` labels (missing equals empty). Each rule keeps the alerts matching its source
//! side, so a check walks only those; whether a source still fires is decided at the time
//! of the check, as Alertmanager does at flush time.

use std::collections::HashMap;

use super::config::InhibitRule;
use super::matcher::matches_all;
use super::store::StoredAlert;
use crate::model::Labels;

struct RuleState {
    rule: InhibitRule,
    /// fingerprint → (labels, endsAt) of alerts matching the source side.
    sources: HashMap<u64, (Labels, i64)>,
}

#[derive(Default)]
pub struct Inhibitor {
    rules: Vec<RuleState>,
}

impl Inhibitor {
    pub fn new<'a>(rules: &[InhibitRule], alerts: impl Iterator<Item = &'a StoredAlert>) -> Inhibitor {
        let mut inh =
            Inhibitor { rules: rules.iter().map(|r| RuleState { rule: r.clone(), sources: HashMap::new() }).collect() };
        for a in alerts {
            inh.observe(a);
        }
        inh
    }

    /// Records the newest state of an alert.
    pub fn observe(&mut self, a: &StoredAlert) {
        for r in &mut self.rules {
            if matches_all(&r.rule.source, &a.labels) {
                r.sources.insert(a.fingerprint, (a.labels.clone(), a.ends_at_ms));
            }
        }
    }

    pub fn forget(&mut self, fingerprint: u64) {
        for r in &mut self.rules {
            r.sources.remove(&fingerprint);
        }
    }

    /// The fingerprint of a firing source that inhibits `target`, if any.
    pub fn inhibited_by(&self, target: &Labels, now_ms: i64) -> Option<u64> {
        for r in &self.rules {
            if !matches_all(&r.rule.target, target) {
                continue;
            }
            // An alert on both sides cannot be inhibited by another alert on both sides.
            let two_sided = matches_all(&r.rule.source, target);
            for (fp, (labels, ends_at)) in &r.sources {
                if *ends_at <= now_ms {
                    continue;
                }
                if two_sided && matches_all(&r.rule.target, labels) {
                    continue;
                }
                if r.rule.equal.iter().all(|n| labels.get_or_empty(n) == target.get_or_empty(n)) {
                    return Some(*fp);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::matcher::parse_matchers;
    use crate::alert::store::fingerprint;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source: parse_matchers(source).unwrap(),
            target: parse_matchers(target).unwrap(),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn alert(labels: Labels, ends_at_ms: i64) -> StoredAlert {
        StoredAlert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: Default::default(),
            starts_at_ms: 0,
            ends_at_ms,
            generator_url: String::new(),
            updated_at_ms: 0,
            timeout: false,
        }
    }

    /// Alertmanager's `TestInhibitRuleMatches` (reference §16.4, case 28).
    #[test]
    fn two_rules_with_equal_and_the_self_guard() {
        let rules = [rule("s1=1", "t1=1", &["e"]), rule("s2=1", "t2=1", &["e"])];
        let sources = [
            alert(l(&[("s1", "1"), ("t1", "2"), ("e", "1")]), 100),
            alert(l(&[("s2", "1"), ("t2", "1"), ("e", "1")]), 100),
        ];
        let inh = Inhibitor::new(&rules, sources.iter());
        for t in [
            l(&[("t1", "1"), ("e", "1")]),
            l(&[("t2", "1"), ("e", "1")]),
            l(&[("t1", "1"), ("t3", "1"), ("e", "1")]),
            l(&[("t1", "1"), ("t2", "1"), ("e", "1")]),
            l(&[("s1", "1"), ("t1", "1"), ("e", "1")]),
        ] {
            assert!(inh.inhibited_by(&t, 50).is_some(), "{t:?} should be inhibited");
        }
        for t in
            [l(&[("t1", "0"), ("e", "1")]), l(&[("s2", "1"), ("t2", "1"), ("e", "1")]), l(&[("t1", "1"), ("e", "0")])]
        {
            assert!(inh.inhibited_by(&t, 50).is_none(), "{t:?} should not be inhibited");
        }
    }

    #[test]
    fn resolved_sources_stop_inhibiting() {
        let rules = [rule("s=1", "t=1", &["e"])];
        let mut inh = Inhibitor::new(&rules, std::iter::empty());
        let target = l(&[("t", "1"), ("e", "x")]);
        assert_eq!(inh.inhibited_by(&target, 10), None);
        let source = alert(l(&[("s", "1"), ("e", "x")]), 100);
        inh.observe(&source);
        assert_eq!(inh.inhibited_by(&target, 10), Some(source.fingerprint));
        assert_eq!(inh.inhibited_by(&l(&[("t", "1"), ("e", "y")]), 10), None);
        // Missing equals empty.
        let other = alert(l(&[("s", "1")]), 100);
        inh.observe(&other);
        assert_eq!(inh.inhibited_by(&l(&[("t", "1")]), 10), Some(other.fingerprint));
        assert_eq!(inh.inhibited_by(&target, 100), None);
    }
}
