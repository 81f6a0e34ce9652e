//! The error type of the check library: bad arguments, unreadable or unparsable inputs, and
//! failed connections. Failed checks are
//! not errors; they are [`CheckResult`](crate::CheckResult)s in the [`Report`](crate::Report).

use crate::IdentityScheme;

/// Why an argument was refused, an input could not be read or parsed, or a live proxy could
/// not be inspected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No TCP connection could be made to a proxy address.
    #[error(
        "cannot connect to {addr}: {reason}; check the address and that the proxy listens there"
    )]
    Connect {
        /// The address as given.
        addr: String,
        /// What the socket layer reported.
        reason: String,
    },
    /// An expiry window could not be parsed.
    #[error(
        "invalid expiry window {input:?}: {reason}; use a Go duration such as 1440h, or days \
         such as 60d"
    )]
    InvalidExpiryWindow {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
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
    #[error("invalid proxy address {input:?}: {reason}; use HOST:PORT or SERVER-NAME@HOST:PORT")]
    InvalidProxyAddr {
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The report could not be serialised to JSON.
    #[error("cannot serialise the report to JSON: {reason}")]
    Json {
        /// What serde_json reported.
        reason: String,
    },
    /// The TLS handshake with a proxy failed, or it presented no certificate.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// The address as given.
        addr: String,
        /// What went wrong.
        reason: String,
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
        /// What the operating system reported.
        reason: String,
    },
    /// An input is not PEM.
    #[error("it is not valid PEM: {reason}")]
    NotPem {
        /// What the PEM parser reported.
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
    #[error("{reason}")]
    BadCertificate {
        /// What the X.509 parser reported.
        reason: String,
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
        /// Why, as given.
        reason: String,
    },
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
