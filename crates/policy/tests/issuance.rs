//! The issuance policy: its exact validity windows, every CSR decision with its exact message,
//! and the checks of the policy itself.

#![allow(clippy::unwrap_used)]

use core::time::Duration;

use meshid_policy::{
    CredentialRole, CsrContent, Error, IssuancePolicy, KeyAlgorithm, Mesh, PolicyProblem,
    PublicKeyKind, San, SanMode, ServiceAccount, ValidityBound,
};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const IDENTITY: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";
const ISSUER: CredentialRole = CredentialRole::Issuer { position: 0 };
const ANCHOR: CredentialRole = CredentialRole::TrustAnchor { position: 1 };

fn sa() -> ServiceAccount {
    ServiceAccount::new("emojivoto", "web").unwrap()
}

fn p256() -> PublicKeyKind {
    PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256)
}

/// A CSR naming the identity as Linkerd's proxy asks for it: one DNS SAN, a P-256 key.
fn csr() -> CsrContent {
    let mut csr = CsrContent::new(p256());
    csr.dns_names.push(IDENTITY.to_owned());
    csr
}

fn policy(san_mode: SanMode) -> IssuancePolicy {
    let mut policy = IssuancePolicy::default();
    policy.san_mode = san_mode;
    policy
}

fn bound(
    role: CredentialRole,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> ValidityBound {
    ValidityBound::new(role, not_before, not_after)
}

// === validity windows ===

#[test]
fn the_window_is_the_lifetime_with_the_skew_allowance_on_both_sides() {
    let window = IssuancePolicy::default().validity_window(NOW, &[]).unwrap();
    assert_eq!(window.not_before, datetime!(2026-06-01 11:59:40 UTC));
    assert_eq!(window.not_after, datetime!(2026-06-02 12:00:20 UTC));
    assert_eq!(window.clamped_by, None);

    let mut policy = IssuancePolicy::default();
    policy.lifetime = Duration::from_secs(3600);
    policy.clock_skew = Duration::from_secs(90);
    let window = policy.validity_window(NOW, &[]).unwrap();
    assert_eq!(window.not_before, datetime!(2026-06-01 11:58:30 UTC));
    assert_eq!(window.not_after, datetime!(2026-06-01 13:01:30 UTC));
}

#[test]
fn the_window_ends_at_the_earliest_not_after_of_the_issuer_chain_and_anchors() {
    let policy = IssuancePolicy::default();
    let long = bound(
        ISSUER,
        NOW - Duration::from_secs(3600),
        NOW + Duration::from_secs(7 * 86_400),
    );
    let anchor = bound(
        ANCHOR,
        NOW - Duration::from_secs(3600),
        datetime!(2026-06-01 22:00 UTC),
    );
    let window = policy.validity_window(NOW, &[long, anchor]).unwrap();
    assert_eq!(window.not_after, datetime!(2026-06-01 22:00 UTC));
    assert_eq!(window.not_before, datetime!(2026-06-01 11:59:40 UTC));
    assert_eq!(window.clamped_by, Some(ANCHOR));

    // A bound ending exactly when the leaf would does not shorten it.
    let exact = bound(ISSUER, NOW, datetime!(2026-06-02 12:00:20 UTC));
    let window = policy.validity_window(NOW, &[exact]).unwrap();
    assert_eq!(window.not_after, datetime!(2026-06-02 12:00:20 UTC));
    assert_eq!(window.clamped_by, None);

    // One second earlier does.
    let earlier = bound(ISSUER, NOW, datetime!(2026-06-02 12:00:19 UTC));
    let window = policy.validity_window(NOW, &[earlier]).unwrap();
    assert_eq!(window.not_after, datetime!(2026-06-02 12:00:19 UTC));
    assert_eq!(window.clamped_by, Some(ISSUER));
}

#[test]
fn a_credential_valid_from_now_issues() {
    let window = IssuancePolicy::default()
        .validity_window(
            NOW,
            &[bound(ISSUER, NOW, NOW + Duration::from_secs(86_400))],
        )
        .unwrap();
    assert_eq!(window.clamped_by, Some(ISSUER));
}

#[test]
fn a_credential_expiring_at_now_is_expired() {
    let err = IssuancePolicy::default()
        .validity_window(
            NOW,
            &[bound(ANCHOR, NOW - Duration::from_secs(86_400), NOW)],
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::CredentialExpired {
            role: ANCHOR,
            not_after: NOW,
            now: NOW
        }
    );
    assert_eq!(
        err.to_string(),
        "trust anchor #1 expired at 2026-06-01T12:00:00Z (now 2026-06-01T12:00:00Z); rotate it"
    );
    // A second later it is still good.
    IssuancePolicy::default()
        .validity_window(
            NOW,
            &[bound(
                ANCHOR,
                NOW - Duration::from_secs(86_400),
                NOW + Duration::from_secs(1),
            )],
        )
        .unwrap();
}

#[test]
fn a_credential_not_valid_yet_is_refused() {
    let later = NOW + Duration::from_secs(1);
    let err = IssuancePolicy::default()
        .validity_window(
            NOW,
            &[
                bound(ANCHOR, NOW, NOW + Duration::from_secs(86_400)),
                bound(
                    CredentialRole::Issuer { position: 2 },
                    later,
                    NOW + Duration::from_secs(86_400),
                ),
            ],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate #2 of the issuer chain is not valid until 2026-06-01T12:00:01Z (now \
         2026-06-01T12:00:00Z); check the clocks"
    );
}

#[test]
fn credential_roles_name_themselves() {
    assert_eq!(ISSUER.to_string(), "issuer certificate");
    assert_eq!(
        CredentialRole::Issuer { position: 1 }.to_string(),
        "certificate #1 of the issuer chain"
    );
    assert_eq!(
        CredentialRole::TrustAnchor { position: 0 }.to_string(),
        "trust anchor #0"
    );
}

// === CSR decisions ===

#[test]
fn a_linkerd_csr_is_certified_with_the_identity_as_its_only_san() {
    let decision = IssuancePolicy::default()
        .decide(&Mesh::default(), &sa(), &csr())
        .unwrap();
    assert_eq!(decision.identity.as_str(), IDENTITY);
    assert_eq!(decision.sans, [San::Dns(IDENTITY.to_owned())]);
    assert_eq!(decision.key_algorithm, KeyAlgorithm::EcdsaP256);
}

#[test]
fn the_subject_cn_may_be_the_identity() {
    let mut with_cn = csr();
    with_cn.common_names.push(IDENTITY.to_owned());
    IssuancePolicy::default()
        .decide(&Mesh::default(), &sa(), &with_cn)
        .unwrap();
}

#[test]
fn spiffe_modes_certify_the_spiffe_id_too() {
    let mut both = csr();
    both.uris.push(SPIFFE.to_owned());
    let decision = policy(SanMode::DnsAndSpiffe)
        .decide(&Mesh::default(), &sa(), &both)
        .unwrap();
    assert_eq!(
        decision.sans,
        [San::Dns(IDENTITY.to_owned()), San::Uri(SPIFFE.to_owned())]
    );

    let mut spiffe_only = CsrContent::new(p256());
    spiffe_only.uris.push(SPIFFE.to_owned());
    let decision = policy(SanMode::Spiffe)
        .decide(&Mesh::default(), &sa(), &spiffe_only)
        .unwrap();
    assert_eq!(decision.sans, [San::Uri(SPIFFE.to_owned())]);
    assert_eq!(decision.identity.as_str(), IDENTITY);
}

#[test]
fn a_p384_key_is_certified_only_when_the_policy_allows_it() {
    let mut p384 = csr();
    p384.key = PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384);
    let err = IssuancePolicy::default()
        .decide(&Mesh::default(), &sa(), &p384)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CSR key algorithm ECDSA P-384 is not allowed (allowed: ECDSA P-256)"
    );

    let mut both = IssuancePolicy::default();
    both.key_algorithms = KeyAlgorithm::ALL.to_vec();
    assert!(both.allows(KeyAlgorithm::EcdsaP384));
    assert!(!IssuancePolicy::default().allows(KeyAlgorithm::EcdsaP384));
    let decision = both.decide(&Mesh::default(), &sa(), &p384).unwrap();
    assert_eq!(decision.key_algorithm, KeyAlgorithm::EcdsaP384);
    let mut secp256k1 = csr();
    secp256k1.key = PublicKeyKind::EcdsaOtherCurve("1.3.132.0.10".to_owned());
    assert_eq!(
        both.decide(&Mesh::default(), &sa(), &secp256k1)
            .unwrap_err()
            .to_string(),
        "CSR key algorithm ECDSA on curve 1.3.132.0.10 is not allowed (allowed: ECDSA P-256, \
         ECDSA P-384)"
    );

    let mut p384_only = IssuancePolicy::default();
    p384_only.key_algorithms = vec![KeyAlgorithm::EcdsaP384];
    let err = p384_only
        .decide(&Mesh::default(), &sa(), &csr())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CSR key algorithm ECDSA P-256 is not allowed (allowed: ECDSA P-384)"
    );
}

/// Every refusal, with its exact message: `(what, SAN mode, change to the Linkerd CSR, message)`.
#[test]
fn refused_csrs_say_why() {
    type Change = fn(&mut CsrContent);
    let cases: [(&str, SanMode, Change, &str); 16] = [
        (
            "no DNS SAN",
            SanMode::Dns,
            |c| c.dns_names.clear(),
            "CSR must have exactly one DNSName",
        ),
        (
            "two DNS SANs",
            SanMode::Dns,
            |c| c.dns_names.push(IDENTITY.to_owned()),
            "CSR must have exactly one DNSName",
        ),
        (
            "a DNS SAN in SPIFFE-only mode",
            SanMode::Spiffe,
            |c| c.uris.push(SPIFFE.to_owned()),
            "CSR must have 0 DNSName(s) in this SAN mode, found 1",
        ),
        (
            "another identity",
            SanMode::Dns,
            |c| c.dns_names[0] = IDENTITY.replace("web.", "api."),
            "CSR name does not match requested identity: \
             csr=api.emojivoto.serviceaccount.identity.linkerd.cluster.local; \
             req=web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
        ),
        (
            "another CN",
            SanMode::Dns,
            |c| c.common_names.push("web".to_owned()),
            "invalid CommonName: web",
        ),
        (
            "two CNs",
            SanMode::Dns,
            |c| c.common_names = vec![IDENTITY.to_owned(), IDENTITY.to_owned()],
            "invalid CommonName: web.emojivoto.serviceaccount.identity.linkerd.cluster.local, \
             web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
        ),
        (
            "an email address",
            SanMode::Dns,
            |c| c.email_addresses.push("web@example.com".to_owned()),
            "cannot validate email addresses",
        ),
        (
            "an IP address",
            SanMode::Dns,
            |c| c.ip_addresses.push([10, 0, 0, 1].into()),
            "cannot validate IP addresses",
        ),
        (
            "a URI in DNS mode",
            SanMode::Dns,
            |c| c.uris.push(SPIFFE.to_owned()),
            "cannot validate URIs",
        ),
        (
            "two URIs",
            SanMode::DnsAndSpiffe,
            |c| c.uris = vec![SPIFFE.to_owned(), SPIFFE.to_owned()],
            "CSR must have exactly one URI (the SPIFFE ID), found 2",
        ),
        (
            "another SPIFFE ID",
            SanMode::DnsAndSpiffe,
            |c| {
                c.uris
                    .push("spiffe://cluster.local/ns/emojivoto/sa/api".to_owned())
            },
            "CSR SPIFFE ID does not match requested identity: \
             csr=spiffe://cluster.local/ns/emojivoto/sa/api; \
             req=spiffe://cluster.local/ns/emojivoto/sa/web",
        ),
        (
            "an otherName",
            SanMode::Dns,
            |c| c.other_names.push("otherName".to_owned()),
            "cannot validate otherName names",
        ),
        (
            "an ECDSA key on another curve",
            SanMode::Dns,
            |c| c.key = PublicKeyKind::EcdsaOtherCurve("1.3.132.0.10".to_owned()),
            "CSR key algorithm ECDSA on curve 1.3.132.0.10 is not allowed (allowed: ECDSA P-256)",
        ),
        (
            "an Ed25519 key",
            SanMode::Dns,
            |c| c.key = PublicKeyKind::Ed25519,
            "CSR must contain an ECDSA public key (found Ed25519)",
        ),
        (
            "an RSA key",
            SanMode::Dns,
            |c| c.key = PublicKeyKind::Rsa { bits: 2048 },
            "CSR must contain an ECDSA public key (found RSA-2048)",
        ),
        (
            "another key type",
            SanMode::Dns,
            |c| c.key = PublicKeyKind::Other("1.3.101.113".to_owned()),
            "CSR must contain an ECDSA public key (found key algorithm 1.3.101.113)",
        ),
    ];
    for (what, san_mode, change, message) in cases {
        let mut content = csr();
        change(&mut content);
        let err = policy(san_mode)
            .decide(&Mesh::default(), &sa(), &content)
            .unwrap_err();
        assert_eq!(err.to_string(), message, "{what}");
    }
}

// === the policy itself ===

#[test]
fn the_defaults_are_linkerds() {
    let policy = IssuancePolicy::default();
    assert_eq!(policy.lifetime, Duration::from_secs(86_400));
    assert_eq!(policy.clock_skew, Duration::from_secs(20));
    assert_eq!(policy.max_lifetime, Duration::from_secs(7 * 86_400));
    assert_eq!(policy.san_mode, SanMode::Dns);
    assert_eq!(policy.key_algorithms, [KeyAlgorithm::EcdsaP256]);
    policy.validate().unwrap();
}

#[test]
fn limits_are_inclusive() {
    let mut policy = IssuancePolicy::default();
    policy.lifetime = policy.max_lifetime;
    policy.clock_skew = Duration::from_secs(3600);
    policy.validate().unwrap();
}

#[test]
fn invalid_policies_say_why() {
    type Change = fn(&mut IssuancePolicy);
    let cases: [(Change, PolicyProblem, &str); 4] = [
        (
            |p| p.lifetime = Duration::ZERO,
            PolicyProblem::ZeroLifetime,
            "the issuance lifetime must be greater than zero",
        ),
        (
            |p| p.lifetime = p.max_lifetime + Duration::from_secs(1),
            PolicyProblem::LifetimeOverMax {
                lifetime: Duration::from_secs(168 * 3600 + 1),
                max: Duration::from_secs(168 * 3600),
            },
            "the issuance lifetime 168h0m1s is longer than the maximum lifetime 168h0m0s",
        ),
        (
            |p| p.clock_skew = Duration::from_secs(3601),
            PolicyProblem::ClockSkewOverMax {
                clock_skew: Duration::from_secs(3601),
                max: Duration::from_secs(3600),
            },
            "the clock-skew allowance 1h0m1s is longer than the maximum of 1h0m0s",
        ),
        (
            |p| p.key_algorithms.clear(),
            PolicyProblem::NoKeyAlgorithms,
            "at least one key algorithm must be allowed",
        ),
    ];
    for (change, problem, reason) in cases {
        let mut policy = IssuancePolicy::default();
        change(&mut policy);
        let err = policy.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid issuance policy: {reason}")
        );
        assert_eq!(err, Error::InvalidPolicy { problem });
    }
}
