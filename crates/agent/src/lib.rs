//! A meshid workload agent: one workload's identity, served the way its proxy wants it.
//!
//! Linkerd's proxy certifies itself over Linkerd's `Certify`; Envoy takes its certificates
//! over SDS; SPIFFE-aware software fetches X.509-SVIDs from the SPIFFE Workload API. The agent
//! runs beside one workload (the sidecar model) and serves the last two from the same identity
//! CA:
//!
//! 1. It certifies the workload's ServiceAccount with the identity CA (`identity-ca`) over
//!    `Certify`, with the workload's token, through [`meshid_client::Client`]: its own key,
//!    kept in memory only; the answer validated before it is installed; renewals on
//!    meshid-rotation's jittered schedule; backoff with jitter while the CA is unreachable.
//! 2. It follows the trust-anchor file ([`meshid_client::BundleWatcher`]).
//! 3. It serves the SPIFFE Workload API ([`meshid_workload_api`]) and Envoy SDS
//!    ([`meshid_sds`]) on Unix sockets; both push again on every renewal and bundle change.
//! 4. Admin HTTP: `/ready` (503 until the first certificate is installed, and after it
//!    expired), `/live`, `/ping` and `/metrics` (the identity client's metrics).
//!
//! The workload's identity is its SPIFFE ID, `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`, so the
//! identity CA must issue SPIFFE IDs: run it with `--san-mode spiffe` (the leaf carries only
//! the SPIFFE ID) or `--san-mode dns+spiffe` (it also carries the Linkerd identity name, so
//! Linkerd proxies verify it too). The agent asks for the mode it is given
//! ([`AgentConfig::san_mode`], default `spiffe`); a `dns` agent is refused at start.
//!
//! # Example
//!
//! ```no_run
//! use meshid_agent::{AgentConfig, start};
//! use meshid_client::TokenSource;
//! use meshid_policy::ServiceAccount;
//!
//! # async fn run() -> Result<(), meshid_agent::Error> {
//! let sa = ServiceAccount::new("emojivoto", "web").expect("valid");
//! let mut config = AgentConfig::new(
//!     "http://linkerd-identity-headless.linkerd.svc.cluster.local:8080",
//!     "/var/run/linkerd/identity/trust-roots/ca-bundle.crt",
//!     sa,
//!     TokenSource::File("/var/run/secrets/tokens/linkerd-identity-token".into()),
//! );
//! config.workload_api_socket = Some("/run/spire/sockets/agent.sock".into());
//! config.sds_socket = Some("/var/run/secrets/workload-spiffe-uds/socket".into());
//! let running = start(config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! running.wait().await
//! # }
//! # let _ = run;
//! ```
//!
//! # Security
//!
//! The private key leaves the process only in Workload API and SDS responses, which is what
//! those protocols are for; it is never logged or written to disk. Whoever can open the
//! sockets receives it: see [`meshid_workload_api::UnixSocket::bind`] for the permissions
//! (0660 by default) and where to put the sockets.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod agent;
mod error;

pub use agent::{AgentConfig, Running, start};
pub use error::{AddrProblem, AnchorsProblem, ConfigProblem, Error};
