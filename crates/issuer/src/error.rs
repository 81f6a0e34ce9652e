//! The issuer crate's error type.

use std::path::PathBuf;
use std::sync::Arc;

/// Why loading, reloading, rotating or bootstrapping an issuer failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The trust-anchor key file can be read by others than its owner.
    #[error(
        "{path} has mode {mode:04o}; a trust-anchor key must be readable by its owner only (chmod 600 {path})"
    )]
    AnchorKeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The CA refused the credentials or the trust bundle; the previous ones keep serving.
    #[error(transparent)]
    Ca(meshid_ca::Error),
    /// A file exists and `force` was not given.
    #[error("{path} already exists; overwrite it with --force (or `force: true`)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A name given to a manifest or certificate is not acceptable.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidName {
        /// Which name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The rotation schedule is invalid.
    #[error("invalid issuer schedule: {0}")]
    InvalidSchedule(meshid_rotation::Error),
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done: `reading`, `writing`, ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// The Kubernetes API server could not be configured or reached (feature `kube-events`).
    #[cfg(feature = "kube-events")]
    #[error(transparent)]
    Kube(meshid_kube::Error),
    /// The Kubernetes API server refused an event.
    #[error("posting a Kubernetes Event: the API server answered HTTP {status}: {message}")]
    KubeEvents {
        /// The HTTP status code.
        status: u16,
        /// The `message` of the API server's `Status` answer, or the start of its body: the
        /// API server's own words, so text.
        message: String,
    },
    /// A certificate could not be minted.
    #[error("minting a certificate: {0}")]
    Mint(#[source] MintProblem),
    /// A trust-anchor bundle does not parse.
    #[error("trust anchors in {path}: {source}")]
    TrustBundle {
        /// The bundle file.
        path: PathBuf,
        /// The parser's reason.
        source: meshid_verify::Error,
    },
    /// The trust-anchor certificate and key cannot sign issuers.
    #[error("trust anchor {path}: {problem}")]
    TrustAnchor {
        /// The certificate file (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        #[source]
        problem: meshid_ca::CaCertificateProblem,
    },
}

/// Why a certificate could not be minted ([`Error::Mint`]).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintProblem {
    /// The trust anchor expires before the issuer would start.
    #[error(
        "the trust anchor {anchor} expires at {}, before the issuer would start",
        meshid_policy::rfc3339(*not_after)
    )]
    AnchorExpiresFirst {
        /// The trust anchor's subject.
        anchor: String,
        /// Its NotAfter.
        not_after: time::OffsetDateTime,
    },
    /// The CA could not write or sign the certificate.
    #[error("{0}")]
    Ca(#[source] meshid_ca::Error),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// The issuer validation problem, when the CA refused the credentials themselves (not a
    /// read error, and not a trust-bundle refusal).
    pub fn issuer_problem(&self) -> Option<&meshid_ca::IssuerProblem> {
        match self {
            Self::Ca(meshid_ca::Error::InvalidIssuer(problem)) => Some(problem),
            _ => None,
        }
    }
}

#[cfg(feature = "kube-events")]
impl From<meshid_kube::Error> for Error {
    fn from(e: meshid_kube::Error) -> Self {
        Self::Kube(e)
    }
}

impl From<meshid_ca::Error> for Error {
    fn from(e: meshid_ca::Error) -> Self {
        Self::Ca(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_events_keep_the_status_and_the_api_servers_words() {
        let err = Error::KubeEvents {
            status: 403,
            message: "events is forbidden".to_owned(),
        };
        assert!(matches!(err, Error::KubeEvents { status: 403, .. }));
        assert_eq!(
            err.to_string(),
            "posting a Kubernetes Event: the API server answered HTTP 403: events is forbidden"
        );
        let err = Error::Mint(MintProblem::Random);
        assert_eq!(
            err.to_string(),
            "minting a certificate: the system random source failed"
        );
    }
}
