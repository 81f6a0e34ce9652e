//! The admin server's limits, attacked on loopback: clients that never finish their headers
//! are dropped after the header-read timeout without holding up `/ready`; past the connection
//! cap new connections are closed, and served again once there is room.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::http_get;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
use meshid_policy::{IssuancePolicy, Mesh, SystemClock};
use meshid_server::admin::{self, AdminLimits, AdminState};
use meshid_server::ready::{GrpcState, Readiness};
use meshid_verify::TrustBundle;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Generous: a bound on a test that would otherwise hang, not a performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// An admin server on 127.0.0.1 whose `/ready` is 200 (serving, a usable issuer).
struct Admin {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Admin {
    async fn start(limits: AdminLimits) -> Self {
        let day = Duration::from_secs(86_400);
        let root = create_root(&CaOptions::root("root", now() - day, 10 * day)).unwrap();
        let issuer =
            create_intermediate(&root, &CaOptions::issuer("issuer", now() - day, 2 * day)).unwrap();
        let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
        let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle).unwrap());
        ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now())
            .unwrap();
        let readiness = Readiness::new(ca, Arc::new(SystemClock));
        readiness.set_grpc(GrpcState::Serving);
        let state = Arc::new(
            AdminState::new(prometheus_client::registry::Registry::default(), || {})
                .with_readiness(readiness),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            admin::serve(listener, state, &limits, async {
                let _ = stopped.await;
            })
            .await;
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

/// Whether the server still holds `tcp` open (nothing to read, no end of stream).
fn held(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tcp.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_their_headers_neither_hold_up_ready_nor_stay() {
    let mut limits = AdminLimits::default();
    limits.header_read_timeout = Duration::from_secs(2);
    let admin = Admin::start(limits).await;

    // 300 clients start a request and never finish its headers.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut tcp = TcpStream::connect(admin.addr).await.unwrap();
        tcp.write_all(b"GET /ready HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }

    // /ready answers while every one of them is still held.
    let ready = tokio::time::timeout(PATIENCE, http_get(admin.addr, "/ready"))
        .await
        .expect("/ready answered");
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");
    assert!(ready.ends_with("\r\n\r\nready\n"), "{ready}");
    let still_held = slow.iter().filter(|tcp| held(tcp)).count();
    assert_eq!(still_held, 300, "slow clients dropped before the timeout");

    // Then each is dropped, after the timeout.
    for tcp in &mut slow {
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest))
            .await
            .expect("a slow client was kept past the header-read timeout")
            .unwrap();
    }

    let ready = http_get(admin.addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");
    admin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_until_there_is_room() {
    let mut limits = AdminLimits::default();
    limits.max_connections = 4;
    limits.header_read_timeout = Duration::from_secs(10);
    let admin = Admin::start(limits).await;

    // Four idle connections take every place; the server has taken them once it answers.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(admin.addr).await.unwrap());
    }
    // The fifth is closed unanswered.
    let refused = tokio::time::timeout(PATIENCE, http_get(admin.addr, "/ready"))
        .await
        .expect("closed at once");
    assert_eq!(refused, "");

    // One idle client leaves: /ready is served again.
    drop(idle.pop());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let ready = http_get(admin.addr, "/ready").await;
        if ready.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert_eq!(ready, "", "neither served nor refused");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after a client left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        idle.iter().all(held),
        "an idle client within the cap was dropped"
    );
    admin.stop().await;
}

/// Every path in `admin::ROUTES` is a route of the server (what the Kubernetes probes of
/// `manifests` point at), each with its own answer; any other path is 404.
#[tokio::test]
async fn the_exported_routes_are_the_ones_served() {
    let admin = Admin::start(AdminLimits::default()).await;
    let expected = [
        (admin::PING_PATH, "pong\n"),
        (admin::LIVE_PATH, "live\n"),
        (admin::READY_PATH, "ready\n"),
    ];
    for (path, body) in expected {
        let answer = tokio::time::timeout(PATIENCE, http_get(admin.addr, path))
            .await
            .expect("answered");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{path}: {answer}");
        assert!(
            answer.ends_with(&format!("\r\n\r\n{body}")),
            "{path}: {answer}"
        );
    }
    let metrics = http_get(admin.addr, admin::METRICS_PATH).await;
    assert!(metrics.starts_with("HTTP/1.1 200 "), "{metrics}");
    assert!(
        metrics.contains("application/openmetrics-text"),
        "{metrics}"
    );
    assert_eq!(
        admin::ROUTES,
        [
            admin::PING_PATH,
            admin::LIVE_PATH,
            admin::READY_PATH,
            admin::METRICS_PATH
        ]
    );
    let unknown = http_get(admin.addr, "/healthz").await;
    assert!(unknown.starts_with("HTTP/1.1 404 "), "{unknown}");
    admin.stop().await;
}
