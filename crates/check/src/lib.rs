//! Linkerd-style identity health checks for meshid: the `linkerd-identity` checks of
//! `linkerd check --proxy`, stricter, scriptable and clock-explicit.
//!
//! | item | what it is |
//! |---|---|
//! | [`Inputs`], [`InputPaths`] | trust anchors, issuer folder (`linkerd.io/tls` or `kubernetes.io/tls`), proxies' chains and bundles |
//! | [`run`], [`CheckOptions`] | the checks, in Linkerd's order, names and severities, at a given `now` |
//! | [`Report`] | the results; [`Report::render_table`] (Linkerd's shape), [`Report::to_json`], [`Report::exit_code`] |
//! | [`danger::fetch_chain`] | the chain a live proxy presents over TLS 1.3, read without trusting it |
//! | [`parse_expiry_window`] | `60d`, `1440h`: the expiry-warning window |
//!
//! # The checks
//!
//! | category | check ([`names`]) | severity |
//! |---|---|---|
//! | `linkerd-identity` | certificate config is valid | fatal |
//! | | trust anchors are using supported crypto algorithm | fatal |
//! | | trust anchors are within their validity period | fatal |
//! | | trust anchors are valid for at least 60 days | warning |
//! | | issuer cert is using supported crypto algorithm | fatal |
//! | | issuer cert is within its validity period | fatal |
//! | | issuer cert is valid for at least 60 days | warning |
//! | | issuer cert is issued by the trust anchor | error |
//! | `linkerd-identity-data-plane` | data plane proxies certificate match CA | warning |
//! | | data plane proxies certificates chain to the trust anchors (meshid) | error |
//! | | data plane proxies certificates are renewed in time (meshid) | warning |
//!
//! Messages keep Linkerd's shapes (`Invalid anchors:\n\t* <serial> <CN> not valid anymore.
//! Expired on <time>`, `issuer certificate will expire on <time>`, ...), serial numbers in
//! decimal as Linkerd prints them. As in Linkerd, a failed fatal check stops the run; the
//! checks not run are reported as skipped.
//!
//! # Better than `linkerd check`
//!
//! - The time is a parameter and is printed with the report (`Checked at ... (system
//!   clock)`), never read silently.
//! - [`FailOn::Warning`] makes warnings fail the exit status; Linkerd exits 0 on them.
//! - Proxy trust bundles are compared as sets of certificates, not as strings: order,
//!   whitespace and duplicates do not matter.
//! - Each proxy's own certificate is checked: it must chain to the current bundle now
//!   (meshid-verify's mesh profile) and must not be past its refresh point, 70% of its
//!   lifetime, when a Linkerd proxy renews.
//! - "issuer cert is issued by the trust anchor" runs meshid-ca's load-time validation: key
//!   match, CA with keyCertSign, EKU, and the chain verified with webpki.
//!
//! # Example
//!
//! ```
//! use meshid_ca::bootstrap::{CaOptions, create_intermediate, create_root};
//! use meshid_check::{CheckOptions, ClockSource, FailOn, Inputs, PemSource, Status, names};
//! use std::time::Duration;
//! use time::macros::datetime;
//!
//! let day = Duration::from_secs(86_400);
//! let minted = datetime!(2026-01-01 0:00 UTC);
//! let root = create_root(&CaOptions::root("root.linkerd.cluster.local", minted, 3650 * day))?;
//! let issuer = create_intermediate(
//!     &root,
//!     &CaOptions::issuer("identity.linkerd.cluster.local", minted, 365 * day),
//! )?;
//! let inputs = Inputs::new(
//!     PemSource::new("ca-bundle.crt", root.pem()),
//!     PemSource::new("issuer/crt.pem", issuer.pem()),
//!     PemSource::new("issuer/key.pem", issuer.key_pem().as_str()),
//! );
//!
//! // Mid-November the issuer has less than 60 days left: a warning.
//! let now = datetime!(2026-11-26 15:50 UTC);
//! let report = meshid_check::run(&inputs, &CheckOptions::default(), now, ClockSource::Given);
//! let check = report.check(names::ISSUER_NOT_EXPIRING).ok_or("missing check")?;
//! assert_eq!(check.status, Status::Warning);
//! assert_eq!(
//!     check.message.as_deref(),
//!     Some("issuer certificate will expire on 2027-01-01T00:00:00Z")
//! );
//! assert!(report.render_table().contains("‼ issuer cert is valid for at least 60 days"));
//!
//! // Linkerd would exit 0; scripts can ask for warnings to fail.
//! assert_eq!(report.exit_code(FailOn::Error), 0);
//! assert_eq!(report.exit_code(FailOn::Warning), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limitations
//!
//! - No Kubernetes access: the inputs are files (a mounted Secret, a ConfigMap saved to a
//!   file) and live addresses; the proxies' trust bundles are files too.
//! - The check names say "60 days" whatever the expiry window, so scripts written for
//!   Linkerd keep matching.
//! - A live Linkerd proxy terminates TLS only for its own identity: give it as the server
//!   name (`SERVER-NAME@HOST:PORT`, see [`ProxyAddr`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod certs;
mod checks;
pub mod cli;
pub mod danger;
mod error;
mod inputs;
mod report;
mod window;

pub use checks::{CheckOptions, names, run};
pub use error::{ConnectProblem, Error, ExpiryWindowProblem, ProxyAddrProblem, TlsProblem};
pub use inputs::{
    DEFAULT_CONNECT_TIMEOUT, IdentityScheme, InputPaths, Inputs, PemSource, ProxyAddr, ProxyChain,
};
pub use report::{Category, CheckResult, ClockSource, FailOn, Report, Severity, Status};
pub use window::{DEFAULT_EXPIRY_WARNING, parse_expiry_window};
