//! The folder watcher in real time: writes and kubelet-style swaps wake the task, reads do not;
//! a folder that cannot be watched marks the watcher failed until a restart finds it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshid_watch::{FolderWatcher, folder_of};
use tempfile::TempDir;
use tokio::sync::Notify;

/// How long a notification may take on a busy machine.
const WITHIN: Duration = Duration::from_secs(5);

fn scratch(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshid-watch-{name}-"))
        .tempdir()
        .unwrap()
}

async fn woken(wake: &Notify) {
    tokio::time::timeout(WITHIN, wake.notified())
        .await
        .expect("no notification");
}

/// Consumes wake-ups left over from earlier changes. One write is several inotify events
/// (create, modify, close), and `notify_one` stores a wake-up for a task not yet waiting: without
/// this, the next [`woken`] would succeed whether or not the next change is seen.
async fn settle(wake: &Notify) {
    while tokio::time::timeout(QUIET, wake.notified()).await.is_ok() {}
}

/// How long without a wake-up counts as settled. Too short only weakens a test (a late event
/// could stand in for a missed one); it cannot make one fail.
const QUIET: Duration = Duration::from_millis(300);

/// Each folder on its own: a write into the second of two watched folders, with nothing ever
/// written into the first, wakes the task (and the other way round).
#[tokio::test]
async fn a_file_written_into_any_watched_folder_wakes_the_task() {
    for written in 0..2 {
        let folders = [scratch("first"), scratch("second")];
        let wake = Arc::new(Notify::new());
        let watcher =
            FolderWatcher::start(&[folders[0].path(), folders[1].path()], Arc::clone(&wake));
        assert!(!watcher.failed(), "{watcher:?}");

        std::fs::write(folders[written].path().join("tls.crt"), "one").unwrap();
        woken(&wake).await;
    }
}

/// One watcher, changes in turn: each folder's change is seen after the other's has settled.
#[tokio::test]
async fn changes_in_each_folder_in_turn_wake_the_task_each_time() {
    let first = scratch("first");
    let second = scratch("second");
    let wake = Arc::new(Notify::new());
    let _watcher = FolderWatcher::start(&[first.path(), second.path()], Arc::clone(&wake));

    for round in 0..2 {
        for dir in [&first, &second] {
            std::fs::write(dir.path().join("ca-bundle.crt"), format!("{round}")).unwrap();
            woken(&wake).await;
            settle(&wake).await;
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_wakes_the_task() {
    use std::os::unix::fs::symlink;

    let dir = scratch("configmap");
    std::fs::create_dir(dir.path().join("..1")).unwrap();
    std::fs::write(dir.path().join("..1/ca-bundle.crt"), "one").unwrap();
    symlink("..1", dir.path().join("..data")).unwrap();
    symlink("..data/ca-bundle.crt", dir.path().join("ca-bundle.crt")).unwrap();
    let file = dir.path().join("ca-bundle.crt");
    let wake = Arc::new(Notify::new());
    let _watcher = FolderWatcher::start(&[folder_of(&file)], Arc::clone(&wake));

    std::fs::create_dir(dir.path().join("..2")).unwrap();
    std::fs::write(dir.path().join("..2/ca-bundle.crt"), "two").unwrap();
    symlink("..2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    woken(&wake).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
}

// Access events are reported as such by inotify; other platforms' back ends may differ.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn reading_the_watched_files_does_not_wake_the_task() {
    let dir = scratch("reads");
    let file = dir.path().join("ca-bundle.crt");
    std::fs::write(&file, "one").unwrap();
    let wake = Arc::new(Notify::new());
    let _watcher = FolderWatcher::start(&[dir.path()], Arc::clone(&wake));

    for _ in 0..3 {
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one");
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), wake.notified()).await;
    assert!(quiet.is_err(), "a read woke the task");

    // Still watching: a write does.
    std::fs::write(&file, "two").unwrap();
    woken(&wake).await;
}

#[tokio::test]
async fn a_missing_folder_fails_until_a_restart_finds_it_and_the_others_are_watched_meanwhile() {
    let present = scratch("present");
    // Not inside a watched folder, so creating it wakes nothing by itself.
    let parent = scratch("parent");
    let missing = parent.path().join("trust-roots");
    let wake = Arc::new(Notify::new());
    let mut watcher = FolderWatcher::start(&[missing.as_path(), present.path()], Arc::clone(&wake));
    assert!(watcher.failed());
    std::fs::write(present.path().join("tls.crt"), "one").unwrap();
    woken(&wake).await;
    // Still missing: the restart fails again.
    assert!(watcher.restart_if_failed());
    assert!(watcher.failed());

    std::fs::create_dir(&missing).unwrap();
    assert!(watcher.restart_if_failed());
    assert!(!watcher.failed(), "{watcher:?}");
    // Nothing to do on a working watcher.
    assert!(!watcher.restart_if_failed());
    settle(&wake).await;
    std::fs::write(missing.join("ca-bundle.crt"), "one").unwrap();
    woken(&wake).await;
    // The folder that was there all along is still watched after the restart.
    settle(&wake).await;
    std::fs::write(present.path().join("tls.crt"), "two").unwrap();
    woken(&wake).await;
}

#[test]
fn a_folder_is_watched_once() {
    let dir = scratch("once");
    let watcher = FolderWatcher::start(
        &[
            dir.path(),
            dir.path(),
            folder_of(&dir.path().join("tls.crt")),
        ],
        Arc::new(Notify::new()),
    );
    assert_eq!(watcher.dirs(), [dir.path()]);
}

#[test]
fn the_folder_of_a_file_is_its_parent_or_the_current_one() {
    assert_eq!(
        folder_of(Path::new(
            "/var/run/linkerd/identity/trust-roots/ca-bundle.crt"
        )),
        Path::new("/var/run/linkerd/identity/trust-roots")
    );
    assert_eq!(folder_of(Path::new("issuer/tls.crt")), Path::new("issuer"));
    assert_eq!(folder_of(Path::new("ca-bundle.crt")), Path::new("."));
}
