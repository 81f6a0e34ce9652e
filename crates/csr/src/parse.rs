//! Parsing and verifying CSRs (the CA side).

use core::net::IpAddr;

use meshid_policy::{CsrContent, KeyAlgorithm, PublicKeyKind};
use ring::signature::{self, VerificationAlgorithm};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::prelude::FromDer;

use crate::Error;

/// The default limit on a CSR's size: 16 KiB. A mesh CSR is about 300 bytes.
pub const DEFAULT_MAX_CSR_SIZE: usize = 16 * 1024;

// DER contents of signature algorithm OIDs.
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Limits applied while parsing a CSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsrLimits {
    /// The largest CSR accepted, in bytes (default [`DEFAULT_MAX_CSR_SIZE`]).
    pub max_size: usize,
}

impl Default for CsrLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_CSR_SIZE,
        }
    }
}

/// A CSR whose signature has been verified (the requester holds the private key).
///
/// Only what the CA needs is kept: the names and key for the policy decision and the public
/// key to certify. Nothing else from the CSR (other subject attributes, requested extensions)
/// ever reaches a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    content: CsrContent,
    public_key: Vec<u8>,
    spki_der: Vec<u8>,
}

impl ParsedCsr {
    /// Parses a DER CSR, verifies its signature, and checks that it asks for nothing that
    /// would change the leaf profile (a CA certificate, certificate or CRL signing, name
    /// constraints, unknown critical extensions).
    pub fn from_der(der: &[u8], limits: &CsrLimits) -> Result<Self, Error> {
        if der.is_empty() {
            return Err(Error::CsrMalformed {
                reason: "empty input".to_owned(),
            });
        }
        if der.len() > limits.max_size {
            return Err(Error::CsrTooLarge {
                size: der.len(),
                max: limits.max_size,
            });
        }
        let (rest, csr) =
            X509CertificationRequest::from_der(der).map_err(|e| Error::CsrMalformed {
                reason: format!("not a DER-encoded PKCS#10 request ({e})"),
            })?;
        if !rest.is_empty() {
            return Err(Error::CsrMalformed {
                reason: format!("{} trailing bytes after the CSR", rest.len()),
            });
        }
        let info = &csr.certification_request_info;
        if info.version.0 != 0 {
            return Err(Error::CsrMalformed {
                reason: format!("unsupported CSR version {}", info.version.0 + 1),
            });
        }
        let key = meshid_policy::x509::public_key_kind(&info.subject_pki);
        let public_key = info.subject_pki.subject_public_key.data.as_ref();
        verify_signature(&csr, &key, public_key)?;

        let mut content = CsrContent::new(key);
        for cn in info.subject.iter_common_name() {
            let text = cn.as_str().map_err(|_| Error::CsrMalformed {
                reason: "the subject CommonName is not a string".to_owned(),
            })?;
            content.common_names.push(text.to_owned());
        }
        let mut seen_san = false;
        for attribute in info.iter_attributes() {
            if let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() {
                for ext in &request.extensions {
                    check_extension(ext, &mut content, &mut seen_san)?;
                }
            }
        }
        Ok(Self {
            content,
            public_key: public_key.to_vec(),
            spki_der: info.subject_pki.raw.to_vec(),
        })
    }

    /// The names and key, for [`meshid_policy::IssuancePolicy::decide`].
    pub fn content(&self) -> &CsrContent {
        &self.content
    }

    /// The subject public key as a DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The subject public key's bits (an uncompressed point for EC keys).
    pub fn public_key_raw(&self) -> &[u8] {
        &self.public_key
    }

    /// The public key to certify, when it is a supported ECDSA key.
    pub fn certifiable_key(&self) -> Option<CertifiableKey<'_>> {
        self.content
            .key
            .algorithm()
            .map(|algorithm| CertifiableKey {
                algorithm,
                point: &self.public_key,
            })
    }
}

/// An ECDSA public key taken from a verified CSR, ready to be placed in a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertifiableKey<'a> {
    algorithm: KeyAlgorithm,
    point: &'a [u8],
}

impl CertifiableKey<'_> {
    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key as an uncompressed EC point.
    pub fn point(&self) -> &[u8] {
        self.point
    }
}

impl rcgen::PublicKeyData for CertifiableKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        crate::rcgen_algorithm(self.algorithm)
    }
}

fn verify_signature(
    csr: &X509CertificationRequest<'_>,
    key: &PublicKeyKind,
    public_key: &[u8],
) -> Result<(), Error> {
    let sig_oid = csr.signature_algorithm.algorithm.as_bytes();
    let alg: &dyn VerificationAlgorithm = match (key, sig_oid) {
        (PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256), OID_ECDSA_SHA256) => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        (PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256), OID_ECDSA_SHA384) => {
            &signature::ECDSA_P256_SHA384_ASN1
        }
        (PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384), OID_ECDSA_SHA384) => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        (PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384), OID_ECDSA_SHA256) => {
            &signature::ECDSA_P384_SHA256_ASN1
        }
        (PublicKeyKind::Rsa { .. }, OID_RSA_SHA256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (PublicKeyKind::Rsa { .. }, OID_RSA_SHA384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (PublicKeyKind::Rsa { .. }, OID_RSA_SHA512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (PublicKeyKind::Ed25519, OID_ED25519) => &signature::ED25519,
        _ => {
            return Err(Error::UnsupportedSignatureAlgorithm {
                algorithm: csr.signature_algorithm.algorithm.to_id_string(),
                key: key.to_string(),
            });
        }
    };
    let signed = csr.certification_request_info.raw;
    let sig = csr.signature_value.data.as_ref();
    signature::UnparsedPublicKey::new(alg, public_key)
        .verify(signed, sig)
        .map_err(|_| Error::CsrSignatureInvalid)
}

fn check_extension(
    ext: &X509Extension<'_>,
    content: &mut CsrContent,
    seen_san: &mut bool,
) -> Result<(), Error> {
    let refuse = |reason: String| Err(Error::RequestedExtension { reason });
    match ext.parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => {
            if core::mem::replace(seen_san, true) {
                return Err(Error::CsrMalformed {
                    reason: "more than one subjectAltName extension".to_owned(),
                });
            }
            for name in &san.general_names {
                collect_name(name, content)?;
            }
            Ok(())
        }
        ParsedExtension::BasicConstraints(bc) if bc.ca => {
            refuse("the CSR asks for a CA certificate (basicConstraints CA:TRUE); meshid issues only leaf certificates".to_owned())
        }
        ParsedExtension::KeyUsage(ku) if ku.key_cert_sign() || ku.crl_sign() => {
            refuse("the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues only leaf certificates".to_owned())
        }
        ParsedExtension::ExtendedKeyUsage(eku)
            if eku.any
                || eku.code_signing
                || eku.email_protection
                || eku.time_stamping
                || eku.ocsp_signing
                || !eku.other.is_empty() =>
        {
            refuse("the CSR asks for extended key usages other than serverAuth and clientAuth".to_owned())
        }
        ParsedExtension::NameConstraints(_) => {
            refuse("the CSR asks for name constraints, which only a CA certificate may carry".to_owned())
        }
        ParsedExtension::ParseError { error } => Err(Error::CsrMalformed {
            reason: format!("requested extension {} does not parse: {error}", ext.oid.to_id_string()),
        }),
        _ if ext.critical
            && !matches!(
                ext.parsed_extension(),
                ParsedExtension::BasicConstraints(_)
                    | ParsedExtension::KeyUsage(_)
                    | ParsedExtension::ExtendedKeyUsage(_)
            ) =>
        {
            refuse(format!(
                "the CSR requests critical extension {} that meshid does not issue",
                ext.oid.to_id_string()
            ))
        }
        // Anything else is ignored: CSR extensions are never copied into a certificate.
        _ => Ok(()),
    }
}

fn collect_name(name: &GeneralName<'_>, content: &mut CsrContent) -> Result<(), Error> {
    match name {
        GeneralName::DNSName(dns) => content.dns_names.push((*dns).to_owned()),
        GeneralName::URI(uri) => content.uris.push((*uri).to_owned()),
        GeneralName::RFC822Name(email) => content.email_addresses.push((*email).to_owned()),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                _ => None,
            };
            let ip = ip.ok_or_else(|| Error::CsrMalformed {
                reason: format!("an IP address SAN of {} bytes", bytes.len()),
            })?;
            content.ip_addresses.push(ip);
        }
        GeneralName::OtherName(..) => content.other_names.push("otherName".to_owned()),
        GeneralName::X400Address(_) => content.other_names.push("x400Address".to_owned()),
        GeneralName::DirectoryName(_) => content.other_names.push("directoryName".to_owned()),
        GeneralName::EDIPartyName(_) => content.other_names.push("ediPartyName".to_owned()),
        GeneralName::RegisteredID(_) => content.other_names.push("registeredID".to_owned()),
        GeneralName::Invalid(..) => {
            return Err(Error::CsrMalformed {
                reason: "a subjectAltName entry does not parse (not ASCII?)".to_owned(),
            });
        }
    }
    Ok(())
}
