//! The crate error type.

use core::time::Duration;

/// Why a gRPC server or client could not be set up or run.
///
/// Refusals of a Certify request are not errors of this type: the server answers them with a
/// gRPC status, and the client turns a status into a
/// [`CertifyError`](meshid_client::CertifyError).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The identity service could not be reached: TCP connect, TLS handshake (a server
    /// certificate that does not verify or does not name the expected identity included) or
    /// HTTP/2 setup failed, or did not finish within the connect timeout.
    #[error("cannot connect to the identity service at {uri}: {reason}")]
    Connect {
        /// The URI connected to.
        uri: String,
        /// What kind of failure it was, for a caller that decides whether to retry.
        kind: ConnectKind,
        /// What failed, with its causes: the texts of the transport's error chain (tonic,
        /// hyper, the operating system, rustls), which have no common typed form; `kind` is
        /// the part to act on.
        reason: String,
    },
    /// A server limit ([`GrpcLimits`](crate::GrpcLimits), [`AcceptBackoff`](crate::AcceptBackoff))
    /// is out of its allowed range.
    #[error("invalid gRPC server limit {name}: {reason}")]
    InvalidLimit {
        /// The limit's field name.
        name: &'static str,
        /// Its value and the allowed range.
        reason: LimitProblem,
    },
    /// The identity service name to verify is not a DNS name.
    #[error("invalid identity service name '{name}': {reason}")]
    InvalidServerName {
        /// The name given.
        name: String,
        /// rustls's text (it has one case only: the name is not a valid DNS name or IP
        /// address), kept as text.
        reason: String,
    },
    /// A TLS mode is not one of `auto`, `on`, `off`.
    #[error("invalid TLS mode '{value}': expected auto, on or off")]
    InvalidTlsMode {
        /// The value given.
        value: String,
    },
    /// The identity service URI is not usable.
    #[error("invalid identity service URI '{uri}': {reason}")]
    InvalidUri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: UriProblem,
    },
    /// The identity service's own certificate (for TLS) could not be issued from the CA's
    /// current issuer.
    #[error("cannot issue the identity service's own certificate for {identity}: {reason}")]
    Issue {
        /// The identity service's name.
        identity: String,
        /// What failed: the text of the refusing component's error (meshid-policy,
        /// meshid-csr, meshid-rotation, the CA, the installed chain's check). Each is a
        /// misconfiguration or a CA refusal that the renewal loop retries alike, so it is
        /// kept as text.
        reason: String,
    },
    /// The gRPC server failed (accepting connections, TLS setup, HTTP/2).
    #[error("the identity gRPC server failed: {reason}")]
    Serve {
        /// What failed, with its causes: the texts of tonic's error chain, which has no typed
        /// form to act on (the server has stopped either way).
        reason: String,
    },
    /// A TLS configuration could not be built.
    #[error("cannot build the TLS configuration: {reason}")]
    Tls {
        /// rustls's text: the crypto provider does not support TLS 1.3, a build defect no
        /// caller can act on.
        reason: String,
    },
}

/// What kind of failure ended a connection attempt ([`Error::Connect`]): a caller that
/// retries (a proxy, a balancer) can tell a failure that may pass from one that will not
/// until the configuration or the certificates change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectKind {
    /// The connect timeout elapsed (TCP connect, TLS handshake or HTTP/2 setup).
    TimedOut,
    /// The connection was refused: nothing listens at the address.
    Refused,
    /// The identity service's certificate was refused: it does not verify to the trust
    /// bundle, does not name the expected identity, or is outside its validity.
    Certificate,
    /// The TLS handshake failed otherwise (an alert from the server, no common protocol
    /// version or ALPN protocol).
    Tls,
    /// Anything else: name resolution, a reset connection, HTTP/2 setup.
    Other,
}

/// Why an identity service URI or endpoint list was refused ([`Error::InvalidUri`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriProblem {
    /// The text is not a URI.
    #[error("{reason}")]
    Syntax {
        /// The `http` crate's text (its error has no public cases).
        reason: String,
    },
    /// The URI has no authority (`host:port`).
    #[error("expected scheme://host:port")]
    NoAuthority,
    /// The URI has no host.
    #[error("no host")]
    NoHost,
    /// An `https` URI was given for a plaintext connection.
    #[error("an https URI needs TLS: use GrpcCertifier::connect_tls")]
    NeedsTls,
    /// An endpoint list has an empty entry.
    #[error("expected HOST:PORT[,HOST:PORT...]")]
    EmptyEntry,
    /// An endpoint list names several hosts, or mixes names with IP addresses.
    #[error("a list must be of IP addresses (IP:PORT,...); give one DNS name for a name")]
    SeveralNames,
    /// An endpoint is not `HOST:PORT` (no port, or a host with `[`, `]`, `:` or `/`).
    #[error("expected HOST:PORT")]
    NotHostPort,
    /// An endpoint's port is not a number from 0 to 65535.
    #[error("the port is not a number from 0 to 65535")]
    InvalidPort,
    /// An empty list of endpoints.
    #[error("no identity service endpoint given")]
    NoEndpoint,
    /// A DNS endpoint with a zero refresh interval.
    #[error("the DNS refresh interval must be longer than zero")]
    ZeroDnsRefresh,
}

/// Why a server limit was refused ([`Error::InvalidLimit`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitProblem {
    /// A count is outside its allowed range.
    #[error("{value} is not between {min} and {max}")]
    CountOutOfRange {
        /// The value given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A duration is outside its allowed range.
    #[error("{value:?} is not between {min:?} and {max:?}")]
    DurationOutOfRange {
        /// The value given.
        value: Duration,
        /// The shortest allowed.
        min: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A backoff's first wait is longer than its longest.
    #[error("the first wait ({first:?}) is longer than the longest ({longest:?})")]
    BackoffInverted {
        /// The first wait.
        first: Duration,
        /// The longest wait.
        longest: Duration,
    },
}

/// An error and its causes on one line, `error: cause: cause's cause`, skipping a cause whose
/// text repeats its parent's: how meshid's command lines report a failure.
///
/// ```
/// let io = std::io::Error::other("connection reset");
/// assert_eq!(meshid_grpc::error_chain(&io), "connection reset");
/// ```
pub fn error_chain(error: &(dyn core::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !message.is_empty() && !last.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        last = message;
        source = cause.source();
    }
    text
}

/// A failed TLS handshake with the identity service, carried inside the connector's
/// `io::Error` so that [`connect_kind`] can tell it apart; shown as its text.
#[derive(Debug)]
pub(crate) struct HandshakeFailed {
    /// [`ConnectKind::Certificate`] or [`ConnectKind::Tls`].
    pub(crate) kind: ConnectKind,
    /// rustls's reason.
    pub(crate) reason: String,
}

impl core::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "TLS handshake with the identity service failed: {}",
            self.reason
        )
    }
}

impl core::error::Error for HandshakeFailed {}

/// The kind of a failed connection attempt, from the first cause in `error`'s chain that
/// tells: a failed handshake, a timeout, a refused connection.
pub(crate) fn connect_kind(error: &(dyn core::error::Error + 'static)) -> ConnectKind {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(handshake) = current.downcast_ref::<HandshakeFailed>() {
            return handshake.kind;
        }
        if current.is::<tokio::time::error::Elapsed>() {
            return ConnectKind::TimedOut;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            // An `io::Error`'s `source` skips the error it wraps: look at it here.
            if let Some(handshake) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<HandshakeFailed>())
            {
                return handshake.kind;
            }
            match io.kind() {
                std::io::ErrorKind::TimedOut => return ConnectKind::TimedOut,
                std::io::ErrorKind::ConnectionRefused => return ConnectKind::Refused,
                _ => {}
            }
        }
        cause = current.source();
    }
    ConnectKind::Other
}
