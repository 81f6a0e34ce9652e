//! Issuers with name constraints: one that permits the mesh's identities loads and issues;
//! one that excludes the trust domain is refused, whichever way the issuer is installed.

#![allow(clippy::unwrap_used)]

mod support;

use meshid_ca::{Ca, Error, IssuerCredentials, IssuerProblem};
use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, TrustDomain};
use meshid_verify::{Usage, VerifyOptions};
use rcgen::{BasicConstraints, GeneralSubtree, IsCa, KeyUsagePurpose, NameConstraints};
use support::*;

/// An issuer under `root` whose name constraints permit `permitted` and exclude `excluded`
/// (DNS subtrees): its certificate and key, as PEM.
fn constrained_issuer(
    root: &meshid_ca::bootstrap::CaCertificate,
    permitted: &[&str],
    excluded: &[&str],
) -> (String, String) {
    let key = meshid_csr::KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
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
    let subtrees = |names: &[&str]| {
        names
            .iter()
            .map(|name| GeneralSubtree::DnsName((*name).to_owned()))
            .collect()
    };
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: subtrees(permitted),
        excluded_subtrees: subtrees(excluded),
    });
    let signer = rcgen::Issuer::from_ca_cert_der(root.der(), root.key()).unwrap();
    let cert = params.signed_by(&key, &signer).unwrap();
    (cert.pem(), key.to_pkcs8_pem().to_string())
}

#[test]
fn an_issuer_constrained_to_the_mesh_loads_and_issues() {
    let root = root();
    let bundle = bundle_of(&[&root]);
    for permitted in ["cluster.local", "identity.linkerd.cluster.local"] {
        let (crt, key) = constrained_issuer(&root, &[permitted], &["other.cluster.local"]);
        let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap();
        ca.load_issuer_pem(&crt, &key, NOW)
            .unwrap_or_else(|e| panic!("permitted {permitted}: {e}"));
        let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
        let certified = ca.certify(&web(), &csr, NOW).unwrap();
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
}

#[test]
fn an_issuer_excluding_the_trust_domain_is_refused_with_a_message_that_says_so() {
    let root = root();
    let bundle = bundle_of(&[&root]);
    // Constrained to another trust domain's identities.
    let (crt, key) = constrained_issuer(&root, &["identity.linkerd.example.org"], &[]);
    let mesh = Mesh::new(
        TrustDomain::new("example.org").unwrap(),
        meshid_policy::Namespace::new("linkerd").unwrap(),
    );
    // It serves the mesh it is constrained to...
    let other = Ca::new(mesh, IssuancePolicy::default(), bundle.clone()).unwrap();
    other.load_issuer_pem(&crt, &key, NOW).unwrap();
    // ...and is refused for cluster.local, loaded from files or installed as credentials.
    let want = "invalid issuer: the issuer's name constraints exclude this mesh's identities in \
                trust domain cluster.local (a leaf for \
                linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local would \
                not verify); use an issuer whose name constraints permit the trust domain, or \
                none";
    let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap();
    let err = ca.load_issuer_pem(&crt, &key, NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidIssuer(IssuerProblem::NameConstraintsExcludeMesh { trust_domain, .. })
                if trust_domain == "cluster.local"
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), want);
    // The credentials themselves are sound: only this mesh cannot use them.
    let creds = IssuerCredentials::from_pem(&crt, &key, &bundle, NOW).unwrap();
    assert_eq!(ca.set_issuer(creds, NOW).unwrap_err().to_string(), want);
    assert!(ca.issuer().is_none());
}

#[test]
fn the_spiffe_names_are_checked_in_spiffe_modes() {
    // URI names are outside DNS name constraints: an issuer constrained to the mesh's DNS
    // names issues SPIFFE leaves too.
    let root = root();
    let bundle = bundle_of(&[&root]);
    let (crt, key) = constrained_issuer(&root, &["cluster.local"], &[]);
    for mode in [SanMode::DnsAndSpiffe, SanMode::Spiffe] {
        let mut policy = IssuancePolicy::default();
        policy.san_mode = mode;
        let ca = Ca::new(Mesh::default(), policy, bundle.clone()).unwrap();
        ca.load_issuer_pem(&crt, &key, NOW)
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let (_, csr) = csr_for(&web(), mode, KeyAlgorithm::EcdsaP256);
        let certified = ca.certify(&web(), &csr, NOW).unwrap();
        meshid_verify::verify_chain(
            &bundle,
            &certified.leaf,
            &certified.chain,
            NOW,
            Usage::Either,
            &VerifyOptions::default(),
        )
        .unwrap();
    }
}
