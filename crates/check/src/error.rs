//! The error type of the check library: bad arguments, unreadable or unparsable inputs, and
//! failed connections. Failed checks are
//! not errors; they are [`CheckResult`](crate::CheckResult)s in the [`Report`](crate::Report).

use crate::IdentityScheme;

/// Why an argument was refused, an input could not be read or parsed, or a live proxy could
/// not be inspected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No TCP connection could be made to a proxy address.
    #[error(
        "cannot connect to {addr}: {problem}; check the address and that the proxy listens there"
    )]
    Connect {
        /// The address as given.
        addr: String,
        /// What the socket layer reported.
        problem: ConnectProblem,
    },
    /// An expiry window could not be parsed.
    #[error(
        "invalid expiry window {input:?}: {problem}; use a Go duration such as 1440h, or days \
         such as 60d"
    )]
    InvalidExpiryWindow {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        problem: ExpiryWindowProblem,
    },
    /// A `--fail-on` level is not `warning` or `error`.
    #[error("invalid failure level {input:?}: expected `warning` or `error`")]
    InvalidFailOn {
        /// The input as given.
        input: String,
    },
    /// An identity scheme is neither `linkerd.io/tls` nor `kubernetes.io/tls`.
    #[error("invalid identity scheme {input:?}: expected `linkerd.io/tls` or `kubernetes.io/tls`")]
    InvalidIdentityScheme {
        /// The input as given.
        input: String,
    },
    /// A proxy address is not `HOST:PORT` or `NAME@HOST:PORT`.
    #[error("invalid proxy address {input:?}: {problem}; use HOST:PORT or SERVER-NAME@HOST:PORT")]
    InvalidProxyAddr {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        problem: ProxyAddrProblem,
    },
    /// The report could not be serialised to JSON.
    #[error("cannot serialise the report to JSON: {reason}")]
    Json {
        /// What serde_json reported, as text: its error can be neither cloned nor compared,
        /// and serialising a report to a string fails only on a defect no caller can act on.
        reason: String,
    },
    /// The TLS handshake with a proxy failed, or it presented no certificate.
    #[error("TLS handshake with {addr} failed: {problem}")]
    Tls {
        /// The address as given.
        addr: String,
        /// What went wrong.
        problem: TlsProblem,
    },
    /// An input file does not exist.
    #[error("{path} does not exist")]
    NotFound {
        /// The file.
        path: String,
    },
    /// An input file may not be read.
    #[error("{path} cannot be read: permission denied")]
    PermissionDenied {
        /// The file.
        path: String,
    },
    /// An input file could not be read for another reason.
    #[error("{path} cannot be read: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The kind of the operating system's error.
        kind: std::io::ErrorKind,
        /// The operating system's message, as text (its error can be neither cloned nor
        /// compared; `kind` is its typed part).
        reason: String,
    },
    /// An input is not PEM.
    #[error("it is not valid PEM: {reason}")]
    NotPem {
        /// What the PEM parser reported, as text: its error can be neither cloned nor
        /// compared, and the case a caller can act on is [`CorruptPem`](Self::CorruptPem).
        reason: String,
    },
    /// A PEM block of an input is cut short or damaged.
    #[error("a PEM block is incomplete or corrupt")]
    CorruptPem,
    /// An input holds no certificate.
    #[error("it holds no certificate")]
    NoCertificate,
    /// A PEM block of a certificate input holds something else.
    #[error("PEM block #{index} is '{label}', expected 'CERTIFICATE'")]
    NotACertificate {
        /// The block's position, from 0.
        index: usize,
        /// Its label, e.g. `PRIVATE KEY`.
        label: String,
    },
    /// A certificate does not parse as X.509.
    #[error("{error}")]
    BadCertificate {
        /// What the X.509 parser reported.
        #[source]
        error: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
    /// A certificate is followed by bytes that belong to no certificate.
    #[error("trailing bytes after the certificate")]
    TrailingBytes,
    /// A file of the issuer folder is missing; `looks_like` is the other scheme when the
    /// folder holds that scheme's files instead (a wrong `--identity-scheme`).
    #[error(
        "{name} containing the {what} does not exist in {dir} (scheme {scheme}){}",
        other_scheme_hint(*looks_like)
    )]
    IssuerFileMissing {
        /// The file's name, e.g. `crt.pem`.
        name: String,
        /// What it holds, e.g. `issuer certificate`.
        what: String,
        /// The issuer folder.
        dir: String,
        /// The scheme the folder was read with.
        scheme: IdentityScheme,
        /// The scheme whose files the folder holds, if it is the other one.
        looks_like: Option<IdentityScheme>,
    },
    /// An input its maker said could not be had ([`PemSource::missing`](crate::PemSource::missing),
    /// [`ProxyChain::missing`](crate::ProxyChain::missing)).
    #[error("{reason}")]
    Unavailable {
        /// Why, in the words of the input's maker (the caller's own text, shown as given).
        reason: String,
    },
}

// x509-parser's error is `PartialEq` only for want of a derive: none of its values is unequal
// to itself.
impl Eq for Error {}

/// What is wrong with an expiry window ([`Error::InvalidExpiryWindow`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiryWindowProblem {
    /// What precedes `d` is not a whole number.
    #[error("days must be a whole number in front of `d`, as in 60d")]
    DaysNotWhole,
    /// The number of days overflows.
    #[error("too many days")]
    TooManyDays,
    /// The input is empty.
    #[error("empty duration")]
    Empty,
    /// What follows the days is not a Go duration.
    #[error("{0}")]
    Duration(#[source] meshid_policy::Error),
    /// Days and duration together overflow.
    #[error("the duration is too long")]
    TooLong,
}

/// What is wrong with a proxy address ([`Error::InvalidProxyAddr`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyAddrProblem {
    /// `@` has nothing before it.
    #[error("the server name before `@` is empty")]
    EmptyServerName,
    /// There is no `:PORT`.
    #[error("the port is missing")]
    MissingPort,
    /// The host is empty.
    #[error("the host is empty")]
    EmptyHost,
    /// The port is not in 1..=65535.
    #[error("the port is not a number from 1 to 65535")]
    InvalidPort,
}

/// Why no TCP connection could be made to a proxy ([`Error::Connect`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectProblem {
    /// The host name could not be resolved.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host.
        host: String,
        /// The kind of the resolver's error.
        kind: std::io::ErrorKind,
        /// The resolver's message, as text (`kind` is its typed part).
        message: String,
    },
    /// The host resolved to no address.
    #[error("the host resolved to no address")]
    NoAddress,
    /// Connecting failed, or the socket's timeouts could not be set.
    #[error("{}{message}", address.map(|a| format!("{a}: ")).unwrap_or_default())]
    Socket {
        /// The resolved address, when it is not the one given.
        address: Option<std::net::SocketAddr>,
        /// The kind of the operating system's error, e.g. `ConnectionRefused` or `TimedOut`.
        kind: std::io::ErrorKind,
        /// The operating system's message, as text (`kind` is its typed part).
        message: String,
    },
}

/// Why the TLS handshake with a proxy failed ([`Error::Tls`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsProblem {
    /// rustls could not be set up for TLS 1.3.
    #[error("{message}")]
    Setup {
        /// rustls's text: a build defect no caller can act on.
        message: String,
    },
    /// The name to send as SNI is not a valid TLS server name.
    #[error("{name:?} is not a valid TLS server name")]
    ServerName {
        /// The name.
        name: String,
    },
    /// The server did not answer within the timeout.
    #[error("timed out waiting for the server")]
    TimedOut,
    /// The server closed the connection during the handshake.
    #[error(
        "the server closed the connection (is it a TLS 1.3 server? a Linkerd proxy terminates \
         TLS only for its own identity: pass it as SERVER-NAME@HOST:PORT)"
    )]
    Closed,
    /// The handshake failed otherwise (an alert, a protocol error, a reset connection).
    #[error("{message}")]
    Handshake {
        /// The kind of the I/O error the handshake ended with.
        kind: std::io::ErrorKind,
        /// Its message, as text: rustls's or the operating system's (`kind` is its typed
        /// part).
        message: String,
    },
    /// The server completed the handshake without a certificate.
    #[error("the server presented no certificate")]
    NoCertificate,
}

fn other_scheme_hint(looks_like: Option<IdentityScheme>) -> String {
    match looks_like {
        Some(other) => {
            let (crt, key) = other.file_names();
            format!("; the folder holds {crt} and {key}: is the scheme {other}?")
        }
        None => String::new(),
    }
}
