//! Folder change notifications for meshid: wake a task when anything in some folders changes.
//!
//! A [`FolderWatcher`] watches folders (not recursively) with the platform's notifications
//! (inotify on Linux, through [`notify`]) and calls [`Notify::notify_one`] on a
//! [`tokio::sync::Notify`] the caller owns for every change: a file written, created, removed or
//! renamed, kubelet's `..data` link swap. Reads are not changes, so a task that reads the files
//! it watches does not wake itself. Notifications carry no detail and coalesce: a woken task
//! re-reads what it follows, ideally after a short debounce so the rest of a swap lands first.
//!
//! Watching only makes a change arrive sooner; it is never the only way. The caller keeps
//! polling, and re-creates the watcher on its poll tick when [`FolderWatcher::failed`]: the
//! watcher could not start, a folder could not be watched (it does not exist yet), or the
//! watcher reported an error since. Nothing here panics or returns an error; problems are
//! logged (`tracing`, a warning the first time, debug while the same problem repeats).
//!
//! # Example
//!
//! ```
//! use core::time::Duration;
//! use std::sync::Arc;
//! use meshid_watch::{FolderWatcher, folder_of};
//! use tokio::sync::Notify;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let bundle = dir.path().join("ca-bundle.crt");
//! let wake = Arc::new(Notify::new());
//! let mut watcher = FolderWatcher::start(&[folder_of(&bundle)], Arc::clone(&wake));
//! assert!(!watcher.failed());
//!
//! std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\n")?;
//! tokio::time::timeout(Duration::from_secs(5), wake.notified()).await?;
//!
//! // On the poll tick: re-create the watcher if it failed (here it did not).
//! assert!(!watcher.restart_if_failed());
//! # Ok(())
//! # }
//! ```
//!
//! # Limitations
//!
//! - Folders are watched, not files: a change to another file in the same folder wakes the task
//!   too (it finds its content unchanged). Subfolders are not watched.
//! - A watched folder that is removed and created again is not watched again until a
//!   [`FolderWatcher::restart`]: the removal is not counted as a failure. The caller's poll
//!   still sees the changes. (Kubelet never removes the folder of a mounted volume.)
//! - On file systems without notifications (some network and FUSE mounts) nothing wakes the
//!   task; the poll alone applies changes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use core::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// The folder to watch for changes to `file`: its parent, or `.` for a bare file name.
///
/// Kubelet updates a mounted ConfigMap or Secret by swapping the `..data` link in this folder,
/// so watching the folder (not the file, a link that never changes) sees every update.
pub fn folder_of(file: &Path) -> &Path {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Wakes a task when anything in some folders changes; see the [crate] docs.
///
/// Dropping it stops the notifications.
pub struct FolderWatcher {
    dirs: Vec<PathBuf>,
    wake: Arc<Notify>,
    /// The running watcher; `None` if it could not be created.
    watcher: Option<RecommendedWatcher>,
    /// Set when the running watcher could not watch a folder or reported an error. Each
    /// watcher has its own flag, so a late error from a replaced one cannot mark its successor.
    failed: Arc<AtomicBool>,
    /// The last start-up problem warned about, so an unchanged one is not repeated every poll.
    reported: Option<String>,
}

impl fmt::Debug for FolderWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FolderWatcher")
            .field("dirs", &self.dirs)
            .field("failed", &self.failed())
            .finish_non_exhaustive()
    }
}

impl FolderWatcher {
    /// Starts watching each of `dirs` (once each, not recursively), calling `wake.notify_one()`
    /// for every change in them and for every watcher error.
    ///
    /// Never fails: if the watcher cannot be created or a folder cannot be watched, a warning
    /// is logged, the folders that can be watched are, and [`failed`](Self::failed) is `true`
    /// until a [`restart`](Self::restart) succeeds.
    pub fn start(dirs: &[&Path], wake: Arc<Notify>) -> Self {
        let mut unique: Vec<PathBuf> = Vec::with_capacity(dirs.len());
        for dir in dirs {
            if !unique.iter().any(|seen| seen == dir) {
                unique.push(dir.to_path_buf());
            }
        }
        let mut watcher = Self {
            dirs: unique,
            wake,
            watcher: None,
            failed: Arc::new(AtomicBool::new(false)),
            reported: None,
        };
        watcher.restart();
        watcher
    }

    /// The watched folders, without repeats.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Whether the watcher is not (fully) working: it could not be created, a folder could not
    /// be watched, or it reported an error since it started. Changes may then be missed until
    /// a [`restart`](Self::restart).
    pub fn failed(&self) -> bool {
        self.watcher.is_none() || self.failed.load(Ordering::SeqCst)
    }

    /// Re-creates the watcher if it [`failed`](Self::failed); `true` if it did. Call it on the
    /// poll tick, before the poll's read, so a change made while it was down is still seen.
    pub fn restart_if_failed(&mut self) -> bool {
        if self.failed() {
            self.restart();
            true
        } else {
            false
        }
    }

    /// Drops the watcher and creates a new one on the same folders.
    pub fn restart(&mut self) {
        // One watcher at a time: the old one's notifications stop before the new one starts.
        self.watcher = None;
        let failed = Arc::new(AtomicBool::new(false));
        self.failed = Arc::clone(&failed);
        let wake = Arc::clone(&self.wake);
        let handler = move |result: notify::Result<notify::Event>| match result {
            // Reads (our own among them) show up as access events; only changes matter.
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
            Ok(_) => wake.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "file watcher error; polling continues and the watcher is re-created");
                failed.store(true, Ordering::SeqCst);
                wake.notify_one();
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(e) => {
                self.report(format!("cannot start the file watcher: {e}"));
                return;
            }
        };
        let mut problems = Vec::new();
        for dir in &self.dirs {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                problems.push(format!("cannot watch folder {}: {e}", dir.display()));
            }
        }
        self.watcher = Some(watcher);
        if problems.is_empty() {
            if self.reported.take().is_some() {
                tracing::info!(dirs = ?self.dirs, "file watcher running again");
            }
            return;
        }
        self.failed.store(true, Ordering::SeqCst);
        self.report(problems.join("; "));
    }

    /// Logs a start-up problem: a warning if it is new, at debug if it is the last one again.
    fn report(&mut self, problem: String) {
        const POLLING: &str = "file watcher not (fully) running; polling only until the next retry";
        if self.reported.as_deref() == Some(problem.as_str()) {
            tracing::debug!(%problem, "{POLLING}");
        } else {
            tracing::warn!(%problem, "{POLLING}");
            self.reported = Some(problem);
        }
    }
}
