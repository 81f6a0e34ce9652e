//! Issuer swaps under load: no failed request, every chain verifies, no leaf outlives its
//! issuer, and the swaps happen while the certify calls run: workers and swapper meet at
//! checkpoints, so each of the first swaps lands between two requests of every worker however
//! the threads are scheduled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshid_csr::{Csr, CsrParams, KeyPair};
use meshid_issuer::{Change, IssuerFolder, IssuerScheme, Reloader};
use meshid_policy::{KeyAlgorithm, SanMode, ServiceAccount};
use meshid_verify::{Usage, VerifyOptions};
use support::*;
use time::OffsetDateTime;

const REQUESTS: usize = 10_000;
const WORKERS: usize = 8;
const MIN_SWAPS: usize = 50;
const PER_WORKER: usize = REQUESTS / WORKERS;
/// How long the swapper waits for the workers to reach a checkpoint before calling them stuck.
const STALLED: Duration = Duration::from_secs(600);

/// Worker request `checkpoint(k)` is made after swap `k` and before swap `k + 1`.
fn checkpoint(k: usize) -> usize {
    k * PER_WORKER / MIN_SWAPS
}

#[test]
fn ten_thousand_certifies_across_fifty_issuer_swaps() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let now = START + Duration::from_secs(600);
    // Issuers shorter-lived than a leaf (24h), with different NotAfters, so every leaf is
    // clamped to the issuer that signed it.
    let mint = |i: usize| issuer(&root, START, Duration::from_secs(3600 + 60 * i as u64));
    let first = mint(0);
    let not_afters: Mutex<HashMap<Vec<u8>, OffsetDateTime>> = Mutex::new(HashMap::new());
    let not_after_of = |c: &meshid_ca::bootstrap::CaCertificate| {
        let (_, cert) = x509_parser::parse_x509_certificate(c.der()).unwrap();
        cert.validity().not_after.to_datetime()
    };
    not_afters
        .lock()
        .unwrap()
        .insert(first.der().to_vec(), not_after_of(&first));
    let kubelet = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
    let ca = ca(&[&root]);
    let mut reloader = Reloader::new(
        Arc::clone(&ca),
        IssuerFolder::new(kubelet.dir(), IssuerScheme::LinkerdTls),
        FixedClock(now),
    )
    .with_sink(meshid_issuer::CollectingSink::new());
    reloader.reload_now();
    let bundle = ca.trust_bundle();

    // A few CSRs, reused: the CA works per request either way.
    let sa = ServiceAccount::new("emojivoto", "web").unwrap();
    let csrs: Vec<Vec<u8>> = (0..16)
        .map(|_| {
            let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let params = CsrParams::for_service_account(ca.mesh(), &sa, SanMode::Dns).unwrap();
            Csr::build(&key, &params).unwrap().der().to_vec()
        })
        .collect();

    let done = AtomicBool::new(false);
    let served = AtomicUsize::new(0);
    // The issuer of every leaf, per worker, in order.
    let signers: Mutex<Vec<Vec<Vec<u8>>>> = Mutex::new(vec![Vec::new(); WORKERS]);
    let failures = AtomicUsize::new(0);
    let swaps = AtomicUsize::new(0);
    // Requests completed, per worker.
    let progress: Vec<AtomicUsize> = (0..WORKERS).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        let swapper = s.spawn(|| {
            let mut i = 1;
            // Keep swapping while requests run, and at least MIN_SWAPS times.
            while !done.load(Ordering::SeqCst) || i <= MIN_SWAPS {
                if i <= MIN_SWAPS {
                    // Swap i only once every worker is past its request for swap i - 1.
                    let since = std::time::Instant::now();
                    while progress
                        .iter()
                        .any(|p| p.load(Ordering::SeqCst) <= checkpoint(i - 1))
                    {
                        assert!(since.elapsed() < STALLED, "workers stuck before swap {i}");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                let next = mint(i);
                not_afters
                    .lock()
                    .unwrap()
                    .insert(next.der().to_vec(), not_after_of(&next));
                kubelet.swap(&as_refs(&linkerd_files(&next)));
                assert_eq!(reloader.reload_now().issuer, Change::Updated);
                swaps.fetch_add(1, Ordering::SeqCst);
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (ca, csrs, sa, bundle) = (&ca, &csrs, &sa, &bundle);
                let (served, failures, not_afters) = (&served, &failures, &not_afters);
                let (swaps, signers, progress) = (&swaps, &signers, &progress[w]);
                s.spawn(move || {
                    let mut signed_by = Vec::with_capacity(PER_WORKER);
                    for n in 0..PER_WORKER {
                        // Request n waits for swap n * MIN_SWAPS / PER_WORKER: the first swaps
                        // are spread over every worker's run.
                        while swaps.load(Ordering::SeqCst) < n * MIN_SWAPS / PER_WORKER {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        match ca.certify(sa, &csrs[(w + n) % csrs.len()], now) {
                            Ok(certified) => {
                                meshid_verify::verify_chain(
                                    bundle,
                                    &certified.leaf,
                                    &certified.chain,
                                    now,
                                    Usage::Either,
                                    &VerifyOptions::default(),
                                )
                                .expect("every chain verifies against the bundle");
                                let issuer_not_after =
                                    not_afters.lock().unwrap()[certified.chain[0].as_ref()];
                                assert!(
                                    certified.not_after <= issuer_not_after,
                                    "valid_until {} exceeds the issuer's NotAfter {}",
                                    certified.not_after,
                                    issuer_not_after
                                );
                                signed_by.push(certified.chain[0].to_vec());
                                served.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => {
                                eprintln!("certify failed: {e}");
                                failures.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        progress.fetch_add(1, Ordering::SeqCst);
                    }
                    signers.lock().unwrap()[w] = signed_by;
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        swapper.join().unwrap();
    });
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert_eq!(served.load(Ordering::SeqCst), REQUESTS);
    assert!(swaps.load(Ordering::SeqCst) >= MIN_SWAPS);
    // Every worker's leaves were signed by the first issuer, then by each swapped-in one.
    let first = first.der().to_vec();
    for (w, signed_by) in signers.lock().unwrap().iter().enumerate() {
        assert_eq!(signed_by.len(), PER_WORKER, "worker {w}");
        assert_eq!(signed_by[0], first, "worker {w}");
        let distinct: HashSet<_> = signed_by.iter().collect();
        assert!(
            distinct.len() >= MIN_SWAPS,
            "worker {w} saw {} issuers",
            distinct.len()
        );
    }
    println!(
        "{} certifies across {} issuer swaps",
        served.load(Ordering::SeqCst),
        swaps.load(Ordering::SeqCst)
    );
}
