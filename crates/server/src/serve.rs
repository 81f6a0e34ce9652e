//! The identity service: CA + issuer reload + token authentication + gRPC + admin HTTP.

use core::future::Future;
use core::ops::RangeInclusive;
use core::str::FromStr;
use core::sync::atomic::AtomicU64;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meshid_authn::{
    AnyAuthenticator, Jwks, JwksAuthenticator, JwksReloader, JwtConfig, KeysRefresh,
    OidcAuthenticator, OidcConfig, StaticAuthenticator, TokenReviewAuthenticator,
    TokenReviewConfig,
};
use meshid_ca::Ca;
use meshid_grpc::{GrpcLimits, IdentityService, ServingIdentity, ServingMetrics, TlsMode};
use meshid_issuer::bootstrap::TrustAnchorKey;
use meshid_issuer::{
    AutoRotator, EventSink, IssuerFolder, KubeEventSink, KubeEventsConfig, KubeEventsTask,
    ObjectReference, Reloader, ReloaderOptions, TracingSink,
};
use meshid_kube::KubeApiConfig;
use meshid_policy::{Clock, IssuancePolicy, Mesh, SystemClock};
use meshid_rotation::IssuerSchedule;
use meshid_verify::TrustBundle;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Error;
use crate::admin::{self, AdminLimits, AdminState};
use crate::ready::{GrpcState, Readiness};

/// The issuer `iss` of Kubernetes projected ServiceAccount tokens in a default cluster (on
/// EKS, GKE and AKS it is an OIDC URL instead: `--token-issuer`).
pub const KUBERNETES_TOKEN_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How ServiceAccount tokens are authenticated (`--token-validation`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenValidation {
    /// Kubernetes TokenReview ([`ServeConfig::kube_api`]: a kubeconfig, or the in-cluster
    /// configuration).
    TokenReview,
    /// Offline validation against a JWKS file, reloaded when it changes.
    Jwks(PathBuf),
    /// A static token file (development).
    Static(PathBuf),
    /// Offline validation with the keys the API server publishes (service-account issuer
    /// discovery, through [`ServeConfig::kube_api`]), refreshed every 5 minutes and on an
    /// unknown `kid`; with `review_fallback`, what cannot be judged offline goes to
    /// TokenReview (`oidc`), else it is refused (`oidc-only`).
    Oidc {
        /// Hand tokens it cannot judge offline to TokenReview.
        review_fallback: bool,
    },
}

impl FromStr for TokenValidation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.split_once(':') {
            None if s == "tokenreview" => Ok(Self::TokenReview),
            None if s == "oidc" => Ok(Self::Oidc {
                review_fallback: true,
            }),
            None if s == "oidc-only" => Ok(Self::Oidc {
                review_fallback: false,
            }),
            Some(("jwks", path)) if !path.is_empty() => Ok(Self::Jwks(path.into())),
            Some(("static", path)) if !path.is_empty() => Ok(Self::Static(path.into())),
            _ => Err(Error::Config {
                reason: format!(
                    "invalid token validation '{s}': expected tokenreview, oidc, oidc-only, \
                     jwks:FILE or static:FILE"
                ),
            }),
        }
    }
}

/// How the identity service reaches the Kubernetes API server (TokenReview, and Kubernetes
/// Events with [`ServeConfig::kube_events`]), and how fast TokenReview may call it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KubeApi {
    /// A kubeconfig file (Linkerd: `-kubeconfig`); `None` looks where Linkerd and kubectl do:
    /// `KUBECONFIG`, then `~/.kube/config`, then the in-cluster configuration
    /// ([`KubeApiConfig::discover`]).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None` is its `current-context`.
    pub context: Option<String>,
    /// TokenReview requests per second (Linkerd: `-kube-apiclient-qps`, 100).
    pub qps: f64,
    /// Requests allowed at once above the rate (Linkerd: `-kube-apiclient-burst`, 200).
    pub burst: u32,
    /// Retry a TokenReview without audiences when the API server says it cannot review
    /// them, as Linkerd always does (`--token-review-audience-fallback`; off). Only for API
    /// servers that cannot review audiences: a real one refuses every token of another
    /// audience that way, and without audiences accepts any pod's default token. Logged as a
    /// warning at start.
    pub audience_fallback: bool,
}

impl KubeApi {
    /// Allowed [`qps`](Self::qps).
    pub const QPS: RangeInclusive<f64> = 0.01..=1_000_000.0;
    /// Allowed [`burst`](Self::burst).
    pub const BURST: RangeInclusive<u32> = 1..=1_000_000;

    /// Checks the rate and the burst against their allowed ranges (a rate of `1e-30` would
    /// make the rate limiter wait longer than a `Duration` holds).
    pub fn validate(&self) -> Result<(), Error> {
        if !Self::QPS.contains(&self.qps) {
            return Err(Error::Config {
                reason: format!(
                    "invalid kube_api.qps: {:?} is not between {} and {} requests per second",
                    self.qps,
                    Self::QPS.start(),
                    Self::QPS.end()
                ),
            });
        }
        if !Self::BURST.contains(&self.burst) {
            return Err(Error::Config {
                reason: format!(
                    "invalid kube_api.burst: {} is not between {} and {}",
                    self.burst,
                    Self::BURST.start(),
                    Self::BURST.end()
                ),
            });
        }
        Ok(())
    }
}

impl Default for KubeApi {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            context: None,
            qps: meshid_authn::DEFAULT_QPS,
            burst: meshid_authn::DEFAULT_BURST,
            audience_fallback: false,
        }
    }
}

/// Issuer auto-rotation from the trust-anchor key, for users without cert-manager.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AutoRotate {
    /// The trust-anchor certificate.
    pub anchor_cert: PathBuf,
    /// Its key (the file must be 0600).
    pub anchor_key: PathBuf,
    /// cert-manager semantics: `duration`, `renewBefore` / `renewBeforePercentage`.
    pub schedule: IssuerSchedule,
}

impl AutoRotate {
    /// Rotation with Linkerd's cert-manager recipe: 48h issuers renewed 25h before expiry.
    pub fn new(anchor_cert: PathBuf, anchor_key: PathBuf) -> Self {
        let mut schedule = IssuerSchedule::default();
        schedule.renew_before = Some(Duration::from_secs(25 * 3600));
        Self {
            anchor_cert,
            anchor_key,
            schedule,
        }
    }
}

/// Everything the identity service needs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The gRPC (Certify) listen address (Linkerd: `:8080`).
    pub grpc_addr: SocketAddr,
    /// The admin HTTP listen address (Linkerd: `:9990`).
    pub admin_addr: SocketAddr,
    /// Whether gRPC is served over TLS (`--tls`): [`TlsMode::Auto`] (the default) serves
    /// TLS on a non-loopback [`grpc_addr`](Self::grpc_addr) and plaintext h2c on loopback,
    /// the rule Linkerd's proxy follows to decide whether to speak TLS to its identity
    /// service. Over TLS the service presents a certificate for its own identity
    /// (`linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>`), issued in
    /// memory by its own CA ([`ServingIdentity`]).
    pub tls: TlsMode,
    /// The gRPC server's transport and request limits.
    pub grpc: GrpcLimits,
    /// The admin server's limits.
    pub admin: AdminLimits,
    /// Trust domain and control-plane namespace.
    pub mesh: Mesh,
    /// Lifetimes, skew, SAN mode, key algorithms.
    pub policy: IssuancePolicy,
    /// The issuer folder.
    pub issuer: IssuerFolder,
    /// The trust-anchor bundle; `None` takes `ca.crt` of a `kubernetes.io/tls` issuer folder.
    pub trust_anchors: Option<PathBuf>,
    /// How tokens are authenticated.
    pub token_validation: TokenValidation,
    /// Accepted `iss` values for `jwks:` validation (`--token-issuer`, repeatable; default
    /// [`KUBERNETES_TOKEN_ISSUER`]).
    pub jwt_issuers: Vec<String>,
    /// The Kubernetes API for `tokenreview` validation and Kubernetes Events.
    pub kube_api: KubeApi,
    /// Also post the events (`IssuerUpdated`, `IssuerUpdateSkipped`, `IssuedLeafCertificate`,
    /// ...) as Kubernetes Events on the Deployment `linkerd-identity` in the control-plane
    /// namespace, as Linkerd does, through [`kube_api`](Self::kube_api) (off by default). They
    /// are logged either way. Needs RBAC `create` on `events` there.
    pub kube_events: bool,
    /// Issuer and anchor reload.
    pub reload: ReloaderOptions,
    /// Mint issuers from the trust-anchor key on a schedule (off by default).
    pub auto_rotate: Option<AutoRotate>,
}

impl ServeConfig {
    /// A configuration with Linkerd's defaults for the rest.
    pub fn new(
        issuer: IssuerFolder,
        trust_anchors: Option<PathBuf>,
        token_validation: TokenValidation,
    ) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9990)),
            tls: TlsMode::Auto,
            grpc: GrpcLimits::default(),
            admin: AdminLimits::default(),
            mesh: Mesh::default(),
            policy: IssuancePolicy::default(),
            issuer,
            trust_anchors,
            token_validation,
            jwt_issuers: vec![KUBERNETES_TOKEN_ISSUER.to_owned()],
            kube_api: KubeApi::default(),
            kube_events: false,
            reload: ReloaderOptions::default(),
            auto_rotate: None,
        }
    }
}

impl ServeConfig {
    /// Checks the numbers: the gRPC and admin limits, the API server rate and burst.
    /// [`start`] calls it first.
    pub fn validate(&self) -> Result<(), Error> {
        self.grpc.validate().map_err(Error::Grpc)?;
        self.admin.validate()?;
        self.kube_api.validate()
    }
}

/// A started identity service.
pub struct Running {
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The bound admin address.
    pub admin_addr: SocketAddr,
    /// The name the gRPC server proves over TLS, which clients verify; `None` when it serves
    /// plaintext h2c ([`ServeConfig::tls`]).
    pub tls_identity: Option<String>,
    /// The CA (for in-process callers and tests).
    pub ca: Arc<Ca>,
    tasks: tokio::task::JoinSet<Result<(), Error>>,
    kube_events: Option<KubeEventsTask>,
}

/// How long [`Running::wait`] gives the Kubernetes Events still queued at shutdown.
pub const EVENTS_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl Running {
    /// Waits until every task has stopped (after the shutdown future completed), then posts
    /// the Kubernetes Events still queued (with [`ServeConfig::kube_events`]), for at most
    /// [`EVENTS_FLUSH_TIMEOUT`]; events not posted by then are counted in a warning.
    pub async fn wait(mut self) -> Result<(), Error> {
        let outcome = self.join().await;
        if let Some(events) = self.kube_events.take() {
            let unposted = events.close(EVENTS_FLUSH_TIMEOUT).await;
            if unposted > 0 {
                tracing::warn!(
                    unposted,
                    timeout = ?EVENTS_FLUSH_TIMEOUT,
                    "Kubernetes Events still queued at shutdown were not posted in time"
                );
            }
        }
        outcome
    }

    /// Joins the tasks; the first failure ends the wait.
    async fn join(&mut self) -> Result<(), Error> {
        while let Some(joined) = self.tasks.join_next().await {
            joined.map_err(|e| Error::Config {
                reason: format!("a task failed: {e}"),
            })??;
        }
        Ok(())
    }
}

/// Starts the identity service: checks the configuration's numbers, reads the anchors and
/// the issuer (failing fast with a one-line reason if either is broken), binds both
/// listeners, and spawns the gRPC server, the admin server and the issuer reloader. When
/// `shutdown` completes the gRPC server stops accepting and finishes the requests in flight
/// (`/ready` answers 503 meanwhile), then the admin server stops.
pub async fn start(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, Error> {
    start_with_clock(config, Arc::new(SystemClock), shutdown).await
}

/// [`start`] at the time `clock` tells: issuance, issuer reload and rotation, readiness and
/// the issuer's TTL gauge read it.
pub async fn start_with_clock(
    config: ServeConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, Error> {
    config.validate()?;
    let now = clock.now();
    let mut registry = Registry::default();
    let authn_metrics = meshid_authn::Metrics::register(&mut registry);
    // Configuration first: a broken token-validation or Kubernetes setting fails before
    // anything is logged.
    let kube_api = kube_api(&config)?;
    let api_server = kube_api
        .as_ref()
        .map(|api| (api.api_server(), api.source.clone()));
    let (authenticator, key_refresh) =
        authenticator(&config, kube_api.as_ref(), authn_metrics.clone()).await?;
    let (events, kube_events) = event_sink(&config, kube_api).await?;
    // Which cluster was found matters when it was discovered (KUBECONFIG, ~/.kube/config).
    if let Some((api_server, source)) = api_server {
        tracing::info!(%api_server, %source, "Kubernetes API server");
    }
    let reviews = matches!(
        config.token_validation,
        TokenValidation::TokenReview
            | TokenValidation::Oidc {
                review_fallback: true
            }
    );
    if reviews && config.kube_api.audience_fallback {
        tracing::warn!(
            "--token-review-audience-fallback is on: a TokenReview refused for its audience is \
             retried without audiences, so tokens of other audiences (any pod's default token) \
             are accepted; use it only with an API server that cannot review audiences"
        );
    }
    let bundle = read_bundle(&config)?;
    let ca =
        Arc::new(Ca::new(config.mesh.clone(), config.policy.clone(), bundle).map_err(Error::Ca)?);
    let files = config.issuer.read().map_err(Error::Issuer)?;
    let issuer = ca
        .load_issuer_pem(&files.chain_pem, &files.key_pem, now)
        .map_err(Error::Ca)?;
    tracing::info!(
        issuer = %issuer.subject(),
        not_after = %meshid_policy::rfc3339(issuer.not_after()),
        "Issuer cert loaded"
    );

    // The service's own certificate, issued before anything listens: a service that cannot
    // prove its name fails at start, not at its first client.
    let serving = if config.tls.tls_for_ip(config.grpc_addr.ip()) {
        let mut identity = ServingIdentity::new(Arc::clone(&ca), Arc::clone(&clock))
            .map_err(Error::Grpc)?
            .with_metrics(ServingMetrics::register(&mut registry));
        identity.issue().map_err(Error::Grpc)?;
        let tls = identity.server_tls().map_err(Error::Grpc)?;
        Some((identity, tls))
    } else {
        if config.tls == TlsMode::Off && !config.grpc_addr.ip().is_loopback() {
            tracing::warn!(
                addr = %config.grpc_addr,
                "--tls off: serving Certify as plaintext h2c on a non-loopback address; only \
                 safe behind a proxy that terminates TLS for it"
            );
        }
        None
    };
    let tls_identity = serving
        .as_ref()
        .map(|(identity, _)| identity.name().to_owned());

    // Metrics.
    let grpc_metrics = meshid_grpc::Metrics::register(&mut registry);
    let issuer_metrics = meshid_issuer::Metrics::register(&mut registry);
    let ttl = Gauge::<f64, AtomicU64>::default();
    let not_after = Gauge::<f64, AtomicU64>::default();
    registry.register(
        "issuer_cert_ttl_seconds",
        "Seconds until the issuer certificate expires",
        ttl.clone(),
    );
    registry.register(
        "issuer_cert_not_after_timestamp_seconds",
        "When the issuer certificate expires (seconds since the UNIX epoch)",
        not_after.clone(),
    );
    let scrape_ca = Arc::clone(&ca);
    let scrape_clock = Arc::clone(&clock);
    let mut readiness = Readiness::new(Arc::clone(&ca), Arc::clone(&clock));
    if let Some((identity, _)) = &serving {
        readiness = readiness.with_serving_certificate(identity.credentials());
    }
    let admin_state = AdminState::new(registry, move || {
        if let Some(issuer) = scrape_ca.issuer() {
            let expires = issuer.not_after();
            not_after.set(expires.unix_timestamp() as f64);
            ttl.set((expires - scrape_clock.now()).as_seconds_f64());
        }
    })
    .with_readiness(readiness.clone());
    let admin_state = Arc::new(admin_state);

    // Listeners first: readiness means the gRPC listener is up.
    let grpc_listener = bind_grpc(config.grpc_addr).map_err(|e| Error::Bind {
        what: "gRPC",
        addr: config.grpc_addr,
        reason: e.to_string(),
    })?;
    let admin_listener = admin::bind(config.admin_addr).await?;
    let grpc_addr = grpc_listener.local_addr().map_err(|e| Error::Config {
        reason: e.to_string(),
    })?;
    let admin_addr = admin_listener.local_addr().map_err(|e| Error::Config {
        reason: e.to_string(),
    })?;

    // One shutdown signal fanned out to every task.
    let (stop, stopped) = watch::channel(false);
    let signal = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        Ok(())
    });

    let mut reloader = Reloader::new(Arc::clone(&ca), config.issuer.clone(), Arc::clone(&clock))
        .with_sink(Arc::clone(&events))
        .with_metrics(issuer_metrics)
        .with_options(config.reload.clone());
    if let Some(path) = &config.trust_anchors {
        reloader = reloader.with_trust_bundle_file(path.clone());
    }
    if let Some(auto) = &config.auto_rotate {
        let anchor =
            TrustAnchorKey::load(&auto.anchor_cert, &auto.anchor_key).map_err(Error::Bootstrap)?;
        let rotator = AutoRotator::new(
            anchor,
            config.issuer.clone(),
            auto.schedule.clone(),
            Arc::clone(&clock),
        )
        .map_err(Error::Bootstrap)?
        .with_sink(Arc::clone(&events))
        .with_reload_handle(reloader.handle());
        let rx = stopped.clone();
        tasks.spawn(async move {
            rotator.run(signal(rx)).await;
            Ok(())
        });
    }
    let server_tls = match serving {
        Some((identity, tls)) => {
            // Renewed at the refresh point, re-issued at once when the reloader swaps the
            // issuer.
            let rx = stopped.clone();
            let updates = reloader.issuer_updates();
            tasks.spawn(async move {
                identity.run(updates, signal(rx)).await;
                Ok(())
            });
            Some(tls)
        }
        None => None,
    };
    let rx = stopped.clone();
    tasks.spawn(async move {
        reloader.run(signal(rx)).await;
        Ok(())
    });
    match key_refresh {
        Some(KeyRefresh::File(jwks)) => {
            let jwks = jwks
                .with_options(config.reload.poll_interval, config.reload.watch)
                .with_metrics(authn_metrics);
            let rx = stopped.clone();
            tasks.spawn(async move {
                jwks.run(signal(rx)).await;
                Ok(())
            });
        }
        Some(KeyRefresh::Discovery(oidc)) => {
            let rx = stopped.clone();
            tasks.spawn(async move {
                oidc.run(signal(rx)).await;
                Ok(())
            });
        }
        None => {}
    }

    let service = IdentityService::new(Arc::clone(&ca), authenticator, Arc::clone(&clock))
        .with_metrics(grpc_metrics)
        .with_events(events)
        .with_limits(config.grpc.clone());
    // The listener is bound: connections wait in its backlog until the server takes them.
    readiness.set_grpc(GrpcState::Serving);
    let rx = stopped;
    let grpc = readiness.clone();
    tasks.spawn(async move {
        let draining = grpc.clone();
        let stopping = async move {
            signal(rx).await;
            draining.set_grpc(GrpcState::ShuttingDown);
        };
        let served = match server_tls {
            Some(tls) => service.serve_tls(grpc_listener, tls, stopping).await,
            None => service.serve(grpc_listener, stopping).await,
        };
        grpc.set_grpc(GrpcState::Stopped);
        if let Err(error) = &served {
            tracing::error!(%error, "the gRPC server stopped");
        }
        served.map_err(Error::Grpc)
    });

    match &tls_identity {
        Some(name) => tracing::info!(
            %grpc_addr, %admin_addr, tls_identity = %name,
            "identity service ready (Certify over TLS)"
        ),
        None => tracing::info!(
            %grpc_addr, %admin_addr,
            "identity service ready (Certify over plaintext h2c)"
        ),
    }
    // The admin server outlives the gRPC server, so that `/ready` tells the truth while the
    // requests in flight finish.
    let admin_limits = config.admin.clone();
    tasks.spawn(async move {
        admin::serve(
            admin_listener,
            admin_state,
            &admin_limits,
            readiness.grpc_stopped(),
        )
        .await;
        Ok(())
    });

    Ok(Running {
        grpc_addr,
        admin_addr,
        tls_identity,
        ca,
        tasks,
        kube_events,
    })
}

fn read_bundle(config: &ServeConfig) -> Result<TrustBundle, Error> {
    match &config.trust_anchors {
        Some(path) => meshid_issuer::read_trust_bundle(path).map_err(Error::Issuer),
        None => {
            let files = config.issuer.read().map_err(Error::Issuer)?;
            let ca_pem = files.ca_pem.ok_or_else(|| Error::Config {
                reason: format!(
                    "no trust anchors: give --trust-anchors, or an issuer folder with ca.crt ({} has none)",
                    config.issuer.dir().display()
                ),
            })?;
            TrustBundle::from_pem(ca_pem.as_bytes()).map_err(|e| Error::Config {
                reason: format!("trust anchors in ca.crt: {e}"),
            })
        }
    }
}

/// The API server settings, read once when TokenReview or Kubernetes Events need them: the
/// kubeconfig given, else where kubectl would look (`KUBECONFIG`, `~/.kube/config`,
/// in-cluster).
fn kube_api(config: &ServeConfig) -> Result<Option<KubeApiConfig>, Error> {
    let needs_api = matches!(
        config.token_validation,
        TokenValidation::TokenReview | TokenValidation::Oidc { .. }
    );
    if !needs_api && !config.kube_events {
        return Ok(None);
    }
    let kube = &config.kube_api;
    let api = match &kube.kubeconfig {
        Some(path) => KubeApiConfig::from_kubeconfig(path, kube.context.as_deref()),
        None => KubeApiConfig::discover(kube.context.as_deref()),
    }
    .map_err(Error::Kube)?;
    Ok(Some(api))
}

/// Logs, and with `kube_events` also Kubernetes Events on the identity Deployment.
async fn event_sink(
    config: &ServeConfig,
    kube_api: Option<KubeApiConfig>,
) -> Result<(Arc<dyn EventSink>, Option<KubeEventsTask>), Error> {
    let Some(api) = kube_api.filter(|_| config.kube_events) else {
        return Ok((Arc::new(TracingSink), None));
    };
    let mut events = KubeEventsConfig::new(api);
    events.involved_object = ObjectReference::deployment(
        config.mesh.control_plane_namespace().as_str(),
        "linkerd-identity",
    );
    let (kube, task) = KubeEventSink::spawn(events)
        .await
        .map_err(Error::KubeEvents)?;
    Ok((Arc::new((TracingSink, kube)), Some(task)))
}

/// Connections the kernel may hold for the gRPC listener before it accepts them (capped by
/// `net.core.somaxconn`). A pod-start storm opens thousands of connections within a second;
/// tokio's default of 1,024 would have the kernel refuse some while the service is busy.
pub const GRPC_LISTEN_BACKLOG: u32 = 4096;

/// The gRPC listener, with room for a storm of connections ([`GRPC_LISTEN_BACKLOG`]).
fn bind_grpc(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std and tokio bind: a restarted service reuses its port at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(GRPC_LISTEN_BACKLOG)
}

/// What keeps an authenticator's keys current.
enum KeyRefresh {
    /// A JWKS file, reloaded when it changes.
    File(JwksReloader),
    /// The API server's published keys, fetched periodically.
    Discovery(Arc<OidcAuthenticator>),
}

/// The authenticator `--token-validation` asks for, and what keeps its keys current.
async fn authenticator(
    config: &ServeConfig,
    kube_api: Option<&KubeApiConfig>,
    metrics: meshid_authn::Metrics,
) -> Result<(AnyAuthenticator, Option<KeyRefresh>), Error> {
    let api = || {
        kube_api.cloned().ok_or_else(|| Error::Config {
            reason: "TokenReview and OIDC token validation need the Kubernetes API server \
                     settings"
                .to_owned(),
        })
    };
    let review = |api: KubeApiConfig| {
        let mut review = TokenReviewConfig::with_api(api);
        let kube = &config.kube_api;
        review.qps = kube.qps;
        review.burst = kube.burst;
        review.audience_fallback = kube.audience_fallback;
        review.clock_skew = config.policy.clock_skew;
        let metrics = metrics.clone();
        async move {
            Ok::<_, Error>(
                TokenReviewAuthenticator::new(review)
                    .await
                    .map_err(Error::Authn)?
                    .with_metrics(metrics),
            )
        }
    };
    Ok(match &config.token_validation {
        TokenValidation::TokenReview => {
            let authenticator = review(api()?).await?;
            (AnyAuthenticator::TokenReview(Box::new(authenticator)), None)
        }
        TokenValidation::Oidc { review_fallback } => {
            let api = api()?;
            let fallback = match review_fallback {
                true => Some(review(api.clone()).await?),
                false => None,
            };
            let mut oidc = OidcConfig::new(api);
            oidc.clock_skew = config.policy.clock_skew;
            let authenticator = OidcAuthenticator::new(oidc, fallback)
                .await
                .map_err(Error::Authn)?
                .with_metrics(metrics.clone());
            // Fetched before serving: a failing discovery is logged at start (and tokens go
            // to the fallback until it answers).
            if let KeysRefresh::Updated = authenticator.refresh_now().await {
                tracing::info!(
                    issuer = authenticator.issuer().unwrap_or_default(),
                    fallback = if *review_fallback {
                        "tokenreview"
                    } else {
                        "none"
                    },
                    "validating tokens offline with the cluster's published keys"
                );
            }
            let authenticator = Arc::new(authenticator);
            (
                AnyAuthenticator::Oidc(Arc::clone(&authenticator)),
                Some(KeyRefresh::Discovery(authenticator)),
            )
        }
        TokenValidation::Jwks(path) => {
            let jwks = Jwks::from_file(path).map_err(Error::Authn)?;
            let mut jwt = JwtConfig::new(KUBERNETES_TOKEN_ISSUER);
            jwt.issuers.clone_from(&config.jwt_issuers);
            jwt.clock_skew = config.policy.clock_skew;
            let authenticator = JwksAuthenticator::new(jwks, jwt).map_err(Error::Authn)?;
            let reloader = JwksReloader::new(path, &authenticator);
            (
                AnyAuthenticator::Jwks(authenticator),
                Some(KeyRefresh::File(reloader)),
            )
        }
        TokenValidation::Static(path) => (
            AnyAuthenticator::Static(StaticAuthenticator::from_file(path).map_err(Error::Authn)?),
            None,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More connections than tokio's default backlog (1,024) wait for `accept` without being
    /// refused or left hanging by the kernel.
    #[tokio::test]
    async fn the_grpc_listener_holds_a_storm_of_connections_before_accepting() {
        let listener = bind_grpc(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap_or_else(|e| {
            panic!("bind: {e}");
        });
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut pending = Vec::new();
        for i in 0..1_200 {
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(stream)) => pending.push(stream),
                Ok(Err(e)) => panic!("connection {i} refused: {e}"),
                Err(_) => panic!("connection {i} not established within 5 s: the backlog is full"),
            }
        }
        assert_eq!(pending.len(), 1_200);
        drop(listener);
    }
}
