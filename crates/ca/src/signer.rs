//! The issuer's signing key, behind a trait so an HSM or KMS key can plug in.

use meshid_policy::KeyAlgorithm;

/// A private key that signs certificates for the issuer.
///
/// The default is an in-memory [`meshid_csr::KeyPair`]. An HSM- or KMS-backed key implements
/// this trait and is handed to [`crate::IssuerCredentials::new`]; the CA checks at load that its
/// public key is the issuer certificate's.
pub trait Signer: Send + Sync + 'static {
    /// The key's algorithm (it decides the certificate signature algorithm: ECDSA-SHA256 for
    /// P-256, ECDSA-SHA384 for P-384).
    fn algorithm(&self) -> KeyAlgorithm;

    /// The public key as an uncompressed EC point.
    fn public_key_raw(&self) -> &[u8];

    /// Signs `message`, returning an ASN.1 DER ECDSA signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A signing failure reported by a [`Signer`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignerError(pub String);

impl Signer for meshid_csr::KeyPair {
    fn algorithm(&self) -> KeyAlgorithm {
        Self::algorithm(self)
    }

    fn public_key_raw(&self) -> &[u8] {
        Self::public_key_raw(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Self::sign(self, message).map_err(|e| SignerError(e.to_string()))
    }
}
