//! Verification at its edges: an anchor valid from or until exactly now, a path with exactly
//! the most intermediates allowed, and peers that differ only in the anchor their path ends in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers outside #[test] fns.

mod common;

use common::{Ca, Leaf, NOT_AFTER, NOT_BEFORE, NOW, Pki};
use meshid_verify::{Error, TrustBundle, Usage, VerifiedPeer, VerifyOptions, verify_chain};
use rustls_pki_types::CertificateDer;

/// `leaf` under `issuer`, against an anchor holding only `root`, at `now`.
fn verify_at(
    root: &Ca,
    issuer: &Ca,
    leaf: &CertificateDer<'_>,
    now: time::OffsetDateTime,
) -> Result<VerifiedPeer, Error> {
    let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();
    verify_chain(
        &bundle,
        leaf,
        std::slice::from_ref(&issuer.der),
        now,
        Usage::Server,
        &VerifyOptions::default(),
    )
}

#[test]
fn an_anchor_is_valid_from_its_not_before_through_its_not_after() {
    let second = time::Duration::SECOND;
    // An anchor whose validity ends now, and one whose validity starts now.
    for (not_before, not_after) in [(NOT_BEFORE, NOW), (NOW, NOT_AFTER)] {
        let root = Ca::root("root", not_before, not_after);
        let issuer = root.intermediate("issuer");
        let leaf = issuer.leaf(&Leaf::default());
        verify_at(&root, &issuer, &leaf, NOW).unwrap();

        let bundle = TrustBundle::from_der(vec![root.der.clone()]).unwrap();
        let anchor = bundle.anchor(0).unwrap();
        assert!(anchor.is_valid_at(NOW));
        assert!(anchor.is_valid_at(not_before));
        assert!(anchor.is_valid_at(not_after));
        assert!(!anchor.is_valid_at(not_before - second));
        assert!(!anchor.is_valid_at(not_after + second));
    }

    // A second later the first is expired.
    let root = Ca::root("root", NOT_BEFORE, NOW);
    let issuer = root.intermediate("issuer");
    let leaf = issuer.leaf(&Leaf::default());
    let e = verify_at(&root, &issuer, &leaf, NOW + second).unwrap_err();
    assert!(matches!(e, Error::AnchorExpired { index: 0, .. }), "{e:?}");
}

#[test]
fn exactly_the_most_intermediates_allowed_verifies() {
    let pki = Pki::new();
    let mut options = VerifyOptions::default();
    options.max_intermediates = Some(1);
    let peer = verify_chain(
        &pki.bundle(),
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &options,
    )
    .unwrap();
    assert_eq!(peer.chain().len(), 3);

    options.max_intermediates = Some(0);
    let e = verify_chain(
        &pki.bundle(),
        &pki.leaf,
        std::slice::from_ref(&pki.issuer.der),
        NOW,
        Usage::Server,
        &options,
    )
    .unwrap_err();
    assert_eq!(e, Error::TooManyIntermediates { found: 1, max: 0 });
}

#[test]
fn peers_ending_in_different_anchors_differ() {
    // The same root re-issued (same name and key): the same leaf and issuer verify under
    // either, at the same anchor index, but the paths end in different certificates.
    let pki = Pki::new();
    let renewed = pki.root.reissue(NOT_BEFORE, NOT_AFTER);
    let old = verify_at(&pki.root, &pki.issuer, &pki.leaf, NOW).unwrap();
    let new = verify_at(&renewed, &pki.issuer, &pki.leaf, NOW).unwrap();
    assert_eq!(old.anchor_index(), new.anchor_index());
    assert_eq!(old.chain()[..2], new.chain()[..2]);
    assert_ne!(old.chain()[2], new.chain()[2]);
    assert_ne!(old, new);
    assert_eq!(
        old,
        verify_at(&pki.root, &pki.issuer, &pki.leaf, NOW).unwrap()
    );
}
