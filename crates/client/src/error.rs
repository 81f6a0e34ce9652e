//! The client error type.

use std::path::PathBuf;

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
        reason: ResponseProblem,
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
    /// A trust-bundle file was not installed; the previous bundle keeps serving.
    #[error("trust bundle {}: {problem}", path.display())]
    TrustBundle {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong with it.
        problem: BundleProblem,
    },
    /// The token could not be read, or is empty.
    #[error("ServiceAccount token: {reason}")]
    Token {
        /// Why.
        reason: String,
    },
}

/// Why the CA's answer was refused ([`Error::InvalidResponse`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// The answer has no `valid_until` (Linkerd's proxy refuses it too).
    #[error("identity certification missing expiration")]
    MissingExpiration,
    /// The answer's `valid_until` is not after now.
    #[error(
        "identity certification expired: valid_until {} is not after now {}",
        meshid_policy::rfc3339(*valid_until),
        meshid_policy::rfc3339(*now)
    )]
    Expired {
        /// The answer's `valid_until`.
        valid_until: time::OffsetDateTime,
        /// The time of the check.
        now: time::OffsetDateTime,
    },
    /// `valid_until` and the leaf's NotAfter disagree by a second or more.
    #[error(
        "valid_until {} does not match the certificate's NotAfter {}",
        meshid_policy::rfc3339(*valid_until),
        meshid_policy::rfc3339(*not_after)
    )]
    ExpiryMismatch {
        /// The answer's `valid_until`.
        valid_until: time::OffsetDateTime,
        /// The leaf's NotAfter.
        not_after: time::OffsetDateTime,
    },
    /// No certificate at all.
    #[error("the certificate chain is empty")]
    EmptyChain,
    /// The chain does not verify to the trust bundle (another CA, a rotated anchor not yet in
    /// the bundle, a broken chain).
    #[error("the certificate chain does not verify: {0}")]
    ChainDoesNotVerify(meshid_verify::Error),
    /// The leaf names other identities than this client's.
    #[error("the certificate does not name the local identity {expected}: found [{}]", found.join(", "))]
    WrongIdentity {
        /// This client's identity.
        expected: String,
        /// The names the leaf carries.
        found: Vec<String>,
    },
    /// The leaf's key is not this client's key.
    #[error("the certificate does not match the private key: {reason}")]
    KeyMismatch {
        /// rustls's reason.
        reason: String,
    },
}

/// Why a trust-bundle file was not installed (see [`crate::BundleWatcher`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleProblem {
    /// The file could not be read.
    #[error("cannot read it: {reason}")]
    Unreadable {
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not a usable PEM bundle: empty, malformed, or holding a certificate that is
    /// not a usable trust anchor.
    #[error("not a usable trust bundle: {0}")]
    Invalid(meshid_verify::Error),
    /// The bundle would not verify the certificate this client presents, so peers and this
    /// client's own verifiers would refuse it until renewal.
    #[error(
        "it does not verify the current certificate ({0}); add the new anchor next to the old \
         one first, then rotate the issuer, then remove the old anchor"
    )]
    OrphansCertificate(meshid_verify::Error),
}
