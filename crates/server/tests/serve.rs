//! The identity service end to end: dev state, gRPC Certify with a dev token, admin HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::http_get;

use std::sync::Arc;
use std::time::Duration;

use meshid_client::{Client, ClientConfig, State, TokenSource};
use meshid_grpc::{GrpcCertifier, Timeouts};
use meshid_kube_testing::{Answer, ApiServerDouble};
use meshid_policy::{Clock as _, ServiceAccount, SystemClock};
use meshid_server::dev::{DEV_TOKEN_ISSUER, DevState};
use meshid_server::serve::{ServeConfig, TokenValidation, start, start_with_clock};
use meshid_verify::TrustBundle;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// A fresh folder, removed when the returned value is dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshid-server-{name}-"))
        .tempdir()
        .unwrap()
}

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";

/// The development state's issuer, anchors and tokens, on ephemeral ports.
fn dev_config(dev: &DevState) -> ServeConfig {
    let mut config = ServeConfig::new(
        dev.issuer_folder(),
        Some(dev.trust_anchors()),
        TokenValidation::Jwks(dev.jwks()),
    );
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
    config
}

/// A client for emojivoto/web with a development token, certifying at `grpc_addr`.
async fn web_client(
    dev: &DevState,
    grpc_addr: std::net::SocketAddr,
) -> Client<GrpcCertifier, SystemClock> {
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let token = dev
        .token(&sa, "identity.l5d.io", Duration::from_secs(3600), now())
        .unwrap();
    let bundle = TrustBundle::from_pem(&std::fs::read(dev.trust_anchors()).unwrap()).unwrap();
    let certifier =
        GrpcCertifier::connect_plaintext(&format!("http://{grpc_addr}"), Timeouts::default())
            .await
            .unwrap();
    Client::new(
        ClientConfig::new(
            WEB,
            TokenSource::Fixed(Zeroizing::new(token.into_bytes())),
            bundle,
        ),
        certifier,
        SystemClock,
    )
    .unwrap()
}

#[tokio::test]
async fn dev_mode_certifies_a_workload_and_reports_on_admin() {
    let dir = temp_dir("dev");
    let dev = DevState::prepare(dir.path(), now()).unwrap();
    // Reusing the folder keeps the same anchor.
    let anchors = std::fs::read(dev.trust_anchors()).unwrap();
    let dev = DevState::prepare(dir.path(), now()).unwrap();
    assert_eq!(std::fs::read(dev.trust_anchors()).unwrap(), anchors);
    use std::os::unix::fs::PermissionsExt as _;
    for key in ["trust-anchor.key", "token-signing.key", "issuer/key.pem"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }

    let config = dev_config(&dev);
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

    let mut client = web_client(&dev, running.grpc_addr).await;
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
        WEB,
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
}

#[tokio::test]
async fn a_broken_issuer_folder_fails_fast_with_one_line() {
    let dir = temp_dir("broken");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    let issuer = dir.path().join("issuer");
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
        "oidc".parse::<TokenValidation>().unwrap(),
        TokenValidation::Oidc {
            review_fallback: true
        }
    );
    assert_eq!(
        "oidc-only".parse::<TokenValidation>().unwrap(),
        TokenValidation::Oidc {
            review_fallback: false
        }
    );
    assert_eq!(
        "jwt".parse::<TokenValidation>().unwrap_err().to_string(),
        "invalid token validation 'jwt': expected tokenreview, oidc, oidc-only, jwks:FILE or \
         static:FILE"
    );
}

/// (path, authorization header, JSON body) of a request to the API server double.
type Posted = (String, String, serde_json::Value);

/// The next event posted with `reason`, skipping others.
async fn posted(api: &ApiServerDouble, reason: &str) -> Posted {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(req) = api.next_request(left).await else {
            panic!("no {reason} event posted");
        };
        let json: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        if json["reason"] == reason {
            return (req.path.clone(), req.authorization().to_owned(), json);
        }
    }
}

/// A kubeconfig in `dir` reaching `api` with a bearer token.
fn kubeconfig_for(api: &ApiServerDouble, dir: &std::path::Path) -> std::path::PathBuf {
    let url = api.url();
    std::fs::write(dir.join("api-ca.crt"), api.ca_pem()).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "current-context: dev\n\
             contexts: [{{name: dev, context: {{cluster: c, user: identity}}}}]\n\
             clusters: [{{name: c, cluster: {{server: '{url}', certificate-authority: api-ca.crt}}}}]\n\
             users: [{{name: identity, user: {{token: identity-token}}}}]\n"
        ),
    )
    .unwrap();
    kubeconfig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_events_still_queued_at_shutdown_are_posted_before_wait_returns() {
    let dir = temp_dir("kube-events-shutdown");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    // An API server that takes a while to create each Event.
    let api = ApiServerDouble::builder()
        .answer(|request| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Answer::echo(&request)
        })
        .start()
        .await;
    let mut config = dev_config(&dev);
    config.kube_api.kubeconfig = Some(kubeconfig_for(&api, dir.path()));
    config.kube_events = true;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = start(config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();

    let mut client = web_client(&dev, running.grpc_addr).await;
    for _ in 0..3 {
        client.certify_once().await.unwrap();
    }
    // Stopped at once: the three events are still queued (one post takes 300 ms).
    stop.send(()).unwrap();
    running.wait().await.unwrap();
    let issued = api
        .requests()
        .iter()
        .filter(|request| {
            serde_json::from_slice::<serde_json::Value>(&request.body).unwrap()["reason"]
                == "IssuedLeafCertificate"
        })
        .count();
    assert_eq!(
        issued, 3,
        "every queued event was posted before wait returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_events_post_issuance_and_issuer_updates_through_the_kubeconfig() {
    let dir = temp_dir("kube-events");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    // A local HTTPS endpoint that answers like the API server creating an Event.
    let api = ApiServerDouble::start().await;

    let mut config = dev_config(&dev);
    config.kube_api.kubeconfig = Some(kubeconfig_for(&api, dir.path()));
    config.kube_events = true;
    config.reload = meshid_issuer::ReloaderOptions::new(Duration::from_millis(100), true);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = start(config, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();

    // An issuance is posted as IssuedLeafCertificate on the identity Deployment.
    web_client(&dev, running.grpc_addr)
        .await
        .certify_once()
        .await
        .unwrap();
    let (path, auth, json) = posted(&api, "IssuedLeafCertificate").await;
    assert_eq!(path, "/api/v1/namespaces/linkerd/events");
    assert_eq!(auth, "Bearer identity-token");
    assert_eq!(json["type"], "Normal");
    assert_eq!(json["involvedObject"]["kind"], "Deployment");
    assert_eq!(json["involvedObject"]["name"], "linkerd-identity");
    assert_eq!(json["involvedObject"]["namespace"], "linkerd");
    let message = json["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("issued certificate for {WEB} until ")),
        "{message}"
    );

    // A new issuer in the folder is loaded and posted as IssuerUpdated.
    let anchor = meshid_issuer::bootstrap::TrustAnchorKey::load(
        &dev.trust_anchors(),
        &dev.trust_anchor_key(),
    )
    .unwrap();
    let folder = dev.issuer_folder();
    meshid_issuer::bootstrap::write_issuer(
        &anchor,
        &meshid_issuer::bootstrap::OutputFiles::new(folder.cert_path(), folder.key_path()),
        &meshid_issuer::bootstrap::issuer_options(
            meshid_issuer::bootstrap::ISSUER_COMMON_NAME,
            now(),
            meshid_issuer::bootstrap::ISSUER_VALIDITY,
            true,
        ),
        true,
    )
    .unwrap();
    let (path, _, json) = posted(&api, "IssuerUpdated").await;
    assert_eq!(path, "/api/v1/namespaces/linkerd/events");
    assert_eq!(json["message"], "Updated identity issuer");

    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn kube_events_with_a_broken_kubeconfig_fail_at_start_in_one_line() {
    let dir = temp_dir("kube-events-broken");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    let mut config = dev_config(&dev);
    config.kube_events = true;
    // A kubeconfig whose CA file is missing: refused when the events client is built.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "current-context: dev\n\
         contexts: [{name: dev, context: {cluster: c, user: u}}]\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', certificate-authority: missing.crt}}]\n\
         users: [{name: u, user: {token: t}}]\n",
    )
    .unwrap();
    config.kube_api.kubeconfig = Some(kubeconfig);
    let err = start(config, std::future::pending())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!(
            "cannot read the API server CA file {}: ",
            dir.path().join("missing.crt").display()
        )),
        "{text}"
    );
}

#[test]
fn development_state_files_replace_symlinks_instead_of_following_them() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = temp_dir("dev-symlinks");
    let elsewhere = temp_dir("dev-symlinks-elsewhere");
    let dev_dir = dir.path().join("dev");
    std::fs::create_dir_all(&dev_dir).unwrap();
    // Planted links: the key at a path that does not exist yet, the JWKS over a file that does.
    let key_target = elsewhere.path().join("stolen.key");
    let jwks_target = elsewhere.path().join("precious.json");
    std::fs::write(&jwks_target, "precious").unwrap();
    std::os::unix::fs::symlink(&key_target, dev_dir.join("token-signing.key")).unwrap();
    std::os::unix::fs::symlink(&jwks_target, dev_dir.join("jwks.json")).unwrap();

    let dev = DevState::prepare(&dev_dir, now()).unwrap();

    // Nothing was written through the links.
    assert!(!key_target.exists(), "the key was written through the link");
    assert_eq!(std::fs::read_to_string(&jwks_target).unwrap(), "precious");
    // The links were replaced by regular files: the key 0600, the JWKS 0644.
    for (name, mode) in [("token-signing.key", 0o600), ("jwks.json", 0o644)] {
        let meta = std::fs::symlink_metadata(dev_dir.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is not a regular file");
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
    // No temporary file is left behind, and the key signs tokens the JWKS accepts.
    let names: Vec<String> = std::fs::read_dir(&dev_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".meshid-dev-")),
        "{names:?}"
    );
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    dev.token(&sa, "identity.l5d.io", Duration::from_secs(60), now())
        .unwrap();
}

#[tokio::test]
async fn numbers_out_of_range_fail_at_start_in_one_line() {
    let dir = temp_dir("numbers");
    let dev = DevState::prepare(dir.path(), now()).unwrap();
    /// Sets one number out of range.
    type Breaks = fn(&mut ServeConfig);
    let cases: [(Breaks, &str); 4] = [
        (
            |c| c.kube_api.qps = 1e-30,
            "invalid kube_api.qps: 1e-30 is not between 0.01 and 1000000 requests per second",
        ),
        (
            |c| c.kube_api.burst = 0,
            "invalid kube_api.burst: 0 is not between 1 and 1000000",
        ),
        (
            |c| c.grpc.max_concurrent_streams = 0,
            "invalid gRPC server limit max_concurrent_streams: 0 is not between 1 and 10000",
        ),
        (
            |c| c.admin.header_read_timeout = Duration::from_secs(60),
            "invalid admin server limit header_read_timeout: 60s is not between 100ms and 10s",
        ),
    ];
    for (break_it, expected) in cases {
        let mut config = dev_config(&dev);
        break_it(&mut config);
        let err = start(config, std::future::pending())
            .await
            .err()
            .expect("refused");
        assert_eq!(err.to_string(), expected);
    }
}

/// `/ready` follows the issuer: 503 with the reason once it has expired (at the service's
/// clock), 200 again once the reloader has loaded a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_issuer_is_expired_and_200_once_a_new_one_is_loaded() {
    let dir = temp_dir("ready-issuer");
    let dev = DevState::prepare(dir.path(), now()).unwrap();
    let mut config = dev_config(&dev);
    config.reload = meshid_issuer::ReloaderOptions::new(Duration::from_millis(100), true);
    let clock = Arc::new(meshid_policy::ManualClock::new(now()));
    let (stop, stopped) = oneshot::channel::<()>();
    let running = start_with_clock(config, clock.clone(), async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let ready = http_get(running.admin_addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");

    // Three days on, the 48h development issuer has expired.
    let not_after = running.ca.issuer().unwrap().not_after();
    clock.set(not_after + time::Duration::days(1));
    let ready = http_get(running.admin_addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 503 "), "{ready}");
    let reason = format!(
        "not ready: issuer cannot issue: issuer certificate expired at {} (now {}); rotate it\n",
        meshid_policy::rfc3339(not_after),
        meshid_policy::rfc3339(not_after + time::Duration::days(1))
    );
    assert!(ready.ends_with(&reason), "{ready}");

    // A new issuer is written to the folder and reloaded.
    let anchor = meshid_issuer::bootstrap::TrustAnchorKey::load(
        &dev.trust_anchors(),
        &dev.trust_anchor_key(),
    )
    .unwrap();
    let folder = dev.issuer_folder();
    meshid_issuer::bootstrap::write_issuer(
        &anchor,
        &meshid_issuer::bootstrap::OutputFiles::new(folder.cert_path(), folder.key_path()),
        &meshid_issuer::bootstrap::issuer_options(
            meshid_issuer::bootstrap::ISSUER_COMMON_NAME,
            clock.now(),
            meshid_issuer::bootstrap::ISSUER_VALIDITY,
            true,
        ),
        true,
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = http_get(running.admin_addr, "/ready").await;
        if ready.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not ready: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

/// At shutdown the gRPC server finishes the requests in flight; meanwhile `/ready` answers
/// 503 and why, and the admin server stops only after the gRPC server has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_grpc_server_finishes_its_requests_at_shutdown() {
    let dir = temp_dir("ready-shutdown");
    let dev = DevState::prepare(dir.path(), now()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = start(dev_config(&dev), async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let admin = running.admin_addr;

    // A request in flight: its headers sent, its message not yet.
    let tcp = tokio::net::TcpStream::connect(running.grpc_addr)
        .await
        .unwrap();
    let (h2, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut ping = connection.ping_pong().unwrap();
    let connection = tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let post = http::Request::post(format!(
        "http://{}/io.linkerd.proxy.identity.Identity/Certify",
        running.grpc_addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, body) = h2.send_request(post, false).unwrap();
    // The server has read it once a PING sent after it comes back.
    ping.ping(h2::Ping::opaque()).await.unwrap();

    let waiting = tokio::spawn(running.wait());
    stop.send(()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let ready = http_get(admin, "/ready").await;
        if ready.starts_with("HTTP/1.1 503 ") {
            break ready;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ready}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        ready.ends_with(
            "\r\n\r\nnot ready: the gRPC server is shutting down, finishing the requests in flight\n"
        ),
        "{ready}"
    );
    assert!(!waiting.is_finished());

    // The request is abandoned: the gRPC server, then the admin server, stop.
    drop((response, body, h2, ping));
    connection.abort();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("stopped")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}
