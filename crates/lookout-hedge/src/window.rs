//! Sliding window of recent latencies and its percentile, for the adaptive hedge delay.

use std::time::Duration;

/// The last `capacity` latency samples, oldest overwritten first. Percentiles are exact over
/// the window (nearest-rank), computed on demand in O(n); the engine caches the result and
/// refreshes it only every few samples, so the cost per call stays small.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    samples: Vec<u64>,
    next: usize,
    capacity: usize,
    scratch: Vec<u64>,
}

impl LatencyWindow {
    /// An empty window keeping at most `capacity` (at least 1) samples.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            samples: Vec::with_capacity(capacity),
            next: 0,
            capacity,
            scratch: Vec::new(),
        }
    }

    /// Adds one sample, evicting the oldest when full.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.samples.len() < self.capacity {
            self.samples.push(us);
        } else {
            self.samples[self.next] = us;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    /// Samples currently held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Nearest-rank percentile `p` in `(0, 1]` of the window; `None` when empty.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        let idx = nearest_rank(p, self.samples.len())?;
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.samples);
        let (_, v, _) = self.scratch.select_nth_unstable(idx);
        Some(Duration::from_micros(*v))
    }
}

/// Zero-based index of the nearest-rank percentile `p` among `n` sorted values:
/// `ceil(p * n) - 1`, clamped into `0..n`. `None` when `n == 0`.
pub fn nearest_rank(p: f64, n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let p = if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
    let rank = (p * n as f64).ceil() as usize;
    Some(rank.clamp(1, n) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentile_of_1_to_100() {
        let mut w = LatencyWindow::new(100);
        assert_eq!(w.percentile(0.5), None);
        for i in 1..=100 {
            w.record(Duration::from_millis(i));
        }
        assert_eq!(w.percentile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(w.percentile(0.95), Some(Duration::from_millis(95)));
        assert_eq!(w.percentile(1.0), Some(Duration::from_millis(100)));
        assert_eq!(w.percentile(0.001), Some(Duration::from_millis(1)));
    }

    #[test]
    fn window_slides() {
        let mut w = LatencyWindow::new(3);
        for ms in [1000, 1000, 1000, 1, 2, 3] {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.percentile(1.0), Some(Duration::from_millis(3)));
    }

    proptest! {
        /// Matches a sort-based reference over exactly the last `cap` samples.
        #[test]
        fn matches_reference(cap in 1usize..64, xs in proptest::collection::vec(0u64..10_000, 1..200),
                             p in 0.001f64..=1.0) {
            let mut w = LatencyWindow::new(cap);
            for &x in &xs { w.record(Duration::from_micros(x)); }
            let mut tail: Vec<u64> = xs[xs.len().saturating_sub(cap)..].to_vec();
            tail.sort_unstable();
            let idx = ((p * tail.len() as f64).ceil() as usize).clamp(1, tail.len()) - 1;
            prop_assert_eq!(w.percentile(p), Some(Duration::from_micros(tail[idx])));
        }
    }
}
