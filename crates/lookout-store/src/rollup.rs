//! Rollup maths (pure): buckets of count/min/max/sum, their encoding, aggregation, percentiles.

use crate::codec::{self, CodecError, Cursor};

/// One second in milliseconds (every time in the store is Unix ms).
pub const SECOND: i64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE: i64 = 60 * SECOND;
/// One hour in milliseconds.
pub const HOUR: i64 = 60 * MINUTE;
/// One day in milliseconds.
pub const DAY: i64 = 24 * HOUR;

/// Floor to a multiple of `w` (also for negative times; saturating at the ends of i64).
#[inline]
pub fn floor_to(t: i64, w: i64) -> i64 {
    t.div_euclid(w).saturating_mul(w)
}
/// Ceil to a multiple of `w`, saturating.
#[inline]
pub fn ceil_to(t: i64, w: i64) -> i64 {
    let f = floor_to(t, w);
    if f == t {
        t
    } else {
        f.saturating_add(w)
    }
}

/// Aggregate of the samples in `[ts, ts + width)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub ts: i64,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

/// A running count/sum/min/max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Agg {
    fn default() -> Self {
        Agg {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Agg {
    #[inline]
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        // NaN never becomes min/max (f64::min/max ignore NaN).
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
    #[inline]
    pub fn add_bucket(&mut self, b: &Bucket) {
        self.count += b.count;
        self.sum += b.sum;
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
    }
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
    fn has_value(&self) -> bool {
        // All-NaN input leaves min/max at their start values.
        self.count > 0 && !(self.min == f64::INFINITY && self.max == f64::NEG_INFINITY)
    }
    pub fn min(&self) -> Option<f64> {
        self.has_value().then_some(self.min)
    }
    pub fn max(&self) -> Option<f64> {
        self.has_value().then_some(self.max)
    }
}

/// Buckets of width `w` from time-sorted samples; only non-empty buckets are returned.
pub fn bucketize(samples: &[(i64, f64)], w: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for &(t, v) in samples {
        let b = floor_to(t, w);
        match out.last_mut() {
            Some(last) if last.ts == b => {
                last.count += 1;
                last.sum += v;
                last.min = last.min.min(v);
                last.max = last.max.max(v);
            }
            _ => out.push(Bucket {
                ts: b,
                count: 1,
                min: v,
                max: v,
                sum: v,
            }),
        }
    }
    out
}

/// Re-buckets finer buckets into width `w` (must be a multiple of theirs).
pub fn coarsen(buckets: &[Bucket], w: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets {
        let t = floor_to(b.ts, w);
        match out.last_mut() {
            Some(last) if last.ts == t => {
                last.count += b.count;
                last.sum += b.sum;
                last.min = last.min.min(b.min);
                last.max = last.max.max(b.max);
            }
            _ => out.push(Bucket { ts: t, ..*b }),
        }
    }
    out
}

/// Merges two sorted bucket lists; on equal `ts` the bucket from `new` replaces the old one
/// (so re-running a rollup is idempotent).
pub fn merge(old: &[Bucket], new: &[Bucket]) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if j >= new.len() || (i < old.len() && old[i].ts < new[j].ts) {
            out.push(old[i]);
            i += 1;
        } else {
            if i < old.len() && old[i].ts == new[j].ts {
                i += 1;
            }
            out.push(new[j]);
            j += 1;
        }
    }
    out
}

pub fn encode_buckets(b: &[Bucket]) -> Vec<u8> {
    let ts: Vec<i64> = b.iter().map(|x| x.ts).collect();
    let t = codec::encode_ticks(&ts);
    let mut out = Vec::with_capacity(t.len() + 16 + b.len() * 4);
    codec::put_uvarint(&mut out, t.len() as u64);
    out.extend_from_slice(&t);
    for col in [
        b.iter().map(|x| x.count as f64).collect::<Vec<_>>(),
        b.iter().map(|x| x.min).collect(),
        b.iter().map(|x| x.max).collect(),
        b.iter().map(|x| x.sum).collect(),
    ] {
        let e = codec::encode_values(&col);
        codec::put_uvarint(&mut out, e.len() as u64);
        out.extend_from_slice(&e);
    }
    out
}

pub fn decode_buckets(data: &[u8]) -> Result<Vec<Bucket>, CodecError> {
    let mut c = Cursor::new(data);
    let tl = c.len_prefix()?;
    let ts = codec::decode_ticks(c.bytes(tl)?)?;
    let n = ts.len();
    let mut cols = Vec::with_capacity(4);
    for _ in 0..4 {
        let l = c.len_prefix()?;
        cols.push(codec::decode_values(c.bytes(l)?, n)?);
    }
    Ok((0..n)
        .map(|i| Bucket {
            ts: ts[i],
            count: cols[0][i] as u64,
            min: cols[1][i],
            max: cols[2][i],
            sum: cols[3][i],
        })
        .collect())
}

/// Nearest-rank percentile (`q` in 0..=1) of `v`, NaNs ignored. Reorders `v`.
pub fn percentile(v: &mut [f64], q: f64) -> Option<f64> {
    let mut n = v.len();
    let mut i = 0;
    while i < n {
        if v[i].is_nan() {
            v.swap(i, n - 1);
            n -= 1;
        } else {
            i += 1;
        }
    }
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    let (_, x, _) = v[..n].select_nth_unstable_by(rank, |a, b| a.total_cmp(b));
    Some(*x)
}

/// Weighted nearest-rank percentile over `(value, weight)` pairs (used when only rollups exist:
/// bucket averages weighted by their counts — an approximation).
pub fn weighted_percentile(v: &mut [(f64, u64)], q: f64) -> Option<f64> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = v.iter().filter(|x| !x.0.is_nan()).map(|x| x.1).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut acc = 0u64;
    for &(x, w) in v.iter().filter(|x| !x.0.is_nan()) {
        acc += w;
        if acc >= rank {
            return Some(x);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn floor_ceil() {
        assert_eq!(floor_to(-1, 60), -60);
        assert_eq!(ceil_to(61, 60), 120);
        assert_eq!(ceil_to(120, 60), 120);
        assert_eq!(ceil_to(i64::MAX, 60), i64::MAX);
        assert_eq!(floor_to(i64::MIN, 7), i64::MIN);
    }

    #[test]
    fn percentile_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(percentile(&mut v, 0.95), Some(95.0));
        assert_eq!(percentile(&mut [3.0], 0.95), Some(3.0));
        assert_eq!(percentile(&mut [], 0.95), None);
        assert_eq!(percentile(&mut [f64::NAN, 1.0, 2.0], 0.5), Some(1.0));
        let mut w = vec![(1.0, 94), (10.0, 6)];
        assert_eq!(weighted_percentile(&mut w, 0.95), Some(10.0));
    }

    #[test]
    fn merge_replaces_same_ts() {
        let b = |ts, s| Bucket {
            ts,
            count: 1,
            min: s,
            max: s,
            sum: s,
        };
        let m = merge(&[b(0, 1.0), b(60, 2.0)], &[b(60, 5.0), b(120, 3.0)]);
        assert_eq!(m, vec![b(0, 1.0), b(60, 5.0), b(120, 3.0)]);
    }

    proptest! {
        #[test]
        fn buckets_agree_with_direct_aggregation(raw in prop::collection::vec((0i64..10_000, -1e9f64..1e9), 0..500)) {
            let mut s = raw.clone();
            s.sort_by_key(|x| x.0);
            s.dedup_by_key(|x| x.0);
            let samples: Vec<(i64, f64)> = s.iter().map(|&(t, v)| (t * 1000 + 17, v)).collect();
            let minute = bucketize(&samples, MINUTE);
            let hour_from_minutes = coarsen(&minute, HOUR);
            let hour_direct = bucketize(&samples, HOUR);
            prop_assert_eq!(hour_from_minutes.len(), hour_direct.len());
            for (a, b) in hour_from_minutes.iter().zip(&hour_direct) {
                prop_assert_eq!((a.ts, a.count, a.min, a.max), (b.ts, b.count, b.min, b.max));
                prop_assert!((a.sum - b.sum).abs() <= 1e-6 * b.sum.abs().max(1.0));
            }
            let total: u64 = minute.iter().map(|b| b.count).sum();
            prop_assert_eq!(total as usize, samples.len());
            let d = decode_buckets(&encode_buckets(&minute)).unwrap();
            prop_assert_eq!(d, minute);
        }
    }
}
