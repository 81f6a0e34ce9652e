//! Bootstrap tooling: a trust anchor like `step certificate create --profile root-ca`, an
//! issuer signed by it, and cert-manager manifests that keep the issuer renewed.

use core::fmt;
use core::time::Duration;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::write::{CERT_MODE, KEY_MODE, check_absent, write_atomic};
use crate::{Error, MintProblem};

/// The trust anchor's common name in Linkerd's docs.
pub const ROOT_COMMON_NAME: &str = "root.linkerd.cluster.local";
/// The issuer's common name (and DNS name) in Linkerd's docs.
pub const ISSUER_COMMON_NAME: &str = "identity.linkerd.cluster.local";
/// `step certificate create --profile root-ca`'s validity: 10 years.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The issuer validity of Linkerd's cert-manager recipe: 48h.
pub const ISSUER_VALIDITY: Duration = Duration::from_secs(48 * 3600);

// === trust anchor ===

/// A trust anchor with its key: what signs issuers.
pub struct TrustAnchorKey {
    ca: CaCertificate,
}

impl TrustAnchorKey {
    /// Loads a trust anchor from its certificate and key files. The key file must be readable
    /// by its owner only (mode 0600 or stricter).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(key_path).map_err(|e| Error::io("reading", key_path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::AnchorKeyPermissions {
                path: key_path.to_owned(),
                mode,
            });
        }
        let cert_pem =
            std::fs::read_to_string(cert_path).map_err(|e| Error::io("reading", cert_path, e))?;
        let key_pem = Zeroizing::new(
            std::fs::read_to_string(key_path).map_err(|e| Error::io("reading", key_path, e))?,
        );
        Self::parse(&cert_pem, &key_pem, cert_path)
    }

    /// A trust anchor from PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        Self::parse(cert_pem, key_pem, Path::new("<memory>"))
    }

    /// The trust anchor of a freshly minted [`CaCertificate`].
    pub fn from_ca_certificate(ca: &CaCertificate) -> Result<Self, Error> {
        Self::from_pem(&ca.pem(), &ca.key_pem())
    }

    fn parse(cert_pem: &str, key_pem: &str, path: &Path) -> Result<Self, Error> {
        let ca = CaCertificate::from_pem(cert_pem, key_pem).map_err(|e| match e {
            meshid_ca::Error::InvalidCaCertificate { problem } => Error::TrustAnchor {
                path: path.to_owned(),
                problem,
            },
            other => Error::Ca(other),
        })?;
        Ok(Self { ca })
    }

    /// The certificate.
    pub fn der(&self) -> &CertificateDer<'static> {
        self.ca.der()
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.ca.pem()
    }

    /// The subject, for logs.
    pub fn subject(&self) -> &str {
        self.ca.subject()
    }

    /// NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.ca.not_before()
    }

    /// NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.ca.not_after()
    }
}

impl fmt::Debug for TrustAnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustAnchorKey")
            .field("subject", &self.subject())
            .field("not_after", &self.not_after())
            .field("key", &"[redacted]")
            .finish()
    }
}

// === minting ===

/// A freshly minted issuer.
#[non_exhaustive]
pub struct MintedIssuer {
    /// The issuer certificate (PEM).
    pub cert_pem: String,
    /// Its key (PKCS#8 PEM; write it with mode 0600).
    pub key_pem: Zeroizing<String>,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter (never past the anchor's).
    pub not_after: OffsetDateTime,
}

impl fmt::Debug for MintedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedIssuer")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Issuer options as `meshid bootstrap issuer` takes them: P-256, pathlen 0, keyCertSign +
/// cRLSign, EKU serverAuth + clientAuth (or, with `eku` false, no EKU extension), valid for
/// `duration` from `now`.
pub fn issuer_options(
    common_name: &str,
    now: OffsetDateTime,
    duration: Duration,
    eku: bool,
) -> CaOptions {
    let mut options = CaOptions::issuer(common_name, now, duration);
    options.server_and_client_eku = eku;
    options
}

/// Mints an issuer (intermediate CA) signed by `anchor`. Its NotAfter is clamped to the
/// anchor's, since nothing it signs could outlive the anchor anyway.
pub fn mint_issuer(anchor: &TrustAnchorKey, options: &CaOptions) -> Result<MintedIssuer, Error> {
    let not_after = options.not_after.min(anchor.not_after());
    if not_after <= options.not_before {
        return Err(Error::Mint(MintProblem::AnchorExpiresFirst {
            anchor: anchor.subject().to_owned(),
            not_after: anchor.not_after(),
        }));
    }
    let mut clamped = options.clone();
    clamped.not_after = not_after;
    let issuer =
        create_intermediate(&anchor.ca, &clamped).map_err(|e| Error::Mint(MintProblem::Ca(e)))?;
    Ok(MintedIssuer {
        cert_pem: issuer.pem(),
        key_pem: issuer.key_pem(),
        not_before: options.not_before,
        not_after,
    })
}

// === files ===

/// Where a certificate and its key are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFiles {
    /// The certificate (mode 0644).
    pub cert: PathBuf,
    /// The key (mode 0600).
    pub key: PathBuf,
}

impl OutputFiles {
    /// Certificate and key paths.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }

    fn write(&self, cert_pem: &str, key_pem: &str, force: bool) -> Result<(), Error> {
        check_absent(&[&self.cert, &self.key], force)?;
        write_atomic(&self.key, key_pem.as_bytes(), KEY_MODE)?;
        write_atomic(&self.cert, cert_pem.as_bytes(), CERT_MODE)
    }
}

/// `root-ca`: mints a trust anchor like `step certificate create root.linkerd.cluster.local
/// ca.crt ca.key --profile root-ca` (P-256, 10 years, pathlen 1 with
/// [`CaOptions::root`]`(ROOT_COMMON_NAME, now, ROOT_VALIDITY)`) and writes it. Nothing is
/// written if either file exists, unless `force`.
pub fn write_root_ca(
    out: &OutputFiles,
    options: &CaOptions,
    force: bool,
) -> Result<CaCertificate, Error> {
    check_absent(&[&out.cert, &out.key], force)?;
    let root = create_root(options)?;
    out.write(&root.pem(), &root.key_pem(), force)?;
    Ok(root)
}

/// `issuer`: mints an issuer signed by `anchor` (see [`issuer_options`]) and writes it.
/// Nothing is written if either file exists, unless `force`.
pub fn write_issuer(
    anchor: &TrustAnchorKey,
    out: &OutputFiles,
    options: &CaOptions,
    force: bool,
) -> Result<MintedIssuer, Error> {
    check_absent(&[&out.cert, &out.key], force)?;
    let issuer = mint_issuer(anchor, options)?;
    out.write(&issuer.cert_pem, &issuer.key_pem, force)?;
    Ok(issuer)
}

// === cert-manager ===

/// The cert-manager resources of Linkerd's guide: a CA `Issuer` backed by the trust-anchor
/// Secret, and a `Certificate` that keeps the identity issuer Secret renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertManagerManifests {
    /// The control-plane namespace (`linkerd`).
    pub namespace: String,
    /// The cert-manager `Issuer` (`linkerd-trust-anchor`).
    pub issuer_name: String,
    /// The TLS Secret holding the trust anchor and its key (`linkerd-trust-anchor`).
    pub trust_anchor_secret: String,
    /// The `Certificate` (`linkerd-identity-issuer`).
    pub certificate_name: String,
    /// The Secret cert-manager writes the issuer to (`linkerd-identity-issuer`).
    pub issuer_secret: String,
    /// The issuer's common name (`identity.linkerd.cluster.local`).
    pub common_name: String,
    /// The issuer's DNS names (`[identity.linkerd.cluster.local]`).
    pub dns_names: Vec<String>,
    /// `duration` (48h).
    pub duration: Duration,
    /// `renewBefore` (25h).
    pub renew_before: Duration,
}

impl Default for CertManagerManifests {
    fn default() -> Self {
        Self {
            namespace: "linkerd".to_owned(),
            issuer_name: "linkerd-trust-anchor".to_owned(),
            trust_anchor_secret: "linkerd-trust-anchor".to_owned(),
            certificate_name: "linkerd-identity-issuer".to_owned(),
            issuer_secret: "linkerd-identity-issuer".to_owned(),
            common_name: ISSUER_COMMON_NAME.to_owned(),
            dns_names: vec![ISSUER_COMMON_NAME.to_owned()],
            duration: ISSUER_VALIDITY,
            renew_before: Duration::from_secs(25 * 3600),
        }
    }
}

impl CertManagerManifests {
    /// Linkerd's names in `namespace`.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            ..Self::default()
        }
    }

    /// The two resources as one YAML stream. Every name is checked first (Kubernetes object
    /// names, DNS names), so nothing unexpected reaches the YAML.
    pub fn render(&self) -> Result<String, Error> {
        let Self {
            namespace,
            issuer_name,
            trust_anchor_secret,
            certificate_name,
            issuer_secret,
            common_name,
            dns_names,
            duration,
            renew_before,
        } = self;
        object_name("namespace", namespace, 63)?;
        object_name("issuer name", issuer_name, 253)?;
        object_name("trust-anchor secret", trust_anchor_secret, 253)?;
        object_name("certificate name", certificate_name, 253)?;
        object_name("issuer secret", issuer_secret, 253)?;
        dns_name("common name", common_name)?;
        for name in dns_names {
            dns_name("DNS name", name)?;
        }
        let mut schedule = meshid_rotation::IssuerSchedule::new(*duration);
        schedule.renew_before = Some(*renew_before);
        schedule.validate().map_err(Error::InvalidSchedule)?;
        let go = meshid_policy::format_go_duration;
        let dns: String = dns_names.iter().map(|n| format!("  - {n}\n")).collect();
        Ok(format!(
            "apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: {issuer_name}
  namespace: {namespace}
spec:
  ca:
    secretName: {trust_anchor_secret}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {certificate_name}
  namespace: {namespace}
spec:
  secretName: {issuer_secret}
  duration: {duration}
  renewBefore: {renew_before}
  issuerRef:
    name: {issuer_name}
    kind: Issuer
  commonName: {common_name}
  dnsNames:
{dns}  isCA: true
  privateKey:
    algorithm: ECDSA
  usages:
  - cert sign
  - crl sign
  - server auth
  - client auth
",
            duration = go(*duration),
            renew_before = go(*renew_before),
        ))
    }
}

/// A Kubernetes object name: a DNS-1123 subdomain (or label, with `max` 63).
fn object_name(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            field,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() || value.len() > max {
        return invalid("must be 1 to 253 characters (a namespace: 63)");
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if !value.chars().all(ok_char) {
        return invalid("may contain only lowercase letters, digits, '-' and '.'");
    }
    if max == 63 && value.contains('.') {
        return invalid("a namespace may not contain '.'");
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(value.chars().next()) || !alnum(value.chars().last()) {
        return invalid("must start and end with a letter or digit");
    }
    Ok(())
}

/// A DNS name for a certificate.
fn dns_name(field: &'static str, value: &str) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            field,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() || value.len() > 253 {
        return invalid("must be 1 to 253 characters");
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return invalid("must be dot-separated labels of letters, digits and inner '-'");
        }
    }
    Ok(())
}
