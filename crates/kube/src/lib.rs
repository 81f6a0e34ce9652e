//! Kubernetes API access for meshid, as a thin layer over [kube-rs](kube): the configuration
//! found where kubectl finds it, meshid's refusals of what would weaken or break the
//! connection, and typed requests bounded in time and size.
//!
//! meshid talks to the API server for two things: TokenReviews (`meshid-authn`) and
//! Kubernetes Events (`meshid-issuer`, feature `kube-events`). Both take a [`KubeApiConfig`]
//! (kube's [`kube::Config`] and where it came from) and create typed
//! [`k8s_openapi`] objects through a [`KubeClient`] (kube's [`kube::Client`]).
//!
//! | constructor | where the settings come from |
//! |---|---|
//! | [`KubeApiConfig::discover`] | where kubectl and kube's `Config::infer` look: the kubeconfig files `KUBECONFIG` names (merged), else `~/.kube/config`, else in-cluster |
//! | [`KubeApiConfig::from_kubeconfig`] | a kubeconfig file's context (`--kubeconfig`, `--kube-context`) |
//! | [`KubeApiConfig::in_cluster`] | a pod: `KUBERNETES_SERVICE_HOST`/`_PORT`, the mounted ServiceAccount token and `ca.crt` ([`IN_CLUSTER_SERVICE_ACCOUNT_DIR`]) |
//! | [`KubeApiConfig::new`] | explicit: API server URL, CA file, token file |
//!
//! # Example
//!
//! ```
//! use base64::Engine as _;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use meshid_kube::{ApiCredentials, KubeApiConfig, KubeClient};
//! use meshid_kube_testing::ApiServerDouble;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A local HTTPS endpoint that answers like the API server, and a kubeconfig for it.
//! let api = ApiServerDouble::start().await;
//! let kubeconfig = format!(
//!     "current-context: dev
//! contexts: [{{name: dev, context: {{cluster: kind, user: identity}}}}]
//! clusters: [{{name: kind, cluster: {{server: '{}', certificate-authority-data: {}}}}}]
//! users: [{{name: identity, user: {{token: identity-token}}}}]",
//!     api.url(),
//!     base64::engine::general_purpose::STANDARD.encode(api.ca_pem()),
//! );
//! let config = KubeApiConfig::from_kubeconfig_str(&kubeconfig, None)?;
//! assert_eq!(config.api_server(), api.url());
//! assert_eq!(config.credentials(), ApiCredentials::Token);
//!
//! // One client (kube's), typed objects, a timeout on every request.
//! let client = KubeClient::connect(config).await?;
//! let mut map = ConfigMap::default();
//! map.metadata.name = Some("meshid".to_owned());
//! let created = client.create(Some("linkerd"), &map).await?;
//! assert_eq!(created.metadata.name.as_deref(), Some("meshid"));
//! let seen = &api.requests()[0];
//! assert_eq!(seen.path, "/api/v1/namespaces/linkerd/configmaps");
//! assert_eq!(seen.authorization(), "Bearer identity-token");
//!
//! // What would weaken the connection is refused, by name.
//! let insecure = kubeconfig.replace("certificate-authority-data", "insecure-skip-tls-verify: true, x");
//! let err = KubeApiConfig::from_kubeconfig_str(&insecure, None).unwrap_err();
//! assert!(err.to_string().contains("cluster kind sets insecure-skip-tls-verify"));
//! # Ok(())
//! # }
//! ```
//!
//! # Design choices
//!
//! - **kube-rs, on ring.** The client users already debug with: its kubeconfig reading and
//!   merging, exec credential plugins, client certificates, token files (re-read at least once
//!   a minute), in-cluster configuration, HTTP(S) proxies (`proxy-url`, `HTTPS_PROXY`,
//!   `NO_PROXY`) and CA file reloading. kube-rs 1.0 and later select rustls' ring provider
//!   with the `ring` feature, and aws-lc-rs only with its opt-in `aws-lc-rs` feature: this
//!   crate enables `client`, `rustls-tls`, `ring` and `http-proxy`, nothing else, and CI checks
//!   that aws-lc-rs stays out of the dependency graph. Typed objects come from
//!   [`k8s_openapi`] at its oldest supported Kubernetes version (1.33).
//! - **meshid's refusals stay.** Before kube reads a kubeconfig's files,
//!   [`KubeApiConfig::check_kubeconfig`] refuses, by name, what kube would accept but would
//!   weaken or silently break the identity service: `insecure-skip-tls-verify`, a server that
//!   is not `https://` (a bearer token would travel in clear), basic authentication,
//!   auth-provider plugins, an exec plugin with `interactiveMode: Always` (a service has no
//!   terminal), a user with no credentials or with two ways to authenticate, a context,
//!   cluster or user that is not there. Exec plugins run non-interactively, as client-go runs
//!   them without a terminal.
//! - **Bounded, typed requests.** [`KubeClient::create`] builds the request with kube's
//!   request builder (what `Api::create` uses) and sends it through kube's client, but reads
//!   the answer itself: at most [`MAX_RESPONSE_LEN`] bytes, and never logged or quoted (a
//!   TokenReview answer carries the reviewed token back; kube's `Api` logs an answer it cannot
//!   parse). Every request has a timeout; kube's retries of 429/503/504 are off, since meshid
//!   paces its own calls.
//! - **Exec credentials renewed when refused.** kube renews an exec plugin's token a minute
//!   before its `expirationTimestamp`; on top of that, a 401 answer to a credential that was
//!   not just made builds the client anew (running the plugin again) and sends the request
//!   once more, as kubectl does, and a client certificate from a plugin is replaced before it
//!   expires.
//! - **One message per failure.** Errors say which file, which context, which plugin and what
//!   the API server said; tokens, keys and a plugin's output never appear in them.
//!
//! # Limitations
//!
//! - Creating objects is what meshid needs: [`KubeClient::create`] and [`KubeClient::send`];
//!   [`KubeClient::kube_client`] gives kube's client for anything else.
//! - kube runs an exec plugin synchronously, three times while building a client, and cannot
//!   stop it: a hung plugin is abandoned (the build fails after `exec_timeout`, or the
//!   request after its timeout) but keeps running.
//! - Token files are re-read at least once a minute (client-go's rule), not on every request.
//! - A kubeconfig without a CA is verified against the system's roots, as kubectl does.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod client;
mod config;
mod error;

pub use client::{KubeClient, MAX_RESPONSE_LEN, Response};
pub use config::{
    ApiCredentials, DEFAULT_EXEC_TIMEOUT, DEFAULT_TIMEOUT, EXEC_API_VERSIONS,
    IN_CLUSTER_SERVICE_ACCOUNT_DIR, KubeApiConfig,
};
pub use error::{Error, ExecProblem};
/// kube-rs and the typed Kubernetes objects, at the versions meshid uses.
pub use {k8s_openapi, kube};
