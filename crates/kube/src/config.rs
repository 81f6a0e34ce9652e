//! Where the Kubernetes API server is, how it is trusted and how this process authenticates.

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::{Error, ExecPlugin};

/// Where a pod finds its ServiceAccount token and the cluster CA.
pub const IN_CLUSTER_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The default per-request timeout (connection, TLS, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The CA certificate(s) the API server's certificate must chain to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiServerCa {
    /// A PEM file, read when the [`KubeClient`](crate::KubeClient) is built.
    File(PathBuf),
    /// PEM text (a kubeconfig's `certificate-authority-data`).
    Pem(Vec<u8>),
}

/// How this process authenticates itself to the API server.
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
    /// A bearer token printed by an exec credential plugin (a kubeconfig's `exec`).
    Exec(ExecPlugin),
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
            Self::Exec(plugin) => f.debug_tuple("Exec").field(plugin).finish(),
        }
    }
}

/// Where the API server is, which CA its certificate chains to, how this process
/// authenticates, and how long one request may take.
///
/// Built explicitly ([`new`](Self::new)), from the pod's environment
/// ([`in_cluster`](Self::in_cluster)) or from a kubeconfig
/// ([`from_kubeconfig`](Self::from_kubeconfig)); used by a [`KubeClient`](crate::KubeClient).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeApiConfig {
    /// The API server's base URL, `https://host[:port][/path-prefix]`.
    pub api_server: String,
    /// The CA certificate(s) the API server's certificate chains to.
    pub ca: ApiServerCa,
    /// How this client authenticates itself.
    pub credentials: ApiCredentials,
    /// Per-request timeout (connection, TLS, answer). Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl KubeApiConfig {
    /// An explicit configuration (`--api-server URL --ca-file PATH --token-file PATH`): the
    /// CA file is read when the client is built, the token file on every request.
    pub fn new(
        api_server: impl Into<String>,
        ca_file: impl Into<PathBuf>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        Self::with(
            api_server.into(),
            ApiServerCa::File(ca_file.into()),
            ApiCredentials::TokenFile(token_file.into()),
        )
    }

    pub(crate) fn with(api_server: String, ca: ApiServerCa, credentials: ApiCredentials) -> Self {
        Self {
            api_server,
            ca,
            credentials,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The configuration where kubectl and Linkerd look for one when none is named (client-go's
    /// default loading rules): the kubeconfig `KUBECONFIG` names, else `~/.kube/config` if it
    /// exists, else the in-cluster configuration. `context` picks a kubeconfig context (default:
    /// its `current-context`); naming one when no kubeconfig is found is an error.
    ///
    /// `KUBECONFIG` may name one file only: meshid does not merge kubeconfigs (`kubectl config
    /// view --flatten` does).
    pub fn discover(context: Option<&str>) -> Result<Self, Error> {
        Self::discover_with(
            |name| std::env::var(name).ok(),
            Path::new(IN_CLUSTER_SERVICE_ACCOUNT_DIR),
            context,
        )
    }

    /// [`discover`](Self::discover) with the environment (`KUBECONFIG`, `HOME` and the
    /// in-cluster variables) read through `env` and the ServiceAccount files taken from
    /// `service_account_dir`.
    pub fn discover_with(
        env: impl Fn(&str) -> Option<String>,
        service_account_dir: &Path,
        context: Option<&str>,
    ) -> Result<Self, Error> {
        if let Some(list) = env("KUBECONFIG") {
            let paths: Vec<PathBuf> = std::env::split_paths(&list)
                .filter(|path| !path.as_os_str().is_empty())
                .collect();
            match paths.as_slice() {
                [] => {}
                [path] => return Self::from_kubeconfig(path, context),
                _ => {
                    return Err(Error::config(
                        "KUBECONFIG",
                        format!(
                            "it names {} files, and meshid reads one kubeconfig: name the one to \
                             use explicitly (--kubeconfig), or merge them into one with \
                             `kubectl config view --flatten`",
                            paths.len()
                        ),
                    ));
                }
            }
        }
        if let Some(home) = env("HOME").filter(|home| !home.is_empty()) {
            let path = Path::new(&home).join(".kube").join("config");
            if path.is_file() {
                return Self::from_kubeconfig(&path, context);
            }
        }
        if let Some(context) = context {
            return Err(Error::config(
                "Kubernetes API configuration",
                format!(
                    "context {context:?} was named, but there is no kubeconfig (neither \
                     KUBECONFIG nor ~/.kube/config); name one explicitly"
                ),
            ));
        }
        Self::in_cluster_with(env, service_account_dir)
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
        Ok(Self::new(
            format!("https://{host}:{port}"),
            service_account_dir.join("ca.crt"),
            token_file,
        ))
    }
}
