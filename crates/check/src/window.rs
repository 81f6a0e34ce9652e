//! The expiry-warning window: a Go duration, with days on top.

use core::time::Duration;

use crate::{Error, ExpiryWindowProblem};

const SECONDS_PER_DAY: u64 = 86_400;

/// The window Linkerd warns in: a certificate expiring within 60 days gets a warning.
pub const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(60 * SECONDS_PER_DAY);

/// Parses an expiry window: a Go duration (`1440h`, `90m`, `1h30m`), or whole days first
/// (`60d`, `1d12h`), as `linkerd check` users think of certificate lifetimes.
///
/// ```
/// use core::time::Duration;
/// use meshid_check::parse_expiry_window;
///
/// assert_eq!(parse_expiry_window("60d")?, Duration::from_secs(60 * 86_400));
/// assert_eq!(parse_expiry_window("1d12h")?, Duration::from_secs(36 * 3_600));
/// assert_eq!(parse_expiry_window("1440h")?, Duration::from_secs(60 * 86_400));
/// assert!(parse_expiry_window("1.5d").is_err());
/// # Ok::<(), meshid_check::Error>(())
/// ```
pub fn parse_expiry_window(input: &str) -> Result<Duration, Error> {
    let bad = |problem: ExpiryWindowProblem| Error::InvalidExpiryWindow {
        input: input.to_owned(),
        problem,
    };
    let trimmed = input.trim();
    let (days, rest) = match trimmed.split_once('d') {
        Some((days, rest)) => {
            if days.is_empty() || !days.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(ExpiryWindowProblem::DaysNotWhole));
            }
            let days: u64 = days
                .parse()
                .map_err(|_| bad(ExpiryWindowProblem::TooManyDays))?;
            (days, rest)
        }
        None => (0, trimmed),
    };
    let day_part = days
        .checked_mul(SECONDS_PER_DAY)
        .map(Duration::from_secs)
        .ok_or_else(|| bad(ExpiryWindowProblem::TooManyDays))?;
    let rest_part = if rest.is_empty() {
        if days == 0 && trimmed.is_empty() {
            return Err(bad(ExpiryWindowProblem::Empty));
        }
        Duration::ZERO
    } else {
        meshid_policy::parse_go_duration(rest).map_err(|e| bad(ExpiryWindowProblem::Duration(e)))?
    };
    day_part
        .checked_add(rest_part)
        .ok_or_else(|| bad(ExpiryWindowProblem::TooLong))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_go_durations() {
        assert_eq!(parse_expiry_window("60d"), Ok(DEFAULT_EXPIRY_WARNING));
        assert_eq!(parse_expiry_window("0d"), Ok(Duration::ZERO));
        assert_eq!(parse_expiry_window("0"), Ok(Duration::ZERO));
        assert_eq!(parse_expiry_window("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(
            parse_expiry_window("2d30s"),
            Ok(Duration::from_secs(2 * 86_400 + 30))
        );
    }

    #[test]
    fn refuses_nonsense() {
        for input in [
            "",
            "d",
            "-1d",
            "1.5d",
            "xd",
            "60 days",
            "1d-1h",
            "99999999999999999999d",
        ] {
            assert!(parse_expiry_window(input).is_err(), "{input:?} accepted");
        }
        let err = parse_expiry_window("1.5d").unwrap_err();
        assert!(err.to_string().contains("use a Go duration"), "{err}");
    }

    #[test]
    fn each_refusal_is_typed() {
        let problem = |input: &str| match parse_expiry_window(input) {
            Err(Error::InvalidExpiryWindow { problem, .. }) => problem,
            other => panic!("{input:?}: {other:?}"),
        };
        assert_eq!(problem("1.5d"), ExpiryWindowProblem::DaysNotWhole);
        assert_eq!(
            problem("99999999999999999999d"),
            ExpiryWindowProblem::TooManyDays
        );
        assert_eq!(
            problem("999999999999999d"),
            ExpiryWindowProblem::TooManyDays
        );
        assert_eq!(problem(""), ExpiryWindowProblem::Empty);
        assert!(matches!(
            problem("1dx"),
            ExpiryWindowProblem::Duration(meshid_policy::Error::InvalidDuration { .. })
        ));
        assert_eq!(
            parse_expiry_window("").unwrap_err().to_string(),
            "invalid expiry window \"\": empty duration; use a Go duration such as 1440h, or \
             days such as 60d"
        );
        assert_eq!(
            parse_expiry_window("1.5d").unwrap_err().to_string(),
            "invalid expiry window \"1.5d\": days must be a whole number in front of `d`, as in \
             60d; use a Go duration such as 1440h, or days such as 60d"
        );
    }
}
