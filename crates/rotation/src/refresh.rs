//! When a proxy refreshes its leaf certificate.

use core::time::Duration;

use time::OffsetDateTime;

use crate::instant::{NANOS_PER_SECOND, at, duration, nanos, span};
use crate::jitter::{JitterSource, unit};
use crate::{Error, RefreshProblem};

/// When to refresh a leaf certificate: a jittered fraction of its lifetime, clamped.
///
/// Build it with [`RefreshPolicy::default`] and adjust the fields; [`RefreshPolicy::validate`]
/// checks that they fit together ([`RefreshPolicy::refresh_at`] checks too).
///
/// Defaults and why:
///
/// - `fraction` 0.7: Linkerd's 70%, so a 24h leaf is refreshed around 16h48m after issuance as
///   operators expect; unlike Linkerd it is measured from NotBefore (a property of the
///   certificate), so a restart does not move the schedule.
/// - `jitter` 0.05: ±5% of the lifetime (±1h12m for 24h), step-ca's amount. Linkerd has none, so
///   every proxy certified after an outage refreshes at the same instant.
/// - `min_delay` 10s: Linkerd's lower clamp; a CA that keeps issuing nearly expired leaves cannot
///   be hammered by a refresh loop.
/// - `safety_margin` 30s: time kept before NotAfter for the request and a few backed-off retries
///   (1s + 2s + 4s + 8s + CA round trips). It is a duration, not a fraction, because what it buys
///   (round trips, retries) does not scale with the lifetime; with the default fraction and
///   jitter a leaf still has ≥25% of its lifetime left at the refresh point, so the margin only
///   binds for leaves shorter than two minutes or after a late restart.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// Where in the lifetime, measured from NotBefore, to refresh (default 0.7).
    pub fraction: f64,
    /// Uniform jitter, as a fraction of the lifetime on either side of `fraction` (default 0.05).
    pub jitter: f64,
    /// The refresh is never sooner than this after `now` (default 10s), unless the certificate
    /// expires first.
    pub min_delay: Duration,
    /// The refresh is never later than this before NotAfter (default 30s), unless the
    /// certificate is too short or too close to expiry for it.
    pub safety_margin: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            fraction: 0.7,
            jitter: 0.05,
            min_delay: Duration::from_secs(10),
            safety_margin: Duration::from_secs(30),
        }
    }
}

impl RefreshPolicy {
    /// The default policy with another fraction and jitter.
    pub fn new(fraction: f64, jitter: f64) -> Self {
        Self {
            fraction,
            jitter,
            ..Self::default()
        }
    }

    /// Checks that the fields fit together: `fraction` in (0, 1), `jitter` in [0, 1), and
    /// `fraction ± jitter` inside (0, 1).
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |problem: RefreshProblem| Err(Error::InvalidRefreshPolicy { problem });
        let Self {
            fraction, jitter, ..
        } = *self;
        if !(fraction > 0.0 && fraction < 1.0) {
            return invalid(RefreshProblem::FractionOutOfRange { fraction });
        }
        if !(0.0..1.0).contains(&jitter) {
            return invalid(RefreshProblem::JitterOutOfRange { jitter });
        }
        if fraction - jitter <= 0.0 || fraction + jitter >= 1.0 {
            return invalid(RefreshProblem::WindowOutOfRange { fraction, jitter });
        }
        Ok(())
    }

    /// When to refresh a leaf valid from `not_before` to `not_after`, as seen at `now`.
    ///
    /// Computed as:
    ///
    /// 1. `target = not_before + (fraction ± jitter) · lifetime`, with one value drawn from
    ///    `jitter` (uniform over the whole window);
    /// 2. at most `not_after − safety_margin`;
    /// 3. at least `now + min_delay`;
    /// 4. if that is not strictly after `max(now, not_before)` and strictly before `not_after`
    ///    (a very short leaf, or `now` close to expiry), the unclamped `target` if it is, else the
    ///    midpoint of what is left, `max(now, not_before) + (not_after − max(now, not_before)) / 2`.
    ///
    /// So `min_delay` wins over `safety_margin` (it is the guard against refresh loops), and both
    /// give way to the hard rule: the result is always strictly after `not_before`, strictly
    /// before `not_after`, and not before `now`. A 5s leaf at issuance refreshes at 3.5s ± 0.25s;
    /// a 20s leaf at 10s (the minimum delay); a 60s leaf at 30s (the safety margin).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRefreshPolicy`] if [`validate`](Self::validate) fails,
    /// [`Error::InvalidValidity`] if the leaf is valid for less than one second, and
    /// [`Error::Expired`] if `now` is at or after `not_after`.
    pub fn refresh_at<J: JitterSource + ?Sized>(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
        jitter: &mut J,
    ) -> Result<OffsetDateTime, Error> {
        self.validate()?;
        let (start, end, now_ns) = (nanos(not_before), nanos(not_after), nanos(now));
        let lifetime = end - start;
        if lifetime < NANOS_PER_SECOND {
            return Err(Error::InvalidValidity {
                not_before,
                not_after,
            });
        }
        if now_ns >= end {
            return Err(Error::Expired { not_after, now });
        }
        let f = self.fraction + self.jitter * (2.0 * unit(jitter) - 1.0);
        // f is in (0, 1), so the offset lies within the lifetime (the float-to-int cast saturates).
        let target = start + (f * lifetime as f64).round() as i128;
        let earliest = now_ns.max(start);
        let inside = |t: i128| earliest < t && t < end;
        let mut t = target.min(end - span(self.safety_margin));
        t = t.max(now_ns.saturating_add(span(self.min_delay)));
        if !inside(t) {
            t = if inside(target) {
                target
            } else {
                earliest + (end - earliest) / 2
            };
        }
        Ok(at(not_before, t))
    }

    /// How long from `now` until [`refresh_at`](Self::refresh_at): what a driver sleeps.
    ///
    /// # Errors
    ///
    /// As [`refresh_at`](Self::refresh_at).
    pub fn refresh_in<J: JitterSource + ?Sized>(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
        jitter: &mut J,
    ) -> Result<Duration, Error> {
        let when = self.refresh_at(not_before, not_after, now, jitter)?;
        Ok(Duration::try_from(when - now).unwrap_or(Duration::ZERO))
    }

    /// The width of the jitter window for a leaf of `lifetime`: `2 · jitter · lifetime`.
    pub fn jitter_window(&self, lifetime: Duration) -> Duration {
        // The float-to-int cast saturates (and maps NaN to zero), so this cannot panic.
        duration((lifetime.as_nanos() as f64 * 2.0 * self.jitter) as u128)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOT_BEFORE: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const NOT_AFTER: OffsetDateTime = datetime!(2026-06-02 12:00 UTC);

    fn at_u(u: f64, not_after: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        RefreshPolicy::default()
            .refresh_at(NOT_BEFORE, not_after, now, &mut || u)
            .unwrap()
    }

    #[test]
    fn centre_of_the_window_is_seventy_percent() {
        assert_eq!(
            at_u(0.5, NOT_AFTER, NOT_BEFORE),
            datetime!(2026-06-02 4:48 UTC)
        );
    }

    #[test]
    fn window_edges() {
        // u = 0: 65%.
        assert_eq!(
            at_u(0.0, NOT_AFTER, NOT_BEFORE),
            datetime!(2026-06-02 3:36 UTC)
        );
        // u → 1: 75% (the top of the window is open; 1.0 is clamped just below).
        let top = at_u(1.0, NOT_AFTER, NOT_BEFORE);
        assert!(top <= datetime!(2026-06-02 6:00 UTC));
        assert!(top > datetime!(2026-06-02 6:00 UTC) - time::Duration::microseconds(1));
        // u = 0.25: 67.5%.
        assert_eq!(
            at_u(0.25, NOT_AFTER, NOT_BEFORE),
            datetime!(2026-06-02 4:12 UTC)
        );
    }

    #[test]
    fn refresh_in_is_measured_from_now() {
        let policy = RefreshPolicy::default();
        let now = datetime!(2026-06-01 13:00 UTC);
        let wait = policy
            .refresh_in(NOT_BEFORE, NOT_AFTER, now, &mut || 0.5)
            .unwrap();
        assert_eq!(wait, Duration::from_secs(15 * 3600 + 48 * 60));
    }

    #[test]
    fn now_past_the_refresh_point_waits_the_minimum_delay() {
        let now = datetime!(2026-06-02 8:00 UTC);
        assert_eq!(at_u(0.5, NOT_AFTER, now), datetime!(2026-06-02 8:00:10 UTC));
    }

    #[test]
    fn minimum_delay_wins_over_the_safety_margin() {
        // 35s left: the margin says 30s before expiry (5s from now), the minimum delay 10s.
        let now = datetime!(2026-06-02 11:59:25 UTC);
        assert_eq!(
            at_u(0.5, NOT_AFTER, now),
            datetime!(2026-06-02 11:59:35 UTC)
        );
    }

    #[test]
    fn close_to_expiry_takes_the_midpoint_of_what_is_left() {
        // 5s left: now + 10s is past expiry and 70% is long gone.
        let now = datetime!(2026-06-02 11:59:55 UTC);
        assert_eq!(
            at_u(0.5, NOT_AFTER, now),
            datetime!(2026-06-02 11:59:57.5 UTC)
        );
        // 1ns left: "now" is the only instant left.
        let now = NOT_AFTER - time::Duration::nanoseconds(1);
        assert_eq!(at_u(0.5, NOT_AFTER, now), now);
    }

    #[test]
    fn the_minimum_delay_reaching_expiry_takes_the_midpoint() {
        // 10s left: now + 10s is NotAfter itself, never a refresh time.
        let now = datetime!(2026-06-02 11:59:50 UTC);
        assert_eq!(
            at_u(0.5, NOT_AFTER, now),
            datetime!(2026-06-02 11:59:55 UTC)
        );
    }

    #[test]
    fn without_a_minimum_delay_now_itself_is_not_a_refresh_time() {
        // Past the refresh point with no minimum delay: "now" is not strictly after now, and the
        // target is gone, so the midpoint of what is left.
        let policy = RefreshPolicy {
            min_delay: Duration::ZERO,
            ..RefreshPolicy::default()
        };
        let now = datetime!(2026-06-02 8:00 UTC);
        let at = policy
            .refresh_at(NOT_BEFORE, NOT_AFTER, now, &mut || 0.5)
            .unwrap();
        assert_eq!(at, datetime!(2026-06-02 10:00 UTC));
    }

    #[test]
    fn short_leaves() {
        let start = NOT_BEFORE;
        // 60s: 42s by the fraction, 30s by the safety margin.
        assert_eq!(
            at_u(0.5, datetime!(2026-06-01 12:01 UTC), start),
            datetime!(2026-06-01 12:00:30 UTC)
        );
        // 20s: the safety margin does not fit; the minimum delay does.
        assert_eq!(
            at_u(0.5, datetime!(2026-06-01 12:00:20 UTC), start),
            datetime!(2026-06-01 12:00:10 UTC)
        );
        // 5s: neither fits; the jittered fraction does (3.5s ± 0.25s).
        let five = datetime!(2026-06-01 12:00:05 UTC);
        assert_eq!(at_u(0.5, five, start), datetime!(2026-06-01 12:00:03.5 UTC));
        assert_eq!(
            at_u(0.0, five, start),
            datetime!(2026-06-01 12:00:03.25 UTC)
        );
        // 1s, the shortest accepted.
        assert_eq!(
            at_u(0.5, datetime!(2026-06-01 12:00:01 UTC), start),
            datetime!(2026-06-01 12:00:00.7 UTC)
        );
    }

    #[test]
    fn leaf_not_valid_yet_keeps_its_schedule() {
        // The local clock is an hour behind the CA's.
        let now = datetime!(2026-06-01 11:00 UTC);
        assert_eq!(at_u(0.5, NOT_AFTER, now), datetime!(2026-06-02 4:48 UTC));
    }

    #[test]
    fn offsets_do_not_matter() {
        let not_before = datetime!(2026-06-01 14:00 +2);
        let at = RefreshPolicy::default()
            .refresh_at(not_before, NOT_AFTER, NOT_BEFORE, &mut || 0.5)
            .unwrap();
        assert_eq!(at, datetime!(2026-06-02 4:48 UTC));
    }

    #[test]
    fn extreme_instants_and_durations_do_not_panic() {
        let policy = RefreshPolicy {
            min_delay: Duration::MAX,
            safety_margin: Duration::MAX,
            ..RefreshPolicy::default()
        };
        let not_before = datetime!(9999-12-30 0:00 UTC);
        let not_after = datetime!(9999-12-31 23:59:59.999_999_999 UTC);
        let at = policy
            .refresh_at(not_before, not_after, not_before, &mut || 0.5)
            .unwrap();
        assert!(not_before < at && at < not_after);
        let not_before = datetime!(-9999-01-01 0:00 UTC);
        let at = policy
            .refresh_at(not_before, not_after, not_before, &mut || 0.5)
            .unwrap();
        assert!(not_before < at && at < not_after);
    }

    #[test]
    fn expired() {
        let err = RefreshPolicy::default()
            .refresh_at(NOT_BEFORE, NOT_AFTER, NOT_AFTER, &mut || 0.5)
            .unwrap_err();
        assert_eq!(
            err,
            Error::Expired {
                not_after: NOT_AFTER,
                now: NOT_AFTER
            }
        );
        assert_eq!(
            err.to_string(),
            "certificate expired at 2026-06-02T12:00:00Z (now 2026-06-02T12:00:00Z); request a new one now and back off as if none were held"
        );
    }

    #[test]
    fn invalid_validity() {
        let policy = RefreshPolicy::default();
        for not_after in [
            NOT_BEFORE,
            NOT_BEFORE - time::Duration::HOUR,
            NOT_BEFORE + time::Duration::milliseconds(999),
        ] {
            let err = policy
                .refresh_at(NOT_BEFORE, not_after, NOT_BEFORE, &mut || 0.5)
                .unwrap_err();
            assert!(matches!(err, Error::InvalidValidity { .. }), "{err}");
        }
        let err = policy
            .refresh_at(NOT_BEFORE, NOT_BEFORE, NOT_BEFORE, &mut || 0.5)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "certificate validity from 2026-06-01T12:00:00Z to 2026-06-01T12:00:00Z is shorter than 1s; check the issuer's lifetime and clock"
        );
    }

    #[test]
    fn invalid_policies() {
        let cases = [
            (
                1.5,
                0.05,
                "the fraction must be a number in (0, 1), got 1.5",
            ),
            (0.0, 0.0, "the fraction must be a number in (0, 1), got 0"),
            (1.0, 0.0, "the fraction must be a number in (0, 1), got 1"),
            (
                f64::NAN,
                0.05,
                "the fraction must be a number in (0, 1), got NaN",
            ),
            (0.7, -0.1, "the jitter must be a number in [0, 1), got -0.1"),
            (
                0.7,
                f64::NAN,
                "the jitter must be a number in [0, 1), got NaN",
            ),
            (
                0.7,
                0.3,
                "fraction ± jitter (0.7 ± 0.3) must stay inside (0, 1); lower the jitter",
            ),
            (
                0.1,
                0.1,
                "fraction ± jitter (0.1 ± 0.1) must stay inside (0, 1); lower the jitter",
            ),
        ];
        for (fraction, jitter, message) in cases {
            let policy = RefreshPolicy::new(fraction, jitter);
            let err = policy.validate().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid refresh policy: {message}")
            );
            let Error::InvalidRefreshPolicy { problem } = err else {
                panic!("{err:?}");
            };
            let expected = if message.starts_with("the fraction") {
                RefreshProblem::FractionOutOfRange { fraction }
            } else if message.starts_with("the jitter") {
                RefreshProblem::JitterOutOfRange { jitter }
            } else {
                RefreshProblem::WindowOutOfRange { fraction, jitter }
            };
            assert_eq!(problem, expected, "{message}");
            assert_eq!(
                policy.refresh_at(NOT_BEFORE, NOT_AFTER, NOT_BEFORE, &mut || 0.5),
                Err(err)
            );
        }
        RefreshPolicy::default().validate().unwrap();
        RefreshPolicy::new(0.5, 0.0).validate().unwrap();
    }

    #[test]
    fn jitter_window() {
        let policy = RefreshPolicy::default();
        assert_eq!(
            policy.jitter_window(Duration::from_secs(86_400)),
            Duration::from_secs(2 * 3600 + 24 * 60)
        );
        assert_eq!(
            RefreshPolicy::new(0.5, 0.0).jitter_window(Duration::MAX),
            Duration::ZERO
        );
    }
}
