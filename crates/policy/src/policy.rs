//! The issuance policy: lifetimes, clock skew, SAN mode, key algorithms, and the decisions
//! derived from them.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use time::OffsetDateTime;

use crate::{
    Error, KeyAlgorithm, Mesh, PolicyProblem, PublicKeyKind, San, SanMode, ServiceAccount,
};

/// How certificates are issued.
///
/// Build it with [`IssuancePolicy::default`] and adjust the fields; [`IssuancePolicy::validate`]
/// checks that they fit together (the CA calls it when it is built).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuancePolicy {
    /// How long a leaf is valid, before the skew allowance is added (default 24h, like Linkerd).
    pub lifetime: Duration,
    /// Clock-skew allowance: NotBefore is backdated and NotAfter extended by this much
    /// (default 20s, like Linkerd).
    pub clock_skew: Duration,
    /// The largest `lifetime` this policy accepts (default 7 days): a guard against a typo such
    /// as `24000h` turning short-lived certificates into long-lived ones.
    pub max_lifetime: Duration,
    /// Which SANs a leaf carries (default [`SanMode::Dns`]).
    pub san_mode: SanMode,
    /// Key algorithms a CSR may use (default P-256 only).
    pub key_algorithms: Vec<KeyAlgorithm>,
}

impl Default for IssuancePolicy {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(24 * 3600),
            clock_skew: Duration::from_secs(20),
            max_lifetime: Duration::from_secs(7 * 24 * 3600),
            san_mode: SanMode::Dns,
            key_algorithms: vec![KeyAlgorithm::EcdsaP256],
        }
    }
}

/// The scheme prefix of a SPIFFE ID.
const SPIFFE_SCHEME: &str = "spiffe://";

/// The longest clock-skew allowance accepted: one hour.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(3600);

impl IssuancePolicy {
    /// Checks that the fields fit together.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |problem: PolicyProblem| Err(Error::InvalidPolicy { problem });
        if self.lifetime.is_zero() {
            return invalid(PolicyProblem::ZeroLifetime);
        }
        if self.lifetime > self.max_lifetime {
            return invalid(PolicyProblem::LifetimeOverMax {
                lifetime: self.lifetime,
                max: self.max_lifetime,
            });
        }
        if self.clock_skew > MAX_CLOCK_SKEW {
            return invalid(PolicyProblem::ClockSkewOverMax {
                clock_skew: self.clock_skew,
                max: MAX_CLOCK_SKEW,
            });
        }
        if self.key_algorithms.is_empty() {
            return invalid(PolicyProblem::NoKeyAlgorithms);
        }
        Ok(())
    }

    /// Whether a key of `alg` may be certified.
    pub fn allows(&self, alg: KeyAlgorithm) -> bool {
        self.key_algorithms.contains(&alg)
    }

    /// The validity window of a leaf issued at `now` by an issuer whose chain and trust anchors
    /// have the given validity periods.
    ///
    /// `not_before = now − clock_skew`; `not_after = min(now + lifetime + clock_skew, every
    /// bound's NotAfter)`. An issuer or anchor that is expired or not yet valid at `now` is an
    /// error, never a silently empty or shortened window.
    pub fn validity_window(
        &self,
        now: OffsetDateTime,
        bounds: &[ValidityBound],
    ) -> Result<ValidityWindow, Error> {
        let mut not_after = now + self.lifetime + self.clock_skew;
        let mut clamped_by = None;
        for bound in bounds {
            if now < bound.not_before {
                return Err(Error::CredentialNotYetValid {
                    role: bound.role,
                    not_before: bound.not_before,
                    now,
                });
            }
            if now >= bound.not_after {
                return Err(Error::CredentialExpired {
                    role: bound.role,
                    not_after: bound.not_after,
                    now,
                });
            }
            if bound.not_after < not_after {
                not_after = bound.not_after;
                clamped_by = Some(bound.role);
            }
        }
        Ok(ValidityWindow {
            not_before: now - self.clock_skew,
            not_after,
            clamped_by,
        })
    }

    /// The ServiceAccount named by the `identity` of a certification request (Linkerd's
    /// `CertifyRequest.identity`), which must be a name the leaf will carry:
    ///
    /// | SAN mode | `identity` |
    /// |---|---|
    /// | `dns` (default) | the identity name, `<sa>.<ns>.serviceaccount.identity.<cp-ns>.<td>` (Linkerd) |
    /// | `spiffe` | the SPIFFE ID, `spiffe://<td>/ns/<ns>/sa/<sa>` |
    /// | `dns+spiffe` | either |
    ///
    /// A `spiffe://` name is parsed as a SPIFFE ID of this mesh (a malformed one, or one of
    /// another trust domain, is [`Error::InvalidSpiffeId`]); anything else as an identity
    /// name ([`Error::InvalidIdentity`]). A well-formed name of the form this mode does not
    /// issue is [`Error::RequestedNameNotIssued`], whose message names the one to ask for.
    pub fn requested_service_account(
        &self,
        mesh: &Mesh,
        identity: &str,
    ) -> Result<ServiceAccount, Error> {
        let is_spiffe = identity.starts_with(SPIFFE_SCHEME);
        let sa = if is_spiffe {
            mesh.parse_spiffe_id(identity)?
        } else {
            mesh.parse_identity(identity)?
        };
        let issued = if is_spiffe {
            self.san_mode.has_spiffe()
        } else {
            self.san_mode.has_dns()
        };
        if !issued {
            let instead = if is_spiffe {
                mesh.identity(&sa)?.to_string()
            } else {
                mesh.spiffe_id(&sa).to_string()
            };
            return Err(Error::RequestedNameNotIssued {
                requested: identity.to_owned(),
                san_mode: self.san_mode,
                instead,
            });
        }
        Ok(sa)
    }

    /// Decides whether a CSR's content may be certified for `sa` in `mesh`.
    ///
    /// The CSR must name exactly the SANs this policy computes (no extra, none missing; in
    /// `dns+spiffe` mode it may name just one of the two, as a Linkerd proxy names only its
    /// DNS identity, and the leaf still carries both), its
    /// subject CN must be empty or the identity, it may carry no IP, email, other URI or other
    /// kinds of names, and its key must be an allowed algorithm. Checks run in Linkerd's order
    /// and use Linkerd's messages where Linkerd has one.
    pub fn decide(
        &self,
        mesh: &Mesh,
        sa: &ServiceAccount,
        csr: &CsrContent,
    ) -> Result<Decision, Error> {
        let identity = mesh.identity(sa)?;
        let spiffe = self.san_mode.has_spiffe().then(|| mesh.spiffe_id(sa));
        // DNS SANs: the identity name, exactly once in `dns` mode, never in `spiffe` mode, at
        // most once in `dns+spiffe` mode (where a Linkerd proxy's CSR, which names only the
        // DNS identity, is accepted: the leaf's SANs are the policy's, never the CSR's).
        let expected_dns = usize::from(self.san_mode.has_dns());
        let dns_ok = match self.san_mode {
            SanMode::DnsAndSpiffe => {
                csr.dns_names.len() <= 1 && !(csr.dns_names.is_empty() && csr.uris.is_empty())
            }
            _ => csr.dns_names.len() == expected_dns,
        };
        if !dns_ok {
            return Err(Error::CsrDnsNameCount {
                expected: expected_dns,
                found: csr.dns_names.len(),
            });
        }
        if let Some(found) = csr.dns_names.first()
            && found != identity.as_str()
        {
            return Err(Error::CsrNameMismatch {
                csr: found.clone(),
                requested: identity.to_string(),
            });
        }
        // Subject CN: absent or the identity.
        match csr.common_names.as_slice() {
            [] => {}
            [cn] if cn == identity.as_str() => {}
            [cn] => return Err(Error::CsrCommonName { found: cn.clone() }),
            many => {
                return Err(Error::CsrCommonName {
                    found: many.join(", "),
                });
            }
        }
        if !csr.email_addresses.is_empty() {
            return Err(Error::CsrEmailAddresses);
        }
        if !csr.ip_addresses.is_empty() {
            return Err(Error::CsrIpAddresses);
        }
        match (&spiffe, csr.uris.as_slice()) {
            (None, []) => {}
            (None, _) => return Err(Error::CsrUris),
            // `dns+spiffe`: the CSR may leave the SPIFFE ID out (it named the DNS identity).
            (Some(_), []) if self.san_mode == SanMode::DnsAndSpiffe => {}
            (Some(want), [found]) if found == want.as_str() => {}
            (Some(want), [found]) => {
                return Err(Error::CsrSpiffeIdMismatch {
                    csr: found.clone(),
                    requested: want.to_string(),
                });
            }
            (Some(_), found) => return Err(Error::CsrUriCount { found: found.len() }),
        }
        if let Some(kind) = csr.other_names.first() {
            return Err(Error::CsrOtherNames { kind: kind.clone() });
        }
        // Key.
        let alg = match &csr.key {
            PublicKeyKind::Ecdsa(alg) => *alg,
            other if other.is_ecdsa() => {
                return Err(Error::KeyAlgorithmNotAllowed {
                    found: other.clone(),
                    allowed: self.key_algorithms.clone(),
                });
            }
            other => {
                return Err(Error::KeyNotEcdsa {
                    found: other.clone(),
                });
            }
        };
        if !self.allows(alg) {
            return Err(Error::KeyAlgorithmNotAllowed {
                found: csr.key.clone(),
                allowed: self.key_algorithms.clone(),
            });
        }
        let mut sans = Vec::with_capacity(2);
        if self.san_mode.has_dns() {
            sans.push(San::Dns(identity.to_string()));
        }
        if let Some(spiffe) = spiffe {
            sans.push(San::Uri(spiffe.to_string()));
        }
        Ok(Decision {
            identity,
            sans,
            key_algorithm: alg,
        })
    }
}

/// What a CSR asks for, as far as the policy is concerned (extracted by `meshid-csr`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsrContent {
    /// Every CN attribute of the subject, in order.
    pub common_names: Vec<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// Email (RFC 822) SANs.
    pub email_addresses: Vec<String>,
    /// Every other kind of SAN (otherName, directoryName, …), by kind.
    pub other_names: Vec<String>,
    /// The subject public key.
    pub key: PublicKeyKind,
}

impl CsrContent {
    /// A CSR content with no names, for `key`.
    pub fn new(key: PublicKeyKind) -> Self {
        Self {
            common_names: Vec::new(),
            dns_names: Vec::new(),
            uris: Vec::new(),
            ip_addresses: Vec::new(),
            email_addresses: Vec::new(),
            other_names: Vec::new(),
            key,
        }
    }
}

/// A positive decision: what the leaf will say.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The identity name; the leaf's subject is `CN=<identity>`.
    pub identity: crate::Identity,
    /// The SANs of the leaf, DNS first.
    pub sans: Vec<San>,
    /// The key algorithm of the certified key.
    pub key_algorithm: KeyAlgorithm,
}

/// Which credential a validity bound comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialRole {
    /// A certificate of the issuer's chain, by position (0 is the issuer itself).
    Issuer {
        /// Position in the issuer's certificate file.
        position: usize,
    },
    /// The trust anchor the issuer's chain ends in, by position in the trust bundle.
    TrustAnchor {
        /// Position in the trust bundle.
        position: usize,
    },
}

impl fmt::Display for CredentialRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Issuer { position: 0 } => f.write_str("issuer certificate"),
            Self::Issuer { position } => {
                write!(f, "certificate #{position} of the issuer chain")
            }
            Self::TrustAnchor { position } => write!(f, "trust anchor #{position}"),
        }
    }
}

/// The validity period of one certificate that bounds a leaf's validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidityBound {
    /// Which credential this is.
    pub role: CredentialRole,
    /// Its NotBefore.
    pub not_before: OffsetDateTime,
    /// Its NotAfter.
    pub not_after: OffsetDateTime,
}

impl ValidityBound {
    /// A bound for `role` valid from `not_before` to `not_after`.
    pub fn new(
        role: CredentialRole,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        Self {
            role,
            not_before,
            not_after,
        }
    }
}

/// A leaf's validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidityWindow {
    /// NotBefore: `now − clock_skew`.
    pub not_before: OffsetDateTime,
    /// NotAfter, after clamping.
    pub not_after: OffsetDateTime,
    /// The credential whose NotAfter shortened the window, if any did.
    pub clamped_by: Option<CredentialRole>,
}
