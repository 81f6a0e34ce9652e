//! The agent error type.

use std::path::PathBuf;

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
        reason: String,
    },
    /// The identity CA's address is not usable.
    #[error("invalid identity CA address {uri}: {reason}")]
    IdentityAddr {
        /// The address given.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The SDS server failed.
    #[error("the SDS server on {} failed: {reason}", socket.display())]
    Sds {
        /// Its socket.
        socket: PathBuf,
        /// Why.
        reason: String,
    },
    /// A task of the agent failed.
    #[error("an agent task failed: {reason}")]
    Task {
        /// Why.
        reason: String,
    },
    /// The trust anchors could not be read.
    #[error("cannot use the trust anchors {}: {reason}", path.display())]
    TrustAnchors {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The Workload API (or its socket, also used for SDS) failed.
    #[error(transparent)]
    WorkloadApi(meshid_workload_api::Error),
}
