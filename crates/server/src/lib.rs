//! The meshid identity service, wired together: what `cargo run --example identity-ca` runs.
//!
//! [`serve::start`] reads the trust anchors and the issuer folder (failing fast with a one-line
//! reason), and runs, until a shutdown future completes:
//!
//! - the Linkerd-compatible gRPC `Certify` service (meshid-grpc) over the in-process CA, with
//!   token authentication chosen by [`serve::TokenValidation`] (TokenReview, JWKS, static file);
//! - the issuer and anchor reloader (meshid-issuer), whose events (and those of issuance and
//!   auto-rotation) are logged and, with [`serve::ServeConfig::kube_events`], posted as
//!   Kubernetes Events on the `linkerd-identity` Deployment through the same API server access
//!   as TokenReview ([`serve::KubeApi`]);
//! - the admin HTTP server ([`admin`]): `/ping`, `/live` (the process), `/ready` (200 while the
//!   gRPC server is serving and the loaded issuer can issue now; otherwise 503 with the
//!   reasons, see [`ready::Readiness`]), `/metrics`.
//!
//! Every limit of both servers is set, strict by default ([`meshid_grpc::GrpcLimits`],
//! [`admin::AdminLimits`]), and checked at start with a one-line error.
//!
//! [`dev::DevState`] prepares a development state folder (anchor, issuer, token-signing key,
//! JWKS) so all of this runs on one machine; [`linkerd::LinkerdMounts`] finds the issuer and
//! trust anchors where Linkerd's chart mounts them.
//!
//! # Example
//!
//! ```no_run
//! use meshid_server::dev::DevState;
//! use meshid_server::serve::{ServeConfig, TokenValidation, start};
//!
//! # async fn run() -> Result<(), meshid_server::Error> {
//! # let now = time::OffsetDateTime::UNIX_EPOCH;
//! let dev = DevState::prepare(".meshid-dev", now)?;
//! let config = ServeConfig::new(
//!     dev.issuer_folder(),
//!     Some(dev.trust_anchors()),
//!     TokenValidation::Jwks(dev.jwks()),
//! );
//! let running = start(config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! running.wait().await
//! # }
//! # let _ = run;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use std::net::SocketAddr;

/// The admin HTTP endpoint (`meshid-admin`), re-exported where the service's users find it.
pub use meshid_admin as admin;
pub mod cli;
pub mod dev;
pub mod linkerd;
pub mod manifests;
pub mod ready;
pub mod serve;

/// Why the identity service could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The admin HTTP server could not be set up (its limits, its listener).
    #[error(transparent)]
    Admin(#[from] meshid_admin::Error),
    /// Token authentication could not be set up.
    #[error(transparent)]
    Authn(meshid_authn::Error),
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {reason}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason (`io::Error` is neither `Clone` nor comparable; the
        /// process stops on it either way).
        reason: String,
    },
    /// Development credentials could not be minted or written.
    #[error(transparent)]
    Bootstrap(meshid_issuer::Error),
    /// The CA refused its configuration or the issuer.
    #[error(transparent)]
    Ca(meshid_ca::Error),
    /// The configuration is invalid.
    #[error("{reason}")]
    Config {
        /// What is wrong, as the command line shows it: a flag and its value, or another
        /// crate's text with what it was reading. Only `identity-ca` acts on it, by printing it
        /// and exiting, so it is kept as text.
        reason: String,
    },
    /// The development state folder is unusable.
    #[error("{reason}")]
    Dev {
        /// What is wrong: the file or folder and the operating system's or issuer's text.
        /// Only `identity-ca --dev` acts on it, by printing it and exiting.
        reason: String,
    },
    /// The gRPC server failed.
    #[error(transparent)]
    Grpc(meshid_grpc::Error),
    /// The issuer folder or anchor bundle could not be read.
    #[error(transparent)]
    Issuer(meshid_issuer::Error),
    /// The Kubernetes API server settings (kubeconfig, in-cluster) are not usable.
    #[error(transparent)]
    Kube(meshid_kube::Error),
    /// Kubernetes Events could not be set up ([`serve::ServeConfig::kube_events`]).
    #[error(transparent)]
    KubeEvents(meshid_issuer::Error),
    /// Kubernetes manifests could not be written, or read back ([`manifests`]).
    #[error(transparent)]
    Manifests(manifests::ManifestError),
    /// A ServiceAccount or identity name given on the command line is not valid.
    #[error(transparent)]
    Policy(meshid_policy::Error),
    /// `--identity-scheme` names no issuer layout.
    #[error("--identity-scheme: {0}")]
    Scheme(meshid_issuer::Error),
}
