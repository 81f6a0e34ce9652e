//! Time, injected: the driver never reads the system clock directly.

use time::OffsetDateTime;

pub use meshid_policy::{Clock, ManualClock, SystemClock};

/// A clock that follows tokio's time: `start` plus the tokio time elapsed since it was made.
///
/// Under `tokio::time::pause()` it advances exactly as tokio's timers do, so schedules and
/// expiry are tested without sleeping.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: OffsetDateTime,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        self.start + self.origin.elapsed()
    }
}
