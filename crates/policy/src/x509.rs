//! Classifying public keys found in X.509 structures (feature `x509`).

use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::{KeyAlgorithm, PublicKeyKind};

/// What kind of key a SubjectPublicKeyInfo holds.
///
/// An EC key counts as P-256 or P-384 only when its curve parameter names that curve and its
/// point is an uncompressed point of the right length.
pub fn public_key_kind(spki: &SubjectPublicKeyInfo<'_>) -> PublicKeyKind {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        // `as_oid` reads any element's content as an OID, so explicit curve parameters (a
        // SEQUENCE) must be told apart by their tag first.
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .filter(|p| p.tag() == x509_parser::asn1_rs::Tag::Oid)
            .and_then(|p| p.as_oid().ok());
        let point = spki.subject_public_key.data.as_ref();
        return match curve {
            Some(oid) if oid == OID_EC_P256 && is_uncompressed(point, 32) => {
                PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256)
            }
            Some(oid) if oid == OID_NIST_EC_P384 && is_uncompressed(point, 48) => {
                PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384)
            }
            Some(oid) => PublicKeyKind::EcdsaOtherCurve(oid.to_id_string()),
            None => PublicKeyKind::EcdsaOtherCurve("(no named curve)".to_owned()),
        };
    }
    if *alg == OID_SIG_ED25519 {
        return PublicKeyKind::Ed25519;
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
            _ => 0,
        };
        return PublicKeyKind::Rsa { bits };
    }
    PublicKeyKind::Other(spki.algorithm.algorithm.to_id_string())
}

fn is_uncompressed(point: &[u8], coordinate_len: usize) -> bool {
    point.len() == 1 + 2 * coordinate_len && point[0] == 0x04
}

fn modulus_bits(modulus: &[u8]) -> usize {
    let trimmed = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    // `trimmed` is non-empty and its first byte is non-zero.
    (trimmed.len() - 1) * 8 + (8 - trimmed[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0x01, 0]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
