//! A token bucket for RM writes, so that a pool-wide change (the whole cluster's online load
//! rising at once) reaches the RM at a rate it can take. Time is passed in, in seconds, so that
//! the operator (wall clock) and the simulator (simulated seconds) use the same bucket.

/// Writes allowed per second, with a burst.
#[derive(Clone, Debug)]
pub struct WriteBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Option<f64>,
}

impl WriteBudget {
    /// `per_second` writes on average, up to `burst` at once; starts full.
    pub fn new(per_second: f64, burst: u32) -> WriteBudget {
        let burst = f64::from(burst.max(1));
        WriteBudget {
            per_second: if per_second.is_finite() {
                per_second.max(0.0)
            } else {
                0.0
            },
            burst,
            tokens: burst,
            refilled_at: None,
        }
    }

    /// Takes one write if the budget allows it at `now_seconds`.
    pub fn try_take(&mut self, now_seconds: f64) -> bool {
        if let Some(then) = self.refilled_at {
            let elapsed = (now_seconds - then).max(0.0);
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        }
        // A clock that steps back must not count the same seconds twice.
        self.refilled_at = Some(self.refilled_at.map_or(now_seconds, |t| t.max(now_seconds)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut budget = WriteBudget::new(2.0, 3);
        let first: Vec<bool> = (0..5).map(|_| budget.try_take(0.0)).collect();
        assert_eq!(first, [true, true, true, false, false]);
        assert!(budget.try_take(0.5), "one token after half a second at 2/s");
        assert!(!budget.try_take(0.5));
        let refilled = (0..5).filter(|_| budget.try_take(60.5)).count();
        assert_eq!(refilled, 3, "never more than the burst");
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let mut budget = WriteBudget::new(1.0, 1);
        assert!(budget.try_take(100.0));
        assert!(!budget.try_take(50.0));
        assert!(!budget.try_take(100.5));
        assert!(budget.try_take(101.5));
    }
}
