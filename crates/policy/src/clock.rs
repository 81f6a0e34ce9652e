//! Time, injected: what validates, schedules or expires reads a [`Clock`], never the system
//! clock directly, so tests set the time instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the system clock is read
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that reads what it was last set to: for tests and replays.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock that follows tokio's time: `start` plus the tokio time elapsed since it was made
/// (feature `tokio`).
///
/// Under `tokio::time::pause()` it advances exactly as tokio's timers do, so schedules and
/// expiry are tested without sleeping.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: OffsetDateTime,
    origin: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock reading `start` now.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        self.start + self.origin.elapsed()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_manual_clock_reads_what_it_was_set_to_and_advances() {
        let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-06-01 12:00 UTC));
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), datetime!(2026-06-01 12:01:30 UTC));
        clock.set(datetime!(2027-01-01 0:00 UTC));
        let shared: std::sync::Arc<dyn Clock> = std::sync::Arc::new(clock);
        assert_eq!(shared.now(), datetime!(2027-01-01 0:00 UTC));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_follows_paused_time() {
        let clock = TokioClock::new(datetime!(2026-06-01 12:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-06-01 12:00 UTC));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), datetime!(2026-06-01 12:01:30 UTC));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(clock.now(), datetime!(2026-06-01 12:02 UTC));
    }

    #[test]
    fn the_system_clock_moves_forward() {
        let (a, b) = (SystemClock.now(), SystemClock.now());
        assert!(b >= a);
        assert!(a > datetime!(2020-01-01 0:00 UTC));
    }
}
