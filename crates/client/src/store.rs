//! The credential store shared by the driver (which installs) and the TLS side (which reads).

use std::sync::Arc;

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
#[derive(Debug)]
pub struct Credentials {
    identity: String,
    current: ArcSwapOption<Installed>,
    bundle: ArcSwap<TrustBundle>,
    state: watch::Sender<State>,
}

impl Credentials {
    pub(crate) fn new(identity: String, bundle: TrustBundle) -> Self {
        Self {
            identity,
            current: ArcSwapOption::empty(),
            bundle: ArcSwap::from_pointee(bundle),
            state: watch::Sender::new(State::Pending),
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

    /// The installed certificate, key and validity, loaded together.
    pub(crate) fn installed(&self) -> Option<Arc<Installed>> {
        self.current.load_full()
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
        self.bundle.store(Arc::new(bundle));
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
