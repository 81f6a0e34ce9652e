//! Prometheus metrics of the identity client.

use core::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

type Labels = Vec<(&'static str, &'static str)>;

/// The client's metrics, registered into a registry the caller owns.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    expiration: Gauge<f64, AtomicU64>,
    refresh: Gauge<f64, AtomicU64>,
    refreshes: Family<Labels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them:
    /// `identity_cert_expiration_timestamp_seconds`, `identity_cert_refresh_timestamp_seconds`
    /// and `identity_cert_refreshes_total{result="ok|error"}`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_cert_expiration_timestamp_seconds",
            "Time when the current certificate expires (seconds since the UNIX epoch)",
            metrics.expiration.clone(),
        );
        registry.register(
            "identity_cert_refresh_timestamp_seconds",
            "Time of the last successful certificate refresh (seconds since the UNIX epoch)",
            metrics.refresh.clone(),
        );
        registry.register(
            "identity_cert_refreshes",
            "Certificate refresh attempts, by result",
            metrics.refreshes.clone(),
        );
        metrics
    }

    pub(crate) fn refreshed(&self, now: OffsetDateTime, not_after: OffsetDateTime) {
        self.refresh.set(timestamp(now));
        self.expiration.set(timestamp(not_after));
        self.refreshes.get_or_create(&vec![("result", "ok")]).inc();
    }

    pub(crate) fn failed(&self) {
        self.refreshes
            .get_or_create(&vec![("result", "error")])
            .inc();
    }
}

fn timestamp(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() as f64) / 1e9
}
