//! The admin HTTP server: `/ping`, `/live`, `/ready`, `/metrics`.

use core::convert::Infallible;
use core::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::Error;
use crate::ready::Readiness;

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
    /// The identity service's checks, with the reasons.
    Service(Readiness),
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

    /// `/ready` answers from the identity service's `readiness`, checked on every request:
    /// 200, or 503 with the reasons.
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.ready = Ready::Service(readiness);
        self
    }

    /// Marks the service ready or not (unless it answers from a [`Readiness`]).
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
            Ready::Service(readiness) => readiness
                .check()
                .map_err(|reasons| reasons.iter().map(ToString::to_string).collect()),
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
            "/ping" => text(StatusCode::OK, "pong\n".to_owned()),
            "/live" => text(StatusCode::OK, "live\n".to_owned()),
            "/ready" => match self.check_ready() {
                Ok(()) => text(StatusCode::OK, "ready\n".to_owned()),
                Err(reasons) if reasons.is_empty() => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned())
                }
                Err(reasons) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", reasons.join("; ")),
                ),
            },
            "/metrics" => {
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
        what: "admin",
        addr,
        reason: e.to_string(),
    })
}

/// Serves admin requests on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = state.respond(&req);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin connection ended");
            }
        });
    }
}
