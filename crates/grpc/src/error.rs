//! The crate error type.

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
        /// What failed, with its causes.
        reason: String,
    },
    /// A server limit ([`GrpcLimits`](crate::GrpcLimits), [`AcceptBackoff`](crate::AcceptBackoff))
    /// is out of its allowed range.
    #[error("invalid gRPC server limit {name}: {reason}")]
    InvalidLimit {
        /// The limit's field name.
        name: &'static str,
        /// Its value and the allowed range.
        reason: String,
    },
    /// The identity service name to verify is not a DNS name.
    #[error("invalid identity service name '{name}': {reason}")]
    InvalidServerName {
        /// The name given.
        name: String,
        /// What is wrong with it.
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
        reason: String,
    },
    /// The identity service's own certificate (for TLS) could not be issued from the CA's
    /// current issuer.
    #[error("cannot issue the identity service's own certificate for {identity}: {reason}")]
    Issue {
        /// The identity service's name.
        identity: String,
        /// What failed.
        reason: String,
    },
    /// The gRPC server failed (accepting connections, TLS setup, HTTP/2).
    #[error("the identity gRPC server failed: {reason}")]
    Serve {
        /// What failed, with its causes.
        reason: String,
    },
    /// A TLS configuration could not be built.
    #[error("cannot build the TLS configuration: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },
}

/// `error: cause: cause's cause`, skipping a cause whose text repeats its parent's.
pub(crate) fn chain(error: &(dyn core::error::Error + 'static)) -> String {
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
