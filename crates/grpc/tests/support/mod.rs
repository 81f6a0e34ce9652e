//! Shared fixtures: a PKI minted at fixed times, a settable clock, a scripted authenticator,
//! CSR builders and a server on loopback.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use core::future::Future;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use meshid_authn::{Authenticated, Authenticator, InvalidToken};
use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_grpc::{GrpcLimits, IdentityService, Metrics};
use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
use meshid_verify::TrustBundle;
use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// The time every test runs at.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
pub const ROOT_FROM: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
pub const ROOT_UNTIL: OffsetDateTime = datetime!(2036-01-01 0:00 UTC);
pub const ISSUER_FROM: OffsetDateTime = datetime!(2026-05-01 0:00 UTC);
pub const ISSUER_UNTIL: OffsetDateTime = datetime!(2026-08-01 0:00 UTC);

pub const WEB_ID: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
pub const EMOJI_ID: &str = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local";
pub const IDENTITY_SERVICE_ID: &str =
    "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local";

/// Tokens the [`ScriptedAuthenticator`] knows.
pub const WEB_TOKEN: &[u8] = b"web-token";
pub const EMOJI_TOKEN: &[u8] = b"emoji-token";
pub const UNKNOWN_TOKEN: &[u8] = b"unknown-token";
pub const INVALID_TOKEN: &[u8] = b"invalid-token";
pub const API_ERROR_TOKEN: &[u8] = b"api-error-token";
/// Authenticates as web, but only once released (see [`ScriptedAuthenticator::release`]).
pub const SLOW_TOKEN: &[u8] = b"slow-token";

pub const INVALID_TOKEN_REASON: &str =
    "[invalid bearer token, service account token has been invalidated]";

pub const RSA_KEY_PEM: &str = include_str!("../../../ca/tests/data/rsa2048.key.pem");

pub mod raw;

// === time ===

/// A clock reading what it was last set to.
#[derive(Clone, Debug)]
pub struct SetClock(Arc<Mutex<OffsetDateTime>>);

impl SetClock {
    pub fn new(now: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap() = now;
    }
}

impl meshid_policy::Clock for SetClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

// === PKI ===

pub fn ca_options(
    cn: &str,
    from: OffsetDateTime,
    until: OffsetDateTime,
    path_len: u8,
) -> CaOptions {
    let mut opts = CaOptions::root(cn, from, Duration::from_secs(1));
    opts.not_after = until;
    opts.path_len = Some(path_len);
    opts
}

/// A root, an issuer under it, and a CA (no issuer loaded yet unless [`Pki::ca_ready`]).
pub struct Pki {
    pub root: CaCertificate,
    pub issuer: CaCertificate,
    pub bundle: TrustBundle,
}

impl Pki {
    pub fn new() -> Self {
        let root = create_root(&ca_options(
            "root.linkerd.cluster.local",
            ROOT_FROM,
            ROOT_UNTIL,
            1,
        ))
        .unwrap();
        let mut opts = ca_options(
            "identity.linkerd.cluster.local",
            ISSUER_FROM,
            ISSUER_UNTIL,
            0,
        );
        opts.server_and_client_eku = true;
        let issuer = create_intermediate(&root, &opts).unwrap();
        let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
        Self {
            root,
            issuer,
            bundle,
        }
    }

    /// A CA with no issuer.
    pub fn ca_not_ready(&self) -> Arc<Ca> {
        Arc::new(
            Ca::new(
                Mesh::default(),
                IssuancePolicy::default(),
                self.bundle.clone(),
            )
            .unwrap(),
        )
    }

    /// A CA serving with the issuer, loaded at [`NOW`].
    pub fn ca_ready(&self) -> Arc<Ca> {
        self.ca_ready_with(IssuancePolicy::default())
    }

    /// A CA with `policy`, serving with the issuer, loaded at [`NOW`].
    pub fn ca_ready_with(&self, policy: IssuancePolicy) -> Arc<Ca> {
        let ca = Arc::new(Ca::new(Mesh::default(), policy, self.bundle.clone()).unwrap());
        ca.load_issuer_pem(&self.issuer.pem(), &self.issuer.key_pem(), NOW)
            .unwrap();
        ca
    }
}

// === CSRs ===

pub fn sa(ns: &str, name: &str) -> ServiceAccount {
    ServiceAccount::new(ns, name).unwrap()
}

pub fn web() -> ServiceAccount {
    sa("emojivoto", "web")
}

pub fn p256() -> KeyPair {
    KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap()
}

/// A well-formed CSR for `sa` (CN and DNS SAN = its identity) with a fresh key of `alg`.
pub fn csr_for(sa: &ServiceAccount, alg: KeyAlgorithm) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate(alg).unwrap();
    let params = CsrParams::for_service_account(&Mesh::default(), sa, SanMode::Dns).unwrap();
    let csr = Csr::build(&key, &params).unwrap();
    (key, csr.into_der())
}

pub fn web_csr() -> Vec<u8> {
    csr_for(&web(), KeyAlgorithm::EcdsaP256).1
}

/// A CSR with whatever subject CN and SANs a test wants, signed by `key`.
pub fn custom_csr(key: &impl rcgen::SigningKey, cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = cn {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.serialize_request(key).unwrap().der().to_vec()
}

pub fn rsa_key() -> rcgen::KeyPair {
    rcgen::KeyPair::from_pem(RSA_KEY_PEM).unwrap()
}

pub fn dns(name: &str) -> SanType {
    SanType::DnsName(name.to_owned().try_into().unwrap())
}

pub fn uri(name: &str) -> SanType {
    SanType::URI(name.to_owned().try_into().unwrap())
}

// === authentication ===

/// Authenticates a fixed set of tokens, each standing for one outcome, and counts calls.
#[derive(Clone, Default)]
pub struct ScriptedAuthenticator {
    calls: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
}

impl ScriptedAuthenticator {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Resolves once a [`SLOW_TOKEN`] request is waiting in the authenticator.
    pub async fn slow_request_arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets a waiting [`SLOW_TOKEN`] request go on.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl Authenticator for ScriptedAuthenticator {
    async fn authenticate(&self, token: &[u8]) -> Result<Authenticated, meshid_authn::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match token {
            WEB_TOKEN => Ok(Authenticated::new(web())),
            EMOJI_TOKEN => Ok(Authenticated::new(sa("emojivoto", "emoji"))),
            INVALID_TOKEN => Err(meshid_authn::Error::InvalidToken(InvalidToken::Rejected {
                reason: INVALID_TOKEN_REASON.to_owned(),
            })),
            API_ERROR_TOKEN => Err(meshid_authn::Error::Transport {
                server: "https://kubernetes.default.svc".to_owned(),
                reason: "connection refused".to_owned(),
            }),
            SLOW_TOKEN => {
                self.arrived.notify_one();
                self.release.notified().await;
                Ok(Authenticated::new(web()))
            }
            _ => Err(meshid_authn::Error::NotAuthenticated),
        }
    }
}

// === logs ===

/// Log lines written on this thread while the value lives (a current-thread runtime's tasks
/// included).
pub struct CapturedLogs {
    lines: Arc<Mutex<Vec<u8>>>,
    _default: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn install() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(Arc::clone(&lines));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            lines,
            _default: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned()
    }

    pub fn line_with(&self, needle: &str) -> Option<String> {
        self.text()
            .lines()
            .find(|line| line.contains(needle))
            .map(str::to_owned)
    }
}

// === server ===

/// An identity service on 127.0.0.1, stopped by [`Server::stop`].
pub struct Server {
    pub addr: SocketAddr,
    pub authn: ScriptedAuthenticator,
    pub clock: SetClock,
    pub events: Arc<meshid_issuer::CollectingSink>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), meshid_grpc::Error>>,
}

impl Server {
    pub async fn start(ca: Arc<Ca>, metrics: Option<Metrics>) -> Self {
        Self::start_with(ca, metrics, tonic::transport::Server::builder()).await
    }

    pub async fn start_with(
        ca: Arc<Ca>,
        metrics: Option<Metrics>,
        builder: tonic::transport::Server,
    ) -> Self {
        Self::start_limited(ca, metrics, builder, GrpcLimits::default()).await
    }

    /// A server with these limits.
    pub async fn start_limited(
        ca: Arc<Ca>,
        metrics: Option<Metrics>,
        builder: tonic::transport::Server,
        limits: GrpcLimits,
    ) -> Self {
        let authn = ScriptedAuthenticator::default();
        let clock = SetClock::new(NOW);
        let events = Arc::new(meshid_issuer::CollectingSink::new());
        let mut service = IdentityService::new(ca, authn.clone(), clock.clone())
            .with_events(Arc::clone(&events))
            .with_limits(limits);
        if let Some(metrics) = metrics {
            service = service.with_metrics(metrics);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service.serve_with(builder, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            authn,
            clock,
            events,
            stop: Some(stop),
            task,
        }
    }

    /// A server over TLS presenting what `tls` resolves, with these limits.
    pub async fn start_tls(ca: Arc<Ca>, tls: meshid_grpc::ServerTls, limits: GrpcLimits) -> Self {
        let authn = ScriptedAuthenticator::default();
        let clock = SetClock::new(NOW);
        let events = Arc::new(meshid_issuer::CollectingSink::new());
        let service = IdentityService::new(ca, authn.clone(), clock.clone())
            .with_events(Arc::clone(&events))
            .with_limits(limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service.serve_tls(listener, tls, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            authn,
            clock,
            events,
            stop: Some(stop),
            task,
        }
    }

    pub fn http_uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals shutdown; the returned future resolves when the server has finished.
    pub fn stop(mut self) -> impl Future<Output = Result<(), meshid_grpc::Error>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        async move { self.task.await.unwrap() }
    }
}
