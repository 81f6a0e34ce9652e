//! The mesh leaf profile, written by rcgen.
//!
//! Each issuer keeps one [`rcgen::Issuer`] (its name and key identifier, read once from its
//! certificate, and its key); a leaf is that issuer signing [`leaf_params`].

use std::cell::Cell;
use std::sync::Arc;

use meshid_policy::{KeyAlgorithm, San};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::error::SigningError;
use crate::signer::Signer;

/// What varies from leaf to leaf.
pub(crate) struct LeafFields<'a> {
    pub(crate) serial: &'a [u8],
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) common_name: &'a str,
    pub(crate) sans: &'a [San],
    pub(crate) key_algorithm: KeyAlgorithm,
    /// The subject public key: an uncompressed EC point.
    pub(crate) public_key: &'a [u8],
}

/// The Linkerd leaf profile as rcgen parameters: `CN=<identity>`, the SANs, KeyUsage
/// digitalSignature + keyEncipherment (critical), EKU serverAuth + clientAuth,
/// BasicConstraints CA:FALSE (critical), SubjectKeyIdentifier (SHA-256 of the key, truncated)
/// and AuthorityKeyIdentifier (the issuer's).
pub(crate) fn leaf_params(fields: &LeafFields<'_>) -> Result<CertificateParams, SigningError> {
    let LeafFields {
        serial,
        not_before,
        not_after,
        common_name,
        sans,
        key_algorithm: _,
        public_key: _,
    } = fields;
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, *common_name);
    let subject_alt_names = sans
        .iter()
        .map(|san| {
            let text = san.as_str().try_into().map_err(SigningError::Encoding)?;
            Ok(match san {
                San::Uri(_) => SanType::URI(text),
                _ => SanType::DnsName(text),
            })
        })
        .collect::<Result<_, SigningError>>()?;
    let mut params = CertificateParams::default();
    params.not_before = *not_before;
    params.not_after = *not_after;
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.distinguished_name = distinguished_name;
    params.subject_alt_names = subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

/// An issuer as rcgen signs with it: its certificate's name and key identifier, read once,
/// and its key.
pub(crate) struct LeafSigner {
    issuer: rcgen::Issuer<'static, IssuerKey>,
}

impl LeafSigner {
    /// Reads the name and key identifier of `certificate`, whose key `signer` holds.
    pub(crate) fn new(
        certificate: &CertificateDer<'_>,
        signer: Arc<dyn Signer>,
    ) -> Result<Self, rcgen::Error> {
        let issuer = rcgen::Issuer::from_ca_cert_der(certificate, IssuerKey(signer))?;
        Ok(Self { issuer })
    }

    /// Writes and signs a leaf.
    pub(crate) fn sign(&self, fields: &LeafFields<'_>) -> Result<Vec<u8>, SigningError> {
        let subject_key = SubjectKey {
            algorithm: fields.key_algorithm,
            point: fields.public_key,
        };
        let certificate = leaf_params(fields)?
            .signed_by(&subject_key, &self.issuer)
            .map_err(|e| match (e, SIGNER_ERROR.take()) {
                (rcgen::Error::RemoteKeyError, Some(signer)) => SigningError::Signer(signer),
                (e, _) => SigningError::Encoding(e),
            })?;
        Ok(certificate.der().to_vec())
    }
}

thread_local! {
    /// Why the issuer's [`Signer`] failed, for the caller of rcgen, which reports a failing
    /// key only as `RemoteKeyError`. rcgen signs on the calling thread.
    static SIGNER_ERROR: Cell<Option<crate::SignerError>> = const { Cell::new(None) };
}

/// The issuer's [`Signer`] as an rcgen signing key.
struct IssuerKey(Arc<dyn Signer>);

impl rcgen::PublicKeyData for IssuerKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_raw()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        meshid_csr::rcgen_algorithm(self.0.algorithm())
    }
}

impl rcgen::SigningKey for IssuerKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(message).map_err(|e| {
            SIGNER_ERROR.set(Some(e));
            rcgen::Error::RemoteKeyError
        })
    }
}

/// The key a leaf certifies.
struct SubjectKey<'a> {
    algorithm: KeyAlgorithm,
    point: &'a [u8],
}

impl rcgen::PublicKeyData for SubjectKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        meshid_csr::rcgen_algorithm(self.algorithm)
    }
}

#[cfg(test)]
mod tests {
    use meshid_csr::KeyPair;
    use time::macros::datetime;
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::SignerError;
    use crate::bootstrap::{CaOptions, create_intermediate, create_root};

    fn issuer(alg: KeyAlgorithm) -> crate::bootstrap::CaCertificate {
        let now = datetime!(2026-01-01 0:00 UTC);
        let year = core::time::Duration::from_secs(86400 * 365);
        let root = create_root(&CaOptions::root("root", now, 40 * year)).unwrap();
        let mut opts = CaOptions::issuer("issuer", now, 30 * year);
        opts.key_algorithm = alg;
        create_intermediate(&root, &opts).unwrap()
    }

    fn fields<'a>(sans: &'a [San], key: &'a KeyPair) -> LeafFields<'a> {
        LeafFields {
            serial: &[0x41; 16],
            not_before: datetime!(2026-06-01 11:59:40 UTC),
            not_after: datetime!(2050-06-02 12:00:20 UTC),
            common_name: "web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
            sans,
            key_algorithm: key.algorithm(),
            public_key: key.public_key_raw(),
        }
    }

    #[test]
    fn writes_the_leaf_profile_under_the_issuer() {
        for (issuer_alg, leaf_alg) in [
            (KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256),
            (KeyAlgorithm::EcdsaP384, KeyAlgorithm::EcdsaP256),
            (KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384),
        ] {
            let issuer = issuer(issuer_alg);
            let signer: Arc<dyn Signer> = Arc::new(KeyPair::from_pem(&issuer.key_pem()).unwrap());
            let writer = LeafSigner::new(issuer.der(), signer).unwrap();
            let key = KeyPair::generate(leaf_alg).unwrap();
            let sans = [
                San::Dns("web.emojivoto.serviceaccount.identity.linkerd.cluster.local".into()),
                San::Uri("spiffe://cluster.local/ns/emojivoto/sa/web".into()),
            ];
            let der = writer.sign(&fields(&sans, &key)).unwrap();
            let (rest, leaf) = X509Certificate::from_der(&der).unwrap();
            assert!(rest.is_empty());
            let (_, issuer_cert) = X509Certificate::from_der(issuer.der()).unwrap();
            assert_eq!(leaf.issuer().as_raw(), issuer_cert.subject().as_raw());
            assert_eq!(leaf.raw_serial(), [0x41; 16]);
            assert_eq!(
                leaf.validity().not_after.to_datetime(),
                datetime!(2050-06-02 12:00:20 UTC),
                "GeneralizedTime from 2050 on"
            );
            assert_eq!(
                leaf.public_key().subject_public_key.data.as_ref(),
                key.public_key_raw()
            );
            let sha384 = issuer_alg == KeyAlgorithm::EcdsaP384;
            assert_eq!(
                leaf.signature_algorithm.algorithm.to_id_string(),
                if sha384 {
                    "1.2.840.10045.4.3.3"
                } else {
                    "1.2.840.10045.4.3.2"
                }
            );
            leaf.verify_signature(Some(issuer_cert.public_key()))
                .unwrap();
        }
    }

    /// An issuer key that always fails.
    struct Broken(KeyPair);

    impl Signer for Broken {
        fn algorithm(&self) -> KeyAlgorithm {
            self.0.algorithm()
        }
        fn public_key_raw(&self) -> &[u8] {
            self.0.public_key_raw()
        }
        fn sign(&self, _: &[u8]) -> Result<Vec<u8>, SignerError> {
            Err(SignerError("the HSM is unplugged".to_owned()))
        }
    }

    #[test]
    fn a_failing_signer_is_reported_with_its_own_words() {
        let issuer = issuer(KeyAlgorithm::EcdsaP256);
        let signer = Arc::new(Broken(KeyPair::from_pem(&issuer.key_pem()).unwrap()));
        let writer = LeafSigner::new(issuer.der(), signer).unwrap();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let err = writer.sign(&fields(&[], &key)).unwrap_err();
        assert_eq!(
            err,
            SigningError::Signer(SignerError("the HSM is unplugged".to_owned()))
        );
        assert_eq!(
            err.to_string(),
            "the issuer key failed: the HSM is unplugged"
        );
    }

    #[test]
    fn a_san_rcgen_cannot_write_is_an_encoding_error() {
        let issuer = issuer(KeyAlgorithm::EcdsaP256);
        let signer = Arc::new(KeyPair::from_pem(&issuer.key_pem()).unwrap());
        let writer = LeafSigner::new(issuer.der(), signer).unwrap();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sans = [San::Dns("wéb.example".into())];
        let err = writer.sign(&fields(&sans, &key)).unwrap_err();
        assert!(matches!(err, SigningError::Encoding(_)), "{err:?}");
    }
}
