//! The error type.

use std::path::PathBuf;
use std::time::Duration;

/// Why the API server's configuration is not usable, or why a request to it failed.
///
/// No message ever contains a token, a private key, or what an exec plugin printed on its
/// standard output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server answered with an HTTP error status.
    #[error("the Kubernetes API server answered HTTP {status}: {message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The `message` of its `Status` answer, or the start of its body (see
        /// [`Response::error_message`](crate::Response::error_message)).
        message: String,
    },
    /// A setting (API server URL, CA, credentials, kubeconfig, in-cluster environment) is not
    /// usable.
    #[error("invalid {what}: {reason}")]
    Config {
        /// What is misconfigured, e.g. `kubeconfig /k (context dev)` or `in-cluster
        /// configuration`.
        what: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The kubeconfig's exec credential plugin could not be run, failed, or printed nothing
    /// usable.
    #[error("the kubeconfig exec credential plugin {command} failed: {reason}")]
    ExecPlugin {
        /// The command.
        command: String,
        /// What went wrong (its exit status and standard error, or what its output lacks).
        reason: String,
    },
    /// A file (kubeconfig, CA, client certificate or key, token) could not be read.
    #[error("cannot read the {what} {}: {reason}", path.display())]
    ReadFile {
        /// What the file is, e.g. `API server CA file`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error, and what to do about it when that is known.
        reason: String,
    },
    /// The API server's answer is not the object asked for.
    #[error("the Kubernetes API server's answer is not understood: {reason}")]
    Response {
        /// What is wrong with it (never a quote of it: it may hold a token).
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
