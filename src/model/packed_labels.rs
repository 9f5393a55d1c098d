//! A label set packed into one allocation, for the storage head: a head keeps one label set
//! per active series, and as a `Vec` of `String` pairs that is 2n + 1 small allocations
//! (~400 bytes for a four-label series); packed it is one of about the text's size.
//!
//! Layout: per label, sorted by name, `name_len u32 LE | name | value_len u32 LE | value`.

use super::{Label, Labels};

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PackedLabels(Box<[u8]>);

impl std::fmt::Debug for PackedLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.unpack())
    }
}

impl From<&Labels> for PackedLabels {
    fn from(labels: &Labels) -> Self {
        let size: usize = labels.iter().map(|l| 8 + l.name.len() + l.value.len()).sum();
        let mut out = Vec::with_capacity(size);
        for l in labels {
            out.extend_from_slice(&(l.name.len() as u32).to_le_bytes());
            out.extend_from_slice(l.name.as_bytes());
            out.extend_from_slice(&(l.value.len() as u32).to_le_bytes());
            out.extend_from_slice(l.value.as_bytes());
        }
        PackedLabels(out.into_boxed_slice())
    }
}

impl PackedLabels {
    /// The `(name, value)` pairs, sorted by name.
    pub fn pairs(&self) -> Pairs<'_> {
        Pairs { rest: &self.0 }
    }

    pub fn unpack(&self) -> Labels {
        Labels::from_sorted(self.pairs().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect())
    }

    /// The value of `name`, or `""` when absent.
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.pairs().find(|(n, _)| *n == name).map_or("", |(_, v)| v)
    }

    /// Whether these are exactly `pairs` (sorted by name).
    pub fn eq_pairs<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let mut mine = self.pairs();
        for p in pairs {
            if mine.next() != Some(p) {
                return false;
            }
        }
        mine.next().is_none()
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.0.len()
    }
}

pub struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let take = |rest: &mut &'a [u8], len: usize| {
            let (s, r) = rest.split_at(len);
            *rest = r;
            // Only `From<&Labels>` writes these bytes, from `String`s.
            std::str::from_utf8(s).expect("packed from strings")
        };
        let n = u32::from_le_bytes(self.rest[..4].try_into().expect("4 bytes")) as usize;
        self.rest = &self.rest[4..];
        let name = take(&mut self.rest, n);
        let v = u32::from_le_bytes(self.rest[..4].try_into().expect("4 bytes")) as usize;
        self.rest = &self.rest[4..];
        let value = take(&mut self.rest, v);
        Some((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "h:9100"), ("é", "ünï")]);
        let p = PackedLabels::from(&l);
        assert_eq!(p.unpack(), l);
        assert_eq!(p.get_or_empty("job"), "node");
        assert_eq!(p.get_or_empty("nope"), "");
        let pairs: Vec<(&str, &str)> = l.iter().map(|x| (x.name.as_str(), x.value.as_str())).collect();
        assert!(p.eq_pairs(pairs.iter().copied()));
        assert!(!p.eq_pairs(pairs[..3].iter().copied()));
        assert!(!p.eq_pairs(pairs.iter().copied().chain([("z", "1")])));
        assert_eq!(PackedLabels::from(&Labels::empty()).unpack(), Labels::empty());
        // 38 bytes of UTF-8 text plus 8 bytes of lengths per label.
        assert_eq!(p.heap_size(), 38 + 4 * 8);
    }
}
