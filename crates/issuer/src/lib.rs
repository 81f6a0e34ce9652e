//! The issuer and trust-anchor lifecycle of a meshid identity service.
//!
//! [`meshid_ca::Ca`] validates and swaps issuers and trust bundles; this crate keeps them in
//! step with files on disk and says what happened.
//!
//! - **Loading.** [`IssuerFolder`] reads an issuer Secret in either scheme
//!   ([`IssuerScheme::LinkerdTls`]: `crt.pem` + `key.pem`; [`IssuerScheme::KubernetesTls`]:
//!   `tls.crt` + `tls.key` + `ca.crt`) through one resolution of kubelet's `..data` link, so
//!   the certificate and key always come from the same version of the Secret.
//! - **Reload.** [`Reloader`] watches the issuer folder and the anchor bundle
//!   (`ca-bundle.crt`, or `ca.crt` of a `kubernetes.io/tls` folder) with inotify **and** polls
//!   them by SHA-256 every 60 s, so a dead watcher cannot freeze rotation; every change is
//!   validated before the swap, and on failure the old issuer keeps serving.
//! - **Events** go to an [`EventSink`] with Linkerd's reasons and messages: [`TracingSink`]
//!   (default), [`CollectingSink`] (tests), and `KubeEventSink` (feature `kube-events`),
//!   which posts core/v1 Events on the identity Deployment from a background task (its
//!   `KubeEventsTask::close` posts what is still queued at shutdown, within a deadline).
//!   **Metrics**: [`Metrics`].
//! - **Anchor rotation without downtime**: bundle {old, new} → issuer signed by new → bundle
//!   {new}; a bundle that would orphan the issuer in use is refused with a message saying so.
//!   In-process clients follow [`Reloader::trust_bundle_updates`].
//! - **Issuer auto-rotation** without cert-manager: [`AutoRotator`] mints a fresh issuer from
//!   the trust-anchor key on cert-manager's schedule and swaps it into the folder.
//! - **Bootstrap**: [`bootstrap`] writes a trust anchor, an issuer and cert-manager manifests.
//!
//! | feature | what |
//! |---|---|
//! | `kube-events` | `KubeEventSink`: events as typed core/v1 Events through the API server (`meshid-kube`, kube-rs on rustls/ring: kubeconfig, in-cluster or explicit) |
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use meshid_ca::Ca;
//! use meshid_ca::bootstrap::CaOptions;
//! use meshid_policy::{IssuancePolicy, Mesh, TokioClock};
//! use meshid_issuer::bootstrap::{self, OutputFiles, TrustAnchorKey};
//! use meshid_issuer::{CollectingSink, IssuerFolder, IssuerScheme, Reloader, reason};
//! use meshid_verify::TrustBundle;
//! use time::macros::datetime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("meshid-issuer-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let now = datetime!(2026-06-01 12:00 UTC);
//! // A trust anchor and an issuer in a `linkerd.io/tls` folder.
//! let root = bootstrap::write_root_ca(
//!     &OutputFiles::new(dir.join("ca.crt"), dir.join("ca.key")),
//!     &CaOptions::root(bootstrap::ROOT_COMMON_NAME, now, bootstrap::ROOT_VALIDITY),
//!     true,
//! )?;
//! let anchor = TrustAnchorKey::load(&dir.join("ca.crt"), &dir.join("ca.key"))?;
//! let issuer_dir = dir.join("issuer");
//! std::fs::create_dir_all(&issuer_dir)?;
//! bootstrap::write_issuer(
//!     &anchor,
//!     &OutputFiles::new(issuer_dir.join("crt.pem"), issuer_dir.join("key.pem")),
//!     &bootstrap::issuer_options(bootstrap::ISSUER_COMMON_NAME, now, bootstrap::ISSUER_VALIDITY, true),
//!     true,
//! )?;
//!
//! // The CA starts with no issuer; the reloader loads it and keeps it current.
//! let bundle = TrustBundle::from_pem(root.pem().as_bytes())?;
//! let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle)?);
//! let events = Arc::new(CollectingSink::new());
//! let mut reloader = Reloader::new(
//!     Arc::clone(&ca),
//!     IssuerFolder::new(&issuer_dir, IssuerScheme::LinkerdTls),
//!     TokioClock::new(now),
//! )
//! .with_sink(Arc::clone(&events));
//! reloader.reload_now();
//! assert!(ca.issuer().is_some());
//! assert_eq!(events.events()[0].reason, reason::ISSUER_UPDATED);
//! assert_eq!(events.events()[0].message, "Updated identity issuer");
//! // In a server: tokio::spawn(reloader.run(shutdown));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Limitations
//!
//! - Files are read synchronously on the reloader's task (they are a few kilobytes).
//! - The watcher is inotify (or the platform's equivalent through `notify`); on file systems
//!   without notifications the poll alone applies changes, within `poll_interval`.
//! - The auto-rotator keeps the trust-anchor key in memory for its lifetime; prefer
//!   cert-manager, which keeps it in a Secret the identity service cannot read.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod autorotate;
pub mod bootstrap;
mod error;
mod event;
mod folder;
#[cfg(feature = "kube-events")]
mod kube;
mod metrics;
mod reloader;
mod write;

pub use autorotate::{
    AutoRotator, BACKDATE, MAX_CHECK_INTERVAL, RETRY_INTERVAL, ROTATION_LOCK_FILE,
};
pub use error::{Error, MintProblem};
pub use event::{CollectingSink, Event, EventKind, EventSink, TracingSink, reason};
pub use folder::{
    BUNDLE_FILE, ContentHash, DATA_LINK, IssuerFiles, IssuerFolder, IssuerScheme, bundle_hash,
    read_trust_bundle,
};
#[cfg(feature = "kube-events")]
pub use kube::{KubeEventSink, KubeEventsConfig, KubeEventsTask, ObjectReference};
/// Where the Kubernetes API server is and how to reach it (from `meshid-kube`, shared with
/// TokenReview).
#[cfg(feature = "kube-events")]
pub use meshid_kube::{ApiCredentials, KubeApiConfig};
pub use metrics::{Metrics, ReloadResult};
pub use reloader::{
    Change, DEFAULT_POLL_INTERVAL, ReloadHandle, ReloadOutcome, Reloader, ReloaderOptions,
};
