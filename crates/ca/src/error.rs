//! The CA error type.

use core::fmt;

use meshid_policy::{CredentialRole, PublicKeyKind, rfc3339};
use meshid_verify::MalformedCertificate;
use time::OffsetDateTime;

use crate::SignerError;

/// Why the CA refused a request or an issuer.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CSR could not be parsed or its signature does not verify.
    #[error(transparent)]
    Csr(meshid_csr::Error),
    /// Issuer credentials were refused; the previous issuer (if any) keeps serving.
    #[error("invalid issuer: {0}")]
    InvalidIssuer(IssuerProblem),
    /// The issuance policy is invalid.
    #[error(transparent)]
    InvalidPolicy(meshid_policy::Error),
    /// No issuer has been loaded yet.
    #[error("cert issuer not ready yet")]
    IssuerNotReady,
    /// The loaded issuer can no longer issue: it, a certificate of its chain or its trust
    /// anchor has expired (or is not yet valid) since it was loaded.
    #[error("issuer cannot issue: {0}")]
    IssuerUnusable(meshid_policy::Error),
    /// The policy refused the CSR for this identity.
    #[error(transparent)]
    Policy(meshid_policy::Error),
    /// A certificate could not be written or signed.
    #[error("signing failed: {0}")]
    Signing(#[source] SigningError),
    /// A CA certificate and key given to [`CaCertificate::from_pem`](crate::bootstrap::CaCertificate::from_pem)
    /// cannot sign certificates.
    #[error("invalid CA certificate: {problem}")]
    InvalidCaCertificate {
        /// What is wrong.
        #[source]
        problem: CaCertificateProblem,
    },
    /// A new trust bundle would orphan the current issuer.
    #[error(
        "trust bundle refused: the current issuer does not chain to it ({0}); add the new anchor next to the old one first, then rotate the issuer, then remove the old anchor"
    )]
    TrustBundleOrphansIssuer(IssuerProblem),
}

/// What is wrong with issuer credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerProblem {
    /// The certificate file holds no certificate.
    EmptyChain,
    /// The issuer's EKU excludes a usage its leaves need.
    Eku {
        /// The usage(s) missing.
        missing: &'static str,
    },
    /// A certificate of the chain has expired.
    Expired {
        /// Which certificate.
        role: CredentialRole,
        /// Its NotAfter.
        not_after: OffsetDateTime,
        /// The time of the check.
        now: OffsetDateTime,
    },
    /// The key could not be loaded.
    Key(meshid_csr::Error),
    /// The key does not belong to the issuer certificate.
    KeyMismatch,
    /// A certificate of the chain does not parse.
    Malformed {
        /// Its position in the file.
        position: usize,
        /// The parser's verdict.
        problem: MalformedCertificate,
    },
    /// The issuer's name constraints exclude the identities of the mesh the CA serves: every
    /// leaf it signed would be refused.
    NameConstraintsExcludeMesh {
        /// The mesh's trust domain.
        trust_domain: String,
        /// The identity a test leaf named.
        identity: String,
    },
    /// The issuer certificate may not sign certificates (no keyCertSign key usage).
    NoKeyCertSign,
    /// The issuer certificate is not a CA (basicConstraints CA:TRUE missing).
    NotCa,
    /// A block of the certificate file is not a certificate.
    NotCertificate {
        /// Its 0-based position in the file.
        index: usize,
        /// Its PEM label.
        label: String,
    },
    /// The chain does not verify to any trust anchor of the bundle.
    NotChained(meshid_verify::Error),
    /// A certificate of the chain is not valid yet.
    NotYetValid {
        /// Which certificate.
        role: CredentialRole,
        /// Its NotBefore.
        not_before: OffsetDateTime,
        /// The time of the check.
        now: OffsetDateTime,
    },
    /// The certificate file is not valid PEM.
    Pem {
        /// The PEM parser's message, as text: its error type can be neither cloned nor
        /// compared, and the case a caller can act on (a half-written file) is
        /// [`PemIncomplete`](Self::PemIncomplete).
        reason: String,
    },
    /// A PEM block of the certificate file is incomplete or corrupt: the file may be being
    /// written (a reload later may find it whole).
    PemIncomplete,
    /// Signing a test leaf failed.
    Signing(SigningError),
    /// The issuer's name cannot be written as the issuer of its leaves exactly as its
    /// certificate writes it, so no leaf would chain to it.
    SubjectNotReproducible {
        /// The issuer's subject.
        subject: String,
    },
    /// The trust anchor the chain ends in has expired.
    TrustAnchorExpired(meshid_verify::Error),
    /// The trust anchor the chain ends in is not valid yet.
    TrustAnchorNotYetValid(meshid_verify::Error),
    /// The issuer certificate's key is not ECDSA P-256 or P-384.
    UnsupportedKey {
        /// The key found.
        found: PublicKeyKind,
    },
}

impl IssuerProblem {
    pub(crate) fn from_verify(e: meshid_verify::Error) -> Self {
        match e {
            meshid_verify::Error::AnchorExpired { .. } => Self::TrustAnchorExpired(e),
            meshid_verify::Error::AnchorNotYetValid { .. } => Self::TrustAnchorNotYetValid(e),
            other => Self::NotChained(other),
        }
    }
}

impl fmt::Display for IssuerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyChain => f.write_str("the certificate file holds no certificate"),
            Self::Eku { missing } => write!(
                f,
                "the issuer's extended key usage lacks {missing}; its EKU must be absent or include both serverAuth and clientAuth"
            ),
            Self::Expired { role, not_after, now } => {
                write!(f, "{role} expired at {} (now {})", rfc3339(*not_after), rfc3339(*now))
            }
            Self::Key(e) => write!(f, "issuer key: {e}"),
            Self::KeyMismatch => {
                f.write_str("the private key does not match the issuer certificate's public key")
            }
            Self::Malformed { position, problem } => {
                write!(f, "certificate #{position} of the issuer file does not parse: {problem}")
            }
            Self::NameConstraintsExcludeMesh { trust_domain, identity } => write!(
                f,
                "the issuer's name constraints exclude this mesh's identities in trust domain \
                 {trust_domain} (a leaf for {identity} would not verify); use an issuer whose \
                 name constraints permit the trust domain, or none"
            ),
            Self::NoKeyCertSign => f.write_str(
                "the issuer certificate lacks the keyCertSign key usage, so it may not sign certificates",
            ),
            Self::NotCa => f.write_str(
                "the issuer certificate is not a CA (basicConstraints CA:TRUE is missing)",
            ),
            Self::NotChained(e) => write!(f, "the issuer does not chain to the trust anchors: {e}"),
            Self::NotYetValid { role, not_before, now } => {
                write!(f, "{role} is not valid until {} (now {})", rfc3339(*not_before), rfc3339(*now))
            }
            Self::NotCertificate { index, label } => write!(
                f,
                "the certificate file is not valid PEM: block #{index} is '{label}', expected \
                 'CERTIFICATE'"
            ),
            Self::Pem { reason } => write!(f, "the certificate file is not valid PEM: {reason}"),
            Self::PemIncomplete => f.write_str(
                "the certificate file is not valid PEM: a PEM block is incomplete or corrupt (is \
                 the file half-written?)",
            ),
            Self::Signing(e) => write!(f, "the issuer key cannot sign: {e}"),
            Self::SubjectNotReproducible { subject } => write!(
                f,
                "the issuer's subject '{subject}' cannot be written back byte for byte as the \
                 issuer name of its leaves (repeated or multi-valued attributes, or an \
                 unsupported string type); re-issue the issuer with a plain subject such as \
                 CN=identity.linkerd.cluster.local"
            ),
            Self::TrustAnchorExpired(e) | Self::TrustAnchorNotYetValid(e) => e.fmt(f),
            Self::UnsupportedKey { found } => write!(
                f,
                "the issuer key is {found}; meshid issuers sign with ECDSA P-256 or P-384"
            ),
        }
    }
}

/// Why a CA certificate and key cannot sign certificates ([`Error::InvalidCaCertificate`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CaCertificateProblem {
    /// The certificate is not PEM.
    #[error("not a PEM certificate: {detail}")]
    NotPem {
        /// The PEM parser's message, as text: its error type can be neither cloned nor
        /// compared.
        detail: String,
    },
    /// The PEM block is not a certificate.
    #[error("PEM block is '{label}', expected 'CERTIFICATE'")]
    NotCertificate {
        /// The block's label.
        label: String,
    },
    /// The key could not be loaded.
    #[error("key: {0}")]
    Key(#[source] meshid_csr::Error),
    /// The certificate does not parse as X.509.
    #[error("does not parse: {0}")]
    Malformed(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// The certificate is not a CA (basicConstraints CA:TRUE missing).
    #[error("not a CA certificate (basicConstraints CA:TRUE is missing)")]
    NotCa,
    /// The key is not the certificate's.
    #[error("the key does not match the certificate")]
    KeyMismatch,
}

// x509-parser's error is `PartialEq` only for want of a derive: none of its values is unequal
// to itself.
impl Eq for CaCertificateProblem {}

/// Why a certificate could not be written or signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// rcgen cannot write the certificate (for example a name that is not ASCII, or a date
    /// outside what X.509 can hold).
    #[error("the certificate cannot be written: {0}")]
    Encoding(#[source] rcgen::Error),
    /// The system random source failed (serial numbers are random).
    #[error("the system random source failed")]
    Random,
    /// The issuer's [`Signer`](crate::Signer) failed.
    #[error("the issuer key failed: {0}")]
    Signer(#[source] SignerError),
}
