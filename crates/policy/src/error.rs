//! The policy error type.

use core::fmt;
use core::time::Duration;

use time::OffsetDateTime;

use crate::{CredentialRole, KeyAlgorithm, PublicKeyKind, SanMode};

/// Why a name, duration, policy or CSR was refused.
///
/// Messages of the CSR checks are Linkerd's where Linkerd has one, so logs and gRPC statuses
/// read the same.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An issuer certificate or trust anchor has expired: nothing can be issued under it.
    CredentialExpired {
        /// Which credential.
        role: CredentialRole,
        /// Its NotAfter.
        not_after: OffsetDateTime,
        /// The time of the request.
        now: OffsetDateTime,
    },
    /// An issuer certificate or trust anchor is not valid yet.
    CredentialNotYetValid {
        /// Which credential.
        role: CredentialRole,
        /// Its NotBefore.
        not_before: OffsetDateTime,
        /// The time of the request.
        now: OffsetDateTime,
    },
    /// The CSR's subject CN is neither empty nor the requested identity.
    CsrCommonName {
        /// The CN(s) found.
        found: String,
    },
    /// The CSR does not carry the expected number of DNS SANs.
    CsrDnsNameCount {
        /// How many the SAN mode requires (0 or 1).
        expected: usize,
        /// How many the CSR has.
        found: usize,
    },
    /// The CSR has email SANs.
    CsrEmailAddresses,
    /// The CSR has IP SANs.
    CsrIpAddresses,
    /// The CSR's DNS SAN is not the requested identity.
    CsrNameMismatch {
        /// The name in the CSR.
        csr: String,
        /// The identity requested.
        requested: String,
    },
    /// The CSR has SANs of a kind meshid never certifies (otherName, directoryName, …).
    CsrOtherNames {
        /// The kind of the first such name.
        kind: String,
    },
    /// The CSR's URI SAN is not the SPIFFE ID of the requested identity.
    CsrSpiffeIdMismatch {
        /// The URI in the CSR.
        csr: String,
        /// The SPIFFE ID expected.
        requested: String,
    },
    /// The SAN mode requires exactly one URI SAN (the SPIFFE ID).
    CsrUriCount {
        /// How many the CSR has.
        found: usize,
    },
    /// The CSR has URI SANs and the SAN mode has none.
    CsrUris,
    /// An identity name would exceed 253 characters.
    IdentityTooLong {
        /// The name that would result.
        identity: String,
    },
    /// A duration is not valid Go syntax, is negative, or overflows.
    InvalidDuration {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string is not an identity name of this mesh.
    InvalidIdentity {
        /// The text given.
        input: String,
        /// What is wrong with it.
        problem: IdentityProblem,
    },
    /// A key algorithm name is unknown.
    InvalidKeyAlgorithm {
        /// The text given.
        input: String,
    },
    /// A namespace is not a DNS-1123 label.
    InvalidNamespace {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The issuance policy's fields do not fit together.
    InvalidPolicy {
        /// What is wrong.
        problem: PolicyProblem,
    },
    /// A SAN mode name is unknown.
    InvalidSanMode {
        /// The text given.
        input: String,
    },
    /// A ServiceAccount name is not a DNS-1123 subdomain.
    InvalidServiceAccount {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A username is not `system:serviceaccount:<ns>:<sa>`.
    InvalidServiceAccountUsername {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string is not a SPIFFE ID of this mesh.
    InvalidSpiffeId {
        /// The text given.
        input: String,
        /// What is wrong with it.
        problem: SpiffeIdProblem,
    },
    /// A trust domain is not a DNS-1123 subdomain.
    InvalidTrustDomain {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CSR's key is ECDSA but its curve is not allowed by the policy.
    KeyAlgorithmNotAllowed {
        /// The key found.
        found: PublicKeyKind,
        /// The algorithms the policy allows.
        allowed: Vec<KeyAlgorithm>,
    },
    /// The CSR's key is not an ECDSA key.
    KeyNotEcdsa {
        /// The key found.
        found: PublicKeyKind,
    },
    /// A certification request names its identity in a form the SAN mode does not issue (a
    /// SPIFFE ID in `dns` mode, an identity name in `spiffe` mode).
    RequestedNameNotIssued {
        /// The name requested.
        requested: String,
        /// The policy's SAN mode.
        san_mode: SanMode,
        /// The same ServiceAccount's name in the form this mode issues.
        instead: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CredentialExpired {
                role,
                not_after,
                now,
            } => {
                write!(
                    f,
                    "{role} expired at {} (now {}); rotate it",
                    rfc3339(*not_after),
                    rfc3339(*now)
                )
            }
            Self::CredentialNotYetValid {
                role,
                not_before,
                now,
            } => write!(
                f,
                "{role} is not valid until {} (now {}); check the clocks",
                rfc3339(*not_before),
                rfc3339(*now)
            ),
            Self::CsrCommonName { found } => write!(f, "invalid CommonName: {found}"),
            Self::CsrDnsNameCount { expected: 1, .. } => {
                f.write_str("CSR must have exactly one DNSName")
            }
            Self::CsrDnsNameCount { expected, found } => write!(
                f,
                "CSR must have {expected} DNSName(s) in this SAN mode, found {found}"
            ),
            Self::CsrEmailAddresses => f.write_str("cannot validate email addresses"),
            Self::CsrIpAddresses => f.write_str("cannot validate IP addresses"),
            Self::CsrNameMismatch { csr, requested } => write!(
                f,
                "CSR name does not match requested identity: csr={csr}; req={requested}"
            ),
            Self::CsrOtherNames { kind } => write!(f, "cannot validate {kind} names"),
            Self::CsrSpiffeIdMismatch { csr, requested } => write!(
                f,
                "CSR SPIFFE ID does not match requested identity: csr={csr}; req={requested}"
            ),
            Self::CsrUriCount { found } => write!(
                f,
                "CSR must have exactly one URI (the SPIFFE ID), found {found}"
            ),
            Self::CsrUris => f.write_str("cannot validate URIs"),
            Self::IdentityTooLong { identity } => write!(
                f,
                "identity name '{identity}' is longer than 253 characters; use a shorter ServiceAccount, namespace or trust domain"
            ),
            Self::InvalidDuration { input, reason } => {
                write!(f, "invalid duration '{input}': {reason}")
            }
            Self::InvalidIdentity { input, problem } => {
                write!(f, "invalid identity '{input}': {problem}")
            }
            Self::InvalidKeyAlgorithm { input } => {
                write!(f, "unknown key algorithm '{input}' (expected p256 or p384)")
            }
            Self::InvalidNamespace { input, reason } => {
                write!(f, "invalid namespace '{input}': {reason}")
            }
            Self::InvalidPolicy { problem } => write!(f, "invalid issuance policy: {problem}"),
            Self::InvalidSanMode { input } => write!(
                f,
                "unknown SAN mode '{input}' (expected dns, dns+spiffe or spiffe)"
            ),
            Self::InvalidServiceAccount { input, reason } => {
                write!(f, "invalid ServiceAccount name '{input}': {reason}")
            }
            Self::InvalidServiceAccountUsername { input, reason } => {
                write!(f, "invalid ServiceAccount username '{input}': {reason}")
            }
            Self::InvalidSpiffeId { input, problem } => {
                write!(f, "invalid SPIFFE ID '{input}': {problem}")
            }
            Self::InvalidTrustDomain { input, reason } => {
                write!(f, "invalid trust domain '{input}': {reason}")
            }
            Self::KeyAlgorithmNotAllowed { found, allowed } => {
                write!(f, "CSR key algorithm {found} is not allowed (allowed: ")?;
                for (i, alg) in allowed.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    alg.fmt(f)?;
                }
                f.write_str(")")
            }
            Self::KeyNotEcdsa { found } => {
                write!(f, "CSR must contain an ECDSA public key (found {found})")
            }
            Self::RequestedNameNotIssued {
                requested,
                san_mode,
                instead,
            } => {
                let (form, issued) = if requested.starts_with("spiffe://") {
                    ("a SPIFFE ID", "identity names")
                } else {
                    ("an identity name", "SPIFFE IDs")
                };
                write!(
                    f,
                    "requested identity {requested} is {form}, but this CA issues only {issued} (SAN mode {san_mode}); request {instead}"
                )
            }
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::InvalidIdentity {
                problem: IdentityProblem::ServiceAccount(e),
                ..
            }
            | Self::InvalidSpiffeId {
                problem: SpiffeIdProblem::ServiceAccount(e),
                ..
            } => Some(&**e),
            _ => None,
        }
    }
}

/// What is wrong with an identity name ([`Error::InvalidIdentity`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityProblem {
    /// It is longer than 253 characters.
    TooLong,
    /// It does not end with the identity suffix of this mesh.
    WrongSuffix {
        /// The suffix expected, e.g. `.serviceaccount.identity.linkerd.cluster.local`.
        suffix: String,
    },
    /// What precedes the suffix is not `<sa>.<ns>`.
    Form,
    /// The namespace or ServiceAccount name it holds is invalid
    /// ([`Error::InvalidNamespace`] or [`Error::InvalidServiceAccount`]).
    ServiceAccount(Box<Error>),
}

impl fmt::Display for IdentityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => f.write_str("longer than 253 characters"),
            Self::WrongSuffix { suffix } => write!(
                f,
                "does not end with '{suffix}' (the identity suffix of this mesh)"
            ),
            Self::Form => f.write_str(
                "must have the form <sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>",
            ),
            Self::ServiceAccount(e) => e.fmt(f),
        }
    }
}

/// What is wrong with a SPIFFE ID ([`Error::InvalidSpiffeId`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpiffeIdProblem {
    /// It does not start with `spiffe://`.
    Scheme,
    /// It has no path after the trust domain.
    NoPath,
    /// Its trust domain is another mesh's.
    ForeignTrustDomain {
        /// The trust domain it names.
        found: String,
        /// This mesh's trust domain.
        expected: String,
    },
    /// Its path is not `/ns/<namespace>/sa/<name>`.
    Path,
    /// The namespace or ServiceAccount name it holds is invalid
    /// ([`Error::InvalidNamespace`] or [`Error::InvalidServiceAccount`]).
    ServiceAccount(Box<Error>),
}

impl fmt::Display for SpiffeIdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scheme => f.write_str("must start with 'spiffe://'"),
            Self::NoPath => f.write_str("has no path"),
            Self::ForeignTrustDomain { found, expected } => write!(
                f,
                "trust domain '{found}' is not this mesh's trust domain '{expected}'"
            ),
            Self::Path => f.write_str("path must be /ns/<namespace>/sa/<name>"),
            Self::ServiceAccount(e) => e.fmt(f),
        }
    }
}

/// Which fields of an [`IssuancePolicy`](crate::IssuancePolicy) do not fit together
/// ([`Error::InvalidPolicy`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyProblem {
    /// The lifetime is zero.
    ZeroLifetime,
    /// The lifetime is longer than the maximum lifetime.
    LifetimeOverMax {
        /// The issuance lifetime.
        lifetime: Duration,
        /// The maximum lifetime.
        max: Duration,
    },
    /// The clock-skew allowance is longer than the most accepted.
    ClockSkewOverMax {
        /// The clock-skew allowance.
        clock_skew: Duration,
        /// The most accepted (one hour).
        max: Duration,
    },
    /// No key algorithm is allowed.
    NoKeyAlgorithms,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let go = crate::format_go_duration;
        match self {
            Self::ZeroLifetime => f.write_str("the issuance lifetime must be greater than zero"),
            Self::LifetimeOverMax { lifetime, max } => write!(
                f,
                "the issuance lifetime {} is longer than the maximum lifetime {}",
                go(*lifetime),
                go(*max)
            ),
            Self::ClockSkewOverMax { clock_skew, max } => write!(
                f,
                "the clock-skew allowance {} is longer than the maximum of {}",
                go(*clock_skew),
                go(*max)
            ),
            Self::NoKeyAlgorithms => f.write_str("at least one key algorithm must be allowed"),
        }
    }
}

/// Formats a time as RFC 3339 (`2026-06-01T12:00:00Z`), the way every meshid message shows time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
