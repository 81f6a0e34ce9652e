//! ServiceAccount token authentication for meshid: a workload presents the token of its
//! Kubernetes ServiceAccount, and an [`Authenticator`] says which ServiceAccount (and pod, when
//! known) it belongs to.
//!
//! | authenticator | how | for |
//! |---|---|---|
//! | [`TokenReviewAuthenticator`] | asks the API server (`TokenReview`, `authentication.k8s.io/v1`, through kube-rs), cached, pre-checked and rate limited | production, Linkerd-compatible |
//! | [`JwksAuthenticator`] | verifies projected tokens offline (ES256, RS256) against a [`Jwks`] | production without API-server load; clusters whose JWKS is published |
//! | [`OidcAuthenticator`] | verifies projected tokens offline with the keys the API server publishes (service-account issuer discovery), refreshed; TokenReview for what it cannot judge | pod-start storms: thousands of new tokens without thousands of reviews |
//! | [`StaticAuthenticator`] | a file mapping tokens to ServiceAccounts | development |
//! | [`AnyAuthenticator`] | one of the above, chosen at run time | binaries |
//!
//! [`JwtSigner`] is the other side, for development: it mints ES256 tokens shaped like projected
//! ServiceAccount tokens and exports the JWKS that validates them.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use meshid_authn::{
//!     ErrorKind, JwksAuthenticator, JwtConfig, JwtSigner, PodRef, TokenParams,
//! };
//! use meshid_policy::ServiceAccount;
//! use time::macros::datetime;
//!
//! let issuer = "https://kubernetes.default.svc.cluster.local";
//! let signer = JwtSigner::generate(issuer)?;
//! let jwks_json = signer.jwks_json(); // what a validator is configured with
//!
//! // Mint a token for emojivoto/web, bound to a pod.
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let mut params = TokenParams::new(ServiceAccount::new("emojivoto", "web")?, now);
//! params.pod = Some(PodRef::new("web-7d9c", "5f0c2b1e-8a4d-4c59-9a43-0c6e2d4f1a77"));
//! let token = signer.sign(&params)?;
//!
//! // Validate it offline.
//! let jwks = meshid_authn::Jwks::from_json(jwks_json.as_bytes())?;
//! let authn = JwksAuthenticator::new(jwks, JwtConfig::new(issuer))?;
//! let who = authn.validate_at(token.as_bytes(), now + Duration::from_secs(60))?;
//! assert_eq!(who.service_account.username(), "system:serviceaccount:emojivoto:web");
//! assert_eq!(who.pod_name.as_deref(), Some("web-7d9c"));
//!
//! // A day later it has expired: refused, with the reason.
//! let err = authn
//!     .validate_at(token.as_bytes(), now + Duration::from_secs(25 * 3600))
//!     .unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidToken);
//! assert!(err.to_string().starts_with("token expired at 2026-06-02T12:00:00Z"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In a server, call [`Authenticator::authenticate`] (async) and map [`Error::kind`] to the
//! answer: [`ErrorKind::NotAuthenticated`] → FailedPrecondition `authentication token could
//! not be authenticated`, [`ErrorKind::InvalidToken`] → InvalidArgument with the message,
//! [`ErrorKind::Backend`] → Internal `error validating token for <identity>: <message>`.
//!
//! # Design choices
//!
//! - **JWS on ring, not a JOSE crate.** A compact JWS verifier for two algorithms is small:
//!   base64url, serde_json and ring's `ECDSA_P256_SHA256_FIXED` (JWS signatures are the fixed
//!   `r || s` form) and `RSA_PKCS1_2048_8192_SHA256`. `jsonwebtoken` 10+ needs either aws-lc-rs
//!   or the RustCrypto backend (a second crypto stack, with the `rsa` crate's timing advisory
//!   RUSTSEC-2023-0071), and hides the strictness choices below. ring stays the only crypto.
//! - **Strict tokens.** `alg` must be ES256 or RS256 *and* fit the key: a key named by `kid`
//!   of the other type is refused as algorithm confusion; `none`, HS256 and every other
//!   algorithm are refused by name; `crit` headers, JWE (five parts), padded or non-canonical
//!   base64url and tokens over [`MAX_TOKEN_LEN`] are refused; `exp` is required and
//!   `exp`/`nbf`/`iat` must be numbers; `sub` must agree with the `kubernetes.io` claims.
//! - **The API server through `meshid-kube`, over kube-rs.** Where the API server is, how it
//!   is trusted and how the identity service authenticates ([`KubeApiConfig`], re-exported
//!   here) is kube-rs's configuration, found as kubectl finds it and checked by `meshid-kube`,
//!   shared with the Kubernetes Events of `meshid-issuer`. The review is the typed
//!   `authentication.k8s.io/v1` `TokenReview` of `k8s-openapi`, created through kube's client
//!   (on rustls with ring). A [`TokenReviewConfig`] is a [`KubeApiConfig`]
//!   ([`TokenReviewConfig::api`]) plus the review's own settings; build it where kubectl would
//!   look with [`TokenReviewConfig::discover`], from a kubeconfig with
//!   [`TokenReviewConfig::from_kubeconfig`], in a pod with [`TokenReviewConfig::in_cluster`],
//!   explicitly with [`TokenReviewConfig::new`] (API server URL, CA file, token file), or from
//!   a [`KubeApiConfig`] shared with other clients with [`TokenReviewConfig::with_api`].
//! - **The audience is enforced.** Linkerd retries a review without audiences whenever the
//!   API server says "token audiences": a real API server says exactly that for every token
//!   of another audience, so any pod's default token would pass. Here that is a refusal; the
//!   retry is an opt-in for API servers that cannot review audiences
//!   ([`TokenReviewConfig::audience_fallback`]).
//! - **Cache, negative cache, local checks and a rate limit.** Positive TokenReview results
//!   are cached under the token's SHA-256 for at most a minute and never past the token's
//!   `exp`; refusals for 10 s. A token that is not a JWT, or a JWT whose `exp` is past or
//!   whose `aud` lacks the audience, is refused without a review (a filter only: nothing is
//!   accepted without the API server). A token bucket (Linkerd's QPS 100, burst 200) spaces
//!   requests to the API server, so a pod-start storm queues here instead of being throttled
//!   there; a caller that leaves gives its permit back; callers presenting the same token
//!   while it is being reviewed share one review. Garbage tokens therefore cannot starve real
//!   ones ([`Metrics`] counts what was refused locally and from the negative cache).
//! - **Offline with the cluster's own keys.** [`OidcAuthenticator`] reads the issuer from the
//!   API server's service-account issuer discovery and the keys from its `/openid/v1/jwks`,
//!   through the same [`KubeApiConfig`] as TokenReview (the discovery document's `jwks_uri` may
//!   name an external URL; the API server serves the same keys, and that path is what its RBAC
//!   role grants). Keys are refreshed every 5 minutes and on an unknown `kid` (at most every
//!   10 s); what it cannot judge goes to a TokenReview fallback. A pod-start storm then costs
//!   no API-server calls; the price is that a deleted pod's token stays valid until it
//!   expires, bounded by the projected token's lifetime.
//! - **Tokens are secrets.** They are never logged, never quoted in errors (an answer from the
//!   API server that echoes the token is redacted) and never shown by `Debug`; the static and
//!   cached forms are SHA-256 digests.
//! - **Injected time.** Validation and cache expiry read a [`Clock`]; only [`SystemClock`]
//!   reads the system clock.
//!
//! # Limitations
//!
//! - ES256 and RS256 only (what Kubernetes signs with); PS256, ES384 and EdDSA keys in a JWKS
//!   are skipped.
//! - Legacy Secret-based ServiceAccount tokens (no `exp`, no `kubernetes.io` claim) are
//!   refused by [`JwksAuthenticator`]; [`TokenReviewAuthenticator`] accepts whatever the API
//!   server does.
//! - The JWKS and OIDC authenticators do not check that the pod still exists (a TokenReview does, for
//!   pod-bound tokens): a token stays valid until it expires.
//! - The Kubernetes API access has `meshid-kube`'s limitations: token files are re-read at
//!   least once a minute (not on every request), exec credential plugins run without a
//!   terminal, and kube cannot stop a plugin that hangs.
//! - A [`JwksAuthenticator`] follows its file only with a [`JwksReloader`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod jwks_file;
mod jwt;
mod metrics;
mod oidc;
mod signer;
mod static_tokens;
mod token;
mod tokenreview;

use core::future::Future;

use meshid_policy::ServiceAccount;

pub use error::{ClaimProblem, DiscoveryProblem, Error, ErrorKind, InvalidToken, MalformedToken};
pub use jwks_file::{DEFAULT_JWKS_POLL_INTERVAL, JwksReload, JwksReloader};
pub use jwt::{DEFAULT_AUDIENCE, DEFAULT_CLOCK_SKEW, Jwks, JwksAuthenticator, JwtConfig};
/// Where the Kubernetes API server is and how to reach it (from `meshid-kube`, shared with
/// Kubernetes Events), so TokenReview users need one import path.
pub use meshid_kube::{
    ApiCredentials, DEFAULT_TIMEOUT, IN_CLUSTER_SERVICE_ACCOUNT_DIR, KubeApiConfig,
};
/// The injected time source, shared with the other meshid crates.
pub use meshid_policy::{Clock, ManualClock, SystemClock};
pub use metrics::Metrics;
pub use oidc::{
    DEFAULT_KEYS_MIN_REFRESH_INTERVAL, DEFAULT_KEYS_REFRESH_INTERVAL, DISCOVERY_PATH, JWKS_PATH,
    KeysRefresh, OidcAuthenticator, OidcConfig,
};
pub use signer::{DEFAULT_TOKEN_LIFETIME, JwtSigner, PodRef, TokenParams};
pub use static_tokens::StaticAuthenticator;
pub use token::MAX_TOKEN_LEN;
pub use tokenreview::{
    DEFAULT_BURST, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_CAPACITY,
    DEFAULT_NEGATIVE_CACHE_TTL, DEFAULT_QPS, TokenReviewAuthenticator, TokenReviewConfig,
};

/// Turns a ServiceAccount token into the ServiceAccount it authenticates.
pub trait Authenticator: Send + Sync {
    /// Authenticates `token` (surrounding whitespace is ignored).
    fn authenticate(
        &self,
        token: &[u8],
    ) -> impl Future<Output = Result<Authenticated, Error>> + Send;
}

impl<A: Authenticator + ?Sized> Authenticator for std::sync::Arc<A> {
    fn authenticate(
        &self,
        token: &[u8],
    ) -> impl Future<Output = Result<Authenticated, Error>> + Send {
        (**self).authenticate(token)
    }
}

/// Who a token authenticates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Authenticated {
    /// The ServiceAccount.
    pub service_account: ServiceAccount,
    /// The ServiceAccount's uid, when the authority says.
    pub service_account_uid: Option<String>,
    /// The pod the token is bound to, when the authority says.
    pub pod_name: Option<String>,
    /// That pod's uid, when the authority says.
    pub pod_uid: Option<String>,
}

impl Authenticated {
    /// `service_account`, with no pod.
    pub fn new(service_account: ServiceAccount) -> Self {
        Self {
            service_account,
            service_account_uid: None,
            pod_name: None,
            pod_uid: None,
        }
    }
}

/// One of the authenticators, chosen at run time (e.g. by a command-line flag).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyAuthenticator<C: Clock = SystemClock> {
    /// Offline JWKS validation.
    Jwks(JwksAuthenticator<C>),
    /// A static token file.
    Static(StaticAuthenticator),
    /// Kubernetes TokenReview.
    TokenReview(Box<TokenReviewAuthenticator<C>>),
    /// Offline validation with the cluster's published keys, TokenReview for the rest (shared:
    /// its refresh loop, [`OidcAuthenticator::run`], holds it too).
    Oidc(std::sync::Arc<OidcAuthenticator<C>>),
}

impl<C: Clock> Authenticator for AnyAuthenticator<C> {
    async fn authenticate(&self, token: &[u8]) -> Result<Authenticated, Error> {
        match self {
            Self::Jwks(a) => a.authenticate(token).await,
            Self::Static(a) => a.authenticate(token).await,
            Self::TokenReview(a) => a.authenticate(token).await,
            Self::Oidc(a) => a.authenticate(token).await,
        }
    }
}
