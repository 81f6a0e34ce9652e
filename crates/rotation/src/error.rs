//! The rotation error type.

use core::fmt;
use core::time::Duration;

use meshid_policy::{format_go_duration, rfc3339};
use time::OffsetDateTime;

/// Why a schedule could not be computed or a policy was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The certificate has expired: no instant inside its validity is left to schedule.
    ///
    /// A driver treats this as holding no certificate: request one now and, on failure, back
    /// off with [`Backoff::next_delay`](crate::Backoff::next_delay) and no `not_after`.
    Expired {
        /// The certificate's NotAfter.
        not_after: OffsetDateTime,
        /// The time the schedule was asked for.
        now: OffsetDateTime,
    },
    /// The backoff policy's fields do not fit together.
    InvalidBackoff {
        /// What is wrong.
        problem: BackoffProblem,
    },
    /// The issuer schedule's fields do not fit together.
    InvalidIssuerSchedule {
        /// What is wrong.
        problem: IssuerScheduleProblem,
    },
    /// The refresh policy's fields do not fit together.
    InvalidRefreshPolicy {
        /// What is wrong.
        problem: RefreshProblem,
    },
    /// NotAfter is not at least one second after NotBefore (X.509 validity has one-second
    /// resolution, so no real certificate is shorter).
    InvalidValidity {
        /// The certificate's NotBefore.
        not_before: OffsetDateTime,
        /// The certificate's NotAfter.
        not_after: OffsetDateTime,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { not_after, now } => write!(
                f,
                "certificate expired at {} (now {}); request a new one now and back off as if none were held",
                rfc3339(*not_after),
                rfc3339(*now)
            ),
            Self::InvalidBackoff { problem } => write!(f, "invalid backoff policy: {problem}"),
            Self::InvalidIssuerSchedule { problem } => {
                write!(f, "invalid issuer schedule: {problem}")
            }
            Self::InvalidRefreshPolicy { problem } => {
                write!(f, "invalid refresh policy: {problem}")
            }
            Self::InvalidValidity {
                not_before,
                not_after,
            } => write!(
                f,
                "certificate validity from {} to {} is shorter than 1s; check the issuer's lifetime and clock",
                rfc3339(*not_before),
                rfc3339(*not_after)
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Which fields of a [`BackoffPolicy`](crate::BackoffPolicy) do not fit together
/// ([`Error::InvalidBackoff`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackoffProblem {
    /// The initial delay is zero.
    ZeroInitial,
    /// The floor is longer than the initial delay.
    FloorAboveInitial {
        /// The floor.
        floor: Duration,
        /// The initial delay.
        initial: Duration,
    },
    /// The cap without a certificate is shorter than the initial delay.
    CapWithoutCertBelowInitial {
        /// The cap without a certificate.
        cap: Duration,
        /// The initial delay.
        initial: Duration,
    },
    /// The cap with a certificate is shorter than the initial delay.
    CapWithCertBelowInitial {
        /// The cap with a certificate.
        cap: Duration,
        /// The initial delay.
        initial: Duration,
    },
}

impl fmt::Display for BackoffProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let go = format_go_duration;
        let (name, cap, initial) = match self {
            Self::ZeroInitial => {
                return f.write_str("the initial delay must be greater than zero");
            }
            Self::FloorAboveInitial { floor, initial } => {
                return write!(
                    f,
                    "the floor {} is longer than the initial delay {}",
                    go(*floor),
                    go(*initial)
                );
            }
            Self::CapWithoutCertBelowInitial { cap, initial } => {
                ("cap without a certificate", cap, initial)
            }
            Self::CapWithCertBelowInitial { cap, initial } => {
                ("cap with a certificate", cap, initial)
            }
        };
        write!(
            f,
            "the {name} {} is shorter than the initial delay {}",
            go(*cap),
            go(*initial)
        )
    }
}

/// What is wrong with an [`IssuerSchedule`](crate::IssuerSchedule)
/// ([`Error::InvalidIssuerSchedule`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerScheduleProblem {
    /// The duration is shorter than [`MIN_DURATION`](crate::MIN_DURATION).
    DurationTooShort {
        /// The duration.
        duration: Duration,
        /// The minimum.
        min: Duration,
    },
    /// Both `renewBefore` and `renewBeforePercentage` are set.
    RenewBeforeAndPercentage,
    /// `renewBefore` is shorter than [`MIN_RENEW_BEFORE`](crate::MIN_RENEW_BEFORE).
    RenewBeforeTooShort {
        /// `renewBefore`.
        renew_before: Duration,
        /// The minimum.
        min: Duration,
    },
    /// `renewBefore` is not shorter than the duration.
    RenewBeforeNotBelowDuration {
        /// The duration.
        duration: Duration,
        /// `renewBefore`.
        renew_before: Duration,
    },
    /// `renewBeforePercentage` is not in 1..=99.
    PercentageOutOfRange {
        /// `renewBeforePercentage`.
        percent: u8,
    },
}

impl fmt::Display for IssuerScheduleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let go = format_go_duration;
        match self {
            Self::DurationTooShort { duration, min } => write!(
                f,
                "duration {} is shorter than the minimum of {}",
                go(*duration),
                go(*min)
            ),
            Self::RenewBeforeAndPercentage => f.write_str(
                "renewBefore and renewBeforePercentage are mutually exclusive; set one of them",
            ),
            Self::RenewBeforeTooShort { renew_before, min } => write!(
                f,
                "renewBefore {} is shorter than the minimum of {}",
                go(*renew_before),
                go(*min)
            ),
            Self::RenewBeforeNotBelowDuration {
                duration,
                renew_before,
            } => write!(
                f,
                "duration {} must be longer than renewBefore {}",
                go(*duration),
                go(*renew_before)
            ),
            Self::PercentageOutOfRange { percent } => write!(
                f,
                "renewBeforePercentage must be between 1 and 99, got {percent}"
            ),
        }
    }
}

/// What is wrong with a [`RefreshPolicy`](crate::RefreshPolicy)
/// ([`Error::InvalidRefreshPolicy`]).
///
/// Two problems are equal when their numbers have the same bits, so a NaN equals itself.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum RefreshProblem {
    /// The fraction is not in (0, 1) (or is NaN).
    FractionOutOfRange {
        /// The fraction.
        fraction: f64,
    },
    /// The jitter is not in [0, 1) (or is NaN).
    JitterOutOfRange {
        /// The jitter.
        jitter: f64,
    },
    /// `fraction ± jitter` reaches 0 or 1.
    WindowOutOfRange {
        /// The fraction.
        fraction: f64,
        /// The jitter.
        jitter: f64,
    },
}

impl PartialEq for RefreshProblem {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::FractionOutOfRange { fraction: a },
                Self::FractionOutOfRange { fraction: b },
            )
            | (Self::JitterOutOfRange { jitter: a }, Self::JitterOutOfRange { jitter: b }) => {
                a.to_bits() == b.to_bits()
            }
            (
                Self::WindowOutOfRange {
                    fraction: a,
                    jitter: x,
                },
                Self::WindowOutOfRange {
                    fraction: b,
                    jitter: y,
                },
            ) => a.to_bits() == b.to_bits() && x.to_bits() == y.to_bits(),
            _ => false,
        }
    }
}

impl Eq for RefreshProblem {}

impl fmt::Display for RefreshProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FractionOutOfRange { fraction } => {
                write!(f, "the fraction must be a number in (0, 1), got {fraction}")
            }
            Self::JitterOutOfRange { jitter } => {
                write!(f, "the jitter must be a number in [0, 1), got {jitter}")
            }
            Self::WindowOutOfRange { fraction, jitter } => write!(
                f,
                "fraction ± jitter ({fraction} ± {jitter}) must stay inside (0, 1); lower the jitter"
            ),
        }
    }
}
