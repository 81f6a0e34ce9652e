//! Minting trust anchors and issuers: for development, tests, and users without `step` or
//! cert-manager.

use core::fmt;
use core::time::Duration;

use meshid_csr::KeyPair;
use meshid_policy::KeyAlgorithm;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{CaCertificateProblem, Error, SigningError};

/// A CA certificate with its key: a trust anchor or an issuer.
pub struct CaCertificate {
    cert: CertificateDer<'static>,
    key: KeyPair,
    subject: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl CaCertificate {
    /// A CA certificate and its key from PEM, to sign with: the first `CERTIFICATE` block,
    /// which must be a CA (basicConstraints CA:TRUE), and an ECDSA P-256 or P-384 key
    /// (PKCS#8 or SEC1) that matches it. Validity is not checked here: the caller decides
    /// what to mint with it (see [`create_intermediate`]).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let bad = |problem: CaCertificateProblem| Error::InvalidCaCertificate { problem };
        let block = pem::parse(cert_pem).map_err(|e| {
            bad(CaCertificateProblem::NotPem {
                detail: e.to_string(),
            })
        })?;
        if block.tag() != "CERTIFICATE" {
            return Err(bad(CaCertificateProblem::NotCertificate {
                label: block.tag().to_owned(),
            }));
        }
        let cert = CertificateDer::from(block.into_contents());
        let key = KeyPair::from_pem(key_pem).map_err(|e| bad(CaCertificateProblem::Key(e)))?;
        Self::new(cert, key)
    }

    /// `cert` and `key`, checked: a CA certificate whose public key is `key`'s.
    fn new(cert: CertificateDer<'static>, key: KeyPair) -> Result<Self, Error> {
        let bad = |problem: CaCertificateProblem| Error::InvalidCaCertificate { problem };
        let (subject, not_before, not_after) = {
            let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
                .map_err(|e| bad(CaCertificateProblem::Malformed(e)))?;
            if !parsed.is_ca() {
                return Err(bad(CaCertificateProblem::NotCa));
            }
            if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                return Err(bad(CaCertificateProblem::KeyMismatch));
            }
            (
                parsed.subject().to_string(),
                parsed.validity().not_before.to_datetime(),
                parsed.validity().not_after.to_datetime(),
            )
        };
        Ok(Self {
            cert,
            key,
            subject,
            not_before,
            not_after,
        })
    }

    /// The certificate's subject, for logs.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The certificate.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.cert.to_vec()))
    }

    /// The key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The key as PKCS#8 PEM (write it with mode 0600).
    pub fn key_pem(&self) -> Zeroizing<String> {
        self.key.to_pkcs8_pem()
    }

    /// Takes the key.
    pub fn into_key(self) -> KeyPair {
        self.key
    }
}

impl fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificate")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What a CA certificate says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaOptions {
    /// The subject CN.
    pub common_name: String,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
    /// The key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// The pathLenConstraint (`None`: unconstrained).
    pub path_len: Option<u8>,
    /// Whether to add EKU serverAuth + clientAuth (cert-manager's Linkerd recipe does);
    /// without it the certificate has no EKU extension.
    pub server_and_client_eku: bool,
}

impl CaOptions {
    /// A trust anchor like `step certificate create root.linkerd.cluster.local --profile
    /// root-ca`: P-256, pathlen 1, valid for `validity` from `now` (step's default is 10 years).
    pub fn root(common_name: &str, now: OffsetDateTime, validity: Duration) -> Self {
        Self {
            common_name: common_name.to_owned(),
            not_before: now,
            not_after: now + validity,
            key_algorithm: KeyAlgorithm::EcdsaP256,
            path_len: Some(1),
            server_and_client_eku: false,
        }
    }

    /// An issuer (intermediate CA) for the mesh: P-256, pathlen 0, EKU serverAuth + clientAuth,
    /// valid for `validity` from `now` (cert-manager's Linkerd recipe uses 48h).
    pub fn issuer(common_name: &str, now: OffsetDateTime, validity: Duration) -> Self {
        Self {
            common_name: common_name.to_owned(),
            not_before: now,
            not_after: now + validity,
            key_algorithm: KeyAlgorithm::EcdsaP256,
            path_len: Some(0),
            server_and_client_eku: true,
        }
    }

    fn params(&self, rng: &SystemRandom) -> Result<CertificateParams, Error> {
        let Self {
            common_name,
            not_before,
            not_after,
            key_algorithm: _,
            path_len,
            server_and_client_eku,
        } = self;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name.as_str());
        params.distinguished_name = dn;
        params.not_before = *not_before;
        params.not_after = *not_after;
        params.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(*n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        if *server_and_client_eku {
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        let mut serial = [0u8; 16];
        rng.fill(&mut serial)
            .map_err(|_| Error::Signing(SigningError::Random))?;
        serial[0] &= 0x7f;
        serial[0] |= 0x40;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        Ok(params)
    }
}

/// Mints a self-signed trust anchor.
pub fn create_root(options: &CaOptions) -> Result<CaCertificate, Error> {
    let rng = SystemRandom::new();
    let key = KeyPair::generate(options.key_algorithm).map_err(Error::Csr)?;
    let cert = options
        .params(&rng)?
        .self_signed(&key)
        .map_err(|e| Error::Signing(SigningError::Encoding(e)))?;
    CaCertificate::new(cert.der().clone(), key)
}

/// Mints an intermediate CA signed by `parent`.
pub fn create_intermediate(
    parent: &CaCertificate,
    options: &CaOptions,
) -> Result<CaCertificate, Error> {
    let rng = SystemRandom::new();
    let key = KeyPair::generate(options.key_algorithm).map_err(Error::Csr)?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&parent.cert, &parent.key)
        .map_err(|e| Error::Signing(SigningError::Encoding(e)))?;
    let mut params = options.params(&rng)?;
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| Error::Signing(SigningError::Encoding(e)))?;
    CaCertificate::new(cert.der().clone(), key)
}
