//! Route testing for users: which routes a label set reaches, with the group it lands in
//! and the timers that apply; and warnings for timer settings that do not do what they
//! seem to (a `repeat_interval` is only checked at `group_interval` ticks).

use serde::Serialize;

use super::route::{RouteTree, format_label_set};
use crate::config::PromDuration;
use crate::model::Labels;

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    pub receiver: String,
    pub route: String,
    pub group_key: String,
    pub group_labels: String,
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
    pub effective_repeat_interval: String,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

fn dur(ms: i64) -> String {
    PromDuration(std::time::Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// A repeat goes out at the first tick strictly after `repeat_interval`: the smallest
/// multiple of `group_interval` greater than it.
pub fn effective_repeat_ms(group_interval_ms: i64, repeat_interval_ms: i64) -> i64 {
    if group_interval_ms <= 0 {
        return repeat_interval_ms;
    }
    (repeat_interval_ms / group_interval_ms + 1) * group_interval_ms
}

pub fn explain(tree: &RouteTree, labels: &Labels) -> Vec<RouteMatch> {
    tree.matches(labels)
        .into_iter()
        .map(|i| {
            let n = &tree.nodes[i];
            let g = tree.group_labels(i, labels);
            RouteMatch {
                receiver: n.receiver.clone(),
                route: n.key.clone(),
                group_key: tree.group_key(i, &g),
                group_labels: format_label_set(&g),
                group_wait: dur(n.group_wait_ms),
                group_interval: dur(n.group_interval_ms),
                repeat_interval: dur(n.repeat_interval_ms),
                effective_repeat_interval: dur(effective_repeat_ms(n.group_interval_ms, n.repeat_interval_ms)),
                mute_time_intervals: n.mute_time_intervals.clone(),
                active_time_intervals: n.active_time_intervals.clone(),
            }
        })
        .collect()
}

/// Settings that are valid but surprising, one line per route.
pub fn timer_warnings(tree: &RouteTree) -> Vec<String> {
    let mut out = Vec::new();
    for n in tree.walk() {
        let (gi, ri) = (n.group_interval_ms, n.repeat_interval_ms);
        if ri < gi {
            out.push(format!(
                "route {}: repeat_interval {} is shorter than group_interval {}: repeats come every {} at best",
                n.key,
                dur(ri),
                dur(gi),
                dur(gi)
            ));
        } else if ri % gi == 0 {
            out.push(format!(
                "route {}: repeat_interval {} is a multiple of group_interval {}: repeats come every {}, one tick later",
                n.key,
                dur(ri),
                dur(gi),
                dur(effective_repeat_ms(gi, ri))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn explains_matches_and_warns_about_timers() {
        let cfg = crate::alert::config::load_str(
            "route:\n  receiver: a\n  group_by: [alertname]\n  group_interval: 5m\n  repeat_interval: 5m\n  routes:\n    - {matchers: ['team=\"db\"'], receiver: b, continue: true, repeat_interval: 1m}\n    - {matchers: ['team=~\"d.*\"'], receiver: c}\nreceivers: [{name: a}, {name: b}, {name: c}]\n",
            "r.yml",
            Path::new("."),
        )
        .unwrap();
        let got = explain(&cfg.tree, &Labels::from_pairs([("alertname", "X"), ("team", "db")]));
        let receivers: Vec<&str> = got.iter().map(|m| m.receiver.as_str()).collect();
        assert_eq!(receivers, ["b", "c"]);
        assert_eq!(got[0].group_key, "{}/{team=\"db\"}:{alertname=\"X\"}");
        assert_eq!(got[1].effective_repeat_interval, "10m");
        let w = timer_warnings(&cfg.tree);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("repeats come every 10m"), "{w:?}");
        assert!(w[1].contains("shorter than group_interval"), "{w:?}");
    }
}
