//! meshid: workload identity and mTLS PKI for a service mesh, as reusable crates.
//!
//! This facade re-exports the workspace crates under short names:
//!
//! | module | crate | job |
//! |---|---|---|
//! | [`policy`] | `meshid-policy` | pure: names, identities, SPIFFE IDs, Go durations, issuance policy |
//! | [`rotation`] | `meshid-rotation` | pure: jittered refresh times, failure backoff, issuer renewal |
//! | [`csr`] | `meshid-csr` | key pairs; CSR build (proxy side), parse + verify (CA side) |
//! | [`verify`] | `meshid-verify` | trust bundles, chain verification, identity match |
//! | [`ca`] | `meshid-ca` | in-process CA: validated, hot-swappable issuer; certify |
//! | [`client`] | `meshid-client` | proxy identity client: certify loop, rustls mTLS resolvers and verifiers |
//! | [`kube`] | `meshid-kube` | Kubernetes API access over kube-rs: configuration found as kubectl finds it, meshid's refusals, typed requests |
//! | [`authn`] | `meshid-authn` | ServiceAccount token authentication: TokenReview, JWKS, static |
//! | [`grpc`] | `meshid-grpc` | Linkerd's identity gRPC API: Certify server, gRPC certifier |
//! | [`issuer`] | `meshid-issuer` | issuer/anchor files, reload, events, auto-rotation, bootstrap |
//! | [`server`] | `meshid-server` | the identity service wired together: dev state, gRPC, admin HTTP |
//! | [`proxy`] | `meshid-proxy` | a minimal sidecar: mTLS inbound/outbound with tap logs |
//! | [`check`] | `meshid-check` | Linkerd-style identity health checks: anchors, issuer, proxies |
//! | [`workload_api`] | `meshid-workload-api` | the SPIFFE Workload API (X.509-SVIDs) on a Unix socket, and a client of it |
//! | [`sds`] | `meshid-sds` | Envoy SDS: the workload certificate and trust bundle as `default` and `ROOTCA` |
//! | [`agent`] | `meshid-agent` | a workload agent: certified by the CA, serving the Workload API and SDS |
//!
//! # Example
//!
//! ```
//! use meshid::ca::bootstrap::{CaOptions, create_intermediate, create_root};
//! use meshid::ca::Ca;
//! use meshid::csr::{Csr, CsrParams, KeyPair};
//! use meshid::policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
//! use meshid::verify::{TrustBundle, Usage, VerifyOptions};
//! use std::time::Duration;
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-11-26 12:00 UTC);
//! let day = Duration::from_secs(86_400);
//! let root = create_root(&CaOptions::root("root.linkerd.cluster.local", now, 3650 * day))?;
//! let issuer = create_intermediate(&root, &CaOptions::issuer("identity.linkerd.cluster.local", now, 2 * day))?;
//! let bundle = TrustBundle::from_pem(root.pem().as_bytes())?;
//! let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone())?;
//! ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)?;
//!
//! let sa = ServiceAccount::new("emojivoto", "web")?;
//! let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
//! let csr = Csr::build(&key, &CsrParams::for_service_account(ca.mesh(), &sa, SanMode::Dns)?)?;
//! let leaf = ca.certify(&sa, csr.der(), now)?;
//! let peer = meshid::verify::verify_identity(
//!     &bundle, &leaf.leaf, &leaf.chain, now, Usage::Server,
//!     "web.emojivoto.serviceaccount.identity.linkerd.cluster.local", &VerifyOptions::default(),
//! )?;
//! assert_eq!(peer.not_after(), leaf.not_after);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub use meshid_agent as agent;
pub use meshid_authn as authn;
pub use meshid_ca as ca;
pub use meshid_check as check;
pub use meshid_client as client;
pub use meshid_csr as csr;
pub use meshid_grpc as grpc;
pub use meshid_issuer as issuer;
pub use meshid_kube as kube;
pub use meshid_policy as policy;
pub use meshid_proxy as proxy;
pub use meshid_rotation as rotation;
pub use meshid_sds as sds;
pub use meshid_server as server;
pub use meshid_verify as verify;
pub use meshid_watch as watch;
pub use meshid_workload_api as workload_api;
