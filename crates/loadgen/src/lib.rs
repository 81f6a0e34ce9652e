//! Load generators for the meshid identity service, run as examples
//! (`cargo run --release --example storm`).
//!
//! - [`storm`]: a pod-start storm. Thousands of new proxies, each with its own P-256 key, CSR,
//!   projected ServiceAccount token and connection (h2c or TLS), start within one second
//!   against an `identity-ca` process that validates tokens with TokenReview (against an API
//!   server double answering in 2 ms) or offline with the cluster's published keys. Proxies
//!   retry refusals with meshid-rotation's jittered backoff. Each run reports the time until
//!   all are certified, per-proxy p50/p99, failures, the server's CPU per certify against the
//!   ring floor measured in the same run ([`floor::Floor`]), its peak RSS, and how the
//!   renewals meshid-rotation schedules spread per minute.
//! - [`process`]: the server under load as a process of its own, its addresses read from its
//!   log (it binds port 0), its CPU time and memory from `/proc` (Linux).
//!
//! Not published: the storm drives the API server double of `meshid-kube-testing`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use meshid_loadgen::storm::Herd;
//! use time::macros::datetime;
//!
//! // Renewals at 12:00:10, 12:00:20 and 12:01:30: two minutes, peak 2, mean 1.5.
//! let t = datetime!(2026-06-01 12:00 UTC);
//! let times = [10, 20, 90].map(|s| t + Duration::from_secs(s));
//! let herd = Herd::of(&times);
//! assert_eq!((herd.peak_per_minute, herd.minutes), (2, 2));
//! assert!((herd.peak_to_mean() - 4.0 / 3.0).abs() < 1e-9);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod floor;
pub mod process;
pub mod storm;

/// Why a load generator could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Preparing the run (keys, tokens, files, the API server double) failed.
    #[error("cannot prepare the run: {reason}")]
    Setup {
        /// What failed, with the failing step's own error text (ring, the issuer, the file
        /// system, the API server double). The load generator prints it and stops, so it is
        /// kept as text.
        reason: String,
    },
    /// The identity service could not be started, or did not become ready.
    #[error("identity service: {reason}")]
    Server {
        /// What happened, with the server's output where there is some: text to read, not to
        /// match.
        reason: String,
    },
    /// A `/proc` file of the server could not be read (the measurements need Linux).
    #[error("cannot read {path}: {reason}")]
    Proc {
        /// The file.
        path: String,
        /// The operating system's text, or the field that is missing from the file; the
        /// measurement stops either way.
        reason: String,
    },
}
