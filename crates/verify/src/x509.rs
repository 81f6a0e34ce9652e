//! What the mesh profile reads from certificates.
//!
//! Leaves are read with a small DER walker: the common, canonical encodings of the fields the
//! profile reads (validity, a P-256/P-384 key, the four extensions) are decoded by hand, and
//! anything else is handed to x509-parser, so that unusual encodings get exactly its verdict.

use meshid_policy::x509::der::{
    OID_BASIC_CONSTRAINTS, OID_CLIENT_AUTH, OID_EXT_KEY_USAGE, OID_KEY_USAGE, OID_SERVER_AUTH,
    OID_SUBJECT_ALT_NAME, SPKI_P256_PREFIX, SPKI_P384_PREFIX,
};
use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
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
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;
const TAG_EXTENSIONS: u8 = 0xa3;
/// GeneralName choices (RFC 5280 §4.2.1.6), primitive context-specific tags.
const TAG_DNS_NAME: u8 = 0x82;
const TAG_URI: u8 = 0x86;
const TAG_IP_ADDRESS: u8 = 0x87;

/// anyExtendedKeyUsage, 2.5.29.37.0.
const OID_ANY_EKU: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    finish(X509Certificate::from_der(der))
}

/// A leaf parsed for the mesh profile, once and only as far as the profile reads it: serial,
/// validity, key and four extensions. Names and other extensions are left to webpki, which
/// parses the whole certificate strictly.
pub(crate) struct Leaf<'a> {
    pub(crate) serial: &'a [u8],
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) key: PublicKeyKind,
    /// basicConstraints cA; false without the extension.
    pub(crate) ca: bool,
    /// Whether a keyUsage extension asserts keyCertSign.
    pub(crate) key_cert_sign: bool,
    pub(crate) eku: Option<Eku<'a>>,
    san: Option<San<'a>>,
}

/// The key purposes of an extKeyUsage extension that the profile decides on.
pub(crate) struct Eku<'a> {
    pub(crate) any: bool,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    /// The extension's value, for naming every purpose in errors.
    der: &'a [u8],
}

/// A subjectAltName extension: the SEQUENCE contents when every name is a DNS name, URI or
/// IP address in canonical DER, else what x509-parser made of it.
enum San<'a> {
    Simple(&'a [u8]),
    Parsed(SubjectAlternativeName<'a>),
}

impl<'a> Leaf<'a> {
    /// Walks the TBSCertificate (RFC 5280 §4.1) of `der` with a minimal DER reader, decoding
    /// the fields the profile reads; encodings other than the common canonical ones go to
    /// x509-parser.
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
        let (not_before, not_after, rest) = match simple_validity(i) {
            Some(validity) => validity,
            None => {
                let (rest, validity) =
                    Validity::from_der(i).map_err(|e| format!("validity: {e}"))?;
                (
                    validity.not_before.to_datetime(),
                    validity.not_after.to_datetime(),
                    rest,
                )
            }
        };
        (_, _, i) = tlv(rest, "subject")?;
        let (key, mut i) = match simple_key(i) {
            Some(key) => key,
            None => {
                let (rest, spki) = SubjectPublicKeyInfo::from_der(i)
                    .map_err(|e| format!("subjectPublicKeyInfo: {e}"))?;
                (meshid_policy::x509::public_key_kind(&spki), rest)
            }
        };

        let mut ca = None;
        let mut key_cert_sign = None;
        let mut eku = None;
        let mut san = None;
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
                        let name = "basicConstraints";
                        once(&ca, name)?;
                        ca = Some(match simple_basic_constraints(value) {
                            Some(ca) => ca,
                            None => parse_value::<BasicConstraints>(value, name)?.ca,
                        });
                    }
                    OID_KEY_USAGE => {
                        let name = "keyUsage";
                        once(&key_cert_sign, name)?;
                        key_cert_sign = Some(match simple_key_cert_sign(value) {
                            Some(asserted) => asserted,
                            None => parse_value::<KeyUsage>(value, name)?.key_cert_sign(),
                        });
                    }
                    OID_EXT_KEY_USAGE => {
                        let name = "extKeyUsage";
                        once(&eku, name)?;
                        eku = Some(match simple_eku(value) {
                            Some(eku) => eku,
                            None => {
                                let parsed = parse_value::<ExtendedKeyUsage<'_>>(value, name)?;
                                Eku {
                                    any: parsed.any,
                                    server_auth: parsed.server_auth,
                                    client_auth: parsed.client_auth,
                                    der: value,
                                }
                            }
                        });
                    }
                    OID_SUBJECT_ALT_NAME => {
                        let name = "subjectAltName";
                        once(&san, name)?;
                        san = Some(match simple_san(value) {
                            Some(names) => San::Simple(names),
                            None => San::Parsed(parse_value(value, name)?),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            serial,
            not_before,
            not_after,
            key,
            ca: ca.unwrap_or(false),
            key_cert_sign: key_cert_sign.unwrap_or(false),
            eku,
            san,
        })
    }

    /// The DNS and URI SANs, in order.
    pub(crate) fn san_names(&self) -> (Vec<String>, Vec<String>) {
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        match &self.san {
            None => {}
            Some(San::Simple(names)) => {
                let mut names = *names;
                while let Some((tag, name, rest)) = canonical_tlv(names) {
                    names = rest;
                    let list = match tag {
                        TAG_DNS_NAME => &mut dns,
                        TAG_URI => &mut uris,
                        _ => continue,
                    };
                    if let Ok(name) = core::str::from_utf8(name) {
                        list.push(name.to_owned());
                    }
                }
            }
            Some(San::Parsed(san)) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(n) => dns.push((*n).to_owned()),
                        GeneralName::URI(u) => uris.push((*u).to_owned()),
                        _ => {}
                    }
                }
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

/// Splits DER elements laid back to back; a tail that is not one is yielded whole.
pub(crate) fn split_der(mut der: &[u8]) -> impl Iterator<Item = &[u8]> {
    core::iter::from_fn(move || {
        if der.is_empty() {
            return None;
        }
        let len = tlv(der, "certificate").map_or(der.len(), |(_, _, rest)| der.len() - rest.len());
        let (element, rest) = der.split_at_checked(len).unwrap_or((der, &[]));
        der = rest;
        Some(element)
    })
}

/// One DER element that must have `tag`: its contents and what follows it.
fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    match tlv(input, what)? {
        (found, content, rest) if found == tag => Ok((content, rest)),
        _ => Err(format!("{what}: unexpected DER tag")),
    }
}

/// One DER element with a single-byte tag and a minimally encoded length below 64 KiB: its
/// tag, contents and what follows it. `None` for anything else, including lengths that DER
/// forbids, so that the caller can hand the input to a full parser.
fn canonical_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match (first, rest) {
        (0..=0x7f, _) => (usize::from(first), rest),
        (0x81, [len @ 0x80..=0xff, rest @ ..]) => (usize::from(*len), rest),
        (0x81, _) => return None,
        (0x82, [hi @ 1..=0xff, lo, rest @ ..]) => {
            ((usize::from(*hi) << 8) | usize::from(*lo), rest)
        }
        _ => return None,
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// A Validity of two `YYMMDDHHMMSSZ` UTCTimes or `YYYYMMDDHHMMSSZ` GeneralizedTimes (the
/// forms RFC 5280 §4.1.2.5 requires): NotBefore, NotAfter and what follows.
fn simple_validity(input: &[u8]) -> Option<(OffsetDateTime, OffsetDateTime, &[u8])> {
    let (TAG_SEQUENCE, times, rest) = canonical_tlv(input)? else {
        return None;
    };
    let (not_before_tag, not_before, times) = canonical_tlv(times)?;
    let (not_after_tag, not_after, []) = canonical_tlv(times)? else {
        return None;
    };
    Some((
        simple_time(not_before_tag, not_before)?,
        simple_time(not_after_tag, not_after)?,
        rest,
    ))
}

/// A UTCTime (years 1950 to 2049) or GeneralizedTime in seconds, in UTC ("Z").
fn simple_time(tag: u8, text: &[u8]) -> Option<OffsetDateTime> {
    let (year, rest) = match (tag, text) {
        (TAG_UTC_TIME, [y1, y2, rest @ ..]) => {
            let year = i32::from(two_digits(*y1, *y2)?);
            (if year >= 50 { 1900 + year } else { 2000 + year }, rest)
        }
        (TAG_GENERALIZED_TIME, [c1, c2, y1, y2, rest @ ..]) => {
            let century = i32::from(two_digits(*c1, *c2)?);
            (century * 100 + i32::from(two_digits(*y1, *y2)?), rest)
        }
        _ => return None,
    };
    let [mo1, mo2, d1, d2, h1, h2, mi1, mi2, s1, s2, b'Z'] = *rest else {
        return None;
    };
    let month = Month::try_from(two_digits(mo1, mo2)?).ok()?;
    let date = Date::from_calendar_date(year, month, two_digits(d1, d2)?).ok()?;
    let time = Time::from_hms(
        two_digits(h1, h2)?,
        two_digits(mi1, mi2)?,
        two_digits(s1, s2)?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn two_digits(tens: u8, ones: u8) -> Option<u8> {
    (tens.is_ascii_digit() && ones.is_ascii_digit()).then(|| (tens - b'0') * 10 + (ones - b'0'))
}

/// An ECDSA P-256 or P-384 SubjectPublicKeyInfo with an uncompressed point in canonical
/// DER: the key's kind and what follows.
fn simple_key(input: &[u8]) -> Option<(PublicKeyKind, &[u8])> {
    let (algorithm, after) = if let Some(after) = input.strip_prefix(SPKI_P256_PREFIX) {
        (KeyAlgorithm::EcdsaP256, after.get(64..)?)
    } else {
        (
            KeyAlgorithm::EcdsaP384,
            input.strip_prefix(SPKI_P384_PREFIX)?.get(96..)?,
        )
    };
    Some((PublicKeyKind::Ecdsa(algorithm), after))
}

/// basicConstraints without a path length, in DER: its cA.
fn simple_basic_constraints(value: &[u8]) -> Option<bool> {
    match value {
        [TAG_SEQUENCE, 0x00] => Some(false),
        [TAG_SEQUENCE, 0x03, TAG_BOOLEAN, 0x01, 0xff] => Some(true),
        _ => None,
    }
}

/// keyUsage as a one- or two-byte BIT STRING in DER (zero padding, no trailing zero byte):
/// whether it asserts keyCertSign (bit 5).
fn simple_key_cert_sign(value: &[u8]) -> Option<bool> {
    let (first, last, unused) = match *value {
        [TAG_BIT_STRING, 0x02, unused, first] => (first, first, unused),
        [TAG_BIT_STRING, 0x03, unused, first, last] => (first, last, unused),
        _ => return None,
    };
    let padding = 1u8.checked_shl(u32::from(unused))?.wrapping_sub(1);
    (unused < 8 && last != 0 && last & padding == 0).then_some(first & 0x04 != 0)
}

/// extKeyUsage listing only serverAuth, clientAuth and anyExtendedKeyUsage, in DER.
fn simple_eku(value: &[u8]) -> Option<Eku<'_>> {
    let (TAG_SEQUENCE, mut oids, []) = canonical_tlv(value)? else {
        return None;
    };
    let mut eku = Eku {
        any: false,
        server_auth: false,
        client_auth: false,
        der: value,
    };
    if oids.is_empty() {
        return None;
    }
    while !oids.is_empty() {
        let (TAG_OID, oid, rest) = canonical_tlv(oids)? else {
            return None;
        };
        oids = rest;
        match oid {
            OID_SERVER_AUTH => eku.server_auth = true,
            OID_CLIENT_AUTH => eku.client_auth = true,
            OID_ANY_EKU => eku.any = true,
            _ => return None,
        }
    }
    Some(eku)
}

/// subjectAltName holding only DNS names and URIs in UTF-8 and IP addresses, in DER: the
/// contents of its SEQUENCE.
fn simple_san(value: &[u8]) -> Option<&[u8]> {
    let (TAG_SEQUENCE, names, []) = canonical_tlv(value)? else {
        return None;
    };
    let mut rest = names;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let (tag, name, after) = canonical_tlv(rest)?;
        rest = after;
        match tag {
            TAG_DNS_NAME | TAG_URI => {
                core::str::from_utf8(name).ok()?;
            }
            TAG_IP_ADDRESS => {}
            _ => return None,
        }
    }
    Some(names)
}

/// Refuses a second occurrence of an extension.
fn once<T>(slot: &Option<T>, name: &str) -> Result<(), String> {
    match slot {
        Some(_) => Err(format!("the {name} extension appears more than once")),
        None => Ok(()),
    }
}

/// Parses one extension value with x509-parser, refusing trailing bytes.
fn parse_value<'a, T: FromDer<'a, X509Error>>(value: &'a [u8], name: &str) -> Result<T, String> {
    match T::from_der(value) {
        Ok(([], parsed)) => Ok(parsed),
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
pub(crate) fn eku_names(eku: &Eku<'_>) -> Vec<String> {
    let Ok((_, eku)) = ExtendedKeyUsage::from_der(eku.der) else {
        // Only extensions x509-parser reads get here; name what was decoded regardless.
        let named = [
            (eku.any, "anyExtendedKeyUsage"),
            (eku.server_auth, "serverAuth"),
            (eku.client_auth, "clientAuth"),
        ];
        return named
            .iter()
            .filter(|(present, _)| *present)
            .map(|(_, name)| (*name).to_owned())
            .collect();
    };
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

    /// What the profile reads from a leaf, as comparable values.
    type Summary = (
        Vec<u8>,
        OffsetDateTime,
        OffsetDateTime,
        PublicKeyKind,
        bool,
        bool,
        Option<(bool, bool, bool)>,
        (Vec<String>, Vec<String>),
    );

    fn summary(der: &[u8]) -> Result<Summary, String> {
        let leaf = Leaf::parse(der)?;
        Ok((
            leaf.serial.to_vec(),
            leaf.not_before,
            leaf.not_after,
            leaf.key.clone(),
            leaf.ca,
            leaf.key_cert_sign,
            leaf.eku
                .as_ref()
                .map(|e| (e.any, e.server_auth, e.client_auth)),
            leaf.san_names(),
        ))
    }

    /// The same read entirely with x509-parser, as the leaf walk did before it decoded the
    /// common encodings itself.
    fn reference(der: &[u8]) -> Result<Summary, String> {
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
        let mut bc: Option<BasicConstraints> = None;
        let mut ku: Option<KeyUsage> = None;
        let mut eku: Option<ExtendedKeyUsage<'_>> = None;
        let mut san: Option<SubjectAlternativeName<'_>> = None;
        fn set<'a, T: FromDer<'a, X509Error>>(
            slot: &mut Option<T>,
            value: &'a [u8],
            name: &str,
        ) -> Result<(), String> {
            once(slot, name)?;
            *slot = Some(parse_value(value, name)?);
            Ok(())
        }
        while !i.is_empty() {
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
                    OID_BASIC_CONSTRAINTS => set(&mut bc, value, "basicConstraints")?,
                    OID_KEY_USAGE => set(&mut ku, value, "keyUsage")?,
                    OID_EXT_KEY_USAGE => set(&mut eku, value, "extKeyUsage")?,
                    OID_SUBJECT_ALT_NAME => set(&mut san, value, "subjectAltName")?,
                    _ => {}
                }
            }
        }
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        for name in san.iter().flat_map(|san| &san.general_names) {
            match name {
                GeneralName::DNSName(n) => dns.push((*n).to_owned()),
                GeneralName::URI(u) => uris.push((*u).to_owned()),
                _ => {}
            }
        }
        Ok((
            serial.to_vec(),
            validity.not_before.to_datetime(),
            validity.not_after.to_datetime(),
            meshid_policy::x509::public_key_kind(&spki),
            bc.is_some_and(|bc| bc.ca),
            ku.is_some_and(|ku| ku.key_cert_sign()),
            eku.map(|e| (e.any, e.server_auth, e.client_auth)),
            (dns, uris),
        ))
    }

    /// Leaves in the encodings the walk decodes itself and in ones it hands on.
    fn variants() -> Vec<Vec<u8>> {
        use rcgen::{
            BasicConstraints as Bc, CustomExtension, DnType, ExtendedKeyUsagePurpose as Eku, IsCa,
            KeyUsagePurpose as Ku, SanType,
        };
        use time::macros::datetime;
        let mut out = Vec::new();
        let algs: [&'static rcgen::SignatureAlgorithm; 3] = [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ];
        for (n, alg) in algs.into_iter().enumerate() {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let sans = vec![
                SanType::DnsName("web.ns.svc".try_into().unwrap()),
                SanType::URI("spiffe://td/ns/web".try_into().unwrap()),
                SanType::IpAddress([10, 0, 0, 1].into()),
                SanType::Rfc822Name("a@b.example".try_into().unwrap()),
            ];
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, "leaf");
            params.subject_alt_names = match n {
                0 => sans[..3].to_vec(),
                1 => sans.clone(),
                _ => Vec::new(),
            };
            params.extended_key_usages = match n {
                0 => vec![Eku::ServerAuth, Eku::ClientAuth],
                1 => vec![
                    Eku::ClientAuth,
                    Eku::CodeSigning,
                    Eku::Other(vec![1, 2, 3, 4]),
                ],
                _ => vec![Eku::Any, Eku::ServerAuth],
            };
            params.key_usages = match n {
                0 => vec![Ku::DigitalSignature],
                1 => vec![Ku::DigitalSignature, Ku::KeyCertSign, Ku::DecipherOnly],
                _ => Vec::new(),
            };
            params.is_ca = match n {
                0 => IsCa::ExplicitNoCa,
                1 => IsCa::Ca(Bc::Constrained(1)),
                _ => IsCa::Ca(Bc::Unconstrained),
            };
            (params.not_before, params.not_after) = match n {
                0 => (
                    datetime!(2026-02-28 23:59:59 UTC),
                    datetime!(2049-12-31 0:00 UTC),
                ),
                1 => (
                    datetime!(1950-01-01 0:00 UTC),
                    datetime!(2050-01-01 0:00 UTC),
                ),
                _ => (
                    datetime!(2024-02-29 12:00 UTC),
                    datetime!(9999-12-31 23:59:59 UTC),
                ),
            };
            if n == 2 {
                params.custom_extensions = vec![CustomExtension::from_oid_content(
                    &[2, 5, 29, 17],
                    vec![0x30, 0x00],
                )];
            }
            out.push(params.self_signed(&key).unwrap().der().to_vec());
        }
        out
    }

    #[test]
    fn decodes_as_x509_parser_does() {
        for der in variants() {
            let expected = reference(&der);
            assert!(expected.is_ok(), "{expected:?}");
            assert_eq!(summary(&der), expected);
            for i in 0..der.len() {
                for mask in [0xff, 0x01, 0x02, 0x04, 0x10, 0x80] {
                    let mut mangled = der.clone();
                    mangled[i] ^= mask;
                    assert_eq!(
                        summary(&mangled),
                        reference(&mangled),
                        "byte {i} ^ {mask:#x}"
                    );
                }
                for value in [0x00, 0x7f, 0x80, 0x81, 0x82] {
                    let mut mangled = der.clone();
                    mangled[i] = value;
                    assert_eq!(
                        summary(&mangled),
                        reference(&mangled),
                        "byte {i} = {value:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn simple_encodings() {
        assert_eq!(canonical_tlv(&[0x04, 0x81, 0x7f]), None);
        assert_eq!(canonical_tlv(&[0x04, 0x82, 0x00, 0x80]), None);
        assert_eq!(canonical_tlv(&[0x04, 0x80]), None);
        assert_eq!(
            canonical_tlv(&[0x04, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
        assert_eq!(simple_key_cert_sign(&[0x03, 0x02, 0x01, 0x06]), Some(true));
        assert_eq!(simple_key_cert_sign(&[0x03, 0x02, 0x07, 0x80]), Some(false));
        assert_eq!(simple_key_cert_sign(&[0x03, 0x02, 0x01, 0x05]), None);
        assert_eq!(simple_key_cert_sign(&[0x03, 0x02, 0x08, 0x00]), None);
        assert_eq!(simple_key_cert_sign(&[0x03, 0x03, 0x07, 0x04, 0x00]), None);
        let utc = |s: &[u8]| simple_time(TAG_UTC_TIME, s);
        let generalized = |s: &[u8]| simple_time(TAG_GENERALIZED_TIME, s);
        assert_eq!(
            utc(b"491231235959Z"),
            Some(time::macros::datetime!(2049-12-31 23:59:59 UTC))
        );
        assert_eq!(
            utc(b"500101000000Z"),
            Some(time::macros::datetime!(1950-01-01 0:00 UTC))
        );
        assert_eq!(utc(b"230229000000Z"), None);
        assert_eq!(
            utc(b"240229000000Z"),
            Some(time::macros::datetime!(2024-02-29 0:00 UTC))
        );
        assert_eq!(utc(b"240101000060Z"), None);
        assert_eq!(utc(b"2401010000Z"), None);
        assert_eq!(utc(b"240101000000+0000"), None);
        assert_eq!(generalized(b"20240101000000.5Z"), None);
        assert_eq!(
            generalized(b"20500101000000Z"),
            Some(time::macros::datetime!(2050-01-01 0:00 UTC))
        );
    }

    #[test]
    fn webpki_usable_keys() {
        assert!(webpki_can_use(&PublicKeyKind::Ecdsa(
            KeyAlgorithm::EcdsaP384
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
