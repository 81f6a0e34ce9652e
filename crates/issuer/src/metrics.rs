//! Prometheus metrics of the issuer reloader.

use core::sync::atomic::AtomicU64;

use meshid_verify::TrustBundle;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

type Labels = Vec<(&'static str, &'static str)>;
type AnchorLabels = Vec<(&'static str, String)>;

/// What a reload attempt of one source (the issuer or the trust anchors) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadResult {
    /// New content validated and swapped in.
    Updated,
    /// The files could not be read.
    ReadError,
    /// The content was read but refused (invalid issuer, unparsable bundle, orphaning bundle).
    Invalid,
}

impl ReloadResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::ReadError => "read_error",
            Self::Invalid => "invalid",
        }
    }
}

/// The reloader's metrics, registered into a registry the caller owns.
///
/// | metric | labels |
/// |---|---|
/// | `identity_issuer_expiration_timestamp_seconds` | |
/// | `identity_issuer_reloads_total` | `source="issuer\|trust_anchors"`, `result="updated\|read_error\|invalid"` |
/// | `identity_issuer_last_reload_timestamp_seconds` | `source` (last successful update) |
/// | `identity_trust_anchor_expiration_timestamp_seconds` | `fingerprint` (SHA-256), `subject` |
///
/// Alert on `identity_issuer_expiration_timestamp_seconds - time() < 6 * 3600` and on any
/// increase of `identity_issuer_reloads_total{result!="updated"}`.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    issuer_not_after: Gauge<f64, AtomicU64>,
    reloads: Family<Labels, Counter>,
    last_reload: Family<Labels, Gauge<f64, AtomicU64>>,
    anchor_not_after: Family<AnchorLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_issuer_expiration_timestamp_seconds",
            "NotAfter of the issuer certificate in use (seconds since the UNIX epoch)",
            metrics.issuer_not_after.clone(),
        );
        registry.register(
            "identity_issuer_reloads",
            "Reload attempts of new issuer or trust-anchor content, by source and result",
            metrics.reloads.clone(),
        );
        registry.register(
            "identity_issuer_last_reload_timestamp_seconds",
            "Time of the last successful reload, by source (seconds since the UNIX epoch)",
            metrics.last_reload.clone(),
        );
        registry.register(
            "identity_trust_anchor_expiration_timestamp_seconds",
            "NotAfter of each trust anchor in force (seconds since the UNIX epoch)",
            metrics.anchor_not_after.clone(),
        );
        metrics
    }

    /// Records an attempt to load new content from `source` (`issuer` or `trust_anchors`).
    pub fn record(&self, source: &'static str, result: ReloadResult, now: OffsetDateTime) {
        self.reloads
            .get_or_create(&vec![("source", source), ("result", result.as_str())])
            .inc();
        if result == ReloadResult::Updated {
            self.last_reload
                .get_or_create(&vec![("source", source)])
                .set(timestamp(now));
        }
    }

    /// Records the NotAfter of the issuer in use.
    pub fn set_issuer_not_after(&self, not_after: OffsetDateTime) {
        self.issuer_not_after.set(timestamp(not_after));
    }

    /// Records the anchors in force, replacing the previous set.
    pub fn set_trust_anchors(&self, bundle: &TrustBundle) {
        self.anchor_not_after.clear();
        for anchor in bundle.anchors() {
            self.anchor_not_after
                .get_or_create(&vec![
                    ("fingerprint", anchor.sha256_fingerprint()),
                    ("subject", anchor.subject().to_owned()),
                ])
                .set(timestamp(anchor.not_after()));
        }
    }
}

fn timestamp(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() as f64) / 1e9
}
