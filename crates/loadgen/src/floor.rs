//! The cost no identity service can go below, measured with ring on this machine in the same
//! run: one ECDSA P-256 signature (the leaf), one verification (the CSR's proof of
//! possession) and, where tokens are validated offline, one ES256 verification (the token).
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::time::Instant;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};

use crate::Error;

/// About the size of a leaf's TBSCertificate (as in the issuance benchmark).
const TBS_LEN: usize = 420;
/// About the size of a projected token's signing input (header and claims, base64url).
const TOKEN_INPUT_LEN: usize = 700;
/// Operations per round.
const ITERATIONS: u32 = 2_000;
/// Rounds; the median counts.
const ROUNDS: usize = 5;

/// Per-operation times, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Floor {
    /// One ECDSA P-256 SHA-256 signature.
    pub sign_us: f64,
    /// One ECDSA P-256 SHA-256 verification (ASN.1 signature, as in a CSR).
    pub verify_us: f64,
    /// One ES256 verification (fixed-size signature, as in a JWT).
    pub token_verify_us: f64,
}

impl Floor {
    /// Measures the three operations: the median of five rounds of 2,000 each.
    pub fn measure() -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let crypto = |what: &str| Error::Setup {
            reason: format!("ring: {what} failed"),
        };
        let key = |alg: &'static signature::EcdsaSigningAlgorithm| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| crypto("keygen"))?;
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).map_err(|_| crypto("key parsing"))
        };
        let asn1 = key(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)?;
        let fixed = key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)?;
        let tbs = vec![0x5a; TBS_LEN];
        let input = vec![0x65; TOKEN_INPUT_LEN];
        let tbs_sig = asn1.sign(&rng, &tbs).map_err(|_| crypto("signing"))?;
        let token_sig = fixed.sign(&rng, &input).map_err(|_| crypto("signing"))?;
        let csr_key = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, asn1.public_key());
        let token_key =
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, fixed.public_key());

        let mut rounds = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            let timed = |f: &mut dyn FnMut() -> bool| -> Result<f64, Error> {
                let t = Instant::now();
                for _ in 0..ITERATIONS {
                    if !f() {
                        return Err(crypto("an operation"));
                    }
                }
                Ok(t.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS))
            };
            rounds[0].push(timed(&mut || {
                asn1.sign(&rng, std::hint::black_box(&tbs))
                    .map(std::hint::black_box)
                    .is_ok()
            })?);
            rounds[1].push(timed(&mut || {
                csr_key
                    .verify(std::hint::black_box(&tbs), tbs_sig.as_ref())
                    .is_ok()
            })?);
            rounds[2].push(timed(&mut || {
                token_key
                    .verify(std::hint::black_box(&input), token_sig.as_ref())
                    .is_ok()
            })?);
        }
        let [sign, verify, token] = rounds.map(|mut r| median(&mut r));
        Ok(Self {
            sign_us: sign,
            verify_us: verify,
            token_verify_us: token,
        })
    }

    /// `t_sign + t_verify`: issuing for a token checked elsewhere.
    pub fn issue_us(&self) -> f64 {
        self.sign_us + self.verify_us
    }

    /// `t_sign + t_verify + t_token_verify`: issuing for a token validated here.
    pub fn issue_with_token_us(&self) -> f64 {
        self.issue_us() + self.token_verify_us
    }
}

/// The median (the upper one of an even count); NaN for none.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
