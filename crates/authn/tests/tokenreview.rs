//! TokenReview against a local HTTPS endpoint that answers like the Kubernetes API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshid_authn::{
    ApiCredentials, ApiServerCa, Authenticator, Clock, Error, ErrorKind, InvalidToken,
    KubeApiConfig, ManualClock, TokenReviewAuthenticator, TokenReviewConfig,
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
        );
        (config, dir)
    }
}

/// Answers by the reviewed token, like an API server would.
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
    if !req.client_certificate
        && authorization != format!("Bearer {CLIENT_TOKEN}")
        && !authorization.ends_with("-rotated")
    {
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
    match token.as_str() {
        "not-authenticated" => reviewed(json!({"user": {}})),
        "expired-token" => reviewed(json!({
            "user": {},
            "error": "[invalid bearer token, service account token has expired]"})),
        // An API server that cannot review audiences: like old ones, it says so in error.
        "old-api-server" if audiences.is_some() => reviewed(json!({
            "user": {},
            "error": "[invalid bearer token, token audiences [\"https://kubernetes.default.svc\"] \
                      is invalid for the target audiences [\"identity.l5d.io\"]]"})),
        "old-api-server" => reviewed(json!({"authenticated": true, "user": user("web")})),
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
            json!({"kind": "Status", "message": "cannot review echoed", "code": 500}),
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

/// A JWT-shaped token whose payload says `exp` (the signature is the API server's business).
fn jwt_with_exp(exp: OffsetDateTime) -> String {
    let payload = URL_SAFE_NO_PAD.encode(json!({ "exp": exp.unix_timestamp() }).to_string());
    format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")
}

fn web() -> ServiceAccount {
    ServiceAccount::new("emojivoto", "web").unwrap()
}

#[tokio::test]
async fn authenticated_tokens_name_the_service_account_and_pod() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    let who = authn.authenticate(b"valid-token\n").await.unwrap();
    assert_eq!(who.service_account, web());
    assert_eq!(who.pod_name.as_deref(), Some("web-7d9c"));
    assert_eq!(
        who.pod_uid.as_deref(),
        Some("5f0c2b1e-0000-4000-8000-000000000002")
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].token, "valid-token");
    assert_eq!(seen[0].audiences, Some(vec!["identity.l5d.io".to_owned()]));
    assert_eq!(seen[0].authorization, format!("Bearer {CLIENT_TOKEN}"));
}

#[tokio::test]
async fn refusals_are_sorted_by_kind_with_exact_messages() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    let err = |token: &'static str| {
        let authn = &authn;
        async move { authn.authenticate(token.as_bytes()).await.unwrap_err() }
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
    assert!(
        e.to_string().starts_with(
            "the Kubernetes API server's TokenReview answer is not understood: not a TokenReview: "
        ),
        "{e}"
    );
    // Nothing negative was cached: every refusal reached the server.
    assert_eq!(server.hits(), 8);
    assert_eq!(authn.cached(), 0);
    err("expired-token").await;
    assert_eq!(server.hits(), 9);
}

#[tokio::test]
async fn token_audiences_errors_are_retried_without_audiences() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let authn = TokenReviewAuthenticator::new(config.clone()).unwrap();
    let who = authn.authenticate(b"old-api-server").await.unwrap();
    assert_eq!(who.service_account, web());
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].audiences, Some(vec!["identity.l5d.io".to_owned()]));
    assert_eq!(seen[1].audiences, None, "the retry asks for no audiences");

    // Without the retry the error is the API server's.
    let mut strict = config;
    strict.retry_without_audiences = false;
    let authn = TokenReviewAuthenticator::new(strict).unwrap();
    let e = authn.authenticate(b"old-api-server").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert!(e.to_string().contains("token audiences"), "{e}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = FakeApiServer::start().await;
    let (mut config, _dir) = server.config();
    config.api.timeout = Duration::from_millis(200);
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    let start = Instant::now();
    let e = authn.authenticate(b"slow").await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
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
    let authn = TokenReviewAuthenticator::with_clock(config, clock.clone()).unwrap();

    authn.authenticate(b"valid-token").await.unwrap();
    authn.authenticate(b"valid-token").await.unwrap();
    assert_eq!(server.hits(), 1, "the second call is served from the cache");
    clock.advance(Duration::from_secs(59));
    authn.authenticate(b"valid-token").await.unwrap();
    assert_eq!(server.hits(), 1);
    clock.advance(Duration::from_secs(1));
    authn.authenticate(b"valid-token").await.unwrap();
    assert_eq!(server.hits(), 2, "an entry expires after 60s");

    // A token expiring in 10s is cached for 10s only.
    let token = jwt_with_exp(clock.now() + Duration::from_secs(10));
    authn.authenticate(token.as_bytes()).await.unwrap();
    clock.advance(Duration::from_secs(9));
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 3);
    clock.advance(Duration::from_secs(1));
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(server.hits(), 4);

    // Negative results are not cached.
    for _ in 0..2 {
        authn.authenticate(b"not-authenticated").await.unwrap_err();
    }
    assert_eq!(server.hits(), 6);
    assert!(!format!("{authn:?}").contains("valid-token"));
}

#[tokio::test]
async fn calls_are_rate_limited() {
    let server = FakeApiServer::start().await;
    let (mut config, _dir) = server.config();
    config.qps = 10.0;
    config.burst = 1;
    let authn = TokenReviewAuthenticator::new(config.clone()).unwrap();
    let start = Instant::now();
    for token in ["a", "b", "c"] {
        authn.authenticate(token.as_bytes()).await.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");

    // A wait beyond the request timeout fails fast instead of queueing.
    config.qps = 1.0;
    config.api.timeout = Duration::from_millis(200);
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    authn.authenticate(b"d").await.unwrap();
    let hits = server.hits();
    let e = authn.authenticate(b"e").await.unwrap_err();
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
async fn the_client_token_is_reread_on_every_request() {
    let server = FakeApiServer::start().await;
    let (config, dir) = server.config();
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    authn.authenticate(b"one").await.unwrap();
    std::fs::write(dir.path().join("token"), "kubelet-rotated\n").unwrap();
    authn.authenticate(b"two").await.unwrap();
    let seen = server.requests();
    assert_eq!(seen[1].authorization, "Bearer kubelet-rotated");

    std::fs::write(dir.path().join("token"), "revoked").unwrap();
    let e = authn.authenticate(b"three").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "the Kubernetes API server answered the TokenReview with HTTP 401: Unauthorized; the \
         identity service's own credentials were refused: check its token file or kubeconfig \
         user"
    );
    std::fs::remove_file(dir.path().join("token")).unwrap();
    let e = authn.authenticate(b"four").await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::ReadFile {
                what: "API client token file",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn in_cluster_configuration() {
    let server = FakeApiServer::start().await;
    let (_, dir) = server.config();
    let port = server.url().rsplit_once(':').unwrap().1.to_owned();
    let env = |name: &str| match name {
        "KUBERNETES_SERVICE_HOST" => Some("127.0.0.1".to_owned()),
        "KUBERNETES_SERVICE_PORT" => Some(port.clone()),
        _ => None,
    };
    let config = TokenReviewConfig::in_cluster_with(env, dir.path()).unwrap();
    assert_eq!(config.api.api_server, server.url());
    assert_eq!(
        config.api.credentials,
        ApiCredentials::TokenFile(dir.path().join("token"))
    );
    assert_eq!(config.api.ca, ApiServerCa::File(dir.path().join("ca.crt")));
    // The same API access, shared (e.g. with Kubernetes Events), gives the same configuration.
    let api = KubeApiConfig::in_cluster_with(env, dir.path()).unwrap();
    assert_eq!(TokenReviewConfig::with_api(api), config);
    // Without KUBECONFIG or ~/.kube/config, discovery finds the same in-cluster configuration.
    assert_eq!(
        TokenReviewConfig::discover_with(env, dir.path(), None).unwrap(),
        config
    );
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    authn.authenticate(b"valid-token").await.unwrap();

    let config = TokenReviewConfig::in_cluster_with(
        |n| match n {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".into()),
            _ => Some("443".into()),
        },
        dir.path(),
    )
    .unwrap();
    assert_eq!(config.api.api_server, "https://[fd00::1]:443");
    assert_eq!(
        TokenReviewConfig::in_cluster_with(|_| None, dir.path())
            .unwrap_err()
            .to_string(),
        "invalid in-cluster configuration: KUBERNETES_SERVICE_HOST is not set, so this is not \
         running in a Kubernetes pod; outside a pod, use a kubeconfig file or give the API \
         server URL, CA file and token file explicitly"
    );
}

#[tokio::test]
async fn configuration_and_transport_errors() {
    let server = FakeApiServer::start().await;
    let (config, dir) = server.config();

    let mut bad = config.clone();
    bad.api.api_server = "http://127.0.0.1:6443".into();
    assert_eq!(
        TokenReviewAuthenticator::new(bad).unwrap_err().to_string(),
        "invalid API server URL \"http://127.0.0.1:6443\": must start with https://"
    );
    let mut bad = config.clone();
    bad.qps = 0.0;
    assert_eq!(
        TokenReviewAuthenticator::new(bad).unwrap_err().to_string(),
        "invalid TokenReview configuration: qps must be a positive number"
    );
    let mut bad = config.clone();
    bad.api.ca = ApiServerCa::File(dir.path().join("missing.crt"));
    let e = TokenReviewAuthenticator::new(bad).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ReadFile {
                what: "API server CA file",
                ..
            }
        ),
        "{e:?}"
    );
    std::fs::write(dir.path().join("empty.crt"), "").unwrap();
    let mut bad = config.clone();
    bad.api.ca = ApiServerCa::File(dir.path().join("empty.crt"));
    assert_eq!(
        TokenReviewAuthenticator::new(bad).unwrap_err().to_string(),
        format!(
            "invalid API server CA file {}: it holds no CERTIFICATE block",
            dir.path().join("empty.crt").display()
        )
    );

    // The server's certificate does not chain to this CA.
    let other = FakeApiServer::start().await;
    std::fs::write(dir.path().join("other.crt"), other.ca_pem()).unwrap();
    let mut wrong_ca = config.clone();
    wrong_ca.api.ca = ApiServerCa::File(dir.path().join("other.crt"));
    let e = TokenReviewAuthenticator::new(wrong_ca)
        .unwrap()
        .authenticate(b"valid-token")
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

    // Nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut refused = config;
    refused.api.api_server = format!("https://{addr}/");
    let e = TokenReviewAuthenticator::new(refused)
        .unwrap()
        .authenticate(b"valid-token")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

/// A kubeconfig in the shape `kind`/`kubeadm` write: inline CA, inline client certificate.
fn kubeconfig_with_client_cert(server: &FakeApiServer, client: &ClientCertificate) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
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
    assert_eq!(config.api.api_server, server.url());
    assert_eq!(
        config.api.ca,
        ApiServerCa::Pem(server.ca_pem().as_bytes().to_vec())
    );
    assert!(matches!(
        config.api.credentials,
        ApiCredentials::ClientCertificate { .. }
    ));
    // Debug never shows the key.
    let debug = format!("{config:?}");
    assert!(debug.contains("key_pem: <redacted>"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    let authn = TokenReviewAuthenticator::new(config).unwrap();
    let authenticated = authn.authenticate(b"valid-token").await.unwrap();
    assert_eq!(authenticated.service_account, web());
    // Authenticated by the certificate: no bearer token was sent.
    assert_eq!(server.requests()[0].authorization, "");

    // The other context: a token user, whose cluster is elsewhere.
    let other = TokenReviewConfig::from_kubeconfig(&path, Some("other")).unwrap();
    assert_eq!(other.api.api_server, "https://other.example:6443");
    assert_eq!(
        other.api.credentials,
        ApiCredentials::Token(zeroize::Zeroizing::new(CLIENT_TOKEN.to_owned()))
    );
    assert_eq!(format!("{:?}", other.api.credentials), "Token(<redacted>)");
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
        config.api.ca,
        ApiServerCa::File(dir.path().join("pki/ca.crt"))
    );
    assert_eq!(
        config.api.credentials,
        ApiCredentials::TokenFile(dir.path().join("sa-token"))
    );
    let authn = TokenReviewAuthenticator::new(config).unwrap();
    authn.authenticate(b"valid-token").await.unwrap();
    assert_eq!(
        server.requests()[0].authorization,
        format!("Bearer {CLIENT_TOKEN}")
    );
    // Re-read on every request, like the in-cluster token.
    std::fs::write(dir.path().join("sa-token"), "kubelet-rotated").unwrap();
    authn.authenticate(b"another-token").await.unwrap();
    assert_eq!(server.requests()[1].authorization, "Bearer kubelet-rotated");
}

#[test]
fn kubeconfig_refusals_say_what_to_change() {
    let base = std::path::Path::new("/etc/meshid");
    let config = |clusters: &str, users: &str| {
        format!(
            "current-context: dev\n\
             contexts: [{{name: dev, context: {{cluster: c, user: u}}}}]\n\
             clusters: [{{name: c, cluster: {clusters}}}]\n\
             users: [{{name: u, user: {users}}}]\n"
        )
    };
    let ok_cluster = "{server: 'https://10.0.0.1:6443', certificate-authority: ca.crt}";
    let refused = |text: &str, context: Option<&str>| {
        TokenReviewConfig::from_kubeconfig_str(text, base, context)
            .unwrap_err()
            .to_string()
    };
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (
            "clusters: [".to_owned(),
            None,
            "invalid kubeconfig: not YAML: ",
        ),
        ("".to_owned(), None, "invalid kubeconfig: it is empty"),
        (
            "- a\n- b\n".to_owned(),
            None,
            "invalid kubeconfig: it is not a YAML mapping",
        ),
        (
            "contexts: []\n".to_owned(),
            None,
            "invalid kubeconfig: it has no current-context; name a context",
        ),
        (
            config(ok_cluster, "{token: abc}"),
            Some("prod"),
            "invalid kubeconfig: no context named \"prod\" (it has: dev)",
        ),
        (
            config(
                "{server: 'https://h:6443', certificate-authority: ca.crt, insecure-skip-tls-verify: true}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig: cluster c sets insecure-skip-tls-verify: the API server's \
             certificate is always verified; give its CA (certificate-authority or \
             certificate-authority-data)",
        ),
        (
            config(
                "{server: 'https://h:6443', certificate-authority: ca.crt, proxy-url: 'http://proxy:3128'}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig: cluster c sets proxy-url, which is not supported; connect to \
             the API server by a name its certificate holds, without a proxy",
        ),
        (
            config(
                "{server: 'http://h:8080', certificate-authority: ca.crt}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig: cluster c has server \"http://h:8080\": the Kubernetes API client \
             speaks https only",
        ),
        (
            config("{server: 'https://h:6443'}", "{token: abc}"),
            None,
            "invalid kubeconfig: cluster c has neither certificate-authority nor \
             certificate-authority-data; the API server's certificate is always verified \
             against a CA given here",
        ),
        (
            config(
                "{server: 'https://h:6443', certificate-authority-data: '%%%'}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig: cluster c certificate-authority-data is not base64: ",
        ),
        (
            config(
                ok_cluster,
                "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: aws}}",
            ),
            None,
            "invalid kubeconfig: user u exec has apiVersion \"client.authentication.k8s.io/v1alpha1\"; \
             supported: client.authentication.k8s.io/v1, client.authentication.k8s.io/v1beta1",
        ),
        (
            config(
                ok_cluster,
                "{token: abc, exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}",
            ),
            None,
            "invalid kubeconfig: user u sets both exec and token; keep one way to authenticate",
        ),
        (
            config(
                ok_cluster,
                "{exec: {apiVersion: client.authentication.k8s.io/v1, command: kubelogin, \
                 interactiveMode: Always}}",
            ),
            None,
            "invalid kubeconfig: user u exec has interactiveMode Always: the plugin needs a \
             terminal, and this client runs it without one; log in first, or use a plugin that \
             can run unattended",
        ),
        (
            config(ok_cluster, "{auth-provider: {name: gcp}}"),
            None,
            "invalid kubeconfig: user u uses an auth-provider plugin, which kubectl itself has \
             removed; use an exec credential plugin",
        ),
        (
            config(ok_cluster, "{username: admin, password: secret}"),
            None,
            "invalid kubeconfig: user u uses basic authentication, which Kubernetes no longer \
             supports; use a token, tokenFile or client certificate",
        ),
        (
            config(ok_cluster, "{client-certificate-data: 'YQ=='}"),
            None,
            "invalid kubeconfig: user u has a client certificate but no client key",
        ),
        (
            config(ok_cluster, "{}"),
            None,
            "invalid kubeconfig: user u has no credentials this client can use \
             (client-certificate + client-key, token or tokenFile)",
        ),
        (
            config(ok_cluster, "{token: ''}"),
            None,
            "invalid kubeconfig: user u has an empty token",
        ),
        (
            "current-context: dev\ncontexts: [{name: dev, context: {cluster: c, user: u}}]\n"
                .to_owned(),
            None,
            "invalid kubeconfig: no cluster named \"c\" (it has: none)",
        ),
        (
            config(
                "{server: 6443, certificate-authority: ca.crt}",
                "{token: abc}",
            ),
            None,
            "invalid kubeconfig: cluster c: server is not a string",
        ),
    ];
    for (text, context, expected) in &cases {
        let message = refused(text, *context);
        assert!(
            message.starts_with(expected),
            "for {text:?}:\n  got      {message}\n  expected {expected}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    // A client key file that cannot be read names the file.
    let text = config(
        ok_cluster,
        "{client-certificate-data: 'YQ==', client-key: missing.key}",
    );
    let e = TokenReviewConfig::from_kubeconfig_str(&text, base, None).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ReadFile { what: "kubeconfig client key file", path, .. }
                if path == &base.join("missing.key")
        ),
        "{e:?}"
    );
    // A missing kubeconfig file too.
    let e = TokenReviewConfig::from_kubeconfig(&base.join("nope"), None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ReadFile {
                what: "kubeconfig",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn callers_with_one_token_share_one_review_and_cancelled_ones_leave_nothing() {
    let server = FakeApiServer::start().await;
    let (config, _dir) = server.config();
    let authn = Arc::new(TokenReviewAuthenticator::new(config).unwrap());

    // Eight callers with the same token while its review is in flight: one API call.
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let authn = Arc::clone(&authn);
        callers.spawn(async move { authn.authenticate(b"delayed").await });
    }
    while let Some(answer) = callers.join_next().await {
        assert_eq!(answer.unwrap().unwrap().service_account, web());
    }
    assert_eq!(server.hits(), 1);
    assert_eq!(authn.reviews_in_flight(), 0);

    // A caller that gives up (its request was cancelled) leaves no review behind, and the
    // next caller with that token asks again.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), authn.authenticate(b"slow")).await;
    assert!(gave_up.is_err());
    assert_eq!(authn.reviews_in_flight(), 0);
    // The next caller with that token starts a review of its own; aborted, it too leaves
    // nothing behind.
    let next = {
        let authn = Arc::clone(&authn);
        tokio::spawn(async move { authn.authenticate(b"slow").await })
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
