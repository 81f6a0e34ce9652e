//! SPIFFE mode: which names a certification request may use, and which CSRs each SAN mode
//! accepts, with the exact refusals.

#![allow(clippy::unwrap_used)]

use meshid_policy::{
    CsrContent, IssuancePolicy, KeyAlgorithm, Mesh, PublicKeyKind, San, SanMode, ServiceAccount,
};

const WEB_DNS: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const WEB_SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";

fn policy(mode: SanMode) -> IssuancePolicy {
    let mut policy = IssuancePolicy::default();
    policy.san_mode = mode;
    policy
}

fn web() -> ServiceAccount {
    ServiceAccount::new("emojivoto", "web").unwrap()
}

fn csr(dns: &[&str], uris: &[&str]) -> CsrContent {
    let mut csr = CsrContent::new(PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256));
    csr.common_names.push(WEB_DNS.to_owned());
    csr.dns_names = dns.iter().map(|s| (*s).to_owned()).collect();
    csr.uris = uris.iter().map(|s| (*s).to_owned()).collect();
    csr
}

#[test]
fn each_mode_accepts_the_names_its_leaves_carry() {
    let mesh = Mesh::default();
    for (mode, name) in [
        (SanMode::Dns, WEB_DNS),
        (SanMode::Spiffe, WEB_SPIFFE),
        (SanMode::DnsAndSpiffe, WEB_DNS),
        (SanMode::DnsAndSpiffe, WEB_SPIFFE),
    ] {
        let sa = policy(mode).requested_service_account(&mesh, name).unwrap();
        assert_eq!(sa, web(), "{mode} {name}");
    }
}

#[test]
fn a_name_of_the_other_form_is_refused_naming_the_one_to_request() {
    let mesh = Mesh::default();
    let err = policy(SanMode::Dns)
        .requested_service_account(&mesh, WEB_SPIFFE)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "requested identity {WEB_SPIFFE} is a SPIFFE ID, but this CA issues only identity names (SAN mode dns); request {WEB_DNS}"
        )
    );
    let err = policy(SanMode::Spiffe)
        .requested_service_account(&mesh, WEB_DNS)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "requested identity {WEB_DNS} is an identity name, but this CA issues only SPIFFE IDs (SAN mode spiffe); request {WEB_SPIFFE}"
        )
    );
}

#[test]
fn malformed_spiffe_ids_and_other_trust_domains_are_refused() {
    let mesh = Mesh::default();
    let policy = policy(SanMode::Spiffe);
    let cases = [
        (
            "spiffe://example.org/ns/emojivoto/sa/web",
            "invalid SPIFFE ID 'spiffe://example.org/ns/emojivoto/sa/web': trust domain 'example.org' is not this mesh's trust domain 'cluster.local'",
        ),
        (
            "spiffe://cluster.local/ns/emojivoto/web",
            "invalid SPIFFE ID 'spiffe://cluster.local/ns/emojivoto/web': path must be /ns/<namespace>/sa/<name>",
        ),
        (
            "spiffe://cluster.local/ns/emojivoto/sa/web/extra",
            "invalid SPIFFE ID 'spiffe://cluster.local/ns/emojivoto/sa/web/extra': path must be /ns/<namespace>/sa/<name>",
        ),
        (
            "spiffe://cluster.local",
            "invalid SPIFFE ID 'spiffe://cluster.local': has no path",
        ),
        (
            "spiffe://cluster.local/ns/Emoji/sa/web",
            "invalid SPIFFE ID 'spiffe://cluster.local/ns/Emoji/sa/web': invalid namespace 'Emoji': must consist of lower case alphanumeric characters or '-'",
        ),
        (
            "spiffe://cluster.local/ns/emojivoto/sa/web?x=1",
            "invalid SPIFFE ID 'spiffe://cluster.local/ns/emojivoto/sa/web?x=1': invalid ServiceAccount name 'web?x=1': must consist of lower case alphanumeric characters or '-'",
        ),
    ];
    for (input, want) in cases {
        let err = policy.requested_service_account(&mesh, input).unwrap_err();
        assert_eq!(err.to_string(), want, "{input}");
    }
}

#[test]
fn spiffe_mode_certifies_exactly_one_uri_san_and_no_dns_san() {
    let decision = policy(SanMode::Spiffe)
        .decide(&Mesh::default(), &web(), &csr(&[], &[WEB_SPIFFE]))
        .unwrap();
    assert_eq!(decision.sans, vec![San::Uri(WEB_SPIFFE.to_owned())]);
}

#[test]
fn spiffe_mode_refuses_other_names_in_the_csr() {
    let mesh = Mesh::default();
    let policy = policy(SanMode::Spiffe);
    let cases = [
        (
            csr(&[], &["spiffe://cluster.local/ns/emojivoto/sa/voting"]),
            format!(
                "CSR SPIFFE ID does not match requested identity: csr=spiffe://cluster.local/ns/emojivoto/sa/voting; req={WEB_SPIFFE}"
            ),
        ),
        (
            csr(&[], &["spiffe://example.org/ns/emojivoto/sa/web"]),
            format!(
                "CSR SPIFFE ID does not match requested identity: csr=spiffe://example.org/ns/emojivoto/sa/web; req={WEB_SPIFFE}"
            ),
        ),
        (
            csr(&[WEB_DNS], &[WEB_SPIFFE]),
            "CSR must have 0 DNSName(s) in this SAN mode, found 1".to_owned(),
        ),
        (
            csr(&[], &[]),
            "CSR must have exactly one URI (the SPIFFE ID), found 0".to_owned(),
        ),
        (
            csr(&[], &[WEB_SPIFFE, WEB_SPIFFE]),
            "CSR must have exactly one URI (the SPIFFE ID), found 2".to_owned(),
        ),
    ];
    for (csr, want) in cases {
        let err = policy.decide(&mesh, &web(), &csr).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn dns_and_spiffe_mode_takes_a_linkerd_csr_and_still_issues_both_names() {
    let mesh = Mesh::default();
    let policy = policy(SanMode::DnsAndSpiffe);
    let both = vec![
        San::Dns(WEB_DNS.to_owned()),
        San::Uri(WEB_SPIFFE.to_owned()),
    ];
    for csr in [
        csr(&[WEB_DNS], &[]),
        csr(&[], &[WEB_SPIFFE]),
        csr(&[WEB_DNS], &[WEB_SPIFFE]),
    ] {
        assert_eq!(policy.decide(&mesh, &web(), &csr).unwrap().sans, both);
    }
    let refused = [
        (
            csr(&[], &[]),
            "CSR must have exactly one DNSName".to_owned(),
        ),
        (
            csr(&[WEB_DNS, WEB_DNS], &[]),
            "CSR must have exactly one DNSName".to_owned(),
        ),
        (
            csr(
                &[WEB_DNS],
                &["spiffe://cluster.local/ns/emojivoto/sa/voting"],
            ),
            format!(
                "CSR SPIFFE ID does not match requested identity: csr=spiffe://cluster.local/ns/emojivoto/sa/voting; req={WEB_SPIFFE}"
            ),
        ),
    ];
    for (csr, want) in refused {
        assert_eq!(
            policy.decide(&mesh, &web(), &csr).unwrap_err().to_string(),
            want
        );
    }
}
