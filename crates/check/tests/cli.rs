//! The `meshid-check` binary this crate installs: exit status 0 on a healthy PKI, 1 when a
//! check fails, 2 for bad arguments; the report on standard output.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::process::Command;

use support::{issuer, root, temp_dir};

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshid-check"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_installed_binary_reports_and_exits_by_the_outcome() {
    let root = root();
    let issuer = issuer(&root);
    let dir = temp_dir("cli");
    fs::write(dir.path().join("crt.pem"), &issuer.pem).unwrap();
    fs::write(dir.path().join("key.pem"), issuer.key_pem()).unwrap();
    let anchors = dir.path().join("ca-bundle.crt");
    fs::write(&anchors, &root.pem).unwrap();
    let issuer_dir = dir.path().to_str().unwrap();
    let anchors = anchors.to_str().unwrap();
    let at = "2026-06-01T12:00:00Z";

    let (code, out, err) = check(&[
        "--issuer",
        issuer_dir,
        "--trust-anchors",
        anchors,
        "--now",
        at,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Status check results are √"), "{out}");

    // Two years later the issuer has expired: a failed check, exit status 1, JSON says so.
    let later = "2028-06-01T12:00:00Z";
    let (code, out, _) = check(&[
        "--issuer",
        issuer_dir,
        "--trust-anchors",
        anchors,
        "--now",
        later,
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["success"], serde_json::Value::Bool(false), "{out}");

    // A time that is not RFC 3339: refused by the argument parser, exit status 2.
    let (code, _, err) = check(&["--issuer", issuer_dir, "--now", "yesterday"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not an RFC 3339 time such as 2026-11-26T15:50:00Z"),
        "{err}"
    );
}
