//! The payloads of WAL records: series definitions and sample batches
//! (`docs/storage-format.md`, "WAL").

use super::WalError;
use crate::model::{Label, Labels};
use crate::tsdb::SeriesRef;
use crate::tsdb::encoding::{Decoder, put_str, put_uvarint, put_varint};

pub const SERIES: u8 = 1;
pub const SAMPLES: u8 = 2;

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Series(Vec<(SeriesRef, Labels)>),
    Samples(Vec<(SeriesRef, i64, f64)>),
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
                let n = d.uvarint()? as usize;
                let mut labels = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    let name = d.string()?;
                    let value = d.string()?;
                    labels.push(Label { name, value });
                }
                out.push((r, Labels::from_sorted(labels)));
            }
            Ok(Record::Series(out))
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
}
