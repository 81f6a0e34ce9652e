//! x509-limbo conformance: every case of `testdata/limbo/limbo-public.json` through
//! `verify_chain`.
//!
//! - SERVER cases verify for `Usage::Server`, then check `expected_peer_name` (DNS or IP) with
//!   webpki's `verify_is_valid_for_subject_name` on the leaf; CLIENT cases verify for
//!   `Usage::Client`.
//! - Leaf keys are not restricted (`key_algorithms: None`), so RSA leaves are judged on the
//!   chain; the rest of the mesh profile (EKU present on the leaf, leaf not a CA, anchor
//!   validity) stays on.
//! - A case with `validation_time: null` ("now") is verified at [`DEFAULT_NOW`], a fixed time,
//!   so the test does not change with the clock.
//! - Cases that need what the verifier does not offer are skipped (see [`skip_reason`]).
//!
//! A case expected to fail that the verifier accepts fails this test unless it is listed, with
//! a reason, in `testdata/limbo-divergences.txt`; a listed case that no longer diverges fails
//! it too. Cases expected to succeed that the verifier rejects are printed and counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use meshid_verify::{TrustBundle, Usage, VerifyOptions, verify_chain};
use rustls_pki_types::{CertificateDer, DnsName, ServerName};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

/// The verification time of cases whose `validation_time` is null ("now").
const DEFAULT_NOW: OffsetDateTime = datetime!(2026-11-01 0:00 UTC);

const SUITE: &str = include_str!("../testdata/limbo/limbo-public.json");
const DIVERGENCES: &str = include_str!("../testdata/limbo-divergences.txt");

#[derive(Deserialize)]
struct Suite {
    version: u32,
    testcases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    validation_kind: String,
    trusted_certs: Vec<String>,
    untrusted_intermediates: Vec<String>,
    peer_certificate: String,
    validation_time: Option<String>,
    expected_peer_name: Option<PeerName>,
    expected_peer_names: Vec<PeerName>,
    extended_key_usage: Vec<String>,
    key_usage: Vec<String>,
    signature_algorithms: Vec<String>,
    max_chain_depth: Option<u64>,
    crls: Vec<String>,
    expected_result: String,
}

#[derive(Deserialize)]
struct PeerName {
    kind: String,
    value: String,
}

/// Why a case cannot be run faithfully, if it cannot.
fn skip_reason(case: &Case) -> Option<&'static str> {
    if !case.crls.is_empty() {
        return Some("CRLs: the verifier does no revocation checking");
    }
    if case.max_chain_depth.is_some() {
        return Some("max_chain_depth: limbo's depth semantics are not mapped");
    }
    if !case.key_usage.is_empty() {
        return Some("key_usage: the verifier takes no required key usage");
    }
    if !case.signature_algorithms.is_empty() {
        return Some("signature_algorithms: the verifier always uses webpki's full set");
    }
    let eku = match case.validation_kind.as_str() {
        "SERVER" => "serverAuth",
        "CLIENT" => "clientAuth",
        _ => return Some("validation_kind other than SERVER or CLIENT"),
    };
    if case.extended_key_usage.iter().any(|e| e != eku) {
        return Some("extended_key_usage other than the validation kind's");
    }
    let names = case
        .expected_peer_name
        .iter()
        .chain(&case.expected_peer_names);
    if names.into_iter().any(|n| n.kind != "DNS" && n.kind != "IP") {
        return Some("expected peer name of a kind other than DNS or IP (RFC822)");
    }
    if case.validation_kind == "CLIENT" && !case.expected_peer_names.is_empty() {
        return Some("CLIENT expected_peer_names: client names are not matched by webpki");
    }
    None
}

/// Runs one case: `Ok(())` if accepted, else why it was rejected.
fn run(case: &Case) -> Result<(), String> {
    let bundle =
        TrustBundle::from_pem(case.trusted_certs.concat().as_bytes()).map_err(|e| e.to_string())?;
    let leaf = der(&case.peer_certificate)?;
    let intermediates = case
        .untrusted_intermediates
        .iter()
        .map(|pem| der(pem))
        .collect::<Result<Vec<_>, _>>()?;
    let now = match &case.validation_time {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339).map_err(|e| e.to_string())?,
        None => DEFAULT_NOW,
    };
    let usage = match case.validation_kind.as_str() {
        "CLIENT" => Usage::Client,
        _ => Usage::Server,
    };
    let mut options = VerifyOptions::default();
    options.key_algorithms = None;
    verify_chain(&bundle, &leaf, &intermediates, now, usage, &options)
        .map_err(|e| e.to_string())?;

    if let (Usage::Server, Some(name)) = (usage, &case.expected_peer_name) {
        let server_name = match name.kind.as_str() {
            "DNS" => DnsName::try_from(name.value.as_str())
                .map(|n| ServerName::DnsName(n.to_owned()))
                .map_err(|e| format!("expected name {:?}: {e}", name.value))?,
            _ => name
                .value
                .parse::<IpAddr>()
                .map(|ip| ServerName::IpAddress(ip.into()))
                .map_err(|e| format!("expected IP {:?}: {e}", name.value))?,
        };
        webpki::EndEntityCert::try_from(&leaf)
            .and_then(|ee| ee.verify_is_valid_for_subject_name(&server_name))
            .map_err(|e| format!("name check: {e:?}"))?;
    }
    Ok(())
}

fn der(pem: &str) -> Result<CertificateDer<'static>, String> {
    pem::parse(pem)
        .map(|p| CertificateDer::from(p.into_contents()))
        .map_err(|e| e.to_string())
}

/// `<id> # reason` lines; blank lines and `#` comment lines are ignored.
fn divergences() -> BTreeMap<&'static str, &'static str> {
    DIVERGENCES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once('#').unwrap_or((l, ""));
            let (id, reason) = (id.trim(), reason.trim());
            assert!(!reason.is_empty(), "divergence {id} has no reason");
            (id, reason)
        })
        .collect()
}

fn main() {
    let suite: Suite = serde_json::from_str(SUITE).unwrap();
    assert_eq!(suite.version, 1);
    let listed = divergences();

    let (mut passed, mut failed) = (0, 0);
    let mut skipped = BTreeMap::<&str, usize>::new();
    let mut accepted_failures = BTreeSet::new();
    let mut rejected_successes = Vec::new();
    for case in &suite.testcases {
        if let Some(reason) = skip_reason(case) {
            *skipped.entry(reason).or_default() += 1;
            continue;
        }
        let result = run(case);
        match (case.expected_result.as_str(), result) {
            ("SUCCESS", Ok(())) | ("FAILURE", Err(_)) => passed += 1,
            ("FAILURE", Ok(())) => {
                failed += 1;
                accepted_failures.insert(case.id.as_str());
            }
            (_, Err(e)) => {
                failed += 1;
                rejected_successes.push((case.id.as_str(), e));
            }
            (other, Ok(())) => panic!("{}: unknown expected_result {other:?}", case.id),
        }
    }

    for (reason, n) in &skipped {
        println!("limbo: skipped {n}: {reason}");
    }
    for (id, e) in &rejected_successes {
        println!("limbo: rejected, expected SUCCESS: {id}: {e}");
    }
    for id in &accepted_failures {
        let note = listed.get(id).map_or("NOT LISTED", |r| r);
        println!("limbo: accepted, expected FAILURE: {id}: {note}");
    }
    let skipped: usize = skipped.values().sum();
    println!("limbo: {passed} passed, {failed} failed, {skipped} skipped");

    let unlisted: Vec<_> = accepted_failures
        .iter()
        .filter(|id| !listed.contains_key(*id))
        .collect();
    assert!(
        unlisted.is_empty(),
        "accepted cases expected to FAIL, not in testdata/limbo-divergences.txt: {unlisted:?}"
    );
    let stale: Vec<_> = listed
        .keys()
        .filter(|id| !accepted_failures.contains(*id))
        .collect();
    assert!(
        stale.is_empty(),
        "testdata/limbo-divergences.txt lists cases that no longer diverge: {stale:?}"
    );
}
