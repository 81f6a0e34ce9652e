//! The server seen by a plain h2 client, and many requests sharing one connection.
//!
//! These tests pin that an answer is one whole gRPC message however it is framed, that
//! other methods are unimplemented, and that concurrent requests on one connection each get
//! their own certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use meshid_policy::KeyAlgorithm;
use prost::Message;
use support::*;

const CERTIFY: &str = "/io.linkerd.proxy.identity.Identity/Certify";

/// What a raw HTTP/2 POST got back: each DATA frame's payload, and the trailers.
struct RawAnswer {
    headers: http::HeaderMap,
    frames: Vec<Bytes>,
    trailers: http::HeaderMap,
}

impl RawAnswer {
    /// `grpc-status`: in the trailers, or in the headers of a trailers-only answer.
    fn grpc_status(&self) -> &str {
        self.trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)")
    }
}

async fn raw_post(server: &Server, path: &str, message: &[u8]) -> RawAnswer {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!("{}{path}", server.http_uri()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    let mut body = BytesMut::with_capacity(5 + message.len());
    body.put_u8(0);
    body.put_u32(u32::try_from(message.len()).unwrap());
    body.put_slice(message);
    send.send_data(body.freeze(), true).unwrap();

    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let (head, mut recv) = response.into_parts();
    let mut frames = Vec::new();
    while let Some(frame) = recv.data().await {
        let frame = frame.unwrap();
        let _ = recv.flow_control().release_capacity(frame.len());
        frames.push(frame);
    }
    let trailers = recv.trailers().await.unwrap().unwrap_or_default();
    RawAnswer {
        headers: head.headers,
        frames,
        trailers,
    }
}

#[tokio::test]
async fn a_plain_http2_client_reads_one_whole_certify_response() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    let (_key, csr) = csr_for(&web(), KeyAlgorithm::EcdsaP256);
    let request = CertifyRequest {
        identity: WEB_ID.to_owned(),
        token: WEB_TOKEN.to_vec(),
        certificate_signing_request: csr,
    };

    let answer = raw_post(&server, CERTIFY, &request.encode_to_vec()).await;

    assert_eq!(answer.grpc_status(), "0");
    assert_eq!(
        answer.headers.get("content-type").unwrap(),
        "application/grpc"
    );
    // Its DATA frames put together: one uncompressed gRPC message, a whole CertifyResponse.
    let mut joined: Bytes = answer.frames.concat().into();
    assert_eq!(joined.get_u8(), 0, "not compressed");
    let len = usize::try_from(joined.get_u32()).unwrap();
    assert_eq!(len, joined.len());
    let response = CertifyResponse::decode(joined).unwrap();
    assert_eq!(
        response.intermediate_certificates,
        vec![pki.issuer.der().to_vec()]
    );
    let (_, leaf) = x509_parser::parse_x509_certificate(&response.leaf_certificate).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![x509_parser::extensions::GeneralName::DNSName(WEB_ID)]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn other_methods_are_unimplemented() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    for path in [
        "/io.linkerd.proxy.identity.Identity/Renew",
        "/grpc.health.v1.Health/Check",
    ] {
        let answer = raw_post(&server, path, &[]).await;
        assert_eq!(answer.grpc_status(), "12", "{path}");
    }
    assert_eq!(server.authn.calls(), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_on_one_connection_each_get_their_own_certificate() {
    let pki = Pki::new();
    let server = Server::start(pki.ca_ready(), None).await;
    // One channel: one HTTP/2 connection, every request a stream of it.
    let channel = tonic::transport::Endpoint::from_shared(server.http_uri())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..48 {
        let mut client = IdentityClient::new(channel.clone());
        let (sa, id, token) = if i % 2 == 0 {
            (web(), WEB_ID, WEB_TOKEN)
        } else {
            (sa("emojivoto", "emoji"), EMOJI_ID, EMOJI_TOKEN)
        };
        calls.spawn(async move {
            let (key, csr) = csr_for(&sa, KeyAlgorithm::EcdsaP256);
            let response = client
                .certify(CertifyRequest {
                    identity: id.to_owned(),
                    token: token.to_vec(),
                    certificate_signing_request: csr,
                })
                .await
                .unwrap()
                .into_inner();
            (id, key.public_key_raw().to_vec(), response)
        });
    }

    let mut serials = std::collections::HashSet::new();
    while let Some(joined) = calls.join_next().await {
        let (id, public_key, response) = joined.unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&response.leaf_certificate).unwrap();
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![x509_parser::extensions::GeneralName::DNSName(id)]
        );
        // The answer to this request, not to another one: its key is certified.
        assert_eq!(
            leaf.public_key().subject_public_key.data.as_ref(),
            public_key
        );
        assert!(serials.insert(leaf.raw_serial().to_vec()));
    }
    assert_eq!(serials.len(), 48);
    assert_eq!(server.authn.calls(), 48);
    server.stop().await.unwrap();
}
