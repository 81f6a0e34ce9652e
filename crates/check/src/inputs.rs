//! What the checks look at: the trust anchors, the issuer files and the proxies, read from
//! files or live connections. Failures to read are kept, not raised: they become failed checks.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::io;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

use crate::{Error, ProxyAddrProblem};

/// The default timeout for connecting to a live proxy and completing the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

// === impl IdentityScheme ===

/// How the issuer Secret is laid out, as Linkerd's `identity.issuer.scheme` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityScheme {
    /// `linkerd.io/tls`: `crt.pem` and `key.pem`; the trust anchors come separately.
    #[default]
    LinkerdTls,
    /// `kubernetes.io/tls` (cert-manager): `tls.crt` and `tls.key`, plus `ca.crt`, which holds
    /// the trust anchors when no trust-anchor file is given.
    KubernetesTls,
}

impl IdentityScheme {
    /// The scheme's name: `linkerd.io/tls` or `kubernetes.io/tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkerdTls => "linkerd.io/tls",
            Self::KubernetesTls => "kubernetes.io/tls",
        }
    }

    /// The file names of the issuer certificate and key in the issuer folder.
    pub fn file_names(self) -> (&'static str, &'static str) {
        match self {
            Self::LinkerdTls => ("crt.pem", "key.pem"),
            Self::KubernetesTls => ("tls.crt", "tls.key"),
        }
    }

    fn other(self) -> Self {
        match self {
            Self::LinkerdTls => Self::KubernetesTls,
            Self::KubernetesTls => Self::LinkerdTls,
        }
    }
}

impl FromStr for IdentityScheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "linkerd.io/tls" => Ok(Self::LinkerdTls),
            "kubernetes.io/tls" => Ok(Self::KubernetesTls),
            _ => Err(Error::InvalidIdentityScheme {
                input: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for IdentityScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl PemSource ===

/// One PEM input: where it came from, and its text or why it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PemSource {
    /// Where it came from (a file path), as shown in messages.
    pub origin: String,
    /// The PEM text, or why there is none.
    pub pem: Result<String, Error>,
}

impl PemSource {
    /// An input held in memory.
    pub fn new(origin: impl Into<String>, pem: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            pem: Ok(pem.into()),
        }
    }

    /// An input that could not be had, and why.
    pub fn missing(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            pem: Err(Error::Unavailable {
                reason: reason.into(),
            }),
        }
    }

    /// Reads a file; a failure is kept as the reason.
    pub fn read(path: &Path) -> Self {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(pem) => Self {
                origin,
                pem: Ok(pem),
            },
            Err(e) => {
                let reason = read_error(path, &e);
                Self {
                    origin,
                    pem: Err(reason),
                }
            }
        }
    }
}

fn read_error(path: &Path, e: &io::Error) -> Error {
    let path = path.display().to_string();
    match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound { path },
        io::ErrorKind::PermissionDenied => Error::PermissionDenied { path },
        kind => Error::Unreadable {
            path,
            kind,
            reason: e.to_string(),
        },
    }
}

// === impl ProxyChain ===

/// The certificate chain a proxy presents (leaf first), or why it could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyChain {
    /// Where it came from (a file path or an address), as shown in messages.
    pub origin: String,
    /// The chain, leaf first, or why there is none.
    pub chain: Result<Vec<CertificateDer<'static>>, Error>,
}

impl ProxyChain {
    /// A chain already at hand (for example, read from a live connection).
    pub fn new(origin: impl Into<String>, chain: Vec<CertificateDer<'static>>) -> Self {
        Self {
            origin: origin.into(),
            chain: Ok(chain),
        }
    }

    /// A chain from PEM text holding `CERTIFICATE` blocks, leaf first.
    pub fn from_pem(origin: impl Into<String>, pem: &str) -> Self {
        Self {
            origin: origin.into(),
            chain: parse_certificates(pem),
        }
    }

    /// A chain that could not be had, and why.
    pub fn missing(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            chain: Err(Error::Unavailable {
                reason: reason.into(),
            }),
        }
    }

    /// Reads a PEM chain file (leaf first).
    pub fn read(path: &Path) -> Self {
        let source = PemSource::read(path);
        match source.pem {
            Ok(pem) => Self::from_pem(source.origin, &pem),
            Err(reason) => Self {
                origin: source.origin,
                chain: Err(reason),
            },
        }
    }

    /// Opens a TLS 1.3 connection to a proxy and keeps the chain it presents (see
    /// [`danger::fetch_chain`](crate::danger::fetch_chain)); a failure is kept as the reason.
    pub fn connect(addr: &ProxyAddr, timeout: Duration) -> Self {
        match crate::danger::fetch_chain(addr, timeout) {
            Ok(chain) => Self::new(addr.to_string(), chain),
            Err(e) => Self {
                origin: addr.to_string(),
                chain: Err(e),
            },
        }
    }
}

/// Parses every `CERTIFICATE` block of `pem`; any other block, or none, is an error.
pub(crate) fn parse_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let blocks = pem::parse_many(pem).map_err(|e| Error::NotPem {
        reason: e.to_string(),
    })?;
    if blocks.len() != pem.matches("-----BEGIN ").count() {
        return Err(Error::CorruptPem);
    }
    if blocks.is_empty() {
        return Err(Error::NoCertificate);
    }
    blocks
        .into_iter()
        .enumerate()
        .map(|(i, block)| {
            if block.tag() == "CERTIFICATE" {
                Ok(CertificateDer::from(block.into_contents()))
            } else {
                Err(Error::NotACertificate {
                    index: i,
                    label: block.tag().to_owned(),
                })
            }
        })
        .collect()
}

// === impl ProxyAddr ===

/// A live proxy to inspect: `HOST:PORT`, or `SERVER-NAME@HOST:PORT` to send a TLS server name
/// (SNI). A Linkerd proxy terminates TLS only for its own identity, so give its identity as the
/// server name, e.g. `web.emojivoto.serviceaccount.identity.linkerd.cluster.local@10.0.0.7:4143`.
/// Without one, a DNS-name host is sent as the server name and an IP address sends none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProxyAddr {
    server_name: Option<String>,
    host: String,
    port: u16,
}

impl ProxyAddr {
    /// The TLS server name given, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The host (a name or an IP address; IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for ProxyAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |problem: ProxyAddrProblem| Error::InvalidProxyAddr {
            input: s.to_owned(),
            problem,
        };
        let (server_name, addr) = match s.rsplit_once('@') {
            Some(("", _)) => {
                return Err(bad(ProxyAddrProblem::EmptyServerName));
            }
            Some((name, addr)) => (Some(name.to_owned()), addr),
            None => (None, s),
        };
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad(ProxyAddrProblem::MissingPort))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad(ProxyAddrProblem::EmptyHost));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad(ProxyAddrProblem::InvalidPort))?;
        if port == 0 {
            return Err(bad(ProxyAddrProblem::InvalidPort));
        }
        Ok(Self {
            server_name,
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for ProxyAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.server_name {
            write!(f, "{name}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

// === impl InputPaths ===

/// Where to read the inputs from: files, folders and proxy addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputPaths {
    /// The trust-anchor bundle (PEM). `None`: `ca.crt` of the issuer folder under
    /// `kubernetes.io/tls`; under `linkerd.io/tls` the config check fails.
    pub trust_anchors: Option<PathBuf>,
    /// The issuer folder (the mounted `linkerd-identity-issuer` Secret).
    pub issuer_dir: PathBuf,
    /// The layout of the issuer folder.
    pub identity_scheme: IdentityScheme,
    /// Proxies' certificate chains, PEM files, leaf first.
    pub proxy_certs: Vec<PathBuf>,
    /// Live proxies to connect to.
    pub proxy_addrs: Vec<ProxyAddr>,
    /// Proxies' trust bundles (what `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS` holds), PEM files.
    pub proxy_bundles: Vec<PathBuf>,
    /// Timeout for each live connection: TCP connect, and each read or write of the handshake.
    pub connect_timeout: Duration,
}

impl InputPaths {
    /// The issuer folder and the trust anchors; no proxies; scheme `linkerd.io/tls`.
    pub fn new(issuer_dir: impl Into<PathBuf>, trust_anchors: Option<PathBuf>) -> Self {
        Self {
            trust_anchors,
            issuer_dir: issuer_dir.into(),
            identity_scheme: IdentityScheme::default(),
            proxy_certs: Vec::new(),
            proxy_addrs: Vec::new(),
            proxy_bundles: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

// === impl Inputs ===

/// Everything the checks look at, already read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inputs {
    /// The trust-anchor bundle.
    pub trust_anchors: PemSource,
    /// The issuer certificate file (issuer first, then any further intermediates).
    pub issuer_certificate: PemSource,
    /// The issuer key.
    pub issuer_key: PemSource,
    /// Proxies' presented chains.
    pub proxies: Vec<ProxyChain>,
    /// Proxies' trust bundles.
    pub proxy_bundles: Vec<PemSource>,
}

impl Inputs {
    /// The three identity inputs; no proxies.
    pub fn new(
        trust_anchors: PemSource,
        issuer_certificate: PemSource,
        issuer_key: PemSource,
    ) -> Self {
        Self {
            trust_anchors,
            issuer_certificate,
            issuer_key,
            proxies: Vec::new(),
            proxy_bundles: Vec::new(),
        }
    }

    /// Reads every input: files (a missing or unreadable file is kept as its reason) and live
    /// proxies (one connection each, in order; a failure is kept as its reason).
    pub fn read(paths: &InputPaths) -> Self {
        let scheme = paths.identity_scheme;
        let (crt_name, key_name) = scheme.file_names();
        let dir = &paths.issuer_dir;
        let trust_anchors = match (&paths.trust_anchors, scheme) {
            (Some(path), _) => PemSource::read(path),
            (None, IdentityScheme::KubernetesTls) => PemSource::read(&dir.join("ca.crt")),
            (None, IdentityScheme::LinkerdTls) => PemSource::missing(
                "trust anchors",
                "no trust-anchor file was given; the linkerd.io/tls scheme keeps the anchors \
                 out of the issuer folder (ConfigMap linkerd-identity-trust-roots, key \
                 ca-bundle.crt)",
            ),
        };
        let issuer_certificate = read_issuer_file(dir, crt_name, "issuer certificate", scheme);
        let issuer_key = read_issuer_file(dir, key_name, "issuer key", scheme);
        let proxies = paths
            .proxy_certs
            .iter()
            .map(|p| ProxyChain::read(p))
            .chain(
                paths
                    .proxy_addrs
                    .iter()
                    .map(|a| ProxyChain::connect(a, paths.connect_timeout)),
            )
            .collect();
        let proxy_bundles = paths
            .proxy_bundles
            .iter()
            .map(|p| PemSource::read(p))
            .collect();
        Self {
            trust_anchors,
            issuer_certificate,
            issuer_key,
            proxies,
            proxy_bundles,
        }
    }
}

/// Reads a file of the issuer folder; when it is missing, says whether the folder looks like
/// the other scheme.
fn read_issuer_file(dir: &Path, name: &str, what: &str, scheme: IdentityScheme) -> PemSource {
    let path = dir.join(name);
    let mut source = PemSource::read(&path);
    if let Err(reason) = &mut source.pem
        && !path.exists()
    {
        let other = scheme.other();
        let (other_crt, other_key) = other.file_names();
        let looks_like =
            (dir.join(other_crt).exists() && dir.join(other_key).exists()).then_some(other);
        *reason = Error::IssuerFileMissing {
            name: name.to_owned(),
            what: what.to_owned(),
            dir: dir.display().to_string(),
            scheme,
            looks_like,
        };
    }
    source
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_address_refusals_are_typed() {
        for (input, problem, reason) in [
            (
                "@127.0.0.1:4143",
                ProxyAddrProblem::EmptyServerName,
                "the server name before `@` is empty",
            ),
            (
                "127.0.0.1",
                ProxyAddrProblem::MissingPort,
                "the port is missing",
            ),
            (":4143", ProxyAddrProblem::EmptyHost, "the host is empty"),
            ("[]:4143", ProxyAddrProblem::EmptyHost, "the host is empty"),
            (
                "host:0",
                ProxyAddrProblem::InvalidPort,
                "the port is not a number from 1 to 65535",
            ),
            (
                "host:http",
                ProxyAddrProblem::InvalidPort,
                "the port is not a number from 1 to 65535",
            ),
        ] {
            let err = input.parse::<ProxyAddr>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid proxy address {input:?}: {reason}; use HOST:PORT or \
                     SERVER-NAME@HOST:PORT"
                )
            );
            assert_eq!(
                err,
                Error::InvalidProxyAddr {
                    input: input.to_owned(),
                    problem
                }
            );
        }
    }

    #[test]
    fn proxy_addresses() {
        let a: ProxyAddr = "127.0.0.1:4143".parse().unwrap();
        assert_eq!(
            (a.host(), a.port(), a.server_name()),
            ("127.0.0.1", 4143, None)
        );
        let a: ProxyAddr = "web.emojivoto@[::1]:4143".parse().unwrap();
        assert_eq!(
            (a.host(), a.port(), a.server_name()),
            ("::1", 4143, Some("web.emojivoto"))
        );
        assert_eq!(a.to_string(), "web.emojivoto@[::1]:4143");
        for bad in [
            "",
            "host",
            "host:",
            ":80",
            "host:0",
            "host:65536",
            "@host:1",
        ] {
            assert!(bad.parse::<ProxyAddr>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(
            "kubernetes.io/tls".parse(),
            Ok(IdentityScheme::KubernetesTls)
        );
        assert_eq!("linkerd.io/tls".parse(), Ok(IdentityScheme::LinkerdTls));
        assert!("tls".parse::<IdentityScheme>().is_err());
    }

    #[test]
    fn certificate_blocks() {
        let empty = parse_certificates("").unwrap_err();
        assert_eq!(empty, Error::NoCertificate);
        assert_eq!(empty.to_string(), "it holds no certificate");
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = parse_certificates(key).unwrap_err();
        assert_eq!(
            e,
            Error::NotACertificate {
                index: 0,
                label: "PRIVATE KEY".to_owned()
            }
        );
        assert_eq!(
            e.to_string(),
            "PEM block #0 is 'PRIVATE KEY', expected 'CERTIFICATE'"
        );
    }
}
