//! Where the Kubernetes API server is and how the TokenReview client behaves.

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::{DEFAULT_AUDIENCE, Error};

/// Where a pod finds its ServiceAccount token and the cluster CA.
pub const IN_CLUSTER_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default request rate to the API server: Linkerd's `-kube-apiclient-qps`.
pub const DEFAULT_QPS: f64 = 100.0;

/// The default burst above the rate: Linkerd's `-kube-apiclient-burst`.
pub const DEFAULT_BURST: u32 = 200;

/// How long a positive result is cached at most (shorter when the token expires sooner).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// How many positive results are cached at most.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The CA certificate(s) the API server's certificate must chain to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiServerCa {
    /// A PEM file, read when the authenticator is built.
    File(PathBuf),
    /// PEM text (a kubeconfig's `certificate-authority-data`).
    Pem(Vec<u8>),
}

/// How the identity service authenticates itself to the API server.
///
/// `Debug` never shows a token or a key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiCredentials {
    /// A bearer token read from this file on every request (the kubelet rotates the mounted
    /// ServiceAccount token; a kubeconfig's `tokenFile`).
    TokenFile(PathBuf),
    /// A fixed bearer token (a kubeconfig's `token`).
    Token(Zeroizing<String>),
    /// A TLS client certificate (a kubeconfig's `client-certificate[-data]` and
    /// `client-key[-data]`): the PEM chain, leaf first, and its PEM private key.
    ClientCertificate {
        /// The certificate chain, PEM.
        chain_pem: Vec<u8>,
        /// The private key, PEM (PKCS#8, SEC1 or PKCS#1).
        key_pem: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::ClientCertificate { chain_pem, .. } => f
                .debug_struct("ClientCertificate")
                .field("chain_pem", &format_args!("{} bytes", chain_pem.len()))
                .field("key_pem", &format_args!("<redacted>"))
                .finish(),
        }
    }
}

/// How to reach the API server and how to use it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TokenReviewConfig {
    /// The API server's base URL, `https://host[:port][/path-prefix]`.
    pub api_server: String,
    /// The CA certificate(s) the API server's certificate chains to.
    pub ca: ApiServerCa,
    /// How this client authenticates itself.
    pub credentials: ApiCredentials,
    /// The audiences requested in the TokenReview. Default `[DEFAULT_AUDIENCE]`; when not
    /// empty, the review's `status.audiences` must contain one of them.
    pub audiences: Vec<String>,
    /// Retry once without audiences when `status.error` mentions "token audiences", as
    /// Linkerd does for API servers that cannot review audiences. Default `true`.
    pub retry_without_audiences: bool,
    /// Per-request timeout (connection, TLS, answer). Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Sustained requests per second to the API server. Default [`DEFAULT_QPS`].
    pub qps: f64,
    /// Requests allowed at once above the rate. Default [`DEFAULT_BURST`].
    pub burst: u32,
    /// Longest time a positive result is cached. Default [`DEFAULT_CACHE_TTL`]; zero disables
    /// the cache.
    pub cache_ttl: Duration,
    /// Most positive results cached. Default [`DEFAULT_CACHE_CAPACITY`].
    pub cache_capacity: usize,
}

impl TokenReviewConfig {
    /// An explicit configuration (`--api-server URL --ca-file PATH --token-file PATH`) with the
    /// defaults for everything else.
    pub fn new(
        api_server: impl Into<String>,
        ca_file: impl Into<PathBuf>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            api_server: api_server.into(),
            ca: ApiServerCa::File(ca_file.into()),
            credentials: ApiCredentials::TokenFile(token_file.into()),
            audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            retry_without_audiences: true,
            timeout: DEFAULT_TIMEOUT,
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` from
    /// the environment, the token and CA from [`IN_CLUSTER_SERVICE_ACCOUNT_DIR`].
    pub fn in_cluster() -> Result<Self, Error> {
        Self::in_cluster_with(
            |name| std::env::var(name).ok(),
            Path::new(IN_CLUSTER_SERVICE_ACCOUNT_DIR),
        )
    }

    /// The in-cluster configuration with the environment read through `env` and the
    /// ServiceAccount files taken from `service_account_dir` (`token`, `ca.crt`).
    pub fn in_cluster_with(
        env: impl Fn(&str) -> Option<String>,
        service_account_dir: &Path,
    ) -> Result<Self, Error> {
        let var = |name: &str| {
            env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::config(
                    "in-cluster configuration",
                    format!(
                        "{name} is not set, so this is not running in a Kubernetes pod; \
                         outside a pod, use a kubeconfig file or give the API server URL, CA \
                         file and token file explicitly"
                    ),
                )
            })
        };
        let host = var("KUBERNETES_SERVICE_HOST")?;
        let port = var("KUBERNETES_SERVICE_PORT")?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // IPv6
        } else {
            host
        };
        let config = Self::new(
            format!("https://{host}:{port}"),
            service_account_dir.join("ca.crt"),
            service_account_dir.join("token"),
        );
        let token_file = service_account_dir.join("token");
        if !token_file.is_file() {
            return Err(Error::config(
                "in-cluster configuration",
                format!(
                    "{} does not exist; mount the pod's ServiceAccount token \
                     (automountServiceAccountToken: true)",
                    token_file.display()
                ),
            ));
        }
        Ok(config)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |reason: &str| Err(Error::config("TokenReview configuration", reason));
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return bad("qps must be a positive number");
        }
        if self.burst == 0 {
            return bad("burst must be at least 1");
        }
        if self.timeout.is_zero() {
            return bad("the request timeout must be positive");
        }
        if self.audiences.iter().any(String::is_empty) {
            return bad("audiences must not be empty strings");
        }
        Ok(())
    }
}
