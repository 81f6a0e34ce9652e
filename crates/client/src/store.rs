//! The credential store shared by the driver (which installs) and the TLS side (which reads).

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use meshid_verify::TrustBundle;
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use tokio::sync::watch;

/// The client's state, published on a watch channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// No certificate yet ("Waiting for identity to be initialized...").
    Pending,
    /// A valid certificate is installed.
    Ready {
        /// The local identity.
        identity: String,
        /// The installed certificate's NotAfter.
        not_after: OffsetDateTime,
    },
    /// The certificate expired before a renewal succeeded: handshakes fail closed.
    Expired {
        /// The local identity.
        identity: String,
        /// When the certificate expired.
        expired_at: OffsetDateTime,
    },
}

/// An installed certificate.
#[derive(Debug)]
pub(crate) struct Installed {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

/// The current certificate and trust bundle, swapped without locks: new handshakes see a new
/// certificate at once, established connections are untouched.
///
/// The two checked changes, a certificate checked against the bundle before it is installed and
/// a bundle checked against the certificate before it is installed, take turns: otherwise a
/// renewal checked against the old bundle could land just after a new bundle was checked
/// against the previous certificate, and leave a certificate the new bundle does not verify.
/// Readers (handshakes) never wait.
#[derive(Debug)]
pub struct Credentials {
    identity: String,
    current: ArcSwapOption<Installed>,
    bundle: ArcSwap<TrustBundle>,
    state: watch::Sender<State>,
    changes: Mutex<()>,
}

impl Credentials {
    pub(crate) fn new(identity: String, bundle: TrustBundle) -> Self {
        Self {
            identity,
            current: ArcSwapOption::empty(),
            bundle: ArcSwap::from_pointee(bundle),
            state: watch::Sender::new(State::Pending),
            changes: Mutex::new(()),
        }
    }

    /// The local identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The certificate and key to present, if one is installed and unexpired.
    pub fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .load()
            .as_ref()
            .map(|installed| Arc::clone(&installed.key))
    }

    /// The installed certificate's validity, if one is installed.
    pub fn validity(&self) -> Option<(OffsetDateTime, OffsetDateTime)> {
        self.current
            .load()
            .as_ref()
            .map(|i| (i.not_before, i.not_after))
    }

    /// The trust bundle peers are verified against.
    pub fn trust_bundle(&self) -> Arc<TrustBundle> {
        self.bundle.load_full()
    }

    /// Replaces the trust bundle (anchor rotation) without touching the certificate.
    ///
    /// Nothing is checked here; [`crate::BundleWatcher`] installs a bundle file only after it
    /// parsed and verified the installed certificate.
    pub fn set_trust_bundle(&self, bundle: TrustBundle) {
        let _turn = self.turn();
        self.bundle.store(Arc::new(bundle));
    }

    /// Installs `bundle` if `check` accepts it with the certificate installed now; no
    /// certificate is installed while `check` runs. Returns the bundle it replaced.
    pub(crate) fn set_trust_bundle_checked<E>(
        &self,
        bundle: TrustBundle,
        check: impl FnOnce(Option<&Installed>, &TrustBundle) -> Result<(), E>,
    ) -> Result<Arc<TrustBundle>, E> {
        let _turn = self.turn();
        check(self.current.load().as_deref(), &bundle)?;
        Ok(self.bundle.swap(Arc::new(bundle)))
    }

    /// Installs the certificate `check` makes of the bundle in use now; the bundle is not
    /// replaced while `check` runs.
    pub(crate) fn install_checked<E>(
        &self,
        check: impl FnOnce(&TrustBundle) -> Result<Installed, E>,
    ) -> Result<(OffsetDateTime, OffsetDateTime), E> {
        let _turn = self.turn();
        let installed = check(&self.bundle.load())?;
        let validity = (installed.not_before, installed.not_after);
        self.install(installed);
        Ok(validity)
    }

    /// Waits for the other checked change to finish. A panic in a check leaves nothing half
    /// done (each change is one swap after its check), so a poisoned lock is taken as is.
    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of the client's state.
    pub fn state(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// The current state.
    pub fn current_state(&self) -> State {
        self.state.borrow().clone()
    }

    pub(crate) fn install(&self, installed: Installed) {
        let not_after = installed.not_after;
        self.current.store(Some(Arc::new(installed)));
        self.state.send_replace(State::Ready {
            identity: self.identity.clone(),
            not_after,
        });
    }

    pub(crate) fn expire(&self, expired_at: OffsetDateTime) {
        self.current.store(None);
        self.state.send_replace(State::Expired {
            identity: self.identity.clone(),
            expired_at,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use meshid_ca::bootstrap::{CaOptions, create_root};
    use time::macros::datetime;

    use super::*;

    fn bundle(name: &str) -> TrustBundle {
        let root = create_root(&CaOptions::root(
            name,
            datetime!(2026-01-01 0:00 UTC),
            Duration::from_secs(365 * 86_400),
        ))
        .unwrap();
        TrustBundle::from_pem(root.pem().as_bytes()).unwrap()
    }

    fn credentials(bundle: &TrustBundle) -> Arc<Credentials> {
        Arc::new(Credentials::new(
            "web.emojivoto.serviceaccount.identity.linkerd.cluster.local".to_owned(),
            bundle.clone(),
        ))
    }

    #[test]
    fn a_renewal_waits_for_a_bundle_check_and_is_checked_against_its_result() {
        let (old, new) = (bundle("old.example"), bundle("new.example"));
        let credentials = credentials(&old);

        let (entered, entered_rx) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let watcher = {
            let (credentials, new) = (Arc::clone(&credentials), new.clone());
            thread::spawn(move || {
                credentials.set_trust_bundle_checked(new, |installed, _| {
                    assert!(installed.is_none());
                    entered.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok::<_, ()>(())
                })
            })
        };
        entered_rx.recv().unwrap();

        let (seen, seen_rx) = mpsc::channel();
        let renewal = {
            let credentials = Arc::clone(&credentials);
            thread::spawn(move || {
                credentials.install_checked(|bundle| {
                    seen.send(bundle.clone()).unwrap();
                    Err::<Installed, _>("refused by the test")
                })
            })
        };
        // While the bundle is being checked, the renewal's check does not start...
        assert_eq!(
            seen_rx.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        release.send(()).unwrap();
        assert_eq!(*watcher.join().unwrap().unwrap(), old);
        // ...and then it checks against the bundle just installed.
        assert_eq!(seen_rx.recv().unwrap(), new);
        assert_eq!(renewal.join().unwrap(), Err("refused by the test"));
        assert_eq!(*credentials.trust_bundle(), new);
        assert_eq!(credentials.current_state(), State::Pending);
    }

    #[test]
    fn a_refused_bundle_leaves_the_bundle_in_use() {
        let (old, new) = (bundle("old.example"), bundle("new.example"));
        let credentials = credentials(&old);
        assert_eq!(
            credentials.set_trust_bundle_checked(new, |_, _| Err("orphans the certificate")),
            Err("orphans the certificate")
        );
        assert_eq!(*credentials.trust_bundle(), old);
    }
}
