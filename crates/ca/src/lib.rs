//! An in-process identity CA for meshid.
//!
//! [`Ca`] holds the mesh naming context, the [`IssuancePolicy`](meshid_policy::IssuancePolicy),
//! the trust bundle and the issuer. [`Ca::certify`] turns an authenticated ServiceAccount and a
//! DER CSR into a short-lived leaf and its chain.
//!
//! - Issuer credentials ([`IssuerCredentials`]) are validated when loaded, each failure its own
//!   [`IssuerProblem`]: the key matches the certificate; it is a CA with keyCertSign; its EKU is
//!   absent or includes serverAuth and clientAuth; every certificate is within its validity; the
//!   chain verifies to the trust bundle at `now`.
//! - The issuer key sits behind the [`Signer`] trait, so an HSM or KMS key can plug in; the
//!   default is an in-memory [`meshid_csr::KeyPair`] (PKCS#8 or SEC1 PEM).
//! - The issuer lives in an atomically swappable cell: `certify(&self)` takes no lock, the CA is
//!   `Send + Sync`, and a replacement is validated before it is swapped in. An issuer with name
//!   constraints is installed only when they permit the CA's mesh
//!   ([`IssuerProblem::NameConstraintsExcludeMesh`] otherwise).
//! - Leaves are written with rcgen, the Linkerd profile expressed as its parameters, by the
//!   issuer as rcgen reads it once from the issuer certificate; serial numbers are 16 bytes
//!   from the system random source, one draw per certificate.
//!
//! # Example
//!
//! ```
//! use meshid_ca::Ca;
//! use meshid_csr::{Csr, CsrParams, KeyPair};
//! use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
//! use meshid_verify::{TrustBundle, Usage, VerifyOptions};
//! use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyUsagePurpose};
//! use time::macros::datetime;
//!
//! // A trust anchor and an issuer (in production: files written by `step` or cert-manager).
//! let now = datetime!(2026-11-26 12:00 UTC);
//! let root_key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
//! let mut root = CertificateParams::new(vec![])?;
//! root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
//! root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
//! root.not_before = datetime!(2026-01-01 0:00 UTC);
//! root.not_after = datetime!(2036-01-01 0:00 UTC);
//! let root_cert = root.self_signed(&root_key)?;
//! let issuer_key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
//! let mut issuer = root.clone();
//! issuer.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
//! issuer.not_after = datetime!(2027-01-01 0:00 UTC);
//! let issuer_cert = issuer.signed_by(&issuer_key, &Issuer::new(root, &root_key))?;
//!
//! let bundle = TrustBundle::from_pem(root_cert.pem().as_bytes())?;
//! let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone())?;
//! ca.load_issuer_pem(&issuer_cert.pem(), &issuer_key.to_pkcs8_pem(), now)?;
//!
//! // A proxy's CSR, certified for its authenticated ServiceAccount.
//! let sa = ServiceAccount::new("emojivoto", "web")?;
//! let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
//! let csr = Csr::build(&key, &CsrParams::for_service_account(ca.mesh(), &sa, SanMode::Dns)?)?;
//! let certified = ca.certify(&sa, csr.der(), now)?;
//! assert_eq!(certified.not_after, datetime!(2026-11-27 12:00:20 UTC));
//!
//! let peer = meshid_verify::verify_chain(
//!     &bundle, &certified.leaf, &certified.chain, now, Usage::Either, &VerifyOptions::default(),
//! )?;
//! assert!(peer.matches("web.emojivoto.serviceaccount.identity.linkerd.cluster.local"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod bootstrap;
mod ca;
mod error;
mod issuer;
mod leaf;
mod signer;

pub use ca::{Ca, Certified};
pub use error::{CaCertificateProblem, Error, IssuerProblem, SigningError};
pub use issuer::{IssuerCredentials, parse_chain_pem};
pub use signer::{Signer, SignerError};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn ca_is_send_and_sync() {
        assert_send_sync::<super::Ca>();
        assert_send_sync::<super::IssuerCredentials>();
    }
}
