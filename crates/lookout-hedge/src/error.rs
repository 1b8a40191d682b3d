//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong in this crate, from policy validation to one upstream
/// attempt. The API crate maps it to HTTP once: `DeadlineExceeded` → 504, `AllFailed` → 502,
/// `InvalidPolicy`/`Client` are configuration errors caught at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HedgeError {
    /// A [`crate::HedgePolicy`] or [`crate::AdaptivePolicy`] that cannot work.
    #[error("invalid hedge policy: {0}")]
    InvalidPolicy(String),
    /// No attempt succeeded before the caller's deadline.
    #[error("no successful upstream response within {}ms ({attempts} attempt(s) fired)", elapsed.as_millis())]
    DeadlineExceeded {
        /// Time spent in the call.
        elapsed: Duration,
        /// Attempts fired before the deadline.
        attempts: usize,
    },
    /// Every attempt that could be fired failed before the deadline.
    #[error("all {attempts} upstream attempt(s) failed; last: {last}")]
    AllFailed {
        /// Attempts fired.
        attempts: usize,
        /// The last failure's message.
        last: String,
    },
    /// The upstream could not be reached or the connection broke (transport level).
    #[error("upstream transport error: {0}")]
    UpstreamTransport(String),
    /// The upstream answered with a status other than 200.
    #[error("upstream answered HTTP {0}")]
    UpstreamStatus(u16),
    /// The upstream answered 200 but not with `{"time": <integer>}`.
    #[error("upstream body invalid: {0}")]
    UpstreamBody(String),
    /// Building the HTTP client failed (bad URL, TLS provider missing, ...).
    #[error("http client: {0}")]
    Client(String),
}
