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
        /// The `Unavailable` status's message, as tonic words it (the transport's text; the
        /// status code is the typed part, and it is always `Unavailable` here).
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
        /// tonic's text: its transport error has no typed form to act on, and the server has
        /// stopped either way.
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
        /// What failed.
        reason: SocketProblem,
    },
    /// The Workload API sent an X.509-SVID that is unusable or does not verify; nothing was
    /// installed.
    #[error("refused the X.509-SVID from the Workload API at {}: {reason}", socket.display())]
    Svid {
        /// The socket.
        socket: PathBuf,
        /// Why.
        reason: SvidProblem,
    },
}

/// Why a socket could not be set up ([`Error::SocketSetup`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketProblem {
    /// The path has no file name (it ends in `..`, or is `/`).
    #[error("the path has no file name")]
    NoFileName,
    /// A socket file exists, and connecting to it to see whether someone answers failed
    /// otherwise than by a refused connection.
    #[error("cannot check the existing socket: {reason}")]
    CannotCheck {
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's text.
        reason: String,
    },
    /// Reading the path's metadata, binding, setting the permissions or renaming into place
    /// failed.
    #[error("{reason}")]
    Io {
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's text.
        reason: String,
    },
}

impl SocketProblem {
    /// [`SocketProblem::Io`] for `error`.
    pub(crate) fn io(error: &std::io::Error) -> Self {
        Self::Io {
            kind: error.kind(),
            reason: error.to_string(),
        }
    }
}

/// Why an X.509-SVID from the Workload API was refused ([`Error::Svid`]).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SvidProblem {
    /// The SVID has no private key.
    #[error("the private key is empty")]
    EmptyKey,
    /// The `x509_svid` field is not concatenated DER certificates.
    #[error("x509_svid: {0}")]
    Chain(DerProblem),
    /// The `bundle` field is not concatenated DER certificates.
    #[error("bundle: {0}")]
    Bundle(DerProblem),
    /// The `bundle` field's certificates are not usable trust anchors.
    #[error("bundle: {0}")]
    InvalidBundle(meshid_verify::Error),
    /// The SVID does not verify to its bundle, does not name the identity, or does not match
    /// its key, so it was not installed.
    #[error(transparent)]
    NotInstalled(meshid_client::Error),
}

/// Why concatenated DER certificates (the Workload API's encoding) could not be split
/// ([`SvidProblem::Chain`], [`SvidProblem::Bundle`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerProblem {
    /// No bytes at all.
    #[error("no certificate")]
    Empty,
    /// A certificate does not parse.
    #[error("certificate #{index} does not parse: {reason}")]
    Unparsable {
        /// Its position, from 0.
        index: usize,
        /// x509-parser's text (its error borrows the input, so it is kept as text).
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_that_cannot_be_checked_reads_as_before() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let error = Error::SocketSetup {
            path: PathBuf::from("/run/agent.sock"),
            reason: SocketProblem::CannotCheck {
                kind: io.kind(),
                reason: io.to_string(),
            },
        };
        assert!(matches!(
            error,
            Error::SocketSetup {
                reason: SocketProblem::CannotCheck {
                    kind: std::io::ErrorKind::PermissionDenied,
                    ..
                },
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            format!("cannot serve on /run/agent.sock: cannot check the existing socket: {io}")
        );
    }
}
