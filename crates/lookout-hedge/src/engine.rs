//! The hedging engine: fires attempts, races them, drops the losers.

use std::fmt::{self, Display};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use crate::decide::{fire_reason, hedges_due};
use crate::observer::{CallSummary, NoopObserver, Observer};
use crate::{AdaptivePolicy, HedgeError, HedgePolicy, LatencyWindow, TokenBucket};

/// Why an attempt was fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FireReason {
    /// The first attempt of the call.
    Primary,
    /// The hedge delay passed without a success.
    Delay,
    /// An attempt failed before the delay passed, so waiting was pointless.
    EarlyFailure,
}

impl FireReason {
    /// Every reason, for metrics that should show zeros before the first call.
    pub const ALL: [Self; 3] = [Self::Primary, Self::Delay, Self::EarlyFailure];

    /// Stable lowercase name for JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Delay => "delay",
            Self::EarlyFailure => "early_failure",
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// It succeeded first; its value is the call's answer.
    Won,
    /// It completed with an error (transport error, bad status, invalid body...).
    Failed(String),
    /// It exceeded [`HedgePolicy::per_attempt_timeout`].
    TimedOut,
    /// It was still in flight when the call ended (another attempt won, or the deadline
    /// passed) and was dropped, which closes its upstream request.
    Cancelled,
}

impl AttemptOutcome {
    /// Stable lowercase name for JSON and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Won => "won",
            Self::Failed(_) => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One attempt of a call, for the native API and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// 1-based attempt number; 1 is the primary.
    pub number: usize,
    /// Why it was fired.
    pub reason: FireReason,
    /// Offset from the start of the call at which it was fired.
    pub started_at: Duration,
    /// How long it ran: until it completed, timed out or was cancelled.
    pub latency: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// The call's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HedgeOutcome<T> {
    /// An attempt succeeded; `winner` is its 1-based number.
    Success {
        /// The winning attempt's value.
        value: T,
        /// 1-based number of the winning attempt.
        winner: usize,
    },
    /// The deadline passed before any attempt succeeded.
    DeadlineExceeded,
    /// Every attempt that could be fired failed, before the deadline.
    AllFailed,
}

/// The kind of a [`HedgeOutcome`] without its value (metric label, HTTP status mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// See [`HedgeOutcome::Success`].
    Success,
    /// See [`HedgeOutcome::DeadlineExceeded`].
    DeadlineExceeded,
    /// See [`HedgeOutcome::AllFailed`].
    AllFailed,
}

impl OutcomeKind {
    /// Every outcome, for metrics that should show zeros before the first call.
    pub const ALL: [Self; 3] = [Self::Success, Self::DeadlineExceeded, Self::AllFailed];

    /// Stable lowercase name for JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::AllFailed => "all_failed",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about one hedged call: the answer and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HedgeReport<T> {
    /// Success (with value and winner), deadline exceeded or all failed.
    pub outcome: HedgeOutcome<T>,
    /// Every attempt fired, in firing order (index `i` is attempt `i + 1`).
    pub attempts: Vec<AttemptRecord>,
    /// Time from the start of the call to its answer.
    pub elapsed: Duration,
    /// The hedge delay used (the policy's, or the adaptive estimate).
    pub delay: Duration,
    /// Extra attempts the budget did not allow (adaptive mode only).
    pub hedges_suppressed: usize,
}

impl<T> HedgeReport<T> {
    /// The outcome without its value.
    pub fn kind(&self) -> OutcomeKind {
        match self.outcome {
            HedgeOutcome::Success { .. } => OutcomeKind::Success,
            HedgeOutcome::DeadlineExceeded => OutcomeKind::DeadlineExceeded,
            HedgeOutcome::AllFailed => OutcomeKind::AllFailed,
        }
    }

    /// 1-based number of the winning attempt.
    pub fn winner(&self) -> Option<usize> {
        match self.outcome {
            HedgeOutcome::Success { winner, .. } => Some(winner),
            _ => None,
        }
    }

    /// Attempts fired, the primary included.
    pub fn attempts_fired(&self) -> usize {
        self.attempts.len()
    }

    /// Extra attempts fired (beyond the primary).
    pub fn hedges_fired(&self) -> usize {
        self.attempts.len().saturating_sub(1)
    }

    /// Attempts dropped while in flight.
    pub fn cancelled(&self) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::Cancelled)
            .count()
    }

    /// A value-free view for [`Observer::call_finished`].
    pub fn summary(&self) -> CallSummary<'_> {
        CallSummary {
            kind: self.kind(),
            winner: self.winner(),
            elapsed: self.elapsed,
            delay: self.delay,
            attempts: &self.attempts,
            hedges_suppressed: self.hedges_suppressed,
        }
    }

    /// The winning value, or the error that tells a deadline from upstream failure.
    pub fn into_result(self) -> Result<T, HedgeError> {
        let attempts = self.attempts.len();
        match self.outcome {
            HedgeOutcome::Success { value, .. } => Ok(value),
            HedgeOutcome::DeadlineExceeded => Err(HedgeError::DeadlineExceeded {
                elapsed: self.elapsed,
                attempts,
            }),
            HedgeOutcome::AllFailed => {
                let last = self
                    .attempts
                    .iter()
                    .rev()
                    .find_map(|a| match &a.outcome {
                        AttemptOutcome::Failed(m) => Some(m.clone()),
                        AttemptOutcome::TimedOut => Some("attempt timed out".to_owned()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "no attempt fired".to_owned());
                Err(HedgeError::AllFailed { attempts, last })
            }
        }
    }
}

/// Makes one hedged call with a fixed policy (no adaptive state, no metrics).
///
/// `attempt(n)` makes attempt number `n` (1-based) and is called at most `1 + policy.extra`
/// times. `deadline` bounds the whole call from now, hedge-delay phase included; `None`
/// waits for the first success (or for every attempt to fail). The adaptive part of the
/// policy is ignored here because it needs state shared between calls: use [`Hedger`].
pub async fn hedge<F, Fut, T, E>(
    policy: &HedgePolicy,
    deadline: Option<Duration>,
    attempt: F,
) -> HedgeReport<T>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let ctx = Ctx {
        policy,
        delay: policy.delay,
        adaptive: None,
        observer: &NoopObserver,
    };
    run_engine(ctx, deadline_from_now(deadline), attempt).await
}

/// `now + d`; a deadline too far away to represent is no deadline.
fn deadline_from_now(d: Option<Duration>) -> Option<Instant> {
    d.and_then(|d| Instant::now().checked_add(d))
}

/// A configured engine shared by all calls (put it in an `Arc` in the app state): the
/// policy, the adaptive state (latency window + budget) when enabled, and the metrics hook.
pub struct Hedger {
    policy: HedgePolicy,
    adaptive: Option<Mutex<AdaptiveState>>,
    observer: Arc<dyn Observer>,
}

impl fmt::Debug for Hedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedger")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Hedger {
    /// Validates `policy` and builds the engine; metrics go nowhere until
    /// [`Hedger::with_observer`].
    pub fn new(policy: HedgePolicy) -> Result<Self, HedgeError> {
        policy.validate()?;
        let adaptive = policy
            .adaptive
            .as_ref()
            .map(|a| Mutex::new(AdaptiveState::new(a.clone())));
        Ok(Self {
            policy,
            adaptive,
            observer: Arc::new(NoopObserver),
        })
    }

    /// Reports every call to `observer` (e.g. the API crate's Prometheus metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The policy this engine was built with.
    pub fn policy(&self) -> &HedgePolicy {
        &self.policy
    }

    /// The delay the next call would use (the adaptive estimate when enabled).
    pub fn current_delay(&self) -> Duration {
        match &self.adaptive {
            Some(m) => lock(m).delay(self.policy.delay),
            None => self.policy.delay,
        }
    }

    /// Budget tokens available (adaptive mode), for metrics and diagnostics.
    pub fn budget_tokens(&self) -> Option<f64> {
        self.adaptive.as_ref().map(|m| lock(m).bucket.tokens())
    }

    /// Makes one hedged call; see [`hedge`] for `deadline` and `attempt`. In adaptive mode
    /// the delay comes from recent latencies and extra attempts are paid from the budget.
    pub async fn run<F, Fut, T, E>(&self, deadline: Option<Duration>, attempt: F) -> HedgeReport<T>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        self.run_until(deadline_from_now(deadline), attempt).await
    }

    /// Like [`Hedger::run`] with an absolute deadline, e.g. the request's arrival plus its
    /// `timeout`, so time spent before the call (parsing, queueing) is not given away. A
    /// deadline already passed answers `DeadlineExceeded` without firing anything.
    pub async fn run_until<F, Fut, T, E>(
        &self,
        deadline: Option<Instant>,
        attempt: F,
    ) -> HedgeReport<T>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let delay = match &self.adaptive {
            Some(m) => lock(m).begin_call(self.policy.delay),
            None => self.policy.delay,
        };
        let ctx = Ctx {
            policy: &self.policy,
            delay,
            adaptive: self.adaptive.as_ref(),
            observer: &*self.observer,
        };
        run_engine(ctx, deadline, attempt).await
    }
}

/// Recompute the cached adaptive delay after this many new samples: the percentile is O(n)
/// over the window, and a delay that lags by a few samples is fine.
const REFRESH_EVERY: usize = 16;

/// State of the adaptive mode, behind a mutex that is never held across an `.await`.
#[derive(Debug)]
struct AdaptiveState {
    cfg: AdaptivePolicy,
    window: LatencyWindow,
    bucket: TokenBucket,
    cached: Option<Duration>,
    since_refresh: usize,
}

impl AdaptiveState {
    fn new(cfg: AdaptivePolicy) -> Self {
        Self {
            window: LatencyWindow::new(cfg.window),
            bucket: TokenBucket::new(cfg.budget_ratio, cfg.budget_burst),
            cached: None,
            since_refresh: 0,
            cfg,
        }
    }

    /// A call starts: it earns its share of the budget and gets the current delay.
    fn begin_call(&mut self, fallback: Duration) -> Duration {
        self.bucket.deposit();
        self.delay(fallback)
    }

    fn delay(&mut self, fallback: Duration) -> Duration {
        if self.window.len() < self.cfg.min_samples.max(1) {
            return fallback;
        }
        if self.cached.is_none() || self.since_refresh >= REFRESH_EVERY {
            self.since_refresh = 0;
            self.cached = self
                .window
                .percentile(self.cfg.percentile)
                .map(|d| d.clamp(self.cfg.min_delay, self.cfg.max_delay));
        }
        self.cached.unwrap_or(fallback)
    }

    fn record(&mut self, latency: Duration) {
        self.window.record(latency);
        self.since_refresh += 1;
    }
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    // The state stays consistent even if a holder panicked (no multi-step invariants).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Ctx<'a> {
    policy: &'a HedgePolicy,
    delay: Duration,
    adaptive: Option<&'a Mutex<AdaptiveState>>,
    observer: &'a dyn Observer,
}

/// How one attempt future completed (as seen by the engine).
enum Done<T> {
    Ok(T),
    Failed(String),
    TimedOut,
}

/// Runs one attempt under the per-attempt limit. One `async fn` so every attempt has the
/// same future type and they can share a `FuturesUnordered` without boxing.
async fn run_attempt<Fut, T, E>(n: usize, fut: Fut, limit: Option<Duration>) -> (usize, Done<T>)
where
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let res = match limit {
        Some(limit) => match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => return (n, Done::TimedOut),
        },
        None => fut.await,
    };
    match res {
        Ok(v) => (n, Done::Ok(v)),
        Err(e) => (n, Done::Failed(e.to_string())),
    }
}

/// Sleeps until `at`, or forever when `None` (a disabled timer).
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Slot {
    reason: FireReason,
    started_at: Duration,
    done: Option<(AttemptOutcome, Duration)>,
}

async fn run_engine<F, Fut, T, E>(
    ctx: Ctx<'_>,
    deadline_at: Option<Instant>,
    mut attempt: F,
) -> HedgeReport<T>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let start = Instant::now();
    let hedge_at = start.checked_add(ctx.delay);
    let mut planned = 1 + ctx.policy.extra;
    let mut slots: Vec<Slot> = Vec::with_capacity(planned);
    let mut in_flight = FuturesUnordered::new();
    let mut failure_seen = false;
    let mut suppressed = 0;

    macro_rules! fire {
        ($reason:expr) => {{
            let n = slots.len() + 1;
            slots.push(Slot {
                reason: $reason,
                started_at: start.elapsed(),
                done: None,
            });
            ctx.observer.attempt_fired(n, $reason);
            in_flight.push(run_attempt(n, attempt(n), ctx.policy.per_attempt_timeout));
        }};
    }

    let outcome = 'call: {
        if deadline_at.is_some_and(|d| d <= start) {
            break 'call HedgeOutcome::DeadlineExceeded;
        }
        fire!(FireReason::Primary);
        loop {
            let elapsed = start.elapsed();
            let due = hedges_due(slots.len(), planned, elapsed, ctx.delay, failure_seen);
            if due > 0 {
                let granted = match ctx.adaptive {
                    Some(m) => lock(m).bucket.try_withdraw(due),
                    None => due,
                };
                suppressed += due - granted;
                planned -= due - granted;
                let reason = fire_reason(elapsed, ctx.delay);
                for _ in 0..granted {
                    fire!(reason);
                }
            }
            if in_flight.is_empty() {
                // Nothing running and (as a failure was seen) nothing left to fire.
                break 'call HedgeOutcome::AllFailed;
            }
            let next_hedge = if slots.len() < planned {
                hedge_at
            } else {
                None
            };
            // `biased`: a result that is ready wins over a timer expiring at the same instant,
            // and the deadline wins over firing hedges that could no longer help.
            tokio::select! {
                biased;
                Some((n, done)) = in_flight.next() => {
                    let now = start.elapsed();
                    let slot = &mut slots[n - 1];
                    let latency = now.saturating_sub(slot.started_at);
                    match done {
                        Done::Ok(value) => {
                            slot.done = Some((AttemptOutcome::Won, latency));
                            break 'call HedgeOutcome::Success { value, winner: n };
                        }
                        Done::Failed(msg) => {
                            tracing::debug!(attempt = n, error = %msg, "hedge attempt failed");
                            slot.done = Some((AttemptOutcome::Failed(msg), latency));
                            failure_seen = true;
                        }
                        Done::TimedOut => {
                            slot.done = Some((AttemptOutcome::TimedOut, latency));
                            failure_seen = true;
                        }
                    }
                }
                () = sleep_until_opt(deadline_at) => break 'call HedgeOutcome::DeadlineExceeded,
                () = sleep_until_opt(next_hedge) => {}
            }
        }
    };
    // Dropping the remaining attempt futures cancels them now (for HTTP: closes their
    // connections), before the answer is even returned.
    drop(in_flight);
    let elapsed = start.elapsed();
    let attempts: Vec<AttemptRecord> = slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (outcome, latency) = s.done.unwrap_or_else(|| {
                (
                    AttemptOutcome::Cancelled,
                    elapsed.saturating_sub(s.started_at),
                )
            });
            AttemptRecord {
                number: i + 1,
                reason: s.reason,
                started_at: s.started_at,
                latency,
                outcome,
            }
        })
        .collect();
    if let (Some(m), HedgeOutcome::Success { winner, .. }) = (ctx.adaptive, &outcome) {
        if let Some(a) = attempts.get(winner - 1) {
            lock(m).record(a.latency);
        }
    }
    let report = HedgeReport {
        outcome,
        attempts,
        elapsed,
        delay: ctx.delay,
        hedges_suppressed: suppressed,
    };
    ctx.observer.call_finished(&report.summary());
    report
}
