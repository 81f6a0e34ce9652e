//! The error type of the check library: bad arguments and failed connections. Failed checks are
//! not errors; they are [`CheckResult`](crate::CheckResult)s in the [`Report`](crate::Report).

/// Why an argument was refused or a live proxy could not be inspected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No TCP connection could be made to a proxy address.
    #[error(
        "cannot connect to {addr}: {reason}; check the address and that the proxy listens there"
    )]
    Connect {
        /// The address as given.
        addr: String,
        /// What the socket layer reported.
        reason: String,
    },
    /// An expiry window could not be parsed.
    #[error(
        "invalid expiry window {input:?}: {reason}; use a Go duration such as 1440h, or days \
         such as 60d"
    )]
    InvalidExpiryWindow {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--fail-on` level is not `warning` or `error`.
    #[error("invalid failure level {input:?}: expected `warning` or `error`")]
    InvalidFailOn {
        /// The input as given.
        input: String,
    },
    /// An identity scheme is neither `linkerd.io/tls` nor `kubernetes.io/tls`.
    #[error("invalid identity scheme {input:?}: expected `linkerd.io/tls` or `kubernetes.io/tls`")]
    InvalidIdentityScheme {
        /// The input as given.
        input: String,
    },
    /// A proxy address is not `HOST:PORT` or `NAME@HOST:PORT`.
    #[error("invalid proxy address {input:?}: {reason}; use HOST:PORT or SERVER-NAME@HOST:PORT")]
    InvalidProxyAddr {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The report could not be serialised to JSON.
    #[error("cannot serialise the report to JSON: {reason}")]
    Json {
        /// What serde_json reported.
        reason: String,
    },
    /// The TLS handshake with a proxy failed, or it presented no certificate.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// The address as given.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}
