//! Turning two readings of a monotonically increasing kernel counter into a per-second rate.
//!
//! Kernel counters are not as monotonic as they look: 32-bit counters wrap, interfaces and
//! devices vanish and come back with fresh counters, and a CPU taken offline and back restarts
//! its times. A wrong guess about a wrap produces an absurd spike that poisons averages for a
//! week, so anything that goes backwards is treated as a reset and reported as no progress.

use std::time::Instant;

/// Progress of a counter between two readings; a counter that went backwards was reset, so
/// its progress for this interval is unknown and counted as 0.
#[inline]
pub fn counter_delta(prev: u64, cur: u64) -> u64 {
    cur.saturating_sub(prev)
}

/// Counter progress per second. Always finite and ≥ 0: a non-positive, NaN or infinite interval
/// (clock not advanced, samples out of order) and a reset counter both give 0, because an
/// invented figure is worse than a missing one for a time series.
#[inline]
pub fn per_second(prev: u64, cur: u64, elapsed_secs: f64) -> f64 {
    if !elapsed_secs.is_finite() || elapsed_secs <= 0.0 {
        return 0.0;
    }
    let rate = counter_delta(prev, cur) as f64 / elapsed_secs;
    if rate.is_finite() {
        rate
    } else {
        0.0
    }
}

/// Seconds between two instants, 0 when `now` is not after `prev` (callers may pass any
/// `Instant`, including one older than the last sample).
#[inline]
pub fn elapsed_secs(prev: Instant, now: Instant) -> f64 {
    now.checked_duration_since(prev)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn plain_rate() {
        assert_eq!(per_second(100, 300, 2.0), 100.0);
        assert_eq!(per_second(5, 5, 1.0), 0.0);
    }

    #[test]
    fn reset_counter_gives_zero() {
        assert_eq!(per_second(1_000, 10, 1.0), 0.0);
        assert_eq!(counter_delta(u64::MAX, 0), 0);
    }

    #[test]
    fn bad_interval_gives_zero() {
        assert_eq!(per_second(0, 100, 0.0), 0.0);
        assert_eq!(per_second(0, 100, -1.0), 0.0);
        assert_eq!(per_second(0, 100, f64::NAN), 0.0);
        assert_eq!(per_second(0, 100, f64::INFINITY), 0.0);
        assert_eq!(per_second(0, u64::MAX, f64::MIN_POSITIVE), 0.0);
    }

    #[test]
    fn elapsed_never_negative() {
        let a = Instant::now();
        let b = a + Duration::from_millis(1500);
        assert_eq!(elapsed_secs(a, b), 1.5);
        assert_eq!(elapsed_secs(b, a), 0.0);
        assert_eq!(elapsed_secs(a, a), 0.0);
    }

    proptest! {
        #[test]
        fn rate_is_finite_and_non_negative(prev: u64, cur: u64, elapsed in proptest::num::f64::ANY) {
            let r = per_second(prev, cur, elapsed);
            prop_assert!(r.is_finite());
            prop_assert!(r >= 0.0);
            if cur < prev {
                prop_assert_eq!(r, 0.0);
            }
        }

        #[test]
        fn rate_matches_delta_over_time(prev in 0u64..1 << 40, step in 0u64..1 << 40, ms in 1u64..100_000) {
            let secs = ms as f64 / 1000.0;
            let r = per_second(prev, prev + step, secs);
            let expected = step as f64 / secs;
            prop_assert!((r - expected).abs() <= expected * 1e-12);
        }
    }
}
