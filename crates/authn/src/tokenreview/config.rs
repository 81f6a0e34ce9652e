//! How the TokenReview client behaves, on top of where the Kubernetes API server is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use meshid_kube::KubeApiConfig;

use crate::{DEFAULT_AUDIENCE, DEFAULT_CLOCK_SKEW, Error};

/// The default request rate to the API server: Linkerd's `-kube-apiclient-qps`.
pub const DEFAULT_QPS: f64 = 100.0;

/// The default burst above the rate: Linkerd's `-kube-apiclient-burst`.
pub const DEFAULT_BURST: u32 = 200;

/// How long a positive result is cached at most (shorter when the token expires sooner).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// How many positive results are cached at most.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// How long a refused token is remembered: its callers are refused again without a review.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(10);

/// How many refused tokens are remembered at most.
pub const DEFAULT_NEGATIVE_CACHE_CAPACITY: usize = 10_000;

/// How to reach the API server and how to use it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenReviewConfig {
    /// Where the API server is, its CA, this client's credentials and the per-request timeout
    /// (default [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT)).
    pub api: KubeApiConfig,
    /// The audiences requested in the TokenReview. Default `[DEFAULT_AUDIENCE]`; when not
    /// empty, the review's `status.audiences` must contain one of them.
    pub audiences: Vec<String>,
    /// Retry once without audiences when `status.error` mentions "token audiences", as
    /// Linkerd does, for API servers that cannot review audiences. Default `false`: a real
    /// API server answers exactly that for every token of another audience, and without
    /// audiences it accepts its default-audience tokens, which other systems receive too.
    /// When on, a token's `aud` is not checked locally either.
    pub audience_fallback: bool,
    /// Sustained requests per second to the API server. Default [`DEFAULT_QPS`].
    pub qps: f64,
    /// Requests allowed at once above the rate. Default [`DEFAULT_BURST`].
    pub burst: u32,
    /// Longest time a positive result is cached. Default [`DEFAULT_CACHE_TTL`]; zero disables
    /// the cache.
    pub cache_ttl: Duration,
    /// Most positive results cached. Default [`DEFAULT_CACHE_CAPACITY`].
    pub cache_capacity: usize,
    /// How long a refused token (not authenticated, or invalid) is refused again without a
    /// review. Default [`DEFAULT_NEGATIVE_CACHE_TTL`]; zero disables the negative cache.
    pub negative_cache_ttl: Duration,
    /// Most refused tokens remembered. Default [`DEFAULT_NEGATIVE_CACHE_CAPACITY`].
    pub negative_cache_capacity: usize,
    /// The clock-skew allowance of the local expiry check (a JWT whose `exp` is this long past
    /// is refused without a review). Default [`DEFAULT_CLOCK_SKEW`].
    pub clock_skew: Duration,
}

impl TokenReviewConfig {
    /// Reviews through `api`, with the defaults for everything else.
    pub fn with_api(api: KubeApiConfig) -> Self {
        Self {
            api,
            audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            audience_fallback: false,
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            negative_cache_capacity: DEFAULT_NEGATIVE_CACHE_CAPACITY,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }

    /// An explicit configuration (API server URL, CA file, token file; see
    /// [`KubeApiConfig::new`]) with the defaults for everything else.
    pub fn new(
        api_server: &str,
        ca_file: impl Into<PathBuf>,
        token_file: impl Into<PathBuf>,
    ) -> Result<Self, Error> {
        Ok(Self::with_api(KubeApiConfig::new(
            api_server, ca_file, token_file,
        )?))
    }

    /// The in-cluster configuration ([`KubeApiConfig::in_cluster`]).
    pub fn in_cluster() -> Result<Self, Error> {
        Ok(Self::with_api(KubeApiConfig::in_cluster()?))
    }

    /// A kubeconfig file's `context` (default: its `current-context`), with the defaults for
    /// everything else ([`KubeApiConfig::from_kubeconfig`]).
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Self, Error> {
        Ok(Self::with_api(KubeApiConfig::from_kubeconfig(
            path, context,
        )?))
    }

    /// [`from_kubeconfig`](Self::from_kubeconfig) for kubeconfig `text`
    /// ([`KubeApiConfig::from_kubeconfig_str`]).
    pub fn from_kubeconfig_str(text: &str, context: Option<&str>) -> Result<Self, Error> {
        Ok(Self::with_api(KubeApiConfig::from_kubeconfig_str(
            text, context,
        )?))
    }

    /// The configuration where kubectl and Linkerd look when none is named: the kubeconfig
    /// files `KUBECONFIG` names, else `~/.kube/config`, else in-cluster
    /// ([`KubeApiConfig::discover`]).
    pub fn discover(context: Option<&str>) -> Result<Self, Error> {
        Ok(Self::with_api(KubeApiConfig::discover(context)?))
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |reason: &str| Err(Error::config("TokenReview configuration", reason));
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return bad("qps must be a positive number");
        }
        if self.burst == 0 {
            return bad("burst must be at least 1");
        }
        if self.api.timeout.is_zero() {
            return bad("the request timeout must be positive");
        }
        if self.audiences.iter().any(String::is_empty) {
            return bad("audiences must not be empty strings");
        }
        Ok(())
    }
}
