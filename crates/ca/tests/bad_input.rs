//! Bad input gets a clear error, and the CA keeps serving.
//!
//! Every case asserts the exact message, then proves the CA still certifies a good request with
//! the issuer it had before.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use meshid_ca::{Ca, Error, IssuerProblem};
use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
use support::*;
use time::macros::datetime;

type Case = (
    &'static str,
    Box<dyn Fn(&Pki) -> Result<(), String>>,
    &'static str,
);

fn certify_err(pki: &Pki, sa: &ServiceAccount, csr: &[u8]) -> Result<(), String> {
    pki.ca
        .certify(sa, csr, NOW)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn load_err(pki: &Pki, chain: &str, key: &str, now: time::OffsetDateTime) -> Result<(), String> {
    pki.ca
        .load_issuer_pem(chain, key, now)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn good_csr() -> Vec<u8> {
    csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256).1
}

fn p256() -> meshid_csr::KeyPair {
    meshid_csr::KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap()
}

fn rsa_key() -> rcgen::KeyPair {
    rcgen::KeyPair::from_pem(RSA_KEY_PEM).unwrap()
}

/// An issuer signed by the PKI's root, with `tweak` applied to its parameters.
fn odd_issuer(pki: &Pki, tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> (String, String) {
    let key = p256();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "identity.linkerd.cluster.local");
    params.not_before = ISSUER_FROM;
    params.not_after = ISSUER_UNTIL;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    tweak(&mut params);
    let root = rcgen::Issuer::from_ca_cert_der(pki.root.der(), pki.root.key()).unwrap();
    let cert = params.signed_by(&key, &root).unwrap();
    (cert.pem(), key.to_pkcs8_pem().to_string())
}

/// The DER value of the extension `oid` as rcgen writes it in a certificate made with
/// `tweak`, to request it in a CSR as a custom extension.
fn extension_value(oid: &[u64], tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec![WEB_ID.to_owned()]).unwrap();
    tweak(&mut params);
    let cert = params.self_signed(&p256()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
    let dotted = oid
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(".");
    cert.extensions()
        .iter()
        .find(|ext| ext.oid.to_id_string() == dotted)
        .unwrap()
        .value
        .to_vec()
}

fn cases() -> Vec<Case> {
    vec![
        // --- CSR: encoding ---
        (
            "empty CSR",
            Box::new(|pki| certify_err(pki, &web(), b"")),
            "malformed certificate signing request: empty input",
        ),
        (
            "garbage DER",
            Box::new(|pki| certify_err(pki, &web(), b"\x30\x03\x02\x01")),
            "malformed certificate signing request: CertificationRequest: truncated DER: 3 content bytes announced, 2 present",
        ),
        (
            "not DER at all",
            Box::new(|pki| certify_err(pki, &web(), b"hello, CA")),
            "malformed certificate signing request: CertificationRequest: truncated DER: 101 content bytes announced, 7 present",
        ),
        (
            "truncated CSR",
            Box::new(|pki| {
                // A real CSR cut after 175 bytes, its header set to announce 350 content bytes (an
                // ECDSA signature's length varies by a byte or two from key to key).
                let csr = good_csr();
                let mut truncated = vec![0x30, 0x82, 0x01, 0x5e];
                truncated.extend_from_slice(&csr[4..175]);
                certify_err(pki, &web(), &truncated)
            }),
            "malformed certificate signing request: CertificationRequest: truncated DER: 350 content bytes announced, 171 present",
        ),
        (
            "trailing bytes",
            Box::new(|pki| {
                let mut csr = good_csr();
                csr.extend_from_slice(b"\0\0");
                certify_err(pki, &web(), &csr)
            }),
            "malformed certificate signing request: 2 trailing bytes after the CertificationRequest",
        ),
        (
            "oversize CSR",
            Box::new(|pki| certify_err(pki, &web(), &vec![0x30; 16 * 1024 + 1])),
            "certificate signing request is 16385 bytes; the limit is 16384 bytes",
        ),
        (
            "tampered signature",
            Box::new(|pki| {
                let mut csr = good_csr();
                let last = csr.len() - 1;
                csr[last] ^= 0x01;
                certify_err(pki, &web(), &csr)
            }),
            "CSR signature does not verify: the requester must sign the CSR with the key being certified",
        ),
        (
            "tampered body (identity swapped after signing)",
            Box::new(|pki| {
                let key = p256();
                let other = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local";
                let csr = custom_csr(&key, Some(other), vec![dns(other)], |_| {});
                // Same length: "emoji" -> "web.." is not a valid name, so rewrite "emoji" to
                // "xmoji" in place; the signature no longer matches.
                let mut csr = csr;
                let pos = csr.windows(5).position(|w| w == b"emoji").unwrap();
                csr[pos] = b'x';
                certify_err(pki, &web(), &csr)
            }),
            "CSR signature does not verify: the requester must sign the CSR with the key being certified",
        ),
        // --- CSR: names ---
        (
            "no SAN",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![], |_| {}),
                )
            }),
            "CSR must have exactly one DNSName",
        ),
        (
            "extra DNS SAN",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(
                        &p256(),
                        Some(WEB_ID),
                        vec![dns(WEB_ID), dns("evil.example.com")],
                        |_| {},
                    ),
                )
            }),
            "CSR must have exactly one DNSName",
        ),
        (
            "SAN of another identity",
            Box::new(|pki| {
                let other = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local";
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), None, vec![dns(other)], |_| {}),
                )
            }),
            "CSR name does not match requested identity: csr=emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local; req=web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
        ),
        (
            "CN mismatch",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some("admin"), vec![dns(WEB_ID)], |_| {}),
                )
            }),
            "invalid CommonName: admin",
        ),
        (
            "IP SAN",
            Box::new(|pki| {
                let ip = rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap());
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID), ip], |_| {}),
                )
            }),
            "cannot validate IP addresses",
        ),
        (
            "email SAN",
            Box::new(|pki| {
                let email =
                    rcgen::SanType::Rfc822Name("web@example.com".to_owned().try_into().unwrap());
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID), email], |_| {}),
                )
            }),
            "cannot validate email addresses",
        ),
        (
            "URI SAN in DNS mode",
            Box::new(|pki| {
                let spiffe = uri("spiffe://cluster.local/ns/emojivoto/sa/web");
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID), spiffe], |_| {}),
                )
            }),
            "cannot validate URIs",
        ),
        (
            "otherName SAN",
            Box::new(|pki| {
                let other = rcgen::SanType::OtherName((
                    vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                    "upn@example.com".into(),
                ));
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID), other], |_| {}),
                )
            }),
            "cannot validate otherName names",
        ),
        (
            "requested identity differs from the authenticated ServiceAccount",
            Box::new(|pki| certify_err(pki, &sa("emojivoto", "emoji"), &good_csr())),
            "CSR name does not match requested identity: csr=web.emojivoto.serviceaccount.identity.linkerd.cluster.local; req=emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local",
        ),
        // --- CSR: key ---
        (
            "P-384 key when only P-256 is allowed",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP384).1,
                )
            }),
            "CSR key algorithm ECDSA P-384 is not allowed (allowed: ECDSA P-256)",
        ),
        (
            "RSA key",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&rsa_key(), Some(WEB_ID), vec![dns(WEB_ID)], |_| {}),
                )
            }),
            "CSR must contain an ECDSA public key (found RSA-2048)",
        ),
        (
            "Ed25519 key",
            Box::new(|pki| {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&key, Some(WEB_ID), vec![dns(WEB_ID)], |_| {}),
                )
            }),
            "CSR must contain an ECDSA public key (found Ed25519)",
        ),
        // --- CSR: requested extensions that would change the profile ---
        (
            "CSR asking for CA:TRUE",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                    }),
                )
            }),
            "CSR refused: the CSR asks for a CA certificate (basicConstraints CA:TRUE); meshid issues only leaf certificates",
        ),
        (
            "CSR asking for keyCertSign",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        p.key_usages = vec![
                            KeyUsagePurpose::DigitalSignature,
                            KeyUsagePurpose::KeyCertSign,
                        ];
                    }),
                )
            }),
            "CSR refused: the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues only leaf certificates",
        ),
        (
            "CSR asking for cRLSign",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        p.key_usages = vec![KeyUsagePurpose::CrlSign];
                    }),
                )
            }),
            "CSR refused: the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues only leaf certificates",
        ),
        (
            "CSR asking for name constraints",
            Box::new(|pki| {
                let value = extension_value(&[2, 5, 29, 30], |p| {
                    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                    p.name_constraints = Some(rcgen::NameConstraints {
                        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(
                            "cluster.local".to_owned(),
                        )],
                        excluded_subtrees: Vec::new(),
                    });
                });
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                            &[2, 5, 29, 30],
                            value,
                        )];
                    }),
                )
            }),
            "CSR refused: the CSR asks for name constraints, which only a CA certificate may carry",
        ),
        (
            "CSR with a second subjectAltName extension",
            Box::new(|pki| {
                let value = extension_value(&[2, 5, 29, 17], |_| {});
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                            &[2, 5, 29, 17],
                            value,
                        )];
                    }),
                )
            }),
            "malformed certificate signing request: more than one subjectAltName extension",
        ),
        (
            "CSR asking for code signing",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
                    }),
                )
            }),
            "CSR refused: the CSR asks for extended key usages other than serverAuth and clientAuth",
        ),
        (
            "CSR with an unknown critical extension",
            Box::new(|pki| {
                certify_err(
                    pki,
                    &web(),
                    &custom_csr(&p256(), Some(WEB_ID), vec![dns(WEB_ID)], |p| {
                        let mut ext = rcgen::CustomExtension::from_oid_content(
                            &[1, 2, 3, 4, 5],
                            vec![0x05, 0x00],
                        );
                        ext.set_criticality(true);
                        p.custom_extensions.push(ext);
                    }),
                )
            }),
            "CSR refused: the CSR requests critical extension 1.2.3.4.5 that meshid does not issue",
        ),
        // --- Issuer credentials ---
        (
            "expired issuer",
            Box::new(|pki| {
                let issuer = issuer_of(&pki.root, ISSUER_FROM, datetime!(2026-05-31 0:00 UTC));
                load_err(pki, &issuer.pem(), &issuer.key_pem(), NOW)
            }),
            "invalid issuer: issuer certificate expired at 2026-05-31T00:00:00Z (now 2026-06-01T12:00:00Z)",
        ),
        (
            "issuer not yet valid",
            Box::new(|pki| {
                let issuer = issuer_of(&pki.root, datetime!(2026-06-02 0:00 UTC), ISSUER_UNTIL);
                load_err(pki, &issuer.pem(), &issuer.key_pem(), NOW)
            }),
            "invalid issuer: issuer certificate is not valid until 2026-06-02T00:00:00Z (now 2026-06-01T12:00:00Z)",
        ),
        (
            "issuer not chained to the bundle",
            Box::new(|pki| {
                let stranger = meshid_ca::bootstrap::create_root(&ca_options(
                    "other-root",
                    ROOT_FROM,
                    ROOT_UNTIL,
                    1,
                ))
                .unwrap();
                let issuer = issuer_of(&stranger, ISSUER_FROM, ISSUER_UNTIL);
                load_err(pki, &issuer.pem(), &issuer.key_pem(), NOW)
            }),
            "invalid issuer: the issuer does not chain to the trust anchors: certificate chain rejected: no path to a trust anchor in the bundle (unknown issuer): check that the peer sends its issuer certificate and that the bundle holds the right root",
        ),
        (
            "issuer signed by an impostor root with the anchor's name",
            Box::new(|pki| {
                let impostor = root();
                let issuer = issuer_of(&impostor, ISSUER_FROM, ISSUER_UNTIL);
                load_err(pki, &issuer.pem(), &issuer.key_pem(), NOW)
            }),
            "invalid issuer: the issuer does not chain to the trust anchors: certificate chain rejected: a signature does not verify with its issuer's key (bad signature)",
        ),
        (
            "issuer not a CA",
            Box::new(|pki| {
                let (crt, key) = odd_issuer(pki, |p| p.is_ca = IsCa::ExplicitNoCa);
                load_err(pki, &crt, &key, NOW)
            }),
            "invalid issuer: the issuer certificate is not a CA (basicConstraints CA:TRUE is missing)",
        ),
        (
            "issuer without keyCertSign",
            Box::new(|pki| {
                let (crt, key) = odd_issuer(pki, |p| {
                    p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
                });
                load_err(pki, &crt, &key, NOW)
            }),
            "invalid issuer: the issuer certificate lacks the keyCertSign key usage, so it may not sign certificates",
        ),
        (
            "issuer key/cert mismatch",
            Box::new(|pki| {
                let other = issuer_of(&pki.root, ISSUER_FROM, ISSUER_UNTIL);
                load_err(pki, &pki.issuer.pem(), &other.key_pem(), NOW)
            }),
            "invalid issuer: the private key does not match the issuer certificate's public key",
        ),
        (
            "clientAuth-only issuer EKU",
            Box::new(|pki| {
                let (crt, key) = odd_issuer(pki, |p| {
                    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
                });
                load_err(pki, &crt, &key, NOW)
            }),
            "invalid issuer: the issuer's extended key usage lacks serverAuth; its EKU must be absent or include both serverAuth and clientAuth",
        ),
        (
            "issuer whose name constraints exclude the trust domain",
            Box::new(|pki| {
                let (crt, key) = odd_issuer(pki, |p| {
                    p.name_constraints = Some(rcgen::NameConstraints {
                        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(
                            "example.org".to_owned(),
                        )],
                        excluded_subtrees: Vec::new(),
                    });
                });
                load_err(pki, &crt, &key, NOW)
            }),
            "invalid issuer: the issuer's name constraints exclude this mesh's identities in trust domain cluster.local (a leaf for linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local would not verify); use an issuer whose name constraints permit the trust domain, or none",
        ),
        (
            "issuer whose name constraints exclude the mesh's names by an excluded subtree",
            Box::new(|pki| {
                let (crt, key) = odd_issuer(pki, |p| {
                    p.name_constraints = Some(rcgen::NameConstraints {
                        permitted_subtrees: Vec::new(),
                        excluded_subtrees: vec![rcgen::GeneralSubtree::DnsName(
                            "cluster.local".to_owned(),
                        )],
                    });
                });
                load_err(pki, &crt, &key, NOW)
            }),
            "invalid issuer: the issuer's name constraints exclude this mesh's identities in trust domain cluster.local (a leaf for linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local would not verify); use an issuer whose name constraints permit the trust domain, or none",
        ),
        (
            "issuer whose subject cannot be written back as its leaves' issuer",
            Box::new(|pki| {
                let (crt, key) = odd_issuer(pki, |p| {
                    // Two organizationalUnitName attributes (2.5.4.11): the certificate
                    // writer keeps one value per attribute type.
                    p.distinguished_name
                        .push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 11]), "mesh");
                    p.distinguished_name
                        .push(rcgen::DnType::OrganizationalUnitName, "identity");
                });
                load_err(pki, &crt, &key, NOW)
            }),
            "invalid issuer: the issuer's subject 'CN=identity.linkerd.cluster.local, OU=mesh, OU=identity' cannot be written back byte for byte as the issuer name of its leaves (repeated or multi-valued attributes, or an unsupported string type); re-issue the issuer with a plain subject such as CN=identity.linkerd.cluster.local",
        ),
        (
            "RSA issuer key",
            Box::new(|pki| load_err(pki, &pki.issuer.pem(), RSA_KEY_PEM, NOW)),
            "invalid issuer: issuer key: unsupported private key type RSA; meshid keys are ECDSA P-256 or P-384",
        ),
        (
            "Ed25519 issuer key",
            Box::new(|pki| load_err(pki, &pki.issuer.pem(), ED25519_KEY_PEM, NOW)),
            "invalid issuer: issuer key: unsupported private key type Ed25519 (1.3.101.112); meshid keys are ECDSA P-256 or P-384",
        ),
        (
            "P-521 issuer key",
            Box::new(|pki| load_err(pki, &pki.issuer.pem(), P521_KEY_PEM, NOW)),
            "invalid issuer: issuer key: unsupported private key type ECDSA on curve P-521 (1.3.132.0.35); meshid keys are ECDSA P-256 or P-384",
        ),
        (
            "broken issuer certificate file",
            Box::new(|pki| {
                let pem = pki.issuer.pem();
                load_err(pki, &pem[..pem.len() / 2], &pki.issuer.key_pem(), NOW)
            }),
            "invalid issuer: the certificate file is not valid PEM: a PEM block is incomplete or corrupt (is the file half-written?)",
        ),
        (
            "issuer certificate file holding a key",
            Box::new(|pki| load_err(pki, &pki.issuer.key_pem(), &pki.issuer.key_pem(), NOW)),
            "invalid issuer: the certificate file is not valid PEM: block #0 is 'PRIVATE KEY', expected 'CERTIFICATE'",
        ),
        (
            "issuer file with no certificate",
            Box::new(|pki| load_err(pki, "", &pki.issuer.key_pem(), NOW)),
            "invalid issuer: the certificate file holds no certificate",
        ),
        (
            "key file holding a certificate",
            Box::new(|pki| load_err(pki, &pki.issuer.pem(), &pki.issuer.pem(), NOW)),
            "invalid issuer: issuer key: invalid PEM: unexpected PEM block 'CERTIFICATE' where a private key was expected",
        ),
        (
            "expired anchor",
            Box::new(|pki| {
                // Loading at a time past the root's NotAfter, with an issuer still valid then.
                let later = datetime!(2036-06-01 0:00 UTC);
                let issuer = issuer_of(&pki.root, ISSUER_FROM, datetime!(2037-01-01 0:00 UTC));
                load_err(pki, &issuer.pem(), &issuer.key_pem(), later)
            }),
            "invalid issuer: trust anchor #0 in the bundle expired at 2036-01-01T00:00:00Z (now is 2036-06-01T00:00:00Z); rotate the trust anchors and re-issue the issuer certificate",
        ),
        // --- Issuer that became unusable after it was loaded ---
        (
            "issuer expired since it was loaded",
            Box::new(|pki| {
                let later = datetime!(2026-08-02 0:00 UTC);
                pki.ca
                    .certify(&web(), &good_csr(), later)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            "issuer cannot issue: issuer certificate expired at 2026-08-01T00:00:00Z (now 2026-08-02T00:00:00Z); rotate it",
        ),
        // --- Names and durations ---
        (
            "bad ServiceAccount name",
            Box::new(|_| {
                ServiceAccount::new("emojivoto", "Web_1")
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            "invalid ServiceAccount name 'Web_1': must consist of lower case alphanumeric characters or '-'",
        ),
        (
            "bad ServiceAccount username",
            Box::new(|_| {
                ServiceAccount::from_username("system:node:worker-1")
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            "invalid ServiceAccount username 'system:node:worker-1': must start with 'system:serviceaccount:'",
        ),
        (
            "bad duration",
            Box::new(|_| {
                meshid_policy::parse_go_duration("24 hours")
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            "invalid duration '24 hours': unknown unit (expected one of ns, us, ms, s, m, h)",
        ),
        (
            "negative duration",
            Box::new(|_| {
                meshid_policy::parse_go_duration("-20s")
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            "invalid duration '-20s': negative durations are not allowed",
        ),
        (
            "lifetime above the maximum",
            Box::new(|pki| {
                let mut policy = IssuancePolicy::default();
                policy.lifetime = meshid_policy::parse_go_duration("24000h").unwrap();
                Ca::new(Mesh::default(), policy, pki.bundle.clone())
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            "invalid issuance policy: the issuance lifetime 24000h0m0s is longer than the maximum lifetime 168h0m0s",
        ),
    ]
}

#[test]
fn every_bad_input_is_refused_with_its_exact_error_and_the_ca_keeps_serving() {
    let pki = Pki::new();
    let serving = pki.ca.issuer().unwrap();
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (name, run, want) in &cases {
        match run(&pki) {
            Ok(()) => failures.push(format!("{name}: accepted")),
            Err(got) if got != *want => {
                failures.push(format!("{name}:\n  want {want}\n  got  {got}"))
            }
            Err(_) => {}
        }
        // Nothing was lost: the same issuer serves, and a good request succeeds.
        assert!(
            Arc::ptr_eq(&serving, &pki.ca.issuer().unwrap()),
            "{name} replaced the issuer"
        );
        pki.ca
            .certify(&web(), &good_csr(), NOW)
            .unwrap_or_else(|e| panic!("after {name}: {e}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_half_written_issuer_file_says_so() {
    let pki = Pki::new();
    let pem = pki.issuer.pem();
    let err = meshid_ca::parse_chain_pem(&pem[..pem.len() / 2]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidIssuer(IssuerProblem::PemIncomplete)),
        "{err:?}"
    );
}

#[test]
fn no_issuer_yet() {
    let pki = Pki::new();
    let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), pki.bundle).unwrap();
    let err = ca.certify(&web(), &good_csr(), NOW).unwrap_err();
    assert!(matches!(err, Error::IssuerNotReady));
    assert_eq!(err.to_string(), "cert issuer not ready yet");
}

#[test]
fn anchor_expired_since_the_issuer_was_loaded() {
    let root = meshid_ca::bootstrap::create_root(&ca_options(
        "root.linkerd.cluster.local",
        ROOT_FROM,
        datetime!(2026-07-01 0:00 UTC),
        1,
    ))
    .unwrap();
    let issuer = issuer_of(&root, ISSUER_FROM, ISSUER_UNTIL);
    let ca = Ca::new(
        Mesh::default(),
        IssuancePolicy::default(),
        bundle_of(&[&root]),
    )
    .unwrap();
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), NOW)
        .unwrap();
    let err = ca
        .certify(&web(), &good_csr(), datetime!(2026-07-15 0:00 UTC))
        .unwrap_err();
    assert!(matches!(err, Error::IssuerUnusable(_)));
    assert_eq!(
        err.to_string(),
        "issuer cannot issue: trust anchor #0 expired at 2026-07-01T00:00:00Z (now 2026-07-15T00:00:00Z); rotate it"
    );
}
