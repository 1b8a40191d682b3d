//! Pure decision logic: when the extra copies are fired. Kept free of clocks and futures so
//! it can be tested exhaustively; the engine calls it every time something happens.

use std::time::Duration;

use crate::FireReason;

/// How many extra attempts to fire *now*.
///
/// - `fired`: attempts fired so far (the primary included);
/// - `planned`: attempts this call may fire in total (`1 + extra`, less any the budget denied);
/// - `elapsed`: time since the call started; `delay`: the hedge delay;
/// - `failure_seen`: some attempt already failed.
///
/// All remaining copies go out together, either once `delay` has passed without a success
/// (the caller only asks while no success exists) or as soon as a failure is seen, because a
/// failure cannot become a success by waiting.
pub fn hedges_due(
    fired: usize,
    planned: usize,
    elapsed: Duration,
    delay: Duration,
    failure_seen: bool,
) -> usize {
    if fired >= planned {
        return 0;
    }
    if failure_seen || elapsed >= delay {
        planned - fired
    } else {
        0
    }
}

/// Why copies fired at `elapsed` were fired: the delay passed, or an early failure.
pub fn fire_reason(elapsed: Duration, delay: Duration) -> FireReason {
    if elapsed >= delay {
        FireReason::Delay
    } else {
        FireReason::EarlyFailure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn branches() {
        // nothing before the delay without a failure
        assert_eq!(hedges_due(1, 3, MS(299), MS(300), false), 0);
        // at the delay: both extra copies
        assert_eq!(hedges_due(1, 3, MS(300), MS(300), false), 2);
        // early failure: both at once
        assert_eq!(hedges_due(1, 3, MS(10), MS(300), true), 2);
        // already fired everything
        assert_eq!(hedges_due(3, 3, MS(900), MS(300), true), 0);
        // hedging disabled
        assert_eq!(hedges_due(1, 1, MS(900), MS(300), true), 0);
        // zero delay = always fire all at once
        assert_eq!(hedges_due(1, 3, MS(0), MS(0), false), 2);
        assert_eq!(fire_reason(MS(10), MS(300)), FireReason::EarlyFailure);
        assert_eq!(fire_reason(MS(300), MS(300)), FireReason::Delay);
    }

    proptest! {
        #[test]
        fn never_exceeds_plan(fired in 0usize..20, planned in 0usize..20, e in 0u64..1000,
                              d in 0u64..1000, f: bool) {
            let n = hedges_due(fired, planned, MS(e), MS(d), f);
            prop_assert!(fired + n <= planned.max(fired));
            // fires only on a trigger, and then everything that is left
            if n > 0 {
                prop_assert!(f || e >= d);
                prop_assert_eq!(fired + n, planned);
            } else {
                prop_assert!(fired >= planned || (!f && e < d));
            }
        }
    }
}
