//! End to end in process: a CSR from meshid-csr, the CA, and meshid-verify.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use meshid_ca::{Ca, IssuerCredentials};
use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode};
use meshid_verify::{Usage, VerifyOptions};
use support::*;
use time::macros::datetime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

#[test]
fn certified_chain_verifies_for_the_identity_as_client_and_server() {
    let pki = Pki::new();
    let (_key, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    let certified = pki.ca.certify(&web(), &csr, NOW).unwrap();
    assert_eq!(certified.identity.as_str(), WEB_ID);
    for usage in [Usage::Server, Usage::Client, Usage::Either] {
        let peer = meshid_verify::verify_identity(
            &pki.bundle,
            &certified.leaf,
            &certified.chain,
            NOW,
            usage,
            WEB_ID,
            &VerifyOptions::default(),
        )
        .unwrap();
        assert_eq!(peer.identity(), Some(WEB_ID));
        assert_eq!(peer.not_after(), certified.not_after);
    }
    // Another identity is refused.
    let other = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local";
    let err = meshid_verify::verify_identity(
        &pki.bundle,
        &certified.leaf,
        &certified.chain,
        NOW,
        Usage::Server,
        other,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains(other), "{err}");
}

#[test]
fn leaf_profile() {
    let pki = Pki::new();
    let (key, _) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    // A CSR with extra subject attributes and a harmless requested extension: neither is copied.
    let csr = custom_csr(&key, Some(WEB_ID), vec![dns(WEB_ID)], |p| {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Evil Corp");
        p.custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 2, 3, 4],
                vec![0x05, 0x00],
            ));
    });
    let certified = pki.ca.certify(&web(), &csr, NOW).unwrap();
    let (_, leaf) = X509Certificate::from_der(&certified.leaf).unwrap();

    // Subject: CN=<identity> only.
    assert_eq!(leaf.subject().to_string(), format!("CN={WEB_ID}"));
    assert_eq!(leaf.issuer().to_string(), pki_issuer_subject(&pki));
    // Validity: [now - 20s, now + 24h + 20s].
    assert_eq!(
        leaf.validity().not_before.to_datetime(),
        datetime!(2026-06-01 11:59:40 UTC)
    );
    assert_eq!(
        leaf.validity().not_after.to_datetime(),
        datetime!(2026-06-02 12:00:20 UTC)
    );
    assert_eq!(certified.not_after, datetime!(2026-06-02 12:00:20 UTC));
    // Serial: positive, at least 64 bits.
    let serial = leaf.raw_serial();
    assert!(
        serial.len() * 8 >= 64 && serial[0] & 0x80 == 0,
        "{serial:x?}"
    );
    assert_eq!(serial, certified.serial);
    // Signature: ECDSA-SHA256 from a P-256 issuer.
    assert_eq!(
        leaf.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );

    let mut seen = Vec::new();
    for ext in leaf.extensions() {
        let oid = ext.oid.to_id_string();
        seen.push(oid.clone());
        match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::KeyUsage(ku) => {
                assert!(ext.critical);
                assert!(ku.digital_signature() && ku.key_encipherment());
                assert!(!ku.key_cert_sign() && !ku.crl_sign() && !ku.non_repudiation());
            }
            x509_parser::extensions::ParsedExtension::ExtendedKeyUsage(eku) => {
                assert!(eku.server_auth && eku.client_auth);
                assert!(!eku.any && eku.other.is_empty() && !eku.code_signing);
            }
            x509_parser::extensions::ParsedExtension::BasicConstraints(bc) => {
                assert!(!bc.ca);
            }
            x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => {
                assert_eq!(san.general_names, vec![GeneralName::DNSName(WEB_ID)]);
            }
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                let (_, issuer) = X509Certificate::from_der(pki.issuer.der()).unwrap();
                let ski = issuer
                    .extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                            Some(k.0.to_vec())
                        }
                        _ => None,
                    })
                    .unwrap();
                assert_eq!(aki.key_identifier.as_ref().unwrap().0, ski.as_slice());
            }
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_) => {}
            other => panic!("unexpected extension {oid}: {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "2.5.29.14",
            "2.5.29.15",
            "2.5.29.17",
            "2.5.29.19",
            "2.5.29.35",
            "2.5.29.37"
        ],
        "SKI, KU, SAN, BC, AKI, EKU and nothing else"
    );
    // The public key is the CSR's.
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    // The chain is the issuer's file.
    assert_eq!(certified.chain.len(), 1);
    assert_eq!(certified.chain[0].as_ref(), pki.issuer.der().as_ref());
}

fn pki_issuer_subject(pki: &Pki) -> String {
    let (_, issuer) = X509Certificate::from_der(pki.issuer.der()).unwrap();
    issuer.subject().to_string()
}

#[test]
fn p384_issuer_signs_with_sha384_and_p384_csr_when_allowed() {
    let root = root();
    let mut opts = ca_options(
        "identity.linkerd.cluster.local",
        ISSUER_FROM,
        ISSUER_UNTIL,
        0,
    );
    opts.key_algorithm = KeyAlgorithm::EcdsaP384;
    let issuer = meshid_ca::bootstrap::create_intermediate(&root, &opts).unwrap();
    let bundle = bundle_of(&[&root]);
    let mut policy = IssuancePolicy::default();
    policy.key_algorithms = vec![KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384];
    let ca = Ca::new(Mesh::default(), policy, bundle.clone()).unwrap();
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), NOW)
        .unwrap();
    let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP384);
    let certified = ca.certify(&web(), &csr, NOW).unwrap();
    let (_, leaf) = X509Certificate::from_der(&certified.leaf).unwrap();
    assert_eq!(
        leaf.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3"
    );
    meshid_verify::verify_identity(
        &bundle,
        &certified.leaf,
        &certified.chain,
        NOW,
        Usage::Either,
        WEB_ID,
        &VerifyOptions::default(),
    )
    .unwrap();
}

#[test]
fn spiffe_modes() {
    let spiffe = "spiffe://cluster.local/ns/emojivoto/sa/web";
    for (mode, want) in [
        (
            SanMode::DnsAndSpiffe,
            vec![GeneralName::DNSName(WEB_ID), GeneralName::URI(spiffe)],
        ),
        (SanMode::Spiffe, vec![GeneralName::URI(spiffe)]),
    ] {
        let mut policy = IssuancePolicy::default();
        policy.san_mode = mode;
        let pki = Pki::with_policy(policy);
        let (_, csr) = csr_for(&web(), mode, KeyAlgorithm::EcdsaP256);
        let certified = pki.ca.certify(&web(), &csr, NOW).unwrap();
        let (_, leaf) = X509Certificate::from_der(&certified.leaf).unwrap();
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names, want, "{mode}");
        let peer = meshid_verify::verify_identity(
            &pki.bundle,
            &certified.leaf,
            &certified.chain,
            NOW,
            Usage::Client,
            spiffe,
            &VerifyOptions::default(),
        )
        .unwrap();
        assert!(peer.matches(spiffe));
        assert_eq!(peer.matches(WEB_ID), mode == SanMode::DnsAndSpiffe);
    }
}

#[test]
fn lifetime_is_clamped_to_issuer_and_anchor() {
    // Issuer expires 10 hours after NOW.
    let root = root();
    let issuer = issuer_of(&root, ISSUER_FROM, datetime!(2026-06-01 22:00 UTC));
    let ca = Ca::new(
        Mesh::default(),
        IssuancePolicy::default(),
        bundle_of(&[&root]),
    )
    .unwrap();
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), NOW)
        .unwrap();
    let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    let certified = ca.certify(&web(), &csr, NOW).unwrap();
    assert_eq!(certified.not_after, datetime!(2026-06-01 22:00 UTC));

    // The anchor expires 5 hours after NOW, before the issuer (Linkerd does not clamp to it).
    let root = create_root_until(datetime!(2026-06-01 17:00 UTC));
    let issuer = issuer_of(&root, ISSUER_FROM, datetime!(2026-06-01 22:00 UTC));
    let ca = Ca::new(
        Mesh::default(),
        IssuancePolicy::default(),
        bundle_of(&[&root]),
    )
    .unwrap();
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), NOW)
        .unwrap();
    let certified = ca.certify(&web(), &csr, NOW).unwrap();
    assert_eq!(certified.not_after, datetime!(2026-06-01 17:00 UTC));
    let (_, leaf) = X509Certificate::from_der(&certified.leaf).unwrap();
    assert_eq!(leaf.validity().not_after.to_datetime(), certified.not_after);
}

fn create_root_until(until: time::OffsetDateTime) -> meshid_ca::bootstrap::CaCertificate {
    meshid_ca::bootstrap::create_root(&ca_options(
        "root.linkerd.cluster.local",
        ROOT_FROM,
        until,
        1,
    ))
    .unwrap()
}

#[test]
fn sub_second_now_gives_whole_second_validity() {
    let pki = Pki::new();
    let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    let now = NOW + time::Duration::milliseconds(750);
    let certified = pki.ca.certify(&web(), &csr, now).unwrap();
    let (_, leaf) = X509Certificate::from_der(&certified.leaf).unwrap();
    assert_eq!(leaf.validity().not_after.to_datetime(), certified.not_after);
    assert_eq!(
        leaf.validity().not_before.to_datetime(),
        certified.not_before
    );
}

#[test]
fn issuer_swap_under_concurrent_certify_never_tears() {
    let pki = Arc::new(Pki::new());
    let issuers: Vec<_> = (0..5)
        .map(|_| issuer_of(&pki.root, ISSUER_FROM, ISSUER_UNTIL))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (pki, stop, done) = (Arc::clone(&pki), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
                while !stop.load(Ordering::Relaxed) {
                    let certified = pki.ca.certify(&web(), &csr, NOW).unwrap();
                    // The leaf verifies through the chain returned with it: same issuer.
                    meshid_verify::verify_chain(
                        &pki.bundle,
                        &certified.leaf,
                        &certified.chain,
                        NOW,
                        Usage::Either,
                        &VerifyOptions::default(),
                    )
                    .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for issuer in issuers.iter().cycle().take(20) {
        let creds = IssuerCredentials::from_pem(&issuer.pem(), &issuer.key_pem(), &pki.bundle, NOW)
            .unwrap();
        pki.ca.set_issuer(creds, NOW).unwrap();
        // Bad issuers in between are refused and change nothing.
        let before = pki.ca.issuer().unwrap();
        assert!(pki.ca.load_issuer_pem("garbage", "garbage", NOW).is_err());
        assert!(Arc::ptr_eq(&before, &pki.ca.issuer().unwrap()));
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(done.load(Ordering::Relaxed) > 0);
}

#[test]
fn trust_bundle_rotation_refuses_orphaning_the_issuer() {
    let pki = Pki::new();
    let new_root = root();
    // Phase 1: {old, new} — accepted, the issuer still chains.
    pki.ca
        .set_trust_bundle(bundle_of(&[&pki.root, &new_root]), NOW)
        .unwrap();
    // {new} alone would orphan the issuer signed by the old root.
    let err = pki
        .ca
        .set_trust_bundle(bundle_of(&[&new_root]), NOW)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("trust bundle refused: the current issuer does not chain to it"),
        "{err}"
    );
    assert_eq!(pki.ca.trust_bundle().len(), 2);
    // Phase 2: an issuer signed by the new root; phase 3: {new}.
    let new_issuer = issuer_of(&new_root, ISSUER_FROM, ISSUER_UNTIL);
    pki.ca
        .load_issuer_pem(&new_issuer.pem(), &new_issuer.key_pem(), NOW)
        .unwrap();
    pki.ca
        .set_trust_bundle(bundle_of(&[&new_root]), NOW)
        .unwrap();
    let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    let certified = pki.ca.certify(&web(), &csr, NOW).unwrap();
    meshid_verify::verify_chain(
        &bundle_of(&[&new_root]),
        &certified.leaf,
        &certified.chain,
        NOW,
        Usage::Either,
        &VerifyOptions::default(),
    )
    .unwrap();
}

#[test]
fn sec1_issuer_key_and_multi_certificate_chain() {
    // root -> intermediate -> issuer; the issuer file holds issuer then intermediate.
    let root = root();
    let mid = meshid_ca::bootstrap::create_intermediate(
        &root,
        &ca_options("intermediate", ROOT_FROM, ROOT_UNTIL, 1),
    )
    .unwrap();
    let issuer = issuer_of(&mid, ISSUER_FROM, ISSUER_UNTIL);
    let chain_pem = format!("{}{}", issuer.pem(), mid.pem());
    let key_sec1 = sec1_pem(&issuer);
    assert!(key_sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let bundle = bundle_of(&[&root]);
    let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap();
    ca.load_issuer_pem(&chain_pem, &key_sec1, NOW).unwrap();
    let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    let certified = ca.certify(&web(), &csr, NOW).unwrap();
    assert_eq!(certified.chain.len(), 2);
    assert_eq!(certified.chain[0].as_ref(), issuer.der().as_ref());
    assert_eq!(certified.chain[1].as_ref(), mid.der().as_ref());
    let peer = meshid_verify::verify_chain(
        &bundle,
        &certified.leaf,
        &certified.chain,
        NOW,
        Usage::Either,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(peer.chain().len(), 4);
}

/// The issuer's key re-encoded as SEC1 `EC PRIVATE KEY` with openssl's layout.
fn sec1_pem(cert: &meshid_ca::bootstrap::CaCertificate) -> String {
    // PKCS#8 from ring: SEQ { 0, AlgId, OCTET STRING { ECPrivateKey } }; the inner
    // ECPrivateKey is a valid SEC1 key without curve parameters, which meshid accepts.
    #[derive(der::Sequence)]
    struct PrivateKeyInfo<'a> {
        version: u8,
        algorithm: der::asn1::AnyRef<'a>,
        private_key: &'a der::asn1::OctetStringRef,
    }
    let info = <PrivateKeyInfo<'_> as der::Decode<'_>>::from_der(cert.key().pkcs8_der()).unwrap();
    assert_eq!(info.version, 0);
    pem::encode(&pem::Pem::new(
        "EC PRIVATE KEY",
        info.private_key.as_bytes().to_vec(),
    ))
}
