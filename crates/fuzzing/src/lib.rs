//! Fuzz entry points for meshid: one per parser, each asserting round trips and invariants,
//! not only the absence of panics.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` call these functions, and the workspace's
//! `tests/fuzz_corpus.rs` replays the committed corpora through them as an ordinary test (each
//! input's recorded verdict checked), so the corpora cannot rot on a stable toolchain. Every
//! function accepts any input: it panics only when an invariant of the library breaks, and the
//! panic message names the invariant.
//!
//! Not published: a test and fuzzing harness, kept out of the `meshid` facade.
//!
//! # Example
//!
//! ```
//! // Any bytes are fine: garbage is refused with a message, never a panic.
//! meshid_fuzzing::duration(b"1h30m");
//! meshid_fuzzing::duration(b"\xff not a duration");
//! meshid_fuzzing::csr(b"not DER");
//! meshid_fuzzing::pem_bundle(b"-----BEGIN CERTIFICATE-----\nAAAA\n");
//!
//! // A chain input is length-prefixed DER blobs; encoding and decoding round-trip.
//! let blobs: [&[u8]; 2] = [&[0x30, 0x00], &[0x30, 0x03, 1, 2, 3]];
//! let encoded = meshid_fuzzing::encode_chain(&blobs).expect("two short blobs");
//! assert_eq!(meshid_fuzzing::decode_chain(&encoded), Some(blobs.to_vec()));
//! meshid_fuzzing::chain(&encoded); // not certificates: refused, no panic
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use std::collections::HashSet;
use std::sync::LazyLock;

use meshid_csr::{CsrLimits, ParsedCsr};
use meshid_kube::KubeApiConfig;
use meshid_kube::kube::config::Kubeconfig;
use meshid_policy::{
    Error as PolicyError, IssuancePolicy, MAX_GO_DURATION, Mesh, SanMode, ServiceAccount,
    format_go_duration, parse_go_duration,
};
use meshid_verify::{TrustBundle, Usage, VerifyOptions, verify_chain};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use time::macros::datetime;

/// The verification time of [`chain`]: 2026-06-01 00:00 UTC.
///
/// Fixed, so the seed chains (certificates valid from 2020 to 2099, and a leaf the CA issued at
/// this time) verify on any day.
pub const CHAIN_NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

/// The most DER blobs [`chain`] reads from one input (the anchor, the leaf and intermediates).
pub const MAX_CHAIN_BLOBS: usize = 8;

/// The ServiceAccount [`csr`] certifies for: `emojivoto/web`.
static SERVICE_ACCOUNT: LazyLock<ServiceAccount> = LazyLock::new(|| {
    #[allow(clippy::expect_used, reason = "a constant, valid ServiceAccount name")]
    ServiceAccount::new("emojivoto", "web").expect("emojivoto/web is a valid ServiceAccount")
});

// === csr ===

/// Parses `data` as a DER CSR under the default limits and, when it parses and its signature
/// verifies, runs the default issuance policy for `emojivoto/web` in the default mesh.
///
/// Invariants: error messages are non-empty; an accepted CSR names exactly the identity as its
/// only DNS SAN, has no CN or the identity as CN, has a certifiable key of the decided
/// algorithm, and the decision's SANs are the mesh's SANs for the ServiceAccount; the parsed
/// CSR is a function of the input (parsing twice gives equal results).
pub fn csr(data: &[u8]) {
    let limits = CsrLimits::default();
    let parsed = match ParsedCsr::from_der(data, &limits) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "empty CSR parse error message: {e:?}"
            );
            return;
        }
    };
    assert!(
        ParsedCsr::from_der(data, &limits).as_ref() == Ok(&parsed),
        "parsing the same CSR twice gave different results"
    );
    assert!(
        !parsed.spki_der().is_empty(),
        "a parsed CSR has an empty SubjectPublicKeyInfo"
    );

    let mesh = Mesh::default();
    let sa = &*SERVICE_ACCOUNT;
    let content = parsed.content();
    let decision = match IssuancePolicy::default().decide(&mesh, sa, content) {
        Ok(decision) => decision,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "empty policy error message: {e:?}"
            );
            return;
        }
    };
    let Ok(identity) = mesh.identity(sa) else {
        panic!("emojivoto/web has no identity in the default mesh");
    };
    let Ok(sans) = mesh.sans(sa, SanMode::Dns) else {
        panic!("emojivoto/web has no SANs in the default mesh");
    };
    assert_eq!(
        decision.identity, identity,
        "the decision names another identity"
    );
    assert_eq!(
        decision.sans, sans,
        "the decision's SANs are not the mesh's SANs"
    );
    assert_eq!(
        content.dns_names,
        [identity.as_str()],
        "an accepted CSR must name exactly the identity as DNS SAN"
    );
    assert!(
        content.common_names.is_empty() || content.common_names == [identity.as_str()],
        "an accepted CSR has a foreign CN: {:?}",
        content.common_names
    );
    assert!(
        content.uris.is_empty()
            && content.ip_addresses.is_empty()
            && content.email_addresses.is_empty()
            && content.other_names.is_empty(),
        "an accepted CSR asks for extra names: {content:?}"
    );
    match parsed.certifiable_key() {
        Some(key) => assert_eq!(
            key.algorithm(),
            decision.key_algorithm,
            "the certifiable key is not of the decided algorithm"
        ),
        None => panic!("an accepted CSR has no certifiable key: {:?}", content.key),
    }
}

// === chain ===

/// Reads a small container from `data` and verifies the chain it holds at [`CHAIN_NOW`] for
/// [`Usage::Either`] under [`VerifyOptions::default`].
///
/// The container: one byte `n` (the number of DER blobs, at least 2 and at most
/// [`MAX_CHAIN_BLOBS`]), then `n` blobs, each a 2-byte big-endian length and that many bytes:
/// the trust anchor, the leaf, then the intermediates the peer sent. Bytes after the last blob
/// are ignored. [`encode_chain`] writes this container.
///
/// Invariants: error messages are non-empty; a verified path starts with the leaf, ends with
/// the anchor, passes only through the intermediates given, and the leaf is valid at
/// [`CHAIN_NOW`] with an allowed key.
pub fn chain(data: &[u8]) {
    let Some(blobs) = decode_chain(data) else {
        return;
    };
    let [anchor, leaf, intermediates @ ..] = blobs.as_slice() else {
        return;
    };
    let bundle = match TrustBundle::from_der(vec![CertificateDer::from(anchor.to_vec())]) {
        Ok(bundle) => bundle,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "empty bundle error message: {e:?}"
            );
            return;
        }
    };
    let leaf_der = CertificateDer::from(*leaf);
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(*der))
        .collect();
    let options = VerifyOptions::default();
    let peer = match verify_chain(
        &bundle,
        &leaf_der,
        &intermediates,
        CHAIN_NOW,
        Usage::Either,
        &options,
    ) {
        Ok(peer) => peer,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "empty verification error message: {e:?}"
            );
            return;
        }
    };
    let path = peer.chain();
    assert!(
        path.len() >= 2,
        "a verified path is shorter than leaf + anchor"
    );
    assert_eq!(
        path[0].as_ref(),
        *leaf,
        "the verified path does not start with the leaf"
    );
    assert_eq!(
        peer.anchor_index(),
        0,
        "the path ends in an anchor the bundle does not have"
    );
    assert_eq!(
        path[path.len() - 1].as_ref(),
        *anchor,
        "the verified path does not end with the anchor"
    );
    for der in &path[1..path.len() - 1] {
        assert!(
            intermediates.contains(der),
            "the verified path passes through a certificate the peer did not send"
        );
    }
    assert!(
        peer.not_before() <= CHAIN_NOW && CHAIN_NOW <= peer.not_after(),
        "a verified leaf is not valid now: {} .. {}",
        peer.not_before(),
        peer.not_after()
    );
    assert!(
        peer.key().algorithm().is_some_and(|alg| {
            options
                .key_algorithms
                .as_ref()
                .is_some_and(|allowed| allowed.contains(&alg))
        }),
        "a verified leaf has a key outside the options: {:?}",
        peer.key()
    );
}

/// Writes the container [`chain`] reads: the number of blobs, then each blob with a 2-byte
/// big-endian length. Returns `None` when there are more than 255 blobs or a blob is longer
/// than 65535 bytes.
pub fn encode_chain(blobs: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = vec![u8::try_from(blobs.len()).ok()?];
    for blob in blobs {
        out.extend_from_slice(&u16::try_from(blob.len()).ok()?.to_be_bytes());
        out.extend_from_slice(blob);
    }
    Some(out)
}

/// Splits the container of [`chain`] into its blobs (bytes after the last blob are ignored);
/// `None` when it is short or holds fewer than 2 or more than [`MAX_CHAIN_BLOBS`] blobs.
pub fn decode_chain(data: &[u8]) -> Option<Vec<&[u8]>> {
    let (&count, mut rest) = data.split_first()?;
    let count = usize::from(count);
    if !(2..=MAX_CHAIN_BLOBS).contains(&count) {
        return None;
    }
    let mut blobs = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, after) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (blob, after) = after.split_at_checked(len)?;
        blobs.push(blob);
        rest = after;
    }
    Some(blobs)
}

// === pem_bundle ===

/// Parses `data` as a PEM trust bundle.
///
/// Invariants: error messages are non-empty; a parsed bundle has at least one anchor and no
/// duplicates; [`TrustBundle::to_pem`] parses back to an equal bundle with the same anchors in
/// the same order; the set operations agree with equality (`b ∪ b = b`, `b ∖ b = ∅`).
pub fn pem_bundle(data: &[u8]) {
    let bundle = match TrustBundle::from_pem(data) {
        Ok(bundle) => bundle,
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "empty bundle error message: {e:?}"
            );
            return;
        }
    };
    assert!(!bundle.is_empty(), "a parsed bundle is empty");
    assert_eq!(
        bundle.trust_anchors().len(),
        bundle.len(),
        "anchors and webpki trust anchors differ in number"
    );
    let ders: Vec<&[u8]> = bundle.anchors().map(|a| a.der().as_ref()).collect();
    let unique: HashSet<&[u8]> = ders.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ders.len(),
        "a parsed bundle holds duplicate anchors"
    );
    for (index, der) in ders.iter().enumerate() {
        assert_eq!(
            bundle.position(der),
            Some(index),
            "an anchor is not at its own position"
        );
    }

    let pem = bundle.to_pem();
    let reparsed = match TrustBundle::from_pem(pem.as_bytes()) {
        Ok(reparsed) => reparsed,
        Err(e) => panic!("the PEM of a parsed bundle does not parse: {e}\n{pem}"),
    };
    assert_eq!(
        reparsed, bundle,
        "the bundle does not survive a PEM round trip"
    );
    assert!(
        reparsed
            .anchors()
            .map(|a| a.der().as_ref())
            .eq(ders.iter().copied()),
        "a PEM round trip reorders the anchors"
    );
    assert_eq!(reparsed.to_pem(), pem, "PEM encoding is not stable");
    assert_eq!(bundle.union(&bundle), bundle, "b ∪ b != b");
    assert!(bundle.difference(&bundle).is_empty(), "b ∖ b is not empty");
}

// === duration ===

/// Parses `data` as a Go duration (skipped when it is not UTF-8), and formats the first 8 bytes
/// of `data`, read as big-endian nanoseconds up to `i64::MAX`, as a Go duration.
///
/// Invariants: error messages are non-empty and name the input; a parsed duration is at most
/// [`MAX_GO_DURATION`] and survives a format/parse round trip; every duration up to
/// [`MAX_GO_DURATION`] survives a format/parse round trip.
pub fn duration(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_go_duration(text) {
            Ok(d) => {
                assert!(
                    d <= MAX_GO_DURATION,
                    "{text:?} parsed beyond the largest duration: {d:?}"
                );
                assert_round_trip(d);
            }
            Err(e) => {
                assert!(
                    !e.to_string().is_empty(),
                    "empty duration error message: {e:?}"
                );
                assert!(
                    matches!(&e, PolicyError::InvalidDuration { input, .. } if input == text),
                    "a duration error does not name its input: {e:?}"
                );
            }
        }
    }
    if let Some(bytes) = data.first_chunk::<8>() {
        // Clearing the top bit keeps the value at most i64::MAX nanoseconds.
        let nanos = u64::from_be_bytes(*bytes) & (u64::MAX >> 1);
        assert_round_trip(core::time::Duration::from_nanos(nanos));
    }
}

/// Asserts `parse_go_duration(&format_go_duration(d)) == Ok(d)`.
fn assert_round_trip(d: core::time::Duration) {
    let text = format_go_duration(d);
    assert_eq!(
        parse_go_duration(&text),
        Ok(d),
        "{d:?} formatted as {text:?} does not parse back"
    );
}

// === kubeconfig ===

/// Reads `data` as a kubeconfig with kube's parser (skipped when it is not UTF-8), then applies
/// meshid's checks ([`KubeApiConfig::check_kubeconfig`]) for its current context and for a
/// context named `dev`. Nothing is read from disk.
///
/// Invariants: neither panics; a kubeconfig kube cannot parse is refused in one line; a
/// refusal has a message on one line that quotes no token, password or key of the input; an
/// accepted context names a cluster with an `https://` server.
pub fn kubeconfig(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kubeconfig) = Kubeconfig::from_yaml(text) else {
        let refused = KubeApiConfig::from_kubeconfig_str(text, None)
            .err()
            .map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|m| m.starts_with("invalid kubeconfig: not a kubeconfig: ")
                    && m.lines().count() == 1),
            "a kubeconfig kube cannot parse was not refused in one line: {refused:?}"
        );
        return;
    };
    use secrecy::ExposeSecret as _;
    // Secrets long enough not to turn up in a message by chance.
    let secrets: Vec<String> = kubeconfig
        .auth_infos
        .iter()
        .filter_map(|user| user.auth_info.as_ref())
        .flat_map(|auth| {
            [
                auth.token.as_ref().map(|t| t.expose_secret().to_owned()),
                auth.password.as_ref().map(|p| p.expose_secret().to_owned()),
                auth.client_key_data
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned()),
            ]
        })
        .flatten()
        .filter(|secret| secret.trim().len() >= 12)
        .collect();
    for context in [None, Some("dev")] {
        match KubeApiConfig::check_kubeconfig(&kubeconfig, context, "kubeconfig") {
            Ok(name) => {
                let server = kubeconfig
                    .contexts
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.context.as_ref())
                    .and_then(|c| kubeconfig.clusters.iter().find(|n| n.name == c.cluster))
                    .and_then(|n| n.cluster.as_ref())
                    .and_then(|c| c.server.as_deref());
                assert!(
                    server.is_some_and(|s| s.starts_with("https://")),
                    "an accepted context has a server other than https: {server:?}"
                );
            }
            Err(e) => {
                let message = e.to_string();
                assert!(!message.is_empty(), "empty kubeconfig error: {e:?}");
                assert_eq!(
                    message.lines().count(),
                    1,
                    "a kubeconfig error of several lines: {message}"
                );
                for secret in &secrets {
                    assert!(
                        !message.contains(secret.as_str()),
                        "a kubeconfig error quotes a secret: {message}"
                    );
                }
            }
        }
    }
}
