//! What the watcher logs: a problem is a warning the first time and debug while it repeats, and
//! recovery is announced; its `Debug` shows the folders and whether it failed.

#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};

use meshid_watch::FolderWatcher;
use tokio::sync::Notify;
use tracing_subscriber::fmt::MakeWriter;

/// Log output, kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// The lines logged at `level` (`WARN`, `INFO`, `DEBUG`) that contain `text`.
    fn count(&self, level: &str, text: &str) -> usize {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(level) && line.contains(text))
            .count()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[test]
fn a_repeated_problem_is_warned_about_once_and_recovery_is_announced() {
    let parent = tempfile::Builder::new()
        .prefix("meshid-watch-logging-")
        .tempdir()
        .unwrap();
    let missing = parent.path().join("trust-roots");
    let problem = format!("cannot watch folder {}", missing.display());
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();

    tracing::subscriber::with_default(subscriber, || {
        let mut watcher = FolderWatcher::start(&[missing.as_path()], Arc::new(Notify::new()));
        assert_eq!(logs.count("WARN", &problem), 1);
        assert_eq!(
            format!("{watcher:?}"),
            format!("FolderWatcher {{ dirs: [{missing:?}], failed: true, .. }}")
        );

        // The same problem on every poll: debug only.
        for _ in 0..2 {
            assert!(watcher.restart_if_failed());
        }
        assert_eq!(logs.count("WARN", &problem), 1);
        assert_eq!(logs.count("DEBUG", &problem), 2);

        std::fs::create_dir(&missing).unwrap();
        assert!(watcher.restart_if_failed());
        assert_eq!(logs.count("INFO", "file watcher running again"), 1);
        assert_eq!(
            format!("{watcher:?}"),
            format!("FolderWatcher {{ dirs: [{missing:?}], failed: false, .. }}")
        );
    });
}
