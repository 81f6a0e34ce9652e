//! Certify over the identity service's own TLS: a client verifying the service's name
//! certifies, one expecting another name is refused, the certificate served follows an issuer
//! swap and the refresh point without a restart, and a handshake that never finishes is cut
//! off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use core::time::Duration;
use std::sync::Arc;

use meshid_ca::Ca;
use meshid_client::{Client, ClientConfig, TokenSource};
use meshid_grpc::{
    ClientTls, Endpoints, Error, GrpcCertifier, GrpcLimits, ServingIdentity, ServingMetrics,
    Timeouts,
};
use meshid_policy::{Clock, TokioClock};
use meshid_policy::{IssuancePolicy, Mesh};
use meshid_rotation::RefreshPolicy;
use meshid_verify::TrustBundle;
use support::*;
use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;
use zeroize::Zeroizing;

fn token(t: &[u8]) -> TokenSource {
    TokenSource::Fixed(Zeroizing::new(t.to_vec()))
}

/// The identity service's own certificate, issued once from `ca`.
fn serving(ca: &Arc<Ca>) -> ServingIdentity<SetClock> {
    let mut serving = ServingIdentity::new(Arc::clone(ca), SetClock::new(NOW))
        .unwrap()
        .with_jitter(|| 0.5);
    serving.issue().unwrap();
    serving
}

async fn connect(
    server: &Server,
    name: &str,
    bundle: &TrustBundle,
) -> Result<GrpcCertifier, Error> {
    let tls = ClientTls::verify_identity(name, bundle.clone(), SetClock::new(NOW)).unwrap();
    GrpcCertifier::connect_tls(
        &format!("https://{}", server.addr),
        tls,
        Timeouts::default(),
    )
    .await
}

async fn certify(certifier: GrpcCertifier, bundle: &TrustBundle) -> Result<(), String> {
    let config = ClientConfig::new(WEB_ID, token(WEB_TOKEN), bundle.clone());
    let mut client = Client::new(config, certifier, SetClock::new(NOW)).unwrap();
    client
        .certify_once()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_client_over_tls_certifies() {
    let pki = Pki::new();
    let ca = pki.ca_ready();
    let serving = serving(&ca);
    assert_eq!(serving.name(), IDENTITY_SERVICE_ID);
    let server = Server::start_tls(ca, serving.server_tls().unwrap(), GrpcLimits::default()).await;

    let certifier = connect(&server, IDENTITY_SERVICE_ID, &pki.bundle)
        .await
        .unwrap();
    certify(certifier, &pki.bundle).await.unwrap();

    // The balanced certifier over the same TLS.
    let tls =
        ClientTls::verify_identity(IDENTITY_SERVICE_ID, pki.bundle.clone(), SetClock::new(NOW))
            .unwrap();
    let certifier = GrpcCertifier::connect_endpoints(
        Endpoints::List(vec![server.addr]),
        Some(tls),
        Timeouts::default(),
    )
    .await
    .unwrap();
    certify(certifier, &pki.bundle).await.unwrap();
    assert_eq!(server.authn.calls(), 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_expecting_another_name_is_refused() {
    let pki = Pki::new();
    let ca = pki.ca_ready();
    let serving = serving(&ca);
    let server = Server::start_tls(ca, serving.server_tls().unwrap(), GrpcLimits::default()).await;

    let other = "linkerd-identity.other.serviceaccount.identity.other.cluster.local";
    let Err(Error::Connect { reason, .. }) = connect(&server, other, &pki.bundle).await else {
        panic!("connected to an identity service of another name");
    };
    assert!(
        reason.contains(&format!(
            "TLS handshake with the identity service failed: identity service certificate \
             refused: peer identity mismatch: expected \"{other}\""
        )),
        "{reason}"
    );
    // The service keeps serving.
    let certifier = connect(&server, IDENTITY_SERVICE_ID, &pki.bundle)
        .await
        .unwrap();
    certify(certifier, &pki.bundle).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_without_tls_is_not_answered() {
    let pki = Pki::new();
    let ca = pki.ca_ready();
    let serving = serving(&ca);
    let server = Server::start_tls(ca, serving.server_tls().unwrap(), GrpcLimits::default()).await;
    let timeouts = Timeouts::new(Duration::from_secs(5), Duration::from_secs(5));
    // Connecting is lazy enough to succeed; the call itself gets no answer.
    let answered = match GrpcCertifier::connect_plaintext(&server.http_uri(), timeouts).await {
        Ok(certifier) => certify(certifier, &pki.bundle).await,
        Err(e) => Err(e.to_string()),
    };
    assert!(answered.is_err(), "a plaintext client was answered");
    assert_eq!(server.authn.calls(), 0);
    // The service keeps serving TLS clients.
    let certifier = connect(&server, IDENTITY_SERVICE_ID, &pki.bundle)
        .await
        .unwrap();
    certify(certifier, &pki.bundle).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_served_leaf_changes_after_an_issuer_swap_without_a_restart() {
    // Two anchors, both trusted by the CA; the issuer moves from the first to the second.
    let first = Pki::new();
    let second = Pki::new();
    let both = format!("{}{}", first.root.pem(), second.root.pem());
    let bundle = TrustBundle::from_pem(both.as_bytes()).unwrap();
    let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap());
    ca.load_issuer_pem(&first.issuer.pem(), &first.issuer.key_pem(), NOW)
        .unwrap();

    let serving = ServingIdentity::new(Arc::clone(&ca), SetClock::new(NOW))
        .unwrap()
        .with_jitter(|| 0.5);
    let credentials = serving.credentials();
    let mut changes = credentials.changes();
    let server_tls = serving.server_tls().unwrap();
    let (issuer_changed, issuer_changes) = watch::channel(0u32);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(serving.run(issuer_changes, async {
        let _ = stopped.await;
    }));
    changes.changed().await.unwrap();
    let server = Server::start_tls(Arc::clone(&ca), server_tls, GrpcLimits::default()).await;

    // Served by the first issuer: a client trusting only the second anchor refuses it.
    assert!(
        connect(&server, IDENTITY_SERVICE_ID, &first.bundle)
            .await
            .is_ok()
    );
    let refused = connect(&server, IDENTITY_SERVICE_ID, &second.bundle).await;
    assert!(matches!(refused, Err(Error::Connect { .. })), "{refused:?}");

    // The reloader swaps the issuer and says so; the served leaf follows at once.
    ca.load_issuer_pem(&second.issuer.pem(), &second.issuer.key_pem(), NOW)
        .unwrap();
    issuer_changed.send_replace(1);
    tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .expect("the served certificate was not re-issued after the issuer swap")
        .unwrap();
    let certifier = connect(&server, IDENTITY_SERVICE_ID, &second.bundle)
        .await
        .unwrap();
    certify(certifier, &bundle).await.unwrap();
    let refused = connect(&server, IDENTITY_SERVICE_ID, &first.bundle).await;
    assert!(matches!(refused, Err(Error::Connect { .. })), "{refused:?}");

    let _ = stop.send(());
    driver.await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_served_leaf_is_renewed_at_the_refresh_point() {
    let pki = Pki::new();
    let ca = pki.ca_ready();
    let clock = TokioClock::new(NOW);
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ServingMetrics::register(&mut registry);
    let serving = ServingIdentity::new(Arc::clone(&ca), clock)
        .unwrap()
        .with_jitter(|| 0.5)
        .with_metrics(metrics);
    let credentials = serving.credentials();
    let mut changes = credentials.changes();
    let (_issuer_changed, issuer_changes) = watch::channel(());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(serving.run(issuer_changes, async {
        let _ = stopped.await;
    }));

    changes.changed().await.unwrap();
    let first_key = credentials.certified_key().unwrap();
    let (not_before, not_after) = credentials.validity().unwrap();
    assert_eq!(not_after, NOW + Duration::from_secs(24 * 3600 + 20));
    let expected = RefreshPolicy::default()
        .refresh_at(not_before, not_after, NOW, &mut || 0.5)
        .unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(&format!(
            "identity_server_cert_expiration_timestamp_seconds {}",
            not_after.unix_timestamp()
        )),
        "{text}"
    );

    // Time runs (paused, so it jumps to the next timer) until the driver renews.
    changes.changed().await.unwrap();
    // At the refresh point (the paused clock jumps to the timer, rounded up to a
    // millisecond), not before, not later.
    let renewed_at = clock.now();
    assert!(
        renewed_at >= expected && renewed_at < expected + Duration::from_millis(10),
        "renewed at {renewed_at}, the refresh point is {expected}"
    );
    let (_, renewed_until) = credentials.validity().unwrap();
    assert_eq!(
        renewed_until,
        renewed_at.replace_nanosecond(0).unwrap() + Duration::from_secs(24 * 3600 + 20)
    );
    // A fresh key, not the first one re-certified.
    let renewed_key = credentials.certified_key().unwrap();
    assert_ne!(first_key.cert[0], renewed_key.cert[0]);
    let first_spki = x509_parser::parse_x509_certificate(&first_key.cert[0])
        .unwrap()
        .1
        .public_key()
        .raw
        .to_vec();
    let renewed_spki = x509_parser::parse_x509_certificate(&renewed_key.cert[0])
        .unwrap()
        .1
        .public_key()
        .raw
        .to_vec();
    assert_ne!(first_spki, renewed_spki);

    let _ = stop.send(());
    driver.await.unwrap();
}

#[tokio::test]
async fn a_handshake_that_never_finishes_is_cut_off() {
    let pki = Pki::new();
    let ca = pki.ca_ready();
    let serving = serving(&ca);
    let mut limits = GrpcLimits::default();
    limits.tls_handshake_timeout = Duration::from_millis(500);
    let server = Server::start_tls(ca, serving.server_tls().unwrap(), limits).await;

    // Connects and never says a word.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Meanwhile another client is served: handshakes do not wait for each other.
    let certifier = connect(&server, IDENTITY_SERVICE_ID, &pki.bundle)
        .await
        .unwrap();
    certify(certifier, &pki.bundle).await.unwrap();

    // Far longer than the handshake timeout: only a missing one lets this expire.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(60), silent.read(&mut buf))
        .await
        .expect("a connection that never finished its handshake was kept open");
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the server sent something to a client that sent nothing: {read:?}"
    );
    server.stop().await.unwrap();
}

#[test]
fn the_handshake_timeout_is_checked() {
    let mut limits = GrpcLimits::default();
    limits.tls_handshake_timeout = Duration::from_millis(10);
    assert_eq!(
        limits.validate().map_err(|e| e.to_string()),
        Err(
            "invalid gRPC server limit tls_handshake_timeout: 10ms is not between 100ms and 60s"
                .to_owned()
        )
    );
}
