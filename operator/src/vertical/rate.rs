//! A token bucket for RM writes, so that a pool-wide change (the whole cluster's online load
//! rising at once) reaches the RM at a rate it can take.

use tokio::time::Instant;

/// Writes allowed per second, with a burst.
#[derive(Clone, Debug)]
pub struct WriteBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl WriteBudget {
    /// `per_second` writes on average, up to `burst` at once; starts full.
    pub fn new(per_second: f64, burst: u32) -> WriteBudget {
        let burst = f64::from(burst.max(1));
        WriteBudget {
            per_second: per_second.max(0.0),
            burst,
            tokens: burst,
            refilled: Instant::now(),
        }
    }

    /// Takes one write if the budget allows it now.
    pub fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
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
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let mut budget = WriteBudget::new(2.0, 3);
        let first: Vec<bool> = (0..5).map(|_| budget.try_take()).collect();
        assert_eq!(first, [true, true, true, false, false]);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(budget.try_take(), "one token after half a second at 2/s");
        assert!(!budget.try_take());
        tokio::time::advance(Duration::from_secs(60)).await;
        let refilled = (0..5).filter(|_| budget.try_take()).count();
        assert_eq!(refilled, 3, "never more than the burst");
    }
}
