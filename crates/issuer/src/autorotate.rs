//! Issuer auto-rotation for clusters without cert-manager.

use core::future::Future;
use core::time::Duration;

use meshid_ca::bootstrap::CaOptions;
use meshid_policy::{Clock, SystemClock};
use meshid_rotation::IssuerSchedule;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::bootstrap::{
    ISSUER_COMMON_NAME, MintedIssuer, TrustAnchorKey, issuer_options, mint_issuer,
};
use crate::event::reason;
use crate::write::{CERT_MODE, FileSpec, KEY_MODE, swap_data_dir};
use crate::{Error, Event, EventKind, EventSink, IssuerFolder, ReloadHandle, TracingSink};

/// The longest the rotator sleeps between checks, so a clock jump or a file replaced behind
/// its back is noticed.
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(600);
/// How long after a failed rotation it tries again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// How far a minted issuer's NotBefore is set before `now`, for replicas whose clocks lag.
pub const BACKDATE: Duration = Duration::from_secs(60);
/// The lock file in the issuer folder that lets only one rotator write at a time.
pub const ROTATION_LOCK_FILE: &str = ".meshid-rotation.lock";

/// Mints a fresh issuer from the trust-anchor key on cert-manager's schedule and writes it
/// into the issuer folder with a `..data` swap; the [`Reloader`](crate::Reloader) watching
/// the folder validates it and switches the CA to it.
///
/// The issuer in the folder is renewed when [`IssuerSchedule::needs_renewal`] says so for its
/// NotBefore and NotAfter (`duration` 48h; `renewBefore`, `renewBeforePercentage`, else 2/3
/// of the lifetime), and at once when the folder holds no readable issuer certificate.
///
/// Several replicas may run a rotator over one shared folder: each rotation holds an
/// exclusive lock on [`ROTATION_LOCK_FILE`] in the folder (an advisory `flock`, released
/// when the rotation ends or its process dies) and checks again under it whether the issuer
/// is still due, so at most one of them writes a new issuer and the others pick it up
/// through their [`Reloader`](crate::Reloader). A rotator that finds the lock held skips
/// this check. The lock serialises writers that share a filesystem; replicas on different
/// nodes, each with its own copy of the folder (a mounted Secret), cannot share it: there,
/// let cert-manager rotate the issuer Secret instead.
pub struct AutoRotator<K: Clock = SystemClock> {
    anchor: TrustAnchorKey,
    folder: IssuerFolder,
    schedule: IssuerSchedule,
    common_name: String,
    clock: K,
    sink: Box<dyn EventSink>,
    reload: Option<ReloadHandle>,
}

impl<K: Clock> AutoRotator<K> {
    /// A rotator writing issuers signed by `anchor` into `folder` on `schedule`.
    pub fn new(
        anchor: TrustAnchorKey,
        folder: IssuerFolder,
        schedule: IssuerSchedule,
        clock: K,
    ) -> Result<Self, Error> {
        schedule.validate().map_err(Error::InvalidSchedule)?;
        Ok(Self {
            anchor,
            folder,
            schedule,
            common_name: ISSUER_COMMON_NAME.to_owned(),
            clock,
            sink: Box::new(TracingSink),
            reload: None,
        })
    }

    /// Sets the issuer's common name (default `identity.linkerd.cluster.local`).
    pub fn with_common_name(mut self, common_name: impl Into<String>) -> Self {
        self.common_name = common_name.into();
        self
    }

    /// Sends events (`IssuerRotated`, `IssuerRotationFailed`) to `sink`.
    pub fn with_sink(mut self, sink: impl EventSink) -> Self {
        self.sink = Box::new(sink);
        self
    }

    /// Wakes this reloader after each write, rather than waiting for its watcher or poll.
    pub fn with_reload_handle(mut self, handle: ReloadHandle) -> Self {
        self.reload = Some(handle);
        self
    }

    /// The validity of the issuer in the folder, if it holds a readable certificate.
    pub fn current_validity(&self) -> Option<(OffsetDateTime, OffsetDateTime)> {
        let pem_text = std::fs::read(self.folder.cert_path()).ok()?;
        let block = pem::parse(pem_text).ok()?;
        let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
        Some((
            cert.validity().not_before.to_datetime(),
            cert.validity().not_after.to_datetime(),
        ))
    }

    /// When the issuer in the folder is due (now, if it holds none).
    pub fn renew_at(&self) -> OffsetDateTime {
        let now = self.clock.now();
        match self.current_validity() {
            Some((nb, na)) => self.schedule.renew_at(nb, na).unwrap_or(now),
            None => now,
        }
    }

    /// Mints and writes a fresh issuer if the one in the folder is due at the clock's `now`
    /// and no other rotator is writing one (then `Ok(None)`: the other's issuer is picked up
    /// by the reloader).
    pub fn rotate_if_due(&self) -> Result<Option<MintedIssuer>, Error> {
        if !self.is_due(self.clock.now()) {
            return Ok(None);
        }
        let Some(_lock) = self.lock(false)? else {
            tracing::debug!(
                folder = %self.folder.dir().display(),
                "another rotator holds the rotation lock; not rotating"
            );
            return Ok(None);
        };
        // Another replica may have written a fresh issuer while this one waited for the lock.
        let now = self.clock.now();
        if !self.is_due(now) {
            return Ok(None);
        }
        self.rotate_locked(now).map(Some)
    }

    fn is_due(&self, now: OffsetDateTime) -> bool {
        match self.current_validity() {
            Some((nb, na)) => self.schedule.needs_renewal(now, nb, na),
            None => true,
        }
    }

    /// The rotation lock: `Ok(None)` if another rotator holds it and `wait` is false.
    fn lock(&self, wait: bool) -> Result<Option<std::fs::File>, Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.folder.dir().join(ROTATION_LOCK_FILE);
        let io = |source: std::io::Error| Error::Io {
            action: "locking",
            path: path.clone(),
            source: std::sync::Arc::new(source),
        };
        let dir = self.folder.dir();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "creating",
            path: dir.to_path_buf(),
            source: std::sync::Arc::new(source),
        })?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(KEY_MODE)
            .open(&path)
            .map_err(io)?;
        if wait {
            file.lock().map_err(io)?;
            return Ok(Some(file));
        }
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Mints and writes a fresh issuer now, waiting for any other rotator of the folder to
    /// finish first.
    pub fn rotate(&self, now: OffsetDateTime) -> Result<MintedIssuer, Error> {
        let _lock = match self.lock(true) {
            Ok(lock) => lock,
            Err(e) => return self.report(Err(e), now),
        };
        self.rotate_locked(now)
    }

    fn rotate_locked(&self, now: OffsetDateTime) -> Result<MintedIssuer, Error> {
        let result = self.mint_and_write(now);
        self.report(result, now)
    }

    fn report(
        &self,
        result: Result<MintedIssuer, Error>,
        now: OffsetDateTime,
    ) -> Result<MintedIssuer, Error> {
        match &result {
            Ok(issuer) => {
                let message = format!(
                    "Wrote a new identity issuer valid until {} to {}",
                    meshid_policy::rfc3339(issuer.not_after),
                    self.folder.dir().display()
                );
                self.sink.emit(&Event::new(
                    EventKind::Normal,
                    reason::ISSUER_ROTATED,
                    message,
                    now,
                ));
                if let Some(reload) = &self.reload {
                    reload.trigger();
                }
            }
            Err(e) => {
                let message = format!("Could not rotate the identity issuer: {e}");
                self.sink.emit(&Event::new(
                    EventKind::Warning,
                    reason::ISSUER_ROTATION_FAILED,
                    message,
                    now,
                ));
            }
        }
        result
    }

    fn mint_and_write(&self, now: OffsetDateTime) -> Result<MintedIssuer, Error> {
        let mut options: CaOptions =
            issuer_options(&self.common_name, now, self.schedule.duration, true);
        options.not_before = now - BACKDATE;
        let issuer = mint_issuer(&self.anchor, &options)?;
        let scheme = self.folder.scheme();
        let anchor_pem = self.anchor.cert_pem();
        let mut files = vec![
            FileSpec {
                name: scheme.cert_file(),
                contents: issuer.cert_pem.as_bytes(),
                mode: CERT_MODE,
            },
            FileSpec {
                name: scheme.key_file(),
                contents: issuer.key_pem.as_bytes(),
                mode: KEY_MODE,
            },
        ];
        if let Some(ca_file) = scheme.ca_file() {
            files.push(FileSpec {
                name: ca_file,
                contents: anchor_pem.as_bytes(),
                mode: CERT_MODE,
            });
        }
        swap_data_dir(self.folder.dir(), &files, now)?;
        Ok(issuer)
    }

    /// Runs until `shutdown` completes: rotates when due, sleeping until the next renewal
    /// point (at most [`MAX_CHECK_INTERVAL`] at a time), retrying failures every
    /// [`RETRY_INTERVAL`].
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.rotate_if_due() {
                Ok(_) => {
                    let now = self.clock.now();
                    let until = self.renew_at() - now;
                    let until = Duration::try_from(until).unwrap_or(Duration::ZERO);
                    until.clamp(Duration::from_secs(1), MAX_CHECK_INTERVAL)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "issuer rotation failed; retrying");
                    RETRY_INTERVAL
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl<K: Clock> core::fmt::Debug for AutoRotator<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AutoRotator")
            .field("anchor", &self.anchor)
            .field("folder", &self.folder)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}
