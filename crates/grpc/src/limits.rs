//! The Certify server's transport and request limits.

use core::ops::RangeInclusive;
use core::time::Duration;

use crate::{Error, LimitProblem};

/// Limits of the Certify server: HTTP/2 (per connection), requests (per request and across
/// the server) and the accept loop. [`Default`] is the strict choice; every field is checked
/// by [`validate`](Self::validate), which [`IdentityService::serve_with`] calls.
///
/// | limit | default | past it |
/// |---|---|---|
/// | [`max_concurrent_streams`](Self::max_concurrent_streams) | 128 per connection | `SETTINGS_MAX_CONCURRENT_STREAMS` advertises it; a stream past it is refused (`REFUSED_STREAM`) |
/// | [`max_local_error_resets`](Self::max_local_error_resets) | 1,024 per connection | streams the server had to reset for the client's protocol errors (and refused streams): then `GOAWAY ENHANCE_YOUR_CALM` (CVE-2025-8671, "MadeYouReset") |
/// | [`max_pending_accept_resets`](Self::max_pending_accept_resets) | 20 per connection | streams the client reset before the server took them: then `GOAWAY ENHANCE_YOUR_CALM` (CVE-2023-44487, "rapid reset") |
/// | [`max_message_size`](Self::max_message_size) | 64 KiB | a request announcing a larger message is refused from its 5-byte prefix, nothing more is read: `OUT_OF_RANGE` |
/// | [`request_timeout`](Self::request_timeout) | 10 s | from the request's headers to its answer, body upload and token review included: `DEADLINE_EXCEEDED` |
/// | [`max_in_flight`](Self::max_in_flight) | 1,024 across the server | answered at once with `RESOURCE_EXHAUSTED`, so clients back off instead of queueing |
/// | [`keepalive_interval`](Self::keepalive_interval), [`keepalive_timeout`](Self::keepalive_timeout) | 60 s, 20 s | an HTTP/2 PING after 60 s without traffic; no answer within 20 s closes the connection |
/// | [`accept_backoff`](Self::accept_backoff) | 5 ms doubling to 1 s | an accept error other than a connection's own (e.g. `EMFILE`) pauses accepting |
/// | [`tls_handshake_timeout`](Self::tls_handshake_timeout) | 10 s | served over TLS ([`IdentityService::serve_tls`]): a connection whose TLS handshake has not finished is closed |
///
/// The per-stream receive window is the message size limit plus the 5-byte gRPC prefix
/// (at least HTTP/2's 65,535), so a client cannot make the server buffer much more than one
/// message per stream; the connection window and the header list limit are hyper's (1 MiB,
/// 16 KiB).
///
/// Over TLS, at most [`MAX_PENDING_HANDSHAKES`](Self::MAX_PENDING_HANDSHAKES) handshakes run at
/// once; past it, connections wait in the listener's backlog.
///
/// [`IdentityService::serve_with`]: crate::IdentityService::serve_with
/// [`IdentityService::serve_tls`]: crate::IdentityService::serve_tls
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrpcLimits {
    /// Streams one HTTP/2 connection may have open at once, advertised as
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` and enforced.
    pub max_concurrent_streams: u32,
    /// Streams of one connection the server may reset because of the client's protocol errors
    /// (malformed requests, refused streams, ...) before it sends GOAWAY.
    pub max_local_error_resets: usize,
    /// Streams of one connection the client may reset before the server took them, before it
    /// sends GOAWAY.
    pub max_pending_accept_resets: usize,
    /// The largest Certify request accepted, in bytes (the decoded gRPC message).
    pub max_message_size: usize,
    /// How long one request may take, from its headers to its answer.
    pub request_timeout: Duration,
    /// Requests being answered at once, over all connections.
    pub max_in_flight: usize,
    /// Idle time after which the server PINGs a connection.
    pub keepalive_interval: Duration,
    /// How long the server waits for the PING's acknowledgement before closing the connection.
    pub keepalive_timeout: Duration,
    /// How the accept loop waits after an accept error.
    pub accept_backoff: AcceptBackoff,
    /// How long a connection served over TLS has to finish its handshake before it is
    /// closed (a client that connects and never finishes holds nothing longer).
    pub tls_handshake_timeout: Duration,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 128,
            max_local_error_resets: 1024,
            max_pending_accept_resets: 20,
            max_message_size: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            accept_backoff: AcceptBackoff::default(),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl GrpcLimits {
    /// Allowed [`max_concurrent_streams`](Self::max_concurrent_streams).
    pub const MAX_CONCURRENT_STREAMS: RangeInclusive<u32> = 1..=10_000;
    /// Allowed [`max_local_error_resets`](Self::max_local_error_resets).
    pub const MAX_LOCAL_ERROR_RESETS: RangeInclusive<usize> = 1..=100_000;
    /// Allowed [`max_pending_accept_resets`](Self::max_pending_accept_resets).
    pub const MAX_PENDING_ACCEPT_RESETS: RangeInclusive<usize> = 1..=10_000;
    /// Allowed [`max_message_size`](Self::max_message_size): a Certify request is a CSR of at
    /// most 16 KiB, a token and an identity name.
    pub const MAX_MESSAGE_SIZE: RangeInclusive<usize> = 16 * 1024..=16 * 1024 * 1024;
    /// Allowed [`request_timeout`](Self::request_timeout).
    pub const REQUEST_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(100)..=Duration::from_secs(300);
    /// Allowed [`max_in_flight`](Self::max_in_flight).
    pub const MAX_IN_FLIGHT: RangeInclusive<usize> = 1..=1_000_000;
    /// Allowed [`keepalive_interval`](Self::keepalive_interval).
    pub const KEEPALIVE_INTERVAL: RangeInclusive<Duration> =
        Duration::from_millis(100)..=Duration::from_secs(7200);
    /// Allowed [`keepalive_timeout`](Self::keepalive_timeout).
    pub const KEEPALIVE_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(100)..=Duration::from_secs(600);
    /// Allowed [`tls_handshake_timeout`](Self::tls_handshake_timeout).
    pub const TLS_HANDSHAKE_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(100)..=Duration::from_secs(60);
    /// TLS handshakes in progress at once; past it, accepting waits for one to finish.
    pub const MAX_PENDING_HANDSHAKES: usize = 1024;

    /// Checks every limit against its allowed range (the associated constants); the error
    /// names the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let Self {
            max_concurrent_streams,
            max_local_error_resets,
            max_pending_accept_resets,
            max_message_size,
            request_timeout,
            max_in_flight,
            keepalive_interval,
            keepalive_timeout,
            accept_backoff,
            tls_handshake_timeout,
        } = self;
        check_number(
            "max_concurrent_streams",
            *max_concurrent_streams,
            &Self::MAX_CONCURRENT_STREAMS,
        )?;
        check_number(
            "max_local_error_resets",
            *max_local_error_resets,
            &Self::MAX_LOCAL_ERROR_RESETS,
        )?;
        check_number(
            "max_pending_accept_resets",
            *max_pending_accept_resets,
            &Self::MAX_PENDING_ACCEPT_RESETS,
        )?;
        check_number(
            "max_message_size",
            *max_message_size,
            &Self::MAX_MESSAGE_SIZE,
        )?;
        check_duration("request_timeout", *request_timeout, &Self::REQUEST_TIMEOUT)?;
        check_number("max_in_flight", *max_in_flight, &Self::MAX_IN_FLIGHT)?;
        check_duration(
            "keepalive_interval",
            *keepalive_interval,
            &Self::KEEPALIVE_INTERVAL,
        )?;
        check_duration(
            "keepalive_timeout",
            *keepalive_timeout,
            &Self::KEEPALIVE_TIMEOUT,
        )?;
        check_duration(
            "tls_handshake_timeout",
            *tls_handshake_timeout,
            &Self::TLS_HANDSHAKE_TIMEOUT,
        )?;
        accept_backoff.validate()
    }

    /// The HTTP/2 receive window of one stream: one whole message and its prefix, at least
    /// the protocol's default.
    pub(crate) fn stream_window(&self) -> u32 {
        let wanted = self.max_message_size.saturating_add(5).max(65_535);
        u32::try_from(wanted).unwrap_or(u32::MAX)
    }
}

/// How an accept loop waits after an accept error that is not one connection's own (such as
/// `EMFILE`, out of file descriptors): `min` after the first, doubling up to `max`, back to
/// `min` after a successful accept. Errors of one connection (reset or aborted before it was
/// accepted) are skipped at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceptBackoff {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(5),
            max: Duration::from_secs(1),
        }
    }
}

impl AcceptBackoff {
    /// Allowed waits.
    pub const RANGE: RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(60);

    /// A backoff from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }

    /// Checks that both waits are in [`RANGE`](Self::RANGE) and `min <= max`.
    pub fn validate(&self) -> Result<(), Error> {
        check_duration("accept_backoff.min", self.min, &Self::RANGE)?;
        check_duration("accept_backoff.max", self.max, &Self::RANGE)?;
        if self.min > self.max {
            return Err(Error::InvalidLimit {
                name: "accept_backoff",
                reason: LimitProblem::BackoffInverted {
                    first: self.min,
                    longest: self.max,
                },
            });
        }
        Ok(())
    }
}

fn check_number<T>(name: &'static str, value: T, range: &RangeInclusive<T>) -> Result<(), Error>
where
    T: PartialOrd + Copy + TryInto<u64>,
{
    if range.contains(&value) {
        return Ok(());
    }
    // Every count here fits: the limits are `u32` and `usize`.
    let count = |n: T| n.try_into().unwrap_or(u64::MAX);
    Err(Error::InvalidLimit {
        name,
        reason: LimitProblem::CountOutOfRange {
            value: count(value),
            min: count(*range.start()),
            max: count(*range.end()),
        },
    })
}

fn check_duration(
    name: &'static str,
    value: Duration,
    range: &RangeInclusive<Duration>,
) -> Result<(), Error> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(Error::InvalidLimit {
        name,
        reason: LimitProblem::DurationOutOfRange {
            value,
            min: *range.start(),
            max: *range.end(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(GrpcLimits::default().validate(), Ok(()));
        assert_eq!(GrpcLimits::default().stream_window(), 64 * 1024 + 5);
    }

    #[test]
    fn a_limit_out_of_range_is_named() {
        let limits = GrpcLimits {
            max_concurrent_streams: 0,
            ..GrpcLimits::default()
        };
        assert_eq!(
            limits.validate().map_err(|e| e.to_string()),
            Err(
                "invalid gRPC server limit max_concurrent_streams: 0 is not between 1 and 10000"
                    .to_owned()
            )
        );

        let limits = GrpcLimits {
            max_message_size: 1024,
            ..GrpcLimits::default()
        };
        assert_eq!(
            limits.validate().map_err(|e| e.to_string()),
            Err(
                "invalid gRPC server limit max_message_size: 1024 is not between 16384 and 16777216"
                    .to_owned()
            )
        );

        let limits = GrpcLimits {
            request_timeout: Duration::ZERO,
            ..GrpcLimits::default()
        };
        assert_eq!(
            limits.validate().map_err(|e| e.to_string()),
            Err(
                "invalid gRPC server limit request_timeout: 0ns is not between 100ms and 300s"
                    .to_owned()
            )
        );

        let limits = GrpcLimits {
            tls_handshake_timeout: Duration::from_secs(61),
            ..GrpcLimits::default()
        };
        assert_eq!(
            limits.validate().map_err(|e| e.to_string()),
            Err(
                "invalid gRPC server limit tls_handshake_timeout: 61s is not between 100ms and 60s"
                    .to_owned()
            )
        );

        let limits = GrpcLimits {
            accept_backoff: AcceptBackoff::new(Duration::from_secs(2), Duration::from_secs(1)),
            ..GrpcLimits::default()
        };
        assert_eq!(
            limits.validate().map_err(|e| e.to_string()),
            Err("invalid gRPC server limit accept_backoff: the first wait (2s) is longer than the longest (1s)".to_owned())
        );
    }

    #[test]
    fn a_limit_out_of_range_carries_its_value_and_range() {
        let limits = GrpcLimits {
            max_in_flight: 0,
            ..GrpcLimits::default()
        };
        let error = limits.validate().unwrap_err();
        let Error::InvalidLimit { name, reason } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*name, "max_in_flight");
        assert_eq!(
            *reason,
            LimitProblem::CountOutOfRange {
                value: 0,
                min: 1,
                max: 1_000_000
            }
        );
        assert_eq!(reason.to_string(), "0 is not between 1 and 1000000");

        let limits = GrpcLimits {
            keepalive_timeout: Duration::ZERO,
            ..GrpcLimits::default()
        };
        let Err(Error::InvalidLimit { name, reason }) = limits.validate() else {
            panic!("a zero keepalive timeout passed");
        };
        assert_eq!(name, "keepalive_timeout");
        assert_eq!(
            reason,
            LimitProblem::DurationOutOfRange {
                value: Duration::ZERO,
                min: *GrpcLimits::KEEPALIVE_TIMEOUT.start(),
                max: *GrpcLimits::KEEPALIVE_TIMEOUT.end(),
            }
        );
        assert!(
            reason.to_string().starts_with("0ns is not between "),
            "{reason}"
        );

        let backoff = AcceptBackoff::new(Duration::from_secs(2), Duration::from_secs(1));
        let error = backoff.validate().unwrap_err();
        assert_eq!(
            error,
            Error::InvalidLimit {
                name: "accept_backoff",
                reason: LimitProblem::BackoffInverted {
                    first: Duration::from_secs(2),
                    longest: Duration::from_secs(1),
                },
            }
        );
        assert_eq!(
            error.to_string(),
            "invalid gRPC server limit accept_backoff: the first wait (2s) is longer than the longest (1s)"
        );
    }
}
