//! Validated hot reload of the issuer and the trust anchors: watched and polled.

use core::future::Future;
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshid_ca::{Ca, IssuerCredentials};
use meshid_policy::{Clock, SystemClock};
use meshid_verify::TrustBundle;
use meshid_watch::{FolderWatcher, folder_of};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use crate::folder::{ContentHash, bundle_hash};
use crate::metrics::ReloadResult;
use crate::{Error, Event, EventSink, IssuerFolder, Metrics, TracingSink};

/// The default period of the content-hash poll that backs up the watcher.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// How long the reloader waits after a notification for more of the same swap.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Metric `source` labels.
const ISSUER: &str = "issuer";
const TRUST_ANCHORS: &str = "trust_anchors";

/// How the reloader notices changes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloaderOptions {
    /// Re-read the files this often and compare their SHA-256 (default 60s), so a dead or
    /// missing watcher can never freeze rotation.
    pub poll_interval: Duration,
    /// Watch the folders for changes (inotify; default on) for a reload within milliseconds.
    pub watch: bool,
}

impl Default for ReloaderOptions {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            watch: true,
        }
    }
}

impl ReloaderOptions {
    /// Options polling every `poll_interval`, watching or not.
    pub fn new(poll_interval: Duration, watch: bool) -> Self {
        Self {
            poll_interval,
            watch,
        }
    }
}

/// Where the trust anchors come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AnchorSource {
    /// A bundle file (`ca-bundle.crt`), watched like the issuer.
    File(PathBuf),
    /// `ca.crt` of a `kubernetes.io/tls` issuer folder, if present; else the bundle is fixed.
    IssuerFolder,
}

/// What one reload pass did to a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Nothing new (or nothing new to report).
    #[default]
    Unchanged,
    /// New content validated and swapped in.
    Updated,
    /// New content could not be read or was refused; the previous one keeps serving.
    Skipped,
}

/// What [`Reloader::reload_now`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOutcome {
    /// The issuer.
    pub issuer: Change,
    /// The trust anchors.
    pub trust_anchors: Change,
}

/// Wakes a [`Reloader`] for an immediate pass (the issuer auto-rotator uses it after writing).
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    notify: Arc<Notify>,
}

impl ReloadHandle {
    /// Asks for a reload pass as soon as possible.
    pub fn trigger(&self) {
        self.notify.notify_one();
    }
}

/// The last content seen from a source and what became of it.
#[derive(Debug, Default)]
struct Tracked {
    /// The SHA-256 of the last content read, or of the last read error.
    seen: Option<ContentHash>,
    /// Whether that content is in force.
    applied: bool,
    /// Whether its failure has been reported (events are sent once per content).
    reported: bool,
}

impl Tracked {
    /// Records what was read; `true` if it differs from the last read.
    fn observe(&mut self, hash: ContentHash) -> bool {
        if self.seen == Some(hash) {
            return false;
        }
        *self = Self {
            seen: Some(hash),
            applied: false,
            reported: false,
        };
        true
    }
}

/// Keeps a [`Ca`]'s issuer and trust anchors in step with files on disk.
///
/// A pass ([`reload_now`](Self::reload_now)) reads the issuer folder and the anchor source,
/// and for each whose SHA-256 differs from the last pass: validates the new content against
/// the CA's current state at the clock's `now`, then swaps it in; on any failure the CA keeps
/// what it has and the failure is reported once (an event, a log line, a metric). Content that
/// was refused is retried silently on later passes, so an issuer written before its NotBefore,
/// or a bundle that waits for the issuer to move to a new anchor, goes in as soon as it can.
///
/// [`run`](Self::run) makes passes when the watcher reports a change in either folder
/// (kubelet's `..data` swap, or any write), and every `poll_interval` regardless. A watcher
/// error is logged and the watcher is re-created on the next poll; polling never stops.
///
/// Events: success → `IssuerUpdated` "Updated identity issuer". Any failure →
/// `IssuerUpdateSkipped` `Skipping issuer update as certs could not be read from disk: <err>`
/// (Linkerd's reason and message for every failure, so existing alerts keep working); when the
/// files were read but the credentials were refused, also `IssuerValidationFailed` with the
/// validation problem alone. Anchors: `TrustAnchorsUpdated` or `TrustAnchorsUpdateSkipped`
/// (for example a bundle that would orphan the current issuer).
pub struct Reloader<K: Clock = SystemClock> {
    ca: Arc<Ca>,
    folder: IssuerFolder,
    anchors: AnchorSource,
    sink: Arc<dyn EventSink>,
    metrics: Option<Metrics>,
    clock: K,
    options: ReloaderOptions,
    notify: Arc<Notify>,
    issuer: Tracked,
    bundle: Tracked,
    bundles: watch::Sender<Arc<TrustBundle>>,
    issuers: watch::Sender<Option<Arc<IssuerCredentials>>>,
}

impl<K: Clock> Reloader<K> {
    /// A reloader keeping `ca`'s issuer in step with `folder`, reading time from `clock`.
    ///
    /// Anchors: a `kubernetes.io/tls` folder's `ca.crt` is the anchor source when present,
    /// until [`with_trust_bundle_file`](Self::with_trust_bundle_file) names a bundle file.
    /// Events go to [`TracingSink`] until [`with_sink`](Self::with_sink).
    pub fn new(ca: Arc<Ca>, folder: IssuerFolder, clock: K) -> Self {
        let bundles = watch::Sender::new(ca.trust_bundle());
        let issuers = watch::Sender::new(ca.issuer());
        Self {
            ca,
            folder,
            anchors: AnchorSource::IssuerFolder,
            sink: Arc::new(TracingSink),
            metrics: None,
            clock,
            options: ReloaderOptions::default(),
            notify: Arc::new(Notify::new()),
            issuer: Tracked::default(),
            bundle: Tracked::default(),
            bundles,
            issuers,
        }
    }

    /// Reads the trust anchors from `path` (`ca-bundle.crt`), watched and polled like the
    /// issuer.
    pub fn with_trust_bundle_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.anchors = AnchorSource::File(path.into());
        self
    }

    /// Sends events to `sink`.
    pub fn with_sink(mut self, sink: impl EventSink) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    /// Records metrics.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        if let Some(issuer) = self.ca.issuer() {
            metrics.set_issuer_not_after(issuer.not_after());
        }
        metrics.set_trust_anchors(&self.ca.trust_bundle());
        self.metrics = Some(metrics);
        self
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: ReloaderOptions) -> Self {
        self.options = options;
        self
    }

    /// A handle that wakes the reloader for an immediate pass.
    pub fn handle(&self) -> ReloadHandle {
        ReloadHandle {
            notify: Arc::clone(&self.notify),
        }
    }

    /// The trust bundle in force, updated whenever the reloader installs a new one: hand it
    /// to in-process clients (`meshid_client::Credentials::set_trust_bundle`).
    pub fn trust_bundle_updates(&self) -> watch::Receiver<Arc<TrustBundle>> {
        self.bundles.subscribe()
    }

    /// The issuer in force, updated whenever the reloader installs a new one: whatever holds
    /// something issued by the previous issuer (the identity service's own TLS certificate)
    /// re-issues on a change.
    pub fn issuer_updates(&self) -> watch::Receiver<Option<Arc<IssuerCredentials>>> {
        self.issuers.subscribe()
    }

    /// The CA.
    pub fn ca(&self) -> &Arc<Ca> {
        &self.ca
    }

    /// Makes one pass: reads both sources and applies what changed (see the type's docs).
    ///
    /// Content the CA already serves (the first pass after a start-up load) is taken as
    /// applied without an event.
    pub fn reload_now(&mut self) -> ReloadOutcome {
        let now = self.clock.now();
        let mut outcome = ReloadOutcome::default();

        let files = self.folder.read();
        let bundle_read = self.read_anchors(&files);

        // The issuer source.
        let issuer_files = match &files {
            Ok(files) => {
                if self.issuer.observe(files.issuer_hash()) && self.serves_chain(&files.chain_pem) {
                    self.issuer.applied = true;
                }
                Some(files)
            }
            Err(e) => {
                if self.issuer.observe(error_hash(e)) {
                    self.issuer_failed(e, ReloadResult::ReadError, now);
                    outcome.issuer = Change::Skipped;
                }
                None
            }
        };

        // The anchor source.
        let bundle_pem = match bundle_read {
            Some(Ok(pem)) => {
                if self.bundle.observe(bundle_hash(&pem)) && self.serves_bundle(&pem) {
                    self.bundle.applied = true;
                }
                Some(pem)
            }
            Some(Err(e)) => {
                if self.bundle.observe(error_hash(&e)) {
                    self.bundle_failed(&e, ReloadResult::ReadError, now);
                    outcome.trust_anchors = Change::Skipped;
                }
                None
            }
            None => None,
        };

        // Apply: anchors first (phase 1 adds an anchor the new issuer needs), then the issuer;
        // once more if one succeeded, since each can unblock the other (phase 3 removes an
        // anchor only once the issuer has moved).
        for _ in 0..2 {
            let mut progress = false;
            if let Some(pem) = &bundle_pem
                && !self.bundle.applied
            {
                match self.apply_bundle(pem, now) {
                    Ok(()) => {
                        progress = true;
                        outcome.trust_anchors = Change::Updated;
                    }
                    Err(e) => {
                        if !self.bundle.reported {
                            self.bundle_failed(&e, ReloadResult::Invalid, now);
                            outcome.trust_anchors = Change::Skipped;
                        }
                    }
                }
            }
            if let Some(files) = issuer_files
                && !self.issuer.applied
            {
                match self.apply_issuer(files, now) {
                    Ok(()) => {
                        progress = true;
                        outcome.issuer = Change::Updated;
                    }
                    Err(e) => {
                        if !self.issuer.reported {
                            self.issuer_failed(&e, ReloadResult::Invalid, now);
                            outcome.issuer = Change::Skipped;
                        }
                    }
                }
            }
            if !progress {
                break;
            }
        }
        outcome
    }

    /// Runs until `shutdown` completes: a pass at once, then on every change the watcher
    /// reports, on every [`ReloadHandle::trigger`], and every `poll_interval`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut watcher = self.start_watcher();
        self.reload_now();
        let mut ticker = tokio::time::interval(self.options.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    // A watcher that failed (or never started) is re-created on the poll.
                    if let Some(watcher) = &mut watcher {
                        watcher.restart_if_failed();
                    }
                }
                () = self.notify.notified() => {
                    // Let the rest of a swap land before reading.
                    tokio::time::sleep(DEBOUNCE).await;
                }
            }
            self.reload_now();
        }
        drop(watcher);
    }

    // === internals ===

    /// Watches the issuer folder and the bundle file's folder, waking the same [`Notify`] as
    /// [`ReloadHandle::trigger`]; `None` with the watcher off.
    fn start_watcher(&self) -> Option<FolderWatcher> {
        if !self.options.watch {
            return None;
        }
        let mut dirs: Vec<&Path> = vec![self.folder.dir()];
        if let AnchorSource::File(path) = &self.anchors {
            dirs.push(folder_of(path));
        }
        Some(FolderWatcher::start(&dirs, Arc::clone(&self.notify)))
    }

    fn read_anchors(
        &self,
        files: &Result<crate::IssuerFiles, Error>,
    ) -> Option<Result<Vec<u8>, Error>> {
        match &self.anchors {
            AnchorSource::File(path) => {
                Some(std::fs::read(path).map_err(|e| Error::io("reading", path, e)))
            }
            AnchorSource::IssuerFolder => match files {
                Ok(files) => files.ca_pem.as_ref().map(|pem| Ok(pem.as_bytes().to_vec())),
                Err(_) => None,
            },
        }
    }

    fn serves_chain(&self, chain_pem: &str) -> bool {
        match (self.ca.issuer(), meshid_ca::parse_chain_pem(chain_pem)) {
            (Some(current), Ok(chain)) => current.chain().as_ref() == chain.as_slice(),
            _ => false,
        }
    }

    fn serves_bundle(&self, pem: &[u8]) -> bool {
        match TrustBundle::from_pem(pem) {
            Ok(bundle) => {
                let current = self.ca.trust_bundle();
                bundle.len() == current.len()
                    && bundle
                        .anchors()
                        .zip(current.anchors())
                        .all(|(a, b)| a.der() == b.der())
            }
            Err(_) => false,
        }
    }

    fn apply_issuer(
        &mut self,
        files: &crate::IssuerFiles,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let bundle = self.ca.trust_bundle();
        let creds = IssuerCredentials::from_pem(&files.chain_pem, &files.key_pem, &bundle, now)?;
        let creds = self.ca.set_issuer(creds, now)?;
        self.issuer.applied = true;
        self.issuers.send_replace(Some(Arc::clone(&creds)));
        tracing::info!(
            subject = creds.subject(),
            not_after = %meshid_policy::rfc3339(creds.not_after()),
            folder = %self.folder.dir().display(),
            "issuer loaded"
        );
        self.sink.emit(&Event::issuer_updated(now));
        if let Some(metrics) = &self.metrics {
            metrics.record(ISSUER, ReloadResult::Updated, now);
            metrics.set_issuer_not_after(creds.not_after());
        }
        Ok(())
    }

    fn issuer_failed(&mut self, e: &Error, result: ReloadResult, now: OffsetDateTime) {
        self.issuer.reported = true;
        self.sink.emit(&Event::issuer_update_skipped(e, now));
        if let Some(problem) = e.issuer_problem() {
            self.sink
                .emit(&Event::issuer_validation_failed(problem, now));
        }
        if let Some(metrics) = &self.metrics {
            metrics.record(ISSUER, result, now);
        }
    }

    fn apply_bundle(&mut self, pem: &[u8], now: OffsetDateTime) -> Result<(), Error> {
        let path = match &self.anchors {
            AnchorSource::File(path) => path.clone(),
            AnchorSource::IssuerFolder => self.folder.ca_path().unwrap_or_default(),
        };
        let bundle =
            TrustBundle::from_pem(pem).map_err(|source| Error::TrustBundle { path, source })?;
        self.ca.set_trust_bundle(bundle, now)?;
        self.bundle.applied = true;
        let bundle = self.ca.trust_bundle();
        tracing::info!(anchors = bundle.len(), "trust anchors loaded");
        self.sink
            .emit(&Event::trust_anchors_updated(bundle.len(), now));
        if let Some(metrics) = &self.metrics {
            metrics.record(TRUST_ANCHORS, ReloadResult::Updated, now);
            metrics.set_trust_anchors(&bundle);
        }
        self.bundles.send_replace(bundle);
        Ok(())
    }

    fn bundle_failed(&mut self, e: &Error, result: ReloadResult, now: OffsetDateTime) {
        self.bundle.reported = true;
        self.sink.emit(&Event::trust_anchors_update_skipped(e, now));
        if let Some(metrics) = &self.metrics {
            metrics.record(TRUST_ANCHORS, result, now);
        }
    }
}

/// A hash standing for a read error, so the same error is reported once.
fn error_hash(e: &Error) -> ContentHash {
    bundle_hash(format!("error: {e}").as_bytes())
}
