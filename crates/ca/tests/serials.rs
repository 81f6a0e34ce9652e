//! Serial numbers are random, positive, at least 64 bits, and unique.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;

use meshid_policy::{KeyAlgorithm, SanMode};
use support::*;

#[test]
fn serials_are_unique_over_100_000_issuances() {
    let pki = Pki::new();
    let (_, csr) = csr_for(&web(), SanMode::Dns, KeyAlgorithm::EcdsaP256);
    let mut seen = HashSet::with_capacity(100_000);
    for _ in 0..100_000 {
        let certified = pki.ca.certify(&web(), &csr, NOW).unwrap();
        assert!(certified.serial[0] & 0x80 == 0, "serial must be positive");
        assert!(
            seen.insert(certified.serial),
            "duplicate serial {:x?}",
            certified.serial
        );
    }
    assert_eq!(seen.len(), 100_000);
}
