//! The authentication error type.

use core::fmt;
use std::path::PathBuf;
use std::time::Duration;

use meshid_policy::rfc3339;
use time::OffsetDateTime;

/// Why a token was not turned into an [`Authenticated`](crate::Authenticated) ServiceAccount,
/// or why an authenticator could not be built.
///
/// No message ever contains the token, any part of it, or a signature.
/// [`Error::kind`] sorts every variant into the three outcomes the identity service answers
/// with (see [`ErrorKind`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Kubernetes API server answered the TokenReview with an HTTP error status.
    #[error(
        "the Kubernetes API server answered the TokenReview with HTTP {status}: {message}{}",
        api_status_hint(*status)
    )]
    ApiServer {
        /// The HTTP status code.
        status: u16,
        /// The `message` of the API server's `Status` answer, or the start of its body.
        message: String,
    },
    /// A configuration (API server URL, CA, JWKS, static token file, limits) is not usable.
    #[error("invalid {what}: {reason}")]
    Config {
        /// What is misconfigured, e.g. `JWKS` or `static token file /etc/tokens, line 3`.
        what: String,
        /// What is wrong and how to fix it: a diagnosis for the operator, who fixes the
        /// setting it names (no program acts on it otherwise), at times quoting a parser's
        /// error that can be neither cloned nor compared; so text.
        reason: String,
    },
    /// The token was refused; the reason says why (it never quotes the token).
    #[error("{0}")]
    InvalidToken(InvalidToken),
    /// Kubernetes API access failed in a way none of the other variants describes.
    #[error(transparent)]
    Kube(meshid_kube::Error),
    /// The API server's service-account issuer discovery (the OIDC discovery document or its
    /// key set) could not be fetched or read.
    #[error("the API server's service-account issuer discovery failed: {problem}")]
    Discovery {
        /// What failed, and how to fix it where that is known.
        #[source]
        problem: DiscoveryProblem,
    },
    /// The cluster's service-account token keys have not been fetched (OIDC discovery has not
    /// answered yet), and there is no TokenReview fallback to judge the token instead.
    #[error(
        "the cluster's service-account token keys are not available ({}); tokens cannot \
         be validated offline until OIDC discovery answers, and no TokenReview fallback is \
         configured",
        last_error_text(.last_error.as_deref())
    )]
    KeysUnavailable {
        /// Why the last fetch failed; `None` if none has finished yet.
        #[source]
        last_error: Option<Box<Self>>,
    },
    /// The token is well formed but the authority does not recognise it (a TokenReview that
    /// answered `authenticated: false`, a token missing from the static file).
    #[error("authentication token could not be authenticated")]
    NotAuthenticated,
    /// The TokenReview rate limit would delay this request beyond its timeout.
    #[error(
        "TokenReview rate limit reached: the next request slot is {}ms away, beyond the {}ms \
         request timeout; retry later or raise the QPS/burst limits",
        wait.as_millis(),
        timeout.as_millis()
    )]
    RateLimited {
        /// How long the request would have had to wait.
        wait: Duration,
        /// The request timeout.
        timeout: Duration,
    },
    /// A file (ServiceAccount token, CA, JWKS, static token file) could not be read.
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
    /// The API server's answer is not a TokenReview this crate understands.
    #[error("the Kubernetes API server's TokenReview answer is not understood: {reason}")]
    Response {
        /// What is wrong with it, e.g. where the JSON parser stopped: text, as the parser's
        /// error can be neither cloned nor compared, and no caller acts on it but by showing
        /// it.
        reason: String,
    },
    /// The API server did not answer within the request timeout.
    #[error(
        "the Kubernetes API server did not answer the TokenReview within {}ms; check its \
         health and the network path, or raise the request timeout",
        after.as_millis()
    )]
    Timeout {
        /// The request timeout.
        after: Duration,
    },
    /// The connection to the API server failed (TCP, TLS, HTTP).
    #[error("cannot reach the Kubernetes API server at {server}: {reason}")]
    Transport {
        /// The API server URL.
        server: String,
        /// The underlying errors, outermost first (the Kubernetes API client's
        /// [`Error::Transport`](meshid_kube::Error::Transport) text). A timeout is
        /// [`Error::Timeout`] and an HTTP error status [`Error::ApiServer`].
        reason: String,
    },
}

fn last_error_text(last_error: Option<&Error>) -> String {
    last_error.map_or_else(|| "not fetched yet".to_owned(), ToString::to_string)
}

/// What failed in service-account issuer discovery ([`Error::Discovery`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryProblem {
    /// The request could not be built.
    #[error("GET {path}: {detail}")]
    Request {
        /// The path asked for.
        path: &'static str,
        /// The HTTP library's message: text, as its error can be neither cloned nor compared
        /// (and it fails only for a path no caller passes).
        detail: String,
    },
    /// The API server could not be asked.
    #[error("GET {path}: {error}")]
    Send {
        /// The path asked for.
        path: &'static str,
        /// The API client's error.
        #[source]
        error: meshid_kube::Error,
    },
    /// The API server answered with an HTTP error status.
    #[error("GET {path} answered HTTP {status}: {message}{}", discovery_status_hint(*status))]
    Status {
        /// The path asked for.
        path: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The `message` of the API server's `Status` answer, or the start of its body: the
        /// API server's own words, so text.
        message: String,
    },
    /// The discovery document has no string `issuer`.
    #[error("the OIDC discovery document {path} has no string \"issuer\": {detail}")]
    NoIssuer {
        /// The document's path.
        path: &'static str,
        /// Where the JSON parser stopped, e.g. `Data error at line 1 column 2`: text, as its
        /// error can be neither cloned nor compared.
        detail: String,
    },
    /// The discovery document names an empty issuer.
    #[error("the OIDC discovery document {path} names an empty issuer")]
    EmptyIssuer {
        /// The document's path.
        path: &'static str,
    },
    /// The key set is not usable.
    #[error("the key set {path} is not usable: {reason}")]
    KeySet {
        /// The key set's path.
        path: &'static str,
        /// What is wrong with it: the text of the JWKS's [`Error::Config`].
        reason: String,
    },
}

fn discovery_status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "; grant the identity service's ServiceAccount the ClusterRole \
             system:service-account-issuer-discovery"
        }
        404 => "; the API server does not serve service-account issuer discovery",
        _ => "",
    }
}

fn api_status_hint(status: u16) -> &'static str {
    match status {
        401 => {
            "; the identity service's own credentials were refused: check its token file or \
             kubeconfig user"
        }
        403 => {
            "; the identity service's ServiceAccount may create no TokenReviews: bind it to \
             the ClusterRole system:auth-delegator"
        }
        429 => "; the API server is throttling: lower the QPS/burst limits or retry later",
        500..=599 => "; the API server is failing: retry later",
        _ => "",
    }
}

impl Error {
    /// Which of the three outcomes this error is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidToken(_) => ErrorKind::InvalidToken,
            Self::NotAuthenticated => ErrorKind::NotAuthenticated,
            Self::ApiServer { .. }
            | Self::Config { .. }
            | Self::Discovery { .. }
            | Self::KeysUnavailable { .. }
            | Self::Kube(_)
            | Self::RateLimited { .. }
            | Self::ReadFile { .. }
            | Self::Response { .. }
            | Self::Timeout { .. }
            | Self::Transport { .. } => ErrorKind::Backend,
        }
    }

    pub(crate) fn config(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// The Kubernetes API client's errors keep this crate's variants and messages: a
/// configuration or file error stays [`Error::Config`] or [`Error::ReadFile`], a failed
/// connection [`Error::Transport`], a request past its timeout [`Error::Timeout`], an HTTP
/// error [`Error::ApiServer`] and an answer that is not a TokenReview [`Error::Response`].
impl From<meshid_kube::Error> for Error {
    fn from(e: meshid_kube::Error) -> Self {
        match e {
            meshid_kube::Error::Api { status, message } => Self::ApiServer { status, message },
            meshid_kube::Error::Config { what, reason } => Self::Config { what, reason },
            meshid_kube::Error::Response { reason } => Self::Response { reason },
            meshid_kube::Error::ReadFile {
                what,
                path,
                kind,
                reason,
            } => Self::ReadFile {
                what,
                path,
                kind,
                reason,
            },
            meshid_kube::Error::Timeout { after } => Self::Timeout { after },
            meshid_kube::Error::Transport { server, reason } => Self::Transport { server, reason },
            other => Self::Kube(other),
        }
    }
}

impl From<InvalidToken> for Error {
    fn from(e: InvalidToken) -> Self {
        Self::InvalidToken(e)
    }
}

/// The outcome an [`Error`] stands for, so a gRPC layer maps it without matching variants.
///
/// | kind | Linkerd's gRPC answer |
/// |---|---|
/// | `NotAuthenticated` | FailedPrecondition `authentication token could not be authenticated` |
/// | `InvalidToken` | InvalidArgument `<reason>` |
/// | `Backend` | Internal `error validating token for <identity>: <error>` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The authority could not be asked or did not answer usefully: not the caller's fault.
    Backend,
    /// The token was refused for a stated reason.
    InvalidToken,
    /// The authority does not recognise the token.
    NotAuthenticated,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The header's `alg` does not match the key its `kid` names.
    AlgorithmMismatch {
        /// The header's `alg`.
        alg: String,
        /// The key's `kid`.
        kid: String,
        /// What the key is, e.g. `RSA` or `EC P-256`.
        key: String,
    },
    /// The token's audiences do not include the expected one.
    Audience {
        /// The audience required.
        expected: String,
        /// The audiences the token (or the TokenReview) has.
        found: Vec<String>,
    },
    /// A claim does not have the type or form required.
    Claim {
        /// The claim's name.
        name: &'static str,
        /// What is wrong.
        reason: ClaimProblem,
    },
    /// The token has a `crit` header, whose extensions this validator cannot honour.
    CriticalHeader,
    /// The token has no usable characters.
    Empty,
    /// The token expired.
    Expired {
        /// Its `exp`.
        exp: OffsetDateTime,
        /// The validation time.
        now: OffsetDateTime,
        /// The clock-skew allowance applied.
        skew: Duration,
    },
    /// The token was issued (`iat`) after the validation time plus the skew allowance.
    IssuedInFuture {
        /// Its `iat`.
        iat: OffsetDateTime,
        /// The validation time.
        now: OffsetDateTime,
    },
    /// The token's `iss` is not an accepted issuer.
    Issuer {
        /// The accepted issuers.
        expected: Vec<String>,
        /// The token's `iss`.
        found: String,
    },
    /// The `kubernetes.io` claims name another ServiceAccount than `sub`.
    KubernetesClaims {
        /// Which claim disagrees: `namespace` or `serviceaccount.name`.
        claim: &'static str,
        /// What the `kubernetes.io` claim says, if anything.
        found: Option<String>,
        /// What `sub` says.
        sub: String,
    },
    /// The token is not a JWS in compact serialisation.
    Malformed {
        /// What is wrong.
        reason: MalformedToken,
    },
    /// The key set has no key usable with the header's `alg` (and the header has no `kid`).
    NoKeyForAlgorithm {
        /// The header's `alg`.
        alg: String,
    },
    /// The token authenticates a user that is not a ServiceAccount.
    NotServiceAccount {
        /// The username (a `sub` claim or the TokenReview's `user.username`).
        username: String,
        /// Why it is not `system:serviceaccount:<namespace>:<name>`
        /// ([`InvalidServiceAccountUsername`](meshid_policy::Error::InvalidServiceAccountUsername),
        /// or the namespace or name it holds is invalid).
        error: meshid_policy::Error,
    },
    /// The token is not valid before (`nbf`) the validation time plus the skew allowance.
    NotYetValid {
        /// Its `nbf`.
        nbf: OffsetDateTime,
        /// The validation time.
        now: OffsetDateTime,
    },
    /// The Kubernetes TokenReview refused the token with this `status.error`.
    Rejected {
        /// The TokenReview's `status.error`, with the token removed: the API server's own
        /// words, so text.
        reason: String,
    },
    /// The signature does not verify with any candidate key.
    Signature {
        /// How many keys were tried.
        keys_tried: usize,
    },
    /// The token is longer than [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN).
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key set has no key with the header's `kid`.
    UnknownKey {
        /// The header's `kid`.
        kid: String,
    },
    /// The header's `alg` is not ES256 or RS256.
    UnsupportedAlgorithm {
        /// The header's `alg`.
        alg: String,
    },
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlgorithmMismatch { alg, kid, key } => write!(
                f,
                "token header alg {alg:?} does not match key {kid:?}, which is an {key} key; \
                 algorithm confusion is refused"
            ),
            Self::Audience { expected, found } => write!(
                f,
                "token audiences {found:?} do not include {expected:?}; mount a projected \
                 ServiceAccount token with audience {expected:?}"
            ),
            Self::Claim { name, reason } => write!(f, "token claim {name:?} {reason}"),
            Self::CriticalHeader => f.write_str(
                "token header has \"crit\" extensions, which are not supported; the token is \
                 refused",
            ),
            Self::Empty => f.write_str("token is empty"),
            Self::Expired { exp, now, skew } => write!(
                f,
                "token expired at {} (now is {}, clock-skew allowance {}s); the workload must \
                 re-read its rotated token",
                rfc3339(*exp),
                rfc3339(*now),
                skew.as_secs()
            ),
            Self::IssuedInFuture { iat, now } => write!(
                f,
                "token was issued at {}, after now ({}) plus the clock-skew allowance; check the \
                 clocks",
                rfc3339(*iat),
                rfc3339(*now)
            ),
            Self::Issuer { expected, found } => write!(
                f,
                "token issuer {found:?} is not accepted (accepted: {expected:?}); if it is the \
                 cluster's service-account issuer (its OIDC URL on EKS, GKE or AKS), accept it \
                 with the identity service's --token-issuer"
            ),
            Self::KubernetesClaims { claim, found, sub } => {
                // `sub` names a namespace and a name: say which.
                let noun = if *claim == "namespace" {
                    "namespace "
                } else {
                    ""
                };
                write!(
                    f,
                    "token \"kubernetes.io\" claims disagree with \"sub\": {claim} is \
                     {found:?}, sub names {noun}{sub:?}"
                )
            }
            Self::Malformed { reason } => write!(f, "token is malformed: {reason}"),
            Self::NoKeyForAlgorithm { alg } => {
                write!(f, "the JWKS has no key for the token's algorithm {alg}")
            }
            Self::NotServiceAccount { error, .. } => {
                write!(f, "token user is not a ServiceAccount: {error}")
            }
            Self::NotYetValid { nbf, now } => write!(
                f,
                "token is not valid before {} (now is {}, after the clock-skew allowance); check \
                 the clocks",
                rfc3339(*nbf),
                rfc3339(*now)
            ),
            Self::Rejected { reason } => f.write_str(reason),
            Self::Signature { keys_tried } => write!(
                f,
                "token signature does not verify with the {keys_tried} candidate key(s) of the \
                 JWKS; the JWKS may be stale (reload it from the API server's \
                 /openid/v1/jwks)"
            ),
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "token is {len} bytes long, more than the {max}-byte limit"
                )
            }
            Self::UnknownKey { kid } => write!(
                f,
                "token key id {kid:?} is not in the JWKS; the JWKS may be stale (reload it from \
                 the API server's /openid/v1/jwks)"
            ),
            Self::UnsupportedAlgorithm { alg } if alg.eq_ignore_ascii_case("none") => {
                f.write_str("token is unsigned (alg \"none\"); unsigned tokens are refused")
            }
            Self::UnsupportedAlgorithm { alg } => write!(
                f,
                "token algorithm {alg:?} is not supported; only ES256 and RS256 are accepted"
            ),
        }
    }
}

impl core::error::Error for InvalidToken {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::NotServiceAccount { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What is wrong with a claim ([`InvalidToken::Claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimProblem {
    /// It is missing.
    Missing,
    /// `exp` is missing: a legacy Secret token, which never expires.
    NoExpiry,
    /// It is not a string.
    NotString,
    /// `aud` is neither a string nor an array of strings.
    NotStrings,
    /// A time claim is not a number of seconds.
    NotNumericDate,
    /// A time claim is out of range.
    OutOfRange,
    /// `kubernetes.io` is missing or not an object: not a projected token.
    NotProjected,
    /// A member of `kubernetes.io` is not a string.
    MemberNotString {
        /// The member's path, e.g. `serviceaccount.name`.
        path: &'static str,
    },
    /// A member of `kubernetes.io` is not an object.
    MemberNotObject {
        /// The member, e.g. `pod`.
        member: &'static str,
    },
}

impl fmt::Display for ClaimProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is missing"),
            Self::NoExpiry => f.write_str(
                "is missing; tokens without an expiry (legacy Secret tokens) are refused",
            ),
            Self::NotString => f.write_str("must be a string"),
            Self::NotStrings => f.write_str("must be a string or an array of strings"),
            Self::NotNumericDate => f.write_str("must be a number of seconds since the epoch"),
            Self::OutOfRange => f.write_str("is out of range"),
            Self::NotProjected => f.write_str(
                "is missing or not an object; only projected ServiceAccount tokens are accepted",
            ),
            Self::MemberNotString { path } => write!(f, "member {path} must be a string"),
            Self::MemberNotObject { member } => write!(f, "member {member} must be an object"),
        }
    }
}

/// How a token is malformed ([`InvalidToken::Malformed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedToken {
    /// A byte is not printable ASCII (tokens are base64url and dots).
    NotPrintable {
        /// Its position.
        byte: usize,
    },
    /// It does not have the three dot-separated parts of a signed JWT.
    Parts {
        /// How many it has.
        found: usize,
    },
    /// It is an encrypted JWT (JWE, five parts).
    Encrypted,
    /// A part is not unpadded base64url.
    NotBase64 {
        /// `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// The header or payload is not a JSON object.
    NotJsonObject {
        /// `header` or `payload`.
        part: &'static str,
    },
    /// Not a JWT at all (the TokenReview pre-check, which looks no further).
    NotJwt,
    /// A required header member is missing.
    HeaderMissing {
        /// The member, e.g. `alg`.
        member: &'static str,
    },
    /// A header member has the wrong form.
    Header {
        /// The member: `alg`, `typ` or `kid`.
        member: &'static str,
        /// What is wrong with it, e.g. `is not a string`.
        problem: &'static str,
    },
}

impl MalformedToken {
    /// Whether the token is not a JWS at all (its structure), as opposed to a JWS whose header
    /// is wrong: what an authenticator may hand to another that understands other tokens.
    pub fn is_not_a_jws(&self) -> bool {
        matches!(
            self,
            Self::Parts { .. }
                | Self::Encrypted
                | Self::NotBase64 { .. }
                | Self::NotJsonObject { .. }
                | Self::NotJwt
        )
    }
}

impl fmt::Display for MalformedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPrintable { byte } => {
                write!(f, "byte {byte} is not a printable ASCII character")
            }
            Self::Parts { found } => write!(
                f,
                "a signed JWT has three dot-separated parts (header.payload.signature), not \
                 {found}"
            ),
            Self::Encrypted => f.write_str("encrypted tokens (JWE) are not supported"),
            Self::NotBase64 { part } => write!(f, "the {part} is not unpadded base64url"),
            Self::NotJsonObject { part } => write!(f, "the {part} is not a JSON object"),
            Self::NotJwt => f.write_str(
                "it is not a JWT (header.payload.signature); ServiceAccount tokens are JWTs",
            ),
            Self::HeaderMissing { member } => write!(f, "the header has no \"{member}\""),
            Self::Header { member, problem } => write!(f, "the header's \"{member}\" {problem}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_problems_read_as_before() {
        let status = |status| Error::Discovery {
            problem: DiscoveryProblem::Status {
                path: "/openid/v1/jwks",
                status,
                message: "forbidden".to_owned(),
            },
        };
        assert!(matches!(
            status(403),
            Error::Discovery {
                problem: DiscoveryProblem::Status { status: 403, .. }
            }
        ));
        assert_eq!(
            status(403).to_string(),
            "the API server's service-account issuer discovery failed: GET /openid/v1/jwks \
             answered HTTP 403: forbidden; grant the identity service's ServiceAccount the \
             ClusterRole system:service-account-issuer-discovery"
        );
        assert_eq!(
            status(404).to_string(),
            "the API server's service-account issuer discovery failed: GET /openid/v1/jwks \
             answered HTTP 404: forbidden; the API server does not serve service-account issuer \
             discovery"
        );
        let empty = Error::Discovery {
            problem: DiscoveryProblem::EmptyIssuer {
                path: "/.well-known/openid-configuration",
            },
        };
        assert_eq!(
            empty.to_string(),
            "the API server's service-account issuer discovery failed: the OIDC discovery \
             document /.well-known/openid-configuration names an empty issuer"
        );
        let unavailable = Error::KeysUnavailable { last_error: None };
        assert_eq!(
            unavailable.to_string(),
            "the cluster's service-account token keys are not available (not fetched yet); \
             tokens cannot be validated offline until OIDC discovery answers, and no \
             TokenReview fallback is configured"
        );
        assert!(core::error::Error::source(&unavailable).is_none());
        let unavailable = Error::KeysUnavailable {
            last_error: Some(Box::new(empty)),
        };
        assert!(core::error::Error::source(&unavailable).is_some());
    }
}
