//! Rotation schedules for meshid: pure functions of the certificate, `now` and injected jitter.
//!
//! This crate never reads the clock or OS randomness: `now` is a parameter and randomness comes
//! from a [`JitterSource`], so every schedule is reproducible in tests. A driver (a tokio task in
//! the client crate) reads the clock, sleeps, and plugs in an OS-seeded jitter source.
//!
//! | item | what it computes |
//! |---|---|
//! | [`RefreshPolicy::refresh_at`] | when a proxy refreshes its leaf: 70% ± 5% of the lifetime from NotBefore, clamped |
//! | [`Backoff::next_delay`] | the delay after a failed request: exponential, full jitter, capped, always before expiry |
//! | [`IssuerSchedule::renew_at`] | when an issuer certificate is renewed, with cert-manager's `renewBefore` semantics |
//! | [`JitterSource`], [`SeededJitter`] | the randomness seam and a deterministic (non-cryptographic) source |
//!
//! # Example
//!
//! ```
//! use core::time::Duration;
//! use meshid_rotation::{Backoff, Error, RefreshPolicy, SeededJitter};
//! use time::macros::datetime;
//!
//! let not_before = datetime!(2026-06-01 12:00 UTC);
//! let not_after = datetime!(2026-06-02 12:00 UTC); // a 24h leaf
//! let policy = RefreshPolicy::default();
//!
//! // Jitter drawn at the centre of its window: exactly 70%, Linkerd's 16h48m.
//! let at = policy.refresh_at(not_before, not_after, not_before, &mut || 0.5)?;
//! assert_eq!(at, datetime!(2026-06-02 4:48 UTC));
//!
//! // Real jitter spreads clients over 70% ± 5%: between 15h36m and 18h after NotBefore.
//! let mut jitter = SeededJitter::new(0x1fed_f00d);
//! let at = policy.refresh_at(not_before, not_after, not_before, &mut jitter)?;
//! assert!(at >= datetime!(2026-06-02 3:36 UTC) && at <= datetime!(2026-06-02 6:00 UTC));
//!
//! // The refresh fails; with the certificate still valid for hours, retry within 5 minutes.
//! let mut backoff = Backoff::default();
//! let delay = backoff.next_delay(at, Some(not_after), &mut jitter);
//! assert!(delay <= Duration::from_secs(1)); // first retry: at most 1s
//! backoff.reset(); // after a success
//!
//! // Once expired there is nothing left to schedule: request now, back off as if none were held.
//! let late = datetime!(2026-06-02 12:00 UTC);
//! assert!(matches!(
//!     policy.refresh_at(not_before, not_after, late, &mut jitter),
//!     Err(Error::Expired { .. })
//! ));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Defaults and why
//!
//! - Refresh at 70% of the lifetime (Linkerd's), measured from NotBefore, with ±5% uniform
//!   jitter (step-ca's amount; Istio uses ±1% around 50%, SPIRE ±10% around 50%). Linkerd has no
//!   jitter: proxies certified together after an outage refresh together, for ever.
//! - Never sooner than 10s from now (Linkerd's lower clamp, a guard against refresh loops) and
//!   never later than 30s before NotAfter, except that the result always lies strictly inside
//!   the validity; see [`RefreshPolicy::refresh_at`] for very short leaves.
//! - Failures back off from 1s doubling to 60s with full jitter while no certificate is held
//!   (Linkerd retries every 10s, all proxies in step), and to min(5 min, remaining / 4) while one
//!   is, with a 100ms floor so a retry is never a busy loop.
//! - Issuer certificates follow cert-manager: renew at 2/3 of the issued lifetime unless
//!   `renewBefore` or `renewBeforePercentage` says otherwise.
//!
//! # Limitations
//!
//! - Instants have nanosecond resolution; leaves valid for less than one second are refused
//!   (X.509 validity has one-second resolution, so no real certificate is that short).
//! - There is no upper clamp like Linkerd's 24h: a year-long leaf refreshes after about 8.4
//!   months. Mesh leaves are short-lived; cap their lifetime in the issuance policy instead.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod backoff;
mod error;
mod instant;
mod issuer;
mod jitter;
mod refresh;

pub use backoff::{Backoff, BackoffPolicy};
pub use error::{BackoffProblem, Error, IssuerScheduleProblem, RefreshProblem};
pub use issuer::{IssuerSchedule, MIN_DURATION, MIN_RENEW_BEFORE};
pub use jitter::{JitterSource, SeededJitter};
pub use refresh::RefreshPolicy;
