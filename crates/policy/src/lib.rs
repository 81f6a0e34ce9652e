//! Issuance policy for meshid: pure functions, no I/O and no clock.
//!
//! This crate is the vocabulary the other meshid crates share:
//!
//! | item | what it is |
//! |---|---|
//! | [`Mesh`] | trust domain + control-plane namespace; formats and parses identity names and SPIFFE IDs |
//! | [`ServiceAccount`] | a validated Kubernetes ServiceAccount (names may contain dots) |
//! | [`SanMode`] | DNS SAN (Linkerd-compatible default), DNS + SPIFFE URI, or SPIFFE only |
//! | [`parse_go_duration`], [`format_go_duration`] | Go-syntax durations, as Linkerd's flags take them |
//! | [`IssuancePolicy`] | lifetime, clock skew, maximum lifetime, SAN mode, allowed key algorithms |
//! | [`IssuancePolicy::validity_window`] | NotBefore/NotAfter of a leaf, clamped to the issuer chain and trust anchors |
//! | [`IssuancePolicy::decide`] | whether a CSR's names and key may be certified for a ServiceAccount |
//!
//! # Example
//!
//! ```
//! use meshid_policy::{
//!     CredentialRole, CsrContent, IssuancePolicy, KeyAlgorithm, Mesh, PublicKeyKind,
//!     ServiceAccount, ValidityBound, format_go_duration,
//! };
//! use time::macros::datetime;
//!
//! let mesh = Mesh::default(); // cluster.local, control plane in `linkerd`
//! let sa = ServiceAccount::from_username("system:serviceaccount:emojivoto:web")?;
//! let identity = mesh.identity(&sa)?;
//! assert_eq!(identity.as_str(), "web.emojivoto.serviceaccount.identity.linkerd.cluster.local");
//!
//! let policy = IssuancePolicy::default();
//! assert_eq!(format_go_duration(policy.lifetime), "24h0m0s");
//!
//! // What the CSR asks for (meshid-csr extracts this from a real CSR).
//! let mut csr = CsrContent::new(PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256));
//! csr.dns_names.push(identity.to_string());
//! let decision = policy.decide(&mesh, &sa, &csr)?;
//! assert_eq!(decision.sans.len(), 1);
//!
//! // The issuer expires in 10 hours: the leaf may not outlive it.
//! let now = datetime!(2026-11-26 12:00 UTC);
//! let issuer = ValidityBound::new(
//!     CredentialRole::Issuer { position: 0 },
//!     datetime!(2026-11-01 0:00 UTC),
//!     datetime!(2026-11-26 22:00 UTC),
//! );
//! let window = policy.validity_window(now, &[issuer])?;
//! assert_eq!(window.not_after, datetime!(2026-11-26 22:00 UTC));
//! assert_eq!(window.clamped_by, Some(CredentialRole::Issuer { position: 0 }));
//! # Ok::<(), meshid_policy::Error>(())
//! ```
//!
//! # Defaults and why
//!
//! - Lifetime 24h and clock skew 20s: Linkerd's, so Linkerd proxies refresh as they expect.
//! - Maximum lifetime 7 days: a typo in a flag must not mint year-long workload certificates.
//! - P-256 only: what every Linkerd proxy generates; P-384 is opt-in.
//! - Unlike Linkerd, NotAfter is clamped to the trust anchors as well as to the issuer chain, and
//!   ServiceAccount names with dots (valid in Kubernetes) are accepted.
//!
//! # Time
//!
//! Nothing here reads the system clock on its own: what validates, schedules or expires takes
//! a [`Clock`], the one time source every meshid crate shares ([`SystemClock`] for binaries,
//! [`ManualClock`] for tests and replays, `TokioClock` for async code tested under paused
//! time).
//!
//! # Features
//!
//! | feature | adds |
//! |---|---|
//! | `x509` | [`PublicKeyKind`] from x509-parser's `SubjectPublicKeyInfo` |
//! | `tokio` | `TokioClock`, a [`Clock`] following tokio's (pausable) time |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod clock;
mod duration;
mod error;
mod key;
mod names;
mod policy;
#[cfg(feature = "x509")]
pub mod x509;

#[cfg(feature = "tokio")]
pub use clock::TokioClock;
pub use clock::{Clock, ManualClock, SystemClock};
pub use duration::{GoDuration, MAX_GO_DURATION, format_go_duration, parse_go_duration};
pub use error::{Error, IdentityProblem, PolicyProblem, SpiffeIdProblem, rfc3339};
pub use key::{KeyAlgorithm, PublicKeyKind};
pub use names::{
    Identity, Mesh, Namespace, San, SanMode, ServiceAccount, SpiffeId, TrustDomain,
    is_dns1123_label, is_dns1123_subdomain,
};
pub use policy::{
    CredentialRole, CsrContent, Decision, IssuancePolicy, ValidityBound, ValidityWindow,
};
