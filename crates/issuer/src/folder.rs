//! Reading an issuer folder (a mounted Secret) and a trust-anchor bundle file.

use core::fmt;
use core::str::FromStr;
use std::path::{Path, PathBuf};

use meshid_verify::TrustBundle;
use ring::digest;
use zeroize::Zeroizing;

use crate::Error;

/// The symlink through which kubelet swaps a mounted Secret or ConfigMap atomically.
pub const DATA_LINK: &str = "..data";

/// The default trust-anchor bundle file name (ConfigMap `linkerd-identity-trust-roots`).
pub const BUNDLE_FILE: &str = "ca-bundle.crt";

/// How the files of an issuer Secret are named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IssuerScheme {
    /// `linkerd.io/tls`: `crt.pem` and `key.pem` (Linkerd's default install).
    #[default]
    LinkerdTls,
    /// `kubernetes.io/tls`: `tls.crt` and `tls.key`, plus `ca.crt` (what cert-manager writes).
    KubernetesTls,
}

impl IssuerScheme {
    /// The scheme's name, as Linkerd's `identity.issuer.scheme` value spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::LinkerdTls => "linkerd.io/tls",
            Self::KubernetesTls => "kubernetes.io/tls",
        }
    }

    /// The certificate chain file: issuer first, then any further intermediates.
    pub fn cert_file(self) -> &'static str {
        match self {
            Self::LinkerdTls => "crt.pem",
            Self::KubernetesTls => "tls.crt",
        }
    }

    /// The private key file.
    pub fn key_file(self) -> &'static str {
        match self {
            Self::LinkerdTls => "key.pem",
            Self::KubernetesTls => "tls.key",
        }
    }

    /// The CA certificate file written next to the issuer, if the scheme has one. With
    /// `kubernetes.io/tls` it is the trust-anchor source when no bundle file is configured.
    pub fn ca_file(self) -> Option<&'static str> {
        match self {
            Self::LinkerdTls => None,
            Self::KubernetesTls => Some("ca.crt"),
        }
    }
}

impl fmt::Display for IssuerScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IssuerScheme {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "linkerd.io/tls" => Ok(Self::LinkerdTls),
            "kubernetes.io/tls" => Ok(Self::KubernetesTls),
            _ => Err(Error::InvalidName {
                field: "issuer scheme",
                value: s.to_owned(),
                reason: "expected linkerd.io/tls or kubernetes.io/tls",
            }),
        }
    }
}

/// A SHA-256 over the files of a source (names and contents), to tell a real change from a
/// repeated notification or poll.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    fn of(parts: &[(&str, Option<&[u8]>)]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for (name, content) in parts {
            ctx.update(&(name.len() as u64).to_be_bytes());
            ctx.update(name.as_bytes());
            match content {
                Some(bytes) => {
                    ctx.update(&[1]);
                    ctx.update(&(bytes.len() as u64).to_be_bytes());
                    ctx.update(bytes);
                }
                None => ctx.update(&[0]),
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Self(out)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A folder holding issuer credentials in one [`IssuerScheme`], usually the mounted Secret
/// `linkerd-identity-issuer` at `/var/run/linkerd/identity/issuer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerFolder {
    dir: PathBuf,
    scheme: IssuerScheme,
}

impl IssuerFolder {
    /// The folder `dir` in `scheme`.
    pub fn new(dir: impl Into<PathBuf>, scheme: IssuerScheme) -> Self {
        Self {
            dir: dir.into(),
            scheme,
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The naming scheme.
    pub fn scheme(&self) -> IssuerScheme {
        self.scheme
    }

    /// The certificate chain file.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(self.scheme.cert_file())
    }

    /// The key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(self.scheme.key_file())
    }

    /// The CA certificate file, if the scheme has one.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.scheme.ca_file().map(|name| self.dir.join(name))
    }

    /// Reads the files.
    ///
    /// When the folder is a kubelet mount (it has a `..data` symlink), the link is resolved
    /// once and every file is read from the one data folder it names, so the certificate and
    /// key always come from the same version of the Secret even if kubelet swaps it mid-read.
    /// If that version is deleted while being read, the read is retried once on the new one.
    ///
    /// Errors name the file: `reading /var/run/linkerd/identity/issuer/crt.pem: No such file or
    /// directory (os error 2)`.
    pub fn read(&self) -> Result<IssuerFiles, Error> {
        match self.read_once() {
            Err(Error::Io { .. }) if self.dir.join(DATA_LINK).is_symlink() => self.read_once(),
            other => other,
        }
    }

    fn read_once(&self) -> Result<IssuerFiles, Error> {
        // Read every file through the resolved data folder; report the path the user knows.
        let base = match std::fs::read_link(self.dir.join(DATA_LINK)) {
            Ok(target) => self.dir.join(target),
            Err(_) => self.dir.clone(),
        };
        let read = |name: &str| -> Result<Vec<u8>, Error> {
            std::fs::read(base.join(name)).map_err(|e| Error::io("reading", self.dir.join(name), e))
        };
        let text = |name: &str, bytes: Vec<u8>| -> Result<String, Error> {
            String::from_utf8(bytes).map_err(|_| {
                Error::io(
                    "reading",
                    self.dir.join(name),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
                )
            })
        };
        let cert_name = self.scheme.cert_file();
        let key_name = self.scheme.key_file();
        let chain_pem = text(cert_name, read(cert_name)?)?;
        let key_bytes = Zeroizing::new(read(key_name)?);
        let key_pem = match core::str::from_utf8(&key_bytes) {
            Ok(s) => Zeroizing::new(s.to_owned()),
            Err(_) => {
                return Err(Error::io(
                    "reading",
                    self.dir.join(key_name),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
                ));
            }
        };
        let ca_pem = match self.scheme.ca_file() {
            Some(name) => match std::fs::read(base.join(name)) {
                Ok(bytes) => Some(text(name, bytes)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io("reading", self.dir.join(name), e)),
            },
            None => None,
        };
        Ok(IssuerFiles {
            chain_pem,
            key_pem,
            ca_pem,
        })
    }
}

/// The contents of an issuer folder. The key is wiped from memory when dropped and redacted
/// from `Debug`.
#[non_exhaustive]
pub struct IssuerFiles {
    /// The certificate chain, issuer first (PEM).
    pub chain_pem: String,
    /// The issuer key (PEM: `EC PRIVATE KEY` or `PRIVATE KEY`).
    pub key_pem: Zeroizing<String>,
    /// The CA certificate (`ca.crt` of `kubernetes.io/tls`), if present.
    pub ca_pem: Option<String>,
}

impl IssuerFiles {
    /// Files with these contents.
    pub fn new(chain_pem: String, key_pem: Zeroizing<String>, ca_pem: Option<String>) -> Self {
        Self {
            chain_pem,
            key_pem,
            ca_pem,
        }
    }

    /// The SHA-256 of the certificate and key (the part that makes the issuer).
    pub fn issuer_hash(&self) -> ContentHash {
        ContentHash::of(&[
            ("chain", Some(self.chain_pem.as_bytes())),
            ("key", Some(self.key_pem.as_bytes())),
        ])
    }
}

impl fmt::Debug for IssuerFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerFiles")
            .field("chain_len", &self.chain_pem.len())
            .field("key", &"[redacted]")
            .field("ca_pem", &self.ca_pem.as_ref().map(String::len))
            .finish()
    }
}

/// The SHA-256 of a trust-anchor bundle's bytes.
pub fn bundle_hash(pem: &[u8]) -> ContentHash {
    ContentHash::of(&[("bundle", Some(pem))])
}

/// Reads and parses a trust-anchor bundle file (concatenated PEM certificates).
pub fn read_trust_bundle(path: &Path) -> Result<TrustBundle, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    TrustBundle::from_pem(&bytes).map_err(|source| Error::TrustBundle {
        path: path.to_owned(),
        source,
    })
}
