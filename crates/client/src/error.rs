//! The client error type.

/// Why a certify attempt, or the client's setup, failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CA (or the transport to it) refused or failed.
    #[error("certify failed: {0}")]
    Certify(crate::CertifyError),
    /// The configuration is inconsistent.
    #[error("invalid client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The CA's answer failed validation and was not installed.
    #[error("refused the CA's response: {reason}")]
    InvalidResponse {
        /// Why.
        reason: String,
    },
    /// The key or CSR could not be made.
    #[error(transparent)]
    Key(meshid_csr::Error),
    /// A rustls configuration could not be built.
    #[error("TLS configuration: {reason}")]
    Tls {
        /// rustls's reason.
        reason: String,
    },
    /// The token could not be read, or is empty.
    #[error("ServiceAccount token: {reason}")]
    Token {
        /// Why.
        reason: String,
    },
}
