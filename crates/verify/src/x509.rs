//! What the mesh profile reads from certificates, read with x509-parser.
//!
//! webpki parses every certificate of a path strictly for path building; the profile reads
//! the leaf once more, with x509-parser, for what webpki does not expose: serial, validity,
//! key, basic constraints, key usage, extended key usage and the SANs.

use meshid_policy::PublicKeyKind;
use time::OffsetDateTime;
use x509_parser::certificate::{X509Certificate, X509CertificateParser};
use x509_parser::error::X509Error;
use x509_parser::extensions::{
    BasicConstraints, ExtendedKeyUsage, GeneralName, KeyUsage, SubjectAlternativeName,
};
use x509_parser::nom::Parser;
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::FromDer;

use crate::error::MalformedCertificate;

/// Parses one DER certificate, with its extensions, refusing trailing bytes.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, MalformedCertificate> {
    finish(X509Certificate::from_der(der))
}

/// A leaf read for the mesh profile: serial, validity, key and four extensions.
pub(crate) struct Leaf<'a> {
    pub(crate) serial: &'a [u8],
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) key: PublicKeyKind,
    /// basicConstraints cA; false without the extension.
    pub(crate) ca: bool,
    /// Whether a keyUsage extension asserts keyCertSign.
    pub(crate) key_cert_sign: bool,
    pub(crate) eku: Option<ExtendedKeyUsage<'a>>,
    san: Option<SubjectAlternativeName<'a>>,
}

impl<'a> Leaf<'a> {
    /// Parses `der`. Extensions other than the four the profile reads are left unparsed
    /// (webpki checks them); each of the four may appear once.
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, MalformedCertificate> {
        let cert = finish(
            X509CertificateParser::new()
                .with_deep_parse_extensions(false)
                .parse(der),
        )?;
        let mut basic_constraints = None;
        let mut key_usage = None;
        let mut eku = None;
        let mut san = None;
        for extension in cert.extensions() {
            let oid = &extension.oid;
            let value = extension.value;
            if *oid == OID_X509_EXT_BASIC_CONSTRAINTS {
                set::<BasicConstraints>(&mut basic_constraints, value, "basicConstraints")?;
            } else if *oid == OID_X509_EXT_KEY_USAGE {
                set::<KeyUsage>(&mut key_usage, value, "keyUsage")?;
            } else if *oid == OID_X509_EXT_EXTENDED_KEY_USAGE {
                set(&mut eku, value, "extKeyUsage")?;
            } else if *oid == OID_X509_EXT_SUBJECT_ALT_NAME {
                set(&mut san, value, "subjectAltName")?;
            }
        }
        let validity = cert.validity();
        Ok(Self {
            serial: cert.raw_serial(),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            key: meshid_policy::x509::public_key_kind(cert.public_key()),
            ca: basic_constraints.is_some_and(|bc| bc.ca),
            key_cert_sign: key_usage.is_some_and(|ku| ku.key_cert_sign()),
            eku,
            san,
        })
    }

    /// The DNS and URI SANs, in order.
    pub(crate) fn san_names(&self) -> (Vec<String>, Vec<String>) {
        let mut dns = Vec::new();
        let mut uris = Vec::new();
        for name in self.san.iter().flat_map(|san| &san.general_names) {
            match name {
                GeneralName::DNSName(name) => dns.push((*name).to_owned()),
                GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                _ => {}
            }
        }
        (dns, uris)
    }
}

/// Parses the value of a once-only extension into `slot`.
fn set<'a, T: FromDer<'a, X509Error>>(
    slot: &mut Option<T>,
    value: &'a [u8],
    name: &'static str,
) -> Result<(), MalformedCertificate> {
    if slot.is_some() {
        return Err(MalformedCertificate::DuplicateExtension { name });
    }
    *slot = Some(match T::from_der(value) {
        Ok(([], parsed)) => parsed,
        Ok(_) => return Err(MalformedCertificate::ExtensionTrailingData { name }),
        Err(e) => {
            return Err(MalformedCertificate::Extension {
                name,
                error: e.into(),
            });
        }
    });
    Ok(())
}

fn finish<'a>(
    result: Result<(&'a [u8], X509Certificate<'a>), x509_parser::nom::Err<X509Error>>,
) -> Result<X509Certificate<'a>, MalformedCertificate> {
    match result {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(MalformedCertificate::TrailingData { count: rest.len() }),
        Err(e) => Err(MalformedCertificate::Der(e.into())),
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
    use meshid_policy::KeyAlgorithm;

    use super::*;

    fn leaf_der(tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        tweak(&mut params);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_profile_fields() {
        let der = leaf_der(|p| {
            p.subject_alt_names.push(rcgen::SanType::URI(
                "spiffe://td/ns/a/sa/b".try_into().unwrap(),
            ));
            p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        });
        let leaf = Leaf::parse(&der).unwrap();
        assert!(
            leaf.eku
                .as_ref()
                .is_some_and(|eku| eku.server_auth && !eku.client_auth)
        );
        assert!(!leaf.ca && !leaf.key_cert_sign);
        assert_eq!(leaf.key, PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256));
        assert_eq!(
            leaf.san_names(),
            (
                vec!["a.example".to_owned()],
                vec!["spiffe://td/ns/a/sa/b".to_owned()]
            )
        );
    }

    #[test]
    fn truncated_or_mangled_leaves_are_errors_not_panics() {
        let der = leaf_der(|_| {});
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
    }

    #[test]
    fn an_extension_the_profile_reads_may_appear_once() {
        // A second subjectAltName: the first one's value, again as a custom extension.
        let first = leaf_der(|_| {});
        let cert = parse_certificate(&first).unwrap();
        let value = cert
            .extensions()
            .iter()
            .find(|e| e.oid == OID_X509_EXT_SUBJECT_ALT_NAME)
            .unwrap()
            .value
            .to_vec();
        let der = leaf_der(|p| {
            p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                value,
            )];
        });
        assert_eq!(
            Leaf::parse(&der).err(),
            Some(MalformedCertificate::DuplicateExtension {
                name: "subjectAltName"
            })
        );
        assert_eq!(
            MalformedCertificate::DuplicateExtension {
                name: "subjectAltName"
            }
            .to_string(),
            "the subjectAltName extension appears more than once"
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
