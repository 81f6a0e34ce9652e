//! Parsing and verifying CSRs (the CA side).

use core::net::IpAddr;

use der::asn1::AnyRef;
use der::{Reader, SliceReader, Tag, Tagged};
use meshid_policy::{CsrContent, KeyAlgorithm, PublicKeyKind};
use ring::signature::{self, VerificationAlgorithm};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

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
    /// would change the leaf profile (a CA certificate, certificate or CRL signing, other
    /// extended key usages, name constraints, unknown critical extensions).
    ///
    /// The PKCS#10 structure is walked with `der`'s zero-copy reader: on the certify hot path
    /// a general-purpose X.509 parser cost more than the whole budget left over by the
    /// signature checks.
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
        let raw = RawCsr::parse(der).map_err(|reason| Error::CsrMalformed { reason })?;
        let key = classify_spki(raw.spki).map_err(|reason| Error::CsrMalformed { reason })?;
        verify_signature(&raw, &key)?;

        let mut content = CsrContent::new(key);
        raw.collect(&mut content)?;
        Ok(Self {
            content,
            public_key: raw.public_key.to_vec(),
            spki_der: raw.spki.to_vec(),
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

fn verify_signature(raw: &RawCsr<'_>, key: &PublicKeyKind) -> Result<(), Error> {
    let alg: &dyn VerificationAlgorithm = match (key, raw.signature_algorithm) {
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
        (_, oid) => {
            return Err(Error::UnsupportedSignatureAlgorithm {
                algorithm: oid_string(oid),
                key: key.to_string(),
            });
        }
    };
    signature::UnparsedPublicKey::new(alg, raw.public_key)
        .verify(raw.info, raw.signature)
        .map_err(|_| Error::CsrSignatureInvalid)
}

// === PKCS#10 walker ===

// DER contents of the OIDs the walker looks for.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// The fixed prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];
/// The fixed prefix of a P-384 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P384_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
];

/// The parts of a CSR, borrowed from its DER.
struct RawCsr<'a> {
    /// The signed CertificationRequestInfo, tag and length included.
    info: &'a [u8],
    /// The subject Name's contents.
    subject: &'a [u8],
    /// The SubjectPublicKeyInfo, tag and length included.
    spki: &'a [u8],
    /// The subject public key bits.
    public_key: &'a [u8],
    /// The attributes' contents (empty when absent).
    attributes: &'a [u8],
    /// The signature algorithm OID's contents.
    signature_algorithm: &'a [u8],
    /// The signature bits.
    signature: &'a [u8],
}

impl<'a> RawCsr<'a> {
    /// CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm,
    /// signature BIT STRING } (RFC 2986 §4).
    fn parse(der: &'a [u8]) -> Result<Self, String> {
        let outer = only(der, Tag::Sequence, "CertificationRequest")?;
        let mut r = reader(outer)?;
        let info = r
            .tlv_bytes()
            .map_err(|e| format!("certificationRequestInfo: {e}"))?;
        let info_any = only(info, Tag::Sequence, "certificationRequestInfo")?;
        let sig_alg = next(&mut r, Tag::Sequence, "signatureAlgorithm")?;
        let signature = bit_string(next(&mut r, Tag::BitString, "signature")?, "signature")?;
        end(&r, "CertificationRequest")?;
        let signature_algorithm = next(
            &mut reader(sig_alg)?,
            Tag::ObjectIdentifier,
            "signatureAlgorithm",
        )?;

        let mut r = reader(info_any)?;
        let version = next(&mut r, Tag::Integer, "version")?;
        if version != [0] {
            return Err("unsupported CSR version (only v1 exists)".to_owned());
        }
        let subject = next(&mut r, Tag::Sequence, "subject")?;
        let spki = r.tlv_bytes().map_err(|e| format!("subjectPKInfo: {e}"))?;
        let spki_content = only(spki, Tag::Sequence, "subjectPKInfo")?;
        let mut k = reader(spki_content)?;
        next(&mut k, Tag::Sequence, "subjectPKInfo algorithm")?;
        let public_key = bit_string(
            next(&mut k, Tag::BitString, "subjectPublicKey")?,
            "subjectPublicKey",
        )?;
        end(&k, "subjectPKInfo")?;
        let attributes = if r.is_finished() {
            &[][..]
        } else {
            next(&mut r, context(0, true), "attributes")?
        };
        end(&r, "certificationRequestInfo")?;
        Ok(Self {
            info,
            subject,
            spki,
            public_key,
            attributes,
            signature_algorithm,
            signature,
        })
    }

    /// Fills `content` with the subject CNs and the requested SANs, refusing requested
    /// extensions that would change the leaf profile.
    fn collect(&self, content: &mut CsrContent) -> Result<(), Error> {
        let malformed = |reason: String| Error::CsrMalformed { reason };
        // Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue).
        let mut rdns = reader(self.subject).map_err(malformed)?;
        while !rdns.is_finished() {
            let rdn = next(&mut rdns, Tag::Set, "subject RDN").map_err(malformed)?;
            let mut atvs = reader(rdn).map_err(malformed)?;
            while !atvs.is_finished() {
                let atv = next(&mut atvs, Tag::Sequence, "subject attribute").map_err(malformed)?;
                let mut a = reader(atv).map_err(malformed)?;
                let oid = next(&mut a, Tag::ObjectIdentifier, "subject attribute type")
                    .map_err(malformed)?;
                let value: AnyRef<'_> = a
                    .decode()
                    .map_err(|e| malformed(format!("subject attribute value: {e}")))?;
                if oid == OID_COMMON_NAME {
                    let text = match value.tag() {
                        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                            core::str::from_utf8(value.value()).ok()
                        }
                        _ => None,
                    }
                    .ok_or_else(|| malformed("the subject CommonName is not a UTF8String, PrintableString or IA5String".to_owned()))?;
                    content.common_names.push(text.to_owned());
                }
            }
        }
        // Attributes: SET OF Attribute { type, SET OF value }; only extensionRequest matters.
        let mut seen_san = false;
        let mut attrs = reader(self.attributes).map_err(malformed)?;
        while !attrs.is_finished() {
            let attr = next(&mut attrs, Tag::Sequence, "attribute").map_err(malformed)?;
            let mut a = reader(attr).map_err(malformed)?;
            let oid = next(&mut a, Tag::ObjectIdentifier, "attribute type").map_err(malformed)?;
            let values = next(&mut a, Tag::Set, "attribute values").map_err(malformed)?;
            if oid != OID_EXTENSION_REQUEST {
                continue;
            }
            let mut v = reader(values).map_err(malformed)?;
            while !v.is_finished() {
                let extensions =
                    next(&mut v, Tag::Sequence, "extensionRequest").map_err(malformed)?;
                let mut exts = reader(extensions).map_err(malformed)?;
                while !exts.is_finished() {
                    let ext = next(&mut exts, Tag::Sequence, "extension").map_err(malformed)?;
                    check_extension(ext, content, &mut seen_san)?;
                }
            }
        }
        Ok(())
    }
}

/// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
fn check_extension(ext: &[u8], content: &mut CsrContent, seen_san: &mut bool) -> Result<(), Error> {
    let malformed = |reason: String| Error::CsrMalformed { reason };
    let refuse = |reason: &str| {
        Err(Error::RequestedExtension {
            reason: reason.to_owned(),
        })
    };
    let mut r = reader(ext).map_err(malformed)?;
    let oid = next(&mut r, Tag::ObjectIdentifier, "extension id").map_err(malformed)?;
    let mut critical = false;
    if Tag::peek(&r).ok() == Some(Tag::Boolean) {
        critical =
            next(&mut r, Tag::Boolean, "extension criticality").map_err(malformed)? == [0xff];
    }
    let value = next(&mut r, Tag::OctetString, "extension value").map_err(malformed)?;
    end(&r, "extension").map_err(malformed)?;
    let bad_value = |e: String| {
        malformed(format!(
            "requested extension {} does not parse: {e}",
            oid_string(oid)
        ))
    };
    match oid {
        OID_SAN => {
            if core::mem::replace(seen_san, true) {
                return Err(malformed(
                    "more than one subjectAltName extension".to_owned(),
                ));
            }
            let names = only(value, Tag::Sequence, "subjectAltName").map_err(bad_value)?;
            let mut r = reader(names).map_err(bad_value)?;
            while !r.is_finished() {
                let name: AnyRef<'_> = r
                    .decode()
                    .map_err(|e: der::Error| bad_value(e.to_string()))?;
                collect_name(name, content)?;
            }
            Ok(())
        }
        OID_BASIC_CONSTRAINTS => {
            // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLen INTEGER OPTIONAL }
            let bc = only(value, Tag::Sequence, "basicConstraints").map_err(bad_value)?;
            let mut r = reader(bc).map_err(bad_value)?;
            if Tag::peek(&r).ok() == Some(Tag::Boolean)
                && next(&mut r, Tag::Boolean, "cA").map_err(bad_value)? == [0xff]
            {
                return refuse(
                    "the CSR asks for a CA certificate (basicConstraints CA:TRUE); meshid issues only leaf certificates",
                );
            }
            Ok(())
        }
        OID_KEY_USAGE => {
            let bits = only(value, Tag::BitString, "keyUsage").map_err(bad_value)?;
            // bits[0] is the unused-bit count; keyCertSign is bit 5, cRLSign bit 6.
            if bits.get(1).is_some_and(|b| b & 0x06 != 0) {
                return refuse(
                    "the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues only leaf certificates",
                );
            }
            Ok(())
        }
        OID_EXT_KEY_USAGE => {
            let purposes = only(value, Tag::Sequence, "extKeyUsage").map_err(bad_value)?;
            let mut r = reader(purposes).map_err(bad_value)?;
            while !r.is_finished() {
                let purpose =
                    next(&mut r, Tag::ObjectIdentifier, "key purpose").map_err(bad_value)?;
                if purpose != OID_SERVER_AUTH && purpose != OID_CLIENT_AUTH {
                    return refuse(
                        "the CSR asks for extended key usages other than serverAuth and clientAuth",
                    );
                }
            }
            Ok(())
        }
        OID_NAME_CONSTRAINTS => {
            refuse("the CSR asks for name constraints, which only a CA certificate may carry")
        }
        _ if critical => Err(Error::RequestedExtension {
            reason: format!(
                "the CSR requests critical extension {} that meshid does not issue",
                oid_string(oid)
            ),
        }),
        // Anything else is ignored: CSR extensions are never copied into a certificate.
        _ => Ok(()),
    }
}

/// GeneralName (RFC 5280 §4.2.1.6), by its context tag.
fn collect_name(name: AnyRef<'_>, content: &mut CsrContent) -> Result<(), Error> {
    let text = |what: &str| {
        core::str::from_utf8(name.value())
            .ok()
            .filter(|s| s.is_ascii())
            .map(str::to_owned)
            .ok_or_else(|| Error::CsrMalformed {
                reason: format!("a {what} SAN is not ASCII"),
            })
    };
    let kind = match name.tag() {
        Tag::ContextSpecific {
            constructed: false,
            number,
        } => match number.value() {
            1 => {
                content.email_addresses.push(text("email")?);
                return Ok(());
            }
            2 => {
                content.dns_names.push(text("DNS")?);
                return Ok(());
            }
            6 => {
                content.uris.push(text("URI")?);
                return Ok(());
            }
            7 => {
                let bytes = name.value();
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(bytes).map(IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(bytes).map(IpAddr::from).ok(),
                    _ => None,
                }
                .ok_or_else(|| Error::CsrMalformed {
                    reason: format!("an IP address SAN of {} bytes", bytes.len()),
                })?;
                content.ip_addresses.push(ip);
                return Ok(());
            }
            8 => "registeredID",
            _ => "unknown",
        },
        Tag::ContextSpecific {
            constructed: true,
            number,
        } => match number.value() {
            0 => "otherName",
            3 => "x400Address",
            4 => "directoryName",
            5 => "ediPartyName",
            _ => "unknown",
        },
        _ => {
            return Err(Error::CsrMalformed {
                reason: "a subjectAltName entry is not a GeneralName".to_owned(),
            });
        }
    };
    content.other_names.push(kind.to_owned());
    Ok(())
}

/// What kind of key the SPKI holds; the common EC encodings without a full parse.
fn classify_spki(spki: &[u8]) -> Result<PublicKeyKind, String> {
    if spki.len() == SPKI_P256_PREFIX.len() + 64 && spki.starts_with(SPKI_P256_PREFIX) {
        return Ok(PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256));
    }
    if spki.len() == SPKI_P384_PREFIX.len() + 96 && spki.starts_with(SPKI_P384_PREFIX) {
        return Ok(PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384));
    }
    let (_, parsed) = SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("subjectPKInfo does not parse: {e}"))?;
    Ok(meshid_policy::x509::public_key_kind(&parsed))
}

/// The dotted form of an OID given by its DER contents.
fn oid_string(contents: &[u8]) -> String {
    der::asn1::ObjectIdentifier::from_bytes(contents)
        .map(|oid| oid.to_string())
        .unwrap_or_else(|_| "(invalid OID)".to_owned())
}

fn reader(bytes: &[u8]) -> Result<SliceReader<'_>, String> {
    SliceReader::new(bytes).map_err(|e| e.to_string())
}

fn context(number: u32, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number: der::TagNumber(number),
    }
}

/// The next element, which must have `tag`: its contents.
fn next<'a>(r: &mut SliceReader<'a>, tag: Tag, what: &str) -> Result<&'a [u8], String> {
    let any: AnyRef<'a> = r.decode().map_err(|e| format!("{what}: {e}"))?;
    if any.tag() != tag {
        return Err(format!("{what}: expected {tag}, found {}", any.tag()));
    }
    Ok(any.value())
}

/// `bytes` is exactly one element with `tag`: its contents.
fn only<'a>(bytes: &'a [u8], tag: Tag, what: &str) -> Result<&'a [u8], String> {
    let mut r = reader(bytes)?;
    let content = next(&mut r, tag, what)?;
    if !r.is_finished() {
        return Err(format!(
            "{} trailing bytes after the {what}",
            u32::from(r.remaining_len())
        ));
    }
    Ok(content)
}

fn end(r: &SliceReader<'_>, what: &str) -> Result<(), String> {
    if r.is_finished() {
        Ok(())
    } else {
        Err(format!(
            "{} unexpected trailing bytes in the {what}",
            u32::from(r.remaining_len())
        ))
    }
}

/// The bits of a BIT STRING with no unused bits.
fn bit_string<'a>(contents: &'a [u8], what: &str) -> Result<&'a [u8], String> {
    match contents.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(format!("{what}: not a whole number of bytes")),
    }
}
