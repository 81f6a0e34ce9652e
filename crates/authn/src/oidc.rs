//! Offline validation with the cluster's own keys: the API server's service-account issuer
//! discovery (`/.well-known/openid-configuration`) names the issuer, its `/openid/v1/jwks`
//! publishes the keys that sign projected tokens.

use core::fmt;
use core::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use meshid_kube::{KubeApiConfig, KubeClient};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::jwt::validate;
use crate::token::{digest_bytes, token_str};
use crate::{
    Authenticated, Authenticator, Clock, DEFAULT_AUDIENCE, DEFAULT_CLOCK_SKEW, DiscoveryProblem,
    Error, InvalidToken, Jwks, JwtConfig, Metrics, SystemClock, TokenReviewAuthenticator,
};

/// The API server path of its OIDC discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The API server path of the keys that sign ServiceAccount tokens. The discovery document's
/// `jwks_uri` may name an external URL (`--service-account-jwks-uri`); the API server serves
/// the same keys here, which is what its RBAC role `system:service-account-issuer-discovery`
/// grants.
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// How often the key set is fetched again by default: Kubernetes adds a new key before it
/// signs with it, so a few minutes keeps up with rotation.
pub const DEFAULT_KEYS_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The shortest time between two fetches prompted by tokens (an unknown `kid`, keys missing).
pub const DEFAULT_KEYS_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Where the keys come from and what a token must say.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OidcConfig {
    /// The API server: where it is, its CA, this client's credentials, the request timeout.
    pub api: KubeApiConfig,
    /// The audience `aud` must contain. Default [`DEFAULT_AUDIENCE`].
    pub audience: String,
    /// Tolerance applied to `exp`, `nbf` and `iat`. Default [`DEFAULT_CLOCK_SKEW`].
    pub clock_skew: Duration,
    /// How often the key set is fetched again. Default [`DEFAULT_KEYS_REFRESH_INTERVAL`].
    pub refresh_interval: Duration,
    /// The shortest time between fetches prompted by tokens (an unknown `kid`) or retried
    /// after a failure. Default [`DEFAULT_KEYS_MIN_REFRESH_INTERVAL`].
    pub min_refresh_interval: Duration,
}

impl OidcConfig {
    /// The defaults, for the API server `api`.
    pub fn new(api: KubeApiConfig) -> Self {
        Self {
            api,
            audience: DEFAULT_AUDIENCE.to_owned(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            refresh_interval: DEFAULT_KEYS_REFRESH_INTERVAL,
            min_refresh_interval: DEFAULT_KEYS_MIN_REFRESH_INTERVAL,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.audience.is_empty() {
            return Err(Error::config(
                "OIDC token validation",
                "the audience must not be empty",
            ));
        }
        if self.min_refresh_interval.is_zero() || self.refresh_interval < self.min_refresh_interval
        {
            return Err(Error::config(
                "OIDC token validation",
                "the minimum refresh interval must be positive and at most the refresh interval",
            ));
        }
        Ok(())
    }
}

/// What one [`OidcAuthenticator::refresh_now`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeysRefresh {
    /// Discovery and key set are as they were.
    Unchanged,
    /// A new issuer or key set is in use.
    Updated,
    /// The fetch failed; the previous keys (if any) stay in use.
    Failed(Error),
}

/// The issuer and keys in use.
struct Keys {
    config: JwtConfig,
    jwks: Jwks,
    /// SHA-256 of the issuer and the JWKS document, to tell a change.
    digest: [u8; 32],
}

/// When the keys were last fetched, and how that went.
#[derive(Default)]
struct RefreshState {
    last_attempt: Option<OffsetDateTime>,
    last_error: Option<Error>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
}

/// Validates projected ServiceAccount tokens offline with the keys the cluster publishes, and
/// hands what it cannot judge to a TokenReview.
///
/// The issuer and keys come from the API server's service-account issuer discovery
/// ([`DISCOVERY_PATH`], [`JWKS_PATH`]), through the same API access as TokenReview. Tokens
/// are checked as [`JwksAuthenticator`](crate::JwksAuthenticator) checks them (ES256 and
/// RS256, `iss` from discovery, the audience, `exp`/`nbf`/`iat` with the clock-skew
/// allowance, the `kubernetes.io` claims: namespace, ServiceAccount name and uid, pod name and
/// uid).
///
/// - **Refresh.** [`run`](Self::run) fetches the keys every
///   [`refresh_interval`](OidcConfig::refresh_interval), and every
///   [`min_refresh_interval`](OidcConfig::min_refresh_interval) while fetching fails. A token
///   naming a `kid` the set lacks prompts a fetch, at most once per `min_refresh_interval`. A
///   fetch that fails keeps the previous keys.
/// - **What it cannot judge** (a `kid` still unknown after a refresh, a token that is not a
///   JWS, no keys yet because discovery has not answered) goes to the TokenReview fallback
///   when there is one; without it such a token is refused: [`InvalidToken::UnknownKey`],
///   [`InvalidToken::Malformed`], or [`Error::KeysUnavailable`] naming the fetch's error.
///   Every other refusal (signature, audience, expiry, issuer, claims, `alg`) is final.
/// - **Metrics:** `identity_token_validations_total{method="offline|tokenreview"}`,
///   `identity_oidc_key_refreshes_total{result="updated|unchanged|failed"}`.
///
/// The trade-off: offline, a token stays valid until it expires, even after its pod is
/// deleted (a TokenReview of a pod-bound token fails as soon as the pod is gone). The window
/// is bounded by the projected token's lifetime (`expirationSeconds`, one hour to a day).
pub struct OidcAuthenticator<C = SystemClock> {
    client: KubeClient,
    config: OidcConfig,
    keys: ArcSwapOption<Keys>,
    refresh: tokio::sync::Mutex<RefreshState>,
    fallback: Option<TokenReviewAuthenticator<C>>,
    metrics: Metrics,
    clock: Arc<C>,
}

impl OidcAuthenticator<SystemClock> {
    /// An authenticator reading the system clock; see [`with_clock`](Self::with_clock).
    pub async fn new(
        config: OidcConfig,
        fallback: Option<TokenReviewAuthenticator<SystemClock>>,
    ) -> Result<Self, Error> {
        Self::with_clock(config, fallback, SystemClock).await
    }
}

impl<C: Clock> OidcAuthenticator<C> {
    /// An authenticator reading `clock`, with `fallback` for the tokens it cannot judge.
    ///
    /// Nothing is fetched yet: call [`refresh_now`](Self::refresh_now) once it is set up (a
    /// server does so before it serves, to log a failing discovery early), or the first token
    /// fetches the keys. A fetch that fails is not fatal (the API server may be starting):
    /// tokens go to the fallback (or are refused with [`Error::KeysUnavailable`]) until a later
    /// fetch succeeds. Only an unusable configuration is an error here.
    pub async fn with_clock(
        config: OidcConfig,
        fallback: Option<TokenReviewAuthenticator<C>>,
        clock: C,
    ) -> Result<Self, Error> {
        config.validate()?;
        let clock = Arc::new(clock);
        let client = KubeClient::connect(config.api.clone())
            .await?
            .with_clock(Arc::clone(&clock));
        Ok(Self {
            client,
            config,
            keys: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            fallback,
            metrics: Metrics::default(),
            clock,
        })
    }

    /// Counts into `metrics` (give the fallback the same with
    /// [`TokenReviewAuthenticator::with_metrics`]).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The issuer discovery named, once the keys have been fetched.
    pub fn issuer(&self) -> Option<String> {
        self.keys
            .load()
            .as_ref()
            .and_then(|k| k.config.issuers.first().cloned())
    }

    /// The key ids in use (`None` for a key without `kid`); empty before the first fetch.
    pub fn kids(&self) -> Vec<Option<String>> {
        self.keys
            .load()
            .as_ref()
            .map(|k| k.jwks.kids().map(|k| k.map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The error of the last fetch, if it failed.
    pub async fn last_refresh_error(&self) -> Option<Error> {
        self.refresh.lock().await.last_error.clone()
    }

    /// Fetches discovery and the key set now, whenever the last fetch was.
    pub async fn refresh_now(&self) -> KeysRefresh {
        let mut state = self.refresh.lock().await;
        self.refresh_locked(&mut state).await
    }

    /// Fetches again every [`refresh_interval`](OidcConfig::refresh_interval) (every
    /// [`min_refresh_interval`](OidcConfig::min_refresh_interval) after a failure), until
    /// `shutdown` completes.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut wait = self.next_wait().await;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
            self.refresh_now().await;
            wait = self.next_wait().await;
        }
    }

    async fn next_wait(&self) -> Duration {
        if self.refresh.lock().await.last_error.is_some() {
            self.config.min_refresh_interval
        } else {
            self.config.refresh_interval
        }
    }

    /// Fetches, unless a fetch started less than `min_refresh_interval` ago.
    async fn refresh_if_due(&self) {
        let mut state = self.refresh.lock().await;
        let now = self.clock.now();
        let recent = state
            .last_attempt
            .is_some_and(|t| now < t + self.config.min_refresh_interval);
        if !recent {
            self.refresh_locked(&mut state).await;
        }
    }

    async fn refresh_locked(&self, state: &mut RefreshState) -> KeysRefresh {
        state.last_attempt = Some(self.clock.now());
        let outcome = match self.fetch().await {
            Ok(keys) => {
                state.last_error = None;
                let unchanged = self
                    .keys
                    .load()
                    .as_ref()
                    .is_some_and(|k| k.digest == keys.digest);
                if unchanged {
                    KeysRefresh::Unchanged
                } else {
                    let kids: Vec<&str> = keys.jwks.kids().map(|k| k.unwrap_or("-")).collect();
                    tracing::info!(
                        issuer = %keys.config.issuers.join(","),
                        kids = %kids.join(","),
                        "service-account token keys updated"
                    );
                    self.keys.store(Some(Arc::new(keys)));
                    KeysRefresh::Updated
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot fetch the cluster's service-account token keys; the previous keys \
                     (if any) stay in use"
                );
                state.last_error = Some(e.clone());
                KeysRefresh::Failed(e)
            }
        };
        self.metrics.oidc_refresh(match outcome {
            KeysRefresh::Unchanged => "unchanged",
            KeysRefresh::Updated => "updated",
            KeysRefresh::Failed(_) => "failed",
        });
        outcome
    }

    async fn fetch(&self) -> Result<Keys, Error> {
        let discovery = self.get(DISCOVERY_PATH).await?;
        let discovery: Discovery =
            serde_json::from_slice(&discovery).map_err(|e| Error::Discovery {
                problem: DiscoveryProblem::NoIssuer {
                    path: DISCOVERY_PATH,
                    detail: serde_error(&e),
                },
            })?;
        let jwks_json = self.get(JWKS_PATH).await?;
        let jwks = Jwks::from_json(&jwks_json).map_err(|e| match e {
            Error::Config { reason, .. } => Error::Discovery {
                problem: DiscoveryProblem::KeySet {
                    path: JWKS_PATH,
                    reason,
                },
            },
            e => e,
        })?;
        let mut config = JwtConfig::new(discovery.issuer.clone());
        config.audience.clone_from(&self.config.audience);
        config.clock_skew = self.config.clock_skew;
        config.validate().map_err(|_| Error::Discovery {
            problem: DiscoveryProblem::EmptyIssuer {
                path: DISCOVERY_PATH,
            },
        })?;
        let mut digested = discovery.issuer.into_bytes();
        digested.push(0);
        digested.extend_from_slice(&jwks_json);
        Ok(Keys {
            config,
            jwks,
            digest: digest_bytes(&digested),
        })
    }

    async fn get(&self, path: &'static str) -> Result<Vec<u8>, Error> {
        let request = http::Request::get(path)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| Error::Discovery {
                problem: DiscoveryProblem::Request {
                    path,
                    detail: e.to_string(),
                },
            })?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|error| Error::Discovery {
                problem: DiscoveryProblem::Send { path, error },
            })?;
        if !response.is_success() {
            return Err(Error::Discovery {
                problem: DiscoveryProblem::Status {
                    path,
                    status: response.status,
                    message: response.error_message(),
                },
            });
        }
        Ok(response.body)
    }

    /// Validates offline, or says why it cannot.
    fn offline(&self, token: &[u8]) -> Result<Authenticated, Undecided> {
        let Some(keys) = self.keys.load_full() else {
            return Err(Undecided::NoKeys);
        };
        match validate(&keys.jwks, &keys.config, token, self.clock.now()) {
            Ok(a) => Ok(a),
            Err(e @ InvalidToken::UnknownKey { .. }) => Err(Undecided::UnknownKey(e)),
            // A token that is not a JWS at all may be something the API server understands;
            // a JWS with a bad header is refused here.
            Err(InvalidToken::Malformed { reason }) if reason.is_not_a_jws() => {
                Err(Undecided::NotJwt(InvalidToken::Malformed { reason }))
            }
            Err(e) => Err(Undecided::Refused(e)),
        }
    }

    async fn undecided(&self, token: &[u8], why: Undecided) -> Result<Authenticated, Error> {
        match (&self.fallback, why) {
            (_, Undecided::Refused(e)) => {
                self.metrics.token_judged("offline");
                Err(e.into())
            }
            (Some(review), _) => {
                self.metrics.token_judged("tokenreview");
                review.authenticate(token).await
            }
            (None, Undecided::UnknownKey(e) | Undecided::NotJwt(e)) => {
                self.metrics.token_judged("offline");
                Err(e.into())
            }
            (None, Undecided::NoKeys) => Err(Error::KeysUnavailable {
                last_error: self.refresh.lock().await.last_error.clone().map(Box::new),
            }),
        }
    }
}

/// Why a token was not judged offline.
enum Undecided {
    NoKeys,
    UnknownKey(InvalidToken),
    NotJwt(InvalidToken),
    Refused(InvalidToken),
}

impl<C: Clock> Authenticator for OidcAuthenticator<C> {
    async fn authenticate(&self, token: &[u8]) -> Result<Authenticated, Error> {
        // Size and emptiness first: nothing oversized reaches the fallback either.
        token_str(token)?;
        let first = match self.offline(token) {
            Ok(a) => {
                self.metrics.token_judged("offline");
                return Ok(a);
            }
            Err(why) => why,
        };
        let why = match first {
            Undecided::NoKeys | Undecided::UnknownKey(_) => {
                self.refresh_if_due().await;
                match self.offline(token) {
                    Ok(a) => {
                        self.metrics.token_judged("offline");
                        return Ok(a);
                    }
                    Err(why) => why,
                }
            }
            other => other,
        };
        self.undecided(token, why).await
    }
}

impl<C> fmt::Debug for OidcAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.load();
        f.debug_struct("OidcAuthenticator")
            .field("api_server", &self.config.api.api_server())
            .field("issuer", &keys.as_ref().map(|k| k.config.issuers.clone()))
            .field("jwks", &keys.as_ref().map(|k| &k.jwks))
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

/// A serde_json error's category and position, without the input it may quote.
fn serde_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}
