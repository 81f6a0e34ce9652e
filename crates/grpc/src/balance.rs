//! Several identity service endpoints behind one certifier: round-robin, failover, DNS.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use arc_swap::ArcSwap;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::client::{lazy_channel, status_error};
use crate::{ClientTls, Error, Timeouts, UriProblem};

/// How long an endpoint that failed is tried only after the others.
pub const EJECT_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Where the identity service's replicas are.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoints {
    /// A fixed list of addresses.
    List(Vec<SocketAddr>),
    /// A DNS name resolving to every replica (Linkerd points proxies at the headless service
    /// `linkerd-identity-headless.<ns>.svc.<cluster-domain>:8080`), resolved again every
    /// `refresh`.
    Dns {
        /// The name.
        host: String,
        /// The port.
        port: u16,
        /// How often the name is resolved again.
        refresh: Duration,
    },
}

impl Endpoints {
    /// The default [`Endpoints::Dns`] refresh: 10 s.
    pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(10);

    /// Parses `HOST:PORT[,HOST:PORT...]`: a list of IP addresses is a [`List`](Self::List)
    /// (IPv6 in brackets); a single name is [`Dns`](Self::Dns), re-resolved every
    /// [`DEFAULT_DNS_REFRESH`](Self::DEFAULT_DNS_REFRESH). Several names, or names mixed
    /// with addresses, are refused.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |reason: UriProblem| Error::InvalidUri {
            uri: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid(UriProblem::EmptyEntry));
        }
        if let Ok(addrs) = parts
            .iter()
            .map(|p| p.parse::<SocketAddr>())
            .collect::<Result<Vec<_>, _>>()
        {
            return Ok(Self::List(addrs));
        }
        let [single] = parts.as_slice() else {
            return Err(invalid(UriProblem::SeveralNames));
        };
        let (host, port) = single
            .rsplit_once(':')
            .ok_or_else(|| invalid(UriProblem::NotHostPort))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| invalid(UriProblem::InvalidPort))?;
        if host.is_empty() || host.contains(['[', ']', ':', '/']) {
            return Err(invalid(UriProblem::NotHostPort));
        }
        Ok(Self::Dns {
            host: host.to_owned(),
            port,
            refresh: Self::DEFAULT_DNS_REFRESH,
        })
    }

    /// The host to decide TLS by ([`TlsMode::tls_for_host`](crate::TlsMode::tls_for_host)):
    /// the name, or the first address (`None` for an empty list).
    pub fn host(&self) -> Option<String> {
        match self {
            Self::List(addrs) => addrs.first().map(|a| a.ip().to_string()),
            Self::Dns { host, .. } => Some(host.clone()),
        }
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::List(addrs) => {
                let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                f.write_str(&addrs.join(","))
            }
            Self::Dns { host, port, .. } => write!(f, "{host}:{port}"),
        }
    }
}

/// A resolution in progress.
pub type Resolving<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Resolves a name to addresses: [`SystemResolver`] (tokio's, the system's resolver), or a
/// test's.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, with `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a>;
}

/// The system's resolver, through [`tokio::net::lookup_host`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

// === impl Balancer ===

/// One endpoint: its address, a channel that connects (and reconnects) when used, and when it
/// last failed.
struct Backend {
    addr: SocketAddr,
    client: IdentityClient<Channel>,
    failed_at: Mutex<Option<Instant>>,
}

impl Backend {
    fn ejected(&self, now: Instant) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| now.saturating_duration_since(at) < EJECT_AFTER_FAILURE)
    }

    fn record(&self, failed: bool) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = failed.then(Instant::now);
    }
}

/// The endpoints of a balanced [`GrpcCertifier`](crate::GrpcCertifier).
pub(crate) struct Balancer {
    endpoints: Endpoints,
    tls: Option<ClientTls>,
    timeouts: Timeouts,
    resolver: Arc<dyn Resolve>,
    backends: ArcSwap<Vec<Arc<Backend>>>,
    next: AtomicUsize,
}

impl Balancer {
    /// Endpoints resolved once now (a name that does not resolve yet is resolved again on
    /// the first call and every refresh); with [`Endpoints::Dns`], a task resolves the name
    /// again every `refresh` for as long as the balancer lives.
    pub(crate) async fn start(
        endpoints: Endpoints,
        tls: Option<ClientTls>,
        timeouts: Timeouts,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Arc<Self>, Error> {
        if let Endpoints::List(addrs) = &endpoints
            && addrs.is_empty()
        {
            return Err(Error::InvalidUri {
                uri: String::new(),
                reason: UriProblem::NoEndpoint,
            });
        }
        if let Endpoints::Dns { refresh, .. } = &endpoints
            && refresh.is_zero()
        {
            return Err(Error::InvalidUri {
                uri: endpoints.to_string(),
                reason: UriProblem::ZeroDnsRefresh,
            });
        }
        let balancer = Arc::new(Self {
            endpoints,
            tls,
            timeouts,
            resolver,
            backends: ArcSwap::from_pointee(Vec::new()),
            next: AtomicUsize::new(0),
        });
        match &balancer.endpoints {
            Endpoints::List(addrs) => {
                let addrs: BTreeSet<SocketAddr> = addrs.iter().copied().collect();
                balancer.replace(&addrs);
            }
            Endpoints::Dns { refresh, .. } => {
                balancer.resolve().await;
                let refresh = *refresh;
                let weak = Arc::downgrade(&balancer);
                tokio::spawn(refresh_loop(weak, refresh));
            }
        }
        Ok(balancer)
    }

    /// Resolves the name again and installs the addresses, if it resolves to any; otherwise
    /// the current ones stay.
    async fn resolve(&self) {
        let Endpoints::Dns { host, port, .. } = &self.endpoints else {
            return;
        };
        let resolved =
            tokio::time::timeout(self.timeouts.connect, self.resolver.resolve(host, *port)).await;
        match resolved {
            Ok(Ok(addrs)) if !addrs.is_empty() => {
                let addrs: BTreeSet<SocketAddr> = addrs.into_iter().collect();
                self.replace(&addrs);
            }
            Ok(Ok(_)) => {
                tracing::warn!(%host, "the identity service name resolves to no address; keeping the previous ones");
            }
            Ok(Err(error)) => {
                tracing::warn!(%host, %error, "cannot resolve the identity service; keeping the previous addresses");
            }
            Err(_) => {
                tracing::warn!(%host, timeout = ?self.timeouts.connect, "resolving the identity service timed out; keeping the previous addresses");
            }
        }
    }

    /// Installs `addrs`, keeping the channels of addresses already known.
    fn replace(&self, addrs: &BTreeSet<SocketAddr>) {
        let current = self.backends.load();
        let known: BTreeSet<SocketAddr> = current.iter().map(|b| b.addr).collect();
        if &known == addrs {
            return;
        }
        let backends: Vec<Arc<Backend>> = addrs
            .iter()
            .map(|addr| {
                current
                    .iter()
                    .find(|b| b.addr == *addr)
                    .map(Arc::clone)
                    .unwrap_or_else(|| {
                        Arc::new(Backend {
                            addr: *addr,
                            client: IdentityClient::new(lazy_channel(
                                *addr,
                                self.tls.clone(),
                                self.timeouts,
                            )),
                            failed_at: Mutex::new(None),
                        })
                    })
            })
            .collect();
        let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        tracing::info!(endpoints = %list.join(","), "identity service endpoints");
        self.backends.store(Arc::new(backends));
    }

    /// The addresses in use.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.backends.load().iter().map(|b| b.addr).collect()
    }

    /// Certifies with the next endpoint in turn; on a connect error, `Unavailable`, or a
    /// connection lost before the answer, with the next one, each endpoint at most once.
    /// Endpoints that failed within [`EJECT_AFTER_FAILURE`] are tried last.
    pub(crate) async fn certify(&self, request: CertifyRequest) -> Result<CertifyResponse, Status> {
        let mut backends = self.backends.load_full();
        if backends.is_empty() {
            self.resolve().await;
            backends = self.backends.load_full();
        }
        if backends.is_empty() {
            return Err(Status::unavailable(format!(
                "no address for the identity service {}",
                self.endpoints
            )));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        let now = Instant::now();
        let (mut order, ejected): (Vec<&Arc<Backend>>, Vec<&Arc<Backend>>) = backends[start..]
            .iter()
            .chain(&backends[..start])
            .partition(|b| !b.ejected(now));
        order.extend(ejected);

        let mut failures = Vec::new();
        for backend in order {
            let mut client = backend.client.clone();
            match client.certify(request.clone()).await {
                Ok(response) => {
                    backend.record(false);
                    return Ok(response.into_inner());
                }
                Err(status) if fails_over(&status) => {
                    backend.record(true);
                    tracing::debug!(
                        endpoint = %backend.addr,
                        error = %status_error(&status),
                        "identity service endpoint failed; trying the next"
                    );
                    failures.push(format!("{}: {}", backend.addr, status.message()));
                }
                Err(status) => {
                    // The service answered: it is up.
                    backend.record(false);
                    return Err(status);
                }
            }
        }
        Err(Status::unavailable(format!(
            "every identity service endpoint failed ({})",
            failures.join("; ")
        )))
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("endpoints", &self.endpoints)
            .field("addrs", &self.addrs())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Whether another endpoint is tried after `status`: `Unavailable` (refused connection, a
/// replica without an issuer, a stream refused), or an error made on this side from a broken
/// or cancelled connection (the replica went away, or shut down, mid-request: `Unknown`,
/// `Internal` or `Cancelled` with the transport's error as its source) rather than an answer
/// of the service.
/// Certify has no side effect but a leaf nobody else sees, so asking again is safe.
fn fails_over(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable => true,
        Code::Unknown | Code::Internal | Code::Cancelled => {
            core::error::Error::source(status).is_some()
        }
        _ => false,
    }
}

/// Resolves the name every `refresh` while the balancer lives.
async fn refresh_loop(balancer: Weak<Balancer>, refresh: Duration) {
    loop {
        tokio::time::sleep(refresh).await;
        let Some(balancer) = balancer.upgrade() else {
            return;
        };
        balancer.resolve().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_lists_and_names_parse() {
        assert_eq!(
            Endpoints::parse("10.0.0.1:8080, 10.0.0.2:8080,[fd00::1]:8080"),
            Ok(Endpoints::List(vec![
                "10.0.0.1:8080".parse().unwrap(),
                "10.0.0.2:8080".parse().unwrap(),
                "[fd00::1]:8080".parse().unwrap(),
            ]))
        );
        assert_eq!(
            Endpoints::parse("linkerd-identity-headless.linkerd.svc.cluster.local:8080"),
            Ok(Endpoints::Dns {
                host: "linkerd-identity-headless.linkerd.svc.cluster.local".to_owned(),
                port: 8080,
                refresh: Endpoints::DEFAULT_DNS_REFRESH,
            })
        );
        let refused = |text: &str| Endpoints::parse(text).unwrap_err().to_string();
        assert_eq!(
            refused("a.example:8080,b.example:8080"),
            "invalid identity service URI 'a.example:8080,b.example:8080': a list must be of IP \
             addresses (IP:PORT,...); give one DNS name for a name"
        );
        assert_eq!(
            refused("identity.example"),
            "invalid identity service URI 'identity.example': expected HOST:PORT"
        );
        assert_eq!(
            refused("identity.example:http"),
            "invalid identity service URI 'identity.example:http': the port is not a number \
             from 0 to 65535"
        );
        assert_eq!(
            refused("10.0.0.1:8080,"),
            "invalid identity service URI '10.0.0.1:8080,': expected HOST:PORT[,HOST:PORT...]"
        );
        let problem = |text: &str| match Endpoints::parse(text) {
            Err(Error::InvalidUri { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem("a.example:8080,b.example:8080"),
            UriProblem::SeveralNames
        );
        assert_eq!(problem("identity.example"), UriProblem::NotHostPort);
        assert_eq!(problem("[fd00::1:8080"), UriProblem::NotHostPort);
        assert_eq!(problem("identity.example:http"), UriProblem::InvalidPort);
        assert_eq!(problem("10.0.0.1:8080,"), UriProblem::EmptyEntry);
        assert_eq!(
            Endpoints::parse("10.0.0.1:8080").unwrap().host().as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn only_unavailable_and_broken_connections_fail_over() {
        assert!(fails_over(&Status::unavailable(
            "cert issuer not ready yet"
        )));
        // Answers of the service itself.
        for code in [
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::Internal,
            Code::Unknown,
            Code::ResourceExhausted,
            Code::DeadlineExceeded,
            Code::Cancelled,
        ] {
            assert!(!fails_over(&Status::new(code, "answered")), "{code:?}");
        }
        // A connection that broke: made here, from the transport's error.
        let broken = Status::from_error(Box::new(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "connection closed before message completed",
        )));
        assert_eq!(broken.code(), Code::Unknown);
        assert!(fails_over(&broken));
        // A stream the replica cancelled as it shut down.
        let cancelled = Status::from_error(Box::new(h2::Error::from(h2::Reason::CANCEL)));
        assert_eq!(cancelled.code(), Code::Cancelled);
        assert!(fails_over(&cancelled));
    }
}
