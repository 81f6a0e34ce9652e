//! The Rust `spiffe` crate, a real Workload API client, against this server: an `X509Source`
//! gets the SVID and the bundle, then sees a renewal and a trust-anchor rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use spiffe::{TrustDomain, X509Source};
use support::*;

async fn source(served: &Served) -> X509Source {
    tokio::time::timeout(
        STEP,
        X509Source::builder().endpoint(served.endpoint()).build(),
    )
    .await
    .expect("the source starts in time")
    .expect("the source starts")
}

fn authorities(source: &X509Source) -> Vec<Vec<u8>> {
    let td = TrustDomain::new("cluster.local").unwrap();
    let bundles = source.bundle_set().unwrap();
    let bundle = bundles.get(&td).expect("a bundle for cluster.local");
    bundle
        .authorities()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect()
}

#[tokio::test]
async fn an_x509_source_gets_the_svid_and_the_bundle() {
    let workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let source = source(&served).await;

    let svid = source.svid().unwrap();
    assert_eq!(svid.spiffe_id().to_string(), WEB_SPIFFE);
    let ours = workload.client.credentials().snapshot().unwrap();
    let chain: Vec<&[u8]> = svid.cert_chain().iter().map(|c| c.as_ref()).collect();
    let want: Vec<&[u8]> = ours.chain().iter().map(|c| c.as_ref()).collect();
    assert_eq!(chain, want, "leaf first, then the issuer");
    assert_eq!(svid.private_key().as_ref(), ours.private_key_pkcs8());
    assert_eq!(authorities(&source), vec![workload.root.der().to_vec()]);

    source.shutdown().await;
    served.stop().await;
}

#[tokio::test]
async fn an_x509_source_sees_a_renewal_and_an_anchor_rotation() {
    let mut workload = Workload::certified().await;
    let served = Served::start(&workload).await;
    let source = source(&served).await;
    let mut updates = source.updated();
    let first_leaf = source.svid().unwrap().leaf().as_ref().to_vec();

    // A renewal: a new key and leaf reach the source.
    workload.client.certify_once().await.unwrap();
    tokio::time::timeout(STEP, updates.changed())
        .await
        .unwrap()
        .unwrap();
    let renewed = source.svid().unwrap();
    assert_ne!(renewed.leaf().as_ref(), first_leaf.as_slice());
    let ours = workload.client.credentials().snapshot().unwrap();
    assert_eq!(renewed.leaf().as_ref(), ours.chain()[0].as_ref());

    // Anchor rotation, add then remove: the new anchor joins the bundle...
    let new_root = root("root-2.linkerd.cluster.local");
    let credentials = workload.client.credentials();
    let both = bundle_of(&[&workload.root, &new_root]);
    credentials.set_trust_bundle(both.clone());
    tokio::time::timeout(STEP, updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        authorities(&source),
        vec![workload.root.der().to_vec(), new_root.der().to_vec()]
    );
    // ...the CA moves to an issuer under it and the workload renews onto it...
    workload.ca.set_trust_bundle(both, now()).unwrap();
    let new_issuer = issuer(&new_root);
    workload
        .ca
        .load_issuer_pem(&new_issuer.pem(), &new_issuer.key_pem(), now())
        .unwrap();
    workload.client.certify_once().await.unwrap();
    tokio::time::timeout(STEP, updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        source.svid().unwrap().cert_chain()[1].as_ref(),
        new_issuer.der().as_ref()
    );
    // ...and the old anchor leaves.
    credentials.set_trust_bundle(bundle_of(&[&new_root]));
    tokio::time::timeout(STEP, updates.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(authorities(&source), vec![new_root.der().to_vec()]);

    source.shutdown().await;
    served.stop().await;
}
