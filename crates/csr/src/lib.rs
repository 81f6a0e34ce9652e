//! Key pairs and certificate signing requests for meshid.
//!
//! - **Proxy side**: [`KeyPair::generate`] makes a P-256 (default) or P-384 key that never
//!   leaves the process; [`Csr::build`] signs a CSR carrying `CN=<identity>` and the SANs of
//!   [`CsrParams`].
//! - **CA side**: [`ParsedCsr::from_der`] checks a DER CSR's size, parses it with x509-parser,
//!   **verifies its signature** with ring over the `certificationRequestInfo` (proof of
//!   possession; Linkerd skips this), extracts the subject CN, SANs by kind and key algorithm
//!   into a [`meshid_policy::CsrContent`], and refuses requested extensions that would change the
//!   leaf profile ([`RefusedExtension`]). Malformed CSRs are [`MalformedCsr`] errors.
//!
//! # Example
//!
//! ```
//! use meshid_csr::{Csr, CsrLimits, CsrParams, KeyPair, ParsedCsr};
//! use meshid_policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
//!
//! // On the proxy.
//! let mesh = Mesh::default();
//! let sa = ServiceAccount::new("emojivoto", "web")?;
//! let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
//! let csr = Csr::build(&key, &CsrParams::for_service_account(&mesh, &sa, SanMode::Dns)?)?;
//! assert!(csr.pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
//!
//! // On the CA.
//! let parsed = ParsedCsr::from_der(csr.der(), &CsrLimits::default())?;
//! assert_eq!(parsed.content().dns_names, ["web.emojivoto.serviceaccount.identity.linkerd.cluster.local"]);
//! let decision = IssuancePolicy::default().decide(&mesh, &sa, parsed.content())?;
//! assert_eq!(decision.key_algorithm, KeyAlgorithm::EcdsaP256);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Keys
//!
//! [`KeyPair`] loads PKCS#8 (`PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) keys, exports PKCS#8 for
//! rustls, implements [`rcgen::SigningKey`], zeroizes the encoding it holds on drop and redacts
//! itself in `Debug`. RSA keys are refused with a clear error: meshid signs with ECDSA only.
//!
//! # Limitations
//!
//! ring does not zeroize its own in-memory key schedule; only the PKCS#8 copy kept here is wiped.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod build;
mod error;
mod key;
mod parse;

pub use build::{Csr, CsrParams};
pub use error::{
    BuildProblem, Error, KeyEncodingProblem, KeyPemProblem, MalformedCsr, RefusedExtension,
};
pub use key::{KeyPair, rcgen_algorithm};
pub use parse::{CertifiableKey, CsrLimits, DEFAULT_MAX_CSR_SIZE, ParsedCsr};
