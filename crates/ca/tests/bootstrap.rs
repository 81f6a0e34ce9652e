//! `CaCertificate::from_pem`: a loaded trust anchor signs issuers that chain to it; anything
//! that could not sign is refused with a message naming the problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use meshid_ca::IssuerCredentials;
use meshid_ca::bootstrap::{CaCertificate, create_intermediate};
use support::*;

#[test]
fn a_loaded_anchor_signs_issuers_that_chain_to_it() {
    let root = root();
    let loaded = CaCertificate::from_pem(&root.pem(), &root.key_pem()).unwrap();
    assert_eq!(loaded.der(), root.der());
    assert_eq!(loaded.subject(), "CN=root.linkerd.cluster.local");
    assert_eq!(loaded.not_before(), ROOT_FROM);
    assert_eq!(loaded.not_after(), ROOT_UNTIL);

    let mut options = ca_options(
        "identity.linkerd.cluster.local",
        ISSUER_FROM,
        ISSUER_UNTIL,
        0,
    );
    options.server_and_client_eku = true;
    let issuer = create_intermediate(&loaded, &options).unwrap();
    let bundle = bundle_of(&[&root]);
    let credentials =
        IssuerCredentials::from_pem(&issuer.pem(), &issuer.key_pem(), &bundle, NOW).unwrap();
    assert_eq!(credentials.not_after(), ISSUER_UNTIL);
    // Debug shows what it is, never the key.
    let debug = format!("{loaded:?}");
    assert!(debug.contains("root.linkerd.cluster.local"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}

#[test]
fn what_cannot_sign_is_refused_by_name() {
    let root = root();
    let issuer = issuer_of(&root, ISSUER_FROM, ISSUER_UNTIL);
    let (leaf_pem, leaf_key_pem) = {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["web.example".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let root_key = root.key_pem();
    let cases: [(&str, &str, &str); 6] = [
        (
            &leaf_pem,
            &leaf_key_pem,
            "invalid CA certificate: not a CA certificate (basicConstraints CA:TRUE is missing)",
        ),
        (
            &issuer.pem(),
            &root_key,
            "invalid CA certificate: the key does not match the certificate",
        ),
        (
            &root_key,
            &root_key,
            "invalid CA certificate: PEM block is 'PRIVATE KEY', expected 'CERTIFICATE'",
        ),
        (
            "no pem here",
            &root_key,
            "invalid CA certificate: not a PEM certificate: ",
        ),
        (
            &root.pem(),
            ED25519_KEY_PEM,
            "invalid CA certificate: key: unsupported private key type Ed25519 (1.3.101.112); \
             meshid keys are ECDSA P-256 or P-384",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
            &root_key,
            "invalid CA certificate: does not parse: ",
        ),
    ];
    for (cert, key, expected) in cases {
        let message = CaCertificate::from_pem(cert, key).unwrap_err().to_string();
        assert!(
            message.starts_with(expected),
            "got {message}\nexpected {expected}"
        );
    }
}
