//! The credential store shared by the driver (which installs) and the TLS side (which reads).

use core::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use meshid_verify::TrustBundle;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use tokio::sync::watch;
use zeroize::Zeroizing;

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
    /// The private key as PKCS#8 DER, for [`Snapshot::private_key_pkcs8`] (wiped when the
    /// last snapshot holding it is dropped).
    pub(crate) key_pkcs8: Arc<Zeroizing<Vec<u8>>>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

/// The installed certificate chain, its private key and the trust bundle, read together: what
/// a local identity API hands a workload (the SPIFFE Workload API's X.509-SVID, Envoy SDS
/// secrets), which carries the private key by design.
///
/// The key never appears in `Debug` output, and its bytes are wiped when the last snapshot and
/// the credentials holding it are dropped.
#[derive(Clone)]
pub struct Snapshot {
    identity: String,
    key: Arc<CertifiedKey>,
    key_pkcs8: Arc<Zeroizing<Vec<u8>>>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    bundle: Arc<TrustBundle>,
    generation: u64,
}

impl Snapshot {
    /// The local identity the certificate was validated for.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The certificate chain, leaf first, then the intermediates (issuer first).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }

    /// The private key of the leaf, PKCS#8 DER. Hand it only to the workload it belongs to.
    pub fn private_key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }

    /// The leaf's NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The leaf's NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The trust bundle peers are verified against.
    pub fn trust_bundle(&self) -> &Arc<TrustBundle> {
        &self.bundle
    }

    /// The value of [`Credentials::changes`] this snapshot was read at.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("identity", &self.identity)
            .field("chain", &self.key.cert.len())
            .field("private_key", &"[redacted]")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("anchors", &self.bundle.len())
            .field("generation", &self.generation)
            .finish()
    }
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
    /// Bumped after every change of certificate or trust bundle.
    generation: watch::Sender<u64>,
    changes: Mutex<()>,
}

impl Credentials {
    /// Empty credentials for `identity`, trusting `bundle`. A [`crate::Client`] makes its own;
    /// this is for identities obtained another way (installed with
    /// [`Credentials::install_external`]), e.g. from a SPIFFE Workload API.
    pub fn new(identity: String, bundle: TrustBundle) -> Self {
        Self {
            identity,
            current: ArcSwapOption::empty(),
            bundle: ArcSwap::from_pointee(bundle),
            state: watch::Sender::new(State::Pending),
            generation: watch::Sender::new(0),
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
        self.changed();
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
        let previous = self.bundle.swap(Arc::new(bundle));
        self.changed();
        Ok(previous)
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

    /// Installs a certificate obtained outside a [`crate::Client`] (a Workload API's
    /// X.509-SVID), with `bundle` replacing the trust bundle when given, in one step: the chain
    /// (leaf first) must verify against that bundle at `now`, name the local identity and match
    /// `key_pkcs8`, exactly as a [`crate::Client`] checks a CA's answer. On error nothing
    /// changes. Returns the leaf's validity.
    pub fn install_external(
        &self,
        bundle: Option<TrustBundle>,
        chain: Vec<CertificateDer<'static>>,
        key_pkcs8: &[u8],
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, OffsetDateTime), crate::Error> {
        let key = meshid_csr::KeyPair::from_pkcs8_der(key_pkcs8).map_err(crate::Error::Key)?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(crate::Error::InvalidResponse {
                reason: crate::ResponseProblem::EmptyChain,
            });
        };
        let _turn = self.turn();
        let current = self.bundle.load_full();
        let checked_against = bundle.as_ref().unwrap_or(&current);
        let provider = rustls::crypto::ring::default_provider();
        let installed = crate::driver::validate_chain(
            leaf,
            intermediates,
            &key,
            &self.identity,
            checked_against,
            now,
            &provider,
        )?;
        let validity = (installed.not_before, installed.not_after);
        if let Some(bundle) = bundle {
            self.bundle.store(Arc::new(bundle));
        }
        self.install(installed);
        Ok(validity)
    }

    /// The installed certificate, its key and the trust bundle, read together; `None` until a
    /// certificate is installed, and after it expired.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let _turn = self.turn();
        let installed = self.current.load_full()?;
        Some(Snapshot {
            identity: self.identity.clone(),
            key: Arc::clone(&installed.key),
            key_pkcs8: Arc::clone(&installed.key_pkcs8),
            not_before: installed.not_before,
            not_after: installed.not_after,
            bundle: self.bundle.load_full(),
            generation: *self.generation.borrow(),
        })
    }

    /// A receiver woken after every change of certificate (issuance, renewal, expiry) or
    /// trust bundle; its value counts the changes. Servers that push the identity to a
    /// workload (Workload API, SDS) read a [`Credentials::snapshot`] on each wake-up.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn changed(&self) {
        self.generation.send_modify(|generation| *generation += 1);
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
        self.changed();
    }

    pub(crate) fn expire(&self, expired_at: OffsetDateTime) {
        self.current.store(None);
        self.state.send_replace(State::Expired {
            identity: self.identity.clone(),
            expired_at,
        });
        self.changed();
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
