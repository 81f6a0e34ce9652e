//! Per-request deadline and server-wide admission, in front of the Certify service.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::Metrics;

/// Admits a request only while fewer than `max_in_flight` are being answered (over all
/// connections), and answers `DEADLINE_EXCEEDED` for one that is not answered within
/// `deadline` of its headers. Both refusals are gRPC answers, counted in the metrics.
#[derive(Clone, Debug)]
pub(crate) struct GuardLayer {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    deadline: Duration,
    metrics: Option<Metrics>,
}

impl GuardLayer {
    pub(crate) fn new(max_in_flight: usize, deadline: Duration, metrics: Option<Metrics>) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            deadline,
            metrics,
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`GuardLayer`] makes.
#[derive(Clone, Debug)]
pub(crate) struct Guard<S> {
    inner: S,
    layer: GuardLayer,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S, Req> Service<Req> for Guard<S>
where
    S: Service<Req, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let started = tokio::time::Instant::now();
        let GuardLayer {
            in_flight,
            max_in_flight,
            deadline,
            metrics,
        } = &self.layer;
        let Ok(permit) = Arc::clone(in_flight).try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "the identity service is answering its limit of {max_in_flight} requests; retry later"
            ));
            observe(metrics.as_ref(), Code::ResourceExhausted, started);
            return Box::pin(core::future::ready(Ok(status.into_http())));
        };
        let answer = self.inner.call(request);
        let deadline = *deadline;
        let metrics = metrics.clone();
        Box::pin(async move {
            let answered = tokio::time::timeout(deadline, answer).await;
            drop(permit);
            answered.unwrap_or_else(|_| {
                observe(metrics.as_ref(), Code::DeadlineExceeded, started);
                Ok(Status::deadline_exceeded(format!(
                    "the request was not answered within the identity service's deadline of {deadline:?}"
                ))
                .into_http())
            })
        })
    }
}

fn observe(metrics: Option<&Metrics>, code: Code, started: tokio::time::Instant) {
    if let Some(metrics) = metrics {
        metrics.observe(code, started.elapsed());
    }
}
