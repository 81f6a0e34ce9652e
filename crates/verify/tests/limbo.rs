//! x509-limbo conformance: every case of `testdata/limbo/limbo-public.json` through
//! `verify_chain`, and names through meshid's own identity matching.
//!
//! - SERVER cases verify for `Usage::Server`; when the case expects a DNS or IP name, the leaf
//!   must name it as [`VerifiedPeer::matches`] decides (exact, no wildcards, DNS SANs only), as
//!   `verify_identity` does for a mesh peer. CLIENT cases verify for `Usage::Client`.
//! - Leaf keys are not restricted (`key_algorithms: None`), so RSA leaves are judged on the
//!   chain; the rest of the mesh profile (EKU present on the leaf, leaf not a CA, anchor
//!   validity) stays on.
//! - A case with `validation_time: null` ("now") is verified at [`DEFAULT_NOW`], a fixed time,
//!   so the test does not change with the clock.
//! - Cases that need what the verifier does not offer are skipped (see [`skip_reason`]); how
//!   many for each reason is pinned in [`SKIPPED`].
//!
//! The run fails on any divergence from the expected result that is not listed, with a reason,
//! in `testdata/limbo-divergences.txt`: a FAILURE case accepted, or a SUCCESS case rejected. A
//! listed case that no longer diverges fails it too. A FAILURE case must also be rejected for
//! the reason recorded in `testdata/limbo-rejections.txt` (the error's kind and the stage that
//! refused it), not merely for some reason. After a deliberate change of the verifier, rewrite
//! that file and review its diff:
//!
//! ```text
//! MESHID_LIMBO_BLESS=1 cargo test -p meshid-verify --test limbo
//! ```
//!
//! [`VerifiedPeer::matches`]: meshid_verify::VerifiedPeer::matches

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use meshid_verify::{Error, TrustBundle, Usage, VerifyOptions, verify_chain};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

/// The verification time of cases whose `validation_time` is null ("now").
const DEFAULT_NOW: OffsetDateTime = datetime!(2026-11-01 0:00 UTC);

const SUITE: &str = include_str!("../testdata/limbo/limbo-public.json");
const DIVERGENCES: &str = include_str!("../testdata/limbo-divergences.txt");
const REJECTIONS: &str = include_str!("../testdata/limbo-rejections.txt");
/// Where `MESHID_LIMBO_BLESS=1` writes the rejections it found.
const REJECTIONS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/limbo-rejections.txt");

/// How many cases each [`skip_reason`] skips: a change in the suite or in the reasons shows.
const SKIPPED: [(&str, usize); 4] = [
    ("CRLs: the verifier does no revocation checking", 4),
    (
        "expected peer name of a kind other than DNS or IP (RFC822)",
        6,
    ),
    ("key_usage: the verifier takes no required key usage", 1),
    ("max_chain_depth: limbo's depth semantics are not mapped", 1),
];

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
    if !case.expected_peer_names.is_empty() {
        return Some("expected_peer_names: only one expected name is matched");
    }
    None
}

/// Why a case was rejected: the stage that refused it and the kind of error, e.g.
/// `chain: Chain(NameConstraintViolation)` or `name: IdentityMismatch`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rejection {
    stage: &'static str,
    kind: String,
    message: String,
}

impl Rejection {
    fn new(stage: &'static str, err: &Error) -> Self {
        let kind = match err {
            Error::Chain(webpki) => format!("Chain({})", variant(&format!("{webpki:?}"))),
            other => variant(&format!("{other:?}")).to_owned(),
        };
        Self {
            stage,
            kind,
            message: err.to_string(),
        }
    }

    /// What `testdata/limbo-rejections.txt` records: the stage and the kind, not the message.
    fn recorded(&self) -> String {
        format!("{}: {}", self.stage, self.kind)
    }
}

/// The variant name at the start of a `Debug` rendering: `CertExpired { .. }` -> `CertExpired`.
fn variant(debug: &str) -> &str {
    let end = debug.find(['(', ' ', '{']).unwrap_or(debug.len());
    &debug[..end]
}

/// Runs one case: `Ok(Ok(()))` if accepted, `Ok(Err(_))` if the verifier (or meshid's name
/// matching) rejected it, `Err(_)` if the case itself could not be set up, which fails the run.
fn run(case: &Case) -> Result<Result<(), Rejection>, String> {
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
    let expected_name = match &case.expected_peer_name {
        Some(name) if name.kind == "IP" => Some(
            name.value
                .parse::<IpAddr>()
                .map_err(|e| format!("expected IP {:?}: {e}", name.value))?
                .to_string(),
        ),
        Some(name) => Some(name.value.clone()),
        None => None,
    };
    let usage = match case.validation_kind.as_str() {
        "CLIENT" => Usage::Client,
        _ => Usage::Server,
    };

    let bundle = match TrustBundle::from_pem(case.trusted_certs.concat().as_bytes()) {
        Ok(bundle) => bundle,
        Err(e) => return Ok(Err(Rejection::new("bundle", &e))),
    };
    let mut options = VerifyOptions::default();
    options.key_algorithms = None;
    let peer = match verify_chain(&bundle, &leaf, &intermediates, now, usage, &options) {
        Ok(peer) => peer,
        Err(e) => return Ok(Err(Rejection::new("chain", &e))),
    };
    if let (Usage::Server, Some(expected)) = (usage, expected_name)
        && !peer.matches(&expected)
    {
        let mismatch = Error::IdentityMismatch {
            expected,
            found: peer.names(),
        };
        return Ok(Err(Rejection::new("name", &mismatch)));
    }
    Ok(Ok(()))
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

/// `<id> <stage>: <kind>` lines, as [`Rejection::recorded`] writes them.
fn recorded_rejections() -> BTreeMap<&'static str, &'static str> {
    REJECTIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect()
}

fn main() {
    let suite: Suite = serde_json::from_str(SUITE).unwrap();
    assert_eq!(suite.version, 1);
    let listed = divergences();
    let recorded = recorded_rejections();
    let bless = std::env::var_os("MESHID_LIMBO_BLESS").is_some();

    let mut passed = 0;
    let mut skipped = BTreeMap::<&str, usize>::new();
    let mut accepted_failures = BTreeSet::new();
    let mut rejected_successes = BTreeMap::new();
    let mut unrunnable = Vec::new();
    // FAILURE cases: the rejection each one met.
    let mut rejections = BTreeMap::new();
    for case in &suite.testcases {
        if let Some(reason) = skip_reason(case) {
            *skipped.entry(reason).or_default() += 1;
            continue;
        }
        let result = match run(case) {
            Ok(result) => result,
            Err(e) => {
                unrunnable.push(format!("{}: {e}", case.id));
                continue;
            }
        };
        match (case.expected_result.as_str(), result) {
            ("SUCCESS", Ok(())) => passed += 1,
            ("FAILURE", Err(rejection)) => {
                passed += 1;
                rejections.insert(case.id.as_str(), rejection);
            }
            ("FAILURE", Ok(())) => {
                accepted_failures.insert(case.id.as_str());
            }
            ("SUCCESS", Err(rejection)) => {
                rejected_successes.insert(case.id.as_str(), rejection);
            }
            (other, _) => {
                unrunnable.push(format!("{}: unknown expected_result {other:?}", case.id))
            }
        }
    }

    for (reason, n) in &skipped {
        println!("limbo: skipped {n}: {reason}");
    }
    for (id, rejection) in &rejected_successes {
        let note = listed.get(id).map_or("NOT LISTED", |r| r);
        println!(
            "limbo: rejected, expected SUCCESS: {id}: {}: {note}",
            rejection.message
        );
    }
    for id in &accepted_failures {
        let note = listed.get(id).map_or("NOT LISTED", |r| r);
        println!("limbo: accepted, expected FAILURE: {id}: {note}");
    }
    let failed = accepted_failures.len() + rejected_successes.len();
    let total_skipped: usize = skipped.values().sum();
    println!("limbo: {passed} passed, {failed} diverged, {total_skipped} skipped");

    if bless {
        let mut text = String::from(
            "# x509-limbo FAILURE cases and why meshid-verify rejects each: the stage that\n\
             # refused it (bundle, chain or name) and the error's kind. Written by\n\
             # `MESHID_LIMBO_BLESS=1 cargo test -p meshid-verify --test limbo`; tests/limbo.rs\n\
             # fails when a case is rejected for another reason than the one recorded here.\n",
        );
        for (id, rejection) in &rejections {
            writeln!(text, "{id} {}", rejection.recorded()).unwrap();
        }
        std::fs::write(REJECTIONS_PATH, text).unwrap();
        println!(
            "limbo: wrote {} rejections to {REJECTIONS_PATH}",
            rejections.len()
        );
    }

    let mut problems = Vec::new();
    if !unrunnable.is_empty() {
        problems.push(format!("cases that could not be run: {unrunnable:#?}"));
    }
    let skipped_now: Vec<_> = skipped.iter().map(|(r, n)| (*r, *n)).collect();
    if skipped_now != SKIPPED {
        problems.push(format!(
            "skipped cases changed: {skipped_now:#?}, pinned: {SKIPPED:#?}"
        ));
    }
    let unlisted_accepted: Vec<_> = accepted_failures
        .iter()
        .filter(|id| !listed.contains_key(*id))
        .collect();
    if !unlisted_accepted.is_empty() {
        problems.push(format!(
            "accepted cases expected to FAIL, not in testdata/limbo-divergences.txt: \
             {unlisted_accepted:#?}"
        ));
    }
    let unlisted_rejected: Vec<_> = rejected_successes
        .iter()
        .filter(|(id, _)| !listed.contains_key(*id))
        .map(|(id, rejection)| format!("{id}: {}", rejection.message))
        .collect();
    if !unlisted_rejected.is_empty() {
        problems.push(format!(
            "rejected cases expected to SUCCEED, not in testdata/limbo-divergences.txt: \
             {unlisted_rejected:#?}"
        ));
    }
    let stale: Vec<_> = listed
        .keys()
        .filter(|id| !accepted_failures.contains(*id) && !rejected_successes.contains_key(*id))
        .collect();
    if !stale.is_empty() {
        problems.push(format!(
            "testdata/limbo-divergences.txt lists cases that no longer diverge: {stale:#?}"
        ));
    }
    if !bless {
        let mut other_reason = Vec::new();
        for (id, rejection) in &rejections {
            let now = rejection.recorded();
            match recorded.get(id) {
                Some(want) if *want == now => {}
                want => other_reason.push(format!(
                    "{id}: rejected as {now} ({}), recorded: {}",
                    rejection.message,
                    want.unwrap_or(&"nothing")
                )),
            }
        }
        other_reason.extend(
            recorded
                .keys()
                .filter(|id| !rejections.contains_key(*id))
                .map(|id| format!("{id}: recorded, but not a rejected FAILURE case")),
        );
        if !other_reason.is_empty() {
            problems.push(format!(
                "FAILURE cases not rejected for the reason in testdata/limbo-rejections.txt \
                 (after a deliberate change: MESHID_LIMBO_BLESS=1 cargo test -p meshid-verify \
                 --test limbo, then review the diff): {other_reason:#?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
