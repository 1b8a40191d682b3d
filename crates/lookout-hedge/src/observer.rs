//! Metrics hooks. The API crate implements [`Observer`] over its Prometheus registry; this
//! crate only calls it, so it never depends on a metrics library.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::{AttemptOutcome, AttemptRecord, FireReason, OutcomeKind};

/// What a finished call looks like, borrowed from the report (independent of the value type).
#[derive(Debug, Clone, Copy)]
pub struct CallSummary<'a> {
    /// Success, deadline exceeded or all failed.
    pub kind: OutcomeKind,
    /// 1-based number of the winning attempt, if any.
    pub winner: Option<usize>,
    /// Time from the start of the call to its answer.
    pub elapsed: Duration,
    /// The hedge delay used for this call (differs from the policy in adaptive mode).
    pub delay: Duration,
    /// Every attempt fired, in firing order.
    pub attempts: &'a [AttemptRecord],
    /// Extra attempts the budget did not allow.
    pub hedges_suppressed: usize,
}

/// Hooks called by the engine. Keep implementations cheap (atomics, no locks held long):
/// they run on the request path. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// An attempt was just fired (`number` is 1-based; 1 is the primary).
    fn attempt_fired(&self, _number: usize, _reason: FireReason) {}
    /// The call finished; `summary` holds every attempt's outcome and latency.
    fn call_finished(&self, _summary: &CallSummary<'_>) {}
}

/// Observer that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// Number of `wins_by_attempt` slots; wins by later attempts land in the last one.
const WIN_SLOTS: usize = 8;

/// Plain atomic counters implementing [`Observer`]: enough for tests, the benchmark and a
/// simple `/metrics` exporter without pulling in a metrics library.
#[derive(Debug, Default)]
pub struct HedgeCounters {
    calls_success: AtomicU64,
    calls_deadline_exceeded: AtomicU64,
    calls_all_failed: AtomicU64,
    attempts_fired: AtomicU64,
    hedges_fired: AtomicU64,
    hedges_suppressed: AtomicU64,
    attempts_failed: AtomicU64,
    attempts_timed_out: AtomicU64,
    cancelled: AtomicU64,
    wins_by_attempt: [AtomicU64; WIN_SLOTS],
}

/// A point-in-time copy of [`HedgeCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Calls answered with a success.
    pub calls_success: u64,
    /// Calls that hit their deadline.
    pub calls_deadline_exceeded: u64,
    /// Calls whose every attempt failed.
    pub calls_all_failed: u64,
    /// Attempts fired, primaries included.
    pub attempts_fired: u64,
    /// Extra attempts fired (attempt number > 1).
    pub hedges_fired: u64,
    /// Extra attempts denied by the budget.
    pub hedges_suppressed: u64,
    /// Attempts that failed (error or invalid response).
    pub attempts_failed: u64,
    /// Attempts that exceeded the per-attempt limit.
    pub attempts_timed_out: u64,
    /// Attempts dropped in flight (loser of a race, or deadline).
    pub cancelled: u64,
    /// Wins by attempt number: index 0 = attempt 1; the last slot also counts later attempts.
    pub wins_by_attempt: [u64; WIN_SLOTS],
}

impl HedgeCounters {
    /// Copies the current values.
    pub fn snapshot(&self) -> CountersSnapshot {
        let mut wins = [0; WIN_SLOTS];
        for (w, a) in wins.iter_mut().zip(&self.wins_by_attempt) {
            *w = a.load(Relaxed);
        }
        CountersSnapshot {
            calls_success: self.calls_success.load(Relaxed),
            calls_deadline_exceeded: self.calls_deadline_exceeded.load(Relaxed),
            calls_all_failed: self.calls_all_failed.load(Relaxed),
            attempts_fired: self.attempts_fired.load(Relaxed),
            hedges_fired: self.hedges_fired.load(Relaxed),
            hedges_suppressed: self.hedges_suppressed.load(Relaxed),
            attempts_failed: self.attempts_failed.load(Relaxed),
            attempts_timed_out: self.attempts_timed_out.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            wins_by_attempt: wins,
        }
    }
}

impl Observer for HedgeCounters {
    fn attempt_fired(&self, number: usize, _reason: FireReason) {
        self.attempts_fired.fetch_add(1, Relaxed);
        if number > 1 {
            self.hedges_fired.fetch_add(1, Relaxed);
        }
    }

    fn call_finished(&self, s: &CallSummary<'_>) {
        match s.kind {
            OutcomeKind::Success => &self.calls_success,
            OutcomeKind::DeadlineExceeded => &self.calls_deadline_exceeded,
            OutcomeKind::AllFailed => &self.calls_all_failed,
        }
        .fetch_add(1, Relaxed);
        if let Some(w) = s.winner {
            let slot = w.clamp(1, WIN_SLOTS) - 1;
            self.wins_by_attempt[slot].fetch_add(1, Relaxed);
        }
        self.hedges_suppressed
            .fetch_add(s.hedges_suppressed as u64, Relaxed);
        for a in s.attempts {
            match a.outcome {
                AttemptOutcome::Won => {}
                AttemptOutcome::Failed(_) => {
                    self.attempts_failed.fetch_add(1, Relaxed);
                }
                AttemptOutcome::TimedOut => {
                    self.attempts_timed_out.fetch_add(1, Relaxed);
                }
                AttemptOutcome::Cancelled => {
                    self.cancelled.fetch_add(1, Relaxed);
                }
            }
        }
    }
}
