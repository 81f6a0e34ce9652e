//! The rotation error type.

use core::fmt;

use meshid_policy::rfc3339;
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
        reason: String,
    },
    /// The issuer schedule's fields do not fit together.
    InvalidIssuerSchedule {
        /// What is wrong.
        reason: String,
    },
    /// The refresh policy's fields do not fit together.
    InvalidRefreshPolicy {
        /// What is wrong.
        reason: String,
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
            Self::InvalidBackoff { reason } => write!(f, "invalid backoff policy: {reason}"),
            Self::InvalidIssuerSchedule { reason } => {
                write!(f, "invalid issuer schedule: {reason}")
            }
            Self::InvalidRefreshPolicy { reason } => write!(f, "invalid refresh policy: {reason}"),
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
