//! Go-syntax durations (`24h0m0s`, `20s`, `1h30m`, `500ms`), as Linkerd's flags take them.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::Error;

/// The largest duration Go can represent: `i64::MAX` nanoseconds (about 292 years).
pub const MAX_GO_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SECOND: u128 = 1_000_000_000;
const NANOS_PER_MINUTE: u128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: u128 = 60 * NANOS_PER_MINUTE;

/// Parses a Go duration: a sequence of decimal numbers, each with an optional fraction and a unit
/// (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `24h0m0s`, `1.5h`, `500ms`; `0` alone is allowed.
///
/// Unlike Go, a negative duration is an error, and fractions are computed exactly (no
/// floating point), so `parse_go_duration(&format_go_duration(d)) == Ok(d)` for every `d` up to
/// [`MAX_GO_DURATION`].
pub fn parse_go_duration(input: &str) -> Result<Duration, Error> {
    let bad = |reason: &'static str| Error::InvalidDuration {
        input: input.to_owned(),
        reason,
    };
    let mut s = input;
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        return Err(bad("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad("empty duration"));
    }
    let max = MAX_GO_DURATION.as_nanos();
    let mut total: u128 = 0;
    while !s.is_empty() {
        // [0-9]*
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        // (\.[0-9]*)?
        let mut frac_digits = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            (frac_digits, s) = rest.split_at(frac_len);
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(bad("expected a number"));
        }
        // [a-zµμ]+ : everything up to the next digit or '.'
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let (unit_text, rest) = s.split_at(unit_len);
        s = rest;
        let unit = match unit_text {
            "" => return Err(bad("missing unit (one of ns, us, ms, s, m, h)")),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
            "ms" => NANOS_PER_MILLI,
            "s" => NANOS_PER_SECOND,
            "m" => NANOS_PER_MINUTE,
            "h" => NANOS_PER_HOUR,
            _ => return Err(bad("unknown unit (expected one of ns, us, ms, s, m, h)")),
        };
        let overflow = || bad("overflows the largest duration (2562047h47m16.854775807s)");
        let mut value: u128 = 0;
        for d in int_digits.bytes() {
            value = value * 10 + u128::from(d - b'0');
            if value > max {
                return Err(overflow());
            }
        }
        value = value.checked_mul(unit).ok_or_else(overflow)?;
        // Exact fraction: digits beyond nanosecond precision of the largest unit cannot matter.
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac_digits.bytes().take(24) {
            frac = frac * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        value += frac * unit / scale;
        total += value;
        if total > max {
            return Err(overflow());
        }
    }
    let secs = u64::try_from(total / NANOS_PER_SECOND).map_err(|_| bad("overflow"))?;
    // The remainder is below one second, so it fits in u32.
    let nanos = u32::try_from(total % NANOS_PER_SECOND).map_err(|_| bad("overflow"))?;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go's `time.Duration.String` does: `24h0m0s`, `20s`, `1h30m0s`,
/// `500ms`, `1.5µs`, `0s`.
pub fn format_go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_owned();
    }
    if n < NANOS_PER_SECOND {
        let (unit, per) = if n < NANOS_PER_MICRO {
            ("ns", 1)
        } else if n < NANOS_PER_MILLI {
            ("\u{b5}s", NANOS_PER_MICRO)
        } else {
            ("ms", NANOS_PER_MILLI)
        };
        return format!("{}{}{unit}", n / per, fraction(n % per, per));
    }
    let hours = n / NANOS_PER_HOUR;
    let minutes = (n % NANOS_PER_HOUR) / NANOS_PER_MINUTE;
    let secs = (n % NANOS_PER_MINUTE) / NANOS_PER_SECOND;
    let frac = fraction(n % NANOS_PER_SECOND, NANOS_PER_SECOND);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}{frac}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}{frac}s")
    } else {
        format!("{secs}{frac}s")
    }
}

/// `.123` for `rem / per`, trailing zeros removed; empty when `rem` is zero.
fn fraction(rem: u128, per: u128) -> String {
    if rem == 0 {
        return String::new();
    }
    let width = per.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// A [`Duration`] that parses from and displays as Go syntax; handy for command-line flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl FromStr for GoDuration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        parse_go_duration(s).map(Self)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Self {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_examples() {
        let cases: &[(&str, Duration)] = &[
            ("24h0m0s", Duration::from_secs(86_400)),
            ("24h", Duration::from_secs(86_400)),
            ("48h", Duration::from_secs(172_800)),
            ("20s", Duration::from_secs(20)),
            ("1h30m", Duration::from_secs(5_400)),
            ("500ms", Duration::from_millis(500)),
            ("1.5h", Duration::from_secs(5_400)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("+5s", Duration::from_secs(5)),
            (".5s", Duration::from_millis(500)),
            ("1.s", Duration::from_secs(1)),
            ("1µs", Duration::from_micros(1)),
            ("1μs", Duration::from_micros(1)),
            ("1us", Duration::from_micros(1)),
            ("100ns", Duration::from_nanos(100)),
            ("2562047h47m16.854775807s", MAX_GO_DURATION),
            ("1.000000001s", Duration::new(1, 1)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input).unwrap(), *want, "{input}");
        }
    }

    #[test]
    fn refuses_garbage() {
        let cases: &[(&str, &str)] = &[
            ("", "empty duration"),
            ("-5s", "negative durations are not allowed"),
            ("5", "missing unit (one of ns, us, ms, s, m, h)"),
            ("5d", "unknown unit (expected one of ns, us, ms, s, m, h)"),
            ("h", "expected a number"),
            (".s", "expected a number"),
            (
                "1h 30m",
                "unknown unit (expected one of ns, us, ms, s, m, h)",
            ),
            (
                "2562047h47m16.854775808s",
                "overflows the largest duration (2562047h47m16.854775807s)",
            ),
            (
                "99999999999999999999999h",
                "overflows the largest duration (2562047h47m16.854775807s)",
            ),
        ];
        for (input, reason) in cases {
            let err = parse_go_duration(input).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid duration '{input}': {reason}"),
                "{input}"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(Duration, &str)] = &[
            (Duration::from_secs(86_400), "24h0m0s"),
            (Duration::from_secs(20), "20s"),
            (Duration::from_secs(5_400), "1h30m0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::ZERO, "0s"),
            (Duration::from_millis(61_500), "1m1.5s"),
            (MAX_GO_DURATION, "2562047h47m16.854775807s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go_duration(*d), *want);
        }
    }
}
