//! Shared fixtures: a CA, clients, and TLS plumbing.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use meshid_ca::Ca;
use meshid_ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid_client::{
    Certifier, CertifyError, CertifyRequest, CertifyResponse, Client, ClientConfig, LocalCertifier,
    TokenSource,
};
use meshid_policy::{Clock, IssuancePolicy, Mesh, TokioClock};
use meshid_verify::TrustBundle;
use time::OffsetDateTime;
use time::macros::datetime;
use zeroize::Zeroizing;

pub const START: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
pub const WEB: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
pub const EMOJI: &str = "emoji-svc.emojivoto.serviceaccount.identity.linkerd.cluster.local";
pub const VOTING: &str = "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local";

pub struct Pki {
    pub root: CaCertificate,
    pub bundle: TrustBundle,
    pub ca: Arc<Ca>,
}

impl Pki {
    pub fn new() -> Self {
        let day = std::time::Duration::from_secs(86_400);
        let from = datetime!(2026-01-01 0:00 UTC);
        let root = create_root(&CaOptions::root(
            "root.linkerd.cluster.local",
            from,
            3650 * day,
        ))
        .unwrap();
        let issuer = create_intermediate(
            &root,
            &CaOptions::issuer("identity.linkerd.cluster.local", from, 365 * day),
        )
        .unwrap();
        let bundle = TrustBundle::from_pem(root.pem().as_bytes()).unwrap();
        let ca =
            Arc::new(Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).unwrap());
        ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), START)
            .unwrap();
        Self { root, bundle, ca }
    }
}

pub fn token() -> TokenSource {
    TokenSource::Fixed(Zeroizing::new(b"token".to_vec()))
}

pub fn config(identity: &str, bundle: &TrustBundle) -> ClientConfig {
    ClientConfig::new(identity, token(), bundle.clone())
}

/// A client of the in-process CA.
pub fn local_client(
    pki: &Pki,
    identity: &str,
    clock: TokioClock,
) -> Client<LocalCertifier<TokioClock>, TokioClock> {
    Client::new(
        config(identity, &pki.bundle),
        LocalCertifier::new(Arc::clone(&pki.ca), clock),
        clock,
    )
    .unwrap()
    .with_jitter(meshid_rotation::SeededJitter::new(7))
}

/// A certifier that can be switched off, and records when it was called.
pub struct Flaky<C> {
    pub inner: C,
    pub failing: AtomicBool,
    pub calls: AtomicUsize,
    pub attempts: Mutex<Vec<OffsetDateTime>>,
    pub clock: TokioClock,
}

impl<C> Flaky<C> {
    pub fn new(inner: C, clock: TokioClock) -> Self {
        Self {
            inner,
            failing: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            attempts: Mutex::new(Vec::new()),
            clock,
        }
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl<C: Certifier> Certifier for Flaky<C> {
    async fn certify(&self, request: CertifyRequest) -> Result<CertifyResponse, CertifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.attempts.lock().unwrap().push(self.clock.now());
        if self.failing.load(Ordering::SeqCst) {
            return Err(CertifyError::new("identity service unavailable"));
        }
        self.inner.certify(request).await
    }
}

/// A certifier that answers whatever `respond` returns.
pub struct Scripted<F>(pub F);

impl<F> Certifier for Scripted<F>
where
    F: Fn(CertifyRequest) -> Result<CertifyResponse, CertifyError> + Send + Sync + 'static,
{
    async fn certify(&self, request: CertifyRequest) -> Result<CertifyResponse, CertifyError> {
        (self.0)(request)
    }
}

/// The serial number of a DER certificate.
pub fn serial(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial().to_vec()
}

/// The SubjectPublicKeyInfo bits of a DER certificate.
pub fn public_key(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}
