//! Window planning (pure): which tier answers which part of a query, retention cut-offs,
//! automatic steps.
//!
//! Tiers: raw samples (chunks of [`RAW_WINDOW`]), 1-minute buckets (one row per series per
//! [`MINUTE_ROW`]) and 1-hour buckets (one row per series per [`HOUR_ROW`]). Rollups are
//! computed a day at a time once the raw data of that day is sealed, so they exist for
//! `t < rollups_until`; raw data exists for `t >= raw_from` (retention).
//!
//! A query `[from, to)` is answered by the coarsest tier whose buckets lie wholly inside it:
//! whole hours from the hour tier, the whole minutes left at its edges from the minute tier,
//! the sub-minute edges and everything newer than `rollups_until` from raw samples. Edges older
//! than raw retention are answered by the enclosing 1-minute (or 1-hour) bucket.

use crate::rollup::{ceil_to, floor_to, DAY, HOUR, MINUTE, SECOND};

/// Width of a raw chunk (and of a ticks row).
pub const RAW_WINDOW: i64 = 15 * MINUTE;
/// Span of one 1-minute rollup row (1440 buckets).
pub const MINUTE_ROW: i64 = DAY;
/// Span of one 1-hour rollup row (720 buckets).
pub const HOUR_ROW: i64 = 30 * DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Raw = 0,
    Minute = 1,
    Hour = 2,
}

impl Tier {
    pub fn row_span(self) -> i64 {
        match self {
            Tier::Raw => RAW_WINDOW,
            Tier::Minute => MINUTE_ROW,
            Tier::Hour => HOUR_ROW,
        }
    }
}

/// A half-open part of a query and the tier that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    pub tier: Tier,
    pub from: i64,
    pub to: i64,
}

/// What the store holds, for planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avail {
    /// Rollups (both tiers) exist for `t < rollups_until`.
    pub rollups_until: i64,
    /// Raw samples were deleted before this time.
    pub raw_from: i64,
    pub minute_from: i64,
    pub hour_from: i64,
}

/// Plans `[from, to)`. `step`: when the result is folded into buckets of `step` ms, a tier is
/// only used where its buckets nest in the step buckets (step a multiple of the tier's width).
pub fn plan(from: i64, to: i64, a: Avail, step: Option<i64>) -> Vec<Seg> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let allow_h = step.is_none_or(|s| s % HOUR == 0);
    let allow_m = step.is_none_or(|s| s % MINUTE == 0);
    let r_end = to.min(a.rollups_until);
    if allow_h {
        let h0 = ceil_to(from.max(a.hour_from), HOUR);
        let h1 = floor_to(r_end, HOUR);
        if h0 < h1 {
            minute_or_raw(&mut out, from, h0, a, allow_m);
            out.push(Seg {
                tier: Tier::Hour,
                from: h0,
                to: h1,
            });
            minute_or_raw(&mut out, h1, to, a, allow_m);
            return out;
        }
    }
    minute_or_raw(&mut out, from, to, a, allow_m);
    out
}

fn minute_or_raw(out: &mut Vec<Seg>, from: i64, to: i64, a: Avail, allow_m: bool) {
    if from >= to {
        return;
    }
    if allow_m {
        let m0 = ceil_to(from.max(a.minute_from), MINUTE);
        let m1 = floor_to(to.min(a.rollups_until), MINUTE);
        if m0 < m1 {
            raw(out, from, m0, a);
            out.push(Seg {
                tier: Tier::Minute,
                from: m0,
                to: m1,
            });
            raw(out, m1, to, a);
            return;
        }
    }
    raw(out, from, to, a);
}

fn raw(out: &mut Vec<Seg>, from: i64, to: i64, a: Avail) {
    if from >= to {
        return;
    }
    if from < a.raw_from {
        // Older than raw retention: the enclosing rollup bucket stands in for the samples.
        let old_end = to.min(a.raw_from).min(a.rollups_until);
        if old_end > a.minute_from && old_end > from {
            let s = floor_to(from.max(a.minute_from), MINUTE);
            out.push(Seg {
                tier: Tier::Minute,
                from: s,
                to: ceil_to(old_end, MINUTE),
            });
        } else if old_end > a.hour_from && old_end > from {
            let s = floor_to(from.max(a.hour_from), HOUR);
            out.push(Seg {
                tier: Tier::Hour,
                from: s,
                to: ceil_to(old_end, HOUR),
            });
        }
        let rest = from.max(a.raw_from);
        if rest < to {
            out.push(Seg {
                tier: Tier::Raw,
                from: rest,
                to,
            });
        }
        return;
    }
    out.push(Seg {
        tier: Tier::Raw,
        from,
        to,
    });
}

/// Retention cut-offs relative to `now`: rows of a tier whose `start_ts` is below the cut-off
/// lie wholly before `now − retention` and may be deleted. Raw data is never cut past
/// `rollups_until` (it has not been rolled up yet).
pub fn cutoffs(now: i64, raw: i64, minute: i64, hour: i64, rollups_until: i64) -> [i64; 3] {
    [
        floor_to(now.saturating_sub(raw), RAW_WINDOW).min(floor_to(rollups_until, RAW_WINDOW)),
        floor_to(now.saturating_sub(minute), MINUTE_ROW),
        floor_to(now.saturating_sub(hour), HOUR_ROW),
    ]
}

const NICE_STEPS: [i64; 18] = [
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
];

/// The smallest "nice" step that gives at most `max_points` buckets over `span` ms.
pub fn auto_step(span: i64, max_points: i64) -> i64 {
    let want = span.max(1).div_euclid(max_points.max(1)) + 1;
    NICE_STEPS
        .iter()
        .copied()
        .find(|&s| s >= want)
        .unwrap_or_else(|| ceil_to(want, DAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FAR: i64 = i64::MIN / 4;

    fn avail(r: i64) -> Avail {
        Avail {
            rollups_until: r,
            raw_from: FAR,
            minute_from: FAR,
            hour_from: FAR,
        }
    }

    #[test]
    fn week_average_uses_hours_then_minutes_then_raw() {
        let now = 100 * DAY + 5 * HOUR + 7 * MINUTE + 13_500;
        let r = floor_to(now, DAY);
        let p = plan(now - 7 * DAY, now + 1, avail(r), None);
        assert_eq!(
            p[0],
            Seg {
                tier: Tier::Raw,
                from: now - 7 * DAY,
                to: ceil_to(now - 7 * DAY, MINUTE)
            }
        );
        assert_eq!(p[1].tier, Tier::Minute);
        assert_eq!(
            p[2],
            Seg {
                tier: Tier::Hour,
                from: ceil_to(now - 7 * DAY, HOUR),
                to: r
            }
        );
        assert_eq!(
            p[3],
            Seg {
                tier: Tier::Raw,
                from: r,
                to: now + 1
            }
        );
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn steps_restrict_tiers() {
        let p = plan(0, 10 * DAY, avail(5 * DAY), Some(30 * SECOND));
        assert_eq!(
            p,
            vec![Seg {
                tier: Tier::Raw,
                from: 0,
                to: 10 * DAY
            }]
        );
        let p = plan(0, 10 * DAY, avail(5 * DAY), Some(5 * MINUTE));
        assert_eq!(
            p,
            vec![
                Seg {
                    tier: Tier::Minute,
                    from: 0,
                    to: 5 * DAY
                },
                Seg {
                    tier: Tier::Raw,
                    from: 5 * DAY,
                    to: 10 * DAY
                }
            ]
        );
    }

    #[test]
    fn old_edges_fall_back_to_buckets() {
        let a = Avail {
            rollups_until: 200 * DAY,
            raw_from: 190 * DAY,
            minute_from: 100 * DAY,
            hour_from: 0,
        };
        let p = plan(150 * DAY + 30_500, 160 * DAY, a, None);
        assert_eq!(
            p[0],
            Seg {
                tier: Tier::Minute,
                from: 150 * DAY,
                to: 150 * DAY + MINUTE
            }
        );
        let p = plan(50 * DAY + 30_500, 60 * DAY, a, None);
        assert_eq!(
            p[0],
            Seg {
                tier: Tier::Hour,
                from: 50 * DAY,
                to: 50 * DAY + HOUR
            }
        );
    }

    #[test]
    fn cutoffs_and_steps() {
        let c = cutoffs(10 * DAY + 5, 7 * DAY, 90 * DAY, 730 * DAY, 10 * DAY);
        assert_eq!(c[0], 3 * DAY);
        let c = cutoffs(10 * DAY + 5, 7 * DAY, 90 * DAY, 730 * DAY, 2 * DAY);
        assert_eq!(c[0], 2 * DAY, "raw data not yet rolled up is kept");
        assert_eq!(auto_step(1000, 1000), SECOND);
        assert_eq!(auto_step(7 * DAY, 1000), 15 * MINUTE);
        assert_eq!(auto_step(3650 * DAY, 100), 37 * DAY);
    }

    proptest! {
        /// Segments are ordered, disjoint, inside the window (except bucket expansions of
        /// data older than retention), and cover every instant of it that holds data.
        #[test]
        fn plan_covers_window_once(from in 0i64..40 * DAY, len in 1i64..40 * DAY, r in 0i64..80 * DAY,
                                   raw_back in 0i64..30 * DAY, step_k in 0usize..4) {
            let to = from + len;
            let r = floor_to(r, DAY);
            let raw_from = floor_to(to - raw_back, RAW_WINDOW).min(r).max(0);
            let a = Avail { rollups_until: r, raw_from, minute_from: 0, hour_from: 0 };
            let step = [None, Some(SECOND), Some(MINUTE), Some(HOUR)][step_k];
            let p = plan(from, to, a, step);
            let mut t = i64::MIN;
            for s in &p {
                prop_assert!(s.from < s.to);
                prop_assert!(s.from >= t, "overlap {:?}", p);
                if s.tier != Tier::Raw { prop_assert!(s.to <= r.max(ceil_to(raw_from, MINUTE)), "{:?}", p); }
                if s.tier == Tier::Raw { prop_assert!(s.from >= raw_from && s.from >= from && s.to <= to); }
                t = s.to;
            }
            // Every minute-aligned instant of the window is covered.
            let mut x = ceil_to(from, MINUTE);
            while x < to {
                prop_assert!(p.iter().any(|s| s.from <= x && x < s.to), "{x} not covered by {:?}", p);
                x += 7 * MINUTE + 13_000;
            }
        }
    }
}
