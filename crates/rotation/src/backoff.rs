//! How long to wait before retrying a failed certificate request.

use core::time::Duration;

use time::OffsetDateTime;

use crate::instant::{duration, nanos};
use crate::jitter::{JitterSource, unit};
use crate::{BackoffProblem, Error};

/// The shape of the failure backoff: exponential growth, full jitter, two caps and a floor.
///
/// Defaults and why:
///
/// - `initial` 1s, doubling: the first retry comes quickly, a CA outage is not hammered.
/// - `cap_without_cert` 60s: with no certificate the proxy is not ready, so it keeps asking at
///   least once a minute (Linkerd asks every 10s, all proxies in step).
/// - `cap_with_cert` 5 min, and never more than a quarter of the remaining validity: while a
///   valid certificate is held there is no hurry, but a retry always comes before it expires.
/// - `floor` 100ms: full jitter draws from `[0, cap]`, and a zero delay would be a busy loop; the
///   draw is from `[floor, cap]` instead. The floor gives way only when a quarter of the
///   remaining validity is below it (the last 400ms of a certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// The upper bound of the first delay; each failure doubles it (default 1s).
    pub initial: Duration,
    /// The largest delay while no valid certificate is held (default 60s).
    pub cap_without_cert: Duration,
    /// The largest delay while a valid certificate is held (default 5 min); the delay is also at
    /// most a quarter of the certificate's remaining validity.
    pub cap_with_cert: Duration,
    /// The smallest delay, so full jitter never yields a zero-length loop (default 100ms).
    pub floor: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            cap_without_cert: Duration::from_secs(60),
            cap_with_cert: Duration::from_secs(300),
            floor: Duration::from_millis(100),
        }
    }
}

impl BackoffPolicy {
    /// Checks that the fields fit together: `0 < initial`, `floor ≤ initial`, and `initial` at
    /// most each cap.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |problem: BackoffProblem| Err(Error::InvalidBackoff { problem });
        let Self {
            initial,
            cap_without_cert,
            cap_with_cert,
            floor,
        } = *self;
        if initial.is_zero() {
            return invalid(BackoffProblem::ZeroInitial);
        }
        if floor > initial {
            return invalid(BackoffProblem::FloorAboveInitial { floor, initial });
        }
        if cap_without_cert < initial {
            return invalid(BackoffProblem::CapWithoutCertBelowInitial {
                cap: cap_without_cert,
                initial,
            });
        }
        if cap_with_cert < initial {
            return invalid(BackoffProblem::CapWithCertBelowInitial {
                cap: cap_with_cert,
                initial,
            });
        }
        Ok(())
    }
}

/// Failure backoff state: how many requests have failed since the last success.
///
/// Call [`next_delay`](Self::next_delay) after each failure and [`reset`](Self::reset) after a
/// success.
///
/// ```
/// use core::time::Duration;
/// use meshid_rotation::{Backoff, SeededJitter};
/// use time::macros::datetime;
///
/// let now = datetime!(2026-06-01 12:00 UTC);
/// let mut backoff = Backoff::default();
/// let mut jitter = SeededJitter::new(1);
/// // No certificate yet: at most 1s, then 2s, 4s, … up to 60s.
/// assert!(backoff.next_delay(now, None, &mut jitter) <= Duration::from_secs(1));
/// assert!(backoff.next_delay(now, None, &mut jitter) <= Duration::from_secs(2));
/// // A certificate expiring in 2 minutes: at most 30s, so the retry comes before expiry.
/// let expires = datetime!(2026-06-01 12:02 UTC);
/// for _ in 0..20 {
///     assert!(backoff.next_delay(now, Some(expires), &mut jitter) <= Duration::from_secs(30));
/// }
/// backoff.reset();
/// assert_eq!(backoff.attempts(), 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempts: u32,
}

impl Backoff {
    /// Backoff state for `policy`, with no failures yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBackoff`] if [`BackoffPolicy::validate`] fails.
    pub fn new(policy: BackoffPolicy) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            policy,
            attempts: 0,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// How many delays have been handed out since the last [`reset`](Self::reset).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The largest delay the next [`next_delay`](Self::next_delay) can return:
    /// `min(initial · 2^attempts, cap)`, where `cap` is `min(cap_with_cert, remaining / 4)` while
    /// a certificate valid at `now` is held (`not_after` in the future), else `cap_without_cert`.
    pub fn ceiling(&self, now: OffsetDateTime, not_after: Option<OffsetDateTime>) -> Duration {
        let policy = &self.policy;
        let exponential = policy
            .initial
            .as_nanos()
            .saturating_mul(1u128 << self.attempts.min(100));
        let cap = match not_after.map(|end| nanos(end) - nanos(now)) {
            Some(remaining) if remaining > 0 => policy
                .cap_with_cert
                .as_nanos()
                .min(remaining.unsigned_abs() / 4),
            _ => policy.cap_without_cert.as_nanos(),
        };
        duration(exponential.min(cap))
    }

    /// The delay before retrying after a failure at `now`, and one more attempt counted.
    ///
    /// `not_after` is the NotAfter of the certificate currently held, if any; an expired one
    /// counts as none. The delay is drawn uniformly from `[min(floor, ceiling), ceiling]` (full
    /// jitter with a floor), where `ceiling` is [`ceiling`](Self::ceiling). While the held
    /// certificate is valid the delay is at most a quarter of its remaining validity, so a retry
    /// is always scheduled before it expires.
    pub fn next_delay<J: JitterSource + ?Sized>(
        &mut self,
        now: OffsetDateTime,
        not_after: Option<OffsetDateTime>,
        jitter: &mut J,
    ) -> Duration {
        let ceiling = self.ceiling(now, not_after).as_nanos();
        let low = self.policy.floor.as_nanos().min(ceiling);
        let width = ceiling - low;
        // u < 1, so the product is below `width` (the cast saturates; `min` guards rounding).
        let extra = ((width as f64 * unit(jitter)) as u128).min(width);
        self.attempts = self.attempts.saturating_add(1);
        duration(low + extra)
    }

    /// Forgets past failures: call after a certificate is obtained.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    fn top() -> f64 {
        1.0
    }

    type Change<T> = fn(&mut T);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubles_from_one_second_to_sixty_without_a_certificate() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..9)
            .map(|_| {
                backoff
                    .next_delay(NOW, None, &mut top)
                    .as_secs_f64()
                    .round() as u64
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.attempts(), 9);
    }

    #[test]
    fn full_jitter_with_a_floor() {
        let mut backoff = Backoff::default();
        assert_eq!(
            backoff.next_delay(NOW, None, &mut || 0.0),
            Duration::from_millis(100)
        );
        // Uniform over [floor, ceiling]: the middle of [0.1s, 2s] is 1.05s.
        assert_eq!(
            backoff.next_delay(NOW, None, &mut || 0.5),
            Duration::from_millis(1050)
        );
    }

    #[test]
    fn with_a_certificate_the_cap_is_five_minutes_or_a_quarter_of_what_is_left() {
        let mut backoff = Backoff::default();
        for _ in 0..20 {
            backoff.next_delay(NOW, None, &mut top);
        }
        let in_a_day = datetime!(2026-06-02 12:00 UTC);
        assert_eq!(backoff.ceiling(NOW, Some(in_a_day)), secs(300));
        let in_two_minutes = datetime!(2026-06-01 12:02 UTC);
        assert_eq!(backoff.ceiling(NOW, Some(in_two_minutes)), secs(30));
        let delay = backoff.next_delay(NOW, Some(in_two_minutes), &mut top);
        assert!(delay <= secs(30) && delay > Duration::from_millis(29_999));
        // Expired: as if none were held.
        assert_eq!(backoff.ceiling(NOW, Some(NOW)), secs(60));
    }

    #[test]
    fn the_floor_gives_way_to_expiry() {
        let mut backoff = Backoff::default();
        let soon = NOW + time::Duration::milliseconds(200);
        // A quarter of 200ms is below the 100ms floor: exactly 50ms, whatever the jitter.
        assert_eq!(
            backoff.next_delay(NOW, Some(soon), &mut || 0.0),
            Duration::from_millis(50)
        );
        assert_eq!(
            backoff.next_delay(NOW, Some(soon), &mut top),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay(NOW, None, &mut top);
        }
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.ceiling(NOW, None), secs(1));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let policy = BackoffPolicy {
            cap_without_cert: Duration::MAX,
            ..BackoffPolicy::default()
        };
        let mut backoff = Backoff::new(policy).unwrap();
        for _ in 0..300 {
            backoff.next_delay(NOW, None, &mut top);
        }
        assert_eq!(backoff.ceiling(NOW, None), Duration::MAX);
    }

    #[test]
    fn a_floor_or_caps_equal_to_the_initial_delay_are_allowed() {
        let policy = BackoffPolicy {
            initial: secs(2),
            cap_without_cert: secs(2),
            cap_with_cert: secs(2),
            floor: secs(2),
        };
        let mut backoff = Backoff::new(policy.clone()).unwrap();
        assert_eq!(backoff.policy(), &policy);
        // Floor, ceiling and caps all 2s: every delay is exactly 2s.
        for _ in 0..3 {
            assert_eq!(backoff.next_delay(NOW, None, &mut top), secs(2));
        }
    }

    #[test]
    fn invalid_policies() {
        let ms = Duration::from_millis;
        let cases: [(Change<BackoffPolicy>, BackoffProblem, &str); 4] = [
            (
                |p| p.initial = Duration::ZERO,
                BackoffProblem::ZeroInitial,
                "the initial delay must be greater than zero",
            ),
            (
                |p| p.floor = secs(2),
                BackoffProblem::FloorAboveInitial {
                    floor: secs(2),
                    initial: secs(1),
                },
                "the floor 2s is longer than the initial delay 1s",
            ),
            (
                |p| p.cap_without_cert = Duration::from_millis(500),
                BackoffProblem::CapWithoutCertBelowInitial {
                    cap: ms(500),
                    initial: secs(1),
                },
                "the cap without a certificate 500ms is shorter than the initial delay 1s",
            ),
            (
                |p| p.cap_with_cert = Duration::from_millis(500),
                BackoffProblem::CapWithCertBelowInitial {
                    cap: ms(500),
                    initial: secs(1),
                },
                "the cap with a certificate 500ms is shorter than the initial delay 1s",
            ),
        ];
        for (change, problem, message) in cases {
            let mut policy = BackoffPolicy::default();
            change(&mut policy);
            let err = Backoff::new(policy).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid backoff policy: {message}")
            );
            assert_eq!(err, Error::InvalidBackoff { problem });
        }
    }
}
