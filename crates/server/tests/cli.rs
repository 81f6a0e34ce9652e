//! The `identity-ca` binary this crate installs (`cargo install --path crates/server`): the same
//! command line as the workspace's `identity-ca` example.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn identity_ca(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_identity-ca"))
        .args(args)
        .output()
        .expect("the identity-ca binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_installed_binary_bootstraps_and_refuses_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("ca.crt");
    let key = dir.path().join("ca.key");
    let (code, out, err) = identity_ca(&[
        "root-ca",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("wrote "), "{out}");
    assert!(
        std::fs::read_to_string(&cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    // Linkerd's single-dash spelling, a value out of range: one line, exit code 2.
    let (code, _, err) = identity_ca(&["-kube-apiclient-qps=0"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("identity-ca: invalid value '0' for '--kube-apiclient-qps <KUBE_APICLIENT_QPS>': must be between 0.01 and 1000000"),
        "{err}"
    );

    // A failure of the subcommand: the error and its causes on one line, exit code 1.
    let (code, _, err) = identity_ca(&["manifests", "--identity-scheme", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("identity-ca: --identity-scheme: "), "{err}");
}
