//! Following a JWKS file: the API server rotates its signing keys, and the file (often a
//! mounted ConfigMap) follows.

use core::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use meshid_watch::{FolderWatcher, folder_of};
use tokio::sync::Notify;

use crate::token::digest_bytes;
use crate::{Clock, Error, Jwks, JwksAuthenticator, Metrics};

/// How often a [`JwksReloader`] re-reads its file by default, whatever the watcher says.
pub const DEFAULT_JWKS_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// After a change notification, the reloader waits this long for the rest of a swap to land.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Re-reads a JWKS file when it changes and replaces the key set of a [`JwksAuthenticator`]:
/// its folder is watched (inotify, through `meshid-watch`; kubelet's `..data` swap included)
/// and the file is polled by SHA-256 every `poll_interval` in case the watcher misses a change.
///
/// A new file that cannot be read or does not parse is refused: the previous key set stays in
/// use, a warning names the file and the reason, and `identity_jwks_reloads_total` counts it
/// (`result="unreadable"` or `"invalid"`; `"updated"` for a key set swapped in).
pub struct JwksReloader {
    path: PathBuf,
    target: Arc<ArcSwap<Jwks>>,
    poll_interval: Duration,
    watch: bool,
    /// SHA-256 of the content last applied or refused; `None` before the first read.
    seen: Option<[u8; 32]>,
    /// Whether the last read failed (said once until the file is readable again).
    unreadable: bool,
    metrics: Metrics,
    notify: Arc<Notify>,
}

/// What one [`JwksReloader::reload_now`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksReload {
    /// The file has not changed since it was last read.
    Unchanged,
    /// The new key set is in use.
    Updated,
    /// The file could not be read or does not parse; the previous key set stays in use.
    Refused(Error),
}

impl JwksReloader {
    /// Follows `path` for `authenticator` (whose key set was read from it), polling every
    /// [`DEFAULT_JWKS_POLL_INTERVAL`] and watching its folder.
    pub fn new<C: Clock>(path: impl Into<PathBuf>, authenticator: &JwksAuthenticator<C>) -> Self {
        Self {
            path: path.into(),
            target: authenticator.shared_jwks(),
            poll_interval: DEFAULT_JWKS_POLL_INTERVAL,
            watch: true,
            seen: None,
            unreadable: false,
            metrics: Metrics::default(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Re-reads the file this often (zero is taken as one second), and watches its folder or
    /// not.
    #[must_use]
    pub fn with_options(mut self, poll_interval: Duration, watch: bool) -> Self {
        self.poll_interval = poll_interval.max(Duration::from_secs(1));
        self.watch = watch;
        self
    }

    /// Counts reloads in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file and, if its content changed and parses, swaps the new key set in. The
    /// first read only records the content the authenticator was built from, unless it
    /// differs.
    pub fn reload_now(&mut self) -> JwksReload {
        let content = match std::fs::read(&self.path) {
            Ok(content) => content,
            Err(e) => {
                let error = Error::ReadFile {
                    what: "JWKS file",
                    path: self.path.clone(),
                    kind: e.kind(),
                    reason: e.to_string(),
                };
                if !self.unreadable {
                    self.unreadable = true;
                    tracing::warn!(error = %error, "keeping the previous JWKS");
                    self.metrics.jwks_reload("unreadable");
                }
                return JwksReload::Refused(error);
            }
        };
        self.unreadable = false;
        let sum = digest_bytes(&content);
        if self.seen == Some(sum) {
            return JwksReload::Unchanged;
        }
        let first = self.seen.is_none();
        match Jwks::from_json(&content) {
            Ok(jwks) => {
                self.seen = Some(sum);
                let kids: Vec<&str> = jwks.kids().map(|kid| kid.unwrap_or("-")).collect();
                if !first {
                    tracing::info!(
                        file = %self.path.display(),
                        keys = %kids.join(","),
                        "JWKS reloaded"
                    );
                    self.metrics.jwks_reload("updated");
                }
                self.target.store(Arc::new(jwks));
                JwksReload::Updated
            }
            Err(e) => {
                let error = match e {
                    Error::Config { reason, .. } => Error::Config {
                        what: format!("JWKS file {}", self.path.display()),
                        reason,
                    },
                    e => e,
                };
                // Said once per content, not on every poll.
                self.seen = Some(sum);
                tracing::warn!(error = %error, "keeping the previous JWKS");
                self.metrics.jwks_reload("invalid");
                JwksReload::Refused(error)
            }
        }
    }

    /// Runs until `shutdown` completes: a read at once, then on every change the watcher
    /// reports and every `poll_interval`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut watcher = self
            .watch
            .then(|| FolderWatcher::start(&[folder_of(&self.path)], Arc::clone(&self.notify)));
        self.reload_now();
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    if let Some(watcher) = &mut watcher {
                        watcher.restart_if_failed();
                    }
                }
                () = self.notify.notified() => tokio::time::sleep(DEBOUNCE).await,
            }
            self.reload_now();
        }
        drop(watcher);
    }
}
