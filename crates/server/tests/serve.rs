//! The identity service end to end: dev state, gRPC Certify with a dev token, admin HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meshid_client::{Client, ClientConfig, State, SystemClock, TokenSource};
use meshid_grpc::{GrpcCertifier, Timeouts};
use meshid_policy::ServiceAccount;
use meshid_server::dev::{DEV_TOKEN_ISSUER, DevState};
use meshid_server::serve::{ServeConfig, TokenValidation, start};
use meshid_verify::TrustBundle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("meshid-server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[tokio::test]
async fn dev_mode_certifies_a_workload_and_reports_on_admin() {
    let dir = temp_dir("dev");
    let dev = DevState::prepare(&dir, now()).unwrap();
    // Reusing the folder keeps the same anchor.
    let anchors = std::fs::read(dev.trust_anchors()).unwrap();
    let dev = DevState::prepare(&dir, now()).unwrap();
    assert_eq!(std::fs::read(dev.trust_anchors()).unwrap(), anchors);
    use std::os::unix::fs::PermissionsExt as _;
    for key in ["trust-anchor.key", "token-signing.key", "issuer/key.pem"] {
        let mode = std::fs::metadata(dir.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }

    let mut config = ServeConfig::new(
        dev.issuer_folder(),
        Some(dev.trust_anchors()),
        TokenValidation::Jwks(dev.jwks()),
    );
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
    let (stop, stopped) = oneshot::channel::<()>();
    let running = start(config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    assert!(
        http_get(running.admin_addr, "/ready")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        http_get(running.admin_addr, "/ping")
            .await
            .ends_with("pong\n")
    );
    assert!(
        http_get(running.admin_addr, "/live")
            .await
            .starts_with("HTTP/1.1 200")
    );

    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let token = dev
        .token(&sa, "identity.l5d.io", Duration::from_secs(3600), now())
        .unwrap();
    let identity = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
    let bundle = TrustBundle::from_pem(&std::fs::read(dev.trust_anchors()).unwrap()).unwrap();
    let certifier = GrpcCertifier::connect_plaintext(
        &format!("http://{}", running.grpc_addr),
        Timeouts::default(),
    )
    .await
    .unwrap();
    let mut client = Client::new(
        ClientConfig::new(
            identity,
            TokenSource::Fixed(Zeroizing::new(token.into_bytes())),
            bundle,
        ),
        certifier,
        SystemClock,
    )
    .unwrap();
    client.certify_once().await.unwrap();
    assert!(matches!(
        client.credentials().current_state(),
        State::Ready { .. }
    ));

    // A token for another ServiceAccount is refused.
    let other = ServiceAccount::new("emojivoto", "emoji").unwrap();
    let token = dev
        .token(&other, "identity.l5d.io", Duration::from_secs(3600), now())
        .unwrap();
    let certifier = GrpcCertifier::connect_plaintext(
        &format!("http://{}", running.grpc_addr),
        Timeouts::default(),
    )
    .await
    .unwrap();
    let mut cfg = ClientConfig::new(
        identity,
        TokenSource::Fixed(Zeroizing::new(token.into_bytes())),
        client.credentials().trust_bundle().as_ref().clone(),
    );
    cfg.rekey = true;
    let mut impostor = Client::new(cfg, certifier, SystemClock).unwrap();
    let err = impostor.certify_once().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("requested identity did not match provided token"),
        "{err}"
    );

    let metrics = http_get(running.admin_addr, "/metrics").await;
    for name in [
        "issuer_cert_ttl_seconds",
        "issuer_cert_not_after_timestamp_seconds",
        "identity_trust_anchor_expiration_timestamp_seconds",
        "identity_certify_requests_total{code=\"OK\"} 1",
        "identity_certify_requests_total{code=\"FailedPrecondition\"} 1",
        "identity_certify_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }

    stop.send(()).unwrap();
    running.wait().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_broken_issuer_folder_fails_fast_with_one_line() {
    let dir = temp_dir("broken");
    let dev = DevState::prepare(dir.join("dev"), now()).unwrap();
    let issuer = dir.join("issuer");
    std::fs::create_dir_all(&issuer).unwrap();
    std::fs::write(
        issuer.join("crt.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    std::fs::write(issuer.join("key.pem"), "garbage").unwrap();
    let mut config = ServeConfig::new(
        meshid_issuer::IssuerFolder::new(&issuer, meshid_issuer::IssuerScheme::LinkerdTls),
        Some(dev.trust_anchors()),
        TokenValidation::Jwks(dev.jwks()),
    );
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    let err = start(config, std::future::pending())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(
        text,
        "invalid issuer: the certificate file is not valid PEM: a PEM block is incomplete or corrupt (is the file half-written?)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn token_validation_flags() {
    assert_eq!(
        "tokenreview".parse::<TokenValidation>().unwrap(),
        TokenValidation::TokenReview
    );
    assert_eq!(
        "jwks:/a/b.json".parse::<TokenValidation>().unwrap(),
        TokenValidation::Jwks("/a/b.json".into())
    );
    assert_eq!(
        "static:t.csv".parse::<TokenValidation>().unwrap(),
        TokenValidation::Static("t.csv".into())
    );
    assert_eq!(
        "jwt".parse::<TokenValidation>().unwrap_err().to_string(),
        "invalid token validation 'jwt': expected tokenreview, jwks:FILE or static:FILE"
    );
}
