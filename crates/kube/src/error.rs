//! The error type.

use std::path::PathBuf;
use std::time::Duration;

/// Why the API server's configuration is not usable, or why a request to it failed.
///
/// No message ever contains a token or a private key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting (API server URL, CA, credentials, kubeconfig, in-cluster environment) is not
    /// usable.
    #[error("invalid {what}: {reason}")]
    Config {
        /// What is misconfigured, e.g. `API server URL "http://h"` or `kubeconfig /k`.
        what: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A file (kubeconfig, CA, client certificate or key, token) could not be read.
    #[error("cannot read the {what} {}: {reason}", path.display())]
    ReadFile {
        /// What the file is, e.g. `API server CA file`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The API server did not answer within the request timeout.
    #[error(
        "the Kubernetes API server did not answer within {}ms; check its health and the \
         network path, or raise the request timeout",
        after.as_millis()
    )]
    Timeout {
        /// The request timeout.
        after: Duration,
    },
    /// The kubeconfig's exec credential plugin could not be run, failed, or printed no usable
    /// token.
    #[error("the kubeconfig exec credential plugin {command} failed: {reason}")]
    ExecPlugin {
        /// The command.
        command: String,
        /// What went wrong (its exit status and standard error, or what its output lacks).
        reason: String,
    },
    /// The connection to the API server failed (TCP, TLS, HTTP), or its answer was too long.
    #[error("cannot reach the Kubernetes API server at {server}: {reason}")]
    Transport {
        /// The API server URL.
        server: String,
        /// The underlying errors, outermost first.
        reason: String,
    },
}

impl Error {
    pub(crate) fn config(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn read_file(what: &'static str, path: PathBuf, e: &std::io::Error) -> Self {
        Self::ReadFile {
            what,
            path,
            reason: e.to_string(),
        }
    }
}
