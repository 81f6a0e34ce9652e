//! Signatures made by trust-anchor keys that already verified, so each path built under a
//! bundle checks its issuer's signature once rather than on every leaf.
//!
//! A mesh's chains are leaf → issuer → anchor, and the issuer changes rarely: of the two
//! signatures webpki verifies per chain, the anchor's over the issuer is the same every time.
//! [`Remembering`] wraps each of webpki's algorithms; for a public key that is one of the
//! bundle's anchors it looks for the exact (algorithms, key, message, signature) among those
//! that verified before, and remembers it once it verified. Signature validity does not depend
//! on time, so a remembered signature is as good as a fresh check; anything else (a different
//! byte anywhere, another key, a signature that failed) is verified by ring as before.

use core::fmt;
use std::sync::{PoisonError, RwLock};

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// How many verified anchor signatures a bundle remembers (oldest forgotten first): one per
/// issuer in use, with room for rotations.
pub(crate) const CAPACITY: usize = 32;

/// The longest signed message remembered: an issuer's TBSCertificate is well under 1 KiB.
/// Longer ones are verified every time, so a bundle holds at most `CAPACITY` times this.
pub(crate) const MAX_MESSAGE_LEN: usize = 4 * 1024;

/// The verified signatures made by a bundle's anchor keys.
pub(crate) struct AnchorSignatures {
    /// The `subjectPublicKey` bits of each anchor.
    anchor_keys: Vec<Vec<u8>>,
    verified: RwLock<Remembered>,
}

#[derive(Default)]
struct Remembered {
    signatures: Vec<Verified>,
    /// Where the next one goes once `signatures` is full.
    next: usize,
}

/// One signature that verified, exactly as it was verified.
#[derive(Clone, PartialEq, Eq)]
struct Verified {
    public_key_alg: AlgorithmIdentifier,
    signature_alg: AlgorithmIdentifier,
    /// The anchor whose key made it (an index into `anchor_keys`).
    anchor: usize,
    message: Box<[u8]>,
    signature: Box<[u8]>,
}

impl Verified {
    fn is(&self, other: &Signed<'_>) -> bool {
        self.anchor == other.anchor
            && self.public_key_alg == other.public_key_alg
            && self.signature_alg == other.signature_alg
            && *self.signature == *other.signature
            && *self.message == *other.message
    }
}

/// A signature to verify, by an anchor's key.
struct Signed<'a> {
    public_key_alg: AlgorithmIdentifier,
    signature_alg: AlgorithmIdentifier,
    anchor: usize,
    message: &'a [u8],
    signature: &'a [u8],
}

impl AnchorSignatures {
    pub(crate) fn new(anchor_keys: Vec<Vec<u8>>) -> Self {
        Self {
            anchor_keys,
            verified: RwLock::new(Remembered::default()),
        }
    }

    /// webpki's algorithms, each remembering signatures by this bundle's anchors.
    pub(crate) fn algorithms(
        &self,
        algorithms: &'static [&'static dyn SignatureVerificationAlgorithm],
    ) -> Vec<Remembering<'_>> {
        algorithms
            .iter()
            .map(|&inner| Remembering {
                inner,
                signatures: self,
            })
            .collect()
    }

    /// The anchor with this public key, if any.
    fn anchor(&self, public_key: &[u8]) -> Option<usize> {
        self.anchor_keys.iter().position(|key| key == public_key)
    }

    fn contains(&self, signed: &Signed<'_>) -> bool {
        let verified = self.verified.read().unwrap_or_else(PoisonError::into_inner);
        verified.signatures.iter().any(|v| v.is(signed))
    }

    fn insert(&self, signed: &Signed<'_>) {
        if signed.message.len() > MAX_MESSAGE_LEN {
            return;
        }
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.signatures.iter().any(|v| v.is(signed)) {
            return;
        }
        let entry = Verified {
            public_key_alg: signed.public_key_alg,
            signature_alg: signed.signature_alg,
            anchor: signed.anchor,
            message: signed.message.into(),
            signature: signed.signature.into(),
        };
        if verified.signatures.len() < CAPACITY {
            verified.signatures.push(entry);
        } else {
            let next = verified.next;
            verified.signatures[next] = entry;
            verified.next = (next + 1) % CAPACITY;
        }
    }

    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        let verified = self.verified.read().unwrap_or_else(PoisonError::into_inner);
        verified.signatures.len()
    }
}

/// One of webpki's algorithms, remembering what it verified for an anchor key.
pub(crate) struct Remembering<'a> {
    inner: &'static dyn SignatureVerificationAlgorithm,
    signatures: &'a AnchorSignatures,
}

impl SignatureVerificationAlgorithm for Remembering<'_> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let Some(anchor) = self.signatures.anchor(public_key) else {
            return self.inner.verify_signature(public_key, message, signature);
        };
        let signed = Signed {
            public_key_alg: self.inner.public_key_alg_id(),
            signature_alg: self.inner.signature_alg_id(),
            anchor,
            message,
            signature,
        };
        if self.signatures.contains(&signed) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        self.signatures.insert(&signed);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

impl fmt::Debug for Remembering<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Remembering").field(&self.inner).finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Accepts the signature `b"good"` and counts its calls; its algorithm identifiers are
    /// `ids`.
    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        ids: (AlgorithmIdentifier, AlgorithmIdentifier),
    }

    impl SignatureVerificationAlgorithm for Counting {
        fn verify_signature(&self, _: &[u8], _: &[u8], sig: &[u8]) -> Result<(), InvalidSignature> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if sig == b"good" {
                Ok(())
            } else {
                Err(InvalidSignature)
            }
        }
        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            self.ids.0
        }
        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            self.ids.1
        }
        fn fips(&self) -> bool {
            false
        }
    }

    /// Counting algorithms with these identifiers, one each, for one test.
    fn counting(
        ids: &[(AlgorithmIdentifier, AlgorithmIdentifier)],
    ) -> (
        &'static [&'static dyn SignatureVerificationAlgorithm],
        Vec<&'static Counting>,
    ) {
        let algs: Vec<&'static Counting> = ids
            .iter()
            .map(|&ids| {
                &*Box::leak(Box::new(Counting {
                    calls: AtomicUsize::new(0),
                    ids,
                }))
            })
            .collect();
        let dyns: Vec<&'static dyn SignatureVerificationAlgorithm> = algs
            .iter()
            .map(|&a| a as &'static dyn SignatureVerificationAlgorithm)
            .collect();
        (Box::leak(dyns.into_boxed_slice()), algs)
    }

    const P256_SHA256: (AlgorithmIdentifier, AlgorithmIdentifier) = (
        rustls_pki_types::alg_id::ECDSA_P256,
        rustls_pki_types::alg_id::ECDSA_SHA256,
    );
    const P256_SHA384: (AlgorithmIdentifier, AlgorithmIdentifier) = (
        rustls_pki_types::alg_id::ECDSA_P256,
        rustls_pki_types::alg_id::ECDSA_SHA384,
    );

    fn calls(alg: &Counting) -> usize {
        alg.calls.load(Ordering::SeqCst)
    }

    #[test]
    fn a_verified_anchor_signature_is_remembered() {
        let (algorithms, counters) = counting(&[P256_SHA256]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let alg = &signatures.algorithms(algorithms)[0];
        // It is the wrapped algorithm in all but its memory.
        assert_eq!(alg.public_key_alg_id(), counters[0].public_key_alg_id());
        assert_eq!(alg.signature_alg_id(), counters[0].signature_alg_id());
        assert_eq!(alg.fips(), counters[0].fips());
        for _ in 0..3 {
            alg.verify_signature(b"anchor", b"issuer tbs", b"good")
                .unwrap();
        }
        assert_eq!(calls(counters[0]), 1);
        assert_eq!(signatures.remembered(), 1);
    }

    #[test]
    fn the_key_covers_algorithms_public_key_message_and_signature() {
        let (algorithms, counters) = counting(&[P256_SHA256, P256_SHA384]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec(), b"other anchor".to_vec()]);
        let algs = signatures.algorithms(algorithms);
        let verify = |alg: usize, key: &[u8], message: &[u8], signature: &[u8]| {
            let _ = algs[alg].verify_signature(key, message, signature);
        };
        verify(0, b"anchor", b"issuer tbs", b"good");
        // The same verdict asked again: remembered.
        verify(0, b"anchor", b"issuer tbs", b"good");
        assert_eq!(calls(counters[0]), 1);
        // Any one part different is verified afresh: the message, the key...
        verify(0, b"anchor", b"issuer tbs!", b"good");
        verify(0, b"other anchor", b"issuer tbs", b"good");
        assert_eq!(calls(counters[0]), 3);
        // ...the algorithms (the same key, message and signature under another digest)...
        verify(1, b"anchor", b"issuer tbs", b"good");
        assert_eq!(calls(counters[1]), 1);
        // ...and the signature: another encoding of a valid signature is checked too.
        let (algorithms, counters) = counting(&[P256_SHA256]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let alg = &signatures.algorithms(algorithms)[0];
        alg.verify_signature(b"anchor", b"issuer tbs", b"good")
            .unwrap();
        assert!(
            alg.verify_signature(b"anchor", b"issuer tbs", b"good ")
                .is_err()
        );
        assert_eq!(calls(counters[0]), 2);
    }

    #[test]
    fn a_failed_signature_is_never_remembered() {
        let (algorithms, counters) = counting(&[P256_SHA256]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let alg = &signatures.algorithms(algorithms)[0];
        for _ in 0..3 {
            assert!(
                alg.verify_signature(b"anchor", b"issuer tbs", b"bad")
                    .is_err()
            );
        }
        assert_eq!(calls(counters[0]), 3, "checked, and failed, every time");
        assert_eq!(signatures.remembered(), 0);
    }

    #[test]
    fn signatures_by_other_keys_are_never_remembered() {
        // Issuers' signatures over leaves: every leaf is new, nothing to gain.
        let (algorithms, counters) = counting(&[P256_SHA256]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let alg = &signatures.algorithms(algorithms)[0];
        for _ in 0..2 {
            alg.verify_signature(b"issuer", b"leaf tbs", b"good")
                .unwrap();
        }
        assert_eq!(calls(counters[0]), 2);
        assert_eq!(signatures.remembered(), 0);
    }

    #[test]
    fn long_messages_are_verified_every_time() {
        let (algorithms, counters) = counting(&[P256_SHA256]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let alg = &signatures.algorithms(algorithms)[0];
        let long = vec![0x5a; MAX_MESSAGE_LEN + 1];
        for _ in 0..2 {
            alg.verify_signature(b"anchor", &long, b"good").unwrap();
        }
        assert_eq!(calls(counters[0]), 2);
        assert_eq!(signatures.remembered(), 0);
        let longest = vec![0x5a; MAX_MESSAGE_LEN];
        for _ in 0..2 {
            alg.verify_signature(b"anchor", &longest, b"good").unwrap();
        }
        assert_eq!(calls(counters[0]), 3);
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest_first() {
        let (algorithms, counters) = counting(&[P256_SHA256]);
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let alg = &signatures.algorithms(algorithms)[0];
        let tbs = |i: usize| format!("tbs {i}").into_bytes();
        for i in 0..CAPACITY + 1 {
            alg.verify_signature(b"anchor", &tbs(i), b"good").unwrap();
        }
        assert_eq!(signatures.remembered(), CAPACITY);
        let before = calls(counters[0]);
        alg.verify_signature(b"anchor", &tbs(CAPACITY), b"good")
            .unwrap();
        assert_eq!(calls(counters[0]), before, "the newest is remembered");
        alg.verify_signature(b"anchor", &tbs(0), b"good").unwrap();
        assert_eq!(calls(counters[0]), before + 1, "the oldest was forgotten");
        assert_eq!(signatures.remembered(), CAPACITY);
    }
}
