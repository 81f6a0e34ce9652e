//! Trust bundles: parsing, duplicates, set operations and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns.

mod common;

use common::{Ca, NOT_AFTER, NOT_BEFORE};
use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use meshid_verify::{Error, PemProblem, TrustBundle};
use rustls_pki_types::CertificateDer;

fn roots() -> (Ca, Ca, Ca) {
    (
        Ca::default_root("root-a"),
        Ca::default_root("root-b"),
        Ca::default_root("root-c"),
    )
}

fn ders(bundle: &TrustBundle) -> Vec<CertificateDer<'static>> {
    bundle.anchors().map(|a| a.der().clone()).collect()
}

#[test]
fn parses_several_anchors_with_text_around_them() {
    let (a, b, _) = roots();
    let pem = format!("# root A\n{}\n# root B\n{}trailing text\n", a.pem, b.pem);
    let bundle = TrustBundle::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(bundle.len(), 2);
    assert!(!bundle.is_empty());
    assert_eq!(ders(&bundle), [a.der.clone(), b.der.clone()]);
    assert_eq!(bundle.trust_anchors().len(), 2);

    let anchor = bundle.anchor(0).unwrap();
    assert_eq!(anchor.subject(), "CN=root-a");
    assert_eq!(anchor.not_before(), NOT_BEFORE);
    assert_eq!(anchor.not_after(), NOT_AFTER);
    assert!(anchor.is_valid_at(common::NOW));
    assert_eq!(anchor.key(), &PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256));
    let fingerprint = anchor.sha256_fingerprint();
    assert_eq!(fingerprint.len(), 64);
    assert!(
        fingerprint
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(fingerprint, bundle.anchor(1).unwrap().sha256_fingerprint());
    assert!(format!("{bundle:?}").contains("CN=root-b"));
}

#[test]
fn drops_duplicates_keeping_first_seen_order() {
    let (a, b, c) = roots();
    let pem = format!("{}{}{}{}{}", b.pem, a.pem, b.pem, c.pem, a.pem);
    let bundle = TrustBundle::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(ders(&bundle), [b.der.clone(), a.der.clone(), c.der.clone()]);

    let bundle = TrustBundle::from_der(vec![c.der.clone(), c.der.clone()]).unwrap();
    assert_eq!(bundle.len(), 1);
}

#[test]
fn names_the_broken_block() {
    let (a, _, _) = roots();
    let broken = "-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n";
    let pem = format!("{}{broken}", a.pem);
    let e = TrustBundle::from_pem(pem.as_bytes()).unwrap_err();
    assert!(matches!(e, Error::BundlePem { index: 1, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "trust bundle: PEM block #1 is malformed: invalid base64: Invalid symbol 33, offset 4."
    );

    let mismatched = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n";
    let e = TrustBundle::from_pem(format!("{}{mismatched}", a.pem).as_bytes()).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::BundlePem { index: 1, problem: PemProblem::MismatchedLabels { begin, end } }
                if begin == "CERTIFICATE" && end == "X509 CRL"
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "trust bundle: PEM block #1 is malformed: BEGIN label \"CERTIFICATE\" does not match END \
         label \"X509 CRL\""
    );

    let unterminated = format!("-----BEGIN CERTIFICATE-----\nAAAA\n{}", a.pem);
    let e = TrustBundle::from_pem(unterminated.as_bytes()).unwrap_err();
    // A file half written: a watcher may wait for the rest.
    assert_eq!(
        e,
        Error::BundlePem {
            index: 0,
            problem: PemProblem::Unterminated
        }
    );
    assert_eq!(
        e.to_string(),
        "trust bundle: PEM block #0 is malformed: its -----BEGIN line has no matching -----END \
         line"
    );
}

#[test]
fn refuses_blocks_that_are_not_certificates() {
    let (a, _, _) = roots();
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let e = TrustBundle::from_pem(format!("{}{key}", a.pem).as_bytes()).unwrap_err();
    assert_eq!(
        e,
        Error::BundleNotCertificate {
            index: 1,
            label: "PRIVATE KEY".to_owned(),
        }
    );
    assert_eq!(
        e.to_string(),
        "trust bundle: PEM block #1 is a \"PRIVATE KEY\", not a \"CERTIFICATE\"; a trust bundle \
         holds certificates only"
    );
}

#[test]
fn refuses_certificates_that_do_not_parse() {
    let (a, _, _) = roots();
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let e = TrustBundle::from_pem(format!("{}{garbage}", a.pem).as_bytes()).unwrap_err();
    assert!(
        matches!(e, Error::BundleCertificate { index: 1, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("trust bundle: certificate #1 is not a usable trust anchor: "),
        "{e}"
    );

    let mut trailing = a.der.to_vec();
    trailing.extend_from_slice(b"xx");
    let e = TrustBundle::from_der(vec![CertificateDer::from(trailing)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "trust bundle: certificate #0 is not a usable trust anchor: 2 bytes of trailing data \
         after the certificate"
    );
}

#[test]
fn refuses_anchors_that_are_not_ca_certificates() {
    let pki = common::Pki::new();
    let e = TrustBundle::from_der(vec![pki.root.der.clone(), pki.leaf.clone()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "trust bundle: certificate #1 is not a usable trust anchor: it is not a CA certificate \
         (basicConstraints cA=TRUE is missing); a trust bundle holds root CA certificates"
    );
    // An intermediate CA is a CA: it may be pinned as an anchor.
    TrustBundle::from_der(vec![pki.issuer.der.clone()]).unwrap();
}

#[test]
fn refuses_an_empty_bundle() {
    for input in [&b""[..], b"\n\n", b"no certificates here\n"] {
        let e = TrustBundle::from_pem(input).unwrap_err();
        assert_eq!(e, Error::BundleEmpty);
    }
    assert_eq!(
        TrustBundle::from_der(vec![]).unwrap_err(),
        Error::BundleEmpty
    );
    assert_eq!(
        Error::BundleEmpty.to_string(),
        "trust bundle is empty: it must hold at least one CERTIFICATE"
    );
}

#[test]
fn set_operations() {
    let (a, b, c) = roots();
    let ab = TrustBundle::from_der(vec![a.der.clone(), b.der.clone()]).unwrap();
    let bc = TrustBundle::from_der(vec![b.der.clone(), c.der.clone()]).unwrap();

    assert!(ab.contains(&a.der));
    assert!(!ab.contains(&c.der));
    assert_eq!(ab.position(&b.der), Some(1));

    let only_a = ab.difference(&bc);
    assert_eq!(ders(&only_a), std::slice::from_ref(&a.der));
    assert_eq!(only_a.trust_anchors().len(), 1);
    assert!(ab.difference(&ab).is_empty());

    let union = ab.union(&bc);
    assert_eq!(ders(&union), [a.der.clone(), b.der.clone(), c.der.clone()]);
    assert_eq!(union.trust_anchors().len(), 3);

    // Equality is set equality.
    let ba = TrustBundle::from_der(vec![b.der.clone(), a.der.clone()]).unwrap();
    assert_eq!(ab, ba);
    assert_ne!(ab, bc);
    assert_ne!(ab, union);
    assert_eq!(ab.clone(), ab);
}

#[test]
fn pem_round_trip() {
    let (a, b, _) = roots();
    let bundle = TrustBundle::from_der(vec![a.der.clone(), b.der.clone()]).unwrap();
    let pem = bundle.to_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(!pem.contains('\r'));
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    let again = TrustBundle::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(ders(&again), ders(&bundle));
}
