//! The token side of a cluster: an API server double that reviews tokens (TokenReview),
//! publishes its service-account issuer discovery and signing keys, rotates them, and mints
//! projected ServiceAccount tokens with them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use meshid_authn::{Authenticator as _, Error, Jwks, JwksAuthenticator, JwtConfig, JwtSigner};
pub use meshid_authn::{PodRef, TokenParams};
use serde_json::{Value, json};

use crate::{Answer, ApiServerDouble, Request, must};

/// The issuer of the double's tokens unless told otherwise: a cluster's default
/// `--service-account-issuer`.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Where the API server creates TokenReviews.
pub const TOKENREVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// Options for a [`ClusterDouble`]; from [`ClusterDouble::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until started"]
pub struct ClusterBuilder {
    issuer: String,
    signer: Option<JwtSigner>,
    review_latency: Duration,
    discovery_up: bool,
}

impl ClusterBuilder {
    /// The `iss` of the tokens and of discovery. Default [`DEFAULT_ISSUER`].
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = issuer.to_owned();
        self
    }

    /// Sign with this key (its issuer is replaced), e.g. an RSA key for RS256. Default: a new
    /// P-256 key (ES256).
    pub fn signing_key_pem(mut self, pkcs8_pem: &str) -> Self {
        self.signer = Some(must(
            "read the signing key",
            JwtSigner::from_pem(self.issuer.clone(), pkcs8_pem),
        ));
        self
    }

    /// How long each TokenReview takes to answer. Default zero.
    pub fn review_latency(mut self, latency: Duration) -> Self {
        self.review_latency = latency;
        self
    }

    /// Start with discovery and the key set answering 503, as an API server that is starting.
    pub fn discovery_down(mut self) -> Self {
        self.discovery_up = false;
        self
    }

    /// Listens on `127.0.0.1`, on a free port, until the double is dropped.
    ///
    /// # Panics
    ///
    /// If a key cannot be made or the port bound; or outside a Tokio runtime.
    pub async fn start(self) -> ClusterDouble {
        let signer = match self.signer {
            Some(s) if s.issuer() == self.issuer => s,
            Some(s) => must(
                "re-issue the signing key",
                JwtSigner::from_pem(self.issuer.clone(), &s.private_key_pem()),
            ),
            None => must(
                "make a signing key",
                JwtSigner::generate(self.issuer.clone()),
            ),
        };
        let signer = Arc::new(signer);
        let state = Arc::new(Mutex::new(State {
            issuer: self.issuer,
            signing: Arc::clone(&signer),
            published: vec![signer],
            discovery_up: self.discovery_up,
            review_latency: self.review_latency,
        }));
        let counters = Arc::new(Counters::default());
        let (answer_state, answer_counters) = (Arc::clone(&state), Arc::clone(&counters));
        let api = ApiServerDouble::builder()
            .answer(move |request| {
                let (state, counters) = (Arc::clone(&answer_state), Arc::clone(&answer_counters));
                async move { answer(&state, &counters, request).await }
            })
            .start()
            .await;
        ClusterDouble {
            api,
            state,
            counters,
        }
    }
}

struct State {
    issuer: String,
    /// The key new tokens are signed with.
    signing: Arc<JwtSigner>,
    /// The keys discovery publishes (the signing key among them).
    published: Vec<Arc<JwtSigner>>,
    discovery_up: bool,
    review_latency: Duration,
}

#[derive(Default)]
struct Counters {
    reviews: AtomicU64,
    discovery: AtomicU64,
    jwks: AtomicU64,
}

/// An API server double for token authentication.
///
/// - `POST` [`TOKENREVIEW_PATH`]: reviews the token against the published keys, the issuer
///   and the review's audiences (none: the issuer, the API server's default audience), after
///   [`review_latency`](ClusterBuilder::review_latency); answers as the API server does, with
///   the ServiceAccount's username and uid and the pod in `extra`.
/// - `GET /.well-known/openid-configuration` and `GET /openid/v1/jwks`: the issuer and the
///   published keys; `503` while discovery is [down](Self::set_discovery_up).
/// - Anything else: `404` with a `Status`.
///
/// Keys rotate as Kubernetes rotates them: [`rotate`](Self::rotate) publishes a new key and
/// signs with it from then on, the old key stays published until [`retire`](Self::retire).
pub struct ClusterDouble {
    api: ApiServerDouble,
    state: Arc<Mutex<State>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for ClusterDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterDouble")
            .field("url", &self.api.url())
            .field("issuer", &self.issuer())
            .field("kids", &self.published_kids())
            .finish_non_exhaustive()
    }
}

impl ClusterDouble {
    /// Options: issuer, signing key, review latency, discovery down at start.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            issuer: DEFAULT_ISSUER.to_owned(),
            signer: None,
            review_latency: Duration::ZERO,
            discovery_up: true,
        }
    }

    /// A double with the defaults.
    ///
    /// # Panics
    ///
    /// As [`ClusterBuilder::start`].
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// The API server double underneath: its URL, CA and the requests it saw.
    pub fn api(&self) -> &ApiServerDouble {
        &self.api
    }

    /// A kubeconfig for the double, authenticating with the bearer `token`.
    pub fn kubeconfig(&self, token: &str) -> String {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(self.api.ca_pem());
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: double\n\
             contexts: [{{name: double, context: {{cluster: double, user: identity}}}}]\n\
             clusters: [{{name: double, cluster: {{server: '{}', certificate-authority-data: {ca}}}}}]\n\
             users: [{{name: identity, user: {{token: '{token}'}}}}]\n",
            self.api.url()
        )
    }

    /// The issuer of tokens and discovery.
    pub fn issuer(&self) -> String {
        self.lock().issuer.clone()
    }

    /// Mints a token with the current signing key.
    ///
    /// # Panics
    ///
    /// If signing fails (a zero lifetime).
    pub fn token(&self, params: &TokenParams) -> String {
        let signer = Arc::clone(&self.lock().signing);
        must("sign a token", signer.sign(params))
    }

    /// The `kid` of the current signing key.
    pub fn signing_kid(&self) -> String {
        self.lock().signing.kid().to_owned()
    }

    /// The `kid`s discovery publishes.
    pub fn published_kids(&self) -> Vec<String> {
        self.lock()
            .published
            .iter()
            .map(|s| s.kid().to_owned())
            .collect()
    }

    /// The published key set, as `/openid/v1/jwks` serves it.
    pub fn jwks_json(&self) -> String {
        let keys: Vec<Value> = self.lock().published.iter().map(|s| s.jwk()).collect();
        json!({ "keys": keys }).to_string()
    }

    /// Publishes a new P-256 key and signs with it from now on; returns its `kid`. The
    /// previous keys stay published.
    ///
    /// # Panics
    ///
    /// If the key cannot be made.
    pub fn rotate(&self) -> String {
        let issuer = self.issuer();
        let signer = must("make a signing key", JwtSigner::generate(issuer));
        self.rotate_to(signer)
    }

    /// Publishes `signer`'s key (re-issued for the double's issuer) and signs with it from
    /// now on; returns its `kid`.
    ///
    /// # Panics
    ///
    /// If the key cannot be re-read.
    pub fn rotate_to(&self, signer: JwtSigner) -> String {
        let mut state = self.lock();
        let signer = Arc::new(must(
            "re-issue the signing key",
            JwtSigner::from_pem(state.issuer.clone(), &signer.private_key_pem()),
        ));
        let kid = signer.kid().to_owned();
        state.published.push(Arc::clone(&signer));
        state.signing = signer;
        kid
    }

    /// Stops publishing the key `kid` (tokens it signed no longer review, and offline
    /// validators drop it at their next refresh).
    pub fn retire(&self, kid: &str) {
        self.lock().published.retain(|s| s.kid() != kid);
    }

    /// Makes discovery and the key set answer (`true`) or fail with `503` (`false`).
    pub fn set_discovery_up(&self, up: bool) {
        self.lock().discovery_up = up;
    }

    /// Sets how long each TokenReview takes to answer.
    pub fn set_review_latency(&self, latency: Duration) {
        self.lock().review_latency = latency;
    }

    /// TokenReviews answered so far.
    pub fn reviews(&self) -> u64 {
        self.counters.reviews.load(Ordering::Relaxed)
    }

    /// Discovery documents served so far (answered or failed).
    pub fn discovery_requests(&self) -> u64 {
        self.counters.discovery.load(Ordering::Relaxed)
    }

    /// Key-set requests served so far (answered or failed).
    pub fn jwks_requests(&self) -> u64 {
        self.counters.jwks.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn status(code: u16, reason: &str, message: &str) -> Answer {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    Answer::json(code, body.to_string())
}

async fn answer(state: &Mutex<State>, counters: &Counters, request: Request) -> Answer {
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", meshid_authn::DISCOVERY_PATH) => {
            counters.discovery.fetch_add(1, Ordering::Relaxed);
            let state = lock();
            if !state.discovery_up {
                return status(503, "ServiceUnavailable", "the API server is starting");
            }
            let body = json!({
                "issuer": state.issuer,
                "jwks_uri": format!("{}{}", state.issuer, meshid_authn::JWKS_PATH),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            });
            Answer::json(200, body.to_string())
        }
        ("GET", meshid_authn::JWKS_PATH) => {
            counters.jwks.fetch_add(1, Ordering::Relaxed);
            let state = lock();
            if !state.discovery_up {
                return status(503, "ServiceUnavailable", "the API server is starting");
            }
            let keys: Vec<Value> = state.published.iter().map(|s| s.jwk()).collect();
            Answer::new(200, json!({ "keys": keys }).to_string())
        }
        ("POST", TOKENREVIEW_PATH) => {
            counters.reviews.fetch_add(1, Ordering::Relaxed);
            let (latency, issuer, keys) = {
                let state = lock();
                let keys: Vec<Value> = state.published.iter().map(|s| s.jwk()).collect();
                (state.review_latency, state.issuer.clone(), keys)
            };
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            review(&request.body, &issuer, &json!({ "keys": keys }).to_string()).await
        }
        (method, path) => status(
            404,
            "NotFound",
            &format!("the API server double does not serve {method} {path}"),
        ),
    }
}

/// Answers a TokenReview as the API server does.
async fn review(body: &[u8], issuer: &str, jwks: &str) -> Answer {
    let Ok(review) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "the body is not a TokenReview");
    };
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let audiences: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let wanted = if audiences.is_empty() {
        vec![issuer.to_owned()]
    } else {
        audiences.clone()
    };
    let jwks = must("read the published keys", Jwks::from_json(jwks.as_bytes()));
    let mut refusal = None;
    for audience in &wanted {
        let mut config = JwtConfig::new(issuer);
        config.audience.clone_from(audience);
        let validator = must(
            "configure the review",
            JwksAuthenticator::new(jwks.clone(), config),
        );
        match validator.authenticate(token.as_bytes()).await {
            Ok(who) => {
                let mut extra = serde_json::Map::new();
                if let Some(pod) = &who.pod_name {
                    extra.insert("authentication.kubernetes.io/pod-name".into(), json!([pod]));
                }
                if let Some(uid) = &who.pod_uid {
                    extra.insert("authentication.kubernetes.io/pod-uid".into(), json!([uid]));
                }
                let sa = &who.service_account;
                let body = json!({
                    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": { "audiences": audiences },
                    "status": {
                        "authenticated": true,
                        "user": {
                            "username": sa.username(),
                            "uid": who.service_account_uid,
                            "groups": [
                                "system:serviceaccounts",
                                format!("system:serviceaccounts:{}", sa.namespace().as_str()),
                                "system:authenticated",
                            ],
                            "extra": extra,
                        },
                        "audiences": [audience],
                    },
                });
                return Answer::json(201, body.to_string());
            }
            Err(e) => refusal = Some(e),
        }
    }
    let error = match refusal {
        Some(Error::InvalidToken(meshid_authn::InvalidToken::Audience { found, .. })) => format!(
            "[invalid bearer token, token audiences {found:?} is invalid for the target audiences {wanted:?}]"
        ),
        _ => "[invalid bearer token, square/go-jose: error in cryptographic primitive]".to_owned(),
    };
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": { "audiences": audiences },
        "status": { "user": {}, "error": error },
    });
    Answer::json(201, body.to_string())
}
