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
        /// What is wrong and how to fix it: a diagnosis for the operator, who fixes the
        /// setting it names (no program acts on it otherwise), often quoting kube's own error,
        /// which can be neither cloned nor compared; so text.
        reason: String,
    },
    /// The kubeconfig's exec credential plugin could not be run, failed, or printed nothing
    /// usable.
    #[error("the kubeconfig exec credential plugin {command} failed: {problem}")]
    ExecPlugin {
        /// The command.
        command: String,
        /// What went wrong.
        problem: ExecProblem,
    },
    /// A file (kubeconfig, CA, client certificate or key, token) could not be read.
    #[error("cannot read the {what} {}: {reason}", path.display())]
    ReadFile {
        /// What the file is, e.g. `API server CA file`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The kind of the I/O error, e.g. `NotFound` or `PermissionDenied`.
        kind: std::io::ErrorKind,
        /// The I/O error's message, and what to do about it when that is known: text, as the
        /// I/O error can be neither cloned nor compared (`kind` is its typed part).
        reason: String,
    },
    /// The API server's answer is not the object asked for.
    #[error("the Kubernetes API server's answer is not understood: {reason}")]
    Response {
        /// What is wrong with it (never a quote of it: it may hold a token), e.g. where the
        /// JSON parser stopped: text, as the parser's error can be neither cloned nor
        /// compared, and no caller acts on it but by showing it.
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
        /// The underlying errors, outermost first (hyper's, rustls's, the operating
        /// system's): text, as they can be neither cloned nor compared. A timeout is
        /// [`Error::Timeout`] and an HTTP error status [`Error::Api`].
        reason: String,
    },
}

/// What went wrong with a kubeconfig exec credential plugin ([`Error::ExecPlugin`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecProblem {
    /// It could not be started (`kind` `NotFound`: it is not installed).
    #[error(
        "cannot run it: {message}{}",
        install_hint.as_deref().map(|hint| format!("; {hint}")).unwrap_or_default()
    )]
    Start {
        /// The kind of the I/O error.
        kind: std::io::ErrorKind,
        /// The I/O error's message, as text (`kind` is its typed part).
        message: String,
        /// The kubeconfig's `installHint`, when the plugin is not installed.
        install_hint: Option<String>,
    },
    /// It exited unsuccessfully.
    #[error("it exited with {status}{}", colon_then(stderr))]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error, trimmed, without control characters and cut short: the
        /// plugin's own words (often what to do, such as logging in again), so text. Its
        /// standard output is never kept: it may hold a credential.
        stderr: String,
    },
    /// Its output is not an ExecCredential.
    #[error("its output is not an ExecCredential (JSON or YAML)")]
    NotExecCredential,
    /// Its ExecCredential has no `status`.
    #[error("its ExecCredential has no status")]
    NoStatus,
    /// Its `status.expirationTimestamp` is not an RFC 3339 time.
    #[error("its status.expirationTimestamp is not an RFC 3339 time: {detail}")]
    Expiration {
        /// The time parser's message, as text: its error can be neither cloned nor compared.
        detail: String,
    },
    /// The client certificate it printed is not usable.
    #[error("its client certificate is not usable: {detail}")]
    ClientCertificate {
        /// The TLS library's message, as text: its error can be neither cloned nor compared.
        detail: String,
    },
    /// It did not finish in time.
    #[error(
        "it did not finish within {}ms; log in first if it waits for you, or check what it \
         waits for",
        after.as_millis()
    )]
    Timeout {
        /// How long it was given.
        after: Duration,
    },
    /// kube refused it otherwise.
    #[error("{message}")]
    Other {
        /// kube's message, as text: an authentication error this client does not tell apart.
        message: String,
    },
}

/// `: text`, or nothing if `text` is empty.
fn colon_then(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
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
            kind: e.kind(),
            reason: e.to_string(),
        }
    }
}
