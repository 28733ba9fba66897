//! A token bucket: how many messages a client may send, on average and in a burst.

use std::time::Instant;

/// Allows `per_second` messages a second on average, and bursts of as many.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket as of `now`.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let rate = f64::from(per_second.max(1));
        Self { capacity: rate, per_second: rate, tokens: rate, last: now }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
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

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        assert!((0..10).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0), "the burst is 10");
        assert!(bucket.take(t0 + Duration::from_millis(100)), "one token every 100 ms");
        assert!(!bucket.take(t0 + Duration::from_millis(110)));
        assert!((0..10).all(|_| bucket.take(t0 + Duration::from_secs(60))), "refills to full");
        assert!(!bucket.take(t0 + Duration::from_secs(60)), "never above the burst");
    }
}
