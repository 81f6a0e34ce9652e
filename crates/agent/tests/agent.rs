//! The agent end to end, against a real identity service over loopback: certified with its
//! token, it serves the Workload API (read by the Rust `spiffe` crate's `X509Source`) and SDS
//! (read by a client built from Envoy's protos) on Unix sockets; an identity CA that is down at
//! start leaves it not ready, retrying, until the CA answers; bad configurations and a socket in
//! use are refused at start with one clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use hyper_util::rt::TokioIo;
use meshid_agent::{
    AddrProblem, AgentConfig, AnchorsProblem, ConfigProblem, Error, Running, start,
};
use meshid_authn::StaticAuthenticator;
use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_client::{State, TokenSource};
use meshid_grpc::{IdentityService, Timeouts};
use meshid_policy::{IssuancePolicy, Mesh, SanMode, ServiceAccount, SystemClock};
use meshid_rotation::BackoffPolicy;
use meshid_verify::TrustBundle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::transport::{Endpoint, Uri};
use zeroize::Zeroizing;

const WEB_SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";
/// Generous: every step takes milliseconds, retries a few seconds.
const STEP: Duration = Duration::from_secs(30);

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A trust anchor file and a SPIFFE-mode CA with an issuer under it.
struct Pki {
    dir: tempfile::TempDir,
    root: CaCertificate,
    ca: Arc<Ca>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = create_root(&CaOptions::root(
            "root.linkerd.cluster.local",
            now() - Duration::from_secs(3600),
            Duration::from_secs(365 * 86_400),
        ))
        .unwrap();
        let issuer = create_intermediate(
            &root,
            &CaOptions::issuer(
                "identity.linkerd.cluster.local",
                now() - Duration::from_secs(60),
                Duration::from_secs(2 * 86_400),
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("ca.crt"), root.pem()).unwrap();
        let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
        let mut policy = IssuancePolicy::default();
        policy.san_mode = SanMode::Spiffe;
        let ca = Arc::new(Ca::new(Mesh::default(), policy, bundle).unwrap());
        ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now())
            .unwrap();
        Self { dir, root, ca }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// The identity service on `listener`, accepting `web-token` for emojivoto/web.
    fn serve(&self, listener: TcpListener) -> oneshot::Sender<()> {
        let authn = StaticAuthenticator::parse("web-token,emojivoto,web").unwrap();
        let service = IdentityService::new(Arc::clone(&self.ca), authn, SystemClock);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(service.serve(listener, async move {
            let _ = stopped.await;
        }));
        stop
    }

    /// An agent configuration for emojivoto/web against `addr`, serving both APIs.
    fn config(&self, addr: std::net::SocketAddr) -> AgentConfig {
        let sa = ServiceAccount::new("emojivoto", "web").unwrap();
        let token = TokenSource::Fixed(Zeroizing::new(b"web-token".to_vec()));
        let mut config = AgentConfig::new(format!("http://{addr}"), self.path("ca.crt"), sa, token);
        config.workload_api_socket = Some(self.path("agent.sock"));
        config.sds_socket = Some(self.path("sds.sock"));
        config.admin_addr = "127.0.0.1:0".parse().unwrap();
        config.timeouts = Timeouts::new(Duration::from_secs(2), Duration::from_secs(5));
        let mut backoff = BackoffPolicy::default();
        backoff.initial = Duration::from_millis(100);
        backoff.cap_without_cert = Duration::from_secs(1);
        config.backoff = backoff;
        config
    }
}

async fn ready(running: &Running) {
    let mut state = running.credentials.state();
    tokio::time::timeout(STEP, state.wait_for(|s| matches!(s, State::Ready { .. })))
        .await
        .expect("certified in time")
        .unwrap();
}

/// `GET path` on the admin server: status code and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

async fn sds_client(path: &Path) -> SecretDiscoveryServiceClient<tonic::transport::Channel> {
    let path = path.to_owned();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap();
    SecretDiscoveryServiceClient::new(channel)
}

#[tokio::test]
async fn the_agent_serves_its_identity_over_the_workload_api_and_sds() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _ca = pki.serve(listener);
    let (stop, stopping) = oneshot::channel::<()>();
    let running = start(pki.config(addr), async move {
        let _ = stopping.await;
    })
    .await
    .unwrap();
    assert_eq!(running.spiffe_id, WEB_SPIFFE);
    ready(&running).await;
    assert_eq!(http_get(running.admin_addr, "/ready").await.0, 200);

    // The Workload API, read by the Rust SPIFFE client.
    let source = tokio::time::timeout(
        STEP,
        spiffe::X509Source::builder()
            .endpoint(format!("unix:{}", pki.path("agent.sock").display()))
            .build(),
    )
    .await
    .unwrap()
    .unwrap();
    let svid = source.svid().unwrap();
    assert_eq!(svid.spiffe_id().to_string(), WEB_SPIFFE);
    let snapshot = running.credentials.snapshot().unwrap();
    assert_eq!(svid.leaf().as_ref(), snapshot.chain()[0].as_ref());
    let td = spiffe::TrustDomain::new("cluster.local").unwrap();
    let bundles = source.bundle_set().unwrap();
    assert_eq!(
        bundles.get(&td).unwrap().authorities()[0].as_ref(),
        pki.root.der().as_ref()
    );
    source.shutdown().await;

    // SDS, read by a client built from Envoy's protos.
    let mut sds = sds_client(&pki.path("sds.sock")).await;
    let response = sds
        .fetch_secrets(DiscoveryRequest {
            resource_names: vec!["default".to_owned(), "ROOTCA".to_owned()],
            type_url: meshid_sds::SECRET_TYPE_URL.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.resources.len(), 2);
    // A stream Envoy keeps open: the agent's shutdown ends it instead of waiting for it.
    let (requests, rx) = tokio::sync::mpsc::channel(1);
    requests
        .send(DiscoveryRequest {
            resource_names: vec!["default".to_owned()],
            type_url: meshid_sds::SECRET_TYPE_URL.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut secrets = sds
        .stream_secrets(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    secrets.message().await.unwrap().unwrap();

    // Metrics like the proxy's; the sockets are removed at shutdown.
    let (code, metrics) = http_get(running.admin_addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("identity_cert_refreshes_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    let _ = stop.send(());
    tokio::time::timeout(STEP, running.wait())
        .await
        .expect("open streams do not hold the shutdown up")
        .unwrap();
    assert!(
        secrets.message().await.unwrap().is_none(),
        "the stream ended"
    );
    drop(requests);
    assert!(!pki.path("agent.sock").exists());
    assert!(!pki.path("sds.sock").exists());
}

#[tokio::test]
async fn with_the_identity_ca_down_at_start_the_agent_is_not_ready_backs_off_and_recovers() {
    let pki = Pki::new();
    // The CA's port, held open; until the CA starts, every connection is dropped at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (attempts_tx, mut attempts) = watch::channel(0usize);
    let (release, released) = oneshot::channel::<()>();
    let refuser = tokio::spawn(async move {
        tokio::pin!(released);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    drop(accepted.unwrap());
                    attempts_tx.send_modify(|n| *n += 1);
                }
                _ = &mut released => return listener,
            }
        }
    });
    let (_stop, stopping) = oneshot::channel::<()>();
    let running = start(pki.config(addr), async move {
        let _ = stopping.await;
    })
    .await
    .expect("the agent starts without its CA");

    // Not ready, and retrying.
    tokio::time::timeout(STEP, attempts.wait_for(|n| *n >= 3))
        .await
        .expect("the agent retries")
        .unwrap();
    assert_eq!(running.credentials.current_state(), State::Pending);
    assert_eq!(
        http_get(running.admin_addr, "/ready").await,
        (503, "not ready: no certificate yet\n".to_owned())
    );
    let (_, metrics) = http_get(running.admin_addr, "/metrics").await;
    assert!(
        metrics.contains("identity_cert_refreshes_total{result=\"error\"}"),
        "{metrics}"
    );

    // The CA comes up on the same port: the agent recovers.
    release.send(()).unwrap();
    let listener = refuser.await.unwrap();
    let _ca = pki.serve(listener);
    ready(&running).await;
    assert_eq!(http_get(running.admin_addr, "/ready").await.0, 200);
}

#[tokio::test]
async fn a_socket_in_use_and_bad_configurations_are_refused_at_start() {
    let pki = Pki::new();
    let addr = "127.0.0.1:9".parse().unwrap();

    // Another process serves on the Workload API socket.
    let _other = tokio::net::UnixListener::bind(pki.path("agent.sock")).unwrap();
    let Err(err) = start(pki.config(addr), std::future::pending()).await else {
        panic!("refused");
    };
    assert_eq!(
        err.to_string(),
        format!(
            "cannot serve on {}: another process is serving on this socket (stop it, or choose another path)",
            pki.path("agent.sock").display()
        )
    );

    let mut dns = pki.config(addr);
    dns.workload_api_socket = Some(pki.path("other.sock"));
    dns.san_mode = SanMode::Dns;
    let Err(err) = start(dns, std::future::pending()).await else {
        panic!("refused");
    };
    assert_eq!(
        err.to_string(),
        "invalid agent configuration: SAN mode dns has no SPIFFE ID, which the Workload API serves: use spiffe or dns+spiffe, as the identity CA's --san-mode"
    );
    assert!(matches!(
        err,
        Error::Config {
            reason: ConfigProblem::NoSpiffeId {
                san_mode: SanMode::Dns
            }
        }
    ));

    let mut nothing = pki.config(addr);
    nothing.workload_api_socket = None;
    nothing.sds_socket = None;
    let Err(err) = start(nothing, std::future::pending()).await else {
        panic!("refused");
    };
    assert_eq!(
        err.to_string(),
        "invalid agent configuration: nothing to serve: give a Workload API socket, an SDS socket, or both"
    );
    assert!(matches!(
        err,
        Error::Config {
            reason: ConfigProblem::NothingToServe
        }
    ));

    let mut same = pki.config(addr);
    same.workload_api_socket = Some(pki.path("other.sock"));
    same.sds_socket = Some(pki.path("other.sock"));
    let Err(err) = start(same, std::future::pending()).await else {
        panic!("refused");
    };
    assert!(matches!(
        err,
        Error::Config {
            reason: ConfigProblem::SameSocket
        }
    ));
    assert_eq!(
        err.to_string(),
        "invalid agent configuration: the Workload API and SDS need two different sockets"
    );

    let mut anchors = pki.config(addr);
    anchors.workload_api_socket = Some(pki.path("other.sock"));
    anchors.trust_anchors = pki.path("missing.crt");
    let Err(err) = start(anchors, std::future::pending()).await else {
        panic!("refused");
    };
    assert!(
        err.to_string().starts_with(&format!(
            "cannot use the trust anchors {}: ",
            pki.path("missing.crt").display()
        )),
        "{err}"
    );
    let Error::TrustAnchors {
        reason: AnchorsProblem::Unreadable { kind, reason },
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*kind, std::io::ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!(
            "cannot use the trust anchors {}: {reason}",
            pki.path("missing.crt").display()
        )
    );

    let mut garbage = pki.config(addr);
    garbage.workload_api_socket = Some(pki.path("other.sock"));
    garbage.trust_anchors = pki.path("garbage.crt");
    std::fs::write(&garbage.trust_anchors, b"not PEM").unwrap();
    let Err(err) = start(garbage, std::future::pending()).await else {
        panic!("refused");
    };
    let Error::TrustAnchors {
        reason: AnchorsProblem::Invalid(cause),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        err.to_string(),
        format!(
            "cannot use the trust anchors {}: {cause}",
            pki.path("garbage.crt").display()
        )
    );

    let mut uri = pki.config(addr);
    uri.workload_api_socket = Some(pki.path("other.sock"));
    uri.identity_addr = "https://127.0.0.1:8080".to_owned();
    let Err(err) = start(uri, std::future::pending()).await else {
        panic!("refused");
    };
    assert_eq!(
        err.to_string(),
        "invalid identity CA address https://127.0.0.1:8080: expected http://host:port (plaintext gRPC, as Linkerd's proxies use)"
    );
    assert!(matches!(
        err,
        Error::IdentityAddr {
            reason: AddrProblem::NotHttp,
            ..
        }
    ));

    let mut garbled = pki.config(addr);
    garbled.workload_api_socket = Some(pki.path("other.sock"));
    garbled.identity_addr = "http://[::1".to_owned();
    let Err(err) = start(garbled, std::future::pending()).await else {
        panic!("refused");
    };
    let Error::IdentityAddr {
        reason: AddrProblem::Invalid { reason },
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        err.to_string(),
        format!("invalid identity CA address http://[::1: {reason}")
    );
}
