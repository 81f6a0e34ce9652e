//! Offline validation of projected ServiceAccount tokens against a JWKS.

use core::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use meshid_policy::ServiceAccount;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::token::{b64_decode, json_object, numeric_date, token_str};
use crate::{
    Authenticated, Authenticator, ClaimProblem, Clock, Error, InvalidToken, MalformedToken,
    SystemClock,
};

/// The audience Linkerd's proxies request for their projected token.
pub const DEFAULT_AUDIENCE: &str = "identity.l5d.io";

/// The default clock-skew allowance for `exp`, `nbf` and `iat`: Linkerd's issuance skew.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(20);

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

// === impl Jwks ===

/// A set of token-verification keys: the public JWKS of a Kubernetes API server
/// (`kubectl get --raw /openid/v1/jwks`) or of a [`JwtSigner`](crate::JwtSigner).
///
/// Only signing keys for ES256 (`kty: EC`, `crv: P-256`) and RS256 (`kty: RSA`, at least 2048
/// bits) are kept; keys for other algorithms are skipped. A key that claims to be one of those
/// but is broken, or any key with private members, makes the whole set refused.
#[derive(Clone)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Clone)]
struct Jwk {
    kid: Option<String>,
    key: KeyMaterial,
}

#[derive(Clone)]
enum KeyMaterial {
    /// An uncompressed P-256 point, `04 || x || y`.
    EcP256(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<Value>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let raw: RawJwks = serde_json::from_slice(json).map_err(|e| {
            Error::config(
                "JWKS",
                format!("not a JSON Web Key Set ({{\"keys\": [...]}}): {e}"),
            )
        })?;
        let mut keys = Vec::new();
        for (index, raw) in raw.keys.into_iter().enumerate() {
            if let Some(jwk) = Jwk::parse(index, raw)? {
                keys.push(jwk);
            }
        }
        if keys.is_empty() {
            return Err(Error::config(
                "JWKS",
                "it has no ES256 (EC P-256) or RS256 (RSA) signing key; export the cluster's keys \
                 with `kubectl get --raw /openid/v1/jwks`",
            ));
        }
        Ok(Self { keys })
    }

    /// Reads and parses a JWKS file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read(path).map_err(|e| Error::ReadFile {
            what: "JWKS file",
            path: path.to_owned(),
            kind: e.kind(),
            reason: e.to_string(),
        })?;
        Self::from_json(&json).map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config {
                what: format!("JWKS file {}", path.display()),
                reason,
            },
            e => e,
        })
    }

    /// How many usable keys the set has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable key (never true for a parsed set).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids of the usable keys, in order (`None` for a key without `kid`).
    pub fn kids(&self) -> impl Iterator<Item = Option<&str>> {
        self.keys.iter().map(|k| k.kid.as_deref())
    }

    pub(crate) fn from_rsa(kid: String, n: Vec<u8>, e: Vec<u8>) -> Self {
        Self {
            keys: vec![Jwk {
                kid: Some(kid),
                key: KeyMaterial::Rsa { n, e },
            }],
        }
    }

    pub(crate) fn from_ec_p256(kid: String, point: Vec<u8>) -> Self {
        Self {
            keys: vec![Jwk {
                kid: Some(kid),
                key: KeyMaterial::EcP256(point),
            }],
        }
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| (k.kid.as_deref(), k.key.describe())),
            )
            .finish()
    }
}

impl Jwk {
    fn parse(index: usize, raw: RawJwk) -> Result<Option<Self>, Error> {
        let name = match &raw.kid {
            Some(kid) => format!("key #{index} ({kid:?})"),
            None => format!("key #{index}"),
        };
        let bad = |reason: &str| Error::config("JWKS", format!("{name} {reason}"));
        if raw.d.is_some() {
            return Err(bad(
                "holds private key material (\"d\"); publish only the public keys",
            ));
        }
        let signs = raw.use_.as_deref().is_none_or(|u| u == "sig")
            && raw
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|op| op == "verify"));
        let member = |v: &Option<String>, m: &'static str| {
            let v = v
                .as_deref()
                .ok_or_else(|| bad(&format!("has no {m:?} member")))?;
            b64_decode(v, m).map_err(|_| bad(&format!("member {m:?} is not unpadded base64url")))
        };
        let key = match (raw.kty.as_str(), raw.crv.as_deref(), raw.alg.as_deref()) {
            _ if !signs => None,
            ("EC", Some("P-256"), None | Some("ES256")) => {
                let (x, y) = (member(&raw.x, "x")?, member(&raw.y, "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(bad("is not a P-256 point: x and y must be 32 bytes each"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Some(KeyMaterial::EcP256(point))
            }
            ("RSA", _, None | Some("RS256")) => {
                let (n, e) = (member(&raw.n, "n")?, member(&raw.e, "e")?);
                let bits = modulus_bits(&n);
                if bits < MIN_RSA_BITS {
                    return Err(bad(&format!(
                        "is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
                    )));
                }
                Some(KeyMaterial::Rsa { n, e })
            }
            _ => None,
        };
        if key.is_none() {
            tracing::debug!(
                key = %name,
                kty = %raw.kty,
                "skipping a JWKS key that is not an ES256 or RS256 signing key"
            );
        }
        Ok(key.map(|key| Self { kid: raw.kid, key }))
    }
}

fn modulus_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

impl KeyMaterial {
    fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (Self::EcP256(_), Alg::Es256) | (Self::Rsa { .. }, Alg::Rs256)
        )
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::EcP256(_) => "EC P-256",
            Self::Rsa { .. } => "RSA",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::EcP256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Self::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alg {
    Es256,
    Rs256,
}

impl Alg {
    fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

// === impl JwtConfig ===

/// What a projected ServiceAccount token must say to be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtConfig {
    /// Accepted `iss` values: the cluster's `--service-account-issuer`(s), e.g.
    /// `https://kubernetes.default.svc.cluster.local`. At least one.
    pub issuers: Vec<String>,
    /// The audience `aud` must contain. Default [`DEFAULT_AUDIENCE`].
    pub audience: String,
    /// Tolerance applied to `exp`, `nbf` and `iat`. Default [`DEFAULT_CLOCK_SKEW`].
    pub clock_skew: Duration,
}

impl JwtConfig {
    /// Accepts tokens from `issuer` for [`DEFAULT_AUDIENCE`] with [`DEFAULT_CLOCK_SKEW`].
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuers: vec![issuer.into()],
            audience: DEFAULT_AUDIENCE.to_owned(),
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.issuers.is_empty() || self.issuers.iter().any(String::is_empty) {
            return Err(Error::config(
                "JWT configuration",
                "at least one non-empty issuer is required (the cluster's \
                 --service-account-issuer)",
            ));
        }
        if self.audience.is_empty() {
            return Err(Error::config(
                "JWT configuration",
                "the audience must not be empty",
            ));
        }
        Ok(())
    }
}

// === impl JwksAuthenticator ===

/// Validates projected ServiceAccount tokens offline, against a [`Jwks`].
///
/// Checks, in order: size and characters; three base64url parts; header `alg` is ES256 or RS256
/// and no `crit`; the key (by `kid`, else every key of the algorithm's type) matches the
/// algorithm; the signature; `iss`; `aud`; `exp` (required), `nbf` and `iat` with the skew
/// allowance; `sub` is `system:serviceaccount:<ns>:<sa>`; the `kubernetes.io` claims name the
/// same ServiceAccount. Claims are read only after the signature verifies.
///
/// The key set can be swapped at run time with [`JwksAuthenticator::replace_jwks`] (the API
/// server rotates its signing keys), or by a [`JwksReloader`](crate::JwksReloader) following
/// the JWKS file.
pub struct JwksAuthenticator<C = SystemClock> {
    jwks: Arc<ArcSwap<Jwks>>,
    config: JwtConfig,
    clock: C,
}

impl JwksAuthenticator<SystemClock> {
    /// An authenticator reading the system clock.
    pub fn new(jwks: Jwks, config: JwtConfig) -> Result<Self, Error> {
        Self::with_clock(jwks, config, SystemClock)
    }
}

impl<C: Clock> JwksAuthenticator<C> {
    /// An authenticator reading `clock`.
    pub fn with_clock(jwks: Jwks, config: JwtConfig, clock: C) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            jwks: Arc::new(ArcSwap::from_pointee(jwks)),
            config,
            clock,
        })
    }

    /// Replaces the key set; validations already running finish with the old one.
    pub fn replace_jwks(&self, jwks: Jwks) {
        self.jwks.store(Arc::new(jwks));
    }

    /// The current key set.
    pub fn jwks(&self) -> Arc<Jwks> {
        self.jwks.load_full()
    }

    /// The key set, shared: what a [`JwksReloader`](crate::JwksReloader) replaces.
    pub(crate) fn shared_jwks(&self) -> Arc<ArcSwap<Jwks>> {
        Arc::clone(&self.jwks)
    }

    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Validates `token` as of `now`.
    pub fn validate_at(&self, token: &[u8], now: OffsetDateTime) -> Result<Authenticated, Error> {
        let jwks = self.jwks.load();
        validate(&jwks, &self.config, token, now).map_err(Error::InvalidToken)
    }
}

impl<C: Clock> Authenticator for JwksAuthenticator<C> {
    async fn authenticate(&self, token: &[u8]) -> Result<Authenticated, Error> {
        let result = self.validate_at(token, self.clock.now());
        match &result {
            Ok(a) => tracing::debug!(service_account = %a.service_account, "token validated"),
            Err(e) => tracing::debug!(error = %e, "token refused"),
        }
        result
    }
}

impl<C> fmt::Debug for JwksAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksAuthenticator")
            .field("jwks", &self.jwks.load())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn validate(
    jwks: &Jwks,
    config: &JwtConfig,
    token: &[u8],
    now: OffsetDateTime,
) -> Result<Authenticated, InvalidToken> {
    let token = token_str(token)?;
    let malformed = |reason: MalformedToken| InvalidToken::Malformed { reason };
    let header_problem = |member, problem| malformed(MalformedToken::Header { member, problem });
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, sig_b64] = parts[..] else {
        return Err(malformed(if parts.len() == 5 {
            MalformedToken::Encrypted
        } else {
            MalformedToken::Parts { found: parts.len() }
        }));
    };

    // Header.
    let header = json_object(header_b64, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err(header_problem("alg", "is not a string")),
        None => return Err(malformed(MalformedToken::HeaderMissing { member: "alg" })),
    };
    let alg = match alg {
        "ES256" => Alg::Es256,
        "RS256" => Alg::Rs256,
        other => {
            return Err(InvalidToken::UnsupportedAlgorithm {
                alg: other.to_owned(),
            });
        }
    };
    if header.contains_key("crit") {
        return Err(InvalidToken::CriticalHeader);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(header_problem("typ", "is not \"JWT\"")),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(header_problem("kid", "is not a string")),
    };

    // Key selection: by kid when there is one, refusing a key of the wrong type.
    let candidates: Vec<&KeyMaterial> = match kid {
        Some(kid) => {
            let jwk = jwks
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| InvalidToken::UnknownKey {
                    kid: kid.to_owned(),
                })?;
            if !jwk.key.fits(alg) {
                return Err(InvalidToken::AlgorithmMismatch {
                    alg: alg.as_str().to_owned(),
                    kid: kid.to_owned(),
                    key: jwk.key.describe().to_owned(),
                });
            }
            vec![&jwk.key]
        }
        None => jwks
            .keys
            .iter()
            .map(|k| &k.key)
            .filter(|k| k.fits(alg))
            .collect(),
    };
    if candidates.is_empty() {
        return Err(InvalidToken::NoKeyForAlgorithm {
            alg: alg.as_str().to_owned(),
        });
    }

    // Signature, over the encoded header and payload.
    let sig = b64_decode(sig_b64, "signature")?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !candidates.iter().any(|k| k.verify(signed.as_bytes(), &sig)) {
        return Err(InvalidToken::Signature {
            keys_tried: candidates.len(),
        });
    }

    // Claims.
    let claims = json_object(payload_b64, "payload")?;
    check_issuer(&claims, config)?;
    check_audience(&claims, config)?;
    check_times(&claims, config, now)?;
    let sub = string_claim(&claims, "sub")?;
    let service_account =
        ServiceAccount::from_username(sub).map_err(|error| InvalidToken::NotServiceAccount {
            username: sub.to_owned(),
            error,
        })?;
    kubernetes_claims(&claims, service_account)
}

fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, InvalidToken> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(InvalidToken::Claim {
            name,
            reason: ClaimProblem::NotString,
        }),
        None => Err(InvalidToken::Claim {
            name,
            reason: ClaimProblem::Missing,
        }),
    }
}

fn check_issuer(claims: &Map<String, Value>, config: &JwtConfig) -> Result<(), InvalidToken> {
    let iss = string_claim(claims, "iss")?;
    if config.issuers.iter().any(|i| i == iss) {
        Ok(())
    } else {
        Err(InvalidToken::Issuer {
            expected: config.issuers.clone(),
            found: iss.to_owned(),
        })
    }
}

fn check_audience(claims: &Map<String, Value>, config: &JwtConfig) -> Result<(), InvalidToken> {
    let not_strings = || InvalidToken::Claim {
        name: "aud",
        reason: ClaimProblem::NotStrings,
    };
    let found: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(not_strings))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(not_strings()),
        None => Vec::new(),
    };
    if found.contains(&config.audience) {
        Ok(())
    } else {
        Err(InvalidToken::Audience {
            expected: config.audience.clone(),
            found,
        })
    }
}

fn check_times(
    claims: &Map<String, Value>,
    config: &JwtConfig,
    now: OffsetDateTime,
) -> Result<(), InvalidToken> {
    let skew = config.clock_skew;
    let exp = numeric_date(claims, "exp")?.ok_or(InvalidToken::Claim {
        name: "exp",
        reason: ClaimProblem::NoExpiry,
    })?;
    if now >= exp + skew {
        return Err(InvalidToken::Expired { exp, now, skew });
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now + skew < nbf
    {
        return Err(InvalidToken::NotYetValid { nbf, now });
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && now + skew < iat
    {
        return Err(InvalidToken::IssuedInFuture { iat, now });
    }
    Ok(())
}

/// Checks `kubernetes.io` against `sub` and reads the pod it is bound to.
fn kubernetes_claims(
    claims: &Map<String, Value>,
    service_account: ServiceAccount,
) -> Result<Authenticated, InvalidToken> {
    let claim_error = |reason: ClaimProblem| InvalidToken::Claim {
        name: "kubernetes.io",
        reason,
    };
    let Some(Value::Object(k8s)) = claims.get("kubernetes.io") else {
        return Err(claim_error(ClaimProblem::NotProjected));
    };
    let field = |obj: &Map<String, Value>,
                 path: &'static str,
                 name: &str|
     -> Result<Option<String>, InvalidToken> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(claim_error(ClaimProblem::MemberNotString { path })),
        }
    };
    let object = |member: &'static str| -> Result<Option<&Map<String, Value>>, InvalidToken> {
        match k8s.get(member) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(claim_error(ClaimProblem::MemberNotObject { member })),
        }
    };

    let namespace = field(k8s, "namespace", "namespace")?;
    if namespace.as_deref() != Some(service_account.namespace().as_str()) {
        return Err(InvalidToken::KubernetesClaims {
            claim: "namespace",
            found: namespace,
            sub: service_account.namespace().as_str().to_owned(),
        });
    }
    let sa = object("serviceaccount")?;
    let sa_name = match sa {
        Some(sa) => field(sa, "serviceaccount.name", "name")?,
        None => None,
    };
    if sa_name.as_deref() != Some(service_account.name()) {
        return Err(InvalidToken::KubernetesClaims {
            claim: "serviceaccount.name",
            found: sa_name,
            sub: service_account.name().to_owned(),
        });
    }
    let mut authenticated = Authenticated::new(service_account);
    if let Some(sa) = sa {
        authenticated.service_account_uid = field(sa, "serviceaccount.uid", "uid")?;
    }
    if let Some(pod) = object("pod")? {
        authenticated.pod_name = field(pod, "pod.name", "name")?;
        authenticated.pod_uid = field(pod, "pod.uid", "uid")?;
    }
    Ok(authenticated)
}
