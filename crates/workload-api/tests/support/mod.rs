//! A SPIFFE-mode CA and a workload certified by it, at the real time (clients of the Workload
//! API check SVIDs against the system clock), and a Workload API serving it on a socket.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_client::{Client, ClientConfig, LocalCertifier, TokenSource};
use meshid_policy::{IssuancePolicy, Mesh, SanMode, ServiceAccount, SystemClock};
use meshid_verify::TrustBundle;
use meshid_workload_api::{DEFAULT_SOCKET_MODE, UnixSocket, WorkloadApiService};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

pub const WEB_SPIFFE: &str = "spiffe://cluster.local/ns/emojivoto/sa/web";
/// Generous: every step takes milliseconds.
pub const STEP: Duration = Duration::from_secs(20);

#[allow(clippy::disallowed_methods)]
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

pub fn root(name: &str) -> CaCertificate {
    create_root(&CaOptions::root(
        name,
        now() - Duration::from_secs(3600),
        Duration::from_secs(365 * 86_400),
    ))
    .unwrap()
}

pub fn issuer(root: &CaCertificate) -> CaCertificate {
    create_intermediate(
        root,
        &CaOptions::issuer(
            "identity.linkerd.cluster.local",
            now() - Duration::from_secs(60),
            Duration::from_secs(2 * 86_400),
        ),
    )
    .unwrap()
}

pub fn bundle_of(roots: &[&CaCertificate]) -> TrustBundle {
    let pem: String = roots.iter().map(|r| r.pem()).collect();
    TrustBundle::from_pem(pem.as_bytes()).unwrap()
}

/// A SPIFFE-mode CA and emojivoto/web's client, certified once.
pub struct Workload {
    pub root: CaCertificate,
    pub ca: Arc<Ca>,
    pub client: Client<LocalCertifier<SystemClock>, SystemClock>,
}

impl Workload {
    pub async fn certified() -> Self {
        let root = root("root.linkerd.cluster.local");
        let issuer = issuer(&root);
        let bundle = bundle_of(&[&root]);
        let mut policy = IssuancePolicy::default();
        policy.san_mode = SanMode::Spiffe;
        let ca = Arc::new(Ca::new(Mesh::default(), policy, bundle.clone()).unwrap());
        ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now())
            .unwrap();
        let sa = ServiceAccount::new("emojivoto", "web").unwrap();
        let token = TokenSource::Fixed(Zeroizing::new(b"in-process".to_vec()));
        let config = ClientConfig::for_service_account(
            &Mesh::default(),
            &sa,
            SanMode::Spiffe,
            token,
            bundle,
        )
        .unwrap();
        let mut client = Client::new(
            config,
            LocalCertifier::new(Arc::clone(&ca), SystemClock),
            SystemClock,
        )
        .unwrap();
        client.certify_once().await.unwrap();
        Self { root, ca, client }
    }
}

/// A Workload API served on a socket in a fresh folder, until dropped.
pub struct Served {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub service: WorkloadApiService,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), meshid_workload_api::Error>>,
}

impl Served {
    pub async fn start(workload: &Workload) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let socket = UnixSocket::bind(&path, DEFAULT_SOCKET_MODE).await.unwrap();
        let service = WorkloadApiService::new(workload.client.credentials()).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service.clone().serve(socket, async move {
            let _ = stopped.await;
        }));
        Self {
            dir,
            path,
            service,
            stop: Some(stop),
            task,
        }
    }

    /// `unix:<path>`, as SPIFFE clients take the endpoint.
    pub fn endpoint(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
    }
}
