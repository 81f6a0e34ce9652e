//! Prometheus metrics of the identity service.

use core::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::Code;

/// `code="<gRPC code name>"`: a fixed-size label set, so counting allocates nothing.
type Labels = [(&'static str, &'static str); 1];

/// The Certify server's metrics, registered into a registry the caller owns.
///
/// - `identity_certify_requests_total{code="OK|InvalidArgument|FailedPrecondition|..."}`: every
///   Certify call, by the gRPC status code answered;
/// - `identity_certify_duration_seconds`: a histogram of the time from receiving a request to
///   answering it (token review included), 1 ms to about 16 s.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<Labels, Counter>,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_certify_requests",
            "Certify requests answered, by gRPC status code",
            metrics.requests.clone(),
        );
        registry.register(
            "identity_certify_duration_seconds",
            "Time to answer a Certify request, token review included",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Counts one answer with `code`, which took `elapsed`.
    pub(crate) fn observe(&self, code: Code, elapsed: Duration) {
        self.requests
            .get_or_create(&[("code", crate::code::name(code))])
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }
}
