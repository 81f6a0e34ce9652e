//! Trust-anchor rotation through all three phases with live mTLS traffic: no failed handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshid_client::tls::{ClientAuth, client_config, server_config};
use meshid_client::{Client, ClientConfig, LocalCertifier, TokenSource};
use meshid_issuer::{Change, CollectingSink, IssuerFolder, IssuerScheme, Reloader};
use meshid_policy::TokioClock;
use rustls::pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zeroize::Zeroizing;

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
const EMOJI: &str = "emoji-svc.emojivoto.serviceaccount.identity.linkerd.cluster.local";

/// One in-memory mTLS connection with a round trip.
async fn exchange(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
) -> Result<(), String> {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let name = ServerName::try_from("peer.invalid").unwrap();
    let accept = async move {
        let mut tls = TlsAcceptor::from(server)
            .accept(b)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(&buf).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())
    };
    let connect = async move {
        let mut tls = TlsConnector::from(client)
            .connect(name, a)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let (s, c) = tokio::join!(accept, connect);
    c.map_err(|e| format!("client: {e}"))?;
    s.map_err(|e| format!("server: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_rotation_in_three_phases_drops_no_handshake() {
    let tmp = temp_dir();
    let old = root("old.root");
    let new = root("new.root");
    let first = issuer(&old, START, 2 * DAY);
    let issuer_dir = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
    let roots = Kubelet::new(
        &tmp.path().join("roots"),
        &[("ca-bundle.crt", bundle_pem(&[&old]).as_bytes())],
    );
    let ca = ca(&[&old]);
    let clock = TokioClock::new(START);
    let events = Arc::new(CollectingSink::new());
    let mut reloader = Reloader::new(
        Arc::clone(&ca),
        IssuerFolder::new(issuer_dir.dir(), IssuerScheme::LinkerdTls),
        clock,
    )
    .with_trust_bundle_file(roots.dir().join("ca-bundle.crt"))
    .with_sink(Arc::clone(&events));
    reloader.reload_now();
    let bundles = reloader.trust_bundle_updates();

    let client = |identity: &str| {
        let token = TokenSource::Fixed(Zeroizing::new(b"token".to_vec()));
        Client::new(
            ClientConfig::new(identity, token, (*ca.trust_bundle()).clone()),
            LocalCertifier::new(Arc::clone(&ca), clock),
            clock,
        )
        .unwrap()
    };
    let mut web = client(WEB);
    let mut emoji = client(EMOJI);
    web.certify_once().await.unwrap();
    emoji.certify_once().await.unwrap();
    let client_cfg = Arc::new(client_config(web.credentials(), EMOJI, clock).unwrap());
    let server_cfg =
        Arc::new(server_config(emoji.credentials(), ClientAuth::Required, clock).unwrap());

    // Live traffic for the whole rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let traffic = {
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match exchange(Arc::clone(&client_cfg), Arc::clone(&server_cfg)).await {
                    Ok(()) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        failed.lock().unwrap().push(e);
                        0
                    }
                };
            }
        })
    };
    let some_traffic = || async {
        let from = ok.load(Ordering::SeqCst);
        while ok.load(Ordering::SeqCst) < from + 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (web_creds, emoji_creds) = (web.credentials(), emoji.credentials());
    let publish = |bundle: &meshid_verify::TrustBundle| {
        web_creds.set_trust_bundle(bundle.clone());
        emoji_creds.set_trust_bundle(bundle.clone());
    };
    some_traffic().await;

    // Phase 1: bundle {old, new}, everywhere.
    roots.swap(&[("ca-bundle.crt", bundle_pem(&[&old, &new]).as_bytes())]);
    assert_eq!(reloader.reload_now().trust_anchors, Change::Updated);
    let phase1 = (**bundles.borrow()).clone();
    publish(&phase1);
    some_traffic().await;

    // Phase 2: an issuer signed by the new anchor; workloads renew onto it.
    let second = issuer(&new, START, 2 * DAY);
    issuer_dir.swap(&as_refs(&linkerd_files(&second)));
    assert_eq!(reloader.reload_now().issuer, Change::Updated);
    web.certify_once().await.unwrap();
    some_traffic().await;
    emoji.certify_once().await.unwrap();
    some_traffic().await;

    // Phase 3: bundle {new}.
    roots.swap(&[("ca-bundle.crt", bundle_pem(&[&new]).as_bytes())]);
    assert_eq!(reloader.reload_now().trust_anchors, Change::Updated);
    let phase3 = (**bundles.borrow()).clone();
    assert_eq!(phase3.len(), 1);
    publish(&phase3);
    some_traffic().await;

    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();
    let failed = failed.lock().unwrap();
    assert!(failed.is_empty(), "failed handshakes: {failed:?}");
    // Five waits of at least 20 exchanges each.
    assert!(ok.load(Ordering::SeqCst) >= 100);
    assert!(ca.trust_bundle().contains(new.der()) && !ca.trust_bundle().contains(old.der()));
    // The old anchor is really gone: a peer still on it would now be refused.
    assert!(web.credentials().trust_bundle().contains(new.der()));
}
