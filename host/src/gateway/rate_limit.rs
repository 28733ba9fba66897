//! A token bucket: how many messages (or bytes) a client may send, on average and in a burst.

use std::time::Instant;

/// Allows `per_second` units a second on average, and bursts of `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket as of `now`, whose burst is as large as its rate.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let rate = f64::from(per_second.max(1));
        Self::with_burst(rate, rate, now)
    }

    /// A full bucket as of `now` refilling at `per_second`, holding at most `burst`.
    pub fn with_burst(per_second: f64, burst: f64, now: Instant) -> Self {
        let rate = per_second.max(1.0);
        let capacity = burst.max(1.0);
        Self { capacity, per_second: rate, tokens: capacity, last: now }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_n(1.0, now)
    }

    /// Takes `n` tokens at `now`; false (taking none) when fewer are left.
    pub fn take_n(&mut self, n: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
        if self.tokens >= n {
            self.tokens -= n;
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

    #[test]
    fn a_byte_bucket_takes_sizes() {
        let t0 = Instant::now();
        let mut bytes = TokenBucket::with_burst(1000.0, 4000.0, t0);
        assert!(bytes.take_n(4000.0, t0), "one message as large as the burst fits");
        assert!(!bytes.take_n(1.0, t0));
        assert!(bytes.take_n(500.0, t0 + Duration::from_millis(500)));
        assert!(!bytes.take_n(500.0, t0 + Duration::from_millis(500)));
    }
}
