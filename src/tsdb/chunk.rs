//! Gorilla-style chunk encoding of one series' samples: delta-of-delta timestamps and XOR
//! values, bit-compatible with Prometheus's XOR chunk (`docs/storage-format.md`).
//!
//! A chunk is `num_samples <u16 BE>` followed by the bit stream: the first timestamp as a
//! signed varint and the first value as 64 raw bits; the second timestamp as an unsigned
//! varint delta and its value XOR-encoded; from the third on, the delta of delta in one of
//! five bit-width buckets and the XOR-encoded value. Scrape timestamps on a fixed grid cost
//! one bit each, and an unchanged value one more.

/// Samples per chunk the head aims for before cutting a new one.
pub const TARGET_SAMPLES: u16 = 120;

/// Why a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk too short: {0} bytes")]
    TooShort(usize),
    #[error("chunk data ends before sample {0}")]
    Truncated(u16),
    #[error("chunk has {0} bytes after its last sample")]
    TrailingBytes(usize),
}

/// Appends bits most-significant first.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 means a new byte is needed).
    free: u8,
}

impl BitWriter {
    fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            *self.bytes.last_mut().expect("pushed above") |= 1 << self.free;
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            self.free -= take;
            *self.bytes.last_mut().expect("pushed above") |= chunk << self.free;
            n -= take;
        }
    }

    fn write_byte(&mut self, b: u8) {
        self.write_bits(b as u64, 8);
    }

    fn write_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.write_byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.write_byte(v as u8);
    }

    fn write_varint(&mut self, v: i64) {
        self.write_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }
}

/// Reads bits most-significant first.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let bit = byte >> (7 - self.pos % 8) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    fn read_bits(&mut self, mut n: u8) -> Option<u64> {
        if self.pos + n as usize > self.bytes.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        while n > 0 {
            let byte = self.bytes[self.pos / 8];
            let avail = 8 - (self.pos % 8) as u8;
            let take = n.min(avail);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = (v << take) | bits as u64;
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.read_bits(8)?;
            v |= (b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }
}

/// The XOR window of the previous value: where its meaningful bits were.
#[derive(Debug, Clone, Copy)]
struct XorWindow {
    leading: u8,
    trailing: u8,
}

/// `n`-bit signed range of the delta-of-delta buckets: −(2ⁿ⁻¹ − 1) ..= 2ⁿ⁻¹.
fn fits(dod: i64, n: u8) -> bool {
    let half = 1i64 << (n - 1);
    -(half - 1) <= dod && dod <= half
}

/// An open chunk being appended to.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    bits: BitWriter,
    count: u16,
    t: i64,
    delta: i64,
    v: u64,
    window: Option<XorWindow>,
    min_t: i64,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    pub fn new() -> Self {
        let mut bits = BitWriter::default();
        bits.write_bits(0, 16); // room for the sample count
        ChunkEncoder { bits, count: 0, t: 0, delta: 0, v: 0, window: None, min_t: i64::MAX }
    }

    pub fn len(&self) -> u16 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn min_time(&self) -> i64 {
        self.min_t
    }

    pub fn max_time(&self) -> i64 {
        if self.count == 0 { i64::MIN } else { self.t }
    }

    /// Time and value of the newest sample.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.count > 0).then(|| (self.t, f64::from_bits(self.v)))
    }

    /// Bytes the chunk takes so far.
    pub fn size(&self) -> usize {
        self.bits.bytes.len()
    }

    /// Appends a sample; the caller guarantees `t` is after the previous sample's time
    /// and that the chunk holds fewer than `u16::MAX` samples.
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.bits.write_varint(t);
                self.bits.write_bits(vb, 64);
                self.min_t = t;
            }
            1 => {
                self.delta = t - self.t;
                self.bits.write_uvarint(self.delta as u64);
                self.write_value(vb);
            }
            _ => {
                let delta = t - self.t;
                let dod = delta - self.delta;
                if dod == 0 {
                    self.bits.write_bit(false);
                } else if fits(dod, 14) {
                    self.bits.write_bits(0b10, 2);
                    self.bits.write_bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.bits.write_bits(0b110, 3);
                    self.bits.write_bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.bits.write_bits(0b1110, 4);
                    self.bits.write_bits(dod as u64, 20);
                } else {
                    self.bits.write_bits(0b1111, 4);
                    self.bits.write_bits(dod as u64, 64);
                }
                self.delta = delta;
                self.write_value(vb);
            }
        }
        self.t = t;
        self.v = vb;
        self.count += 1;
        self.bits.bytes[..2].copy_from_slice(&self.count.to_be_bytes());
    }

    fn write_value(&mut self, vb: u64) {
        let xor = vb ^ self.v;
        if xor == 0 {
            self.bits.write_bit(false);
            return;
        }
        self.bits.write_bit(true);
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if let Some(w) = self.window.filter(|w| leading >= w.leading && trailing >= w.trailing) {
            self.bits.write_bit(false);
            self.bits.write_bits(xor >> w.trailing, 64 - w.leading - w.trailing);
            return;
        }
        self.bits.write_bit(true);
        self.bits.write_bits(leading as u64, 5);
        let significant = 64 - leading - trailing;
        // 64 significant bits do not fit in 6 bits; 0 stands for them (0 cannot occur).
        self.bits.write_bits((significant % 64) as u64, 6);
        self.bits.write_bits(xor >> trailing, significant);
        self.window = Some(XorWindow { leading, trailing });
    }

    /// The chunk as it stands (a consistent copy for readers).
    pub fn bytes(&self) -> &[u8] {
        &self.bits.bytes
    }

    /// Reopens an encoded chunk for appending (a head restored from a checkpoint): decodes it
    /// once to recover the last time, delta, value and XOR window. Later appends produce the
    /// same bits as if the chunk had never been closed.
    pub fn resume(chunk: &[u8]) -> Result<Self, ChunkError> {
        let mut it = ChunkIter::new(chunk)?;
        let mut min_t = i64::MAX;
        for (t, _) in it.by_ref() {
            min_t = min_t.min(t);
        }
        if let Some(e) = it.error() {
            return Err(e);
        }
        let used = it.r.pos.div_ceil(8);
        if used != chunk.len() {
            return Err(ChunkError::TrailingBytes(chunk.len().saturating_sub(used)));
        }
        let free = (used * 8 - it.r.pos) as u8;
        Ok(ChunkEncoder {
            bits: BitWriter { bytes: chunk.to_vec(), free },
            count: it.read,
            t: it.t,
            delta: it.delta,
            v: it.v,
            window: it.windowed.then_some(it.window),
            min_t: if it.read == 0 { i64::MAX } else { min_t },
        })
    }
}

/// Reads the samples of an encoded chunk in order.
pub struct ChunkIter<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    delta: i64,
    v: u64,
    window: XorWindow,
    /// Whether a value has set the XOR window yet (an encoder resumed from here needs it).
    windowed: bool,
    failed: bool,
}

impl<'a> ChunkIter<'a> {
    pub fn new(chunk: &'a [u8]) -> Result<Self, ChunkError> {
        if chunk.len() < 2 {
            return Err(ChunkError::TooShort(chunk.len()));
        }
        let total = u16::from_be_bytes([chunk[0], chunk[1]]);
        Ok(ChunkIter {
            r: BitReader { bytes: chunk, pos: 16 },
            total,
            read: 0,
            t: 0,
            delta: 0,
            v: 0,
            window: XorWindow { leading: 0, trailing: 0 },
            windowed: false,
            failed: false,
        })
    }

    /// Number of samples the chunk says it holds.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    fn step(&mut self) -> Option<(i64, f64)> {
        match self.read {
            0 => {
                self.t = self.r.read_varint()?;
                self.v = self.r.read_bits(64)?;
            }
            1 => {
                self.delta = self.r.read_uvarint()? as i64;
                self.t += self.delta;
                self.read_value()?;
            }
            _ => {
                let mut prefix = 0u8;
                while prefix < 4 && self.r.read_bit()? {
                    prefix += 1;
                }
                let dod = match prefix {
                    0 => 0,
                    1 => signed(self.r.read_bits(14)?, 14),
                    2 => signed(self.r.read_bits(17)?, 17),
                    3 => signed(self.r.read_bits(20)?, 20),
                    _ => self.r.read_bits(64)? as i64,
                };
                self.delta += dod;
                self.t += self.delta;
                self.read_value()?;
            }
        }
        self.read += 1;
        Some((self.t, f64::from_bits(self.v)))
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.r.read_bit()? {
            return Some(());
        }
        if self.r.read_bit()? {
            let leading = self.r.read_bits(5)? as u8;
            let mut significant = self.r.read_bits(6)? as u8;
            if significant == 0 {
                significant = 64;
            }
            self.window = XorWindow { leading, trailing: 64u8.saturating_sub(leading + significant) };
            self.windowed = true;
        }
        let w = self.window;
        let n = 64 - w.leading - w.trailing;
        let bits = self.r.read_bits(n)?;
        self.v ^= bits << w.trailing;
        Some(())
    }

    /// Whether decoding stopped early because the data was cut short.
    pub fn error(&self) -> Option<ChunkError> {
        self.failed.then_some(ChunkError::Truncated(self.read))
    }
}

fn signed(bits: u64, n: u8) -> i64 {
    if bits > 1 << (n - 1) { bits as i64 - (1i64 << n) } else { bits as i64 }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.read >= self.total || self.failed {
            return None;
        }
        let s = self.step();
        if s.is_none() {
            self.failed = true;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
        let mut e = ChunkEncoder::new();
        for &(t, v) in samples {
            e.append(t, v);
        }
        let it = ChunkIter::new(e.bytes()).unwrap();
        assert_eq!(it.num_samples() as usize, samples.len());
        let out: Vec<(i64, u64)> = it.map(|(t, v)| (t, v.to_bits())).collect();
        out
    }

    #[test]
    fn constant_series_on_a_grid_costs_two_bits_per_sample() {
        let samples: Vec<(i64, f64)> = (0..120).map(|i| (1_700_000_000_000 + i * 15_000, 1.0)).collect();
        let mut e = ChunkEncoder::new();
        for &(t, v) in &samples {
            e.append(t, v);
        }
        // 2 header bytes, 6+8 for the first sample, ~3 for the second, then 2 bits each.
        assert!(e.size() <= 2 + 6 + 8 + 3 + (118usize * 2).div_ceil(8), "size {}", e.size());
        assert_eq!(roundtrip(&samples), samples.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>());
    }

    #[test]
    fn every_timestamp_bucket_and_special_values() {
        let dods = [0i64, 1, -1, 8192, -8191, 8193, 65536, -65535, 65537, 524288, 524289, -524288, 1 << 40, -(1 << 40)];
        let mut t = 1000i64;
        let mut delta = 10_000i64;
        let mut samples = vec![(t, 0.0)];
        let values = [f64::NAN, f64::INFINITY, -0.0, f64::MIN_POSITIVE, f64::MAX, crate::model::stale_nan(), 1e-300];
        for (i, dod) in dods.iter().enumerate() {
            delta += dod;
            t += delta.max(1);
            delta = delta.max(1);
            samples.push((t, values[i % values.len()]));
        }
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(roundtrip(&samples), want);
    }

    #[test]
    fn negative_first_timestamp() {
        let samples: [(i64, f64); 4] = [(-5_000, 1.5), (-4_000, 2.5), (0, -3.0), (i64::MAX / 4, 4.0)];
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(roundtrip(&samples), want);
    }

    #[test]
    fn truncated_chunk_reports_instead_of_panicking() {
        let mut e = ChunkEncoder::new();
        for i in 0..50 {
            e.append(i * 1000 + (i * i) % 7, i as f64 * 1.1);
        }
        let bytes = e.bytes();
        let cut = &bytes[..bytes.len() / 2];
        let mut it = ChunkIter::new(cut).unwrap();
        let n = it.by_ref().count();
        assert!(n < 50);
        assert_eq!(it.error(), Some(ChunkError::Truncated(n as u16)));
        assert_eq!(ChunkIter::new(&[1]).err(), Some(ChunkError::TooShort(1)));
    }

    #[test]
    fn resume_rejects_damage() {
        let mut e = ChunkEncoder::new();
        for i in 0..20 {
            e.append(i * 1000, i as f64 * 0.1);
        }
        let bytes = e.bytes();
        assert!(matches!(ChunkEncoder::resume(&bytes[..bytes.len() - 4]), Err(ChunkError::Truncated(_))));
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(ChunkEncoder::resume(&longer).err(), Some(ChunkError::TrailingBytes(2)));
        let empty = ChunkEncoder::resume(ChunkEncoder::new().bytes()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.min_time(), i64::MAX);
    }

    proptest! {
        /// An encoder closed after any prefix and resumed writes exactly the bytes of one
        /// that never stopped.
        #[test]
        fn resumed_encoder_writes_the_same_bits(
            steps in prop::collection::vec((1i64..100_000, any::<u64>(), 0u8..3), 1..150),
            cut in any::<prop::sample::Index>(),
        ) {
            let (mut t, mut prev) = (1_000i64, 0.0f64);
            let samples: Vec<(i64, f64)> = steps.iter().map(|&(dt, bits, kind)| {
                t += dt;
                prev = match kind { 0 => prev, 1 => prev + (bits % 100) as f64, _ => f64::from_bits(bits) };
                (t, prev)
            }).collect();
            let cut = cut.index(samples.len() + 1);
            let mut whole = ChunkEncoder::new();
            let mut first = ChunkEncoder::new();
            for (i, &(t, v)) in samples.iter().enumerate() {
                whole.append(t, v);
                if i < cut {
                    first.append(t, v);
                }
            }
            let mut resumed = ChunkEncoder::resume(first.bytes()).unwrap();
            prop_assert_eq!(resumed.len() as usize, cut);
            for &(t, v) in &samples[cut..] {
                resumed.append(t, v);
            }
            prop_assert_eq!(resumed.bytes(), whole.bytes());
            prop_assert_eq!(resumed.min_time(), whole.min_time());
            prop_assert_eq!(resumed.max_time(), whole.max_time());
        }

        #[test]
        fn random_streams_roundtrip(
            start in any::<i32>(),
            steps in prop::collection::vec((1i64..100_000, any::<u64>(), 0u8..4), 1..300)
        ) {
            let mut t = start as i64;
            let mut prev = 0.0f64;
            let mut samples = Vec::new();
            for (dt, bits, kind) in steps {
                t += dt;
                // Mix of repeated, integer-stepped, and arbitrary values.
                let v = match kind {
                    0 => prev,
                    1 => prev + (bits % 100) as f64,
                    2 => f64::from_bits(bits),
                    _ => (bits % 1000) as f64 / 7.0,
                };
                prev = v;
                samples.push((t, v));
            }
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(roundtrip(&samples), want);
        }
    }
}
