//! Access to the Kubernetes API server for meshid: where it is — in-cluster, a kubeconfig, or
//! explicit — how it is trusted and how this process authenticates, and a pooled HTTPS client
//! on rustls with ring.
//!
//! meshid talks to the API server for two things: TokenReviews (`meshid-authn`) and Kubernetes
//! Events (`meshid-issuer`, feature `kube-events`). Both take a [`KubeApiConfig`] and POST
//! JSON through a [`KubeClient`]; this crate is the one place that knows how.
//!
//! | constructor | where the settings come from |
//! |---|---|
//! | [`KubeApiConfig::in_cluster`] | a pod: `KUBERNETES_SERVICE_HOST`/`_PORT`, the mounted ServiceAccount token and `ca.crt` ([`IN_CLUSTER_SERVICE_ACCOUNT_DIR`]) |
//! | [`KubeApiConfig::from_kubeconfig`] | a kubeconfig's context: server, CA (file or data), client certificate, token, token file or exec credential plugin |
//! | [`KubeApiConfig::discover`] | where kubectl and Linkerd look: the kubeconfig `KUBECONFIG` names, else `~/.kube/config`, else in-cluster |
//! | [`KubeApiConfig::new`] | explicit: API server URL, CA file, token file |
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//!
//! use meshid_kube::{ApiCredentials, ApiServerCa, KubeApiConfig};
//!
//! let kubeconfig = "
//! current-context: dev
//! contexts: [{name: dev, context: {cluster: kind, user: identity}}]
//! clusters: [{name: kind, cluster: {server: 'https://127.0.0.1:6443', certificate-authority: pki/ca.crt}}]
//! users: [{name: identity, user: {tokenFile: identity.token}}]
//! ";
//! let config = KubeApiConfig::from_kubeconfig_str(kubeconfig, Path::new("/etc/meshid"), None)?;
//! assert_eq!(config.api_server, "https://127.0.0.1:6443");
//! // Relative paths are relative to the kubeconfig's folder.
//! assert_eq!(config.ca, ApiServerCa::File("/etc/meshid/pki/ca.crt".into()));
//! assert_eq!(
//!     config.credentials,
//!     ApiCredentials::TokenFile("/etc/meshid/identity.token".into())
//! );
//!
//! // What would weaken the connection is refused, by name.
//! let insecure = kubeconfig.replace(
//!     "certificate-authority: pki/ca.crt",
//!     "insecure-skip-tls-verify: true",
//! );
//! let err = KubeApiConfig::from_kubeconfig_str(&insecure, Path::new("/etc/meshid"), None)
//!     .unwrap_err();
//! assert!(err.to_string().contains("sets insecure-skip-tls-verify"));
//!
//! // In a server: one client, pooled connections, a JSON POST per call.
//! async fn post_event(
//!     config: KubeApiConfig,
//!     event: Vec<u8>,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     let client = meshid_kube::KubeClient::new(config)?; // reads the CA now
//!     let answer = client.post_json("/api/v1/namespaces/linkerd/events", event).await?;
//!     if !answer.is_success() {
//!         return Err(format!("HTTP {}: {}", answer.status, answer.error_message()).into());
//!     }
//!     Ok(())
//! }
//! # let _ = post_event;
//! # Ok::<(), meshid_kube::Error>(())
//! ```
//!
//! # Design choices
//!
//! - **hyper + rustls, not kube-rs.** A few POSTs do not warrant kube-rs's dependency tree
//!   (k8s-openapi for every API group, tower stacks), and its rustls feature enables rustls'
//!   default provider, aws-lc-rs, which this workspace bans. hyper 1 + hyper-util's pooled
//!   client + hyper-rustls (ring, no default features) keep connections alive across requests
//!   with a few small, widely used crates.
//! - **Kubeconfig with yaml-rust2.** `serde_yaml` is unmaintained; yaml-rust2 is the
//!   maintained, pure-Rust successor of yaml-rust, and a kubeconfig is small enough to walk by
//!   hand, as kubectl resolves it: the context named, else `current-context`; its cluster's
//!   `server`, `certificate-authority-data` (which wins) or `certificate-authority`; its user's
//!   `client-certificate[-data]` + `client-key[-data]`, `token`, `tokenFile` or `exec`
//!   plugin, relative paths taken from the kubeconfig's folder. What would weaken or silently
//!   change the connection is refused by name rather than half-supported:
//!   `insecure-skip-tls-verify: true`, `tls-server-name`, `proxy-url`, auth-provider plugins
//!   (removed from kubectl too), basic authentication.
//! - **Exec credential plugins** ([`ExecPlugin`]; `aws eks get-token`,
//!   `gke-gcloud-auth-plugin`, `kubelogin`) run as kubectl runs them: `KUBERNETES_EXEC_INFO`
//!   set (with the cluster when `provideClusterInfo`), no terminal, standard input closed.
//!   Their token or client certificate (`tsh kube credentials`) is kept until its
//!   `expirationTimestamp` (less 10 s) and fetched anew when the API server answers 401, and
//!   the request is then sent once more; a new certificate gets new connections. One run at a
//!   time; a run counts against the request's timeout and is killed with it. The plugin's
//!   output is never quoted in errors.
//! - **The API server's certificate is always verified**, against the configured CA only (no
//!   system roots), and only `https://` URLs are accepted.
//! - **Credentials are secrets.** Tokens and keys are zeroized when dropped, never logged,
//!   never in an error message, and [`ApiCredentials`]' `Debug` redacts them; the
//!   `Authorization` header is marked sensitive.
//! - **One message per failure.** Transport errors chain their sources into one line
//!   ([`Error::Transport`]); every error says what to change.
//!
//! # Limitations
//!
//! - POST only, HTTP/1.1 only: what TokenReviews and Events need. No watches, no lists.
//! - The CA file, and a kubeconfig's client certificate and key, are read once (when the
//!   client or the configuration is built); a token file on every request.
//! - Exec credential plugins run without a terminal (`interactiveMode: Always` is refused):
//!   log in first where a plugin needs it.
//! - Answers longer than [`MAX_RESPONSE_LEN`] are refused.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod client;
mod config;
mod error;
mod exec;
mod kubeconfig;

pub use client::{KubeClient, MAX_RESPONSE_LEN, Response};
pub use config::{
    ApiCredentials, ApiServerCa, DEFAULT_TIMEOUT, IN_CLUSTER_SERVICE_ACCOUNT_DIR, KubeApiConfig,
};
pub use error::Error;
pub use exec::{EXEC_API_VERSIONS, ExecPlugin};
