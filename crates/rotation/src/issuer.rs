//! When an issuer certificate is renewed, with cert-manager's semantics.

use core::time::Duration;

use time::OffsetDateTime;

use crate::instant::{NANOS_PER_SECOND, at, nanos, span};
use crate::{Error, IssuerScheduleProblem};

/// cert-manager's smallest accepted `duration`.
pub const MIN_DURATION: Duration = Duration::from_secs(3600);
/// cert-manager's smallest accepted `renewBefore`.
pub const MIN_RENEW_BEFORE: Duration = Duration::from_secs(300);

/// When to renew an issuer (or any CA-managed) certificate, as cert-manager's `Certificate`
/// resource says it: `duration` plus `renewBefore` or `renewBeforePercentage`.
///
/// The two halves mirror cert-manager's split between admission and control:
///
/// - [`validate`](Self::validate) is the webhook: `duration` ≥ 1h, `renewBefore` ≥ 5m and
///   shorter than `duration`, `renewBeforePercentage` in 1..=99, and not both set.
/// - [`renew_at`](Self::renew_at) is the controller: it works on the certificate actually
///   issued, whose lifetime may be shorter than `duration` (a CA clamps it to its own expiry),
///   and silently falls back to renewing at 2/3 of that lifetime when `renewBefore` does not fit
///   in it or the percentage is out of range, exactly as cert-manager does.
///
/// The default, 48h with no override, renews at 2/3 of the lifetime (32h after issuance); 48h
/// is the issuer lifetime of Linkerd's cert-manager guide.
///
/// ```
/// use core::time::Duration;
/// use meshid_rotation::IssuerSchedule;
/// use time::macros::datetime;
///
/// let not_before = datetime!(2026-06-01 12:00 UTC);
/// let not_after = datetime!(2026-06-03 12:00 UTC);
/// let mut schedule = IssuerSchedule::default();
/// assert_eq!(schedule.renew_at(not_before, not_after)?, datetime!(2026-06-02 20:00 UTC));
///
/// schedule.renew_before = Some(Duration::from_secs(25 * 3600)); // Linkerd's guide
/// schedule.validate()?;
/// assert_eq!(schedule.renew_at(not_before, not_after)?, datetime!(2026-06-02 11:00 UTC));
/// assert!(schedule.needs_renewal(datetime!(2026-06-02 11:00 UTC), not_before, not_after));
/// # Ok::<(), meshid_rotation::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerSchedule {
    /// The lifetime to request from the CA (default 48h).
    pub duration: Duration,
    /// Renew this long before NotAfter (`renewBefore`).
    pub renew_before: Option<Duration>,
    /// Renew when this percentage of the actual lifetime is left (`renewBeforePercentage`).
    pub renew_before_percentage: Option<u8>,
}

impl Default for IssuerSchedule {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(48 * 3600),
            renew_before: None,
            renew_before_percentage: None,
        }
    }
}

impl IssuerSchedule {
    /// A schedule requesting `duration`, renewing at 2/3 of the issued lifetime.
    pub fn new(duration: Duration) -> Self {
        Self {
            duration,
            ..Self::default()
        }
    }

    /// Checks the fields as cert-manager's admission webhook does.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid =
            |problem: IssuerScheduleProblem| Err(Error::InvalidIssuerSchedule { problem });
        let Self {
            duration,
            renew_before,
            renew_before_percentage,
        } = *self;
        if duration < MIN_DURATION {
            return invalid(IssuerScheduleProblem::DurationTooShort {
                duration,
                min: MIN_DURATION,
            });
        }
        match (renew_before, renew_before_percentage) {
            (Some(_), Some(_)) => invalid(IssuerScheduleProblem::RenewBeforeAndPercentage),
            (Some(before), None) if before < MIN_RENEW_BEFORE => {
                invalid(IssuerScheduleProblem::RenewBeforeTooShort {
                    renew_before: before,
                    min: MIN_RENEW_BEFORE,
                })
            }
            (Some(before), None) if before >= duration => {
                invalid(IssuerScheduleProblem::RenewBeforeNotBelowDuration {
                    duration,
                    renew_before: before,
                })
            }
            (None, Some(percent)) if !(1..=99).contains(&percent) => {
                invalid(IssuerScheduleProblem::PercentageOutOfRange { percent })
            }
            _ => Ok(()),
        }
    }

    /// How long before NotAfter a certificate with this actual lifetime is renewed.
    ///
    /// `renewBefore` if set, non-zero and shorter than the lifetime; else
    /// `renewBeforePercentage` percent of the lifetime if it is in 1..=99; else a third.
    pub fn renew_before_for(&self, lifetime: Duration) -> Duration {
        match (self.renew_before, self.renew_before_percentage) {
            (Some(before), _) if !before.is_zero() && before < lifetime => before,
            (_, Some(percent)) if (1..=99).contains(&percent) => {
                crate::instant::duration(lifetime.as_nanos() * u128::from(percent) / 100)
            }
            _ => crate::instant::duration(lifetime.as_nanos() / 3),
        }
    }

    /// When to renew a certificate valid from `not_before` to `not_after`:
    /// `not_after − renew_before_for(lifetime)`, truncated to the whole second (cert-manager
    /// stores the time with one-second resolution and truncates so a stored time is never later
    /// than the computed one), and never before `not_before`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValidity`] if the certificate is valid for less than one second.
    pub fn renew_at(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<OffsetDateTime, Error> {
        let (start, end) = (nanos(not_before), nanos(not_after));
        if end - start < NANOS_PER_SECOND {
            return Err(Error::InvalidValidity {
                not_before,
                not_after,
            });
        }
        let lifetime = crate::instant::duration((end - start).unsigned_abs());
        let renew = end - span(self.renew_before_for(lifetime));
        let truncated = renew - renew.rem_euclid(NANOS_PER_SECOND);
        Ok(at(not_before, truncated.max(start)))
    }

    /// Whether a certificate valid from `not_before` to `not_after` is due for renewal at `now`.
    ///
    /// A certificate whose validity is shorter than one second is always due.
    pub fn needs_renewal(
        &self,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> bool {
        self.renew_at(not_before, not_after)
            .map_or(true, |renew_at| now >= renew_at)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOT_BEFORE: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    type Change<T> = fn(&mut T);

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    #[test]
    fn default_renews_at_two_thirds() {
        let schedule = IssuerSchedule::default();
        schedule.validate().unwrap();
        let not_after = datetime!(2026-06-03 12:00 UTC);
        assert_eq!(
            schedule.renew_at(NOT_BEFORE, not_after).unwrap(),
            datetime!(2026-06-02 20:00 UTC)
        );
    }

    #[test]
    fn renew_before() {
        let schedule = IssuerSchedule {
            renew_before: Some(hours(25)),
            ..IssuerSchedule::default()
        };
        let not_after = datetime!(2026-06-03 12:00 UTC);
        assert_eq!(
            schedule.renew_at(NOT_BEFORE, not_after).unwrap(),
            datetime!(2026-06-02 11:00 UTC)
        );
    }

    #[test]
    fn renew_before_longer_than_the_issued_lifetime_falls_back_to_two_thirds() {
        // The CA clamped the 48h request to 24h; renewBefore 25h no longer fits.
        let mut schedule = IssuerSchedule {
            renew_before: Some(hours(25)),
            ..IssuerSchedule::default()
        };
        let not_after = datetime!(2026-06-02 12:00 UTC);
        assert_eq!(
            schedule.renew_at(NOT_BEFORE, not_after).unwrap(),
            datetime!(2026-06-02 4:00 UTC)
        );
        // Equal to the lifetime: also falls back.
        schedule.renew_before = Some(hours(24));
        assert_eq!(
            schedule.renew_at(NOT_BEFORE, not_after).unwrap(),
            datetime!(2026-06-02 4:00 UTC)
        );
    }

    #[test]
    fn renew_before_percentage() {
        // cert-manager's example: 60 minutes, 25% → renew 45 minutes after issuance.
        let mut schedule = IssuerSchedule::new(hours(1));
        schedule.renew_before_percentage = Some(25);
        schedule.validate().unwrap();
        assert_eq!(
            schedule
                .renew_at(NOT_BEFORE, datetime!(2026-06-01 13:00 UTC))
                .unwrap(),
            datetime!(2026-06-01 12:45 UTC)
        );
        // Out of range: two thirds.
        schedule.renew_before_percentage = Some(100);
        assert_eq!(
            schedule
                .renew_at(NOT_BEFORE, datetime!(2026-06-01 13:00 UTC))
                .unwrap(),
            datetime!(2026-06-01 12:40 UTC)
        );
    }

    #[test]
    fn truncated_to_the_second() {
        // 1h + 0.5s: a third is 1200.1666…s, so 12:40:00.333… truncates to 12:40:00.
        let not_after = datetime!(2026-06-01 13:00:00.5 UTC);
        assert_eq!(
            IssuerSchedule::default()
                .renew_at(NOT_BEFORE, not_after)
                .unwrap(),
            datetime!(2026-06-01 12:40 UTC)
        );
        // Never before NotBefore, even for a NotBefore with a fraction of a second.
        // 1s from 12:00:00.2: 12:00:00.866… truncates to 12:00:00, before NotBefore.
        let not_before = datetime!(2026-06-01 12:00:00.2 UTC);
        let not_after = datetime!(2026-06-01 12:00:01.2 UTC);
        assert_eq!(
            IssuerSchedule::default()
                .renew_at(not_before, not_after)
                .unwrap(),
            not_before
        );
    }

    #[test]
    fn needs_renewal() {
        let schedule = IssuerSchedule::default();
        let not_after = datetime!(2026-06-03 12:00 UTC);
        let due = datetime!(2026-06-02 20:00 UTC);
        assert!(!schedule.needs_renewal(
            due - time::Duration::nanoseconds(1),
            NOT_BEFORE,
            not_after
        ));
        assert!(schedule.needs_renewal(due, NOT_BEFORE, not_after));
        assert!(schedule.needs_renewal(not_after, NOT_BEFORE, not_after));
        // An empty validity is always due.
        assert!(schedule.needs_renewal(NOT_BEFORE, NOT_BEFORE, NOT_BEFORE));
        assert!(matches!(
            schedule.renew_at(NOT_BEFORE, NOT_BEFORE),
            Err(Error::InvalidValidity { .. })
        ));
    }

    #[test]
    fn invalid_schedules() {
        use IssuerScheduleProblem as P;
        let cases: [(Change<IssuerSchedule>, P, &str); 6] = [
            (
                |s| s.duration = Duration::from_secs(1800),
                P::DurationTooShort {
                    duration: Duration::from_secs(1800),
                    min: hours(1),
                },
                "duration 30m0s is shorter than the minimum of 1h0m0s",
            ),
            (
                |s| {
                    s.renew_before = Some(hours(1));
                    s.renew_before_percentage = Some(50);
                },
                P::RenewBeforeAndPercentage,
                "renewBefore and renewBeforePercentage are mutually exclusive; set one of them",
            ),
            (
                |s| s.renew_before = Some(Duration::from_secs(60)),
                P::RenewBeforeTooShort {
                    renew_before: Duration::from_secs(60),
                    min: Duration::from_secs(300),
                },
                "renewBefore 1m0s is shorter than the minimum of 5m0s",
            ),
            (
                |s| s.renew_before = Some(hours(48)),
                P::RenewBeforeNotBelowDuration {
                    duration: hours(48),
                    renew_before: hours(48),
                },
                "duration 48h0m0s must be longer than renewBefore 48h0m0s",
            ),
            (
                |s| s.renew_before_percentage = Some(0),
                P::PercentageOutOfRange { percent: 0 },
                "renewBeforePercentage must be between 1 and 99, got 0",
            ),
            (
                |s| s.renew_before_percentage = Some(100),
                P::PercentageOutOfRange { percent: 100 },
                "renewBeforePercentage must be between 1 and 99, got 100",
            ),
        ];
        for (change, problem, message) in cases {
            let mut schedule = IssuerSchedule::default();
            change(&mut schedule);
            let err = schedule.validate().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid issuer schedule: {message}")
            );
            assert_eq!(err, Error::InvalidIssuerSchedule { problem });
        }
    }

    #[test]
    fn the_minimums_themselves_are_allowed() {
        let mut schedule = IssuerSchedule {
            renew_before: Some(MIN_RENEW_BEFORE),
            ..IssuerSchedule::default()
        };
        schedule.validate().unwrap();
        schedule.duration = MIN_DURATION;
        schedule.validate().unwrap();
    }
}
