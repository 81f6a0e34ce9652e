//! The identity service's own certificate, for serving Certify over TLS.

use core::fmt;
use core::future::Future;
use core::time::Duration;
use std::sync::Arc;

use meshid_ca::Ca;
use meshid_client::Credentials;
use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_policy::Clock;
use meshid_policy::{KeyAlgorithm, Mesh, ServiceAccount};
use meshid_rotation::{Backoff, BackoffPolicy, JitterSource, RefreshPolicy, SeededJitter};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use ring::rand::SecureRandom as _;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::{Error, ServerTls};

/// The ServiceAccount the identity service runs as in Linkerd's chart.
pub const IDENTITY_SERVICE_ACCOUNT: &str = "linkerd-identity";

/// The name the identity service of `mesh` proves over TLS and proxies verify:
/// `linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>` (Linkerd's
/// `LINKERD2_PROXY_IDENTITY_SVC_NAME`), for the ServiceAccount
/// [`IDENTITY_SERVICE_ACCOUNT`] in the control-plane namespace.
pub fn identity_service_name(mesh: &Mesh) -> Result<String, Error> {
    let namespace = mesh.control_plane_namespace().as_str();
    let invalid = |reason: String| Error::Issue {
        identity: format!("{IDENTITY_SERVICE_ACCOUNT}.{namespace}"),
        reason,
    };
    let service_account = ServiceAccount::new(namespace, IDENTITY_SERVICE_ACCOUNT)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(mesh
        .identity(&service_account)
        .map_err(|e| invalid(e.to_string()))?
        .to_string())
}

/// `result="ok|error"`.
type ResultLabel = [(&'static str, &'static str); 1];

/// The identity service's own certificate: issued in process by its own [`Ca`] for the
/// ServiceAccount `linkerd-identity` in the control-plane namespace, so it names
/// `linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>`, the name Linkerd's
/// proxies verify (in SAN mode `spiffe`, which issues no identity names, the SPIFFE ID
/// `spiffe://<trust-domain>/ns/<ns>/sa/linkerd-identity` instead; see
/// [`name`](Self::name)).
///
/// Every issuance uses a fresh P-256 key, made in memory and never written anywhere (wiped
/// when dropped, never logged), and the answer is checked as a proxy checks its own (the
/// chain verifies to the CA's trust bundle, the leaf names the service, the key matches)
/// before it goes into [`credentials`](Self::credentials), which [`ServerTls`] presents.
///
/// [`run`](Self::run) keeps it current: it renews at meshid-rotation's refresh point
/// ([`RefreshPolicy`], 70% ± 5% of the lifetime, jitter from the injected source), re-issues
/// at once when the issuer changes (it is told, it does not poll), and backs off with jitter
/// on failure while the current certificate keeps serving.
pub struct ServingIdentity<K> {
    ca: Arc<Ca>,
    service_account: ServiceAccount,
    csr: CsrParams,
    clock: K,
    jitter: Box<dyn JitterSource + Send>,
    refresh: RefreshPolicy,
    backoff: Backoff,
    credentials: Arc<Credentials>,
    metrics: Option<ServingMetrics>,
    /// When the certificate [`issue`](Self::issue) installed last is to be renewed.
    refresh_at: Option<OffsetDateTime>,
}

impl<K: Clock> ServingIdentity<K> {
    /// The identity service of `ca`'s mesh, issued by `ca` at the time `clock` tells. Nothing
    /// is issued until [`issue`](Self::issue) or [`run`](Self::run). Jitter is seeded from the
    /// operating system; see [`with_jitter`](Self::with_jitter).
    pub fn new(ca: Arc<Ca>, clock: K) -> Result<Self, Error> {
        let mesh = ca.mesh();
        let mode = ca.policy().san_mode;
        let invalid = |reason: String| Error::Issue {
            identity: format!(
                "{IDENTITY_SERVICE_ACCOUNT}.{}",
                mesh.control_plane_namespace().as_str()
            ),
            reason,
        };
        let service_account = ServiceAccount::new(
            mesh.control_plane_namespace().as_str(),
            IDENTITY_SERVICE_ACCOUNT,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let csr = CsrParams::for_service_account(mesh, &service_account, mode)
            .map_err(|e| invalid(e.to_string()))?;
        let name = if mode.has_dns() {
            identity_service_name(mesh)?
        } else {
            mesh.spiffe_id(&service_account).to_string()
        };
        let mut seed = [0u8; 8];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| invalid("the system random source failed".to_owned()))?;
        let backoff = Backoff::new(BackoffPolicy::default()).map_err(|e| invalid(e.to_string()))?;
        let credentials = Arc::new(Credentials::new(name, (*ca.trust_bundle()).clone()));
        Ok(Self {
            ca,
            service_account,
            csr,
            clock,
            jitter: Box::new(SeededJitter::new(u64::from_le_bytes(seed))),
            refresh: RefreshPolicy::default(),
            backoff,
            credentials,
            metrics: None,
            refresh_at: None,
        })
    }

    /// Uses `jitter` for the refresh point and the backoff (tests use a fixed one).
    pub fn with_jitter(mut self, jitter: impl JitterSource + Send + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    /// Renews on `refresh` instead of [`RefreshPolicy::default`].
    pub fn with_refresh(mut self, refresh: RefreshPolicy) -> Result<Self, Error> {
        refresh.validate().map_err(|e| Error::Issue {
            identity: self.name().to_owned(),
            reason: e.to_string(),
        })?;
        self.refresh = refresh;
        Ok(self)
    }

    /// Records the certificate's expiry and the issuances in `metrics`.
    pub fn with_metrics(mut self, metrics: ServingMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The name the certificate carries and clients verify:
    /// `linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>` (the SPIFFE ID in
    /// SAN mode `spiffe`).
    pub fn name(&self) -> &str {
        self.credentials.identity()
    }

    /// The certificate and key presented, kept current by [`run`](Self::run).
    pub fn credentials(&self) -> Arc<Credentials> {
        Arc::clone(&self.credentials)
    }

    /// A TLS server configuration presenting the current certificate.
    pub fn server_tls(&self) -> Result<ServerTls, Error> {
        ServerTls::current_certificate(self.credentials())
    }

    /// Issues a certificate now with a fresh key from the CA's current issuer, checks it and
    /// installs it. Returns when to renew it. On error the current certificate stays.
    pub fn issue(&mut self) -> Result<OffsetDateTime, Error> {
        let result = self.issue_inner();
        if let Some(metrics) = &self.metrics {
            let result = if result.is_ok() { "ok" } else { "error" };
            metrics.issuances.get_or_create(&[("result", result)]).inc();
        }
        let (installed_at, not_before, not_after) = result?;
        if let Some(metrics) = &self.metrics {
            metrics.expiry.set(not_after.unix_timestamp());
        }
        self.backoff.reset();
        tracing::info!(
            identity = %self.name(),
            not_after = %meshid_policy::rfc3339(not_after),
            "issued the identity service's own certificate"
        );
        let refresh_at = self
            .refresh
            .refresh_at(not_before, not_after, installed_at, &mut *self.jitter)
            .map_err(|e| self.error(e.to_string()))?;
        self.refresh_at = Some(refresh_at);
        Ok(refresh_at)
    }

    fn issue_inner(&self) -> Result<(OffsetDateTime, OffsetDateTime, OffsetDateTime), Error> {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).map_err(|e| self.error(e))?;
        let csr = Csr::build(&key, &self.csr).map_err(|e| self.error(e))?;
        let now = self.clock.now();
        let certified = self
            .ca
            .certify(&self.service_account, csr.der(), now)
            .map_err(|e| self.error(e))?;
        let mut chain = Vec::with_capacity(1 + certified.chain.len());
        chain.push(certified.leaf);
        chain.extend(certified.chain.iter().cloned());
        // Checked against the bundle the CA trusts now, which replaces the previous one.
        let bundle = (*self.ca.trust_bundle()).clone();
        let (not_before, not_after) = self
            .credentials
            .install_external(Some(bundle), chain, key.pkcs8_der(), now)
            .map_err(|e| self.error(e))?;
        Ok((now, not_before, not_after))
    }

    fn error(&self, reason: impl fmt::Display) -> Error {
        Error::Issue {
            identity: self.name().to_owned(),
            reason: reason.to_string(),
        }
    }

    /// When to try again after a failure at `now`: backoff, capped by the current
    /// certificate's expiry.
    fn retry_at(&mut self, now: OffsetDateTime) -> OffsetDateTime {
        let valid = self
            .credentials
            .validity()
            .map(|(_, not_after)| not_after)
            .filter(|not_after| *not_after > now);
        now + self.backoff.next_delay(now, valid, &mut *self.jitter)
    }

    /// Runs until `shutdown` completes: issues at once (unless [`issue`](Self::issue) already
    /// did; then it waits for that certificate's refresh point), then renews at the refresh
    /// point, and re-issues at once whenever `issuer_changes` changes (whoever swaps the CA's
    /// issuer sends on it). Failures are logged and retried with backoff; if
    /// `issuer_changes`' sender goes away, renewal goes on by the clock alone.
    pub async fn run<T>(
        mut self,
        mut issuer_changes: watch::Receiver<T>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut watching = true;
        let mut issued = self.refresh_at.take();
        loop {
            let now = self.clock.now();
            let wake = match issued.take() {
                Some(refresh_at) => refresh_at,
                None => match self.issue() {
                    Ok(refresh_at) => refresh_at,
                    Err(error) => {
                        tracing::warn!(%error, "cannot issue the identity service's own certificate; retrying");
                        self.retry_at(now)
                    }
                },
            };
            loop {
                let now = self.clock.now();
                if now >= wake {
                    break;
                }
                let sleep = tokio::time::sleep(duration_between(now, wake));
                tokio::select! {
                    () = sleep => {}
                    changed = issuer_changes.changed(), if watching => {
                        if changed.is_ok() {
                            tracing::info!(
                                identity = %self.name(),
                                "the issuer changed; re-issuing the identity service's own certificate"
                            );
                            break;
                        }
                        watching = false;
                    }
                    () = &mut shutdown => return,
                }
            }
        }
    }
}

impl<K> fmt::Debug for ServingIdentity<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingIdentity")
            .field("identity", &self.credentials.identity())
            .field("validity", &self.credentials.validity())
            .finish_non_exhaustive()
    }
}

fn duration_between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    Duration::try_from(to - from).unwrap_or(Duration::ZERO)
}

// === impl ServingMetrics ===

/// Metrics of the identity service's own certificate:
///
/// - `identity_server_cert_expiration_timestamp_seconds`: when the certificate served over
///   TLS expires (seconds since the UNIX epoch);
/// - `identity_server_cert_issuances_total{result="ok|error"}`: its issuances.
#[derive(Clone, Debug, Default)]
pub struct ServingMetrics {
    expiry: Gauge,
    issuances: Family<ResultLabel, Counter>,
}

impl ServingMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_server_cert_expiration_timestamp_seconds",
            "When the identity service's own TLS certificate expires (seconds since the UNIX epoch)",
            metrics.expiry.clone(),
        );
        registry.register(
            "identity_server_cert_issuances",
            "Issuances of the identity service's own TLS certificate, by result",
            metrics.issuances.clone(),
        );
        metrics
    }
}
