//! Client configuration.

use core::fmt;
use std::path::PathBuf;

use meshid_csr::CsrParams;
use meshid_policy::{KeyAlgorithm, Mesh, SanMode, ServiceAccount};
use meshid_rotation::{BackoffPolicy, RefreshPolicy};
use meshid_verify::TrustBundle;
use zeroize::Zeroizing;

use crate::{ConfigProblem, Error, TokenProblem};

/// Where the ServiceAccount token comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// A file re-read on every attempt: projected tokens rotate (Linkerd mounts one at
    /// `/var/run/secrets/tokens/linkerd-identity-token`).
    File(PathBuf),
    /// A fixed value.
    Fixed(Zeroizing<Vec<u8>>),
}

impl TokenSource {
    /// The token now. An empty token is an error, never sent.
    pub fn read(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let token = match self {
            Self::File(path) => Zeroizing::new(std::fs::read(path).map_err(|e| Error::Token {
                reason: TokenProblem::Unreadable {
                    path: path.clone(),
                    kind: e.kind(),
                    reason: e.to_string(),
                },
            })?),
            Self::Fixed(token) => token.clone(),
        };
        // Trailing newlines from `echo > file` are not part of a JWT.
        let len = token
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        if len == 0 {
            return Err(Error::Token {
                reason: TokenProblem::Empty,
            });
        }
        let mut trimmed = token;
        trimmed.truncate(len);
        Ok(trimmed)
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Fixed(_) => f.write_str("Fixed([redacted])"),
        }
    }
}

/// How a proxy obtains and keeps its identity.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The local identity, e.g. `web.emojivoto.serviceaccount.identity.linkerd.cluster.local`.
    pub identity: String,
    /// What the CSR asks for (default: `CN=<identity>` and its DNS SAN). The identity must be
    /// among its SANs.
    pub csr: CsrParams,
    /// Where the token comes from.
    pub token: TokenSource,
    /// The trust anchors the CA's answer, and every peer, must chain to.
    pub trust_bundle: TrustBundle,
    /// The key algorithm (default P-256).
    pub key_algorithm: KeyAlgorithm,
    /// A fresh key and CSR on every renewal (default); `false` keeps one key for the process's
    /// life, as Linkerd does.
    pub rekey: bool,
    /// When to renew.
    pub refresh: RefreshPolicy,
    /// How to retry after a failure.
    pub backoff: BackoffPolicy,
}

impl ClientConfig {
    /// A configuration with the defaults for `identity`.
    pub fn new(identity: &str, token: TokenSource, trust_bundle: TrustBundle) -> Self {
        Self {
            identity: identity.to_owned(),
            csr: CsrParams::new(identity),
            token,
            trust_bundle,
            key_algorithm: KeyAlgorithm::EcdsaP256,
            rekey: true,
            refresh: RefreshPolicy::default(),
            backoff: BackoffPolicy::default(),
        }
    }

    /// A configuration with the defaults for `sa` in `mesh`, certified by a CA whose SAN mode
    /// is `mode`: the CSR asks for exactly that mode's SANs, and the local identity is the
    /// SPIFFE ID when the mode issues one (`spiffe`, `dns+spiffe`: a SPIFFE-aware workload
    /// asks for, and is known by, its SPIFFE ID), else the identity name.
    pub fn for_service_account(
        mesh: &Mesh,
        sa: &ServiceAccount,
        mode: SanMode,
        token: TokenSource,
        trust_bundle: TrustBundle,
    ) -> Result<Self, Error> {
        let identity = if mode.has_spiffe() {
            mesh.spiffe_id(sa).to_string()
        } else {
            mesh.identity(sa)
                .map_err(|e| Error::Config {
                    reason: ConfigProblem::Identity(e),
                })?
                .to_string()
        };
        let mut config = Self::new(&identity, token, trust_bundle);
        config.csr = CsrParams::for_service_account(mesh, sa, mode).map_err(Error::Key)?;
        Ok(config)
    }
}
