//! Offline JWKS validation and the development token issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshid_authn::{
    Authenticator, Error, ErrorKind, InvalidToken, Jwks, JwksAuthenticator, JwksReload,
    JwksReloader, JwtConfig, JwtSigner, ManualClock, Metrics, PodRef, TokenParams,
};
use meshid_policy::ServiceAccount;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const RSA_PEM: &str = include_str!("data/rsa-2048.pk8.pem");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Keys that sign arbitrary headers and claims, and the JWKS that holds them.
struct Keys {
    ec: EcdsaKeyPair,
    rsa: RsaKeyPair,
    jwks: Value,
}

impl Keys {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let signer = JwtSigner::from_pkcs8_der(ISSUER, pkcs8.as_ref()).unwrap();
        let mut ec_jwk = signer.jwk();
        ec_jwk["kid"] = json!("ec-1");
        let rsa_der = pem::parse(RSA_PEM).unwrap();
        let rsa = RsaKeyPair::from_pkcs8(rsa_der.contents()).unwrap();
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
        let rsa_jwk = json!({"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
                             "n": b64(&public.n), "e": b64(&public.e)});
        Self {
            ec,
            rsa,
            jwks: json!({ "keys": [ec_jwk, rsa_jwk] }),
        }
    }

    fn authenticator(&self) -> JwksAuthenticator<ManualClock> {
        let jwks = Jwks::from_json(self.jwks.to_string().as_bytes()).unwrap();
        JwksAuthenticator::with_clock(jwks, JwtConfig::new(ISSUER), ManualClock::new(NOW)).unwrap()
    }

    /// Signs with the key the header's `alg` names (ES256 → EC, RS256 → RSA, else unsigned).
    fn token(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match header["alg"].as_str() {
            Some("ES256") => self
                .ec
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Some("RS256") => {
                let mut sig = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            _ => Vec::new(),
        };
        format!("{input}.{}", b64(&sig))
    }
}

fn claims() -> Value {
    let iat = NOW.unix_timestamp() - 60;
    json!({
        "aud": ["identity.l5d.io"],
        "exp": iat + 3600,
        "iat": iat,
        "nbf": iat,
        "iss": ISSUER,
        "sub": "system:serviceaccount:emojivoto:web",
        "kubernetes.io": {
            "namespace": "emojivoto",
            "serviceaccount": {"name": "web", "uid": "9b1f0f6e-0000-4000-8000-000000000001"},
            "pod": {"name": "web-7d9c", "uid": "5f0c2b1e-0000-4000-8000-000000000002"}
        }
    })
}

fn es256() -> Value {
    json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"})
}

fn rs256() -> Value {
    json!({"alg": "RS256", "kid": "rsa-1"})
}

fn refused(authn: &JwksAuthenticator<ManualClock>, token: &str) -> (InvalidToken, String) {
    match authn.validate_at(token.as_bytes(), NOW) {
        Err(Error::InvalidToken(e)) => {
            let msg = e.to_string();
            assert!(!msg.contains(token), "the message quotes the token");
            (e, msg)
        }
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

#[tokio::test]
async fn accepts_es256_and_rs256_projected_tokens() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    for header in [es256(), rs256()] {
        let token = keys.token(&header, &claims());
        let who = authn.authenticate(token.as_bytes()).await.unwrap();
        assert_eq!(
            who.service_account,
            ServiceAccount::new("emojivoto", "web").unwrap()
        );
        assert_eq!(who.pod_name.as_deref(), Some("web-7d9c"));
        assert_eq!(
            who.pod_uid.as_deref(),
            Some("5f0c2b1e-0000-4000-8000-000000000002")
        );
        // A trailing newline (a token read from a file) is ignored.
        authn
            .authenticate(format!("{token}\n").as_bytes())
            .await
            .unwrap();
    }
    // Without kid, every key of the algorithm's type is tried.
    for alg in ["ES256", "RS256"] {
        let token = keys.token(&json!({ "alg": alg }), &claims());
        authn.validate_at(token.as_bytes(), NOW).unwrap();
    }
    // aud as a single string; no pod claim.
    let mut c = with(claims(), "aud", json!("identity.l5d.io"));
    c["kubernetes.io"].as_object_mut().unwrap().remove("pod");
    let who = authn
        .validate_at(keys.token(&es256(), &c).as_bytes(), NOW)
        .unwrap();
    assert_eq!(who.pod_name, None);
}

#[test]
fn refuses_unsigned_and_unsupported_algorithms() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    let (e, msg) = refused(&authn, &keys.token(&json!({"alg": "none"}), &claims()));
    assert_eq!(e, InvalidToken::UnsupportedAlgorithm { alg: "none".into() });
    assert_eq!(
        msg,
        "token is unsigned (alg \"none\"); unsigned tokens are refused"
    );
    // The classic confusion: HS256 with the RSA public key as the HMAC secret.
    let (_, msg) = refused(
        &authn,
        &keys.token(&json!({"alg": "HS256", "kid": "rsa-1"}), &claims()),
    );
    assert_eq!(
        msg,
        "token algorithm \"HS256\" is not supported; only ES256 and RS256 are accepted"
    );
    let (e, _) = refused(&authn, &keys.token(&json!({"alg": "PS256"}), &claims()));
    assert_eq!(
        e,
        InvalidToken::UnsupportedAlgorithm {
            alg: "PS256".into()
        }
    );
    let (e, _) = refused(&authn, &keys.token(&json!({"kid": "ec-1"}), &claims()));
    assert!(matches!(e, InvalidToken::Malformed { .. }));
}

#[test]
fn refuses_algorithm_confusion_between_key_types() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    // An RS256 header naming the EC key.
    let (e, msg) = refused(
        &authn,
        &keys.token(&json!({"alg": "RS256", "kid": "ec-1"}), &claims()),
    );
    assert_eq!(
        e,
        InvalidToken::AlgorithmMismatch {
            alg: "RS256".into(),
            kid: "ec-1".into(),
            key: "EC P-256".into()
        }
    );
    assert_eq!(
        msg,
        "token header alg \"RS256\" does not match key \"ec-1\", which is an EC P-256 key; \
         algorithm confusion is refused"
    );
    let (e, _) = refused(
        &authn,
        &keys.token(&json!({"alg": "ES256", "kid": "rsa-1"}), &claims()),
    );
    assert!(matches!(e, InvalidToken::AlgorithmMismatch { .. }));
    // A JWKS with only an EC key: an RS256 token without kid has no candidate.
    let signer = JwtSigner::generate(ISSUER).unwrap();
    let ec_only = JwksAuthenticator::new(signer.jwks(), JwtConfig::new(ISSUER)).unwrap();
    let token = keys.token(&json!({"alg": "RS256"}), &claims());
    assert_eq!(
        ec_only
            .validate_at(token.as_bytes(), NOW)
            .unwrap_err()
            .to_string(),
        "the JWKS has no key for the token's algorithm RS256"
    );
}

#[test]
fn refuses_bad_signatures_unknown_keys_and_crit() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    let token = keys.token(&es256(), &claims());
    // Another payload under the same signature.
    let (h, _) = token.split_once('.').unwrap();
    let (_, s) = token.rsplit_once('.').unwrap();
    let other = with(
        claims(),
        "sub",
        json!("system:serviceaccount:kube-system:admin"),
    );
    let forged = format!("{h}.{}.{s}", b64(other.to_string().as_bytes()));
    let (e, msg) = refused(&authn, &forged);
    assert_eq!(e, InvalidToken::Signature { keys_tried: 1 });
    assert!(msg.starts_with("token signature does not verify with the 1 candidate key(s)"));
    // A signer whose key is not in the JWKS.
    let stranger = JwtSigner::generate(ISSUER).unwrap();
    let token = stranger
        .sign(&TokenParams::new(
            ServiceAccount::new("emojivoto", "web").unwrap(),
            NOW,
        ))
        .unwrap();
    let (e, _) = refused(&authn, &token);
    assert_eq!(
        e,
        InvalidToken::UnknownKey {
            kid: stranger.kid().into()
        }
    );
    let (e, msg) = refused(
        &authn,
        &keys.token(&with(es256(), "crit", json!(["exp"])), &claims()),
    );
    assert_eq!(e, InvalidToken::CriticalHeader);
    assert_eq!(
        msg,
        "token header has \"crit\" extensions, which are not supported; the token is refused"
    );
}

#[test]
fn refuses_malformed_tokens() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    let token = keys.token(&es256(), &claims());
    let cases = [
        (
            "a.b.c.d.e".to_owned(),
            "token is malformed: encrypted tokens (JWE) are not supported",
        ),
        (
            "abc".to_owned(),
            "token is malformed: a signed JWT has three dot-separated parts \
             (header.payload.signature), not 1",
        ),
        (
            format!("{token}="),
            "token is malformed: the signature is not unpadded base64url",
        ),
        (
            "e30.e30.".to_owned(),
            "token is malformed: the header has no \"alg\"",
        ),
        (
            "W10.e30.".to_owned(),
            "token is malformed: the header is not a JSON object",
        ),
        (
            "tok en".to_owned(),
            "token is malformed: byte 3 is not a printable ASCII character",
        ),
        ("  ".to_owned(), "token is empty"),
    ];
    for (token, expected) in cases {
        assert_eq!(refused(&authn, &token).1, expected);
    }
    let big = "a".repeat(meshid_authn::MAX_TOKEN_LEN + 1);
    assert_eq!(
        refused(&authn, &big).1,
        "token is 16385 bytes long, more than the 16384-byte limit"
    );
    let (e, _) = refused(
        &authn,
        &keys.token(&with(es256(), "typ", json!("at+jwt")), &claims()),
    );
    assert!(matches!(e, InvalidToken::Malformed { .. }));
}

#[test]
fn checks_issuer_audience_and_subject() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    let t = |c: Value| keys.token(&es256(), &c);
    assert_eq!(
        refused(&authn, &t(with(claims(), "iss", json!("https://evil")))).1,
        "token issuer \"https://evil\" is not accepted (accepted: \
         [\"https://kubernetes.default.svc.cluster.local\"]); if it is the cluster's \
         service-account issuer (its OIDC URL on EKS, GKE or AKS), accept it with the identity \
         service's --token-issuer"
    );
    assert_eq!(
        refused(
            &authn,
            &t(with(
                claims(),
                "aud",
                json!(["https://kubernetes.default.svc"])
            ))
        )
        .1,
        "token audiences [\"https://kubernetes.default.svc\"] do not include \
         \"identity.l5d.io\"; mount a projected ServiceAccount token with audience \
         \"identity.l5d.io\""
    );
    let (e, _) = refused(&authn, &t(with(claims(), "aud", json!(7))));
    assert_eq!(
        e,
        InvalidToken::Claim {
            name: "aud",
            reason: meshid_authn::ClaimProblem::NotStrings
        }
    );
    let (e, msg) = refused(&authn, &t(with(claims(), "sub", json!("alice"))));
    assert!(
        matches!(
            &e,
            InvalidToken::NotServiceAccount {
                username,
                error: meshid_policy::Error::InvalidServiceAccountUsername { .. },
            } if username == "alice"
        ),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "token user is not a ServiceAccount: invalid ServiceAccount username 'alice': must \
         start with 'system:serviceaccount:'"
    );
    // kubernetes.io must agree with sub.
    let mut c = claims();
    c["kubernetes.io"]["namespace"] = json!("kube-system");
    assert_eq!(
        refused(&authn, &t(c)).1,
        "token \"kubernetes.io\" claims disagree with \"sub\": namespace is \
         Some(\"kube-system\"), sub names namespace \"emojivoto\""
    );
    let mut c = claims();
    c["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
    let (e, _) = refused(&authn, &t(c));
    assert_eq!(
        e,
        InvalidToken::KubernetesClaims {
            claim: "serviceaccount.name",
            found: Some("admin".to_owned()),
            sub: "web".to_owned()
        }
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("kubernetes.io");
    assert_eq!(
        refused(&authn, &t(c)).1,
        "token claim \"kubernetes.io\" is missing or not an object; only projected \
         ServiceAccount tokens are accepted"
    );
}

#[test]
fn checks_times_with_the_skew_allowance() {
    let keys = Keys::new();
    let authn = keys.authenticator();
    let now = NOW.unix_timestamp();
    let t = |c: Value| keys.token(&es256(), &c);
    // Expired 10s ago: inside the 20s allowance.
    authn
        .validate_at(t(with(claims(), "exp", json!(now - 10))).as_bytes(), NOW)
        .unwrap();
    let (e, msg) = refused(&authn, &t(with(claims(), "exp", json!(now - 20))));
    assert!(matches!(e, InvalidToken::Expired { .. }));
    assert_eq!(
        msg,
        "token expired at 2026-06-01T11:59:40Z (now is 2026-06-01T12:00:00Z, clock-skew \
         allowance 20s); the workload must re-read its rotated token"
    );
    authn
        .validate_at(t(with(claims(), "nbf", json!(now + 20))).as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        refused(&authn, &t(with(claims(), "nbf", json!(now + 21)))).1,
        "token is not valid before 2026-06-01T12:00:21Z (now is 2026-06-01T12:00:00Z, after \
         the clock-skew allowance); check the clocks"
    );
    let (e, _) = refused(&authn, &t(with(claims(), "iat", json!(now + 21))));
    assert!(matches!(e, InvalidToken::IssuedInFuture { .. }));
    // Fractional NumericDates are accepted; strings and a missing exp are not.
    authn
        .validate_at(
            t(with(claims(), "exp", json!(now as f64 + 60.5))).as_bytes(),
            NOW,
        )
        .unwrap();
    assert_eq!(
        refused(
            &authn,
            &t(with(claims(), "exp", json!(format!("{}", now + 60))))
        )
        .1,
        "token claim \"exp\" must be a number of seconds since the epoch"
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        refused(&authn, &t(c)).1,
        "token claim \"exp\" is missing; tokens without an expiry (legacy Secret tokens) are \
         refused"
    );
}

#[tokio::test]
async fn the_injected_clock_drives_expiry() {
    let keys = Keys::new();
    let token = keys.token(&es256(), &claims()); // exp = NOW + 59m
    let jwks = Jwks::from_json(keys.jwks.to_string().as_bytes()).unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(NOW));
    let authn = JwksAuthenticator::with_clock(jwks, JwtConfig::new(ISSUER), clock.clone()).unwrap();
    authn.authenticate(token.as_bytes()).await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    let err = authn.authenticate(token.as_bytes()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
}

#[test]
fn signer_tokens_validate_against_its_jwks() {
    let signer = JwtSigner::generate("https://meshid.dev").unwrap();
    let jwks: Value = serde_json::from_str(&signer.jwks_json()).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], signer.kid());
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );

    let sa = ServiceAccount::new("emojivoto", "web.v2").unwrap(); // dots are valid names
    let mut params = TokenParams::new(sa.clone(), NOW);
    params.service_account_uid = Some("sa-uid".into());
    params.pod = Some(PodRef::new("web-1", "pod-uid"));
    params.lifetime = Duration::from_secs(600);
    let token = signer.sign(&params).unwrap();

    // The claims look like a projected token's.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://meshid.dev");
    assert_eq!(claims["sub"], "system:serviceaccount:emojivoto:web.v2");
    assert_eq!(claims["aud"], json!(["identity.l5d.io"]));
    assert_eq!(claims["iat"], NOW.unix_timestamp());
    assert_eq!(claims["nbf"], NOW.unix_timestamp());
    assert_eq!(claims["exp"], NOW.unix_timestamp() + 600);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "emojivoto", "serviceaccount": {"name": "web.v2", "uid": "sa-uid"},
               "pod": {"name": "web-1", "uid": "pod-uid"}})
    );

    // Through the exported JSON, as a separate validator would load it.
    let jwks = Jwks::from_json(signer.jwks_json().as_bytes()).unwrap();
    let authn = JwksAuthenticator::new(jwks, JwtConfig::new("https://meshid.dev")).unwrap();
    let who = authn.validate_at(token.as_bytes(), NOW).unwrap();
    assert_eq!(who.service_account, sa);
    assert_eq!(who.pod_uid.as_deref(), Some("pod-uid"));
    assert!(
        authn
            .validate_at(token.as_bytes(), NOW + Duration::from_secs(621))
            .is_err()
    );

    // The key survives a PEM round trip with the same kid; Debug shows no key.
    let again = JwtSigner::from_pem("https://meshid.dev", &signer.private_key_pem()).unwrap();
    assert_eq!(again.kid(), signer.kid());
    authn
        .validate_at(again.sign(&params).unwrap().as_bytes(), NOW)
        .unwrap();
    let debug = format!("{signer:?}");
    assert!(
        debug.contains(signer.kid()) && !debug.contains("PRIVATE"),
        "{debug}"
    );
    // A key rotation: the old JWKS does not know the new key until it is replaced.
    let rotated = JwtSigner::generate("https://meshid.dev").unwrap();
    let token = rotated.sign(&params).unwrap();
    assert!(authn.validate_at(token.as_bytes(), NOW).is_err());
    authn.replace_jwks(rotated.jwks());
    authn.validate_at(token.as_bytes(), NOW).unwrap();
}

#[test]
fn jwks_parsing_is_strict_about_usable_keys() {
    let err = |json: Value| {
        Jwks::from_json(json.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    };
    let keys = Keys::new();
    let ec = keys.jwks["keys"][0].clone();
    assert_eq!(
        err(json!({"keys": [with(ec.clone(), "d", json!("AAAA"))]})),
        "invalid JWKS: key #0 (\"ec-1\") holds private key material (\"d\"); publish only the \
         public keys"
    );
    assert_eq!(
        err(json!({"keys": [with(ec.clone(), "x", json!("AAAA"))]})),
        "invalid JWKS: key #0 (\"ec-1\") is not a P-256 point: x and y must be 32 bytes each"
    );
    let mut n = vec![0xff_u8; 128];
    n[0] = 0x80;
    assert_eq!(
        err(json!({"keys": [{"kty": "RSA", "n": b64(&n), "e": "AQAB"}]})),
        "invalid JWKS: key #0 is a 1024-bit RSA key; at least 2048 bits are required"
    );
    assert_eq!(
        err(json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]})),
        "invalid JWKS: it has no ES256 (EC P-256) or RS256 (RSA) signing key; export the \
         cluster's keys with `kubectl get --raw /openid/v1/jwks`"
    );
    assert!(err(json!({"nokeys": []})).starts_with("invalid JWKS: not a JSON Web Key Set"));
    // Unsupported and encryption keys are skipped next to usable ones.
    let jwks = Jwks::from_json(
        json!({"keys": [
            {"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"},
            with(ec.clone(), "use", json!("enc")),
            ec,
        ]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks.kids().collect::<Vec<_>>(), [Some("ec-1")]);
    // Reading a file names it.
    let e = Jwks::from_file("/nonexistent/jwks.json").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read the JWKS file /nonexistent/jwks.json: "),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Backend);
}

#[test]
fn configuration_is_checked() {
    let signer = JwtSigner::generate(ISSUER).unwrap();
    let mut config = JwtConfig::new(ISSUER);
    config.issuers.clear();
    assert_eq!(
        JwksAuthenticator::new(signer.jwks(), config)
            .unwrap_err()
            .to_string(),
        "invalid JWT configuration: at least one non-empty issuer is required (the cluster's \
         --service-account-issuer)"
    );
    // Several issuers: any of them is accepted.
    let mut config = JwtConfig::new("https://old-issuer");
    config.issuers.push(ISSUER.into());
    let authn = JwksAuthenticator::new(signer.jwks(), config).unwrap();
    let token = signer
        .sign(&TokenParams::new(
            ServiceAccount::new("a", "b").unwrap(),
            NOW,
        ))
        .unwrap();
    authn.validate_at(token.as_bytes(), NOW).unwrap();
}

#[test]
fn the_jwks_file_is_followed_and_a_broken_one_keeps_the_keys_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (old, new) = (
        JwtSigner::generate(ISSUER).unwrap(),
        JwtSigner::generate(ISSUER).unwrap(),
    );
    std::fs::write(&path, old.jwks_json()).unwrap();
    let authn = JwksAuthenticator::with_clock(
        Jwks::from_file(&path).unwrap(),
        JwtConfig::new(ISSUER),
        ManualClock::new(NOW),
    )
    .unwrap();
    let metrics = Metrics::default();
    let mut reloader = JwksReloader::new(&path, &authn).with_metrics(metrics.clone());
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let token = |signer: &JwtSigner| signer.sign(&TokenParams::new(sa.clone(), NOW)).unwrap();
    let kid = |authn: &JwksAuthenticator<ManualClock>| {
        authn
            .jwks()
            .kids()
            .map(|k| k.unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // The first read finds the keys the authenticator was built with.
    assert_eq!(reloader.reload_now(), JwksReload::Updated);
    assert_eq!(reloader.reload_now(), JwksReload::Unchanged);
    assert_eq!(metrics.jwks_reloads("updated"), 0);

    // Rotated: the new key is used from now on.
    std::fs::write(&path, new.jwks_json()).unwrap();
    assert_eq!(reloader.reload_now(), JwksReload::Updated);
    assert_eq!(kid(&authn), [new.kid()]);
    authn.validate_at(token(&new).as_bytes(), NOW).unwrap();
    assert!(authn.validate_at(token(&old).as_bytes(), NOW).is_err());
    assert_eq!(metrics.jwks_reloads("updated"), 1);

    // Broken, then gone: refused, said once each, and the keys in use stay.
    std::fs::write(&path, "{\"keys\": [").unwrap();
    let JwksReload::Refused(e) = reloader.reload_now() else {
        panic!("a broken JWKS was taken");
    };
    assert!(
        e.to_string().starts_with(&format!(
            "invalid JWKS file {}: not a JSON Web Key Set",
            path.display()
        )),
        "{e}"
    );
    assert_eq!(reloader.reload_now(), JwksReload::Unchanged);
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        reloader.reload_now(),
        JwksReload::Refused(Error::ReadFile {
            what: "JWKS file",
            kind: std::io::ErrorKind::NotFound,
            ..
        })
    ));
    reloader.reload_now();
    assert_eq!(metrics.jwks_reloads("invalid"), 1);
    assert_eq!(metrics.jwks_reloads("unreadable"), 1);
    assert_eq!(kid(&authn), [new.kid()]);
    authn.validate_at(token(&new).as_bytes(), NOW).unwrap();
}
