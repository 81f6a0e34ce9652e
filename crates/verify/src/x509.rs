//! What the mesh profile reads from certificates, with x509-parser.

use meshid_policy::PublicKeyKind;
use x509_parser::certificate::{Validity, X509Certificate};
use x509_parser::error::X509Error;
use x509_parser::extensions::{
    BasicConstraints, ExtendedKeyUsage, GeneralName, KeyUsage, SubjectAlternativeName,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// DER identifier octets of the certificate skeleton (RFC 5280 §4.1).
const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;
const TAG_EXTENSIONS: u8 = 0xa3;

/// basicConstraints, 2.5.29.19.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// keyUsage, 2.5.29.15.
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// extKeyUsage, 2.5.29.37.
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// subjectAltName, 2.5.29.17.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    finish(X509Certificate::from_der(der))
}

/// A leaf parsed for the mesh profile, once and only as far as the profile reads it: serial,
/// validity, key and four extensions. Names and other extensions are left to webpki, which
/// parses the whole certificate strictly.
pub(crate) struct Leaf<'a> {
    pub(crate) serial: &'a [u8],
    pub(crate) validity: Validity,
    pub(crate) spki: SubjectPublicKeyInfo<'a>,
    pub(crate) basic_constraints: Option<BasicConstraints>,
    pub(crate) key_usage: Option<KeyUsage>,
    pub(crate) eku: Option<ExtendedKeyUsage<'a>>,
    pub(crate) san: Option<SubjectAlternativeName<'a>>,
}

impl<'a> Leaf<'a> {
    /// Walks the TBSCertificate (RFC 5280 §4.1) of `der` with a minimal DER reader and hands
    /// the fields the profile reads to x509-parser.
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, String> {
        let (cert, rest) = expect(der, TAG_SEQUENCE, "Certificate")?;
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes of trailing data after the certificate",
                rest.len()
            ));
        }
        let (mut i, _) = expect(cert, TAG_SEQUENCE, "tbsCertificate")?;

        let (mut tag, mut serial, mut rest) = tlv(i, "serialNumber")?;
        if tag == TAG_VERSION {
            (tag, serial, rest) = tlv(rest, "serialNumber")?;
        }
        if tag != TAG_INTEGER {
            return Err("serialNumber is not an INTEGER".to_owned());
        }
        i = rest;
        (_, _, i) = tlv(i, "signature")?;
        (_, _, i) = tlv(i, "issuer")?;
        let (rest, validity) = Validity::from_der(i).map_err(|e| format!("validity: {e}"))?;
        (_, _, i) = tlv(rest, "subject")?;
        let (mut i, spki) =
            SubjectPublicKeyInfo::from_der(i).map_err(|e| format!("subjectPublicKeyInfo: {e}"))?;

        let mut leaf = Self {
            serial,
            validity,
            spki,
            basic_constraints: None,
            key_usage: None,
            eku: None,
            san: None,
        };
        while !i.is_empty() {
            // issuerUniqueID [1] and subjectUniqueID [2] are skipped; extensions are [3].
            let (tag, content, rest) = tlv(i, "extensions")?;
            i = rest;
            if tag != TAG_EXTENSIONS {
                continue;
            }
            let (extensions, rest) = expect(content, TAG_SEQUENCE, "extensions")?;
            if !rest.is_empty() {
                return Err("extensions have trailing data".to_owned());
            }
            let mut e = extensions;
            while !e.is_empty() {
                let (extension, rest) = expect(e, TAG_SEQUENCE, "extension")?;
                e = rest;
                let (oid, mut fields) = expect(extension, TAG_OID, "extension id")?;
                if fields.first() == Some(&TAG_BOOLEAN) {
                    (_, _, fields) = tlv(fields, "extension criticality")?;
                }
                let (value, _) = expect(fields, TAG_OCTET_STRING, "extension value")?;
                match oid {
                    OID_BASIC_CONSTRAINTS => {
                        set(&mut leaf.basic_constraints, value, "basicConstraints")?;
                    }
                    OID_KEY_USAGE => set(&mut leaf.key_usage, value, "keyUsage")?,
                    OID_EXT_KEY_USAGE => set(&mut leaf.eku, value, "extKeyUsage")?,
                    OID_SUBJECT_ALT_NAME => set(&mut leaf.san, value, "subjectAltName")?,
                    _ => {}
                }
            }
        }
        Ok(leaf)
    }

    /// The DNS and URI SANs, in order.
    pub(crate) fn san_names(&self) -> (Vec<String>, Vec<String>) {
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        for name in self.san.iter().flat_map(|san| &san.general_names) {
            match name {
                GeneralName::DNSName(n) => dns.push((*n).to_owned()),
                GeneralName::URI(u) => uris.push((*u).to_owned()),
                _ => {}
            }
        }
        (dns, uris)
    }
}

/// One DER element: its (single-byte) tag, its contents and what follows it.
fn tlv<'a>(input: &'a [u8], what: &str) -> Result<(u8, &'a [u8], &'a [u8]), String> {
    let bad = || format!("{what}: malformed DER");
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    if tag & 0x1f == 0x1f {
        return Err(bad()); // high tag numbers do not occur in a certificate's skeleton
    }
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let (bytes, rest) = rest.split_at_checked(n).ok_or_else(bad)?;
            let len = bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (len, rest)
        }
        _ => return Err(bad()),
    };
    let (content, rest) = rest.split_at_checked(len).ok_or_else(bad)?;
    Ok((tag, content, rest))
}

/// One DER element that must have `tag`: its contents and what follows it.
fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    match tlv(input, what)? {
        (found, content, rest) if found == tag => Ok((content, rest)),
        _ => Err(format!("{what}: unexpected DER tag")),
    }
}

/// Parses one extension value into `slot`, refusing duplicates and trailing bytes.
fn set<'a, T: FromDer<'a, X509Error>>(
    slot: &mut Option<T>,
    value: &'a [u8],
    name: &str,
) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("the {name} extension appears more than once"));
    }
    match T::from_der(value) {
        Ok(([], parsed)) => {
            *slot = Some(parsed);
            Ok(())
        }
        Ok(_) => Err(format!("the {name} extension has trailing data")),
        Err(e) => Err(format!("the {name} extension is malformed: {e}")),
    }
}

fn finish<'a>(
    result: Result<(&'a [u8], X509Certificate<'a>), x509_parser::nom::Err<X509Error>>,
) -> Result<X509Certificate<'a>, String> {
    match result {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!(
            "{} bytes of trailing data after the certificate",
            rest.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether webpki could verify a TLS handshake signature made with this key: ECDSA P-256 or
/// P-384, Ed25519, or RSA of 2048 to 8192 bits in whole bytes.
pub(crate) fn webpki_can_use(key: &PublicKeyKind) -> bool {
    match key {
        PublicKeyKind::Ecdsa(_) | PublicKeyKind::Ed25519 => true,
        PublicKeyKind::Rsa { bits } => (2048..=8192).contains(bits) && bits % 8 == 0,
        _ => false,
    }
}

/// The key purposes of an EKU extension, by name where it has a common one.
pub(crate) fn eku_names(eku: &ExtendedKeyUsage<'_>) -> Vec<String> {
    let named = [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ];
    named
        .iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| (*name).to_owned())
        .chain(eku.other.iter().map(|oid| oid.to_id_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_mangled_leaves_are_errors_not_panics() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let leaf = Leaf::parse(&der).unwrap();
        assert!(
            leaf.eku
                .as_ref()
                .is_some_and(|eku| eku.server_auth && !eku.client_auth)
        );
        assert_eq!(leaf.san_names(), (vec!["a.example".to_owned()], vec![]));
        for len in 0..der.len() {
            assert!(
                Leaf::parse(&der[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
        for i in 0..der.len() {
            let mut mangled = der.clone();
            mangled[i] ^= 0xff;
            let _ = Leaf::parse(&mangled);
        }
        assert_eq!(
            tlv(&[0x30, 0x85, 0, 0, 0, 0, 1], "x"),
            Err("x: malformed DER".to_owned())
        );
        assert_eq!(
            tlv(&[0x1f, 0x01, 0x00], "x"),
            Err("x: malformed DER".to_owned())
        );
        assert_eq!(
            tlv(&[0x30, 0x82, 0x01], "x"),
            Err("x: malformed DER".to_owned())
        );
    }

    #[test]
    fn webpki_usable_keys() {
        assert!(webpki_can_use(&PublicKeyKind::Ecdsa(
            meshid_policy::KeyAlgorithm::EcdsaP384
        )));
        assert!(webpki_can_use(&PublicKeyKind::Ed25519));
        assert!(webpki_can_use(&PublicKeyKind::Rsa { bits: 2048 }));
        assert!(!webpki_can_use(&PublicKeyKind::Rsa { bits: 2052 }));
        assert!(!webpki_can_use(&PublicKeyKind::Rsa { bits: 1024 }));
        assert!(!webpki_can_use(&PublicKeyKind::EcdsaOtherCurve(
            "1.2.840.10045.3.1.1".into()
        )));
    }
}
