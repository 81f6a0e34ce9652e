//! The Certify server: Linkerd's identity pipeline over the in-process CA.

use core::fmt;
use core::future::Future;
use std::sync::Arc;

use linkerd2_proxy_api::identity::identity_server::{Identity, IdentityServer};
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use meshid_authn::{Authenticator, ErrorKind};
use meshid_ca::{Ca, Certified};
use meshid_csr::{CsrLimits, ParsedCsr};
use meshid_issuer::{Event, EventKind, EventSink, TracingSink};
use meshid_policy::{Clock, rfc3339};
use ring::rand::{SecureRandom as _, SystemRandom};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tonic::{Code, Request, Response, Status};
use zeroize::Zeroizing;

use crate::accept::TlsIncoming;
use crate::guard::GuardLayer;
use crate::{Error, GrpcLimits, Incoming, Metrics, ServerTls};

/// Linkerd's message for a token the authority does not recognise.
const NOT_AUTHENTICATED: &str = "authentication token could not be authenticated";

/// The `io.linkerd.proxy.identity.Identity` service over a meshid [`Ca`].
///
/// Each request runs Linkerd's pipeline, in Linkerd's order, with Linkerd's status codes and
/// messages (see the crate docs for the table). The CSR is parsed and its names checked
/// *before* the token is reviewed, so malformed or misnamed requests never reach the
/// Kubernetes API; no lock is held while the authenticator runs.
pub struct IdentityService<A, K> {
    ca: Arc<Ca>,
    authenticator: A,
    clock: K,
    metrics: Option<Metrics>,
    csr_limits: CsrLimits,
    limits: GrpcLimits,
    events: Arc<dyn EventSink>,
    random: SystemRandom,
}

impl<A, K> IdentityService<A, K>
where
    A: Authenticator + 'static,
    K: Clock,
{
    /// A service certifying with `ca`, reviewing tokens with `authenticator`, at the time
    /// `clock` tells.
    pub fn new(ca: Arc<Ca>, authenticator: A, clock: K) -> Self {
        Self {
            ca,
            authenticator,
            clock,
            metrics: None,
            csr_limits: CsrLimits::default(),
            limits: GrpcLimits::default(),
            events: Arc::new(TracingSink),
            random: SystemRandom::new(),
        }
    }

    /// Sends an `IssuedLeafCertificate` event (`issued certificate for <id> until <NotAfter>:
    /// <sha256>`) to `sink` for every issuance (default: a tracing log line).
    pub fn with_events(mut self, sink: impl EventSink) -> Self {
        self.events = Arc::new(sink);
        self
    }

    /// Counts every answer, by status code, in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The CSR limits of the checks that run before the token review; pass the ones the
    /// [`Ca`] was built with (default: [`CsrLimits::default`], as for the `Ca`).
    pub fn with_csr_limits(mut self, limits: CsrLimits) -> Self {
        self.csr_limits = limits;
        self
    }

    /// The transport and request limits [`serve`](Self::serve) and
    /// [`serve_with`](Self::serve_with) apply (default: [`GrpcLimits::default`]).
    pub fn with_limits(mut self, limits: GrpcLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The tonic service to add to a [`tonic::transport::Server`], refusing messages larger
    /// than [`GrpcLimits::max_message_size`]. The other limits are the server's: prefer
    /// [`serve_with`](Self::serve_with), which sets them all.
    pub fn into_server(self) -> IdentityServer<Self> {
        let max_message_size = self.limits.max_message_size;
        IdentityServer::new(self).max_decoding_message_size(max_message_size)
    }

    /// Serves plaintext gRPC (h2c, as Linkerd's identity controller does) on `listener` until
    /// `shutdown` completes; requests in flight then finish before this returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        self.serve_with(tonic::transport::Server::builder(), listener, shutdown)
            .await
    }

    /// [`serve`](Self::serve) with a server the caller configured, e.g. with
    /// [`tls_config`](tonic::transport::Server::tls_config). The service's [`GrpcLimits`]
    /// replace the server's HTTP/2 settings (concurrent streams, reset limits, stream window,
    /// keepalive), and it is served directly (no router: other methods answer
    /// `Unimplemented`), behind the deadline and the in-flight limit, on an accept loop that
    /// backs off on errors ([`Incoming`]).
    pub async fn serve_with(
        self,
        server: tonic::transport::Server,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        self.limits.validate()?;
        let incoming = Incoming::new(listener, self.limits.accept_backoff, "gRPC");
        self.serve_incoming(server, incoming, shutdown).await
    }

    /// Serves gRPC over TLS 1.3 (ALPN `h2`) on `listener` until `shutdown` completes,
    /// presenting the certificate `tls` resolves at each handshake (the identity service's
    /// own, kept current by [`ServingIdentity`](crate::ServingIdentity)): a renewed
    /// certificate is presented from the next handshake on, without a restart.
    ///
    /// Every limit of [`serve_with`](Self::serve_with) applies, and the accept loop's
    /// backoff; each handshake runs in its own task and must finish within
    /// [`GrpcLimits::tls_handshake_timeout`] (a client that connects and never finishes is
    /// disconnected), at most [`GrpcLimits::MAX_PENDING_HANDSHAKES`] at once. A failed
    /// handshake is logged at debug and costs the other connections nothing.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: ServerTls,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        self.limits.validate()?;
        let incoming = Incoming::new(listener, self.limits.accept_backoff, "gRPC");
        let incoming = TlsIncoming::new(
            incoming,
            tls.config,
            self.limits.tls_handshake_timeout,
            GrpcLimits::MAX_PENDING_HANDSHAKES,
        );
        self.serve_incoming(tonic::transport::Server::builder(), incoming, shutdown)
            .await
    }

    /// Serves `incoming`'s connections with every limit set.
    async fn serve_incoming<IO>(
        self,
        server: tonic::transport::Server,
        incoming: impl tokio_stream::Stream<Item = Result<IO, std::io::Error>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error>
    where
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
    {
        let limits = self.limits.clone();
        let guard = GuardLayer::new(
            limits.max_in_flight,
            limits.request_timeout,
            self.metrics.clone(),
        );
        server
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_max_local_error_reset_streams(Some(limits.max_local_error_resets))
            .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_resets))
            .initial_stream_window_size(limits.stream_window())
            .http2_keepalive_interval(Some(limits.keepalive_interval))
            .http2_keepalive_timeout(Some(limits.keepalive_timeout))
            .layer(guard)
            .serve_with_incoming_shutdown(self.into_server(), incoming, shutdown)
            .await
            .map_err(|e| Error::Serve {
                reason: crate::error::error_chain(&e),
            })
    }

    /// A request id to quote: 16 hex digits from the system's random source.
    fn request_id(&self) -> String {
        let mut bytes = [0u8; 8];
        // The system source does not fail on Linux once the kernel's pool is initialised;
        // should it, a zero id still ties the answer to its log line by time.
        let _ = self.random.fill(&mut bytes);
        hex::encode(bytes)
    }

    /// An `Internal` refusal that shows the caller nothing but a request id; the detail is
    /// logged with the same id.
    fn internal(&self, identity: &str, what: &str, detail: &dyn fmt::Display) -> Refusal {
        let request_id = self.request_id();
        tracing::warn!(%request_id, %identity, "{what}: {detail}");
        Refusal::new(
            Code::Internal,
            format!("internal error {what}; request id {request_id}"),
        )
    }

    /// The pipeline. Steps are numbered as in Linkerd's reference table.
    async fn run(&self, request: CertifyRequest) -> Result<Certified, Refusal> {
        let CertifyRequest {
            identity,
            token,
            certificate_signing_request: csr_der,
        } = request;
        let token = Zeroizing::new(token);
        let now = whole_seconds(self.clock.now());

        // 1. An issuer is loaded.
        let issuer = self
            .ca
            .issuer()
            .ok_or_else(|| Refusal::from_ca(&meshid_ca::Error::IssuerNotReady))?;

        // 2. Identity, token and CSR are present; the CSR parses and its signature verifies;
        //    the identity is one of this mesh.
        if identity.is_empty() {
            return Err(Refusal::new(Code::InvalidArgument, "missing identity"));
        }
        if token.is_empty() {
            return Err(Refusal::new(Code::InvalidArgument, "missing token"));
        }
        if csr_der.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "missing certificate signing request",
            ));
        }
        let csr = ParsedCsr::from_der(&csr_der, &self.csr_limits)
            .map_err(|e| Refusal::new(Code::InvalidArgument, e.to_string()))?;
        // The identity is the name the leaf will carry: the identity name (Linkerd), or the
        // SPIFFE ID when the SAN mode issues SPIFFE IDs.
        let requested = self
            .ca
            .policy()
            .requested_service_account(self.ca.mesh(), &identity)
            .map_err(|e| match e {
                meshid_policy::Error::RequestedNameNotIssued { .. } => {
                    Refusal::new(Code::FailedPrecondition, e.to_string())
                }
                _ => Refusal::new(Code::InvalidArgument, e.to_string()),
            })?;

        // 3. The issuer chain and its trust anchor are still valid.
        self.ca
            .policy()
            .validity_window(now, issuer.validity_bounds())
            .map_err(|e| Refusal::from_ca(&meshid_ca::Error::IssuerUnusable(e)))?;
        drop(issuer);

        // 4. The CSR's names. `decide` checks names first and the key last: a key refusal
        //    means the names passed, and it is answered at step 7, after the token review.
        let key_refusal = match self
            .ca
            .policy()
            .decide(self.ca.mesh(), &requested, csr.content())
        {
            Ok(_) => None,
            Err(
                e @ (meshid_policy::Error::KeyNotEcdsa { .. }
                | meshid_policy::Error::KeyAlgorithmNotAllowed { .. }),
            ) => Some(Refusal::from_policy(&e)),
            Err(e) => return Err(Refusal::from_policy(&e)),
        };
        // 5. The token review: no lock or issuer snapshot is held across it.
        let authenticated =
            self.authenticator
                .authenticate(&token)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::NotAuthenticated => {
                        Refusal::new(Code::FailedPrecondition, NOT_AUTHENTICATED)
                    }
                    ErrorKind::InvalidToken => Refusal::new(Code::InvalidArgument, e.to_string()),
                    // The API server's address and error text stay in the log.
                    _ => self.internal(&identity, "validating the token", &e),
                })?;
        drop(token);

        // 6. The token's identity is the one requested (exact, case-sensitive), compared in
        //    the form requested.
        let found = if identity.starts_with("spiffe://") {
            self.ca
                .mesh()
                .spiffe_id(&authenticated.service_account)
                .to_string()
        } else {
            match self.ca.mesh().identity(&authenticated.service_account) {
                Ok(found) => found.to_string(),
                Err(_) => authenticated.service_account.username(),
            }
        };
        if found != identity {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                format!(
                    "requested identity did not match provided token: requested={identity}; found={found}"
                ),
            ));
        }

        // 7. The key type.
        if let Some(refusal) = key_refusal {
            return Err(refusal);
        }

        // 8. Sign. `certify_parsed` repeats the issuer and policy checks against the issuer
        //    current now (it may have been swapped, or expired, during the token review); the
        //    CSR's signature was verified once, in step 2.
        let now = whole_seconds(self.clock.now());
        let certified = self
            .ca
            .certify_parsed(&authenticated.service_account, &csr, now)
            .map_err(|e| match Refusal::from_ca(&e) {
                refusal if refusal.code == Code::Internal => {
                    self.internal(&identity, "signing the certificate", &e)
                }
                refusal => refusal,
            })?;
        tracing::debug!(
            identity = %certified.identity,
            serial = %hex::encode(certified.serial),
            not_before = %rfc3339(certified.not_before),
            chain = certified.chain.len(),
            pod = authenticated.pod_name.as_deref().unwrap_or("-"),
            "certified"
        );
        Ok(certified)
    }
}

#[tonic::async_trait]
impl<A, K> Identity for IdentityService<A, K>
where
    A: Authenticator + 'static,
    K: Clock,
{
    async fn certify(
        &self,
        request: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let started = tokio::time::Instant::now();
        let request = request.into_inner();
        let identity = request.identity.clone();
        let result = self.run(request).await;
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(refusal) => refusal.code,
        };
        if let Some(metrics) = &self.metrics {
            metrics.observe(code, started.elapsed());
        }
        match result {
            Ok(certified) => {
                if self.events.wants(EventKind::Normal) {
                    self.events.emit(&Event::issued_leaf_certificate(
                        &certified,
                        self.clock.now(),
                    ));
                }
                Ok(Response::new(response(&certified)))
            }
            Err(refusal) => {
                let code_name = crate::code::name(refusal.code);
                // An internal error's detail was logged with its request id already.
                match refusal.code {
                    Code::Unavailable => tracing::warn!(
                        %identity, code = code_name, "certify refused: {}", refusal.message
                    ),
                    _ => tracing::debug!(
                        %identity, code = code_name, "certify refused: {}", refusal.message
                    ),
                }
                Err(Status::new(refusal.code, refusal.message))
            }
        }
    }
}

impl<A, K> fmt::Debug for IdentityService<A, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityService")
            .field("mesh", self.ca.mesh())
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

/// The wire answer: DER leaf, DER intermediates (issuer first), `valid_until` = NotAfter.
fn response(certified: &Certified) -> CertifyResponse {
    CertifyResponse {
        leaf_certificate: certified.leaf.to_vec(),
        intermediate_certificates: certified.chain.iter().map(|c| c.to_vec()).collect(),
        valid_until: Some(timestamp(certified.not_after)),
    }
}

pub(crate) fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        // Always below 10^9, so it fits.
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// Certificates carry whole seconds; so does every check made before signing.
fn whole_seconds(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(0).unwrap_or(now)
}

// === impl Refusal ===

/// A gRPC answer other than OK.
#[derive(Debug)]
struct Refusal {
    code: Code,
    message: String,
}

impl Refusal {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Linkerd's codes for the CA's errors; an issuer that can no longer issue is
    /// `Unavailable` (Linkerd answers `Unknown`).
    fn from_ca(e: &meshid_ca::Error) -> Self {
        use meshid_ca::Error as E;
        let code = match e {
            E::IssuerNotReady | E::IssuerUnusable(_) => Code::Unavailable,
            E::Csr(_) => Code::InvalidArgument,
            E::Policy(p) => return Self::from_policy(p),
            _ => Code::Internal,
        };
        Self::new(code, e.to_string())
    }

    /// CSR names → FailedPrecondition (Linkerd); a non-ECDSA key → Internal (Linkerd); an
    /// ECDSA curve the policy does not allow → FailedPrecondition: like the names, it is the
    /// request that the configuration refuses, not a server fault.
    fn from_policy(e: &meshid_policy::Error) -> Self {
        let code = match e {
            meshid_policy::Error::KeyNotEcdsa { .. } => Code::Internal,
            _ => Code::FailedPrecondition,
        };
        Self::new(code, e.to_string())
    }
}
