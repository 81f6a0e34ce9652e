//! The verification error type.

use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use rustls_pki_types::UnixTime;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::error::X509Error;

use crate::Usage;

/// Why a trust bundle was refused or a peer's certificate chain was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The trust anchor that the chain ends in expired before `now`.
    ///
    /// webpki does not check the validity of trust anchors; the mesh does, because an expired
    /// anchor is the most common cause of a mesh-wide outage and should be named as such.
    #[error(
        "trust anchor #{index} in the bundle expired at {} (now is {}); rotate the trust \
         anchors and re-issue the issuer certificate",
        rfc3339(*not_after),
        rfc3339(*now)
    )]
    AnchorExpired {
        /// Position of the anchor in the bundle.
        index: usize,
        /// The anchor's NotAfter.
        not_after: OffsetDateTime,
        /// The verification time.
        now: OffsetDateTime,
    },
    /// The trust anchor that the chain ends in is not valid until after `now`.
    #[error(
        "trust anchor #{index} in the bundle is not valid before {} (now is {}); check the \
         clock or the anchor's NotBefore",
        rfc3339(*not_before),
        rfc3339(*now)
    )]
    AnchorNotYetValid {
        /// Position of the anchor in the bundle.
        index: usize,
        /// The anchor's NotBefore.
        not_before: OffsetDateTime,
        /// The verification time.
        now: OffsetDateTime,
    },
    /// A certificate in the trust bundle is not usable as a trust anchor.
    #[error("trust bundle: certificate #{index} is not a usable trust anchor: {problem}")]
    BundleCertificate {
        /// 0-based position of the certificate (PEM block or DER entry) in the input.
        index: usize,
        /// What is wrong with it.
        #[source]
        problem: AnchorProblem,
    },
    /// The trust bundle holds no certificate.
    #[error("trust bundle is empty: it must hold at least one CERTIFICATE")]
    BundleEmpty,
    /// A PEM block of the trust bundle holds something other than a certificate.
    #[error(
        "trust bundle: PEM block #{index} is a {label:?}, not a \"CERTIFICATE\"; a trust \
         bundle holds certificates only"
    )]
    BundleNotCertificate {
        /// 0-based position of the PEM block.
        index: usize,
        /// The block's label, as in `-----BEGIN <label>-----`.
        label: String,
    },
    /// A PEM block of the trust bundle is malformed.
    #[error("trust bundle: PEM block #{index} is malformed: {problem}")]
    BundlePem {
        /// 0-based position of the PEM block.
        index: usize,
        /// What is wrong with it.
        #[source]
        problem: PemProblem,
    },
    /// webpki found no valid path from the leaf to a trust anchor.
    ///
    /// The webpki error is kept as it is: match on it for details.
    #[error("certificate chain rejected: {}", chain_message(.0))]
    Chain(#[source] webpki::Error),
    /// The leaf's extended key usage does not allow the requested usage.
    #[error(
        "leaf certificate's extended key usage does not allow {usage} (it allows: {})",
        list(found)
    )]
    EkuMismatch {
        /// The usage that was requested.
        usage: Usage,
        /// The key purposes the leaf has (names or dotted OIDs).
        found: Vec<String>,
    },
    /// The leaf's SANs do not include the expected identity.
    #[error(
        "peer identity mismatch: expected {expected:?}, the certificate names {}",
        list(found)
    )]
    IdentityMismatch {
        /// The identity that was expected.
        expected: String,
        /// The DNS and URI SANs of the leaf.
        found: Vec<String>,
    },
    /// The leaf's public key algorithm is not allowed by [`VerifyOptions::key_algorithms`].
    ///
    /// [`VerifyOptions::key_algorithms`]: crate::VerifyOptions::key_algorithms
    #[error(
        "leaf certificate key is {found}; the mesh profile allows {}",
        list_algorithms(allowed)
    )]
    KeyAlgorithmNotAllowed {
        /// The key found in the leaf.
        found: PublicKeyKind,
        /// The algorithms allowed.
        allowed: Vec<KeyAlgorithm>,
    },
    /// The leaf's key cannot make a signature that webpki verifies; checked when
    /// [`VerifyOptions::key_algorithms`] is `None`.
    ///
    /// [`VerifyOptions::key_algorithms`]: crate::VerifyOptions::key_algorithms
    #[error(
        "leaf certificate key is {found}, which cannot sign a TLS handshake that webpki \
         verifies (supported: ECDSA P-256, ECDSA P-384, Ed25519, RSA of 2048 to 8192 bits in \
         whole bytes)"
    )]
    KeyNotSupported {
        /// The key found in the leaf.
        found: PublicKeyKind,
    },
    /// The leaf's extended key usage includes anyExtendedKeyUsage.
    #[error(
        "leaf certificate's extended key usage includes anyExtendedKeyUsage; the mesh requires \
         serverAuth and/or clientAuth to be stated, nothing broader"
    )]
    LeafAnyEku,
    /// The leaf is a CA certificate (basicConstraints cA=TRUE).
    #[error(
        "leaf certificate is a CA certificate (basicConstraints cA=TRUE); a workload must \
         present an end-entity certificate"
    )]
    LeafIsCa,
    /// The leaf's key usage asserts keyCertSign although it is not a CA (RFC 5280 §4.2.1.9).
    #[error(
        "leaf certificate's key usage asserts keyCertSign but it is not a CA (RFC 5280 \
         4.2.1.9); the issuing CA is misconfigured"
    )]
    LeafKeyCertSign,
    /// The leaf's serial number is zero (RFC 5280 §4.1.2.2 requires a positive integer).
    #[error(
        "leaf certificate's serial number is zero (RFC 5280 4.1.2.2 requires a positive \
         integer); the issuing CA is misconfigured"
    )]
    LeafSerialZero,
    /// The leaf could not be parsed as an X.509 certificate.
    #[error("leaf certificate is malformed: {0}")]
    MalformedLeaf(#[source] MalformedCertificate),
    /// The leaf has no extended key usage extension; the mesh profile requires one.
    #[error(
        "leaf certificate has no extended key usage extension; the mesh requires serverAuth \
         and/or clientAuth to be stated"
    )]
    MissingEku,
    /// The verified path has more intermediates than [`VerifyOptions::max_intermediates`].
    ///
    /// [`VerifyOptions::max_intermediates`]: crate::VerifyOptions::max_intermediates
    #[error("certificate chain has {found} intermediate certificates; at most {max} are allowed")]
    TooManyIntermediates {
        /// Intermediates in the shortest path found.
        found: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Why a certificate of a trust bundle cannot be a trust anchor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorProblem {
    /// Its subject is empty.
    #[error("its subject is empty, so no certificate can name it as issuer")]
    EmptySubject,
    /// It does not parse.
    #[error(transparent)]
    Malformed(MalformedCertificate),
    /// It is not a CA certificate.
    #[error(
        "it is not a CA certificate (basicConstraints cA=TRUE is missing); a trust bundle holds \
         root CA certificates"
    )]
    NotCa,
    /// webpki does not take it as a trust anchor.
    #[error("webpki refuses it as a trust anchor: {0:?}")]
    Webpki(webpki::Error),
}

/// Why a certificate does not parse (x509-parser's verdict).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedCertificate {
    /// It is not a DER X.509 certificate.
    #[error("{0}")]
    Der(X509Error),
    /// An extension that may appear once appears twice or more.
    #[error("the {name} extension appears more than once")]
    DuplicateExtension {
        /// The extension's name.
        name: &'static str,
    },
    /// The value of an extension the mesh profile reads does not parse.
    #[error("the {name} extension is malformed: {error}")]
    Extension {
        /// The extension's name.
        name: &'static str,
        /// The parser's error.
        #[source]
        error: X509Error,
    },
    /// Bytes follow the value of an extension the mesh profile reads.
    #[error("the {name} extension has trailing data")]
    ExtensionTrailingData {
        /// The extension's name.
        name: &'static str,
    },
    /// Bytes follow the certificate.
    #[error("{count} bytes of trailing data after the certificate")]
    TrailingData {
        /// How many.
        count: usize,
    },
}

/// What is wrong with a PEM block of a trust bundle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemProblem {
    /// Its base64 body does not decode.
    #[error("invalid base64: {detail}")]
    InvalidBase64 {
        /// The decoder's error.
        detail: String,
    },
    /// Its BEGIN and END lines are not well formed.
    #[error("malformed BEGIN/END lines")]
    MalformedFraming,
    /// Its BEGIN and END lines name different labels.
    #[error("BEGIN label {begin:?} does not match END label {end:?}")]
    MismatchedLabels {
        /// The label of the BEGIN line.
        begin: String,
        /// The label of the END line.
        end: String,
    },
    /// Anything else the PEM parser reports.
    #[error("{detail}")]
    Other {
        /// The parser's error.
        detail: String,
    },
    /// A BEGIN line with no END line before the next BEGIN or the end of the file: the file
    /// may be being written.
    #[error("its -----BEGIN line has no matching -----END line")]
    Unterminated,
}

// x509-parser's error is `PartialEq` only for want of a derive: none of its values is unequal
// to itself.
impl Eq for MalformedCertificate {}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn unix(t: UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(
            || format!("{} seconds after the epoch", t.as_secs()),
            rfc3339,
        )
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn list_algorithms(algs: &[KeyAlgorithm]) -> String {
    if algs.is_empty() {
        return "no key algorithm".to_owned();
    }
    algs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A message for a webpki error that tells the user what to look at.
#[allow(deprecated)] // Older webpki releases report the variants without context.
fn chain_message(err: &webpki::Error) -> String {
    use webpki::Error as E;
    match err {
        E::BadDer | E::BadDerTime | E::TrailingData(_) => {
            format!("a certificate is not valid DER ({err:?})")
        }
        E::CaUsedAsEndEntity => "the leaf is a CA certificate".to_owned(),
        E::CertExpired { time, not_after } => format!(
            "a certificate expired at {} (now is {})",
            unix(*not_after),
            unix(*time)
        ),
        E::CertNotValidYet { time, not_before } => format!(
            "a certificate is not valid before {} (now is {})",
            unix(*not_before),
            unix(*time)
        ),
        E::CertNotValidForName(_) => "the certificate is not valid for the name".to_owned(),
        E::EmptyEkuExtension => "a certificate has an empty extended key usage".to_owned(),
        E::EndEntityUsedAsCa => "an end-entity certificate was used as an issuer".to_owned(),
        E::InvalidCertValidity => "a certificate's NotAfter is before its NotBefore".to_owned(),
        E::InvalidSignatureForPublicKey => {
            "a signature does not verify with its issuer's key (bad signature)".to_owned()
        }
        E::MaximumPathDepthExceeded => "the chain is too long".to_owned(),
        E::MaximumPathBuildCallsExceeded | E::MaximumSignatureChecksExceeded => {
            "path building gave up: too many candidate certificates".to_owned()
        }
        E::NameConstraintViolation => "a name violates an issuer's name constraints".to_owned(),
        E::PathLenConstraintViolated => "an issuer's path length constraint is violated".to_owned(),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            "a certificate in the path does not allow the required extended key usage".to_owned()
        }
        E::SignatureAlgorithmMismatch => {
            "a certificate's signature algorithm does not match its signature field".to_owned()
        }
        E::UnknownIssuer => {
            "no path to a trust anchor in the bundle (unknown issuer): check that the peer \
             sends its issuer certificate and that the bundle holds the right root"
                .to_owned()
        }
        E::UnsupportedCriticalExtension => {
            "a certificate has an unsupported critical extension".to_owned()
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a certificate is signed with an unsupported algorithm".to_owned()
        }
        other => format!("{other:?}"),
    }
}
