//! The CA: a policy, a trust bundle and a hot-swappable issuer.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use meshid_csr::{CsrLimits, ParsedCsr};
use meshid_policy::{Identity, IssuancePolicy, Mesh, ServiceAccount};
use meshid_verify::TrustBundle;
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::leaf::LeafFields;
use crate::{Error, IssuerCredentials, SigningError};

/// Serial numbers are 16 random bytes, forced positive and full length: 126 bits of entropy.
const SERIAL_LEN: usize = 16;

/// A random serial: one fill from the system random source per certificate.
fn random_serial(rng: &SystemRandom) -> Result<[u8; SERIAL_LEN], Error> {
    let mut serial = [0u8; SERIAL_LEN];
    rng.fill(&mut serial)
        .map_err(|_| Error::Signing(SigningError::Random))?;
    // A number in [2^126, 2^127): positive, with no leading zero byte, so the certificate
    // holds exactly these 16 bytes.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

/// An in-process identity CA.
///
/// `certify` takes no lock: the issuer and trust bundle live in atomically swappable cells, each
/// request works on the snapshot it loaded first, and replacing the issuer validates the new one
/// before the swap, so an in-flight request is never torn between two issuers.
pub struct Ca {
    mesh: Mesh,
    policy: IssuancePolicy,
    limits: CsrLimits,
    bundle: ArcSwap<TrustBundle>,
    issuer: ArcSwapOption<IssuerCredentials>,
    rng: SystemRandom,
}

/// A certified leaf: what the identity service returns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Certified {
    /// The leaf certificate.
    pub leaf: CertificateDer<'static>,
    /// The issuer certificate, then the rest of the issuer's file, in order.
    pub chain: Arc<[CertificateDer<'static>]>,
    /// The leaf's NotBefore.
    pub not_before: OffsetDateTime,
    /// The leaf's NotAfter (`valid_until` on the wire).
    pub not_after: OffsetDateTime,
    /// The identity certified.
    pub identity: Identity,
    /// The leaf's serial number (big-endian, positive).
    pub serial: [u8; SERIAL_LEN],
}

impl Ca {
    /// A CA for `mesh` with `policy`, trusting `bundle`. It issues nothing until an issuer is
    /// installed with [`Ca::set_issuer`].
    pub fn new(mesh: Mesh, policy: IssuancePolicy, bundle: TrustBundle) -> Result<Self, Error> {
        policy.validate().map_err(Error::InvalidPolicy)?;
        Ok(Self {
            mesh,
            policy,
            limits: CsrLimits::default(),
            bundle: ArcSwap::from_pointee(bundle),
            issuer: ArcSwapOption::empty(),
            rng: SystemRandom::new(),
        })
    }

    /// Replaces the CSR parsing limits.
    pub fn with_csr_limits(mut self, limits: CsrLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The mesh naming context.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// The issuance policy.
    pub fn policy(&self) -> &IssuancePolicy {
        &self.policy
    }

    /// The current trust bundle.
    pub fn trust_bundle(&self) -> Arc<TrustBundle> {
        self.bundle.load_full()
    }

    /// The current issuer, if one is installed.
    pub fn issuer(&self) -> Option<Arc<IssuerCredentials>> {
        self.issuer.load_full()
    }

    /// Loads issuer credentials from PEM, validates them against the current trust bundle at
    /// `now`, and swaps them in. On error the previous issuer keeps serving.
    pub fn load_issuer_pem(
        &self,
        chain_pem: &str,
        key_pem: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<IssuerCredentials>, Error> {
        let bundle = self.bundle.load();
        let creds = IssuerCredentials::from_pem(chain_pem, key_pem, &bundle, now)?;
        self.set_issuer(creds, now)
    }

    /// Installs an issuer. Credentials validated against another bundle than the current one
    /// are validated again against the current one first, and the issuer's name constraints,
    /// if it has any, must permit this CA's mesh; on error nothing changes.
    pub fn set_issuer(
        &self,
        creds: IssuerCredentials,
        now: OffsetDateTime,
    ) -> Result<Arc<IssuerCredentials>, Error> {
        let bundle = self.bundle.load();
        let creds = if bundle.contains(creds.anchor().as_ref()) {
            creds
        } else {
            creds.revalidate(&bundle, now)?
        };
        self.check_mesh(&creds, &bundle, now)?;
        let creds = Arc::new(creds);
        self.issuer.store(Some(Arc::clone(&creds)));
        Ok(creds)
    }

    /// Replaces the trust bundle. Refused, with nothing changed, when the current issuer does
    /// not chain to the new bundle (that would orphan it); see the add-then-remove procedure.
    pub fn set_trust_bundle(&self, bundle: TrustBundle, now: OffsetDateTime) -> Result<(), Error> {
        match self.issuer.load_full() {
            None => self.bundle.store(Arc::new(bundle)),
            Some(current) => {
                let revalidated = current
                    .revalidate(&bundle, now)
                    .and_then(|creds| {
                        self.check_mesh(&creds, &bundle, now)?;
                        Ok(creds)
                    })
                    .map_err(|e| match e {
                        Error::InvalidIssuer(problem) => Error::TrustBundleOrphansIssuer(problem),
                        other => other,
                    })?;
                self.bundle.store(Arc::new(bundle));
                self.issuer.store(Some(Arc::new(revalidated)));
            }
        }
        Ok(())
    }

    /// The issuer's leaves verify for this mesh's identities under `bundle`.
    fn check_mesh(
        &self,
        creds: &IssuerCredentials,
        bundle: &TrustBundle,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        creds
            .check_mesh(&self.mesh, self.policy.san_mode, bundle, now)
            .map_err(Error::InvalidIssuer)
    }

    /// Certifies the key of `csr_der` for the authenticated ServiceAccount `sa` at `now`.
    ///
    /// Steps, in Linkerd's order: the issuer is loaded; the CSR parses and its signature
    /// verifies; the issuer chain and anchor are still valid; the CSR's names and key pass the
    /// policy; the leaf is signed. The leaf carries only `CN=<identity>`, the policy's SANs,
    /// KeyUsage digitalSignature + keyEncipherment (critical), EKU serverAuth + clientAuth,
    /// BasicConstraints CA:FALSE, SKI, AKI and a random positive 16-byte serial; nothing from the
    /// CSR but its public key.
    pub fn certify(
        &self,
        sa: &ServiceAccount,
        csr_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<Certified, Error> {
        if self.issuer.load().is_none() {
            return Err(Error::IssuerNotReady);
        }
        let csr = ParsedCsr::from_der(csr_der, &self.limits).map_err(Error::Csr)?;
        self.certify_parsed(sa, &csr, now)
    }

    /// [`Ca::certify`] for a CSR the caller already parsed and whose signature
    /// [`ParsedCsr::from_der`] already verified (a service that checks the CSR before an
    /// expensive token review need not verify its signature twice). Every other check runs.
    pub fn certify_parsed(
        &self,
        sa: &ServiceAccount,
        csr: &ParsedCsr,
        now: OffsetDateTime,
    ) -> Result<Certified, Error> {
        // Certificates carry whole seconds; so does everything computed from `now`.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let issuer = self.issuer.load_full().ok_or(Error::IssuerNotReady)?;
        let window = self
            .policy
            .validity_window(now, issuer.validity_bounds())
            .map_err(Error::IssuerUnusable)?;
        let decision = self
            .policy
            .decide(&self.mesh, sa, csr.content())
            .map_err(Error::Policy)?;
        // `decide` accepts only supported ECDSA keys, which are always certifiable.
        let key = csr.certifiable_key().ok_or_else(|| {
            Error::Policy(meshid_policy::Error::KeyNotEcdsa {
                found: csr.content().key.clone(),
            })
        })?;

        let serial = random_serial(&self.rng)?;
        let leaf = issuer.sign_leaf(&LeafFields {
            serial: &serial,
            not_before: window.not_before,
            not_after: window.not_after,
            common_name: decision.identity.as_str(),
            sans: &decision.sans,
            key_algorithm: key.algorithm(),
            public_key: key.point(),
        })?;

        Ok(Certified {
            leaf: CertificateDer::from(leaf),
            chain: Arc::clone(issuer.chain()),
            not_before: window.not_before,
            not_after: window.not_after,
            identity: decision.identity,
            serial,
        })
    }
}
