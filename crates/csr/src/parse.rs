//! Parsing and verifying CSRs (the CA side).

use core::net::IpAddr;
use meshid_policy::x509::der::{
    OID_BASIC_CONSTRAINTS, OID_CLIENT_AUTH, OID_EXT_KEY_USAGE, OID_KEY_USAGE, OID_SERVER_AUTH,
    OID_SUBJECT_ALT_NAME as OID_SAN, SPKI_P256_PREFIX, SPKI_P384_PREFIX,
};

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
const OID_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
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
        let outer = only(der, SEQUENCE, "CertificationRequest")?;
        let mut r = Der::new(outer);
        let (info, info_any) = r.next_tlv(SEQUENCE, "certificationRequestInfo")?;
        let sig_alg = r.next(SEQUENCE, "signatureAlgorithm")?;
        let signature = bit_string(r.next(BIT_STRING, "signature")?, "signature")?;
        r.end("CertificationRequest")?;
        let signature_algorithm = Der::new(sig_alg).next(OID, "signatureAlgorithm")?;

        let mut r = Der::new(info_any);
        if r.next(INTEGER, "version")? != [0] {
            return Err("unsupported CSR version (only v1 exists)".to_owned());
        }
        let subject = r.next(SEQUENCE, "subject")?;
        let (spki, spki_content) = r.next_tlv(SEQUENCE, "subjectPKInfo")?;
        let mut k = Der::new(spki_content);
        k.next(SEQUENCE, "subjectPKInfo algorithm")?;
        let public_key = bit_string(k.next(BIT_STRING, "subjectPublicKey")?, "subjectPublicKey")?;
        k.end("subjectPKInfo")?;
        let attributes = if r.is_empty() {
            &[][..]
        } else {
            r.next(CONTEXT_0_CONSTRUCTED, "attributes")?
        };
        r.end("certificationRequestInfo")?;
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
        self.collect_names(content)
            .map_err(|reason| Error::CsrMalformed { reason })?;
        // Attributes: SET OF Attribute { type, SET OF value }; only extensionRequest matters.
        let mut seen_san = false;
        let malformed = |reason: String| Error::CsrMalformed { reason };
        let mut attrs = Der::new(self.attributes);
        while !attrs.is_empty() {
            let mut a = Der::new(attrs.next(SEQUENCE, "attribute").map_err(malformed)?);
            let oid = a.next(OID, "attribute type").map_err(malformed)?;
            let values = a.next(SET, "attribute values").map_err(malformed)?;
            if oid != OID_EXTENSION_REQUEST {
                continue;
            }
            let mut v = Der::new(values);
            while !v.is_empty() {
                let mut exts = Der::new(v.next(SEQUENCE, "extensionRequest").map_err(malformed)?);
                while !exts.is_empty() {
                    let ext = exts.next(SEQUENCE, "extension").map_err(malformed)?;
                    check_extension(ext, content, &mut seen_san)?;
                }
            }
        }
        Ok(())
    }

    /// Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue): the CNs.
    fn collect_names(&self, content: &mut CsrContent) -> Result<(), String> {
        let mut rdns = Der::new(self.subject);
        while !rdns.is_empty() {
            let mut atvs = Der::new(rdns.next(SET, "subject RDN")?);
            while !atvs.is_empty() {
                let mut a = Der::new(atvs.next(SEQUENCE, "subject attribute")?);
                let oid = a.next(OID, "subject attribute type")?;
                let (tag, value) = a.any("subject attribute value")?;
                if oid == OID_COMMON_NAME {
                    let text = match tag {
                        UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
                            core::str::from_utf8(value).ok()
                        }
                        _ => None,
                    }
                    .ok_or(
                        "the subject CommonName is not a UTF8String, PrintableString or IA5String",
                    )?;
                    content.common_names.push(text.to_owned());
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
    let mut r = Der::new(ext);
    let oid = r.next(OID, "extension id").map_err(malformed)?;
    let mut critical = false;
    if r.peek() == Some(BOOLEAN) {
        critical = r
            .next(BOOLEAN, "extension criticality")
            .map_err(malformed)?
            == [0xff];
    }
    let value = r.next(OCTET_STRING, "extension value").map_err(malformed)?;
    r.end("extension").map_err(malformed)?;
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
            let mut names = Der::new(only(value, SEQUENCE, "subjectAltName").map_err(bad_value)?);
            while !names.is_empty() {
                let (tag, name) = names.any("GeneralName").map_err(bad_value)?;
                collect_name(tag, name, content)?;
            }
            Ok(())
        }
        OID_BASIC_CONSTRAINTS => {
            // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLen INTEGER OPTIONAL }
            let mut r = Der::new(only(value, SEQUENCE, "basicConstraints").map_err(bad_value)?);
            if r.peek() == Some(BOOLEAN) && r.next(BOOLEAN, "cA").map_err(bad_value)? == [0xff] {
                return refuse(
                    "the CSR asks for a CA certificate (basicConstraints CA:TRUE); meshid issues only leaf certificates",
                );
            }
            Ok(())
        }
        OID_KEY_USAGE => {
            let bits = only(value, BIT_STRING, "keyUsage").map_err(bad_value)?;
            // bits[0] is the unused-bit count; keyCertSign is bit 5, cRLSign bit 6.
            if bits.get(1).is_some_and(|b| b & 0x06 != 0) {
                return refuse(
                    "the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues only leaf certificates",
                );
            }
            Ok(())
        }
        OID_EXT_KEY_USAGE => {
            let mut r = Der::new(only(value, SEQUENCE, "extKeyUsage").map_err(bad_value)?);
            while !r.is_empty() {
                let purpose = r.next(OID, "key purpose").map_err(bad_value)?;
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
fn collect_name(tag: u8, value: &[u8], content: &mut CsrContent) -> Result<(), Error> {
    let text = |what: &str| {
        core::str::from_utf8(value)
            .ok()
            .filter(|s| s.is_ascii())
            .map(str::to_owned)
            .ok_or_else(|| Error::CsrMalformed {
                reason: format!("a {what} SAN is not ASCII"),
            })
    };
    let kind = match tag {
        0x81 => {
            content.email_addresses.push(text("email")?);
            return Ok(());
        }
        0x82 => {
            content.dns_names.push(text("DNS")?);
            return Ok(());
        }
        0x86 => {
            content.uris.push(text("URI")?);
            return Ok(());
        }
        0x87 => {
            let ip = match value.len() {
                4 => <[u8; 4]>::try_from(value).map(IpAddr::from).ok(),
                16 => <[u8; 16]>::try_from(value).map(IpAddr::from).ok(),
                _ => None,
            }
            .ok_or_else(|| Error::CsrMalformed {
                reason: format!("an IP address SAN of {} bytes", value.len()),
            })?;
            content.ip_addresses.push(ip);
            return Ok(());
        }
        0x88 => "registeredID",
        0xa0 => "otherName",
        0xa3 => "x400Address",
        0xa4 => "directoryName",
        0xa5 => "ediPartyName",
        _ => {
            return Err(Error::CsrMalformed {
                reason: format!("a subjectAltName entry with tag 0x{tag:02x} is not a GeneralName"),
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

// DER tags (single-octet identifiers: every tag in a CSR is one).
const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const CONTEXT_0_CONSTRUCTED: u8 = 0xa0;

/// A minimal DER reader over a byte slice: definite lengths, single-octet tags. On the certify
/// hot path it is several times cheaper than a general ASN.1 library, which matters next to
/// the ECDSA operations.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element: its whole encoding, tag and contents.
    fn element(&mut self, what: &str) -> Result<(&'a [u8], u8, &'a [u8]), String> {
        let input = self.rest;
        let truncated = || format!("{what}: truncated DER ({} bytes left)", input.len());
        let (&tag, after_tag) = input.split_first().ok_or_else(truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(format!("{what}: multi-byte DER tags do not occur in a CSR"));
        }
        let (&first, after_len) = after_tag.split_first().ok_or_else(truncated)?;
        let (len, body) = match first {
            0..=0x7f => (usize::from(first), after_len),
            0x81..=0x83 => {
                let n = usize::from(first & 0x7f);
                let (bytes, body) = after_len.split_at_checked(n).ok_or_else(truncated)?;
                let len = bytes
                    .iter()
                    .fold(0usize, |len, &b| (len << 8) | usize::from(b));
                if len < 0x80 || bytes[0] == 0 {
                    return Err(format!("{what}: non-minimal DER length"));
                }
                (len, body)
            }
            0x80 => return Err(format!("{what}: indefinite length (BER) is not DER")),
            _ => return Err(format!("{what}: DER length too large")),
        };
        if body.len() < len {
            return Err(format!(
                "{what}: truncated DER: {len} content bytes announced, {} present",
                body.len()
            ));
        }
        let (contents, rest) = body.split_at(len);
        let whole = &input[..input.len() - rest.len()];
        self.rest = rest;
        Ok((whole, tag, contents))
    }

    /// The next element, whatever its tag: tag and contents.
    fn any(&mut self, what: &str) -> Result<(u8, &'a [u8]), String> {
        self.element(what).map(|(_, tag, contents)| (tag, contents))
    }

    /// The next element, which must have `tag`: its contents.
    fn next(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        self.next_tlv(tag, what).map(|(_, contents)| contents)
    }

    /// The next element, which must have `tag`: its whole encoding and its contents.
    fn next_tlv(&mut self, tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
        match self.element(what)? {
            (whole, found, contents) if found == tag => Ok((whole, contents)),
            (_, found, _) => Err(format!(
                "{what}: expected tag 0x{tag:02x}, found 0x{found:02x}"
            )),
        }
    }

    fn end(&self, what: &str) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} trailing bytes after the {what}",
                self.rest.len()
            ))
        }
    }
}

/// `bytes` is exactly one element with `tag`: its contents.
fn only<'a>(bytes: &'a [u8], tag: u8, what: &str) -> Result<&'a [u8], String> {
    let mut r = Der::new(bytes);
    let contents = r.next(tag, what)?;
    r.end(what)?;
    Ok(contents)
}

/// The bits of a BIT STRING with no unused bits.
fn bit_string<'a>(contents: &'a [u8], what: &str) -> Result<&'a [u8], String> {
    match contents.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(format!("{what}: not a whole number of bytes")),
    }
}
