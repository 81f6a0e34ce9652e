//! A token-bucket rate limiter on tokio time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Allows `burst` requests at once, refilled at `qps` per second. A request that finds the
/// bucket empty reserves the next slot and waits for it, so waiters are served in order.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    qps: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Available permits; negative when slots are reserved by waiters.
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    /// `qps` must be positive and finite and `burst` at least 1 (checked by the caller).
    pub(crate) fn new(qps: f64, burst: u32) -> Self {
        Self {
            qps,
            burst: f64::from(burst),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: None,
            }),
        }
    }

    /// Waits for a permit. Fails at once, reserving nothing, with the wait it would take when
    /// that wait exceeds `max_wait`. A caller that gives up while waiting (its future is
    /// dropped) hands its reserved slot back.
    pub(crate) async fn acquire(&self, max_wait: Duration) -> Result<(), Duration> {
        let wait = {
            let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if let Some(last) = b.last {
                let refill = now.saturating_duration_since(last).as_secs_f64() * self.qps;
                b.tokens = (b.tokens + refill).min(self.burst);
            }
            b.last = Some(now);
            let wait = if b.tokens >= 1.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64((1.0 - b.tokens) / self.qps)
            };
            if wait > max_wait {
                return Err(wait);
            }
            b.tokens -= 1.0;
            wait
        };
        if !wait.is_zero() {
            let reservation = Reservation { limiter: self };
            tokio::time::sleep(wait).await;
            core::mem::forget(reservation);
        }
        Ok(())
    }

    /// Gives back a slot reserved by a waiter that left.
    fn give_back(&self) {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.tokens = (b.tokens + 1.0).min(self.burst);
    }
}

/// A slot reserved by a waiting caller: given back if the caller leaves before its turn.
struct Reservation<'a> {
    limiter: &'a RateLimiter,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.limiter.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_beyond_the_bucket_waits() {
        let limiter = RateLimiter::new(10.0, 2);
        let start = Instant::now();
        limiter.acquire(Duration::from_secs(5)).await.unwrap();
        limiter.acquire(Duration::from_secs(5)).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire(Duration::from_secs(5)).await.unwrap();
        let third = start.elapsed();
        assert!(
            third >= Duration::from_millis(99) && third <= Duration::from_millis(101),
            "{third:?}"
        );
        limiter.acquire(Duration::from_secs(5)).await.unwrap();
        let fourth = start.elapsed();
        assert!(
            fourth >= Duration::from_millis(199) && fourth <= Duration::from_millis(201),
            "{fourth:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refills_up_to_the_burst_only() {
        let limiter = RateLimiter::new(10.0, 2);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..2 {
            limiter.acquire(Duration::ZERO).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        let wait = limiter
            .acquire(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(wait > Duration::from_millis(99), "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_spaced_out() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    l.acquire(Duration::from_secs(5)).await.unwrap();
                    start.elapsed()
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap().as_millis());
        }
        done.sort_unstable();
        assert_eq!(done, [0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_leaves_gives_its_slot_back() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1.0, 1));
        let start = Instant::now();
        limiter.acquire(Duration::ZERO).await.unwrap();
        // A second caller waits for the next slot (1 s), then is cancelled half-way.
        let waiting = {
            let limiter = std::sync::Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        // Its slot was given back: the next caller gets it, at 1 s, not at 2 s.
        limiter.acquire(Duration::from_secs(5)).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn fails_fast_without_reserving() {
        let limiter = RateLimiter::new(1.0, 1);
        limiter.acquire(Duration::ZERO).await.unwrap();
        let wait = limiter
            .acquire(Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // The refused request reserved nothing: one second later a permit is free.
        tokio::time::sleep(Duration::from_secs(1)).await;
        limiter.acquire(Duration::ZERO).await.unwrap();
    }
}
