//! The agent: certify, watch the bundle, serve the Workload API and SDS, report readiness.

use core::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use meshid_admin::{self as admin, AdminState};
use meshid_client::{
    BundleWatchOptions, BundleWatcher, Client, ClientConfig, Credentials, Metrics, TokenSource,
};
use meshid_grpc::{GrpcCertifier, Timeouts};
use meshid_policy::{Mesh, SanMode, ServiceAccount, SystemClock};
use meshid_rotation::BackoffPolicy;
use meshid_sds::SdsService;
use meshid_verify::TrustBundle;
use meshid_workload_api::{DEFAULT_SOCKET_MODE, UnixSocket, WorkloadApiService, remove_socket};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{AddrProblem, AnchorsProblem, ConfigProblem, Error};

/// What the agent needs. Build it with [`AgentConfig::new`] and adjust the fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The identity CA's gRPC address, `http://host:port` (plaintext, as Linkerd's proxies
    /// reach `linkerd-identity-headless.<ns>.svc.<cluster-domain>:8080`).
    pub identity_addr: String,
    /// The trust-anchor PEM bundle: the CA's answers must chain to it; followed for anchor
    /// rotation.
    pub trust_anchors: PathBuf,
    /// Trust domain and control-plane namespace (default `cluster.local`, `linkerd`).
    pub mesh: Mesh,
    /// The workload's ServiceAccount.
    pub service_account: ServiceAccount,
    /// The identity CA's SAN mode, so the CSR asks for exactly its names: `spiffe` (default)
    /// or `dns+spiffe`. `dns` is refused: the Workload API serves SPIFFE IDs.
    pub san_mode: SanMode,
    /// The workload's ServiceAccount token (a file is re-read on every attempt).
    pub token: TokenSource,
    /// Where to serve the SPIFFE Workload API (`None`: not served).
    pub workload_api_socket: Option<PathBuf>,
    /// Where to serve Envoy SDS (`None`: not served).
    pub sds_socket: Option<PathBuf>,
    /// The sockets' permissions (default 0660; see `meshid_workload_api::UnixSocket::bind`).
    pub socket_mode: u32,
    /// The admin HTTP address (`/ready`, `/live`, `/ping`, `/metrics`).
    pub admin_addr: SocketAddr,
    /// Connect and request timeouts towards the identity CA.
    pub timeouts: Timeouts,
    /// How to retry after a failed certification (default: the client's).
    pub backoff: BackoffPolicy,
    /// How the trust-anchor file is followed.
    pub bundle_watch: BundleWatchOptions,
}

impl AgentConfig {
    /// A configuration with the defaults: SAN mode `spiffe`, the default mesh, no socket yet,
    /// admin on `127.0.0.1:4191`.
    pub fn new(
        identity_addr: impl Into<String>,
        trust_anchors: impl Into<PathBuf>,
        service_account: ServiceAccount,
        token: TokenSource,
    ) -> Self {
        Self {
            identity_addr: identity_addr.into(),
            trust_anchors: trust_anchors.into(),
            mesh: Mesh::default(),
            service_account,
            san_mode: SanMode::Spiffe,
            token,
            workload_api_socket: None,
            sds_socket: None,
            socket_mode: DEFAULT_SOCKET_MODE,
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 4191)),
            timeouts: Timeouts::default(),
            backoff: BackoffPolicy::default(),
            bundle_watch: BundleWatchOptions::default(),
        }
    }
}

/// A started agent.
pub struct Running {
    /// The bound admin address.
    pub admin_addr: SocketAddr,
    /// The workload's credentials (for in-process callers and tests).
    pub credentials: Arc<Credentials>,
    /// The SPIFFE ID served.
    pub spiffe_id: String,
    tasks: JoinSet<Result<(), Error>>,
}

impl Running {
    /// Waits until every task has stopped (after the shutdown future completed); the first
    /// failure ends the wait.
    pub async fn wait(mut self) -> Result<(), Error> {
        while let Some(joined) = self.tasks.join_next().await {
            joined.map_err(|e| Error::Task {
                reason: e.to_string(),
            })??;
        }
        Ok(())
    }
}

/// Starts the agent: checks the configuration, reads the trust anchors and the token, binds
/// the sockets and the admin listener (each failure is one clear error, before anything
/// runs), then runs the identity client, the bundle watcher, the servers and the admin server
/// until `shutdown` completes. The CA need not be up: the client backs off and retries, and
/// `/ready` answers 503 until the first certificate is installed.
pub async fn start(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, Error> {
    if !config.san_mode.has_spiffe() {
        return Err(Error::Config {
            reason: ConfigProblem::NoSpiffeId {
                san_mode: config.san_mode,
            },
        });
    }
    if config.workload_api_socket.is_none() && config.sds_socket.is_none() {
        return Err(Error::Config {
            reason: ConfigProblem::NothingToServe,
        });
    }
    if config.workload_api_socket.is_some() && config.workload_api_socket == config.sds_socket {
        return Err(Error::Config {
            reason: ConfigProblem::SameSocket,
        });
    }
    let anchors = |reason: AnchorsProblem| Error::TrustAnchors {
        path: config.trust_anchors.clone(),
        reason,
    };
    let pem = std::fs::read(&config.trust_anchors).map_err(|e| {
        anchors(AnchorsProblem::Unreadable {
            kind: e.kind(),
            reason: e.to_string(),
        })
    })?;
    let bundle = TrustBundle::from_pem(&pem).map_err(|e| anchors(AnchorsProblem::Invalid(e)))?;
    config.token.read().map_err(Error::Client)?;
    let mut client_config = ClientConfig::for_service_account(
        &config.mesh,
        &config.service_account,
        config.san_mode,
        config.token.clone(),
        bundle,
    )
    .map_err(Error::Client)?;
    client_config.backoff = config.backoff.clone();
    let spiffe_id = client_config.identity.clone();
    let certifier = certifier(&config.identity_addr, config.timeouts)?;

    // Sockets and the admin listener: taken before anything runs.
    let workload_api_socket = match &config.workload_api_socket {
        Some(path) => Some(
            UnixSocket::bind(path, config.socket_mode)
                .await
                .map_err(Error::WorkloadApi)?,
        ),
        None => None,
    };
    let sds_socket = match &config.sds_socket {
        Some(path) => match UnixSocket::bind(path, config.socket_mode).await {
            Ok(socket) => Some(socket),
            Err(e) => {
                if let Some(socket) = &workload_api_socket {
                    remove_socket(socket.path());
                }
                return Err(Error::WorkloadApi(e));
            }
        },
        None => None,
    };
    let admin_listener = admin::bind(config.admin_addr).await.map_err(Error::Admin)?;
    let admin_addr = admin_listener.local_addr().map_err(|e| Error::Config {
        reason: ConfigProblem::AdminAddr {
            kind: e.kind(),
            reason: e.to_string(),
        },
    })?;

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let client = Client::new(client_config, certifier, SystemClock)
        .map_err(Error::Client)?
        .with_metrics(metrics);
    let credentials = client.credentials();
    let watcher = BundleWatcher::new(
        &config.trust_anchors,
        &credentials,
        SystemClock,
        config.bundle_watch.clone(),
    )
    .map_err(Error::Client)?;
    let workload_api =
        WorkloadApiService::new(Arc::clone(&credentials)).map_err(Error::WorkloadApi)?;

    // One shutdown signal fanned out to every task.
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        Ok(())
    });
    let rx = stopping.clone();
    tasks.spawn(async move {
        client.run(stopped(rx)).await;
        Ok(())
    });
    let rx = stopping.clone();
    tasks.spawn(async move {
        watcher.run(stopped(rx)).await;
        Ok(())
    });
    // `/ready` while a valid certificate is installed.
    let admin_state =
        Arc::new(AdminState::new(registry, || {}).with_readiness(Arc::clone(&credentials)));
    let rx = stopping.clone();
    tasks.spawn(async move {
        admin::serve(
            admin_listener,
            admin_state,
            &admin::AdminLimits::default(),
            stopped(rx),
        )
        .await;
        Ok(())
    });
    if let Some(socket) = workload_api_socket {
        tracing::info!(socket = %socket.path().display(), %spiffe_id, "Serving the SPIFFE Workload API");
        let rx = stopping.clone();
        let service = workload_api;
        tasks.spawn(async move {
            service
                .serve(socket, stopped(rx))
                .await
                .map_err(Error::WorkloadApi)
        });
    }
    if let Some(socket) = sds_socket {
        tracing::info!(socket = %socket.path().display(), %spiffe_id, "Serving Envoy SDS");
        let sds = SdsService::new(Arc::clone(&credentials));
        let rx = stopping;
        tasks.spawn(async move {
            let (incoming, path) = socket.into_incoming();
            let closing = sds.clone();
            let served = tonic::transport::Server::builder()
                .add_service(sds.into_server())
                .serve_with_incoming_shutdown(incoming, async move {
                    stopped(rx).await;
                    closing.close_streams();
                })
                .await;
            remove_socket(&path);
            served.map_err(|e| Error::Sds {
                socket: path,
                reason: e.to_string(),
            })
        });
    }
    tracing::info!(%admin_addr, identity_ca = %config.identity_addr, %spiffe_id, "agent started");
    Ok(Running {
        admin_addr,
        credentials,
        spiffe_id,
        tasks,
    })
}

/// A certifier for `uri` that connects on first use, and again after every failure: a CA
/// that is down at start is retried with the client's backoff.
fn certifier(uri: &str, timeouts: Timeouts) -> Result<GrpcCertifier, Error> {
    let invalid = |reason: AddrProblem| Error::IdentityAddr {
        uri: uri.to_owned(),
        reason,
    };
    let endpoint = tonic::transport::Endpoint::from_shared(uri.to_owned()).map_err(|e| {
        invalid(AddrProblem::Invalid {
            reason: e.to_string(),
        })
    })?;
    match endpoint.uri().scheme_str() {
        Some("http") => {}
        _ => return Err(invalid(AddrProblem::NotHttp)),
    }
    let channel = endpoint
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(GrpcCertifier::from_channel(channel))
}

async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
