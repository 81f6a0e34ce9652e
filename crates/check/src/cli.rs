//! `meshid-check`: the identity checks of `linkerd check --proxy`, stricter and scriptable, as
//! a command line (the `meshid-check` binary of this crate, and the workspace's `check`
//! example).
//!
//! ```text
//! meshid-check --trust-anchors ca-bundle.crt --issuer ./issuer
//! meshid-check --proxy --trust-anchors ca-bundle.crt --issuer ./issuer \
//!     --proxy-cert web.pem --proxy-bundle web-bundle.pem --fail-on warning --output json
//! ```
//!
//! Exit status: 0 when every check passed (warnings too, unless `--fail-on warning`), 1 when
//! a check failed (or the report could not be written), 2 for bad arguments.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use meshid_policy::{Clock as _, GoDuration, SystemClock};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{
    CheckOptions, ClockSource, FailOn, IdentityScheme, InputPaths, Inputs, ProxyAddr,
    parse_expiry_window,
};

#[derive(Parser, Debug)]
#[command(about = "Linkerd-style identity checks: trust anchors, issuer, and proxies")]
struct Args {
    /// Also run the data-plane checks (linkerd-identity-data-plane), like `linkerd check --proxy`.
    #[arg(long)]
    proxy: bool,
    /// PEM bundle of trust anchors (ca-bundle.crt); default under kubernetes.io/tls: ca.crt in
    /// the issuer folder.
    #[arg(long, value_name = "FILE")]
    trust_anchors: Option<PathBuf>,
    /// Folder holding the issuer: crt.pem + key.pem, or tls.crt + tls.key (+ ca.crt).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Layout of the issuer folder: linkerd.io/tls or kubernetes.io/tls.
    #[arg(long, default_value = "linkerd.io/tls")]
    identity_scheme: IdentityScheme,
    /// A proxy's certificate chain (PEM, leaf first); repeatable.
    #[arg(long, value_name = "FILE", requires = "proxy")]
    proxy_cert: Vec<PathBuf>,
    /// A live proxy to read the presented chain from: HOST:PORT or SERVER-NAME@HOST:PORT;
    /// repeatable.
    #[arg(long, value_name = "ADDR", requires = "proxy")]
    proxy_addr: Vec<ProxyAddr>,
    /// A proxy's trust bundle (PEM), compared with the trust anchors as a set; repeatable.
    #[arg(long, value_name = "FILE", requires = "proxy")]
    proxy_bundle: Vec<PathBuf>,
    /// Warn about certificates expiring within this window: 60d, 1440h, 1d12h.
    #[arg(long, default_value = "60d", value_parser = parse_expiry_window)]
    expiry_warning: Duration,
    /// Which failures give a non-zero exit status: error (Linkerd's behaviour) or warning.
    #[arg(long, default_value = "error")]
    fail_on: FailOn,
    /// Check at this time (RFC 3339) instead of the system clock.
    #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
    now: Option<OffsetDateTime>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Timeout for each live proxy connection (Go duration).
    #[arg(long, default_value = "10s")]
    connect_timeout: GoDuration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Table,
    Json,
}

/// A `--now` that is not an RFC 3339 time.
#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 time such as 2026-11-26T15:50:00Z: {0}")]
struct NotRfc3339(time::error::Parse);

fn rfc3339(s: &str) -> Result<OffsetDateTime, NotRfc3339> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(NotRfc3339)
}

/// Runs the checks `args` ask for (the program name first) and prints the report; the exit
/// status is as the module docs say.
pub fn main(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let (now, clock) = match args.now {
        Some(now) => (now, ClockSource::Given),
        None => {
            let now = SystemClock.now();
            (
                now.replace_nanosecond(0).unwrap_or(now),
                ClockSource::System,
            )
        }
    };

    let mut paths = InputPaths::new(&args.issuer, args.trust_anchors);
    paths.identity_scheme = args.identity_scheme;
    paths.proxy_certs = args.proxy_cert;
    paths.proxy_addrs = args.proxy_addr;
    paths.proxy_bundles = args.proxy_bundle;
    paths.connect_timeout = args.connect_timeout.into();
    let inputs = Inputs::read(&paths);

    let options = CheckOptions {
        expiry_warning: args.expiry_warning,
        proxy: args.proxy,
    };
    let report = crate::run(&inputs, &options, now, clock);

    let text = match args.output {
        Output::Table => report.render_table(),
        Output::Json => match report.to_json(args.fail_on) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("meshid-check: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    // A closed pipe (`| head`) is not a failure of the checks.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("meshid-check: cannot write the report: {e}");
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    ExitCode::from(report.exit_code(args.fail_on))
}
