//! ECDSA key pairs: generated in-process, loaded from PKCS#8 or SEC1, zeroized on drop.
//!
//! Private key structures are read and written with the `der` crate: x509-parser reads
//! certificates and CSRs, not private keys, and rcgen writes neither PKCS#8 from SEC1 nor reads
//! SEC1.

use core::fmt;

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Sequence};
use meshid_policy::KeyAlgorithm;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::Error;
use crate::error::{KeyEncodingProblem, KeyPemProblem};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// An ECDSA key pair (P-256 or P-384) backed by ring.
///
/// The PKCS#8 encoding this type keeps is zeroized when it is dropped, and `Debug` never prints
/// key material. (ring's own in-memory key schedule is not zeroized by ring.)
pub struct KeyPair {
    algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    ring: EcdsaKeyPair,
    rng: SystemRandom,
}

impl KeyPair {
    /// Generates a fresh key pair from the operating system's random source.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let document = EcdsaKeyPair::generate_pkcs8(signing_algorithm(algorithm), &rng)
            .map_err(|_| Error::KeyGeneration)?;
        Self::from_pkcs8_parts(algorithm, Zeroizing::new(document.as_ref().to_vec()), rng)
    }

    /// Loads a PKCS#8 (`PRIVATE KEY`) DER key; the curve is read from the key itself.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let info = PrivateKeyInfo::from_der(der).map_err(|e| Error::KeyEncoding {
            format: "PKCS#8",
            problem: KeyEncodingProblem::Der(e),
        })?;
        if info.algorithm.oid == OID_RSA {
            return Err(Error::UnsupportedKey {
                found: "RSA".to_owned(),
            });
        }
        if info.algorithm.oid != OID_EC_PUBLIC_KEY {
            return Err(Error::UnsupportedKey {
                found: key_algorithm_name(info.algorithm.oid),
            });
        }
        let curve = info
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or(Error::KeyEncoding {
                format: "PKCS#8",
                problem: KeyEncodingProblem::NoNamedCurve,
            })?;
        let algorithm = algorithm_for_curve(curve)?;
        Self::from_pkcs8_parts(algorithm, Zeroizing::new(der.to_vec()), SystemRandom::new())
    }

    /// Loads a SEC1 (`EC PRIVATE KEY`, RFC 5915) DER key.
    ///
    /// The key must carry its curve (or the curve must be implied by the key length) and its
    /// public key, as OpenSSL writes them by default.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, Error> {
        let bad = |problem| Error::KeyEncoding {
            format: "SEC1",
            problem,
        };
        let key = EcPrivateKey::from_der(der).map_err(|e| bad(KeyEncodingProblem::Der(e)))?;
        if key.version != 1 {
            return Err(bad(KeyEncodingProblem::Version { found: key.version }));
        }
        let private = key.private_key.as_bytes();
        let algorithm = match key.parameters {
            Some(curve) => algorithm_for_curve(curve)?,
            None => match private.len() {
                32 => KeyAlgorithm::EcdsaP256,
                48 => KeyAlgorithm::EcdsaP384,
                len => return Err(bad(KeyEncodingProblem::NoCurve { len })),
            },
        };
        let public = key
            .public_key
            .and_then(|bits| bits.as_bytes())
            .ok_or_else(|| bad(KeyEncodingProblem::NoPublicKey))?;
        let pkcs8 = encode_pkcs8(algorithm, private, public)?;
        Self::from_pkcs8_parts(algorithm, pkcs8, SystemRandom::new())
    }

    /// Loads a PEM private key: `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1).
    ///
    /// `EC PARAMETERS` blocks (as `openssl ecparam -genkey` writes) are skipped. RSA and
    /// encrypted keys are refused with an error that says so.
    pub fn from_pem(pem_text: &str) -> Result<Self, Error> {
        let blocks = pem::parse_many(pem_text).map_err(|e| {
            Error::Pem(KeyPemProblem::Parse {
                detail: e.to_string(),
            })
        })?;
        for block in &blocks {
            match block.tag() {
                "EC PARAMETERS" => continue,
                "PRIVATE KEY" => return Self::from_pkcs8_der(block.contents()),
                "EC PRIVATE KEY" => return Self::from_sec1_der(block.contents()),
                "RSA PRIVATE KEY" => {
                    return Err(Error::UnsupportedKey {
                        found: "RSA".to_owned(),
                    });
                }
                "ENCRYPTED PRIVATE KEY" => return Err(Error::EncryptedKey),
                other => {
                    return Err(Error::Pem(KeyPemProblem::UnexpectedBlock {
                        label: other.to_owned(),
                    }));
                }
            }
        }
        Err(Error::Pem(KeyPemProblem::NoKey))
    }

    fn from_pkcs8_parts(
        algorithm: KeyAlgorithm,
        pkcs8: Zeroizing<Vec<u8>>,
        rng: SystemRandom,
    ) -> Result<Self, Error> {
        let ring =
            EcdsaKeyPair::from_pkcs8(signing_algorithm(algorithm), &pkcs8, &rng).map_err(|e| {
                Error::KeyRejected {
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            algorithm,
            pkcs8,
            ring,
            rng,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as an uncompressed EC point.
    pub fn public_key_raw(&self) -> &[u8] {
        self.ring.public_key().as_ref()
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(self)
    }

    /// The private key as PKCS#8 DER, for rustls. Handle with care: it is the secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The private key for rustls (`PrivateKeyDer::Pkcs8`); a copy of the secret.
    pub fn to_rustls_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()))
    }

    /// The private key as a PKCS#8 PEM (`PRIVATE KEY`), zeroized when dropped.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let block = pem::Pem::new("PRIVATE KEY", self.pkcs8.to_vec());
        Zeroizing::new(pem::encode(&block))
    }

    /// Signs `message` (ECDSA with SHA-256 for P-256, SHA-384 for P-384; ASN.1 DER signature).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.ring
            .sign(&self.rng, message)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| Error::Signing)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl rcgen::PublicKeyData for KeyPair {
    fn der_bytes(&self) -> &[u8] {
        self.public_key_raw()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen_algorithm(self.algorithm)
    }
}

impl rcgen::SigningKey for KeyPair {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.ring
            .sign(&self.rng, msg)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| rcgen::Error::RingUnspecified)
    }
}

/// The rcgen signature algorithm for certificates signed with a key of `alg`.
pub fn rcgen_algorithm(alg: KeyAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match alg {
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        _ => &rcgen::PKCS_ECDSA_P256_SHA256,
    }
}

fn signing_algorithm(alg: KeyAlgorithm) -> &'static EcdsaSigningAlgorithm {
    match alg {
        KeyAlgorithm::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        _ => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    }
}

fn algorithm_for_curve(curve: ObjectIdentifier) -> Result<KeyAlgorithm, Error> {
    if curve == OID_P256 {
        Ok(KeyAlgorithm::EcdsaP256)
    } else if curve == OID_P384 {
        Ok(KeyAlgorithm::EcdsaP384)
    } else {
        let name = match curve.to_string().as_str() {
            "1.3.132.0.35" => "P-521 ",
            "1.3.132.0.10" => "secp256k1 ",
            "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1 ",
            _ => "",
        };
        Err(Error::UnsupportedKey {
            found: format!("ECDSA on curve {name}({curve})"),
        })
    }
}

/// A private key algorithm by name, with its OID, for error messages.
fn key_algorithm_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        _ => return format!("with algorithm {oid}"),
    };
    format!("{name} ({oid})")
}

fn curve_oid(alg: KeyAlgorithm) -> ObjectIdentifier {
    match alg {
        KeyAlgorithm::EcdsaP384 => OID_P384,
        _ => OID_P256,
    }
}

/// Wraps a SEC1 private scalar and public point into PKCS#8 the way ring writes it (the inner
/// ECPrivateKey carries no curve parameters; the outer AlgorithmIdentifier does).
fn encode_pkcs8(
    alg: KeyAlgorithm,
    private: &[u8],
    public: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bad = |e: der::Error| Error::KeyEncoding {
        format: "SEC1",
        problem: KeyEncodingProblem::Der(e),
    };
    let inner = EcPrivateKey {
        version: 1,
        private_key: OctetStringRef::new(private).map_err(bad)?,
        parameters: None,
        public_key: Some(BitStringRef::from_bytes(public).map_err(bad)?),
    };
    let inner_der = Zeroizing::new(inner.to_der().map_err(bad)?);
    let curve = curve_oid(alg);
    let curve_der = curve.to_der().map_err(bad)?;
    let info = PrivateKeyInfo {
        version: 0,
        algorithm: AlgorithmIdentifier {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from_der(&curve_der).map_err(bad)?),
        },
        private_key: OctetStringRef::new(&inner_der).map_err(bad)?,
    };
    Ok(Zeroizing::new(info.to_der().map_err(bad)?))
}

/// RFC 5915 ECPrivateKey.
#[derive(Sequence)]
struct EcPrivateKey<'a> {
    version: u8,
    private_key: &'a OctetStringRef,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    parameters: Option<ObjectIdentifier>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    public_key: Option<BitStringRef<'a>>,
}

/// RFC 5280 AlgorithmIdentifier.
#[derive(Sequence)]
struct AlgorithmIdentifier<'a> {
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'a>>,
}

/// RFC 5208 PrivateKeyInfo (attributes and the v2 public key are not needed here and are
/// left unread by refusing trailing data only inside what is decoded).
#[derive(Sequence)]
struct PrivateKeyInfo<'a> {
    version: u8,
    algorithm: AlgorithmIdentifier<'a>,
    private_key: &'a OctetStringRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_sign_and_reload() {
        for alg in KeyAlgorithm::ALL {
            let key = KeyPair::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let reloaded = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
            assert_eq!(reloaded.public_key_raw(), key.public_key_raw());
            let sig = key.sign(b"hello").unwrap();
            let verify_alg: &dyn signature::VerificationAlgorithm = match alg {
                KeyAlgorithm::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
                _ => &signature::ECDSA_P256_SHA256_ASN1,
            };
            signature::UnparsedPublicKey::new(verify_alg, key.public_key_raw())
                .verify(b"hello", &sig)
                .unwrap();
        }
    }

    #[test]
    fn debug_redacts() {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let text = format!("{key:?}");
        assert!(text.contains("[redacted]"));
        assert!(!text.contains(&format!("{:?}", key.pkcs8_der())));
    }

    #[test]
    fn sec1_round_trip() {
        for (alg, curve) in [
            (KeyAlgorithm::EcdsaP256, OID_P256),
            (KeyAlgorithm::EcdsaP384, OID_P384),
        ] {
            let key = KeyPair::generate(alg).unwrap();
            // Re-encode the PKCS#8 key's inner ECPrivateKey as SEC1, with the curve named and
            // without it (then the key's length implies the curve).
            let info = PrivateKeyInfo::from_der(key.pkcs8_der()).unwrap();
            for parameters in [Some(curve), None] {
                let inner = EcPrivateKey::from_der(info.private_key.as_bytes()).unwrap();
                let sec1 = EcPrivateKey {
                    parameters,
                    ..inner
                }
                .to_der()
                .unwrap();
                let text = pem::encode(&pem::Pem::new("EC PRIVATE KEY", sec1));
                let loaded = KeyPair::from_pem(&text).unwrap();
                assert_eq!(loaded.algorithm(), alg, "{parameters:?}");
                assert_eq!(loaded.public_key_raw(), key.public_key_raw());
                assert_eq!(
                    loaded.pkcs8_der(),
                    key.pkcs8_der(),
                    "{alg:?} {parameters:?}"
                );
            }
        }
    }

    #[test]
    fn key_file_problems_are_typed() {
        assert_eq!(
            KeyPair::from_pem("").err(),
            Some(Error::Pem(KeyPemProblem::NoKey))
        );
        let csr_pem =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        let err = KeyPair::from_pem(csr_pem).unwrap_err();
        assert_eq!(
            err,
            Error::Pem(KeyPemProblem::UnexpectedBlock {
                label: "CERTIFICATE REQUEST".to_owned()
            })
        );
        assert_eq!(
            err.to_string(),
            "invalid PEM: unexpected PEM block 'CERTIFICATE REQUEST' where a private key was expected"
        );

        // A SEC1 key without its public key: openssl can re-export it with one.
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let info = PrivateKeyInfo::from_der(key.pkcs8_der()).unwrap();
        let inner = EcPrivateKey::from_der(info.private_key.as_bytes()).unwrap();
        let sec1 = EcPrivateKey {
            public_key: None,
            ..inner
        }
        .to_der()
        .unwrap();
        let err = KeyPair::from_sec1_der(&sec1).unwrap_err();
        assert_eq!(
            err,
            Error::KeyEncoding {
                format: "SEC1",
                problem: KeyEncodingProblem::NoPublicKey
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid SEC1 private key: the key does not embed its public key; re-export it with \
             `openssl ec -in key.pem -out key.pem`"
        );
    }
}
