//! The request limits of the Certify server: the per-request deadline, the server-wide limit
//! on requests in flight, the refusal of limits out of range. Each test shows the exact
//! answer, and that the service still certifies afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;

use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use meshid_grpc::{GrpcLimits, IdentityService, Metrics};
use support::*;
use tonic::Code;
use tonic::transport::Channel;

async fn client(server: &Server) -> IdentityClient<Channel> {
    IdentityClient::connect(server.http_uri()).await.unwrap()
}

fn request(token: &[u8]) -> CertifyRequest {
    CertifyRequest {
        identity: WEB_ID.to_owned(),
        token: token.to_vec(),
        certificate_signing_request: web_csr(),
    }
}

fn counted(registry: &prometheus_client::registry::Registry, code: &str) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "identity_certify_requests_total{{code=\"{code}\"}}"
            ))
        })
        .unwrap_or("(none)")
        .to_owned()
}

#[tokio::test]
async fn a_request_not_answered_within_the_deadline_is_deadline_exceeded() {
    let pki = Pki::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mut limits = GrpcLimits::default();
    limits.request_timeout = Duration::from_millis(300);
    let server = Server::start_limited(
        pki.ca_ready(),
        Some(metrics),
        tonic::transport::Server::builder(),
        limits,
    )
    .await;
    let mut client = client(&server).await;

    // A token review that never ends by itself.
    let status = client.certify(request(SLOW_TOKEN)).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(
        status.message(),
        "the request was not answered within the identity service's deadline of 300ms"
    );
    assert_eq!(
        counted(&registry, "DeadlineExceeded"),
        "identity_certify_requests_total{code=\"DeadlineExceeded\"} 1"
    );

    // The service still certifies afterwards.
    client.certify(request(WEB_TOKEN)).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn past_the_in_flight_limit_a_request_is_refused_at_once_with_resource_exhausted() {
    let pki = Pki::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mut limits = GrpcLimits::default();
    limits.max_in_flight = 2;
    let server = Server::start_limited(
        pki.ca_ready(),
        Some(metrics),
        tonic::transport::Server::builder(),
        limits,
    )
    .await;
    let authn = server.authn.clone();

    // Two requests in flight, on connections of their own, waiting in the token review.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut client = client(&server).await;
        slow.push(tokio::spawn(async move {
            client.certify(request(SLOW_TOKEN)).await
        }));
        authn.slow_request_arrived().await;
    }

    // A third is refused without being looked at.
    let mut client = client(&server).await;
    let status = client.certify(request(WEB_TOKEN)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "the identity service is answering its limit of 2 requests; retry later"
    );
    assert_eq!(authn.calls(), 2, "the refused request reached the pipeline");
    assert_eq!(
        counted(&registry, "ResourceExhausted"),
        "identity_certify_requests_total{code=\"ResourceExhausted\"} 1"
    );

    // The two finish; then there is room again.
    authn.release();
    authn.release();
    for call in slow {
        call.await.unwrap().unwrap();
    }
    client.certify(request(WEB_TOKEN)).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_limit_out_of_range_fails_the_server_at_start() {
    let pki = Pki::new();
    let mut limits = GrpcLimits::default();
    limits.max_in_flight = 0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = IdentityService::new(
        pki.ca_ready(),
        ScriptedAuthenticator::default(),
        SetClock::new(NOW),
    )
    .with_limits(limits);
    let error = service
        .serve(listener, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid gRPC server limit max_in_flight: 0 is not between 1 and 1000000"
    );
}
