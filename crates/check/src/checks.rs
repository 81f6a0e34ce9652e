//! The checks of `linkerd check --proxy` for identity, in Linkerd's order, with its names,
//! severities and message shapes, plus the proxy certificate checks Linkerd lacks.

use core::time::Duration;

use meshid_policy::rfc3339;
use meshid_verify::{TrustBundle, Usage, VerifyOptions};
use time::OffsetDateTime;

use crate::Error;
use crate::certs::{CertInfo, anchor_algorithm_problem, issuer_algorithm_problem};
use crate::inputs::{Inputs, parse_certificates};
use crate::report::{Category, CheckResult, ClockSource, Report, Severity};
use crate::window::DEFAULT_EXPIRY_WARNING;

/// The check names, as `linkerd check` prints them (and the two proxy checks meshid adds).
pub mod names {
    /// Category of the control-plane identity checks.
    pub const IDENTITY: &str = "linkerd-identity";
    /// Category of the data-plane identity checks (`--proxy`).
    pub const DATA_PLANE: &str = "linkerd-identity-data-plane";

    /// Fatal: the files exist and parse; the key matches the issuer certificate.
    pub const CERT_CONFIG: &str = "certificate config is valid";
    /// Fatal: every anchor uses ECDSA P-256 or RSA-2048/4096 with SHA-256 signatures.
    pub const ANCHORS_ALGORITHM: &str = "trust anchors are using supported crypto algorithm";
    /// Fatal: every anchor is within NotBefore..=NotAfter.
    pub const ANCHORS_VALID: &str = "trust anchors are within their validity period";
    /// Warning: no anchor expires within the expiry window.
    pub const ANCHORS_NOT_EXPIRING: &str = "trust anchors are valid for at least 60 days";
    /// Fatal: the issuer uses ECDSA P-256.
    pub const ISSUER_ALGORITHM: &str = "issuer cert is using supported crypto algorithm";
    /// Fatal: the issuer is within NotBefore..=NotAfter.
    pub const ISSUER_VALID: &str = "issuer cert is within its validity period";
    /// Warning: the issuer does not expire within the expiry window.
    pub const ISSUER_NOT_EXPIRING: &str = "issuer cert is valid for at least 60 days";
    /// Error: the issuer chain verifies to an anchor now.
    pub const ISSUER_CHAINED: &str = "issuer cert is issued by the trust anchor";
    /// Warning: every proxy trust bundle is the current bundle, as a set of certificates.
    pub const PROXIES_BUNDLE: &str = "data plane proxies certificate match CA";
    /// Error (meshid): every proxy leaf chains to the current bundle now.
    pub const PROXIES_CHAINED: &str = "data plane proxies certificates chain to the trust anchors";
    /// Warning (meshid): no proxy leaf is past its refresh point (70% of its lifetime).
    pub const PROXIES_REFRESHED: &str = "data plane proxies certificates are renewed in time";
}

use names::*;

/// Linkerd's refresh point: a proxy renews after 70% of its certificate's lifetime.
const REFRESH_PERCENT: i32 = 70;

// === impl CheckOptions ===

/// What to check, beyond the identity inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Certificates expiring within this window get a warning. Default: 60 days (Linkerd's;
    /// the check names keep saying "60 days", as scripts match on them).
    pub expiry_warning: Duration,
    /// Run the data-plane category (`linkerd check --proxy`).
    pub proxy: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            expiry_warning: DEFAULT_EXPIRY_WARNING,
            proxy: false,
        }
    }
}

// === run ===

/// Runs the identity checks (and, with [`CheckOptions::proxy`], the data-plane checks) over
/// `inputs` at `now`; `clock` says where `now` came from, for the report.
///
/// As in Linkerd, a failed fatal check stops the run: every later check, in both categories,
/// is reported as [`Status::Skipped`](crate::Status::Skipped).
pub fn run(
    inputs: &Inputs,
    options: &CheckOptions,
    now: OffsetDateTime,
    clock: ClockSource,
) -> Report {
    let horizon = time::Duration::try_from(options.expiry_warning)
        .ok()
        .and_then(|window| now.checked_add(window));
    let mut runner = Runner::default();

    let loaded = runner.run(
        CERT_CONFIG,
        Severity::Fatal,
        "l5d-identity-cert-config-valid",
        || load(inputs),
    );
    let loaded = loaded.as_ref();

    runner.run(
        ANCHORS_ALGORITHM,
        Severity::Fatal,
        "l5d-identity-trustAnchors-use-supported-crypto",
        || {
            let problems = loaded.map_or_else(Vec::new, |l| {
                l.anchors
                    .iter()
                    .filter_map(|a| {
                        anchor_algorithm_problem(a).map(|p| format!("* {} {p}", a.label()))
                    })
                    .collect()
            });
            list_result("Invalid trustAnchors:", &problems)
        },
    );
    runner.run(
        ANCHORS_VALID,
        Severity::Fatal,
        "l5d-identity-trustAnchors-are-time-valid",
        || {
            let problems = loaded.map_or_else(Vec::new, |l| {
                l.anchors
                    .iter()
                    .filter_map(|a| {
                        validity_problem(a, now).map(|p| format!("* {} {p}", a.label()))
                    })
                    .collect()
            });
            list_result("Invalid anchors:", &problems)
        },
    );
    runner.run(
        ANCHORS_NOT_EXPIRING,
        Severity::Warning,
        "l5d-identity-trustAnchors-not-expiring-soon",
        || {
            let problems = loaded.map_or_else(Vec::new, |l| {
                l.anchors
                    .iter()
                    .filter_map(|a| {
                        expiring_problem(a, horizon).map(|p| format!("* {} {p}", a.label()))
                    })
                    .collect()
            });
            list_result("Anchors expiring soon:", &problems)
        },
    );
    runner.run(
        ISSUER_ALGORITHM,
        Severity::Fatal,
        "l5d-identity-issuer-cert-uses-supported-crypto",
        || match loaded.and_then(|l| issuer_algorithm_problem(&l.issuer)) {
            Some(problem) => Err(format!("issuer certificate {problem}")),
            None => Ok(()),
        },
    );
    runner.run(
        ISSUER_VALID,
        Severity::Fatal,
        "l5d-identity-issuer-cert-is-time-valid",
        || match loaded.and_then(|l| validity_problem(&l.issuer, now)) {
            Some(problem) => Err(format!("issuer certificate is {problem}")),
            None => Ok(()),
        },
    );
    runner.run(
        ISSUER_NOT_EXPIRING,
        Severity::Warning,
        "l5d-identity-issuer-cert-not-expiring-soon",
        || match loaded.and_then(|l| expiring_problem(&l.issuer, horizon)) {
            Some(problem) => Err(format!("issuer certificate {problem}")),
            None => Ok(()),
        },
    );
    runner.run(
        ISSUER_CHAINED,
        Severity::Error,
        "l5d-identity-issuer-cert-issued-by-trust-anchor",
        || loaded.map_or(Ok(()), |l| issuer_chained(l, now)),
    );
    let mut categories = vec![Category {
        name: IDENTITY,
        checks: core::mem::take(&mut runner.checks),
    }];

    if options.proxy {
        data_plane(&mut runner, inputs, loaded, now);
        categories.push(Category {
            name: DATA_PLANE,
            checks: runner.checks,
        });
    }

    Report {
        checked_at: now,
        clock,
        categories,
    }
}

fn data_plane(runner: &mut Runner, inputs: &Inputs, loaded: Option<&Loaded>, now: OffsetDateTime) {
    let bundle_skip = inputs
        .proxy_bundles
        .is_empty()
        .then(|| "no proxy trust bundle was given".to_owned());
    runner.run_unless(
        PROXIES_BUNDLE,
        Severity::Warning,
        &linkerd_hint("l5d-identity-data-plane-proxies-certs-match-ca"),
        bundle_skip,
        || {
            let problems = loaded.map_or_else(Vec::new, |l| stale_bundles(inputs, &l.bundle));
            list_result(
                "Some pods do not have the current trust bundle and must be restarted:",
                &problems,
            )
        },
    );

    let proxy_skip = inputs
        .proxies
        .is_empty()
        .then(|| "no proxy certificate was given".to_owned());
    // The proxies whose chain verified: (origin, NotBefore, NotAfter).
    let mut verified = Vec::new();
    runner.run_unless(
        PROXIES_CHAINED,
        Severity::Error,
        "restart these pods: a proxy that cannot renew keeps its old certificate until it \
         restarts; check that the identity controller serves the current issuer",
        proxy_skip.clone(),
        || {
            let Some(loaded) = loaded else {
                return Ok(());
            };
            let mut problems = Vec::new();
            for proxy in &inputs.proxies {
                match verify_proxy(&proxy.chain, &loaded.bundle, now) {
                    Ok((not_before, not_after)) => {
                        verified.push((proxy.origin.as_str(), not_before, not_after));
                    }
                    Err(reason) => problems.push(format!("* {}: {reason}", proxy.origin)),
                }
            }
            list_result(
                "Some proxies present certificates that the current trust anchors do not accept:",
                &problems,
            )
        },
    );

    let refresh_skip = proxy_skip.or_else(|| {
        (verified.is_empty() && !runner.is_halted())
            .then(|| "no proxy certificate chained to the trust anchors".to_owned())
    });
    runner.run_unless(
        PROXIES_REFRESHED,
        Severity::Warning,
        "a proxy renews at 70% of its certificate's lifetime: check its logs and its access \
         to the identity controller, or restart the pod",
        refresh_skip,
        || {
            let problems: Vec<String> = verified
                .iter()
                .filter_map(|&(origin, not_before, not_after)| {
                    let refresh_at = refresh_point(not_before, not_after);
                    (now >= refresh_at).then(|| {
                        format!(
                            "* {origin}: proxy certificate should have been renewed at {} \
                             (70% of its lifetime); it expires at {}",
                            rfc3339(refresh_at),
                            rfc3339(not_after)
                        )
                    })
                })
                .collect();
            list_result(
                "Some proxies have not renewed their certificates:",
                &problems,
            )
        },
    );
}

// === the runner ===

/// Runs checks in order; after a fatal failure, the rest are skipped.
#[derive(Default)]
struct Runner {
    checks: Vec<CheckResult>,
    halted_by: Option<&'static str>,
}

impl Runner {
    fn is_halted(&self) -> bool {
        self.halted_by.is_some()
    }

    /// Runs a Linkerd check with its hint anchor; returns the check's value if it passed.
    fn run<T>(
        &mut self,
        name: &'static str,
        severity: Severity,
        anchor: &str,
        check: impl FnOnce() -> Result<T, String>,
    ) -> Option<T> {
        self.run_inner(name, severity, &linkerd_hint(anchor), None, check)
    }

    /// Runs a check with a full hint, unless `skip` says why there is nothing to check.
    fn run_unless(
        &mut self,
        name: &'static str,
        severity: Severity,
        hint: &str,
        skip: Option<String>,
        check: impl FnOnce() -> Result<(), String>,
    ) {
        self.run_inner(name, severity, hint, skip, check);
    }

    fn run_inner<T>(
        &mut self,
        name: &'static str,
        severity: Severity,
        hint: &str,
        skip: Option<String>,
        check: impl FnOnce() -> Result<T, String>,
    ) -> Option<T> {
        let result = CheckResult::new(name, severity);
        if let Some(fatal) = self.halted_by {
            self.checks
                .push(result.skipped(format!("not run: the fatal check \"{fatal}\" failed")));
            return None;
        }
        if let Some(reason) = skip {
            self.checks.push(result.skipped(reason));
            return None;
        }
        match check() {
            Ok(value) => {
                self.checks.push(result);
                Some(value)
            }
            Err(message) => {
                if severity == Severity::Fatal {
                    self.halted_by = Some(name);
                }
                self.checks.push(result.failed(message, hint.to_owned()));
                None
            }
        }
    }
}

fn linkerd_hint(anchor: &str) -> String {
    format!("see https://linkerd.io/2/checks/#{anchor} for hints")
}

/// Linkerd's list shape: `<title>\n\t* item\n\t* item`.
fn list_result(title: &str, problems: &[String]) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{title}\n\t{}", problems.join("\n\t")))
    }
}

// === the identity inputs ===

/// The identity inputs, parsed by the config check.
struct Loaded {
    bundle: TrustBundle,
    anchors: Vec<CertInfo>,
    issuer: CertInfo,
    issuer_chain_pem: String,
    issuer_key_pem: String,
}

fn load(inputs: &Inputs) -> Result<Loaded, String> {
    let anchors_source = &inputs.trust_anchors;
    let anchors_pem = anchors_source
        .pem
        .as_ref()
        .map_err(|reason| format!("failed to read the trust anchors: {reason}"))?;
    let bundle = TrustBundle::from_pem(anchors_pem.as_bytes()).map_err(|e| {
        format!(
            "the trust anchors in {} are invalid: {e}",
            anchors_source.origin
        )
    })?;
    let anchors = bundle
        .anchors()
        .map(|a| CertInfo::parse(a.der()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "the trust anchors in {} are invalid: {e}",
                anchors_source.origin
            )
        })?;

    let crt_source = &inputs.issuer_certificate;
    let crt_pem = crt_source
        .pem
        .as_ref()
        .map_err(|reason| format!("failed to read the issuer certificate: {reason}"))?;
    let invalid_crt = |reason: Error| {
        format!(
            "the issuer certificate in {} is invalid: {reason}",
            crt_source.origin
        )
    };
    let chain = parse_certificates(crt_pem).map_err(invalid_crt)?;
    let issuer = chain
        .first()
        .ok_or_else(|| invalid_crt(Error::NoCertificate))
        .and_then(|der| CertInfo::parse(der).map_err(invalid_crt))?;

    let key_source = &inputs.issuer_key;
    let key_pem = key_source
        .pem
        .as_ref()
        .map_err(|reason| format!("failed to read the issuer key: {reason}"))?;
    let key = meshid_csr::KeyPair::from_pem(key_pem)
        .map_err(|e| format!("the issuer key in {} is invalid: {e}", key_source.origin))?;
    if key.public_key_raw() != issuer.public_key.as_slice() {
        return Err(format!(
            "the issuer key in {} does not match the issuer certificate in {}",
            key_source.origin, crt_source.origin
        ));
    }
    Ok(Loaded {
        bundle,
        anchors,
        issuer,
        issuer_chain_pem: crt_pem.clone(),
        issuer_key_pem: key_pem.clone(),
    })
}

// === the checks ===

/// Linkerd's validity messages: `not valid before: <t>` / `not valid anymore. Expired on <t>`.
fn validity_problem(cert: &CertInfo, now: OffsetDateTime) -> Option<String> {
    if now < cert.not_before {
        Some(format!("not valid before: {}", rfc3339(cert.not_before)))
    } else if now > cert.not_after {
        Some(format!(
            "not valid anymore. Expired on {}",
            rfc3339(cert.not_after)
        ))
    } else {
        None
    }
}

/// Linkerd's `will expire on <t>` when NotAfter is before `horizon` (`None`: beyond time).
fn expiring_problem(cert: &CertInfo, horizon: Option<OffsetDateTime>) -> Option<String> {
    horizon
        .is_none_or(|h| h > cert.not_after)
        .then(|| format!("will expire on {}", rfc3339(cert.not_after)))
}

/// The issuer chain verifies to an anchor now, and is a usable issuer (CA, keyCertSign, EKU):
/// meshid-ca's own load-time validation.
fn issuer_chained(loaded: &Loaded, now: OffsetDateTime) -> Result<(), String> {
    meshid_ca::IssuerCredentials::from_pem(
        &loaded.issuer_chain_pem,
        &loaded.issuer_key_pem,
        &loaded.bundle,
        now,
    )
    .map(drop)
    .map_err(|e| match e {
        meshid_ca::Error::InvalidIssuer(problem) => problem.to_string(),
        other => other.to_string(),
    })
}

/// The proxy bundles that differ from `current` as certificate sets, described.
fn stale_bundles(inputs: &Inputs, current: &TrustBundle) -> Vec<String> {
    let mut problems = Vec::new();
    for source in &inputs.proxy_bundles {
        let bundle = match &source.pem {
            Err(reason) => {
                problems.push(format!("* {}: {reason}", source.origin));
                continue;
            }
            Ok(pem) => TrustBundle::from_pem(pem.as_bytes()),
        };
        match bundle {
            Err(e) => problems.push(format!(
                "* {}: not a valid trust bundle: {e}",
                source.origin
            )),
            Ok(bundle) if bundle == *current => {}
            Ok(bundle) => {
                let mut parts = Vec::new();
                let missing = current.difference(&bundle);
                if !missing.is_empty() {
                    parts.push(format!("lacks current anchor(s) {}", subjects(&missing)));
                }
                let extra = bundle.difference(current);
                if !extra.is_empty() {
                    parts.push(format!(
                        "has anchor(s) not in the current bundle {}",
                        subjects(&extra)
                    ));
                }
                problems.push(format!("* {}: {}", source.origin, parts.join("; ")));
            }
        }
    }
    problems
}

fn subjects(bundle: &TrustBundle) -> String {
    bundle
        .anchors()
        .map(|a| format!("[{}]", a.subject()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Verifies a proxy's chain against the current bundle now; its validity if it passes.
fn verify_proxy(
    chain: &Result<Vec<rustls_pki_types::CertificateDer<'static>>, Error>,
    bundle: &TrustBundle,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let chain = chain.as_ref().map_err(ToString::to_string)?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| "no certificate was presented".to_owned())?;
    let peer = meshid_verify::verify_chain(
        bundle,
        leaf,
        intermediates,
        now,
        Usage::Either,
        &VerifyOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    Ok((peer.not_before(), peer.not_after()))
}

/// NotBefore + 70% of the lifetime.
fn refresh_point(not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    let lifetime = not_after - not_before;
    lifetime
        .checked_mul(REFRESH_PERCENT)
        .map(|d| d / 100)
        .and_then(|d| not_before.checked_add(d))
        .unwrap_or(not_after)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn refresh_at_seventy_percent() {
        let nb = datetime!(2026-06-01 0:00 UTC);
        let na = datetime!(2026-06-02 0:00 UTC);
        assert_eq!(refresh_point(nb, na), datetime!(2026-06-01 16:48 UTC));
    }
}
