//! The hedged upstream behind the `smart` profile: one `lookout-hedge` engine (adaptive state,
//! budget) and one pooled client, with its Prometheus families. Held in [`crate::AppState`];
//! the routes are in `profiles::smart`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use lookout_hedge::http::{ClientOptions, WorkClient};
use lookout_hedge::{
    AttemptOutcome, CallSummary, FireReason, HedgeError, HedgePolicy, HedgeReport, Hedger, Observer,
};

use crate::metrics::HttpMetrics;

/// The hedged upstream: one engine (adaptive state, budget) and one pooled client.
pub struct SmartService {
    hedger: Hedger,
    work: WorkClient,
}

impl SmartService {
    /// Builds the service and registers its metrics. Fails on an invalid policy or URL, so a
    /// misconfiguration stops start-up instead of failing every call.
    pub fn new(
        upstream: &str,
        policy: HedgePolicy,
        metrics: &HttpMetrics,
    ) -> Result<Self, HedgeError> {
        let observer = Arc::new(SmartMetrics::register(metrics));
        let hedger = Hedger::new(policy)?.with_observer(observer);
        let work = WorkClient::new(upstream, &ClientOptions::default())?;
        Ok(Self { hedger, work })
    }

    pub fn upstream(&self) -> &str {
        self.work.url().as_str()
    }

    pub(crate) async fn call(&self, deadline: Option<lookout_hedge::Instant>) -> HedgeReport<i64> {
        self.hedger.run_until(deadline, |_| self.work.call()).await
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabel {
    attempt: String,
}

/// Prometheus families fed by the hedge engine's observer hooks.
struct SmartMetrics {
    calls: Family<OutcomeLabel, Counter>,
    attempts: Family<ReasonLabel, Counter>,
    hedges: Counter,
    wins: Family<AttemptLabel, Counter>,
    cancellations: Counter,
    suppressed: Counter,
    call_seconds: Family<OutcomeLabel, Histogram>,
    attempt_seconds: Family<OutcomeLabel, Histogram>,
}

impl SmartMetrics {
    fn register(m: &HttpMetrics) -> Self {
        let buckets = || Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let me = Self {
            calls: Family::default(),
            attempts: Family::default(),
            hedges: Counter::default(),
            wins: Family::default(),
            cancellations: Counter::default(),
            suppressed: Counter::default(),
            call_seconds: Family::new_with_constructor(buckets),
            attempt_seconds: Family::new_with_constructor(buckets),
        };
        // Series exist at zero from the start, so dashboards and rate() see them before the
        // first call (a counter that appears later loses its first increment to rate()).
        for kind in lookout_hedge::OutcomeKind::ALL {
            me.calls
                .get_or_create(&OutcomeLabel {
                    outcome: kind.as_str(),
                })
                .inc_by(0);
        }
        for reason in lookout_hedge::FireReason::ALL {
            me.attempts
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str(),
                })
                .inc_by(0);
        }
        m.register(
            "lookout_smart_calls",
            "Hedged /api/smart calls by outcome",
            me.calls.clone(),
        );
        m.register(
            "lookout_smart_attempts",
            "Upstream attempts fired, by why they were fired",
            me.attempts.clone(),
        );
        m.register(
            "lookout_smart_hedges",
            "Extra (hedge) attempts fired",
            me.hedges.clone(),
        );
        m.register(
            "lookout_smart_wins",
            "Successful calls by the attempt number that won",
            me.wins.clone(),
        );
        m.register(
            "lookout_smart_cancellations",
            "Losing attempts cancelled in flight",
            me.cancellations.clone(),
        );
        m.register(
            "lookout_smart_hedges_suppressed",
            "Extra attempts the load budget refused",
            me.suppressed.clone(),
        );
        m.register(
            "lookout_smart_call_duration_seconds",
            "Time to answer a hedged call, by outcome",
            me.call_seconds.clone(),
        );
        m.register(
            "lookout_smart_attempt_duration_seconds",
            "Time of one upstream attempt, by how it ended",
            me.attempt_seconds.clone(),
        );
        me
    }
}

impl Observer for SmartMetrics {
    fn attempt_fired(&self, number: usize, reason: FireReason) {
        self.attempts
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
        if number > 1 {
            self.hedges.inc();
        }
    }

    fn call_finished(&self, s: &CallSummary<'_>) {
        let outcome = s.kind.as_str();
        self.calls.get_or_create(&OutcomeLabel { outcome }).inc();
        self.call_seconds
            .get_or_create(&OutcomeLabel { outcome })
            .observe(s.elapsed.as_secs_f64());
        if let Some(w) = s.winner {
            self.wins
                .get_or_create(&AttemptLabel {
                    attempt: w.to_string(),
                })
                .inc();
        }
        self.suppressed.inc_by(s.hedges_suppressed as u64);
        for a in s.attempts {
            if a.outcome == AttemptOutcome::Cancelled {
                self.cancellations.inc();
            }
            self.attempt_seconds
                .get_or_create(&OutcomeLabel {
                    outcome: a.outcome.as_str(),
                })
                .observe(a.latency.as_secs_f64());
        }
    }
}
