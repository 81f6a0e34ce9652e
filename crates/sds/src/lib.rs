//! Envoy SDS for meshid: a workload's certificate and trust bundle as Envoy secrets.
//!
//! Envoy (plain, or in Istio, Consul, Gloo) takes its TLS certificates over the Secret
//! Discovery Service, `envoy.service.secret.v3.SecretDiscoveryService`. [`SdsService`] serves
//! a workload's [`meshid_client::Credentials`] there, with Istio's secret names, which Envoy
//! configurations in the wild expect:
//!
//! | secret | type | content |
//! |---|---|---|
//! | [`DEFAULT_SECRET`] (`default`) | `tls_certificate` | the certificate chain (leaf first) and the private key (PKCS#8), PEM in `inline_bytes` |
//! | [`ROOT_CA_SECRET`] (`ROOTCA`) | `validation_context` | the trust anchors, PEM in `trusted_ca.inline_bytes` |
//!
//! # The xDS protocol, as served
//!
//! `StreamSecrets` is state-of-the-world xDS:
//!
//! - The client names the secrets it wants in `resource_names` (none means both). The server
//!   answers with every named secret it has, a `version_info` (it changes whenever a secret
//!   does) and a fresh `nonce`.
//! - A request echoing the latest nonce is an ACK (its `version_info` is the version the
//!   client now uses) or, with `error_detail`, a NACK: the rejection is logged at warn and
//!   counted, and the same content is not sent again; the next change is. Requests carrying
//!   an older nonce are stale and ignored, as the protocol says.
//! - A renewal or a trust-bundle change is pushed at once to every stream, as a new version.
//! - A request naming other secrets than `default` and `ROOTCA` is warned about once per
//!   stream; those names are never answered (the client's initial-fetch timeout applies, as
//!   for any resource a management server does not have). A request with another `type_url`
//!   ends the stream with `InvalidArgument`.
//! - `default` is sent once a certificate is installed; `ROOTCA` at once.
//!
//! `FetchSecrets` (unary) answers the named secrets, or `NotFound` for a name it does not
//! serve, or `Unavailable` before the first certificate. `DeltaSecrets` answers
//! `Unimplemented`: Envoy uses state-of-the-world SDS unless configured otherwise.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
//! use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
//! use meshid_ca::Ca;
//! use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
//! use meshid_client::{Client, ClientConfig, LocalCertifier, TokenSource};
//! use meshid_policy::{IssuancePolicy, Mesh, TokioClock};
//! use meshid_sds::{SECRET_TYPE_URL, SdsService};
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
//! let clock = TokioClock::new(now);
//! let identity = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
//! let token = TokenSource::Fixed(Zeroizing::new(b"in-process".to_vec()));
//! let mut client = Client::new(ClientConfig::new(identity, token, bundle), LocalCertifier::new(ca, clock), clock)?;
//! client.certify_once().await?;
//!
//! // What Envoy's SDS client asks for: the workload certificate and the trust bundle.
//! let sds = SdsService::new(client.credentials());
//! let request = DiscoveryRequest {
//!     resource_names: vec!["default".to_owned(), "ROOTCA".to_owned()],
//!     type_url: SECRET_TYPE_URL.to_owned(),
//!     ..Default::default()
//! };
//! let response = sds.fetch_secrets(tonic::Request::new(request)).await?.into_inner();
//! assert_eq!(response.resources.len(), 2);
//! assert!(response.resources.iter().all(|r| r.type_url == SECRET_TYPE_URL));
//! # Ok(())
//! # }
//! ```
//!
//! Serve it with `tonic::transport::Server::builder().add_service(sds.into_server())` on a
//! Unix socket (`meshid-agent` does, on `meshid_workload_api::UnixSocket`), and call
//! [`SdsService::close_streams`] when shutting down: Envoy keeps its stream open, and a
//! graceful shutdown would wait for it.
//!
//! # Security
//!
//! The `default` secret carries the workload's private key, so whoever can reach the server
//! receives it: serve it on a Unix socket only the workload can open (Istio does the same).
//! The key is never logged; its copies in the protobuf messages are ordinary buffers, not
//! wiped after sending.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod secrets;
mod service;

pub use secrets::{DEFAULT_SECRET, ROOT_CA_SECRET, SECRET_TYPE_URL};
pub use service::{DELTA_UNIMPLEMENTED, SdsService};
