//! Linkerd's identity gRPC API for meshid.
//!
//! | item | what it is |
//! |---|---|
//! | [`IdentityService`] | a server for `/io.linkerd.proxy.identity.Identity/Certify` over a [`meshid_ca::Ca`], wire-identical to Linkerd's identity controller |
//! | [`GrpcCertifier`] | a [`meshid_client::Certifier`] calling such a service (Linkerd's or this one), plaintext or TLS |
//! | [`ClientTls`] | TLS to the identity service, verifying `linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>` |
//! | [`GrpcLimits`] | the server's HTTP/2, request and accept-loop limits, strict by default |
//! | [`Incoming`] | a listener's connections for an accept loop that backs off on errors such as `EMFILE` |
//! | [`Metrics`] | `identity_certify_requests_total{code}` and `identity_certify_duration_seconds` |
//!
//! The messages are the generated types of the canonical `linkerd2-proxy-api` crate (feature
//! `identity`), so the wire format is Linkerd's by construction: a DER CSR in; a DER leaf, the
//! DER intermediates (issuer first) and `valid_until` = the leaf's NotAfter (always set) out.
//!
//! # The Certify pipeline
//!
//! Steps run in Linkerd's order and answer with Linkerd's codes and messages:
//!
//! | # | step | refusal: code, message |
//! |---|---|---|
//! | 1 | an issuer is loaded | `Unavailable`: `cert issuer not ready yet` |
//! | 2 | identity, token and CSR present; the CSR parses and its signature verifies; the identity is one of the mesh | `InvalidArgument`: `missing identity` / `missing token` / `missing certificate signing request` / the parse error; a name of the form the SAN mode does not issue → `FailedPrecondition`: `requested identity … is a SPIFFE ID, but this CA issues only identity names (SAN mode dns); request …` |
//! | 3 | the issuer chain and trust anchor are still valid | `Unavailable`: `issuer cannot issue: issuer certificate expired at … (now …); rotate it` (Linkerd: `Unknown`) |
//! | 4 | the CSR's names | `FailedPrecondition`: `CSR must have exactly one DNSName` / `CSR name does not match requested identity: csr=…; req=…` / `invalid CommonName: …` / `cannot validate email addresses` / `cannot validate IP addresses` / `cannot validate URIs` |
//! | 5 | token review ([`meshid_authn::Authenticator`]) | not authenticated → `FailedPrecondition`: `authentication token could not be authenticated`; invalid token → `InvalidArgument`: the reason; backend error → `Internal`: `internal error validating the token; request id <16 hex digits>` (Linkerd: `error validating token for <identity>: <error>`) |
//! | 6 | the token's identity is the one requested | `FailedPrecondition`: `requested identity did not match provided token: requested=…; found=…` |
//! | 7 | the key | not ECDSA → `Internal`: `CSR must contain an ECDSA public key (found …)`; an ECDSA curve the policy does not allow → `FailedPrecondition`: `CSR key algorithm ECDSA P-384 is not allowed (allowed: ECDSA P-256)` |
//! | 8 | sign | OK; logged at info: `issued certificate for <identity> until <NotAfter>: <SHA-256 of the leaf DER>` |
//!
//! The request's `identity` is the name the leaf will carry: the identity name, as Linkerd's
//! proxy sends it, or, when the policy's SAN mode issues SPIFFE IDs (`spiffe`, `dns+spiffe`),
//! the SPIFFE ID `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` (a SPIFFE-aware client, such as
//! `meshid-agent`, asks for what it will present). Step 6 compares the token's ServiceAccount
//! in the same form.
//!
//! Steps 2–4 run before the token review, so a bad request costs no call to the Kubernetes
//! API; the key refusal is held back until after step 6, where Linkerd answers it. No lock is
//! held across the review: the CA's issuer is a lock-free snapshot, re-read when signing.
//!
//! A caller never sees the server's own failures: an `Internal` answer for a token review
//! that could not be made (the API server unreachable, its errors) or a signature that
//! failed reads `internal error <doing what>; request id <id>`, and the same id is logged at
//! warning level with the detail, the API server's address and error text included.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use meshid_authn::StaticAuthenticator;
//! use meshid_ca::Ca;
//! use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
//! use meshid_client::{Client, ClientConfig, TokenSource};
//! use meshid_policy::{IssuancePolicy, Mesh, TokioClock};
//! use meshid_grpc::{GrpcCertifier, IdentityService, Timeouts};
//! use meshid_verify::TrustBundle;
//! use time::macros::datetime;
//! use zeroize::Zeroizing;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The identity service: a CA with an issuer, and a token file.
//! let now = datetime!(2026-06-01 12:00 UTC);
//! let day = std::time::Duration::from_secs(86_400);
//! let root = create_root(&CaOptions::root("root.linkerd.cluster.local", now, 365 * day))?;
//! let issuer =
//!     create_intermediate(&root, &CaOptions::issuer("identity.linkerd.cluster.local", now, 2 * day))?;
//! let bundle = TrustBundle::from_pem(root.pem().as_bytes())?;
//! let ca = Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone())?);
//! ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), now)?;
//! let tokens = StaticAuthenticator::parse("web-token,emojivoto,web")?;
//! let clock = TokioClock::new(now);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let uri = format!("http://{}", listener.local_addr()?);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(
//!     IdentityService::new(ca, tokens, clock).serve(listener, async {
//!         let _ = stopped.await;
//!     }),
//! );
//!
//! // A proxy: certified over gRPC.
//! let certifier = GrpcCertifier::connect_plaintext(&uri, Timeouts::default()).await?;
//! let identity = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
//! let token = TokenSource::Fixed(Zeroizing::new(b"web-token".to_vec()));
//! let mut client = Client::new(ClientConfig::new(identity, token, bundle), certifier, clock)?;
//! client.certify_once().await?;
//! let (_, not_after) = client.credentials().validity().ok_or("not certified")?;
//! assert_eq!(not_after, datetime!(2026-06-02 12:00:20 UTC)); // 24h + 20s of clock skew
//!
//! let _ = stop.send(());
//! server.await??;
//! # Ok(())
//! # }
//! ```
//!
//! # Limits
//!
//! [`IdentityService::serve`] runs tonic's server with every limit of [`GrpcLimits`] set
//! (tonic's own defaults switch hyper's off): concurrent streams per connection, the h2
//! limits on streams the server resets and on streams reset before they were accepted, the
//! message size, a per-request deadline, a server-wide limit on requests in flight, HTTP/2
//! keepalive, and an accept loop that backs off on errors ([`Incoming`]). Only `Certify` is
//! served; other methods answer `Unimplemented`.
//!
//! # Limitations
//!
//! - The server speaks plaintext h2c by default, like Linkerd's controller (whose proxy
//!   sidecar adds mTLS); for TLS pass a configured server to
//!   [`IdentityService::serve_with`].
//! - The policy checks run twice per issuance (before the token review, and again against the
//!   issuer current when signing, in [`meshid_ca::Ca::certify_parsed`]); the CSR is parsed
//!   and its signature verified once.
//! - The token is moved, not copied, into the gRPC message, but the buffers tonic encodes it
//!   into are not wiped.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod accept;
mod balance;
mod client;
mod code;
mod error;
mod guard;
mod limits;
mod metrics;
mod server;
mod serving;
mod tls;

pub use accept::Incoming;
pub use balance::{EJECT_AFTER_FAILURE, Endpoints, Resolve, Resolving, SystemResolver};
pub use client::{GrpcCertifier, Timeouts};
pub use error::{ConnectKind, Error, LimitProblem, UriProblem, error_chain};
pub use limits::{AcceptBackoff, GrpcLimits};
pub use metrics::Metrics;
pub use server::IdentityService;
pub use serving::{
    IDENTITY_SERVICE_ACCOUNT, ServingIdentity, ServingMetrics, identity_service_name,
};
pub use tls::{ClientTls, ServerTls, TlsMode};

/// The generated Linkerd identity API (`io.linkerd.proxy.identity`), re-exported.
pub use linkerd2_proxy_api::identity as proto;
