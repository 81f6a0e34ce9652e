//! `CaCertificate::from_pem`: a loaded trust anchor signs issuers that chain to it; anything
//! that could not sign is refused with a message naming the problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use meshid_ca::bootstrap::{CaCertificate, create_intermediate};
use meshid_ca::{CaCertificateProblem, Error, IssuerCredentials};
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
    type Is = fn(&CaCertificateProblem) -> bool;
    let cases: [(&str, &str, Is, &str); 6] = [
        (
            &leaf_pem,
            &leaf_key_pem,
            |p| *p == CaCertificateProblem::NotCa,
            "invalid CA certificate: not a CA certificate (basicConstraints CA:TRUE is missing)",
        ),
        (
            &issuer.pem(),
            &root_key,
            |p| *p == CaCertificateProblem::KeyMismatch,
            "invalid CA certificate: the key does not match the certificate",
        ),
        (
            &root_key,
            &root_key,
            |p| matches!(p, CaCertificateProblem::NotCertificate { label } if label == "PRIVATE KEY"),
            "invalid CA certificate: PEM block is 'PRIVATE KEY', expected 'CERTIFICATE'",
        ),
        (
            "no pem here",
            &root_key,
            |p| matches!(p, CaCertificateProblem::NotPem { .. }),
            "invalid CA certificate: not a PEM certificate: ",
        ),
        (
            &root.pem(),
            ED25519_KEY_PEM,
            |p| {
                matches!(
                    p,
                    CaCertificateProblem::Key(meshid_csr::Error::UnsupportedKey { .. })
                )
            },
            "invalid CA certificate: key: unsupported private key type Ed25519 (1.3.101.112); \
             meshid keys are ECDSA P-256 or P-384",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
            &root_key,
            |p| matches!(p, CaCertificateProblem::Malformed(_)),
            "invalid CA certificate: does not parse: ",
        ),
    ];
    for (cert, key, is, expected) in cases {
        let err = CaCertificate::from_pem(cert, key).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(expected),
            "got {message}\nexpected {expected}"
        );
        let Error::InvalidCaCertificate { problem } = &err else {
            panic!("{err:?}");
        };
        assert!(is(problem), "{problem:?}");
    }
}
