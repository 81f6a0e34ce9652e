//! Authentication through the Kubernetes TokenReview API.

mod cache;
mod config;
mod kubeconfig;
mod limiter;

use core::fmt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use meshid_policy::ServiceAccount;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use self::cache::Cache;
pub use self::config::{
    ApiCredentials, ApiServerCa, DEFAULT_BURST, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL,
    DEFAULT_QPS, DEFAULT_TIMEOUT, IN_CLUSTER_SERVICE_ACCOUNT_DIR, TokenReviewConfig,
};
use self::limiter::RateLimiter;
use crate::token::{digest, token_str, unverified_exp};
use crate::{Authenticated, Authenticator, Clock, Error, InvalidToken, SystemClock};

/// The TokenReview endpoint, below the API server's base URL.
const TOKEN_REVIEWS_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// The largest API server answer read.
const MAX_RESPONSE_LEN: usize = 1024 * 1024;

/// The longest part of an error body quoted in an error message.
const MAX_QUOTED_LEN: usize = 300;

/// `user.extra` keys the API server fills for pod-bound tokens.
const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";

/// Authenticates tokens by asking the Kubernetes API server (`TokenReview`,
/// `authentication.k8s.io/v1`).
///
/// Like Linkerd: the review asks for the configured audiences; when `status.error` mentions
/// "token audiences" it is retried once without; `status.error` refuses the token with that
/// reason, `authenticated: false` is [`Error::NotAuthenticated`], and the username must be
/// `system:serviceaccount:<ns>:<sa>`. Beyond Linkerd:
///
/// - `status.audiences` must contain a requested audience when audiences were requested;
/// - positive results are cached under the token's SHA-256 for `min(cache_ttl, exp - now)`
///   (`exp` read from the token if it is a JWT), so a restarting proxy does not cost a review;
/// - every call to the API server takes a permit from a token bucket (`qps`, `burst`), and a
///   request that would wait past its timeout fails at once with [`Error::RateLimited`];
/// - no lock is held across the network call.
///
/// The identity service's ServiceAccount needs the `system:auth-delegator` ClusterRole.
pub struct TokenReviewAuthenticator<C = SystemClock> {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    config: TokenReviewConfig,
    limiter: RateLimiter,
    cache: Cache,
    clock: C,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenReviewRequest<'a> {
    api_version: &'static str,
    kind: &'static str,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Spec<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    audiences: &'a [String],
}

#[derive(Deserialize)]
struct TokenReview {
    #[serde(default)]
    status: ReviewStatus,
}

#[derive(Default, Deserialize)]
struct ReviewStatus {
    #[serde(default)]
    authenticated: bool,
    #[serde(default)]
    user: UserInfo,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    error: String,
}

#[derive(Default, Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    extra: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct ApiStatus {
    #[serde(default)]
    message: String,
}

impl TokenReviewAuthenticator<SystemClock> {
    /// An authenticator reading the system clock (for cache expiry).
    pub fn new(config: TokenReviewConfig) -> Result<Self, Error> {
        Self::with_clock(config, SystemClock)
    }
}

impl<C: Clock> TokenReviewAuthenticator<C> {
    /// An authenticator reading `clock` for cache expiry. Reads the CA file now; the token file
    /// is read on every request.
    pub fn with_clock(config: TokenReviewConfig, clock: C) -> Result<Self, Error> {
        config.validate()?;
        let uri = review_uri(&config.api_server)?;
        let tls = tls_config(&config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self {
            client,
            uri,
            limiter: RateLimiter::new(config.qps, config.burst),
            cache: Cache::new(config.cache_capacity),
            config,
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TokenReviewConfig {
        &self.config
    }

    /// How many positive results are cached (expired ones included until looked up or
    /// evicted).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    async fn review_and_check(&self, token: &str) -> Result<Authenticated, Error> {
        let mut audiences = self.config.audiences.as_slice();
        let mut status = self.review(token, audiences).await?;
        if !audiences.is_empty()
            && self.config.retry_without_audiences
            && status.error.contains("token audiences")
        {
            tracing::debug!(
                "the API server cannot review token audiences; retrying without audiences"
            );
            audiences = &[];
            status = self.review(token, audiences).await?;
        }
        if !status.error.is_empty() {
            return Err(InvalidToken::Rejected {
                reason: redact(&status.error, token),
            }
            .into());
        }
        if !status.authenticated {
            return Err(Error::NotAuthenticated);
        }
        if !audiences.is_empty() && !status.audiences.iter().any(|a| audiences.contains(a)) {
            return Err(InvalidToken::Audience {
                expected: audiences.join(","),
                found: status.audiences,
            }
            .into());
        }
        let username = status.user.username;
        let service_account = ServiceAccount::from_username(&username).map_err(|e| {
            InvalidToken::NotServiceAccount {
                reason: e.to_string(),
                username: username.clone(),
            }
        })?;
        let mut extra = status.user.extra;
        let mut first = |key: &str| {
            extra
                .remove(key)
                .and_then(|v| v.into_iter().next())
                .filter(|v| !v.is_empty())
        };
        let mut authenticated = Authenticated::new(service_account);
        authenticated.pod_name = first(EXTRA_POD_NAME);
        authenticated.pod_uid = first(EXTRA_POD_UID);
        Ok(authenticated)
    }

    /// One TokenReview call, rate limited and bounded by the timeout.
    async fn review(&self, token: &str, audiences: &[String]) -> Result<ReviewStatus, Error> {
        let timeout = self.config.timeout;
        self.limiter
            .acquire(timeout)
            .await
            .map_err(|wait| Error::RateLimited { wait, timeout })?;
        tokio::time::timeout(timeout, self.call(token, audiences))
            .await
            .map_err(|_| Error::Timeout { after: timeout })?
    }

    async fn call(&self, token: &str, audiences: &[String]) -> Result<ReviewStatus, Error> {
        let bearer = bearer(&self.config).await?;
        let body = serde_json::to_vec(&TokenReviewRequest {
            api_version: "authentication.k8s.io/v1",
            kind: "TokenReview",
            spec: Spec { token, audiences },
        })
        .map_err(|e| Error::Response {
            reason: format!("cannot encode the request: {e}"),
        })?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(bearer) = bearer {
            request = request.header(AUTHORIZATION, bearer);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.transport(&e))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
            .map_err(|e| self.transport(&*e))?
            .to_bytes();
        if !status.is_success() {
            return Err(Error::ApiServer {
                status: status.as_u16(),
                message: redact(&error_message(status, &body), token),
            });
        }
        let review: TokenReview = serde_json::from_slice(&body).map_err(|e| Error::Response {
            reason: format!("not a TokenReview: {e}"),
        })?;
        Ok(review.status)
    }

    fn transport(&self, e: &(dyn core::error::Error + 'static)) -> Error {
        let mut reason = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let s_text = s.to_string();
            if !reason.contains(&s_text) {
                reason.push_str(": ");
                reason.push_str(&s_text);
            }
            source = s.source();
        }
        Error::Transport {
            server: self.config.api_server.clone(),
            reason,
        }
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
            Err(e) => tracing::debug!(error = %e, "TokenReview refused the token"),
        }
        result
    }
}

impl<C> fmt::Debug for TokenReviewAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenReviewAuthenticator")
            .field("config", &self.config)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

fn review_uri(api_server: &str) -> Result<Uri, Error> {
    let bad = |reason: String| Error::config(format!("API server URL {api_server:?}"), reason);
    let base: Uri = api_server
        .parse()
        .map_err(|e| bad(format!("not a URL: {e}")))?;
    if base.scheme_str() != Some("https") {
        return Err(bad("must start with https://".to_owned()));
    }
    let Some(authority) = base.authority() else {
        return Err(bad("has no host".to_owned()));
    };
    if base.query().is_some() {
        return Err(bad("must not have a query".to_owned()));
    }
    let prefix = base.path().trim_end_matches('/');
    format!("https://{authority}{prefix}{TOKEN_REVIEWS_PATH}")
        .parse()
        .map_err(|e| bad(format!("not a URL: {e}")))
}

fn tls_config(config: &TokenReviewConfig) -> Result<rustls::ClientConfig, Error> {
    let (pem, source) = match &config.ca {
        ApiServerCa::File(path) => (
            std::fs::read(path).map_err(|e| Error::ReadFile {
                what: "API server CA file",
                path: path.clone(),
                reason: e.to_string(),
            })?,
            format!("API server CA file {}", path.display()),
        ),
        ApiServerCa::Pem(pem) => (pem.clone(), "API server CA".to_owned()),
    };
    let bad = |reason: String| Error::config(source.clone(), reason);
    let blocks = pem::parse_many(&pem).map_err(|e| bad(format!("not PEM: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for (i, block) in blocks.iter().enumerate() {
        if block.tag() != "CERTIFICATE" {
            continue;
        }
        roots
            .add(block.contents().to_vec().into())
            .map_err(|e| bad(format!("certificate #{i} is not a usable CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no CERTIFICATE block".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots);
    match &config.credentials {
        ApiCredentials::ClientCertificate { chain_pem, key_pem } => {
            let (chain, key) = client_certificate(chain_pem, key_pem)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::config("API client certificate", e.to_string()))
        }
        ApiCredentials::TokenFile(_) | ApiCredentials::Token(_) => {
            Ok(builder.with_no_client_auth())
        }
    }
}

/// The client certificate chain and key of a kubeconfig user.
fn client_certificate(
    chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let bad = |what: &str, reason: String| Error::config(what, reason);
    let chain: Vec<CertificateDer<'static>> = pem::parse_many(chain_pem)
        .map_err(|e| bad("API client certificate", format!("not PEM: {e}")))?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| CertificateDer::from(block.into_contents()))
        .collect();
    if chain.is_empty() {
        return Err(bad(
            "API client certificate",
            "it holds no CERTIFICATE block".to_owned(),
        ));
    }
    let blocks =
        pem::parse_many(key_pem).map_err(|_| bad("API client key", "not PEM".to_owned()))?;
    let key = blocks
        .into_iter()
        .find_map(|block| {
            let tag = block.tag().to_owned();
            let der = block.into_contents();
            match tag.as_str() {
                "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(der.into())),
                "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(der.into())),
                "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(der.into())),
                _ => None,
            }
        })
        .ok_or_else(|| {
            bad(
                "API client key",
                "it holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block".to_owned(),
            )
        })?;
    Ok((chain, key))
}

/// The `Authorization` header: from the (rotating) token file, or the fixed token; none when
/// the client authenticates with a certificate.
async fn bearer(config: &TokenReviewConfig) -> Result<Option<HeaderValue>, Error> {
    let (token, what) =
        match &config.credentials {
            ApiCredentials::ClientCertificate { .. } => return Ok(None),
            ApiCredentials::TokenFile(path) => (
                Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
                    Error::ReadFile {
                        what: "API client token file",
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })?),
                format!("API client token file {}", path.display()),
            ),
            ApiCredentials::Token(token) => (token.clone(), "API client token".to_owned()),
        };
    let bad = |reason: &str| Error::config(what.clone(), reason);
    let token = token.trim();
    if token.is_empty() {
        return Err(bad("it is empty"));
    }
    let header = Zeroizing::new(format!("Bearer {token}"));
    let mut value = HeaderValue::try_from(header.as_str())
        .map_err(|_| bad("it holds characters not allowed in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// The message of a Kubernetes `Status` answer, else the start of the body.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    let message = match serde_json::from_slice::<ApiStatus>(body) {
        Ok(s) if !s.message.is_empty() => s.message,
        _ => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        message
    };
    let chars: Vec<char> = message.chars().filter(|c| !c.is_control()).collect();
    let mut quoted: String = chars.iter().take(MAX_QUOTED_LEN).collect();
    if chars.len() > MAX_QUOTED_LEN {
        quoted.push('…');
    }
    quoted
}

/// Never let a token echoed by the server reach an error message.
fn redact(text: &str, token: &str) -> String {
    text.replace(token, "<redacted>")
}
