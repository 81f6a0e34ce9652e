//! Issuance benchmarks: the ring floor, CSR building, certify, and chain verification.
//!
//! Inputs are deterministic: a fixed PKI minted at a fixed time, the same CSR for every
//! `ca/certify` iteration, and one leaf for every `verify/chain` iteration. Targets are ratios
//! against the floor measured in the same run (see BENCHMARKS.md):
//! `ca/certify` >= 0.88 x 1/(sign + verify), `verify/chain` >= 1.8 x 1/(2 verify),
//! `verify/chain_cold` >= 0.93 x 1/(2 verify).
//! `verify/chain` runs on a warm bundle, which remembers its anchor's signature over the
//! issuer; `verify/chain_cold` verifies with a bundle that has verified nothing yet.

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use meshid::ca::Ca;
use meshid::ca::bootstrap::{CaOptions, create_intermediate, create_root};
use meshid::csr::{Csr, CsrParams, KeyPair};
use meshid::policy::{IssuancePolicy, KeyAlgorithm, Mesh, SanMode, ServiceAccount};
use meshid::verify::{TrustBundle, Usage, VerifyOptions};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const IDENTITY: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
/// About the size of the signed part (TBSCertificate) of a mesh leaf.
const MESSAGE_LEN: usize = 420;

struct Fixture {
    bundle: TrustBundle,
    ca: Ca,
    sa: ServiceAccount,
    csr: Vec<u8>,
}

fn fixture() -> Fixture {
    let day = Duration::from_secs(86_400);
    let start = datetime!(2026-01-01 0:00 UTC);
    let root = create_root(&CaOptions::root(
        "root.linkerd.cluster.local",
        start,
        3650 * day,
    ))
    .expect("root");
    let issuer = create_intermediate(
        &root,
        &CaOptions::issuer("identity.linkerd.cluster.local", start, 365 * day),
    )
    .expect("issuer");
    let bundle = TrustBundle::from_pem(root.pem().as_bytes()).expect("bundle");
    let ca = Ca::new(Mesh::default(), IssuancePolicy::default(), bundle.clone()).expect("ca");
    ca.load_issuer_pem(&issuer.pem(), &issuer.key_pem(), NOW)
        .expect("issuer loads");
    let sa = ServiceAccount::new("emojivoto", "web").expect("sa");
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let params = CsrParams::for_service_account(ca.mesh(), &sa, SanMode::Dns).expect("params");
    let csr = Csr::build(&key, &params).expect("csr").into_der();
    Fixture {
        bundle,
        ca,
        sa,
        csr,
    }
}

fn floor(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("pkcs8");
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
    let message = vec![0x5a; MESSAGE_LEN];
    let sig = key.sign(&rng, &message).expect("sign");
    let public = key.public_key().as_ref().to_vec();

    let mut group = c.benchmark_group("floor");
    group.bench_function("ecdsa_p256_sign", |b| {
        b.iter(|| key.sign(&rng, black_box(&message)).expect("sign"))
    });
    group.bench_function("ecdsa_p256_verify", |b| {
        b.iter(|| {
            signature::UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_ASN1,
                black_box(&public),
            )
            .verify(black_box(&message), black_box(sig.as_ref()))
            .expect("verify")
        })
    });
    group.finish();
}

fn csr(c: &mut Criterion) {
    let sa = ServiceAccount::new("emojivoto", "web").expect("sa");
    let params =
        CsrParams::for_service_account(&Mesh::default(), &sa, SanMode::Dns).expect("params");
    let mut group = c.benchmark_group("csr");
    group.bench_function("keygen_and_build", |b| {
        b.iter(|| {
            let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
            Csr::build(&key, black_box(&params)).expect("csr")
        })
    });
    group.finish();
}

fn ca(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("ca");
    group.bench_function("certify", |b| {
        b.iter(|| {
            f.ca.certify(black_box(&f.sa), black_box(&f.csr), NOW)
                .expect("certify")
        })
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    let f = fixture();
    let certified = f.ca.certify(&f.sa, &f.csr, NOW).expect("certify");
    let options = VerifyOptions::default();
    let verify = |bundle: &TrustBundle| {
        meshid::verify::verify_identity(
            bundle,
            black_box(&certified.leaf),
            black_box(&certified.chain),
            NOW,
            Usage::Server,
            IDENTITY,
            &options,
        )
        .expect("verify")
    };
    let mut group = c.benchmark_group("verify");
    group.bench_function("chain", |b| b.iter(|| verify(&f.bundle)));
    // A bundle that has verified nothing yet (the first chain after a bundle or issuer
    // change): both signatures are checked. Making the bundle is not timed.
    let anchors: Vec<_> = f.bundle.anchors().map(|a| a.der().clone()).collect();
    group.bench_function("chain_cold", |b| {
        b.iter_batched(
            || TrustBundle::from_der(anchors.clone()).expect("bundle"),
            // Dropped after the timing, with the bundle.
            |bundle| (verify(&bundle), bundle),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, floor, csr, ca, verify);
criterion_main!(benches);
