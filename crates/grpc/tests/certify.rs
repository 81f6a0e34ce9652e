//! End to end over loopback: the server called by Linkerd's generated client
//! (`linkerd2_proxy_api::identity::identity_client::IdentityClient`), for success and for every
//! row of Linkerd's Certify pipeline, with the exact code and message; then metrics and a
//! graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use meshid_ca::Ca;
use meshid_grpc::Metrics;
use meshid_policy::KeyAlgorithm;
use support::*;
use time::OffsetDateTime;
use time::macros::datetime;
use tonic::Code;
use tonic::transport::Channel;

async fn client(server: &Server) -> IdentityClient<Channel> {
    IdentityClient::connect(server.http_uri()).await.unwrap()
}

fn request(identity: &str, token: &[u8], csr: Vec<u8>) -> CertifyRequest {
    CertifyRequest {
        identity: identity.to_owned(),
        token: token.to_vec(),
        certificate_signing_request: csr,
    }
}

/// Calls Certify and returns the refusal's code and message.
async fn refused(client: &mut IdentityClient<Channel>, req: CertifyRequest) -> (Code, String) {
    let status = client.certify(req).await.expect_err("a refusal");
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn certifies_with_der_leaf_issuer_chain_and_valid_until() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let mut client = client(&server).await;

    let (key, csr) = csr_for(&web(), KeyAlgorithm::EcdsaP256);
    let rsp = client
        .certify(request(WEB_ID, WEB_TOKEN, csr))
        .await
        .unwrap()
        .into_inner();

    // One IssuedLeafCertificate event, with Linkerd's message and the leaf's SHA-256.
    let events = server.events.with_reason("IssuedLeafCertificate");
    assert_eq!(events.len(), 1);
    let digest = ring::digest::digest(&ring::digest::SHA256, &rsp.leaf_certificate);
    assert_eq!(
        events[0].message,
        format!(
            "issued certificate for {WEB_ID} until 2026-06-02T12:00:20Z: {}",
            hex::encode(digest.as_ref())
        )
    );

    // The leaf is DER, names the identity, certifies the CSR's key.
    let (rest, leaf) = x509_parser::parse_x509_certificate(&rsp.leaf_certificate).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        WEB_ID
    );
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![x509_parser::extensions::GeneralName::DNSName(WEB_ID)]
    );
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    // Intermediates: exactly the issuer, DER.
    assert_eq!(
        rsp.intermediate_certificates,
        vec![pki.issuer.der().to_vec()]
    );
    // valid_until is the leaf's NotAfter: now + 24h + 20s of skew.
    let not_after = leaf.validity().not_after.to_datetime();
    assert_eq!(not_after, datetime!(2026-06-02 12:00:20 UTC));
    let valid_until = rsp.valid_until.expect("valid_until is always set");
    assert_eq!(valid_until.seconds, not_after.unix_timestamp());
    assert_eq!(valid_until.nanos, 0);
    assert_eq!(server.authn.calls(), 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn issuer_not_loaded_is_unavailable() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_not_ready(), None).await;
    let mut client = client(&server).await;
    assert_eq!(
        refused(&mut client, request(WEB_ID, WEB_TOKEN, web_csr())).await,
        (Code::Unavailable, "cert issuer not ready yet".to_owned())
    );
    assert_eq!(server.authn.calls(), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn expired_issuer_is_unavailable_with_a_clear_message() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    server.clock.set(datetime!(2026-08-02 0:00 UTC));
    let mut client = client(&server).await;
    assert_eq!(
        refused(&mut client, request(WEB_ID, WEB_TOKEN, web_csr())).await,
        (
            Code::Unavailable,
            "issuer cannot issue: issuer certificate expired at 2026-08-01T00:00:00Z (now 2026-08-02T00:00:00Z); rotate it"
                .to_owned()
        )
    );
    assert_eq!(server.authn.calls(), 0);
    server.stop().await.unwrap();
}

/// One row of the table: the request, then the exact answer.
struct Row {
    name: &'static str,
    request: CertifyRequest,
    code: Code,
    message: String,
}

fn row(name: &'static str, request: CertifyRequest, code: Code, message: &str) -> Row {
    Row {
        name,
        request,
        code,
        message: message.to_owned(),
    }
}

fn rows() -> Vec<Row> {
    let key = p256();
    vec![
        // 2. Presence, CSR parsing, identity parsing.
        row(
            "missing identity",
            request("", WEB_TOKEN, web_csr()),
            Code::InvalidArgument,
            "missing identity",
        ),
        row(
            "missing token",
            request(WEB_ID, b"", web_csr()),
            Code::InvalidArgument,
            "missing token",
        ),
        row(
            "missing CSR",
            request(WEB_ID, WEB_TOKEN, Vec::new()),
            Code::InvalidArgument,
            "missing certificate signing request",
        ),
        row(
            "unparsable CSR",
            request(WEB_ID, WEB_TOKEN, b"hello, CA".to_vec()),
            Code::InvalidArgument,
            "malformed certificate signing request: CertificationRequest: truncated DER: 101 content bytes announced, 7 present",
        ),
        row(
            "CSR whose signature does not verify",
            request(WEB_ID, WEB_TOKEN, {
                let mut csr = web_csr();
                let last = csr.len() - 1;
                csr[last] ^= 0x01;
                csr
            }),
            Code::InvalidArgument,
            "CSR signature does not verify: the requester must sign the CSR with the key being certified",
        ),
        row(
            "identity of another mesh",
            request(
                "web.emojivoto.serviceaccount.identity.linkerd.example.org",
                WEB_TOKEN,
                web_csr(),
            ),
            Code::InvalidArgument,
            "invalid identity 'web.emojivoto.serviceaccount.identity.linkerd.example.org': does not end with '.serviceaccount.identity.linkerd.cluster.local' (the identity suffix of this mesh)",
        ),
        // 4. The CSR's names.
        row(
            "two DNS names",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(
                    &key,
                    Some(WEB_ID),
                    vec![dns(WEB_ID), dns("evil.example.com")],
                ),
            ),
            Code::FailedPrecondition,
            "CSR must have exactly one DNSName",
        ),
        row(
            "no DNS name",
            request(WEB_ID, WEB_TOKEN, custom_csr(&key, Some(WEB_ID), vec![])),
            Code::FailedPrecondition,
            "CSR must have exactly one DNSName",
        ),
        row(
            "CSR name mismatch",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(&key, None, vec![dns(EMOJI_ID)]),
            ),
            Code::FailedPrecondition,
            &format!("CSR name does not match requested identity: csr={EMOJI_ID}; req={WEB_ID}"),
        ),
        row(
            "invalid CommonName",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(&key, Some("admin"), vec![dns(WEB_ID)]),
            ),
            Code::FailedPrecondition,
            "invalid CommonName: admin",
        ),
        row(
            "email SAN",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(
                    &key,
                    Some(WEB_ID),
                    vec![
                        dns(WEB_ID),
                        rcgen::SanType::Rfc822Name(
                            "web@example.com".to_owned().try_into().unwrap(),
                        ),
                    ],
                ),
            ),
            Code::FailedPrecondition,
            "cannot validate email addresses",
        ),
        row(
            "IP SAN",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(
                    &key,
                    Some(WEB_ID),
                    vec![
                        dns(WEB_ID),
                        rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()),
                    ],
                ),
            ),
            Code::FailedPrecondition,
            "cannot validate IP addresses",
        ),
        row(
            "URI SAN",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(
                    &key,
                    Some(WEB_ID),
                    vec![
                        dns(WEB_ID),
                        uri("spiffe://cluster.local/ns/emojivoto/sa/web"),
                    ],
                ),
            ),
            Code::FailedPrecondition,
            "cannot validate URIs",
        ),
        // 5. Token review.
        row(
            "token not authenticated",
            request(WEB_ID, UNKNOWN_TOKEN, web_csr()),
            Code::FailedPrecondition,
            "authentication token could not be authenticated",
        ),
        row(
            "invalid token",
            request(WEB_ID, INVALID_TOKEN, web_csr()),
            Code::InvalidArgument,
            INVALID_TOKEN_REASON,
        ),
        // 6. Token identity.
        row(
            "token of another identity",
            request(WEB_ID, EMOJI_TOKEN, web_csr()),
            Code::FailedPrecondition,
            &format!(
                "requested identity did not match provided token: requested={WEB_ID}; found={EMOJI_ID}"
            ),
        ),
        // 7. Key type.
        row(
            "RSA key",
            request(
                WEB_ID,
                WEB_TOKEN,
                custom_csr(&rsa_key(), Some(WEB_ID), vec![dns(WEB_ID)]),
            ),
            Code::Internal,
            "CSR must contain an ECDSA public key (found RSA-2048)",
        ),
        row(
            "P-384 key, not allowed by the policy",
            request(
                WEB_ID,
                WEB_TOKEN,
                csr_for(&web(), KeyAlgorithm::EcdsaP384).1,
            ),
            Code::FailedPrecondition,
            "CSR key algorithm ECDSA P-384 is not allowed (allowed: ECDSA P-256)",
        ),
    ]
}

#[tokio::test]
async fn every_refusal_has_linkerds_code_and_message() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let mut client = client(&server).await;
    let mut failures = Vec::new();
    for row in rows() {
        let got = refused(&mut client, row.request).await;
        if got != (row.code, row.message.clone()) {
            failures.push(format!(
                "{}:\n  expected {:?}: {}\n  got      {:?}: {}",
                row.name, row.code, row.message, got.0, got.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The service still certifies afterwards.
    client
        .certify(request(WEB_ID, WEB_TOKEN, web_csr()))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_token_review_shows_the_caller_only_a_request_id_that_the_log_has_too() {
    let logs = CapturedLogs::install();
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let mut client = client(&server).await;

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (code, message) =
            refused(&mut client, request(WEB_ID, API_ERROR_TOKEN, web_csr())).await;
        assert_eq!(code, Code::Internal);
        // Nothing of the API server (its address, its error) reaches the caller.
        let id = message
            .strip_prefix("internal error validating the token; request id ")
            .unwrap_or_else(|| panic!("{message}"));
        assert_eq!(id.len(), 16, "{message}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{message}");
        ids.push(id.to_owned());
    }
    assert_ne!(ids[0], ids[1], "each request has its own id");

    // The log line with the id has the detail.
    for id in &ids {
        let line = logs.line_with(id).expect("a log line with the request id");
        assert!(
            line.contains(
                "validating the token: cannot reach the Kubernetes API server at https://kubernetes.default.svc: connection refused"
            ),
            "{line}"
        );
        assert!(line.contains(&format!("identity={WEB_ID}")), "{line}");
        assert!(line.contains(" WARN "), "{line}");
    }
    // The service still certifies afterwards.
    client
        .certify(request(WEB_ID, WEB_TOKEN, web_csr()))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

/// An HSM- or KMS-backed issuer key whose service goes down once `down` is set.
struct UnreachableSigner(meshid_csr::KeyPair, Arc<std::sync::atomic::AtomicBool>);

impl meshid_ca::Signer for UnreachableSigner {
    fn algorithm(&self) -> KeyAlgorithm {
        self.0.algorithm()
    }

    fn public_key_raw(&self) -> &[u8] {
        self.0.public_key_raw()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, meshid_ca::SignerError> {
        if !self.1.load(std::sync::atomic::Ordering::SeqCst) {
            return meshid_ca::Signer::sign(&self.0, message);
        }
        Err(meshid_ca::SignerError(
            "KMS key projects/mesh/keys/issuer at https://kms.internal:8443: permission denied"
                .to_owned(),
        ))
    }
}

#[tokio::test]
async fn a_failed_signature_shows_the_caller_only_a_request_id_that_the_log_has_too() {
    let logs = CapturedLogs::install();
    let pki = Pki::new();
    let ca = pki.ca_not_ready();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signer = UnreachableSigner(
        meshid_csr::KeyPair::from_pem(&pki.issuer.key_pem()).unwrap(),
        Arc::clone(&down),
    );
    let issuer = meshid_ca::IssuerCredentials::new(
        vec![pki.issuer.der().clone()],
        Arc::new(signer),
        &pki.bundle,
        NOW,
    )
    .unwrap();
    ca.set_issuer(issuer, NOW).unwrap();
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let server = Server::start(ca, None).await;
    let mut client = client(&server).await;

    let (code, message) = refused(&mut client, request(WEB_ID, WEB_TOKEN, web_csr())).await;
    assert_eq!(code, Code::Internal);
    let id = message
        .strip_prefix("internal error signing the certificate; request id ")
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(id.len(), 16, "{message}");
    let line = logs.line_with(id).expect("a log line with the request id");
    assert!(
        line.contains("https://kms.internal:8443: permission denied"),
        "{line}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn csr_checks_run_before_the_token_review_and_the_key_check_after() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let mut client = client(&server).await;
    let key = p256();

    // A misnamed CSR with an unknown token: the CSR is refused, the token never reviewed.
    let misnamed = custom_csr(&key, None, vec![dns(EMOJI_ID)]);
    let (code, _) = refused(&mut client, request(WEB_ID, UNKNOWN_TOKEN, misnamed)).await;
    assert_eq!(code, Code::FailedPrecondition);
    let (code, _) = refused(
        &mut client,
        request(WEB_ID, UNKNOWN_TOKEN, b"junk".to_vec()),
    )
    .await;
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(server.authn.calls(), 0);

    // An RSA CSR with an unknown token: the token is refused first (Linkerd's order).
    let rsa = custom_csr(&rsa_key(), Some(WEB_ID), vec![dns(WEB_ID)]);
    assert_eq!(
        refused(&mut client, request(WEB_ID, UNKNOWN_TOKEN, rsa.clone())).await,
        (
            Code::FailedPrecondition,
            "authentication token could not be authenticated".to_owned()
        )
    );
    // ... and with another identity's token, the identity mismatch comes first too.
    let (_, message) = refused(&mut client, request(WEB_ID, EMOJI_TOKEN, rsa)).await;
    assert!(
        message.starts_with("requested identity did not match"),
        "{message}"
    );
    assert_eq!(server.authn.calls(), 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_outcome_is_counted_by_code() {
    let pki = Pki::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let server = Server::start(pki.ca_ready(), Some(metrics)).await;
    let mut client = client(&server).await;

    for _ in 0..2 {
        client
            .certify(request(WEB_ID, WEB_TOKEN, web_csr()))
            .await
            .unwrap();
    }
    refused(&mut client, request("", WEB_TOKEN, web_csr())).await;
    refused(&mut client, request(WEB_ID, UNKNOWN_TOKEN, web_csr())).await;
    refused(&mut client, request(WEB_ID, API_ERROR_TOKEN, web_csr())).await;
    server.clock.set(datetime!(2026-08-02 0:00 UTC));
    refused(&mut client, request(WEB_ID, WEB_TOKEN, web_csr())).await;

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "identity_certify_requests_total{code=\"OK\"} 2",
        "identity_certify_requests_total{code=\"InvalidArgument\"} 1",
        "identity_certify_requests_total{code=\"FailedPrecondition\"} 1",
        "identity_certify_requests_total{code=\"Internal\"} 1",
        "identity_certify_requests_total{code=\"Unavailable\"} 1",
        "identity_certify_duration_seconds_count 6",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let authn = server.authn.clone();
    let mut client = client(&server).await;

    // A request that waits in the token review.
    let in_flight = tokio::spawn(async move {
        client
            .certify(request(WEB_ID, SLOW_TOKEN, web_csr()))
            .await
            .map(|r| r.into_inner())
    });
    authn.slow_request_arrived().await;

    // Shut down while it waits: the server does not finish until the request has.
    let addr = server.addr;
    let stopped = tokio::spawn(server.stop());
    // The listener closes (new connections are refused) ...
    let deadline = tokio::time::Instant::now() + core::time::Duration::from_secs(10);
    while IdentityClient::connect(format!("http://{addr}"))
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener stays open"
        );
        tokio::time::sleep(core::time::Duration::from_millis(10)).await;
    }
    // ... but the server does not finish while the request is in flight.
    tokio::time::sleep(core::time::Duration::from_millis(100)).await;
    assert!(
        !stopped.is_finished(),
        "the server stopped with a request in flight"
    );

    authn.release();
    let rsp = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert!(rsp.valid_until.is_some());
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_new_issuer_is_used_without_restarting() {
    let pki = Pki::new();
    let ca: Arc<Ca> = pki.ca_not_ready();
    let server = Server::start(Arc::clone(&ca), None).await;
    let mut client = client(&server).await;
    let (code, _) = refused(&mut client, request(WEB_ID, WEB_TOKEN, web_csr())).await;
    assert_eq!(code, Code::Unavailable);

    ca.load_issuer_pem(&pki.issuer.pem(), &pki.issuer.key_pem(), NOW)
        .unwrap();
    let rsp = client
        .certify(request(WEB_ID, WEB_TOKEN, web_csr()))
        .await
        .unwrap()
        .into_inner();
    let valid_until = rsp.valid_until.unwrap();
    assert_eq!(
        OffsetDateTime::from_unix_timestamp(valid_until.seconds).unwrap(),
        datetime!(2026-06-02 12:00:20 UTC)
    );
    server.stop().await.unwrap();
}
