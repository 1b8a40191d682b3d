//! The engine's every branch, on tokio's paused clock: fully deterministic, exact timings.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookout_hedge::{
    hedge, AdaptivePolicy, AttemptOutcome, FireReason, HedgeCounters, HedgeError, HedgeOutcome,
    HedgePolicy, HedgeReport, Hedger, Observer, OutcomeKind,
};
use proptest::prelude::*;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One scripted attempt: sleeps `after`, then returns `result`.
#[derive(Clone, Copy, Debug)]
struct Step {
    after: u64,
    ok: bool,
}

const fn ok(after: u64) -> Step {
    Step { after, ok: true }
}
const fn err(after: u64) -> Step {
    Step { after, ok: false }
}

/// Records attempts whose future was dropped before it finished, and when.
#[derive(Default, Clone)]
struct DropLog(Arc<Mutex<Vec<(usize, Duration)>>>);

struct Guard {
    n: usize,
    t0: Instant,
    done: bool,
    log: DropLog,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut l) = self.log.0.lock() {
                l.push((self.n, self.t0.elapsed()));
            }
        }
    }
}

impl DropLog {
    fn dropped(&self) -> Vec<(usize, Duration)> {
        let mut v = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        v.sort();
        v
    }
}

/// Attempt `n` follows `script[n - 1]`; the value is `n * 1000 + after`.
fn scripted(
    script: &[Step],
    log: &DropLog,
    t0: Instant,
) -> impl FnMut(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, String>>>>
{
    let script = script.to_vec();
    let log = log.clone();
    move |n| {
        let step = script[n - 1];
        let log = log.clone();
        Box::pin(async move {
            let mut g = Guard {
                n,
                t0,
                done: false,
                log,
            };
            tokio::time::sleep(ms(step.after)).await;
            g.done = true;
            if step.ok {
                Ok(n as u64 * 1000 + step.after)
            } else {
                Err(format!("attempt {n} failed"))
            }
        })
    }
}

async fn run(
    policy: &HedgePolicy,
    deadline: Option<u64>,
    script: &[Step],
) -> (HedgeReport<u64>, DropLog) {
    let log = DropLog::default();
    let t0 = Instant::now();
    let r = hedge(policy, deadline.map(ms), scripted(script, &log, t0)).await;
    (r, log)
}

fn outcomes(r: &HedgeReport<u64>) -> Vec<&'static str> {
    r.attempts.iter().map(|a| a.outcome.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn first_succeeds_early() {
    let (r, log) = run(
        &HedgePolicy::default(),
        Some(1000),
        &[ok(120), ok(1), ok(1)],
    )
    .await;
    assert_eq!(
        r.outcome,
        HedgeOutcome::Success {
            value: 1120,
            winner: 1
        }
    );
    assert_eq!(r.elapsed, ms(120));
    assert_eq!(r.attempts_fired(), 1, "no hedge before the delay");
    assert_eq!(r.attempts[0].latency, ms(120));
    assert!(log.dropped().is_empty());
}

#[tokio::test(start_paused = true)]
async fn first_slow_and_a_hedge_wins_losers_cancelled() {
    let (r, log) = run(&HedgePolicy::default(), None, &[ok(1000), ok(150), ok(200)]).await;
    assert_eq!(
        r.outcome,
        HedgeOutcome::Success {
            value: 2150,
            winner: 2
        }
    );
    assert_eq!(r.elapsed, ms(450));
    assert_eq!(outcomes(&r), ["cancelled", "won", "cancelled"]);
    assert_eq!(r.attempts[1].started_at, ms(300));
    assert_eq!(r.attempts[1].reason, FireReason::Delay);
    assert_eq!(r.attempts[2].reason, FireReason::Delay);
    assert_eq!(r.attempts[0].latency, ms(450));
    assert_eq!(r.attempts[2].latency, ms(150));
    // The losers' futures were dropped at the moment the winner arrived.
    assert_eq!(log.dropped(), [(1, ms(450)), (3, ms(450))]);
    assert_eq!(r.cancelled(), 2);
    assert_eq!(r.hedges_fired(), 2);
}

#[tokio::test(start_paused = true)]
async fn success_exactly_at_the_delay_fires_no_hedge() {
    let (r, _) = run(&HedgePolicy::default(), None, &[ok(300), ok(1), ok(1)]).await;
    assert_eq!(r.winner(), Some(1));
    assert_eq!(r.attempts_fired(), 1);
}

#[tokio::test(start_paused = true)]
async fn first_fails_fast_fires_hedges_at_once() {
    let (r, _) = run(
        &HedgePolicy::default(),
        Some(1000),
        &[err(50), ok(100), ok(120)],
    )
    .await;
    assert_eq!(
        r.outcome,
        HedgeOutcome::Success {
            value: 2100,
            winner: 2
        }
    );
    assert_eq!(r.elapsed, ms(150));
    assert_eq!(r.attempts[1].started_at, ms(50));
    assert_eq!(r.attempts[1].reason, FireReason::EarlyFailure);
    assert_eq!(outcomes(&r), ["failed", "won", "cancelled"]);
    assert_eq!(
        r.attempts[0].outcome,
        AttemptOutcome::Failed("attempt 1 failed".into())
    );
}

#[tokio::test(start_paused = true)]
async fn returns_first_success_not_first_completion() {
    let (r, _) = run(&HedgePolicy::default(), None, &[ok(1000), err(10), ok(500)]).await;
    assert_eq!(r.winner(), Some(3));
    assert_eq!(r.elapsed, ms(800));
    assert_eq!(outcomes(&r), ["cancelled", "failed", "won"]);
}

#[tokio::test(start_paused = true)]
async fn all_fail() {
    let (r, log) = run(
        &HedgePolicy::default(),
        Some(5000),
        &[err(50), err(60), err(70)],
    )
    .await;
    assert_eq!(r.outcome, HedgeOutcome::AllFailed);
    assert_eq!(
        r.elapsed,
        ms(120),
        "answers when the last one fails, not at the deadline"
    );
    assert_eq!(outcomes(&r), ["failed", "failed", "failed"]);
    assert!(log.dropped().is_empty());
    match r.into_result() {
        Err(HedgeError::AllFailed { attempts: 3, last }) => assert_eq!(last, "attempt 3 failed"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_below_the_delay_fires_no_hedge() {
    let (r, log) = run(
        &HedgePolicy::default(),
        Some(200),
        &[ok(1000), ok(1), ok(1)],
    )
    .await;
    assert_eq!(r.outcome, HedgeOutcome::DeadlineExceeded);
    assert_eq!(r.elapsed, ms(200));
    assert_eq!(r.attempts_fired(), 1);
    assert_eq!(log.dropped(), [(1, ms(200))]);
    assert!(matches!(
        r.into_result(),
        Err(HedgeError::DeadlineExceeded { attempts: 1, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn timeout_reached_mid_flight_cancels_everything() {
    let (r, log) = run(
        &HedgePolicy::default(),
        Some(500),
        &[ok(1000), ok(400), err(400)],
    )
    .await;
    assert_eq!(r.outcome, HedgeOutcome::DeadlineExceeded);
    assert_eq!(r.elapsed, ms(500), "deadline counts the 300 ms phase");
    assert_eq!(outcomes(&r), ["cancelled", "cancelled", "cancelled"]);
    assert_eq!(log.dropped(), [(1, ms(500)), (2, ms(500)), (3, ms(500))]);
}

#[tokio::test(start_paused = true)]
async fn deadline_after_failures_is_still_a_deadline() {
    // attempt 1 fails, hedges are in flight when the deadline passes
    let (r, _) = run(
        &HedgePolicy::default(),
        Some(250),
        &[err(100), ok(400), ok(400)],
    )
    .await;
    assert_eq!(r.outcome, HedgeOutcome::DeadlineExceeded);
    assert_eq!(r.elapsed, ms(250));
    assert_eq!(outcomes(&r), ["failed", "cancelled", "cancelled"]);
}

#[tokio::test(start_paused = true)]
async fn no_deadline_waits_for_the_first_success() {
    let (r, _) = run(
        &HedgePolicy::default(),
        None,
        &[ok(9000), err(5000), ok(7000)],
    )
    .await;
    assert_eq!(r.winner(), Some(3));
    assert_eq!(r.elapsed, ms(7300));
}

#[tokio::test(start_paused = true)]
async fn zero_deadline_fires_nothing() {
    let (r, _) = run(&HedgePolicy::default(), Some(0), &[ok(1), ok(1), ok(1)]).await;
    assert_eq!(r.outcome, HedgeOutcome::DeadlineExceeded);
    assert_eq!(r.attempts_fired(), 0);
}

#[tokio::test(start_paused = true)]
async fn per_attempt_timeout_counts_as_failure_and_fires_hedges() {
    let p = HedgePolicy {
        per_attempt_timeout: Some(ms(100)),
        ..Default::default()
    };
    let (r, log) = run(&p, None, &[ok(1000), ok(50), ok(500)]).await;
    assert_eq!(r.winner(), Some(2));
    assert_eq!(r.elapsed, ms(150));
    assert_eq!(r.attempts[0].outcome, AttemptOutcome::TimedOut);
    assert_eq!(r.attempts[0].latency, ms(100));
    assert_eq!(r.attempts[1].reason, FireReason::EarlyFailure);
    // the timed-out attempt was dropped by its timeout, attempt 3 by the win
    assert_eq!(log.dropped(), [(1, ms(100)), (3, ms(150))]);
}

#[tokio::test(start_paused = true)]
async fn extra_zero_is_a_single_call() {
    let p = HedgePolicy {
        extra: 0,
        ..Default::default()
    };
    let (r, _) = run(&p, None, &[err(700)]).await;
    assert_eq!(r.outcome, HedgeOutcome::AllFailed);
    assert_eq!(r.attempts_fired(), 1);
}

#[tokio::test(start_paused = true)]
async fn zero_delay_fires_all_at_once() {
    let p = HedgePolicy {
        delay: Duration::ZERO,
        ..Default::default()
    };
    let (r, _) = run(&p, None, &[ok(300), ok(200), ok(100)]).await;
    assert_eq!(r.winner(), Some(3));
    assert_eq!(r.elapsed, ms(100));
    assert!(r.attempts.iter().all(|a| a.started_at == Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn observer_counts_everything() {
    let counters = Arc::new(HedgeCounters::default());
    let h = Hedger::new(HedgePolicy::default())
        .expect("valid")
        .with_observer(counters.clone() as Arc<dyn Observer>);
    let log = DropLog::default();
    let t0 = Instant::now();
    let r = h
        .run(None, scripted(&[ok(1000), ok(150), err(100)], &log, t0))
        .await;
    assert_eq!(r.winner(), Some(2));
    let r = h
        .run(Some(ms(100)), scripted(&[ok(1000), ok(1), ok(1)], &log, t0))
        .await;
    assert_eq!(r.kind(), OutcomeKind::DeadlineExceeded);
    let r = h
        .run(None, scripted(&[err(1), err(1), err(1)], &log, t0))
        .await;
    assert_eq!(r.kind(), OutcomeKind::AllFailed);
    let s = counters.snapshot();
    assert_eq!(
        (
            s.calls_success,
            s.calls_deadline_exceeded,
            s.calls_all_failed
        ),
        (1, 1, 1)
    );
    assert_eq!(s.attempts_fired, 3 + 1 + 3);
    assert_eq!(s.hedges_fired, 2 + 2);
    assert_eq!(s.cancelled, 1 + 1);
    assert_eq!(s.attempts_failed, 1 + 3);
    assert_eq!(s.wins_by_attempt[1], 1);
    assert_eq!(s.wins_by_attempt.iter().sum::<u64>(), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_caps_extra_attempts() {
    let p = HedgePolicy {
        adaptive: Some(AdaptivePolicy {
            budget_ratio: 0.0,
            budget_burst: 1.0,
            ..Default::default()
        }),
        ..Default::default()
    };
    let h = Hedger::new(p).expect("valid");
    let log = DropLog::default();
    let t0 = Instant::now();
    let r = h
        .run(None, scripted(&[ok(1000), ok(100), ok(100)], &log, t0))
        .await;
    assert_eq!(r.attempts_fired(), 2, "one token: one hedge");
    assert_eq!(r.hedges_suppressed, 1);
    assert_eq!(r.winner(), Some(2));
    let r = h
        .run(None, scripted(&[ok(1000), ok(100), ok(100)], &log, t0))
        .await;
    assert_eq!(r.attempts_fired(), 1, "budget empty: no hedge");
    assert_eq!(r.hedges_suppressed, 2);
    assert_eq!(r.winner(), Some(1));
    // an empty budget also stops failure-triggered extras (no amplification of an outage)
    let r = h
        .run(None, scripted(&[err(10), ok(1), ok(1)], &log, t0))
        .await;
    assert_eq!(r.kind(), OutcomeKind::AllFailed);
    assert_eq!(h.budget_tokens(), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn adaptive_delay_follows_the_percentile() {
    let p = HedgePolicy {
        adaptive: Some(AdaptivePolicy {
            percentile: 0.9,
            window: 20,
            min_samples: 10,
            min_delay: ms(20),
            max_delay: ms(1000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let h = Hedger::new(p).expect("valid");
    let log = DropLog::default();
    let t0 = Instant::now();
    assert_eq!(
        h.current_delay(),
        ms(300),
        "static delay until enough samples"
    );
    for i in 0..10u64 {
        let r = h
            .run(None, scripted(&[ok(50 + i), ok(1), ok(1)], &log, t0))
            .await;
        assert_eq!(r.delay, ms(300));
    }
    // nearest-rank p90 of the ten samples 50..=59 is the 9th: 58
    assert_eq!(h.current_delay(), ms(58));
    let r = h
        .run(None, scripted(&[ok(200), ok(10), ok(500)], &log, t0))
        .await;
    assert_eq!(r.delay, ms(58));
    assert_eq!(r.winner(), Some(2), "hedged at 58 ms, not 300 ms");
    assert_eq!(r.elapsed, ms(68));
    // clamps: fast samples never push the delay under min_delay
    for _ in 0..40 {
        h.run(None, scripted(&[ok(1), ok(1), ok(1)], &log, t0))
            .await;
    }
    assert_eq!(h.current_delay(), ms(20));
}

#[tokio::test(start_paused = true)]
async fn run_until_counts_time_before_the_call() {
    let h = Hedger::new(HedgePolicy::default()).expect("valid");
    let log = DropLog::default();
    let arrival = Instant::now();
    tokio::time::sleep(ms(100)).await; // e.g. queueing before the handler ran
    let r = h
        .run_until(
            Some(arrival + ms(250)),
            scripted(&[ok(1000), ok(1), ok(1)], &log, arrival),
        )
        .await;
    assert_eq!(r.kind(), OutcomeKind::DeadlineExceeded);
    assert_eq!(r.elapsed, ms(150), "answered at arrival + 250 ms");
    assert_eq!(arrival.elapsed(), ms(250));
    assert_eq!(r.attempts_fired(), 1);
    // already past: nothing is fired
    let r = h
        .run_until(Some(arrival), scripted(&[ok(1)], &log, arrival))
        .await;
    assert_eq!(r.kind(), OutcomeKind::DeadlineExceeded);
    assert_eq!(r.attempts_fired(), 0);
}

#[test]
fn invalid_policy_is_rejected() {
    let p = HedgePolicy {
        extra: 1000,
        ..Default::default()
    };
    assert!(matches!(Hedger::new(p), Err(HedgeError::InvalidPolicy(_))));
}

#[test]
fn run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let h = Hedger::new(HedgePolicy::default()).expect("valid");
    let fut = h.run(Some(ms(10)), |n| async move { Ok::<_, String>(n) });
    assert_send(&fut);
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Hedger>();
}

// ---- model check: the engine against a straightforward timeline model ----
//
// Times are chosen in residue classes mod 8 so no two events that the engine orders by
// priority can coincide: delay ≡ 0, latencies ≡ 1, per-attempt limit ≡ 3, deadline ≡ 7.

#[derive(Debug, Clone)]
struct Case {
    delay: u64,
    extra: usize,
    steps: Vec<Step>,
    limit: Option<u64>,
    deadline: Option<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0u64..100,
        0usize..=2,
        proptest::collection::vec((0u64..150, proptest::bool::weighted(0.7)), 3),
        proptest::option::of(0u64..150),
        proptest::option::of(0u64..200),
    )
        .prop_map(|(d, extra, steps, limit, deadline)| Case {
            delay: d * 8,
            extra,
            steps: steps
                .into_iter()
                .map(|(l, ok)| Step {
                    after: l * 8 + 1,
                    ok,
                })
                .collect(),
            limit: limit.map(|t| t * 8 + 3),
            deadline: deadline.map(|t| t * 8 + 7),
        })
}

/// Expected (kind, answer time, attempts fired, possible winners).
fn model(c: &Case) -> (OutcomeKind, u64, usize, Vec<usize>) {
    let eff = |i: usize, start: u64| -> (u64, bool) {
        let s = c.steps[i];
        match c.limit {
            Some(t) if s.after > t => (start + t, false),
            _ => (start + s.after, s.ok),
        }
    };
    let (c1, ok1) = eff(0, 0);
    let hedge_at = if c.extra == 0 || (ok1 && c1 < c.delay) {
        None
    } else if !ok1 && c1 < c.delay {
        Some(c1)
    } else {
        Some(c.delay)
    };
    let hedge_at = hedge_at.filter(|h| c.deadline.is_none_or(|d| *h < d));
    let mut done = vec![(c1, ok1)];
    if let Some(h) = hedge_at {
        for i in 1..=c.extra {
            done.push(eff(i, h));
        }
    }
    let fired = done.len();
    let success = done.iter().filter(|d| d.1).map(|d| d.0).min();
    let last_fail = done.iter().map(|d| d.0).max().unwrap_or(0);
    match (success, c.deadline) {
        (Some(s), d) if d.is_none_or(|d| s < d) => {
            let winners = (0..fired)
                .filter(|&i| done[i] == (s, true))
                .map(|i| i + 1)
                .collect();
            (OutcomeKind::Success, s, fired, winners)
        }
        (None, None) => (OutcomeKind::AllFailed, last_fail, fired, vec![]),
        (None, Some(d)) if last_fail < d => (OutcomeKind::AllFailed, last_fail, fired, vec![]),
        (_, Some(d)) => (OutcomeKind::DeadlineExceeded, d, fired, vec![]),
        (Some(_), None) => unreachable!("covered by the first arm"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(c in case()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let policy = HedgePolicy {
            delay: ms(c.delay),
            extra: c.extra,
            per_attempt_timeout: c.limit.map(ms),
            adaptive: None,
        };
        let (r, log) = rt.block_on(run(&policy, c.deadline, &c.steps));
        let (kind, at, fired, winners) = model(&c);
        prop_assert_eq!(r.kind(), kind);
        prop_assert_eq!(r.elapsed, ms(at));
        prop_assert_eq!(r.attempts_fired(), fired);
        if let Some(d) = c.deadline { prop_assert!(r.elapsed <= ms(d)); }
        if let Some(w) = r.winner() { prop_assert!(winners.contains(&w), "winner {} not in {:?}", w, winners); }
        // every attempt still running at the end was dropped then, and reported cancelled
        let cancelled: Vec<usize> = r.attempts.iter()
            .filter(|a| a.outcome == AttemptOutcome::Cancelled).map(|a| a.number).collect();
        let timed_out: Vec<usize> = r.attempts.iter()
            .filter(|a| a.outcome == AttemptOutcome::TimedOut).map(|a| a.number).collect();
        let dropped_at_end: Vec<usize> = log.dropped().into_iter()
            .filter(|(n, t)| *t == r.elapsed && !timed_out.contains(n)).map(|(n, _)| n).collect();
        prop_assert_eq!(cancelled, dropped_at_end);
        // no attempt fired before the delay unless something failed first
        for a in &r.attempts[1..] {
            prop_assert!(a.started_at >= ms(c.delay) || a.reason == FireReason::EarlyFailure);
        }
    }
}
