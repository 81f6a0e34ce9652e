//! Signatures made by trust-anchor keys that already verified, so each path built under a
//! bundle checks its issuer's signature once rather than on every leaf.
//!
//! A mesh's chains are leaf → issuer → anchor, and the issuer changes rarely: of the two
//! signatures webpki verifies per chain, the anchor's over the issuer is the same every time.
//! [`Remembering`] wraps each of webpki's algorithms; for a public key that is one of the
//! bundle's anchors it looks the exact (algorithms, key, message, signature) up by SHA-256
//! before verifying, and remembers it once it verified. Signature validity does not depend on
//! time, so a remembered signature is as good as a fresh check; anything else (a different
//! byte anywhere, another key, a signature that failed) is verified by ring as before.

use core::fmt;
use std::sync::{PoisonError, RwLock};

use ring::digest::{Context, SHA256};
use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// How many verified anchor signatures a bundle remembers (oldest forgotten first): one per
/// issuer in use, with room for rotations.
pub(crate) const CAPACITY: usize = 32;

type Fingerprint = [u8; 32];

/// The verified signatures made by a bundle's anchor keys.
pub(crate) struct AnchorSignatures {
    /// The `subjectPublicKey` bits of each anchor.
    anchor_keys: Vec<Vec<u8>>,
    verified: RwLock<Remembered>,
}

#[derive(Default)]
struct Remembered {
    fingerprints: Vec<Fingerprint>,
    /// Where the next one goes once `fingerprints` is full.
    next: usize,
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

    fn is_anchor_key(&self, public_key: &[u8]) -> bool {
        self.anchor_keys.iter().any(|key| key == public_key)
    }

    fn contains(&self, fingerprint: &Fingerprint) -> bool {
        let verified = self.verified.read().unwrap_or_else(PoisonError::into_inner);
        verified.fingerprints.contains(fingerprint)
    }

    fn insert(&self, fingerprint: Fingerprint) {
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.fingerprints.contains(&fingerprint) {
            return;
        }
        if verified.fingerprints.len() < CAPACITY {
            verified.fingerprints.push(fingerprint);
        } else {
            let next = verified.next;
            verified.fingerprints[next] = fingerprint;
            verified.next = (next + 1) % CAPACITY;
        }
    }

    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        let verified = self.verified.read().unwrap_or_else(PoisonError::into_inner);
        verified.fingerprints.len()
    }
}

/// One of webpki's algorithms, remembering what it verified for an anchor key.
pub(crate) struct Remembering<'a> {
    inner: &'static dyn SignatureVerificationAlgorithm,
    signatures: &'a AnchorSignatures,
}

impl Remembering<'_> {
    /// SHA-256 over everything the verdict depends on, each part length-prefixed.
    fn fingerprint(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Fingerprint {
        let mut context = Context::new(&SHA256);
        for part in [
            self.inner.public_key_alg_id().as_ref(),
            self.inner.signature_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut fingerprint = [0; 32];
        fingerprint.copy_from_slice(context.finish().as_ref());
        fingerprint
    }
}

impl SignatureVerificationAlgorithm for Remembering<'_> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        if !self.signatures.is_anchor_key(public_key) {
            return self.inner.verify_signature(public_key, message, signature);
        }
        let fingerprint = self.fingerprint(public_key, message, signature);
        if self.signatures.contains(&fingerprint) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        self.signatures.insert(fingerprint);
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

    /// Accepts the signature `b"good"` and counts its calls.
    #[derive(Debug)]
    struct Counting(AtomicUsize);

    static CALLS: Counting = Counting(AtomicUsize::new(0));

    impl SignatureVerificationAlgorithm for Counting {
        fn verify_signature(&self, _: &[u8], _: &[u8], sig: &[u8]) -> Result<(), InvalidSignature> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if sig == b"good" {
                Ok(())
            } else {
                Err(InvalidSignature)
            }
        }
        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            rustls_pki_types::alg_id::ECDSA_P256
        }
        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            rustls_pki_types::alg_id::ECDSA_SHA256
        }
        fn fips(&self) -> bool {
            false
        }
    }

    static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[&CALLS];

    fn calls() -> usize {
        CALLS.0.load(Ordering::SeqCst)
    }

    // One test, so the shared counter is read by one thread.
    #[test]
    fn only_verified_signatures_by_anchor_keys_are_remembered() {
        let signatures = AnchorSignatures::new(vec![b"anchor".to_vec()]);
        let algorithms = signatures.algorithms(ALGORITHMS);
        let alg = &algorithms[0];
        // It is the wrapped algorithm in all but its memory.
        assert_eq!(alg.public_key_alg_id(), CALLS.public_key_alg_id());
        assert_eq!(alg.signature_alg_id(), CALLS.signature_alg_id());
        assert_eq!(alg.fips(), CALLS.fips());
        assert!(
            format!("{alg:?}").starts_with("Remembering(Counting("),
            "{alg:?}"
        );
        let before = calls();

        // An anchor's signature is verified once, then remembered.
        alg.verify_signature(b"anchor", b"issuer tbs", b"good")
            .unwrap();
        alg.verify_signature(b"anchor", b"issuer tbs", b"good")
            .unwrap();
        assert_eq!(calls() - before, 1);

        // Any other message is verified afresh.
        alg.verify_signature(b"anchor", b"other tbs", b"good")
            .unwrap();
        assert_eq!(calls() - before, 2);

        // A failed signature is not remembered: it fails, and is checked, every time.
        for _ in 0..2 {
            assert!(
                alg.verify_signature(b"anchor", b"issuer tbs", b"bad")
                    .is_err()
            );
        }
        assert_eq!(calls() - before, 4);

        // Signatures by other keys (issuers over leaves) are never remembered.
        alg.verify_signature(b"issuer", b"leaf tbs", b"good")
            .unwrap();
        alg.verify_signature(b"issuer", b"leaf tbs", b"good")
            .unwrap();
        assert_eq!(calls() - before, 6);
        assert_eq!(signatures.remembered(), 2);

        // At capacity the oldest is forgotten first.
        for i in 0..CAPACITY {
            alg.verify_signature(b"anchor", format!("tbs {i}").as_bytes(), b"good")
                .unwrap();
        }
        assert_eq!(signatures.remembered(), CAPACITY);
        let after_fill = calls();
        alg.verify_signature(b"anchor", b"issuer tbs", b"good")
            .unwrap();
        assert_eq!(calls() - after_fill, 1, "the oldest was forgotten");
        alg.verify_signature(
            b"anchor",
            format!("tbs {}", CAPACITY - 1).as_bytes(),
            b"good",
        )
        .unwrap();
        assert_eq!(calls() - after_fill, 1, "the newest is still remembered");
    }
}
