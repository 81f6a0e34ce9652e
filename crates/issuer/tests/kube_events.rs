//! Kubernetes Events posted to a local endpoint that answers like the API server.

#![cfg(feature = "kube-events")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meshid_issuer::{Event, EventSink, KubeApiConfig, KubeEventSink, KubeEventsConfig};
use support::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// (path, authorization header, JSON body) of each request.
type Seen = (String, String, serde_json::Value);

async fn api_server(tmp: &TempDir) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(tmp.path().join("ca.crt"), cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let auth = req
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let answer = json.clone();
                        tx.send((path, auth, json)).unwrap();
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(201)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://127.0.0.1:{}", addr.port()), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_posted_as_core_v1_events_on_the_identity_deployment() {
    let tmp = TempDir::new();
    let (url, mut seen) = api_server(&tmp).await;
    std::fs::write(tmp.path().join("token"), "sa-token\n").unwrap();
    let config = KubeEventsConfig::new(KubeApiConfig::new(
        &url,
        tmp.path().join("ca.crt"),
        tmp.path().join("token"),
    ));
    let (sink, _task) = KubeEventSink::spawn(config).unwrap();

    sink.emit(&Event::issuer_update_skipped(
        &"reading /x/crt.pem: gone",
        START,
    ));
    sink.emit(&Event::issuer_updated(START + Duration::from_millis(1500)));

    let (path, auth, json) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(path, "/api/v1/namespaces/linkerd/events");
    assert_eq!(auth, "Bearer sa-token");
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["kind"], "Event");
    assert_eq!(json["metadata"]["namespace"], "linkerd");
    assert_eq!(json["metadata"]["generateName"], "linkerd-identity.");
    assert_eq!(json["involvedObject"]["kind"], "Deployment");
    assert_eq!(json["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(json["involvedObject"]["name"], "linkerd-identity");
    assert_eq!(json["type"], "Warning");
    assert_eq!(json["reason"], "IssuerUpdateSkipped");
    assert_eq!(
        json["message"],
        "Skipping issuer update as certs could not be read from disk: reading /x/crt.pem: gone"
    );
    assert_eq!(json["source"]["component"], "linkerd-identity");
    assert_eq!(json["firstTimestamp"], "2026-06-01T12:00:00Z");

    let (_, _, json) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(json["type"], "Normal");
    assert_eq!(json["reason"], "IssuerUpdated");
    assert_eq!(json["message"], "Updated identity issuer");
    assert_eq!(json["lastTimestamp"], "2026-06-01T12:00:01Z");
}
