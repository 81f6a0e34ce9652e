//! Prometheus metrics of token authentication.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// `reason="..."` or `result="..."`: a fixed-size label set, so counting allocates nothing.
type Labels = [(&'static str, &'static str); 1];

/// Token authentication's metrics, registered into a registry the caller owns.
///
/// - `identity_tokenreview_requests_total`: TokenReviews sent to the API server;
/// - `identity_tokenreview_local_refusals_total{reason="not_jwt|expired|audience"}`: tokens
///   refused without a TokenReview, by what gave them away;
/// - `identity_tokenreview_negative_cache_hits_total`: tokens refused again from the
///   negative cache;
/// - `identity_jwks_reloads_total{result="updated|invalid|unreadable"}`: JWKS file changes
///   applied, or refused (the previous key set is kept);
/// - `identity_token_validations_total{method="offline|tokenreview"}`: tokens an
///   [`OidcAuthenticator`](crate::OidcAuthenticator) judged offline, or handed to TokenReview;
/// - `identity_oidc_key_refreshes_total{result="updated|unchanged|failed"}`: fetches of the
///   cluster's service-account token keys.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    reviews: Counter,
    local_refusals: Family<Labels, Counter>,
    negative_cache_hits: Counter,
    jwks_reloads: Family<Labels, Counter>,
    validations: Family<Labels, Counter>,
    oidc_refreshes: Family<Labels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_tokenreview_requests",
            "TokenReviews sent to the Kubernetes API server",
            metrics.reviews.clone(),
        );
        registry.register(
            "identity_tokenreview_local_refusals",
            "Tokens refused without a TokenReview, by reason",
            metrics.local_refusals.clone(),
        );
        registry.register(
            "identity_tokenreview_negative_cache_hits",
            "Tokens refused again from the negative cache, without a TokenReview",
            metrics.negative_cache_hits.clone(),
        );
        registry.register(
            "identity_jwks_reloads",
            "JWKS file changes, by result (invalid and unreadable files keep the previous keys)",
            metrics.jwks_reloads.clone(),
        );
        registry.register(
            "identity_token_validations",
            "Tokens judged offline with the cluster's keys, or handed to TokenReview",
            metrics.validations.clone(),
        );
        registry.register(
            "identity_oidc_key_refreshes",
            "Fetches of the cluster's service-account token keys, by result",
            metrics.oidc_refreshes.clone(),
        );
        metrics
    }

    pub(crate) fn review_sent(&self) {
        self.reviews.inc();
    }

    pub(crate) fn refused_locally(&self, reason: &'static str) {
        self.local_refusals
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    pub(crate) fn negative_cache_hit(&self) {
        self.negative_cache_hits.inc();
    }

    pub(crate) fn jwks_reload(&self, result: &'static str) {
        self.jwks_reloads.get_or_create(&[("result", result)]).inc();
    }

    pub(crate) fn token_judged(&self, method: &'static str) {
        self.validations.get_or_create(&[("method", method)]).inc();
    }

    pub(crate) fn oidc_refresh(&self, result: &'static str) {
        self.oidc_refreshes
            .get_or_create(&[("result", result)])
            .inc();
    }

    /// Tokens judged with `method` (`offline` or `tokenreview`) so far.
    pub fn tokens_judged(&self, method: &'static str) -> u64 {
        self.validations.get_or_create(&[("method", method)]).get()
    }

    /// Key-set fetches with `result` (`updated`, `unchanged` or `failed`) so far.
    pub fn oidc_refreshes(&self, result: &'static str) -> u64 {
        self.oidc_refreshes
            .get_or_create(&[("result", result)])
            .get()
    }

    /// TokenReviews sent so far.
    pub fn reviews_sent(&self) -> u64 {
        self.reviews.get()
    }

    /// Tokens refused locally so far, all reasons together.
    pub fn local_refusals(&self) -> u64 {
        ["not_jwt", "expired", "audience"]
            .iter()
            .map(|&reason| {
                self.local_refusals
                    .get_or_create(&[("reason", reason)])
                    .get()
            })
            .sum()
    }

    /// Tokens refused from the negative cache so far.
    pub fn negative_cache_hits(&self) -> u64 {
        self.negative_cache_hits.get()
    }

    /// JWKS reloads with `result` (`updated`, `invalid` or `unreadable`) so far.
    pub fn jwks_reloads(&self, result: &'static str) -> u64 {
        self.jwks_reloads.get_or_create(&[("result", result)]).get()
    }
}
