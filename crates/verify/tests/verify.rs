//! Chain verification and identity matching, on certificates generated at fixed times.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns.

mod common;

use common::{Ca, IDENTITY, Leaf, NOT_AFTER, NOT_BEFORE, NOW, Pki, SPIFFE_ID};
use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use meshid_verify::{
    Error, TrustBundle, Usage, VerifiedPeer, VerifyOptions, verify_chain, verify_identity,
};
use rcgen::{
    ExtendedKeyUsagePurpose, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::macros::datetime;

fn verify(pki: &Pki, leaf: &CertificateDer<'_>, usage: Usage) -> Result<VerifiedPeer, Error> {
    verify_chain(
        &pki.bundle(),
        leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        usage,
        &VerifyOptions::default(),
    )
}

fn err(result: Result<VerifiedPeer, Error>) -> Error {
    match result {
        Ok(peer) => panic!("accepted: {peer:?}"),
        Err(e) => e,
    }
}

#[test]
fn accepts_leaf_issuer_anchor_for_every_usage() {
    let pki = Pki::new();
    for usage in [Usage::Server, Usage::Client, Usage::Either] {
        let peer = verify(&pki, &pki.leaf, usage).unwrap();
        assert_eq!(peer.dns_names(), [IDENTITY]);
        assert_eq!(peer.uris(), [SPIFFE_ID]);
        assert_eq!(peer.identity(), Some(IDENTITY));
        assert_eq!(peer.not_before(), NOT_BEFORE);
        assert_eq!(peer.not_after(), NOT_AFTER);
        assert_eq!(peer.key(), &PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256));
        assert_eq!(peer.anchor_index(), 0);
        assert_eq!(
            peer.chain(),
            [
                pki.leaf.clone(),
                pki.issuer.der.clone(),
                pki.root.der.clone()
            ]
        );
    }
}

#[test]
fn chain_lists_only_the_intermediates_used_issuer_first() {
    let root = Ca::default_root("root");
    let upper = root.intermediate("upper");
    let lower = upper.intermediate("lower");
    let unrelated = Ca::default_root("unrelated").intermediate("unrelated issuer");
    let leaf = lower.leaf(&Leaf::default());
    let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();
    let peer = verify_chain(
        &bundle,
        &leaf,
        &[unrelated.der.clone(), upper.der.clone(), lower.der.clone()],
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(
        peer.chain(),
        [
            leaf.clone(),
            lower.der.clone(),
            upper.der.clone(),
            root.der.clone()
        ]
    );

    let mut options = VerifyOptions::default();
    options.max_intermediates = Some(1);
    let e = verify_chain(
        &bundle,
        &leaf,
        &[upper.der.clone(), lower.der.clone()],
        NOW,
        Usage::Server,
        &options,
    )
    .unwrap_err();
    assert_eq!(e, Error::TooManyIntermediates { found: 2, max: 1 });
    assert_eq!(
        e.to_string(),
        "certificate chain has 2 intermediate certificates; at most 1 are allowed"
    );
}

#[test]
fn peers_compare_and_clone_by_their_chain() {
    let pki = Pki::new();
    let first = verify(&pki, &pki.leaf, Usage::Server).unwrap();
    let second = verify(&pki, &pki.leaf, Usage::Server).unwrap();
    let copy = first.clone();
    assert_eq!(first, second);
    assert_eq!(first.chain().len(), 3);
    // Equal whether or not the chain was looked at, and the same once it is.
    assert_eq!(first, second);
    assert_eq!(copy, first);
    assert_eq!(copy.chain(), first.chain());
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    assert!(format!("{first:?}").contains("chain: [CertificateDer("));

    let other_leaf = pki.issuer.leaf(&Leaf::default());
    let other = verify(&pki, &other_leaf, Usage::Server).unwrap();
    assert_ne!(first, other);

    // Another bundle holding the same anchor at another position: another anchor index.
    let extra = Ca::default_root("extra root");
    let bundle = TrustBundle::from_der(vec![extra.der.clone(), pki.root.der.clone()]).unwrap();
    let moved = verify_chain(
        &bundle,
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(moved.chain(), first.chain());
    assert_ne!(moved, first);
}

#[test]
fn reports_which_anchor_of_several_was_used() {
    let pki = Pki::new();
    let other = Ca::default_root("other root");
    let bundle = TrustBundle::from_der(vec![other.der.clone(), pki.root.der.clone()]).unwrap();
    let peer = verify_chain(
        &bundle,
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(peer.anchor_index(), 1);
    assert_eq!(peer.chain().last(), Some(&pki.root.der));
}

#[test]
fn refuses_a_chain_to_another_anchor() {
    let pki = Pki::new();
    let other = TrustBundle::from_der(vec![Ca::default_root("other").der]).unwrap();
    let e = verify_chain(
        &other,
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e, Error::Chain(webpki::Error::UnknownIssuer));
    assert_eq!(
        e.to_string(),
        "certificate chain rejected: no path to a trust anchor in the bundle (unknown issuer): \
         check that the peer sends its issuer certificate and that the bundle holds the right \
         root"
    );
    // Without the issuer, the leaf does not chain either.
    let e = verify_chain(
        &Pki::new().bundle(),
        &pki.leaf,
        &[],
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    );
    assert_eq!(err(e), Error::Chain(webpki::Error::UnknownIssuer));
}

#[test]
fn refuses_a_bad_signature() {
    let pki = Pki::new();
    // Same issuer name, another key: the leaf's signature does not verify under `pki.issuer`.
    let impostor = pki.root.intermediate("identity.linkerd.cluster.local");
    let leaf = impostor.leaf(&Leaf::default());
    let e = err(verify(&pki, &leaf, Usage::Server));
    assert_eq!(e, Error::Chain(webpki::Error::InvalidSignatureForPublicKey));
    assert_eq!(
        e.to_string(),
        "certificate chain rejected: a signature does not verify with its issuer's key (bad \
         signature)"
    );
}

#[test]
fn an_issuer_verified_once_is_still_checked_byte_for_byte() {
    let pki = Pki::new();
    let bundle = pki.bundle();
    let chain = |issuer: &CertificateDer<'_>| {
        verify_chain(
            &bundle,
            &pki.leaf,
            std::slice::from_ref(issuer),
            NOW,
            Usage::Server,
            &VerifyOptions::default(),
        )
    };
    // The bundle remembers the root's signature over the issuer...
    for _ in 0..3 {
        chain(&pki.issuer.der).unwrap();
    }
    // ...and only for exactly that issuer: a flipped bit in its signature, or in the
    // signed part (here the last byte of its serial number), is verified afresh and fails.
    let mut bad_signature = pki.issuer.der.to_vec();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    let mut bad_body = pki.issuer.der.to_vec();
    let (_, issuer) = x509_parser::parse_x509_certificate(&pki.issuer.der).unwrap();
    let serial = issuer.raw_serial();
    let at = bad_body
        .windows(serial.len())
        .position(|w| w == serial)
        .expect("the serial number");
    bad_body[at + serial.len() - 1] ^= 0x01;
    for tampered in [bad_signature, bad_body] {
        assert_eq!(
            err(chain(&CertificateDer::from(tampered))),
            Error::Chain(webpki::Error::InvalidSignatureForPublicKey)
        );
    }
    // A clone of the bundle shares what it remembered; the genuine issuer still verifies.
    verify(&pki, &pki.leaf, Usage::Server).unwrap();
}

#[test]
fn a_remembered_anchor_signature_does_not_outlive_its_certificate() {
    let pki = Pki::new();
    let issuer = pki
        .root
        .intermediate_with("identity.linkerd.cluster.local", |p| {
            p.not_after = datetime!(2026-07-01 0:00 UTC);
        });
    let leaf = issuer.leaf(&Leaf::default());
    let bundle = pki.bundle();
    let chain = |now| {
        verify_chain(
            &bundle,
            &leaf,
            std::slice::from_ref(&issuer.der),
            now,
            Usage::Server,
            &VerifyOptions::default(),
        )
    };
    // The root's signature over the issuer verifies, and is remembered...
    chain(NOW).unwrap();
    chain(NOW).unwrap();
    // ...but only the signature: validity is checked on every path, so once the issuer has
    // expired the same bundle refuses it.
    let e = err(chain(datetime!(2026-08-01 0:00 UTC)));
    assert_eq!(
        e.to_string(),
        "certificate chain rejected: a certificate expired at 2026-07-01T00:00:00Z (now is \
         2026-08-01T00:00:00Z)"
    );
}

#[test]
fn refuses_an_expired_leaf() {
    let pki = Pki::new();
    let leaf = pki.issuer.leaf(&Leaf {
        not_after: datetime!(2026-03-01 0:00 UTC),
        ..Leaf::default()
    });
    let e = err(verify(&pki, &leaf, Usage::Server));
    assert!(
        matches!(e, Error::Chain(webpki::Error::CertExpired { .. })),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "certificate chain rejected: a certificate expired at 2026-03-01T00:00:00Z (now is \
         2026-06-01T00:00:00Z)"
    );
}

#[test]
fn refuses_a_leaf_not_yet_valid() {
    let pki = Pki::new();
    let leaf = pki.issuer.leaf(&Leaf {
        not_before: datetime!(2026-07-01 0:00 UTC),
        ..Leaf::default()
    });
    let e = err(verify(&pki, &leaf, Usage::Client));
    assert!(
        matches!(e, Error::Chain(webpki::Error::CertNotValidYet { .. })),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "certificate chain rejected: a certificate is not valid before 2026-07-01T00:00:00Z (now \
         is 2026-06-01T00:00:00Z)"
    );
}

/// Two candidate paths that fail differently: one through an expired copy of the issuer (webpki
/// refuses it), one through the valid issuer up to an expired anchor (meshid's check refuses it).
/// webpki reports the first of equally ranked errors; meshid names its own reason only when that
/// error is the one its check handed back.
#[test]
fn reports_the_reason_of_the_path_webpki_reports() {
    let root = Ca::root(
        "root",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-02-01 0:00 UTC),
    );
    let issuer = root.intermediate("issuer");
    let old_issuer = issuer.reissue_by(
        &root,
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-03-01 0:00 UTC),
    );
    let leaf = issuer.leaf(&Leaf::default());
    let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();
    let verify = |intermediates: &[CertificateDer<'static>]| {
        verify_chain(
            &bundle,
            &leaf,
            intermediates,
            NOW,
            Usage::Server,
            &VerifyOptions::default(),
        )
        .unwrap_err()
    };

    // The expired copy is tried first: its error is the one webpki keeps.
    let e = verify(&[old_issuer.der.clone(), issuer.der.clone()]);
    assert_eq!(
        e,
        Error::Chain(webpki::Error::CertExpired {
            time: rustls_pki_types::UnixTime::since_unix_epoch(core::time::Duration::from_secs(
                NOW.unix_timestamp().try_into().unwrap(),
            )),
            not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                core::time::Duration::from_secs(
                    datetime!(2026-03-01 0:00 UTC)
                        .unix_timestamp()
                        .try_into()
                        .unwrap(),
                ),
            ),
        }),
        "{e}"
    );

    // The valid issuer is tried first: meshid's refusal of the anchor is the one kept.
    let e = verify(&[issuer.der.clone(), old_issuer.der.clone()]);
    assert_eq!(
        e,
        Error::AnchorExpired {
            index: 0,
            not_after: datetime!(2026-02-01 0:00 UTC),
            now: NOW,
        }
    );
}

#[test]
fn refuses_an_expired_anchor_that_webpki_accepts() {
    let root = Ca::root(
        "root",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-02-01 0:00 UTC),
    );
    let issuer = root.intermediate("issuer");
    let leaf = issuer.leaf(&Leaf::default());
    let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();

    // webpki alone accepts the path: it does not check the anchor's validity.
    let end_entity = webpki::EndEntityCert::try_from(&leaf).unwrap();
    let now = rustls_pki_types::UnixTime::since_unix_epoch(core::time::Duration::from_secs(
        NOW.unix_timestamp().try_into().unwrap(),
    ));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            bundle.trust_anchors(),
            std::slice::from_ref(&issuer.der),
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();

    let e = verify_chain(
        &bundle,
        &leaf,
        std::slice::from_ref(&issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::AnchorExpired {
            index: 0,
            not_after: datetime!(2026-02-01 0:00 UTC),
            now: NOW,
        }
    );
    assert_eq!(
        e.to_string(),
        "trust anchor #0 in the bundle expired at 2026-02-01T00:00:00Z (now is \
         2026-06-01T00:00:00Z); rotate the trust anchors and re-issue the issuer certificate"
    );

    // With the re-issued root (same name and key) in the bundle, the path goes through it.
    let renewed = root.reissue(NOT_BEFORE, NOT_AFTER);
    let bundle = TrustBundle::from_der(vec![root.der.clone(), renewed.der.clone()]).unwrap();
    let peer = verify_chain(
        &bundle,
        &leaf,
        std::slice::from_ref(&issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(peer.anchor_index(), 1);
    assert_eq!(peer.chain().last(), Some(&renewed.der));
}

#[test]
fn refuses_an_anchor_not_yet_valid() {
    let root = Ca::root(
        "root",
        datetime!(2026-09-01 0:00 UTC),
        datetime!(2030-01-01 0:00 UTC),
    );
    let issuer = root.intermediate("issuer");
    let leaf = issuer.leaf(&Leaf::default());
    let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();
    let e = verify_chain(
        &bundle,
        &leaf,
        std::slice::from_ref(&issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "trust anchor #0 in the bundle is not valid before 2026-09-01T00:00:00Z (now is \
         2026-06-01T00:00:00Z); check the clock or the anchor's NotBefore"
    );
}

#[test]
fn refuses_a_leaf_that_is_a_ca() {
    let pki = Pki::new();
    let leaf = pki.issuer.leaf(&Leaf {
        is_ca: true,
        ..Leaf::default()
    });
    let e = err(verify(&pki, &leaf, Usage::Either));
    assert_eq!(e, Error::LeafIsCa);
    assert_eq!(
        e.to_string(),
        "leaf certificate is a CA certificate (basicConstraints cA=TRUE); a workload must \
         present an end-entity certificate"
    );
}

#[test]
fn refuses_a_leaf_without_eku() {
    let pki = Pki::new();
    let leaf = pki.issuer.leaf(&Leaf {
        ekus: vec![],
        ..Leaf::default()
    });
    let e = err(verify(&pki, &leaf, Usage::Server));
    assert_eq!(e, Error::MissingEku);
    assert_eq!(
        e.to_string(),
        "leaf certificate has no extended key usage extension; the mesh requires serverAuth \
         and/or clientAuth to be stated"
    );
}

#[test]
fn refuses_leaves_outside_the_mesh_profile() {
    let pki = Pki::new();
    let any_eku = pki.issuer.leaf(&Leaf {
        ekus: vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::Any,
        ],
        ..Leaf::default()
    });
    let e = err(verify(&pki, &any_eku, Usage::Server));
    assert_eq!(e, Error::LeafAnyEku);
    assert_eq!(
        e.to_string(),
        "leaf certificate's extended key usage includes anyExtendedKeyUsage; the mesh requires \
         serverAuth and/or clientAuth to be stated, nothing broader"
    );

    let cert_sign = pki.issuer.leaf(&Leaf {
        edit: Some(|params| params.key_usages.push(KeyUsagePurpose::KeyCertSign)),
        ..Leaf::default()
    });
    let e = err(verify(&pki, &cert_sign, Usage::Server));
    assert_eq!(e, Error::LeafKeyCertSign);
    assert_eq!(
        e.to_string(),
        "leaf certificate's key usage asserts keyCertSign but it is not a CA (RFC 5280 \
         4.2.1.9); the issuing CA is misconfigured"
    );

    let serial_zero = pki.issuer.leaf(&Leaf {
        edit: Some(|params| params.serial_number = Some(SerialNumber::from_slice(&[0]))),
        ..Leaf::default()
    });
    let e = err(verify(&pki, &serial_zero, Usage::Server));
    assert_eq!(e, Error::LeafSerialZero);
    assert_eq!(
        e.to_string(),
        "leaf certificate's serial number is zero (RFC 5280 4.1.2.2 requires a positive \
         integer); the issuing CA is misconfigured"
    );

    // ring cannot make the weak keys this refuses (P-192, RSA-1024); x509-limbo covers them.
    assert_eq!(
        Error::KeyNotSupported {
            found: PublicKeyKind::Rsa { bits: 1024 }
        }
        .to_string(),
        "leaf certificate key is RSA-1024, which cannot sign a TLS handshake that webpki \
         verifies (supported: ECDSA P-256, ECDSA P-384, Ed25519, RSA of 2048 to 8192 bits in \
         whole bytes)"
    );
}

#[test]
fn client_only_leaf_is_refused_as_server_only() {
    let pki = Pki::new();
    let leaf = pki.issuer.leaf(&Leaf {
        ekus: vec![ExtendedKeyUsagePurpose::ClientAuth],
        ..Leaf::default()
    });
    let e = err(verify(&pki, &leaf, Usage::Server));
    assert_eq!(
        e,
        Error::EkuMismatch {
            usage: Usage::Server,
            found: vec!["clientAuth".to_owned()],
        }
    );
    assert_eq!(
        e.to_string(),
        "leaf certificate's extended key usage does not allow TLS server authentication \
         (serverAuth) (it allows: clientAuth)"
    );
    verify(&pki, &leaf, Usage::Client).unwrap();
    verify(&pki, &leaf, Usage::Either).unwrap();

    let server_only = pki.issuer.leaf(&Leaf {
        ekus: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ..Leaf::default()
    });
    verify(&pki, &server_only, Usage::Either).unwrap();
    let e = err(verify(&pki, &server_only, Usage::Client));
    assert!(
        matches!(
            e,
            Error::EkuMismatch {
                usage: Usage::Client,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn either_falls_back_to_client_auth_when_an_issuer_restricts_eku() {
    let root = Ca::default_root("root");
    let issuer = root.intermediate_with("client-only issuer", |params| {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    let leaf = issuer.leaf(&Leaf::default());
    let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();
    let run = |usage| {
        verify_chain(
            &bundle,
            &leaf,
            std::slice::from_ref(&issuer.der),
            NOW,
            usage,
            &VerifyOptions::default(),
        )
    };
    let e = err(run(Usage::Server));
    assert!(
        matches!(
            e,
            Error::Chain(webpki::Error::RequiredEkuNotFoundContext(_))
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "certificate chain rejected: a certificate in the path does not allow the required \
         extended key usage"
    );
    run(Usage::Client).unwrap();
    run(Usage::Either).unwrap();
}

#[test]
fn key_algorithms_of_the_mesh_profile() {
    let pki = Pki::new();
    let p384 = pki.issuer.leaf(&Leaf {
        alg: &PKCS_ECDSA_P384_SHA384,
        ..Leaf::default()
    });
    let peer = verify(&pki, &p384, Usage::Server).unwrap();
    assert_eq!(peer.key(), &PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384));

    let ed25519 = pki.issuer.leaf(&Leaf {
        alg: &PKCS_ED25519,
        ..Leaf::default()
    });
    let e = err(verify(&pki, &ed25519, Usage::Server));
    assert_eq!(
        e,
        Error::KeyAlgorithmNotAllowed {
            found: PublicKeyKind::Ed25519,
            allowed: vec![KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384],
        }
    );
    assert_eq!(
        e.to_string(),
        "leaf certificate key is Ed25519; the mesh profile allows ECDSA P-256, ECDSA P-384"
    );

    let mut p256_only = VerifyOptions::default();
    p256_only.key_algorithms = Some(vec![KeyAlgorithm::EcdsaP256]);
    let e = verify_chain(
        &pki.bundle(),
        &p384,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &p256_only,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "leaf certificate key is ECDSA P-384; the mesh profile allows ECDSA P-256"
    );

    let mut any_key = VerifyOptions::default();
    any_key.key_algorithms = None;
    let peer = verify_chain(
        &pki.bundle(),
        &ed25519,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &any_key,
    )
    .unwrap();
    assert_eq!(peer.key(), &PublicKeyKind::Ed25519);
}

#[test]
fn identity_matching() {
    let pki = Pki::new();
    let peer = verify(&pki, &pki.leaf, Usage::Server).unwrap();
    assert!(peer.matches(IDENTITY));
    assert!(peer.matches(&IDENTITY.to_ascii_uppercase()));
    assert!(peer.matches(SPIFFE_ID));
    assert!(!peer.matches(&SPIFFE_ID.to_ascii_uppercase()));
    assert!(!peer.matches("web.emojivoto.serviceaccount.identity.linkerd"));
    assert!(!peer.matches("*.emojivoto.serviceaccount.identity.linkerd.cluster.local"));
    assert!(!peer.matches(""));

    let run = |expected: &str| {
        verify_identity(
            &pki.bundle(),
            &pki.leaf,
            std::slice::from_ref(&pki.issuer.der),
            NOW,
            Usage::Server,
            expected,
            &VerifyOptions::default(),
        )
    };
    run(IDENTITY).unwrap();
    run("WEB.emojivoto.serviceaccount.identity.linkerd.cluster.local").unwrap();
    run(SPIFFE_ID).unwrap();
    let e = err(run(
        "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local",
    ));
    assert_eq!(
        e,
        Error::IdentityMismatch {
            expected: "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local".to_owned(),
            found: vec![IDENTITY.to_owned(), SPIFFE_ID.to_owned()],
        }
    );
    assert_eq!(
        e.to_string(),
        "peer identity mismatch: expected \
         \"voting.emojivoto.serviceaccount.identity.linkerd.cluster.local\", the certificate \
         names web.emojivoto.serviceaccount.identity.linkerd.cluster.local, \
         spiffe://cluster.local/ns/emojivoto/sa/web"
    );
}

#[test]
fn identity_falls_back_to_the_first_uri() {
    let pki = Pki::new();
    let leaf = pki.issuer.leaf(&Leaf {
        dns: vec![],
        uris: vec![SPIFFE_ID, "spiffe://cluster.local/ns/other/sa/x"],
        ..Leaf::default()
    });
    let peer = verify(&pki, &leaf, Usage::Client).unwrap();
    assert_eq!(peer.identity(), Some(SPIFFE_ID));
    assert!(!peer.matches(IDENTITY));

    let nameless = pki.issuer.leaf(&Leaf {
        dns: vec![],
        uris: vec![],
        ..Leaf::default()
    });
    assert_eq!(
        verify(&pki, &nameless, Usage::Client).unwrap().identity(),
        None
    );
}

#[test]
fn refuses_malformed_input() {
    let pki = Pki::new();
    let e = err(verify(
        &pki,
        &CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]),
        Usage::Server,
    ));
    assert!(matches!(e, Error::MalformedLeaf { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("leaf certificate is malformed: "),
        "{e}"
    );

    let mut trailing = pki.leaf.to_vec();
    trailing.push(0);
    let e = err(verify(&pki, &CertificateDer::from(trailing), Usage::Server));
    assert_eq!(
        e.to_string(),
        "leaf certificate is malformed: 1 bytes of trailing data after the certificate"
    );

    // A mangled intermediate is skipped during path building.
    let mut bad_issuer = pki.issuer.der.to_vec();
    bad_issuer.truncate(bad_issuer.len() / 2);
    let e = verify_chain(
        &pki.bundle(),
        &pki.leaf,
        &[CertificateDer::from(bad_issuer)],
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Chain(_)), "{e:?}");
}

#[test]
fn empty_bundle_verifies_nothing() {
    let pki = Pki::new();
    let empty = pki.bundle().difference(&pki.bundle());
    assert!(empty.is_empty());
    let e = verify_chain(
        &empty,
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e, Error::BundleEmpty);
}

#[test]
fn time_before_the_epoch_is_refused_not_a_panic() {
    let pki = Pki::new();
    let e = verify_chain(
        &pki.bundle(),
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        datetime!(1960-01-01 0:00 UTC),
        Usage::Server,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Chain(webpki::Error::CertNotValidYet { .. })),
        "{e:?}"
    );
}
