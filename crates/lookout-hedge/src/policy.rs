//! Configuration of the engine: how long to wait, how many copies, what caps them.

use std::time::Duration;

use crate::HedgeError;

/// Upper bound on [`HedgePolicy::extra`]. Hedging multiplies upstream load, so a typo such as
/// `extra = 200` must be rejected at start-up, not discovered by the upstream's on-call.
pub const MAX_EXTRA: usize = 16;

/// How a hedged call is made. The default is the assignment's contract: one attempt, two more
/// if nothing succeeded within 300 ms, no per-attempt limit, no adaptive mode.
#[derive(Debug, Clone, PartialEq)]
pub struct HedgePolicy {
    /// How long to wait for a success before firing the extra copies. A failure that arrives
    /// earlier fires them at once (it cannot turn into a success by waiting).
    pub delay: Duration,
    /// Number of extra copies fired (all together) after `delay`; `0` disables hedging.
    pub extra: usize,
    /// Limit for one attempt; an attempt that exceeds it counts as failed (`TimedOut`), which
    /// also fires the remaining copies. `None` leaves attempts bounded only by the deadline.
    pub per_attempt_timeout: Option<Duration>,
    /// Adaptive delay + extra-load budget; off (`None`) by default. Only [`crate::Hedger`]
    /// keeps the state it needs; the stateless [`crate::hedge`] ignores it.
    pub adaptive: Option<AdaptivePolicy>,
}

impl Default for HedgePolicy {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(300),
            extra: 2,
            per_attempt_timeout: None,
            adaptive: None,
        }
    }
}

impl HedgePolicy {
    /// Rejects policies that cannot work, so misconfiguration fails at start-up.
    pub fn validate(&self) -> Result<(), HedgeError> {
        if self.extra > MAX_EXTRA {
            return Err(HedgeError::InvalidPolicy(format!(
                "extra = {} exceeds the maximum of {MAX_EXTRA}",
                self.extra
            )));
        }
        if self.per_attempt_timeout == Some(Duration::ZERO) {
            return Err(HedgeError::InvalidPolicy(
                "per_attempt_timeout must be > 0".into(),
            ));
        }
        if let Some(a) = &self.adaptive {
            a.validate()?;
        }
        Ok(())
    }
}

/// Adaptive mode: the hedge delay follows a recent latency percentile and extra attempts are
/// paid for from a token bucket, so a slow or failing upstream is not hit with up to
/// `1 + extra` times its normal load (Dean & Barroso: hedging at ~p95 costs ~5 % extra load).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptivePolicy {
    /// Percentile of recent successful attempt latencies used as the delay, in `(0, 1]`.
    pub percentile: f64,
    /// Number of most recent latency samples kept (sliding window).
    pub window: usize,
    /// Below this many samples the static [`HedgePolicy::delay`] is used.
    pub min_samples: usize,
    /// Lower clamp of the adaptive delay: never hedge faster than this.
    pub min_delay: Duration,
    /// Upper clamp of the adaptive delay.
    pub max_delay: Duration,
    /// Tokens deposited per call; one extra attempt costs one token. Long-run extra attempts
    /// per call are therefore at most `budget_ratio` (plus the initial `budget_burst`).
    pub budget_ratio: f64,
    /// Bucket capacity (and initial fill): how many extra attempts may be fired in a burst.
    pub budget_burst: f64,
}

impl Default for AdaptivePolicy {
    fn default() -> Self {
        Self {
            percentile: 0.95,
            window: 1000,
            min_samples: 50,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            budget_ratio: 0.1,
            budget_burst: 20.0,
        }
    }
}

impl AdaptivePolicy {
    /// Rejects values that would make the estimator or the budget meaningless.
    pub fn validate(&self) -> Result<(), HedgeError> {
        let bad = |m: &str| Err(HedgeError::InvalidPolicy(m.into()));
        if !(self.percentile > 0.0 && self.percentile <= 1.0) {
            return bad("adaptive.percentile must be in (0, 1]");
        }
        if self.window == 0 {
            return bad("adaptive.window must be > 0");
        }
        if self.min_samples > self.window {
            return bad("adaptive.min_samples must be <= adaptive.window");
        }
        if self.min_delay > self.max_delay {
            return bad("adaptive.min_delay must be <= adaptive.max_delay");
        }
        if !(self.budget_ratio.is_finite() && self.budget_ratio >= 0.0) {
            return bad("adaptive.budget_ratio must be a finite number >= 0");
        }
        if !(self.budget_burst.is_finite() && self.budget_burst >= 1.0) {
            return bad("adaptive.budget_burst must be a finite number >= 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_assignment() {
        let p = HedgePolicy::default();
        assert_eq!(p.delay, Duration::from_millis(300));
        assert_eq!(p.extra, 2);
        assert!(p.adaptive.is_none());
        assert!(p.validate().is_ok());
        assert!(AdaptivePolicy::default().validate().is_ok());
    }

    #[test]
    fn rejects_bad_policies() {
        let p = HedgePolicy {
            extra: MAX_EXTRA + 1,
            ..Default::default()
        };
        assert!(p.validate().is_err());
        let p = HedgePolicy {
            per_attempt_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        assert!(p.validate().is_err());
        for a in [
            AdaptivePolicy {
                percentile: 0.0,
                ..Default::default()
            },
            AdaptivePolicy {
                percentile: 1.5,
                ..Default::default()
            },
            AdaptivePolicy {
                percentile: f64::NAN,
                ..Default::default()
            },
            AdaptivePolicy {
                window: 0,
                min_samples: 0,
                ..Default::default()
            },
            AdaptivePolicy {
                min_samples: 2000,
                ..Default::default()
            },
            AdaptivePolicy {
                min_delay: Duration::from_secs(3),
                ..Default::default()
            },
            AdaptivePolicy {
                budget_ratio: -1.0,
                ..Default::default()
            },
            AdaptivePolicy {
                budget_burst: 0.5,
                ..Default::default()
            },
            AdaptivePolicy {
                budget_burst: f64::INFINITY,
                ..Default::default()
            },
        ] {
            let p = HedgePolicy {
                adaptive: Some(a.clone()),
                ..Default::default()
            };
            assert!(p.validate().is_err(), "{a:?} accepted");
        }
    }
}
