//! Follows a trust-bundle file (a mounted ConfigMap) so anchor rotation reaches an
//! out-of-process proxy without a restart.

use core::fmt;
use core::future::Future;
use core::mem::Discriminant;
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use meshid_policy::Clock;
use meshid_verify::{Anchor, TrustBundle};
use meshid_watch::{FolderWatcher, folder_of};
use ring::digest::{Digest, SHA256, digest};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::time::MissedTickBehavior;

use crate::driver::verify_own_chain;
use crate::error::BundleProblem;
use crate::store::Installed;
use crate::{ConfigProblem, Credentials, Error};

/// How often [`BundleWatcher`] re-reads the file by default.
pub const DEFAULT_BUNDLE_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// How long [`BundleWatcher`] waits after a change notification before reading, so the rest
/// of an update (kubelet's link swap, or a writer's truncate-then-write) lands first.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// How a [`BundleWatcher`] notices changes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleWatchOptions {
    /// Re-read the file this often and compare its SHA-256 with the installed content
    /// (default [`DEFAULT_BUNDLE_POLL_INTERVAL`]), so a missed or failed notification can
    /// never leave an old bundle in use for longer. Must not be zero.
    pub poll_interval: Duration,
    /// Also watch the file's folder (inotify on Linux; default on) and re-read the file 100ms
    /// after a change there, such as kubelet's `..data` swap. A watcher that cannot start (the
    /// folder is missing, or notifications are unavailable) or fails is logged and re-created
    /// on the next poll; polling goes on regardless. Off: polling only.
    pub watch: bool,
}

impl Default for BundleWatchOptions {
    fn default() -> Self {
        Self::new(DEFAULT_BUNDLE_POLL_INTERVAL)
    }
}

impl BundleWatchOptions {
    /// Options polling every `poll_interval` and watching the file's folder.
    pub fn new(poll_interval: Duration) -> Self {
        Self {
            poll_interval,
            watch: true,
        }
    }
}

/// What one pass of a [`BundleWatcher`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BundleCheck {
    /// The file holds the bundle in use (possibly formatted differently): nothing to do.
    Unchanged,
    /// A new bundle was validated and installed.
    Installed {
        /// How many anchors it holds.
        anchors: usize,
    },
    /// The file could not be used ([`Error::TrustBundle`]); the previous bundle keeps
    /// serving, and the file is tried again on the next pass.
    Kept(Error),
}

/// Follows a PEM trust-bundle file and installs every valid new version into a client's
/// [`Credentials`], so new handshakes verify peers against it at once.
///
/// The file is re-read every [`BundleWatchOptions::poll_interval`] (tokio time) and, with
/// [`BundleWatchOptions::watch`] (the default), shortly after any change in its folder, and
/// compared by SHA-256 with the content in use. Re-reading the path each time follows
/// kubelet's ConfigMap updates, where the file is a symlink through `..data` that is swapped
/// atomically; the swap happens in the file's folder, so the watcher sees it at once.
///
/// A new bundle is installed only if it parses ([`TrustBundle::from_pem`]) and still verifies
/// the certificate the client presents (when one is installed and within its validity):
/// installing one that does not would make peers holding the same bundle, and this client's
/// own verifiers, refuse that certificate until renewal. Otherwise the previous bundle is kept
/// and a warning names the file and the reason, once per distinct problem; the file is tried
/// again on every pass, so a bundle refused for the current certificate goes in once the
/// client has renewed onto a certificate it verifies. An installed bundle is logged once, at
/// info, with its anchors.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use meshid_client::{BundleWatchOptions, BundleWatcher, Credentials};
/// # use meshid_policy::SystemClock;
/// # #[allow(dead_code)]
/// # async fn sidecar(
/// #     credentials: Arc<Credentials>,
/// #     shutdown: impl Future<Output = ()> + Send + 'static,
/// # )
/// # -> Result<(), meshid_client::Error> {
/// let watcher = BundleWatcher::new(
///     "/var/run/linkerd/identity/trust-roots/ca-bundle.crt",
///     &credentials,
///     SystemClock,
///     BundleWatchOptions::default(),
/// )?;
/// tokio::spawn(watcher.run(shutdown));
/// # Ok(())
/// # }
/// ```
pub struct BundleWatcher<K> {
    path: PathBuf,
    credentials: Weak<Credentials>,
    clock: K,
    options: BundleWatchOptions,
    /// The SHA-256 of the file content the bundle in use came from.
    installed: Option<Digest>,
    /// The last problem warned about, so an unchanged problem is not repeated every pass.
    reported: Option<Seen>,
    outcomes: watch::Sender<Option<BundleCheck>>,
}

/// A problem already reported: a read error, or a refused content and why.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Unreadable(String),
    Content(Vec<u8>, Discriminant<BundleProblem>),
}

impl<K> fmt::Debug for BundleWatcher<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleWatcher")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<K: Clock> BundleWatcher<K> {
    /// A watcher of the PEM bundle at `path` for `credentials` (from
    /// [`crate::Client::credentials`]), checking certificates at the time `clock` tells.
    ///
    /// It holds the credentials weakly: [`BundleWatcher::run`] ends once every other holder
    /// (the client and the TLS configs) has dropped them. Fails with [`Error::Config`] if the
    /// poll interval is zero.
    pub fn new(
        path: impl Into<PathBuf>,
        credentials: &Arc<Credentials>,
        clock: K,
        options: BundleWatchOptions,
    ) -> Result<Self, Error> {
        if options.poll_interval.is_zero() {
            return Err(Error::Config {
                reason: ConfigProblem::ZeroPollInterval,
            });
        }
        Ok(Self {
            path: path.into(),
            credentials: Arc::downgrade(credentials),
            clock,
            options,
            installed: None,
            reported: None,
            outcomes: watch::Sender::new(None),
        })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A receiver of each pass's outcome: `None` before the first pass, then a value sent
    /// after every pass (so [`watch::Receiver::changed`] wakes once per pass).
    pub fn outcomes(&self) -> watch::Receiver<Option<BundleCheck>> {
        self.outcomes.subscribe()
    }

    /// Checks the file now, then every poll interval and, with [`BundleWatchOptions::watch`],
    /// 100ms after a change in its folder (or at the poll, if that comes first), until
    /// `shutdown` completes or the credentials are dropped. Never fails: a file that cannot be
    /// used keeps the previous bundle and is tried again on the next pass.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Started before the first read, so no change after it is missed.
        let changed = Arc::new(Notify::new());
        let mut watcher = self
            .options
            .watch
            .then(|| FolderWatcher::start(&[folder_of(&self.path)], Arc::clone(&changed)));
        let mut ticks = tokio::time::interval(self.options.poll_interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tracing::debug!(
            path = %self.path.display(),
            poll_interval = ?self.options.poll_interval,
            watch = self.options.watch,
            "Watching the trust bundle"
        );
        loop {
            let polled = tokio::select! {
                biased;
                () = &mut shutdown => return,
                _ = ticks.tick() => true,
                () = changed.notified() => {
                    // Let the rest of the update land before reading, but read no later than
                    // the poll would have.
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return,
                        _ = ticks.tick() => true,
                        () = tokio::time::sleep(DEBOUNCE) => false,
                    }
                }
            };
            if polled && let Some(watcher) = &mut watcher {
                // A watcher that failed (or never started) is re-created on the poll.
                watcher.restart_if_failed();
            }
            let Some(credentials) = self.credentials.upgrade() else {
                tracing::debug!(
                    path = %self.path.display(),
                    "Credentials dropped; no longer watching the trust bundle"
                );
                return;
            };
            // Read off the runtime's worker: a mounted volume can be slow.
            let read = tokio::fs::read(&self.path).await;
            let outcome = self.check(read, &credentials, self.clock.now());
            drop(credentials);
            self.outcomes.send_replace(Some(outcome));
        }
    }

    /// One pass: read, compare, validate, install.
    fn check(
        &mut self,
        read: std::io::Result<Vec<u8>>,
        credentials: &Credentials,
        now: OffsetDateTime,
    ) -> BundleCheck {
        let pem = match read {
            Ok(pem) => pem,
            Err(e) => {
                let reason = e.to_string();
                let seen = Seen::Unreadable(reason.clone());
                let kind = e.kind();
                return self.kept(seen, BundleProblem::Unreadable { kind, reason });
            }
        };
        let hash = digest(&SHA256, &pem);
        if self
            .installed
            .as_ref()
            .is_some_and(|installed| installed.as_ref() == hash.as_ref())
        {
            return self.unchanged();
        }
        let bundle = match TrustBundle::from_pem(&pem) {
            Ok(bundle) => bundle,
            Err(e) => return self.refused(&hash, BundleProblem::Invalid(e)),
        };
        if bundle == *credentials.trust_bundle() {
            // Same anchors (the bundle the client started with, or a reformatted file).
            self.installed = Some(hash);
            return self.unchanged();
        }
        // Checked and installed in one turn, so a renewal cannot slip in between.
        let current = match credentials
            .set_trust_bundle_checked(bundle.clone(), |installed, new| {
                verifies_installed(installed, new, now)
            }) {
            Ok(previous) => previous,
            Err(e) => return self.refused(&hash, BundleProblem::OrphansCertificate(e)),
        };
        let subjects: Vec<&str> = bundle.anchors().map(Anchor::subject).collect();
        let earliest_not_after = bundle
            .anchors()
            .map(Anchor::not_after)
            .min()
            .map(meshid_policy::rfc3339)
            .unwrap_or_default();
        tracing::info!(
            path = %self.path.display(),
            anchors = bundle.len(),
            added = bundle.difference(&current).len(),
            removed = current.difference(&bundle).len(),
            subjects = %subjects.join("; "),
            earliest_not_after = %earliest_not_after,
            "Trust bundle updated"
        );
        self.installed = Some(hash);
        self.reported = None;
        BundleCheck::Installed {
            anchors: bundle.len(),
        }
    }

    fn unchanged(&mut self) -> BundleCheck {
        self.reported = None;
        BundleCheck::Unchanged
    }

    fn refused(&mut self, hash: &Digest, problem: BundleProblem) -> BundleCheck {
        let seen = Seen::Content(hash.as_ref().to_vec(), core::mem::discriminant(&problem));
        self.kept(seen, problem)
    }

    fn kept(&mut self, seen: Seen, problem: BundleProblem) -> BundleCheck {
        let error = Error::TrustBundle {
            path: self.path.clone(),
            problem,
        };
        if self.reported.as_ref() == Some(&seen) {
            tracing::debug!(%error, "Keeping the current trust bundle");
        } else {
            tracing::warn!(%error, "Keeping the current trust bundle");
            self.reported = Some(seen);
        }
        BundleCheck::Kept(error)
    }
}

/// Whether `bundle` verifies the `installed` certificate. Nothing to check without
/// one, or outside its validity (an expired certificate verifies under no bundle, and the
/// certify loop validates its replacement against the bundle in use then).
fn verifies_installed(
    installed: Option<&Installed>,
    bundle: &TrustBundle,
    now: OffsetDateTime,
) -> Result<(), meshid_verify::Error> {
    let Some(installed) = installed else {
        return Ok(());
    };
    if now < installed.not_before || now >= installed.not_after {
        return Ok(());
    }
    match installed.key.cert.split_first() {
        Some((leaf, intermediates)) => {
            verify_own_chain(bundle, leaf, intermediates, now).map(|_| ())
        }
        None => Ok(()),
    }
}
