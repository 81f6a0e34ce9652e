//! Instant arithmetic in integer nanoseconds, so no schedule can overflow or panic.
//!
//! `OffsetDateTime + Duration` panics when the result leaves the representable range; the
//! schedules instead work on nanoseconds since the Unix epoch as `i128` (every representable
//! instant and every `Duration` fits with room to spare) and convert back only instants that lie
//! between two given ones.

use core::time::Duration;

use time::OffsetDateTime;

pub(crate) const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Nanoseconds since the Unix epoch.
pub(crate) fn nanos(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
}

/// A span in nanoseconds (`Duration::MAX` is about 1.8e28 ns, far below `i128::MAX`).
pub(crate) fn span(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// A non-negative nanosecond count as a `Duration`, saturating at `Duration::MAX`.
pub(crate) fn duration(nanos: u128) -> Duration {
    let per = NANOS_PER_SECOND.unsigned_abs();
    match u64::try_from(nanos / per) {
        // The remainder is below one second, so it fits in u32.
        Ok(secs) => Duration::new(secs, u32::try_from(nanos % per).unwrap_or(0)),
        Err(_) => Duration::MAX,
    }
}

/// The instant `target` (nanoseconds since the epoch), in the UTC offset of `reference`.
///
/// Callers pass a `target` between two representable instants, so the conversion cannot fail;
/// should it ever, `reference` is returned rather than panicking.
pub(crate) fn at(reference: OffsetDateTime, target: i128) -> OffsetDateTime {
    let delta = target - nanos(reference);
    let (Ok(secs), Ok(subsec)) = (
        i64::try_from(delta / NANOS_PER_SECOND),
        i32::try_from(delta % NANOS_PER_SECOND),
    ) else {
        return reference;
    };
    reference
        .checked_add(time::Duration::new(secs, subsec))
        .unwrap_or(reference)
}
