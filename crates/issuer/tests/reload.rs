//! Loading and reloading the issuer and trust anchors: watched, polled, and refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshid_ca::Ca;
use meshid_ca::bootstrap::CaCertificate;
use meshid_issuer::{
    Change, CollectingSink, IssuerFolder, IssuerScheme, Metrics, Reloader, ReloaderOptions, reason,
};
use meshid_policy::TokioClock;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
};
use support::*;
use tempfile::TempDir;

fn serving(ca: &Ca, issuer: &CaCertificate) -> bool {
    ca.issuer()
        .is_some_and(|current| current.certificate() == issuer.der())
}

async fn wait_for(ca: &Ca, issuer: &CaCertificate, limit: Duration) -> Duration {
    let started = Instant::now();
    while !serving(ca, issuer) {
        assert!(
            started.elapsed() < limit,
            "the CA did not switch issuers within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

fn shutdown() -> (tokio::sync::oneshot::Sender<()>, impl Future<Output = ()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_swap_is_picked_up_by_the_watcher_long_before_the_poll() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let first = issuer(&root, START, 2 * DAY);
    let kubelet = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
    let ca = ca(&[&root]);
    let events = Arc::new(CollectingSink::new());
    let reloader = Reloader::new(
        Arc::clone(&ca),
        IssuerFolder::new(kubelet.dir(), IssuerScheme::LinkerdTls),
        TokioClock::new(START),
    )
    .with_sink(Arc::clone(&events))
    .with_options(ReloaderOptions::new(Duration::from_secs(3600), true));
    let (stop, until) = shutdown();
    let task = tokio::spawn(reloader.run(until));
    // Real time and inotify: generous limits, far below the hour-long poll, so a loaded machine
    // cannot fail the test and a watcher that does nothing cannot pass it.
    wait_for(&ca, &first, WATCHED).await;

    let second = issuer(&root, START, 2 * DAY);
    kubelet.swap(&as_refs(&linkerd_files(&second)));
    wait_for(&ca, &second, WATCHED).await;
    assert_eq!(events.with_reason(reason::ISSUER_UPDATED).len(), 2);
    assert_eq!(
        events.with_reason(reason::ISSUER_UPDATED)[1].message,
        "Updated identity issuer"
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// How long a watched change may take to apply on a busy machine (the poll is an hour).
const WATCHED: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn with_the_watcher_off_the_poll_picks_up_a_swap_within_its_interval() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let first = issuer(&root, START, 2 * DAY);
    let kubelet = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
    let ca = ca(&[&root]);
    let interval = Duration::from_secs(10);
    let reloader = Reloader::new(
        Arc::clone(&ca),
        IssuerFolder::new(kubelet.dir(), IssuerScheme::LinkerdTls),
        TokioClock::new(START),
    )
    .with_sink(CollectingSink::new())
    .with_options(ReloaderOptions::new(interval, false));
    let (stop, until) = shutdown();
    let task = tokio::spawn(reloader.run(until));
    // Paused time: tokio's clock moves only when every task waits on a timer, so the time a
    // swap takes to apply is measured in poll ticks, not in how busy the machine is.
    let took = polled_until_serving(&ca, &first).await;
    assert!(took <= interval, "the first issuer took {took:?}");

    for _ in 0..3 {
        let next = issuer(&root, START, 2 * DAY);
        kubelet.swap(&as_refs(&linkerd_files(&next)));
        let took = polled_until_serving(&ca, &next).await;
        assert!(
            took <= interval,
            "a swap took {took:?} with a {interval:?} poll"
        );
        assert!(took > Duration::ZERO, "applied before any poll");
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Under paused time: how long (in tokio time, to the next 100ms) until the CA serves `issuer`.
async fn polled_until_serving(ca: &Ca, issuer: &CaCertificate) -> Duration {
    let started = tokio::time::Instant::now();
    while !serving(ca, issuer) {
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// A CA serving `first` from a kubelet folder, and its reloader (already through one pass).
struct Fixture {
    _tmp: TempDir,
    root: CaCertificate,
    first: CaCertificate,
    kubelet: Kubelet,
    ca: Arc<Ca>,
    events: Arc<CollectingSink>,
    reloader: Reloader<FixedClock>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = temp_dir();
        let root = root("root.linkerd.cluster.local");
        let first = issuer(&root, START, 2 * DAY);
        let kubelet = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
        let ca = ca(&[&root]);
        let events = Arc::new(CollectingSink::new());
        let mut reloader = Reloader::new(
            Arc::clone(&ca),
            IssuerFolder::new(kubelet.dir(), IssuerScheme::LinkerdTls),
            FixedClock(START + Duration::from_secs(3600)),
        )
        .with_sink(Arc::clone(&events));
        assert_eq!(reloader.reload_now().issuer, Change::Updated);
        events.clear();
        Self {
            _tmp: tmp,
            root,
            first,
            kubelet,
            ca,
            events,
            reloader,
        }
    }

    /// Publishes `files`, makes a pass, and returns the IssuerUpdateSkipped message.
    fn refused(&mut self, files: &[(&str, &[u8])]) -> String {
        self.kubelet.swap(files);
        let outcome = self.reloader.reload_now();
        assert_eq!(outcome.issuer, Change::Skipped);
        assert!(
            serving(&self.ca, &self.first),
            "the old issuer keeps serving"
        );
        let skipped = self.events.with_reason(reason::ISSUER_UPDATE_SKIPPED);
        assert_eq!(skipped.len(), 1, "{:?}", self.events.events());
        assert_eq!(skipped[0].kind, meshid_issuer::EventKind::Warning);
        self.events.clear();
        // The same bad content is not reported again.
        assert_eq!(self.reloader.reload_now().issuer, Change::Unchanged);
        assert!(self.events.events().is_empty());
        skipped[0].message.clone()
    }
}

fn with_params(
    root: &CaCertificate,
    change: impl FnOnce(&mut CertificateParams),
) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    params_signed(root, key, change)
}

fn params_signed(
    root: &CaCertificate,
    key: rcgen::KeyPair,
    change: impl FnOnce(&mut CertificateParams),
) -> (String, String) {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "identity.linkerd.cluster.local");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = START;
    params.not_after = START + 2 * DAY;
    params.use_authority_key_identifier_extension = true;
    change(&mut params);
    let issuer = rcgen::Issuer::from_ca_cert_der(root.der(), root.key()).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

const PREFIX: &str = "Skipping issuer update as certs could not be read from disk: ";

#[test]
fn bad_issuers_leave_the_old_one_serving_and_say_why() {
    let mut f = Fixture::new();
    let good = issuer(&f.root, START, 2 * DAY);
    let good_pem = good.pem();
    let good_key = good.key_pem();
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "garbage",
            "this is not a certificate".to_owned(),
            good_key.to_string(),
            "the certificate file holds no certificate",
        ),
        (
            "half-written",
            good_pem[..good_pem.len() / 2].to_owned(),
            good_key.to_string(),
            "incomplete or corrupt",
        ),
        {
            let (c, k) = with_params(&f.root, |p| {
                p.not_before = START - 3 * DAY;
                p.not_after = START - DAY;
            });
            ("expired", c, k, "expired at 2026-05-31T12:00:00Z")
        },
        {
            let (c, k) = with_params(&f.root, |p| {
                p.not_before = START + DAY;
                p.not_after = START + 3 * DAY;
            });
            (
                "not yet valid",
                c,
                k,
                "not valid until 2026-06-02T12:00:00Z",
            )
        },
        {
            let other = root("another.root");
            let stranger = issuer(&other, START, 2 * DAY);
            (
                "not chained",
                stranger.pem(),
                stranger.key_pem().to_string(),
                "does not chain to the trust anchors",
            )
        },
        {
            let (c, k) = with_params(&f.root, |p| {
                p.is_ca = IsCa::NoCa;
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            });
            ("not a CA", c, k, "not a CA")
        },
        {
            let other = issuer(&f.root, START, 2 * DAY);
            (
                "key mismatch",
                good_pem.clone(),
                other.key_pem().to_string(),
                "does not match",
            )
        },
        {
            let (c, k) = with_params(&f.root, |p| {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            });
            ("clientAuth-only EKU", c, k, "serverAuth")
        },
        {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
            let (c, k) = params_signed(&f.root, key, |_| {});
            (
                "unsupported key",
                c,
                k,
                "issuer key: invalid PKCS#8 private key",
            )
        },
    ];
    let mut updates = f.reloader.issuer_updates();
    updates.mark_unchanged();
    for (name, cert, key, expected) in cases {
        let message = f.refused(&[("crt.pem", cert.as_bytes()), ("key.pem", key.as_bytes())]);
        assert!(message.starts_with(PREFIX), "{name}: {message}");
        assert!(
            message.contains(expected),
            "{name}: {message:?} should mention {expected:?}"
        );
        println!("{name}: {message}");
    }

    // A good issuer after all that goes in.
    f.kubelet.swap(&[
        ("crt.pem", good_pem.as_bytes()),
        ("key.pem", good_key.as_bytes()),
    ]);
    assert!(
        !updates.has_changed().unwrap(),
        "a refused issuer is not announced"
    );
    assert_eq!(f.reloader.reload_now().issuer, Change::Updated);
    assert!(serving(&f.ca, &good));
    // Whatever holds a certificate from the old issuer is told.
    assert!(updates.has_changed().unwrap());
    let announced = updates.borrow_and_update().clone().unwrap();
    assert_eq!(announced.not_after(), f.ca.issuer().unwrap().not_after());
    assert!(Arc::ptr_eq(&announced, &f.ca.issuer().unwrap()));
}

#[test]
fn validation_failures_also_raise_issuer_validation_failed_but_read_errors_do_not() {
    let mut f = Fixture::new();
    let other = root("another.root");
    let stranger = issuer(&other, START, 2 * DAY);
    f.kubelet.swap(&as_refs(&linkerd_files(&stranger)));
    f.reloader.reload_now();
    let failed = f.events.with_reason(reason::ISSUER_VALIDATION_FAILED);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .message
            .starts_with("Issuer validation failed: the issuer does not chain")
    );
    f.events.clear();

    // A missing key: a read error naming the file, and no validation event.
    f.kubelet.swap(&[("crt.pem", f.first.pem().as_bytes())]);
    std::fs::remove_file(f.kubelet.dir().join("key.pem")).unwrap();
    let outcome = f.reloader.reload_now();
    assert_eq!(outcome.issuer, Change::Skipped);
    let skipped = f.events.with_reason(reason::ISSUER_UPDATE_SKIPPED);
    let expected = format!(
        "{PREFIX}reading {}: No such file or directory (os error 2)",
        f.kubelet.dir().join("key.pem").display()
    );
    assert_eq!(skipped[0].message, expected);
    assert!(
        f.events
            .with_reason(reason::ISSUER_VALIDATION_FAILED)
            .is_empty()
    );
    assert!(serving(&f.ca, &f.first));
}

#[test]
fn an_issuer_written_before_its_not_before_goes_in_once_valid() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let first = issuer(&root, START, 2 * DAY);
    let early = issuer(&root, START + DAY, 2 * DAY);
    let kubelet = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
    let ca = ca(&[&root]);
    let folder = IssuerFolder::new(kubelet.dir(), IssuerScheme::LinkerdTls);
    let mut before = Reloader::new(Arc::clone(&ca), folder.clone(), FixedClock(START));
    before.reload_now();
    kubelet.swap(&as_refs(&linkerd_files(&early)));
    assert_eq!(before.reload_now().issuer, Change::Skipped);
    assert!(serving(&ca, &first));
    // The same reloader, later: a new one reading a later clock stands in for time passing.
    let mut after = Reloader::new(Arc::clone(&ca), folder, FixedClock(START + DAY));
    assert_eq!(after.reload_now().issuer, Change::Updated);
    assert!(serving(&ca, &early));
}

#[test]
fn kubernetes_tls_scheme_takes_anchors_from_ca_crt() {
    let tmp = temp_dir();
    let old = root("old.root");
    let new = root("new.root");
    let first = issuer(&old, START, 2 * DAY);
    let files = |issuer: &CaCertificate, ca_pem: String| {
        vec![
            ("tls.crt", issuer.pem().into_bytes()),
            ("tls.key", issuer.key_pem().as_bytes().to_vec()),
            ("ca.crt", ca_pem.into_bytes()),
        ]
    };
    let kubelet = Kubelet::new(
        &tmp.path().join("issuer"),
        &as_refs(&files(&first, bundle_pem(&[&old]))),
    );
    let ca = ca(&[&old]);
    let events = Arc::new(CollectingSink::new());
    let mut reloader = Reloader::new(
        Arc::clone(&ca),
        IssuerFolder::new(kubelet.dir(), IssuerScheme::KubernetesTls),
        FixedClock(START),
    )
    .with_sink(Arc::clone(&events));
    let outcome = reloader.reload_now();
    assert_eq!(outcome.issuer, Change::Updated);
    assert_eq!(
        outcome.trust_anchors,
        Change::Unchanged,
        "same anchors as the CA's"
    );

    // cert-manager re-issues from a new CA: ca.crt and the issuer change together; the
    // bundle {new} alone would orphan the old issuer, so it goes in right after the issuer.
    let second = issuer(&new, START, 2 * DAY);
    kubelet.swap(&as_refs(&files(&second, bundle_pem(&[&old, &new]))));
    let outcome = reloader.reload_now();
    assert_eq!(outcome.trust_anchors, Change::Updated);
    assert_eq!(outcome.issuer, Change::Updated);
    assert!(serving(&ca, &second));
    assert_eq!(ca.trust_bundle().len(), 2);
}

#[test]
fn a_bundle_that_would_orphan_the_issuer_is_refused_then_applied_after_the_issuer_moves() {
    let tmp = temp_dir();
    let old = root("old.root");
    let new = root("new.root");
    let first = issuer(&old, START, 2 * DAY);
    let issuer_dir = Kubelet::new(&tmp.path().join("issuer"), &as_refs(&linkerd_files(&first)));
    let roots = Kubelet::new(
        &tmp.path().join("roots"),
        &[("ca-bundle.crt", bundle_pem(&[&old]).as_bytes())],
    );
    let ca = ca(&[&old]);
    let events = Arc::new(CollectingSink::new());
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mut reloader = Reloader::new(
        Arc::clone(&ca),
        IssuerFolder::new(issuer_dir.dir(), IssuerScheme::LinkerdTls),
        FixedClock(START),
    )
    .with_trust_bundle_file(roots.dir().join("ca-bundle.crt"))
    .with_sink(Arc::clone(&events))
    .with_metrics(metrics);
    reloader.reload_now();
    assert!(serving(&ca, &first));
    let updates = reloader.trust_bundle_updates();

    // Straight to {new}: refused, with the procedure in the message.
    roots.swap(&[("ca-bundle.crt", bundle_pem(&[&new]).as_bytes())]);
    assert_eq!(reloader.reload_now().trust_anchors, Change::Skipped);
    let skipped = events.with_reason(reason::TRUST_ANCHORS_UPDATE_SKIPPED);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].message.starts_with(
            "Skipping trust anchors update: trust bundle refused: the current issuer does not chain to it"
        ),
        "{}",
        skipped[0].message
    );
    assert!(
        skipped[0]
            .message
            .contains("add the new anchor next to the old one first")
    );
    assert_eq!(ca.trust_bundle().len(), 1);
    assert!(ca.trust_bundle().contains(old.der()));

    // The issuer cannot move to `new` either while only `old` is trusted...
    let second = issuer(&new, START, 2 * DAY);
    issuer_dir.swap(&as_refs(&linkerd_files(&second)));
    let outcome = reloader.reload_now();
    // ...but the pending bundle and the new issuer fit each other only as a pair, which the
    // CA cannot swap at once: both stay refused, and the old pair keeps serving.
    assert_eq!(outcome.issuer, Change::Skipped);
    assert!(serving(&ca, &first));

    // The documented procedure works: {old, new}, then the issuer, then {new}.
    roots.swap(&[("ca-bundle.crt", bundle_pem(&[&old, &new]).as_bytes())]);
    let outcome = reloader.reload_now();
    assert_eq!(outcome.trust_anchors, Change::Updated);
    assert_eq!(
        outcome.issuer,
        Change::Updated,
        "the waiting issuer goes in"
    );
    assert!(serving(&ca, &second));
    roots.swap(&[("ca-bundle.crt", bundle_pem(&[&new]).as_bytes())]);
    assert_eq!(reloader.reload_now().trust_anchors, Change::Updated);
    assert_eq!(ca.trust_bundle().len(), 1);
    assert!(ca.trust_bundle().contains(new.der()));
    assert_eq!(updates.borrow().len(), 1);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for needle in [
        "identity_issuer_expiration_timestamp_seconds 1780488000",
        "identity_issuer_reloads_total{source=\"trust_anchors\",result=\"invalid\"} 1",
        "identity_issuer_reloads_total{source=\"issuer\",result=\"updated\"} 2",
        "identity_issuer_last_reload_timestamp_seconds{source=\"issuer\"}",
        "identity_trust_anchor_expiration_timestamp_seconds{fingerprint=",
        "subject=\"CN=new.root\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(
        !text.contains("CN=old.root"),
        "removed anchors leave the metrics"
    );
}
