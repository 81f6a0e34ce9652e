//! The SPIFFE Workload API (X.509-SVID profile) for meshid.
//!
//! SPIFFE-aware software (go-spiffe, py-spiffe, the Rust `spiffe` crate, Linkerd's proxy in
//! SPIRE mode) fetches its identity from a Workload API on a Unix domain socket. This crate
//! serves one from a meshid identity:
//!
//! | item | what it is |
//! |---|---|
//! | [`WorkloadApiService`] | `SpiffeWorkloadAPI` over a workload's [`meshid_client::Credentials`]: `FetchX509SVID` and `FetchX509Bundles` streams, pushed again on every renewal and trust-bundle change |
//! | [`UnixSocket`] | the socket: stale sockets replaced, live ones refused, permissions set before anyone can connect |
//! | [`WorkloadApiClient`] | follows a Workload API (this one, or SPIRE's) into [`meshid_client::Credentials`], so a meshid proxy can take its identity from it |
//!
//! The messages are generated at build time from the SPIFFE project's `workload.proto`,
//! vendored in `proto/` with its license and provenance; the service is
//! `/SpiffeWorkloadAPI/<method>` (the proto declares no package).
//!
//! # Example
//!
//! A workload certified in SPIFFE mode serves its identity on a socket; a client of that
//! socket receives it.
//!
//! ```
//! use std::sync::Arc;
//! use meshid_ca::Ca;
//! use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
//! use meshid_client::{Client, ClientConfig, Credentials, LocalCertifier, State, TokenSource};
//! use meshid_policy::{IssuancePolicy, Mesh, SanMode, ServiceAccount, TokioClock};
//! use meshid_verify::TrustBundle;
//! use meshid_workload_api::{DEFAULT_SOCKET_MODE, UnixSocket, WorkloadApiClient, WorkloadApiService};
//! use time::macros::datetime;
//! use zeroize::Zeroizing;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A CA issuing SPIFFE IDs, and a workload certified by it.
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let day = std::time::Duration::from_secs(86_400);
//! let root = create_root(&CaOptions::root("root.linkerd.cluster.local", now, 365 * day))?;
//! let issuer = create_intermediate(&root, &CaOptions::issuer("identity.linkerd.cluster.local", now, 2 * day))?;
//! let bundle = TrustBundle::from_pem(root.pem().as_bytes())?;
//! let mut policy = IssuancePolicy::default();
//! policy.san_mode = SanMode::Spiffe;
//! let ca = Arc::new(Ca::new(Mesh::default(), policy, bundle.clone())?);
//! ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)?;
//! let clock = TokioClock::new(now);
//! let sa = ServiceAccount::new("emojivoto", "web")?;
//! let token = TokenSource::Fixed(Zeroizing::new(b"in-process".to_vec()));
//! let config = ClientConfig::for_service_account(&Mesh::default(), &sa, SanMode::Spiffe, token, bundle.clone())?;
//! let mut client = Client::new(config, LocalCertifier::new(ca, clock), clock)?;
//! client.certify_once().await?;
//!
//! // Its Workload API, on a socket only this user and group may open.
//! let dir = tempfile::tempdir()?;
//! let socket = UnixSocket::bind(dir.path().join("agent.sock"), DEFAULT_SOCKET_MODE).await?;
//! let service = WorkloadApiService::new(client.credentials())?;
//! tokio::spawn(service.serve(socket, std::future::pending()));
//!
//! // A meshid client of that socket gets the same identity.
//! let spiffe_id = "spiffe://cluster.local/ns/emojivoto/sa/web";
//! let received = Arc::new(Credentials::new(spiffe_id.to_owned(), bundle));
//! let follower = WorkloadApiClient::new(dir.path().join("agent.sock"));
//! tokio::spawn(follower.run(Arc::clone(&received), clock, std::future::pending()));
//! let mut state = received.state();
//! state.wait_for(|s| matches!(s, State::Ready { .. })).await?;
//! assert_eq!(received.snapshot().unwrap().chain(), client.credentials().snapshot().unwrap().chain());
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! The Workload API hands the workload its private key (`X509SVID.x509_svid_key`, PKCS#8),
//! and this server does no workload attestation: it serves one workload (the sidecar model),
//! and whoever can open the socket is taken to be that workload. The socket's permissions
//! ([`DEFAULT_SOCKET_MODE`], 0660) and its folder are the access control; see
//! [`UnixSocket::bind`]. The key is never logged. Its copies in the gRPC messages are
//! ordinary buffers (prost owns them), not wiped after sending.
//!
//! # Limitations
//!
//! - X.509 only: `FetchJWTSVID`, `FetchJWTBundles` and `ValidateJWTSVID` answer
//!   `Unimplemented` ("meshid serves X.509-SVIDs only: the JWT-SVID profile is not
//!   implemented").
//! - One SVID (the workload's), no federated bundles, no CRLs.
//! - Until the agent holds a certificate, `FetchX509SVID` keeps the stream open and sends
//!   nothing; the first SVID follows as soon as one is installed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod client;
mod error;
pub mod proto;
mod server;
mod socket;

pub use client::{RETRY, WorkloadApiClient};
pub use error::{DerProblem, Error, SocketProblem, SvidProblem};
pub use server::{JWT_UNIMPLEMENTED, SECURITY_HEADER, SECURITY_HEADER_MISSING, WorkloadApiService};
pub use socket::{DEFAULT_SOCKET_MODE, UnixSocket, remove_socket};
