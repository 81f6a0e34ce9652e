//! The proxy identity client for meshid.
//!
//! A [`Client`] makes its own key (it never leaves the process), builds a CSR, presents it with
//! its ServiceAccount token to a [`Certifier`] (the in-process CA through `LocalCertifier`,
//! feature `local-ca`, or a remote one), **validates the answer before installing it**, and
//! renews at a jittered refresh point well before expiry, backing off with jitter on failure,
//! forever. Its
//! [`Credentials`] feed rustls: [`tls::server_config`] and [`tls::client_config`] present the
//! current certificate (lock-free swap: new handshakes see a renewal at once, established
//! connections are untouched) and verify peers against the current trust bundle, which can be
//! replaced at run time for anchor rotation: [`BundleWatcher`] follows a bundle file (a mounted
//! ConfigMap) and installs each new version that parses and still verifies the client's own
//! certificate, keeping the previous bundle otherwise.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use meshid_ca::Ca;
//! use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
//! use meshid_client::{Client, ClientConfig, LocalCertifier, State, TokenSource};
//! use meshid_policy::{IssuancePolicy, Mesh, TokioClock};
//! use meshid_verify::TrustBundle;
//! use time::macros::datetime;
//! use zeroize::Zeroizing;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let day = std::time::Duration::from_secs(86_400);
//! let root = create_root(&CaOptions::root("root.linkerd.cluster.local", now, 365 * day))?;
//! let issuer = create_intermediate(&root, &CaOptions::issuer("identity.linkerd.cluster.local", now, 2 * day))?;
//! let bundle = TrustBundle::from_pem(root.pem().as_bytes())?;
//! let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone())?);
//! ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)?;
//!
//! let clock = TokioClock::new(now);
//! let identity = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
//! let token = TokenSource::Fixed(Zeroizing::new(b"in-process".to_vec()));
//! let mut client = Client::new(
//!     ClientConfig::new(identity, token, bundle),
//!     LocalCertifier::new(ca, clock),
//!     clock,
//! )?;
//! client.certify_once().await?;
//! assert!(matches!(client.credentials().current_state(), State::Ready { .. }));
//! # Ok(())
//! # }
//! ```
//!
//! Run the loop with [`Client::run`] on a tokio runtime, passing a shutdown future; an
//! out-of-process proxy also runs [`BundleWatcher::run`] on its `--trust-anchors` file.
//!
//! # Limitations
//!
//! - [`BundleWatcher`] watches the bundle file's folder (inotify on Linux, through
//!   `meshid-watch`) and polls (default every 10 seconds, by SHA-256 of the content) in case a
//!   notification is missed: on file systems without notifications, or while the folder does
//!   not exist, a change is installed within one poll. Kubelet itself takes up to a minute plus
//!   its cache TTL to update a mounted ConfigMap.
//! - A bundle that would not verify the certificate in use is refused until the client has
//!   renewed onto one it verifies; remove an old anchor only after the issuer has moved
//!   (see the anchor-rotation guide).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod bundle;
mod certifier;
mod config;
mod driver;
mod error;
mod metrics;
mod store;
pub mod tls;

pub use bundle::{BundleCheck, BundleWatchOptions, BundleWatcher, DEFAULT_BUNDLE_POLL_INTERVAL};
#[cfg(feature = "local-ca")]
pub use certifier::LocalCertifier;
pub use certifier::{Certifier, CertifyError, CertifyRequest, CertifyResponse};
pub use config::{ClientConfig, TokenSource};
pub use driver::Client;
pub use error::{BundleProblem, ConfigProblem, Error, ResponseProblem, TokenProblem};
/// The time source, re-exported from `meshid-policy` where it lives (every meshid crate takes
/// it from there).
pub use meshid_policy::{Clock, ManualClock, SystemClock, TokioClock};
pub use metrics::Metrics;
pub use store::{Credentials, Snapshot, State};
