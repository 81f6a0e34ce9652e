//! Bootstrap tooling: root-ca, issuer, cert-manager manifests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use meshid_ca::bootstrap::CaOptions;
use meshid_issuer::bootstrap::{
    CertManagerManifests, OutputFiles, ROOT_COMMON_NAME, ROOT_VALIDITY, TrustAnchorKey,
    issuer_options, mint_issuer, write_issuer, write_root_ca,
};
use meshid_issuer::{Error, IssuerFolder, IssuerScheme, MintProblem};
use support::*;
use x509_parser::extensions::ParsedExtension;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn root_ca_then_issuer_like_step_and_linkerd() {
    let tmp = temp_dir();
    let root_out = OutputFiles::new(tmp.path().join("ca.crt"), tmp.path().join("ca.key"));
    write_root_ca(
        &root_out,
        &CaOptions::root(ROOT_COMMON_NAME, START, ROOT_VALIDITY),
        false,
    )
    .unwrap();
    assert_eq!(mode(&root_out.key), 0o600);
    assert_eq!(mode(&root_out.cert), 0o644);
    let pem = std::fs::read(&root_out.cert).unwrap();
    let block = pem::parse(pem).unwrap();
    let (_, root) = x509_parser::parse_x509_certificate(block.contents()).unwrap();
    assert_eq!(root.subject().to_string(), "CN=root.linkerd.cluster.local");
    let bc = root.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(1));
    assert_eq!(
        root.validity().not_after.to_datetime() - root.validity().not_before.to_datetime(),
        time::Duration::days(3650)
    );

    // Nothing is overwritten without force.
    let err = write_root_ca(
        &root_out,
        &CaOptions::root(ROOT_COMMON_NAME, START, ROOT_VALIDITY),
        false,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("already exists; overwrite it with --force (or `force: true`)")
    );

    let anchor = TrustAnchorKey::load(&root_out.cert, &root_out.key).unwrap();
    let dir = tmp.path().join("issuer");
    std::fs::create_dir(&dir).unwrap();
    let out = OutputFiles::new(dir.join("crt.pem"), dir.join("key.pem"));
    let duration = Duration::from_secs(48 * 3600);
    write_issuer(
        &anchor,
        &out,
        &issuer_options("identity.linkerd.cluster.local", START, duration, true),
        false,
    )
    .unwrap();
    assert_eq!(mode(&out.key), 0o600);
    assert!(matches!(
        write_issuer(
            &anchor,
            &out,
            &issuer_options("x", START, duration, true),
            false
        ),
        Err(Error::Exists { .. })
    ));
    let block = pem::parse(std::fs::read(&out.cert).unwrap()).unwrap();
    let (_, issuer) = x509_parser::parse_x509_certificate(block.contents()).unwrap();
    let bc = issuer.basic_constraints().unwrap().unwrap().value;
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = issuer.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    let eku = issuer.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert_eq!(issuer.validity().not_after.to_datetime(), START + duration);

    // Without EKU, forced over the first: no EKU extension at all.
    write_issuer(
        &anchor,
        &out,
        &issuer_options("identity.linkerd.cluster.local", START, duration, false),
        true,
    )
    .unwrap();
    let block = pem::parse(std::fs::read(&out.cert).unwrap()).unwrap();
    let (_, issuer) = x509_parser::parse_x509_certificate(block.contents()).unwrap();
    assert!(
        !issuer
            .extensions()
            .iter()
            .any(|e| matches!(e.parsed_extension(), ParsedExtension::ExtendedKeyUsage(_)))
    );

    // The CA loads it from the folder.
    let ca = meshid_ca::Ca::new(
        meshid_policy::Mesh::default(),
        meshid_policy::IssuancePolicy::default(),
        meshid_issuer::read_trust_bundle(&root_out.cert).unwrap(),
    )
    .unwrap();
    let files = IssuerFolder::new(&dir, IssuerScheme::LinkerdTls)
        .read()
        .unwrap();
    ca.load_issuer_pem(&files.chain_pem, &files.key_pem, START)
        .unwrap();
    assert!(!format!("{files:?}").contains("PRIVATE"));
}

#[test]
fn cert_manager_manifests_render_linkerds_recipe() {
    let yaml = CertManagerManifests::default().render().unwrap();
    assert_eq!(
        yaml,
        "apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: linkerd-trust-anchor
  namespace: linkerd
spec:
  ca:
    secretName: linkerd-trust-anchor
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: linkerd-identity-issuer
  namespace: linkerd
spec:
  secretName: linkerd-identity-issuer
  duration: 48h0m0s
  renewBefore: 25h0m0s
  issuerRef:
    name: linkerd-trust-anchor
    kind: Issuer
  commonName: identity.linkerd.cluster.local
  dnsNames:
  - identity.linkerd.cluster.local
  isCA: true
  privateKey:
    algorithm: ECDSA
  usages:
  - cert sign
  - crl sign
  - server auth
  - client auth
"
    );

    let mut custom = CertManagerManifests::new("mesh-system");
    custom.dns_names.push("identity.mesh-system.svc".to_owned());
    let yaml = custom.render().unwrap();
    assert!(yaml.contains("  namespace: mesh-system\n"));
    assert!(yaml.contains("  - identity.linkerd.cluster.local\n  - identity.mesh-system.svc\n"));

    let mut bad = CertManagerManifests::default();
    bad.namespace = "linkerd\n  evil: true".to_owned();
    assert!(matches!(
        bad.render(),
        Err(Error::InvalidName {
            field: "namespace",
            ..
        })
    ));
    let mut bad = CertManagerManifests::default();
    bad.dns_names = vec!["-bad.example".to_owned()];
    assert!(bad.render().is_err());
    let mut bad = CertManagerManifests::default();
    bad.renew_before = Duration::from_secs(49 * 3600);
    assert!(matches!(bad.render(), Err(Error::InvalidSchedule(_))));
}

#[test]
fn issuer_schemes_name_their_files() {
    assert_eq!(IssuerScheme::LinkerdTls.cert_file(), "crt.pem");
    assert_eq!(IssuerScheme::LinkerdTls.key_file(), "key.pem");
    assert_eq!(IssuerScheme::KubernetesTls.cert_file(), "tls.crt");
    assert_eq!(IssuerScheme::KubernetesTls.key_file(), "tls.key");
    assert_eq!(IssuerScheme::KubernetesTls.ca_file(), Some("ca.crt"));
    assert_eq!(
        "kubernetes.io/tls".parse::<IssuerScheme>().unwrap(),
        IssuerScheme::KubernetesTls
    );
    assert!("opaque".parse::<IssuerScheme>().is_err());
}

#[test]
fn a_trust_anchor_that_cannot_sign_says_why() {
    let tmp = temp_dir();
    let root_out = OutputFiles::new(tmp.path().join("ca.crt"), tmp.path().join("ca.key"));
    write_root_ca(
        &root_out,
        &CaOptions::root(ROOT_COMMON_NAME, START, ROOT_VALIDITY),
        false,
    )
    .unwrap();
    let key_pem = std::fs::read_to_string(&root_out.key).unwrap();
    // The key where the certificate belongs.
    let err = TrustAnchorKey::from_pem(&key_pem, &key_pem).err().unwrap();
    assert!(
        matches!(
            &err,
            Error::TrustAnchor {
                problem: meshid_ca::CaCertificateProblem::NotCertificate { label },
                ..
            } if label == "PRIVATE KEY"
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "trust anchor <memory>: PEM block is 'PRIVATE KEY', expected 'CERTIFICATE'"
    );
}

#[test]
fn an_issuer_that_would_start_after_its_anchor_expires_is_not_minted() {
    let tmp = temp_dir();
    let root_out = OutputFiles::new(tmp.path().join("ca.crt"), tmp.path().join("ca.key"));
    write_root_ca(
        &root_out,
        &CaOptions::root(ROOT_COMMON_NAME, START, ROOT_VALIDITY),
        false,
    )
    .unwrap();
    let anchor = TrustAnchorKey::load(&root_out.cert, &root_out.key).unwrap();
    let late = anchor.not_after() + Duration::from_secs(1);
    let err = mint_issuer(
        &anchor,
        &issuer_options(
            "identity.linkerd.cluster.local",
            late,
            Duration::from_secs(48 * 3600),
            true,
        ),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            &err,
            Error::Mint(MintProblem::AnchorExpiresFirst { anchor: subject, not_after })
                if subject == "CN=root.linkerd.cluster.local" && *not_after == anchor.not_after()
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "minting a certificate: the trust anchor CN=root.linkerd.cluster.local expires at {}, \
             before the issuer would start",
            meshid_policy::rfc3339(anchor.not_after())
        )
    );
}
