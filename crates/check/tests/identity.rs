//! The `linkerd-identity` checks: for each, a passing and a failing case, with exact marks
//! and messages.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;

use meshid_check::names::*;
use meshid_check::{
    CheckOptions, ClockSource, FailOn, IdentityScheme, InputPaths, Inputs, PemSource, Status,
};
use support::*;
use tempfile::TempDir;
use time::Duration;
use time::macros::datetime;

const DAY: Duration = Duration::DAY;

/// The identity checks that follow `after`, which all must be skipped.
fn assert_skipped_after(report: &meshid_check::Report, after: &str) {
    let names: Vec<_> = report.checks().map(|c| c.name).collect();
    let position = names.iter().position(|n| *n == after).unwrap();
    for check in report.checks().skip(position + 1) {
        assert_eq!(check.status, Status::Skipped, "{}", check.name);
        assert_eq!(
            check.message.as_deref(),
            Some(format!("not run: the fatal check \"{after}\" failed").as_str())
        );
    }
}

#[test]
fn healthy_pki_passes_every_check_in_linkerd_shape() {
    let root = root();
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert!(report.checks().all(|c| c.status == Status::Ok));
    assert_eq!(report.exit_code(FailOn::Warning), 0);
    assert_eq!(
        report.render_table(),
        "Checked at 2026-06-01T12:00:00Z (given with --now)\n\
         \n\
         linkerd-identity\n\
         ----------------\n\
         √ certificate config is valid\n\
         √ trust anchors are using supported crypto algorithm\n\
         √ trust anchors are within their validity period\n\
         √ trust anchors are valid for at least 60 days\n\
         √ issuer cert is using supported crypto algorithm\n\
         √ issuer cert is within its validity period\n\
         √ issuer cert is valid for at least 60 days\n\
         √ issuer cert is issued by the trust anchor\n\
         \n\
         Status check results are √\n"
    );
}

// === certificate config is valid ===

/// Writes an issuer folder in `scheme`'s layout, with `ca.crt` for kubernetes.io/tls; the
/// folder is removed when the returned `TempDir` is dropped.
fn issuer_dir(
    name: &str,
    scheme: IdentityScheme,
    root: &Cert,
    issuer: &Cert,
) -> (TempDir, InputPaths) {
    let dir = temp_dir(name);
    let (crt, key) = scheme.file_names();
    fs::write(dir.path().join(crt), &issuer.pem).unwrap();
    fs::write(dir.path().join(key), issuer.key_pem()).unwrap();
    let mut paths = InputPaths::new(dir.path(), None);
    paths.identity_scheme = scheme;
    match scheme {
        IdentityScheme::KubernetesTls => fs::write(dir.path().join("ca.crt"), &root.pem).unwrap(),
        _ => {
            let anchors = dir.path().join("ca-bundle.crt");
            fs::write(&anchors, &root.pem).unwrap();
            paths.trust_anchors = Some(anchors);
        }
    }
    (dir, paths)
}

#[test]
fn config_from_files_in_both_schemes() {
    let root = root();
    let issuer = issuer(&root);
    for scheme in [IdentityScheme::LinkerdTls, IdentityScheme::KubernetesTls] {
        let (_dir, paths) = issuer_dir("schemes", scheme, &root, &issuer);
        let report = run(&Inputs::read(&paths), false);
        assert!(
            report.checks().all(|c| c.status == Status::Ok),
            "{scheme}: {report:?}"
        );
    }
}

#[test]
fn config_missing_file_is_fatal() {
    let root = root();
    let issuer = issuer(&root);
    let (_dir, paths) = issuer_dir("missing", IdentityScheme::LinkerdTls, &root, &issuer);
    fs::remove_file(paths.issuer_dir.join("key.pem")).unwrap();
    let report = run(&Inputs::read(&paths), true);
    let check = report.check(CERT_CONFIG).unwrap();
    assert_eq!(check.status, Status::Error);
    assert_eq!(
        check.message.as_deref(),
        Some(
            format!(
                "failed to read the issuer key: key.pem containing the issuer key does not \
                 exist in {} (scheme linkerd.io/tls)",
                paths.issuer_dir.display()
            )
            .as_str()
        )
    );
    assert_eq!(
        check.hint.as_deref(),
        Some("see https://linkerd.io/2/checks/#l5d-identity-cert-config-valid for hints")
    );
    // Fatal: nothing else runs, in either category.
    assert_skipped_after(&report, CERT_CONFIG);
    assert_eq!(report.exit_code(FailOn::Error), 1);
    let table = report.render_table();
    assert!(
        table.contains("× certificate config is valid\n    failed to read"),
        "{table}"
    );
    assert!(!table.contains("trust anchors are"), "{table}");
    assert!(!table.contains("linkerd-identity-data-plane"), "{table}");
}

#[test]
fn config_wrong_scheme_says_which_files_are_there() {
    let root = root();
    let issuer = issuer(&root);
    let (_dir, mut paths) = issuer_dir("wrong-scheme", IdentityScheme::LinkerdTls, &root, &issuer);
    paths.identity_scheme = IdentityScheme::KubernetesTls;
    let report = run(&Inputs::read(&paths), false);
    assert_eq!(
        outcome(&report, CERT_CONFIG),
        (
            Status::Error,
            Some(format!(
                "failed to read the issuer certificate: tls.crt containing the issuer \
                 certificate does not exist in {} (scheme kubernetes.io/tls); the folder holds \
                 crt.pem and key.pem: is the scheme linkerd.io/tls?",
                paths.issuer_dir.display()
            ))
        )
    );
}

#[test]
fn config_without_anchors_under_linkerd_scheme() {
    let root = root();
    let issuer = issuer(&root);
    let (_dir, mut paths) = issuer_dir("no-anchors", IdentityScheme::LinkerdTls, &root, &issuer);
    paths.trust_anchors = None;
    let report = run(&Inputs::read(&paths), false);
    assert_eq!(
        outcome(&report, CERT_CONFIG),
        (
            Status::Error,
            Some(
                "failed to read the trust anchors: no trust-anchor file was given; the \
                 linkerd.io/tls scheme keeps the anchors out of the issuer folder (ConfigMap \
                 linkerd-identity-trust-roots, key ca-bundle.crt)"
                    .to_owned()
            )
        )
    );
}

#[test]
fn config_key_mismatch_is_fatal() {
    let root = root();
    let issuer = issuer(&root);
    let other = support::issuer(&root);
    let inputs = Inputs::new(
        PemSource::new("ca-bundle.crt", root.pem),
        PemSource::new("issuer/crt.pem", issuer.pem),
        PemSource::new("issuer/key.pem", other.key_pem()),
    );
    let report = run(&inputs, false);
    assert_eq!(
        outcome(&report, CERT_CONFIG),
        (
            Status::Error,
            Some(
                "the issuer key in issuer/key.pem does not match the issuer certificate in \
                 issuer/crt.pem"
                    .to_owned()
            )
        )
    );
    assert_skipped_after(&report, CERT_CONFIG);
}

#[test]
fn config_garbage_anchors_are_fatal() {
    let root = root();
    let issuer = issuer(&root);
    let report = run(&inputs("not a certificate", &issuer), false);
    let (status, message) = outcome(&report, CERT_CONFIG);
    assert_eq!(status, Status::Error);
    assert_eq!(
        message.as_deref(),
        Some(
            "the trust anchors in ca-bundle.crt are invalid: trust bundle is empty: it must hold \
             at least one CERTIFICATE"
        )
    );
}

// === trust anchors are using supported crypto algorithm ===

#[test]
fn rsa_2048_anchor_is_accepted() {
    let root = root_with(ROOT_CN, ROOT_SERIAL, Alg::Rsa2048, ROOT_FROM, ROOT_UNTIL);
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert!(
        report.checks().all(|c| c.status == Status::Ok),
        "{report:#?}"
    );
}

#[test]
fn rsa_3072_anchor_is_refused() {
    // ring signs with RSA keys of 2048..=4096 bits, so the RSA-3072 anchor is self-signed.
    let root = root_with(ROOT_CN, ROOT_SERIAL, Alg::Rsa3072, ROOT_FROM, ROOT_UNTIL);
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(outcome(&report, CERT_CONFIG).0, Status::Ok);
    assert_eq!(
        outcome(&report, ANCHORS_ALGORITHM),
        (
            Status::Error,
            Some(
                "Invalid trustAnchors:\n\t* 1001 root.linkerd.cluster.local must use RSA-2048 \
                 or RSA-4096 for public key, instead RSA-3072 was used"
                    .to_owned()
            )
        )
    );
    assert_skipped_after(&report, ANCHORS_ALGORITHM);
    assert!(report.render_table().contains(
        "× trust anchors are using supported crypto algorithm\n    Invalid trustAnchors:\n\t* \
         1001 root.linkerd.cluster.local must use RSA-2048 or RSA-4096 for public key, instead \
         RSA-3072 was used\n    see \
         https://linkerd.io/2/checks/#l5d-identity-trustAnchors-use-supported-crypto for hints\n"
    ));
}

#[test]
fn p384_anchor_is_refused_and_every_bad_anchor_is_listed() {
    let good = root();
    let bad = root_with("old-root", 7, Alg::P384, ROOT_FROM, ROOT_UNTIL);
    let issuer = issuer(&good);
    let report = run(&inputs(&format!("{}{}", good.pem, bad.pem), &issuer), false);
    assert_eq!(
        outcome(&report, ANCHORS_ALGORITHM),
        (
            Status::Error,
            Some(
                "Invalid trustAnchors:\n\t* 7 old-root must use P-256 curve for public key, \
                 instead P-384 was used"
                    .to_owned()
            )
        )
    );
}

// === trust anchors are within their validity period ===

#[test]
fn expired_anchor_is_fatal() {
    let root = root_with(
        ROOT_CN,
        ROOT_SERIAL,
        Alg::P256,
        ROOT_FROM,
        datetime!(2026-05-31 0:00 UTC),
    );
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(
        outcome(&report, ANCHORS_VALID),
        (
            Status::Error,
            Some(
                "Invalid anchors:\n\t* 1001 root.linkerd.cluster.local not valid anymore. \
                 Expired on 2026-05-31T00:00:00Z"
                    .to_owned()
            )
        )
    );
    assert_eq!(
        report.check(ANCHORS_VALID).unwrap().hint.as_deref(),
        Some("see https://linkerd.io/2/checks/#l5d-identity-trustAnchors-are-time-valid for hints")
    );
    assert_skipped_after(&report, ANCHORS_VALID);
}

#[test]
fn anchor_not_yet_valid_is_fatal() {
    let root = root_with(
        ROOT_CN,
        ROOT_SERIAL,
        Alg::P256,
        datetime!(2026-06-02 0:00 UTC),
        ROOT_UNTIL,
    );
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(
        outcome(&report, ANCHORS_VALID),
        (
            Status::Error,
            Some(
                "Invalid anchors:\n\t* 1001 root.linkerd.cluster.local not valid before: \
                 2026-06-02T00:00:00Z"
                    .to_owned()
            )
        )
    );
}

// === trust anchors are valid for at least 60 days ===

#[test]
fn anchor_expiring_in_59_days_warns_61_days_passes() {
    let until_59 = NOW + 59 * DAY;
    let root = root_with(ROOT_CN, ROOT_SERIAL, Alg::P256, ROOT_FROM, until_59);
    let issuer = issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(
        outcome(&report, ANCHORS_NOT_EXPIRING),
        (
            Status::Warning,
            Some(
                "Anchors expiring soon:\n\t* 1001 root.linkerd.cluster.local will expire on \
                 2026-07-30T12:00:00Z"
                    .to_owned()
            )
        )
    );
    // A warning does not stop the run, and exits 0 unless warnings fail.
    assert_eq!(outcome(&report, ISSUER_CHAINED).0, Status::Ok);
    assert_eq!(report.exit_code(FailOn::Error), 0);
    assert_eq!(report.exit_code(FailOn::Warning), 1);
    assert!(report.render_table().contains(
        "‼ trust anchors are valid for at least 60 days\n    Anchors expiring soon:\n\t* 1001 \
         root.linkerd.cluster.local will expire on 2026-07-30T12:00:00Z\n    see \
         https://linkerd.io/2/checks/#l5d-identity-trustAnchors-not-expiring-soon for hints\n"
    ));

    // With a 30-day window the same anchor passes.
    let mut options = CheckOptions::default();
    options.expiry_warning = meshid_check::parse_expiry_window("30d").unwrap();
    let report = meshid_check::run(
        &inputs(&root.pem, &issuer),
        &options,
        NOW,
        ClockSource::Given,
    );
    assert_eq!(outcome(&report, ANCHORS_NOT_EXPIRING).0, Status::Ok);

    let root = root_with(ROOT_CN, ROOT_SERIAL, Alg::P256, ROOT_FROM, NOW + 61 * DAY);
    let issuer = support::issuer(&root);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(outcome(&report, ANCHORS_NOT_EXPIRING), (Status::Ok, None));
}

// === issuer cert is using supported crypto algorithm ===

#[test]
fn p384_issuer_is_refused() {
    let root = root();
    let issuer = issuer_with(&root, Alg::P384, ISSUER_FROM, ISSUER_UNTIL);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(outcome(&report, CERT_CONFIG).0, Status::Ok);
    assert_eq!(
        outcome(&report, ISSUER_ALGORITHM),
        (
            Status::Error,
            Some(
                "issuer certificate must use P-256 curve for public key, instead P-384 was used"
                    .to_owned()
            )
        )
    );
    assert_skipped_after(&report, ISSUER_ALGORITHM);
}

// === issuer cert is within its validity period ===

#[test]
fn expired_issuer_is_fatal() {
    let root = root();
    let issuer = issuer_with(
        &root,
        Alg::P256,
        ISSUER_FROM,
        datetime!(2026-05-31 0:00 UTC),
    );
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(
        outcome(&report, ISSUER_VALID),
        (
            Status::Error,
            Some(
                "issuer certificate is not valid anymore. Expired on 2026-05-31T00:00:00Z"
                    .to_owned()
            )
        )
    );
    assert_skipped_after(&report, ISSUER_VALID);
}

#[test]
fn issuer_not_yet_valid_is_fatal() {
    let root = root();
    let issuer = issuer_with(
        &root,
        Alg::P256,
        datetime!(2026-06-02 0:00 UTC),
        ISSUER_UNTIL,
    );
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(
        outcome(&report, ISSUER_VALID),
        (
            Status::Error,
            Some("issuer certificate is not valid before: 2026-06-02T00:00:00Z".to_owned())
        )
    );
}

// === issuer cert is valid for at least 60 days ===

#[test]
fn issuer_expiring_in_59_days_warns_61_days_passes() {
    let root = root();
    let issuer = issuer_with(&root, Alg::P256, ISSUER_FROM, NOW + 59 * DAY);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(
        outcome(&report, ISSUER_NOT_EXPIRING),
        (
            Status::Warning,
            Some("issuer certificate will expire on 2026-07-30T12:00:00Z".to_owned())
        )
    );
    assert_eq!(
        report.check(ISSUER_NOT_EXPIRING).unwrap().hint.as_deref(),
        Some(
            "see https://linkerd.io/2/checks/#l5d-identity-issuer-cert-not-expiring-soon for hints"
        )
    );

    let issuer = issuer_with(&root, Alg::P256, ISSUER_FROM, NOW + 61 * DAY);
    let report = run(&inputs(&root.pem, &issuer), false);
    assert_eq!(outcome(&report, ISSUER_NOT_EXPIRING), (Status::Ok, None));
}

// === issuer cert is issued by the trust anchor ===

#[test]
fn issuer_of_another_anchor_is_an_error() {
    let root = root();
    let other_root = root_with("other-root", 9, Alg::P256, ROOT_FROM, ROOT_UNTIL);
    let issuer = issuer(&other_root);
    let report = run(&inputs(&root.pem, &issuer), true);
    let (status, message) = outcome(&report, ISSUER_CHAINED);
    assert_eq!(status, Status::Error);
    assert_eq!(
        message.as_deref(),
        Some(
            "the issuer does not chain to the trust anchors: certificate chain rejected: no \
             path to a trust anchor in the bundle (unknown issuer): check that the peer sends \
             its issuer certificate and that the bundle holds the right root"
        )
    );
    // An error, not fatal: the data-plane category still runs.
    assert!(
        report
            .checks()
            .filter(|c| c.name != ISSUER_CHAINED)
            .all(|c| c.status != Status::Error)
    );
    assert_eq!(report.exit_code(FailOn::Error), 1);
    assert!(
        report
            .render_table()
            .ends_with("\nStatus check results are ×\n")
    );
}
