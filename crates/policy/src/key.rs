//! Key algorithms.

use core::fmt;
use core::str::FromStr;

use crate::Error;

/// A key algorithm that meshid issues certificates for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 (secp256r1) with SHA-256: the default, and what Linkerd proxies use.
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 (secp384r1) with SHA-384: opt-in.
    EcdsaP384,
}

impl KeyAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 2] = [Self::EcdsaP256, Self::EcdsaP384];
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ECDSA P-256",
            Self::EcdsaP384 => "ECDSA P-384",
        })
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ecdsa-p256" | "ecdsa p-256" => Ok(Self::EcdsaP256),
            "p384" | "p-384" | "ecdsa-p384" | "ecdsa p-384" => Ok(Self::EcdsaP384),
            _ => Err(Error::InvalidKeyAlgorithm {
                input: s.to_owned(),
            }),
        }
    }
}

/// The public key found in a CSR or certificate, as far as policy needs to know it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicKeyKind {
    /// An elliptic-curve key on a curve meshid supports.
    Ecdsa(KeyAlgorithm),
    /// An elliptic-curve key on another curve, named by its OID (dotted form).
    EcdsaOtherCurve(String),
    /// An Ed25519 key.
    Ed25519,
    /// An RSA key of this many modulus bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// Any other key type, named by its algorithm OID (dotted form).
    Other(String),
}

impl PublicKeyKind {
    /// The supported algorithm, if this is one.
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        match self {
            Self::Ecdsa(alg) => Some(*alg),
            _ => None,
        }
    }

    /// Whether this is an ECDSA key (on any curve).
    pub fn is_ecdsa(&self) -> bool {
        matches!(self, Self::Ecdsa(_) | Self::EcdsaOtherCurve(_))
    }
}

impl fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ecdsa(alg) => alg.fmt(f),
            Self::EcdsaOtherCurve(oid) => write!(f, "ECDSA on curve {oid}"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::Other(oid) => write!(f, "key algorithm {oid}"),
        }
    }
}
