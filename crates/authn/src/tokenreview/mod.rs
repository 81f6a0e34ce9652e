//! Authentication through the Kubernetes TokenReview API.

mod cache;
mod config;
mod limiter;
mod precheck;

use core::fmt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use meshid_kube::KubeClient;
use meshid_policy::ServiceAccount;
use tokio::sync::OnceCell;

use self::cache::Cache;
pub use self::config::{
    DEFAULT_BURST, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_CAPACITY,
    DEFAULT_NEGATIVE_CACHE_TTL, DEFAULT_QPS, TokenReviewConfig,
};
use self::limiter::RateLimiter;
use self::precheck::Precheck;
use crate::token::{digest, token_str, unverified_exp};
use crate::{
    Authenticated, Authenticator, Clock, Error, ErrorKind, InvalidToken, Metrics, SystemClock,
};

/// `user.extra` keys the API server fills for pod-bound tokens.
const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";

/// Authenticates tokens by asking the Kubernetes API server (`TokenReview`,
/// `authentication.k8s.io/v1`, created through kube-rs).
///
/// Like Linkerd: the review asks for the configured audiences; `status.error` refuses the
/// token with that reason, `authenticated: false` is [`Error::NotAuthenticated`], and the
/// username must be `system:serviceaccount:<ns>:<sa>`. Beyond Linkerd:
///
/// - the audience is enforced: a review answered "token audiences ... is invalid" is a
///   refusal, and is retried without audiences only with
///   [`TokenReviewConfig::audience_fallback`];
/// - `status.audiences` must contain a requested audience when audiences were requested;
/// - positive results are cached under the token's SHA-256 for `min(cache_ttl, exp - now)`
///   (`exp` read from the token if it is a JWT), so a restarting proxy does not cost a review;
/// - refusals are remembered for `negative_cache_ttl` (10 s), so a token presented again and
///   again costs one review;
/// - tokens are refused without a review, never accepted, when they give themselves away: not
///   a JWT, a JWT whose `exp` is past (beyond the clock-skew allowance), or whose `aud` lacks
///   the requested audiences (unless the fallback is on);
/// - every call to the API server takes a permit from a token bucket (`qps`, `burst`), and a
///   request that would wait past its timeout fails at once with [`Error::RateLimited`]; a
///   caller that leaves while waiting gives its permit back;
/// - no lock is held across the network call.
///
/// So a flood of garbage tokens does not spend the permits legitimate ones need.
///
/// The identity service's ServiceAccount needs the `system:auth-delegator` ClusterRole.
pub struct TokenReviewAuthenticator<C = SystemClock> {
    client: KubeClient,
    config: TokenReviewConfig,
    limiter: RateLimiter,
    cache: Cache<Authenticated>,
    refused: Cache<Error>,
    /// Reviews in flight, by token digest: a caller with the same token waits for that
    /// review's answer instead of asking the API server again.
    in_flight: InFlightMap,
    metrics: Metrics,
    clock: Arc<C>,
}

impl TokenReviewAuthenticator<SystemClock> {
    /// An authenticator reading the system clock (for cache expiry and the local checks).
    pub async fn new(config: TokenReviewConfig) -> Result<Self, Error> {
        Self::with_clock(config, SystemClock).await
    }
}

impl<C: Clock> TokenReviewAuthenticator<C> {
    /// An authenticator reading `clock` for cache expiry, the local expiry check and the
    /// expiry of a kubeconfig exec plugin's client certificate. Builds the Kubernetes API
    /// client now (reading its files, running its exec plugin).
    pub async fn with_clock(config: TokenReviewConfig, clock: C) -> Result<Self, Error> {
        config.validate()?;
        let clock = Arc::new(clock);
        let client = KubeClient::connect(config.api.clone())
            .await?
            .with_clock(Arc::clone(&clock));
        Ok(Self {
            client,
            limiter: RateLimiter::new(config.qps, config.burst),
            cache: Cache::new(config.cache_capacity),
            refused: Cache::new(config.negative_cache_capacity),
            in_flight: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            config,
            clock,
        })
    }

    /// Counts reviews, local refusals and negative-cache hits in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TokenReviewConfig {
        &self.config
    }

    /// How many distinct tokens are being reviewed right now (callers with the same token
    /// share one review).
    pub fn reviews_in_flight(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// How many positive results are cached (expired ones included until looked up or
    /// evicted).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// How many refusals are remembered (expired ones included until looked up or evicted).
    pub fn refusals_cached(&self) -> usize {
        self.refused.len()
    }

    async fn review_and_check(&self, token: &str) -> Result<Authenticated, Error> {
        let mut audiences = self.config.audiences.as_slice();
        let mut status = self.review(token, audiences).await?;
        let error = status.error.as_deref().unwrap_or_default();
        if !audiences.is_empty()
            && self.config.audience_fallback
            && error.contains("token audiences")
        {
            tracing::debug!(
                "the API server cannot review token audiences; retrying without audiences \
                 (--token-review-audience-fallback)"
            );
            audiences = &[];
            status = self.review(token, audiences).await?;
        }
        if let Some(error) = status.error.as_deref().filter(|e| !e.is_empty()) {
            return Err(InvalidToken::Rejected {
                reason: redact(error, token),
            }
            .into());
        }
        if status.authenticated != Some(true) {
            return Err(Error::NotAuthenticated);
        }
        let found = status.audiences.unwrap_or_default();
        if !audiences.is_empty() && !found.iter().any(|a| audiences.contains(a)) {
            return Err(InvalidToken::Audience {
                expected: audiences.join(","),
                found,
            }
            .into());
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let service_account = ServiceAccount::from_username(&username).map_err(|error| {
            InvalidToken::NotServiceAccount {
                error,
                username: username.clone(),
            }
        })?;
        let mut extra = user.extra.unwrap_or_default();
        let mut first = |key: &str| {
            extra
                .remove(key)
                .and_then(|v| v.into_iter().next())
                .filter(|v| !v.is_empty())
        };
        let mut authenticated = Authenticated::new(service_account);
        authenticated.pod_name = first(EXTRA_POD_NAME);
        authenticated.pod_uid = first(EXTRA_POD_UID);
        // A ServiceAccount's user info carries the ServiceAccount's uid.
        authenticated.service_account_uid = user.uid.filter(|u| !u.is_empty());
        Ok(authenticated)
    }

    /// One TokenReview call, rate limited and bounded by the timeout.
    async fn review(&self, token: &str, audiences: &[String]) -> Result<TokenReviewStatus, Error> {
        let timeout = self.config.api.timeout;
        self.limiter
            .acquire(timeout)
            .await
            .map_err(|wait| Error::RateLimited { wait, timeout })?;
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
            },
            ..TokenReview::default()
        };
        self.metrics.review_sent();
        let answer = self
            .client
            .create(None, &review)
            .await
            .map_err(|e| match e {
                meshid_kube::Error::Api { status, message } => Error::ApiServer {
                    status,
                    message: redact(&message, token),
                },
                e => Error::from(e),
            })?;
        Ok(answer.status.unwrap_or_default())
    }

    /// A remembered refusal, or one the token gives away.
    fn refuse_early(&self, token: &str, key: &[u8; 32]) -> Result<(), Error> {
        let now = self.clock.now();
        if let Some(refused) = self.refused.get(key, now) {
            self.metrics.negative_cache_hit();
            return Err(refused);
        }
        let precheck = Precheck {
            audiences: (!self.config.audience_fallback).then_some(self.config.audiences.as_slice()),
            skew: self.config.clock_skew,
        };
        precheck.check(token, now).map_err(|(refusal, why)| {
            self.metrics.refused_locally(why.as_str());
            tracing::trace!(reason = why.as_str(), "token refused without a TokenReview");
            Error::from(refusal)
        })
    }
}

impl<C: Clock> Authenticator for TokenReviewAuthenticator<C> {
    async fn authenticate(&self, token: &[u8]) -> Result<Authenticated, Error> {
        let token = token_str(token)?;
        let key = digest(token);
        if let Some(hit) = self.cache.get(&key, self.clock.now()) {
            tracing::trace!(service_account = %hit.service_account, "TokenReview cache hit");
            return Ok(hit);
        }
        self.refuse_early(token, &key)?;
        // One review per token at a time: a proxy that retries while its first request is
        // still being reviewed (or many callers with one token) costs the API server one call.
        let waiter = InFlight::join(&self.in_flight, key);
        let cell = waiter.cell();
        cell.get_or_init(|| self.review_and_cache(token, key))
            .await
            .clone()
    }
}

/// The reviews in flight, by token digest.
type InFlightMap = Mutex<HashMap<[u8; 32], Arc<OnceCell<Result<Authenticated, Error>>>>>;

/// One caller's share of a review in flight. The review's entry is removed when its last
/// caller leaves, answered or cancelled, so cancelled requests leave nothing behind.
struct InFlight<'a> {
    map: &'a InFlightMap,
    key: [u8; 32],
    cell: Option<Arc<OnceCell<Result<Authenticated, Error>>>>,
}

impl<'a> InFlight<'a> {
    fn join(map: &'a InFlightMap, key: [u8; 32]) -> Self {
        let mut entries = map.lock().unwrap_or_else(|e| e.into_inner());
        let cell = Arc::clone(entries.entry(key).or_default());
        Self {
            map,
            key,
            cell: Some(cell),
        }
    }

    /// The shared review (set in `join`, taken only in `drop`; a fresh one otherwise). The
    /// handle is dropped before this caller's share is, so it never keeps the entry alive.
    fn cell(&self) -> Arc<OnceCell<Result<Authenticated, Error>>> {
        self.cell.clone().unwrap_or_default()
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else {
            return;
        };
        // Under the lock, this caller's handle is dropped too, so the last one to leave
        // always sees just the map's handle and its own.
        let mut entries = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .get(&self.key)
            .is_some_and(|entry| Arc::ptr_eq(entry, &cell))
            && Arc::strong_count(&cell) == 2
        {
            entries.remove(&self.key);
        }
        drop(cell);
        drop(entries);
    }
}

impl<C: Clock> TokenReviewAuthenticator<C> {
    /// Reviews `token` and caches a positive answer.
    async fn review_and_cache(&self, token: &str, key: [u8; 32]) -> Result<Authenticated, Error> {
        let result = self.review_and_check(token).await;
        match &result {
            Ok(authenticated) => {
                let now = self.clock.now();
                let mut expires_at = now + self.config.cache_ttl;
                if let Some(exp) = unverified_exp(token) {
                    expires_at = expires_at.min(exp);
                }
                self.cache
                    .insert(key, authenticated.clone(), expires_at, now);
                tracing::debug!(
                    service_account = %authenticated.service_account,
                    "token authenticated by TokenReview"
                );
            }
            // A refusal of the token (not a failure to ask) is remembered a little while.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotAuthenticated | ErrorKind::InvalidToken
                ) =>
            {
                tracing::debug!(error = %e, "TokenReview refused the token");
                let now = self.clock.now();
                self.refused
                    .insert(key, e.clone(), now + self.config.negative_cache_ttl, now);
            }
            Err(e) => tracing::debug!(error = %e, "TokenReview failed"),
        }
        result
    }
}

impl<C> fmt::Debug for TokenReviewAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenReviewAuthenticator")
            .field("config", &self.config)
            .field("cached", &self.cache.len())
            .field("refusals_cached", &self.refused.len())
            .finish_non_exhaustive()
    }
}

/// Never let a token echoed by the server reach an error message.
fn redact(text: &str, token: &str) -> String {
    text.replace(token, "<redacted>")
}
