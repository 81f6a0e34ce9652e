//! Offline validation with the keys a cluster publishes (service-account issuer discovery),
//! against an API server double that publishes, rotates and signs with them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshid_authn::{
    Authenticator, DiscoveryProblem, Error, ErrorKind, InvalidToken, JwtSigner, KeysRefresh,
    KubeApiConfig, ManualClock, Metrics, OidcAuthenticator, OidcConfig, PodRef, TokenParams,
    TokenReviewAuthenticator, TokenReviewConfig,
};
use meshid_kube_testing::ClusterDouble;
use meshid_policy::ServiceAccount;
use serde_json::{Value, json};
use time::OffsetDateTime;

const RSA_PEM: &str = include_str!("data/rsa-2048.pk8.pem");

/// The clock of a test: now, to the second (the double reviews on the system clock).
#[allow(clippy::disallowed_methods)]
fn clock() -> Arc<ManualClock> {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    Arc::new(ManualClock::new(now))
}

fn now(clock: &ManualClock) -> OffsetDateTime {
    meshid_authn::Clock::now(clock)
}

fn params(clock: &ManualClock) -> TokenParams {
    let mut params = TokenParams::new(ServiceAccount::new("emojivoto", "web").unwrap(), now(clock));
    params.service_account_uid = Some("0b1c2d3e-sa".to_owned());
    params.pod = Some(PodRef::new("web-7d9c", "5f0c2b1e-pod"));
    params
}

fn api(cluster: &ClusterDouble) -> KubeApiConfig {
    KubeApiConfig::from_kubeconfig_str(&cluster.kubeconfig("identity-sa-token"), None).unwrap()
}

struct Setup {
    authn: OidcAuthenticator<Arc<ManualClock>>,
    metrics: Metrics,
}

async fn oidc(cluster: &ClusterDouble, clock: &Arc<ManualClock>, fallback: bool) -> Setup {
    let metrics = Metrics::default();
    let review = if fallback {
        let review = TokenReviewConfig::with_api(api(cluster));
        Some(
            TokenReviewAuthenticator::with_clock(review, Arc::clone(clock))
                .await
                .unwrap()
                .with_metrics(metrics.clone()),
        )
    } else {
        None
    };
    let authn =
        OidcAuthenticator::with_clock(OidcConfig::new(api(cluster)), review, Arc::clone(clock))
            .await
            .unwrap()
            .with_metrics(metrics.clone());
    authn.refresh_now().await;
    Setup { authn, metrics }
}

/// `token` with its payload replaced by `edit(payload)` (the signature no longer matches).
fn tampered(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut payload);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    )
}

/// `token` with its header replaced and its signature made by `sign` over the new input.
fn resigned(token: &str, header: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn validates_es256_and_rs256_tokens_offline_with_the_claims() {
    for rsa in [false, true] {
        let builder = ClusterDouble::builder();
        let cluster = if rsa {
            builder.signing_key_pem(RSA_PEM)
        } else {
            builder
        }
        .start()
        .await;
        let clock = clock();
        let Setup { authn, metrics } = oidc(&cluster, &clock, true).await;
        assert_eq!(authn.issuer().as_deref(), Some(cluster.issuer().as_str()));

        let token = cluster.token(&params(&clock));
        let alg = if rsa { "RS256" } else { "ES256" };
        assert!(
            String::from_utf8(
                URL_SAFE_NO_PAD
                    .decode(token.split('.').next().unwrap())
                    .unwrap()
            )
            .unwrap()
            .contains(alg)
        );
        let who = authn.authenticate(token.as_bytes()).await.unwrap();
        assert_eq!(
            who.service_account.username(),
            "system:serviceaccount:emojivoto:web"
        );
        assert_eq!(who.service_account_uid.as_deref(), Some("0b1c2d3e-sa"));
        assert_eq!(who.pod_name.as_deref(), Some("web-7d9c"));
        assert_eq!(who.pod_uid.as_deref(), Some("5f0c2b1e-pod"));

        // Offline: no TokenReview, one fetch of discovery and keys.
        assert_eq!(cluster.reviews(), 0, "{alg}");
        assert_eq!(metrics.tokens_judged("offline"), 1);
        assert_eq!(metrics.tokens_judged("tokenreview"), 0);
        assert_eq!(metrics.reviews_sent(), 0);
        assert_eq!(
            (cluster.discovery_requests(), cluster.jwks_requests()),
            (1, 1)
        );
    }
}

#[tokio::test]
async fn refuses_bad_tokens_offline_without_a_review() {
    let cluster = ClusterDouble::start().await;
    let clock = clock();
    let Setup { authn, metrics } = oidc(&cluster, &clock, true).await;
    let now = now(&clock);
    let good = cluster.token(&params(&clock));

    // A second key of the cluster's, published, to forge with.
    let forger = JwtSigner::generate("https://attacker.example").unwrap();
    let forger_pem = forger.private_key_pem();
    cluster.rotate_to(forger);
    authn.refresh_now().await;
    let wrong_issuer = JwtSigner::from_pem("https://attacker.example", &forger_pem)
        .unwrap()
        .sign(&params(&clock))
        .unwrap();

    let mut other_audience = params(&clock);
    other_audience.audiences = vec!["https://kubernetes.default.svc.cluster.local".to_owned()];
    let mut expired = params(&clock);
    expired.issued_at = now - Duration::from_secs(2 * 3600);
    expired.lifetime = Duration::from_secs(3600);
    let mut future = params(&clock);
    future.issued_at = now + Duration::from_secs(3600);

    let kid = cluster.signing_kid();
    let none = resigned(&good, &json!({"alg": "none", "kid": kid}), |_| Vec::new());
    // HS256 keyed with the public key: the classic confusion of an RS/ES verifier.
    let public = cluster.jwks_json();
    let hs256 = resigned(&good, &json!({"alg": "HS256", "kid": kid}), |input| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes());
        ring::hmac::sign(&key, input).as_ref().to_vec()
    });

    let cases: Vec<(&str, String, String)> = vec![
        (
            "wrong audience",
            cluster.token(&other_audience),
            r#"token audiences ["https://kubernetes.default.svc.cluster.local"] do not include "identity.l5d.io"; mount a projected ServiceAccount token with audience "identity.l5d.io""#.to_owned(),
        ),
        (
            "expired",
            cluster.token(&expired),
            format!(
                "token expired at {} (now is {}, clock-skew allowance 20s); the workload must re-read its rotated token",
                meshid_policy::rfc3339(now - Duration::from_secs(3600)),
                meshid_policy::rfc3339(now)
            ),
        ),
        (
            "not yet valid",
            cluster.token(&future),
            format!(
                "token is not valid before {} (now is {}, after the clock-skew allowance); check the clocks",
                meshid_policy::rfc3339(now + Duration::from_secs(3600)),
                meshid_policy::rfc3339(now)
            ),
        ),
        (
            "wrong issuer",
            wrong_issuer,
            r#"token issuer "https://attacker.example" is not accepted (accepted: ["https://kubernetes.default.svc.cluster.local"]); if it is the cluster's service-account issuer (its OIDC URL on EKS, GKE or AKS), accept it with the identity service's --token-issuer"#.to_owned(),
        ),
        (
            "tampered",
            tampered(&good, |p| p["sub"] = json!("system:serviceaccount:kube-system:admin")),
            "token signature does not verify with the 1 candidate key(s) of the JWKS; the JWKS may be stale (reload it from the API server's /openid/v1/jwks)".to_owned(),
        ),
        (
            "alg none",
            none,
            r#"token is unsigned (alg "none"); unsigned tokens are refused"#.to_owned(),
        ),
        (
            // A JWS with a bad header is judged offline (not handed to the review).
            "typ not JWT",
            resigned(&good, &json!({"alg": "ES256", "kid": kid, "typ": "JOSE"}), |_| vec![1]),
            r#"token is malformed: the header's "typ" is not "JWT""#.to_owned(),
        ),
        (
            "HS256 with the public key",
            hs256,
            r#"token algorithm "HS256" is not supported; only ES256 and RS256 are accepted"#.to_owned(),
        ),
    ];
    let count = cases.len() as u64;
    for (what, token, message) in cases {
        let e = authn.authenticate(token.as_bytes()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidToken, "{what}: {e}");
        assert_eq!(e.to_string(), message, "{what}");
    }
    assert_eq!(cluster.reviews(), 0, "every refusal is final offline");
    assert_eq!(metrics.tokens_judged("offline"), count);
    assert_eq!(metrics.tokens_judged("tokenreview"), 0);

    // And the good token still passes.
    authn.authenticate(good.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_fetched_by_its_kid_at_most_once_per_ten_seconds() {
    let cluster = ClusterDouble::start().await;
    let clock = clock();
    let Setup { authn, metrics } = oidc(&cluster, &clock, false).await;
    let old_kid = cluster.signing_kid();
    let old = cluster.token(&params(&clock));
    assert_eq!(metrics.oidc_refreshes("updated"), 1);

    // The cluster rotates: new tokens name a kid the validator has not seen. Within 10 s of
    // the first fetch nothing is fetched again; after that, the unknown kid prompts a fetch.
    let new_kid = cluster.rotate();
    let token = cluster.token(&params(&clock));
    let e = authn.authenticate(token.as_bytes()).await.unwrap_err();
    assert_eq!(
        e,
        Error::InvalidToken(InvalidToken::UnknownKey {
            kid: new_kid.clone()
        })
    );
    assert_eq!(cluster.jwks_requests(), 1);
    clock.advance(Duration::from_secs(10));
    let token = cluster.token(&params(&clock));
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(
        cluster.jwks_requests(),
        2,
        "the unknown kid prompted a fetch"
    );
    assert_eq!(metrics.oidc_refreshes("updated"), 2);
    assert_eq!(
        authn.kids(),
        vec![Some(old_kid.clone()), Some(new_kid.clone())]
    );

    // Another rotation right after: the next fetch may come only 10 s after the last one.
    let newer_kid = cluster.rotate();
    let newer = cluster.token(&params(&clock));
    let e = authn.authenticate(newer.as_bytes()).await.unwrap_err();
    assert_eq!(
        e,
        Error::InvalidToken(InvalidToken::UnknownKey {
            kid: newer_kid.clone()
        })
    );
    assert_eq!(cluster.jwks_requests(), 2, "no second fetch within 10 s");
    clock.advance(Duration::from_secs(9));
    authn.authenticate(newer.as_bytes()).await.unwrap_err();
    assert_eq!(cluster.jwks_requests(), 2);
    clock.advance(Duration::from_secs(1));
    authn.authenticate(newer.as_bytes()).await.unwrap();
    assert_eq!(cluster.jwks_requests(), 3);

    // The old key is retired: after a refresh its tokens no longer validate.
    cluster.retire(&old_kid);
    assert_eq!(authn.refresh_now().await, KeysRefresh::Updated);
    assert!(!authn.kids().contains(&Some(old_kid.clone())));
    assert_eq!(authn.refresh_now().await, KeysRefresh::Unchanged);
    assert_eq!(metrics.oidc_refreshes("unchanged"), 1);
    let e = authn.authenticate(old.as_bytes()).await.unwrap_err();
    assert_eq!(
        e,
        Error::InvalidToken(InvalidToken::UnknownKey { kid: old_kid })
    );
}

#[tokio::test]
async fn what_it_cannot_judge_goes_to_tokenreview_when_there_is_one() {
    let cluster = ClusterDouble::start().await;
    let clock = clock();

    // A key the cluster signs with but has not published yet (e.g. discovery lags): the
    // offline validator cannot judge it; the API server can.
    let signer = JwtSigner::generate(cluster.issuer()).unwrap();
    let unpublished_pem = signer.private_key_pem();
    let unpublished = JwtSigner::from_pem(cluster.issuer(), &unpublished_pem)
        .unwrap()
        .sign(&params(&clock))
        .unwrap();

    let Setup { authn, metrics } = oidc(&cluster, &clock, true).await;
    let e = authn
        .authenticate(unpublished.as_bytes())
        .await
        .unwrap_err();
    // Reviewed (refused by the API server, which does not know the key either).
    assert_eq!(e.kind(), ErrorKind::InvalidToken, "{e}");
    assert!(e.to_string().contains("invalid bearer token"), "{e}");
    assert_eq!(cluster.reviews(), 1);
    assert_eq!(metrics.tokens_judged("tokenreview"), 1);
    assert_eq!(
        cluster.jwks_requests(),
        1,
        "no refresh within 10 s of the first fetch"
    );

    // Once the cluster publishes it, the next fetch (10 s after the last) picks it up: offline.
    cluster.rotate_to(JwtSigner::from_pem(cluster.issuer(), &unpublished_pem).unwrap());
    clock.advance(Duration::from_secs(10));
    let who = authn.authenticate(unpublished.as_bytes()).await.unwrap();
    assert_eq!(who.pod_name.as_deref(), Some("web-7d9c"));
    assert_eq!(cluster.reviews(), 1);
    assert_eq!(metrics.tokens_judged("offline"), 1);

    // Not a JWT: handed to the review, whose own local check refuses it before the API server.
    let e = authn.authenticate(b"not-a-jwt").await.unwrap_err();
    assert_eq!(metrics.tokens_judged("tokenreview"), 2);
    assert_eq!(cluster.reviews(), 1, "refused before the API server");
    assert_eq!(e.kind(), ErrorKind::InvalidToken);

    // Without a fallback the same tokens are refused offline, with the reason.
    let no_fallback = oidc(&cluster, &clock, false).await;
    let other = JwtSigner::generate(cluster.issuer()).unwrap();
    let never_published = other.sign(&params(&clock)).unwrap();
    let e = no_fallback
        .authn
        .authenticate(never_published.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "token key id {:?} is not in the JWKS; the JWKS may be stale (reload it from the API server's /openid/v1/jwks)",
            other.kid()
        )
    );
    let e = no_fallback
        .authn
        .authenticate(b"not-a-jwt")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "token is malformed: a signed JWT has three dot-separated parts (header.payload.signature), not 1"
    );
    assert_eq!(cluster.reviews(), 1);
}

#[tokio::test]
async fn discovery_down_at_start_is_a_clear_error_until_it_answers() {
    let cluster = ClusterDouble::builder().discovery_down().start().await;
    let clock = clock();
    let Setup { authn, metrics } = oidc(&cluster, &clock, false).await;
    assert_eq!(metrics.oidc_refreshes("failed"), 1);
    assert_eq!(authn.kids(), Vec::<Option<String>>::new());
    let token = cluster.token(&params(&clock));

    let e = authn.authenticate(token.as_bytes()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    let Error::KeysUnavailable {
        last_error: Some(last),
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(
        **last,
        Error::Discovery {
            problem: DiscoveryProblem::Status {
                path: "/.well-known/openid-configuration",
                status: 503,
                message: "the API server is starting".to_owned(),
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "the cluster's service-account token keys are not available (the API server's \
         service-account issuer discovery failed: GET /.well-known/openid-configuration \
         answered HTTP 503: the API server is starting); tokens cannot be validated offline \
         until OIDC discovery answers, and no TokenReview fallback is configured"
    );

    // It comes back: the next token after the 10 s pause fetches the keys and passes.
    cluster.set_discovery_up(true);
    authn.authenticate(token.as_bytes()).await.unwrap_err();
    assert_eq!(
        cluster.discovery_requests(),
        1,
        "no fetch within 10 s of the last"
    );
    clock.advance(Duration::from_secs(10));
    authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(authn.last_refresh_error().await, None);
    assert_eq!(metrics.tokens_judged("offline"), 1);
}

#[tokio::test]
async fn discovery_down_at_start_falls_back_to_tokenreview_and_recovers_in_the_background() {
    let cluster = ClusterDouble::builder().discovery_down().start().await;
    let clock = clock();
    let mut config = OidcConfig::new(api(&cluster));
    config.refresh_interval = Duration::from_millis(200);
    config.min_refresh_interval = Duration::from_millis(50);
    let review = TokenReviewAuthenticator::with_clock(
        TokenReviewConfig::with_api(api(&cluster)),
        Arc::clone(&clock),
    )
    .await
    .unwrap();
    let authn = Arc::new(
        OidcAuthenticator::with_clock(config, Some(review), Arc::clone(&clock))
            .await
            .unwrap(),
    );
    let token = cluster.token(&params(&clock));
    let who = authn.authenticate(token.as_bytes()).await.unwrap();
    assert_eq!(cluster.reviews(), 1, "reviewed while the keys are missing");
    assert_eq!(who.service_account_uid.as_deref(), Some("0b1c2d3e-sa"));
    assert_eq!(who.pod_uid.as_deref(), Some("5f0c2b1e-pod"));

    // The refresh loop retries every min_refresh_interval while fetching fails.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = Arc::clone(&authn);
    let task = tokio::spawn(async move {
        runner
            .run(async {
                stopped.await.ok();
            })
            .await;
    });
    cluster.set_discovery_up(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while authn.kids().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the keys never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let another = {
        let mut p = params(&clock);
        p.pod = Some(PodRef::new("web-2", "uid-2"));
        cluster.token(&p)
    };
    let reviews = cluster.reviews();
    authn.authenticate(another.as_bytes()).await.unwrap();
    assert_eq!(
        cluster.reviews(),
        reviews,
        "validated offline once the keys are in"
    );

    // A rotation is picked up by the periodic refresh alone.
    let kid = cluster.rotate();
    while !authn.kids().contains(&Some(kid.clone())) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotation was never fetched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn refuses_an_unusable_configuration() {
    let cluster = ClusterDouble::start().await;
    let mut config = OidcConfig::new(api(&cluster));
    config.min_refresh_interval = Duration::ZERO;
    let e = OidcAuthenticator::new(config, None).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid OIDC token validation: the minimum refresh interval must be positive and at \
         most the refresh interval"
    );
    let mut config = OidcConfig::new(api(&cluster));
    config.audience = String::new();
    let e = OidcAuthenticator::new(config, None).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid OIDC token validation: the audience must not be empty"
    );
    assert_eq!(cluster.discovery_requests(), 0);
}
