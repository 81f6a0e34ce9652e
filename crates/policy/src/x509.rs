//! Classifying public keys found in X.509 structures (feature `x509`).

use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::{KeyAlgorithm, PublicKeyKind};

/// DER contents of the OID id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER contents of the OID secp256r1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER contents of the OID secp384r1 (1.3.132.0.34).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER contents of the OID id-Ed25519 (1.3.101.112).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// DER contents of the OID rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// What kind of key a SubjectPublicKeyInfo holds.
///
/// An EC key counts as P-256 or P-384 only when its curve parameter names that curve and its
/// point is an uncompressed point of the right length.
pub fn public_key_kind(spki: &SubjectPublicKeyInfo<'_>) -> PublicKeyKind {
    let alg = spki.algorithm.algorithm.as_bytes();
    if alg == OID_EC_PUBLIC_KEY {
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
            Some(oid) if oid.as_bytes() == OID_P256 && is_uncompressed(point, 32) => {
                PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256)
            }
            Some(oid) if oid.as_bytes() == OID_P384 && is_uncompressed(point, 48) => {
                PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384)
            }
            Some(oid) => PublicKeyKind::EcdsaOtherCurve(oid.to_id_string()),
            None => PublicKeyKind::EcdsaOtherCurve("(no named curve)".to_owned()),
        };
    }
    if alg == OID_ED25519 {
        return PublicKeyKind::Ed25519;
    }
    if alg == OID_RSA {
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

/// DER encodings that meshid's hand-written readers (the CSR walker, the leaf reader of chain
/// verification) compare against, kept in one place.
pub mod der {
    /// basicConstraints, 2.5.29.19.
    pub const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    /// keyUsage, 2.5.29.15.
    pub const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    /// extKeyUsage, 2.5.29.37.
    pub const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    /// subjectAltName, 2.5.29.17.
    pub const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    /// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
    pub const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    /// id-kp-clientAuth, 1.3.6.1.5.5.7.3.2.
    pub const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

    /// The DER of a P-256 SubjectPublicKeyInfo up to the 64 bytes of the point's coordinates:
    /// id-ecPublicKey, prime256v1, a BIT STRING holding an uncompressed point.
    pub const SPKI_P256_PREFIX: &[u8] = &[
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    /// The same for P-384 (secp384r1), up to the 96 bytes of the coordinates.
    pub const SPKI_P384_PREFIX: &[u8] = &[
        0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
        0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
    ];
}
