//! Several identity service replicas behind one certifier: calls take the replicas in turn,
//! fail over on connect errors and `Unavailable` within one call (one attempt for the
//! client), pass the service's own refusals through, and follow a DNS name as it changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use meshid_client::{Certifier, CertifyError, CertifyRequest, Client, ClientConfig, TokenSource};
use meshid_grpc::{Endpoints, Error, GrpcCertifier, Resolve, Resolving, Timeouts, UriProblem};
use support::*;
use zeroize::Zeroizing;

fn request(token: &[u8]) -> CertifyRequest {
    CertifyRequest::new(WEB_ID.to_owned(), Zeroizing::new(token.to_vec()), web_csr())
}

/// A port that refuses connections, and stays ours for the test: a socket bound to it that
/// does not listen.
fn refusing() -> (socket2::Socket, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

async fn balanced(addrs: Vec<SocketAddr>) -> GrpcCertifier {
    GrpcCertifier::connect_endpoints(Endpoints::List(addrs), None, Timeouts::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn calls_take_the_replicas_in_turn() {
    let pki = Pki::new();
    let a = Server::start(pki.ca_ready(), None).await;
    let b = Server::start(pki.ca_ready(), None).await;
    let certifier = balanced(vec![a.addr, b.addr]).await;
    for _ in 0..10 {
        certifier.certify(request(WEB_TOKEN)).await.unwrap();
    }
    assert_eq!((a.authn.calls(), b.authn.calls()), (5, 5));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn connect_errors_and_unavailable_fail_over_within_one_attempt() {
    let pki = Pki::new();
    let (_refused, refused) = refusing();
    // A replica that has no issuer yet answers Unavailable: cert issuer not ready yet.
    let not_ready = Server::start(pki.ca_not_ready(), None).await;
    let ready = Server::start(pki.ca_ready(), None).await;
    let certifier = balanced(vec![refused, not_ready.addr, ready.addr]).await;

    // Whichever replica a call starts with, it is certified: one attempt each.
    for _ in 0..6 {
        let config = ClientConfig::new(
            WEB_ID,
            TokenSource::Fixed(Zeroizing::new(WEB_TOKEN.to_vec())),
            pki.bundle.clone(),
        );
        let mut client = Client::new(config, certifier.clone(), SetClock::new(NOW)).unwrap();
        client.certify_once().await.unwrap();
    }
    assert_eq!(ready.authn.calls(), 6);
    assert_eq!(not_ready.authn.calls(), 0);
    not_ready.stop().await.unwrap();
    ready.stop().await.unwrap();
}

#[tokio::test]
async fn the_services_refusals_are_not_failed_over() {
    let pki = Pki::new();
    let a = Server::start(pki.ca_ready(), None).await;
    let b = Server::start(pki.ca_ready(), None).await;
    let certifier = balanced(vec![a.addr, b.addr]).await;
    let refused = certifier.certify(request(UNKNOWN_TOKEN)).await.unwrap_err();
    assert_eq!(
        refused,
        CertifyError::new("FailedPrecondition: authentication token could not be authenticated")
    );
    // Asked once, of one replica.
    assert_eq!(a.authn.calls() + b.authn.calls(), 1);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn when_every_replica_fails_the_error_names_each() {
    let (_first, first) = refusing();
    let (_second, second) = refusing();
    let pki = Pki::new();
    let not_ready = Server::start(pki.ca_not_ready(), None).await;
    let certifier = balanced(vec![first, second, not_ready.addr]).await;
    let err = certifier.certify(request(WEB_TOKEN)).await.unwrap_err();
    assert!(
        err.message
            .starts_with("Unavailable: every identity service endpoint failed ("),
        "{err}"
    );
    for addr in [first, second, not_ready.addr] {
        assert!(err.message.contains(&format!("{addr}: ")), "{err}");
    }
    assert!(err.message.contains("cert issuer not ready yet"), "{err}");
    not_ready.stop().await.unwrap();
}

#[tokio::test]
async fn an_empty_list_is_refused() {
    let refused =
        GrpcCertifier::connect_endpoints(Endpoints::List(vec![]), None, Timeouts::default())
            .await
            .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "invalid identity service URI '': no identity service endpoint given"
    );
    assert!(matches!(
        refused,
        Error::InvalidUri {
            reason: UriProblem::NoEndpoint,
            ..
        }
    ));

    let zero = Endpoints::Dns {
        host: "identity.example".to_owned(),
        port: 8080,
        refresh: Duration::ZERO,
    };
    let refused = GrpcCertifier::connect_endpoints(zero, None, Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        Error::InvalidUri {
            uri: "identity.example:8080".to_owned(),
            reason: UriProblem::ZeroDnsRefresh,
        }
    );
    assert_eq!(
        refused.to_string(),
        "invalid identity service URI 'identity.example:8080': the DNS refresh interval must \
         be longer than zero"
    );
}

/// A resolver answering what the test says, as a headless service's DNS would.
struct Scripted {
    answer: Mutex<io::Result<Vec<SocketAddr>>>,
    calls: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(answer: Vec<SocketAddr>) -> Self {
        Self {
            answer: Mutex::new(Ok(answer)),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn set(&self, answer: io::Result<Vec<SocketAddr>>) {
        *self.answer.lock().unwrap() = answer;
    }
}

impl Resolve for Scripted {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        self.calls.lock().unwrap().push(format!("{host}:{port}"));
        let answer = match &*self.answer.lock().unwrap() {
            Ok(addrs) => Ok(addrs.clone()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        Box::pin(async move { answer })
    }
}

/// Waits (event by event, generously) until the certifier uses exactly `addrs`.
async fn wait_for_addrs(certifier: &GrpcCertifier, addrs: &[SocketAddr]) {
    let mut wanted = addrs.to_vec();
    wanted.sort();
    tokio::time::timeout(Duration::from_secs(30), async {
        while certifier.endpoint_addrs() != wanted {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "still using {:?}, not {wanted:?}",
            certifier.endpoint_addrs()
        )
    });
}

#[tokio::test]
async fn a_dns_name_is_resolved_again_as_it_changes() {
    let pki = Pki::new();
    let a = Server::start(pki.ca_ready(), None).await;
    let b = Server::start(pki.ca_ready(), None).await;
    let c = Server::start(pki.ca_ready(), None).await;
    let resolver = Arc::new(Scripted::new(vec![a.addr]));
    let endpoints = Endpoints::Dns {
        host: "linkerd-identity-headless.linkerd.svc.cluster.local".to_owned(),
        port: 8080,
        refresh: Duration::from_millis(50),
    };
    let certifier = GrpcCertifier::connect_endpoints_with(
        endpoints,
        None,
        Timeouts::default(),
        Arc::clone(&resolver) as Arc<dyn Resolve>,
    )
    .await
    .unwrap();
    assert_eq!(certifier.endpoint_addrs(), vec![a.addr]);
    assert_eq!(
        resolver.calls.lock().unwrap()[0],
        "linkerd-identity-headless.linkerd.svc.cluster.local:8080"
    );
    certifier.certify(request(WEB_TOKEN)).await.unwrap();
    assert_eq!(a.authn.calls(), 1);

    // The name now resolves to two other replicas.
    resolver.set(Ok(vec![b.addr, c.addr]));
    wait_for_addrs(&certifier, &[b.addr, c.addr]).await;
    for _ in 0..4 {
        certifier.certify(request(WEB_TOKEN)).await.unwrap();
    }
    assert_eq!(
        (a.authn.calls(), b.authn.calls(), c.authn.calls()),
        (1, 2, 2)
    );

    // A failed or empty resolution keeps the addresses known.
    resolver.set(Err(io::Error::other("no such host")));
    let asked = resolver.calls.lock().unwrap().len();
    tokio::time::timeout(Duration::from_secs(30), async {
        while resolver.calls.lock().unwrap().len() < asked + 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    resolver.set(Ok(vec![]));
    let asked = resolver.calls.lock().unwrap().len();
    tokio::time::timeout(Duration::from_secs(30), async {
        while resolver.calls.lock().unwrap().len() < asked + 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let mut known = vec![b.addr, c.addr];
    known.sort();
    assert_eq!(certifier.endpoint_addrs(), known);
    certifier.certify(request(WEB_TOKEN)).await.unwrap();

    // Once the certifier is gone, the name is no longer resolved.
    drop(certifier);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = resolver.calls.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(resolver.calls.lock().unwrap().len(), asked);

    a.stop().await.unwrap();
    b.stop().await.unwrap();
    c.stop().await.unwrap();
}
