//! The CA-side CSR checks through the public API: proof of possession, the size limit, the
//! names and key handed to the policy, and the requested extensions that are refused or
//! ignored. CSRs are made in-process with meshid's builder or with rcgen.

#![allow(clippy::unwrap_used)]

use meshid_csr::{Csr, CsrLimits, CsrParams, Error, KeyPair, ParsedCsr, rcgen_algorithm};
use meshid_policy::{KeyAlgorithm, PublicKeyKind, San};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType,
};

const IDENTITY: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";

fn parse(der: &[u8]) -> Result<ParsedCsr, Error> {
    ParsedCsr::from_der(der, &CsrLimits::default())
}

/// A CSR for `params`, signed by a fresh P-256 key of rcgen's.
fn rcgen_csr(params: &CertificateParams) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn with_identity() -> CertificateParams {
    CertificateParams::new(vec![IDENTITY.to_owned()]).unwrap()
}

#[test]
fn a_mesh_csr_gives_its_names_and_the_key_to_certify() {
    for alg in KeyAlgorithm::ALL {
        let key = KeyPair::generate(alg).unwrap();
        let mut params = CsrParams::new(IDENTITY);
        params.sans.push(San::Uri(SPIFFE.to_owned()));
        let csr = Csr::build(&key, &params).unwrap();
        let der = csr.der().to_vec();
        assert_eq!(csr.into_der(), der);

        let parsed = parse(&der).unwrap();
        let content = parsed.content();
        assert_eq!(content.common_names, [IDENTITY]);
        assert_eq!(content.dns_names, [IDENTITY]);
        assert_eq!(content.uris, [SPIFFE]);
        assert!(content.ip_addresses.is_empty() && content.email_addresses.is_empty());
        assert!(content.other_names.is_empty());
        assert_eq!(content.key, PublicKeyKind::Ecdsa(alg));

        assert_eq!(parsed.spki_der(), key.public_key_spki());
        assert_eq!(parsed.public_key_raw(), key.public_key_raw());
        let certifiable = parsed.certifiable_key().unwrap();
        assert_eq!(certifiable.algorithm(), alg);
        assert_eq!(certifiable.point(), key.public_key_raw());
        assert_eq!(
            rcgen::PublicKeyData::der_bytes(&certifiable),
            key.public_key_raw()
        );
        assert_eq!(
            rcgen::PublicKeyData::algorithm(&certifiable),
            rcgen_algorithm(alg)
        );
    }
    assert_eq!(
        rcgen_algorithm(KeyAlgorithm::EcdsaP384),
        &rcgen::PKCS_ECDSA_P384_SHA384
    );
    assert_eq!(
        rcgen_algorithm(KeyAlgorithm::EcdsaP256),
        &rcgen::PKCS_ECDSA_P256_SHA256
    );
}

#[test]
fn a_csr_whose_signature_does_not_verify_is_refused() {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let mut der = Csr::build(&key, &CsrParams::new(IDENTITY))
        .unwrap()
        .into_der();
    // The last byte is inside the signature's s value.
    *der.last_mut().unwrap() ^= 0x01;
    let err = parse(&der).unwrap_err();
    assert_eq!(err, Error::CsrSignatureInvalid);
    assert_eq!(
        err.to_string(),
        "CSR signature does not verify: the requester must sign the CSR with the key being \
         certified"
    );
}

#[test]
fn the_size_limit_is_inclusive() {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let der = Csr::build(&key, &CsrParams::new(IDENTITY))
        .unwrap()
        .into_der();
    let mut limits = CsrLimits::default();
    assert_eq!(limits.max_size, 16 * 1024);
    limits.max_size = der.len();
    ParsedCsr::from_der(&der, &limits).unwrap();
    limits.max_size = der.len() - 1;
    let err = ParsedCsr::from_der(&der, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "certificate signing request is {} bytes; the limit is {} bytes",
            der.len(),
            der.len() - 1
        )
    );
}

#[test]
fn input_that_is_not_a_csr_is_malformed() {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let der = Csr::build(&key, &CsrParams::new(IDENTITY))
        .unwrap()
        .into_der();
    assert_eq!(
        parse(&[]).unwrap_err().to_string(),
        "malformed certificate signing request: empty input"
    );
    for len in [1, der.len() / 2, der.len() - 1] {
        let err = parse(&der[..len]).unwrap_err();
        assert!(
            matches!(err, Error::CsrMalformed { .. }),
            "{len} bytes: {err:?}"
        );
    }
    // A cut CSR says how much its header announced and how much arrived.
    let half = der.len() / 2;
    let announced = der.len() - header_len(&der);
    assert_eq!(
        parse(&der[..half]).unwrap_err().to_string(),
        format!(
            "malformed certificate signing request: CertificationRequest: truncated DER: \
             {announced} content bytes announced, {} present",
            half - header_len(&der)
        )
    );
    let mut trailing = der;
    trailing.extend_from_slice(&[0, 0]);
    assert_eq!(
        parse(&trailing).unwrap_err().to_string(),
        "malformed certificate signing request: 2 trailing bytes after the CertificationRequest"
    );
}

/// The length of the outer SEQUENCE's tag and length octets (long-form lengths only: a CSR is
/// longer than 127 bytes).
fn header_len(der: &[u8]) -> usize {
    assert!(der[1] & 0x80 != 0, "a short-form length");
    2 + usize::from(der[1] & 0x7f)
}

#[test]
fn each_extended_key_usage_other_than_the_leaf_ones_is_refused_alone() {
    for purpose in [
        ExtendedKeyUsagePurpose::Any,
        ExtendedKeyUsagePurpose::CodeSigning,
        ExtendedKeyUsagePurpose::EmailProtection,
        ExtendedKeyUsagePurpose::TimeStamping,
        ExtendedKeyUsagePurpose::OcspSigning,
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 99999, 2]),
    ] {
        let mut params = with_identity();
        params.extended_key_usages = vec![purpose.clone()];
        let err = parse(&rcgen_csr(&params)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CSR refused: the CSR asks for extended key usages other than serverAuth and \
             clientAuth",
            "{purpose:?}"
        );
    }
}

#[test]
fn a_checked_extension_that_does_not_parse_is_malformed() {
    // keyUsage (2.5.29.15) whose value is not a BIT STRING.
    let mut params = with_identity();
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[2, 5, 29, 15],
        vec![0x04, 0x01, 0x00],
    )];
    let err = parse(&rcgen_csr(&params)).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "malformed certificate signing request: requested extension 2.5.29.15 does not parse"
        ),
        "{err}"
    );
}

#[test]
fn every_kind_of_requested_name_reaches_the_policy() {
    let mut params = with_identity();
    params.distinguished_name.push(DnType::CommonName, "web");
    params.subject_alt_names.extend([
        SanType::URI(SPIFFE.try_into().unwrap()),
        SanType::IpAddress([10, 0, 0, 1].into()),
        SanType::IpAddress("fd00::1".parse().unwrap()),
        SanType::Rfc822Name("web@example.com".try_into().unwrap()),
        SanType::OtherName((
            vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
            rcgen::OtherNameValue::Utf8String("web".to_owned()),
        )),
    ]);
    let parsed = parse(&rcgen_csr(&params)).unwrap();
    let content = parsed.content();
    assert_eq!(content.common_names, ["web"]);
    assert_eq!(content.dns_names, [IDENTITY]);
    assert_eq!(content.uris, [SPIFFE]);
    assert_eq!(
        content.ip_addresses,
        [
            core::net::IpAddr::from([10, 0, 0, 1]),
            "fd00::1".parse::<core::net::IpAddr>().unwrap()
        ]
    );
    assert_eq!(content.email_addresses, ["web@example.com"]);
    assert_eq!(content.other_names, ["otherName"]);
}

#[test]
fn leaf_usages_may_be_requested() {
    let mut params = with_identity();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    // Unknown, not critical: ignored (CSR extensions are never copied into a certificate).
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 99999, 1],
        b"anything".to_vec(),
    )];
    let parsed = parse(&rcgen_csr(&params)).unwrap();
    assert_eq!(parsed.content().dns_names, [IDENTITY]);
}

#[test]
fn requests_that_would_change_the_leaf_profile_are_refused() {
    type Change = fn(&mut CertificateParams);
    let cases: [(Change, &str); 6] = [
        (
            |p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained),
            "the CSR asks for a CA certificate (basicConstraints CA:TRUE); meshid issues only \
             leaf certificates",
        ),
        (
            |p| {
                p.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyCertSign,
                ]
            },
            "the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues \
             only leaf certificates",
        ),
        (
            |p| p.key_usages = vec![KeyUsagePurpose::CrlSign],
            "the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues \
             only leaf certificates",
        ),
        (
            |p| {
                p.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::CodeSigning,
                ];
            },
            "the CSR asks for extended key usages other than serverAuth and clientAuth",
        ),
        (
            |p| p.custom_extensions = vec![name_constraints()],
            "the CSR asks for name constraints, which only a CA certificate may carry",
        ),
        (
            |p| {
                let mut ext = CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 99999, 1],
                    b"anything".to_vec(),
                );
                ext.set_criticality(true);
                p.custom_extensions = vec![ext];
            },
            "the CSR requests critical extension 1.3.6.1.4.1.99999.1 that meshid does not issue",
        ),
    ];
    for (change, reason) in cases {
        let mut params = with_identity();
        change(&mut params);
        let err = parse(&rcgen_csr(&params)).unwrap_err();
        assert_eq!(err.to_string(), format!("CSR refused: {reason}"));
    }
}

/// A nameConstraints extension as a CA certificate carries it: rcgen writes one into a CA
/// certificate (not into a CSR), and x509-parser reads its value back out.
fn name_constraints() -> CustomExtension {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("cluster.local".to_owned())],
        excluded_subtrees: Vec::new(),
    });
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ca = params.self_signed(&key).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(ca.der()).unwrap();
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.30")
        .unwrap();
    CustomExtension::from_oid_content(&[2, 5, 29, 30], ext.value.to_vec())
}

#[test]
fn an_ed25519_csr_verifies_but_offers_no_key_to_certify() {
    // The policy, not the parser, refuses the key: it is named for the policy's message.
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let csr = with_identity().serialize_request(&ed25519).unwrap();
    let parsed = parse(csr.der()).unwrap();
    assert_eq!(parsed.content().key, PublicKeyKind::Ed25519);
    assert!(parsed.certifiable_key().is_none());
}
