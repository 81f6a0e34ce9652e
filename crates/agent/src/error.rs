//! The agent error type.

use std::path::PathBuf;

use meshid_policy::SanMode;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The admin listener could not be bound.
    #[error(transparent)]
    Admin(meshid_admin::Error),
    /// The identity client or the trust-bundle watcher could not be set up.
    #[error(transparent)]
    Client(meshid_client::Error),
    /// The configuration is inconsistent.
    #[error("invalid agent configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: ConfigProblem,
    },
    /// The identity CA's address is not usable.
    #[error("invalid identity CA address {uri}: {reason}")]
    IdentityAddr {
        /// The address given.
        uri: String,
        /// Why.
        reason: AddrProblem,
    },
    /// The SDS server failed.
    #[error("the SDS server on {} failed: {reason}", socket.display())]
    Sds {
        /// Its socket.
        socket: PathBuf,
        /// tonic's text: its transport error has no typed form to act on, and the server has
        /// stopped either way.
        reason: String,
    },
    /// A task of the agent failed.
    #[error("an agent task failed: {reason}")]
    Task {
        /// tokio's text for the task's end (it panicked, or was cancelled); the agent stops
        /// either way.
        reason: String,
    },
    /// The trust anchors could not be read.
    #[error("cannot use the trust anchors {}: {reason}", path.display())]
    TrustAnchors {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: AnchorsProblem,
    },
    /// The Workload API (or its socket, also used for SDS) failed.
    #[error(transparent)]
    WorkloadApi(meshid_workload_api::Error),
}

/// What is wrong with the agent's configuration ([`Error::Config`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The SAN mode issues no SPIFFE ID, which the Workload API serves.
    #[error(
        "SAN mode {san_mode} has no SPIFFE ID, which the Workload API serves: use spiffe or dns+spiffe, as the identity CA's --san-mode"
    )]
    NoSpiffeId {
        /// The SAN mode given.
        san_mode: SanMode,
    },
    /// Neither a Workload API socket nor an SDS socket is given.
    #[error("nothing to serve: give a Workload API socket, an SDS socket, or both")]
    NothingToServe,
    /// The Workload API and SDS are given the same socket.
    #[error("the Workload API and SDS need two different sockets")]
    SameSocket,
    /// The admin listener's address could not be read.
    #[error("{reason}")]
    AdminAddr {
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's text.
        reason: String,
    },
}

/// Why the identity CA's address was refused ([`Error::IdentityAddr`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrProblem {
    /// The text is not a URI.
    #[error("{reason}")]
    Invalid {
        /// tonic's text (its error has no public cases).
        reason: String,
    },
    /// The scheme is not `http`: the agent speaks plaintext gRPC to the CA.
    #[error("expected http://host:port (plaintext gRPC, as Linkerd's proxies use)")]
    NotHttp,
}

/// Why the trust anchors were refused ([`Error::TrustAnchors`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorsProblem {
    /// The file could not be read.
    #[error("{reason}")]
    Unreadable {
        /// The operating system's error kind (`NotFound`, `PermissionDenied`, ...).
        kind: std::io::ErrorKind,
        /// The operating system's text.
        reason: String,
    },
    /// The file is not a usable PEM bundle of trust anchors.
    #[error("{0}")]
    Invalid(meshid_verify::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_address_problem_reads_as_the_operating_system_says() {
        let io = std::io::Error::from(std::io::ErrorKind::NotConnected);
        let error = Error::Config {
            reason: ConfigProblem::AdminAddr {
                kind: io.kind(),
                reason: io.to_string(),
            },
        };
        assert!(matches!(
            error,
            Error::Config {
                reason: ConfigProblem::AdminAddr {
                    kind: std::io::ErrorKind::NotConnected,
                    ..
                }
            }
        ));
        assert_eq!(
            error.to_string(),
            format!("invalid agent configuration: {io}")
        );
    }
}
