//! Classifying the public keys x509-parser reads: only named P-256 and P-384 curves with
//! uncompressed points of the right length count as meshid's algorithms.
//!
//! The keys that rcgen cannot make were made once with OpenSSL 3 and are kept here as PEM:
//!
//! ```text
//! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl pkey -pubout
//! openssl ecparam -name prime256v1 -genkey -noout -out p256.key
//! openssl ec -in p256.key -pubout -conv_form compressed    # and: -conv_form hybrid,
//! openssl ec -in p256.key -pubout -param_enc explicit      #      explicit curve parameters
//! openssl ecparam -name secp384r1 -genkey -noout | openssl ec -pubout -conv_form compressed
//! openssl ecparam -name secp256k1 -genkey -noout | openssl ec -pubout
//! openssl genpkey -algorithm ed448 | openssl pkey -pubout
//! ```

#![allow(clippy::unwrap_used)]

use meshid_policy::x509::public_key_kind;
use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

const RSA_2048: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6RL2uDCBhH4WwEwxxPQp
KtNYXdVTJTYyFFxCG71De8wQX7rsR5ZOIEIroVPrtNzZBw669FtNJM08RJKvsHtG
d+azopGQz+7VHnUVd7wPUdOorXue7EcqqV9PrfjAJenw/HuK6oi28OAtmWybQrbS
8s2BUx7cgCW/nfJBPsj0oIu+OTpNoVBBaL2BJynqCG1F147I1xb2GXg5nfnKUCiM
xomzopb9T+YlimW2cQGsaXrsVvogOOIebzkwF9y7GNcbX/xDcqOJHWSQeOuLjV0R
YuupVq3cbn6ZOfkk8Wyu4tPRNoP9GW7+p3tTQdcYGkiT015Qrqqsf8W/ormI/BaV
EQIDAQAB
-----END PUBLIC KEY-----";

const P256_COMPRESSED: &str = "-----BEGIN PUBLIC KEY-----
MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAD2ZP0p1SAx9MBXHsziqWm4Qs6hIb7
vpRwY0nhtYvU/JA=
-----END PUBLIC KEY-----";

/// The same P-256 point in hybrid form: 65 bytes, like an uncompressed point, but tagged 0x07.
const P256_HYBRID: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAH2ZP0p1SAx9MBXHsziqWm4Qs6hIb7
vpRwY0nhtYvU/JASKryuKLVnA6OdFULoBYfVRRnjtkGnw8fWZFOy9nfBGw==
-----END PUBLIC KEY-----";

/// The same P-256 key with explicit curve parameters instead of a named curve.
const P256_EXPLICIT: &str = "-----BEGIN PUBLIC KEY-----
MIIBSzCCAQMGByqGSM49AgEwgfcCAQEwLAYHKoZIzj0BAQIhAP////8AAAABAAAA
AAAAAAAAAAAA////////////////MFsEIP////8AAAABAAAAAAAAAAAAAAAA////
///////////8BCBaxjXYqjqT57PrvVV2mIa8ZR0GsMxTsPY7zjw+J9JgSwMVAMSd
NgiG5wSTamZ44ROdJreBn36QBEEEaxfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5
RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9QIhAP////8AAAAA
//////////+85vqtpxeehPO5ysL8YyVRAgEBA0IABNmT9KdUgMfTAVx7M4qlpuEL
OoSG+76UcGNJ4bWL1PyQEiq8rii1ZwOjnRVC6AWH1UUZ47ZBp8PH1mRTsvZ3wRs=
-----END PUBLIC KEY-----";

const P384_COMPRESSED: &str = "-----BEGIN PUBLIC KEY-----
MEYwEAYHKoZIzj0CAQYFK4EEACIDMgADyEfRs2eVaF1ka3I2ytV84NNzZahGIiT7
FrhomG9QqfGAlGGPp0K/OgzTNlaiOm+d
-----END PUBLIC KEY-----";

/// secp256k1: an uncompressed point of P-256's length on another curve.
const SECP256K1: &str = "-----BEGIN PUBLIC KEY-----
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEvta3e7IvnBH5K2T5FZ5AchgFY9IOmh1x
RcDKO84gi8/jrxOqE+SeVx50+8tAyPF9aAZnWvY518Ax5xSsWewWwQ==
-----END PUBLIC KEY-----";

const ED448: &str = "-----BEGIN PUBLIC KEY-----
MEMwBQYDK2VxAzoAQYKGNOoaEkfa4YEG492iS5qwrSXt+aJOnxtrN1TsiWJka6T4
AlFSAnqTr4sIzIwM4RsvqGTThwsA
-----END PUBLIC KEY-----";

fn kind_of_der(der: &[u8]) -> PublicKeyKind {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der).unwrap();
    assert!(rest.is_empty());
    public_key_kind(&spki)
}

fn kind_of_pem(pem: &str) -> PublicKeyKind {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(pem.label, "PUBLIC KEY");
    kind_of_der(&pem.contents)
}

fn generated(alg: &'static rcgen::SignatureAlgorithm) -> PublicKeyKind {
    kind_of_pem(&rcgen::KeyPair::generate_for(alg).unwrap().public_key_pem())
}

#[test]
fn meshid_keys() {
    assert_eq!(
        generated(&rcgen::PKCS_ECDSA_P256_SHA256),
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP256)
    );
    assert_eq!(
        generated(&rcgen::PKCS_ECDSA_P384_SHA384),
        PublicKeyKind::Ecdsa(KeyAlgorithm::EcdsaP384)
    );
}

#[test]
fn other_keys_are_named_by_kind() {
    assert_eq!(generated(&rcgen::PKCS_ED25519), PublicKeyKind::Ed25519);
    assert_eq!(kind_of_pem(RSA_2048), PublicKeyKind::Rsa { bits: 2048 });
    assert_eq!(
        kind_of_pem(ED448),
        PublicKeyKind::Other("1.3.101.113".to_owned())
    );
    assert_eq!(
        kind_of_pem(SECP256K1),
        PublicKeyKind::EcdsaOtherCurve("1.3.132.0.10".to_owned())
    );
    assert_eq!(
        kind_of_pem(P256_EXPLICIT),
        PublicKeyKind::EcdsaOtherCurve("(no named curve)".to_owned())
    );
}

#[test]
fn a_named_curve_with_a_point_not_in_uncompressed_form_is_not_accepted_as_that_curve() {
    for (pem, oid) in [
        (P256_COMPRESSED, "1.2.840.10045.3.1.7"),
        (P256_HYBRID, "1.2.840.10045.3.1.7"),
        (P384_COMPRESSED, "1.3.132.0.34"),
    ] {
        assert_eq!(
            kind_of_pem(pem),
            PublicKeyKind::EcdsaOtherCurve(oid.to_owned())
        );
    }
}
