//! Issuer auto-rotation under injected (paused tokio) time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use meshid_issuer::bootstrap::TrustAnchorKey;
use meshid_issuer::{
    AutoRotator, CollectingSink, Error, IssuerFolder, IssuerScheme, ROTATION_LOCK_FILE, Reloader,
    ReloaderOptions, reason,
};
use meshid_policy::{ManualClock, TokioClock};
use meshid_rotation::IssuerSchedule;
use support::*;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn a_new_issuer_appears_at_the_renew_before_point_and_the_ca_switches_to_it() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let anchor = TrustAnchorKey::from_ca_certificate(&root).unwrap();
    let folder = IssuerFolder::new(tmp.path().join("issuer"), IssuerScheme::LinkerdTls);
    let ca = ca(&[&root]);
    let clock = TokioClock::new(START);
    let events = Arc::new(CollectingSink::new());
    // The poll is slow on purpose: the rotator wakes the reloader itself.
    let reloader = Reloader::new(Arc::clone(&ca), folder.clone(), clock)
        .with_sink(Arc::clone(&events))
        .with_options(ReloaderOptions::new(HOUR, false));
    let mut schedule = IssuerSchedule::default();
    schedule.renew_before = Some(25 * HOUR);
    let rotator = AutoRotator::new(anchor, folder.clone(), schedule, clock)
        .unwrap()
        .with_sink(Arc::clone(&events))
        .with_reload_handle(reloader.handle());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let reload_task = tokio::spawn(reloader.run(until(stopped.clone())));
    let rotate_task = tokio::spawn(rotator.run(until(stopped)));

    // An empty folder gets an issuer at once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = ca.issuer().expect("the first issuer is loaded");
    assert_eq!(first.not_before(), START - Duration::from_secs(60));
    assert_eq!(first.not_after(), START + 48 * HOUR);
    let key_mode = std::fs::metadata(folder.key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    assert!(std::fs::read_link(folder.dir().join("..data")).is_ok());

    // Just before the renewBefore point (48h - 25h = 23h): unchanged.
    tokio::time::sleep(23 * HOUR - Duration::from_secs(10)).await;
    assert_eq!(ca.issuer().unwrap().certificate(), first.certificate());

    // Just after it: a new issuer, chained to the anchor, in use.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let second = ca.issuer().unwrap();
    assert_ne!(second.certificate(), first.certificate());
    assert_eq!(
        second.not_before(),
        START + 23 * HOUR - Duration::from_secs(60)
    );
    assert_eq!(second.anchor().as_ref(), root.der().as_ref());
    assert_eq!(events.with_reason(reason::ISSUER_ROTATED).len(), 2);
    assert_eq!(events.with_reason(reason::ISSUER_UPDATED).len(), 2);
    // At most the reloader's first look at the folder before the rotator filled it.
    for skipped in events.with_reason(reason::ISSUER_UPDATE_SKIPPED) {
        assert!(
            skipped.message.contains("No such file"),
            "{}",
            skipped.message
        );
    }
    // Only the current version is kept on disk.
    let versions = std::fs::read_dir(folder.dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("..") && name != "..data"
        })
        .count();
    assert_eq!(versions, 1);

    stop.send(true).unwrap();
    reload_task.await.unwrap();
    rotate_task.await.unwrap();
}

#[test]
fn the_anchor_key_must_be_private() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let cert = tmp.path().join("ca.crt");
    let key = tmp.path().join("ca.key");
    std::fs::write(&cert, root.pem()).unwrap();
    std::fs::write(&key, root.key_pem().as_bytes()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = TrustAnchorKey::load(&cert, &key).unwrap_err();
    assert!(matches!(
        err,
        Error::AnchorKeyPermissions { mode: 0o644, .. }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "{} has mode 0644; a trust-anchor key must be readable by its owner only (chmod 600 {})",
            key.display(),
            key.display()
        )
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let anchor = TrustAnchorKey::load(&cert, &key).unwrap();
    assert_eq!(anchor.subject(), "CN=root.linkerd.cluster.local");
    assert!(!format!("{anchor:?}").contains("PRIVATE"));
}

#[test]
fn a_schedule_cert_manager_would_refuse_is_refused() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let mut schedule = IssuerSchedule::default();
    schedule.renew_before = Some(49 * HOUR);
    let err = AutoRotator::new(
        TrustAnchorKey::from_ca_certificate(&root).unwrap(),
        IssuerFolder::new(tmp.path(), IssuerScheme::KubernetesTls),
        schedule,
        FixedClock(START),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("must be longer than renewBefore"),
        "{err}"
    );
}

/// Replicas sharing one issuer folder, all due at once: one writes, the others see its issuer.
#[test]
fn of_several_rotators_on_one_folder_only_one_writes() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let folder = IssuerFolder::new(tmp.path().join("issuer"), IssuerScheme::LinkerdTls);
    let events = Arc::new(CollectingSink::new());
    const REPLICAS: usize = 8;
    let barrier = Arc::new(std::sync::Barrier::new(REPLICAS));
    let written: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..REPLICAS)
            .map(|_| {
                let rotator = AutoRotator::new(
                    TrustAnchorKey::from_ca_certificate(&root).unwrap(),
                    folder.clone(),
                    IssuerSchedule::default(),
                    ManualClock::new(START),
                )
                .unwrap()
                .with_sink(Arc::clone(&events));
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    barrier.wait();
                    rotator.rotate_if_due().unwrap().is_some()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(written.iter().filter(|w| **w).count(), 1, "{written:?}");
    assert_eq!(events.with_reason(reason::ISSUER_ROTATED).len(), 1);
    assert!(folder.read().is_ok());
    let mode = std::fs::metadata(folder.dir().join(ROTATION_LOCK_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the lock file is private");
}

#[test]
fn a_rotator_that_finds_the_lock_held_skips_and_rotates_once_it_is_free() {
    let tmp = temp_dir();
    let root = root("root.linkerd.cluster.local");
    let folder = IssuerFolder::new(tmp.path().join("issuer"), IssuerScheme::LinkerdTls);
    std::fs::create_dir_all(folder.dir()).unwrap();
    let rotator = AutoRotator::new(
        TrustAnchorKey::from_ca_certificate(&root).unwrap(),
        folder.clone(),
        IssuerSchedule::default(),
        ManualClock::new(START),
    )
    .unwrap();
    // Another replica is writing.
    let held = std::fs::File::create(folder.dir().join(ROTATION_LOCK_FILE)).unwrap();
    held.lock().unwrap();
    assert!(rotator.rotate_if_due().unwrap().is_none());
    assert!(
        folder.read().is_err(),
        "nothing written while the lock is held"
    );
    held.unlock().unwrap();
    let minted = rotator.rotate_if_due().unwrap().expect("due and free");
    assert_eq!(minted.not_before, START - Duration::from_secs(60));
    // The issuer is fresh now: nothing more to do.
    assert!(rotator.rotate_if_due().unwrap().is_none());
}
