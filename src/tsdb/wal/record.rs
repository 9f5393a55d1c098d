//! The payloads of WAL records: series definitions and sample batches
//! (`docs/storage-format.md`, "WAL").

use super::WalError;
use crate::model::{Label, Labels};
use crate::tsdb::SeriesRef;
use crate::tsdb::encoding::{Decoder, put_str, put_uvarint, put_varint};

pub const SERIES: u8 = 1;
pub const SAMPLES: u8 = 2;
/// Only in checkpoints: a series with everything the head holds of it.
pub const SERIES_STATE: u8 = 3;

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Series(Vec<(SeriesRef, Labels)>),
    Samples(Vec<(SeriesRef, i64, f64)>),
    State(Vec<SeriesState>),
}

/// A series as the head held it when a checkpoint was written: its definition, its full
/// chunks, its open chunk (empty: none) and its out-of-order samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesState {
    pub series_ref: SeriesRef,
    pub labels: Labels,
    pub sealed: Vec<StateChunk>,
    pub open: Vec<u8>,
    pub late: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateChunk {
    pub min_t: i64,
    pub max_t: i64,
    pub data: std::sync::Arc<[u8]>,
}

/// Appends one series state: `ref, labels (as in a series record), sealed count, per chunk
/// (min_t varint, max_t − min_t uvarint, len, bytes), open len, open bytes, late count, per
/// late sample (t varint, value 8 bytes)`.
pub fn encode_state<'a>(
    out: &mut Vec<u8>,
    r: SeriesRef,
    labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    sealed: &[(i64, i64, &[u8])],
    open: &[u8],
    late: &[(i64, f64)],
) {
    put_uvarint(out, r);
    put_uvarint(out, labels.len() as u64);
    for (n, v) in labels {
        put_str(out, n);
        put_str(out, v);
    }
    put_uvarint(out, sealed.len() as u64);
    for &(lo, hi, data) in sealed {
        put_varint(out, lo);
        put_uvarint(out, hi.wrapping_sub(lo) as u64);
        put_uvarint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
    put_uvarint(out, open.len() as u64);
    out.extend_from_slice(open);
    put_uvarint(out, late.len() as u64);
    for &(t, v) in late {
        put_varint(out, t);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn decode_labels(d: &mut Decoder) -> Result<Labels, WalError> {
    let n = d.uvarint()? as usize;
    let mut labels = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let name = d.string()?;
        let value = d.string()?;
        labels.push(Label { name, value });
    }
    if !labels.windows(2).all(|w| w[0].name < w[1].name) {
        return Err(d.err("labels not sorted").into());
    }
    Ok(Labels::from_sorted(labels))
}

fn decode_state(d: &mut Decoder) -> Result<SeriesState, WalError> {
    let series_ref = d.uvarint()?;
    let labels = decode_labels(d)?;
    let n = d.uvarint()? as usize;
    let mut sealed = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let min_t = d.varint()?;
        let max_t = min_t.wrapping_add(d.uvarint()? as i64);
        let len = d.uvarint()? as usize;
        sealed.push(StateChunk { min_t, max_t, data: d.bytes(len)?.into() });
    }
    let len = d.uvarint()? as usize;
    let open = d.bytes(len)?.to_vec();
    let n = d.uvarint()? as usize;
    let mut late = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let t = d.varint()?;
        late.push((t, f64::from_bits(d.u64_le()?)));
    }
    Ok(SeriesState { series_ref, labels, sealed, open, late })
}

/// `ref, label count, (name, value)…` per series.
pub fn encode_series(out: &mut Vec<u8>, series: &[(SeriesRef, &Labels)]) {
    for (r, labels) in series {
        put_uvarint(out, *r);
        put_uvarint(out, labels.len() as u64);
        for l in labels.iter() {
            put_str(out, &l.name);
            put_str(out, &l.value);
        }
    }
}

/// `count, base ref, base t`, then per sample the ref and timestamp as signed deltas from
/// the bases and the value's 8 bytes (little endian).
pub fn encode_samples(out: &mut Vec<u8>, samples: &[(SeriesRef, i64, f64)]) {
    let Some(&(base_ref, base_t, _)) = samples.first() else { return };
    put_uvarint(out, samples.len() as u64);
    put_uvarint(out, base_ref);
    put_varint(out, base_t);
    for &(r, t, v) in samples {
        put_varint(out, r.wrapping_sub(base_ref) as i64);
        put_varint(out, t.wrapping_sub(base_t));
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

pub fn decode(kind: u8, payload: &[u8]) -> Result<Record, WalError> {
    let mut d = Decoder::new(payload);
    match kind {
        SERIES => {
            let mut out = Vec::new();
            while !d.done() {
                let r = d.uvarint()?;
                out.push((r, decode_labels(&mut d)?));
            }
            Ok(Record::Series(out))
        }
        SERIES_STATE => {
            let mut out = Vec::new();
            while !d.done() {
                out.push(decode_state(&mut d)?);
            }
            Ok(Record::State(out))
        }
        SAMPLES => {
            if d.done() {
                return Ok(Record::Samples(Vec::new()));
            }
            let n = d.uvarint()? as usize;
            let base_ref = d.uvarint()?;
            let base_t = d.varint()?;
            let mut out = Vec::with_capacity(n.min(payload.len() / 10 + 1));
            for _ in 0..n {
                let r = base_ref.wrapping_add(d.varint()? as u64);
                let t = base_t.wrapping_add(d.varint()?);
                let b = d.bytes(8)?;
                let v = f64::from_bits(u64::from_le_bytes(b.try_into().expect("8 bytes")));
                out.push((r, t, v));
            }
            if !d.done() {
                return Err(d.err("trailing bytes after samples").into());
            }
            Ok(Record::Samples(out))
        }
        other => Err(WalError::Record(format!("unknown record type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let b = Labels::from_pairs([("__name__", "ü"), ("a", "")]);
        let mut buf = Vec::new();
        encode_series(&mut buf, &[(7, &a), (8, &b)]);
        assert_eq!(decode(SERIES, &buf).unwrap(), Record::Series(vec![(7, a), (8, b)]));
        let samples = vec![(9, 1000, 1.5), (3, -5, f64::INFINITY), (u64::MAX, i64::MIN, -0.0)];
        let mut buf = Vec::new();
        encode_samples(&mut buf, &samples);
        let Record::Samples(got) = decode(SAMPLES, &buf).unwrap() else { panic!() };
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(&samples) {
            assert_eq!((g.0, g.1, g.2.to_bits()), (w.0, w.1, w.2.to_bits()));
        }
        assert!(decode(SAMPLES, &buf[..buf.len() - 3]).is_err());
        assert!(decode(9, &buf).is_err());
    }

    #[test]
    fn state_roundtrip_and_damage() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let pairs = || labels.iter().map(|l| (l.name.as_str(), l.value.as_str()));
        let mut buf = Vec::new();
        encode_state(&mut buf, 4, pairs(), &[(10, 20, &[1, 2, 3]), (30, 30, &[4])], &[0, 1, 9], &[(5, 0.5)]);
        encode_state(&mut buf, 5, pairs(), &[], &[], &[]);
        let Record::State(got) = decode(SERIES_STATE, &buf).unwrap() else { panic!() };
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].series_ref, 4);
        assert_eq!(got[0].labels, labels);
        let chunks: Vec<(i64, i64, &[u8])> = got[0].sealed.iter().map(|c| (c.min_t, c.max_t, &c.data[..])).collect();
        assert_eq!(chunks, vec![(10, 20, &[1u8, 2, 3][..]), (30, 30, &[4u8][..])]);
        assert_eq!((got[0].open.as_slice(), got[0].late.as_slice()), (&[0u8, 1, 9][..], &[(5, 0.5)][..]));
        assert!(got[1].sealed.is_empty() && got[1].open.is_empty() && got[1].late.is_empty());
        // A prefix never panics; it either fails or (cut between two states) holds the first.
        for cut in 1..buf.len() {
            if let Ok(Record::State(s)) = decode(SERIES_STATE, &buf[..cut]) {
                assert_eq!(s.len(), 1);
            }
        }
        assert!(decode(SERIES_STATE, &buf[..buf.len() - 1]).is_err());
    }
}
