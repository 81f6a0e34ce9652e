//! Two proxies carry an application's bytes over mTLS, and report what they saw.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
use meshid_client::{Client, ClientConfig, LocalCertifier, TokenSource};
use meshid_policy::{IssuancePolicy, Mesh, TokioClock};
use meshid_proxy::{Direction, Tap, inbound, outbound};
use meshid_verify::TrustBundle;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const EMOJI: &str = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local";

#[tokio::test]
async fn bytes_cross_the_mesh_over_mtls() {
    let now = datetime!(2026-06-01 12:00 UTC);
    let day = std::time::Duration::from_secs(86_400);
    let root = create_root(&CaOptions::root("root", now, 365 * day)).unwrap();
    let issuer = create_intermediate(&root, &CaOptions::issuer("issuer", now, 2 * day)).unwrap();
    let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
    let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap());
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)
        .unwrap();
    let clock = TokioClock::new(now);
    let certified = |id: &str| {
        let token = TokenSource::Fixed(Zeroizing::new(b"t".to_vec()));
        Client::new(
            ClientConfig::new(id, token, bundle.clone()),
            LocalCertifier::new(Arc::clone(&ca), clock),
            clock,
        )
        .unwrap()
    };
    let mut web = certified(WEB);
    let mut emoji = certified(EMOJI);
    web.certify_once().await.unwrap();
    emoji.certify_once().await.unwrap();

    // The emoji application: an uppercasing echo server.
    let app = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = app.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf.to_ascii_uppercase()).await.unwrap();
    });

    let (taps, mut seen) = mpsc::unbounded_channel::<Tap>();
    let inbound_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inbound_addr = inbound_listener.local_addr().unwrap();
    tokio::spawn(inbound::serve(
        inbound_listener,
        app_addr,
        emoji.credentials(),
        clock,
        Some(taps.clone()),
        std::future::pending(),
    ));
    let outbound_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outbound_addr = outbound_listener.local_addr().unwrap();
    tokio::spawn(outbound::serve(
        outbound_listener,
        inbound_addr,
        EMOJI.to_owned(),
        web.credentials(),
        clock,
        Some(taps),
        std::future::pending(),
    ));

    // The web application talks plain TCP to its proxy.
    let mut conn = TcpStream::connect(outbound_addr).await.unwrap();
    conn.write_all(b"hello").await.unwrap();
    let mut reply = [0u8; 5];
    conn.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HELLO");

    let mut taps = [seen.recv().await.unwrap(), seen.recv().await.unwrap()];
    taps.sort_by_key(|t| t.direction == Direction::In);
    assert_eq!(taps[0].direction, Direction::Out);
    assert_eq!(taps[0].peer_identity.as_deref(), Some(EMOJI));
    assert_eq!(taps[0].dst, inbound_addr);
    assert_eq!(taps[1].direction, Direction::In);
    assert_eq!(taps[1].peer_identity.as_deref(), Some(WEB));
    assert_eq!(taps[1].dst, app_addr);
    // The two taps of one call pair up: the inbound side saw the outbound side's end of the
    // mTLS connection as its source, and was reached on its own listener.
    assert_eq!(taps[1].src, taps[0].mtls_local);
    assert_eq!(taps[1].mtls_local, inbound_addr);
}
