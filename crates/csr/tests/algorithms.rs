//! Keys and signature algorithms other than P-256: the refusal messages that name them and the
//! proof-of-possession check for each signature algorithm a CSR may carry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use meshid_csr::{CsrLimits, Error, KeyPair, ParsedCsr};
use meshid_policy::PublicKeyKind;
use rcgen::CertificateParams;

const IDENTITY: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";

fn parse(der: &[u8]) -> Result<ParsedCsr, Error> {
    ParsedCsr::from_der(der, &CsrLimits::default())
}

fn unsupported(der: &[u8]) -> String {
    match KeyPair::from_pkcs8_der(der) {
        Err(Error::UnsupportedKey { found }) => found,
        other => panic!("expected UnsupportedKey, got {:?}", other.map(|_| "a key")),
    }
}

#[test]
fn keys_meshid_does_not_certify_are_named_in_the_refusal() {
    let cases: [(&[u8], &str); 9] = [
        (
            include_bytes!("data/keys/ed25519.der"),
            "Ed25519 (1.3.101.112)",
        ),
        (include_bytes!("data/keys/ed448.der"), "Ed448 (1.3.101.113)"),
        (
            include_bytes!("data/keys/x25519.der"),
            "X25519 (1.3.101.110)",
        ),
        (include_bytes!("data/keys/x448.der"), "X448 (1.3.101.111)"),
        (
            include_bytes!("data/keys/dsa.der"),
            "DSA (1.2.840.10040.4.1)",
        ),
        (
            include_bytes!("data/keys/pss.der"),
            "RSASSA-PSS (1.2.840.113549.1.1.10)",
        ),
        (
            include_bytes!("data/keys/p521.der"),
            "ECDSA on curve P-521 (1.3.132.0.35)",
        ),
        (
            include_bytes!("data/keys/k1.der"),
            "ECDSA on curve secp256k1 (1.3.132.0.10)",
        ),
        (
            include_bytes!("data/keys/bp.der"),
            "ECDSA on curve brainpoolP256r1 (1.3.36.3.3.2.8.1.1.7)",
        ),
    ];
    for (der, found) in cases {
        assert_eq!(unsupported(der), found);
    }
    assert_eq!(
        unsupported(include_bytes!("data/keys/rsa.der")),
        "RSA",
        "RSA private keys are refused by name"
    );
}

/// Replaces the CSR's signatureAlgorithm OID: its last occurrence, after the signed info (an
/// Ed25519 key's SPKI carries the same OID).
fn relabel(mut der: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = der
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    let last = *at.last().expect("the CSR names this signature algorithm");
    der[last..last + to.len()].copy_from_slice(to);
    der
}

// DER of the signature algorithm OIDs (tag 06, length, value).
const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_SHA384: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const ECDSA_SHA512: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const RSA_SHA256: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
];
const RSA_SHA1: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05,
];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];

fn csr_signed_with(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    csr_with_key(&key)
}

fn csr_with_key(key: &rcgen::KeyPair) -> Vec<u8> {
    CertificateParams::new(vec![IDENTITY.to_owned()])
        .unwrap()
        .serialize_request(key)
        .unwrap()
        .der()
        .to_vec()
}

fn assert_unsupported(der: &[u8], algorithm: &str, key: &str) {
    match parse(der) {
        Err(Error::UnsupportedSignatureAlgorithm {
            algorithm: a,
            key: k,
        }) => {
            assert_eq!((a.as_str(), k.as_str()), (algorithm, key));
        }
        other => panic!("expected UnsupportedSignatureAlgorithm, got {other:?}"),
    }
}

#[test]
fn ecdsa_signatures_are_checked_with_the_hash_the_csr_names() {
    let p256 = csr_signed_with(&rcgen::PKCS_ECDSA_P256_SHA256);
    assert!(parse(&p256).is_ok());
    // Labelled SHA-384 but made with SHA-256: checked as SHA-384, so it does not verify.
    let p256_384 = relabel(p256.clone(), ECDSA_SHA256, ECDSA_SHA384);
    assert_eq!(parse(&p256_384).unwrap_err(), Error::CsrSignatureInvalid);
    let p256_512 = relabel(p256, ECDSA_SHA256, ECDSA_SHA512);
    assert_unsupported(&p256_512, "1.2.840.10045.4.3.4", "ECDSA P-256");

    let p384 = csr_signed_with(&rcgen::PKCS_ECDSA_P384_SHA384);
    assert!(parse(&p384).is_ok());
    let p384_256 = relabel(p384.clone(), ECDSA_SHA384, ECDSA_SHA256);
    assert_eq!(parse(&p384_256).unwrap_err(), Error::CsrSignatureInvalid);
    let p384_512 = relabel(p384, ECDSA_SHA384, ECDSA_SHA512);
    assert_unsupported(&p384_512, "1.2.840.10045.4.3.4", "ECDSA P-384");
}

#[test]
fn rsa_csrs_verify_with_each_pkcs1_hash_and_nothing_else() {
    let pem = include_str!("data/keys/rsa.pem");
    for alg in [
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_RSA_SHA384,
        &rcgen::PKCS_RSA_SHA512,
    ] {
        let key = rcgen::KeyPair::from_pem_and_sign_algo(pem, alg).unwrap();
        let der = csr_with_key(&key);
        let parsed = parse(&der).unwrap();
        assert!(matches!(parsed.content().key, PublicKeyKind::Rsa { .. }));
        assert!(parsed.certifiable_key().is_none());
        // Flip a bit of the signature: the check runs for this hash.
        let mut bad = der.clone();
        *bad.last_mut().unwrap() ^= 0x01;
        assert_eq!(parse(&bad).unwrap_err(), Error::CsrSignatureInvalid);
    }
    let key = rcgen::KeyPair::from_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let sha1 = relabel(csr_with_key(&key), RSA_SHA256, RSA_SHA1);
    let key_name = match parse(&sha1) {
        Err(Error::UnsupportedSignatureAlgorithm { algorithm, key }) => {
            assert_eq!(algorithm, "1.2.840.113549.1.1.5");
            key
        }
        other => panic!("expected UnsupportedSignatureAlgorithm, got {other:?}"),
    };
    assert!(key_name.starts_with("RSA"), "{key_name}");
}

#[test]
fn an_ed25519_key_signs_only_as_ed25519() {
    let der = csr_signed_with(&rcgen::PKCS_ED25519);
    assert!(parse(&der).is_ok());
    let ed448 = relabel(der, ED25519, ED448);
    match parse(&ed448) {
        Err(Error::UnsupportedSignatureAlgorithm { algorithm, .. }) => {
            assert_eq!(algorithm, "1.3.101.113");
        }
        other => panic!("expected UnsupportedSignatureAlgorithm, got {other:?}"),
    }
}
