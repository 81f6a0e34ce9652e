//! Check results, their rendering (Linkerd's table, JSON) and the exit status.

use core::fmt;
use core::str::FromStr;
use std::fmt::Write as _;

use meshid_policy::rfc3339;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Error;

/// Linkerd's mark for a passed check.
const MARK_OK: &str = "√";
/// Linkerd's mark for a failed warning-level check.
const MARK_WARNING: &str = "‼";
/// Linkerd's mark for a failed error-level or fatal check.
const MARK_ERROR: &str = "×";

// === impl Severity ===

/// How bad it is when a check fails, as Linkerd classifies its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// A failure stops the run: the later checks are skipped.
    Fatal,
    /// A failure is an error (mark `×`, exit status 1).
    Error,
    /// A failure is a warning (mark `‼`; exit status 1 only with [`FailOn::Warning`]).
    Warning,
}

impl Severity {
    /// The lower-case name used in JSON: `fatal`, `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Status ===

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The check passed.
    Ok,
    /// A warning-level check failed.
    Warning,
    /// An error-level or fatal check failed.
    Error,
    /// The check did not run: an earlier fatal check failed, or it had nothing to check.
    Skipped,
}

impl Status {
    /// The lower-case name used in JSON: `ok`, `warning`, `error` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }

    /// Linkerd's mark: `√`, `‼` or `×`; `None` for a skipped check (Linkerd prints nothing).
    pub fn mark(self) -> Option<&'static str> {
        match self {
            Self::Ok => Some(MARK_OK),
            Self::Warning => Some(MARK_WARNING),
            Self::Error => Some(MARK_ERROR),
            Self::Skipped => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl FailOn ===

/// Which failures make the exit status non-zero.
///
/// Linkerd exits 0 on warnings; an expiring issuer then goes unnoticed by scripts until it
/// expires. [`FailOn::Warning`] makes warnings fail too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailOn {
    /// Only errors (and fatal failures) fail, as in Linkerd. The default.
    #[default]
    Error,
    /// Warnings fail as well.
    Warning,
}

impl FailOn {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

impl FromStr for FailOn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "error" => Ok(Self::Error),
            "warning" => Ok(Self::Warning),
            _ => Err(Error::InvalidFailOn {
                input: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ClockSource ===

/// Where the check time came from; printed with every report, so a wrong clock is visible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClockSource {
    /// The system clock of the machine running the checks.
    #[default]
    System,
    /// A time given by the caller (the `--now` flag).
    Given,
}

impl ClockSource {
    /// The name used in JSON: `system` or `--now`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Given => "--now",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::System => "system clock",
            Self::Given => "given with --now",
        }
    }
}

// === impl CheckResult ===

/// One check: its Linkerd name, severity and outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckResult {
    /// The check's description, as `linkerd check` prints it.
    pub name: &'static str,
    /// How bad a failure is.
    pub severity: Severity,
    /// The outcome.
    pub status: Status,
    /// Why it failed (Linkerd's message shapes), or why it was skipped; `None` when it passed.
    pub message: Option<String>,
    /// Where to look for help, for a failed check.
    pub hint: Option<String>,
}

impl CheckResult {
    pub(crate) fn new(name: &'static str, severity: Severity) -> Self {
        Self {
            name,
            severity,
            status: Status::Ok,
            message: None,
            hint: None,
        }
    }

    pub(crate) fn failed(mut self, message: String, hint: String) -> Self {
        self.status = match self.severity {
            Severity::Warning => Status::Warning,
            Severity::Error | Severity::Fatal => Status::Error,
        };
        self.message = Some(message);
        self.hint = Some(hint);
        self
    }

    pub(crate) fn skipped(mut self, reason: String) -> Self {
        self.status = Status::Skipped;
        self.message = Some(reason);
        self
    }
}

// === impl Category ===

/// A group of checks with a Linkerd category name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Category {
    /// `linkerd-identity` or `linkerd-identity-data-plane`.
    pub name: &'static str,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckResult>,
}

// === impl Report ===

/// The outcome of a run: when it ran, by which clock, and every check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The time the certificates were checked at.
    pub checked_at: OffsetDateTime,
    /// Where that time came from.
    pub clock: ClockSource,
    /// The categories, in the order they ran.
    pub categories: Vec<Category>,
}

impl Report {
    /// Every check of every category.
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.categories.iter().flat_map(|c| c.checks.iter())
    }

    /// The check with this name, if the report has it.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks().find(|c| c.name == name)
    }

    /// Whether any check failed with an error (or fatally).
    pub fn has_errors(&self) -> bool {
        self.checks().any(|c| c.status == Status::Error)
    }

    /// Whether any check failed with a warning.
    pub fn has_warnings(&self) -> bool {
        self.checks().any(|c| c.status == Status::Warning)
    }

    /// The process exit status: 0 when everything passed (or only warnings failed and
    /// `fail_on` is [`FailOn::Error`]), 1 otherwise. (2 is left for bad arguments.)
    pub fn exit_code(&self, fail_on: FailOn) -> u8 {
        let failed = match fail_on {
            FailOn::Error => self.has_errors(),
            FailOn::Warning => self.has_errors() || self.has_warnings(),
        };
        u8::from(failed)
    }

    /// The report as `linkerd check` prints it: the time and clock, then per category a
    /// header, one line per check run (`√`, `‼` or `×`, the name), the message and hint under
    /// a failure, then `Status check results are √` (or `‼`, `×`). Skipped checks are not
    /// printed, as Linkerd prints nothing after a fatal failure; JSON lists them.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "Checked at {} ({})",
            rfc3339(self.checked_at),
            self.clock.describe()
        );
        for category in &self.categories {
            if category.checks.iter().all(|c| c.status == Status::Skipped) {
                continue;
            }
            let _ = writeln!(
                out,
                "\n{}\n{}",
                category.name,
                "-".repeat(category.name.len())
            );
            for check in &category.checks {
                let Some(mark) = check.status.mark() else {
                    continue;
                };
                let _ = writeln!(out, "{mark} {}", check.name);
                if check.status != Status::Ok {
                    if let Some(message) = &check.message {
                        let _ = writeln!(out, "    {message}");
                    }
                    if let Some(hint) = &check.hint {
                        let _ = writeln!(out, "    {hint}");
                    }
                }
            }
        }
        let overall = if self.has_errors() {
            MARK_ERROR
        } else if self.has_warnings() {
            MARK_WARNING
        } else {
            MARK_OK
        };
        let _ = writeln!(out, "\nStatus check results are {overall}");
        out
    }

    /// The report as JSON, for scripts:
    ///
    /// ```json
    /// {"checked_at": "2026-11-26T15:50:00Z", "clock": "system", "fail_on": "error",
    ///  "categories": [{"name": "linkerd-identity", "checks": [{"name": "...",
    ///    "status": "ok", "severity": "fatal", "message": null, "hint": null}]}],
    ///  "success": true}
    /// ```
    ///
    /// `status` is `ok`, `warning`, `error` or `skipped`; `severity` is `fatal`, `error` or
    /// `warning`; `success` is whether [`Report::exit_code`] is 0 for `fail_on`.
    pub fn to_json(&self, fail_on: FailOn) -> Result<String, Error> {
        let json = JsonReport {
            checked_at: rfc3339(self.checked_at),
            clock: self.clock.as_str(),
            fail_on: fail_on.as_str(),
            categories: self
                .categories
                .iter()
                .map(|category| JsonCategory {
                    name: category.name,
                    checks: category
                        .checks
                        .iter()
                        .map(|check| JsonCheck {
                            name: check.name,
                            status: check.status.as_str(),
                            severity: check.severity.as_str(),
                            message: check.message.as_deref(),
                            hint: check.hint.as_deref(),
                        })
                        .collect(),
                })
                .collect(),
            success: self.exit_code(fail_on) == 0,
        };
        serde_json::to_string_pretty(&json).map_err(|e| Error::Json {
            reason: e.to_string(),
        })
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    checked_at: String,
    clock: &'static str,
    fail_on: &'static str,
    categories: Vec<JsonCategory<'a>>,
    success: bool,
}

#[derive(Serialize)]
struct JsonCategory<'a> {
    name: &'static str,
    checks: Vec<JsonCheck<'a>>,
}

#[derive(Serialize)]
struct JsonCheck<'a> {
    name: &'static str,
    status: &'static str,
    severity: &'static str,
    message: Option<&'a str>,
    hint: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn report(statuses: &[(Severity, bool)]) -> Report {
        let checks = statuses
            .iter()
            .map(|&(severity, pass)| {
                let check = CheckResult::new("a check", severity);
                if pass {
                    check
                } else {
                    check.failed("it failed".to_owned(), "see here".to_owned())
                }
            })
            .collect();
        Report {
            checked_at: datetime!(2026-11-26 15:50 UTC),
            clock: ClockSource::Given,
            categories: vec![Category {
                name: "linkerd-identity",
                checks,
            }],
        }
    }

    #[test]
    fn exit_codes() {
        let all_pass = report(&[(Severity::Fatal, true), (Severity::Warning, true)]);
        assert_eq!(all_pass.exit_code(FailOn::Error), 0);
        assert_eq!(all_pass.exit_code(FailOn::Warning), 0);

        let warning = report(&[(Severity::Fatal, true), (Severity::Warning, false)]);
        assert_eq!(
            warning.exit_code(FailOn::Error),
            0,
            "Linkerd: warnings pass"
        );
        assert_eq!(warning.exit_code(FailOn::Warning), 1);

        for severity in [Severity::Error, Severity::Fatal] {
            let error = report(&[(severity, false), (Severity::Warning, true)]);
            assert_eq!(error.exit_code(FailOn::Error), 1);
            assert_eq!(error.exit_code(FailOn::Warning), 1);
        }
    }

    #[test]
    fn skipped_checks_do_not_fail() {
        let mut r = report(&[(Severity::Fatal, true)]);
        r.categories[0].checks.push(
            CheckResult::new("later", Severity::Error).skipped("nothing to check".to_owned()),
        );
        assert_eq!(r.exit_code(FailOn::Warning), 0);
        assert!(!r.render_table().contains("later"));
    }

    #[test]
    fn table_shape() {
        let r = report(&[(Severity::Fatal, true), (Severity::Warning, false)]);
        assert_eq!(
            r.render_table(),
            "Checked at 2026-11-26T15:50:00Z (given with --now)\n\
             \n\
             linkerd-identity\n\
             ----------------\n\
             √ a check\n\
             ‼ a check\n    it failed\n    see here\n\
             \n\
             Status check results are ‼\n"
        );
    }

    #[test]
    fn fail_on_parses() {
        assert_eq!("warning".parse::<FailOn>(), Ok(FailOn::Warning));
        assert_eq!("error".parse::<FailOn>(), Ok(FailOn::Error));
        assert!("warn".parse::<FailOn>().is_err());
    }
}
