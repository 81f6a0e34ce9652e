//! A minimal meshid sidecar: mTLS on the way in and on the way out.
//!
//! - [`inbound`]: accept TCP, terminate TLS 1.3 with the workload's current certificate,
//!   require and verify the client's certificate, log
//!   `proxy=in src=<addr> dst=<addr> tls=true client_id=<id>`, and forward the bytes to the
//!   application.
//! - [`outbound`]: accept plain TCP from the application, open mTLS to a peer proxy that must
//!   present the expected identity, log `proxy=out ... server_id=<id>`, and forward.
//!
//! Every connection is reported on an optional channel as a [`Tap`] so callers (the
//! `mesh-demo` example) can print only what was observed in real handshakes.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use meshid_client::Credentials;
//! use meshid_policy::SystemClock;
//! use meshid_proxy::{inbound, outbound};
//!
//! async fn sidecar(credentials: Arc<Credentials>) -> Result<(), meshid_proxy::Error> {
//!     let inbound_listener = tokio::net::TcpListener::bind("127.0.0.1:4143").await?;
//!     let outbound_listener = tokio::net::TcpListener::bind("127.0.0.1:4140").await?;
//!     let app = "127.0.0.1:8080".parse().expect("address");
//!     let peer = "127.0.0.1:5143".parse().expect("address");
//!     let emoji = "emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local".to_owned();
//!     tokio::try_join!(
//!         inbound::serve(inbound_listener, app, Arc::clone(&credentials), SystemClock, None, std::future::pending()),
//!         outbound::serve(outbound_listener, peer, emoji, credentials, SystemClock, None, std::future::pending()),
//!     )?;
//!     Ok(())
//! }
//! # let _ = sidecar;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use std::net::SocketAddr;

#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
pub mod inbound;
pub mod outbound;

/// One proxied connection, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tap {
    /// `in` or `out`.
    pub direction: Direction,
    /// Where the connection came from.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
    /// The authenticated identity of the mTLS peer (the client on `in`, the server on `out`),
    /// in the form of this proxy's own identity: a SPIFFE ID if this proxy's is one, else the
    /// identity name (`meshid_client::tls::peer_identity_as`).
    pub peer_identity: Option<String>,
    /// This proxy's end of the mTLS connection: on `out`, the local address of the
    /// connection to the peer proxy, which that proxy's `in` tap reports as its `src`; on
    /// `in`, the local address the peer connected to. It pairs the two taps of one call.
    pub mtls_local: SocketAddr,
}

/// Which side of the proxy a connection crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// Inbound: a peer proxy called this workload.
    In,
    /// Outbound: this workload called a peer.
    Out,
}

/// Why a proxy could not start or a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] meshid_client::Error),
    /// The admin server could not be set up (feature `cli`).
    #[cfg(feature = "cli")]
    #[error(transparent)]
    Admin(#[from] meshid_admin::Error),
    /// The command line could not start or keep running the proxy: what it was doing, and
    /// the error underneath (feature `cli`).
    #[cfg(feature = "cli")]
    #[error("{what}")]
    Start {
        /// What failed, naming the flag where one is to blame.
        what: String,
        /// Why.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}
