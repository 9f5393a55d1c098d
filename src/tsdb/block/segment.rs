//! Column encoding of one series' samples inside a block (`docs/storage-format.md`,
//! "Segments"). The head keeps Prometheus's XOR chunks; when samples are written into a
//! block they are re-encoded here into a form that a general-purpose compressor
//! ([`super::frame`]) squeezes much further:
//!
//! - timestamps as residuals against the series' scrape grid (most common step and phase),
//!   so on-grid samples are zero bytes and jittered ones the jitter;
//! - values as integer mantissas of one decimal exponent (the shortest decimal that
//!   round-trips each float, as printed by an exporter), stored as deltas or deltas of
//!   deltas, whichever is smaller; values that do not round-trip bit-exactly (NaN, stale
//!   markers, ±Inf, −0, full-precision floats) are kept aside as raw bits;
//! - when too many values are like that, XOR of consecutive bit patterns with zero bytes
//!   trimmed.
//!
//! Encoding is lossless by construction: every value is decoded back and compared by bits
//! before a decimal form is chosen for it.

use crate::tsdb::Point;
use crate::tsdb::encoding::{DecodeError, Decoder, put_uvarint, put_varint};

/// Most samples one segment holds; a longer series gets several.
pub const MAX_SAMPLES: usize = 4096;

const DECIMAL_DELTA: u8 = 0;
const DECIMAL_DOD: u8 = 1;
const XOR: u8 = 2;

/// Largest decimal scale: 10^22 is the last power of ten a double holds exactly, so
/// `m / 10^k` is then correctly rounded.
const MAX_SCALE: u32 = 22;
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];
/// Mantissas above 2^53 are not exact as doubles.
const MAX_MANTISSA: i64 = 1 << 53;

const TIMES_INLINE: u8 = 0;
const TIMES_SHARED: u8 = 1;

/// Timestamp columns already written to the buffer, by hash, so the series of one target
/// (all scraped at the same instants) store their timestamps once per frame.
#[derive(Default)]
pub struct SharedTimes {
    by_hash: std::collections::HashMap<u64, (usize, usize)>,
    scratch: Vec<u8>,
}

impl SharedTimes {
    pub fn clear(&mut self) {
        self.by_hash.clear();
    }
}

/// Appends the encoding of `points` (time-sorted, 1 ≤ len ≤ [`MAX_SAMPLES`]) to `out`;
/// a timestamp column equal to one in `shared` (written earlier into the same `out`) is
/// stored as a reference to it.
pub fn encode(points: &[Point], out: &mut Vec<u8>, shared: &mut SharedTimes) {
    debug_assert!(!points.is_empty() && points.len() <= MAX_SAMPLES);
    put_uvarint(out, points.len() as u64);
    shared.scratch.clear();
    encode_times(points, &mut shared.scratch);
    let hash = xxhash_rust::xxh3::xxh3_64(&shared.scratch);
    match shared.by_hash.get(&hash) {
        Some(&(pos, len)) if out[pos..pos + len] == shared.scratch[..] => {
            out.push(TIMES_SHARED);
            put_uvarint(out, pos as u64);
        }
        _ => {
            out.push(TIMES_INLINE);
            shared.by_hash.insert(hash, (out.len(), shared.scratch.len()));
            out.extend_from_slice(&shared.scratch);
        }
    }
    encode_values(points, out);
}

/// Decodes the segment at `pos` of `buf`, appending to `out`.
pub fn decode(buf: &[u8], pos: usize, out: &mut Vec<Point>) -> Result<usize, DecodeError> {
    let mut d = Decoder::at(buf, pos);
    let n = d.uvarint()? as usize;
    if n == 0 || n > MAX_SAMPLES {
        return Err(d.err("bad segment sample count"));
    }
    let start = out.len();
    match d.bytes(1)?[0] {
        TIMES_INLINE => decode_times(&mut d, n, out)?,
        TIMES_SHARED => {
            let at = d.uvarint()? as usize;
            if at >= pos {
                return Err(d.err("shared timestamps must come earlier in the frame"));
            }
            decode_times(&mut Decoder::at(buf, at), n, out)?;
        }
        _ => return Err(d.err("unknown timestamp encoding")),
    }
    decode_values(&mut d, &mut out[start..])?;
    Ok(d.position())
}

fn grid_step(points: &[Point]) -> i64 {
    let mut deltas: Vec<i64> = points.windows(2).map(|w| w[1].t - w[0].t).take(1024).collect();
    if deltas.is_empty() {
        return 1;
    }
    deltas.sort_unstable();
    deltas[deltas.len() / 2].max(1)
}

/// The grid point nearest `t0` with the phase most timestamps share.
fn grid_base(points: &[Point], step: i64) -> i64 {
    let mut phases: Vec<i64> = points.iter().take(1024).map(|p| p.t.rem_euclid(step)).collect();
    phases.sort_unstable();
    let (mut best, mut best_n, mut i) = (phases[0], 0, 0);
    while i < phases.len() {
        let j = phases[i..].iter().position(|p| *p != phases[i]).map_or(phases.len(), |k| i + k);
        if j - i > best_n {
            (best, best_n) = (phases[i], j - i);
        }
        i = j;
    }
    let t0 = points[0].t;
    let off = (t0 - best).rem_euclid(step);
    if off > step / 2 { t0 - off + step } else { t0 - off }
}

/// Steps from the predicted grid point to the one a residual lands nearest.
fn grid_moves(r: i64, step: i64) -> i64 {
    (r + step / 2).div_euclid(step)
}

fn encode_times(points: &[Point], out: &mut Vec<u8>) {
    let step = grid_step(points);
    let base = grid_base(points, step);
    put_varint(out, base);
    put_uvarint(out, step as u64);
    let mut pred = base;
    for p in points {
        let r = p.t - pred;
        put_varint(out, r);
        pred += grid_moves(r, step) * step + step;
    }
}

fn decode_times(d: &mut Decoder<'_>, n: usize, out: &mut Vec<Point>) -> Result<(), DecodeError> {
    let base = d.varint()?;
    let step = d.uvarint()? as i64;
    if step <= 0 {
        return Err(d.err("bad segment step"));
    }
    out.reserve(n);
    let mut pred = base;
    for _ in 0..n {
        let r = d.varint()?;
        let t = pred.checked_add(r).ok_or_else(|| d.err("timestamp overflow"))?;
        out.push(Point { t, v: 0.0 });
        pred = grid_moves(r, step).checked_mul(step).and_then(|m| pred.checked_add(m + step)).unwrap_or(i64::MAX);
    }
    Ok(())
}

/// The value as `m / 10^k` when that gives back exactly the same bits.
fn to_decimal(v: f64) -> Option<(i64, u32)> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    if v.fract() == 0.0 && v.abs() < MAX_MANTISSA as f64 {
        return Some((v as i64, 0));
    }
    // `{:e}` prints the shortest digits that parse back to `v`.
    let s = format!("{v:e}");
    let (digits, exp) = s.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let k = frac.len() as i32 - exp;
    if !(0..=MAX_SCALE as i32).contains(&k) {
        return None;
    }
    let m: i64 = format!("{int}{frac}").parse().ok()?;
    (m.abs() < MAX_MANTISSA && from_decimal(m, k as u32).to_bits() == v.to_bits()).then_some((m, k as u32))
}

fn from_decimal(m: i64, k: u32) -> f64 {
    m as f64 / POW10[k as usize]
}

/// Rescales `(m, k)` to scale `to ≥ k`, if the mantissa stays exact.
fn rescale(m: i64, k: u32, to: u32) -> Option<i64> {
    let f = 10i64.checked_pow(to - k)?;
    m.checked_mul(f).filter(|m| m.abs() < MAX_MANTISSA)
}

fn varint_len(v: i64) -> usize {
    let u = ((v << 1) ^ (v >> 63)) as u64;
    (64 - u.leading_zeros() as usize).max(1).div_ceil(7)
}

fn encode_values(points: &[Point], out: &mut Vec<u8>) {
    if let Some((k, mantissas, specials)) = decimal_form(points) {
        let deltas: Vec<i64> = mantissas.windows(2).map(|w| w[1] - w[0]).collect();
        let dods: Vec<i64> =
            deltas.first().into_iter().copied().chain(deltas.windows(2).map(|w| w[1] - w[0])).collect();
        let size = |v: &[i64]| v.iter().map(|x| varint_len(*x)).sum::<usize>();
        let (kind, stream) = if size(&dods) < size(&deltas) { (DECIMAL_DOD, dods) } else { (DECIMAL_DELTA, deltas) };
        out.push(kind);
        out.push(k as u8);
        put_varint(out, mantissas[0]);
        for x in stream {
            put_varint(out, x);
        }
        put_uvarint(out, specials.len() as u64);
        let mut prev = 0;
        for (i, bits) in specials {
            put_uvarint(out, (i - prev) as u64);
            out.extend_from_slice(&bits.to_le_bytes());
            prev = i;
        }
    } else {
        out.push(XOR);
        let mut prev = 0u64;
        for p in points {
            let x = p.v.to_bits() ^ prev;
            prev = p.v.to_bits();
            let be = x.to_be_bytes();
            let lead = (x.leading_zeros() / 8) as usize;
            let trail = if x == 0 { 0 } else { (x.trailing_zeros() / 8) as usize };
            out.push(((lead as u8) << 4) | trail as u8);
            out.extend_from_slice(&be[lead..8 - trail]);
        }
    }
}

type DecimalForm = (u32, Vec<i64>, Vec<(usize, u64)>);

/// Mantissas at one common scale, with the values that have no exact decimal form kept
/// as `(index, bits)` (their mantissa repeats the previous one, so they cost no delta).
fn decimal_form(points: &[Point]) -> Option<DecimalForm> {
    let decimals: Vec<Option<(i64, u32)>> = points.iter().map(|p| to_decimal(p.v)).collect();
    let specials_n = decimals.iter().filter(|d| d.is_none()).count();
    if specials_n * 8 > points.len() {
        return None;
    }
    let k = decimals.iter().flatten().map(|d| d.1).max().unwrap_or(0);
    let mut mantissas = Vec::with_capacity(points.len());
    let mut specials = Vec::with_capacity(specials_n);
    let mut prev = 0i64;
    for (i, d) in decimals.iter().enumerate() {
        let m = match d {
            Some((m, mk)) => match rescale(*m, *mk, k) {
                Some(m) if from_decimal(m, k).to_bits() == points[i].v.to_bits() => m,
                _ => {
                    specials.push((i, points[i].v.to_bits()));
                    prev
                }
            },
            None => {
                specials.push((i, points[i].v.to_bits()));
                prev
            }
        };
        mantissas.push(m);
        prev = m;
    }
    (specials.len() * 8 <= points.len()).then_some((k, mantissas, specials))
}

fn decode_values(d: &mut Decoder<'_>, out: &mut [Point]) -> Result<(), DecodeError> {
    let kind = d.bytes(1)?[0];
    match kind {
        DECIMAL_DELTA | DECIMAL_DOD => {
            let k = d.bytes(1)?[0] as u32;
            if k > MAX_SCALE {
                return Err(d.err("bad decimal scale"));
            }
            let mut m = d.varint()?;
            let mut delta = 0i64;
            for (i, p) in out.iter_mut().enumerate() {
                if i > 0 {
                    let x = d.varint()?;
                    delta = if kind == DECIMAL_DOD { delta.wrapping_add(x) } else { x };
                    m = m.wrapping_add(delta);
                }
                p.v = from_decimal(m, k);
            }
            let n = d.uvarint()? as usize;
            let mut i = 0usize;
            for _ in 0..n {
                i += d.uvarint()? as usize;
                let bits = u64::from_le_bytes(d.bytes(8)?.try_into().expect("8 bytes"));
                out.get_mut(i).ok_or_else(|| d.err("special value index out of range"))?.v = f64::from_bits(bits);
            }
        }
        XOR => {
            let mut prev = 0u64;
            for p in out.iter_mut() {
                let h = d.bytes(1)?[0];
                let (lead, trail) = ((h >> 4) as usize, (h & 15) as usize);
                if lead > 8 || lead + trail > 8 {
                    return Err(d.err("bad XOR header"));
                }
                let mut be = [0u8; 8];
                be[lead..8 - trail].copy_from_slice(d.bytes(8 - lead - trail)?);
                prev ^= u64::from_be_bytes(be);
                p.v = f64::from_bits(prev);
            }
        }
        _ => return Err(d.err("unknown value encoding")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(points: &[Point]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(points, &mut buf, &mut SharedTimes::default());
        let mut got = Vec::new();
        let end = decode(&buf, 0, &mut got).unwrap();
        assert_eq!(end, buf.len(), "trailing bytes");
        assert_eq!(got.len(), points.len());
        for (a, b) in got.iter().zip(points) {
            assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()), "at t={}", b.t);
        }
        buf
    }

    fn grid(n: i64, f: impl Fn(i64) -> f64) -> Vec<Point> {
        (0..n).map(|i| Point { t: 1_796_000_000_123 + i * 15_000, v: f(i) }).collect()
    }

    #[test]
    fn constant_on_grid_costs_about_two_bytes_per_sample_before_compression() {
        let buf = round_trip(&grid(480, |_| 1500.0));
        // n, base, step, 480 zero residuals, kind, scale, m0, 479 zero deltas, no specials.
        assert!(buf.len() < 480 * 2 + 20, "{}", buf.len());
        assert!(buf[12..].iter().filter(|b| **b != 0).count() < 10);
    }

    #[test]
    fn jitter_and_gaps_stay_on_the_grid() {
        let mut pts = grid(100, |i| i as f64);
        pts[3].t += 2;
        pts[4].t -= 3;
        pts.remove(10); // a missed scrape
        pts[0].t += 1; // even the first sample may be off the grid
        let buf = round_trip(&pts);
        let mut d = Decoder::new(&buf);
        d.uvarint().unwrap();
        assert_eq!(d.bytes(1).unwrap()[0], TIMES_INLINE);
        let _base = d.varint().unwrap();
        assert_eq!(d.uvarint().unwrap(), 15_000);
        let residuals: Vec<i64> = (0..pts.len()).map(|_| d.varint().unwrap()).collect();
        assert_eq!(residuals.iter().filter(|r| **r != 0).count(), 4, "{residuals:?}");
    }

    #[test]
    fn decimals_specials_and_xor() {
        round_trip(&grid(200, |i| 52_440.94 + i as f64 * 0.37));
        round_trip(&grid(200, |i| [2.2439e-05, 0.000131566, 7.49e-07][i as usize % 3]));
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        round_trip(&grid(50, |i| if i == 49 { stale } else { i as f64 }));
        round_trip(&grid(50, |i| [f64::NAN, -0.0, f64::INFINITY, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0][i as usize % 9]));
        let buf = round_trip(&grid(100, |i| 1.7962909939749625e9 + i as f64 * 15.000_000_123_4));
        let mut d = Decoder::new(&buf);
        d.uvarint().unwrap();
        d.bytes(1).unwrap();
        d.varint().unwrap();
        d.uvarint().unwrap();
        for _ in 0..100 {
            d.varint().unwrap();
        }
        assert_eq!(d.bytes(1).unwrap()[0], XOR);
        round_trip(&grid(1, |_| 0.5));
        round_trip(&[Point { t: -5, v: 1e300 }, Point { t: 7, v: -1e-300 }]);
    }

    #[test]
    fn equal_timestamp_columns_are_stored_once() {
        let mut a = grid(480, |i| i as f64);
        a[7].t += 2;
        let b: Vec<Point> = a.iter().map(|p| Point { t: p.t, v: 5.0 }).collect();
        let mut c = b.clone();
        c[9].t += 1;
        let (mut buf, mut shared) = (Vec::new(), SharedTimes::default());
        let mut ends = Vec::new();
        for s in [&a, &b, &c] {
            ends.push(buf.len());
            encode(s, &mut buf, &mut shared);
        }
        ends.push(buf.len());
        assert!(ends[2] - ends[1] < 500, "b refers to a's timestamps: {ends:?}");
        assert!(ends[3] - ends[2] > 960, "c has its own: {ends:?}");
        for (s, at) in [&a, &b, &c].iter().zip(&ends) {
            let mut got = Vec::new();
            decode(&buf, *at, &mut got).unwrap();
            assert_eq!(&got, *s);
        }
        // A reference must point backwards (no loops on damaged data).
        let mut bad = Vec::new();
        put_uvarint(&mut bad, 1);
        bad.push(TIMES_SHARED);
        put_uvarint(&mut bad, 5);
        assert!(decode(&bad, 0, &mut Vec::new()).is_err());
    }

    #[test]
    fn counter_mantissas_use_dod_when_smaller() {
        let buf = round_trip(&grid(300, |i| (i * 1_000_003) as f64));
        assert!(buf.contains(&DECIMAL_DOD));
    }

    proptest! {
        #[test]
        fn any_points_round_trip(
            start in -1_000_000_000_000i64..4_000_000_000_000,
            steps in prop::collection::vec(1i64..100_000, 0..300),
            values in prop::collection::vec(prop_oneof![
                any::<f64>(),
                (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
                (-1_000_000i64..1_000_000, 0u32..8).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
                Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            ], 300),
        ) {
            let mut t = start;
            let pts: Vec<Point> = std::iter::once(0).chain(steps).enumerate().map(|(i, s)| {
                t += s;
                Point { t, v: values[i] }
            }).collect();
            round_trip(&pts);
        }
    }
}
