//! Parsing and verifying CSRs (the CA side).
//!
//! The PKCS#10 structure is read with x509-parser; the signature is verified with ring over the
//! `certificationRequestInfo` bytes x509-parser hands back; every rule the CA enforces is a
//! check over the parsed structure.

use core::net::IpAddr;

use meshid_policy::{CsrContent, KeyAlgorithm, PublicKeyKind};
use ring::signature::{self, VerificationAlgorithm};
use x509_parser::asn1_rs::{Header, Tag};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::oid_registry::{
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::Error;
use crate::error::{MalformedCsr, RefusedExtension};

/// The default limit on a CSR's size: 16 KiB. A mesh CSR is about 300 bytes.
pub const DEFAULT_MAX_CSR_SIZE: usize = 16 * 1024;

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
    /// would change the leaf profile (a CA certificate, certificate or CRL signing, other
    /// extended key usages, name constraints, unknown critical extensions).
    ///
    /// The size limit is checked before anything is parsed.
    pub fn from_der(der: &[u8], limits: &CsrLimits) -> Result<Self, Error> {
        if der.is_empty() {
            return Err(Error::CsrMalformed(MalformedCsr::Empty));
        }
        if der.len() > limits.max_size {
            return Err(Error::CsrTooLarge {
                size: der.len(),
                max: limits.max_size,
            });
        }
        let csr = parse(der).map_err(Error::CsrMalformed)?;
        let info = &csr.certification_request_info;
        if info.version.0 != 0 {
            return Err(Error::CsrMalformed(MalformedCsr::Version {
                found: info.version.0,
            }));
        }
        let spki = &info.subject_pki;
        let key = meshid_policy::x509::public_key_kind(spki);
        let public_key = whole_bytes(&spki.subject_public_key, "subjectPublicKey")?;
        let signature = whole_bytes(&csr.signature_value, "signature")?;
        verify_signature(&csr, &key, public_key, signature)?;

        let mut content = CsrContent::new(key);
        collect_common_names(&info.subject, &mut content)?;
        collect_requested_extensions(&csr, &mut content)?;
        Ok(Self {
            content,
            public_key: public_key.to_vec(),
            spki_der: spki.raw.to_vec(),
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

/// The CertificationRequest in `der`, which must hold exactly one.
///
/// When the outermost element announces more content than `der` holds, the error says how
/// much: the commonest malformed CSR is a truncated one.
fn parse(der: &[u8]) -> Result<X509CertificationRequest<'_>, MalformedCsr> {
    if let Ok((contents, header)) = Header::from_der(der)
        && let Ok(announced) = header.length().definite()
        && announced > contents.len()
    {
        return Err(MalformedCsr::Truncated {
            announced,
            present: contents.len(),
        });
    }
    match X509CertificationRequest::from_der(der) {
        Ok(([], csr)) => Ok(csr),
        Ok((rest, _)) => Err(MalformedCsr::TrailingBytes { count: rest.len() }),
        Err(e) => Err(MalformedCsr::Structure(e.into())),
    }
}

/// The bits of a BIT STRING that holds whole bytes (keys and ECDSA/RSA/EdDSA signatures do).
fn whole_bytes<'a>(
    bits: &'a x509_parser::asn1_rs::BitString<'_>,
    field: &'static str,
) -> Result<&'a [u8], Error> {
    if bits.unused_bits == 0 {
        Ok(&bits.data)
    } else {
        Err(Error::CsrMalformed(MalformedCsr::PartialBytes { field }))
    }
}

/// Proof of possession: the CSR's signature over its `certificationRequestInfo`, with its own
/// key, for the signature algorithms that key can make.
fn verify_signature(
    csr: &X509CertificationRequest<'_>,
    key: &PublicKeyKind,
    public_key: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let oid = &csr.signature_algorithm.algorithm;
    let alg: &dyn VerificationAlgorithm = match key {
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256) if *oid == OID_SIG_ECDSA_WITH_SHA256 => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256) if *oid == OID_SIG_ECDSA_WITH_SHA384 => {
            &signature::ECDSA_P256_SHA384_ASN1
        }
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384) if *oid == OID_SIG_ECDSA_WITH_SHA384 => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384) if *oid == OID_SIG_ECDSA_WITH_SHA256 => {
            &signature::ECDSA_P384_SHA256_ASN1
        }
        PublicKeyKind::Rsa { .. } if *oid == OID_PKCS1_SHA256WITHRSA => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        PublicKeyKind::Rsa { .. } if *oid == OID_PKCS1_SHA384WITHRSA => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        PublicKeyKind::Rsa { .. } if *oid == OID_PKCS1_SHA512WITHRSA => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        PublicKeyKind::Ed25519 if *oid == OID_SIG_ED25519 => &signature::ED25519,
        _ => {
            return Err(Error::UnsupportedSignatureAlgorithm {
                algorithm: oid.to_id_string(),
                key: key.to_string(),
            });
        }
    };
    signature::UnparsedPublicKey::new(alg, public_key)
        .verify(csr.certification_request_info.raw, signature)
        .map_err(|_| Error::CsrSignatureInvalid)
}

/// The subject's common names, which must be text.
fn collect_common_names(subject: &X509Name<'_>, content: &mut CsrContent) -> Result<(), Error> {
    for cn in subject.iter_common_name() {
        let text = match cn.attr_value().tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => cn.as_str().ok(),
            _ => None,
        }
        .ok_or(Error::CsrMalformed(MalformedCsr::CommonNameNotText))?;
        content.common_names.push(text.to_owned());
    }
    Ok(())
}

/// The SANs of the extensionRequest attribute, refusing requested extensions that would change
/// the leaf profile. Nothing requested is ever copied into a certificate.
fn collect_requested_extensions(
    csr: &X509CertificationRequest<'_>,
    content: &mut CsrContent,
) -> Result<(), Error> {
    let mut seen_san = false;
    for attribute in csr.certification_request_info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
            continue;
        };
        for extension in &request.extensions {
            check_extension(extension, content, &mut seen_san)?;
        }
    }
    Ok(())
}

fn check_extension(
    extension: &X509Extension<'_>,
    content: &mut CsrContent,
    seen_san: &mut bool,
) -> Result<(), Error> {
    let refuse = |refused| Err(Error::RequestedExtension(refused));
    let oid = &extension.oid;
    let known = [
        &OID_X509_EXT_SUBJECT_ALT_NAME,
        &OID_X509_EXT_BASIC_CONSTRAINTS,
        &OID_X509_EXT_KEY_USAGE,
        &OID_X509_EXT_EXTENDED_KEY_USAGE,
        &OID_X509_EXT_NAME_CONSTRAINTS,
    ];
    if !known.contains(&oid) {
        // Anything else is ignored, unless it is critical.
        return if extension.critical {
            refuse(RefusedExtension::UnknownCritical {
                oid: oid.to_id_string(),
            })
        } else {
            Ok(())
        };
    }
    match extension.parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => {
            if core::mem::replace(seen_san, true) {
                return Err(Error::CsrMalformed(MalformedCsr::SecondSubjectAltName));
            }
            for name in &san.general_names {
                collect_name(name, content)?;
            }
            Ok(())
        }
        ParsedExtension::BasicConstraints(bc) if bc.ca => refuse(RefusedExtension::CaCertificate),
        ParsedExtension::KeyUsage(ku) if ku.key_cert_sign() || ku.crl_sign() => {
            refuse(RefusedExtension::CertificateSigning)
        }
        ParsedExtension::ExtendedKeyUsage(eku)
            if eku.any
                || eku.code_signing
                || eku.email_protection
                || eku.time_stamping
                || eku.ocsp_signing
                || !eku.other.is_empty() =>
        {
            refuse(RefusedExtension::OtherExtendedKeyUsage)
        }
        ParsedExtension::NameConstraints(_) => refuse(RefusedExtension::NameConstraints),
        ParsedExtension::ParseError { error } => {
            Err(Error::CsrMalformed(MalformedCsr::RequestedExtension {
                oid: oid.to_id_string(),
                error: error.clone().into(),
            }))
        }
        _ => Ok(()),
    }
}

/// One GeneralName of the requested subjectAltName (RFC 5280 §4.2.1.6).
fn collect_name(name: &GeneralName<'_>, content: &mut CsrContent) -> Result<(), Error> {
    let ascii = |text: &str, kind| {
        if text.is_ascii() {
            Ok(text.to_owned())
        } else {
            Err(Error::CsrMalformed(MalformedCsr::SanNotAscii { kind }))
        }
    };
    let other = match name {
        GeneralName::RFC822Name(email) => {
            content.email_addresses.push(ascii(email, "email")?);
            return Ok(());
        }
        GeneralName::DNSName(dns) => {
            content.dns_names.push(ascii(dns, "DNS")?);
            return Ok(());
        }
        GeneralName::URI(uri) => {
            content.uris.push(ascii(uri, "URI")?);
            return Ok(());
        }
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                _ => None,
            }
            .ok_or(Error::CsrMalformed(MalformedCsr::IpAddressLength {
                len: bytes.len(),
            }))?;
            content.ip_addresses.push(ip);
            return Ok(());
        }
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::OtherName(..) => "otherName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        // x509-parser keeps what it cannot decode: text that is not UTF-8, or a name it does
        // not know.
        GeneralName::Invalid(tag, _) => match tag.0 {
            1 => {
                return Err(Error::CsrMalformed(MalformedCsr::SanNotAscii {
                    kind: "email",
                }));
            }
            2 => {
                return Err(Error::CsrMalformed(MalformedCsr::SanNotAscii {
                    kind: "DNS",
                }));
            }
            6 => {
                return Err(Error::CsrMalformed(MalformedCsr::SanNotAscii {
                    kind: "URI",
                }));
            }
            0 => "otherName",
            4 => "directoryName",
            tag => {
                return Err(Error::CsrMalformed(MalformedCsr::NotAGeneralName { tag }));
            }
        },
    };
    content.other_names.push(other.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spki_key_kind_and_point_come_from_the_parsed_request() {
        let key = crate::KeyPair::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let csr = crate::Csr::build(&key, &crate::CsrParams::new("a.example")).unwrap();
        let parsed = ParsedCsr::from_der(csr.der(), &CsrLimits::default()).unwrap();
        assert_eq!(
            parsed.content().key,
            PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384)
        );
        assert_eq!(parsed.public_key_raw(), key.public_key_raw());
        assert_eq!(parsed.spki_der(), key.public_key_spki());
    }
}
