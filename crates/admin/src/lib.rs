//! The admin HTTP endpoint of meshid's processes (the identity service, the proxy): `/ping`,
//! `/live`, `/ready`, `/metrics`, over HTTP/1.1 with strict limits ([`AdminLimits`]).
//!
//! `/ready` answers from a flag the owner sets ([`AdminState::set_ready`]) or from checks it
//! hands over ([`AdminState::with_readiness`], any [`ReadyCheck`]), with the reasons when not
//! ready.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use meshid_admin::{AdminLimits, AdminState, ReadyCheck};
//! use prometheus_client::registry::Registry;
//!
//! struct Warming;
//! impl ReadyCheck for Warming {
//!     fn check(&self) -> Result<(), Vec<String>> {
//!         Err(vec!["no certificate yet".to_owned()])
//!     }
//! }
//!
//! let state = AdminState::new(Registry::default(), || {}).with_readiness(Warming);
//! assert_eq!(state.check_ready(), Err(vec!["no certificate yet".to_owned()]));
//!
//! let flag = AdminState::new(Registry::default(), || {});
//! assert!(flag.check_ready().is_err());
//! flag.set_ready(true);
//! assert!(flag.check_ready().is_ok());
//! assert!(AdminLimits::default().validate().is_ok());
//! # let _ = Arc::new(flag);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use core::convert::Infallible;
use core::future::Future;
use core::ops::RangeInclusive;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use meshid_grpc::{AcceptBackoff, LimitProblem};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Why the admin server could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot listen for admin on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason (`io::Error` is neither `Clone` nor comparable; the
        /// process stops on it either way).
        reason: String,
    },
    /// A limit is outside its allowed range.
    #[error("invalid admin server limit {name}: {reason}")]
    Limit {
        /// The limit's field name.
        name: &'static str,
        /// Its value and the allowed range.
        reason: LimitProblem,
    },
    /// [`AdminLimits::accept_backoff`] is refused; the gRPC crate's error says why.
    #[error("invalid admin server limit accept_backoff: {0}")]
    AcceptBackoff(#[source] meshid_grpc::Error),
}

/// Checks that say whether a process is ready, and if not, why.
pub trait ReadyCheck: Send + Sync {
    /// `Ok` when ready, else the reasons (each one line).
    fn check(&self) -> Result<(), Vec<String>>;
}

/// A workload's identity (the proxy's, the agent's) is ready while a valid certificate is
/// installed: not before the first one, nor after it expired unrenewed.
impl ReadyCheck for Arc<meshid_client::Credentials> {
    fn check(&self) -> Result<(), Vec<String>> {
        match self.current_state() {
            meshid_client::State::Ready { .. } => Ok(()),
            meshid_client::State::Expired { expired_at, .. } => Err(vec![format!(
                "the certificate expired at {} and has not been renewed",
                meshid_policy::rfc3339(expired_at)
            )]),
            _ => Err(vec!["no certificate yet".to_owned()]),
        }
    }
}

/// `/ping`: 200 `pong` while the process answers (Linkerd's liveness path).
pub const PING_PATH: &str = "/ping";
/// `/live`: 200 while the process runs; what a liveness probe asks.
pub const LIVE_PATH: &str = "/live";
/// `/ready`: 200 while the service can issue, else 503 with the reasons; what a readiness
/// probe asks.
pub const READY_PATH: &str = "/ready";
/// `/metrics`: Prometheus (OpenMetrics) text.
pub const METRICS_PATH: &str = "/metrics";
/// Every path the admin server answers; anything else is 404.
pub const ROUTES: [&str; 4] = [PING_PATH, LIVE_PATH, READY_PATH, METRICS_PATH];

/// Limits of the admin server. [`Default`] is the strict choice.
///
/// | limit | default | past it |
/// |---|---|---|
/// | [`header_read_timeout`](Self::header_read_timeout) | 5 s | a client that has not sent a request's headers (from its connection, or from its previous answer) is disconnected |
/// | [`max_connections`](Self::max_connections) | 512 | a new connection is closed at once |
/// | [`accept_backoff`](Self::accept_backoff) | 5 ms doubling to 1 s | an accept error (e.g. `EMFILE`) pauses accepting |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminLimits {
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How the accept loop waits after an accept error.
    pub accept_backoff: AcceptBackoff,
}

impl Default for AdminLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 512,
            accept_backoff: AcceptBackoff::default(),
        }
    }
}

impl AdminLimits {
    /// Allowed [`header_read_timeout`](Self::header_read_timeout).
    pub const HEADER_READ_TIMEOUT: RangeInclusive<Duration> =
        Duration::from_millis(100)..=Duration::from_secs(10);
    /// Allowed [`max_connections`](Self::max_connections).
    pub const MAX_CONNECTIONS: RangeInclusive<usize> = 1..=100_000;

    /// Checks every limit against its allowed range.
    pub fn validate(&self) -> Result<(), Error> {
        let timeout = self.header_read_timeout;
        if !Self::HEADER_READ_TIMEOUT.contains(&timeout) {
            return Err(Error::Limit {
                name: "header_read_timeout",
                reason: LimitProblem::DurationOutOfRange {
                    value: timeout,
                    min: *Self::HEADER_READ_TIMEOUT.start(),
                    max: *Self::HEADER_READ_TIMEOUT.end(),
                },
            });
        }
        let max = self.max_connections;
        if !Self::MAX_CONNECTIONS.contains(&max) {
            // `usize` fits in `u64` on every supported target.
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            return Err(Error::Limit {
                name: "max_connections",
                reason: LimitProblem::CountOutOfRange {
                    value: count(max),
                    min: count(*Self::MAX_CONNECTIONS.start()),
                    max: count(*Self::MAX_CONNECTIONS.end()),
                },
            });
        }
        self.accept_backoff.validate().map_err(Error::AcceptBackoff)
    }
}

/// What the admin server reports.
pub struct AdminState {
    ready: Ready,
    registry: Registry,
    before_scrape: Box<dyn Fn() + Send + Sync>,
}

/// Where `/ready` gets its answer.
enum Ready {
    /// A flag set by the owner ([`AdminState::set_ready`]): `ready` or `not ready`.
    Flag(AtomicBool),
    /// The owner's checks, with the reasons.
    Checks(Box<dyn ReadyCheck>),
}

impl AdminState {
    /// Admin state over `registry`; `before_scrape` runs before each `/metrics` encoding (to
    /// refresh gauges that depend on the current time, such as the issuer's TTL). `/ready`
    /// answers 503 until [`set_ready`](Self::set_ready).
    pub fn new(registry: Registry, before_scrape: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            ready: Ready::Flag(AtomicBool::new(false)),
            registry,
            before_scrape: Box::new(before_scrape),
        }
    }

    /// `/ready` answers from `readiness`, checked on every request: 200, or 503 with the
    /// reasons.
    #[must_use]
    pub fn with_readiness(mut self, readiness: impl ReadyCheck + 'static) -> Self {
        self.ready = Ready::Checks(Box::new(readiness));
        self
    }

    /// Marks the process ready or not (unless it answers from a [`ReadyCheck`]).
    pub fn set_ready(&self, ready: bool) {
        if let Ready::Flag(flag) = &self.ready {
            flag.store(ready, Ordering::SeqCst);
        }
    }

    /// `Ok` when ready, else the reasons.
    pub fn check_ready(&self) -> Result<(), Vec<String>> {
        match &self.ready {
            Ready::Flag(flag) if flag.load(Ordering::SeqCst) => Ok(()),
            Ready::Flag(_) => Err(Vec::new()),
            Ready::Checks(readiness) => readiness.check(),
        }
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let text = |status: StatusCode, body: String| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".to_owned(),
            );
        }
        match req.uri().path() {
            PING_PATH => text(StatusCode::OK, "pong\n".to_owned()),
            LIVE_PATH => text(StatusCode::OK, "live\n".to_owned()),
            READY_PATH => match self.check_ready() {
                Ok(()) => text(StatusCode::OK, "ready\n".to_owned()),
                Err(reasons) if reasons.is_empty() => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned())
                }
                Err(reasons) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", reasons.join("; ")),
                ),
            },
            METRICS_PATH => {
                (self.before_scrape)();
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &self.registry) {
                    Ok(()) => {
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            ),
                        );
                        response
                    }
                    Err(_) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "metrics encoding failed\n".to_owned(),
                    ),
                }
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
        }
    }
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|e| Error::Bind {
        addr,
        reason: e.to_string(),
    })
}

/// Serves admin requests on `listener` within `limits` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    limits: &AdminLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut incoming = meshid_grpc::Incoming::new(listener, limits.accept_backoff, "admin");
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut turned_away = 0u64;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            stream = incoming.accept() => stream,
            () = &mut shutdown => return,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            // Closed at once: waiting in the backlog would only hold the client longer.
            drop(stream);
            turned_away += 1;
            if turned_away.is_power_of_two() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    turned_away,
                    "admin connections at their limit: new ones are closed"
                );
            }
            continue;
        };
        let state = Arc::clone(&state);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = state.respond(&req);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "admin connection ended");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_out_of_range_carries_its_value_and_range() {
        assert!(AdminLimits::default().validate().is_ok());

        let limits = AdminLimits {
            header_read_timeout: Duration::from_secs(60),
            ..AdminLimits::default()
        };
        let error = limits.validate().unwrap_err();
        let Error::Limit { name, reason } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*name, "header_read_timeout");
        assert_eq!(
            *reason,
            LimitProblem::DurationOutOfRange {
                value: Duration::from_secs(60),
                min: Duration::from_millis(100),
                max: Duration::from_secs(10),
            }
        );
        assert_eq!(
            error.to_string(),
            "invalid admin server limit header_read_timeout: 60s is not between 100ms and 10s"
        );

        let limits = AdminLimits {
            max_connections: 0,
            ..AdminLimits::default()
        };
        let error = limits.validate().unwrap_err();
        let Error::Limit { name, reason } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*name, "max_connections");
        assert_eq!(
            *reason,
            LimitProblem::CountOutOfRange {
                value: 0,
                min: 1,
                max: 100_000,
            }
        );
        assert_eq!(
            error.to_string(),
            "invalid admin server limit max_connections: 0 is not between 1 and 100000"
        );

        let limits = AdminLimits {
            accept_backoff: AcceptBackoff::new(Duration::ZERO, Duration::from_secs(1)),
            ..AdminLimits::default()
        };
        let error = limits.validate().unwrap_err();
        let Error::AcceptBackoff(meshid_grpc::Error::InvalidLimit { name, reason }) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*name, "accept_backoff.min");
        assert!(matches!(reason, LimitProblem::DurationOutOfRange { .. }));
        assert_eq!(
            error.to_string(),
            "invalid admin server limit accept_backoff: invalid gRPC server limit \
             accept_backoff.min: 0ns is not between 1ms and 60s"
        );
    }
}
