//! Issuer credentials: the intermediate CA certificate chain and its key, validated at load.

use core::fmt;
use std::sync::Arc;

use meshid_policy::{
    CredentialRole, KeyAlgorithm, Mesh, PublicKeyKind, San, SanMode, ServiceAccount, ValidityBound,
};
use meshid_verify::{MalformedCertificate, TrustBundle, Usage, VerifyOptions};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::leaf::{LeafFields, LeafSigner};
use crate::signer::Signer;
use crate::{Error, IssuerProblem, SigningError};

/// The ServiceAccount of the identity service itself, in the control-plane namespace: the
/// identity a load-time test leaf names to check the issuer's name constraints.
const PROBE_SERVICE_ACCOUNT: &str = "linkerd-identity";

/// A validated issuer: its certificate chain (issuer first), its signing key, and the validity
/// bounds that clamp every leaf it signs.
///
/// Construction checks, each failure its own [`IssuerProblem`]: the chain parses; the key
/// matches the issuer certificate and is ECDSA P-256/P-384; the issuer is a CA with keyCertSign;
/// its EKU is absent or includes both serverAuth and clientAuth; every certificate of the chain
/// is within its validity period; and the chain verifies to the trust bundle at `now` (by
/// verifying a throwaway leaf signed with the issuer key through it, for both usages, with
/// rustls-webpki). That leaf names nothing, so an issuer with name constraints loads here;
/// [`Ca`](crate::Ca) checks the constraints against its mesh when it installs the issuer.
pub struct IssuerCredentials {
    chain: Arc<[CertificateDer<'static>]>,
    signer: Arc<dyn Signer>,
    leaf_signer: LeafSigner,
    bounds: Vec<ValidityBound>,
    subject: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    anchor_index: usize,
    anchor: CertificateDer<'static>,
}

impl IssuerCredentials {
    /// Loads an issuer from PEM: `chain_pem` holds the issuer certificate first, then any
    /// further intermediates; `key_pem` holds its key (`EC PRIVATE KEY` or `PRIVATE KEY`).
    pub fn from_pem(
        chain_pem: &str,
        key_pem: &str,
        bundle: &TrustBundle,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        let chain = parse_chain_pem(chain_pem)?;
        let key = meshid_csr::KeyPair::from_pem(key_pem)
            .map_err(|e| Error::InvalidIssuer(IssuerProblem::Key(e)))?;
        Self::new(chain, Arc::new(key), bundle, now)
    }

    /// Builds and validates an issuer from DER certificates (issuer first) and a signer.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        signer: Arc<dyn Signer>,
        bundle: &TrustBundle,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        validate(chain, signer, bundle, now).map_err(Error::InvalidIssuer)
    }

    /// The chain sent with every leaf: the issuer certificate, then the rest of its file.
    pub fn chain(&self) -> &Arc<[CertificateDer<'static>]> {
        &self.chain
    }

    /// The issuer certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        // `validate` refuses an empty chain.
        &self.chain[0]
    }

    /// The issuer's subject, for logs.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer certificate's NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The issuer certificate's NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The position, in the trust bundle it was validated against, of the anchor it chains to.
    pub fn anchor_index(&self) -> usize {
        self.anchor_index
    }

    /// The trust anchor the chain verified to.
    pub fn anchor(&self) -> &CertificateDer<'static> {
        &self.anchor
    }

    /// The validity periods that bound a leaf: each chain certificate, then the trust anchor.
    pub fn validity_bounds(&self) -> &[ValidityBound] {
        &self.bounds
    }

    /// The signing key's algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.signer.algorithm()
    }

    /// Writes and signs a leaf with the issuer key.
    pub(crate) fn sign_leaf(&self, fields: &LeafFields<'_>) -> Result<Vec<u8>, Error> {
        self.leaf_signer.sign(fields).map_err(Error::Signing)
    }

    /// Checks that the leaves of this issuer verify for `mesh`'s identities in `mode`: a test
    /// leaf for the identity service's own ServiceAccount must verify through the chain to
    /// `bundle` at `now`. Fails when the issuer's name constraints exclude the mesh.
    pub(crate) fn check_mesh(
        &self,
        mesh: &Mesh,
        mode: SanMode,
        bundle: &TrustBundle,
        now: OffsetDateTime,
    ) -> Result<(), IssuerProblem> {
        let probe_names = ServiceAccount::new(
            mesh.control_plane_namespace().as_str(),
            PROBE_SERVICE_ACCOUNT,
        )
        .and_then(|sa| Ok((mesh.identity(&sa)?, mesh.sans(&sa, mode)?)));
        // A control-plane namespace and trust domain so long that the identity service's own
        // name does not fit: nothing to check that the CA could issue.
        let Ok((identity, sans)) = probe_names else {
            return Ok(());
        };
        let probe = probe_leaf(
            &self.leaf_signer,
            now,
            self.not_after,
            identity.as_str(),
            &sans,
        )?;
        for usage in [Usage::Server, Usage::Client] {
            meshid_verify::verify_chain(
                bundle,
                &probe,
                &self.chain,
                now,
                usage,
                &VerifyOptions::default(),
            )
            .map_err(|e| match e {
                meshid_verify::Error::Chain(webpki::Error::NameConstraintViolation) => {
                    IssuerProblem::NameConstraintsExcludeMesh {
                        trust_domain: mesh.trust_domain().as_str().to_owned(),
                        identity: identity.to_string(),
                    }
                }
                other => IssuerProblem::from_verify(other),
            })?;
        }
        Ok(())
    }

    /// Re-checks this issuer against another trust bundle (for anchor rotation): the result
    /// carries that bundle's anchor bound.
    pub fn revalidate(&self, bundle: &TrustBundle, now: OffsetDateTime) -> Result<Self, Error> {
        Self::new(self.chain.to_vec(), Arc::clone(&self.signer), bundle, now)
    }
}

impl fmt::Debug for IssuerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerCredentials")
            .field("subject", &self.subject)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("chain_len", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Splits a PEM file into certificates; anything but `CERTIFICATE` blocks is an error.
pub fn parse_chain_pem(chain_pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let blocks = pem::parse_many(chain_pem).map_err(|e| {
        Error::InvalidIssuer(IssuerProblem::Pem {
            reason: e.to_string(),
        })
    })?;
    if blocks.len() != chain_pem.matches("-----BEGIN ").count() {
        return Err(Error::InvalidIssuer(IssuerProblem::PemIncomplete));
    }
    if blocks.is_empty() {
        return Err(Error::InvalidIssuer(IssuerProblem::EmptyChain));
    }
    blocks
        .into_iter()
        .enumerate()
        .map(|(i, block)| {
            if block.tag() == "CERTIFICATE" {
                Ok(CertificateDer::from(block.into_contents()))
            } else {
                Err(Error::InvalidIssuer(IssuerProblem::NotCertificate {
                    index: i,
                    label: block.tag().to_owned(),
                }))
            }
        })
        .collect()
}

fn validate(
    chain: Vec<CertificateDer<'static>>,
    signer: Arc<dyn Signer>,
    bundle: &TrustBundle,
    now: OffsetDateTime,
) -> Result<IssuerCredentials, IssuerProblem> {
    if chain.is_empty() {
        return Err(IssuerProblem::EmptyChain);
    }
    let mut bounds = Vec::with_capacity(chain.len() + 1);
    let mut parsed = Vec::with_capacity(chain.len());
    for (position, der) in chain.iter().enumerate() {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| IssuerProblem::Malformed {
                position,
                problem: MalformedCertificate::Der(e.into()),
            })?;
        if !rest.is_empty() {
            return Err(IssuerProblem::Malformed {
                position,
                problem: MalformedCertificate::TrailingData { count: rest.len() },
            });
        }
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        bounds.push(ValidityBound::new(
            CredentialRole::Issuer { position },
            not_before,
            not_after,
        ));
        parsed.push(cert);
    }
    let issuer = &parsed[0];

    // The key: a supported algorithm, and the issuer certificate's.
    let cert_key = meshid_policy::x509::public_key_kind(issuer.public_key());
    match cert_key {
        PublicKeyKind::Ecdsa(_) => {}
        other => return Err(IssuerProblem::UnsupportedKey { found: other }),
    }
    if cert_key != PublicKeyKind::Ecdsa(signer.algorithm())
        || issuer.public_key().subject_public_key.data.as_ref() != signer.public_key_raw()
    {
        return Err(IssuerProblem::KeyMismatch);
    }

    // A CA that may sign certificates.
    let is_ca = issuer
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(IssuerProblem::NotCa);
    }
    let cert_sign = issuer
        .key_usage()
        .ok()
        .flatten()
        .is_some_and(|ku| ku.value.key_cert_sign());
    if !cert_sign {
        return Err(IssuerProblem::NoKeyCertSign);
    }
    if let Ok(Some(eku)) = issuer.extended_key_usage() {
        let eku = eku.value;
        if !(eku.server_auth && eku.client_auth) {
            let missing = if eku.server_auth {
                "clientAuth"
            } else if eku.client_auth {
                "serverAuth"
            } else {
                "serverAuth and clientAuth"
            };
            return Err(IssuerProblem::Eku { missing });
        }
    }

    // Every certificate of the chain within its validity period.
    for bound in &bounds {
        if now < bound.not_before {
            return Err(IssuerProblem::NotYetValid {
                role: bound.role,
                not_before: bound.not_before,
                now,
            });
        }
        if now >= bound.not_after {
            return Err(IssuerProblem::Expired {
                role: bound.role,
                not_after: bound.not_after,
                now,
            });
        }
    }

    let subject = issuer.subject().to_string();
    let subject_der = issuer.subject().as_raw();
    let not_before = bounds[0].not_before;
    let not_after = bounds[0].not_after;

    // Leaves are written by rcgen, which writes the issuer's name back from what it read of
    // it; a name it would write differently would orphan every leaf.
    let leaf_signer = LeafSigner::new(&chain[0], Arc::clone(&signer)).map_err(|e| match e {
        rcgen::Error::CouldNotParseCertificate => IssuerProblem::SubjectNotReproducible {
            subject: subject.clone(),
        },
        other => IssuerProblem::Signing(SigningError::Encoding(other)),
    })?;
    // Chains to the bundle at `now`: a test leaf signed by the issuer key must verify through
    // the chain for both usages (webpki also checks the issuer's EKU and the signatures). It
    // names nothing: whether the issuer's name constraints permit a mesh's names is for the
    // CA that serves the mesh to check.
    let probe = probe_leaf(&leaf_signer, now, not_after, "meshid issuer probe", &[])?;
    let probe_issuer = X509Certificate::from_der(&probe)
        .map(|(_, leaf)| leaf.issuer().as_raw() == subject_der)
        .unwrap_or(false);
    if !probe_issuer {
        return Err(IssuerProblem::SubjectNotReproducible { subject });
    }
    drop(parsed);
    let mut anchor_index = 0;
    for usage in [Usage::Server, Usage::Client] {
        let peer = meshid_verify::verify_chain(
            bundle,
            &probe,
            &chain,
            now,
            usage,
            &VerifyOptions::default(),
        )
        .map_err(IssuerProblem::from_verify)?;
        anchor_index = peer.anchor_index();
    }
    let anchor = bundle
        .anchors()
        .nth(anchor_index)
        .ok_or(IssuerProblem::NotChained(meshid_verify::Error::Chain(
            // The index webpki's path ends in is one of the bundle's: unreachable.
            webpki::Error::UnknownIssuer,
        )))?;
    bounds.push(ValidityBound::new(
        CredentialRole::TrustAnchor {
            position: anchor_index,
        },
        anchor.not_before(),
        anchor.not_after(),
    ));
    let anchor = CertificateDer::from(anchor.der().to_vec());

    Ok(IssuerCredentials {
        chain: chain.into(),
        signer,
        leaf_signer,
        bounds,
        subject,
        not_before,
        not_after,
        anchor_index,
        anchor,
    })
}

/// A short-lived leaf signed by the issuer, used only to prove the chain verifies.
fn probe_leaf(
    leaf_signer: &LeafSigner,
    now: OffsetDateTime,
    issuer_not_after: OffsetDateTime,
    common_name: &str,
    sans: &[San],
) -> Result<CertificateDer<'static>, IssuerProblem> {
    let key = meshid_csr::KeyPair::generate(KeyAlgorithm::EcdsaP256)
        .map_err(|_| IssuerProblem::Signing(SigningError::Random))?;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let fields = LeafFields {
        serial: &[0x40; 16],
        not_before: now - time::Duration::minutes(1),
        not_after: (now + time::Duration::minutes(1)).min(issuer_not_after),
        common_name,
        sans,
        key_algorithm: KeyAlgorithm::EcdsaP256,
        public_key: key.public_key_raw(),
    };
    leaf_signer
        .sign(&fields)
        .map(CertificateDer::from)
        .map_err(IssuerProblem::Signing)
}
