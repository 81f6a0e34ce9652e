//! The trust-bundle file watcher under paused tokio time: edits and kubelet-style symlink swaps
//! are installed within one poll; unusable files and bundles that would orphan the current
//! certificate are refused and the previous bundle kept; the watcher stops on shutdown. In real
//! time with an hour-long poll: the folder watcher installs edits and swaps within seconds, and
//! with it off nothing is read before the poll.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use meshid_client::{
    BundleCheck, BundleProblem, BundleWatchOptions, BundleWatcher, CertifyError, CertifyRequest,
    CertifyResponse, Client, ConfigProblem, Credentials, Error, LocalCertifier,
};
use meshid_policy::TokioClock;
use meshid_verify::TrustBundle;
use support::*;
use tempfile::TempDir;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const POLL: Duration = Duration::from_secs(10);

/// A scratch directory of its own for each test, removed when the returned value is dropped.
fn scratch(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshid-bundle-watch-{name}-"))
        .tempdir()
        .unwrap()
}

/// A bundle file holding `bundle` in a scratch directory of its own.
fn bundle_file(name: &str, bundle: &TrustBundle) -> (TempDir, PathBuf) {
    let dir = scratch(name);
    let path = dir.path().join("ca-bundle.crt");
    std::fs::write(&path, bundle.to_pem()).unwrap();
    (dir, path)
}

/// Starts a watcher of `path` for `credentials`, polling every [`POLL`] and watching the
/// folder; returns its outcomes, a shutdown trigger and its task.
fn start(
    path: &Path,
    credentials: &Arc<Credentials>,
    clock: TokioClock,
) -> (
    watch::Receiver<Option<BundleCheck>>,
    oneshot::Sender<()>,
    JoinHandle<()>,
) {
    start_with(path, credentials, clock, BundleWatchOptions::new(POLL))
}

/// [`start`] with other options.
fn start_with(
    path: &Path,
    credentials: &Arc<Credentials>,
    clock: TokioClock,
    options: BundleWatchOptions,
) -> (
    watch::Receiver<Option<BundleCheck>>,
    oneshot::Sender<()>,
    JoinHandle<()>,
) {
    let watcher = BundleWatcher::new(path, credentials, clock, options).unwrap();
    assert_eq!(watcher.path(), path);
    let outcomes = watcher.outcomes();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(watcher.run(async {
        let _ = stopped.await;
    }));
    (outcomes, stop, task)
}

/// The outcome of the watcher's next pass. Under paused time, tokio jumps straight to it.
async fn next(outcomes: &mut watch::Receiver<Option<BundleCheck>>) -> BundleCheck {
    outcomes.changed().await.unwrap();
    outcomes.borrow_and_update().clone().unwrap()
}

/// The next pass, which must come within one poll interval of `since`.
async fn next_within_one_poll(
    outcomes: &mut watch::Receiver<Option<BundleCheck>>,
    since: Instant,
) -> BundleCheck {
    let outcome = next(outcomes).await;
    // Paused time: the clock only moves to the watcher's next tick, so this is exact.
    assert!(since.elapsed() <= POLL, "took {:?}", since.elapsed());
    outcome
}

/// A kubelet-style ConfigMap mount in a scratch directory: `ca-bundle.crt` ->
/// `..data/ca-bundle.crt`, `..data` -> `..<timestamp>`.
#[cfg(unix)]
struct ConfigMap {
    dir: TempDir,
    version: u32,
}

#[cfg(unix)]
impl ConfigMap {
    fn new(name: &str, pem: &str) -> Self {
        let mut configmap = Self {
            dir: scratch(name),
            version: 0,
        };
        configmap.update(pem);
        std::os::unix::fs::symlink(
            "..data/ca-bundle.crt",
            configmap.dir.path().join("ca-bundle.crt"),
        )
        .unwrap();
        configmap
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("ca-bundle.crt")
    }

    fn version_dir(version: u32) -> String {
        format!("..2026_06_01_12_{:02}_00.{version}", version - 1)
    }

    /// Kubelet's update: a new timestamped directory, `..data` swapped by an atomic rename,
    /// the old directory removed.
    fn update(&mut self, pem: &str) {
        let dir = self.dir.path();
        self.version += 1;
        let next = Self::version_dir(self.version);
        std::fs::create_dir(dir.join(&next)).unwrap();
        std::fs::write(dir.join(&next).join("ca-bundle.crt"), pem).unwrap();
        std::os::unix::fs::symlink(&next, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        if self.version > 1 {
            std::fs::remove_dir_all(dir.join(Self::version_dir(self.version - 1))).unwrap();
        }
    }
}

fn problem(outcome: BundleCheck) -> BundleProblem {
    match outcome {
        BundleCheck::Kept(Error::TrustBundle { problem, .. }) => problem,
        other => panic!("expected a kept bundle, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_bundle_edited_in_place_is_installed_within_one_poll() {
    let pki = Pki::new();
    let other = Pki::new();
    let (_dir, path) = bundle_file("in-place", &pki.bundle);
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    web.certify_once().await.unwrap();
    let creds = web.credentials();
    let before = creds.certified_key().unwrap();

    let (mut outcomes, _stop, _task) = start(&path, &creds, clock);
    // The bundle the client started with: nothing to install.
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));

    // Phase 1 of anchor rotation: both roots.
    let both = pki.bundle.union(&other.bundle);
    std::fs::write(&path, both.to_pem()).unwrap();
    let written = Instant::now();
    let outcome = next_within_one_poll(&mut outcomes, written).await;
    assert!(matches!(outcome, BundleCheck::Installed { anchors: 2 }));
    assert_eq!(*creds.trust_bundle(), both);
    // The certificate is untouched.
    assert!(Arc::ptr_eq(&before, &creds.certified_key().unwrap()));
    // Installed once: the next pass finds nothing new.
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn a_configmap_symlink_swap_is_installed_within_one_poll() {
    let pki = Pki::new();
    let other = Pki::new();
    let mut configmap = ConfigMap::new("configmap", &pki.bundle.to_pem());
    let path = configmap.path();
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    web.certify_once().await.unwrap();
    let creds = web.credentials();

    let (mut outcomes, _stop, _task) = start(&path, &creds, clock);
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));

    let both = pki.bundle.union(&other.bundle);
    configmap.update(&both.to_pem());
    let swapped = Instant::now();

    let outcome = next_within_one_poll(&mut outcomes, swapped).await;
    assert!(matches!(outcome, BundleCheck::Installed { anchors: 2 }));
    assert_eq!(*creds.trust_bundle(), both);
}

#[tokio::test(start_paused = true)]
async fn malformed_empty_or_missing_files_keep_the_old_bundle() {
    let pki = Pki::new();
    let other = Pki::new();
    let (_dir, path) = bundle_file("unusable", &pki.bundle);
    let clock = TokioClock::new(START);
    let mut web = local_client(&pki, WEB, clock);
    web.certify_once().await.unwrap();
    let creds = web.credentials();

    let (mut outcomes, _stop, task) = start(&path, &creds, clock);
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));

    // Malformed PEM.
    std::fs::write(
        &path,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let problem_found = problem(next(&mut outcomes).await);
    assert!(
        matches!(problem_found, BundleProblem::Invalid(_)),
        "{problem_found:?}"
    );
    assert_eq!(*creds.trust_bundle(), pki.bundle);

    // Empty (a truncating writer caught half-way).
    std::fs::write(&path, b"").unwrap();
    let empty = problem(next(&mut outcomes).await);
    assert_eq!(
        empty,
        BundleProblem::Invalid(meshid_verify::Error::BundleEmpty)
    );
    assert_eq!(*creds.trust_bundle(), pki.bundle);

    // Gone: the error names the file.
    std::fs::remove_file(&path).unwrap();
    let outcome = next(&mut outcomes).await;
    let BundleCheck::Kept(error) = &outcome else {
        panic!("expected a kept bundle, got {outcome:?}");
    };
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    let message = error.to_string();
    let BundleProblem::Unreadable { kind, reason } = problem(outcome) else {
        panic!("expected an unreadable bundle");
    };
    assert_eq!(kind, std::io::ErrorKind::NotFound);
    assert_eq!(
        message,
        format!("trust bundle {}: cannot read it: {reason}", path.display())
    );
    assert_eq!(*creds.trust_bundle(), pki.bundle);

    // The watcher kept going: a valid bundle goes in.
    let both = pki.bundle.union(&other.bundle);
    std::fs::write(&path, both.to_pem()).unwrap();
    assert!(matches!(
        next(&mut outcomes).await,
        BundleCheck::Installed { anchors: 2 }
    ));
    assert_eq!(*creds.trust_bundle(), both);
    assert!(!task.is_finished());
}

/// A certifier that asks the old CA, or the new one once switched.
struct Switch {
    old: LocalCertifier<TokioClock>,
    new: LocalCertifier<TokioClock>,
    switched: AtomicBool,
}

impl meshid_client::Certifier for Switch {
    async fn certify(&self, request: CertifyRequest) -> Result<CertifyResponse, CertifyError> {
        if self.switched.load(Ordering::SeqCst) {
            self.new.certify(request).await
        } else {
            self.old.certify(request).await
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_bundle_that_would_orphan_the_certificate_is_refused_until_renewal() {
    let old = Pki::new();
    let new = Pki::new();
    let (_dir, path) = bundle_file("orphan", &old.bundle);
    let clock = TokioClock::new(START);
    let switch = Arc::new(Switch {
        old: LocalCertifier::new(Arc::clone(&old.ca), clock),
        new: LocalCertifier::new(Arc::clone(&new.ca), clock),
        switched: AtomicBool::new(false),
    });
    let mut web = Client::new(config(WEB, &old.bundle), Arc::clone(&switch), clock)
        .unwrap()
        .with_jitter(meshid_rotation::SeededJitter::new(7));
    web.certify_once().await.unwrap();
    let creds = web.credentials();

    let (mut outcomes, _stop, _task) = start(&path, &creds, clock);
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));

    // Phase 3 first: the new root alone does not verify the certificate chained to the old
    // one. Refused, the old bundle kept, and still refused on the next pass.
    std::fs::write(&path, new.bundle.to_pem()).unwrap();
    for _ in 0..2 {
        let refused = problem(next(&mut outcomes).await);
        assert!(
            matches!(refused, BundleProblem::OrphansCertificate(_)),
            "{refused:?}"
        );
        assert_eq!(*creds.trust_bundle(), old.bundle);
    }

    // Phase 1: both roots verify it.
    let both = old.bundle.union(&new.bundle);
    std::fs::write(&path, both.to_pem()).unwrap();
    assert!(matches!(
        next(&mut outcomes).await,
        BundleCheck::Installed { anchors: 2 }
    ));
    assert_eq!(*creds.trust_bundle(), both);

    // Phase 3 published while the client still holds the old root's certificate: refused...
    std::fs::write(&path, new.bundle.to_pem()).unwrap();
    let refused = problem(next(&mut outcomes).await);
    assert!(matches!(refused, BundleProblem::OrphansCertificate(_)));
    assert_eq!(*creds.trust_bundle(), both);

    // ...until the client renews onto the new root (phase 2); the same file then goes in.
    switch.switched.store(true, Ordering::SeqCst);
    web.certify_once().await.unwrap();
    assert!(matches!(
        next(&mut outcomes).await,
        BundleCheck::Installed { anchors: 1 }
    ));
    assert_eq!(*creds.trust_bundle(), new.bundle);
}

#[tokio::test(start_paused = true)]
async fn without_a_certificate_any_valid_bundle_is_installed() {
    let pki = Pki::new();
    let other = Pki::new();
    let (_dir, path) = bundle_file("pending", &other.bundle);
    let clock = TokioClock::new(START);
    let web = local_client(&pki, WEB, clock);
    let creds = web.credentials();
    assert!(creds.certified_key().is_none());

    let (mut outcomes, _stop, _task) = start(&path, &creds, clock);
    assert!(matches!(
        next(&mut outcomes).await,
        BundleCheck::Installed { anchors: 1 }
    ));
    assert_eq!(*creds.trust_bundle(), other.bundle);
}

#[tokio::test(start_paused = true)]
async fn the_watcher_stops_on_shutdown_and_when_the_credentials_are_dropped() {
    let pki = Pki::new();
    let (_dir, path) = bundle_file("stop", &pki.bundle);
    let clock = TokioClock::new(START);

    // Shutdown.
    let web = local_client(&pki, WEB, clock);
    let creds = web.credentials();
    let (mut outcomes, stop, task) = start(&path, &creds, clock);
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));
    stop.send(()).unwrap();
    task.await.unwrap();

    // Every holder of the credentials gone: the next pass ends it.
    let web = local_client(&pki, WEB, clock);
    let creds = web.credentials();
    let (mut outcomes, _stop, task) = start(&path, &creds, clock);
    assert!(matches!(next(&mut outcomes).await, BundleCheck::Unchanged));
    drop((web, creds));
    task.await.unwrap();
}

/// Real time: far shorter than the poll, so only the folder watcher can explain a pass.
const LONG_POLL: Duration = Duration::from_secs(3600);
const SOON: Duration = Duration::from_secs(5);

/// A client of a PKI holding a certificate, and a watcher of its bundle file polling every
/// [`LONG_POLL`], in real time.
struct LongPoll {
    pki: Pki,
    creds: Arc<Credentials>,
    outcomes: watch::Receiver<Option<BundleCheck>>,
    _stop: oneshot::Sender<()>,
}

impl LongPoll {
    /// Starts watching `path` (which holds `pki`'s bundle) and waits for the first pass.
    async fn start(pki: Pki, path: &Path, watch: bool) -> Self {
        let clock = TokioClock::new(START);
        let mut web = local_client(&pki, WEB, clock);
        web.certify_once().await.unwrap();
        let creds = web.credentials();
        let mut options = BundleWatchOptions::new(LONG_POLL);
        assert!(options.watch, "watching is the default");
        options.watch = watch;
        let (mut outcomes, stop, _task) = start_with(path, &creds, clock, options);
        let first = tokio::time::timeout(SOON, next(&mut outcomes))
            .await
            .unwrap();
        assert!(matches!(first, BundleCheck::Unchanged), "{first:?}");
        Self {
            pki,
            creds,
            outcomes,
            _stop: stop,
        }
    }

    /// The client's root and a new one (phase 1 of anchor rotation).
    fn both(&self) -> TrustBundle {
        self.pki.bundle.union(&Pki::new().bundle)
    }

    /// Waits for a pass that installs a bundle (a notification may bring passes that find
    /// nothing new first); returns its anchor count.
    async fn installed_soon(&mut self) -> usize {
        tokio::time::timeout(SOON, async {
            loop {
                if let BundleCheck::Installed { anchors } = next(&mut self.outcomes).await {
                    return anchors;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("nothing installed within {SOON:?}"))
    }
}

#[tokio::test]
async fn with_an_hour_long_poll_the_folder_watcher_installs_an_edit_within_seconds() {
    let pki = Pki::new();
    let (_dir, path) = bundle_file("watched-edit", &pki.bundle);
    let mut watcher = LongPoll::start(pki, &path, true).await;

    let both = watcher.both();
    std::fs::write(&path, both.to_pem()).unwrap();
    assert_eq!(watcher.installed_soon().await, 2);
    assert_eq!(*watcher.creds.trust_bundle(), both);
}

#[cfg(unix)]
#[tokio::test]
async fn with_an_hour_long_poll_the_folder_watcher_installs_configmap_swaps_within_seconds() {
    let pki = Pki::new();
    let mut configmap = ConfigMap::new("watched-configmap", &pki.bundle.to_pem());
    let mut watcher = LongPoll::start(pki, &configmap.path(), true).await;

    // Phase 1, then phase 3 back to the client's own root (which verifies its certificate).
    let both = watcher.both();
    configmap.update(&both.to_pem());
    assert_eq!(watcher.installed_soon().await, 2);
    assert_eq!(*watcher.creds.trust_bundle(), both);
    configmap.update(&watcher.pki.bundle.to_pem());
    assert_eq!(watcher.installed_soon().await, 1);
    assert_eq!(*watcher.creds.trust_bundle(), watcher.pki.bundle);
}

#[tokio::test]
async fn with_the_folder_watcher_off_nothing_is_read_before_the_poll() {
    let pki = Pki::new();
    let (_dir, path) = bundle_file("unwatched-edit", &pki.bundle);
    let mut watcher = LongPoll::start(pki, &path, false).await;

    std::fs::write(&path, watcher.both().to_pem()).unwrap();
    let pass = tokio::time::timeout(Duration::from_millis(500), watcher.outcomes.changed()).await;
    assert!(pass.is_err(), "a pass before the poll");
    assert_eq!(*watcher.creds.trust_bundle(), watcher.pki.bundle);
}

#[test]
fn a_zero_poll_interval_is_refused() {
    let pki = Pki::new();
    let web = local_client(&pki, WEB, TokioClock::new(START));
    let refused = BundleWatcher::new(
        "ca-bundle.crt",
        &web.credentials(),
        TokioClock::new(START),
        BundleWatchOptions::new(Duration::ZERO),
    );
    let Err(error) = refused else {
        panic!("a zero poll interval was accepted");
    };
    assert!(matches!(
        error,
        Error::Config {
            reason: ConfigProblem::ZeroPollInterval
        }
    ));
    assert_eq!(
        error.to_string(),
        "invalid client configuration: the trust-bundle poll interval must not be zero"
    );
}
