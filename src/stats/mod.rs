//! Pure statistics over HdrHistograms: the summary of a distribution, spike rates (mean +
//! k·sigma, and the robust median + k·1.4826·MAD), Tukey outlier counts. No raw samples:
//! every figure comes from the histogram.

pub mod evidence;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant digits of every histogram: values are kept to 1 part in 1,000.
pub const SIGFIGS: u8 = 3;

/// A new auto-resizing histogram (it grows with the largest value recorded).
pub fn histogram() -> Histogram<u64> {
    let mut h = Histogram::new(SIGFIGS).expect("3 significant digits is valid");
    h.auto(true);
    h
}

/// Share of samples above a threshold.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SpikeRate {
    pub k: f64,
    /// Values above this count as spikes (same unit as the distribution).
    pub threshold: f64,
    /// Spikes / count, between 0 and 1.
    pub share: f64,
}

/// Tukey's fences: values below q1 - 1.5·IQR or above q3 + 1.5·IQR.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Tukey {
    pub q1: f64,
    pub q3: f64,
    pub low_outliers: u64,
    pub high_outliers: u64,
}

/// The summary of one distribution, in the unit its values were recorded in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DistSummary {
    pub count: u64,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub spike_rate: SpikeRate,
    pub robust_spike_rate: SpikeRate,
    pub tukey: Tukey,
}

/// Each recorded bucket as (representative value, count), in value order: the bucket's
/// median-equivalent value, as hdrhistogram's own mean uses.
pub fn buckets(h: &Histogram<u64>) -> impl Iterator<Item = (u64, u64)> + '_ {
    h.iter_recorded().map(|v| (h.median_equivalent(v.value_iterated_to()), v.count_at_value()))
}

/// Samples strictly above `threshold`.
pub fn count_above(h: &Histogram<u64>, threshold: f64) -> u64 {
    buckets(h).filter(|(v, _)| *v as f64 > threshold).map(|(_, c)| c).sum()
}

/// Samples strictly below `threshold`.
pub fn count_below(h: &Histogram<u64>, threshold: f64) -> u64 {
    buckets(h).filter(|(v, _)| (*v as f64) < threshold).map(|(_, c)| c).sum()
}

/// The `rank`-th smallest sample (1-based) as its bucket's value; `None` past the end.
pub fn order_statistic(h: &Histogram<u64>, rank: u64) -> Option<f64> {
    let mut seen = 0;
    for (v, c) in buckets(h) {
        seen += c;
        if seen >= rank {
            return Some(v as f64);
        }
    }
    None
}

/// Median absolute deviation from the median.
pub fn mad(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let median = h.value_at_quantile(0.5) as f64;
    let mut dev: Vec<(f64, u64)> = buckets(h).map(|(v, c)| ((v as f64 - median).abs(), c)).collect();
    dev.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = h.len().div_ceil(2);
    let mut seen = 0;
    for (d, c) in dev {
        seen += c;
        if seen >= half {
            return d;
        }
    }
    0.0
}

pub fn spike_rate(h: &Histogram<u64>, k: f64) -> SpikeRate {
    let threshold = h.mean() + k * h.stdev();
    let share = if h.is_empty() { 0.0 } else { count_above(h, threshold) as f64 / h.len() as f64 };
    SpikeRate { k, threshold, share }
}

pub fn robust_spike_rate(h: &Histogram<u64>, k: f64) -> SpikeRate {
    let threshold = h.value_at_quantile(0.5) as f64 + k * 1.4826 * mad(h);
    let share = if h.is_empty() { 0.0 } else { count_above(h, threshold) as f64 / h.len() as f64 };
    SpikeRate { k, threshold, share }
}

pub fn tukey(h: &Histogram<u64>) -> Tukey {
    let (q1, q3) = (h.value_at_quantile(0.25) as f64, h.value_at_quantile(0.75) as f64);
    let iqr = q3 - q1;
    Tukey { q1, q3, low_outliers: count_below(h, q1 - 1.5 * iqr), high_outliers: count_above(h, q3 + 1.5 * iqr) }
}

/// Summarises `h`, dividing every value by `scale` (e.g. 1e6 to report nanoseconds as ms).
pub fn summarize(h: &Histogram<u64>, k: f64, scale: f64) -> DistSummary {
    let q = |p: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(p) as f64 / scale
        }
    };
    let sr = spike_rate(h, k);
    let rsr = robust_spike_rate(h, k);
    let t = tukey(h);
    let scaled = |s: SpikeRate| SpikeRate { threshold: s.threshold / scale, ..s };
    DistSummary {
        count: h.len(),
        mean: if h.is_empty() { 0.0 } else { h.mean() / scale },
        stddev: if h.is_empty() { 0.0 } else { h.stdev() / scale },
        min: if h.is_empty() { 0.0 } else { h.min() as f64 / scale },
        max: if h.is_empty() { 0.0 } else { h.max() as f64 / scale },
        p50: q(0.5),
        p90: q(0.9),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
        spike_rate: scaled(sr),
        robust_spike_rate: scaled(rsr),
        tukey: Tukey { q1: t.q1 / scale, q3: t.q3 / scale, ..t },
    }
}

/// Lossless text form of a histogram: HdrHistogram V2 encoding in base64.
pub fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut buf = Vec::new();
    hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut buf).expect("serialising to memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Why a stored histogram does not decode.
#[derive(Debug)]
pub enum DecodeError {
    Base64(base64::DecodeError),
    Encoding(hdrhistogram::serialization::DeserializeError),
    /// The counts run past the end of the encoding, or past any value a u64 holds.
    Truncated,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Base64(e) => write!(f, "not base64: {e}"),
            DecodeError::Encoding(e) => write!(f, "not an HdrHistogram V2 encoding: {e}"),
            DecodeError::Truncated => {
                f.write_str("not an HdrHistogram V2 encoding: its counts are cut short or out of range")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The inverse of [`encode`].
pub fn decode(text: &str) -> Result<Histogram<u64>, DecodeError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(DecodeError::Base64)?;
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(DecodeError::Encoding)
}

/// A stored histogram's non-zero buckets, read straight from its encoding: (a value of the
/// bucket, its count), in value order. Building the histogram instead allocates and zeroes its
/// whole counts array (tens of KB for a latency in nanoseconds) only for the merge to walk it
/// again; this is what makes a merge of many shards run at close to the speed of reading them.
/// `None` when the encoding is not benchctl's own (another precision or lowest value, or the
/// compressed form): then [`decode`] reads it.
pub fn sparse(text: &str) -> Result<Option<Vec<(u64, u64)>>, DecodeError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(DecodeError::Base64)?;
    let be32 = |i: usize| bytes.get(i..i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let be64 = |i: usize| bytes.get(i..i + 8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
    // V2: cookie, payload length, normalizing offset, digits, lowest, highest, ratio (f64).
    const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
    let (Some(cookie), Some(len), Some(offset), Some(digits), Some(low), Some(ratio)) =
        (be32(0), be32(4), be32(8), be32(12), be64(16), be64(32))
    else {
        return Ok(None);
    };
    let payload = bytes.get(40..40 + len as usize);
    let usual = cookie == V2_COOKIE && offset == 0 && digits == u32::from(SIGFIGS) && low == 1;
    let (true, Some(payload), 1.0) = (usual, payload, f64::from_bits(ratio)) else {
        return Ok(None);
    };
    // The bucket layout of 3 significant digits from 1: 2,048 sub-buckets, the first half
    // of each bucket after the first shared with the one before.
    const HALF_MAGNITUDE: u32 = 10;
    const HALF: usize = 1 << HALF_MAGNITUDE;
    let value_at = |index: usize| -> u64 {
        let bucket = (index >> HALF_MAGNITUDE) as i64 - 1;
        let sub = (index & (HALF - 1)) + HALF;
        if bucket < 0 {
            (sub - HALF) as u64
        } else {
            (sub as u64) << bucket
        }
    };
    let (mut out, mut index, mut at) = (vec![], 0usize, 0usize);
    while at < payload.len() {
        // LEB128, at most 9 bytes (the ninth carries 8 bits), then zig-zag.
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let Some(&b) = payload.get(at) else {
                return Err(DecodeError::Truncated);
            };
            at += 1;
            if shift == 56 {
                v |= u64::from(b) << 56;
                break;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let n = ((v >> 1) as i64) ^ -((v & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs() as usize);
        } else {
            if n > 0 {
                if index >= 55 << HALF_MAGNITUDE {
                    return Err(DecodeError::Truncated);
                }
                out.push((value_at(index), n as u64));
            }
            index += 1;
        }
    }
    Ok(Some(out))
}

/// Default confidence of the evidence rule (settable per scenario and per expectation).
pub const CONFIDENCE: f64 = 0.99;

/// Samples needed before an upper bound on the `p`-quantile can pass at confidence `c`: the
/// smallest n with p^n <= 1 - c, so that if the true quantile were above the bound, seeing
/// no sample above it would have probability at most 1 - c. At 99 %: p99 needs 459, p95 90,
/// p90 44, p50 7. A failure can need far fewer (6 of 6 samples above a p95 bound is one).
pub fn required_samples_at(p: f64, c: f64) -> u64 {
    ((1.0 - c).ln() / p.ln()).ceil() as u64
}

/// [`required_samples_at`] at the default confidence.
pub fn required_samples(p: f64) -> u64 {
    required_samples_at(p, CONFIDENCE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Rng;

    /// Adding the sparse buckets of stored histograms gives exactly the histogram that
    /// decoding and adding them gives: zeros, small values (the first bucket's lower half),
    /// nanosecond latencies and values near an hour, counts above one.
    #[test]
    fn sparse_buckets_add_up_to_the_decoded_histogram() {
        let mut rng = Rng::new(11);
        let (mut by_decode, mut by_sparse) = (histogram(), histogram());
        for round in 0..20 {
            let mut h = histogram();
            for _ in 0..(50 + round * 300) {
                let x = match rng.next_u64() % 4 {
                    0 => rng.next_u64() % 3000,
                    1 => (2e6 * (0.6 * rng.normal()).exp()) as u64,
                    2 => 3_600_000_000_000 - rng.next_u64() % 1_000_000_000,
                    _ => 0,
                };
                h.record_n(x, 1 + rng.next_u64() % 3).unwrap();
            }
            let text = encode(&h);
            by_decode.add(decode(&text).unwrap()).unwrap();
            for (v, n) in sparse(&text).unwrap().expect("benchctl's own encoding") {
                by_sparse.record_n(v, n).unwrap();
            }
        }
        assert_eq!(by_sparse.len(), by_decode.len());
        let all = |h: &Histogram<u64>| buckets(h).collect::<Vec<_>>();
        assert_eq!(all(&by_sparse), all(&by_decode));
        // Another precision is left to the full decoder; damage is an error, never a panic.
        let mut other = Histogram::<u64>::new(2).unwrap();
        other.record(5).unwrap();
        assert!(sparse(&encode(&other)).unwrap().is_none());
        let text = encode(&by_decode);
        use base64::Engine as _;
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(&text).unwrap();
        bytes.truncate(bytes.len() - 1);
        let cut = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert!(sparse(&cut).is_ok_and(|v| v.is_none()) || sparse(&cut).is_err());
        assert!(sparse("not base64!").is_err());
    }

    #[test]
    fn percentiles_match_exact_within_precision() {
        let mut rng = Rng::new(3);
        let mut h = histogram();
        let mut xs: Vec<u64> = (0..100_000).map(|_| (1e6 * (0.5 * rng.normal()).exp()) as u64 + 1).collect();
        for &x in &xs {
            h.record(x).unwrap();
        }
        xs.sort_unstable();
        for p in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let exact = xs[((p * xs.len() as f64).ceil() as usize).min(xs.len()) - 1] as f64;
            let hist = h.value_at_quantile(p) as f64;
            assert!((hist - exact).abs() / exact <= 1e-3, "p{p}: hist {hist} exact {exact}");
        }
    }

    #[test]
    fn spike_rate_of_a_constructed_sample() {
        // 990 values of 10 and 10 of 1000: mean 19.9, population sigma sqrt(0.99*0.01)*990 = 98.5,
        // so mean + 3 sigma = 315.4 and exactly the 10 large values are spikes (1 %).
        let mut h = histogram();
        h.record_n(10, 990).unwrap();
        h.record_n(1000, 10).unwrap();
        let s = spike_rate(&h, 3.0);
        assert!((s.threshold - (19.9 + 3.0 * (0.99f64 * 0.01).sqrt() * 990.0)).abs() < 0.5, "{s:?}");
        assert_eq!(s.share, 0.01);
        // Robust: median 10, MAD 0, so every value above 10 is a spike.
        assert_eq!(robust_spike_rate(&h, 3.0).share, 0.01);
        let t = tukey(&h);
        assert_eq!((t.q1, t.q3, t.high_outliers, t.low_outliers), (10.0, 10.0, 10, 0));
    }

    #[test]
    fn mad_of_a_known_sample() {
        let mut h = histogram();
        for v in [1, 1, 2, 2, 4, 6, 9] {
            h.record(v).unwrap();
        }
        // median 2; deviations 1 1 0 0 2 4 7 -> median 1
        assert_eq!(mad(&h), 1.0);
    }

    #[test]
    fn encoding_round_trips() {
        let mut h = histogram();
        for v in [1u64, 5, 1000, 123_456_789] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert!(decode("not base64!").is_err());
    }
}
