//! Extra-load budget (gRPC hedging throttling / Finagle retry budget style), as a plain
//! token bucket without a clock: every call deposits `ratio` tokens, every extra attempt costs
//! one. Over any run, extra attempts <= `burst + ratio * calls`, however the upstream behaves.

/// Token bucket that caps the extra attempts hedging may add.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    max: f64,
    ratio: f64,
}

impl TokenBucket {
    /// A full bucket of capacity `burst` that earns `ratio` tokens per call. Non-finite or
    /// negative inputs are clamped to 0 so the bucket can only ever be more restrictive.
    pub fn new(ratio: f64, burst: f64) -> Self {
        let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        let max = clean(burst);
        Self {
            tokens: max,
            max,
            ratio: clean(ratio),
        }
    }

    /// Called once per hedged call: earns this call's share of extra load.
    pub fn deposit(&mut self) {
        self.tokens = (self.tokens + self.ratio).min(self.max);
    }

    /// Asks for `want` extra attempts; returns how many are granted (and paid for).
    pub fn try_withdraw(&mut self, want: usize) -> usize {
        // floor() of a finite value in [0, max]; the cast saturates for absurd values.
        let available = self.tokens.floor().max(0.0) as usize;
        let granted = want.min(available);
        self.tokens -= granted as f64;
        granted
    }

    /// Tokens currently available (for metrics and the native API).
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_full_and_refills_slowly() {
        let mut b = TokenBucket::new(0.5, 2.0);
        assert_eq!(b.try_withdraw(3), 2);
        assert_eq!(b.try_withdraw(1), 0);
        b.deposit();
        assert_eq!(b.try_withdraw(1), 0);
        b.deposit();
        assert_eq!(b.try_withdraw(2), 1);
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(b.tokens(), 2.0, "capped at burst");
    }

    #[test]
    fn garbage_inputs_only_restrict() {
        let mut b = TokenBucket::new(f64::NAN, -3.0);
        b.deposit();
        assert_eq!(b.try_withdraw(5), 0);
    }

    proptest! {
        /// The whole point: extra attempts never exceed burst + ratio * calls.
        #[test]
        fn extra_load_is_bounded(ratio in 0.0f64..2.0, burst in 1.0f64..50.0,
                                 ops in proptest::collection::vec((any::<bool>(), 0usize..4), 0..500)) {
            let mut b = TokenBucket::new(ratio, burst);
            let (mut calls, mut granted) = (0u64, 0u64);
            for (is_call, want) in ops {
                if is_call { b.deposit(); calls += 1; }
                else { granted += b.try_withdraw(want) as u64; }
                prop_assert!(b.tokens() >= 0.0 && b.tokens() <= burst + 1e-9);
            }
            prop_assert!(granted as f64 <= burst + ratio * calls as f64 + 1e-6);
        }
    }
}
