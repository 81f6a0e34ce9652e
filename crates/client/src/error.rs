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
        reason: ConfigProblem,
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
        /// rustls's text: the crypto provider does not support TLS 1.3, a build defect no
        /// caller can act on.
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
        reason: TokenProblem,
    },
}

/// What is wrong with the client's configuration ([`Error::Config`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The refresh policy is invalid, or gave no refresh point for the certificate.
    #[error("{0}")]
    Refresh(meshid_rotation::Error),
    /// The backoff policy is invalid.
    #[error("{0}")]
    Backoff(meshid_rotation::Error),
    /// The CSR does not ask for the local identity.
    #[error("the CSR does not request the local identity {identity} among its SANs")]
    IdentityNotRequested {
        /// The local identity.
        identity: String,
    },
    /// The ServiceAccount has no identity name in the mesh.
    #[error("{0}")]
    Identity(meshid_policy::Error),
    /// The system random source failed (seeding the jitter).
    #[error("the system random source failed")]
    Random,
    /// No key to sign the CSR with.
    #[error("no key")]
    NoKey,
    /// The trust-bundle watcher's poll interval is zero.
    #[error("the trust-bundle poll interval must not be zero")]
    ZeroPollInterval,
}

/// Why no ServiceAccount token could be sent ([`Error::Token`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// The token file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's error kind (`NotFound` while the token is not mounted
        /// yet, `PermissionDenied`, ...).
        kind: std::io::ErrorKind,
        /// The operating system's text.
        reason: String,
    },
    /// The token is empty, or only white space.
    #[error("the token is empty")]
    Empty,
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
        /// rustls's text (its error is not comparable, and the case is always the same: the
        /// keys differ, or rustls cannot tell).
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
        /// The operating system's error kind (`NotFound` while the file is being replaced,
        /// `PermissionDenied`, ...).
        kind: std::io::ErrorKind,
        /// The operating system's text.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_the_code_cannot_reach_from_input_read_as_before() {
        let config = |reason| Error::Config { reason }.to_string();
        assert_eq!(
            config(ConfigProblem::Random),
            "invalid client configuration: the system random source failed"
        );
        assert_eq!(
            config(ConfigProblem::NoKey),
            "invalid client configuration: no key"
        );
    }
}
