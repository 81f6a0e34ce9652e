//! Readiness: whether the identity service can certify now, and if not, why.

use core::fmt;
use std::sync::Arc;

use meshid_ca::Ca;
use meshid_client::Credentials;
use meshid_policy::Clock;
use tokio::sync::watch;

/// What the gRPC server is doing, as far as readiness is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcState {
    /// Not serving yet.
    Starting,
    /// Serving Certify.
    Serving,
    /// Shutting down: no new connections; the requests in flight finish.
    ShuttingDown,
    /// Stopped (shut down, or failed).
    Stopped,
}

/// Why the identity service is not ready.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotReady {
    /// The gRPC server is not serving.
    Grpc(GrpcState),
    /// No issuer has been loaded.
    NoIssuer,
    /// The loaded issuer cannot issue at the clock's time: it, a certificate of its chain, or
    /// its trust anchor has expired (or is not valid yet). The text names which, and when.
    IssuerUnusable(String),
    /// The service serves Certify over TLS and its own certificate is missing, expired or not
    /// valid yet (it is renewed well before expiry; this means renewal has been failing).
    ServingCertificate(String),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grpc(GrpcState::Starting) => f.write_str("the gRPC server is not serving yet"),
            Self::Grpc(GrpcState::ShuttingDown) => {
                f.write_str("the gRPC server is shutting down, finishing the requests in flight")
            }
            Self::Grpc(_) => f.write_str("the gRPC server has stopped"),
            Self::NoIssuer => f.write_str("no issuer is loaded yet"),
            Self::IssuerUnusable(reason) | Self::ServingCertificate(reason) => f.write_str(reason),
        }
    }
}

/// The truth behind `/ready`: the gRPC server is serving, an issuer is loaded that can
/// issue now (neither it, nor its chain, nor its trust anchor expired), and, when Certify is
/// served over TLS, the service's own certificate is valid, at the time the clock tells. Checked on every request, so a reloaded issuer makes the service ready again
/// without anything else to do.
#[derive(Clone)]
pub struct Readiness {
    ca: Arc<Ca>,
    clock: Arc<dyn Clock>,
    grpc: Arc<watch::Sender<GrpcState>>,
    serving: Option<Arc<Credentials>>,
}

impl Readiness {
    /// Readiness of a service certifying with `ca` at the time `clock` tells; its gRPC server
    /// is [`GrpcState::Starting`].
    pub fn new(ca: Arc<Ca>, clock: Arc<dyn Clock>) -> Self {
        Self {
            ca,
            clock,
            grpc: Arc::new(watch::Sender::new(GrpcState::Starting)),
            serving: None,
        }
    }

    /// Also requires the certificate the gRPC server presents over TLS to be valid.
    pub fn with_serving_certificate(mut self, credentials: Arc<Credentials>) -> Self {
        self.serving = Some(credentials);
        self
    }

    /// Records what the gRPC server is doing.
    pub fn set_grpc(&self, state: GrpcState) {
        self.grpc.send_replace(state);
    }

    /// What the gRPC server is doing.
    pub fn grpc(&self) -> GrpcState {
        *self.grpc.borrow()
    }

    /// Resolves once the gRPC server has stopped.
    pub async fn grpc_stopped(&self) {
        let mut states = self.grpc.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = states.wait_for(|state| *state == GrpcState::Stopped).await;
    }

    /// `Ok` when ready; otherwise every reason, gRPC first.
    pub fn check(&self) -> Result<(), Vec<NotReady>> {
        let mut reasons = Vec::new();
        let grpc = self.grpc();
        if grpc != GrpcState::Serving {
            reasons.push(NotReady::Grpc(grpc));
        }
        match self.ca.issuer() {
            None => reasons.push(NotReady::NoIssuer),
            Some(issuer) => {
                let now = self.clock.now();
                if let Err(e) = self
                    .ca
                    .policy()
                    .validity_window(now, issuer.validity_bounds())
                {
                    let unusable = meshid_ca::Error::IssuerUnusable(e);
                    reasons.push(NotReady::IssuerUnusable(unusable.to_string()));
                }
            }
        }
        if let Some(serving) = &self.serving {
            let now = self.clock.now();
            match serving.validity() {
                None => reasons.push(NotReady::ServingCertificate(format!(
                    "the identity service has no TLS certificate for {} yet",
                    serving.identity()
                ))),
                Some((not_before, not_after)) if now < not_before || now >= not_after => {
                    reasons.push(NotReady::ServingCertificate(format!(
                        "the identity service's TLS certificate for {} is valid only from {} \
                         to {}; renewing it has been failing (see the log)",
                        serving.identity(),
                        meshid_policy::rfc3339(not_before),
                        meshid_policy::rfc3339(not_after)
                    )));
                }
                Some(_) => {}
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("grpc", &self.grpc())
            .field("issuer", &self.ca.issuer().is_some())
            .finish_non_exhaustive()
    }
}

/// The admin server's `/ready` answers from these checks: 503 with each reason while one fails.
impl meshid_admin::ReadyCheck for Readiness {
    fn check(&self) -> Result<(), Vec<String>> {
        Self::check(self).map_err(|reasons| reasons.iter().map(ToString::to_string).collect())
    }
}
