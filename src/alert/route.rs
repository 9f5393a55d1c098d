//! The compiled route tree: which routes an alert reaches (depth first, left to right,
//! `continue` going on to later siblings, a parent only when no child matched), and the
//! grouping each of those routes applies. Keys and ids are Alertmanager's exact strings:
//! they appear in webhook payloads (`groupKey`) and identify aggregation groups.

use crate::model::Labels;

use super::matcher::{Matcher, matches_all};

#[derive(Clone, Debug, PartialEq)]
pub enum GroupBy {
    /// The named labels that the alert has.
    Labels(Vec<String>),
    /// `group_by: ['...']`: every label.
    All,
}

#[derive(Clone, Debug)]
pub struct RouteNode {
    pub parent: Option<usize>,
    /// `{}/{owner="team-A"}`: not unique among siblings with equal matchers.
    pub key: String,
    /// The key with each node's index among its siblings: unique.
    pub id: String,
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub children: Vec<usize>,
}

/// Nodes in depth-first order; index 0 is the root.
#[derive(Clone, Debug)]
pub struct RouteTree {
    pub nodes: Vec<RouteNode>,
}

impl RouteTree {
    /// The routes `labels` reach, in walk order.
    pub fn matches(&self, labels: &Labels) -> Vec<usize> {
        let mut out = Vec::new();
        self.match_node(0, labels, &mut out);
        out
    }

    fn match_node(&self, i: usize, labels: &Labels, out: &mut Vec<usize>) -> bool {
        let node = &self.nodes[i];
        if !matches_all(&node.matchers, labels) {
            return false;
        }
        let before = out.len();
        for &c in &node.children {
            if self.match_node(c, labels, out) && !self.nodes[c].continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(i);
        }
        true
    }

    /// The labels of `labels` that route `i` groups by.
    pub fn group_labels(&self, i: usize, labels: &Labels) -> Labels {
        match &self.nodes[i].group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                labels.only(&names)
            }
        }
    }

    /// `routeKey:{a="1", b="2"}`, the group key of Alertmanager.
    pub fn group_key(&self, i: usize, group_labels: &Labels) -> String {
        format!("{}:{}", self.nodes[i].key, format_label_set(group_labels))
    }

    /// Every receiver name in walk order (for `amtool config routes`-style listings).
    pub fn walk(&self) -> impl Iterator<Item = &RouteNode> {
        self.nodes.iter()
    }
}

/// A label set the way Go's `model.LabelSet.String` prints it: `{a="1", b="2"}`.
pub fn format_label_set(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|l| format!("{}={:?}", l.name, l.value)).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::alert::config::load_str;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    const RECEIVERS: &str = "receivers:\n  - name: notify-def\n  - name: notify-A\n  - name: notify-testing\n  - name: notify-productionA\n  - name: notify-productionB\n  - name: notify-BC\n";

    /// The tree of Alertmanager's `TestRouteMatch` (reference §16.1).
    const TREE: &str = "route:
  receiver: notify-def
  routes:
  - match: {owner: team-A}
    receiver: notify-A
    routes:
    - {match: {env: testing}, receiver: notify-testing, group_by: ['...']}
    - {match: {env: production}, receiver: notify-productionA, group_wait: 1m, continue: true}
    - match_re: {env: 'produ.*', job: '.*'}
      receiver: notify-productionB
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_by: [job]
  - {match_re: {owner: 'team-(B|C)'}, group_by: [foo, bar], group_wait: 2m, receiver: notify-BC}
  - match: {group_by: role}
    group_by: [role]
    routes:
    - match: {env: testing}
      receiver: notify-testing
      routes:
      - {match: {wait: long}, group_wait: 2m}
";

    fn tree(yaml: &str) -> RouteTree {
        load_str(&format!("{yaml}{RECEIVERS}"), "t.yml", Path::new(".")).unwrap().tree
    }

    fn summary(t: &RouteTree, labels: &[(&str, &str)]) -> Vec<(String, String, i64)> {
        t.matches(&l(labels))
            .into_iter()
            .map(|i| (t.nodes[i].receiver.clone(), t.nodes[i].key.clone(), t.nodes[i].group_wait_ms))
            .collect()
    }

    fn s(r: &str, k: &str, gw: i64) -> (String, String, i64) {
        (r.into(), k.into(), gw)
    }

    #[test]
    fn alertmanagers_route_match_cases() {
        let t = tree(TREE);
        assert_eq!(summary(&t, &[("owner", "team-A")]), vec![s("notify-A", "{}/{owner=\"team-A\"}", 30_000)]);
        assert_eq!(
            summary(&t, &[("owner", "team-A"), ("env", "unset")]),
            vec![s("notify-A", "{}/{owner=\"team-A\"}", 30_000)]
        );
        assert_eq!(
            summary(&t, &[("owner", "team-C")]),
            vec![s("notify-BC", "{}/{owner=~\"^(?:team-(B|C))$\"}", 120_000)]
        );
        let testing = t.matches(&l(&[("owner", "team-A"), ("env", "testing")]));
        assert_eq!(t.nodes[testing[0]].key, "{}/{owner=\"team-A\"}/{env=\"testing\"}");
        assert_eq!(t.nodes[testing[0]].group_by, GroupBy::All);
        let prod = summary(&t, &[("owner", "team-A"), ("env", "production")]);
        assert_eq!(
            prod,
            vec![
                s("notify-productionA", "{}/{owner=\"team-A\"}/{env=\"production\"}", 60_000),
                s("notify-productionB", "{}/{owner=\"team-A\"}/{env=~\"^(?:produ.*)$\",job=~\"^(?:.*)$\"}", 30_000),
            ]
        );
        let b = t.matches(&l(&[("owner", "team-A"), ("env", "production")]))[1];
        assert_eq!(
            (t.nodes[b].repeat_interval_ms, &t.nodes[b].group_by),
            (3_600_000, &GroupBy::Labels(vec!["job".into()]))
        );
        let role = t.matches(&l(&[("group_by", "role")]));
        assert_eq!(
            (t.nodes[role[0]].receiver.as_str(), t.nodes[role[0]].key.as_str()),
            ("notify-def", "{}/{group_by=\"role\"}")
        );
        let role_testing = t.matches(&l(&[("env", "testing"), ("group_by", "role")]));
        assert_eq!(t.nodes[role_testing[0]].receiver, "notify-testing");
        assert_eq!(t.nodes[role_testing[0]].group_by, GroupBy::Labels(vec!["role".into()]));
        let long = summary(&t, &[("env", "testing"), ("group_by", "role"), ("wait", "long")]);
        assert_eq!((long[0].0.as_str(), long[0].2), ("notify-testing", 120_000));
        let walk: Vec<&str> = t.walk().map(|n| n.receiver.as_str()).collect();
        assert_eq!(
            walk,
            [
                "notify-def",
                "notify-A",
                "notify-testing",
                "notify-productionA",
                "notify-productionB",
                "notify-BC",
                "notify-def",
                "notify-testing",
                "notify-testing"
            ]
        );
    }

    #[test]
    fn matchers_form_gives_sorted_unanchored_keys() {
        let t = tree(
            "route:
  receiver: notify-def
  routes:
  - matchers: ['owner=\"team-A\"', 'level!=\"critical\"']
    receiver: notify-A
    routes:
    - {matchers: ['env=\"testing\"', 'baz!~\".*quux\"'], receiver: notify-testing}
  - {matchers: ['owner=~\"team-(B|C)\"'], receiver: notify-BC}
",
        );
        assert_eq!(summary(&t, &[("owner", "team-A")])[0].1, "{}/{level!=\"critical\",owner=\"team-A\"}");
        assert_eq!(summary(&t, &[("owner", "team-B")])[0].1, "{}/{owner=~\"team-(B|C)\"}");
        assert_eq!(
            summary(&t, &[("owner", "team-A"), ("env", "testing")])[0].1,
            "{}/{level!=\"critical\",owner=\"team-A\"}/{baz!~\".*quux\",env=\"testing\"}"
        );
        assert_eq!(summary(&t, &[("owner", "team-A"), ("level", "critical")])[0].0, "notify-def");
        assert_eq!(summary(&t, &[("owner", "team-A"), ("env", "testing"), ("baz", "xquux")])[0].0, "notify-A");
    }

    #[test]
    fn group_labels_keys_and_sibling_ids() {
        let t = tree(
            "route:
  receiver: notify-def
  group_by: [a, b]
  routes:
  - {matchers: ['foo=\"bar\"'], continue: true}
  - {matchers: ['foo=\"bar\"'], continue: true}
  - {matchers: ['foo=\"bar\"']}
  - matchers: ['bar=\"baz\"']
    routes:
    - {matchers: ['qux=\"corge\"']}
    - {matchers: ['qux=\"corge\"']}
",
        );
        let ids: Vec<&str> = t.walk().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "{}",
                "{}/{foo=\"bar\"}/0",
                "{}/{foo=\"bar\"}/1",
                "{}/{foo=\"bar\"}/2",
                "{}/{bar=\"baz\"}/3",
                "{}/{bar=\"baz\"}/3/{qux=\"corge\"}/0",
                "{}/{bar=\"baz\"}/3/{qux=\"corge\"}/1"
            ]
        );
        let labels = l(&[("a", "1"), ("b", "2"), ("c", "3"), ("foo", "bar")]);
        let hit = t.matches(&labels);
        assert_eq!(hit.len(), 3);
        let g = t.group_labels(hit[0], &labels);
        assert_eq!(t.group_key(hit[0], &g), "{}/{foo=\"bar\"}:{a=\"1\", b=\"2\"}");
        let only_a = t.group_labels(0, &l(&[("a", "1")]));
        assert_eq!(t.group_key(0, &only_a), "{}:{a=\"1\"}");
    }
}
