//! Label sets: sorted, de-duplicated `name=value` pairs with no empty values.

use std::collections::BTreeMap;
use std::fmt;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// [`Labels::stable_hash`] of pairs already sorted by name with no empty values.
pub fn stable_hash_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// One `name=value` pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// An immutable label set, sorted by name. Empty values are never stored: setting a label to
/// `""` is the same as not having it, as everywhere in Prometheus. Shared: cloning is a
/// reference-count increment (a query hands the same series' labels to every step).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(std::sync::Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(std::sync::Arc::from([]))
    }

    /// Builds a label set from pairs; later duplicates win, empty values are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut v: Vec<Label> = pairs.into_iter().map(|(n, v)| Label { name: n.into(), value: v.into() }).collect();
        // Stable sort keeps insertion order among equal names, so "later wins" below is well defined.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Labels(out.into())
    }

    /// Builds from labels already sorted by name with unique names and no empty values.
    /// Checked in debug builds only.
    pub fn from_sorted(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name), "labels not sorted/unique");
        debug_assert!(v.iter().all(|l| !l.value.is_empty()), "empty label value");
        Labels(v.into())
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|l| l.name.as_str().cmp(name)).ok().map(|i| self.0[i].value.as_str())
    }

    /// The value of `name`, or `""` when absent (Prometheus's reading of a missing label).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// A stable 64-bit hash of the label set (xxh64 over `name\xffvalue\xff`, as Prometheus).
    pub fn stable_hash(&self) -> u64 {
        stable_hash_pairs(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Whether these are exactly `pairs` (sorted by name), without building a label set.
    pub fn eq_pairs(&self, pairs: &[(&str, &str)]) -> bool {
        self.0.len() == pairs.len() && self.0.iter().zip(pairs).all(|(l, (n, v))| l.name == *n && l.value == *v)
    }

    /// A builder seeded with these labels, for editing.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from(self)
    }

    /// A copy without the labels named in `names`.
    pub fn without(&self, names: &[&str]) -> Labels {
        Labels(self.0.iter().filter(|l| !names.contains(&l.name.as_str())).cloned().collect())
    }

    /// A copy keeping only the labels named in `names`.
    pub fn only(&self, names: &[&str]) -> Labels {
        Labels(self.0.iter().filter(|l| names.contains(&l.name.as_str())).cloned().collect())
    }

    /// Where the shared label data lives: equal for clones of one label set (a cache key;
    /// only meaningful while that set is alive).
    pub fn address(&self) -> usize {
        self.0.as_ptr() as usize
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }
}

impl fmt::Display for Labels {
    /// Prometheus's series notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A mutable label set used while relabeling and building targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelsBuilder {
    map: BTreeMap<String, String>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name`, or `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The value of `name`, or `""` when absent.
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if value.is_empty() {
            self.map.remove(&name);
        } else {
            self.map.insert(name, value);
        }
    }

    /// Sets `name` only when it is not already set (to a non-empty value).
    pub fn set_if_absent(&mut self, name: &str, value: impl Into<String>) {
        if !self.map.contains_key(name) {
            self.set(name.to_string(), value);
        }
    }

    pub fn del(&mut self, name: &str) {
        self.map.remove(name);
    }

    /// Keeps only the labels for which `keep(name)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.map.retain(|k, _| keep(k));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn labels(&self) -> Labels {
        Labels(self.map.iter().map(|(k, v)| Label { name: k.clone(), value: v.clone() }).collect())
    }

    pub fn into_labels(self) -> Labels {
        Labels(self.map.into_iter().map(|(name, value)| Label { name, value }).collect())
    }
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        LabelsBuilder { map: l.0.iter().map(|l| (l.name.clone(), l.value.clone())).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("a"), Some("1"));
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn display_is_prometheus_notation() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "a:1")]);
        assert_eq!(l.to_string(), r#"up{instance="a:1", job="node"}"#);
    }

    #[test]
    fn builder_empty_value_deletes() {
        let mut b = LabelsBuilder::new();
        b.set("a", "1");
        b.set("a", "");
        assert!(b.is_empty());
    }
}
