//! Names: trust domains, namespaces, ServiceAccounts, identity names and SPIFFE IDs.

use core::fmt;
use core::str::FromStr;

use crate::{Error, IdentityProblem, SpiffeIdProblem};

/// The longest DNS name a certificate may carry (RFC 1035 §2.3.4, without the trailing dot).
const MAX_DNS_NAME_LEN: usize = 253;
/// The longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// The fixed part of an identity name between the ServiceAccount and the control plane.
const IDENTITY_MARKER: &str = ".serviceaccount.identity.";
/// The prefix of a Kubernetes ServiceAccount username.
const SA_USERNAME_PREFIX: &str = "system:serviceaccount:";

/// Why a DNS-1123 name was refused; shared by every name type here.
fn dns1123_label_problem(label: &str) -> Option<&'static str> {
    let bytes = label.as_bytes();
    if bytes.is_empty() {
        return Some("must not be empty");
    }
    if bytes.len() > MAX_LABEL_LEN {
        return Some("must be at most 63 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Some("must consist of lower case alphanumeric characters or '-'");
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Some("must start and end with an alphanumeric character");
    }
    None
}

fn dns1123_subdomain_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Some("must be at most 253 characters");
    }
    name.split('.').find_map(dns1123_label_problem)
}

/// Whether `s` is a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters),
/// the rule Kubernetes applies to namespace names.
pub fn is_dns1123_label(s: &str) -> bool {
    dns1123_label_problem(s).is_none()
}

/// Whether `s` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters),
/// the rule Kubernetes applies to ServiceAccount names.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    dns1123_subdomain_problem(s).is_none()
}

// === impl TrustDomain ===

/// The mesh's trust domain, a DNS-1123 subdomain such as `cluster.local` (the default).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates `name` as a trust domain.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        match dns1123_subdomain_problem(&name) {
            None => Ok(Self(name)),
            Some(reason) => Err(Error::InvalidTrustDomain {
                input: name,
                reason,
            }),
        }
    }

    /// The trust domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TrustDomain {
    fn default() -> Self {
        Self("cluster.local".to_owned())
    }
}

impl FromStr for TrustDomain {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl Namespace ===

/// A Kubernetes namespace name: a DNS-1123 label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// Validates `name` as a namespace.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        match dns1123_label_problem(&name) {
            None => Ok(Self(name)),
            Some(reason) => Err(Error::InvalidNamespace {
                input: name,
                reason,
            }),
        }
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl ServiceAccount ===

/// A Kubernetes ServiceAccount: the subject of a workload identity.
///
/// The namespace is a DNS-1123 label; the name is a DNS-1123 subdomain, so dots are allowed
/// (Linkerd refuses them).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAccount {
    namespace: Namespace,
    name: String,
}

impl ServiceAccount {
    /// Validates a ServiceAccount `name` in `namespace`.
    pub fn new(namespace: &str, name: &str) -> Result<Self, Error> {
        let namespace = Namespace::new(namespace)?;
        if let Some(reason) = dns1123_subdomain_problem(name) {
            return Err(Error::InvalidServiceAccount {
                input: name.to_owned(),
                reason,
            });
        }
        Ok(Self {
            namespace,
            name: name.to_owned(),
        })
    }

    /// Parses a Kubernetes username of the form `system:serviceaccount:<ns>:<sa>`.
    pub fn from_username(username: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidServiceAccountUsername {
            input: username.to_owned(),
            reason,
        };
        let rest = username
            .strip_prefix(SA_USERNAME_PREFIX)
            .ok_or_else(|| invalid("must start with 'system:serviceaccount:'"))?;
        let (namespace, name) = rest.split_once(':').ok_or_else(|| {
            invalid("must have the form system:serviceaccount:<namespace>:<name>")
        })?;
        Self::new(namespace, name)
    }

    /// The Kubernetes username, `system:serviceaccount:<ns>:<sa>`.
    pub fn username(&self) -> String {
        format!("{SA_USERNAME_PREFIX}{}:{}", self.namespace, self.name)
    }

    /// The ServiceAccount's namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The ServiceAccount's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

// === impl Identity ===

/// A workload identity name, `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`.
///
/// Built by [`Mesh::identity`]; it is a DNS name and is what the leaf's DNS SAN carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(String);

impl Identity {
    /// The identity name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// === impl SpiffeId ===

/// A SPIFFE ID, `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId(String);

impl SpiffeId {
    /// The SPIFFE ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SpiffeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// === impl San ===

/// A subject alternative name that a leaf certificate carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum San {
    /// A DNS name (the identity name).
    Dns(String),
    /// A URI (the SPIFFE ID).
    Uri(String),
}

impl San {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Dns(s) | Self::Uri(s) => s,
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(s) => write!(f, "DNS:{s}"),
            Self::Uri(s) => write!(f, "URI:{s}"),
        }
    }
}

/// Which subject alternative names a leaf certificate carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SanMode {
    /// One DNS SAN, the identity name: what Linkerd proxies expect (the default).
    #[default]
    Dns,
    /// The identity name as a DNS SAN and the SPIFFE ID as a URI SAN.
    DnsAndSpiffe,
    /// Only the SPIFFE ID, as a URI SAN.
    Spiffe,
}

impl SanMode {
    /// Whether this mode puts the identity name in a DNS SAN.
    pub fn has_dns(self) -> bool {
        matches!(self, Self::Dns | Self::DnsAndSpiffe)
    }

    /// Whether this mode puts the SPIFFE ID in a URI SAN.
    pub fn has_spiffe(self) -> bool {
        matches!(self, Self::Spiffe | Self::DnsAndSpiffe)
    }
}

impl FromStr for SanMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "dns" => Ok(Self::Dns),
            "dns+spiffe" | "dns-and-spiffe" => Ok(Self::DnsAndSpiffe),
            "spiffe" => Ok(Self::Spiffe),
            _ => Err(Error::InvalidSanMode {
                input: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for SanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dns => "dns",
            Self::DnsAndSpiffe => "dns+spiffe",
            Self::Spiffe => "spiffe",
        })
    }
}

// === impl Mesh ===

/// The mesh-wide naming context: trust domain and control-plane namespace.
///
/// Every identity name and SPIFFE ID is formatted and parsed relative to a `Mesh`, which makes
/// parsing unambiguous even for ServiceAccount names that contain dots.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mesh {
    trust_domain: TrustDomain,
    control_plane_namespace: Namespace,
    /// `.serviceaccount.identity.<cp-ns>.<td>`, precomputed for formatting and parsing.
    identity_suffix: String,
}

impl Mesh {
    /// A mesh with this trust domain and control-plane namespace.
    pub fn new(trust_domain: TrustDomain, control_plane_namespace: Namespace) -> Self {
        let identity_suffix = format!("{IDENTITY_MARKER}{control_plane_namespace}.{trust_domain}");
        Self {
            trust_domain,
            control_plane_namespace,
            identity_suffix,
        }
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The control-plane namespace.
    pub fn control_plane_namespace(&self) -> &Namespace {
        &self.control_plane_namespace
    }

    /// The identity name of `sa`.
    ///
    /// Fails only when the result would be longer than a DNS name may be (253 characters).
    pub fn identity(&self, sa: &ServiceAccount) -> Result<Identity, Error> {
        // Built by hand, not with `format!`: this runs several times per issuance.
        let (sa_name, ns, suffix) = (
            sa.name.as_str(),
            sa.namespace.as_str(),
            self.identity_suffix.as_str(),
        );
        let mut name = String::with_capacity(sa_name.len() + 1 + ns.len() + suffix.len());
        name.push_str(sa_name);
        name.push('.');
        name.push_str(ns);
        name.push_str(suffix);
        if name.len() > MAX_DNS_NAME_LEN {
            return Err(Error::IdentityTooLong { identity: name });
        }
        Ok(Identity(name))
    }

    /// Parses an identity name of this mesh back into its ServiceAccount.
    pub fn parse_identity(&self, name: &str) -> Result<ServiceAccount, Error> {
        let invalid = |problem: IdentityProblem| Error::InvalidIdentity {
            input: name.to_owned(),
            problem,
        };
        if name.len() > MAX_DNS_NAME_LEN {
            return Err(invalid(IdentityProblem::TooLong));
        }
        let head = name
            .strip_suffix(self.identity_suffix.as_str())
            .ok_or_else(|| {
                invalid(IdentityProblem::WrongSuffix {
                    suffix: self.identity_suffix.clone(),
                })
            })?;
        let (sa, ns) = head
            .rsplit_once('.')
            .ok_or_else(|| invalid(IdentityProblem::Form))?;
        ServiceAccount::new(ns, sa)
            .map_err(|e| invalid(IdentityProblem::ServiceAccount(Box::new(e))))
    }

    /// The SPIFFE ID of `sa`: `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
    pub fn spiffe_id(&self, sa: &ServiceAccount) -> SpiffeId {
        SpiffeId(format!(
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, sa.namespace, sa.name
        ))
    }

    /// Parses a SPIFFE ID of this mesh's trust domain back into its ServiceAccount.
    pub fn parse_spiffe_id(&self, id: &str) -> Result<ServiceAccount, Error> {
        let invalid = |problem: SpiffeIdProblem| Error::InvalidSpiffeId {
            input: id.to_owned(),
            problem,
        };
        let rest = id
            .strip_prefix("spiffe://")
            .ok_or_else(|| invalid(SpiffeIdProblem::Scheme))?;
        let (domain, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid(SpiffeIdProblem::NoPath))?;
        if domain != self.trust_domain.as_str() {
            return Err(invalid(SpiffeIdProblem::ForeignTrustDomain {
                found: domain.to_owned(),
                expected: self.trust_domain.as_str().to_owned(),
            }));
        }
        let mut segments = path.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => ServiceAccount::new(ns, sa)
                .map_err(|e| invalid(SpiffeIdProblem::ServiceAccount(Box::new(e)))),
            _ => Err(invalid(SpiffeIdProblem::Path)),
        }
    }

    /// The SANs a leaf for `sa` carries in `mode`, DNS first.
    pub fn sans(&self, sa: &ServiceAccount, mode: SanMode) -> Result<Vec<San>, Error> {
        let mut sans = Vec::with_capacity(2);
        if mode.has_dns() {
            sans.push(San::Dns(self.identity(sa)?.0));
        }
        if mode.has_spiffe() {
            sans.push(San::Uri(self.spiffe_id(sa).0));
        }
        Ok(sans)
    }
}

impl Default for Mesh {
    /// Trust domain `cluster.local`, control-plane namespace `linkerd`.
    fn default() -> Self {
        Self::new(TrustDomain::default(), Namespace("linkerd".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip_with_dotted_names() {
        let mesh = Mesh::default();
        let sa = ServiceAccount::new("emojivoto", "web.v2").unwrap();
        let id = mesh.identity(&sa).unwrap();
        assert_eq!(
            id.as_str(),
            "web.v2.emojivoto.serviceaccount.identity.linkerd.cluster.local"
        );
        assert_eq!(mesh.parse_identity(id.as_str()).unwrap(), sa);
    }

    #[test]
    fn spiffe_round_trip() {
        let mesh = Mesh::default();
        let sa = ServiceAccount::new("emojivoto", "web").unwrap();
        let id = mesh.spiffe_id(&sa);
        assert_eq!(id.as_str(), "spiffe://cluster.local/ns/emojivoto/sa/web");
        assert_eq!(mesh.parse_spiffe_id(id.as_str()).unwrap(), sa);
    }

    #[test]
    fn username() {
        let sa = ServiceAccount::from_username("system:serviceaccount:emojivoto:web").unwrap();
        assert_eq!(sa.namespace().as_str(), "emojivoto");
        assert_eq!(sa.name(), "web");
        assert_eq!(sa.username(), "system:serviceaccount:emojivoto:web");
    }

    #[test]
    fn bad_names() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "Emoji",
                "web",
                "invalid namespace 'Emoji': must consist of lower case alphanumeric characters or '-'",
            ),
            (
                "a.b",
                "web",
                "invalid namespace 'a.b': must consist of lower case alphanumeric characters or '-'",
            ),
            ("", "web", "invalid namespace '': must not be empty"),
            (
                "ns",
                "-web",
                "invalid ServiceAccount name '-web': must start and end with an alphanumeric character",
            ),
            (
                "ns",
                "web..x",
                "invalid ServiceAccount name 'web..x': must not be empty",
            ),
            (
                "ns",
                "web_x",
                "invalid ServiceAccount name 'web_x': must consist of lower case alphanumeric characters or '-'",
            ),
        ];
        for (ns, name, want) in cases {
            let err = ServiceAccount::new(ns, name).unwrap_err();
            assert_eq!(err.to_string(), *want, "{ns}/{name}");
        }
        let long = "a".repeat(64);
        assert_eq!(
            ServiceAccount::new(&long, "web").unwrap_err().to_string(),
            format!("invalid namespace '{long}': must be at most 63 characters")
        );
    }
}
