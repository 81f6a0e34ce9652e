//! A development token issuer: ES256 ServiceAccount tokens shaped like projected ones.

use core::fmt;
use std::time::Duration;

use meshid_policy::ServiceAccount;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::token::b64_encode;
use crate::{DEFAULT_AUDIENCE, Error, Jwks};

/// The default token lifetime: 24 hours, like the token Linkerd's proxies mount.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Signs ServiceAccount tokens with a P-256 key (ES256) or an RSA key (RS256, from a PKCS#8
/// file; ring makes no RSA keys) and publishes the matching JWKS, so a development CA or a
/// test API server can mint tokens that a [`JwksAuthenticator`](crate::JwksAuthenticator)
/// configured with [`JwtSigner::jwks`] accepts.
///
/// The `kid` is the key's RFC 7638 JWK thumbprint. `Debug` shows the issuer and `kid`, never
/// the key.
pub struct JwtSigner {
    key: SigningKey,
    pkcs8: Vec<u8>,
    issuer: String,
    kid: String,
    rng: SystemRandom,
}

/// What a minted token says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenParams {
    /// The ServiceAccount (`sub` and `kubernetes.io.serviceaccount.name`).
    pub service_account: ServiceAccount,
    /// The ServiceAccount's uid, if known.
    pub service_account_uid: Option<String>,
    /// The pod the token is bound to, if any.
    pub pod: Option<PodRef>,
    /// `aud`. Default `[DEFAULT_AUDIENCE]`.
    pub audiences: Vec<String>,
    /// `iat` and `nbf`.
    pub issued_at: OffsetDateTime,
    /// `exp - iat`. Default [`DEFAULT_TOKEN_LIFETIME`].
    pub lifetime: Duration,
}

impl TokenParams {
    /// A token for `service_account` issued at `issued_at`, with the default audience and
    /// lifetime, bound to no pod.
    pub fn new(service_account: ServiceAccount, issued_at: OffsetDateTime) -> Self {
        Self {
            service_account,
            service_account_uid: None,
            pod: None,
            audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            issued_at,
            lifetime: DEFAULT_TOKEN_LIFETIME,
        }
    }
}

/// A pod a token is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PodRef {
    /// The pod's name.
    pub name: String,
    /// The pod's uid.
    pub uid: String,
}

impl PodRef {
    /// A pod reference.
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uid: uid.into(),
        }
    }
}

impl JwtSigner {
    /// A signer with a freshly generated P-256 key.
    pub fn generate(issuer: impl Into<String>) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::config("token signer", "the system random source failed"))?;
        Self::from_pkcs8_der(issuer, pkcs8.as_ref())
    }

    /// A signer with a P-256 (ES256) or RSA (RS256, 2048 bits or more) key in PKCS#8 DER.
    pub fn from_pkcs8_der(issuer: impl Into<String>, der: &[u8]) -> Result<Self, Error> {
        let issuer = issuer.into();
        if issuer.is_empty() {
            return Err(Error::config(
                "token signer",
                "the issuer must not be empty",
            ));
        }
        let rng = SystemRandom::new();
        let key = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            Ok(key) => SigningKey::Ec(key),
            Err(_) => SigningKey::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|_| {
                Error::config(
                    "token signer key",
                    "not a P-256 or RSA (2048 bits or more) private key in PKCS#8",
                )
            })?),
        };
        let kid = key.thumbprint();
        Ok(Self {
            key,
            pkcs8: der.to_vec(),
            issuer,
            kid,
            rng,
        })
    }

    /// A signer with a P-256 or RSA key in a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(issuer: impl Into<String>, pem: &str) -> Result<Self, Error> {
        let block = pem::parse(pem).map_err(|e| {
            Error::config(
                "token signer key",
                format!("not a PEM PRIVATE KEY block: {e}"),
            )
        })?;
        if block.tag() != "PRIVATE KEY" {
            return Err(Error::config(
                "token signer key",
                format!(
                    "the PEM block is a {:?}, not a \"PRIVATE KEY\" (PKCS#8); convert it with \
                     `openssl pkcs8 -topk8 -nocrypt`",
                    block.tag()
                ),
            ));
        }
        Self::from_pkcs8_der(issuer, block.contents())
    }

    /// The key as a PEM `PRIVATE KEY` (PKCS#8) block, to persist a generated key.
    pub fn private_key_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    /// The `iss` of minted tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.key.public_jwk();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.key.alg());
        jwk["use"] = json!("sig");
        jwk
    }

    /// The JWKS document, `{"keys": [<jwk>]}`, to hand to validators.
    pub fn jwks_json(&self) -> String {
        json!({ "keys": [self.jwk()] }).to_string()
    }

    /// The key set validators need.
    pub fn jwks(&self) -> Jwks {
        match &self.key {
            SigningKey::Ec(key) => {
                Jwks::from_ec_p256(self.kid.clone(), key.public_key().as_ref().to_vec())
            }
            SigningKey::Rsa(key) => {
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
                Jwks::from_rsa(self.kid.clone(), public.n, public.e)
            }
        }
    }

    /// Mints a token.
    pub fn sign(&self, params: &TokenParams) -> Result<String, Error> {
        let TokenParams {
            service_account,
            service_account_uid,
            pod,
            audiences,
            issued_at,
            lifetime,
        } = params;
        if lifetime.is_zero() {
            return Err(Error::config(
                "token parameters",
                "the lifetime must be positive",
            ));
        }
        let iat = issued_at.unix_timestamp();
        let exp = (*issued_at + *lifetime).unix_timestamp();
        let mut sa = json!({ "name": service_account.name() });
        if let Some(uid) = service_account_uid {
            sa["uid"] = json!(uid);
        }
        let mut k8s = json!({
            "namespace": service_account.namespace().as_str(),
            "serviceaccount": sa,
        });
        if let Some(pod) = pod {
            k8s["pod"] = json!({ "name": pod.name, "uid": pod.uid });
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": iat,
            "iss": self.issuer,
            "kubernetes.io": k8s,
            "nbf": iat,
            "sub": service_account.username(),
        });
        let header = json!({ "alg": self.key.alg(), "kid": self.kid, "typ": "JWT" });
        let signing_input = format!(
            "{}.{}",
            b64_encode(header.to_string().as_bytes()),
            b64_encode(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .ok_or_else(|| Error::config("token signer", "signing failed"))?;
        Ok(format!("{signing_input}.{}", b64_encode(&sig)))
    }
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The key a [`JwtSigner`] signs with.
enum SigningKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    fn alg(&self) -> &'static str {
        match self {
            Self::Ec(_) => "ES256",
            Self::Rsa(_) => "RS256",
        }
    }

    fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Ec(key) => key.sign(rng, message).ok().map(|s| s.as_ref().to_vec()),
            Self::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, rng, message, &mut sig).ok()?;
                Some(sig)
            }
        }
    }

    /// The public key's JWK members (without `kid`, `alg`, `use`).
    fn public_jwk(&self) -> Value {
        match self {
            Self::Ec(key) => {
                let (x, y) = coordinates(key.public_key().as_ref());
                json!({ "kty": "EC", "crv": "P-256", "x": b64_encode(x), "y": b64_encode(y) })
            }
            Self::Rsa(key) => {
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
                json!({ "kty": "RSA", "n": b64_encode(&public.n), "e": b64_encode(&public.e) })
            }
        }
    }

    /// RFC 7638 thumbprint of the public key, base64url: the required members in
    /// lexicographic order, no whitespace (§3).
    fn thumbprint(&self) -> String {
        let canonical = match self.public_jwk() {
            Value::Object(members) => {
                let mut sorted: Vec<_> = members.into_iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                let members: Vec<String> = sorted
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
            other => other.to_string(),
        };
        b64_encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

/// Splits an uncompressed P-256 point `04 || x || y`.
fn coordinates(point: &[u8]) -> (&[u8], &[u8]) {
    let xy = point.get(1..).unwrap_or_default();
    xy.split_at(xy.len() / 2)
}
