//! The shared vocabulary: DNS-1123 limits, identity names and SPIFFE IDs of a mesh, SAN modes,
//! key algorithms and Go durations, each at its boundaries and with its exact messages.

#![allow(clippy::unwrap_used)]

use core::time::Duration;

use meshid_policy::{
    Error, GoDuration, IdentityProblem, KeyAlgorithm, MAX_GO_DURATION, Mesh, Namespace,
    PublicKeyKind, San, SanMode, ServiceAccount, SpiffeIdProblem, TrustDomain, format_go_duration,
    is_dns1123_label, is_dns1123_subdomain, parse_go_duration, rfc3339,
};
use time::macros::datetime;

/// `n` characters of a valid label (`a`s).
fn label(n: usize) -> String {
    "a".repeat(n)
}

/// A valid subdomain of exactly `n` characters: 63-character labels, then the rest.
fn subdomain(n: usize) -> String {
    let mut name = String::new();
    while name.len() + 64 < n {
        name.push_str(&label(63));
        name.push('.');
    }
    name.push_str(&label(n - name.len()));
    assert_eq!(name.len(), n);
    name
}

// === DNS-1123 ===

#[test]
fn labels_are_at_most_63_characters() {
    assert!(is_dns1123_label(&label(63)));
    assert!(!is_dns1123_label(&label(64)));
    assert!(is_dns1123_label("emojivoto"));
    assert!(is_dns1123_label("a-1"));
    for bad in ["", "-a", "a-", "A", "a.b", "a_b"] {
        assert!(!is_dns1123_label(bad), "{bad:?}");
    }
}

#[test]
fn subdomains_are_at_most_253_characters() {
    assert!(is_dns1123_subdomain(&subdomain(253)));
    assert!(!is_dns1123_subdomain(&subdomain(254)));
    assert!(is_dns1123_subdomain("web.v2"));
    for bad in ["", ".a", "a.", "a..b", "A.b", &format!("{}.b", label(64))] {
        assert!(!is_dns1123_subdomain(bad), "{bad:?}");
    }
    assert_eq!(
        ServiceAccount::new("ns", &subdomain(254))
            .unwrap_err()
            .to_string(),
        format!(
            "invalid ServiceAccount name '{}': must be at most 253 characters",
            subdomain(254)
        )
    );
}

#[test]
fn trust_domains_parse_and_display() {
    let td: TrustDomain = "example.org".parse().unwrap();
    assert_eq!(td.as_str(), "example.org");
    assert_eq!(td.to_string(), "example.org");
    assert_eq!(TrustDomain::default().as_str(), "cluster.local");
    assert_eq!(
        "Example.org"
            .parse::<TrustDomain>()
            .unwrap_err()
            .to_string(),
        "invalid trust domain 'Example.org': must consist of lower case alphanumeric \
         characters or '-'"
    );
}

#[test]
fn namespaces_parse_and_display() {
    let ns: Namespace = "linkerd".parse().unwrap();
    assert_eq!(ns.to_string(), "linkerd");
    assert!("a.b".parse::<Namespace>().is_err());
}

#[test]
fn service_accounts_display_as_namespace_slash_name() {
    let sa = ServiceAccount::new("emojivoto", "web.v2").unwrap();
    assert_eq!(sa.to_string(), "emojivoto/web.v2");
    for (username, reason) in [
        (
            "system:user:emojivoto:web",
            "must start with 'system:serviceaccount:'",
        ),
        (
            "system:serviceaccount:emojivoto",
            "must have the form system:serviceaccount:<namespace>:<name>",
        ),
    ] {
        assert_eq!(
            ServiceAccount::from_username(username)
                .unwrap_err()
                .to_string(),
            format!("invalid ServiceAccount username '{username}': {reason}")
        );
    }
}

// === a mesh's names ===

fn mesh(trust_domain: &str) -> Mesh {
    Mesh::new(
        TrustDomain::new(trust_domain).unwrap(),
        Namespace::new("linkerd").unwrap(),
    )
}

#[test]
fn a_mesh_knows_its_trust_domain_and_control_plane() {
    let mesh = mesh("example.org");
    assert_eq!(mesh.trust_domain().as_str(), "example.org");
    assert_eq!(mesh.control_plane_namespace().as_str(), "linkerd");
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let id = mesh.identity(&sa).unwrap();
    assert_eq!(
        id.as_ref(),
        "web.emojivoto.serviceaccount.identity.linkerd.example.org"
    );
    assert_eq!(
        id.to_string(),
        "web.emojivoto.serviceaccount.identity.linkerd.example.org"
    );
    let spiffe = mesh.spiffe_id(&sa);
    assert_eq!(spiffe.as_ref(), "spiffe://example.org/ns/emojivoto/sa/web");
    assert_eq!(
        spiffe.to_string(),
        "spiffe://example.org/ns/emojivoto/sa/web"
    );
}

#[test]
fn identity_names_are_at_most_253_characters() {
    // `.emojivoto.serviceaccount.identity.linkerd.cluster.local` is 56 characters.
    let mesh = Mesh::default();
    let fits = ServiceAccount::new("emojivoto", &subdomain(253 - 56)).unwrap();
    let id = mesh.identity(&fits).unwrap();
    assert_eq!(id.as_str().len(), 253);
    assert_eq!(mesh.parse_identity(id.as_str()).unwrap(), fits);

    let too_long = ServiceAccount::new("emojivoto", &subdomain(254 - 56)).unwrap();
    let err = mesh.identity(&too_long).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "' is longer than 253 characters; use a shorter ServiceAccount, namespace or trust \
             domain"
        ),
        "{err}"
    );
    let name = format!(
        "{}.emojivoto.serviceaccount.identity.linkerd.cluster.local",
        subdomain(198)
    );
    assert_eq!(name.len(), 254);
    let err = mesh.parse_identity(&name).unwrap_err();
    assert!(matches!(
        &err,
        Error::InvalidIdentity { problem: IdentityProblem::TooLong, input } if *input == name
    ));
    assert_eq!(
        err.to_string(),
        format!("invalid identity '{name}': longer than 253 characters")
    );
}

#[test]
fn identity_names_of_another_mesh_are_refused() {
    let err = Mesh::default()
        .parse_identity("web.emojivoto.serviceaccount.identity.linkerd.example.org")
        .unwrap_err();
    assert!(matches!(
        &err,
        Error::InvalidIdentity { problem: IdentityProblem::WrongSuffix { suffix }, .. }
            if suffix == ".serviceaccount.identity.linkerd.cluster.local"
    ));
    assert_eq!(
        err.to_string(),
        "invalid identity 'web.emojivoto.serviceaccount.identity.linkerd.example.org': does \
         not end with '.serviceaccount.identity.linkerd.cluster.local' (the identity suffix of \
         this mesh)"
    );
}

#[test]
fn spiffe_ids_of_another_trust_domain_or_shape_are_refused() {
    let mesh = Mesh::default();
    for (id, problem, reason) in [
        (
            "https://cluster.local/ns/a/sa/b",
            SpiffeIdProblem::Scheme,
            "must start with 'spiffe://'",
        ),
        (
            "spiffe://cluster.local",
            SpiffeIdProblem::NoPath,
            "has no path",
        ),
        (
            "spiffe://example.org/ns/a/sa/b",
            SpiffeIdProblem::ForeignTrustDomain {
                found: "example.org".to_owned(),
                expected: "cluster.local".to_owned(),
            },
            "trust domain 'example.org' is not this mesh's trust domain 'cluster.local'",
        ),
        (
            "spiffe://cluster.local/ns/a/sa/b/c",
            SpiffeIdProblem::Path,
            "path must be /ns/<namespace>/sa/<name>",
        ),
    ] {
        let err = mesh.parse_spiffe_id(id).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid SPIFFE ID '{id}': {reason}")
        );
        assert_eq!(
            err,
            Error::InvalidSpiffeId {
                input: id.to_owned(),
                problem
            }
        );
    }
}

#[test]
fn identity_and_spiffe_id_keep_the_service_account_error() {
    let mesh = Mesh::default();
    let err = mesh
        .parse_identity("web.Emoji.serviceaccount.identity.linkerd.cluster.local")
        .unwrap_err();
    let Error::InvalidIdentity {
        problem: IdentityProblem::ServiceAccount(inner),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(matches!(**inner, Error::InvalidNamespace { .. }));
    assert_eq!(
        err.to_string(),
        "invalid identity 'web.Emoji.serviceaccount.identity.linkerd.cluster.local': invalid \
         namespace 'Emoji': must consist of lower case alphanumeric characters or '-'"
    );
    assert!(core::error::Error::source(&err).is_some());

    let err = mesh.parse_identity("web.serviceaccount.identity.linkerd.cluster.local");
    assert!(matches!(
        err,
        Err(Error::InvalidIdentity {
            problem: IdentityProblem::Form,
            ..
        })
    ));

    let err = mesh
        .parse_spiffe_id("spiffe://cluster.local/ns/emojivoto/sa/web?x=1")
        .unwrap_err();
    let Error::InvalidSpiffeId {
        problem: SpiffeIdProblem::ServiceAccount(inner),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(matches!(**inner, Error::InvalidServiceAccount { .. }));
    assert_eq!(
        err.to_string(),
        "invalid SPIFFE ID 'spiffe://cluster.local/ns/emojivoto/sa/web?x=1': invalid \
         ServiceAccount name 'web?x=1': must consist of lower case alphanumeric characters or '-'"
    );
}

#[test]
fn each_san_mode_names_its_sans() {
    let mesh = Mesh::default();
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let dns = San::Dns("web.emojivoto.serviceaccount.identity.linkerd.cluster.local".to_owned());
    let uri = San::Uri("spiffe://cluster.local/ns/emojivoto/sa/web".to_owned());
    assert_eq!(mesh.sans(&sa, SanMode::Dns).unwrap(), vec![dns.clone()]);
    assert_eq!(
        mesh.sans(&sa, SanMode::DnsAndSpiffe).unwrap(),
        [dns.clone(), uri.clone()]
    );
    assert_eq!(mesh.sans(&sa, SanMode::Spiffe).unwrap(), vec![uri.clone()]);
    assert_eq!(
        dns.as_str(),
        "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    );
    assert_eq!(uri.as_str(), "spiffe://cluster.local/ns/emojivoto/sa/web");
    assert_eq!(
        dns.to_string(),
        "DNS:web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    );
    assert_eq!(
        uri.to_string(),
        "URI:spiffe://cluster.local/ns/emojivoto/sa/web"
    );
}

#[test]
fn san_modes_parse_and_display() {
    let modes = [
        ("dns", SanMode::Dns, true, false),
        ("dns+spiffe", SanMode::DnsAndSpiffe, true, true),
        ("spiffe", SanMode::Spiffe, false, true),
    ];
    for (text, mode, dns, spiffe) in modes {
        assert_eq!(text.parse::<SanMode>().unwrap(), mode);
        assert_eq!(mode.to_string(), text);
        assert_eq!(mode.has_dns(), dns, "{text}");
        assert_eq!(mode.has_spiffe(), spiffe, "{text}");
    }
    assert_eq!(
        "dns-and-spiffe".parse::<SanMode>().unwrap(),
        SanMode::DnsAndSpiffe
    );
    assert_eq!(
        "uri".parse::<SanMode>().unwrap_err().to_string(),
        "unknown SAN mode 'uri' (expected dns, dns+spiffe or spiffe)"
    );
}

// === keys ===

#[test]
fn key_algorithms_parse_and_display() {
    for text in ["p256", "P-256", "ecdsa-p256", "ECDSA P-256"] {
        assert_eq!(
            text.parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EcdsaP256
        );
    }
    for text in ["p384", "P-384", "ecdsa-p384", "ecdsa p-384"] {
        assert_eq!(
            text.parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EcdsaP384
        );
    }
    assert_eq!(
        "ed25519".parse::<KeyAlgorithm>().unwrap_err().to_string(),
        "unknown key algorithm 'ed25519' (expected p256 or p384)"
    );
    assert_eq!(KeyAlgorithm::EcdsaP256.to_string(), "ECDSA P-256");
    assert_eq!(KeyAlgorithm::EcdsaP384.to_string(), "ECDSA P-384");
}

#[test]
fn public_keys_know_their_algorithm() {
    let cases = [
        (
            PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384),
            Some(KeyAlgorithm::EcdsaP384),
            true,
            "ECDSA P-384",
        ),
        (
            PublicKeyKind::EcdsaOtherCurve("1.3.132.0.10".to_owned()),
            None,
            true,
            "ECDSA on curve 1.3.132.0.10",
        ),
        (PublicKeyKind::Ed25519, None, false, "Ed25519"),
        (PublicKeyKind::Rsa { bits: 3072 }, None, false, "RSA-3072"),
        (
            PublicKeyKind::Other("1.3.101.113".to_owned()),
            None,
            false,
            "key algorithm 1.3.101.113",
        ),
    ];
    for (key, algorithm, ecdsa, text) in cases {
        assert_eq!(key.algorithm(), algorithm, "{key}");
        assert_eq!(key.is_ecdsa(), ecdsa, "{key}");
        assert_eq!(key.to_string(), text);
    }
    assert_eq!(
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256).algorithm(),
        Some(KeyAlgorithm::EcdsaP256)
    );
}

// === durations and times ===

#[test]
fn durations_switch_units_exactly_at_each_boundary() {
    let cases = [
        (Duration::from_nanos(999), "999ns"),
        (Duration::from_nanos(1_000), "1µs"),
        (Duration::from_nanos(999_999), "999.999µs"),
        (Duration::from_millis(1), "1ms"),
        (Duration::from_nanos(999_999_999), "999.999999ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_secs(59), "59s"),
        (Duration::from_secs(60), "1m0s"),
        (Duration::from_secs(3599), "59m59s"),
        (Duration::from_secs(3600), "1h0m0s"),
    ];
    for (d, text) in cases {
        assert_eq!(format_go_duration(d), text);
        assert_eq!(parse_go_duration(text).unwrap(), d, "{text}");
    }
}

#[test]
fn the_largest_duration_parses_in_any_unit_and_one_more_nanosecond_does_not() {
    assert_eq!(
        parse_go_duration("9223372036854775807ns").unwrap(),
        MAX_GO_DURATION
    );
    for text in ["9223372036854775808ns", &format!("{}h", "9".repeat(45))] {
        assert_eq!(
            parse_go_duration(text).unwrap_err().to_string(),
            format!(
                "invalid duration '{text}': overflows the largest duration \
                 (2562047h47m16.854775807s)"
            )
        );
    }
}

#[test]
fn go_durations_parse_display_and_convert() {
    let d: GoDuration = "1h30m".parse().unwrap();
    assert_eq!(d, GoDuration(Duration::from_secs(5400)));
    assert_eq!(d.to_string(), "1h30m0s");
    assert_eq!(Duration::from(d), Duration::from_secs(5400));
    assert!("1d".parse::<GoDuration>().is_err());
}

#[test]
fn times_are_shown_as_rfc3339() {
    assert_eq!(
        rfc3339(datetime!(2026-06-01 12:00:20 UTC)),
        "2026-06-01T12:00:20Z"
    );
    assert_eq!(
        rfc3339(datetime!(2026-06-01 12:00:20.5 +2)),
        "2026-06-01T12:00:20.5+02:00"
    );
}
