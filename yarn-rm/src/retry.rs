//! Backoff with full jitter for retried RM calls.

use std::time::Duration;

use rand::RngExt;

/// How often and how patiently an idempotent call is retried after a transient failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Ceiling of the first wait; doubles on each retry.
    pub base: Duration,
    /// Largest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries (for tests and one-shot commands that report at once).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The ceiling of the wait before retry `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A wait drawn uniformly in `[0, ceiling]` ("full jitter"): many clients retrying after
    /// one RM hiccup spread out instead of arriving together.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit_random.clamp(0.0, 1.0))
    }

    /// [`RetryPolicy::delay`] with a fresh random draw.
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::rng().random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ceilings_double_then_cap() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<u128> = (0..7).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, vec![200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    proptest! {
        #[test]
        fn delays_stay_within_their_ceiling(attempt in 0u32..100, unit in -1.0f64..2.0) {
            let policy = RetryPolicy::default();
            let delay = policy.delay(attempt, unit);
            prop_assert!(delay <= policy.ceiling(attempt));
            prop_assert!(delay <= policy.max);
        }
    }
}
