//! Token authentication as users see it: the identity service started with `serve::start`,
//! certifying over gRPC, with TokenReview against the local API server double, offline with the
//! keys it publishes (OIDC discovery), or a JWKS file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::serve;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use meshid_authn::{JwtSigner, TokenParams};
use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_kube_testing::{Answer, ApiServerDouble, ClusterDouble, Request};
use meshid_policy::{KeyAlgorithm, Mesh, SanMode, ServiceAccount};
use meshid_server::dev::{DEV_TOKEN_ISSUER, DevState};
use meshid_server::serve::{Running, ServeConfig, TokenValidation};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
/// What a real API server answers for a token of another audience.
const WRONG_AUDIENCE: &str =
    r#"token audiences ["x"] is invalid for the target audiences ["identity.l5d.io"]"#;

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A fresh folder, removed when the returned value is dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshid-server-{name}-"))
        .tempdir()
        .unwrap()
}

/// A JWT-shaped token with `claims` (its signature is the API server's business).
fn jwt(claims: &Value) -> String {
    format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The `name` claim of a token made by [`jwt`], if it is one.
fn name_of(token: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims["name"].as_str().map(str::to_owned)
}

/// A token the API server double authenticates as emojivoto/web.
fn legit(n: usize) -> String {
    jwt(&json!({
        "name": format!("legit-{n}"),
        "aud": ["identity.l5d.io"],
        "exp": now().unix_timestamp() + 3600,
    }))
}

/// Answers TokenReviews like an API server: `legit-*` and `other-audience` (without
/// audiences) are emojivoto/web, anything else is not authenticated.
async fn review(req: Request) -> Answer {
    let review: Value = serde_json::from_slice(&req.body).unwrap();
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let audiences = review["spec"]["audiences"].clone();
    let web = json!({"username": "system:serviceaccount:emojivoto:web"});
    let status = match name_of(token).as_deref() {
        Some(name) if name.starts_with("legit-") => {
            json!({"authenticated": true, "user": web, "audiences": audiences})
        }
        Some("other-audience") if audiences.is_array() => {
            json!({"user": {}, "error": WRONG_AUDIENCE})
        }
        Some("other-audience") => json!({"authenticated": true, "user": web}),
        _ => json!({"authenticated": false, "user": {}}),
    };
    Answer::json(
        201,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
            .to_string(),
    )
}

/// A kubeconfig in `dir` reaching `api` with a bearer token.
fn kubeconfig_for(api: &ApiServerDouble, dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(dir.join("api-ca.crt"), api.ca_pem()).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "current-context: dev\n\
             contexts: [{{name: dev, context: {{cluster: c, user: identity}}}}]\n\
             clusters: [{{name: c, cluster: {{server: '{}', certificate-authority: api-ca.crt}}}}]\n\
             users: [{{name: identity, user: {{token: identity-token}}}}]\n",
            api.url()
        ),
    )
    .unwrap();
    kubeconfig
}

/// The development issuer and anchors, on ephemeral ports, validating tokens as `validation`.
fn config(dev: &DevState, validation: TokenValidation) -> ServeConfig {
    let mut config = ServeConfig::new(dev.issuer_folder(), Some(dev.trust_anchors()), validation);
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config
}

/// Raw Certify calls for emojivoto/web, with one CSR.
#[derive(Clone)]
struct Certifier {
    client: IdentityClient<Channel>,
    csr: Vec<u8>,
}

impl Certifier {
    async fn connect(running: &Running) -> Self {
        let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let sa = ServiceAccount::new("emojivoto", "web").unwrap();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let params = CsrParams::for_service_account(&Mesh::default(), &sa, SanMode::Dns).unwrap();
        Self {
            client: IdentityClient::new(channel),
            csr: Csr::build(&key, &params).unwrap().into_der(),
        }
    }

    /// The gRPC code and message of one Certify with `token`.
    async fn certify(&self, token: &str) -> (Code, String) {
        let request = CertifyRequest {
            identity: WEB.to_owned(),
            token: token.as_bytes().to_vec(),
            certificate_signing_request: self.csr.clone(),
        };
        match self.client.clone().certify(request).await {
            Ok(_) => (Code::Ok, String::new()),
            Err(status) => (status.code(), status.message().to_owned()),
        }
    }
}

/// The value of the metric line starting with `name` (labels included) on `/metrics`.
async fn metric(running: &Running, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(running.admin_addr)
        .await
        .unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_audience_is_refused_unless_the_fallback_is_on() {
    let dir = temp_dir("audience");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    let api = ApiServerDouble::builder().answer(review).start().await;
    let token = jwt(&json!({"name": "other-audience"}));

    let mut strict = config(&dev, TokenValidation::TokenReview);
    strict.kube_api.kubeconfig = Some(kubeconfig_for(&api, dir.path()));
    let (running, stop) = serve(strict.clone()).await;
    let certifier = Certifier::connect(&running).await;
    assert_eq!(
        certifier.certify(&token).await,
        (Code::InvalidArgument, WRONG_AUDIENCE.to_owned())
    );
    assert_eq!(api.hits(), 1, "no retry without audiences");
    // A token whose own aud gives it away never reaches the API server.
    let vault = jwt(&json!({"name": "legit-1", "aud": "vault"}));
    let (code, message) = certifier.certify(&vault).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.starts_with("token audiences [\"vault\"] do not include"),
        "{message}"
    );
    assert_eq!(api.hits(), 1);
    stop.send(()).unwrap();
    running.wait().await.unwrap();

    let mut fallback = strict;
    fallback.kube_api.audience_fallback = true;
    let (running, stop) = serve(fallback).await;
    let certifier = Certifier::connect(&running).await;
    assert_eq!(certifier.certify(&token).await, (Code::Ok, String::new()));
    assert_eq!(api.hits(), 3, "retried once without audiences");
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_tokens_do_not_starve_real_ones() {
    let dir = temp_dir("flood");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    let api = ApiServerDouble::builder().answer(review).start().await;
    let mut config = config(&dev, TokenValidation::TokenReview);
    config.kube_api.kubeconfig = Some(kubeconfig_for(&api, dir.path()));
    let (running, stop) = serve(config).await;
    let certifier = Certifier::connect(&running).await;

    // For 3 s: 1,000 distinct garbage tokens a second (not JWTs, expired JWTs, JWTs for
    // another audience), and a legitimate certify every 100 ms, each with a new token.
    const TICKS: usize = 300;
    let garbage_refused = Arc::new(AtomicUsize::new(0));
    let mut garbage = tokio::task::JoinSet::new();
    let mut legit_calls = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for t in 0..TICKS {
        tick.tick().await;
        for i in 0..10 {
            let n = t * 10 + i;
            let token = match n % 3 {
                0 => format!("garbage-{n}-{}", "x".repeat(n % 50)),
                1 => jwt(&json!({"name": format!("g{n}"), "exp": now().unix_timestamp() - 3600})),
                _ => jwt(
                    &json!({"name": format!("g{n}"), "aud": ["https://kubernetes.default.svc"]}),
                ),
            };
            let (certifier, refused) = (certifier.clone(), Arc::clone(&garbage_refused));
            garbage.spawn(async move {
                let (code, _) = certifier.certify(&token).await;
                if code == Code::InvalidArgument {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        if t % 10 == 0 {
            let certifier = certifier.clone();
            legit_calls.spawn(async move {
                let started = tokio::time::Instant::now();
                let answer = certifier.certify(&legit(t)).await;
                (answer, started.elapsed())
            });
        }
    }
    let mut latencies = Vec::new();
    while let Some(done) = legit_calls.join_next().await {
        let (answer, took) = done.unwrap();
        assert_eq!(answer, (Code::Ok, String::new()));
        latencies.push(took);
    }
    while garbage.join_next().await.is_some() {}
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    assert_eq!(latencies.len(), TICKS / 10);
    println!(
        "legitimate certifies under the flood: p50 {:?}, p99 {p99:?}",
        latencies[latencies.len() / 2]
    );
    assert!(
        p99 < Duration::from_secs(1),
        "legitimate certifies' p99 was {p99:?} ({latencies:?})"
    );
    assert_eq!(garbage_refused.load(Ordering::Relaxed), TICKS * 10);
    // Only the legitimate tokens cost a TokenReview.
    assert_eq!(api.hits(), TICKS / 10);
    assert_eq!(
        metric(&running, "identity_tokenreview_requests_total").await,
        (TICKS / 10) as f64
    );
    let refused_locally = metric(
        &running,
        "identity_tokenreview_local_refusals_total{reason=\"not_jwt\"}",
    )
    .await
        + metric(
            &running,
            "identity_tokenreview_local_refusals_total{reason=\"expired\"}",
        )
        .await
        + metric(
            &running,
            "identity_tokenreview_local_refusals_total{reason=\"audience\"}",
        )
        .await;
    assert_eq!(refused_locally, (TICKS * 10) as f64);

    // And the service still certifies.
    assert_eq!(
        certifier.certify(&legit(TICKS)).await,
        (Code::Ok, String::new())
    );
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_key_rotation_is_picked_up_without_restart() {
    let dir = temp_dir("jwks");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    // The cluster's JWKS, in a file of its own (as a mounted ConfigMap would be).
    let jwks_dir = dir.path().join("jwks");
    std::fs::create_dir_all(&jwks_dir).unwrap();
    let jwks = jwks_dir.join("jwks.json");
    let old = JwtSigner::generate(DEV_TOKEN_ISSUER).unwrap();
    let new = JwtSigner::generate(DEV_TOKEN_ISSUER).unwrap();
    std::fs::write(&jwks, old.jwks_json()).unwrap();
    let mut config = config(&dev, TokenValidation::Jwks(jwks.clone()));
    config.jwt_issuers = vec![DEV_TOKEN_ISSUER.to_owned()];
    let (running, stop) = serve(config).await;
    let certifier = Certifier::connect(&running).await;
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let token = |signer: &JwtSigner| signer.sign(&TokenParams::new(sa.clone(), now())).unwrap();

    assert_eq!(certifier.certify(&token(&old)).await.0, Code::Ok);
    let (code, message) = certifier.certify(&token(&new)).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("token key id"), "{message}");

    // The API server rotates its key; the file follows (written aside, renamed in).
    let replace = |content: String| {
        let aside = jwks_dir.join(".jwks.json.new");
        std::fs::write(&aside, content).unwrap();
        std::fs::rename(&aside, &jwks).unwrap();
    };
    replace(new.jwks_json());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while certifier.certify(&token(&new)).await.0 != Code::Ok {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        certifier.certify(&token(&old)).await.0,
        Code::InvalidArgument
    );
    assert_eq!(
        metric(&running, "identity_jwks_reloads_total{result=\"updated\"}").await,
        1.0
    );

    // A file that does not parse is refused: the key set in use stays, and it is counted.
    replace("{\"keys\": [".to_owned());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&running, "identity_jwks_reloads_total{result=\"invalid\"}").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broken file was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(certifier.certify(&token(&new)).await.0, Code::Ok);
    stop.send(()).unwrap();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_validates_offline_and_reviews_only_what_it_cannot_judge() {
    let dir = temp_dir("oidc");
    let dev = DevState::prepare(dir.path().join("dev"), now()).unwrap();
    let cluster = ClusterDouble::start().await;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig("identity-token")).unwrap();
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let token = || cluster.token(&TokenParams::new(sa.clone(), now()));

    for (validation, reviews) in [("oidc", 1), ("oidc-only", 0)] {
        let before = cluster.reviews();
        let mut config = config(&dev, validation.parse().unwrap());
        config.kube_api.kubeconfig = Some(kubeconfig.clone());
        let (running, stop) = serve(config).await;
        let certifier = Certifier::connect(&running).await;

        // A pod-start storm's worth of distinct tokens: all offline, no TokenReview.
        for _ in 0..20 {
            assert_eq!(certifier.certify(&token()).await, (Code::Ok, String::new()));
        }
        assert_eq!(cluster.reviews(), before, "{validation}");
        assert_eq!(
            metric(
                &running,
                "identity_token_validations_total{method=\"offline\"}"
            )
            .await,
            20.0
        );
        assert_eq!(
            metric(
                &running,
                "identity_oidc_key_refreshes_total{result=\"updated\"}"
            )
            .await,
            1.0
        );

        // A token signed by a key the cluster never published: reviewed when a fallback is
        // configured (and refused by the API server), refused offline otherwise.
        let stranger = JwtSigner::generate(cluster.issuer()).unwrap();
        let (code, message) = certifier
            .certify(&stranger.sign(&TokenParams::new(sa.clone(), now())).unwrap())
            .await;
        assert_eq!(code, Code::InvalidArgument, "{validation}: {message}");
        assert_eq!(cluster.reviews() - before, reviews, "{validation}");
        assert_eq!(
            metric(
                &running,
                "identity_token_validations_total{method=\"tokenreview\"}"
            )
            .await,
            reviews as f64
        );
        stop.send(()).unwrap();
        running.wait().await.unwrap();
    }
}
