//! The Workload API error type.

use std::path::PathBuf;

/// Why the Workload API could not be served or followed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Workload API server answered with an error status, or the stream failed.
    #[error("the Workload API at {} answered {code}: {message}", socket.display())]
    Call {
        /// The socket.
        socket: PathBuf,
        /// The gRPC status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// The Workload API socket could not be reached.
    #[error("cannot reach the Workload API at {}: {reason}", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
    /// The credentials' identity is not a SPIFFE ID, so there is no X.509-SVID to serve or
    /// to follow.
    #[error(
        "the identity {identity} is not a SPIFFE ID (spiffe://<trust-domain>/<path>); the Workload API serves SPIFFE identities: certify with a CA whose SAN mode is spiffe or dns+spiffe"
    )]
    NotSpiffe {
        /// The identity.
        identity: String,
    },
    /// A gRPC server failed.
    #[error("the Workload API server on {} failed: {reason}", socket.display())]
    Serve {
        /// The socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
    /// The socket path is a file or folder that is not a socket; it is never removed.
    #[error(
        "cannot serve on {}: it exists and is not a socket (remove it, or choose another path)",
        path.display()
    )]
    SocketPathTaken {
        /// The path.
        path: PathBuf,
    },
    /// Another process answers on the socket path.
    #[error(
        "cannot serve on {}: another process is serving on this socket (stop it, or choose another path)",
        path.display()
    )]
    SocketInUse {
        /// The path.
        path: PathBuf,
    },
    /// The socket could not be created, replaced or given its permissions.
    #[error("cannot serve on {}: {reason}", path.display())]
    SocketSetup {
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The Workload API sent an X.509-SVID that is unusable or does not verify; nothing was
    /// installed.
    #[error("refused the X.509-SVID from the Workload API at {}: {reason}", socket.display())]
    Svid {
        /// The socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
}
