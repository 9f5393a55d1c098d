//! The head's inverted index: label name → value → sorted series refs.
//!
//! Series refs are handed out in increasing order and never reused, so appending a new ref
//! keeps every postings list sorted without a sort.

use std::collections::HashMap;

use super::{MatchKind, Matcher, SeriesRef};
use crate::model::Labels;

#[derive(Default)]
pub struct Postings {
    by_label: HashMap<String, HashMap<String, Vec<SeriesRef>>>,
}

impl Postings {
    pub fn add(&mut self, r: SeriesRef, labels: &Labels) {
        for l in labels {
            self.by_label.entry(l.name.clone()).or_default().entry(l.value.clone()).or_default().push(r);
        }
    }

    /// Removes series (with their label pairs) from every list that holds them: one pass
    /// over each affected list, however many of its refs go.
    pub fn remove<'a>(&mut self, removed: impl IntoIterator<Item = (SeriesRef, crate::model::Pairs<'a>)>) {
        let mut by_pair: HashMap<(&'a str, &'a str), Vec<SeriesRef>> = HashMap::new();
        for (r, pairs) in removed {
            for pair in pairs {
                by_pair.entry(pair).or_default().push(r);
            }
        }
        for ((name, value), mut gone) in by_pair {
            gone.sort_unstable();
            let Some(values) = self.by_label.get_mut(name) else { continue };
            if let Some(list) = values.get_mut(value) {
                list.retain(|r| gone.binary_search(r).is_err());
                if list.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_label.remove(name);
            }
        }
    }

    /// Every label pair with the number of series that carry it.
    pub fn pair_counts(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.by_label
            .iter()
            .flat_map(|(n, values)| values.iter().map(move |(v, refs)| (n.as_str(), v.as_str(), refs.len())))
    }

    pub fn label_names(&self) -> impl Iterator<Item = &String> {
        self.by_label.keys()
    }

    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &String> {
        self.by_label.get(name).into_iter().flat_map(|m| m.keys())
    }

    /// Candidate refs for the matchers that cannot match an absent label, intersected;
    /// `None` when every matcher also matches the empty value (the caller must scan).
    /// The result still has to be filtered by the remaining matchers.
    pub fn candidates(&self, matchers: &[Matcher]) -> Option<Vec<SeriesRef>> {
        // Borrowed where a single postings list answers the matcher: an equality on a
        // common label (`__name__`) would otherwise copy its whole list per query.
        let mut lists: Vec<std::borrow::Cow<'_, [SeriesRef]>> = Vec::new();
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = self.by_label.get(&m.name) else {
                return Some(Vec::new());
            };
            let list = match &m.kind {
                MatchKind::Equal(v) => match values.get(v) {
                    Some(refs) => std::borrow::Cow::Borrowed(refs.as_slice()),
                    None => return Some(Vec::new()),
                },
                _ => {
                    let parts: Vec<&Vec<SeriesRef>> =
                        values.iter().filter(|(v, _)| m.matches(v)).map(|(_, refs)| refs).collect();
                    std::borrow::Cow::Owned(merge_union(&parts))
                }
            };
            if list.is_empty() {
                return Some(Vec::new());
            }
            lists.push(list);
        }
        if lists.is_empty() {
            return None;
        }
        lists.sort_by_key(|l| l.len());
        let mut acc = lists.swap_remove(0).into_owned();
        for l in &lists {
            acc = intersect(&acc, l);
            if acc.is_empty() {
                break;
            }
        }
        Some(acc)
    }
}

pub(super) fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    // A short list against a long one: look each element up (galloping from the last
    // match) instead of walking the long list.
    if small.len() * 16 < large.len() {
        let mut out = Vec::with_capacity(small.len());
        let mut rest = large;
        for &x in small {
            match rest.binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
            if rest.is_empty() {
                break;
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub(super) fn merge_union(parts: &[&Vec<SeriesRef>]) -> Vec<SeriesRef> {
    match parts {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut all: Vec<SeriesRef> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_series_empties_their_lists() {
        let a = crate::model::PackedLabels::from(&Labels::from_pairs([("__name__", "up"), ("job", "a")]));
        let b = crate::model::PackedLabels::from(&Labels::from_pairs([("__name__", "up"), ("job", "b")]));
        let mut p = Postings::default();
        p.add(0, &a.unpack());
        p.add(1, &b.unpack());
        p.add(2, &a.unpack());
        p.remove([(0, a.pairs()), (1, b.pairs())]);
        assert_eq!(p.candidates(&[Matcher::equal("__name__", "up")]), Some(vec![2]));
        assert_eq!(p.candidates(&[Matcher::equal("job", "b")]), Some(vec![]));
        let mut values: Vec<&String> = p.label_values("job").collect();
        values.sort();
        assert_eq!(values, vec!["a"]);
        p.remove([(2, a.pairs())]);
        assert_eq!(p.label_names().count(), 0);
    }

    #[test]
    fn intersect_and_union() {
        assert_eq!(intersect(&[1, 2, 3, 5], &[2, 5, 7]), vec![2, 5]);
        let long: Vec<SeriesRef> = (0..1000).map(|i| i * 2).collect();
        assert_eq!(intersect(&[3, 4, 10, 1998, 5000], &long), vec![4, 10, 1998]);
        assert_eq!(intersect(&long, &[0, 1, 2]), vec![0, 2]);
        assert_eq!(merge_union(&[&vec![1, 4], &vec![2, 4]]), vec![1, 2, 4]);
    }
}
