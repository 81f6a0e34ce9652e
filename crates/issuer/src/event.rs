//! Events about the issuer and trust anchors, with Linkerd's reasons and messages.

use core::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use meshid_ca::Certified;
use meshid_policy::rfc3339;
use time::OffsetDateTime;

/// Event reasons (Kubernetes `Event.reason`).
pub mod reason {
    /// A new issuer was validated and is now signing (Normal).
    pub const ISSUER_UPDATED: &str = "IssuerUpdated";
    /// A new issuer could not be read or was refused; the old one keeps signing (Warning).
    pub const ISSUER_UPDATE_SKIPPED: &str = "IssuerUpdateSkipped";
    /// A new issuer was read but failed validation (Warning, next to `IssuerUpdateSkipped`).
    pub const ISSUER_VALIDATION_FAILED: &str = "IssuerValidationFailed";
    /// A leaf certificate was issued (Normal).
    pub const ISSUED_LEAF_CERTIFICATE: &str = "IssuedLeafCertificate";
    /// A new trust-anchor bundle is in force (Normal).
    pub const TRUST_ANCHORS_UPDATED: &str = "TrustAnchorsUpdated";
    /// A new trust-anchor bundle could not be read or was refused; the old one stays (Warning).
    pub const TRUST_ANCHORS_UPDATE_SKIPPED: &str = "TrustAnchorsUpdateSkipped";
    /// A fresh issuer was minted and written to the issuer folder (Normal).
    pub const ISSUER_ROTATED: &str = "IssuerRotated";
    /// Minting or writing a fresh issuer failed; it is retried (Warning).
    pub const ISSUER_ROTATION_FAILED: &str = "IssuerRotationFailed";
}

/// Kubernetes `Event.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Things going as they should.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventKind {
    /// `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// An event: what a [`EventSink`] receives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Normal or Warning.
    pub kind: EventKind,
    /// The reason, one of [`reason`].
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// When it happened (the injected clock's time).
    pub time: OffsetDateTime,
}

impl Event {
    /// An event.
    pub fn new(
        kind: EventKind,
        reason: &'static str,
        message: impl Into<String>,
        time: OffsetDateTime,
    ) -> Self {
        Self {
            kind,
            reason,
            message: message.into(),
            time,
        }
    }

    /// `IssuerUpdated` "Updated identity issuer".
    pub fn issuer_updated(time: OffsetDateTime) -> Self {
        Self::new(
            EventKind::Normal,
            reason::ISSUER_UPDATED,
            "Updated identity issuer",
            time,
        )
    }

    /// `IssuerUpdateSkipped` `Skipping issuer update as certs could not be read from disk:
    /// <err>`.
    pub fn issuer_update_skipped(err: &dyn fmt::Display, time: OffsetDateTime) -> Self {
        Self::new(
            EventKind::Warning,
            reason::ISSUER_UPDATE_SKIPPED,
            format!("Skipping issuer update as certs could not be read from disk: {err}"),
            time,
        )
    }

    /// `IssuerValidationFailed` `Issuer validation failed: <problem>`.
    pub fn issuer_validation_failed(problem: &dyn fmt::Display, time: OffsetDateTime) -> Self {
        Self::new(
            EventKind::Warning,
            reason::ISSUER_VALIDATION_FAILED,
            format!("Issuer validation failed: {problem}"),
            time,
        )
    }

    /// `IssuedLeafCertificate` `issued certificate for <id> until <NotAfter>: <sha256>`, the
    /// hash being the hex SHA-256 of the leaf's DER.
    pub fn issued_leaf_certificate(certified: &Certified, time: OffsetDateTime) -> Self {
        let hash = ring::digest::digest(&ring::digest::SHA256, certified.leaf.as_ref());
        Self::new(
            EventKind::Normal,
            reason::ISSUED_LEAF_CERTIFICATE,
            format!(
                "issued certificate for {} until {}: {}",
                certified.identity,
                rfc3339(certified.not_after),
                hex::encode(hash.as_ref())
            ),
            time,
        )
    }

    /// `TrustAnchorsUpdated` `Updated trust anchors: <n> anchor(s)`.
    pub fn trust_anchors_updated(anchors: usize, time: OffsetDateTime) -> Self {
        Self::new(
            EventKind::Normal,
            reason::TRUST_ANCHORS_UPDATED,
            format!("Updated trust anchors: {anchors} anchor(s)"),
            time,
        )
    }

    /// `TrustAnchorsUpdateSkipped` `Skipping trust anchors update: <err>`.
    pub fn trust_anchors_update_skipped(err: &dyn fmt::Display, time: OffsetDateTime) -> Self {
        Self::new(
            EventKind::Warning,
            reason::TRUST_ANCHORS_UPDATE_SKIPPED,
            format!("Skipping trust anchors update: {err}"),
            time,
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.kind.as_str(),
            self.reason,
            self.message
        )
    }
}

/// Where events go. Implementations must not block: `emit` is called from the reload path.
pub trait EventSink: Send + Sync + 'static {
    /// Records `event`.
    fn emit(&self, event: &Event);

    /// Whether events of `kind` would be recorded at all; callers on a hot path skip building
    /// them otherwise (default: yes).
    fn wants(&self, kind: EventKind) -> bool {
        let _ = kind;
        true
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn emit(&self, event: &Event) {
        S::emit(self, event);
    }

    fn wants(&self, kind: EventKind) -> bool {
        S::wants(self, kind)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn emit(&self, event: &Event) {
        S::emit(self, event);
    }

    fn wants(&self, kind: EventKind) -> bool {
        S::wants(self, kind)
    }
}

/// Both sinks, in order (e.g. logs and Kubernetes Events).
impl<A: EventSink, B: EventSink> EventSink for (A, B) {
    fn emit(&self, event: &Event) {
        self.0.emit(event);
        self.1.emit(event);
    }

    fn wants(&self, kind: EventKind) -> bool {
        self.0.wants(kind) || self.1.wants(kind)
    }
}

/// Logs events with `tracing`: Normal at INFO, Warning at WARN (the default sink).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn wants(&self, kind: EventKind) -> bool {
        match kind {
            EventKind::Normal => tracing::enabled!(tracing::Level::INFO),
            EventKind::Warning => tracing::enabled!(tracing::Level::WARN),
        }
    }

    fn emit(&self, event: &Event) {
        match event.kind {
            EventKind::Normal => {
                tracing::info!(reason = event.reason, "{}", event.message);
            }
            EventKind::Warning => {
                tracing::warn!(reason = event.reason, "{}", event.message);
            }
        }
    }
}

/// Keeps every event in memory (for tests and diagnostics).
#[derive(Debug, Default)]
pub struct CollectingSink {
    events: Mutex<Vec<Event>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// The events with `reason`, oldest first.
    pub fn with_reason(&self, reason: &str) -> Vec<Event> {
        self.lock()
            .iter()
            .filter(|e| e.reason == reason)
            .cloned()
            .collect()
    }

    /// Forgets every event.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        // A panic elsewhere while holding the lock leaves a valid Vec.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventSink for CollectingSink {
    fn emit(&self, event: &Event) {
        self.lock().push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that wants nothing.
    struct Deaf;

    impl EventSink for Deaf {
        fn emit(&self, _: &Event) {}

        fn wants(&self, _: EventKind) -> bool {
            false
        }
    }

    #[test]
    fn a_pair_of_sinks_records_in_both_and_wants_what_either_wants() {
        let (logs, kube) = (
            Arc::new(CollectingSink::new()),
            Arc::new(CollectingSink::new()),
        );
        let both = (Arc::clone(&logs), Arc::clone(&kube));
        both.emit(&Event::issuer_updated(OffsetDateTime::UNIX_EPOCH));
        assert_eq!(logs.with_reason(reason::ISSUER_UPDATED).len(), 1);
        assert_eq!(kube.events(), logs.events());
        assert!(both.wants(EventKind::Normal));
        assert!((Deaf, Arc::clone(&kube)).wants(EventKind::Warning));
        assert!(!(Deaf, Deaf).wants(EventKind::Normal));
    }
}
