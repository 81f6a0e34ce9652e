//! TokenReview against a local HTTPS endpoint that answers like the Kubernetes API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use meshid_authn::{
    ApiCredentials, Authenticator, Clock, Error, ErrorKind, InvalidToken, ManualClock, Metrics,
    TokenReviewAuthenticator, TokenReviewConfig,
};
use meshid_kube_testing::{Answer, ApiServerDouble, ClientCertificate, Request};
use meshid_policy::ServiceAccount;
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::net::TcpListener;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
/// The identity service's own credential, as mounted in its pod.
const CLIENT_TOKEN: &str = "identity-sa-token";
/// What a real API server answers for a token of another audience.
const WRONG_AUDIENCE: &str =
    r#"token audiences ["x"] is invalid for the target audiences ["identity.l5d.io"]"#;

/// A JWT-shaped token named `name` for the fake API server, with `claims` added (its
/// signature is the API server's business). Without an `aud` claim, only the API server
/// knows its audience.
fn jwt_with(name: &str, claims: Value) -> String {
    let mut payload = json!({ "name": name, "exp": 4_102_444_800_i64 });
    if let (Some(payload), Value::Object(claims)) = (payload.as_object_mut(), claims) {
        payload.extend(claims);
    }
    format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// [`jwt_with`] no more claims.
fn jwt(name: &str) -> String {
    jwt_with(name, json!({}))
}

/// The name the fake API server answers by.
fn name_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["name"].as_str().unwrap().to_owned()
}

/// What the fake API server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    authorization: String,
    token: String,
    audiences: Option<Vec<String>>,
}

impl Seen {
    fn of(req: &Request) -> Self {
        let review: Value = serde_json::from_slice(&req.body).unwrap();
        Self {
            authorization: req.authorization().to_owned(),
            token: review["spec"]["token"].as_str().unwrap().to_owned(),
            audiences: review["spec"].get("audiences").map(|a| {
                a.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }),
        }
    }
}

/// The API server double, answering TokenReviews like [`answer`].
struct FakeApiServer(ApiServerDouble);

impl FakeApiServer {
    async fn start() -> Self {
        Self(ApiServerDouble::builder().answer(answer).start().await)
    }

    /// A server that also accepts TLS client certificates issued by a CA it makes; returns
    /// one such certificate (`CN=system:serviceaccount:linkerd:linkerd-identity`).
    async fn start_with_client_certs() -> (Self, ClientCertificate) {
        let server = ApiServerDouble::builder()
            .accept_client_certificates("system:serviceaccount:linkerd:linkerd-identity")
            .answer(answer)
            .start()
            .await;
        let client = server.client_certificate().unwrap().clone();
        (Self(server), client)
    }

    fn url(&self) -> &str {
        self.0.url()
    }

    fn ca_pem(&self) -> &str {
        self.0.ca_pem()
    }

    fn requests(&self) -> Vec<Seen> {
        self.0.requests().iter().map(Seen::of).collect()
    }

    fn hits(&self) -> usize {
        self.0.hits()
    }

    /// A configuration for this server, with its files in a fresh directory.
    fn config(&self) -> (TokenReviewConfig, TempDir) {
        let dir = temp_dir();
        std::fs::write(dir.path().join("ca.crt"), self.ca_pem()).unwrap();
        std::fs::write(dir.path().join("token"), CLIENT_TOKEN).unwrap();
        let config = TokenReviewConfig::new(
            self.url(),
            dir.path().join("ca.crt"),
            dir.path().join("token"),
        )
        .unwrap();
        (config, dir)
    }
}

/// Answers by the reviewed token's name, like an API server would.
async fn answer(req: Request) -> Answer {
    let Seen {
        authorization,
        token,
        audiences,
    } = Seen::of(&req);
    let review: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(req.path, "/apis/authentication.k8s.io/v1/tokenreviews");
    assert_eq!(review["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(review["kind"], "TokenReview");

    let status = |code: u16, body: Value| Answer::new(code, body.to_string());
    // A verified client certificate authenticates like the bearer token.
    if !req.client_certificate && authorization != format!("Bearer {CLIENT_TOKEN}") {
        return status(
            401,
            json!({"kind": "Status", "message": "Unauthorized", "code": 401}),
        );
    }
    let reviewed = |s: Value| status(201, json!({"kind": "TokenReview", "status": s}));
    let user = |sa: &str| {
        json!({"username": format!("system:serviceaccount:emojivoto:{sa}"),
               "uid": "9b1f0f6e-0000-4000-8000-000000000001",
               "groups": ["system:serviceaccounts", "system:serviceaccounts:emojivoto"],
               "extra": {"authentication.kubernetes.io/pod-name": ["web-7d9c"],
                         "authentication.kubernetes.io/pod-uid": ["5f0c2b1e-0000-4000-8000-000000000002"]}})
    };
    let requested = audiences.clone().unwrap_or_default();
    match name_of(&token).as_str() {
        "not-authenticated" => reviewed(json!({"user": {}})),
        "expired-token" => reviewed(json!({
            "user": {},
            "error": "[invalid bearer token, service account token has expired]"})),
        // A token of another audience: what a real API server answers when asked for
        // identity.l5d.io; without audiences it takes its own default audience.
        "other-audience" if audiences.is_some() => {
            reviewed(json!({"user": {}, "error": WRONG_AUDIENCE}))
        }
        "other-audience" => reviewed(json!({"authenticated": true, "user": user("web")})),
        "wrong-audience" => reviewed(json!({
            "authenticated": true, "user": user("web"), "audiences": ["https://kubernetes.default.svc"]})),
        "user-token" => reviewed(json!({
            "authenticated": true, "user": {"username": "alice"}, "audiences": requested})),
        "throttled" => status(
            429,
            json!({"kind": "Status", "status": "Failure", "reason": "TooManyRequests",
                   "message": "Too many requests, please try again later.", "code": 429}),
        ),
        "broken" => Answer::new(500, &b"etcdserver: request timed out\n"[..]),
        "echoed" => status(
            500,
            json!({"kind": "Status", "message": format!("cannot review {token}"), "code": 500}),
        ),
        "garbage" => Answer::new(200, &b"<html>proxy</html>"[..]),
        "delayed" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reviewed(json!({"authenticated": true, "user": user("web"), "audiences": requested}))
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reviewed(json!({"authenticated": true, "user": user("web"), "audiences": requested}))
        }
        _ => reviewed(json!({"authenticated": true, "user": user("web"), "audiences": requested})),
    }
}

/// A fresh folder, removed when the returned value is dropped.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("meshid-authn-tokenreview-")
        .tempdir()
        .unwrap()
}

fn web() -> ServiceAccount {
    ServiceAccount::new("emojivoto", "web").unwrap()
}

#[tokio::test]
async fn authenticated_tokens_name_the_service_account_and_pod() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let authn = TokenReviewAuthenticator::new(config).await.unwrap();
    let token = jwt("valid-token");
    let who = authn
        .authenticate(format!("{token}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(who.service_account, web());
    assert_eq!(who.pod_name.as_deref(), Some("web-7d9c"));
    assert_eq!(
        who.pod_uid.as_deref(),
        Some("5f0c2b1e-0000-4000-8000-000000000002")
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].token, token);
    assert_eq!(seen[0].audiences, Some(vec!["identity.l5d.io".to_owned()]));
    assert_eq!(seen[0].authorization, format!("Bearer {CLIENT_TOKEN}"));
}

#[tokio::test]
async fn refusals_are_sorted_by_kind_with_exact_messages() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let clock = Arc::new(ManualClock::new(NOW));
    let authn = TokenReviewAuthenticator::with_clock(config, Arc::clone(&clock))
        .await
        .unwrap();
    let err = |name: &'static str| {
        let authn = &authn;
        async move { authn.authenticate(jwt(name).as_bytes()).await.unwrap_err() }
    };

    let e = err("not-authenticated").await;
    assert_eq!(e, Error::NotAuthenticated);
    assert_eq!(e.kind(), ErrorKind::NotAuthenticated);
    assert_eq!(
        e.to_string(),
        "authentication token could not be authenticated"
    );

    let e = err("expired-token").await;
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert_eq!(
        e.to_string(),
        "[invalid bearer token, service account token has expired]"
    );

    let e = err("wrong-audience").await;
    assert_eq!(
        e,
        Error::InvalidToken(InvalidToken::Audience {
            expected: "identity.l5d.io".into(),
            found: vec!["https://kubernetes.default.svc".into()],
        })
    );

    let e = err("user-token").await;
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert_eq!(
        e.to_string(),
        "token user is not a ServiceAccount: invalid ServiceAccount username 'alice': must \
         start with 'system:serviceaccount:'"
    );

    let e = err("throttled").await;
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server answered the TokenReview with HTTP 429: Too many requests, \
         please try again later.; the API server is throttling: lower the QPS/burst limits or \
         retry later"
    );

    let e = err("broken").await;
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server answered the TokenReview with HTTP 500: etcdserver: request \
         timed out; the API server is failing: retry later"
    );

    // An answer that quotes the token is redacted.
    let e = err("echoed").await;
    assert_eq!(
        e,
        Error::ApiServer {
            status: 500,
            message: "cannot review <redacted>".into()
        }
    );

    let e = err("garbage").await;
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server's TokenReview answer is not understood: not a TokenReview \
         (syntax error at line 1 column 1)"
    );
    assert_eq!(server.hits(), 8);
    assert_eq!(authn.cached(), 0);

    // Refusals of the token are remembered for 10 s; failures to ask are not.
    assert_eq!(authn.refusals_cached(), 4);
    assert_eq!(err("expired-token").await.kind(), ErrorKind::InvalidToken);
    assert_eq!(err("not-authenticated").await, Error::NotAuthenticated);
    assert_eq!(server.hits(), 8);
    err("broken").await;
    assert_eq!(server.hits(), 9);
    clock.advance(Duration::from_secs(10));
    err("expired-token").await;
    assert_eq!(server.hits(), 10);
}

#[tokio::test]
async fn the_audience_is_enforced_unless_the_fallback_is_on() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let token = jwt("other-audience");

    // By default, the API server's refusal is the answer: no retry without audiences.
    let authn = TokenReviewAuthenticator::new(config.clone()).await.unwrap();
    let e = authn.authenticate(token.as_bytes()).await.unwrap_err();
    assert_eq!(
        e,
        Error::InvalidToken(InvalidToken::Rejected {
            reason: WRONG_AUDIENCE.to_owned()
        })
    );
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert_eq!(e.to_string(), WRONG_AUDIENCE);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].audiences, Some(vec!["identity.l5d.io".to_owned()]));

    // A token that says its audience is refused without asking.
    let default_audience = jwt_with(
        "valid-token",
        json!({"aud": ["https://kubernetes.default.svc"]}),
    );
    let e = authn
        .authenticate(default_audience.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::InvalidToken(InvalidToken::Audience {
            expected: "identity.l5d.io".into(),
            found: vec!["https://kubernetes.default.svc".into()],
        })
    );
    assert_eq!(server.hits(), 1);

    // With the fallback, for API servers that cannot review audiences: retried without.
    let mut fallback = config;
    fallback.audience_fallback = true;
    let authn = TokenReviewAuthenticator::new(fallback).await.unwrap();
    let who = authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(who.service_account, web());
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].audiences, Some(vec!["identity.l5d.io".to_owned()]));
    assert_eq!(seen[2].audiences, None, "the retry asks for no audiences");
    // ... and a token's own aud is left to the API server too.
    authn
        .authenticate(default_audience.as_bytes())
        .await
        .unwrap();
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn tokens_that_give_themselves_away_are_refused_without_a_review() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let clock = Arc::new(ManualClock::new(NOW));
    let metrics = Metrics::default();
    let authn = TokenReviewAuthenticator::with_clock(config, Arc::clone(&clock))
        .await
        .unwrap()
        .with_metrics(metrics.clone());

    let e = authn.authenticate(b"opaque-garbage").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert_eq!(
        e.to_string(),
        "token is malformed: it is not a JWT (header.payload.signature); ServiceAccount tokens \
         are JWTs"
    );
    let expired = jwt_with("valid-token", json!({"exp": NOW.unix_timestamp() - 60}));
    let e = authn.authenticate(expired.as_bytes()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "token expired at 2026-06-01T11:59:00Z (now is 2026-06-01T12:00:00Z, clock-skew \
         allowance 20s); the workload must re-read its rotated token"
    );
    let other = jwt_with("valid-token", json!({"aud": "vault"}));
    assert_eq!(
        authn.authenticate(other.as_bytes()).await.unwrap_err(),
        Error::InvalidToken(InvalidToken::Audience {
            expected: "identity.l5d.io".into(),
            found: vec!["vault".into()],
        })
    );
    assert_eq!(server.hits(), 0);
    assert_eq!(metrics.local_refusals(), 3);
    assert_eq!(metrics.reviews_sent(), 0);

    // Within the allowance, and with the audience, the API server decides.
    let fresh = jwt_with(
        "valid-token",
        json!({"exp": NOW.unix_timestamp() - 10, "aud": ["vault", "identity.l5d.io"]}),
    );
    authn.authenticate(fresh.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 1);
    assert_eq!(metrics.reviews_sent(), 1);

    // A refusal presented again is answered from the negative cache.
    for _ in 0..3 {
        authn
            .authenticate(jwt("not-authenticated").as_bytes())
            .await
            .unwrap_err();
    }
    assert_eq!(server.hits(), 2);
    assert_eq!(metrics.negative_cache_hits(), 2);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = FakeApiServer::start().await;
    let (mut config, _dir) = server.config();
    config.api.timeout = Duration::from_millis(200);
    let authn = TokenReviewAuthenticator::new(config).await.unwrap();
    let e = authn
        .authenticate(jwt("slow").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::Timeout {
            after: Duration::from_millis(200)
        }
    );
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server did not answer the TokenReview within 200ms; check its \
         health and the network path, or raise the request timeout"
    );
}

#[tokio::test]
async fn positive_results_are_cached_until_ttl_or_token_expiry() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let clock = Arc::new(ManualClock::new(NOW));
    let authn = TokenReviewAuthenticator::with_clock(config, clock.clone())
        .await
        .unwrap();
    let token = jwt("valid-token");

    authn.authenticate(token.as_bytes()).await.unwrap();
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 1, "the second call is served from the cache");
    clock.advance(Duration::from_secs(59));
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 1);
    clock.advance(Duration::from_secs(1));
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 2, "an entry expires after 60s");

    // A token expiring in 10s is cached for 10s only.
    let expiring = jwt_with(
        "valid-token",
        json!({"exp": (clock.now() + Duration::from_secs(10)).unix_timestamp()}),
    );
    authn.authenticate(expiring.as_bytes()).await.unwrap();
    clock.advance(Duration::from_secs(9));
    authn.authenticate(expiring.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 3);
    clock.advance(Duration::from_secs(1));
    authn.authenticate(expiring.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 4);
    assert!(!format!("{authn:?}").contains(&token));
}

#[tokio::test]
async fn calls_are_rate_limited() {
    let server = FakeApiServer::start().await;
    let (mut config, _dir) = server.config();
    config.qps = 10.0;
    config.burst = 1;
    let authn = TokenReviewAuthenticator::new(config.clone()).await.unwrap();
    let start = Instant::now();
    for name in ["a", "b", "c"] {
        authn.authenticate(jwt(name).as_bytes()).await.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");

    // A wait beyond the request timeout fails fast instead of queueing.
    config.qps = 1.0;
    config.api.timeout = Duration::from_millis(200);
    let authn = TokenReviewAuthenticator::new(config).await.unwrap();
    authn.authenticate(jwt("d").as_bytes()).await.unwrap();
    let hits = server.hits();
    let e = authn.authenticate(jwt("e").as_bytes()).await.unwrap_err();
    // Refused without asking the API server, for a wait longer than the request timeout:
    // it did not queue for the slot (the wait is measured by the limiter, not by this test).
    assert_eq!(server.hits(), hits, "the request reached the API server");
    let Error::RateLimited { wait, timeout } = &e else {
        panic!("{e:?}");
    };
    assert!(wait > timeout, "{wait:?} {timeout:?}");
    assert_eq!(*timeout, Duration::from_millis(200));
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(
        e.to_string()
            .starts_with("TokenReview rate limit reached: the next request slot is "),
        "{e}"
    );
    assert!(
        e.to_string().ends_with(
            "ms away, beyond the 200ms request timeout; retry later or raise the QPS/burst limits"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn the_services_own_credentials_are_checked() {
    let server = FakeApiServer::start().await;
    let (config, dir) = server.config();
    // Refused by the API server: said with a hint.
    std::fs::write(dir.path().join("token"), "revoked").unwrap();
    let authn = TokenReviewAuthenticator::new(config.clone()).await.unwrap();
    let e = authn
        .authenticate(jwt("valid-token").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server answered the TokenReview with HTTP 401: Unauthorized; the \
         identity service's own credentials were refused: check its token file or kubeconfig \
         user"
    );
    // Not there: refused when the authenticator is built.
    std::fs::remove_file(dir.path().join("token")).unwrap();
    let e = TokenReviewAuthenticator::new(config).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ReadFile { what: "API client token file", path, .. }
                if path == &dir.path().join("token")
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn configuration_and_transport_errors() {
    let server = FakeApiServer::start().await;
    let (config, dir) = server.config();
    let token = dir.path().join("token");

    assert_eq!(
        TokenReviewConfig::new("http://127.0.0.1:6443", dir.path().join("ca.crt"), &token)
            .unwrap_err()
            .to_string(),
        "invalid API server URL \"http://127.0.0.1:6443\": must start with https://"
    );
    let mut bad = config.clone();
    bad.qps = 0.0;
    assert_eq!(
        TokenReviewAuthenticator::new(bad)
            .await
            .unwrap_err()
            .to_string(),
        "invalid TokenReview configuration: qps must be a positive number"
    );
    let e =
        TokenReviewConfig::new(server.url(), dir.path().join("missing.crt"), &token).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ReadFile {
                what: "API server CA file",
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{e:?}"
    );
    std::fs::write(dir.path().join("empty.crt"), "").unwrap();
    assert_eq!(
        TokenReviewConfig::new(server.url(), dir.path().join("empty.crt"), &token)
            .unwrap_err()
            .to_string(),
        format!(
            "invalid API server CA file {}: it holds no CERTIFICATE block",
            dir.path().join("empty.crt").display()
        )
    );

    // The server's certificate does not chain to this CA.
    let other = FakeApiServer::start().await;
    std::fs::write(dir.path().join("other.crt"), other.ca_pem()).unwrap();
    let wrong_ca =
        TokenReviewConfig::new(server.url(), dir.path().join("other.crt"), &token).unwrap();
    let e = TokenReviewAuthenticator::new(wrong_ca)
        .await
        .unwrap()
        .authenticate(jwt("valid-token").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Kubernetes API server at {}: ",
            server.url()
        )),
        "{msg}"
    );
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    assert_eq!(server.hits(), 0);

    // Something listens there, but hangs up on every connection.
    let hangs_up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hangs_up.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = hangs_up.accept().await {
            drop(tcp);
        }
    });
    let refused = TokenReviewConfig::new(
        &format!("https://{addr}/"),
        dir.path().join("ca.crt"),
        &token,
    )
    .unwrap();
    let e = TokenReviewAuthenticator::new(refused)
        .await
        .unwrap()
        .authenticate(jwt("valid-token").as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

/// A kubeconfig in the shape `kind`/`kubeadm` write: inline CA, inline client certificate.
fn kubeconfig_with_client_cert(server: &FakeApiServer, client: &ClientCertificate) -> String {
    let b64 = |s: &str| STANDARD.encode(s);
    format!(
        r#"apiVersion: v1
kind: Config
preferences: {{}}
current-context: kind-dev
clusters:
- name: kind-dev
  cluster:
    server: {url}
    certificate-authority-data: {ca}
- name: other
  cluster:
    server: https://other.example:6443
    certificate-authority-data: {ca}
contexts:
- name: kind-dev
  context:
    cluster: kind-dev
    user: kind-dev
- name: other
  context:
    cluster: other
    user: token-user
users:
- name: kind-dev
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
- name: token-user
  user:
    token: {CLIENT_TOKEN}
"#,
        url = server.url(),
        ca = b64(server.ca_pem()),
        cert = b64(&client.chain_pem),
        key = b64(&client.key_pem),
    )
}

#[tokio::test]
async fn kubeconfig_with_a_client_certificate_reviews_over_mutual_tls() {
    let (server, client) = FakeApiServer::start_with_client_certs().await;
    let dir = temp_dir();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig_with_client_cert(&server, &client)).unwrap();

    let config = TokenReviewConfig::from_kubeconfig(&path, None).unwrap();
    assert_eq!(config.api.api_server(), server.url());
    assert_eq!(config.api.credentials(), ApiCredentials::ClientCertificate);
    // Debug never shows the key.
    let debug = format!("{config:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    let authn = TokenReviewAuthenticator::new(config).await.unwrap();
    let authenticated = authn
        .authenticate(jwt("valid-token").as_bytes())
        .await
        .unwrap();
    assert_eq!(authenticated.service_account, web());
    // Authenticated by the certificate: no bearer token was sent.
    assert_eq!(server.requests()[0].authorization, "");

    // The other context: a token user, whose cluster is elsewhere.
    let other = TokenReviewConfig::from_kubeconfig(&path, Some("other")).unwrap();
    assert_eq!(other.api.api_server(), "https://other.example:6443");
    assert_eq!(other.api.credentials(), ApiCredentials::Token);
    assert!(!format!("{other:?}").contains(CLIENT_TOKEN));
}

#[tokio::test]
async fn kubeconfig_with_files_relative_to_its_folder_and_a_token_file() {
    let server = FakeApiServer::start().await;
    let dir = temp_dir();
    std::fs::create_dir_all(dir.path().join("pki")).unwrap();
    std::fs::write(dir.path().join("pki/ca.crt"), server.ca_pem()).unwrap();
    std::fs::write(dir.path().join("sa-token"), CLIENT_TOKEN).unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        format!(
            "current-context: dev\n\
             contexts: [{{name: dev, context: {{cluster: c, user: u}}}}]\n\
             clusters: [{{name: c, cluster: {{server: '{}', certificate-authority: pki/ca.crt}}}}]\n\
             users: [{{name: u, user: {{tokenFile: sa-token}}}}]\n",
            server.url()
        ),
    )
    .unwrap();

    let config = TokenReviewConfig::from_kubeconfig(&path, None).unwrap();
    assert_eq!(
        config.api.credentials(),
        ApiCredentials::TokenFile(dir.path().join("sa-token"))
    );
    assert_eq!(
        config.api.source,
        format!("kubeconfig {} (context dev)", path.display())
    );
    let authn = TokenReviewAuthenticator::new(config).await.unwrap();
    authn
        .authenticate(jwt("valid-token").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].authorization,
        format!("Bearer {CLIENT_TOKEN}")
    );
}

#[tokio::test]
async fn callers_with_one_token_share_one_review_and_cancelled_ones_leave_nothing() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let authn = Arc::new(TokenReviewAuthenticator::new(config).await.unwrap());

    // Eight callers with the same token while its review is in flight: one API call.
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let authn = Arc::clone(&authn);
        callers.spawn(async move { authn.authenticate(jwt("delayed").as_bytes()).await });
    }
    while let Some(answer) = callers.join_next().await {
        assert_eq!(answer.unwrap().unwrap().service_account, web());
    }
    assert_eq!(server.hits(), 1);
    assert_eq!(authn.reviews_in_flight(), 0);

    // A caller that gives up (its request was cancelled) leaves no review behind, and the
    // next caller with that token asks again.
    let slow = jwt("slow");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        authn.authenticate(slow.as_bytes()),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(authn.reviews_in_flight(), 0);
    // The next caller with that token starts a review of its own; aborted, it too leaves
    // nothing behind.
    let next = {
        let authn = Arc::clone(&authn);
        tokio::spawn(async move { authn.authenticate(slow.as_bytes()).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while authn.reviews_in_flight() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(authn.reviews_in_flight(), 1);
    next.abort();
    assert!(next.await.unwrap_err().is_cancelled());
    assert_eq!(authn.reviews_in_flight(), 0);
}
