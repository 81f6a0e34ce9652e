//! What the checks need to know about a certificate, parsed once.

use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Error;

/// The fields of a certificate that the identity checks look at.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    /// The serial number in decimal, as Linkerd (Go's `big.Int`) prints it.
    pub(crate) serial: String,
    /// The subject common name (empty if there is none).
    pub(crate) common_name: String,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) key: PublicKeyKind,
    pub(crate) signature: SignatureAlgorithm,
    /// The subjectPublicKey bits (for matching a private key).
    pub(crate) public_key: Vec<u8>,
}

impl CertInfo {
    pub(crate) fn parse(der: &[u8]) -> Result<Self, Error> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|error| Error::BadCertificate { error })?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes);
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let validity = cert.validity();
        Ok(Self {
            serial: cert.tbs_certificate.serial.to_string(),
            common_name,
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            key: meshid_policy::x509::public_key_kind(cert.public_key()),
            signature: SignatureAlgorithm::from_oid(
                &cert.signature_algorithm.algorithm.to_id_string(),
            ),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// `<serial> <CN>`, how Linkerd names a certificate in a list.
    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.serial, self.common_name)
    }
}

/// A certificate's signature algorithm, named as Go's `x509.SignatureAlgorithm` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SignatureAlgorithm {
    EcdsaSha256,
    Sha256Rsa,
    Other(String),
}

impl SignatureAlgorithm {
    fn from_oid(oid: &str) -> Self {
        match oid {
            "1.2.840.10045.4.3.2" => Self::EcdsaSha256,
            "1.2.840.113549.1.1.11" => Self::Sha256Rsa,
            "1.2.840.10045.4.3.3" => Self::Other("ECDSA-SHA384".to_owned()),
            "1.2.840.10045.4.3.4" => Self::Other("ECDSA-SHA512".to_owned()),
            "1.2.840.113549.1.1.5" => Self::Other("SHA1-RSA".to_owned()),
            "1.2.840.113549.1.1.10" => Self::Other("RSASSA-PSS".to_owned()),
            "1.2.840.113549.1.1.12" => Self::Other("SHA384-RSA".to_owned()),
            "1.2.840.113549.1.1.13" => Self::Other("SHA512-RSA".to_owned()),
            "1.3.101.112" => Self::Other("Ed25519".to_owned()),
            other => Self::Other(other.to_owned()),
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Self::EcdsaSha256 => "ECDSA-SHA256",
            Self::Sha256Rsa => "SHA256-RSA",
            Self::Other(name) => name,
        }
    }
}

/// Linkerd's rule for trust anchors: ECDSA P-256 signed with ECDSA-SHA256 or SHA256-RSA, or
/// RSA-2048/4096 signed with SHA256-RSA. The error completes `<serial> <CN> ...`.
pub(crate) fn anchor_algorithm_problem(cert: &CertInfo) -> Option<String> {
    match &cert.key {
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256) => match cert.signature {
            SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::Sha256Rsa => None,
            ref other => Some(format!(
                "must be signed with ECDSA-SHA256 or SHA256-RSA, instead {} was used",
                other.name()
            )),
        },
        PublicKeyKind::Rsa { bits: 2048 | 4096 } => match cert.signature {
            SignatureAlgorithm::Sha256Rsa => None,
            ref other => Some(format!(
                "must be signed with SHA256-RSA, instead {} was used",
                other.name()
            )),
        },
        PublicKeyKind::Rsa { bits } => Some(format!(
            "must use RSA-2048 or RSA-4096 for public key, instead RSA-{bits} was used"
        )),
        key if key.is_ecdsa() => Some(format!(
            "must use P-256 curve for public key, instead {} was used",
            curve_name(key)
        )),
        key => Some(format!(
            "must use RSA or ECDSA for public key algorithm, instead {} was used",
            key_algorithm_name(key)
        )),
    }
}

/// Linkerd's rule for the issuer: ECDSA P-256, signed with ECDSA-SHA256 or (by an RSA anchor)
/// SHA256-RSA. The error completes `issuer certificate ...`.
pub(crate) fn issuer_algorithm_problem(cert: &CertInfo) -> Option<String> {
    match &cert.key {
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256) => match cert.signature {
            SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::Sha256Rsa => None,
            ref other => Some(format!(
                "must be signed with ECDSA-SHA256 or SHA256-RSA, instead {} was used",
                other.name()
            )),
        },
        key if key.is_ecdsa() => Some(format!(
            "must use P-256 curve for public key, instead {} was used",
            curve_name(key)
        )),
        key => Some(format!(
            "must use ECDSA for public key algorithm, instead {} was used",
            key_algorithm_name(key)
        )),
    }
}

/// `P-384`, `P-521`, or the curve's OID.
fn curve_name(key: &PublicKeyKind) -> String {
    match key {
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256) => "P-256".to_owned(),
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384) => "P-384".to_owned(),
        PublicKeyKind::EcdsaOtherCurve(oid) if oid == "1.3.132.0.35" => "P-521".to_owned(),
        PublicKeyKind::EcdsaOtherCurve(oid) => format!("curve {oid}"),
        other => other.to_string(),
    }
}

/// The key algorithm as Go names it: `RSA`, `ECDSA`, `Ed25519`, or the OID.
fn key_algorithm_name(key: &PublicKeyKind) -> String {
    match key {
        PublicKeyKind::Rsa { .. } => "RSA".to_owned(),
        k if k.is_ecdsa() => "ECDSA".to_owned(),
        PublicKeyKind::Ed25519 => "Ed25519".to_owned(),
        PublicKeyKind::Other(oid) => oid.clone(),
        other => other.to_string(),
    }
}
