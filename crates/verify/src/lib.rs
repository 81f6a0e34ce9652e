//! Trust bundles and peer certificate verification for meshid, as a mesh proxy does it.
//!
//! | item | what it is |
//! |---|---|
//! | [`TrustBundle`] | trust anchors, parsed once from PEM or DER; set operations for rotation |
//! | [`verify_chain`] | webpki path building plus the mesh profile; yields a [`VerifiedPeer`] |
//! | [`verify_identity`] | [`verify_chain`], then the expected identity must be a SAN of the leaf |
//! | [`VerifiedPeer`] | the peer's SANs and [identity](VerifiedPeer::identity), validity, chain |
//! | [`Usage`], [`VerifyOptions`] | which EKU is required; allowed leaf keys, intermediates bound |
//!
//! # Example
//!
//! ```
//! use meshid_verify::{Error, TrustBundle, Usage, VerifyOptions, verify_identity};
//! use rcgen::{
//!     BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
//! };
//! use time::macros::datetime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A root, an issuer under it and a workload leaf, as the mesh CA would issue them.
//! let ca = |name: &str| {
//!     let mut params = CertificateParams::new(Vec::new())?;
//!     params.distinguished_name.push(rcgen::DnType::CommonName, name);
//!     params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//!     params.not_before = datetime!(2026-01-01 0:00 UTC);
//!     params.not_after = datetime!(2027-01-01 0:00 UTC);
//!     Ok::<_, rcgen::Error>((params, KeyPair::generate()?))
//! };
//! let (root_params, root_key) = ca("root.linkerd.cluster.local")?;
//! let root_pem = root_params.self_signed(&root_key)?.pem();
//! let root = Issuer::new(root_params, root_key);
//! let (issuer_params, issuer_key) = ca("identity.linkerd.cluster.local")?;
//! let issuer_cert = issuer_params.signed_by(&issuer_key, &root)?;
//! let issuer = Issuer::new(issuer_params, issuer_key);
//!
//! let id = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
//! let mut leaf_params = CertificateParams::new(vec![id.to_owned()])?;
//! leaf_params.extended_key_usages =
//!     vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
//! leaf_params.not_before = datetime!(2026-06-01 0:00 UTC);
//! leaf_params.not_after = datetime!(2026-06-02 0:00 UTC);
//! let leaf = leaf_params.signed_by(&KeyPair::generate()?, &issuer)?;
//!
//! // The proxy side: anchors from PEM, then the server's chain, at a given time.
//! let bundle = TrustBundle::from_pem(root_pem.as_bytes())?;
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let intermediates = [issuer_cert.der().clone()];
//! let options = VerifyOptions::default(); // the mesh profile: P-256/P-384 leaves
//! let peer =
//!     verify_identity(&bundle, leaf.der(), &intermediates, now, Usage::Server, id, &options)?;
//! assert_eq!(peer.identity(), Some(id));
//! assert_eq!(peer.chain().len(), 3); // leaf, issuer, anchor
//!
//! // Another workload's identity is refused, naming what the certificate holds.
//! let other = "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local";
//! let verify = |now, expected| {
//!     verify_identity(&bundle, leaf.der(), &intermediates, now, Usage::Server, expected, &options)
//! };
//! let err = verify(now, other).unwrap_err();
//! assert!(matches!(err, Error::IdentityMismatch { .. }));
//!
//! // A day later the leaf has expired.
//! let later = datetime!(2026-06-03 0:00 UTC);
//! let err = verify(later, id).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "certificate chain rejected: a certificate expired at 2026-06-02T00:00:00Z (now is \
//!      2026-06-03T00:00:00Z)"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # The mesh profile, and why
//!
//! webpki (with ring's algorithms) builds and checks the path: signatures, validity of the
//! leaf and intermediates, basic and name constraints, and EKU "required if present" on the
//! issuers. No DNS name is checked by webpki: mesh identities are matched exactly against the
//! leaf's DNS and URI SANs, as Linkerd's proxy does. On top of webpki, [`verify_chain`]
//! refuses:
//!
//! - a leaf that is a CA, has no EKU, has an EKU that does not allow the [`Usage`], states
//!   anyExtendedKeyUsage, asserts keyCertSign or has serial number zero: a workload
//!   certificate says what it is for, and a leaf that looks like a CA is a CA misconfiguration;
//! - a leaf key other than ECDSA P-256/P-384 by default (what meshid issues); with
//!   `key_algorithms: None`, any key webpki can verify a handshake with, but not weak ones;
//! - a path ending in a trust anchor that is expired or not yet valid at `now` (webpki does
//!   not check anchors; an expired anchor is the classic mesh-wide outage, so it gets its own
//!   error, [`Error::AnchorExpired`], and path building first tries the other anchors).
//!
//! Trust bundles refuse certificates that are not CA certificates: a leaf pasted into a
//! bundle is a mistake that webpki would silently accept as an anchor.
//!
//! The clock is never read: `now` is a parameter.
//!
//! One parser reads certificates: x509-parser, for the mesh profile and the bundle's anchors;
//! webpki parses them again, as it must, for path building.
//!
//! # Remembered anchor signatures, and why that is safe
//!
//! A mesh chain is leaf → issuer → anchor, and the issuer changes rarely, so of the two
//! signatures webpki verifies per chain, the anchor's over the issuer is the same every time.
//! A [`TrustBundle`] (and its clones) remembers the signatures its anchors' keys made that
//! verified, and does not verify one of those again: each chain after the first costs one
//! ECDSA verification instead of two.
//!
//! - **What is remembered is everything the verdict depends on.** A signature's validity is
//!   a function of the algorithm, the public key, the signed message and the signature alone;
//!   it does not depend on time or on anything else in the path. The bundle keeps exact copies
//!   of those (the public-key and signature algorithm identifiers, which anchor's key, the
//!   message, which is the issuer's whole TBSCertificate, and the signature) and skips a
//!   verification only when all of them are byte for byte the same. A certificate that differs
//!   in one byte is verified afresh.
//! - **Only the signature is skipped.** webpki checks every certificate's validity period,
//!   basic, name and EKU constraints on every path, and the mesh profile and the issuer's
//!   signature over the leaf are checked every time: a remembered signature does not let an
//!   issuer outlive its NotAfter.
//! - **Failures are never remembered**, and only signatures by the bundle's own anchor keys
//!   are (never an issuer's over a leaf, which is new every time).
//! - **The memory is bounded**: 32 signatures per bundle, the oldest forgotten first, each
//!   over a message of at most 4 KiB (longer ones are verified every time). Only certificates
//!   an anchor really signed can take a place. A new bundle (a reloaded or rotated trust anchor
//!   file) starts empty.
//!
//! # Limitations
//!
//! - No revocation (CRL or OCSP): mesh certificates live for a day.
//! - No Web PKI (CABF) encoding rules beyond webpki's; no subject CN matching; no wildcards
//!   in identity matching. The x509-limbo divergences are listed in
//!   `testdata/limbo-divergences.txt` with reasons.
//! - webpki's limits apply: no DirectoryName name constraints, self-issued intermediates
//!   are counted for path length.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod anchor_signatures;
mod bundle;
mod error;
#[cfg(feature = "rustls")]
mod rustls_glue;
mod verify;
mod x509;

pub use bundle::{Anchor, TrustBundle};
pub use error::{AnchorProblem, Error, MalformedCertificate, PemProblem};
pub use verify::{Usage, VerifiedPeer, VerifyOptions, verify_chain, verify_identity};

/// rustls, for [`handshake_signatures!`]'s expansion (not an API).
#[cfg(feature = "rustls")]
#[doc(hidden)]
pub use rustls as __rustls;
