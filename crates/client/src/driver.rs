//! The certify loop: certify, validate, install, sleep until the refresh point; back off on
//! failure, keeping the current certificate.

use core::future::Future;
use core::time::Duration;
use std::sync::Arc;

use meshid_csr::{Csr, KeyPair};
use meshid_policy::Clock;
use meshid_rotation::{Backoff, JitterSource, SeededJitter};
use meshid_verify::{Usage, VerifyOptions};
use ring::rand::SecureRandom;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::store::Installed;
use crate::{
    Certifier, CertifyRequest, CertifyResponse, ClientConfig, ConfigProblem, Credentials, Error,
    Metrics, ResponseProblem,
};

/// The proxy identity client: it owns the key, talks to the CA, and keeps [`Credentials`]
/// current.
pub struct Client<C, K> {
    config: ClientConfig,
    certifier: C,
    clock: K,
    jitter: Box<dyn JitterSource + Send>,
    credentials: Arc<Credentials>,
    metrics: Option<Metrics>,
    provider: Arc<CryptoProvider>,
    backoff: Backoff,
    key: Option<KeyPair>,
}

impl<C: Certifier, K: Clock> Client<C, K> {
    /// A client for `config` that certifies with `certifier` and reads time from `clock`.
    ///
    /// Jitter is seeded from the operating system; see [`Client::with_jitter`].
    pub fn new(config: ClientConfig, certifier: C, clock: K) -> Result<Self, Error> {
        config.refresh.validate().map_err(|e| Error::Config {
            reason: ConfigProblem::Refresh(e),
        })?;
        if !config
            .csr
            .sans
            .iter()
            .any(|san| san.as_str() == config.identity)
        {
            return Err(Error::Config {
                reason: ConfigProblem::IdentityNotRequested {
                    identity: config.identity,
                },
            });
        }
        let mut seed = [0u8; 8];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| Error::Config {
                reason: ConfigProblem::Random,
            })?;
        let credentials = Arc::new(Credentials::new(
            config.identity.clone(),
            config.trust_bundle.clone(),
        ));
        let backoff = Backoff::new(config.backoff.clone()).map_err(|e| Error::Config {
            reason: ConfigProblem::Backoff(e),
        })?;
        Ok(Self {
            backoff,
            config,
            certifier,
            clock,
            jitter: Box::new(SeededJitter::new(u64::from_le_bytes(seed))),
            credentials,
            metrics: None,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            key: None,
        })
    }

    /// Uses `jitter` for refresh and backoff jitter (tests use a seeded one).
    pub fn with_jitter(mut self, jitter: impl JitterSource + Send + 'static) -> Self {
        self.jitter = Box::new(jitter);
        self
    }

    /// Records metrics into `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The credentials this client keeps current: hand them to the TLS side.
    pub fn credentials(&self) -> Arc<Credentials> {
        Arc::clone(&self.credentials)
    }

    /// Runs until `shutdown` completes: certify, then renew at the refresh point, forever.
    /// Errors are logged and retried with backoff; the current certificate keeps serving until
    /// it expires.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!("Waiting for identity to be initialized...");
        loop {
            let now = self.clock.now();
            let wake = match self.certify_once().await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, "Failed to certify identity");
                    self.retry_at(now)
                }
            };
            // Sleep until `wake`, but also wake when the current certificate expires.
            loop {
                let now = self.clock.now();
                let expiry = self.credentials.validity().map(|(_, not_after)| not_after);
                if let Some(not_after) = expiry
                    && now >= not_after
                {
                    tracing::warn!(identity = %self.config.identity, "Certificate expired");
                    self.credentials.expire(not_after);
                    continue;
                }
                if now >= wake {
                    break;
                }
                let until = expiry.map_or(wake, |e| e.min(wake));
                let sleep = tokio::time::sleep(duration_between(now, until));
                tokio::select! {
                    () = sleep => {}
                    () = &mut shutdown => return,
                }
            }
        }
    }

    /// One attempt: certify, validate, install. Returns when to refresh.
    pub async fn certify_once(&mut self) -> Result<OffsetDateTime, Error> {
        match self.attempt().await {
            Ok((installed_at, not_before, not_after)) => {
                self.backoff.reset();
                if let Some(metrics) = &self.metrics {
                    metrics.refreshed(installed_at, not_after);
                }
                tracing::info!(id = %self.config.identity, "Certified identity id={}", self.config.identity);
                self.config
                    .refresh
                    .refresh_at(not_before, not_after, installed_at, &mut *self.jitter)
                    .map_err(|e| Error::Config {
                        reason: ConfigProblem::Refresh(e),
                    })
            }
            Err(error) => {
                if let Some(metrics) = &self.metrics {
                    metrics.failed();
                }
                Err(error)
            }
        }
    }

    /// When to try again after a failure at `now`: backoff capped by the current certificate.
    fn retry_at(&mut self, now: OffsetDateTime) -> OffsetDateTime {
        let valid = self
            .credentials
            .validity()
            .map(|(_, not_after)| not_after)
            .filter(|not_after| *not_after > now);
        now + self.backoff.next_delay(now, valid, &mut *self.jitter)
    }

    async fn attempt(&mut self) -> Result<(OffsetDateTime, OffsetDateTime, OffsetDateTime), Error> {
        let token = self.config.token.read()?;
        if self.config.rekey || self.key.is_none() {
            self.key = Some(KeyPair::generate(self.config.key_algorithm).map_err(Error::Key)?);
        }
        let Some(key) = self.key.as_ref() else {
            return Err(Error::Config {
                reason: ConfigProblem::NoKey,
            });
        };
        let csr = Csr::build(key, &self.config.csr).map_err(Error::Key)?;
        let request = CertifyRequest::new(self.config.identity.clone(), token, csr.into_der());
        let response = self
            .certifier
            .certify(request)
            .await
            .map_err(Error::Certify)?;
        let now = self.clock.now();
        let (not_before, not_after) = self.credentials.install_checked(|bundle| {
            validate(
                &response,
                key,
                &self.config.identity,
                bundle,
                now,
                &self.provider,
            )
        })?;
        Ok((now, not_before, not_after))
    }
}

/// Checks a CA's answer before it is installed: `valid_until` present, in the future and equal
/// to the leaf's NotAfter; the chain verifies to the bundle at `now`; the local identity is
/// among the leaf's SANs; the leaf's key is ours.
pub(crate) fn validate(
    response: &CertifyResponse,
    key: &KeyPair,
    identity: &str,
    bundle: &meshid_verify::TrustBundle,
    now: OffsetDateTime,
    provider: &CryptoProvider,
) -> Result<Installed, Error> {
    let invalid = |reason: ResponseProblem| Error::InvalidResponse { reason };
    let valid_until = response
        .valid_until
        .ok_or_else(|| invalid(ResponseProblem::MissingExpiration))?;
    if valid_until <= now {
        return Err(invalid(ResponseProblem::Expired { valid_until, now }));
    }
    let installed = validate_chain(
        &response.leaf,
        &response.intermediates,
        key,
        identity,
        bundle,
        now,
        provider,
    )?;
    if (valid_until - installed.not_after).abs() >= time::Duration::SECOND {
        return Err(invalid(ResponseProblem::ExpiryMismatch {
            valid_until,
            not_after: installed.not_after,
        }));
    }
    Ok(installed)
}

/// Checks a certificate chain before it is installed: it verifies to the bundle at `now`, the
/// local identity is among the leaf's SANs, the leaf's key is `key`.
pub(crate) fn validate_chain(
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    key: &KeyPair,
    identity: &str,
    bundle: &meshid_verify::TrustBundle,
    now: OffsetDateTime,
    provider: &CryptoProvider,
) -> Result<Installed, Error> {
    let invalid = |reason: ResponseProblem| Error::InvalidResponse { reason };
    let peer = verify_own_chain(bundle, leaf, intermediates, now)
        .map_err(|e| invalid(ResponseProblem::ChainDoesNotVerify(e)))?;
    if !peer.matches(identity) {
        return Err(invalid(ResponseProblem::WrongIdentity {
            expected: identity.to_owned(),
            found: peer.names(),
        }));
    }
    let mut chain = Vec::with_capacity(1 + intermediates.len());
    chain.push(leaf.clone());
    chain.extend(intermediates.iter().cloned());
    let certified = CertifiedKey::from_der(chain, key.to_rustls_key(), provider).map_err(|e| {
        invalid(ResponseProblem::KeyMismatch {
            reason: e.to_string(),
        })
    })?;
    Ok(Installed {
        key: Arc::new(certified),
        key_pkcs8: Arc::new(Zeroizing::new(key.pkcs8_der().to_vec())),
        not_before: peer.not_before(),
        not_after: peer.not_after(),
    })
}

/// Verifies a chain this client presents (or is about to) against `bundle` at `now`, as a peer
/// holding `bundle` would: the mesh profile, for either usage. The certify loop checks the CA's
/// answer with it, and the bundle watcher checks the installed chain against a new bundle.
pub(crate) fn verify_own_chain(
    bundle: &meshid_verify::TrustBundle,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: OffsetDateTime,
) -> Result<meshid_verify::VerifiedPeer, meshid_verify::Error> {
    meshid_verify::verify_chain(
        bundle,
        leaf,
        intermediates,
        now,
        Usage::Either,
        &VerifyOptions::default(),
    )
}

fn duration_between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    Duration::try_from(to - from).unwrap_or(Duration::ZERO)
}
