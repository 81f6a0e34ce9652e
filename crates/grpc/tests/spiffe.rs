//! SPIFFE identities over Linkerd's Certify: a SPIFFE-mode CA certifies a client that asks for
//! its SPIFFE ID with a SPIFFE CSR, and refuses other SPIFFE IDs, malformed ones, other trust
//! domains and names of the form its SAN mode does not issue, with the exact code and message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode};
use support::*;
use tonic::Code;
use x509_parser::extensions::GeneralName;

const WEB_SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";
const EMOJI_SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/emoji";

fn policy(mode: SanMode) -> IssuancePolicy {
    let mut policy = IssuancePolicy::default();
    policy.san_mode = mode;
    policy
}

fn request(identity: &str, token: &[u8], csr: Vec<u8>) -> CertifyRequest {
    CertifyRequest {
        identity: identity.to_owned(),
        token: token.to_vec(),
        certificate_signing_request: csr,
    }
}

/// web's CSR in `mode`: `CN=<identity name>` and exactly the SANs of that mode.
fn web_csr_in(mode: SanMode) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let params = CsrParams::for_service_account(&Mesh::default(), &web(), mode).unwrap();
    let csr = Csr::build(&key, &params).unwrap().into_der();
    (key, csr)
}

fn leaf_names(der: &[u8]) -> Vec<String> {
    let (_, leaf) = x509_parser::parse_x509_certificate(der).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => format!("DNS:{dns}"),
            GeneralName::URI(uri) => format!("URI:{uri}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_spiffe_mode_ca_certifies_a_spiffe_id_with_exactly_one_uri_san() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready_with(policy(SanMode::Spiffe)), None).await;
    let mut client = IdentityClient::connect(server.http_uri()).await.unwrap();
    let (_, csr) = web_csr_in(SanMode::Spiffe);
    let rsp = client
        .certify(request(WEB_SPIFFE, WEB_TOKEN, csr))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        leaf_names(&rsp.leaf_certificate),
        [format!("URI:{WEB_SPIFFE}")]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_dns_and_spiffe_ca_gives_a_linkerd_proxy_both_names() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready_with(policy(SanMode::DnsAndSpiffe)), None).await;
    let mut client = IdentityClient::connect(server.http_uri()).await.unwrap();
    // What Linkerd's proxy sends: its identity name, a CSR naming only that.
    let (_, linkerd_csr) = web_csr_in(SanMode::Dns);
    // What a SPIFFE-aware client sends: its SPIFFE ID, a CSR naming both.
    let (_, spiffe_csr) = web_csr_in(SanMode::DnsAndSpiffe);
    for (identity, csr) in [(WEB_ID, linkerd_csr), (WEB_SPIFFE, spiffe_csr)] {
        let rsp = client
            .certify(request(identity, WEB_TOKEN, csr))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            leaf_names(&rsp.leaf_certificate),
            [format!("DNS:{WEB_ID}"), format!("URI:{WEB_SPIFFE}")],
            "{identity}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_spiffe_requests_are_refused_with_their_code_and_message() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready_with(policy(SanMode::Spiffe)), None).await;
    let mut client = IdentityClient::connect(server.http_uri()).await.unwrap();
    let (key, spiffe_csr) = web_csr_in(SanMode::Spiffe);
    let cases = [
        (
            "a CSR asking for another SPIFFE ID",
            request(
                WEB_SPIFFE,
                WEB_TOKEN,
                custom_csr(&key, Some(WEB_ID), vec![uri(EMOJI_SPIFFE)]),
            ),
            Code::FailedPrecondition,
            format!(
                "CSR SPIFFE ID does not match requested identity: csr={EMOJI_SPIFFE}; req={WEB_SPIFFE}"
            ),
        ),
        (
            "a malformed SPIFFE ID",
            request(
                "spiffe://cluster.local/emojivoto/web",
                WEB_TOKEN,
                spiffe_csr.clone(),
            ),
            Code::InvalidArgument,
            "invalid SPIFFE ID 'spiffe://cluster.local/emojivoto/web': path must be /ns/<namespace>/sa/<name>"
                .to_owned(),
        ),
        (
            "another trust domain",
            request(
                "spiffe://example.org/ns/emojivoto/sa/web",
                WEB_TOKEN,
                spiffe_csr.clone(),
            ),
            Code::InvalidArgument,
            "invalid SPIFFE ID 'spiffe://example.org/ns/emojivoto/sa/web': trust domain 'example.org' is not this mesh's trust domain 'cluster.local'"
                .to_owned(),
        ),
        (
            "an identity name from a SPIFFE-only CA",
            request(WEB_ID, WEB_TOKEN, spiffe_csr.clone()),
            Code::FailedPrecondition,
            format!(
                "requested identity {WEB_ID} is an identity name, but this CA issues only SPIFFE IDs (SAN mode spiffe); request {WEB_SPIFFE}"
            ),
        ),
        (
            "a CSR with the DNS SAN",
            request(
                WEB_SPIFFE,
                WEB_TOKEN,
                custom_csr(&key, Some(WEB_ID), vec![dns(WEB_ID), uri(WEB_SPIFFE)]),
            ),
            Code::FailedPrecondition,
            "CSR must have 0 DNSName(s) in this SAN mode, found 1".to_owned(),
        ),
        (
            "another ServiceAccount's token",
            request(WEB_SPIFFE, EMOJI_TOKEN, spiffe_csr),
            Code::FailedPrecondition,
            format!(
                "requested identity did not match provided token: requested={WEB_SPIFFE}; found={EMOJI_SPIFFE}"
            ),
        ),
    ];
    for (name, req, code, message) in cases {
        let status = client.certify(req).await.expect_err(name);
        assert_eq!(
            (status.code(), status.message()),
            (code, message.as_str()),
            "{name}"
        );
    }
    // The service keeps serving.
    let (_, csr) = web_csr_in(SanMode::Spiffe);
    client
        .certify(request(WEB_SPIFFE, WEB_TOKEN, csr))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_dns_mode_ca_refuses_a_spiffe_id_naming_the_identity_to_ask_for() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let mut client = IdentityClient::connect(server.http_uri()).await.unwrap();
    let (_, csr) = web_csr_in(SanMode::Spiffe);
    let status = client
        .certify(request(WEB_SPIFFE, WEB_TOKEN, csr))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        format!(
            "requested identity {WEB_SPIFFE} is a SPIFFE ID, but this CA issues only identity names (SAN mode dns); request {WEB_ID}"
        )
    );
    server.stop().await.unwrap();
}
