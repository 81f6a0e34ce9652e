//! The seam between a client and any CA.

use core::fmt;
use core::future::Future;
use std::sync::Arc;

#[cfg(feature = "local-ca")]
use meshid_ca::Ca;
#[cfg(feature = "local-ca")]
use meshid_policy::Clock;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// What a client sends to its CA (Linkerd's `CertifyRequest`).
#[non_exhaustive]
pub struct CertifyRequest {
    /// The identity requested, e.g. `web.emojivoto.serviceaccount.identity.linkerd.cluster.local`.
    pub identity: String,
    /// The ServiceAccount token proving it (wiped when dropped, never logged).
    pub token: Zeroizing<Vec<u8>>,
    /// The DER CSR.
    pub csr_der: Vec<u8>,
}

impl CertifyRequest {
    /// A request for `identity`.
    pub fn new(identity: String, token: Zeroizing<Vec<u8>>, csr_der: Vec<u8>) -> Self {
        Self {
            identity,
            token,
            csr_der,
        }
    }
}

impl fmt::Debug for CertifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifyRequest")
            .field("identity", &self.identity)
            .field("token", &"[redacted]")
            .field("csr_len", &self.csr_der.len())
            .finish()
    }
}

/// What a CA answers (Linkerd's `CertifyResponse`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CertifyResponse {
    /// The leaf certificate.
    pub leaf: CertificateDer<'static>,
    /// The issuer chain, issuer first.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The leaf's NotAfter; a response without it is refused, as Linkerd's proxy does.
    pub valid_until: Option<OffsetDateTime>,
}

impl CertifyResponse {
    /// A response.
    pub fn new(
        leaf: CertificateDer<'static>,
        intermediates: Vec<CertificateDer<'static>>,
        valid_until: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            leaf,
            intermediates,
            valid_until,
        }
    }
}

/// Why a CA did not certify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CertifyError {
    /// What the CA (or the transport) said.
    pub message: String,
}

impl CertifyError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A CA that certifies CSRs: in process (`LocalCertifier`, feature `local-ca`) or remote (gRPC).
pub trait Certifier: Send + Sync + 'static {
    /// Certifies `request`.
    fn certify(
        &self,
        request: CertifyRequest,
    ) -> impl Future<Output = Result<CertifyResponse, CertifyError>> + Send;
}

impl<C: Certifier> Certifier for Arc<C> {
    fn certify(
        &self,
        request: CertifyRequest,
    ) -> impl Future<Output = Result<CertifyResponse, CertifyError>> + Send {
        C::certify(self, request)
    }
}

/// The in-process CA as a [`Certifier`].
///
/// In-process callers are trusted: the token is not checked; the requested identity must be a
/// name the CA's SAN mode issues (an identity name, or a SPIFFE ID of its mesh; see
/// `IssuancePolicy::requested_service_account`), and it is certified for the ServiceAccount it
/// names.
///
/// Feature `local-ca` (off by default, so a client that certifies over gRPC does not link
/// the CA).
#[cfg(feature = "local-ca")]
pub struct LocalCertifier<K> {
    ca: Arc<Ca>,
    clock: K,
}

#[cfg(feature = "local-ca")]
impl<K: Clock> LocalCertifier<K> {
    /// Certifies with `ca`, at the time `clock` tells.
    pub fn new(ca: Arc<Ca>, clock: K) -> Self {
        Self { ca, clock }
    }
}

#[cfg(feature = "local-ca")]
impl<K: Clock> Certifier for LocalCertifier<K> {
    fn certify(
        &self,
        request: CertifyRequest,
    ) -> impl Future<Output = Result<CertifyResponse, CertifyError>> + Send {
        let result = (|| {
            let sa = self
                .ca
                .policy()
                .requested_service_account(self.ca.mesh(), &request.identity)
                .map_err(|e| CertifyError::new(e.to_string()))?;
            let certified = self
                .ca
                .certify(&sa, &request.csr_der, self.clock.now())
                .map_err(|e| CertifyError::new(e.to_string()))?;
            Ok(CertifyResponse::new(
                certified.leaf,
                certified.chain.to_vec(),
                Some(certified.not_after),
            ))
        })();
        core::future::ready(result)
    }
}
