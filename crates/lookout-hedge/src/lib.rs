//! Hedged requests for lookout's `/api/smart` (docs/architecture.md, "Hedged requests").
//!
//! The job of this crate: given a way to make *one* attempt at some upstream call, make the
//! call fast and reliable despite a slow, flaky upstream. One attempt is fired; if no attempt
//! has *succeeded* after [`HedgePolicy::delay`] (or one has already failed), the extra copies
//! are fired; the first success wins and every loser is dropped (cancelled) at once. An
//! optional deadline bounds the whole call, hedge-delay phase included. An optional adaptive
//! mode takes the delay from a recent latency percentile and caps the extra load with a token
//! budget (Finagle `BackupRequestFilter`, gRPC hedging throttling).
//!
//! What it must never depend on: HTTP frameworks (axum, hyper servers), Prometheus, storage.
//! The engine ([`hedge`], [`Hedger`]) is generic over any `Future`, so it is tested with
//! tokio's paused clock, deterministically. HTTP lives only in the opt-in adapters:
//! - feature `http`: [`http::WorkClient`], one pooled reqwest client that treats only
//!   `200` + `{"time": <integer>}` as a success;
//! - feature `sim`: [`sim`], the stand-in upstream `/api/work` (work-sim) for demos, tests
//!   and benchmarks.
//!
//! Metrics are reported through the [`Observer`] trait so the API crate can feed Prometheus
//! without this crate knowing about it.

mod budget;
mod decide;
mod engine;
mod error;
mod observer;
mod policy;
mod window;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "sim")]
pub mod sim;

pub use budget::TokenBucket;
pub use decide::{fire_reason, hedges_due};
pub use engine::{
    hedge, AttemptOutcome, AttemptRecord, FireReason, HedgeOutcome, HedgeReport, Hedger,
    OutcomeKind,
};
pub use error::HedgeError;
pub use observer::{CallSummary, CountersSnapshot, HedgeCounters, NoopObserver, Observer};
pub use policy::{AdaptivePolicy, HedgePolicy, MAX_EXTRA};
pub use window::{nearest_rank, LatencyWindow};

/// The clock the engine uses (tokio's, so tests can pause it); pass one to
/// [`Hedger::run_until`], e.g. the request's arrival time plus its timeout.
pub use tokio::time::Instant;
