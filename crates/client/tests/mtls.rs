//! Two clients of the in-process CA talk mutual TLS over loopback TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use meshid_client::tls::{ClientAuth, client_config, peer_identity, server_config};
use meshid_policy::TokioClock;
use rustls::pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Accepts one connection, echoes one message prefixed with the client's identity.
async fn serve_once(
    listener: TcpListener,
    config: rustls::ServerConfig,
) -> Result<Option<String>, String> {
    let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut tls = TlsAcceptor::from(Arc::new(config))
        .accept(tcp)
        .await
        .map_err(|e| e.to_string())?;
    let client_id = peer_identity(tls.get_ref().1);
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    tls.write_all(&buf).await.map_err(|e| e.to_string())?;
    tls.shutdown().await.map_err(|e| e.to_string())?;
    Ok(client_id)
}

async fn connect(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> Result<(Option<String>, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name =
        ServerName::try_from("emoji-svc.emojivoto.serviceaccount.identity.linkerd.cluster.local")
            .map_err(|e| e.to_string())?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let server_id = peer_identity(tls.get_ref().1);
    tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
    let mut echoed = Vec::new();
    tls.read_to_end(&mut echoed)
        .await
        .map_err(|e| e.to_string())?;
    Ok((server_id, echoed))
}

#[tokio::test]
async fn mutual_tls_between_two_workloads() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    let mut emoji = local_client(&pki, EMOJI, clock);
    web.certify_once().await.unwrap();
    emoji.certify_once().await.unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(
        listener,
        server_config(emoji.credentials(), ClientAuth::Required, clock).unwrap(),
    ));
    let (server_id, echoed) = connect(
        addr,
        client_config(web.credentials(), EMOJI, clock).unwrap(),
    )
    .await
    .unwrap();
    let client_id = server.await.unwrap().unwrap();
    assert_eq!(
        server_id.as_deref(),
        Some(EMOJI),
        "the client sees the server's identity"
    );
    assert_eq!(
        client_id.as_deref(),
        Some(WEB),
        "the server sees the client's identity"
    );
    assert_eq!(echoed, b"hello");
}

#[tokio::test]
async fn a_client_expecting_another_identity_fails_clearly() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    let mut emoji = local_client(&pki, EMOJI, clock);
    web.certify_once().await.unwrap();
    emoji.certify_once().await.unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(
        listener,
        server_config(emoji.credentials(), ClientAuth::Required, clock).unwrap(),
    ));
    let err = connect(
        addr,
        client_config(web.credentials(), VOTING, clock).unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "invalid peer certificate: certificate not valid for name \"{VOTING}\"; certificate is only valid for {EMOJI}"
        )
    );
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_where_client_auth_is_required() {
    let pki = Pki::new();
    let clock = TokioClock::new(START);
    let web = local_client(&pki, WEB, clock); // never certified: no certificate to present
    let mut emoji = local_client(&pki, EMOJI, clock);
    emoji.certify_once().await.unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(
        listener,
        server_config(emoji.credentials(), ClientAuth::Required, clock).unwrap(),
    ));
    // The client may finish its side of the handshake; the server refuses, so nothing echoes.
    let client = connect(
        addr,
        client_config(web.credentials(), EMOJI, clock).unwrap(),
    )
    .await;
    let server = server.await.unwrap();
    assert_eq!(server.unwrap_err(), "peer sent no certificates");
    assert!(client.is_err(), "{client:?}");

    // With optional client auth the same client is served, without a client identity.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(
        listener,
        server_config(emoji.credentials(), ClientAuth::Optional, clock).unwrap(),
    ));
    let (server_id, echoed) = connect(
        addr,
        client_config(web.credentials(), EMOJI, clock).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(server_id.as_deref(), Some(EMOJI));
    assert_eq!(echoed, b"hello");
    assert_eq!(server.await.unwrap().unwrap(), None);
}

#[tokio::test]
async fn a_server_from_another_mesh_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    let mut impostor = local_client(&other, EMOJI, clock);
    web.certify_once().await.unwrap();
    impostor.certify_once().await.unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_once(
        listener,
        server_config(impostor.credentials(), ClientAuth::Optional, clock).unwrap(),
    ));
    let err = connect(
        addr,
        client_config(web.credentials(), EMOJI, clock).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("certificate chain rejected"), "{err}");
    // The impostor's side never completes a handshake either.
    let served = server.await.unwrap();
    assert!(served.is_err(), "{served:?}");
}
